//! Authorization settings compiled once per deployment: each method's authorization, its
//! authorizer with identity sources parsed and its validation expression compiled, the
//! resource policy parsed, and the gateway responses the API customises.
//!
//! A setting that cannot work (a CUSTOM method whose authorizer is gone, a resource policy
//! that does not parse) compiles into a value the request path answers with API Gateway's
//! configuration error, rather than failing the whole snapshot or, worse, letting the method
//! run without the check it asked for.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, StatusCode};
use portico_proto::{ApiDefinition, ApiKeySource, Authorizer, Method};
use regex::Regex;

use crate::authorize::policy::Policy;

/// API Gateway's default and bound for `authorizerResultTtlInSeconds`.
pub const AUTHORIZER_TTL_DEFAULT_S: u64 = 300;
pub const AUTHORIZER_TTL_MAX_S: u64 = 3600;

/// How a method decides who may call it.
#[derive(Debug, Clone, Default)]
pub enum MethodAuth {
    #[default]
    None,
    /// A Lambda authorizer (TOKEN or REQUEST).
    Custom(Arc<CompiledAuthorizer>),
    /// A Cognito user pool authorizer and the method's `authorizationScopes`.
    Cognito {
        authorizer: Arc<CompiledAuthorizer>,
        scopes: Arc<[String]>,
    },
    /// SigV4 signatures from IAM identities (`AWS_IAM`).
    Iam,
    /// The method asks for authorization that cannot be checked; it answers 500.
    Invalid(Arc<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerKind {
    Token,
    Request,
    CognitoUserPools,
}

/// Where one identity value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    Header(HeaderName),
    Query(String),
    StageVariable(String),
    Context(String),
}

#[derive(Debug)]
pub struct CompiledAuthorizer {
    pub id: Arc<str>,
    pub name: String,
    pub kind: AuthorizerKind,
    /// Zero: every request calls the authorizer.
    pub ttl: Duration,
    /// The function reference inside `authorizerUri` (TOKEN and REQUEST).
    pub function: Option<super::compile::Template>,
    pub identity: Vec<IdentitySource>,
    /// `identityValidationExpression`, anchored (TOKEN and Cognito).
    pub validation: Option<Regex>,
    pub provider_arns: Vec<String>,
}

/// The resource policy of a deployment.
#[derive(Debug, Clone, Default)]
pub enum ResourcePolicy {
    #[default]
    None,
    Policy(Arc<Policy>),
    /// Stored but not evaluable: every request is refused with 500 rather than let through.
    Invalid(Arc<str>),
}

/// Parses an identity source list (`method.request.header.Auth, method.request.querystring.q`).
pub fn parse_identity_sources(text: &str) -> Result<Vec<IdentitySource>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|source| !source.is_empty())
        .map(|source| {
            let named = |prefix: &str| {
                source
                    .strip_prefix(prefix)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
            };
            if let Some(name) = named("method.request.header.") {
                return HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                    .map(IdentitySource::Header)
                    .map_err(|_| format!("identity source {source}: invalid header name"));
            }
            if let Some(name) = named("method.request.querystring.") {
                return Ok(IdentitySource::Query(name));
            }
            if let Some(name) = named("stageVariables.") {
                return Ok(IdentitySource::StageVariable(name));
            }
            if let Some(name) = named("context.") {
                return Ok(IdentitySource::Context(name));
            }
            Err(format!("identity source {source} is not supported"))
        })
        .collect()
}

