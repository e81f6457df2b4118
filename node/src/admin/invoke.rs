//! TestInvokeMethod: run one method of an API's *working* definition (not a deployment), as
//! the console's "Test" button does, through the same routing and integration code the edges
//! run, and report status, headers, body, latency and an execution log.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use portico_proto::{ApiDefinition, Resource, Stage};
use serde_json::{Map, Value, json};

use super::http::ApiError;
use crate::body;
use crate::config::compile::{self, CompiledApi, Snapshot};
use crate::integrate::{self, Integrations};
use crate::request::RequestView;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        error_type: "BadRequestException",
        message: message.into(),
    }
}

/// Runs the request described by `input` (TestInvokeMethod's JSON body) against `resource`'s
/// `verb` method of `definition`, with `stage`'s variables.
pub async fn test_invoke(
    integrations: &Integrations,
    definition: &ApiDefinition,
    resource: &Resource,
    stage: &Stage,
    verb: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let started = Instant::now();
    let received_at = SystemTime::now();
    let api_id: Arc<str> = Arc::from(definition.api.id.as_str());
    let compiled = compile::compile_stage(&api_id, stage, definition)
        .map_err(|error| bad(error.to_string()))?;
    let mut stages = std::collections::HashMap::new();
    stages.insert(stage.stage_name.clone(), Arc::new(compiled));
    let api = Arc::new(CompiledApi {
        id: api_id.clone(),
        name: definition.api.name.clone(),
        stages,
    });
    let snapshot = Snapshot {
        version: 0,
        apis: std::collections::HashMap::new(),
        default_api: Some(api),
    };

    let path_with_query = input
        .get("pathWithQueryString")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| resource.path.clone());
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (path_with_query.clone(), None),
    };
    if !path.starts_with('/') {
        return Err(bad("pathWithQueryString must start with /"));
    }
    let full_path = format!("/{}{path}", stage.stage_name);
    let routed = crate::route::resolve(&snapshot, None, &full_path, &verb.to_ascii_uppercase())
        .map_err(|_| {
            bad(format!(
                "{path_with_query} does not reach a method {verb} of this API"
            ))
        })?;
    if *routed.method.resource_id != *resource.id {
        return Err(bad(format!(
            "{path_with_query} reaches resource {}, not {}",
            routed.method.resource_path, resource.path
        )));
    }

    let parts = request_parts(
        &verb.to_ascii_uppercase(),
        &full_path,
        query.as_deref(),
        input,
    )?;
    let request_body = input
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();

    let ids = crate::ids::RequestIds::new(crate::time::epoch_seconds(received_at));
    let request_id = ids.request_id();
    let view = RequestView {
        request_id,
        extended_request_id: ids.extended(),
        trace_id: ids.trace(),
        trace_header: &ids.trace,
        routed: &routed,
        parts: &parts,
        path: &full_path,
        query: query.as_deref(),
        host: None,
        source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        local_port: 0,
        secure: true,
        received_at,
        auth: None,
    };
    let mut log = vec![
        format!("Execution log for request {request_id}"),
        format!(
            "{}: Starting execution for request: {request_id}",
            crate::time::clf_timestamp(received_at)
        ),
        format!("Method request path: {path}"),
        format!(
            "Method request query string: {}",
            query.as_deref().unwrap_or("")
        ),
        format!("Method request headers: {:?}", header_names(&parts.headers)),
        format!("Method request body before transformations: {request_body}"),
    ];
    let response = match integrate::invoke(integrations, &view, body::full(request_body)).await {
        Ok(response) => response,
        Err(failure) => {
            log.push(format!(
                "Execution failed: {} ({})",
                failure.error.kind(),
                failure.detail
            ));
            failure.error.into_response()
        }
    };
    let (response_parts, response_body) = response.into_parts();
    let bytes = response_body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let latency = started.elapsed().as_millis() as u64;
    log.push(format!(
        "Method completed with status: {}",
        response_parts.status.as_u16()
    ));
    log.push(format!("Latency: {latency} ms"));

    let mut headers = Map::new();
    let mut multi = Map::new();
    for (name, value) in &response_parts.headers {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(name.to_string(), Value::String(text.clone()));
        multi
            .entry(name.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(Value::Array(list)) = multi.get_mut(name.as_str()) {
            list.push(Value::String(text));
        }
    }
    Ok(json!({
        "status": response_parts.status.as_u16(),
        "body": String::from_utf8_lossy(&bytes),
        "headers": headers,
        "multiValueHeaders": multi,
        "log": log.join("\n") + "\n",
        "latency": latency,
    }))
}

