//! The region's shared response cache (L2) on the origins, and the edge's ends of the two cache
//! seams that need an origin: the shared tier and the invalidation authority.
//!
//! ```text
//!   edge 101 ─CacheGet k─▶ origin (region a) ── miss: 101 fills k ──▶ CacheMiss
//!   edge 102 ─CacheGet k─▶     │  k is being filled: wait (≤ 10 s)
//!   edge 101 ─CachePut k─▶     ├─ store k (moka, bytes-weighed, TTL per entry)
//!                              └─ wake the waiters ──▶ CacheHit to 102
//!   edge ─AuthorizeInvalidation─▶ origin: SigV4 (execute-api) against the admin keys
//! ```
//!
//! Why on the origins: an edge's L1 only helps the requests that edge serves; the origin of a
//! region sees the misses of all its edges, so it can hold one copy per region and let one
//! edge call the backend while the others wait for its answer (single flight across edges).
//! Why not replicated: a cache is not state. Nothing here goes through Raft; an origin that
//! restarts starts empty, and edges in another region have their own origin's L2.
//!
//! A flush (FlushStageCache) is a generation bump in the replicated state; the generation is
//! part of every key, so after a flush no key of the old generation is ever asked for again and
//! its entries age out of the L2 by TTL or capacity. The L2 never needs to understand a key.
//!
//! Every wait is bounded: a waiter for a fill gives up with the fill's deadline (the filler's
//! edge may have failed, or its backend answered something not cacheable, which is never put),
//! and the edge's calls have timeouts of their own, after which the request goes to the
//! backend as if the L2 were not there.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use portico_proto::AdminKey;
use portico_proto::cache::{CachedResponse, InvalidationRequest};
use portico_proto::cluster::{NodeRequest, NodeResponse};
use tokio::sync::watch;
use tokio::time::Instant;

use super::certs::PeerIdentity;
use super::config::Peer;
use super::transport::{Transport, TransportError};
use crate::admin::secrets::SealingKey;
use crate::cache::auth::InvalidationAuthority;
use crate::cache::shared::{SharedLookup, SharedTier};
use crate::request::BoxFuture;

/// The L2's size when the origin's config does not say (`[cache] l2_capacity_mb`).
pub const DEFAULT_CAPACITY_BYTES: u64 = 256 * 1024 * 1024;
/// How long later askers of a key wait for its filler's put. Longer than most backends take,
/// shorter than the edge's own patience ([`GET_TIMEOUT`]), so a waiter always gets an answer.
pub const FILL_WAIT: Duration = Duration::from_secs(10);
/// The edge's bound on one `CacheGet` (which may wait on a fill).
pub const GET_TIMEOUT: Duration = Duration::from_secs(11);
/// The edge's bound on one `AuthorizeInvalidation`.
pub const AUTHORIZE_TIMEOUT: Duration = Duration::from_secs(3);
const PUT_TIMEOUT: Duration = Duration::from_secs(5);
/// After a call to the origin failed, the edge answers `Unavailable` at once for this long
/// instead of making every request wait for a timeout of its own.
const UNREACHABLE_HOLD: Duration = Duration::from_secs(2);
/// Puts in flight from one edge; more are dropped (the entry is then only in the L1).
const MAX_PUTS_IN_FLIGHT: usize = 256;
/// Keys being filled at once on one origin; past it, misses are not coalesced.
const MAX_FILLS: usize = 65_536;
/// The longest key an L2 accepts. Keys are built by edges from an API, a stage, a resource
/// path and declared parameters, which the request head (64 KiB) already bounds.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// The largest entry an L2 keeps (AWS caches responses up to 1 MiB; headers on top).
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024 + 64 * 1024;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// === impl RegionalCache ===

/// What the L2 knows of a key.
#[derive(Debug, Clone)]
pub enum Lookup {
    Hit(Arc<CachedResponse>),
    /// Not there: the asker fetches from the backend and puts the answer.
    Miss,
}

/// A key some asker is fetching from the backend. Waiters watch `done`; the filler's put sends
/// the entry. Dropping the sender (a stale fill replaced, a put refused) releases them with a
/// miss.
struct Fill {
    id: u64,
    deadline: Instant,
    done: watch::Sender<Option<Arc<CachedResponse>>>,
}

/// One region's cache: entries weighed by bytes up to a capacity, each expiring at its own
/// `stored_at_ms + ttl_ms`, and the keys being filled.
pub struct RegionalCache {
    entries: moka::future::Cache<Arc<[u8]>, Arc<CachedResponse>>,
    fills: Mutex<HashMap<Arc<[u8]>, Fill>>,
    fill_wait: Duration,
    next_fill: AtomicU64,
}

