//! Authorization at the edge: who may call a method, decided after routing and before API
//! keys, throttles, the cache and the integration, in API Gateway's order.
//!
//! Each method compiles to a [`MethodAuth`] (config/auth.rs); this module decides it:
//! - resource policies (`policy.rs`), combined with the method's authorization per AWS's
//!   evaluation tables: alone they need an explicit allow; with a Lambda authorizer an explicit
//!   deny refuses before the function is called, then the function's policy decides unless the
//!   resource policy denies; with Cognito or IAM an explicit deny refuses after authentication;
//! - Lambda authorizers (`lambda.rs`), TOKEN and REQUEST, through the Invoke API, whose
//!   answers are cached per stage, authorizer and identity for the authorizer's TTL. A cached
//!   answer is a parsed policy evaluated against the method's ARN: no network wait, and the
//!   same policy decides every method of the stage, as on AWS;
//! - Cognito user pools (`cognito.rs`) and IAM SigV4 (`iam.rs`), verified locally with keys the
//!   node already holds.
//!
//! Denials are [`Failure`]s carrying AWS's status, error type and message; the pipeline renders
//! them through the API's gateway responses like every other error.

pub mod cognito;
pub mod iam;
pub mod lambda;
pub mod policy;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::config::auth::{MethodAuth, ResourcePolicy};
use crate::integrate::Integrations;
use crate::request::{Authorized, Failure, RequestView};
use crate::respond::GatewayError;
use policy::{Evaluation, Policy, PolicyRequest, Principal};

/// The node-wide byte bound of the Lambda authorizer decision cache.
pub const DECISION_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The node's authorization machinery: the decision cache and the verifiers.
pub struct Authorizers {
    decisions: lambda::DecisionCache,
    /// SigV4 verification for AWS_IAM methods; kept current by the node (dev, edge).
    iam: Arc<iam::IamVerifier>,
    /// Cognito user pool tokens for COGNITO_USER_POOLS methods (`None`: such methods answer
    /// 500, as a node without the verifier cannot decide them).
    cognito: Option<Arc<cognito::CognitoVerifier>>,
}

impl std::fmt::Debug for Authorizers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizers")
            .field("cached_decisions", &self.decisions.entry_count())
            .finish()
    }
}

impl Default for Authorizers {
    fn default() -> Self {
        Authorizers::new(DECISION_CACHE_BYTES)
    }
}

impl Authorizers {
    pub fn new(cache_bytes: u64) -> Self {
        Authorizers {
            decisions: lambda::decision_cache(cache_bytes),
            iam: Arc::new(iam::IamVerifier::new()),
            cognito: None,
        }
    }

    /// Verifies COGNITO_USER_POOLS methods with `cognito` (the node's verifier).
    pub fn with_cognito(mut self, cognito: Arc<cognito::CognitoVerifier>) -> Self {
        self.cognito = Some(cognito);
        self
    }

    /// Takes in a new state: starts fetching the keys of user pools it names.
    pub fn observe_state(&self, state: &portico_proto::GatewayState) {
        if let Some(cognito) = &self.cognito {
            cognito.prefetch_state(state);
        }
    }

    /// Verifies AWS_IAM methods with `iam` (the node's verifier, which it keeps current).
    pub fn with_iam(mut self, iam: Arc<iam::IamVerifier>) -> Self {
        self.iam = iam;
        self
    }

    /// True when the method's decision needs the whole request body (SigV4 signs its hash).
    /// A request that carries no signature at all is refused without reading its body.
    pub fn needs_body(view: &RequestView<'_>) -> bool {
        matches!(view.method().auth, MethodAuth::Iam)
            && (view.parts.headers.contains_key(http::header::AUTHORIZATION)
                || view
                    .query
                    .is_some_and(|query| query.contains("X-Amz-Algorithm=")))
    }

