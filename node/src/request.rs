//! The request context and the stage results: what every data-plane stage reads and returns.
//!
//! [`RequestView`] is the request as the pipeline computed it once (ids, the routed method,
//! the head, the connection, what authorization established); [`Failure`] is a stage's refusal
//! (the client-visible error plus the operator-visible detail); [`Authorized`] is what an
//! authorizer established; [`ConnectionInfo`] is what the listener knows of the connection;
//! [`BoxFuture`] is the future type of the seams the stages call through (quota authority,
//! invalidation authority, shared cache tier).
//!
//! A leaf: it imports only type definitions (the compiled snapshot's types in `config`,
//! `route::Routed`, `respond::GatewayError`), never a stage, a control-plane or a wiring module,
//! so every stage can depend on it without depending on another stage
//! (`node/tests/layering.rs` checks this).

use std::borrow::Cow;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use http::request::Parts;

use serde_json::{Map, Value};

use crate::config::compile::{CompiledMethod, CompiledStage};
use crate::respond::GatewayError;
use crate::route::Routed;

/// A boxed, sendable future: what the stages' seams to other parts of the node return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the pipeline knows of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
}

/// An error for the client plus the detail for the operator.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: GatewayError,
    pub detail: Cow<'static, str>,
    /// The client-visible message when it is not the error's fixed text (AWS's IAM and
    /// resource policy denials name the caller and the resource).
    pub message: Option<Cow<'static, str>>,
}

impl Failure {
    pub fn new(error: GatewayError, detail: impl Into<Cow<'static, str>>) -> Self {
        Failure {
            error,
            detail: detail.into(),
            message: None,
        }
    }

    pub fn with_message(
        error: GatewayError,
        message: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Failure {
            error,
            detail: detail.into(),
            message: Some(message.into()),
        }
    }
}

/// What an authorizer established about the caller; reaches integrations as
/// `requestContext.authorizer` / `requestContext.identity` and `context.authorizer.*`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Authorized {
    pub principal_id: Option<String>,
    /// A Lambda authorizer's `context` (values keep their JSON types).
    pub context: Map<String, Value>,
    /// A Cognito token's claims, shared with the verified-token cache (no copy per request).
    pub claims: Option<Arc<Map<String, Value>>>,
    /// An IAM caller.
    pub caller: Option<CallerIdentity>,
    /// The API key named by a Lambda authorizer (`usageIdentifierKey`).
    pub usage_identifier_key: Option<String>,
}

/// `requestContext.identity` of a SigV4-authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub access_key: String,
    pub user_arn: String,
    pub caller: String,
    pub user: String,
    pub account_id: String,
}

/// Everything about the request that integrations read, computed once by the pipeline.
#[derive(Debug)]
pub struct RequestView<'a> {
    pub request_id: &'a str,
    pub extended_request_id: &'a str,
    pub trace_id: &'a str,
    /// `trace_id` as the header value it already is (`ids::RequestIds`).
    pub trace_header: &'a http::HeaderValue,
    pub routed: &'a Routed,
    pub parts: &'a Parts,
    /// The request path (with the stage prefix), undecoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The host the request names, validated and lower-cased once by the pipeline
    /// (`route::host`): the absolute-form or HTTP/2 authority, else `Host`; `None` only for an
    /// HTTP/1.0 request without one. Read this, never the `Host` header.
    pub host: Option<&'a str>,
    pub source_ip: IpAddr,
    /// The port and scheme the client connected to (for `X-Forwarded-Port`/`-Proto`).
    pub local_port: u16,
    pub secure: bool,
    pub received_at: SystemTime,
    /// What the method's authorizer established, once authorization ran.
    pub auth: Option<&'a Authorized>,
}

impl RequestView<'_> {
    pub fn stage(&self) -> &CompiledStage {
        &self.routed.stage
    }

    pub fn method(&self) -> &CompiledMethod {
        &self.routed.method
    }

    pub fn stage_path(&self) -> &str {
        self.routed.stage_path(self.path)
    }

    pub fn protocol(&self) -> &'static str {
        match self.parts.version {
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        }
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
    }
}
