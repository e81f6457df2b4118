//! `portico edge`: the data plane of a region, following an origin's replicated state.
//!
//! ```text
//!   disk snapshot ──▶ compile ──▶ serve            (at once, before any origin answers)
//!   origin (own region first, then the others in order)
//!      └─ subscribe ─▶ snapshot at V, entries V+1.. ─▶ apply ─▶ compile (blocking pool)
//!                                                         └─▶ swap (ArcSwap) ─▶ persist
//! ```
//!
//! The edge never waits on an origin to answer a request: the request path reads the compiled
//! snapshot only. When its origin goes away it keeps serving the last state and tries the next
//! origin in order, forever, with a bounded backoff; while it follows another region's origin,
//! it checks every few seconds for its own region's and fails back when one answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portico_proto::GatewayState;
use portico_proto::cluster::{NodeRequest, Subscribe};

use super::certs::{ClusterTls, PeerIdentity};
use super::config::{EdgeConfig, Peer};
use super::follow::{self, Applied};
use super::transport::Transport;
use crate::accept::{Listener, Shutdown};
use crate::config::compile;
use crate::integrate::{IntegrationSettings, Integrations, client::BackendClient};
use crate::pipeline::Gateway;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// While following another region's origin, how often an edge checks whether an origin of
/// its own region is back (and how long it waits for one to answer).
const FAILBACK_CHECK: Duration = Duration::from_secs(5);
const FAILBACK_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// An edge re-reports its version at least this often while updates flow, so `ctl status`
/// can tell a quiet edge from a gone one by `last seen`.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// A running edge.
#[derive(Debug)]
pub struct EdgeNode {
    pub gateway: Arc<Gateway>,
    pub http_addr: Option<std::net::SocketAddr>,
    pub https_addr: Option<std::net::SocketAddr>,
    /// The version of the state being served.
    pub version: Arc<AtomicU64>,
    listeners: Vec<Listener>,
    shutdown: Shutdown,
    sync: tokio::task::JoinHandle<()>,
    reporter: tokio::task::JoinHandle<()>,
    /// The quota reporter and the demand reporter.
    limits_tasks: [tokio::task::JoinHandle<()>; 2],
    transport: Transport,
    /// The region's shared cache (L2 on the origin this edge follows), for the gateway's
    /// response cache: the `SharedTier` seam of `cache::shared`.
    pub shared_tier: Arc<dyn crate::cache::shared::SharedTier>,
    /// Who may invalidate with `Cache-Control: max-age=0`, asked of the same origin.
    pub invalidation_authority: Arc<dyn crate::cache::auth::InvalidationAuthority>,
    /// AWS_IAM verification: identities from the followed state, signing keys from the origin
    /// (`cluster::signing`).
    pub iam: Arc<crate::authorize::iam::IamVerifier>,
    signing: tokio::task::JoinHandle<()>,
    /// The data plane's request workers; dropped (stopped) after the listeners drained.
    workers: crate::accept::Workers,
}

