//! `dev`'s cache invalidation authority (the `cache::auth::InvalidationAuthority` seam): the process holds its management API keys (sealed) and the
//! sealing key, so it checks a `Cache-Control: max-age=0` request's SigV4 signature (service
//! `execute-api`, any region) itself. With no enabled admin key, nobody may invalidate.

use std::sync::Arc;
use std::time::SystemTime;

use portico_proto::cache::InvalidationRequest;

use crate::admin::control::ControlPlane;
use crate::admin::secrets::SealingKey;
use crate::cache::auth::{InvalidationAuthority, verify_invalidation};
use crate::request::BoxFuture;

/// The service name callers sign invalidations for.
pub use crate::cache::auth::SERVICE;

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

    /// Whether `request` verifies against an enabled admin key at `now_epoch_s`.
    pub fn verify(&self, request: &InvalidationRequest, now_epoch_s: i64) -> bool {
        verify_invalidation(request, now_epoch_s, &|_region| true, &|id| {
            self.sealing.open_admin_key(self.control.admin_key(id)?)
        })
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
