//! How an edge follows the replicated state: applying updates, and keeping the last state on
//! disk so a restarted edge serves at once, before any origin answers (static stability).
//!
//! An edge holds a `GatewayState` at some version V. An origin sends it a snapshot, then
//! entries `(index, command)` in order; the edge applies them with the same pure function the
//! origins' state machines use, so at version V it holds exactly what the origins held at Raft
//! index V. Entries must be contiguous: a gap means the stream lost something, and the edge
//! drops the stream and resubscribes (the origin then starts with a fresh snapshot).

use std::path::{Path, PathBuf};

use portico_proto::GatewayState;
use portico_proto::cluster::{EdgeUpdate, apply};
use portico_proto::codec;

/// What applying one update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state moved to a new version.
    Advanced,
    /// The state moved to a new version through quota bookkeeping only: routes, keys and
    /// settings are as they were.
    Bookkeeping,
    /// Nothing new (entries the edge already had).
    Unchanged,
}

/// The stream skipped an index: the state is still consistent, but the stream cannot continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("update stream gap: at version {have}, received index {got}")]
pub struct Gap {
    pub have: u64,
    pub got: u64,
}

/// Applies one update to `state`.
pub fn apply_update(state: &mut GatewayState, update: EdgeUpdate) -> Result<Applied, Gap> {
    match update {
        EdgeUpdate::Snapshot(snapshot) => {
            // An origin that is behind this edge (it fell back to another region's origin
            // after a newer one) must not roll the edge back.
            if snapshot.version < state.version {
                return Ok(Applied::Unchanged);
            }
            let changed = *snapshot != *state;
            *state = *snapshot;
            Ok(if changed {
                Applied::Advanced
            } else {
                Applied::Unchanged
            })
        }
        EdgeUpdate::Entries(entries) => {
            let mut applied = Applied::Unchanged;
            let mut routes_changed = false;
            for (index, command) in entries {
                if index <= state.version {
                    continue;
                }
                if index != state.version + 1 {
                    return Err(Gap {
                        have: state.version,
                        got: index,
                    });
                }
                match command {
                    Some(command) => {
                        routes_changed |= command.changes_routes();
                        apply(state, index, &command);
                    }
                    None => state.version = index,
                }
                applied = Applied::Bookkeeping;
            }
            if routes_changed {
                applied = Applied::Advanced;
            }
            Ok(applied)
        }
    }
}

const STATE_FILE: &str = "edge-state.bin";

pub fn state_file(data_dir: &Path) -> PathBuf {
    data_dir.join(STATE_FILE)
}

/// Loads the last persisted state; `Ok(None)` when there is none yet.
pub fn load_state(data_dir: &Path) -> anyhow::Result<Option<GatewayState>> {
    let path = state_file(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(anyhow::anyhow!("reading {}: {error}", path.display()));
        }
    };
    let state = codec::decode(&bytes)
        .map_err(|error| anyhow::anyhow!("{} is not a usable snapshot: {error}", path.display()))?;
    Ok(Some(state))
}

/// Persists `state` atomically: a crash leaves either the old file or the new one, never a torn
/// one (write, fsync, rename, fsync the directory).
pub fn save_state(data_dir: &Path, state: &GatewayState) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(data_dir)?;
    let bytes = codec::encode(state)?;
    let path = state_file(data_dir);
    let temporary = data_dir.join(format!("{STATE_FILE}.tmp"));
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, &path)?;
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_proto::cluster::Command;

    fn put(id: &str) -> Command {
        let mut definition = sample_definition();
        definition.api.id = id.to_string();
        Command::PutApi { definition }
    }

    fn sample_definition() -> portico_proto::ApiDefinition {
        let (state, _) = crate::dev::build_state(
            "inline",
            "openapi: 3.0.1\ninfo: { title: t, version: '1' }\npaths: {}\n",
            "s",
            &[],
            0,
        )
        .unwrap();
        portico_proto::ApiDefinition::clone(&state.apis.into_values().next().unwrap().definition)
    }

    #[test]
    fn entries_apply_in_order_and_gaps_are_refused() {
        let mut state = GatewayState::default();
        let update = EdgeUpdate::Entries(vec![(1, Some(put("a"))), (2, None), (3, Some(put("b")))]);
        assert_eq!(apply_update(&mut state, update), Ok(Applied::Advanced));
        assert_eq!(state.version, 3);
        assert_eq!(state.apis.len(), 2);
        // Replayed entries are skipped.
        let replay = EdgeUpdate::Entries(vec![(2, None), (3, Some(put("b")))]);
        assert_eq!(apply_update(&mut state, replay), Ok(Applied::Unchanged));
        // A gap stops the stream without touching the state.
        let gap = EdgeUpdate::Entries(vec![(5, Some(put("c")))]);
        assert_eq!(apply_update(&mut state, gap), Err(Gap { have: 3, got: 5 }));
        assert_eq!(state.version, 3);
    }

    #[test]
    fn snapshots_replace_but_never_roll_back() {
        let mut state = GatewayState::default();
        apply_update(&mut state, EdgeUpdate::Entries(vec![(1, Some(put("a")))])).unwrap();
        let newer = GatewayState {
            version: 9,
            ..GatewayState::default()
        };
        assert_eq!(
            apply_update(&mut state, EdgeUpdate::Snapshot(Box::new(newer.clone()))),
            Ok(Applied::Advanced)
        );
        assert_eq!(state, newer);
        let older = GatewayState {
            version: 4,
            ..GatewayState::default()
        };
        assert_eq!(
            apply_update(&mut state, EdgeUpdate::Snapshot(Box::new(older))),
            Ok(Applied::Unchanged)
        );
        assert_eq!(state.version, 9);
    }

    #[test]
    fn state_survives_a_restart_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_state(dir.path()).unwrap().is_none());
        let mut state = GatewayState::default();
        apply_update(&mut state, EdgeUpdate::Entries(vec![(1, Some(put("a")))])).unwrap();
        save_state(dir.path(), &state).unwrap();
        assert_eq!(load_state(dir.path()).unwrap(), Some(state));
        std::fs::write(state_file(dir.path()), b"garbage").unwrap();
        let error = load_state(dir.path()).unwrap_err().to_string();
        assert!(error.contains("edge-state.bin"), "{error}");
    }
}
