//! AWS_PROXY: the Lambda proxy integration, payload format 1.0.
//!
//! The request becomes the proxy event, POSTed to the Lambda Invoke API
//! (`{endpoint}/2015-03-31/functions/{name}/invocations`), which Lambda's runtime interface
//! emulator, SAM local and LocalStack serve. The function's reply becomes the response. The
//! event and the reply rules follow what was recorded from real API Gateway (AWS-FACTS.md §3):
//! absent parts are `null`, not `{}`; the last repeated query value wins in the single-value
//! map; path parameters are not decoded; a malformed reply or a function error is a 502.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use serde::Serialize;
use serde::ser::SerializeMap;

use super::{Integrations, params};
use crate::body::{self, Body};
use crate::config::compile::{LambdaIntegration, TemplatePart};
use crate::request::{Authorized, Failure, RequestView};
use crate::respond::GatewayError;

/// Lambda's synchronous response payload limit is 6 MB; anything past a margin is an error.
const MAX_FUNCTION_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A JSON object that keeps insertion order (header and query maps in request order).
struct OrderedMap<'a, V>(&'a [(String, V)]);

impl<V: Serialize> Serialize for OrderedMap<'_, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Repeated names grouped in first-seen order, as the event's single-value map (the last value
/// wins, as API Gateway does) and multi-value map (every value, in order).
#[derive(Default)]
struct Grouped {
    last: Vec<(String, String)>,
    all: Vec<(String, Vec<String>)>,
}

impl Grouped {
    fn push(&mut self, name: String, value: String) {
        match self.all.iter().position(|(existing, _)| *existing == name) {
            Some(index) => {
                self.all[index].1.push(value.clone());
                self.last[index].1 = value;
            }
            None => {
                self.all.push((name.clone(), vec![value.clone()]));
                self.last.push((name, value));
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProxyEvent<'a> {
    /// `REQUEST` in a REQUEST authorizer's event; absent in the proxy event.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method_arn: Option<&'a str>,
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: OrderedMap<'a, String>,
    multi_value_headers: OrderedMap<'a, Vec<String>>,
    query_string_parameters: Option<OrderedMap<'a, String>>,
    multi_value_query_string_parameters: Option<OrderedMap<'a, Vec<String>>>,
    path_parameters: Option<OrderedMap<'a, String>>,
    stage_variables: Option<&'a std::collections::BTreeMap<String, String>>,
    request_context: EventContext<'a>,
    /// Outer `None`: absent (authorizer events); `Some(None)`: `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_base64_encoded: Option<bool>,
}

/// `requestContext.authorizer`: a Lambda authorizer's principal and context, or a Cognito
/// token's claims.
struct AuthorizerJson<'a>(&'a Authorized);

impl Serialize for AuthorizerJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let auth = self.0;
        let mut map = serializer.serialize_map(None)?;
        if let Some(claims) = &auth.claims {
            map.serialize_entry("claims", claims)?;
        } else if let Some(principal) = &auth.principal_id {
            map.serialize_entry("principalId", principal)?;
        }
        for (key, value) in &auth.context {
            if key != "principalId" && key != "claims" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventContext<'a> {
    resource_id: &'a str,
    resource_path: &'a str,
    http_method: &'a str,
    extended_request_id: &'a str,
    request_time: String,
    path: &'a str,
    account_id: &'a str,
    protocol: &'a str,
    stage: &'a str,
    domain_prefix: Option<&'a str>,
    request_time_epoch: u64,
    request_id: &'a str,
    identity: Identity<'a>,
    domain_name: Option<&'a str>,
    deployment_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<AuthorizerJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    cognito_identity_pool_id: Option<&'a str>,
    account_id: Option<&'a str>,
    cognito_identity_id: Option<&'a str>,
    caller: Option<&'a str>,
    source_ip: String,
    principal_org_id: Option<&'a str>,
    access_key: Option<&'a str>,
    cognito_authentication_type: Option<&'a str>,
    cognito_authentication_provider: Option<&'a str>,
    user_arn: Option<&'a str>,
    user_agent: Option<&'a str>,
    user: Option<&'a str>,
}

/// `Content-Type` → `Content-Type`: HTTP/1 clients send canonical casing almost always, and
/// hyper does not keep the original, so this is the closest to what API Gateway passes on.
fn canonical_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
    out
}

/// True when `media_type` matches one of the API's binary media types (`image/*`, `*/*`).
pub fn is_binary(binary_media_types: &[String], media_type: &str) -> bool {
    let media_type = media_type.split(';').next().unwrap_or("").trim();
    binary_media_types.iter().any(|pattern| {
        let pattern = pattern.trim();
        if pattern == "*/*" {
            return true;
        }
        match pattern.strip_suffix("/*") {
            Some(prefix) => media_type
                .split_once('/')
                .is_some_and(|(kind, _)| kind.eq_ignore_ascii_case(prefix)),
            None => pattern.eq_ignore_ascii_case(media_type),
        }
    })
}

/// Builds the proxy event for a request whose body has been read.
pub fn encode_event(view: &RequestView<'_>, account_id: &str, body: &[u8]) -> Vec<u8> {
    encode(view, account_id, Some(body), None)
}

/// A REQUEST authorizer's event: the proxy event's request parts without the body, plus
/// `type` and `methodArn` (fixture apigw-custom-auth-request-type-request.json).
pub fn encode_authorizer_event(
    view: &RequestView<'_>,
    account_id: &str,
    method_arn: &str,
) -> Vec<u8> {
    encode(view, account_id, None, Some(method_arn))
}

fn encode(
    view: &RequestView<'_>,
    account_id: &str,
    body: Option<&[u8]>,
    method_arn: Option<&str>,
) -> Vec<u8> {
    let body_bytes = body.unwrap_or_default();
    let h1 = view.parts.version < http::Version::HTTP_2;
    let header_name = |name: &str| {
        if h1 {
            canonical_case(name)
        } else {
            name.to_string()
        }
    };
    let mut headers = Grouped::default();
    for (name, value) in &view.parts.headers {
        // Rewritten below with the client's address appended, as a load balancer would.
        if name == "x-forwarded-for" {
            continue;
        }
        headers.push(
            header_name(name.as_str()),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        );
    }
    headers.push(
        header_name("x-forwarded-for"),
        super::http::forwarded_for(view),
    );
    if !view.parts.headers.contains_key("x-forwarded-port") {
        headers.push(header_name("x-forwarded-port"), view.local_port.to_string());
    }
    if !view.parts.headers.contains_key("x-forwarded-proto") {
        let scheme = if view.secure { "https" } else { "http" };
        headers.push(header_name("x-forwarded-proto"), scheme.to_string());
    }

    let mut query = Grouped::default();
    for (name, value) in params::parse_query(view.query) {
        query.push(name, value);
    }
    let path_parameters: Vec<(String, String)> = view
        .routed
        .path_parameters(view.path)
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();

    let stage = view.stage();
    let method = view.method();
    let content_type = view
        .parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let binary = !body_bytes.is_empty() && is_binary(&stage.binary_media_types, content_type);
    let body_text = if binary {
        Some(base64::engine::general_purpose::STANDARD.encode(body_bytes))
    } else if body_bytes.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(body_bytes).into_owned())
    };
    let caller = view.auth.and_then(|auth| auth.caller.as_ref());
    let domain_name = view.host.map(crate::route::host_without_port);

    let event = ProxyEvent {
        kind: method_arn.map(|_| "REQUEST"),
        method_arn,
        resource: &method.resource_path,
        path: view.stage_path(),
        http_method: view.parts.method.as_str(),
        headers: OrderedMap(&headers.last),
        multi_value_headers: OrderedMap(&headers.all),
        query_string_parameters: (!query.last.is_empty()).then_some(OrderedMap(&query.last)),
        multi_value_query_string_parameters: (!query.all.is_empty())
            .then_some(OrderedMap(&query.all)),
        path_parameters: (!path_parameters.is_empty()).then_some(OrderedMap(&path_parameters)),
        stage_variables: (!stage.variables.is_empty()).then_some(&stage.variables),
        request_context: EventContext {
            resource_id: &method.resource_id,
            resource_path: &method.resource_path,
            http_method: view.parts.method.as_str(),
            extended_request_id: view.extended_request_id,
            request_time: crate::time::clf_timestamp(view.received_at),
            path: view.path,
            account_id,
            protocol: view.protocol(),
            stage: &stage.name,
            domain_prefix: domain_name.map(|name| name.split('.').next().unwrap_or(name)),
            request_time_epoch: crate::time::epoch_millis(view.received_at),
            request_id: view.request_id,
            identity: Identity {
                cognito_identity_pool_id: None,
                account_id: caller.map(|caller| caller.account_id.as_str()),
                cognito_identity_id: None,
                caller: caller.map(|caller| caller.caller.as_str()),
                source_ip: view.source_ip.to_string(),
                principal_org_id: None,
                access_key: caller.map(|caller| caller.access_key.as_str()),
                cognito_authentication_type: None,
                cognito_authentication_provider: None,
                user_arn: caller.map(|caller| caller.user_arn.as_str()),
                user_agent: view.user_agent(),
                user: caller.map(|caller| caller.user.as_str()),
            },
            domain_name,
            deployment_id: &stage.deployment_id,
            api_id: &stage.api_id,
            authorizer: view
                .auth
                .filter(|auth| auth.principal_id.is_some() || auth.claims.is_some())
                .map(AuthorizerJson),
        },
        body: body.map(|_| body_text.as_deref()),
        is_base64_encoded: body.map(|_| binary),
    };
    // Serialising plain data into a Vec cannot fail.
    serde_json::to_vec(&event).unwrap_or_default()
}

