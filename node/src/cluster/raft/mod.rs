//! Raft consensus for the origin nodes, on openraft 0.9 (`storage-v2`).
//!
//! Origins agree on the order of [`Command`]s through Raft; each applies them with the pure
//! `portico_proto::cluster::apply`, so every origin (and every edge fed from one) holds the same
//! `GatewayState` at the same version. The pieces:
//!
//! * [`types`]: the openraft type configuration,
//! * [`log_store`]: the durable log, vote and commit index on redb (`raft.redb`),
//! * [`state_machine`]: the in-memory `GatewayState`, snapshots (persisted in the same file),
//!   and the applied-entry broadcast the edge fan-out reads,
//! * [`network`]: openraft's RPCs over a [`RaftTransport`] the node supplies (QUIC in
//!   production, an in-process router in tests), and [`handle_rpc`] for the receiving side.
//!
//! The write path:
//!
//! ```text
//!  RaftNode::write(cmd)         (a follower answers ForwardToLeader { id, addr })
//!        │
//!        ▼
//!  leader: Raft::client_write ──▶ LogStore::append ──▶ redb commit + fsync (blocking pool)
//!        │                                 │
//!        │            AppendEntries ───────┴──▶ followers: handle_rpc ─▶ append + fsync
//!        │                                          (quorum acknowledged)
//!        ▼
//!  committed ──▶ StateMachineStore::apply ──▶ apply(state, index, cmd) ──▶ CommandOutcome
//!                              │                                          back to the writer
//!                              └──▶ broadcast AppliedEvent::Entry { index, command }
//!                                       └──▶ edge fan-out (subscribe, then current())
//! ```
//!
//! Timings: openraft 0.9 uses `heartbeat_interval` as the AppendEntries RPC deadline, so the
//! heartbeat must exceed the round trip plus a follower's fsync, and election timeouts must be
//! several heartbeats (see [`RaftTimings`]).

// openraft's traits fix the error type (`StorageError`, 224 bytes); boxing it is not ours to do.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, Raft, SnapshotPolicy};
use portico_proto::cluster::{Command, CommandOutcome, MemberStatus};

pub use log_store::LogStore;
pub use network::{RaftTransport, RaftTransportError, handle_rpc};
pub use state_machine::{AppliedEvent, StateMachineHandle, StateMachineStore};
pub use types::TypeConfig;

/// The file, in the node's data directory, that holds the log, vote and latest snapshot.
pub const DB_FILE: &str = "raft.redb";

/// Raft's clocks and log compaction.
///
/// openraft 0.9 gives an AppendEntries RPC exactly `heartbeat_ms` to complete, so
/// `heartbeat_ms` must exceed the worst round trip between voters plus a follower's fsync, or
/// a loaded leader loses its followers and leadership (CRATES.md §1.3). Elections start after
/// a random timeout in `election_min_ms..election_max_ms`, which must be several heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTimings {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (for followers slightly behind).
    pub logs_kept_after_snapshot: u64,
}

impl Default for RaftTimings {
    /// Cross-region voters: 500 ms heartbeats (RTT up to ~300 ms plus fsync), 2–4 s elections.
    fn default() -> Self {
        RaftTimings {
            heartbeat_ms: 500,
            election_min_ms: 2000,
            election_max_ms: 4000,
            snapshot_every: 1000,
            logs_kept_after_snapshot: 1000,
        }
    }
}

impl RaftTimings {
    /// Voters in one region or on one machine (and tests): 250 ms heartbeats, 1–2 s elections.
    pub fn local() -> Self {
        RaftTimings {
            heartbeat_ms: 250,
            election_min_ms: 1000,
            election_max_ms: 2000,
            ..RaftTimings::default()
        }
    }

    fn config(&self) -> anyhow::Result<Config> {
        let config = Config {
            cluster_name: "portico".to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            // A snapshot goes in one RPC: give it far more than a heartbeat.
            install_snapshot_timeout: (self.heartbeat_ms * 20).max(5000),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            ..Config::default()
        };
        config.validate().context("invalid raft timings")
    }
}

/// Why a write (or a membership change) did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// This node is not the leader; send the request to `leader_id` at `leader_addr` if known.
    #[error("not the leader; the leader is {leader_id:?} at {leader_addr:?}")]
    ForwardToLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    /// The request was refused (e.g. a membership change naming a node that is not a learner).
    #[error("refused: {0}")]
    Refused(String),
    /// Raft stopped (shutdown or storage failure) or the request timed out.
    #[error("raft failed: {0}")]
    Fatal(String),
}

impl From<RaftError<u64, ClientWriteError<u64, BasicNode>>> for WriteError {
    fn from(error: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> Self {
        match error {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                WriteError::ForwardToLeader {
                    leader_id: forward.leader_id,
                    leader_addr: forward.leader_node.map(|node| node.addr),
                }
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(error)) => {
                WriteError::Refused(error.to_string())
            }
            RaftError::Fatal(fatal) => WriteError::Fatal(fatal.to_string()),
        }
    }
}

