//! Who may invalidate a cache entry with `Cache-Control: max-age=0`: a caller whose request is
//! SigV4-signed (service `execute-api`) by an enabled management API key. `dev` checks against
//! its own keys; an edge, which never holds admin secrets, asks an origin of its region.

use portico_proto::cache::InvalidationRequest;

use crate::admin::control::BoxFuture;

pub trait InvalidationAuthority: Send + Sync + std::fmt::Debug + 'static {
    /// True when the request's signature verifies against an enabled admin key. Must answer
    /// within a bound of its own choosing (false when it cannot tell in time).
    fn may_invalidate(&self, request: InvalidationRequest) -> BoxFuture<'_, bool>;
}
