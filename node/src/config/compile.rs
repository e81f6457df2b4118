//! Compiles replicated state into the immutable snapshot the data plane serves from.
//!
//! Everything that can be decided before a request arrives is decided here, once per
//! deployment: route tables, URI templates split into literal and variable parts, parameter
//! mappings parsed into enums, selection patterns compiled into anchored regexes. The request
//! path then only reads. A method whose integration cannot run (an unsupported integration
//! type, a mapping template with expressions) still compiles: it answers 500 and logs the
//! reason, as API Gateway does for configuration errors, instead of failing the whole snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use portico_proto::{
    ApiDefinition, GatewayState, Integration, IntegrationType, PassthroughBehavior, Stage,
};
use regex::Regex;

use crate::route::table::{RouteTable, TemplateError};

/// What the data plane serves: every API and stage, compiled.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: u64,
    pub apis: HashMap<String, Arc<CompiledApi>>,
    /// Set when any Host may reach the API (the `dev` embedding with a single API).
    pub default_api: Option<Arc<CompiledApi>>,
}

#[derive(Debug)]
pub struct CompiledApi {
    pub id: Arc<str>,
    pub name: String,
    pub stages: HashMap<String, Arc<CompiledStage>>,
}

#[derive(Debug)]
pub struct CompiledStage {
    pub api_id: Arc<str>,
    /// `x-amzn-apigateway-api-id` for every HTTP integration request, built once here rather
    /// than per request.
    pub api_id_header: Option<http::HeaderValue>,
    pub name: Arc<str>,
    pub deployment_id: Arc<str>,
    pub variables: BTreeMap<String, String>,
    pub binary_media_types: Vec<String>,
    pub routes: RouteTable<Arc<CompiledResource>>,
    /// The stage's response cache, when it has one (`cacheClusterEnabled`).
    pub cache: Option<super::cache::StageCache>,
    /// The deployment's resource policy.
    pub resource_policy: super::auth::ResourcePolicy,
    /// Bumped by FlushStageAuthorizersCache; part of every authorizer cache key.
    pub authorizer_generation: u64,
    pub gateway_responses: Arc<super::auth::GatewayResponses>,
}

#[derive(Debug)]
pub struct CompiledResource {
    pub id: Arc<str>,
    pub path: Arc<str>,
    /// The template's variable names in order (`proxy` for `{proxy+}`); a match's captures
    /// line up with them.
    pub param_names: Vec<Box<str>>,
    /// Sorted by verb; `ANY` is looked up after the exact verb.
    pub methods: Vec<(String, Arc<CompiledMethod>)>,
}

impl CompiledResource {
    pub fn method(&self, verb: &str) -> Option<&Arc<CompiledMethod>> {
        let find = |wanted: &str| {
            self.methods
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, method)| method)
        };
        find(verb).or_else(|| find("ANY"))
    }
}

#[derive(Debug)]
pub struct CompiledMethod {
    pub http_method: String,
    pub resource_id: Arc<str>,
    pub resource_path: Arc<str>,
    pub api_key_required: bool,
    pub auth: super::auth::MethodAuth,
    /// `Err` holds why this method cannot run; it answers 500 and logs the reason.
    pub integration: Result<CompiledIntegration, String>,
    /// Set when responses of this method are cached; `None` costs the request path one branch.
    pub cache: Option<Arc<super::cache::MethodCache>>,
}

#[derive(Debug)]
pub enum CompiledIntegration {
    Http(HttpIntegration),
    Lambda(LambdaIntegration),
    Mock(MockIntegration),
}

/// HTTP and HTTP_PROXY integrations.
#[derive(Debug)]
pub struct HttpIntegration {
    pub proxy: bool,
    /// `None` forwards the client's verb (`ANY`).
    pub method: Option<http::Method>,
    pub uri: Template,
    pub timeout: Duration,
    pub parameters: Vec<ParameterMapping>,
    pub insecure_skip_verification: bool,
    pub passthrough: PassthroughBehavior,
    pub request_templates: BTreeMap<String, MappingTemplate>,
    pub responses: IntegrationResponses,
}