/// Compiles one authorizer of a deployment.
pub fn compile_authorizer(authorizer: &Authorizer) -> Result<CompiledAuthorizer, String> {
    let kind = match authorizer.authorizer_type.as_str() {
        "TOKEN" => AuthorizerKind::Token,
        "REQUEST" => AuthorizerKind::Request,
        "COGNITO_USER_POOLS" => AuthorizerKind::CognitoUserPools,
        other => {
            return Err(format!(
                "authorizer type {other} is not supported by REST APIs"
            ));
        }
    };
    let ttl_s = match authorizer.authorizer_result_ttl_in_seconds {
        None => AUTHORIZER_TTL_DEFAULT_S,
        Some(ttl) => u64::try_from(ttl).unwrap_or(0).min(AUTHORIZER_TTL_MAX_S),
    };
    let identity = match authorizer.identity_source.as_deref() {
        Some(text) => parse_identity_sources(text)?,
        None => Vec::new(),
    };
    match kind {
        AuthorizerKind::Token | AuthorizerKind::CognitoUserPools => {
            if !matches!(identity.as_slice(), [IdentitySource::Header(_)]) {
                return Err(format!(
                    "authorizer {}: identitySource must be one method.request.header.NAME",
                    authorizer.id
                ));
            }
        }
        AuthorizerKind::Request => {
            // Without caching, a REQUEST authorizer may leave identity sources out.
            if identity.is_empty() && ttl_s > 0 {
                return Err(format!(
                    "authorizer {}: a cached REQUEST authorizer needs identity sources",
                    authorizer.id
                ));
            }
        }
    }
    let validation = match authorizer.identity_validation_expression.as_deref() {
        Some(expression) if kind != AuthorizerKind::Request && !expression.is_empty() => {
            Some(Regex::new(&format!("^(?:{expression})$")).map_err(|error| {
                format!(
                    "authorizer {}: identityValidationExpression does not compile: {error}",
                    authorizer.id
                )
            })?)
        }
        _ => None,
    };
    let function = match kind {
        AuthorizerKind::CognitoUserPools => {
            if authorizer.provider_arns.is_empty() {
                return Err(format!("authorizer {} has no providerARNs", authorizer.id));
            }
            None
        }
        _ => {
            let uri = authorizer
                .authorizer_uri
                .as_deref()
                .ok_or_else(|| format!("authorizer {} has no authorizerUri", authorizer.id))?;
            Some(super::compile::Template::parse(
                super::compile::lambda_function_from_uri(uri).ok_or_else(|| {
                    format!(
                        "authorizer {}: authorizerUri {uri:?} does not name a Lambda function",
                        authorizer.id
                    )
                })?,
            ))
        }
    };
    Ok(CompiledAuthorizer {
        id: Arc::from(authorizer.id.as_str()),
        name: authorizer.name.clone(),
        kind,
        ttl: Duration::from_secs(ttl_s),
        function,
        identity,
        validation,
        provider_arns: authorizer.provider_arns.clone(),
    })
}

/// The compiled authorizers of one deployment, by id; a broken one keeps its reason.
pub type Authorizers = Vec<(String, Result<Arc<CompiledAuthorizer>, Arc<str>>)>;

pub fn compile_authorizers(definition: &ApiDefinition) -> Authorizers {
    definition
        .authorizers
        .iter()
        .map(|authorizer| {
            (
                authorizer.id.clone(),
                compile_authorizer(authorizer)
                    .map(Arc::new)
                    .map_err(Arc::from),
            )
        })
        .collect()
}

/// The authorization of one method.
pub fn method_auth(method: &Method, authorizers: &Authorizers) -> MethodAuth {
    let authorizer = || {
        let id = method.authorizer_id.as_deref().unwrap_or("");
        match authorizers.iter().find(|(known, _)| known == id) {
            Some((_, Ok(authorizer))) => Ok(authorizer.clone()),
            Some((_, Err(reason))) => Err(reason.clone()),
            None => Err(Arc::from(
                format!("the method's authorizer {id:?} does not exist").as_str(),
            )),
        }
    };
    match method.authorization_type.as_str() {
        "NONE" | "" => MethodAuth::None,
        "AWS_IAM" => MethodAuth::Iam,
        "CUSTOM" => match authorizer() {
            Ok(authorizer) if authorizer.kind != AuthorizerKind::CognitoUserPools => {
                MethodAuth::Custom(authorizer)
            }
            Ok(_) => MethodAuth::Invalid(Arc::from(
                "authorizationType CUSTOM names a COGNITO_USER_POOLS authorizer",
            )),
            Err(reason) => MethodAuth::Invalid(reason),
        },
        "COGNITO_USER_POOLS" => match authorizer() {
            Ok(authorizer) if authorizer.kind == AuthorizerKind::CognitoUserPools => {
                MethodAuth::Cognito {
                    authorizer,
                    scopes: Arc::from(method.authorization_scopes.clone()),
                }
            }
            Ok(_) => MethodAuth::Invalid(Arc::from(
                "authorizationType COGNITO_USER_POOLS names a Lambda authorizer",
            )),
            Err(reason) => MethodAuth::Invalid(reason),
        },
        other => MethodAuth::Invalid(Arc::from(
            format!("authorizationType {other} is not supported").as_str(),
        )),
    }
}

/// The deployment's resource policy. The `execute-api:/` shorthand is expanded with wildcard
/// region and account: the API id already pins the resource, and the compiled snapshot does
/// not depend on the node's region.
pub fn resource_policy(definition: &ApiDefinition) -> ResourcePolicy {
    match definition.api.policy.as_deref() {
        None => ResourcePolicy::None,
        Some(text) if text.trim().is_empty() => ResourcePolicy::None,
        Some(text) => match Policy::parse(text) {
            Ok(policy) => {
                ResourcePolicy::Policy(Arc::new(policy.for_api("*", "*", &definition.api.id)))
            }
            Err(error) => ResourcePolicy::Invalid(Arc::from(
                format!("the resource policy cannot be evaluated: {error}").as_str(),
            )),
        },
    }
}

pub fn key_source_is_authorizer(definition: &ApiDefinition) -> bool {
    definition.api.api_key_source == ApiKeySource::Authorizer
}

