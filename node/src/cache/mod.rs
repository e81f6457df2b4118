//! Response caching (issue #6): the node's own cache (L1), in front of the integration.
//!
//! ```text
//!  routed request ─▶ method cached? ──no──▶ integrate (nothing else paid)
//!                         │yes
//!                         ▼
//!          Cache-Control: max-age=0? ─▶ authority (SigV4) ─▶ invalidate | 403 | warn | ignore
//!                         ▼
//!        L1 (moka) fresh? ──yes──▶ Hit
//!                         │no: one fill per key (moka coalesces; joiners wait for it)
//!                         ▼
//!        L2 (shared tier, if any) fresh? ──yes──▶ stored in L1, Hit
//!                         │no
//!                         ▼
//!        backend ─▶ 2xx and ≤ 1 MiB: stored in L1 and L2, Miss
//!                ─▶ error or 5xx with a stale entry in its window: stale entry kept, Stale
//!                ─▶ anything else: passed through untouched, not stored
//! ```
//!
//! One store per cache-enabled stage, bounded by its `cacheClusterSize` (and the node's cap),
//! weighed in bytes. The stage's cache generation is in every key, so FlushStageCache needs no
//! scan. Stores live across snapshot swaps (`ResponseCache::attach`) while their capacity is
//! unchanged, as API Gateway keeps a stage's cache across deployments.
//!
//! `shared` is the seam to the region's L2; `auth` is the seam to whoever decides who may
//! invalidate (`dev::invalidation` in `dev`, the region's origins on an edge).

pub mod auth;
mod buffer;
pub mod key;
pub mod shared;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt as _;
use moka::Expiry;
use portico_proto::cache::{CachedResponse, InvalidationRequest};
use prometheus_client::metrics::counter::Counter;

use crate::body::Body;
use crate::config::cache::{MethodCache, StageCache, UnauthorizedStrategy};
use crate::config::compile::Snapshot;
use crate::integrate::MAX_REQUEST_BODY_BYTES;
use crate::observe::metrics::{CacheLabels, Metrics};
use crate::request::{Failure, RequestView};
use crate::respond::GatewayError;
use auth::InvalidationAuthority;
use shared::{SharedLookup, SharedTier};

pub use buffer::CACHEABLE_BODY_BYTES_MAX;

/// The warning API Gateway adds when it ignores an unauthorized `Cache-Control: max-age=0`
/// under SUCCEED_WITH_RESPONSE_HEADER (see ARCHITECTURE.md for where the text comes from).
pub const UNAUTHORIZED_WARNING: &str =
    "199 Cache-control headers were ignored because the caller was unauthorized.";

/// The 403 message under FAIL_WITH_403 (AWS's exact text was not recorded; this is the shape
/// of its IAM denials).
pub const UNAUTHORIZED_MESSAGE: &str =
    "User: anonymous is not authorized to perform: execute-api:InvalidateCache";

/// How long a request waits for the authority's answer before treating the caller as
/// unauthorized.
const AUTHORITY_WAIT: Duration = Duration::from_secs(2);

/// Response headers a cached copy never keeps: they belong to the request that fetched it.
const PER_REQUEST_HEADERS: [&str; 3] = ["x-amzn-requestid", "x-amz-apigw-id", "x-amzn-trace-id"];

/// Node-level options.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    /// A cap on every stage's capacity in bytes, below its `cacheClusterSize` (tests, small
    /// machines). `None`: the stage's size decides.
    pub capacity_bytes_max: Option<u64>,
}

/// What a store holds for a key: the response, or `None` for a fill that could not be stored
/// (it expires at once; it only tells coalesced waiters to fetch for themselves).
#[derive(Debug, Clone)]
struct Slot {
    response: Option<Arc<Stored>>,
    /// Wall-clock ms after which the entry is dropped: freshness plus the stale-if-error window.
    keep_until_ms: u64,
}

struct SlotExpiry;

impl SlotExpiry {
    fn remaining(slot: &Slot) -> Option<Duration> {
        Some(Duration::from_millis(
            slot.keep_until_ms.saturating_sub(now_ms()),
        ))
    }
}