/// AWS_PROXY to a function through the Lambda Invoke API.
#[derive(Debug)]
pub struct LambdaIntegration {
    /// The function name or ARN, possibly with stage variables.
    pub function: Template,
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct MockIntegration {
    pub request_templates: BTreeMap<String, MappingTemplate>,
    pub passthrough: PassthroughBehavior,
    pub responses: IntegrationResponses,
}

/// A mapping template. Only templates without Velocity expressions can be rendered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingTemplate {
    Static(String),
    /// Holds the template text; rendering it is not supported yet.
    Expression(String),
}

impl MappingTemplate {
    pub fn parse(text: &str) -> Self {
        if text.contains('$') || text.contains('#') {
            MappingTemplate::Expression(text.to_string())
        } else {
            MappingTemplate::Static(text.to_string())
        }
    }
}

/// Integration responses, in the order selection tries them.
#[derive(Debug, Default)]
pub struct IntegrationResponses {
    pub patterned: Vec<CompiledIntegrationResponse>,
    pub default: Option<CompiledIntegrationResponse>,
}

impl IntegrationResponses {
    /// Picks the response whose selection pattern matches `selector` (a backend status code or
    /// error message), else the default one.
    pub fn select(&self, selector: &str) -> Option<&CompiledIntegrationResponse> {
        self.patterned
            .iter()
            .find(|response| {
                response
                    .pattern
                    .as_ref()
                    .is_some_and(|pattern| pattern.is_match(selector))
            })
            .or(self.default.as_ref())
    }

    pub fn is_empty(&self) -> bool {
        self.patterned.is_empty() && self.default.is_none()
    }
}

#[derive(Debug)]
pub struct CompiledIntegrationResponse {
    pub status: http::StatusCode,
    pub pattern: Option<Regex>,
    /// Response header name → where its value comes from.
    pub headers: Vec<(http::HeaderName, ValueSource)>,
    pub templates: BTreeMap<String, MappingTemplate>,
}

/// A text with `${stageVariables.NAME}` and `{name}` placeholders, split once at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Literal(String),
    StageVariable(String),
    /// `{name}`: an integration path parameter (or `{proxy}`).
    PathParameter(String),
}

impl Template {
    pub fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("${stageVariables.")
                && let Some(end) = after.find('}')
            {
                if !literal.is_empty() {
                    parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::StageVariable(after[..end].to_string()));
                rest = &after[end + 1..];
                continue;
            }
            if let Some(after) = rest.strip_prefix('{')
                && let Some(end) = after.find('}')
                && is_variable_name(&after[..end])
            {
                if !literal.is_empty() {
                    parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::PathParameter(after[..end].to_string()));
                rest = &after[end + 1..];
                continue;
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                literal.push(c);
            }
            rest = chars.as_str();
        }
        if !literal.is_empty() {
            parts.push(TemplatePart::Literal(literal));
        }
        Template { parts }
    }

    /// The literal text, when the template has no placeholders.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [TemplatePart::Literal(text)] => Some(text),
            _ => None,
        }
    }
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Where a mapped parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    MethodPath(String),
    MethodQuery(String),
    MethodMultiQuery(String),
    MethodHeader(String),
    MethodMultiHeader(String),
    MethodBody,
    StageVariable(String),
    Context(String),
    IntegrationHeader(String),
    IntegrationBody,
    Literal(String),
}

impl ValueSource {
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(literal) = text
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
        {
            return Some(ValueSource::Literal(literal.to_string()));
        }
        let named = |prefix: &str| {
            text.strip_prefix(prefix)
                .filter(|name| !name.is_empty())
                .map(str::to_string)
        };
        if let Some(name) = named("method.request.path.") {
            return Some(ValueSource::MethodPath(name));
        }
        if let Some(name) = named("method.request.querystring.") {
            return Some(ValueSource::MethodQuery(name));
        }
        if let Some(name) = named("method.request.multivaluequerystring.") {
            return Some(ValueSource::MethodMultiQuery(name));
        }
        if let Some(name) = named("method.request.header.") {
            return Some(ValueSource::MethodHeader(name));
        }
        if let Some(name) = named("method.request.multivalueheader.") {
            return Some(ValueSource::MethodMultiHeader(name));
        }
        if text == "method.request.body" {
            return Some(ValueSource::MethodBody);
        }
        if let Some(name) = named("stageVariables.") {
            return Some(ValueSource::StageVariable(name));
        }
        if let Some(name) = named("context.") {
            return Some(ValueSource::Context(name));
        }
        if let Some(name) = named("integration.response.header.") {
            return Some(ValueSource::IntegrationHeader(name));
        }
        if text == "integration.response.body" {
            return Some(ValueSource::IntegrationBody);
        }
        None
    }
}