    /// Decides whether the routed request may proceed. `Ok(None)`: the method needs no
    /// authorizer and no policy refused it. `body` is the whole request body when
    /// [`Authorizers::needs_body`] asked for it.
    pub async fn authorize(
        &self,
        integrations: &Integrations,
        view: &RequestView<'_>,
        body: Option<&[u8]>,
    ) -> Result<Option<Arc<Authorized>>, Failure> {
        let stage = view.stage();
        let method = view.method();
        let resource_policy = match &stage.resource_policy {
            ResourcePolicy::None => None,
            ResourcePolicy::Policy(policy) => Some(policy.as_ref()),
            ResourcePolicy::Invalid(reason) => {
                return Err(Failure::new(
                    GatewayError::ApiConfiguration,
                    reason.to_string(),
                ));
            }
        };
        if matches!(method.auth, MethodAuth::None) && resource_policy.is_none() {
            return Ok(None);
        }
        let arn = method_arn(integrations, view);
        match &method.auth {
            MethodAuth::None => {
                if let Some(policy) = resource_policy {
                    match policy.evaluate(&request(&arn, Principal::Anonymous, view)) {
                        Evaluation::Allow => {}
                        outcome => return Err(resource_policy_denial(None, &arn, outcome)),
                    }
                }
                Ok(None)
            }
            MethodAuth::Invalid(reason) => Err(Failure::new(
                GatewayError::AuthorizerConfiguration,
                reason.to_string(),
            )),
            MethodAuth::Custom(authorizer) => {
                // Phase one: an explicit deny refuses before the function is called.
                let before = resource_policy
                    .map(|policy| policy.evaluate(&request(&arn, Principal::Anonymous, view)));
                if before == Some(Evaluation::Deny) {
                    return Err(resource_policy_denial(None, &arn, Evaluation::Deny));
                }
                let cached = self
                    .decisions
                    .decide(integrations, authorizer, view, &arn)
                    .await?;
                match cached
                    .decision
                    .policy
                    .evaluate(&request(&arn, Principal::Anonymous, view))
                {
                    Evaluation::Allow => Ok(Some(cached.decision.authorized.clone())),
                    Evaluation::Deny => Err(Failure::with_message(
                        GatewayError::AccessDenied,
                        EXPLICIT_DENY,
                        "the authorizer's policy denies this method explicitly",
                    )),
                    Evaluation::NotApplicable => Err(Failure::with_message(
                        GatewayError::AccessDenied,
                        NOT_AUTHORIZED,
                        "the authorizer's policy does not allow this method",
                    )),
                }
            }
            MethodAuth::Cognito { authorizer, scopes } => {
                let Some(cognito) = &self.cognito else {
                    return Err(Failure::new(
                        GatewayError::AuthorizerConfiguration,
                        "Cognito user pool authorizers are not available on this node",
                    ));
                };
                let token = match authorizer.identity.first() {
                    Some(crate::config::auth::IdentitySource::Header(name)) => view
                        .parts
                        .headers
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default(),
                    _ => "",
                };
                // AWS lets a stage variable name the pool.
                let arns: Cow<'_, [String]> = if authorizer
                    .provider_arns
                    .iter()
                    .any(|arn| arn.contains("${"))
                {
                    Cow::Owned(
                        authorizer
                            .provider_arns
                            .iter()
                            .map(|arn| cognito::with_stage_variables(arn, &stage.variables))
                            .collect(),
                    )
                } else {
                    Cow::Borrowed(&authorizer.provider_arns)
                };
                let now = u64::try_from(crate::time::epoch_seconds(view.received_at)).unwrap_or(0);
                let identity = cognito
                    .verify(token, &arns, scopes, now)
                    .await
                    .map_err(cognito::CognitoRejection::failure)?;
                // identityValidationExpression, for Cognito, is matched against `aud`.
                if let Some(validation) = &authorizer.validation {
                    let aud = identity
                        .claims
                        .get("aud")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !validation.is_match(aud) {
                        return Err(Failure::new(
                            GatewayError::Unauthorized,
                            "the token's aud does not match identityValidationExpression",
                        ));
                    }
                }
                // An explicit deny in the resource policy refuses after authentication.
                if let Some(policy) = resource_policy
                    && policy.evaluate(&request(&arn, Principal::Anonymous, view))
                        == Evaluation::Deny
                {
                    return Err(resource_policy_denial(None, &arn, Evaluation::Deny));
                }
                Ok(Some(Arc::new(Authorized {
                    claims: Some(identity.claims),
                    ..Authorized::default()
                })))
            }
            MethodAuth::Iam => {
                let caller = self
                    .iam
                    .authenticate_parts(
                        view.parts,
                        view.path,
                        view.query,
                        body.unwrap_or_default(),
                        crate::time::epoch_seconds(view.received_at),
                    )
                    .map_err(iam::IamDenial::into_failure)?;
                let identity_policy = self.iam.authorize(&caller, &arn, view.source_ip);
                // The caller's condition keys, as its own policies see them.
                let context = [
                    ("aws:username", caller.user_name.as_str()),
                    ("aws:userid", caller.caller.as_str()),
                    ("aws:PrincipalArn", caller.user_arn.as_str()),
                    ("aws:PrincipalAccount", caller.account_id.as_str()),
                    ("aws:PrincipalType", "User"),
                ];
                let resource = resource_policy.map(|policy| {
                    policy.evaluate(&PolicyRequest {
                        context: &context,
                        ..request(
                            &arn,
                            Principal::Iam {
                                arn: &caller.user_arn,
                                account: &caller.account_id,
                            },
                            view,
                        )
                    })
                });
                // AWS's table for callers of the API's own account: an explicit deny in
                // either policy refuses; otherwise an allow in either admits.
                match (identity_policy, resource) {
                    (_, Some(Evaluation::Deny)) => Err(resource_policy_denial(
                        Some(&caller.user_arn),
                        &arn,
                        Evaluation::Deny,
                    )),
                    (
                        Err(
                            denial @ iam::IamDenial::NotAuthorized {
                                explicit_deny: true,
                                ..
                            },
                        ),
                        _,
                    ) => Err(denial.into_failure()),
                    (Ok(()), _) | (Err(_), Some(Evaluation::Allow)) => {
                        Ok(Some(Arc::new(Authorized {
                            caller: Some(caller.into()),
                            ..Authorized::default()
                        })))
                    }
                    (Err(denial), _) => Err(denial.into_failure()),
                }
            }
        }
    }
}

