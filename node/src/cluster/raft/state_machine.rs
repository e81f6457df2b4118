//! The replicated state machine: the [`GatewayState`] every origin agrees on.
//!
//! The state lives in memory. It is rebuilt at start from the latest snapshot (kept in the
//! `snapshot` table of `raft.redb`), after which openraft re-applies the committed log entries
//! that follow it (the log store persists the commit index for this). Applying is
//! [`portico_proto::cluster::apply`], the same pure function the edges run, so an edge at version
//! V holds exactly the state an origin held at Raft index V.
//!
//! # Applied-entry broadcast (the edge fan-out's feed)
//!
//! Every applied index is published on a `tokio::sync::broadcast` channel as an
//! [`AppliedEvent`], in index order:
//!
//! * `Entry { index, command: Some(c) }` for a normal entry,
//! * `Entry { index, command: None }` for a blank or membership entry (it advances the
//!   version and changes no gateway state),
//! * `Reset { version }` when a snapshot from the leader replaced the whole state.
//!
//! The state is updated and the event sent while holding the state's write lock, which gives
//! subscribers a gap-free protocol:
//!
//! 1. `let mut rx = handle.subscribe();`
//! 2. `let (version, state) = handle.current();` (taken *after* subscribing)
//! 3. for each event: `Entry` with `index <= version`: skip (already in `state`);
//!    `Entry` with `index == version + 1`: apply, `version = index`;
//!    `Reset`, or `RecvError::Lagged`: take `current()` again and continue with step 3.
//!
//! Every index applied after step 2 was sent after step 1, so it is in `rx`.

use std::sync::{Arc, Mutex, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot};
use portico_proto::GatewayState;
use portico_proto::cluster::{Command, CommandOutcome, apply};
use portico_proto::codec;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::types::{
    LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig, blocking, read_error,
    write_error,
};

pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");
const CURRENT: &str = "current";

/// How many events a slow subscriber may fall behind before it sees `Lagged` and resyncs.
const EVENT_CAPACITY: usize = 4096;

/// One step of the applied state, in index order (see the module docs for the protocol).
#[derive(Debug, Clone, PartialEq)]
pub enum AppliedEvent {
    /// Index `index` was applied; `None` for a blank or membership entry. The command is
    /// shared (`Arc`): the channel clones each event once per subscriber.
    Entry {
        index: u64,
        command: Option<Arc<Command>>,
    },
    /// A snapshot replaced the whole state, which is now at `version`: take `current()` again.
    Reset { version: u64 },
}

/// The snapshot's data: what the state machine was after applying `last_applied`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotPayload {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    state: GatewayState,
}

/// A snapshot as kept in redb and in memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

struct Applied {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    state: GatewayState,
}

struct Shared {
    applied: RwLock<Applied>,
    events: broadcast::Sender<AppliedEvent>,
}

/// A cheap, cloneable view of the applied state for the rest of the node.
#[derive(Clone)]
pub struct StateMachineHandle {
    shared: Arc<Shared>,
}

impl StateMachineHandle {
    /// The applied state and its version (the last applied index). Clones the state.
    pub fn current(&self) -> (u64, GatewayState) {
        let applied = read_lock(&self.shared.applied);
        (applied.state.version, applied.state.clone())
    }

    /// Runs `read` on the applied state under the read lock, without copying it (for small
    /// lookups on hot paths, such as an access key on every management request).
    pub fn inspect<R>(&self, read: impl FnOnce(&GatewayState) -> R) -> R {
        read(&read_lock(&self.shared.applied).state)
    }

    /// The version (last applied index) alone.
    pub fn version(&self) -> u64 {
        read_lock(&self.shared.applied).state.version
    }

    /// Subscribes to applied events; call [`current`](Self::current) *after* this.
    pub fn subscribe(&self) -> broadcast::Receiver<AppliedEvent> {
        self.shared.events.subscribe()
    }

    /// The sender itself, for a fan-out that wants to hand out receivers on its own.
    pub fn sender(&self) -> broadcast::Sender<AppliedEvent> {
        self.shared.events.clone()
    }
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// openraft's state machine. Cloning shares everything (a clone is the snapshot builder).
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
    shared: Arc<Shared>,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
}

