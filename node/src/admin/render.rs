//! The management API's JSON, in the exact shapes real AWS sends and accepts.
//!
//! boto3 and the AWS CLI parse responses with botocore's model, and users compare what they
//! see with AWS. So each renderer emits the members AWS emits and omits the ones it omits: an
//! absent optional member or an empty map is left out (AWS's `GetResources` root is just
//! `{"id", "path"}`), while `cacheKeyParameters: []` and `methodSettings: {}` are always there.
//! The recorded AWS responses in LocalStack's validated snapshots are the ground truth; the
//! tests below name the entry each renderer was matched against. Timestamps are epoch seconds,
//! as AWS sends them.
//!
//! The parsers turn request bodies into the model's types and reject malformed input with
//! AWS-like `BadRequestException` texts. Checks that need the replicated state (does the
//! authorizer exist, is the stage name taken) are not here: they belong to
//! `portico_proto::admin::apply`, which every replica runs identically.

use std::collections::BTreeMap;

use portico_proto::admin::{HTTP_METHODS, PatchOperation};
use portico_proto::model::{
    ContentHandling, Deployment, INTEGRATION_TIMEOUT_MS_MAX, INTEGRATION_TIMEOUT_MS_MIN,
    Integration, IntegrationResponse, IntegrationType, Method, MethodResponse, MethodSetting,
    PassthroughBehavior, Resource, RestApi, Stage, StringMap, TlsConfig,
};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Renderers

fn put_opt(out: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        out.insert(key.to_string(), Value::String(value.clone()));
    }
}

fn put_string_map(out: &mut Map<String, Value>, key: &str, map: &StringMap) {
    if !map.is_empty() {
        out.insert(key.to_string(), json!(map));
    }
}

fn put_bool_map(out: &mut Map<String, Value>, key: &str, map: &BTreeMap<String, bool>) {
    if !map.is_empty() {
        out.insert(key.to_string(), json!(map));
    }
}

fn put_list(out: &mut Map<String, Value>, key: &str, list: &[String]) {
    if !list.is_empty() {
        out.insert(key.to_string(), json!(list));
    }
}

/// A REST API as CreateRestApi and GetRestApis render it: `tags` only when there are some.
pub fn render_rest_api(api: &RestApi) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(api.id));
    out.insert("name".into(), json!(api.name));
    put_opt(&mut out, "description", &api.description);
    out.insert("createdDate".into(), json!(api.created_date));
    put_opt(&mut out, "version", &api.version);
    put_list(&mut out, "warnings", &api.warnings);
    put_list(&mut out, "binaryMediaTypes", &api.binary_media_types);
    if let Some(size) = api.minimum_compression_size {
        out.insert("minimumCompressionSize".into(), json!(size));
    }
    let api_key_source = match api.api_key_source {
        portico_proto::model::ApiKeySource::Header => "HEADER",
        portico_proto::model::ApiKeySource::Authorizer => "AUTHORIZER",
    };
    out.insert("apiKeySource".into(), json!(api_key_source));
    let endpoint = &api.endpoint_configuration;
    let mut endpoint_out = Map::new();
    endpoint_out.insert("types".into(), json!(endpoint.types));
    put_opt(
        &mut endpoint_out,
        "ipAddressType",
        &endpoint.ip_address_type,
    );
    put_list(
        &mut endpoint_out,
        "vpcEndpointIds",
        &endpoint.vpc_endpoint_ids,
    );
    out.insert("endpointConfiguration".into(), Value::Object(endpoint_out));
    put_opt(&mut out, "policy", &api.policy);
    put_string_map(&mut out, "tags", &api.tags);
    out.insert(
        "disableExecuteApiEndpoint".into(),
        json!(api.disable_execute_api_endpoint),
    );
    out.insert("rootResourceId".into(), json!(api.root_resource_id));
    Value::Object(out)
}

