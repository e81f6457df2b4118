//! Who may invalidate a cache entry with `Cache-Control: max-age=0`: a caller whose request is
//! SigV4-signed (service `execute-api`) by an enabled management API key. `dev` checks against
//! its own keys; an edge, which never holds admin secrets, asks an origin of its region.

use portico_proto::cache::InvalidationRequest;

use crate::request::BoxFuture;

pub trait InvalidationAuthority: Send + Sync + std::fmt::Debug + 'static {
    /// True when the request's signature verifies against an enabled admin key. Must answer
    /// within a bound of its own choosing (false when it cannot tell in time).
    fn may_invalidate(&self, request: InvalidationRequest) -> BoxFuture<'_, bool>;
}

/// Whether `request` is SigV4-signed for `execute-api` at `now_epoch_s` by a key whose secret
/// `secret_for` gives, with a credential scope region `region_allowed` accepts. A header that
/// is not a valid HTTP header refuses the request (the signature could not have covered it as
/// sent).
pub fn verify_invalidation(
    request: &InvalidationRequest,
    now_epoch_s: i64,
    region_allowed: &dyn Fn(&str) -> bool,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> bool {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &request.headers {
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) else {
            return false;
        };
        headers.append(name, value);
    }
    let signed = crate::sigv4::SignedRequest {
        method: &request.method,
        path: &request.path,
        query: request.query.as_deref(),
        headers: &headers,
        body: &request.body,
    };
    let verified = crate::sigv4::verify(&signed, now_epoch_s, SERVICE, region_allowed, secret_for);
    if let Err(error) = &verified {
        tracing::debug!(%error, "invalidation refused");
    }
    verified.is_ok()
}

/// The service name invalidating callers sign for (API Gateway's data plane).
pub const SERVICE: &str = "execute-api";
