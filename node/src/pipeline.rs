//! The request pipeline of an edge: one function from request to response.
//!
//! ```text
//! request ─▶ size ─▶ route (host, stage, resource, method) ─▶ limits ─▶ cache ─▶ integrate ─▶ stamp ids ─▶ log
//!             │         │                                          │         │          │
//!             └─────────┴──────────── GatewayError ──▶ respond ◀───┴─────────┴──────────┘
//! ```
//!
//! The compiled snapshot is loaded once per request from an `ArcSwap`: no lock, no wait, and a
//! request that started on one snapshot finishes on it even if a new deployment is swapped in
//! meanwhile. The limits stage (API keys, throttles, quotas) runs between route and integrate;
//! authorizers and the cache come around it.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue, Request, Response};
use hyper::body::Incoming;

use crate::accept::ConnectionInfo;
use crate::body::Body;
use crate::cache::ResponseCache;
use crate::config::compile::Snapshot;
use crate::integrate::{self, Failure, Integrations, RequestView};
use crate::limits::{self, Limits};
use crate::observe::{self, AccessRecord};
use crate::respond::GatewayError;
use crate::route;

/// The ids every response carries. Constants: inserting by a `&str` parses the name on every
/// call.
const X_AMZN_REQUESTID: HeaderName = HeaderName::from_static("x-amzn-requestid");
const X_AMZ_APIGW_ID: HeaderName = HeaderName::from_static("x-amz-apigw-id");

/// The data plane of one node: the live snapshot plus the integration machinery.
#[derive(Debug)]
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    integrations: Integrations,
    limits: Arc<Limits>,
    cache: Arc<ResponseCache>,
}

impl Gateway {
    pub fn new(snapshot: Snapshot, integrations: Integrations) -> Self {
        Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            integrations,
            limits: Arc::new(Limits::new(limits::Identity::new(0))),
            cache: Arc::new(ResponseCache::local(
                crate::cache::CacheOptions::default(),
                Arc::new(crate::observe::metrics::Metrics::new()),
            )),
        }
        .with_cache_attached()
    }

    /// Uses `cache` (the node's, with its options, shared tier, authority and metrics) for
    /// response caching.
    pub fn with_cache(mut self, cache: Arc<ResponseCache>) -> Self {
        self.cache = cache;
        self.with_cache_attached()
    }

    fn with_cache_attached(self) -> Self {
        self.cache.attach(&self.snapshot.load());
        self
    }

    /// The response cache (and through it the node's metrics).
    pub fn cache(&self) -> &Arc<ResponseCache> {
        &self.cache
    }

    /// Uses `limits` (an edge's, with its identity) for keys, throttles and quotas.
    pub fn with_limits(mut self, limits: Arc<Limits>) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// Takes in a new replicated state for the stages that read it directly (keys, throttles,
    /// quotas); `routes_changed` is false when only quota bookkeeping changed. The routing
    /// snapshot is compiled and swapped separately ([`Gateway::swap`]).
    pub fn observe_state(&self, state: &portico_proto::GatewayState, routes_changed: bool) {
        self.limits.observe(state, routes_changed);
    }

    /// Publishes a new snapshot; requests in flight keep the one they loaded.
    pub fn swap(&self, snapshot: Snapshot) {
        self.cache.attach(&snapshot);
        self.snapshot.store(Arc::new(snapshot));
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Serves one request that arrived on `connection`.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        connection: ConnectionInfo,
    ) -> Response<Body> {
        let remote = connection.remote;
        let started = Instant::now();
        let received_at = SystemTime::now();
        let (request_id, extended_request_id, trace_id) =
            crate::ids::request_ids(crate::time::epoch_seconds(received_at));
        let (parts, body) = request.into_parts();
        // Borrowed from the request's parts, which live until the response is built.
        let path = parts.uri.path();
        let query = parts.uri.query();
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| parts.uri.authority().map(|authority| authority.as_str()));
        let protocol = match parts.version {
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };

        let mut integration_latency_ms = None;
        let (outcome, routed) = match declared_length_too_large(&parts.headers) {
            true => (
                Err(Failure::new(
                    GatewayError::RequestTooLarge,
                    "Content-Length over 10 MB",
                )),
                None,
            ),
            // The routed request holds its own references into the snapshot, so the ArcSwap
            // guard is released before the integration call.
            false => match route::resolve(&self.snapshot.load(), host, path, parts.method.as_str())
            {
                Err(error) => (Err(Failure::new(error, "no route")), None),
                Ok(routed) => match self.limits.admit(&routed, &parts.headers).await {
                    Err((error, why)) => (Err(Failure::new(error, why)), Some(routed)),
                    Ok(()) => {
                        let view = RequestView {
                            request_id: &request_id,
                            extended_request_id: &extended_request_id,
                            trace_id: &trace_id,
                            routed: &routed,
                            parts: &parts,
                            path,
                            query,
                            host,
                            source_ip: remote.ip(),
                            local_port: connection.local.port(),
                            secure: connection.tls,
                            received_at,
                        };
                        let integration_started = Instant::now();
                        let outcome = crate::cache::serve(
                            &self.cache,
                            &view,
                            crate::body::incoming(body),
                            |body| integrate::invoke(&self.integrations, &view, body),
                        )
                        .await;
                        integration_latency_ms =
                            Some(integration_started.elapsed().as_secs_f64() * 1000.0);
                        (outcome, Some(routed))
                    }
                },
            },
        };

        let (mut response, failure) = match outcome {
            Ok(response) => (response, None),
            Err(failure) => (failure.error.into_response(), Some(failure)),
        };
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert(X_AMZN_REQUESTID, value);
        }
        if let Ok(value) = HeaderValue::from_str(&extended_request_id) {
            headers.insert(X_AMZ_APIGW_ID, value);
        }
        if let Ok(value) = HeaderValue::from_str(&trace_id) {
            headers
                .entry(integrate::http::X_AMZN_TRACE_ID)
                .or_insert(value);
        }

        observe::log_access(&AccessRecord {
            request_id: &request_id,
            source_ip: remote.ip(),
            method: parts.method.as_str(),
            resource_path: routed
                .as_ref()
                .map(|routed| routed.method.resource_path.as_ref()),
            path,
            protocol,
            status: response.status().as_u16(),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            integration_latency_ms,
            api_id: routed.as_ref().map(|routed| routed.stage.api_id.as_ref()),
            stage: routed.as_ref().map(|routed| routed.stage.name.as_ref()),
            error: failure.as_ref().map(|failure| failure.error.kind()),
            error_detail: failure.as_ref().map(|failure| failure.detail.as_ref()),
        });
        response
    }
}

fn declared_length_too_large(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|length| length > integrate::MAX_REQUEST_BODY_BYTES as u64)
}