impl std::fmt::Debug for RegionalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionalCache")
            .field("entries", &self.entries.entry_count())
            .field("weighted_size", &self.entries.weighted_size())
            .finish()
    }
}

/// Expires each entry when it goes stale (by the wall clock, as `stored_at_ms` is), so stale
/// entries stop costing capacity; `get` checks freshness again against its own `now`.
struct UntilStale;

impl UntilStale {
    fn remaining(entry: &CachedResponse) -> Duration {
        let stale_at = entry.stored_at_ms.saturating_add(entry.ttl_ms);
        Duration::from_millis(stale_at.saturating_sub(now_ms()))
    }
}

impl moka::Expiry<Arc<[u8]>, Arc<CachedResponse>> for UntilStale {
    fn expire_after_create(
        &self,
        _key: &Arc<[u8]>,
        value: &Arc<CachedResponse>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(UntilStale::remaining(value))
    }

    fn expire_after_update(
        &self,
        _key: &Arc<[u8]>,
        value: &Arc<CachedResponse>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(UntilStale::remaining(value))
    }
}

impl RegionalCache {
    pub fn new(capacity_bytes: u64, fill_wait: Duration) -> RegionalCache {
        let entries = moka::future::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &Arc<[u8]>, value: &Arc<CachedResponse>| {
                u32::try_from(key.len() + value.weight()).unwrap_or(u32::MAX)
            })
            .expire_after(UntilStale)
            .build();
        RegionalCache {
            entries,
            fills: Mutex::new(HashMap::new()),
            fill_wait,
            next_fill: AtomicU64::new(1),
        }
    }

    async fn fresh(&self, key: &Arc<[u8]>, now_ms: u64) -> Option<Arc<CachedResponse>> {
        self.entries
            .get(key)
            .await
            .filter(|entry| entry.is_fresh_at(now_ms))
    }

    /// Looks `key` up. The first miss makes the asker the key's filler; askers after it wait
    /// until the filler's put (a hit) or the fill's deadline (a miss).
    pub async fn get(&self, key: Arc<[u8]>, now_ms: u64) -> Lookup {
        if let Some(entry) = self.fresh(&key, now_ms).await {
            return Lookup::Hit(entry);
        }
        enum Role {
            Filler(u64),
            Waiter(watch::Receiver<Option<Arc<CachedResponse>>>, Instant),
            Uncoalesced,
        }
        let role = {
            let mut fills = self.fills.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            match fills.get(&key) {
                Some(fill) if now < fill.deadline => {
                    Role::Waiter(fill.done.subscribe(), fill.deadline)
                }
                _ => {
                    if fills.len() >= MAX_FILLS {
                        fills.retain(|_, fill| now < fill.deadline);
                    }
                    if fills.len() >= MAX_FILLS {
                        Role::Uncoalesced
                    } else {
                        let id = self.next_fill.fetch_add(1, Ordering::Relaxed);
                        // Replacing a stale fill drops its sender: anyone still on it misses.
                        fills.insert(
                            key.clone(),
                            Fill {
                                id,
                                deadline: now + self.fill_wait,
                                done: watch::channel(None).0,
                            },
                        );
                        Role::Filler(id)
                    }
                }
            }
        };
        let (mut done, deadline) = match role {
            Role::Uncoalesced => return Lookup::Miss,
            Role::Filler(id) => {
                // A put may have landed between the first look and taking the fill.
                if let Some(entry) = self.fresh(&key, now_ms).await {
                    self.finish_fill(&key, Some(id), Some(entry.clone()));
                    return Lookup::Hit(entry);
                }
                return Lookup::Miss;
            }
            Role::Waiter(done, deadline) => (done, deadline),
        };
        let filled = tokio::time::timeout_at(deadline, done.wait_for(Option::is_some)).await;
        match filled {
            Ok(Ok(entry)) => entry.clone().map_or(Lookup::Miss, Lookup::Hit),
            _ => Lookup::Miss,
        }
    }

    /// Ends the fill of `key` (only fill `id`, when given), handing `entry` to its waiters, or
    /// releasing them with a miss when there is none.
    fn finish_fill(&self, key: &Arc<[u8]>, id: Option<u64>, entry: Option<Arc<CachedResponse>>) {
        let mut fills = self.fills.lock().unwrap_or_else(PoisonError::into_inner);
        let ours = fills
            .get(key)
            .is_some_and(|fill| id.is_none_or(|id| fill.id == id));
        if ours && let Some(fill) = fills.remove(key) {
            drop(fills);
            if entry.is_some() {
                fill.done.send_replace(entry);
            }
        }
    }

    /// Stores `entry` and wakes whoever waits for `key`. Entries already stale or larger than
    /// [`MAX_ENTRY_BYTES`] are not kept (their waiters get a miss).
    pub async fn put(&self, key: Arc<[u8]>, entry: Arc<CachedResponse>, now_ms: u64) {
        if !entry.is_fresh_at(now_ms) || entry.weight() > MAX_ENTRY_BYTES {
            self.finish_fill(&key, None, None);
            return;
        }
        self.entries.insert(key.clone(), entry.clone()).await;
        self.finish_fill(&key, None, Some(entry));
    }

    /// The bytes held (after moka's pending maintenance).
    pub async fn weighted_size(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.weighted_size()
    }
}