/// Splits a function reference into the name for the Invoke API path and its qualifier:
/// `arn:aws:lambda:us-east-1:123:function:hello:live` → (`hello`, `live`).
pub fn function_name_and_qualifier(function: &str) -> (&str, Option<&str>) {
    if let Some(rest) = function
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":function:"))
        .map(|(_, rest)| rest)
    {
        return match rest.split_once(':') {
            Some((name, qualifier)) => (name, Some(qualifier)),
            None => (rest, None),
        };
    }
    match function.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (function, None),
    }
}

pub async fn invoke(
    integrations: &Integrations,
    integration: &LambdaIntegration,
    view: &RequestView<'_>,
    body: Body,
) -> Result<Response<Body>, Failure> {
    let body = super::read_body(body).await?;
    let function = resolve_function(&integration.function, view.stage())?;
    let event = encode_event(view, &integrations.settings.account_id, &body);
    let reply = call_function(integrations, &function, event, integration.timeout).await?;
    let name = function_name_and_qualifier(&function).0;
    if let Some(kind) = &reply.function_error {
        return Err(Failure::new(
            GatewayError::BadFunctionResponse,
            format!(
                "function {name} failed ({kind}): {}",
                String::from_utf8_lossy(&reply.payload[..reply.payload.len().min(512)])
            ),
        ));
    }
    let reply = reply.payload;
    let accept = view
        .parts
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    decode_reply(&reply, &view.stage().binary_media_types, accept).map_err(|detail| {
        Failure::new(
            GatewayError::BadFunctionResponse,
            format!("function {name} returned a malformed proxy response: {detail}"),
        )
    })
}