/// AWS's texts for a Lambda authorizer's denials (knowledge-center article on 403s from
/// Lambda authorizers, AWS-FACTS §6).
pub const EXPLICIT_DENY: &str =
    "User is not authorized to access this resource with an explicit deny";
pub const NOT_AUTHORIZED: &str = "User is not authorized to access this resource";

fn request<'a>(
    arn: &'a str,
    principal: Principal<'a>,
    view: &RequestView<'_>,
) -> PolicyRequest<'a> {
    PolicyRequest {
        action: "execute-api:Invoke",
        resource: arn,
        principal,
        source_ip: Some(view.source_ip),
        context: &[],
    }
}

/// The ARN policies name this request by:
/// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}`.
pub fn method_arn(integrations: &Integrations, view: &RequestView<'_>) -> String {
    policy::method_arn(
        &integrations.settings.region,
        &integrations.settings.account_id,
        &view.stage().api_id,
        &view.stage().name,
        view.parts.method.as_str(),
        routed_path(view.stage_path()),
    )
}

/// The path as the router matched it: one trailing slash is ignored by routing, so it is by
/// the ARN too (else `GET /admin/` would run `/admin` but escape a deny on `.../GET/admin`).
fn routed_path(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    }
}

/// API Gateway's 403 for a resource policy that does not allow the caller. The account in
/// the ARN is masked but for its last four digits, as AWS prints it.
fn resource_policy_denial(user: Option<&str>, arn: &str, outcome: Evaluation) -> Failure {
    let masked = mask_account(arn);
    let who = user.unwrap_or("anonymous");
    let message = match outcome {
        Evaluation::Deny => format!(
            "User: {who} is not authorized to perform: execute-api:Invoke on resource: {masked} with an explicit deny"
        ),
        _ => format!(
            "User: {who} is not authorized to perform: execute-api:Invoke on resource: {masked}"
        ),
    };
    Failure::with_message(
        GatewayError::AccessDenied,
        message,
        "the resource policy does not allow this caller",
    )
}

pub(crate) fn mask_account(arn: &str) -> Cow<'_, str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        [a, b, c, d, account, rest] if account.len() > 4 && account.is_ascii() => {
            let keep = &account[account.len() - 4..];
            Cow::Owned(format!(
                "{a}:{b}:{c}:{d}:{}{keep}:{rest}",
                "*".repeat(account.len() - 4)
            ))
        }
        _ => Cow::Borrowed(arn),
    }
}

/// A decision ready to apply: the function's parsed policy and what reaches the integration.
#[derive(Debug)]
pub struct Decision {
    pub policy: Policy,
    pub authorized: Arc<Authorized>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arn_path_ignores_the_trailing_slash_routing_ignores() {
        assert_eq!(routed_path("/admin/"), "/admin");
        assert_eq!(routed_path("/admin"), "/admin");
        assert_eq!(routed_path("/"), "/");
        assert_eq!(routed_path("/a//"), "/a/");
    }

    #[test]
    fn accounts_are_masked_as_aws_prints_them() {
        assert_eq!(
            mask_account("arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/x"),
            "arn:aws:execute-api:us-east-1:********9012:abc/prod/GET/x"
        );
        assert_eq!(mask_account("nonsense"), "nonsense");
    }
}