// === impl OriginL2 ===

/// Looks an admin key up in the replicated state by its access key id.
pub type AdminKeyLookup = Box<dyn Fn(&str) -> Option<AdminKey> + Send + Sync>;

/// What an origin needs to check an invalidation's signature: its admin keys (from the
/// replicated state, sealed) and the key that opens them.
pub struct InvalidationVerifier {
    pub sealing: SealingKey,
    /// Region names accepted in credential scopes; empty accepts any (as the management API).
    pub regions: Vec<String>,
    pub admin_key: AdminKeyLookup,
}

impl std::fmt::Debug for InvalidationVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvalidationVerifier")
            .field("regions", &self.regions)
            .finish()
    }
}

impl InvalidationVerifier {
    /// True when the request is SigV4-signed for `execute-api` by an enabled admin key.
    pub fn verify(&self, request: &InvalidationRequest, now_epoch_s: i64) -> bool {
        let region_allowed =
            |region: &str| self.regions.is_empty() || self.regions.iter().any(|r| r == region);
        crate::cache::auth::verify_invalidation(request, now_epoch_s, &region_allowed, &|id| {
            self.sealing.open_admin_key((self.admin_key)(id)?)
        })
    }
}

/// An origin's side: the region's cache and, with `[admin]`, the invalidation check.
#[derive(Debug)]
pub struct OriginL2 {
    pub cache: RegionalCache,
    pub invalidation: Option<InvalidationVerifier>,
}

impl OriginL2 {
    pub fn new(capacity_bytes: u64, invalidation: Option<InvalidationVerifier>) -> OriginL2 {
        OriginL2 {
            cache: RegionalCache::new(capacity_bytes, FILL_WAIT),
            invalidation,
        }
    }

    /// Answers one cache request. Edges and member origins may use the cache; the admin
    /// certificate and non-member origins may not (the caller says whether `peer` is a member).
    pub async fn handle(
        &self,
        peer: &PeerIdentity,
        member: bool,
        request: NodeRequest,
    ) -> NodeResponse {
        let allowed = match peer {
            PeerIdentity::Edge(_) => true,
            PeerIdentity::Node(_) => member,
            PeerIdentity::Admin => false,
        };
        if !allowed {
            return NodeResponse::Error(
                "cache requests are accepted from edges and member origins only".into(),
            );
        }
        let key_len = match &request {
            NodeRequest::CacheGet { key } | NodeRequest::CachePut { key, .. } => key.len(),
            _ => 0,
        };
        if key_len > MAX_KEY_BYTES {
            return NodeResponse::Error(format!(
                "cache keys are at most {MAX_KEY_BYTES} bytes; this one has {key_len}"
            ));
        }
        match request {
            NodeRequest::CacheGet { key } => match self.cache.get(key.into(), now_ms()).await {
                Lookup::Hit(entry) => NodeResponse::CacheHit(Arc::unwrap_or_clone(entry)),
                Lookup::Miss => NodeResponse::CacheMiss,
            },
            NodeRequest::CachePut { key, entry } => {
                self.cache.put(key.into(), Arc::new(entry), now_ms()).await;
                NodeResponse::Done
            }
            NodeRequest::AuthorizeInvalidation(request) => {
                let now = crate::time::epoch_seconds(SystemTime::now());
                let allowed = self
                    .invalidation
                    .as_ref()
                    .is_some_and(|verifier| verifier.verify(&request, now));
                NodeResponse::Authorized(allowed)
            }
            other => NodeResponse::Error(format!("not a cache request: {other:?}")),
        }
    }
}

// === impl QuicSharedTier ===

/// The origin an edge follows (set by `edge.rs` while a subscription stream is up, cleared
/// when it breaks). The edge asks its L2 there: the origin of its own region while it is up.
pub type CurrentOrigin = Arc<Mutex<Option<Peer>>>;

