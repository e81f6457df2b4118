//! The management API over HTTP: botocore's `apigateway` 2015-07-09 wire contract.
//!
//! ```text
//!   request ─▶ SigV4 from the head (no body, or a declared x-amz-content-sha256) ─▶ slot ─▶ body
//!           │  otherwise: gate (per source, per key id, bytes, 10 s) ─▶ body ─▶ SigV4 ─▶ slot
//!           ─▶ route (method + URI template) ─▶ operation ─▶ ControlPlane write / read
//!           ─▶ render (AWS shapes) │ error ({"message"} + x-amzn-ErrorType)
//! ```
//!
//! Keys come from the replicated state, secrets are unsealed here. Nothing a caller who only
//! knows an access key id sends can hold one of the request slots, and what it can make the
//! node buffer is bounded by the gate (`http/gate.rs`); definitions are parsed on the blocking
//! pool, one at a time, after `openapi::limits` has bounded their cost.
//!
//! Every write is a command applied by the same deterministic `apply` as the rest of the
//! cluster; a response that describes what was written is rendered from a linearizable read
//! after the write, so a client always sees its own write, whichever origin it talks to.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use portico_proto::admin::{AdminOp, NewStage, PutMode};
use portico_proto::cluster::{Command, Refusal};
use portico_proto::{ApiKeySource, ApiState, EndpointConfiguration, GatewayState, RestApi};
use serde_json::{Value, json};

use super::control::{ControlError, ControlPlane};
use super::render;
use super::secrets::SealingKey;
use super::sigv4::{self, SignedRequest};
use crate::body::{self, Body};
use crate::integrate::{Integrations, params};

mod auth;
pub mod gate;
mod iam;
mod keys;
mod methods;

/// Bodies above this are refused (413) before they are read: AWS's limit for API definitions,
/// the largest bodies the management API takes.
pub const MAX_BODY_BYTES: usize = crate::openapi::limits::MAX_DOCUMENT_BYTES;
/// Definitions parsed at once; more wait for a turn (up to `IMPORT_QUEUE_WAIT`).
pub const MAX_CONCURRENT_IMPORTS: usize = 1;
/// How long an import waits for its turn before 429.
const IMPORT_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const PAGE_DEFAULT: usize = 25;
/// Management requests handled at once by one node; more are refused with 429
/// TooManyRequestsException, as API Gateway throttles its control plane, rather than queued
/// without bound.
pub const MAX_CONCURRENT_REQUESTS: usize = 64;
/// A verified request's body must arrive within this (the header-read timeout covers only
/// HTTP/1 heads); an unverified one within `gate::UNVERIFIED_BODY_DEADLINE`.
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
const PAGE_MAX: usize = 500;
/// The stage name TestInvokeMethod runs under.
const TEST_INVOKE_STAGE: &str = "test-invoke-stage";

/// An error in API Gateway's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type,
            message: message.into(),
        }
    }

    /// A 400. AWS reports constraint violations ("1 validation error detected: ...") as
    /// `ValidationException` and everything else as `BadRequestException` (AWS-FACTS §1).
    fn bad_request(message: impl Into<String>) -> Self {
        let message = message.into();
        let error_type = if message.contains("validation error detected")
            || message.contains("validation errors detected")
        {
            "ValidationException"
        } else {
            "BadRequestException"
        };
        Self::new(StatusCode::BAD_REQUEST, error_type, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFoundException", message)
    }

    fn into_response(self) -> Response<Body> {
        crate::respond::json_error(self.status, self.error_type, &self.message)
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::Refused(Refusal::NotFound(message)) => ApiError::not_found(message),
            ControlError::Refused(Refusal::Conflict(message)) => {
                ApiError::new(StatusCode::CONFLICT, "ConflictException", message)
            }
            ControlError::Refused(Refusal::BadRequest(message)) => ApiError::bad_request(message),
            // Only IAM ops are refused this way, and the IAM endpoint renders them itself.
            ControlError::Refused(Refusal::Iam(error)) => ApiError::bad_request(error.message),
            ControlError::Unavailable(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                message,
            ),
        }
    }
}

type Outcome = Result<Response<Body>, ApiError>;

fn verb_is_patch(call: &Call<'_>) -> bool {
    call.method == Method::PATCH
}

fn unknown_operation(call: &Call<'_>) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!(
            "Unknown operation {} {}",
            call.method,
            call.segments.join("/")
        ),
    )
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(body::full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    response
}

/// The management API of one node.
pub struct AdminApi {
    control: Arc<dyn ControlPlane>,
    sealing: SealingKey,
    /// Region names accepted in credential scopes; empty accepts any.
    regions: Vec<String>,
    integrations: Arc<Integrations>,
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Budgets of requests whose signature is not verified yet.
    gate: Arc<gate::Gate>,
    /// Definitions parsed at once (on the blocking pool).
    imports: Arc<tokio::sync::Semaphore>,
    /// TestInvokeAuthorizer's Cognito verifier (dev shares its data plane's; origins build one).
    cognito: Option<Arc<crate::authorize::cognito::CognitoVerifier>>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi")
            .field("regions", &self.regions)
            .finish_non_exhaustive()
    }
}

/// A request's parts the operations read.
struct Call<'a> {
    method: &'a Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    headers: &'a HeaderMap,
    body: Bytes,
    now: i64,
    host: Option<&'a str>,
}