/// Where a mapped parameter goes in the integration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterTarget {
    Path(String),
    Query(String),
    MultiQuery(String),
    Header(http::HeaderName),
    MultiHeader(http::HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterMapping {
    pub target: ParameterTarget,
    pub source: ValueSource,
}

/// Integration request headers a mapping may not set: they would desynchronise the framing of
/// the request (API Gateway fails such calls with 500).
const UNMAPPABLE_REQUEST_HEADERS: [&str; 2] = ["content-length", "transfer-encoding"];

/// Why a whole stage could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("API {api_id} stage {stage}: deployment {deployment_id} does not exist")]
    MissingDeployment {
        api_id: String,
        stage: String,
        deployment_id: String,
    },
    #[error("API {api_id}: {source}")]
    Route {
        api_id: String,
        #[source]
        source: TemplateError,
    },
}

/// Compiles the whole state, refusing it if any stage does not compile (`dev`, `validate`).
/// With `any_host`, a state holding exactly one API serves it on every Host (the `dev`
/// embedding).
pub fn compile(state: &GatewayState, any_host: bool) -> Result<Snapshot, CompileError> {
    let (snapshot, mut errors) = compile_lenient(state, any_host);
    match errors.is_empty() {
        true => Ok(snapshot),
        false => Err(errors.swap_remove(0)),
    }
}

/// Compiles every stage that can be compiled and reports the others. An edge serves what it
/// can: one API with a broken deployment must not take every other API down with it.
pub fn compile_lenient(state: &GatewayState, any_host: bool) -> (Snapshot, Vec<CompileError>) {
    let mut apis = HashMap::new();
    let mut errors = Vec::new();
    for (api_id, api_state) in &state.apis {
        let api_id_shared: Arc<str> = Arc::from(api_id.as_str());
        let mut stages = HashMap::new();
        for stage in &api_state.stages {
            let Some(deployment) = api_state.deployment(&stage.deployment_id) else {
                errors.push(CompileError::MissingDeployment {
                    api_id: api_id.clone(),
                    stage: stage.stage_name.clone(),
                    deployment_id: stage.deployment_id.clone(),
                });
                continue;
            };
            match compile_stage(&api_id_shared, stage, &deployment.definition) {
                Ok(mut compiled) => {
                    let generation_key = format!("{api_id}/{}", stage.stage_name);
                    let generation = state
                        .cache_generations
                        .get(&generation_key)
                        .copied()
                        .unwrap_or(0);
                    if let Some(cache) = compiled.cache.as_mut() {
                        cache.generation = generation;
                    }
                    // FlushStageAuthorizersCache's counter, same key.
                    compiled.authorizer_generation = state
                        .authorizer_generations
                        .get(&generation_key)
                        .copied()
                        .unwrap_or(0);
                    stages.insert(stage.stage_name.clone(), Arc::new(compiled));
                }
                Err(error) => errors.push(error),
            }
        }
        apis.insert(
            api_id.clone(),
            Arc::new(CompiledApi {
                id: api_id_shared,
                name: api_state.definition.api.name.clone(),
                stages,
            }),
        );
    }
    let default_api = if any_host && apis.len() == 1 {
        apis.values().next().cloned()
    } else {
        None
    };
    let snapshot = Snapshot {
        version: state.version,
        apis,
        default_api,
    };
    (snapshot, errors)
}