impl Expiry<Arc<[u8]>, Slot> for SlotExpiry {
    fn expire_after_create(
        &self,
        _key: &Arc<[u8]>,
        slot: &Slot,
        _created_at: Instant,
    ) -> Option<Duration> {
        Self::remaining(slot)
    }

    fn expire_after_update(
        &self,
        _key: &Arc<[u8]>,
        slot: &Slot,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Self::remaining(slot)
    }
}

/// One stage's store.
struct Store {
    entries: moka::future::Cache<Arc<[u8]>, Slot>,
    capacity_bytes: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("capacity_bytes", &self.capacity_bytes)
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl Store {
    fn new(capacity_bytes: u64) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &Arc<[u8]>, slot: &Slot| {
                let weight = key.len()
                    + slot
                        .response
                        .as_ref()
                        .map_or(64, |response| response.weight());
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .expire_after(SlotExpiry)
            .build();
        Store {
            entries,
            capacity_bytes,
        }
    }
}

/// A stage's store plus the counters of its cached methods in the attached snapshot.
#[derive(Debug)]
struct StageRuntime {
    store: Arc<Store>,
    counters: HashMap<Arc<str>, (Counter, Counter)>,
}

/// The node's response cache: every cache-enabled stage's store, the L2 seam, the authority.
pub struct ResponseCache {
    options: CacheOptions,
    shared: Option<Arc<dyn SharedTier>>,
    authority: OnceLock<Arc<dyn InvalidationAuthority>>,
    metrics: Arc<Metrics>,
    stages: ArcSwap<HashMap<Arc<str>, Arc<StageRuntime>>>,
    /// Serialises `attach` (snapshot swaps), never taken by requests.
    attaching: Mutex<()>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("options", &self.options)
            .field("shared", &self.shared)
            .field("authority", &self.authority.get())
            .field("stages", &self.stages.load().len())
            .finish()
    }
}

impl ResponseCache {
    pub fn new(
        options: CacheOptions,
        shared: Option<Arc<dyn SharedTier>>,
        authority: Option<Arc<dyn InvalidationAuthority>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let cell = OnceLock::new();
        if let Some(authority) = authority {
            let _ = cell.set(authority);
        }
        ResponseCache {
            options,
            shared,
            authority: cell,
            metrics,
            stages: ArcSwap::from_pointee(HashMap::new()),
            attaching: Mutex::new(()),
        }
    }

    /// A cache without a shared tier or an authority (nobody may invalidate).
    pub fn local(options: CacheOptions, metrics: Arc<Metrics>) -> Self {
        Self::new(options, None, None, metrics)
    }