impl Call<'_> {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body).map_err(|error| {
            ApiError::bad_request(format!("The request body is not valid JSON: {error}"))
        })
    }

    fn text(&self) -> Result<&str, ApiError> {
        std::str::from_utf8(&self.body)
            .map_err(|_| ApiError::bad_request("The request body is not valid UTF-8"))
    }
}

fn api<'s>(state: &'s GatewayState, api_id: &str) -> Result<&'s ApiState, ApiError> {
    state
        .apis
        .get(api_id)
        .ok_or_else(|| ApiError::not_found(format!("Invalid API identifier specified {api_id}")))
}

fn resource<'s>(
    api: &'s ApiState,
    resource_id: &str,
) -> Result<&'s portico_proto::Resource, ApiError> {
    api.definition
        .resource(resource_id)
        .ok_or_else(|| ApiError::not_found("Invalid Resource identifier specified"))
}

fn method<'s>(
    api: &'s ApiState,
    resource_id: &str,
    verb: &str,
) -> Result<&'s portico_proto::Method, ApiError> {
    resource(api, resource_id)?
        .resource_methods
        .get(&verb.to_ascii_uppercase())
        .ok_or_else(|| ApiError::not_found("Invalid Method identifier specified"))
}

fn integration<'s>(
    api: &'s ApiState,
    resource_id: &str,
    verb: &str,
) -> Result<&'s portico_proto::Integration, ApiError> {
    method(api, resource_id, verb)?
        .method_integration
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Invalid Integration identifier specified"))
}

fn method_response<'s>(
    api: &'s ApiState,
    resource_id: &str,
    verb: &str,
    status: &str,
) -> Result<&'s portico_proto::MethodResponse, ApiError> {
    method(api, resource_id, verb)?
        .method_responses
        .get(status)
        .ok_or_else(|| ApiError::not_found("Invalid Response status code specified"))
}

fn integration_response<'s>(
    api: &'s ApiState,
    resource_id: &str,
    verb: &str,
    status: &str,
) -> Result<&'s portico_proto::IntegrationResponse, ApiError> {
    integration(api, resource_id, verb)?
        .integration_responses
        .get(status)
        .ok_or_else(|| ApiError::not_found("Invalid Response status code specified"))
}

fn stage<'s>(api: &'s ApiState, name: &str) -> Result<&'s portico_proto::Stage, ApiError> {
    api.stages
        .iter()
        .find(|stage| stage.stage_name == name)
        .ok_or_else(|| ApiError::not_found("Invalid Stage identifier specified"))
}

fn deployment<'s>(api: &'s ApiState, id: &str) -> Result<&'s portico_proto::Deployment, ApiError> {
    api.deployment(id)
        .ok_or_else(|| ApiError::not_found("Invalid Deployment identifier specified"))
}

/// `position` is the index of the first item of the page, as an opaque string to clients.
fn page(items: Vec<Value>, call: &Call<'_>) -> Result<Value, ApiError> {
    let start = match call.query("position") {
        None | Some("") => 0,
        Some(position) => position
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("Invalid position parameter"))?,
    };
    let limit = match call.query("limit") {
        None => PAGE_DEFAULT,
        Some(limit) => limit
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=PAGE_MAX).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {PAGE_MAX}"
                ))
            })?,
    };
    let end = start.saturating_add(limit).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    let slice = items
        .get(start..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    Ok(render::render_list(slice, next))
}

fn string_field(body: &Value, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ApiError::bad_request(format!("'{name}' must be a string"))),
    }
}

fn string_map(body: &Value, name: &str) -> Result<portico_proto::StringMap, ApiError> {
    match body {
        Value::Object(map) => string_map_of(map, name),
        _ => Ok(Default::default()),
    }
}

/// A string-to-string member of a JSON object (`stageVariables`, `responseTemplates`...).
fn string_map_of(
    map: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<portico_proto::StringMap, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key.clone(), text.clone())),
                _ => Err(ApiError::bad_request(format!(
                    "'{name}.{key}' must be a string"
                ))),
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!("'{name}' must be a map"))),
    }
}

/// The service named by a request's SigV4 credential scope (`Credential=AKID/date/region/
/// service/aws4_request` in the header, or `X-Amz-Credential` in the query), if any.
fn scope_service(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split("Credential=").nth(1))
        .map(|rest| rest.split([',', ' ']).next().unwrap_or("").to_string());
    let credential = from_header.or_else(|| {
        params::parse_query(query)
            .into_iter()
            .find(|(name, _)| name == "X-Amz-Credential")
            .map(|(_, value)| value)
    })?;
    credential.split('/').nth(3).map(str::to_string)
}

fn too_many_requests() -> Response<Body> {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequestsException",
        "Too Many Requests",
    )
    .into_response()
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyError {
    TooLarge,
    Timeout,
    Broken,
    /// The gate's budget for unverified bodies is spent.
    Budget,
}

fn body_error(error: BodyError) -> Response<Body> {
    match error {
        BodyError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "Request body too large",
        )
        .into_response(),
        BodyError::Timeout => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeoutException",
            "The request body was not received in time",
        )
        .into_response(),
        BodyError::Broken => {
            ApiError::bad_request("The request body could not be read").into_response()
        }
        BodyError::Budget => too_many_requests(),
    }
}