/// A customised gateway response.
#[derive(Debug, Clone)]
pub struct CompiledGatewayResponse {
    pub status: Option<StatusCode>,
    /// `gatewayresponse.header.NAME` → its source (`'literal'`, `method.request.header.X`...).
    pub headers: Vec<(HeaderName, String)>,
    /// The `application/json` template, else the first one.
    pub template: Option<(String, String)>,
}

/// The gateway responses a deployment customises, by response type.
#[derive(Debug, Clone, Default)]
pub struct GatewayResponses {
    pub custom: Vec<(String, CompiledGatewayResponse)>,
}

impl GatewayResponses {
    pub fn get(&self, response_type: &str) -> Option<&CompiledGatewayResponse> {
        self.custom
            .iter()
            .find(|(name, _)| name == response_type)
            .map(|(_, response)| response)
    }

    pub fn is_empty(&self) -> bool {
        self.custom.is_empty()
    }
}

pub fn compile_gateway_responses(definition: &ApiDefinition) -> GatewayResponses {
    let custom = definition
        .gateway_responses
        .iter()
        .map(|response| {
            let status = response
                .status_code
                .as_deref()
                .and_then(|code| code.parse::<u16>().ok())
                .and_then(|code| StatusCode::from_u16(code).ok());
            let headers = response
                .response_parameters
                .iter()
                .filter_map(|(target, source)| {
                    let name = target.strip_prefix("gatewayresponse.header.")?;
                    let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                    Some((name, source.clone()))
                })
                .collect();
            let template = response
                .response_templates
                .get("application/json")
                .map(|text| ("application/json".to_string(), text.clone()))
                .or_else(|| {
                    response
                        .response_templates
                        .iter()
                        .next()
                        .map(|(media, text)| (media.clone(), text.clone()))
                });
            (
                response.response_type.clone(),
                CompiledGatewayResponse {
                    status,
                    headers,
                    template,
                },
            )
        })
        .collect();
    GatewayResponses { custom }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorizer(kind: &str) -> Authorizer {
        Authorizer {
            id: "auth01".to_string(),
            name: "a".to_string(),
            authorizer_type: kind.to_string(),
            provider_arns: Vec::new(),
            auth_type: None,
            authorizer_uri: Some(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:auth/invocations"
                    .to_string(),
            ),
            authorizer_credentials: None,
            identity_source: Some("method.request.header.Authorization".to_string()),
            identity_validation_expression: None,
            authorizer_result_ttl_in_seconds: None,
        }
    }

    #[test]
    fn a_token_authorizer_compiles_with_aws_defaults() {
        let compiled = compile_authorizer(&authorizer("TOKEN")).unwrap();
        assert_eq!(compiled.ttl, Duration::from_secs(300));
        assert_eq!(
            compiled.identity,
            vec![IdentitySource::Header(HeaderName::from_static(
                "authorization"
            ))]
        );
        assert_eq!(
            compiled.function.unwrap().as_literal(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:auth")
        );
    }

    #[test]
    fn validation_is_anchored_and_identity_sources_parse() {
        let mut token = authorizer("TOKEN");
        token.identity_validation_expression = Some("Bearer [a-z]+".to_string());
        let compiled = compile_authorizer(&token).unwrap();
        let regex = compiled.validation.unwrap();
        assert!(regex.is_match("Bearer abc"));
        assert!(!regex.is_match("xBearer abc"));
        assert!(!regex.is_match("Bearer abc1"));

        let mut request = authorizer("REQUEST");
        request.identity_source = Some(
            "method.request.header.H, method.request.querystring.q,stageVariables.s, context.sourceIp"
                .to_string(),
        );
        let compiled = compile_authorizer(&request).unwrap();
        assert_eq!(compiled.identity.len(), 4);
        assert_eq!(
            compiled.identity[3],
            IdentitySource::Context("sourceIp".to_string())
        );
    }

    #[test]
    fn broken_authorizers_say_why() {
        let mut no_uri = authorizer("TOKEN");
        no_uri.authorizer_uri = None;
        assert!(
            compile_authorizer(&no_uri)
                .unwrap_err()
                .contains("authorizerUri")
        );
        let mut bad_regex = authorizer("TOKEN");
        bad_regex.identity_validation_expression = Some("(".to_string());
        assert!(
            compile_authorizer(&bad_regex)
                .unwrap_err()
                .contains("does not compile")
        );
        let cognito = authorizer("COGNITO_USER_POOLS");
        assert!(
            compile_authorizer(&cognito)
                .unwrap_err()
                .contains("providerARNs")
        );
        let mut two_headers = authorizer("TOKEN");
        two_headers.identity_source =
            Some("method.request.header.A,method.request.header.B".into());
        assert!(compile_authorizer(&two_headers).is_err());
    }
}