/// A REST API as GetRestApi, UpdateRestApi and PutRestApi render it: AWS includes `tags`
/// there even when empty (recorded: LS api `test_update_rest_api_operation_add_remove`).
pub fn render_rest_api_with_tags(api: &RestApi) -> Value {
    let mut out = render_rest_api(api);
    if let Value::Object(map) = &mut out {
        map.entry("tags").or_insert_with(|| json!({}));
    }
    out
}

/// A resource. Without `embed_methods` AWS lists each method as an empty object
/// (`"resourceMethods": {"GET": {}}`); with `embed=methods` each is rendered in full.
pub fn render_resource(resource: &Resource, embed_methods: bool) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(resource.id));
    put_opt(&mut out, "parentId", &resource.parent_id);
    put_opt(&mut out, "pathPart", &resource.path_part);
    out.insert("path".into(), json!(resource.path));
    if !resource.resource_methods.is_empty() {
        let methods: Map<String, Value> = resource
            .resource_methods
            .iter()
            .map(|(verb, method)| {
                let rendered = if embed_methods {
                    render_method(method)
                } else {
                    json!({})
                };
                (verb.clone(), rendered)
            })
            .collect();
        out.insert("resourceMethods".into(), Value::Object(methods));
    }
    Value::Object(out)
}

pub fn render_method(method: &Method) -> Value {
    let mut out = Map::new();
    out.insert("httpMethod".into(), json!(method.http_method));
    out.insert("authorizationType".into(), json!(method.authorization_type));
    put_opt(&mut out, "authorizerId", &method.authorizer_id);
    out.insert("apiKeyRequired".into(), json!(method.api_key_required));
    put_opt(&mut out, "requestValidatorId", &method.request_validator_id);
    put_opt(&mut out, "operationName", &method.operation_name);
    put_bool_map(&mut out, "requestParameters", &method.request_parameters);
    put_string_map(&mut out, "requestModels", &method.request_models);
    if !method.method_responses.is_empty() {
        let responses: Map<String, Value> = method
            .method_responses
            .iter()
            .map(|(status, response)| (status.clone(), render_method_response(response)))
            .collect();
        out.insert("methodResponses".into(), Value::Object(responses));
    }
    if let Some(integration) = &method.method_integration {
        out.insert("methodIntegration".into(), render_integration(integration));
    }
    put_list(
        &mut out,
        "authorizationScopes",
        &method.authorization_scopes,
    );
    Value::Object(out)
}

pub fn render_integration(integration: &Integration) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(integration.integration_type.as_str()));
    put_opt(&mut out, "httpMethod", &integration.http_method);
    put_opt(&mut out, "uri", &integration.uri);
    put_opt(&mut out, "connectionType", &integration.connection_type);
    put_opt(&mut out, "connectionId", &integration.connection_id);
    put_opt(&mut out, "credentials", &integration.credentials);
    put_string_map(
        &mut out,
        "requestParameters",
        &integration.request_parameters,
    );
    put_string_map(&mut out, "requestTemplates", &integration.request_templates);
    out.insert(
        "passthroughBehavior".into(),
        json!(integration.passthrough_behavior.as_str()),
    );
    if let Some(handling) = integration.content_handling {
        out.insert("contentHandling".into(), json!(handling.as_str()));
    }
    out.insert(
        "timeoutInMillis".into(),
        json!(integration.timeout_in_millis),
    );
    put_opt(&mut out, "cacheNamespace", &integration.cache_namespace);
    out.insert(
        "cacheKeyParameters".into(),
        json!(integration.cache_key_parameters),
    );
    if !integration.integration_responses.is_empty() {
        let responses: Map<String, Value> = integration
            .integration_responses
            .iter()
            .map(|(status, response)| (status.clone(), render_integration_response(response)))
            .collect();
        out.insert("integrationResponses".into(), Value::Object(responses));
    }
    if let Some(tls) = &integration.tls_config {
        out.insert(
            "tlsConfig".into(),
            json!({"insecureSkipVerification": tls.insecure_skip_verification}),
        );
    }
    Value::Object(out)
}

