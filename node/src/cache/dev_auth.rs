//! `dev`'s invalidation authority: the process holds its management API keys (sealed) and the
//! sealing key, so it checks a `Cache-Control: max-age=0` request's SigV4 signature (service
//! `execute-api`, any region) itself. With no enabled admin key, nobody may invalidate.

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use portico_proto::cache::InvalidationRequest;

use super::auth::InvalidationAuthority;
use crate::admin::control::{BoxFuture, ControlPlane};
use crate::admin::secrets::{SealedSecret, SealingKey};
use crate::admin::sigv4::{self, SignedRequest};

/// The service name callers sign invalidations for.
pub const SERVICE: &str = "execute-api";

pub struct LocalAuthority {
    control: Arc<dyn ControlPlane>,
    sealing: SealingKey,
}

impl std::fmt::Debug for LocalAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAuthority").finish_non_exhaustive()
    }
}

impl LocalAuthority {
    pub fn new(control: Arc<dyn ControlPlane>, sealing: SealingKey) -> Self {
        LocalAuthority { control, sealing }
    }

    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        let key = self
            .control
            .admin_key(access_key_id)
            .filter(|key| key.enabled)?;
        let sealed = SealedSecret {
            nonce: key.nonce.as_slice().try_into().ok()?,
            ciphertext: key.sealed_secret,
        };
        self.sealing.open(access_key_id, &sealed)
    }

    /// Whether `request` verifies against an enabled admin key at `now_epoch_s`.
    pub fn verify(&self, request: &InvalidationRequest, now_epoch_s: i64) -> bool {
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(name, value);
            }
        }
        let signed = SignedRequest {
            method: &request.method,
            path: &request.path,
            query: request.query.as_deref(),
            headers: &headers,
            body: &request.body,
        };
        sigv4::verify(&signed, now_epoch_s, SERVICE, &|_region| true, &|id| {
            self.secret_for(id)
        })
        .is_ok()
    }
}

impl InvalidationAuthority for LocalAuthority {
    fn may_invalidate(&self, request: InvalidationRequest) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let now = crate::time::epoch_seconds(SystemTime::now());
            self.verify(&request, now)
        })
    }
}