/// Reads a body of at most `MAX_BODY_BYTES` within `deadline`, each chunk taken from
/// `pending`'s budgets (when unverified) and fed to `digest` (when a hash was declared).
async fn read_body(
    mut incoming: Body,
    capacity: usize,
    deadline: std::time::Duration,
    mut pending: Option<&mut gate::Pending>,
    mut digest: Option<&mut ring::digest::Context>,
) -> Result<Bytes, BodyError> {
    let read = async {
        let mut buffer = bytes::BytesMut::with_capacity(capacity.min(MAX_BODY_BYTES));
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buffer.len() + data.len() > MAX_BODY_BYTES {
                return Err(BodyError::TooLarge);
            }
            if let Some(pending) = pending.as_deref_mut() {
                pending.take(data.len()).map_err(|_| BodyError::Budget)?;
            }
            if let Some(digest) = digest.as_deref_mut() {
                digest.update(&data);
            }
            buffer.extend_from_slice(&data);
        }
        Ok(buffer.freeze())
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

/// The access key id a request's credential names (header or presigned query), unverified.
fn credential_key_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split("Credential=").nth(1))
        .and_then(|rest| rest.split('/').next())
        .map(str::to_string);
    from_header.or_else(|| {
        params::parse_query(query)
            .into_iter()
            .find(|(name, _)| name == "X-Amz-Credential")
            .and_then(|(_, value)| value.split('/').next().map(str::to_string))
    })
}