pub fn render_method_response(response: &MethodResponse) -> Value {
    let mut out = Map::new();
    out.insert("statusCode".into(), json!(response.status_code));
    put_bool_map(
        &mut out,
        "responseParameters",
        &response.response_parameters,
    );
    put_string_map(&mut out, "responseModels", &response.response_models);
    Value::Object(out)
}

/// An empty mapping template is rendered as `null`, as AWS does (recorded: LS api
/// `test_put_integration_response_templates` `put-integration-response-template-empty`).
pub fn render_integration_response(response: &IntegrationResponse) -> Value {
    let mut out = Map::new();
    out.insert("statusCode".into(), json!(response.status_code));
    put_opt(&mut out, "selectionPattern", &response.selection_pattern);
    put_string_map(
        &mut out,
        "responseParameters",
        &response.response_parameters,
    );
    if !response.response_templates.is_empty() {
        let templates: Map<String, Value> = response
            .response_templates
            .iter()
            .map(|(content_type, template)| {
                let value = if template.is_empty() {
                    Value::Null
                } else {
                    json!(template)
                };
                (content_type.clone(), value)
            })
            .collect();
        out.insert("responseTemplates".into(), Value::Object(templates));
    }
    if let Some(handling) = response.content_handling {
        out.insert("contentHandling".into(), json!(handling.as_str()));
    }
    Value::Object(out)
}

pub fn render_deployment(deployment: &Deployment) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(deployment.id));
    put_opt(&mut out, "description", &deployment.description);
    out.insert("createdDate".into(), json!(deployment.created_date));
    Value::Object(out)
}

pub fn render_method_setting(setting: &MethodSetting) -> Value {
    let mut out = Map::new();
    out.insert("metricsEnabled".into(), json!(setting.metrics_enabled));
    put_opt(&mut out, "loggingLevel", &setting.logging_level);
    out.insert("dataTraceEnabled".into(), json!(setting.data_trace_enabled));
    out.insert(
        "throttlingBurstLimit".into(),
        json!(setting.throttling_burst_limit),
    );
    out.insert(
        "throttlingRateLimit".into(),
        json!(setting.throttling_rate_limit),
    );
    out.insert("cachingEnabled".into(), json!(setting.caching_enabled));
    out.insert(
        "cacheTtlInSeconds".into(),
        json!(setting.cache_ttl_in_seconds),
    );
    out.insert(
        "cacheDataEncrypted".into(),
        json!(setting.cache_data_encrypted),
    );
    out.insert(
        "requireAuthorizationForCacheControl".into(),
        json!(setting.require_authorization_for_cache_control),
    );
    out.insert(
        "unauthorizedCacheControlHeaderStrategy".into(),
        json!(setting.unauthorized_cache_control_header_strategy),
    );
    Value::Object(out)
}

/// A stage. Portico has no cache cluster to provision, so the status is `AVAILABLE` when the
/// cache is enabled and AWS's `NOT_AVAILABLE` otherwise.
pub fn render_stage(stage: &Stage) -> Value {
    let mut out = Map::new();
    out.insert("stageName".into(), json!(stage.stage_name));
    out.insert("deploymentId".into(), json!(stage.deployment_id));
    put_opt(&mut out, "description", &stage.description);
    out.insert(
        "cacheClusterEnabled".into(),
        json!(stage.cache_cluster_enabled),
    );
    put_opt(&mut out, "cacheClusterSize", &stage.cache_cluster_size);
    let status = if stage.cache_cluster_enabled {
        "AVAILABLE"
    } else {
        "NOT_AVAILABLE"
    };
    out.insert("cacheClusterStatus".into(), json!(status));
    let settings: Map<String, Value> = stage
        .method_settings
        .iter()
        .map(|(key, setting)| (key.clone(), render_method_setting(setting)))
        .collect();
    out.insert("methodSettings".into(), Value::Object(settings));
    put_string_map(&mut out, "variables", &stage.variables);
    out.insert("tracingEnabled".into(), json!(stage.tracing_enabled));
    if let Some(canary) = &stage.canary_settings {
        let mut canary_out = Map::new();
        canary_out.insert("percentTraffic".into(), json!(canary.percent_traffic));
        put_opt(&mut canary_out, "deploymentId", &canary.deployment_id);
        put_string_map(
            &mut canary_out,
            "stageVariableOverrides",
            &canary.stage_variable_overrides,
        );
        canary_out.insert("useStageCache".into(), json!(canary.use_stage_cache));
        out.insert("canarySettings".into(), Value::Object(canary_out));
    }
    put_string_map(&mut out, "tags", &stage.tags);
    out.insert("createdDate".into(), json!(stage.created_date));
    out.insert("lastUpdatedDate".into(), json!(stage.last_updated_date));
    Value::Object(out)
}