/// A function reference with its stage variables filled in.
pub fn resolve_function(
    function: &crate::config::compile::Template,
    stage: &crate::config::compile::CompiledStage,
) -> Result<String, Failure> {
    let mut resolved = String::new();
    for part in &function.parts {
        match part {
            TemplatePart::Literal(text) => resolved.push_str(text),
            TemplatePart::StageVariable(name) => {
                resolved.push_str(stage.variables.get(name).ok_or_else(|| {
                    Failure::new(
                        GatewayError::ApiConfiguration,
                        format!("stage variable {name} is not set on this stage"),
                    )
                })?)
            }
            TemplatePart::PathParameter(name) => {
                return Err(Failure::new(
                    GatewayError::ApiConfiguration,
                    format!("a function uri cannot use the path parameter {{{name}}}"),
                ));
            }
        }
    }
    Ok(resolved)
}

/// What the Invoke API answered: the payload, and `X-Amz-Function-Error` when the function
/// raised.
#[derive(Debug)]
pub struct FunctionReply {
    pub payload: Bytes,
    pub function_error: Option<String>,
}

/// One synchronous invocation through the Lambda Invoke API, bounded by `timeout` from the
/// request to the last byte of the reply. Transport failures, timeouts and non-2xx answers of
/// the Invoke API are `Failure`s; a function that raised is a reply with `function_error`.
pub async fn call_function(
    integrations: &Integrations,
    function: &str,
    payload: Vec<u8>,
    timeout: std::time::Duration,
) -> Result<FunctionReply, Failure> {
    let (name, qualifier) = function_name_and_qualifier(function);
    let endpoint = integrations
        .settings
        .functions
        .endpoint_for(name)
        .ok_or_else(|| {
            Failure::new(
                GatewayError::ApiConfiguration,
                format!("no Lambda endpoint is configured for function {name} (use --function or --lambda-endpoint)"),
            )
        })?;
    let mut url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        endpoint.trim_end_matches('/'),
        params::encode_query_component(name)
    );
    if let Some(qualifier) = qualifier {
        url.push_str("?Qualifier=");
        url.push_str(&params::encode_query_component(qualifier));
    }
    let uri: http::Uri = url.parse().map_err(|error| {
        Failure::new(
            GatewayError::ApiConfiguration,
            format!("function endpoint {url:?} is invalid: {error}"),
        )
    })?;

    let mut request = Request::new(body::full(payload));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-amz-invocation-type",
        HeaderValue::from_static("RequestResponse"),
    );

    let deadline = tokio::time::Instant::now() + timeout;
    let exchange = integrations.client.request(false, request);
    let response = match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => {
            return Err(super::http::timed_out(
                format_args!("function {name} did not answer"),
                timeout,
            ));
        }
        Ok(Err(error)) => {
            return Err(Failure::new(
                GatewayError::IntegrationFailure,
                format!(
                    "invoking {name} at {uri} failed: {}",
                    super::http::error_chain(&error)
                ),
            ));
        }
        Ok(Ok(response)) => response,
    };
    let (parts, reply) = response.into_parts();
    let collect = http_body_util::BodyExt::collect(http_body_util::Limited::new(
        reply,
        MAX_FUNCTION_RESPONSE_BYTES,
    ));
    let reply = tokio::time::timeout_at(deadline, collect)
        .await
        .map_err(|_| {
            super::http::timed_out(
                format_args!("the reply of function {name} was not complete"),
                timeout,
            )
        })?
        .map_err(|error| {
            Failure::new(
                GatewayError::BadFunctionResponse,
                format!("reading the reply of {name} failed: {error}"),
            )
        })?
        .to_bytes();
    if !parts.status.is_success() {
        return Err(Failure::new(
            GatewayError::IntegrationFailure,
            format!(
                "the Invoke API answered {} for {name}: {}",
                parts.status,
                String::from_utf8_lossy(&reply[..reply.len().min(512)])
            ),
        ));
    }
    Ok(FunctionReply {
        payload: reply,
        function_error: parts
            .headers
            .get("x-amz-function-error")
            .map(|kind| String::from_utf8_lossy(kind.as_bytes()).into_owned()),
    })
}

