//! `portico origin`: a Raft member holding the replicated state, and the hub of its region.
//!
//! ```text
//!   ctl ──Write──▶ any origin ──(not leader: forward once)──▶ leader ──Raft──▶ voters
//!   edges ◀──Subscribe: snapshot at V, then entries in index order── origin's state machine
//!   edges ──EdgeReport(version)──▶ origin ──▶ `ctl status`
//! ```
//!
//! Who may do what is decided by the verified certificate of the caller: Raft RPCs and
//! forwarded writes only from member origins, administrative requests only from the admin
//! certificate, subscriptions and reports from any cluster node, the region's cache
//! (`l2.rs`) from edges and member origins.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::BasicNode;
use portico_proto::cluster::{
    ClusterStatus, EdgeStatus, EdgeUpdate, MemberStatus, NodeId, NodeRequest, NodeResponse,
    RaftRpc, redact_command_for_edge, redact_for_edge,
};
use tokio::sync::{broadcast, mpsc};

use portico_proto::quota::QuotaOp;

use super::certs::{ClusterTls, PeerIdentity};
use super::config::OriginConfig;
use super::raft::network::{RaftTransport, RaftTransportError, handle_rpc};
use super::raft::state_machine::{AppliedEvent, StateMachineHandle};
use super::raft::{RaftNode, WriteError};
use super::transport::{Handler, Reply, Transport, TransportError};

/// A leader gets this long to commit; a forwarding follower waits longer than that plus a
/// round trip, so a slow commit is reported as such and not as a failed forward.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a follower waits to apply up to the leader's read index.
const READ_CATCH_UP: Duration = Duration::from_secs(5);
/// Edge reports older than this are forgotten (edges report every few seconds while alive).
const EDGE_REPORT_TTL: Duration = Duration::from_secs(3600);
const FORWARD_TIMEOUT: Duration = Duration::from_secs(12);
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Updates queued per subscribed edge before the stream applies back-pressure.
const EDGE_QUEUE: usize = 64;

/// A running origin.
pub struct OriginNode {
    pub raft: Arc<RaftNode>,
    /// The management API's address, when configured.
    pub admin_addr: Option<SocketAddr>,
    transport: Transport,
    serve: tokio::task::JoinHandle<()>,
    inner: Arc<Inner>,
    admin: Option<(crate::accept::Listener, crate::accept::Shutdown)>,
    /// The node's metrics registry, served on `metrics` when configured.
    pub metrics: Arc<crate::observe::metrics::Metrics>,
    pub metrics_addr: Option<SocketAddr>,
    metrics_listener: Option<(crate::accept::Listener, crate::accept::Shutdown)>,
    /// The demand exchange and the lease expiry, stopped at shutdown.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for OriginNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginNode")
            .field("node_id", &self.raft.node_id)
            .finish()
    }
}

/// Raft's RPCs over the node transport. A configured peer address (which may be a relay or a
/// region-local path) wins over the address recorded in the membership.
struct QuicRaft {
    transport: Transport,
    routes: HashMap<NodeId, SocketAddr>,
}