/// A paginated list: AWS puts the items under `item` (botocore renames it `items`).
pub fn render_list(items: Vec<Value>, position: Option<String>) -> Value {
    let mut out = Map::new();
    if let Some(position) = position {
        out.insert("position".into(), json!(position));
    }
    out.insert("item".into(), Value::Array(items));
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Parsers

type Object = Map<String, Value>;

/// The body as an object; an absent body (`null`) is an empty one.
fn object<'v>(body: &'v Value, empty: &'v Object) -> Result<&'v Object, String> {
    match body {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(empty),
        _ => Err("Invalid request body: expected a JSON object".to_string()),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Number(_) => "com.amazon.coral.value.json.numbers.TruncatingBigNumber",
        Value::String(_) => "java.lang.String",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.LinkedHashMap",
    }
}

/// AWS's (Coral's) text for a member of the wrong JSON type.
fn wrong_type(value: &Value, wanted: &str) -> String {
    format!(
        "class {} can not be converted to an {wanted}",
        type_name(value)
    )
}

fn opt_string(map: &Object, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(wrong_type(other, "String")),
    }
}

fn opt_bool(map: &Object, key: &str) -> Result<Option<bool>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(wrong_type(other, "Boolean")),
    }
}

fn opt_i64(map: &Object, key: &str) -> Result<Option<i64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("Invalid integer value for {key}: {number}")),
        Some(other) => Err(wrong_type(other, "Integer")),
    }
}

fn string_list(map: &Object, key: &str) -> Result<Vec<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(wrong_type(other, "String")),
            })
            .collect(),
        Some(other) => Err(wrong_type(other, "List")),
    }
}

/// A string map; with `null_is_empty`, a `null` value becomes `""` (empty mapping templates).
fn string_map(map: &Object, key: &str, null_is_empty: bool) -> Result<StringMap, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(StringMap::new()),
        Some(Value::Object(entries)) => entries
            .iter()
            .map(|(name, value)| match value {
                Value::String(text) => Ok((name.clone(), text.clone())),
                Value::Null if null_is_empty => Ok((name.clone(), String::new())),
                other => Err(wrong_type(other, "String")),
            })
            .collect(),
        Some(other) => Err(wrong_type(other, "Map")),
    }
}

fn bool_map(map: &Object, key: &str) -> Result<BTreeMap<String, bool>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(entries)) => entries
            .iter()
            .map(|(name, value)| match value {
                Value::Bool(flag) => Ok((name.clone(), *flag)),
                other => Err(wrong_type(other, "Boolean")),
            })
            .collect(),
        Some(other) => Err(wrong_type(other, "Map")),
    }
}

fn enum_error(value: &str, at: &str, allowed: &str) -> String {
    format!(
        "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: Member must satisfy enum value set: [{allowed}]"
    )
}

fn not_null_error(at: &str) -> String {
    format!(
        "1 validation error detected: Value null at '{at}' failed to satisfy constraint: Member must not be null"
    )
}

fn http_method(verb: &str) -> Result<String, String> {
    let upper = verb.to_ascii_uppercase();
    if HTTP_METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(
            "Invalid HttpMethod specified. Valid options are GET,PUT,POST,DELETE,PATCH,OPTIONS,HEAD,ANY"
                .to_string(),
        )
    }
}