    /// Sets who may invalidate, when it can only be built after the gateway (`dev`, whose
    /// admin keys live in the control plane that holds the gateway). Only the first call counts.
    pub fn set_authority(&self, authority: Arc<dyn InvalidationAuthority>) {
        let _ = self.authority.set(authority);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Makes the stores match `snapshot`: a store per cache-enabled stage (kept while its
    /// capacity is unchanged, new when it changed, dropped with its stage's cache) and the
    /// counters of every cached method. Called with every snapshot swap, off the request path.
    pub fn attach(&self, snapshot: &Snapshot) {
        let _guard = self
            .attaching
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.stages.load_full();
        let mut next = HashMap::new();
        for api in snapshot.apis.values() {
            for stage in api.stages.values() {
                let Some(settings) = &stage.cache else {
                    continue;
                };
                let capacity_bytes = match self.options.capacity_bytes_max {
                    Some(cap) => settings.capacity_bytes.min(cap),
                    None => settings.capacity_bytes,
                };
                let store = match current.get(&settings.stage_key) {
                    Some(runtime) if runtime.store.capacity_bytes == capacity_bytes => {
                        runtime.store.clone()
                    }
                    _ => Arc::new(Store::new(capacity_bytes)),
                };
                let counters = settings
                    .metric_methods
                    .iter()
                    .map(|method| {
                        let labels = CacheLabels {
                            api: api.id.to_string(),
                            stage: stage.name.to_string(),
                            method: method.to_string(),
                        };
                        (method.clone(), self.metrics.cache_counters(&labels))
                    })
                    .collect();
                next.insert(
                    settings.stage_key.clone(),
                    Arc::new(StageRuntime { store, counters }),
                );
            }
        }
        self.stages.store(Arc::new(next));
    }

    /// The weighted size (bytes) of a stage's store after its pending evictions ran, or `None`
    /// when the stage has no store. For tests and diagnostics.
    pub async fn weighted_size(&self, stage_key: &str) -> Option<u64> {
        let runtime = self.stages.load().get(stage_key).cloned()?;
        runtime.store.entries.run_pending_tasks().await;
        Some(runtime.store.entries.weighted_size())
    }

    /// A stage's effective capacity in bytes, or `None` when it has no store.
    pub fn capacity_bytes(&self, stage_key: &str) -> Option<u64> {
        self.stages
            .load()
            .get(stage_key)
            .map(|runtime| runtime.store.capacity_bytes)
    }

    async fn authorized(&self, view: &RequestView<'_>, body: &Bytes) -> bool {
        let Some(authority) = self.authority.get() else {
            return false;
        };
        let mut headers: Vec<(String, Vec<u8>)> = view
            .parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect();
        // HTTP/2 carries the host as `:authority`; SigV4 signs it as `host`.
        if !view.parts.headers.contains_key(http::header::HOST)
            && let Some(host) = view.host
        {
            headers.push(("host".to_string(), host.as_bytes().to_vec()));
        }
        let request = InvalidationRequest {
            method: view.parts.method.as_str().to_string(),
            path: view.path.to_string(),
            query: view.query.map(str::to_string),
            headers,
            body: body.to_vec(),
        };
        tokio::time::timeout(AUTHORITY_WAIT, authority.may_invalidate(request))
            .await
            .unwrap_or(false)
    }
}

/// How the response was obtained, for `x-cache` and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Miss,
    Stale,
}

impl Outcome {
    fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Outcome::Hit => "Hit",
            Outcome::Miss => "Miss",
            Outcome::Stale => "Stale",
        })
    }
}

/// Serves a routed request through the cache: `invoke` calls the integration (at most once
/// per call of `serve`; a request that joined another's fill calls it only if that fill could
/// not be stored). Methods that are not cached go straight to `invoke`.
pub async fn serve<'v, F, Fut>(
    cache: &ResponseCache,
    view: &RequestView<'v>,
    body: Body,
    invoke: F,
) -> Result<Response<Body>, Failure>
where
    F: Fn(Body) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Failure>>,
{
    let (Some(method), Some(stage)) = (&view.method().cache, &view.stage().cache) else {
        return invoke(body).await;
    };
    let Some(runtime) = cache.stages.load().get(&stage.stage_key).cloned() else {
        return invoke(body).await;
    };
    serve_cached(cache, &runtime, stage, method, view, body, &invoke).await
}