impl RaftTransport for QuicRaft {
    fn send(
        &self,
        target: u64,
        addr: &str,
        rpc: RaftRpc,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<u8>, RaftTransportError>> + Send>,
    > {
        let transport = self.transport.clone();
        let route = self
            .routes
            .get(&target)
            .copied()
            .ok_or(())
            .or_else(|_| addr.parse::<SocketAddr>().map_err(|_| ()));
        Box::pin(async move {
            let addr = route.map_err(|_| {
                RaftTransportError::Unreachable(format!("no usable address for node {target}"))
            })?;
            match transport
                .call(addr, &NodeRequest::Raft { rpc, payload }, timeout)
                .await
            {
                Ok(NodeResponse::Raft(Ok(bytes))) => Ok(bytes),
                Ok(NodeResponse::Raft(Err(message))) => Err(RaftTransportError::Remote(message)),
                Ok(other) => Err(RaftTransportError::Remote(format!(
                    "unexpected answer {other:?}"
                ))),
                Err(TransportError::Timeout) => Err(RaftTransportError::Timeout),
                Err(error) => Err(RaftTransportError::Unreachable(error.to_string())),
            }
        })
    }
}

struct EdgeSeen {
    region: String,
    version: u64,
    at: Instant,
}

struct Inner {
    node_id: NodeId,
    region: String,
    raft: Arc<RaftNode>,
    transport: Transport,
    routes: HashMap<NodeId, SocketAddr>,
    edges: Mutex<BTreeMap<NodeId, EdgeSeen>>,
    /// Throttle demand of this origin's edges and the other origins' totals.
    demand: crate::limits::demand::DemandBoard,
    /// The region's response cache and the invalidation check (`l2.rs`).
    l2: super::l2::OriginL2,
    /// What AWS_IAM signing keys are derived with (the sealing key, with `[admin]`) and for
    /// which regions; without a sealing key an origin cannot hand any out.
    signing: Option<Arc<Signing>>,
}

struct Signing {
    sealing: crate::admin::secrets::SealingKey,
    regions: Vec<String>,
}

#[derive(Clone)]
struct OriginHandler(Arc<Inner>);

impl OriginNode {
    pub async fn start(config: OriginConfig) -> anyhow::Result<OriginNode> {
        let tls = ClusterTls::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
        anyhow::ensure!(
            tls.identity == PeerIdentity::Node(config.node_id),
            "{}: the certificate is for {}, but the config says origin {}",
            config.tls.cert.display(),
            tls.identity,
            config.node_id
        );
        let transport = Transport::bind(config.listen, &tls)?;
        let routes: HashMap<NodeId, SocketAddr> = config
            .peers
            .iter()
            .map(|peer| (peer.node_id, peer.addr))
            .collect();
        let raft = Arc::new(
            RaftNode::start(
                config.node_id,
                &config.data_dir,
                config.timings,
                Arc::new(QuicRaft {
                    transport: transport.clone(),
                    routes: routes.clone(),
                }),
            )
            .await?,
        );
        let inner = Arc::new(Inner {
            node_id: config.node_id,
            region: config.region.clone(),
            raft: raft.clone(),
            transport: transport.clone(),
            routes,
            edges: Mutex::new(BTreeMap::new()),
            demand: Default::default(),
            l2: super::l2::OriginL2::new(
                config.l2_capacity_bytes,
                invalidation_verifier(&config, &raft)?,
            ),
            signing: match &config.admin {
                None => None,
                Some(admin) => Some(Arc::new(Signing {
                    sealing: crate::admin::secrets::SealingKey::from_file(&admin.sealing_key)?,
                    regions: config.signing_regions.clone(),
                })),
            },
        });
        let background = vec![
            tokio::spawn(exchange_demand(inner.clone())),
            tokio::spawn(expire_leases(inner.clone())),
        ];
        let serve = transport.serve(Arc::new(OriginHandler(inner.clone())));
        if config.bootstrap {
            let mut members = BTreeMap::new();
            members.insert(
                config.node_id,
                BasicNode {
                    addr: transport.local_addr().to_string(),
                },
            );
            for peer in &config.peers {
                members.insert(
                    peer.node_id,
                    BasicNode {
                        addr: peer.addr.to_string(),
                    },
                );
            }
            raft.initialize(members).await?;
        }
        let control = OriginControl(inner.clone());
        let admin = match &config.admin {
            None => None,
            Some(admin) => Some(start_admin(&config, admin, control.clone()).await?),
        };
        if let (true, Some(admin)) = (config.bootstrap, &config.admin)
            && let Some(path) = &admin.initial_credentials
        {
            let credentials = crate::admin::secrets::read_credentials_file(path)?;
            let sealing = crate::admin::secrets::SealingKey::from_file(&admin.sealing_key)?;
            tokio::spawn(install_first_key(control, sealing, credentials));
        }
        let metrics = Arc::new(crate::observe::metrics::Metrics::new());
        let metrics_listener = match config.metrics {
            None => None,
            Some(addr) => {
                let shutdown = crate::accept::Shutdown::new();
                let listener = crate::serve::serve_metrics(
                    addr,
                    metrics.clone(),
                    &shutdown,
                    Duration::from_secs(5),
                )
                .await?;
                Some((listener, shutdown))
            }
        };
        tracing::info!(
            node_id = config.node_id,
            region = %config.region,
            listen = %transport.local_addr(),
            "origin started"
        );
        Ok(OriginNode {
            raft,
            admin_addr: admin.as_ref().map(|(listener, _)| listener.local_addr),
            transport,
            serve,
            inner,
            admin,
            metrics,
            metrics_addr: metrics_listener
                .as_ref()
                .map(|(listener, _)| listener.local_addr),
            metrics_listener,
            background,
        })
    }

    pub async fn shutdown(self) {
        for (listener, shutdown) in self.admin.into_iter().chain(self.metrics_listener) {
            shutdown.trigger();
            listener.stopped().await;
        }
        self.serve.abort();
        for task in &self.background {
            task.abort();
        }
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "raft shutdown");
        }
        self.transport.close().await;
    }
}

