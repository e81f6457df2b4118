//! The openraft type configuration shared by the log store, state machine and network.
//!
//! `BasicNode::addr` holds the node's QUIC address (`ip:port`), the one the transport dials.

use portico_proto::cluster::{Command, CommandOutcome};

openraft::declare_raft_types!(
    /// Portico's Raft types: commands are [`Command`]s, responses [`CommandOutcome`]s, and a
    /// snapshot is one codec-encoded byte buffer (`generic-snapshot-data`), sent whole.
    pub TypeConfig:
        D = Command,
        R = CommandOutcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Vec<u8>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log id of this cluster.
pub type LogId = openraft::LogId<u64>;
/// The membership as stored in the log and in snapshots.
pub type StoredMembership = openraft::StoredMembership<u64, openraft::BasicNode>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;
/// A storage error of this cluster.
pub type StorageError = openraft::StorageError<u64>;

/// Wraps any error as an openraft read error.
pub(crate) fn read_error(error: impl ToString) -> StorageError {
    openraft::StorageIOError::read(openraft::AnyError::error(error)).into()
}

/// Wraps any error as an openraft write error.
pub(crate) fn write_error(error: impl ToString) -> StorageError {
    openraft::StorageIOError::write(openraft::AnyError::error(error)).into()
}

/// Runs a blocking storage closure (redb transactions, fsyncs) on tokio's blocking pool, so no
/// async worker ever waits for the disk (CRATES.md §1.3: a synchronous fsync on the workers
/// delays heartbeats and costs leadership).
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|error| write_error(format!("storage task failed: {error}")))?
}