/// Compiles one stage of one deployment.
pub fn compile_stage(
    api_id: &Arc<str>,
    stage: &Stage,
    definition: &ApiDefinition,
) -> Result<CompiledStage, CompileError> {
    let mut routes = RouteTable::new();
    let mut cached_methods = Vec::new();
    let authorizers = super::auth::compile_authorizers(definition);
    for resource in &definition.resources {
        let resource_id: Arc<str> = Arc::from(resource.id.as_str());
        let resource_path: Arc<str> = Arc::from(resource.path.as_str());
        let mut methods: Vec<(String, Arc<CompiledMethod>)> = resource
            .resource_methods
            .iter()
            .map(|(verb, method)| {
                let integration = match &method.method_integration {
                    Some(integration) => compile_integration(integration),
                    None => Err(format!(
                        "method {verb} {} has no integration",
                        resource.path
                    )),
                };
                let compiled = CompiledMethod {
                    http_method: verb.to_ascii_uppercase(),
                    resource_id: resource_id.clone(),
                    resource_path: resource_path.clone(),
                    api_key_required: method.api_key_required,
                    auth: super::auth::method_auth(method, &authorizers),
                    integration,
                    cache: super::cache::compile_method(
                        stage,
                        &resource.path,
                        &verb.to_ascii_uppercase(),
                        method.method_integration.as_ref(),
                    )
                    .map(Arc::new),
                };
                (verb.to_ascii_uppercase(), Arc::new(compiled))
            })
            .collect();
        methods.sort_by(|a, b| a.0.cmp(&b.0));
        cached_methods.extend(
            methods
                .iter()
                .filter_map(|(_, method)| Some(method.cache.as_ref()?.metric_method.clone())),
        );
        let param_names = resource
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| Box::from(name.strip_suffix('+').unwrap_or(name)))
            .collect();
        let compiled = Arc::new(CompiledResource {
            id: resource_id,
            path: resource_path,
            param_names,
            methods,
        });
        routes
            .insert(&resource.path, compiled)
            .map_err(|source| CompileError::Route {
                api_id: api_id.to_string(),
                source,
            })?;
    }
    Ok(CompiledStage {
        api_id: api_id.clone(),
        api_id_header: http::HeaderValue::from_str(api_id).ok(),
        name: Arc::from(stage.stage_name.as_str()),
        deployment_id: Arc::from(stage.deployment_id.as_str()),
        variables: stage.variables.clone(),
        binary_media_types: definition.api.binary_media_types.clone(),
        routes,
        cache: super::cache::compile_stage(api_id, stage, 0).map(|mut cache| {
            cache.metric_methods = cached_methods;
            cache
        }),
        resource_policy: super::auth::resource_policy(definition),
        authorizer_generation: 0,
        gateway_responses: Arc::new(super::auth::compile_gateway_responses(definition)),
    })
}

fn compile_integration(integration: &Integration) -> Result<CompiledIntegration, String> {
    let timeout = Duration::from_millis(u64::from(integration.timeout_in_millis.clamp(
        portico_proto::INTEGRATION_TIMEOUT_MS_MIN,
        portico_proto::INTEGRATION_TIMEOUT_MS_MAX,
    )));
    let request_templates = compile_templates(&integration.request_templates);
    match integration.integration_type {
        IntegrationType::Http | IntegrationType::HttpProxy => {
            let uri = integration
                .uri
                .as_deref()
                .ok_or("HTTP integration has no uri")?;
            let method = match integration.http_method.as_deref() {
                None => None,
                Some(verb) if verb.eq_ignore_ascii_case("ANY") => None,
                Some(verb) => Some(
                    http::Method::from_bytes(verb.to_ascii_uppercase().as_bytes())
                        .map_err(|_| format!("invalid integration httpMethod {verb:?}"))?,
                ),
            };
            Ok(CompiledIntegration::Http(HttpIntegration {
                proxy: integration.integration_type == IntegrationType::HttpProxy,
                method,
                uri: Template::parse(uri),
                timeout,
                parameters: compile_parameters(&integration.request_parameters)?,
                insecure_skip_verification: integration
                    .tls_config
                    .as_ref()
                    .is_some_and(|tls| tls.insecure_skip_verification),
                passthrough: integration.passthrough_behavior,
                request_templates,
                responses: compile_responses(integration)?,
            }))
        }
        IntegrationType::AwsProxy => {
            // Recorded AWS behaviour: a Lambda proxy integration with another verb fails (500).
            let verb = integration.http_method.as_deref().unwrap_or("POST");
            if !verb.eq_ignore_ascii_case("POST") {
                return Err(format!(
                    "AWS_PROXY integrations must use httpMethod POST, not {verb}"
                ));
            }
            let uri = integration
                .uri
                .as_deref()
                .ok_or("AWS_PROXY integration has no uri")?;
            let function = lambda_function_from_uri(uri)
                .ok_or_else(|| format!("AWS_PROXY uri {uri:?} does not name a Lambda function"))?;
            Ok(CompiledIntegration::Lambda(LambdaIntegration {
                function: Template::parse(function),
                timeout,
            }))
        }
        IntegrationType::Mock => Ok(CompiledIntegration::Mock(MockIntegration {
            request_templates,
            passthrough: integration.passthrough_behavior,
            responses: compile_responses(integration)?,
        })),
        IntegrationType::Aws => {
            Err("AWS service integrations (type AWS) are not supported yet".to_string())
        }
    }
}