impl Handler for OriginHandler {
    fn handle(
        &self,
        peer: PeerIdentity,
        request: NodeRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>> {
        let inner = self.0.clone();
        Box::pin(async move { inner.dispatch(peer, request).await })
    }
}

fn response(value: NodeResponse) -> Reply {
    Reply::Response(value)
}

impl Inner {
    /// Whether origin `id` may act as a Raft peer of this one: a member of the group, or
    /// anyone holding an origin certificate while this node has no membership yet (a node
    /// being bootstrapped, or added as a learner, learns its membership from the leader).
    fn is_member(&self, id: NodeId) -> bool {
        let members = self.raft.status().members;
        members.is_empty() || members.iter().any(|member| member.node_id == id)
    }

    fn leader_hint(&self, leader_id: Option<u64>, leader_addr: Option<String>) -> NodeResponse {
        let leader_addr = leader_addr.or_else(|| {
            leader_id
                .and_then(|id| self.routes.get(&id))
                .map(ToString::to_string)
        });
        NodeResponse::NotLeader {
            leader: leader_id.zip(leader_addr),
        }
    }

    async fn dispatch(&self, peer: PeerIdentity, request: NodeRequest) -> Reply {
        // Who may do what follows from the caller's certificate: the admin administers, member
        // origins replicate (and forward admin requests), edges only subscribe and report.
        let admin = matches!(peer, PeerIdentity::Admin);
        let member = match peer {
            PeerIdentity::Node(id) => self.is_member(id),
            PeerIdentity::Edge(_) | PeerIdentity::Admin => false,
        };
        match request {
            NodeRequest::Raft { rpc, payload } => {
                if !member {
                    return response(NodeResponse::Error(
                        "Raft RPCs are accepted from member origins only".into(),
                    ));
                }
                response(NodeResponse::Raft(
                    handle_rpc(&self.raft.raft, rpc, &payload).await,
                ))
            }
            NodeRequest::Write(command) => {
                if !admin && !member {
                    return response(NodeResponse::Error(
                        "writes are accepted from the admin certificate only".into(),
                    ));
                }
                response(self.write(*command, admin).await)
            }
            NodeRequest::Subscribe(subscribe) => {
                tracing::info!(edge = subscribe.edge_id, region = %subscribe.region, "edge subscribed");
                Reply::Stream(stream_updates(self.raft.state_machine.clone()))
            }
            NodeRequest::EdgeReport {
                edge_id: _,
                region,
                version,
            } => {
                // Keyed by the certificate, not by what the message claims.
                let PeerIdentity::Edge(edge_id) = peer else {
                    return response(NodeResponse::Error(
                        "reports are accepted from edge certificates only".into(),
                    ));
                };
                if let Ok(mut edges) = self.edges.lock() {
                    // Bounded: entries not refreshed for an hour are dropped.
                    edges.retain(|_, seen| seen.at.elapsed() < EDGE_REPORT_TTL);
                    edges.insert(
                        edge_id,
                        EdgeSeen {
                            region,
                            version,
                            at: Instant::now(),
                        },
                    );
                }
                response(NodeResponse::Done)
            }
            NodeRequest::SigningKeys {
                edge_id: _,
                regions,
            } => {
                let PeerIdentity::Edge(edge_id) = peer else {
                    return response(NodeResponse::Error(
                        "signing keys are handed to edge certificates only".into(),
                    ));
                };
                response(self.signing_keys(edge_id, regions).await)
            }
            NodeRequest::Status => response(NodeResponse::Status(self.status(admin).await)),
            NodeRequest::Quota { edge_id: _, ops } => {
                let PeerIdentity::Edge(edge_id) = peer else {
                    return response(NodeResponse::Error(
                        "quota traffic is accepted from edge certificates only".into(),
                    ));
                };
                // An edge speaks for its own leases only (by its certificate): grants to
                // itself, reports on leases it holds, counts. Expiry is the leader's.
                let ops = self.raft.state_machine.inspect(|state| {
                    ops.into_iter()
                        .filter(|op| match op {
                            QuotaOp::Grant { edge_id: to, .. } => *to == edge_id,
                            // A lease this origin does not know is closed (or not yet
                            // known to the edge either): nothing to write.
                            QuotaOp::Report { lease_id, .. } => state
                                .quota
                                .leases
                                .get(lease_id)
                                .is_some_and(|lease| lease.edge_id == edge_id),
                            QuotaOp::Count { .. } => true,
                            QuotaOp::Expire => false,
                        })
                        .collect::<Vec<_>>()
                });
                if ops.is_empty() {
                    return response(NodeResponse::Error("no quota op of this edge's own".into()));
                }
                let now_ms = i64::try_from(crate::time::epoch_millis(std::time::SystemTime::now()))
                    .unwrap_or(i64::MAX);
                response(
                    self.write(portico_proto::cluster::Command::Quota { now_ms, ops }, true)
                        .await,
                )
            }
            NodeRequest::Demand(report) => {
                let PeerIdentity::Edge(edge_id) = peer else {
                    return response(NodeResponse::Error(
                        "demand reports are accepted from edge certificates only".into(),
                    ));
                };
                response(NodeResponse::Shares(
                    self.demand.edge_report(edge_id, &report),
                ))
            }
            NodeRequest::RegionDemand(report) => {
                let PeerIdentity::Node(origin_id) = peer else {
                    return response(NodeResponse::Error(
                        "region totals are accepted from origin certificates only".into(),
                    ));
                };
                if !self.is_member(origin_id) {
                    return response(NodeResponse::Error("not a member".into()));
                }
                self.demand.origin_report(origin_id, &report);
                response(NodeResponse::Done)
            }
            NodeRequest::ListApis { local } => {
                if !admin && !member {
                    return response(NodeResponse::Error("admin only".into()));
                }
                let list = || {
                    let (_, state) = self.raft.state_machine.current();
                    state
                        .apis
                        .iter()
                        .map(|(id, api)| (id.clone(), api.definition.api.name.clone()))
                        .collect()
                };
                if local {
                    return response(NodeResponse::Apis(list()));
                }
                // Read on the leader, after confirming leadership: the caller sees its writes.
                match self.raft.raft.ensure_linearizable().await {
                    Ok(_) => response(NodeResponse::Apis(list())),
                    Err(openraft::error::RaftError::APIError(
                        openraft::error::CheckIsLeaderError::ForwardToLeader(forward),
                    )) => {
                        let leader_addr = forward.leader_node.map(|node| node.addr);
                        response(
                            self.forward(
                                NodeRequest::ListApis { local: false },
                                admin,
                                forward.leader_id,
                                leader_addr,
                            )
                            .await,
                        )
                    }
                    Err(error) => response(NodeResponse::Error(error.to_string())),
                }
            }
            request @ (NodeRequest::CacheGet { .. }
            | NodeRequest::CachePut { .. }
            | NodeRequest::AuthorizeInvalidation(_)) => {
                response(self.l2.handle(&peer, member, request).await)
            }
            NodeRequest::ReadIndex => {
                if !admin && !member {
                    return response(NodeResponse::Error("admin only".into()));
                }
                match self.raft.raft.ensure_linearizable().await {
                    Ok(read) => response(NodeResponse::Index(
                        read.map(|log_id| log_id.index).unwrap_or(0),
                    )),
                    Err(openraft::error::RaftError::APIError(
                        openraft::error::CheckIsLeaderError::ForwardToLeader(forward),
                    )) => {
                        response(self.leader_hint(
                            forward.leader_id,
                            forward.leader_node.map(|node| node.addr),
                        ))
                    }
                    Err(error) => response(NodeResponse::Error(error.to_string())),
                }
            }
            NodeRequest::AddLearner { node_id, addr } => {
                if !admin {
                    return response(NodeResponse::Error("admin only".into()));
                }
                let request = NodeRequest::AddLearner {
                    node_id,
                    addr: addr.clone(),
                };
                response(match self.raft.add_learner(node_id, addr).await {
                    Ok(_) => NodeResponse::Done,
                    Err(error) => self.forward_or_fail(request, error).await,
                })
            }
            NodeRequest::RemoveNodes { nodes } => {
                if !admin {
                    return response(NodeResponse::Error("admin only".into()));
                }
                let request = NodeRequest::RemoveNodes {
                    nodes: nodes.clone(),
                };
                let nodes: BTreeSet<u64> = nodes.into_iter().collect();
                response(match self.raft.remove_nodes(nodes).await {
                    Ok(_) => NodeResponse::Done,
                    Err(error) => self.forward_or_fail(request, error).await,
                })
            }
            NodeRequest::ChangeVoters { voters } => {
                if !admin {
                    return response(NodeResponse::Error("admin only".into()));
                }
                let request = NodeRequest::ChangeVoters {
                    voters: voters.clone(),
                };
                let voters: BTreeSet<u64> = voters.into_iter().collect();
                response(match self.raft.change_voters(voters).await {
                    Ok(_) => NodeResponse::Done,
                    Err(error) => self.forward_or_fail(request, error).await,
                })
            }
        }
    }

