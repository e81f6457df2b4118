//! The durable Raft log on redb.
//!
//! One redb file (`raft.redb`) per node holds three tables written here and one written by the
//! state machine:
//!
//! ```text
//!   logs      u64 index        -> codec(Entry<TypeConfig>)
//!   meta      "vote"           -> codec(Vote)
//!             "committed"      -> codec(Option<LogId>)
//!             "last_purged"    -> codec(LogId)
//!   snapshot  "current"        -> codec(StoredSnapshot)      (state_machine.rs)
//! ```
//!
//! Every write is one redb transaction committed with `Durability::Immediate` (an fsync; the
//! commit index alone skips it, see `save_committed`), and
//! runs on tokio's blocking pool ([`blocking`]) so the async workers never wait for the disk.
//! openraft calls the `RaftLogStorage` methods one at a time (`&mut self`) and each awaits its
//! commit, so writes reach the disk in the order openraft issued them, with no holes; `append`
//! signals `LogFlushed` only after its commit returned. Truncate and purge are range deletes
//! (`retain_in`), and purge records `last_purged` in the same transaction.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogState, RaftLogId, RaftLogReader, Vote};
use portico_proto::codec;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::types::{LogId, StorageError, TypeConfig, blocking, read_error, write_error};

pub(crate) const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The Raft log, vote and commit index of one node. Cloning shares the database; a clone is
/// also the log reader openraft hands to replication tasks.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// Wraps an open database, creating the tables if this is a new file.
    pub fn new(db: Arc<Database>) -> Result<Self, StorageError> {
        let txn = db.begin_write().map_err(write_error)?;
        txn.open_table(LOGS).map_err(write_error)?;
        txn.open_table(META).map_err(write_error)?;
        txn.commit().map_err(write_error)?;
        Ok(LogStore { db })
    }

    async fn read_meta<T>(&self, key: &'static str) -> Result<Option<T>, StorageError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(read_error)?;
            let table = txn.open_table(META).map_err(read_error)?;
            match table.get(key).map_err(read_error)? {
                Some(value) => codec::decode(value.value()).map(Some).map_err(read_error),
                None => Ok(None),
            }
        })
        .await
    }

    /// Writes one meta record; `durable: false` skips the fsync (the record reaches the disk
    /// with the next durable commit, as redb commits in order).
    async fn write_meta<T>(
        &self,
        key: &'static str,
        value: &T,
        durable: bool,
    ) -> Result<(), StorageError>
    where
        T: serde::Serialize,
    {
        let bytes = codec::encode(value).map_err(write_error)?;
        let db = self.db.clone();
        blocking(move || {
            let mut txn = db.begin_write().map_err(write_error)?;
            if !durable {
                txn.set_durability(Durability::None).map_err(write_error)?;
            }
            {
                let mut table = txn.open_table(META).map_err(write_error)?;
                table.insert(key, bytes.as_slice()).map_err(write_error)?;
            }
            txn.commit().map_err(write_error)
        })
        .await
    }
}

fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, StorageError> {
    codec::decode(bytes).map_err(read_error)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&start) => start,
            Bound::Excluded(&start) => start.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&end) => Bound::Included(end),
            Bound::Excluded(&end) => Bound::Excluded(end),
            Bound::Unbounded => Bound::Unbounded,
        };
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(read_error)?;
            let table = txn.open_table(LOGS).map_err(read_error)?;
            let iter = table
                .range::<u64>((Bound::Included(start), end))
                .map_err(read_error)?;
            let mut entries = Vec::new();
            for item in iter {
                let (_, value) = item.map_err(read_error)?;
                entries.push(decode_entry(value.value())?);
            }
            Ok(entries)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.read_meta(LAST_PURGED).await?;
        let db = self.db.clone();
        let last_in_log = blocking(move || {
            let txn = db.begin_read().map_err(read_error)?;
            let table = txn.open_table(LOGS).map_err(read_error)?;
            match table.last().map_err(read_error)? {
                Some((_, value)) => Ok(Some(*decode_entry(value.value())?.get_log_id())),
                None => Ok(None),
            }
        })
        .await?;
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last_in_log.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.write_meta(VOTE, vote, true).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.read_meta(VOTE).await
    }

    /// The commit index is a hint for replay at restart, not a safety property: losing the
    /// latest one in a crash only means fewer entries are re-applied before the leader says
    /// more are committed. So it is written without its own fsync (one fsync saved per commit
    /// round), and becomes durable with the next append.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_meta(COMMITTED, &committed, false).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(COMMITTED).await?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut records = Vec::new();
        for entry in entries {
            let bytes = codec::encode(&entry).map_err(write_error)?;
            records.push((entry.get_log_id().index, bytes));
        }
        let db = self.db.clone();
        let result = blocking(move || {
            let txn = db.begin_write().map_err(write_error)?;
            {
                let mut table = txn.open_table(LOGS).map_err(write_error)?;
                for (index, bytes) in &records {
                    table
                        .insert(*index, bytes.as_slice())
                        .map_err(write_error)?;
                }
            }
            txn.commit().map_err(write_error)
        })
        .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                callback.log_io_completed(Err(std::io::Error::other(error.to_string())));
                Err(error)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write().map_err(write_error)?;
            {
                let mut table = txn.open_table(LOGS).map_err(write_error)?;
                table
                    .retain_in(log_id.index.., |_, _| false)
                    .map_err(write_error)?;
            }
            txn.commit().map_err(write_error)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let marker = codec::encode(&log_id).map_err(write_error)?;
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write().map_err(write_error)?;
            {
                let mut meta = txn.open_table(META).map_err(write_error)?;
                meta.insert(LAST_PURGED, marker.as_slice())
                    .map_err(write_error)?;
                let mut table = txn.open_table(LOGS).map_err(write_error)?;
                table
                    .retain_in(..=log_id.index, |_, _| false)
                    .map_err(write_error)?;
            }
            txn.commit().map_err(write_error)
        })
        .await
    }
}