impl EdgeNode {
    pub async fn start(config: EdgeConfig) -> anyhow::Result<EdgeNode> {
        let tls = ClusterTls::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
        anyhow::ensure!(
            tls.identity == PeerIdentity::Edge(config.node_id),
            "{}: the certificate is for {}, but the config says edge {}",
            config.tls.cert.display(),
            tls.identity,
            config.node_id
        );
        let transport = Transport::bind(config.listen_cluster, &tls)?;

        // Static stability: serve the last state we had before talking to anyone.
        let state = follow::load_state(&config.data_dir)?.unwrap_or_default();
        // What does not compile is logged and left out; the edge starts regardless.
        let (snapshot, errors) = compile::compile_lenient(&state, false);
        for error in &errors {
            tracing::error!(%error, "a persisted API does not compile; not serving it");
        }
        let version = Arc::new(AtomicU64::new(state.version));
        if state.version > 0 {
            tracing::info!(version = state.version, "serving the persisted state");
        }
        let integrations = Integrations {
            client: BackendClient::new(config.ca_file.as_deref())?,
            settings: IntegrationSettings {
                functions: config.functions.clone(),
                ..IntegrationSettings::default()
            },
        };
        // The origin followed (set while its update stream is up) is also where the cache
        // seams ask.
        let following: super::l2::CurrentOrigin = Arc::new(std::sync::Mutex::new(None));
        let (shared_tier, invalidation_authority) =
            super::l2::edge_seams(transport.clone(), following.clone());
        let metrics = Arc::new(crate::observe::metrics::Metrics::new());
        let cache = Arc::new(crate::cache::ResponseCache::new(
            crate::cache::CacheOptions {
                capacity_bytes_max: config.cache_capacity_bytes_max,
            },
            Some(shared_tier.clone()),
            Some(invalidation_authority.clone()),
            metrics.clone(),
        ));
        let limits = Arc::new(crate::limits::Limits::new(crate::limits::Identity::new(
            config.node_id,
        )));
        let iam = Arc::new(crate::authorize::iam::IamVerifier::new());
        iam.observe_state(&state);
        let iam_changed = Arc::new(tokio::sync::Notify::new());
        let cognito = crate::authorize::cognito::CognitoVerifier::from_config(
            &config.aws,
            integrations.client.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        let gateway = Arc::new(
            Gateway::new(snapshot, integrations)
                .with_limits(limits.clone())
                .with_cache(cache)
                .with_authorizers(Arc::new(
                    crate::authorize::Authorizers::default()
                        .with_iam(iam.clone())
                        .with_cognito(cognito),
                )),
        );
        gateway.observe_state(&state, true);

        let shutdown = Shutdown::new();
        let workers = crate::accept::Workers::start_with(config.workers, config.max_connections)
            .map_err(|error| anyhow::anyhow!("starting the request workers: {error}"))?;
        let crate::serve::GatewayListeners {
            mut listeners,
            http_addr,
            https_addr,
        } = crate::serve::start_gateway_listeners(
            &workers,
            config.http,
            config.https,
            &config.data_dir,
            &gateway,
            &shutdown,
            Duration::from_secs(30),
        )
        .await?;
        if let Some(addr) = config.metrics {
            listeners.push(
                crate::serve::serve_metrics(addr, metrics, &shutdown, Duration::from_secs(30))
                    .await?,
            );
        }

        let reporter = tokio::spawn(report_periodically(
            transport.clone(),
            following.clone(),
            config.node_id,
            config.region.clone(),
            version.clone(),
        ));
        let quota = tokio::spawn(limits.clone().run_quota_reporter(Arc::new(OriginQuota {
            transport: transport.clone(),
            following: following.clone(),
            edge_id: config.node_id,
        })));
        let demand = tokio::spawn(report_demand(
            transport.clone(),
            following.clone(),
            limits,
            config.node_id,
            config.region.clone(),
        ));
        let signing = tokio::spawn(super::signing::follow(
            transport.clone(),
            following.clone(),
            iam.clone(),
            iam_changed.clone(),
            config.node_id,
            config.signing_regions.clone(),
            config.data_dir.clone(),
        ));
        let sync = tokio::spawn(follow_origins(
            transport.clone(),
            following,
            ordered_origins(&config),
            config.node_id,
            config.region.clone(),
            config.data_dir.clone(),
            state,
            gateway.clone(),
            version.clone(),
            (iam.clone(), iam_changed),
        ));
        Ok(EdgeNode {
            gateway,
            http_addr,
            https_addr,
            version,
            listeners,
            shutdown,
            sync,
            reporter,
            limits_tasks: [quota, demand],
            transport,
            shared_tier,
            invalidation_authority,
            iam,
            signing,
            workers,
        })
    }

    pub async fn shutdown(self) {
        self.sync.abort();
        self.reporter.abort();
        self.signing.abort();
        for task in &self.limits_tasks {
            task.abort();
        }
        self.shutdown.trigger();
        for listener in self.listeners {
            listener.stopped().await;
        }
        self.transport.close().await;
        drop(self.workers);
    }
}

/// The edge's own region first, then the others, each group in configured order.
fn ordered_origins(config: &EdgeConfig) -> Vec<Peer> {
    let mut origins = config.origins.clone();
    origins.sort_by_key(|origin| origin.region != config.region);
    origins
}

/// Re-reports the served version every [`REPORT_EVERY`] to the origin being followed, so
/// `ctl status` tells a quiet edge (recent `last seen`) from a gone one.
async fn report_periodically(
    transport: Transport,
    following: Arc<std::sync::Mutex<Option<Peer>>>,
    edge_id: u64,
    region: String,
    version: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(REPORT_EVERY);
    loop {
        tick.tick().await;
        let origin = following.lock().ok().and_then(|current| current.clone());
        if let Some(origin) = origin {
            report(
                &transport,
                &origin,
                edge_id,
                &region,
                version.load(Ordering::Acquire),
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn follow_origins(
    transport: Transport,
    following: Arc<std::sync::Mutex<Option<Peer>>>,
    origins: Vec<Peer>,
    edge_id: u64,
    region: String,
    data_dir: std::path::PathBuf,
    mut state: GatewayState,
    gateway: Arc<Gateway>,
    version: Arc<AtomicU64>,
    iam: IamWatch,
) {
    let mut backoff = BACKOFF_MIN;
    'cycle: loop {
        for origin in &origins {
            let subscribe = Subscribe {
                edge_id,
                region: region.clone(),
                have_version: (state.version > 0).then_some(state.version),
            };
            let mut updates = match transport
                .subscribe(origin.addr, &subscribe, CALL_TIMEOUT)
                .await
            {
                Ok(updates) => updates,
                Err(error) => {
                    tracing::debug!(origin = origin.node_id, %error, "origin unavailable");
                    continue;
                }
            };
            tracing::info!(origin = origin.node_id, region = %origin.region, "following origin");
            backoff = BACKOFF_MIN;
            let mut reported = None;
            if let Ok(mut current) = following.lock() {
                *current = Some(origin.clone());
            }
            // Following another region's origin is a fallback: check for our own region's
            // origins coming back, and return to them when one answers.
            let remote = origin.region != region;
            let mut failback = tokio::time::interval(FAILBACK_CHECK);
            failback.tick().await;
            loop {
                let update = tokio::select! {
                    update = updates.recv() => update,
                    _ = failback.tick(), if remote => {
                        if own_region_answers(&transport, &origins, &region).await {
                            tracing::info!(
                                origin = origin.node_id,
                                "an origin of this region answers again; failing back"
                            );
                            continue 'cycle;
                        }
                        continue;
                    }
                };
                let Some(update) = update else { break };
                let update = match update {
                    Ok(update) => update,
                    Err(error) => {
                        tracing::warn!(origin = origin.node_id, %error, "update stream failed");
                        break;
                    }
                };
                match follow::apply_update(&mut state, update) {
                    Ok(Applied::Unchanged) => {}
                    Ok(Applied::Advanced) => {
                        state = publish(state, &gateway, &data_dir, &iam).await;
                        version.store(state.version, Ordering::Release);
                    }
                    Ok(Applied::Bookkeeping) => {
                        // Quota bookkeeping only: nothing to recompile or to persist (a
                        // restarted edge is a new incarnation and gets the ledger afresh).
                        gateway.observe_state(&state, false);
                        version.store(state.version, Ordering::Release);
                    }
                    Err(gap) => {
                        tracing::warn!(%gap, "resubscribing");
                        break;
                    }
                }
                if reported != Some(state.version) {
                    report(&transport, origin, edge_id, &region, state.version);
                    reported = Some(state.version);
                }
            }
            tracing::warn!(
                origin = origin.node_id,
                "lost the origin; serving the last state"
            );
            if let Ok(mut current) = following.lock() {
                *current = None;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Whether an origin of `region` answers a status request and knows a leader (one that is up
/// but cut off from the majority is not worth failing back to). Cheap and bounded.
async fn own_region_answers(transport: &Transport, origins: &[Peer], region: &str) -> bool {
    for origin in origins.iter().filter(|origin| origin.region == region) {
        let answer = transport
            .call(origin.addr, &NodeRequest::Status, FAILBACK_PROBE_TIMEOUT)
            .await;
        if let Ok(portico_proto::cluster::NodeResponse::Status(status)) = answer
            && status.leader.is_some()
        {
            return true;
        }
    }
    false
}

/// The AWS_IAM verifier and the signal that its identities changed.
type IamWatch = (
    Arc<crate::authorize::iam::IamVerifier>,
    Arc<tokio::sync::Notify>,
);

/// Compiles on the blocking pool (never on the request path's workers), swaps the snapshot in,
/// and persists the state. An API that does not compile is left out (and logged); the others
/// are served. The state always comes back, even if compiling panics.
async fn publish(
    state: GatewayState,
    gateway: &Arc<Gateway>,
    data_dir: &std::path::Path,
    iam: &IamWatch,
) -> GatewayState {
    let data_dir = data_dir.to_path_buf();
    let gateway = gateway.clone();
    let (verifier, changed) = iam.clone();
    let work = tokio::task::spawn_blocking(move || {
        let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compile::compile_lenient(&state, false)
        }));
        match compiled {
            Ok((snapshot, errors)) => {
                for error in &errors {
                    tracing::error!(
                        version = state.version,
                        %error,
                        "an API does not compile; not serving it"
                    );
                }
                gateway.swap(snapshot);
                gateway.observe_state(&state, true);
            }
            Err(_) => tracing::error!(
                version = state.version,
                "compiling panicked; keeping the previous snapshot"
            ),
        }
        // Identities apply whatever the routes did: a deleted or deactivated key must stop
        // verifying even when an API of the same update does not compile.
        if verifier.observe_state(&state) {
            // New identities or keys: the signing-key follower fetches a new set.
            changed.notify_one();
        }
        if let Err(error) = follow::save_state(&data_dir, &state) {
            tracing::error!(%error, "cannot persist the state");
        }
        state
    });
    // Only a runtime shutting down fails here; nothing is served afterwards anyway.
    work.await.unwrap_or_default()
}

/// Tells the origin which version this edge serves (for `ctl status`), without waiting.
fn report(transport: &Transport, origin: &Peer, edge_id: u64, region: &str, version: u64) {
    let transport = transport.clone();
    let addr = origin.addr;
    let request = NodeRequest::EdgeReport {
        edge_id,
        region: region.to_string(),
        version,
    };
    tokio::spawn(async move {
        let _ = transport.call(addr, &request, CALL_TIMEOUT).await;
    });
}

/// The edge's quota traffic goes to the origin it follows, which proposes it through Raft.
struct OriginQuota {
    transport: Transport,
    following: Arc<std::sync::Mutex<Option<Peer>>>,
    edge_id: u64,
}

impl crate::limits::QuotaAuthority for OriginQuota {
    fn submit(
        &self,
        ops: Vec<portico_proto::quota::QuotaOp>,
    ) -> crate::request::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let origin = self
                .following
                .lock()
                .ok()
                .and_then(|current| current.clone())
                .ok_or_else(|| "no origin to report quota use to".to_string())?;
            let request = NodeRequest::Quota {
                edge_id: self.edge_id,
                ops,
            };
            match self
                .transport
                .call(origin.addr, &request, Duration::from_secs(10))
                .await
            {
                Ok(portico_proto::cluster::NodeResponse::Written { .. }) => Ok(()),
                Ok(other) => Err(format!("origin {} answered {other:?}", origin.node_id)),
                Err(error) => Err(format!("origin {}: {error}", origin.node_id)),
            }
        })
    }
}

/// How long a demand report may take (a remote region's origin is far).
const DEMAND_CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// Demand reports unanswered in a row (about two seconds) before the edge takes whole buckets.
const UNANSWERED_BEFORE_ALONE: u32 = 8;

/// Reports this edge's throttle demand to the origin it follows every
/// [`crate::limits::demand::REPORT_EVERY`] and applies the shares it answers. With no origin,
/// the last shares stay.
async fn report_demand(
    transport: Transport,
    following: Arc<std::sync::Mutex<Option<Peer>>>,
    limits: Arc<crate::limits::Limits>,
    edge_id: u64,
    region: String,
) {
    let every = crate::limits::demand::REPORT_EVERY;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    let mut unanswered = 0u32;
    loop {
        // A bucket waking from idle is reported at once: its share is stale until then.
        tokio::select! {
            _ = tick.tick() => {}
            _ = limits.demand_woken() => {}
        }
        let now = tokio::time::Instant::now();
        // Rates over at least a full period, so an early report does not inflate them.
        let buckets = limits.take_demand((now - last).max(every));
        last = now;
        if buckets.is_empty() {
            continue;
        }
        let Some(origin) = following.lock().ok().and_then(|current| current.clone()) else {
            unanswered += 1;
            if unanswered == UNANSWERED_BEFORE_ALONE {
                limits.reset_shares();
            }
            continue;
        };
        let request = NodeRequest::Demand(portico_proto::throttle::DemandReport {
            node_id: edge_id,
            region: region.clone(),
            buckets,
        });
        match transport
            .call(origin.addr, &request, DEMAND_CALL_TIMEOUT)
            .await
        {
            Ok(portico_proto::cluster::NodeResponse::Shares(shares)) => {
                limits.set_shares(&shares);
                unanswered = 0;
            }
            _ => unanswered += 1,
        }
        // Cut off from the cluster's demand for a while: this edge sees only itself.
        if unanswered == UNANSWERED_BEFORE_ALONE {
            limits.reset_shares();
        }
    }
}