    /// An admin request this node could not do because it is not the leader goes to the leader.
    /// The AWS_IAM signing keys for the regions the edge asks for that this origin accepts,
    /// derived from this origin's applied state (which the edge, following it, never runs
    /// ahead of), on the blocking pool.
    async fn signing_keys(&self, edge_id: NodeId, asked: Vec<String>) -> NodeResponse {
        let Some(signing) = self.signing.clone() else {
            return NodeResponse::Error(
                "this origin has no sealing key ([admin]) to derive signing keys with".into(),
            );
        };
        let regions: Vec<String> = asked
            .into_iter()
            .filter(|region| signing.regions.contains(region))
            .take(64)
            .collect();
        // Only the IAM part is needed: copy it, not the whole state.
        let state = self
            .raft
            .state_machine
            .inspect(|state| portico_proto::GatewayState {
                iam: state.iam.clone(),
                ..Default::default()
            });
        let now = crate::time::epoch_seconds(std::time::SystemTime::now());
        let derived = tokio::task::spawn_blocking(move || {
            crate::admin::iam::derive_signing_keys(&state, &signing.sealing, &regions, now)
        })
        .await;
        match derived {
            Ok(set) => {
                tracing::debug!(
                    edge = edge_id,
                    keys = set.keys.len(),
                    revision = set.revision,
                    "handed out signing keys"
                );
                NodeResponse::SigningKeys(set)
            }
            Err(error) => NodeResponse::Error(format!("deriving signing keys: {error}")),
        }
    }

