//! An edge's AWS_IAM signing keys: fetched from the origin it follows, never derived here (an
//! edge holds no secret and no sealing key).
//!
//! ```text
//!   IAM part of the state moved ─┐
//!   the UTC day changed ─────────┼─▶ NodeRequest::SigningKeys ─▶ origin ─▶ IamVerifier (ArcSwap)
//!   no set yet / last try failed ┘                                      └─▶ data dir (0600)
//! ```
//!
//! A set covers yesterday, today and tomorrow, so it keeps verifying across midnight while the
//! next one is fetched. With no origin reachable the last set stays (in memory and on disk, so
//! a restarted edge verifies too); keys the state has since deleted or deactivated are refused
//! by the verifier from the state alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portico_proto::cluster::{NodeRequest, NodeResponse};
use portico_proto::codec;
use portico_proto::iam::SigningKeySet;

use super::config::Peer;
use super::transport::Transport;
use crate::authorize::iam::IamVerifier;

const FILE: &str = "signing-keys.bin";
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the follower looks at revisions and the date without being woken.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub fn keys_file(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The last set this edge received, if one was saved and reads back.
pub fn load(data_dir: &Path) -> Option<SigningKeySet> {
    let bytes = std::fs::read(keys_file(data_dir)).ok()?;
    match codec::decode(&bytes) {
        Ok(set) => Some(set),
        Err(error) => {
            tracing::warn!(%error, "ignoring an unreadable signing key file");
            None
        }
    }
}

/// Saves `set` atomically, readable by this user only.
pub fn save(data_dir: &Path, set: &SigningKeySet) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(data_dir)?;
    let bytes = codec::encode(set)?;
    let temporary = data_dir.join(format!("{FILE}.tmp"));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, keys_file(data_dir))?;
    Ok(())
}

/// Whether the loaded set must be replaced: none yet, derived from an older IAM state than the
/// one the edge serves, or derived on another UTC day than `today` (`YYYYMMDD`).
pub fn needs_refresh(verifier: &IamVerifier, fetched_on: Option<&str>, today: &str) -> bool {
    match verifier.keys_revision() {
        None => true,
        Some(revision) => revision < verifier.state_revision() || fetched_on != Some(today),
    }
}

/// Keeps `verifier`'s signing keys current from the origin being followed. Runs forever.
pub async fn follow(
    transport: Transport,
    following: Arc<std::sync::Mutex<Option<Peer>>>,
    verifier: Arc<IamVerifier>,
    changed: Arc<tokio::sync::Notify>,
    edge_id: u64,
    regions: Vec<String>,
    data_dir: PathBuf,
) {
    // A set loaded from disk counts as fetched on its own middle day.
    let mut fetched_on: Option<String> = load(&data_dir).and_then(|set| {
        verifier.set_signing_keys(&set);
        set.dates.get(1).cloned()
    });
    let mut retry = RETRY_MIN;
    loop {
        let now = crate::time::epoch_seconds(std::time::SystemTime::now());
        let today = crate::sigv4::format_amz_date(now)[..8].to_string();
        if !needs_refresh(&verifier, fetched_on.as_deref(), &today) {
            retry = RETRY_MIN;
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            continue;
        }
        let origin = following.lock().ok().and_then(|current| current.clone());
        let fetched = match origin {
            None => Err("no origin followed".to_string()),
            Some(origin) => {
                let request = NodeRequest::SigningKeys {
                    edge_id,
                    regions: regions.clone(),
                };
                match transport.call(origin.addr, &request, CALL_TIMEOUT).await {
                    Ok(NodeResponse::SigningKeys(set)) => Ok(set),
                    Ok(NodeResponse::Error(message)) => Err(message),
                    Ok(other) => Err(format!("unexpected answer {other:?}")),
                    Err(error) => Err(error.to_string()),
                }
            }
        };
        match fetched {
            // An origin behind the state this edge serves (after a failover) is asked again.
            Ok(set) if set.revision >= verifier.state_revision() => {
                tracing::info!(
                    keys = set.keys.len(),
                    revision = set.revision,
                    "signing keys updated"
                );
                verifier.set_signing_keys(&set);
                fetched_on = set.dates.get(1).cloned();
                let data_dir = data_dir.clone();
                let saved = tokio::task::spawn_blocking(move || save(&data_dir, &set)).await;
                if let Ok(Err(error)) = saved {
                    tracing::warn!(%error, "cannot persist the signing keys");
                }
                retry = RETRY_MIN;
                continue;
            }
            Ok(set) => tracing::debug!(
                revision = set.revision,
                "the origin's signing keys are behind this edge's state; asking again"
            ),
            Err(error) => {
                tracing::debug!(%error, "cannot fetch signing keys; keeping the last set")
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_proto::iam::DerivedSigningKey;

    #[test]
    fn a_set_survives_a_restart_and_refreshes_are_decided_by_revision_and_day() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_none());
        let set = SigningKeySet {
            revision: 3,
            dates: vec!["20261201".into(), "20261202".into(), "20261203".into()],
            regions: vec!["us-east-1".into()],
            keys: vec![DerivedSigningKey {
                access_key_id: "AKIA1".into(),
                date: "20261202".into(),
                region: "us-east-1".into(),
                key: vec![1; 32],
            }],
        };
        save(dir.path(), &set).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(keys_file(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(load(dir.path()), Some(set.clone()));
        std::fs::write(keys_file(dir.path()), b"garbage").unwrap();
        assert!(load(dir.path()).is_none());

        let verifier = IamVerifier::new();
        assert!(needs_refresh(&verifier, None, "20261202"));
        verifier.set_signing_keys(&set);
        assert!(!needs_refresh(&verifier, Some("20261202"), "20261202"));
        assert!(needs_refresh(&verifier, Some("20261202"), "20261203"));
    }
}
