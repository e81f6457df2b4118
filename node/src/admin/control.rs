//! Where management writes go and reads come from, whatever the node's role.
//!
//! On an origin, writes are Raft commands (through the leader) and reads are linearizable
//! (`OriginControl` in `cluster::origin`). In `dev`, one process owns the state: [`LocalControl`]
//! applies the same commands with the same `apply` and recompiles the data plane's snapshot.
//! The management API is written once against this trait.

use std::sync::{Arc, Mutex};

use portico_proto::GatewayState;
use portico_proto::cluster::{Command, CommandOutcome, Refusal, apply};

use crate::config::compile;
use crate::pipeline::Gateway;
use crate::request::BoxFuture;

/// Why a management write or read did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The state refused the command (an API Gateway error: not found, conflict, bad request).
    Refused(Refusal),
    /// The control plane could not answer (no leader, cut off, timed out).
    Unavailable(String),
}

pub trait ControlPlane: Send + Sync + 'static {
    /// Proposes `command`; returns the index it was applied at.
    fn write(&self, command: Command) -> BoxFuture<'_, Result<u64, ControlError>>;
    /// The state, reflecting every write acknowledged before this call (linearizable).
    fn read(&self) -> BoxFuture<'_, Result<Arc<GatewayState>, ControlError>>;
    /// This node's applied state, possibly behind.
    fn local(&self) -> Arc<GatewayState>;
    /// One management access key from this node's applied state, without copying the state
    /// (authentication runs this on every request, before anything else).
    fn admin_key(&self, access_key_id: &str) -> Option<portico_proto::AdminKey>;
}

/// The single-process control plane of `portico dev`.
#[derive(Debug)]
pub struct LocalControl {
    state: Mutex<Arc<GatewayState>>,
    gateway: Arc<Gateway>,
    iam: Option<LocalIam>,
}

/// `dev` is its own origin for AWS_IAM: it derives the signing keys itself.
struct LocalIam {
    verifier: Arc<crate::authorize::iam::IamVerifier>,
    sealing: super::secrets::SealingKey,
    regions: Vec<String>,
}

impl std::fmt::Debug for LocalIam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIam")
            .field("regions", &self.regions)
            .finish_non_exhaustive()
    }
}

impl LocalControl {
    pub fn new(state: GatewayState, gateway: Arc<Gateway>) -> Self {
        LocalControl {
            state: Mutex::new(Arc::new(state)),
            gateway,
            iam: None,
        }
    }

    /// Keeps `verifier` current: identities and policies after every IAM write, and signing
    /// keys derived with `sealing` for `regions` (see [`LocalControl::refresh_iam`]).
    pub fn with_iam(
        mut self,
        verifier: Arc<crate::authorize::iam::IamVerifier>,
        sealing: super::secrets::SealingKey,
        regions: Vec<String>,
    ) -> Self {
        self.iam = Some(LocalIam {
            verifier,
            sealing,
            regions,
        });
        self.refresh_iam(crate::time::epoch_seconds(std::time::SystemTime::now()));
        self
    }

    /// Re-reads the identities and re-derives the signing keys for the days around
    /// `now_epoch_s` (after an IAM write, and once a day: `dev` runs this after every UTC
    /// midnight).
    pub fn refresh_iam(&self, now_epoch_s: i64) {
        let state = self.local();
        self.refresh_iam_from(&state, now_epoch_s);
    }

    fn refresh_iam_from(&self, state: &GatewayState, now_epoch_s: i64) {
        let Some(iam) = &self.iam else {
            return;
        };
        iam.verifier.observe_state(state);
        iam.verifier
            .set_signing_keys(&super::iam::derive_signing_keys(
                state,
                &iam.sealing,
                &iam.regions,
                now_epoch_s,
            ));
    }
}

impl ControlPlane for LocalControl {
    fn write(&self, command: Command) -> BoxFuture<'_, Result<u64, ControlError>> {
        Box::pin(async move {
            let mut guard = self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Applied in place: `apply` leaves the state unchanged when it refuses a command
            // (the contract Raft's state machine relies on too), so no copy is needed to undo.
            // `make_mut` copies only while a reader still holds the previous state (a
            // management read in flight). Copying the whole state on every write, as before,
            // cost a deep copy of every API definition and key for each quota report (every
            // 100 ms under load): with 10,000 routes and 100,000 keys, hundreds of MB of
            // allocation per second and a lock held for tens of milliseconds.
            let state = Arc::make_mut(&mut *guard);
            let before = state.version;
            let index = before + 1;
            let outcome = apply(state, index, &command);
            if let CommandOutcome::Refused(refusal) = outcome {
                state.version = before;
                return Err(ControlError::Refused(refusal));
            }
            if matches!(command, Command::Iam(_)) {
                self.refresh_iam_from(
                    state,
                    crate::time::epoch_seconds(std::time::SystemTime::now()),
                );
            }
            let routes_changed = command.changes_routes();
            if routes_changed {
                // With one API, dev keeps serving it on any Host; with several, Hosts choose.
                let (snapshot, errors) = compile::compile_lenient(state, true);
                for error in &errors {
                    tracing::warn!(%error, "an API does not compile; not serving it");
                }
                self.gateway.swap(snapshot);
            }
            self.gateway.observe_state(state, routes_changed);
            if routes_changed {
                // The previous snapshot and key index are freed (once requests in flight let
                // go of them): give their pages back.
                crate::memory::release_freed_heap();
            }
            Ok(index)
        })
    }

    fn read(&self) -> BoxFuture<'_, Result<Arc<GatewayState>, ControlError>> {
        Box::pin(async move { Ok(self.local()) })
    }

    fn local(&self) -> Arc<GatewayState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn admin_key(&self, access_key_id: &str) -> Option<portico_proto::AdminKey> {
        self.local().admin_keys.get(access_key_id).cloned()
    }
}

/// dev's quota traffic is applied to its own state, like any other write.
impl crate::limits::QuotaAuthority for LocalControl {
    fn submit(&self, ops: Vec<portico_proto::quota::QuotaOp>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let now_ms = i64::try_from(crate::time::epoch_millis(std::time::SystemTime::now()))
                .unwrap_or(i64::MAX);
            self.write(Command::Quota { now_ms, ops })
                .await
                .map(|_| ())
                .map_err(|error| format!("{error:?}"))
        })
    }
}