fn content_handling(map: &Object, at: &str) -> Result<Option<ContentHandling>, String> {
    match opt_string(map, "contentHandling")? {
        None => Ok(None),
        Some(text) => match text.as_str() {
            "CONVERT_TO_BINARY" => Ok(Some(ContentHandling::ConvertToBinary)),
            "CONVERT_TO_TEXT" => Ok(Some(ContentHandling::ConvertToText)),
            _ => Err(enum_error(&text, at, "CONVERT_TO_BINARY, CONVERT_TO_TEXT")),
        },
    }
}

fn status_code(status: &str) -> Result<(), String> {
    let bytes = status.as_bytes();
    if bytes.len() == 3
        && (b'1'..=b'5').contains(&bytes[0])
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit()
    {
        Ok(())
    } else {
        Err(format!(
            "1 validation error detected: Value '{status}' at 'statusCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [1-5]\\d\\d"
        ))
    }
}

/// PutMethod's body (`authorizationType` is required, as in botocore's model).
pub fn parse_put_method(http_method_in_path: &str, body: &Value) -> Result<Method, String> {
    let empty = Object::new();
    let map = object(body, &empty)?;
    let verb = http_method(http_method_in_path)?;
    let authorization_type = opt_string(map, "authorizationType")?
        .ok_or_else(|| not_null_error("putMethodInput.authorizationType"))?;
    let mut method = Method::new(verb);
    method.authorization_type = authorization_type;
    method.authorizer_id = opt_string(map, "authorizerId")?;
    method.api_key_required = opt_bool(map, "apiKeyRequired")?.unwrap_or(false);
    method.operation_name = opt_string(map, "operationName")?;
    method.request_parameters = bool_map(map, "requestParameters")?;
    method.request_models = string_map(map, "requestModels", false)?;
    method.request_validator_id = opt_string(map, "requestValidatorId")?;
    method.authorization_scopes = string_list(map, "authorizationScopes")?;
    Ok(method)
}