#[allow(clippy::too_many_arguments)]
async fn serve_cached<F, Fut>(
    cache: &ResponseCache,
    runtime: &StageRuntime,
    stage: &StageCache,
    method: &MethodCache,
    view: &RequestView<'_>,
    mut body: Body,
    invoke: &F,
) -> Result<Response<Body>, Failure>
where
    F: Fn(Body) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Failure>>,
{
    let key = key::for_request(stage, method, view);
    let counters = runtime.counters.get(&method.metric_method);

    let mut invalidate = false;
    let mut warn = false;
    if asks_invalidation(&view.parts.headers) {
        let allowed = match method.require_authorization {
            false => true,
            true => {
                // The signature covers the body: read it (bounded), then hand it on.
                let bytes = match crate::body::limited(body, MAX_REQUEST_BODY_BYTES)
                    .collect()
                    .await
                {
                    Ok(collected) => collected.to_bytes(),
                    Err(error) => {
                        let too_large = error
                            .downcast_ref::<http_body_util::LengthLimitError>()
                            .is_some();
                        return Err(Failure::new(
                            match too_large {
                                true => GatewayError::RequestTooLarge,
                                false => GatewayError::BadRequest,
                            },
                            format!("reading the body of a cache invalidation request: {error}"),
                        ));
                    }
                };
                let allowed = cache.authorized(view, &bytes).await;
                body = crate::body::full(bytes);
                allowed
            }
        };
        match (allowed, method.unauthorized_strategy) {
            (true, _) => invalidate = true,
            (false, UnauthorizedStrategy::FailWith403) => {
                return Ok(crate::respond::json_error(
                    StatusCode::FORBIDDEN,
                    "AccessDeniedException",
                    UNAUTHORIZED_MESSAGE,
                ));
            }
            (false, UnauthorizedStrategy::SucceedWithResponseHeader) => warn = true,
            (false, UnauthorizedStrategy::SucceedWithoutResponseHeader) => {}
        }
    }

    let entries = &runtime.store.entries;
    let previous = entries.get(&key).await;
    if !invalidate
        && let Some(response) = previous
            .as_ref()
            .and_then(|slot| slot.response.as_ref())
            .filter(|response| response.is_fresh_at(now_ms()))
    {
        return Ok(finish(
            cached_response(response),
            Outcome::Hit,
            stage,
            counters,
            warn,
        ));
    }
    // A stale entry still inside its stale-if-error window (the store drops it after).
    let stale =
        previous.and_then(|slot| slot.response.map(|response| (response, slot.keep_until_ms)));

    let mut own_body = Some(body);
    let mut own = Fetched::default();
    let slot = entries
        .entry(key.clone())
        .or_insert_with_if(
            async {
                fill(
                    cache,
                    stage,
                    method,
                    &key,
                    invalidate,
                    own_body.take(),
                    stale.clone(),
                    &mut own,
                    invoke,
                )
                .await
            },
            |existing: &Slot| {
                invalidate
                    || existing
                        .response
                        .as_ref()
                        .is_none_or(|response| !response.is_fresh_at(now_ms()))
            },
        )
        .await
        .into_value();

    if let Some(response) = own.response {
        // This request fetched and the answer was not stored: it is the client's as it came.
        return response.map(|response| finish(response, Outcome::Miss, stage, counters, warn));
    }
    match slot.response {
        Some(response) => {
            // A hit is an answer this request did not ask the backend for: from L1, from L2,
            // or from a fill another request made.
            let outcome = match (response.is_fresh_at(now_ms()), own.called_backend) {
                (false, _) => Outcome::Stale,
                (true, true) => Outcome::Miss,
                (true, false) => Outcome::Hit,
            };
            Ok(finish(
                cached_response(&response),
                outcome,
                stage,
                counters,
                warn,
            ))
        }
        None => {
            // Joined a fill that could not be stored (an error, a non-2xx, a large body): the
            // answer was that request's alone, so this one asks the backend itself.
            let body = own_body.take().unwrap_or_else(crate::body::empty);
            invoke(body)
                .await
                .map(|response| finish(response, Outcome::Miss, stage, counters, warn))
        }
    }
}

/// What the request that ran a fill learnt beyond what the store keeps.
#[derive(Default)]
struct Fetched {
    /// The backend's answer when the store does not keep it: this request's alone.
    response: Option<Result<Response<Body>, Failure>>,
    called_backend: bool,
}