/// The function part of `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{fn}/invocations`.
pub fn lambda_function_from_uri(uri: &str) -> Option<&str> {
    let after = uri.split_once(":lambda:path/")?.1;
    let after = after.split_once("/functions/")?.1;
    let function = after.strip_suffix("/invocations")?;
    (!function.is_empty()).then_some(function)
}

fn compile_templates(templates: &BTreeMap<String, String>) -> BTreeMap<String, MappingTemplate> {
    templates
        .iter()
        .map(|(content_type, text)| {
            (
                content_type.to_ascii_lowercase(),
                MappingTemplate::parse(text),
            )
        })
        .collect()
}

fn compile_parameters(
    parameters: &BTreeMap<String, String>,
) -> Result<Vec<ParameterMapping>, String> {
    let mut mappings = Vec::with_capacity(parameters.len());
    for (target, source) in parameters {
        let header = |name: &str| {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name in {target:?}"))
        };
        let target_parsed = if let Some(name) = target.strip_prefix("integration.request.path.") {
            ParameterTarget::Path(name.to_string())
        } else if let Some(name) = target.strip_prefix("integration.request.querystring.") {
            ParameterTarget::Query(name.to_string())
        } else if let Some(name) = target.strip_prefix("integration.request.multivaluequerystring.")
        {
            ParameterTarget::MultiQuery(name.to_string())
        } else if let Some(name) = target.strip_prefix("integration.request.header.") {
            if UNMAPPABLE_REQUEST_HEADERS
                .iter()
                .any(|reserved| name.eq_ignore_ascii_case(reserved))
            {
                return Err(format!("the request header {name} cannot be mapped"));
            }
            ParameterTarget::Header(header(name)?)
        } else if let Some(name) = target.strip_prefix("integration.request.multivalueheader.") {
            ParameterTarget::MultiHeader(header(name)?)
        } else {
            return Err(format!("unsupported request parameter target {target:?}"));
        };
        let source_parsed = ValueSource::parse(source)
            .ok_or_else(|| format!("unsupported request parameter source {source:?}"))?;
        mappings.push(ParameterMapping {
            target: target_parsed,
            source: source_parsed,
        });
    }
    Ok(mappings)
}

