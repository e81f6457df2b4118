//! The seam between an edge's own cache (L1) and its region's shared cache (L2 on the origins).
//!
//! The edge asks the shared tier on an L1 miss, and stores what it fetched from the backend in
//! both. The shared tier coalesces misses of the whole region: while one edge fetches a key,
//! another edge's `get` for it waits (bounded) for that edge's `put` rather than calling the
//! backend too. `dev` has no shared tier.

use std::sync::Arc;

use portico_proto::cache::CachedResponse;

use crate::request::BoxFuture;

/// What the shared tier knew of a key.
#[derive(Debug, Clone)]
pub enum SharedLookup {
    Hit(Arc<CachedResponse>),
    /// Not there (or no longer fresh): the caller fetches from the backend and `put`s it.
    Miss,
    /// The shared tier could not be asked in time; the caller fetches from the backend.
    Unavailable,
}

pub trait SharedTier: Send + Sync + std::fmt::Debug + 'static {
    /// Looks `key` up. Must answer within a bound of its own choosing (a request waits on it).
    fn get(&self, key: Arc<[u8]>) -> BoxFuture<'_, SharedLookup>;
    /// Stores `entry` under `key` without making the caller wait.
    fn put(&self, key: Arc<[u8]>, entry: Arc<CachedResponse>);
}