    async fn forward_or_fail(&self, request: NodeRequest, error: WriteError) -> NodeResponse {
        match error {
            WriteError::ForwardToLeader {
                leader_id,
                leader_addr,
            } => self.forward(request, true, leader_id, leader_addr).await,
            other => self.write_error(other),
        }
    }

    fn write_error(&self, error: WriteError) -> NodeResponse {
        match error {
            WriteError::ForwardToLeader {
                leader_id,
                leader_addr,
            } => self.leader_hint(leader_id, leader_addr),
            WriteError::Refused(message) | WriteError::Fatal(message) => {
                NodeResponse::Error(message)
            }
        }
    }

    /// Proposes a command. A write from the admin that reaches a follower is forwarded to the
    /// leader once (by the route this origin has to it); a forwarded write that reaches a
    /// non-leader is answered with the leader hint instead, so writes never loop.
    async fn write(
        &self,
        command: portico_proto::cluster::Command,
        may_forward: bool,
    ) -> NodeResponse {
        // A leader cut off from the majority cannot commit; say so instead of hanging.
        let written = match tokio::time::timeout(COMMIT_TIMEOUT, self.raft.write(command.clone()))
            .await
        {
            Ok(written) => written,
            Err(_) => {
                return NodeResponse::Error(format!(
                    "the write was not committed within {} s, so its outcome is unknown: this origin may not reach a majority of the voters",
                    COMMIT_TIMEOUT.as_secs()
                ));
            }
        };
        match written {
            Ok((index, outcome)) => NodeResponse::Written { index, outcome },
            Err(WriteError::ForwardToLeader {
                leader_id,
                leader_addr,
            }) => {
                self.forward(
                    NodeRequest::Write(Box::new(command)),
                    may_forward,
                    leader_id,
                    leader_addr,
                )
                .await
            }
            Err(error) => self.write_error(error),
        }
    }

    /// Sends an admin request that needs the leader to it, by this origin's route (which may
    /// be a relay or region-local path the client does not have). Only requests that came from
    /// the admin are forwarded, once, so requests never loop between origins.
    async fn forward(
        &self,
        request: NodeRequest,
        may_forward: bool,
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    ) -> NodeResponse {
        let Some(leader_id) = leader_id else {
            return NodeResponse::Error(
                "no leader is known to this origin: it may be cut off from a majority of the voters, or an election is in progress; retry"
                    .to_string(),
            );
        };
        if !may_forward || leader_id == self.node_id {
            return self.leader_hint(Some(leader_id), leader_addr);
        }
        let route = self
            .routes
            .get(&leader_id)
            .copied()
            .or_else(|| leader_addr.as_deref().and_then(|addr| addr.parse().ok()));
        let Some(route) = route else {
            return self.leader_hint(Some(leader_id), leader_addr);
        };
        let answer = match self.transport.call(route, &request, FORWARD_TIMEOUT).await {
            Ok(answer) => answer,
            Err(error) => {
                return NodeResponse::Error(format!(
                    "forwarding to the leader (node {leader_id}) failed: {error}; this origin may be cut off from it"
                ));
            }
        };
        // The leader moved while the request travelled: follow it once more, by our own route.
        if let NodeResponse::NotLeader {
            leader: Some((next, _)),
        } = &answer
            && *next != leader_id
            && *next != self.node_id
            && let Some(route) = self.routes.get(next)
        {
            return match self.transport.call(*route, &request, FORWARD_TIMEOUT).await {
                Ok(answer) => answer,
                Err(error) => NodeResponse::Error(format!(
                    "forwarding to the new leader (node {next}) failed: {error}"
                )),
            };
        }
        answer
    }