fn header_names(headers: &HeaderMap) -> Vec<&str> {
    headers.keys().map(|name| name.as_str()).collect()
}

/// TestInvokeAuthorizer: runs `authorizer_id` of the API's *working* definition for the
/// simulated request in `input` (TestInvokeAuthorizer's JSON body: `headers`,
/// `multiValueHeaders`, `pathWithQueryString`, `body`, `stageVariables`), with the data
/// plane's own code (`authorize::lambda::test_invoke`: identity checks, the real function call,
/// the answer parsed), bypassing the decision cache. The request is routed on a scratch copy
/// of the API whose only methods are `ANY /` and `ANY /{proxy+}`, so any path reaches the
/// authorizer whatever methods the API has; the verb is GET.
pub async fn test_invoke_authorizer(
    integrations: &Integrations,
    definition: &ApiDefinition,
    authorizer: &portico_proto::Authorizer,
    stage: &Stage,
    input: &Value,
    cognito: Option<&crate::authorize::cognito::CognitoVerifier>,
) -> Result<Value, ApiError> {
    use crate::config::auth::{AuthorizerKind, compile_authorizer};
    let compiled_authorizer = compile_authorizer(authorizer).map_err(bad)?;
    if matches!(compiled_authorizer.kind, AuthorizerKind::CognitoUserPools) {
        return test_invoke_cognito(&compiled_authorizer, stage, input, cognito).await;
    }
    // The scratch API: the authorizers, and a catch-all MOCK method so any path routes.
    let mut scratch = ApiDefinition {
        api: definition.api.clone(),
        resources: Vec::new(),
        authorizers: definition.authorizers.clone(),
        models: Vec::new(),
        request_validators: Vec::new(),
        gateway_responses: Vec::new(),
    };
    let catch_all = || {
        let mut method = portico_proto::Method::new("ANY");
        method.method_integration = Some(portico_proto::Integration::new(
            portico_proto::IntegrationType::Mock,
        ));
        std::collections::BTreeMap::from([("ANY".to_string(), method)])
    };
    let root_id = definition.api.root_resource_id.clone();
    scratch.resources.push(Resource {
        id: root_id.clone(),
        parent_id: None,
        path_part: None,
        path: "/".into(),
        resource_methods: catch_all(),
    });
    scratch.resources.push(Resource {
        id: "test-invoke-proxy".into(),
        parent_id: Some(root_id),
        path_part: Some("{proxy+}".into()),
        path: "/{proxy+}".into(),
        resource_methods: catch_all(),
    });
    let api_id: Arc<str> = Arc::from(definition.api.id.as_str());
    let compiled =
        compile::compile_stage(&api_id, stage, &scratch).map_err(|error| bad(error.to_string()))?;
    let mut stages = std::collections::HashMap::new();
    stages.insert(stage.stage_name.clone(), Arc::new(compiled));
    let snapshot = Snapshot {
        version: 0,
        apis: std::collections::HashMap::new(),
        default_api: Some(Arc::new(CompiledApi {
            id: api_id,
            name: definition.api.name.clone(),
            stages,
        })),
    };
    let path_with_query = input
        .get("pathWithQueryString")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (path_with_query.clone(), None),
    };
    if !path.starts_with('/') {
        return Err(bad("pathWithQueryString must start with /"));
    }
    let full_path = format!("/{}{path}", stage.stage_name);
    let routed = crate::route::resolve(&snapshot, None, &full_path, "GET")
        .map_err(|_| bad(format!("{path_with_query} is not a valid request path")))?;
    let parts = request_parts("GET", &full_path, query.as_deref(), input)?;
    let received_at = SystemTime::now();
    let ids = crate::ids::RequestIds::new(crate::time::epoch_seconds(received_at));
    let request_id = ids.request_id();
    let view = RequestView {
        request_id,
        extended_request_id: ids.extended(),
        trace_id: ids.trace(),
        trace_header: &ids.trace,
        routed: &routed,
        parts: &parts,
        path: &full_path,
        query: query.as_deref(),
        host: None,
        source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        local_port: 0,
        secure: true,
        received_at,
        auth: None,
    };
    let method_arn = crate::authorize::method_arn(integrations, &view);
    let outcome = crate::authorize::lambda::test_invoke(
        integrations,
        &compiled_authorizer,
        &view,
        &method_arn,
    )
    .await;
    let mut out = Map::new();
    out.insert("clientStatus".into(), json!(outcome.client_status));
    let mut log = vec![format!("Execution log for request {request_id}")];
    log.extend(outcome.log);
    out.insert("log".into(), json!(log.join("\n") + "\n"));
    out.insert("latency".into(), json!(outcome.latency_ms));
    if let Some(principal) = outcome.principal_id {
        out.insert("principalId".into(), json!(principal));
    }
    if let Some(policy) = outcome.policy {
        out.insert("policy".into(), json!(policy));
    }
    Ok(Value::Object(out))
}