/// PutIntegration's body. The integration's own verb arrives as `httpMethod` (boto3's
/// `integrationHttpMethod`). `cacheNamespace` stays unset when absent: applying the op fills
/// in the resource id, as AWS does.
pub fn parse_put_integration(body: &Value) -> Result<Integration, String> {
    let empty = Object::new();
    let map = object(body, &empty)?;
    let type_text =
        opt_string(map, "type")?.ok_or_else(|| not_null_error("putIntegrationInput.type"))?;
    // Case-sensitive, and listed in AWS's order (recorded: LS api
    // `test_put_integration_wrong_type`).
    let integration_type = match type_text.as_str() {
        "HTTP" => IntegrationType::Http,
        "HTTP_PROXY" => IntegrationType::HttpProxy,
        "AWS" => IntegrationType::Aws,
        "AWS_PROXY" => IntegrationType::AwsProxy,
        "MOCK" => IntegrationType::Mock,
        _ => {
            return Err(enum_error(
                &type_text,
                "putIntegrationInput.type",
                "HTTP, MOCK, AWS_PROXY, HTTP_PROXY, AWS",
            ));
        }
    };
    let mut integration = Integration::new(integration_type);
    integration.http_method = match opt_string(map, "httpMethod")? {
        None => None,
        Some(verb) if verb.is_empty() => None,
        Some(verb) => Some(http_method(&verb)?),
    };
    integration.uri = opt_string(map, "uri")?;
    integration.connection_type = match opt_string(map, "connectionType")? {
        Some(kind) if kind == "INTERNET" || kind == "VPC_LINK" => Some(kind),
        Some(kind) => {
            return Err(enum_error(
                &kind,
                "putIntegrationInput.connectionType",
                "INTERNET, VPC_LINK",
            ));
        }
        // AWS reports INTERNET for HTTP integrations only (recorded: LS integrations
        // `put-integration-get` versus lambda `put-integration`).
        None if matches!(
            integration_type,
            IntegrationType::Http | IntegrationType::HttpProxy
        ) =>
        {
            Some("INTERNET".to_string())
        }
        None => None,
    };
    integration.connection_id = opt_string(map, "connectionId")?;
    integration.credentials = opt_string(map, "credentials")?;
    integration.request_parameters = string_map(map, "requestParameters", false)?;
    integration.request_templates = string_map(map, "requestTemplates", true)?;
    if let Some(text) = opt_string(map, "passthroughBehavior")? {
        integration.passthrough_behavior = match text.as_str() {
            "WHEN_NO_MATCH" => PassthroughBehavior::WhenNoMatch,
            "WHEN_NO_TEMPLATES" => PassthroughBehavior::WhenNoTemplates,
            "NEVER" => PassthroughBehavior::Never,
            _ => {
                return Err(enum_error(
                    &text,
                    "putIntegrationInput.passthroughBehavior",
                    "WHEN_NO_MATCH, WHEN_NO_TEMPLATES, NEVER",
                ));
            }
        };
    }
    integration.content_handling = content_handling(map, "putIntegrationInput.contentHandling")?;
    if let Some(timeout) = opt_i64(map, "timeoutInMillis")? {
        let range = i64::from(INTEGRATION_TIMEOUT_MS_MIN)..=i64::from(INTEGRATION_TIMEOUT_MS_MAX);
        if !range.contains(&timeout) {
            return Err(format!(
                "Timeout should be between {INTEGRATION_TIMEOUT_MS_MIN} ms and {INTEGRATION_TIMEOUT_MS_MAX} ms"
            ));
        }
        integration.timeout_in_millis = timeout as u32;
    }
    integration.cache_namespace = opt_string(map, "cacheNamespace")?;
    integration.cache_key_parameters = string_list(map, "cacheKeyParameters")?;
    integration.tls_config = match map.get("tlsConfig") {
        None | Some(Value::Null) => None,
        Some(Value::Object(tls)) => Some(TlsConfig {
            insecure_skip_verification: opt_bool(tls, "insecureSkipVerification")?.unwrap_or(false),
        }),
        Some(other) => return Err(wrong_type(other, "TlsConfig")),
    };
    Ok(integration)
}

/// PutMethodResponse's body; the status code comes from the path.
pub fn parse_method_response(status: &str, body: &Value) -> Result<MethodResponse, String> {
    let empty = Object::new();
    let map = object(body, &empty)?;
    status_code(status)?;
    Ok(MethodResponse {
        status_code: status.to_string(),
        response_parameters: bool_map(map, "responseParameters")?,
        response_models: string_map(map, "responseModels", false)?,
    })
}

/// PutIntegrationResponse's body; the status code comes from the path. A `null` template is
/// kept as an empty one (AWS renders both as `null`).
pub fn parse_integration_response(
    status: &str,
    body: &Value,
) -> Result<IntegrationResponse, String> {
    let empty = Object::new();
    let map = object(body, &empty)?;
    status_code(status)?;
    Ok(IntegrationResponse {
        status_code: status.to_string(),
        selection_pattern: opt_string(map, "selectionPattern")?,
        response_parameters: string_map(map, "responseParameters", false)?,
        response_templates: string_map(map, "responseTemplates", true)?,
        content_handling: content_handling(map, "putIntegrationResponseInput.contentHandling")?,
    })
}

/// `{"patchOperations": [...]}` with op errors located as `patchOperations.N.member.op`.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOperation>, String> {
    parse_patch_for("", body)
}

/// Like [`parse_patch`], naming the operation's input in errors the way AWS does
/// (`input` = `"updateStageInput"` gives `updateStageInput.patchOperations.1.member.op`).
/// All bad ops are reported at once, as AWS does.
pub fn parse_patch_for(input: &str, body: &Value) -> Result<Vec<PatchOperation>, String> {
    parse_patch_checking(input, body, None)
}