    /// This origin's view, plus (for the admin) the edges the other origins know of.
    async fn status(&self, gather: bool) -> ClusterStatus {
        let raft = self.raft.status();
        let mut edges: BTreeMap<NodeId, EdgeStatus> = BTreeMap::new();
        if let Ok(seen) = self.edges.lock() {
            for (id, edge) in seen.iter() {
                edges.insert(
                    *id,
                    EdgeStatus {
                        edge_id: *id,
                        region: edge.region.clone(),
                        version: edge.version,
                        last_seen_seconds_ago: edge.at.elapsed().as_secs(),
                    },
                );
            }
        }
        if gather {
            for (peer, route) in &self.routes {
                let answer = self
                    .transport
                    .call(*route, &NodeRequest::Status, STATUS_TIMEOUT)
                    .await;
                let Ok(NodeResponse::Status(status)) = answer else {
                    tracing::debug!(peer, "no status from peer");
                    continue;
                };
                for edge in status.edges {
                    let fresher = edges.get(&edge.edge_id).is_none_or(|known| {
                        edge.last_seen_seconds_ago < known.last_seen_seconds_ago
                    });
                    if fresher {
                        edges.insert(edge.edge_id, edge);
                    }
                }
            }
        }
        ClusterStatus {
            node_id: self.node_id,
            region: self.region.clone(),
            leader: raft.leader,
            term: raft.term,
            applied_index: raft.last_applied,
            members: raft
                .members
                .iter()
                .map(|member| MemberStatus {
                    node_id: member.node_id,
                    addr: member.addr.clone(),
                    voter: member.voter,
                })
                .collect(),
            edges: edges.into_values().collect(),
        }
    }
}

/// With `[admin]`, invalidations are checked against the admin keys of the replicated state,
/// opened with the same sealing key as the management API's; without it, none is allowed.
fn invalidation_verifier(
    config: &OriginConfig,
    raft: &RaftNode,
) -> anyhow::Result<Option<super::l2::InvalidationVerifier>> {
    let Some(admin) = &config.admin else {
        return Ok(None);
    };
    let state_machine = raft.state_machine.clone();
    Ok(Some(super::l2::InvalidationVerifier {
        sealing: crate::admin::secrets::SealingKey::from_file(&admin.sealing_key)?,
        regions: admin.regions.clone(),
        admin_key: Box::new(move |access_key_id| {
            state_machine.inspect(|state| state.admin_keys.get(access_key_id).cloned())
        }),
    }))
}

/// Serves the management API over HTTPS (the data dir's certificate) on `admin.listen`.
async fn start_admin(
    config: &OriginConfig,
    admin: &super::config::AdminConfig,
    control: OriginControl,
) -> anyhow::Result<(crate::accept::Listener, crate::accept::Shutdown)> {
    use anyhow::Context as _;
    let sealing = crate::admin::secrets::SealingKey::from_file(&admin.sealing_key)?;
    let integrations = Arc::new(crate::integrate::Integrations {
        client: crate::integrate::client::BackendClient::new(None)?,
        settings: crate::integrate::IntegrationSettings::default(),
    });
    let cognito = crate::authorize::cognito::CognitoVerifier::from_config(
        &config.aws,
        integrations.client.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    let api = Arc::new(
        crate::admin::http::AdminApi::new(
            Arc::new(control),
            sealing,
            admin.regions.clone(),
            integrations,
        )
        .with_cognito(cognito),
    );
    let key = crate::tls::load_or_create_self_signed(&config.data_dir)?;
    let tls = Arc::new(crate::tls::server_config(key)?);
    let listener = tokio::net::TcpListener::bind(admin.listen)
        .await
        .with_context(|| format!("binding the management listener to {}", admin.listen))?;
    let shutdown = crate::accept::Shutdown::new();
    let listener = crate::accept::serve(
        listener,
        Some(tls),
        &shutdown,
        Duration::from_secs(10),
        move |request, connection| {
            let api = api.clone();
            async move {
                api.handle(request.map(crate::body::incoming), connection.remote.ip())
                    .await
            }
        },
    )?;
    tracing::info!(listen = %listener.local_addr, "management API");
    Ok((listener, shutdown))
}

/// The bootstrap origin installs the first management key (from `cluster init`) once the
/// cluster has a leader, unless the state already holds keys.
async fn install_first_key(
    control: OriginControl,
    sealing: crate::admin::secrets::SealingKey,
    (access_key_id, secret): (String, String),
) {
    use crate::admin::control::ControlPlane as _;
    for _ in 0..120 {
        if control.0.raft.status().leader.is_some() {
            // Decided on a linearizable read: a restarted node must not mistake its own stale
            // state for an empty one and revive a key the operator deleted.
            match control.read().await {
                Ok(state) if !state.admin_keys.is_empty() => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(?error, "reading the state before installing the first key");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            let sealed = sealing.seal(&access_key_id, &secret);
            let key = portico_proto::AdminKey {
                access_key_id: access_key_id.clone(),
                nonce: sealed.nonce.to_vec(),
                sealed_secret: sealed.ciphertext,
                created_date: crate::time::epoch_seconds(std::time::SystemTime::now()),
                enabled: true,
            };
            match control
                .write(portico_proto::cluster::Command::PutAdminKey(key))
                .await
            {
                Ok(_) => {
                    tracing::info!(access_key_id = %access_key_id, "installed the first management key");
                    return;
                }
                Err(error) => tracing::debug!(?error, "installing the first management key"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tracing::error!("could not install the first management key within a minute");
}

/// The management API's view of an origin: writes through the leader, linearizable reads.
#[derive(Clone)]
pub struct OriginControl(Arc<Inner>);

impl std::fmt::Debug for OriginControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginControl")
            .field("node_id", &self.0.node_id)
            .finish()
    }
}

impl crate::admin::control::ControlPlane for OriginControl {
    fn write(
        &self,
        command: portico_proto::cluster::Command,
    ) -> crate::request::BoxFuture<'_, Result<u64, crate::admin::control::ControlError>> {
        Box::pin(async move {
            use crate::admin::control::ControlError;
            match self.0.write(command, true).await {
                NodeResponse::Written {
                    index,
                    outcome: portico_proto::cluster::CommandOutcome::Applied,
                } => Ok(index),
                NodeResponse::Written {
                    outcome: portico_proto::cluster::CommandOutcome::Refused(refusal),
                    ..
                } => Err(ControlError::Refused(refusal)),
                NodeResponse::Error(message) => Err(ControlError::Unavailable(message)),
                other => Err(ControlError::Unavailable(format!(
                    "unexpected answer {other:?}"
                ))),
            }
        })
    }

    fn read(
        &self,
    ) -> crate::request::BoxFuture<
        '_,
        Result<Arc<portico_proto::GatewayState>, crate::admin::control::ControlError>,
    > {
        Box::pin(async move {
            use crate::admin::control::ControlError;
            let inner = &self.0;
            let index = match inner.raft.raft.ensure_linearizable().await {
                Ok(read) => read.map(|log_id| log_id.index).unwrap_or(0),
                Err(openraft::error::RaftError::APIError(
                    openraft::error::CheckIsLeaderError::ForwardToLeader(forward),
                )) => {
                    // A follower asks the leader for its read index and waits to apply up to it.
                    let answer = inner
                        .forward(
                            NodeRequest::ReadIndex,
                            true,
                            forward.leader_id,
                            forward.leader_node.map(|node| node.addr),
                        )
                        .await;
                    match answer {
                        NodeResponse::Index(index) => index,
                        NodeResponse::Error(message) => {
                            return Err(ControlError::Unavailable(message));
                        }
                        other => {
                            return Err(ControlError::Unavailable(format!(
                                "no read index from the leader: {other:?}"
                            )));
                        }
                    }
                }
                Err(error) => return Err(ControlError::Unavailable(error.to_string())),
            };
            let deadline = Instant::now() + READ_CATCH_UP;
            while inner.raft.state_machine.version() < index {
                if Instant::now() > deadline {
                    return Err(ControlError::Unavailable(format!(
                        "this origin has not applied index {index} yet"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(Arc::new(inner.raft.state_machine.current().1))
        })
    }

    fn local(&self) -> Arc<portico_proto::GatewayState> {
        Arc::new(self.0.raft.state_machine.current().1)
    }

    fn admin_key(&self, access_key_id: &str) -> Option<portico_proto::AdminKey> {
        self.0
            .raft
            .state_machine
            .inspect(|state| state.admin_keys.get(access_key_id).cloned())
    }
}

impl OriginNode {
    /// The control plane the management API writes and reads through.
    pub fn control(&self) -> OriginControl {
        OriginControl(self.inner.clone())
    }
}

/// The update stream of one edge: a snapshot, then every applied entry in order, batched when
/// several are ready. A lagging edge (the broadcast overflowed) or a snapshot install on this
/// origin restarts the stream with a fresh snapshot, so the edge never sees a gap.
fn stream_updates(state_machine: StateMachineHandle) -> mpsc::Receiver<EdgeUpdate> {
    let (sender, receiver) = mpsc::channel(EDGE_QUEUE);
    tokio::spawn(async move {
        let mut events = state_machine.subscribe();
        let (mut last, state) = state_machine.current();
        if sender
            .send(EdgeUpdate::Snapshot(Box::new(redact_for_edge(state))))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let first = events.recv().await;
            let mut batch = Vec::new();
            let mut resnapshot = false;
            let mut next = Some(first);
            while let Some(event) = next.take() {
                match event {
                    Ok(AppliedEvent::Entry { index, command }) => {
                        if index > last {
                            batch.push((
                                index,
                                command.map(|command| redact_command_for_edge((*command).clone())),
                            ));
                            last = index;
                        }
                    }
                    Ok(AppliedEvent::Reset { .. })
                    | Err(broadcast::error::RecvError::Lagged(_)) => {
                        resnapshot = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                if !resnapshot && batch.len() < 256 {
                    next = match events.try_recv() {
                        Ok(event) => Some(Ok(event)),
                        Err(broadcast::error::TryRecvError::Lagged(skipped)) => {
                            Some(Err(broadcast::error::RecvError::Lagged(skipped)))
                        }
                        Err(_) => None,
                    };
                }
            }
            if !batch.is_empty() && sender.send(EdgeUpdate::Entries(batch)).await.is_err() {
                return;
            }
            if resnapshot {
                let (version, state) = state_machine.current();
                last = version;
                if sender
                    .send(EdgeUpdate::Snapshot(Box::new(redact_for_edge(state))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    receiver
}

/// Sends this origin's edge totals to every other origin, every
/// [`crate::limits::demand::REPORT_EVERY`], so each can compute cluster-wide shares.
async fn exchange_demand(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(crate::limits::demand::REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let totals = inner.demand.own_totals();
        if totals.is_empty() {
            continue;
        }
        let request = NodeRequest::RegionDemand(portico_proto::throttle::DemandReport {
            node_id: inner.node_id,
            region: inner.region.clone(),
            buckets: totals,
        });
        for (peer, addr) in &inner.routes {
            if *peer == inner.node_id {
                continue;
            }
            let transport = inner.transport.clone();
            let request = request.clone();
            let addr = *addr;
            // Fire and forget: a slow region must not delay the others.
            tokio::spawn(async move {
                let _ = transport
                    .call(addr, &request, crate::limits::demand::REPORT_EVERY * 2)
                    .await;
            });
        }
    }
}

/// On the leader, closes expired quota leases (forfeiting their unreported units) once a
/// second. The command carries the leader's clock; every replica applies the same expiry.
async fn expire_leases(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if inner.raft.status().leader != Some(inner.node_id) {
            continue;
        }
        let now_ms = i64::try_from(crate::time::epoch_millis(std::time::SystemTime::now()))
            .unwrap_or(i64::MAX);
        let (needed, due): (bool, Vec<(u64, u64, u64)>) =
            inner.raft.state_machine.inspect(|state| {
                let due = state
                    .quota
                    .leases
                    .iter()
                    .filter(|(_, lease)| lease.expires_at_ms <= now_ms)
                    .map(|(id, lease)| (*id, lease.edge_id, lease.granted - lease.reported))
                    .collect();
                (state.quota.needs_expiry(&state.usage_plans, now_ms), due)
            });
        if !needed {
            continue;
        }

        let command = portico_proto::cluster::Command::Quota {
            now_ms,
            ops: vec![QuotaOp::Expire],
        };
        match tokio::time::timeout(COMMIT_TIMEOUT, inner.raft.write(command)).await {
            Ok(Ok(_)) => {
                for (lease, edge, unreported) in &due {
                    // At most this many units were forfeited (a report may have landed
                    // first).
                    tracing::info!(lease, edge, unreported, "expired a quota lease");
                }
            }
            Ok(Err(error)) => tracing::warn!(?error, "expiring quota leases failed"),
            Err(_) => tracing::warn!("expiring quota leases timed out"),
        }
    }
}
