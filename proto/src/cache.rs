//! A cached response as both cache tiers hold it: the edge's L1 and the region's L2 on the
//! origins, which receive it over the cluster transport. Keys are opaque bytes built by the edge
//! (API, stage, cache generation, method, resource path, declared key parameters), so an L2 never
//! needs to understand them.

use serde::{Deserialize, Serialize};

/// One stored response. Only successful responses whose whole body was read are stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResponse {
    pub status: u16,
    /// Header names (lower case) and raw values, in the order they were received.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Wall-clock milliseconds since the Unix epoch when the backend answered.
    pub stored_at_ms: u64,
    /// How long the entry is fresh, in milliseconds (the method's `cacheTtlInSeconds`).
    pub ttl_ms: u64,
}

impl CachedResponse {
    /// The bytes the entry costs a cache, for weighing against its capacity.
    pub fn weight(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len() + 16)
                .sum::<usize>()
            + 64
    }

    pub fn is_fresh_at(&self, now_ms: u64) -> bool {
        now_ms < self.stored_at_ms.saturating_add(self.ttl_ms)
    }
}

/// A request that sent `Cache-Control: max-age=0`, with what a SigV4 check of its signature needs.
/// An edge cannot check it itself (admin secrets never reach edges), so it may send this to an
/// origin of its region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidationRequest {
    pub method: String,
    /// The raw path, still percent-encoded as received, without the query.
    pub path: String,
    pub query: Option<String>,
    /// Header names (lower case) and raw values, including `host`.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body (empty for the GETs a cache normally serves).
    pub body: Vec<u8>,
}