/// As [`parse_patch_for`] for an operation whose path carries a status code: AWS reports an
/// invalid code after the patch's own violations, in one message (recorded, LS api
/// `test_update_method_response_negative_tests`).
pub fn parse_patch_with_status(
    input: &str,
    body: &Value,
    status_code: &str,
) -> Result<Vec<PatchOperation>, String> {
    let bytes = status_code.as_bytes();
    let valid = bytes.len() == 3
        && (b'1'..=b'5').contains(&bytes[0])
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit();
    let violation = (!valid).then(|| {
        format!(
            "Value '{status_code}' at 'statusCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [1-5]\\d\\d"
        )
    });
    parse_patch_checking(input, body, violation)
}

fn parse_patch_checking(
    input: &str,
    body: &Value,
    extra_violation: Option<String>,
) -> Result<Vec<PatchOperation>, String> {
    let empty = Object::new();
    let map = object(body, &empty)?;
    let none = Vec::new();
    let items = match map.get("patchOperations") {
        None | Some(Value::Null) => &none,
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type(other, "List")),
    };
    let prefix = if input.is_empty() {
        String::new()
    } else {
        format!("{input}.")
    };
    let mut operations = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Object(entry) = item else {
            return Err(wrong_type(item, "PatchOperation"));
        };
        let op = opt_string(entry, "op")?.unwrap_or_default();
        if !["add", "remove", "replace", "move", "copy", "test"].contains(&op.as_str()) {
            errors.push(format!(
                "Value '{op}' at '{prefix}patchOperations.{}.member.op' failed to satisfy constraint: Member must satisfy enum value set: [add, remove, move, test, replace, copy]",
                index + 1
            ));
        }
        // Values are strings in the AWS API; scalars sent by hand-written clients are
        // accepted in their JSON spelling.
        let value = match entry.get("value") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(scalar @ (Value::Bool(_) | Value::Number(_))) => Some(scalar.to_string()),
            Some(other) => return Err(wrong_type(other, "String")),
        };
        operations.push(PatchOperation {
            op,
            path: opt_string(entry, "path")?.unwrap_or_default(),
            value,
            from: opt_string(entry, "from")?,
        });
    }
    errors.extend(extra_violation);
    if !errors.is_empty() {
        let count = errors.len();
        let noun = if count == 1 { "error" } else { "errors" };
        return Err(format!(
            "{count} validation {noun} detected: {}",
            errors.join("; ")
        ));
    }
    Ok(operations)
}

/// CreateStage's body. `now` becomes both `createdDate` and `lastUpdatedDate`.
pub fn parse_stage_create(body: &Value, now: i64) -> Result<Stage, String> {
    let empty = Object::new();
    let map = object(body, &empty)?;
    let stage_name = opt_string(map, "stageName")?
        .ok_or_else(|| not_null_error("createStageInput.stageName"))?;
    let deployment_id = opt_string(map, "deploymentId")?
        .ok_or_else(|| not_null_error("createStageInput.deploymentId"))?;
    let mut stage = Stage::new(stage_name, deployment_id, now);
    stage.description = opt_string(map, "description")?.filter(|text| !text.is_empty());
    stage.variables = string_map(map, "variables", false)?;
    stage.cache_cluster_enabled = opt_bool(map, "cacheClusterEnabled")?.unwrap_or(false);
    stage.cache_cluster_size = opt_string(map, "cacheClusterSize")?;
    if let Some(size) = &stage.cache_cluster_size
        && !portico_proto::admin::CACHE_CLUSTER_SIZES.contains(&size.as_str())
    {
        return Err(enum_error(
            size,
            "createStageInput.cacheClusterSize",
            "0.5, 1.6, 6.1, 13.5, 28.4, 58.2, 118, 237",
        ));
    }
    stage.tracing_enabled = opt_bool(map, "tracingEnabled")?.unwrap_or(false);
    stage.tags = string_map(map, "tags", false)?;
    Ok(stage)
}

#[cfg(test)]
mod tests;