fn compile_responses(integration: &Integration) -> Result<IntegrationResponses, String> {
    let mut responses = IntegrationResponses::default();
    for (status_text, response) in &integration.integration_responses {
        let status = status_text
            .parse::<u16>()
            .ok()
            .and_then(|code| http::StatusCode::from_u16(code).ok())
            .ok_or_else(|| format!("invalid integration response status {status_text:?}"))?;
        let mut headers = Vec::new();
        for (target, source) in &response.response_parameters {
            let Some(name) = target.strip_prefix("method.response.header.") else {
                return Err(format!("unsupported response parameter target {target:?}"));
            };
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name in {target:?}"))?;
            let source = ValueSource::parse(source)
                .ok_or_else(|| format!("unsupported response parameter source {source:?}"))?;
            headers.push((name, source));
        }
        let pattern = match response.selection_pattern.as_deref() {
            None | Some("") => None,
            Some(pattern) => Some(
                // API Gateway matches the whole selector against the pattern.
                Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|error| format!("invalid selectionPattern {pattern:?}: {error}"))?,
            ),
        };
        let compiled = CompiledIntegrationResponse {
            status,
            pattern,
            headers,
            templates: compile_templates(&response.response_templates),
        };
        if compiled.pattern.is_some() {
            responses.patterned.push(compiled);
        } else if responses.default.is_some() {
            return Err(format!(
                "more than one integration response has no selectionPattern (status {status_text})"
            ));
        } else {
            responses.default = Some(compiled);
        }
    }
    Ok(responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_stage_variables_and_path_parameters() {
        let template = Template::parse("https://${stageVariables.host}/pets/{petId}?a={b");
        assert_eq!(
            template.parts,
            vec![
                TemplatePart::Literal("https://".into()),
                TemplatePart::StageVariable("host".into()),
                TemplatePart::Literal("/pets/".into()),
                TemplatePart::PathParameter("petId".into()),
                TemplatePart::Literal("?a={b".into()),
            ]
        );
        assert_eq!(Template::parse("plain").as_literal(), Some("plain"));
    }

    #[test]
    fn lambda_uri_names_the_function() {
        assert_eq!(
            lambda_function_from_uri(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:hello/invocations"
            ),
            Some("arn:aws:lambda:us-east-1:123456789012:function:hello")
        );
        assert_eq!(lambda_function_from_uri("http://example.com"), None);
    }

    #[test]
    fn value_sources() {
        assert_eq!(
            ValueSource::parse("'x y'"),
            Some(ValueSource::Literal("x y".into()))
        );
        assert_eq!(
            ValueSource::parse("method.request.path.proxy"),
            Some(ValueSource::MethodPath("proxy".into()))
        );
        assert_eq!(ValueSource::parse("method.request.path."), None);
        assert_eq!(ValueSource::parse("nonsense"), None);
    }

    #[test]
    fn stages_carry_their_authorizer_generation() {
        use portico_proto::admin::{AdminOp, NewStage, apply};
        let mut state = GatewayState::default();
        let api = portico_proto::RestApi {
            id: "a".into(),
            name: "api".into(),
            description: None,
            created_date: 1,
            version: None,
            warnings: vec![],
            binary_media_types: vec![],
            minimum_compression_size: None,
            api_key_source: portico_proto::ApiKeySource::Header,
            endpoint_configuration: portico_proto::EndpointConfiguration::default(),
            policy: None,
            tags: Default::default(),
            disable_execute_api_endpoint: false,
            root_resource_id: "r".into(),
        };
        let deploy = |stage: &str, id: &str| AdminOp::CreateDeployment {
            api_id: "a".into(),
            deployment_id: id.into(),
            description: None,
            created_date: 2,
            stage: Some(NewStage {
                stage_name: stage.into(),
                description: None,
                variables: Default::default(),
            }),
        };
        let flush = AdminOp::FlushStageAuthorizersCache {
            api_id: "a".into(),
            stage_name: "prod".into(),
        };
        for op in [
            AdminOp::CreateRestApi { api },
            AdminOp::PutMethod {
                api_id: "a".into(),
                resource_id: "r".into(),
                method: portico_proto::Method::new("GET"),
            },
            AdminOp::PutIntegration {
                api_id: "a".into(),
                resource_id: "r".into(),
                http_method: "GET".into(),
                integration: Integration::new(portico_proto::IntegrationType::Mock),
            },
            deploy("prod", "d1"),
            deploy("dev", "d2"),
            flush.clone(),
            flush,
        ] {
            apply(&mut state, &op).unwrap();
        }
        let snapshot = compile(&state, false).unwrap();
        let stages = &snapshot.apis["a"].stages;
        assert_eq!(stages["prod"].authorizer_generation, 2);
        assert_eq!(stages["dev"].authorizer_generation, 0);
    }

    #[test]
    fn static_and_expression_templates() {
        assert_eq!(
            MappingTemplate::parse("{\"statusCode\": 200}"),
            MappingTemplate::Static("{\"statusCode\": 200}".into())
        );
        assert!(matches!(
            MappingTemplate::parse("$input.json('$')"),
            MappingTemplate::Expression(_)
        ));
    }
}