/// The one fill of a key: L2, then the backend. Returns what the store keeps; a response the
/// store does not keep goes to `own.response` for the request that fetched it.
#[allow(clippy::too_many_arguments)]
async fn fill<F, Fut>(
    cache: &ResponseCache,
    stage: &StageCache,
    method: &MethodCache,
    key: &Arc<[u8]>,
    invalidate: bool,
    body: Option<Body>,
    stale: Option<(Arc<Stored>, u64)>,
    own: &mut Fetched,
    invoke: &F,
) -> Slot
where
    F: Fn(Body) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Failure>>,
{
    let not_stored = Slot {
        response: None,
        keep_until_ms: 0,
    };
    if !invalidate
        && let Some(shared) = &cache.shared
        && let SharedLookup::Hit(response) = shared.get(key.clone()).await
        && response.is_fresh_at(now_ms())
    {
        let keep_until_ms = keep_until(&response, stage);
        return Slot {
            response: Some(Stored::new(response)),
            keep_until_ms,
        };
    }
    own.called_backend = true;
    let outcome = invoke(body.unwrap_or_else(crate::body::empty)).await;
    let serve_stale = |outcome: &Result<Response<Body>, Failure>| {
        stage.stale_if_error_ms > 0
            && match outcome {
                Err(_) => true,
                Ok(response) => response.status().is_server_error(),
            }
    };
    if serve_stale(&outcome)
        && let Some((response, keep_until_ms)) = stale
        && now_ms() < keep_until_ms
    {
        // The stale copy goes back in (the fill replaced it) until its window closes.
        return Slot {
            response: Some(response),
            keep_until_ms,
        };
    }
    let response = match outcome {
        Ok(response) if response.status().is_success() => response,
        other => {
            own.response = Some(other);
            return not_stored;
        }
    };
    match buffer::read(response, CACHEABLE_BODY_BYTES_MAX).await {
        buffer::Buffered::Passed(response) => {
            own.response = Some(Ok(response));
            not_stored
        }
        buffer::Buffered::Complete(parts, bytes) => {
            let headers = parts
                .headers
                .iter()
                .filter(|(name, _)| !PER_REQUEST_HEADERS.contains(&name.as_str()))
                .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
                .collect();
            let entry = Arc::new(CachedResponse {
                status: parts.status.as_u16(),
                headers,
                body: bytes.to_vec(),
                stored_at_ms: now_ms(),
                ttl_ms: method.ttl_ms,
            });
            if let Some(shared) = &cache.shared {
                shared.put(key.clone(), entry.clone());
            }
            let keep_until_ms = keep_until(&entry, stage);
            Slot {
                response: Some(Stored::new(entry)),
                keep_until_ms,
            }
        }
    }
}

fn keep_until(response: &CachedResponse, stage: &StageCache) -> u64 {
    response
        .stored_at_ms
        .saturating_add(response.ttl_ms)
        .saturating_add(stage.stale_if_error_ms)
}

/// Counts the request and adds the cache's response headers.
fn finish(
    mut response: Response<Body>,
    outcome: Outcome,
    stage: &StageCache,
    counters: Option<&(Counter, Counter)>,
    warn: bool,
) -> Response<Body> {
    if let Some((hits, misses)) = counters {
        match outcome {
            Outcome::Miss => misses.inc(),
            Outcome::Hit | Outcome::Stale => hits.inc(),
        };
    }
    if stage.x_cache_header {
        response
            .headers_mut()
            .insert("x-cache", outcome.header_value());
    }
    if warn {
        response
            .headers_mut()
            .insert("warning", HeaderValue::from_static(UNAUTHORIZED_WARNING));
    }
    response
}

/// Lets a cached body be sent without copying it.
struct EntryBody(Arc<CachedResponse>);

impl AsRef<[u8]> for EntryBody {
    fn as_ref(&self) -> &[u8] {
        &self.0.body
    }
}

/// A cached response with what serving it needs, prepared once when it is stored: a hit then
/// clones a header map and a `Bytes` handle instead of parsing header names and values.
#[derive(Debug)]
struct Stored {
    entry: Arc<CachedResponse>,
    status: StatusCode,
    headers: http::HeaderMap,
    /// Shares `entry.body`'s memory.
    body: Bytes,
}

impl Stored {
    fn new(entry: Arc<CachedResponse>) -> Arc<Stored> {
        let mut headers = http::HeaderMap::with_capacity(entry.headers.len());
        for (name, value) in &entry.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
        Arc::new(Stored {
            status: StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK),
            body: Bytes::from_owner(EntryBody(entry.clone())),
            headers,
            entry,
        })
    }
}

impl std::ops::Deref for Stored {
    type Target = CachedResponse;

    fn deref(&self) -> &CachedResponse {
        &self.entry
    }
}

fn cached_response(stored: &Stored) -> Response<Body> {
    let mut response = Response::new(crate::body::full(stored.body.clone()));
    *response.status_mut() = stored.status;
    *response.headers_mut() = stored.headers.clone();
    response
}

/// Whether the request carries `Cache-Control: max-age=0` (any of its directives, any case).
fn asks_invalidation(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|directive| {
            let directive = directive.trim();
            directive.len() == 9 && directive.eq_ignore_ascii_case("max-age=0")
        })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_directive() {
        let mut headers = http::HeaderMap::new();
        assert!(!asks_invalidation(&headers));
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, MAX-AGE=0"),
        );
        assert!(asks_invalidation(&headers));
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=00"),
        );
        assert!(!asks_invalidation(&headers));
    }
}