impl StateMachineStore {
    /// Opens the state machine on `db`, restoring the latest persisted snapshot if any.
    pub fn new(db: Arc<Database>) -> Result<Self, StorageError> {
        let txn = db.begin_write().map_err(write_error)?;
        txn.open_table(SNAPSHOT).map_err(write_error)?;
        txn.commit().map_err(write_error)?;

        let stored: Option<StoredSnapshot> = {
            let txn = db.begin_read().map_err(read_error)?;
            let table = txn.open_table(SNAPSHOT).map_err(read_error)?;
            match table.get(CURRENT).map_err(read_error)? {
                Some(value) => Some(codec::decode(value.value()).map_err(read_error)?),
                None => None,
            }
        };
        let applied = match &stored {
            Some(snapshot) => {
                let payload: SnapshotPayload = codec::decode(&snapshot.data).map_err(read_error)?;
                Applied {
                    last_applied: payload.last_applied,
                    last_membership: payload.last_membership,
                    state: payload.state,
                }
            }
            None => Applied {
                last_applied: None,
                last_membership: StoredMembership::default(),
                state: GatewayState::default(),
            },
        };
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(StateMachineStore {
            db,
            shared: Arc::new(Shared {
                applied: RwLock::new(applied),
                events,
            }),
            snapshot: Arc::new(Mutex::new(stored)),
        })
    }

    /// The handle the rest of the node reads the state through.
    pub fn handle(&self) -> StateMachineHandle {
        StateMachineHandle {
            shared: self.shared.clone(),
        }
    }

    /// Persists `snapshot` (fsynced) and makes it the current one, unless a newer one is.
    async fn keep_snapshot(&self, snapshot: StoredSnapshot) -> Result<(), StorageError> {
        let bytes = codec::encode(&snapshot).map_err(write_error)?;
        let db = self.db.clone();
        let current = self.snapshot.clone();
        blocking(move || {
            // The lock is held across the commit so that two snapshots never race on disk.
            let mut current = lock(&current);
            if let Some(existing) = current.as_ref()
                && existing.meta.last_log_id > snapshot.meta.last_log_id
            {
                return Ok(());
            }
            let txn = db.begin_write().map_err(write_error)?;
            {
                let mut table = txn.open_table(SNAPSHOT).map_err(write_error)?;
                table
                    .insert(CURRENT, bytes.as_slice())
                    .map_err(write_error)?;
            }
            txn.commit().map_err(write_error)?;
            *current = Some(snapshot);
            Ok(())
        })
        .await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let payload = {
            let applied = read_lock(&self.shared.applied);
            SnapshotPayload {
                last_applied: applied.last_applied,
                last_membership: applied.last_membership.clone(),
                state: applied.state.clone(),
            }
        };
        let data = codec::encode(&payload).map_err(write_error)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let snapshot_id = match payload.last_applied {
            Some(log_id) => format!("{}-{}-{nanos}", log_id.leader_id, log_id.index),
            None => format!("none-{nanos}"),
        };
        let meta = SnapshotMeta {
            last_log_id: payload.last_applied,
            last_membership: payload.last_membership,
            snapshot_id,
        };
        self.keep_snapshot(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        })
        .await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(data),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = read_lock(&self.shared.applied);
        Ok((applied.last_applied, applied.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandOutcome>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        let mut applied = write_lock(&self.shared.applied);
        for entry in entries {
            let index = entry.log_id.index;
            applied.last_applied = Some(entry.log_id);
            let (outcome, command) = match entry.payload {
                EntryPayload::Normal(command) => {
                    let outcome = apply(&mut applied.state, index, &command);
                    (outcome, Some(Arc::new(command)))
                }
                EntryPayload::Blank => {
                    applied.state.version = index;
                    (CommandOutcome::Applied, None)
                }
                EntryPayload::Membership(membership) => {
                    applied.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    applied.state.version = index;
                    (CommandOutcome::Applied, None)
                }
            };
            // No receiver is not an error: the fan-out subscribes when it needs to.
            let _ = self
                .shared
                .events
                .send(AppliedEvent::Entry { index, command });
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Vec<u8>>, StorageError> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Vec<u8>>,
    ) -> Result<(), StorageError> {
        let payload: SnapshotPayload = codec::decode(&snapshot).map_err(read_error)?;
        if payload.last_applied != meta.last_log_id {
            return Err(read_error(format!(
                "snapshot {} claims {:?} but holds state at {:?}",
                meta.snapshot_id, meta.last_log_id, payload.last_applied
            )));
        }
        // Durable first: once the state is replaced, openraft may purge the log behind it.
        self.keep_snapshot(StoredSnapshot {
            meta: meta.clone(),
            data: *snapshot,
        })
        .await?;
        let mut applied = write_lock(&self.shared.applied);
        let mut state = payload.state;
        // A snapshot built by another node carries that node's version, which is the index.
        state.version = meta.last_log_id.map(|log_id| log_id.index).unwrap_or(0);
        let version = state.version;
        *applied = Applied {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            state,
        };
        tracing::info!(
            version,
            snapshot = %meta.snapshot_id,
            "installed snapshot from the leader"
        );
        let _ = self.shared.events.send(AppliedEvent::Reset { version });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(lock(&self.snapshot).as_ref().map(|stored| Snapshot {
            meta: stored.meta.clone(),
            snapshot: Box::new(stored.data.clone()),
        }))
    }
}
