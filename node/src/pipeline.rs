//! The request pipeline of an edge: one function from request to response.
//!
//! ```text
//! request ─▶ host, target, size ─▶ route (API, stage, resource, method) ─▶ limits ─▶ cache ─▶ integrate ─▶ stamp ids ─▶ log
//!                  │                   │                                       │         │          │
//!                  └───────────────────┴────────── GatewayError ──▶ respond ◀──┴─────────┴──────────┘
//! ```
//!
//! Hostile input is settled at the front, once: the host every stage reads is validated here
//! (RFC 9112), and the body every stage reads is a `body::ClientBody`, so a stalled upload times
//! out the same way for every integration, a framing error is the client's 400 wherever it
//! surfaces, and a refused upload is drained rather than reset.
//!
//! The compiled snapshot is loaded once per request from an `ArcSwap`: no lock, no wait, and a
//! request that started on one snapshot finishes on it even if a new deployment is swapped in
//! meanwhile. The limits stage (API keys, throttles, quotas) runs between route and integrate;
//! authorizers and the cache come around it.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use http::{HeaderName, Request, Response};
use hyper::body::Incoming;

use crate::authorize::Authorizers;
use crate::body::Body;
use crate::cache::ResponseCache;
use crate::config::compile::Snapshot;
use crate::integrate::{self, Integrations};
use crate::limits::{self, Limits};
use crate::observe::{self, AccessRecord};
use crate::request::{ConnectionInfo, Failure, RequestView};
use crate::respond::{self, GatewayError};
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
    authorizers: Arc<Authorizers>,
    /// How long a request body may stall while a stage waits for it.
    body_idle_timeout: std::time::Duration,
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
            authorizers: Arc::new(Authorizers::default()),
            body_idle_timeout: crate::body::REQUEST_BODY_IDLE_TIMEOUT,
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

    /// Uses `authorizers` (the node's decision cache and verifiers) for authorization.
    pub fn with_authorizers(mut self, authorizers: Arc<Authorizers>) -> Self {
        self.authorizers = authorizers;
        self
    }

    /// Answers 408 when a request body delivers nothing for `timeout` while a stage waits for
    /// it (default [`crate::body::REQUEST_BODY_IDLE_TIMEOUT`]).
    pub fn with_body_idle_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.body_idle_timeout = timeout;
        self
    }

    pub fn authorizers(&self) -> &Arc<Authorizers> {
        &self.authorizers
    }

    /// Takes in a new replicated state for the stages that read it directly (keys, throttles,
    /// quotas); `routes_changed` is false when only quota bookkeeping changed. The routing
    /// snapshot is compiled and swapped separately ([`Gateway::swap`]).
    pub fn observe_state(&self, state: &portico_proto::GatewayState, routes_changed: bool) {
        self.limits.observe(state, routes_changed);
        if routes_changed {
            self.authorizers.observe_state(state);
        }
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
        let ids = crate::ids::RequestIds::new(crate::time::epoch_seconds(received_at));
        let (request_id, extended_request_id, trace_id) =
            (ids.request_id(), ids.extended(), ids.trace());
        let (parts, body) = request.into_parts();
        let body = crate::body::ClientBody::new(
            body,
            self.body_idle_timeout,
            parts.version <= http::Version::HTTP_11,
            parts
                .headers
                .get(http::header::EXPECT)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue")),
        )
        .into_body();
        // Borrowed from the request's parts, which live until the response is built.
        let path = parts.uri.path();
        let query = parts.uri.query();
        // The one host every later stage sees; refused when RFC 9112 says the request names
        // none acceptably.
        let (host, refused) = match route::host::request_host(&parts) {
            Ok(host) => (host, None),
            Err(error) => (
                None,
                Some(Failure::with_message(
                    GatewayError::BadRequest,
                    error.message(),
                    error.message(),
                )),
            ),
        };
        let host = host.as_deref();
        let refused = refused.or_else(|| refuse_before_routing(&parts));
        let protocol = match parts.version {
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };

        let mut integration_latency_ms = None;
        let (mut response, failure, routed) = match refused {
            Some(failure) => {
                // Dropping the body unread lingers on it (`body::ClientBody`), so the client
                // reads this answer rather than a reset.
                drop(body);
                (
                    self.render_unrouted(&failure, host, path, request_id),
                    Some(failure),
                    None,
                )
            }
            // The routed request holds its own references into the snapshot, so the ArcSwap
            // guard is released before the integration call.
            None => {
                match route::resolve(&self.snapshot.load(), host, path, parts.method.as_str()) {
                    Err(error) => {
                        let failure = Failure::new(error, "no route");
                        (
                            self.render_unrouted(&failure, host, path, request_id),
                            Some(failure),
                            None,
                        )
                    }
                    Ok(routed) => {
                        let view = RequestView {
                            request_id,
                            extended_request_id,
                            trace_id,
                            trace_header: &ids.trace,
                            routed: &routed,
                            parts: &parts,
                            path,
                            query,
                            host,
                            source_ip: remote.ip(),
                            local_port: connection.local.port(),
                            secure: connection.tls,
                            received_at,
                            auth: None,
                        };
                        let (outcome, latency) = self.serve_routed(&view, body).await;
                        integration_latency_ms = latency;
                        match outcome {
                            Ok(response) => (response, None, Some(routed)),
                            Err(failure) => {
                                let response = respond::gateway::render(
                                    failure.error,
                                    failure.message.as_deref(),
                                    Some(&view.stage().gateway_responses),
                                    &ViewContext(&view),
                                );
                                (response, Some(failure), Some(routed))
                            }
                        }
                    }
                }
            }
        };

        let headers = response.headers_mut();
        headers.insert(X_AMZN_REQUESTID, ids.request_id.clone());
        headers.insert(X_AMZ_APIGW_ID, ids.extended.clone());
        headers
            .entry(integrate::http::X_AMZN_TRACE_ID)
            .or_insert_with(|| ids.trace.clone());

        observe::log_access(&AccessRecord {
            request_id,
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

impl Gateway {
    /// Authorization, then keys and throttles, then the cache and the integration: API
    /// Gateway's order. The second value is the integration latency, when it was called.
    async fn serve_routed(
        &self,
        view: &RequestView<'_>,
        body: Body,
    ) -> (Result<Response<Body>, Failure>, Option<f64>) {
        // An AWS_IAM method's signature covers the body's hash: read it first (bounded).
        let (body, read) = if Authorizers::needs_body(view) {
            match integrate::read_body(body).await {
                Ok(bytes) => (crate::body::full(bytes.clone()), Some(bytes)),
                Err(failure) => return (Err(failure), None),
            }
        } else {
            (body, None)
        };
        let authorized = match self
            .authorizers
            .authorize(&self.integrations, view, read.as_deref())
            .await
        {
            Ok(authorized) => authorized,
            Err(failure) => return (Err(failure), None),
        };
        let view = RequestView {
            auth: authorized.as_deref(),
            ..*view
        };
        let authorizer_key = authorized
            .as_deref()
            .and_then(|auth| auth.usage_identifier_key.as_deref());
        if let Err((error, why)) = self
            .limits
            .admit(view.routed, &view.parts.headers, authorizer_key)
            .await
        {
            return (Err(Failure::new(error, why)), None);
        }
        let started = Instant::now();
        let outcome = crate::cache::serve(&self.cache, &view, body, |body| {
            integrate::invoke(&self.integrations, &view, body)
        })
        .await;
        (outcome, Some(started.elapsed().as_secs_f64() * 1000.0))
    }

    /// An error before routing completed: the stage's gateway responses still apply when the
    /// path names a stage.
    fn render_unrouted(
        &self,
        failure: &Failure,
        host: Option<&str>,
        path: &str,
        request_id: &str,
    ) -> Response<Body> {
        let stage = route::stage_for(&self.snapshot.load(), host, path)
            .filter(|stage| !stage.gateway_responses.is_empty());
        match &stage {
            Some(stage) => respond::gateway::render(
                failure.error,
                failure.message.as_deref(),
                Some(&stage.gateway_responses),
                &StageContext { request_id, stage },
            ),
            None => respond::gateway::render(
                failure.error,
                failure.message.as_deref(),
                None,
                &respond::gateway::RequestIdOnly(request_id),
            ),
        }
    }
}

/// A routed request as gateway response templates see it.
struct ViewContext<'a>(&'a RequestView<'a>);

impl respond::gateway::ErrorContext for ViewContext<'_> {
    fn context(&self, name: &str) -> Option<String> {
        integrate::params::context_variable(name, self.0)
    }

    fn stage_variable(&self, name: &str) -> Option<String> {
        self.0.stage().variables.get(name).cloned()
    }

    fn parameter(&self, source: &str) -> Option<String> {
        let source = crate::config::compile::ValueSource::parse(source)?;
        let query = integrate::params::parse_query(self.0.query);
        integrate::params::resolve(&source, self.0, &query, None)?.last()
    }
}

/// A request whose stage is known but whose route is not.
struct StageContext<'a> {
    request_id: &'a str,
    stage: &'a crate::config::compile::CompiledStage,
}

impl respond::gateway::ErrorContext for StageContext<'_> {
    fn context(&self, name: &str) -> Option<String> {
        match name {
            "requestId" => Some(self.request_id.to_string()),
            "apiId" => Some(self.stage.api_id.to_string()),
            "stage" => Some(self.stage.name.to_string()),
            _ => None,
        }
    }

    fn stage_variable(&self, name: &str) -> Option<String> {
        self.stage.variables.get(name).cloned()
    }

    fn parameter(&self, source: &str) -> Option<String> {
        match source.strip_prefix("stageVariables.") {
            Some(name) => self.stage_variable(name),
            None => self.context(source.strip_prefix("context.")?),
        }
    }
}

/// What is refused from the request line and head alone, before routing: a request target over
/// [`respond::MAX_REQUEST_TARGET_BYTES`] (414), a declared body over the payload limit (413).
fn refuse_before_routing(parts: &http::request::Parts) -> Option<Failure> {
    let target_bytes = parts
        .uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_bytes > respond::MAX_REQUEST_TARGET_BYTES {
        return Some(Failure::new(
            GatewayError::UriTooLong,
            format!("request target of {target_bytes} bytes"),
        ));
    }
    let declared_too_large = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|length| length > integrate::MAX_REQUEST_BODY_BYTES as u64);
    declared_too_large
        .then(|| Failure::new(GatewayError::RequestTooLarge, "Content-Length over 10 MB"))
}