impl AdminApi {
    pub fn new(
        control: Arc<dyn ControlPlane>,
        sealing: SealingKey,
        regions: Vec<String>,
        integrations: Arc<Integrations>,
    ) -> Self {
        AdminApi {
            control,
            sealing,
            regions,
            integrations,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS)),
            gate: Arc::new(gate::Gate::default()),
            imports: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_IMPORTS)),
            cognito: None,
        }
    }

    /// Verifies Cognito tokens for TestInvokeAuthorizer with `cognito`.
    pub fn with_cognito(
        mut self,
        cognito: Arc<crate::authorize::cognito::CognitoVerifier>,
    ) -> Self {
        self.cognito = Some(cognito);
        self
    }

    /// Looks an access key's secret up and unseals it (enabled keys only).
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        let key = self.control.admin_key(access_key_id)?;
        self.sealing.open_admin_key(key)
    }

    /// Whether the request names a known access key in a well-formed SigV4 `Authorization`
    /// header with a date inside the allowed skew: checked before a request slot is taken or
    /// its body read, so callers without credentials cannot tie up either.
    fn plausibly_signed(&self, headers: &HeaderMap, now: i64) -> bool {
        let credential = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix(sigv4::ALGORITHM))
            .and_then(|rest| rest.split("Credential=").nth(1))
            .and_then(|rest| rest.split('/').next());
        let dated = headers
            .get("x-amz-date")
            .and_then(|value| value.to_str().ok())
            .and_then(sigv4::parse_amz_date)
            .is_some_and(|at| (now - at).abs() <= sigv4::MAX_SKEW_SECONDS);
        dated
            && credential
                .is_some_and(|key| self.control.admin_key(key).is_some_and(|key| key.enabled))
    }

    /// One of the node's request slots, taken only by requests whose signature verified.
    fn request_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    /// Serves one management request from `source` (the client's address, for the budgets of
    /// requests not yet verified).
    pub async fn handle(&self, request: Request<Body>, source: std::net::IpAddr) -> Response<Body> {
        let (mut parts, incoming) = request.into_parts();
        // HTTP/2 carries the host as `:authority`; SigV4 signs it as `host`.
        if !parts.headers.contains_key(header::HOST)
            && let Some(authority) = parts.uri.authority()
            && let Ok(value) = HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(header::HOST, value);
        }
        let now = crate::time::epoch_seconds(SystemTime::now());
        // IAM requests (credential scope service `iam`) share the listener and the keys; IAM is
        // a global service, so any signing region is accepted for it.
        let iam = scope_service(&parts.headers, parts.uri.query()).as_deref() == Some("iam");
        let service = if iam { "iam" } else { "apigateway" };
        let region_allowed = |region: &str| {
            iam || self.regions.is_empty() || self.regions.iter().any(|r| r == region)
        };
        let verify = |body: &[u8]| {
            let signed = SignedRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query(),
                headers: &parts.headers,
                body,
            };
            sigv4::verify(&signed, now, service, &region_allowed, &|id: &str| {
                self.secret_for(id)
            })
        };
        let verify_head = || {
            let signed = SignedRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query(),
                headers: &parts.headers,
                body: &[],
            };
            sigv4::verify_head(&signed, now, service, &region_allowed, &|id: &str| {
                self.secret_for(id)
            })
        };
        let refuse = |error: sigv4::AuthError| {
            if iam {
                return iam::IamApiError::from_auth(&error)
                    .into_response(&uuid::Uuid::new_v4().to_string());
            }
            let status = StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::FORBIDDEN);
            crate::respond::json_error(status, error.error_type(), &error.message())
        };
        if !self.plausibly_signed(&parts.headers, now)
            && let Err(error) = verify(&[])
        {
            // The precise AWS error, computed without reading the body. (A presigned request,
            // signed in its query string, passes here and is checked in full below.)
            return refuse(error);
        }
        let declared_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
            return body_error(BodyError::TooLarge);
        }
        let capacity = declared_length.map_or(0, |length| length as usize);
        let declared = sigv4::DeclaredPayload::of(&parts.headers);
        // Three ways in, cheapest first. A request without a body is verified at once. One
        // that declares its payload hash is verified from its head, then its body is read and
        // held to the declaration. Any other is verified only once its body is in, so until
        // then it holds only the unverified budgets of the gate, never a request slot.
        let (body, permit) = if incoming.is_end_stream() {
            if let Err(error) = verify(&[]) {
                self.gate.record_failure(source);
                return refuse(error);
            }
            let Some(permit) = self.request_slot() else {
                return too_many_requests();
            };
            (Bytes::new(), permit)
        } else if let Some(declared) = declared {
            if let Err(error) = verify_head() {
                self.gate.record_failure(source);
                return refuse(error);
            }
            let Some(permit) = self.request_slot() else {
                return too_many_requests();
            };
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            let body =
                match read_body(incoming, capacity, BODY_DEADLINE, None, Some(&mut digest)).await {
                    Ok(body) => body,
                    Err(error) => return body_error(error),
                };
            if !declared.admits(digest.finish().as_ref()) {
                self.gate.record_failure(source);
                return refuse(sigv4::AuthError::SignatureMismatch);
            }
            (body, permit)
        } else {
            let key_id = credential_key_id(&parts.headers, parts.uri.query()).unwrap_or_default();
            let mut pending = match self.gate.admit(source, &key_id) {
                Ok(pending) => pending,
                Err(_) => return too_many_requests(),
            };
            let body = match read_body(
                incoming,
                capacity.min(gate::MAX_UNVERIFIED_BYTES_PER_SOURCE),
                gate::UNVERIFIED_BODY_DEADLINE,
                Some(&mut pending),
                None,
            )
            .await
            {
                Ok(body) => body,
                Err(error) => return body_error(error),
            };
            if let Err(error) = verify(&body) {
                self.gate.record_failure(source);
                return refuse(error);
            }
            drop(pending);
            let Some(permit) = self.request_slot() else {
                return too_many_requests();
            };
            (body, permit)
        };
        let _permit = permit;
        if iam {
            let started = Instant::now();
            let response = self.iam(parts.uri.query(), &body).await;
            tracing::info!(
                target: "portico::admin",
                service = "iam",
                status = response.status().as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                "management request"
            );
            return response;
        }
        let path = parts.uri.path();

        let segments: Vec<String> = path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                percent_encoding::percent_decode_str(segment)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let call = Call {
            method: &parts.method,
            segments,
            query: params::parse_query(parts.uri.query()),
            headers: &parts.headers,
            body,
            now,
            host: parts
                .headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok()),
        };
        let started = Instant::now();
        let outcome = self.route(&call).await;
        let response = outcome.unwrap_or_else(ApiError::into_response);
        tracing::info!(
            target: "portico::admin",
            method = %parts.method,
            path,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "management request"
        );
        response
    }

    async fn write(&self, op: AdminOp) -> Result<Arc<GatewayState>, ApiError> {
        self.control.write(Command::Admin(op)).await?;
        Ok(self.control.read().await?)
    }

    async fn read(&self) -> Result<Arc<GatewayState>, ApiError> {
        Ok(self.control.read().await?)
    }

    async fn route(&self, call: &Call<'_>) -> Outcome {
        let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        let verb = call.method.as_str();
        match (verb, segments.as_slice()) {
            ("GET", ["restapis"]) => self.get_rest_apis(call).await,
            ("POST", ["restapis"]) if call.query("mode") == Some("import") => {
                self.import_rest_api(call).await
            }
            ("POST", ["restapis"]) => self.create_rest_api(call).await,
            ("GET", ["restapis", api_id]) => {
                let state = self.read().await?;
                let api = api(&state, api_id)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_rest_api_with_tags(&api.definition.api),
                ))
            }
            ("PATCH", ["restapis", api_id]) => {
                let patch = render::parse_patch_for("updateRestApiInput", &call.json()?)
                    .map_err(ApiError::bad_request)?;
                auth::check_policy_patch(&patch)?;
                let state = self
                    .write(AdminOp::UpdateRestApi {
                        api_id: api_id.to_string(),
                        patch,
                    })
                    .await?;
                let api = api(&state, api_id)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_rest_api_with_tags(&api.definition.api),
                ))
            }
            ("PUT", ["restapis", api_id]) => self.put_rest_api(call, api_id).await,
            ("DELETE", ["restapis", api_id]) => {
                self.control
                    .write(Command::Admin(AdminOp::DeleteRestApi {
                        api_id: api_id.to_string(),
                    }))
                    .await?;
                Ok(empty(StatusCode::ACCEPTED))
            }
            ("GET", ["restapis", api_id, "resources"]) => {
                let state = self.read().await?;
                let api = api(&state, api_id)?;
                let embed = call
                    .query("embed")
                    .is_some_and(|embed| embed.contains("methods"));
                let items = api
                    .definition
                    .resources
                    .iter()
                    .map(|resource| render::render_resource(resource, embed))
                    .collect();
                Ok(json_response(StatusCode::OK, &page(items, call)?))
            }
            ("GET", ["restapis", api_id, "resources", resource_id]) => {
                let state = self.read().await?;
                let embed = call
                    .query("embed")
                    .is_some_and(|embed| embed.contains("methods"));
                let resource = resource(api(&state, api_id)?, resource_id)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_resource(resource, embed),
                ))
            }
            ("POST", ["restapis", api_id, "resources", parent_id]) => {
                let body = call.json()?;
                let path_part = string_field(&body, "pathPart")?
                    .ok_or_else(|| ApiError::bad_request("Invalid resource path part specified"))?;
                let resource_id = crate::ids::new_id();
                let state = self
                    .write(AdminOp::CreateResource {
                        api_id: api_id.to_string(),
                        parent_id: parent_id.to_string(),
                        path_part,
                        resource_id: resource_id.clone(),
                    })
                    .await?;
                let resource = resource(api(&state, api_id)?, &resource_id)?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &render::render_resource(resource, false),
                ))
            }
            ("DELETE", ["restapis", api_id, "resources", resource_id]) => {
                self.control
                    .write(Command::Admin(AdminOp::DeleteResource {
                        api_id: api_id.to_string(),
                        resource_id: resource_id.to_string(),
                    }))
                    .await?;
                Ok(empty(StatusCode::ACCEPTED))
            }
            (
                "GET",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                ],
            ) => {
                let state = self.read().await?;
                let method = method(api(&state, api_id)?, resource_id, verb)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_method(method),
                ))
            }
            (
                "PUT",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                ],
            ) => {
                let method_value =
                    render::parse_put_method(verb, &call.json()?).map_err(ApiError::bad_request)?;
                let state = self
                    .write(AdminOp::PutMethod {
                        api_id: api_id.to_string(),
                        resource_id: resource_id.to_string(),
                        method: method_value,
                    })
                    .await?;
                let method = method(api(&state, api_id)?, resource_id, verb)?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &render::render_method(method),
                ))
            }
            (
                "DELETE",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                ],
            ) => {
                self.control
                    .write(Command::Admin(AdminOp::DeleteMethod {
                        api_id: api_id.to_string(),
                        resource_id: resource_id.to_string(),
                        http_method: verb.to_ascii_uppercase(),
                    }))
                    .await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (
                "POST",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                ],
            ) => self.test_invoke(call, api_id, resource_id, verb).await,
            (
                "PATCH",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                ],
            ) => self.update_method(call, api_id, resource_id, verb).await,
            (
                "GET",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "integration",
                ],
            ) => {
                let state = self.read().await?;
                let integration = integration(api(&state, api_id)?, resource_id, verb)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_integration(integration),
                ))
            }
            (
                "PUT",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "integration",
                ],
            ) => {
                let parsed =
                    render::parse_put_integration(&call.json()?).map_err(ApiError::bad_request)?;
                let state = self
                    .write(AdminOp::PutIntegration {
                        api_id: api_id.to_string(),
                        resource_id: resource_id.to_string(),
                        http_method: verb.to_ascii_uppercase(),
                        integration: parsed,
                    })
                    .await?;
                let integration = integration(api(&state, api_id)?, resource_id, verb)?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &render::render_integration(integration),
                ))
            }
            (
                "DELETE",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "integration",
                ],
            ) => {
                self.control
                    .write(Command::Admin(AdminOp::DeleteIntegration {
                        api_id: api_id.to_string(),
                        resource_id: resource_id.to_string(),
                        http_method: verb.to_ascii_uppercase(),
                    }))
                    .await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (
                "GET",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "responses",
                    status,
                ],
            ) => {
                let state = self.read().await?;
                let response = method_response(api(&state, api_id)?, resource_id, verb, status)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_method_response(response),
                ))
            }
            (
                "PUT",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "responses",
                    status,
                ],
            ) => {
                let parsed = render::parse_method_response(status, &call.json()?)
                    .map_err(ApiError::bad_request)?;
                let state = self
                    .write(AdminOp::PutMethodResponse {
                        api_id: api_id.to_string(),
                        resource_id: resource_id.to_string(),
                        http_method: verb.to_ascii_uppercase(),
                        response: parsed,
                    })
                    .await?;
                let response = method_response(api(&state, api_id)?, resource_id, verb, status)?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &render::render_method_response(response),
                ))
            }
            (
                "GET",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "integration",
                    "responses",
                    status,
                ],
            ) => {
                let state = self.read().await?;
                let response =
                    integration_response(api(&state, api_id)?, resource_id, verb, status)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_integration_response(response),
                ))
            }
            (
                "PUT",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "integration",
                    "responses",
                    status,
                ],
            ) => {
                let parsed = render::parse_integration_response(status, &call.json()?)
                    .map_err(ApiError::bad_request)?;
                let state = self
                    .write(AdminOp::PutIntegrationResponse {
                        api_id: api_id.to_string(),
                        resource_id: resource_id.to_string(),
                        http_method: verb.to_ascii_uppercase(),
                        response: parsed,
                    })
                    .await?;
                let response =
                    integration_response(api(&state, api_id)?, resource_id, verb, status)?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &render::render_integration_response(response),
                ))
            }
            ("PATCH", ["restapis", api_id, "resources", resource_id]) => {
                self.update_resource(call, api_id, resource_id).await
            }
            (
                "PATCH",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "integration",
                ],
            ) => {
                let at = methods::Target {
                    api_id,
                    resource_id,
                    verb,
                };
                self.update_integration(call, at).await
            }
            (
                "PATCH" | "DELETE",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "responses",
                    status,
                ],
            ) => {
                let at = methods::Target {
                    api_id,
                    resource_id,
                    verb,
                };
                if verb_is_patch(call) {
                    self.update_method_response(call, at, status).await
                } else {
                    self.delete_method_response(at, status).await
                }
            }
            (
                "PATCH" | "DELETE",
                [
                    "restapis",
                    api_id,
                    "resources",
                    resource_id,
                    "methods",
                    verb,
                    "integration",
                    "responses",
                    status,
                ],
            ) => {
                let at = methods::Target {
                    api_id,
                    resource_id,
                    verb,
                };
                if verb_is_patch(call) {
                    self.update_integration_response(call, at, status).await
                } else {
                    self.delete_integration_response(at, status).await
                }
            }
            ("PATCH", ["restapis", api_id, "deployments", deployment_id]) => {
                self.update_deployment(call, api_id, deployment_id).await
            }
            ("GET", ["restapis", api_id, "deployments"]) => {
                let state = self.read().await?;
                let items = api(&state, api_id)?
                    .deployments
                    .iter()
                    .map(render::render_deployment)
                    .collect();
                Ok(json_response(StatusCode::OK, &page(items, call)?))
            }
            ("POST", ["restapis", api_id, "deployments"]) => {
                self.create_deployment(call, api_id).await
            }
            ("GET", ["restapis", api_id, "deployments", deployment_id]) => {
                let state = self.read().await?;
                let deployment = deployment(api(&state, api_id)?, deployment_id)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_deployment(deployment),
                ))
            }
            ("DELETE", ["restapis", api_id, "deployments", deployment_id]) => {
                self.control
                    .write(Command::Admin(AdminOp::DeleteDeployment {
                        api_id: api_id.to_string(),
                        deployment_id: deployment_id.to_string(),
                    }))
                    .await?;
                Ok(empty(StatusCode::ACCEPTED))
            }
            ("GET", ["restapis", api_id, "stages"]) => {
                let state = self.read().await?;
                // GetStages' `deploymentId` filter (recorded, LS api
                // `test_get_stages_filters_by_deployment_id`).
                let deployment_id = call.query("deploymentId").filter(|id| !id.is_empty());
                let items: Vec<Value> = api(&state, api_id)?
                    .stages
                    .iter()
                    .filter(|stage| deployment_id.is_none_or(|id| stage.deployment_id == id))
                    .map(render::render_stage)
                    .collect();
                Ok(json_response(StatusCode::OK, &json!({ "item": items })))
            }
            ("POST", ["restapis", api_id, "stages"]) => {
                let new_stage = render::parse_stage_create(&call.json()?, call.now)
                    .map_err(ApiError::bad_request)?;
                let name = new_stage.stage_name.clone();
                let state = self
                    .write(AdminOp::CreateStage {
                        api_id: api_id.to_string(),
                        stage: new_stage,
                    })
                    .await?;
                let stage = stage(api(&state, api_id)?, &name)?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &render::render_stage(stage),
                ))
            }
            ("GET", ["restapis", api_id, "stages", stage_name]) => {
                let state = self.read().await?;
                let stage = stage(api(&state, api_id)?, stage_name)?;
                Ok(json_response(StatusCode::OK, &render::render_stage(stage)))
            }
            ("PATCH", ["restapis", api_id, "stages", stage_name]) => {
                let patch = render::parse_patch_for("updateStageInput", &call.json()?)
                    .map_err(ApiError::bad_request)?;
                let state = self
                    .write(AdminOp::UpdateStage {
                        api_id: api_id.to_string(),
                        stage_name: stage_name.to_string(),
                        patch,
                        now: call.now,
                    })
                    .await?;
                let stage = stage(api(&state, api_id)?, stage_name)?;
                Ok(json_response(StatusCode::OK, &render::render_stage(stage)))
            }
            ("DELETE", ["restapis", api_id, "stages", stage_name]) => {
                self.control
                    .write(Command::Admin(AdminOp::DeleteStage {
                        api_id: api_id.to_string(),
                        stage_name: stage_name.to_string(),
                    }))
                    .await?;
                Ok(empty(StatusCode::ACCEPTED))
            }
            // FlushStageCache: a generation bump, replicated to every edge (202 as AWS).
            ("DELETE", ["restapis", api_id, "stages", stage_name, "cache", "data"]) => {
                self.control
                    .write(Command::Admin(AdminOp::FlushStageCache {
                        api_id: api_id.to_string(),
                        stage_name: stage_name.to_string(),
                    }))
                    .await?;
                Ok(empty(StatusCode::ACCEPTED))
            }
            (
                "DELETE",
                [
                    "restapis",
                    api_id,
                    "stages",
                    stage_name,
                    "cache",
                    "authorizers",
                ],
            ) => self.flush_stage_authorizers_cache(api_id, stage_name).await,
            (_, ["restapis", _, "authorizers", ..] | ["restapis", _, "gatewayresponses", ..]) => {
                self.route_auth(call).await
            }
            (
                "GET",
                [
                    "restapis",
                    api_id,
                    "stages",
                    stage_name,
                    "exports",
                    export_type,
                ],
            ) => self.get_export(call, api_id, stage_name, export_type).await,
            (_, ["apikeys", ..] | ["usageplans", ..] | ["account"]) => self.route_keys(call).await,
            _ => Err(unknown_operation(call)),
        }
    }

    async fn get_rest_apis(&self, call: &Call<'_>) -> Outcome {
        let state = self.read().await?;
        let mut apis: Vec<&RestApi> = state.apis.values().map(|api| &api.definition.api).collect();
        apis.sort_by(|a, b| (a.created_date, &a.id).cmp(&(b.created_date, &b.id)));
        let items = apis.into_iter().map(render::render_rest_api).collect();
        Ok(json_response(StatusCode::OK, &page(items, call)?))
    }

    async fn create_rest_api(&self, call: &Call<'_>) -> Outcome {
        let body = call.json()?;
        let name = string_field(&body, "name")?
            .ok_or_else(|| ApiError::bad_request("Invalid REST API name specified"))?;
        let api_key_source = match string_field(&body, "apiKeySource")?.as_deref() {
            None | Some("HEADER") => ApiKeySource::Header,
            Some("AUTHORIZER") => ApiKeySource::Authorizer,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "1 validation error detected: Value '{other}' at 'createRestApiInput.apiKeySource' failed to satisfy constraint: Member must satisfy enum value set: [HEADER, AUTHORIZER]"
                )));
            }
        };
        let mut endpoint_configuration = EndpointConfiguration::default();
        if let Some(config) = body.get("endpointConfiguration").filter(|v| !v.is_null()) {
            if let Some(types) = config.get("types").and_then(Value::as_array) {
                endpoint_configuration.types = types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
            }
            if let Some(ip) = config.get("ipAddressType").and_then(Value::as_str) {
                endpoint_configuration.ip_address_type = Some(ip.to_string());
            }
        }
        let binary_media_types = body
            .get("binaryMediaTypes")
            .and_then(Value::as_array)
            .map(|types| {
                types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let new_api = RestApi {
            id: crate::ids::new_id(),
            name,
            description: string_field(&body, "description")?,
            created_date: call.now,
            version: string_field(&body, "version")?,
            warnings: Vec::new(),
            binary_media_types,
            minimum_compression_size: body
                .get("minimumCompressionSize")
                .and_then(Value::as_i64)
                .and_then(|size| i32::try_from(size).ok()),
            api_key_source,
            endpoint_configuration,
            policy: string_field(&body, "policy")?.filter(|policy| !policy.is_empty()),
            tags: string_map(&body, "tags")?,
            disable_execute_api_endpoint: body
                .get("disableExecuteApiEndpoint")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            root_resource_id: crate::ids::new_id(),
        };
        if let Some(policy) = &new_api.policy {
            auth::check_policy(policy)?;
        }
        let api_id = new_api.id.clone();
        let state = self.write(AdminOp::CreateRestApi { api: new_api }).await?;
        let api = api(&state, &api_id)?;
        Ok(json_response(
            StatusCode::CREATED,
            &render::render_rest_api(&api.definition.api),
        ))
    }

    /// Parses and imports the body on the blocking pool, one document at a time: parsing is
    /// CPU-bound and bounded by `openapi::limits`, and must never stall a runtime worker.
    async fn import(
        &self,
        call: &Call<'_>,
        api_id: &str,
    ) -> Result<portico_proto::ApiDefinition, ApiError> {
        call.text()?;
        let Ok(Ok(turn)) =
            tokio::time::timeout(IMPORT_QUEUE_WAIT, self.imports.clone().acquire_owned()).await
        else {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Too Many Requests",
            ));
        };
        let body = call.body.clone();
        let (api_id_owned, now) = (api_id.to_string(), call.now);
        let outcome = tokio::task::spawn_blocking(move || {
            // Held by the work itself, so a client that goes away does not free the turn
            // while its document is still being parsed.
            let _turn = turn;
            let text = std::str::from_utf8(&body).unwrap_or_default();
            crate::openapi::import("body", text, &api_id_owned, now, &mut crate::ids::new_id)
        })
        .await
        .map_err(|error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                format!("the import failed: {error}"),
            )
        })?;
        let imported = outcome.map_err(|error| {
            let problems: Vec<String> = error.problems.iter().map(ToString::to_string).collect();
            ApiError::bad_request(format!("Invalid OpenAPI input. {}", problems.join("; ")))
        })?;
        let fail_on_warnings = call
            .query("failonwarnings")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if fail_on_warnings && !imported.warnings.is_empty() {
            let warnings: Vec<String> = imported.warnings.iter().map(ToString::to_string).collect();
            return Err(ApiError::bad_request(format!(
                "Warnings found during import:\n\t{}",
                warnings.join("\n\t")
            )));
        }
        let mut definition = imported.definition;
        // ImportRestApi's `parameters` map: `endpointConfigurationTypes=REGIONAL` and the like.
        if let Some(types) = call.query("endpointConfigurationTypes") {
            definition.api.endpoint_configuration.types = types
                .split(',')
                .map(|kind| kind.trim().to_ascii_uppercase())
                .filter(|kind| !kind.is_empty())
                .collect();
        }
        Ok(definition)
    }

    async fn import_rest_api(&self, call: &Call<'_>) -> Outcome {
        let api_id = crate::ids::new_id();
        let definition = self.import(call, &api_id).await?;
        let state = self.write(AdminOp::ImportRestApi { definition }).await?;
        let api = api(&state, &api_id)?;
        Ok(json_response(
            StatusCode::CREATED,
            &render::render_rest_api(&api.definition.api),
        ))
    }

    async fn put_rest_api(&self, call: &Call<'_>, api_id: &str) -> Outcome {
        let mode = match call.query("mode") {
            None | Some("merge") => PutMode::Merge,
            Some("overwrite") => PutMode::Overwrite,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "1 validation error detected: Value '{other}' at 'mode' failed to satisfy constraint: Member must satisfy enum value set: [merge, overwrite]"
                )));
            }
        };
        let definition = self.import(call, api_id).await?;
        let state = self
            .write(AdminOp::PutRestApi {
                api_id: api_id.to_string(),
                definition,
                mode,
            })
            .await?;
        let api = api(&state, api_id)?;
        Ok(json_response(
            StatusCode::OK,
            &render::render_rest_api_with_tags(&api.definition.api),
        ))
    }

    async fn create_deployment(&self, call: &Call<'_>, api_id: &str) -> Outcome {
        let body = call.json()?;
        let stage = match string_field(&body, "stageName")? {
            None => None,
            Some(stage_name) => {
                crate::dev::validate_stage_name(&stage_name).map_err(ApiError::bad_request)?;
                Some(NewStage {
                    stage_name,
                    description: string_field(&body, "stageDescription")?,
                    variables: string_map(&body, "variables")?,
                })
            }
        };
        let deployment_id = crate::ids::new_id();
        let state = self
            .write(AdminOp::CreateDeployment {
                api_id: api_id.to_string(),
                deployment_id: deployment_id.clone(),
                description: string_field(&body, "description")?,
                created_date: call.now,
                stage,
            })
            .await?;
        let deployment = deployment(api(&state, api_id)?, &deployment_id)?;
        Ok(json_response(
            StatusCode::CREATED,
            &render::render_deployment(deployment),
        ))
    }

    async fn get_export(
        &self,
        call: &Call<'_>,
        api_id: &str,
        stage_name: &str,
        export_type: &str,
    ) -> Outcome {
        let state = self.read().await?;
        let api = api(&state, api_id)?;
        let stage = stage(api, stage_name)?;
        let deployment = deployment(api, &stage.deployment_id)?;
        // The domain the execute-api names hang off: the management host minus its first label
        // when it is a DNS name of three labels or more (`apigateway.us-east-1.example.com`).
        let domain = call
            .host
            .map(crate::route::host_without_port)
            .filter(|host| host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('['))
            .filter(|host| host.split('.').count() >= 3)
            .and_then(|host| host.split_once('.').map(|(_, rest)| rest.to_string()))
            .unwrap_or_else(|| "localhost".to_string());
        let server = format!("https://{api_id}.execute-api.{domain}/{stage_name}");
        let mut document = match export_type {
            "oas30" => crate::openapi::export_oas30(&deployment.definition, Some(&server)),
            "swagger" => crate::openapi::export_swagger2(&deployment.definition, Some(&server)),
            other => {
                return Err(ApiError::bad_request(format!(
                    "No such export type: {other}. Valid export types are oas30 and swagger"
                )));
            }
        };
        let extensions = call.query("extensions").unwrap_or("");
        if !(extensions.contains("integrations") || extensions.contains("apigateway")) {
            strip_integrations(&mut document);
        }
        let accept = call
            .headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("application/json");
        let yaml = accept.contains("yaml");
        let (text, content_type, extension) = if yaml {
            let text = yaml_serde::to_string(&document).map_err(|error| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerErrorException",
                    format!("cannot render YAML: {error}"),
                )
            })?;
            (text, "application/yaml", "yaml")
        } else {
            (
                serde_json::to_string_pretty(&document).unwrap_or_default(),
                "application/json",
                "json",
            )
        };
        let mut response = Response::new(body::full(text));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(value) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{export_type}_{stage_name}.{extension}\""
        )) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
        Ok(response)
    }

    async fn test_invoke(
        &self,
        call: &Call<'_>,
        api_id: &str,
        resource_id: &str,
        verb: &str,
    ) -> Outcome {
        let body = call.json()?;
        let state = self.read().await?;
        let api_state = api(&state, api_id)?;
        let resource = resource(api_state, resource_id)?;
        method(api_state, resource_id, verb)?;
        let mut stage = portico_proto::Stage::new(TEST_INVOKE_STAGE, "test-invoke", call.now);
        stage.variables = string_map(&body, "stageVariables")?;
        let report = super::invoke::test_invoke(
            &self.integrations,
            &api_state.definition,
            resource,
            &stage,
            verb,
            &body,
        )
        .await?;
        Ok(json_response(StatusCode::OK, &report))
    }
}

/// Drops `x-amazon-apigateway-integration` members (exports without `extensions=integrations`
/// carry no integration details, as on AWS).
fn strip_integrations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("x-amazon-apigateway-integration");
            for member in map.values_mut() {
                strip_integrations(member);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_integrations),
        _ => {}
    }
}

impl From<crate::request::Failure> for ApiError {
    fn from(failure: crate::request::Failure) -> Self {
        let view = failure.error.view();
        ApiError::new(view.status, view.error_type, failure.detail.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrations_are_stripped_everywhere() {
        let mut document =
            json!({"paths": {"/a": {"get": {"x-amazon-apigateway-integration": {}, "x": 1}}}});
        strip_integrations(&mut document);
        assert_eq!(document, json!({"paths": {"/a": {"get": {"x": 1}}}}));
    }

    #[test]
    fn refusals_map_to_aws_errors() {
        let error: ApiError = ControlError::Refused(Refusal::Conflict("x".into())).into();
        assert_eq!(error.status, StatusCode::CONFLICT);
        assert_eq!(error.error_type, "ConflictException");
        let error: ApiError = ControlError::Unavailable("no leader".into()).into();
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
