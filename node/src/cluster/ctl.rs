//! `portico ctl`: the cluster's admin client.
//!
//! It speaks the node protocol over QUIC with the admin certificate that `portico cluster init`
//! issued, so only holders of that certificate can change the cluster. Any origin accepts a
//! request; one that is not the leader forwards writes, and answers reads that must be fresh
//! with the leader's address, which the client then follows (a bounded number of times).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use portico_proto::cluster::{Command, CommandOutcome, NodeRequest, NodeResponse};
use portico_proto::{ApiDefinition, StringMap};

use super::certs::{self, ClusterTls};
use super::transport::Transport;

const CALL_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_REDIRECTS: usize = 3;
const APPLY_ATTEMPTS: usize = 3;

/// Whether a failed write may nevertheless have been committed.
fn is_outcome_unknown(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    text.contains("outcome is unknown")
        || text.contains("timed out")
        || text.contains("unreachable")
}

/// A connection to one origin.
#[derive(Debug)]
pub struct Ctl {
    transport: Transport,
    origin: SocketAddr,
}

impl Ctl {
    /// Loads `ca.pem`, `admin.pem` and `admin-key.pem` from `certs_dir`.
    pub fn connect(origin: SocketAddr, certs_dir: &Path) -> anyhow::Result<Ctl> {
        let tls = ClusterTls::load(
            &certs::ca_cert_path(certs_dir),
            &certs::admin_cert_path(certs_dir),
            &certs::admin_key_path(certs_dir),
        )?;
        let local = match origin {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
        };
        Ok(Ctl {
            transport: Transport::bind(local, &tls)?,
            origin,
        })
    }

    /// Sends a request, following `NotLeader` answers to the leader.
    pub async fn request(&self, request: &NodeRequest) -> anyhow::Result<NodeResponse> {
        let mut target = self.origin;
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .transport
                .call(target, request, CALL_TIMEOUT)
                .await
                .with_context(|| format!("calling {target}"))?;
            match response {
                NodeResponse::NotLeader {
                    leader: Some((_, addr)),
                } => {
                    target = addr
                        .parse()
                        .with_context(|| format!("the leader's address {addr:?} is invalid"))?;
                }
                NodeResponse::NotLeader { leader: None } => {
                    bail!("no leader is known to {target} (an election may be in progress; retry)")
                }
                NodeResponse::Error(message) => bail!("{target}: {message}"),
                other => return Ok(other),
            }
        }
        bail!("too many leader redirects")
    }

    /// Proposes a command through the leader; returns its log index.
    pub async fn write(&self, command: Command) -> anyhow::Result<u64> {
        match self.request(&NodeRequest::Write(Box::new(command))).await? {
            NodeResponse::Written {
                index,
                outcome: CommandOutcome::Applied,
            } => Ok(index),
            NodeResponse::Written {
                outcome: CommandOutcome::Refused(refusal),
                ..
            } => bail!("refused: {refusal}"),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `(id, name)` of every API: linearizable through the leader, or with `local` as the
    /// answering origin has them.
    pub async fn list_apis(&self, local: bool) -> anyhow::Result<Vec<(String, String)>> {
        let request = NodeRequest::ListApis { local };
        let response = if local {
            self.transport
                .call(self.origin, &request, CALL_TIMEOUT)
                .await?
        } else {
            self.request(&request).await?
        };
        match response {
            NodeResponse::Apis(apis) => Ok(apis),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `ctl apply`: imports `file`, deploys it and points `stage` at the deployment. The API
    /// named `api_name` is updated in place; otherwise one is created. The write is idempotent
    /// (the state resolves the name, and the deployment id is fixed here), so an attempt whose
    /// outcome is unknown (a timeout, a lost connection) is retried as it is.
    pub async fn apply(
        &self,
        file: &Path,
        api_name: &str,
        stage: &str,
        stage_variables: StringMap,
    ) -> anyhow::Result<Applied> {
        crate::dev::validate_stage_name(stage).map_err(anyhow::Error::msg)?;
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let now = crate::time::epoch_seconds(SystemTime::now());
        let name = file.display().to_string();
        let imported = crate::openapi::import(
            &name,
            &text,
            &crate::ids::new_id(),
            now,
            &mut crate::ids::new_id,
        )?;
        let mut definition: ApiDefinition = imported.definition;
        definition.api.name = api_name.to_string();
        let deployment_id = crate::ids::new_id();
        let command = Command::ApplyDefinition {
            definition,
            deployment_id: deployment_id.clone(),
            stage_name: stage.to_string(),
            stage_variables,
            now,
        };
        let mut attempt = 0;
        let index = loop {
            attempt += 1;
            match self.write(command.clone()).await {
                Ok(index) => break index,
                Err(error) if attempt < APPLY_ATTEMPTS && is_outcome_unknown(&error) => {
                    tracing::debug!(%error, "retrying an apply whose outcome is unknown");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(error),
            }
        };
        let api_id = self
            .list_apis(false)
            .await?
            .into_iter()
            .find(|(_, name)| name == api_name)
            .map(|(id, _)| id)
            .context("the applied API is not in the state")?;
        Ok(Applied {
            api_id,
            deployment_id,
            index,
            warnings: imported
                .warnings
                .iter()
                .map(|warning| format!("{name}: {warning}"))
                .collect(),
        })
    }

    pub async fn status(&self) -> anyhow::Result<portico_proto::cluster::ClusterStatus> {
        match self.request(&NodeRequest::Status).await? {
            NodeResponse::Status(status) => Ok(status),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    pub async fn add_learner(&self, node_id: u64, addr: &str) -> anyhow::Result<()> {
        let request = NodeRequest::AddLearner {
            node_id,
            addr: addr.to_string(),
        };
        match self.request(&request).await? {
            NodeResponse::Done => Ok(()),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    pub async fn remove_nodes(&self, nodes: Vec<u64>) -> anyhow::Result<()> {
        match self.request(&NodeRequest::RemoveNodes { nodes }).await? {
            NodeResponse::Done => Ok(()),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    pub async fn set_voters(&self, voters: Vec<u64>) -> anyhow::Result<()> {
        match self.request(&NodeRequest::ChangeVoters { voters }).await? {
            NodeResponse::Done => Ok(()),
            other => bail!("unexpected answer {other:?}"),
        }
    }
}

/// What `ctl apply` did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub api_id: String,
    pub deployment_id: String,
    pub index: u64,
    pub warnings: Vec<String>,
}

/// Renders `ctl status` for a terminal.
pub fn render_status(status: &portico_proto::cluster::ClusterStatus) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let leader = status
        .leader
        .map(|id| id.to_string())
        .unwrap_or_else(|| "none".to_string());
    let _ = writeln!(
        out,
        "answered by node {} ({}); leader {leader}; term {}; applied index {}",
        status.node_id, status.region, status.term, status.applied_index
    );
    let _ = writeln!(out, "members:");
    for member in &status.members {
        let _ = writeln!(
            out,
            "  node {:<4} {:<22} {}{}",
            member.node_id,
            member.addr,
            if member.voter { "voter" } else { "learner" },
            if Some(member.node_id) == status.leader {
                " (leader)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out, "edges:");
    if status.edges.is_empty() {
        let _ = writeln!(out, "  (none reported to this origin)");
    }
    for edge in &status.edges {
        let _ = writeln!(
            out,
            "  edge {:<4} region {:<10} version {:<8} last seen {}s ago",
            edge.edge_id, edge.region, edge.version, edge.last_seen_seconds_ago
        );
    }
    out
}