/// The edge's way to the origin it follows, shared by both seams: skips the origin for a
/// moment after a call failed, so a dead origin costs one timeout, not one per request.
#[derive(Debug)]
struct OriginLink {
    transport: Transport,
    current: CurrentOrigin,
    held_until: Mutex<Option<Instant>>,
}

impl OriginLink {
    fn target(&self) -> Option<SocketAddr> {
        let held = self
            .held_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until);
        if held {
            return None;
        }
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|origin| origin.addr)
    }

    async fn call(&self, request: &NodeRequest, timeout: Duration) -> Option<NodeResponse> {
        let addr = self.target()?;
        match self.transport.call(addr, request, timeout).await {
            Ok(NodeResponse::Error(message)) => {
                tracing::debug!(%message, "the origin refused a cache request");
                None
            }
            Ok(answer) => Some(answer),
            Err(error) => {
                if !matches!(error, TransportError::Refused(_)) {
                    *self
                        .held_until
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) =
                        Some(Instant::now() + UNREACHABLE_HOLD);
                }
                tracing::debug!(%error, "cache request to the origin failed");
                None
            }
        }
    }
}

/// [`SharedTier`] over the cluster transport to the origin the edge follows.
#[derive(Debug)]
pub struct QuicSharedTier {
    link: Arc<OriginLink>,
    puts: Arc<tokio::sync::Semaphore>,
    get_timeout: Duration,
}

impl SharedTier for QuicSharedTier {
    fn get(&self, key: Arc<[u8]>) -> BoxFuture<'_, SharedLookup> {
        Box::pin(async move {
            let request = NodeRequest::CacheGet { key: key.to_vec() };
            match self.link.call(&request, self.get_timeout).await {
                Some(NodeResponse::CacheHit(entry)) => SharedLookup::Hit(Arc::new(entry)),
                Some(NodeResponse::CacheMiss) => SharedLookup::Miss,
                Some(other) => {
                    tracing::debug!(?other, "unexpected answer to CacheGet");
                    SharedLookup::Unavailable
                }
                None => SharedLookup::Unavailable,
            }
        })
    }

    fn put(&self, key: Arc<[u8]>, entry: Arc<CachedResponse>) {
        let Ok(permit) = self.puts.clone().try_acquire_owned() else {
            tracing::debug!("too many L2 puts in flight; this one stays in the L1 only");
            return;
        };
        let link = self.link.clone();
        tokio::spawn(async move {
            let request = NodeRequest::CachePut {
                key: key.to_vec(),
                entry: Arc::unwrap_or_clone(entry),
            };
            let _ = link.call(&request, PUT_TIMEOUT).await;
            drop(permit);
        });
    }
}

/// [`InvalidationAuthority`] asking the origin the edge follows, which holds the admin keys.
#[derive(Debug)]
pub struct QuicInvalidationAuthority {
    link: Arc<OriginLink>,
}

impl InvalidationAuthority for QuicInvalidationAuthority {
    fn may_invalidate(&self, request: InvalidationRequest) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let request = NodeRequest::AuthorizeInvalidation(request);
            matches!(
                self.link.call(&request, AUTHORIZE_TIMEOUT).await,
                Some(NodeResponse::Authorized(true))
            )
        })
    }
}

/// The edge's shared tier and invalidation authority, over one link to its current origin.
pub fn edge_seams(
    transport: Transport,
    current: CurrentOrigin,
) -> (Arc<dyn SharedTier>, Arc<dyn InvalidationAuthority>) {
    let link = Arc::new(OriginLink {
        transport,
        current,
        held_until: Mutex::new(None),
    });
    (
        Arc::new(QuicSharedTier {
            link: link.clone(),
            puts: Arc::new(tokio::sync::Semaphore::new(MAX_PUTS_IN_FLIGHT)),
            get_timeout: GET_TIMEOUT,
        }),
        Arc::new(QuicInvalidationAuthority { link }),
    )
}

/// The edge's shared tier alone (see [`edge_seams`]).
pub fn edge_shared_tier(transport: Transport, current: CurrentOrigin) -> Arc<dyn SharedTier> {
    edge_seams(transport, current).0
}

/// The edge's invalidation authority alone (see [`edge_seams`]).
pub fn edge_invalidation_authority(
    transport: Transport,
    current: CurrentOrigin,
) -> Arc<dyn InvalidationAuthority> {
    edge_seams(transport, current).1
}

#[cfg(test)]
mod tests;