/// Turns a function's proxy reply into the response, or says why it is malformed.
pub fn decode_reply(
    reply: &[u8],
    binary_media_types: &[String],
    accept: &str,
) -> Result<Response<Body>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(reply).map_err(|error| format!("not JSON: {error}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    for key in object.keys() {
        if !matches!(
            key.as_str(),
            "statusCode" | "headers" | "multiValueHeaders" | "body" | "isBase64Encoded"
        ) {
            return Err(format!("unexpected member {key:?}"));
        }
    }
    let status = match object.get("statusCode") {
        None | Some(serde_json::Value::Null) => StatusCode::OK,
        Some(serde_json::Value::Number(number)) => number
            .as_u64()
            .and_then(|code| u16::try_from(code).ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| format!("statusCode {number} is not an HTTP status"))?,
        Some(serde_json::Value::String(text)) => text
            .trim()
            .parse::<u16>()
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| format!("statusCode {text:?} is not an HTTP status"))?,
        Some(other) => return Err(format!("statusCode {other} is not a number")),
    };

    let scalar = |value: &serde_json::Value| -> Option<String> {
        match value {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            serde_json::Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    };
    let mut headers: Vec<(String, Vec<String>)> = Vec::new();
    match object.get("multiValueHeaders") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(map)) => {
            for (name, values) in map {
                let list = values
                    .as_array()
                    .ok_or_else(|| format!("multiValueHeaders.{name} is not a list"))?;
                let values = list
                    .iter()
                    .map(|value| {
                        scalar(value).ok_or_else(|| {
                            format!("multiValueHeaders.{name} has a non-scalar value")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                headers.push((name.clone(), values));
            }
        }
        Some(_) => return Err("multiValueHeaders is not an object".to_string()),
    }
    match object.get("headers") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(map)) => {
            for (name, value) in map {
                let value = match value {
                    serde_json::Value::Null => continue,
                    other => {
                        scalar(other).ok_or_else(|| format!("headers.{name} is not a scalar"))?
                    }
                };
                // Multi values come first; the single value is added after them.
                match headers
                    .iter_mut()
                    .find(|(existing, _)| existing.eq_ignore_ascii_case(name))
                {
                    Some((_, values)) => values.push(value),
                    None => headers.push((name.clone(), vec![value])),
                }
            }
        }
        Some(_) => return Err("headers is not an object".to_string()),
    }

    let body_text = match object.get("body") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(_) => return Err("body is not a string".to_string()),
    };
    let base64_encoded = match object.get("isBase64Encoded") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(flag)) => *flag,
        Some(_) => return Err("isBase64Encoded is not a boolean".to_string()),
    };
    // API Gateway decodes only when the client accepts a binary media type of the API;
    // otherwise the base64 text goes out as it is.
    let decode = base64_encoded
        && accept
            .split(',')
            .any(|media| is_binary(binary_media_types, media));
    let payload = if decode {
        Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(body_text.as_bytes())
                .map_err(|error| format!("body is not valid base64: {error}"))?,
        )
    } else {
        Bytes::from(body_text)
    };

    let mut response = Response::new(body::full(payload));
    *response.status_mut() = status;
    let out = response.headers_mut();
    for (name, values) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        for value in values {
            let value = HeaderValue::from_str(&value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            out.append(name.clone(), value);
        }
    }
    super::http::sanitize_response_headers(out);
    if !out.contains_key(header::CONTENT_TYPE) {
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn decoded(reply: &str) -> Result<(StatusCode, http::HeaderMap, Bytes), String> {
        let response = decode_reply(reply.as_bytes(), &["image/png".to_string()], "image/png")?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    #[tokio::test]
    async fn reply_rules_recorded_from_aws() {
        // Numeric string status, boolean header, no body.
        let (status, headers, body) = decoded(r#"{"statusCode":"201","headers":{"x-flag":true}}"#)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers["x-flag"], "true");
        assert_eq!(headers["content-type"], "application/json");
        assert!(body.is_empty());

        // No statusCode at all → 200; headers null is fine.
        let (status, _, _) = decoded(r#"{"body":"x","headers":null}"#).await.unwrap();
        assert_eq!(status, StatusCode::OK);

        // Multi values first, then the single value; casing from multiValueHeaders.
        let (_, headers, _) = decoded(
            r#"{"statusCode":200,"multiValueHeaders":{"X-Test":["value-multi"]},"headers":{"x-test":"value-solo"}}"#,
        )
        .await
        .unwrap();
        let values: Vec<_> = headers.get_all("x-test").iter().collect();
        assert_eq!(values, ["value-multi", "value-solo"]);

        // base64 decoded when the client accepts a binary media type of the API.
        let (_, _, body) = decoded(r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#)
            .await
            .unwrap();
        assert_eq!(&body[..], b"hi");
    }

    #[tokio::test]
    async fn malformed_replies_are_refused() {
        for reply in [
            r#""just a string""#,
            r#"{"statusCode":200,"wrongValue":1}"#,
            r#"{"statusCode":"test"}"#,
            r#"{"statusCode":200,"multiValueHeaders":{"a":"not-a-list"}}"#,
            r#"not json"#,
        ] {
            assert!(decoded(reply).await.is_err(), "{reply} should be refused");
        }
    }

    #[test]
    fn base64_left_alone_without_binary_media_types() {
        let response =
            decode_reply(br#"{"body":"aGk=","isBase64Encoded":true}"#, &[], "*/*").unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn function_references() {
        assert_eq!(
            function_name_and_qualifier("arn:aws:lambda:us-east-1:123:function:hello"),
            ("hello", None)
        );
        assert_eq!(
            function_name_and_qualifier("arn:aws:lambda:us-east-1:123:function:hello:live"),
            ("hello", Some("live"))
        );
        assert_eq!(function_name_and_qualifier("hello"), ("hello", None));
        assert_eq!(function_name_and_qualifier("hello:3"), ("hello", Some("3")));
    }

    #[test]
    fn binary_media_type_patterns() {
        let types = vec![
            "image/*".to_string(),
            "application/octet-stream".to_string(),
        ];
        assert!(is_binary(&types, "image/png"));
        assert!(is_binary(&types, "application/octet-stream; charset=x"));
        assert!(!is_binary(&types, "application/json"));
        assert!(is_binary(&["*/*".to_string()], "text/plain"));
    }

    #[test]
    fn header_names_in_canonical_case() {
        assert_eq!(canonical_case("content-type"), "Content-Type");
        assert_eq!(canonical_case("x-forwarded-for"), "X-Forwarded-For");
    }
}