/// What `status()` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RaftStatus {
    pub node_id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub last_applied: u64,
    /// Voters then learners, each in id order, with their addresses.
    pub members: Vec<MemberStatus>,
}

/// One node's Raft: openraft plus the storage and state machine it runs on.
pub struct RaftNode {
    pub node_id: u64,
    pub raft: Raft<TypeConfig>,
    pub state_machine: StateMachineHandle,
}

/// How long `start` waits for a previous instance on the same data dir to release the file.
const OPEN_RETRY: Duration = Duration::from_secs(10);

fn open_db(path: &Path) -> anyhow::Result<redb::Database> {
    let deadline = std::time::Instant::now() + OPEN_RETRY;
    loop {
        match redb::Database::create(path) {
            Ok(db) => return Ok(db),
            // A shut-down Raft drops its storage from its own tasks, shortly after shutdown.
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot open {}", path.display()));
            }
        }
    }
}

impl RaftNode {
    /// Opens (or creates) `data_dir/raft.redb`, restores the latest snapshot, and starts Raft.
    /// A new node waits to be initialized ([`initialize`](Self::initialize)) or added by a
    /// leader; a restarted one replays its committed log and rejoins.
    pub async fn start(
        node_id: u64,
        data_dir: &Path,
        config: RaftTimings,
        transport: Arc<dyn RaftTransport>,
    ) -> anyhow::Result<RaftNode> {
        let config = Arc::new(config.config()?);
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let path = data_dir.join(DB_FILE);
        let db = Arc::new(tokio::task::spawn_blocking(move || open_db(&path)).await??);
        let log_store = LogStore::new(db.clone())?;
        let state_machine = StateMachineStore::new(db)?;
        let handle = state_machine.handle();
        let raft = Raft::new(
            node_id,
            config,
            network::Network::new(transport),
            log_store,
            state_machine,
        )
        .await
        .context("cannot start raft")?;
        Ok(RaftNode {
            node_id,
            raft,
            state_machine: handle,
        })
    }

    /// Bootstraps a new cluster with `members` as its voters. Call once, on one node; a node
    /// that is already initialized answers `Ok` (nothing to do).
    pub async fn initialize(&self, members: BTreeMap<u64, BasicNode>) -> anyhow::Result<()> {
        if self.raft.is_initialized().await? {
            return Ok(());
        }
        self.raft
            .initialize(members)
            .await
            .context("cannot initialize the cluster")
    }

    /// Proposes `command`; on the leader, returns once it is committed and applied, with its
    /// log index (the state's new version) and the outcome of applying it.
    pub async fn write(&self, command: Command) -> Result<(u64, CommandOutcome), WriteError> {
        let response = self.raft.client_write(command).await?;
        Ok((response.log_id.index, response.data))
    }

    /// Adds `id` at `addr` as a learner and returns once it has caught up with the leader's log
    /// (or, when the log was purged, with a snapshot). Returns the membership entry's index.
    pub async fn add_learner(&self, id: u64, addr: String) -> Result<u64, WriteError> {
        let response = self.raft.add_learner(id, BasicNode { addr }, true).await?;
        Ok(response.log_id.index)
    }

    /// Makes exactly `voters` the voters (joint consensus, then the uniform config). Each must
    /// already be a member; dropped voters stay on as learners.
    pub async fn change_voters(&self, voters: BTreeSet<u64>) -> Result<u64, WriteError> {
        let response = self
            .raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
            .await?;
        Ok(response.log_id.index)
    }

    /// Removes nodes from the membership. A voter is demoted first (joint consensus), then
    /// removed, so the group never loses its quorum in one step; the removed node stops
    /// receiving the log.
    pub async fn remove_nodes(&self, nodes: BTreeSet<u64>) -> Result<u64, WriteError> {
        let metrics = self.raft.metrics().borrow().clone();
        let voters: BTreeSet<u64> = metrics.membership_config.membership().voter_ids().collect();
        let remaining: BTreeSet<u64> = voters.difference(&nodes).copied().collect();
        if remaining.is_empty() {
            return Err(WriteError::Refused(
                "removing these nodes would leave no voter".to_string(),
            ));
        }
        if remaining.len() != voters.len() {
            self.change_voters(remaining).await?;
        }
        let response = self
            .raft
            .change_membership(ChangeMembers::RemoveNodes(nodes), false)
            .await?;
        Ok(response.log_id.index)
    }

    /// The leader as this node knows it, its term, what it has applied, and the membership.
    pub fn status(&self) -> RaftStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let mut members: Vec<MemberStatus> = membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                node_id: *id,
                addr: node.addr.clone(),
                voter: voters.contains(id),
            })
            .collect();
        members.sort_by_key(|member| (!member.voter, member.node_id));
        RaftStatus {
            node_id: self.node_id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_applied: metrics.last_applied.map(|log_id| log_id.index).unwrap_or(0),
            members,
        }
    }

    /// Stops Raft. The storage is released by openraft's tasks shortly after; `start` on the
    /// same directory waits for that.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.raft
            .shutdown()
            .await
            .map_err(|error| anyhow::anyhow!("raft shutdown failed: {error}"))
    }
}

#[cfg(test)]
mod tests;