/// TestInvokeAuthorizer for a Cognito user pool authorizer: the token of the input's identity
/// header verified as a request would be (the pool's JWKS, expiry, issuer), its claims shown.
async fn test_invoke_cognito(
    authorizer: &crate::config::auth::CompiledAuthorizer,
    stage: &Stage,
    input: &Value,
    cognito: Option<&crate::authorize::cognito::CognitoVerifier>,
) -> Result<Value, ApiError> {
    let Some(cognito) = cognito else {
        return Err(bad(
            "this node has no Cognito user pool verifier to test the authorizer with",
        ));
    };
    let header = match authorizer.identity.first() {
        Some(crate::config::auth::IdentitySource::Header(name)) => name.as_str(),
        _ => "",
    };
    let token = input
        .get("headers")
        .and_then(Value::as_object)
        .and_then(|headers| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(header))
        })
        .and_then(|(_, value)| value.as_str())
        .unwrap_or("");
    let arns: Vec<String> = authorizer
        .provider_arns
        .iter()
        .map(|arn| crate::authorize::cognito::with_stage_variables(arn, &stage.variables))
        .collect();
    let received_at = SystemTime::now();
    let started = Instant::now();
    let now = u64::try_from(crate::time::epoch_seconds(received_at)).unwrap_or(0);
    let outcome = cognito.verify(token, &arns, &[], now).await;
    let (request_id, _, _) = crate::ids::request_ids(crate::time::epoch_seconds(received_at));
    let mut out = Map::new();
    let mut log = vec![
        format!("Execution log for request {request_id}"),
        format!(
            "Starting authorizer: {} for request: {request_id}",
            authorizer.id
        ),
    ];
    match outcome {
        Ok(identity) => {
            out.insert("clientStatus".into(), json!(200));
            out.insert("principalId".into(), json!(identity.principal_id));
            out.insert("claims".into(), Value::Object((*identity.claims).clone()));
            log.push("The token verified against the user pool's keys".to_string());
        }
        Err(rejection) => {
            out.insert("clientStatus".into(), json!(rejection.status().as_u16()));
            log.push(format!(
                "Unauthorized request: {}",
                rejection
                    .message()
                    .unwrap_or("the authorizer could not decide")
            ));
        }
    }
    out.insert("log".into(), json!(log.join("\n") + "\n"));
    out.insert(
        "latency".into(),
        json!(started.elapsed().as_millis() as u64),
    );
    Ok(Value::Object(out))
}

/// The request a test invocation describes: `headers` and `multiValueHeaders` of the input on
/// `verb` and the stage-prefixed path with its query.
fn request_parts(
    verb: &str,
    full_path: &str,
    query: Option<&str>,
    input: &Value,
) -> Result<::http::request::Parts, ApiError> {
    let mut builder = Request::builder().method(verb).uri(match query {
        Some(query) => format!("{full_path}?{query}"),
        None => full_path.to_string(),
    });
    if let Some(Value::Object(headers)) = input.get("headers") {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                builder = builder.header(name.as_str(), value);
            }
        }
    }
    if let Some(Value::Object(headers)) = input.get("multiValueHeaders") {
        for (name, values) in headers {
            for value in values
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                builder = builder.header(name.as_str(), value);
            }
        }
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|error| bad(format!("invalid request: {error}")))?
        .into_parts();
    Ok(parts)
}
