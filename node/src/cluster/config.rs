//! Node configuration files for `portico origin` and `portico edge`.
//!
//! Raw TOML is parsed into serde types that reject unknown fields (a typo must not silently
//! fall back to a default), then validated into typed settings: addresses parsed, paths checked,
//! ids unique. Every problem is reported at once, each naming the file and the field (and the
//! line, for syntax errors), because a cluster's config is usually written by hand or by a
//! template, and fixing one error per restart across a dozen nodes is miserable.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use portico_proto::cluster::NodeId;
use serde::Deserialize;

use crate::awsconf::AwsConfig;

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// `(field path or line:column, message)`.
    pub problems: Vec<(String, String)>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, (location, message)) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {location}: {message}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: String,
    cert: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    node_id: u64,
    addr: String,
    region: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRaft {
    #[serde(default)]
    bootstrap: bool,
    heartbeat_ms: Option<u64>,
    election_min_ms: Option<u64>,
    election_max_ms: Option<u64>,
    /// Build a snapshot after this many entries (then purge the log behind it).
    snapshot_every: Option<u64>,
    /// Entries kept behind a snapshot for followers slightly behind.
    logs_kept_after_snapshot: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    /// The management API's HTTPS address.
    listen: String,
    /// The key that seals admin secrets in the replicated state (from `cluster init`).
    sealing_key: String,
    /// Credentials the bootstrap origin installs as the first admin key.
    initial_credentials: Option<String>,
    /// Region names accepted in SigV4 credential scopes; empty accepts any.
    #[serde(default)]
    regions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    /// The region's shared response cache (L2) on this origin, in MiB.
    l2_capacity_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    node_id: u64,
    region: String,
    data_dir: String,
    listen: String,
    tls: RawTls,
    raft: Option<RawRaft>,
    admin: Option<RawAdmin>,
    cache: Option<RawCache>,
    #[serde(default)]
    peers: Vec<RawPeer>,
    /// Where `GET /metrics` is served (plain HTTP), if anywhere.
    metrics: Option<String>,
    /// Endpoints of the AWS services the node calls (Cognito's JWKS).
    aws: Option<AwsConfig>,
    /// Regions whose SigV4 signing keys (AWS_IAM, service `execute-api`) this origin derives
    /// for edges; default: its own region and every peer's.
    signing_regions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunctions {
    default: Option<String>,
    #[serde(default)]
    by_name: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    node_id: u64,
    region: String,
    data_dir: String,
    /// The QUIC address the edge dials origins from (port 0 picks one).
    listen_cluster: Option<String>,
    http: Option<String>,
    https: Option<String>,
    tls: RawTls,
    origins: Vec<RawPeer>,
    functions: Option<RawFunctions>,
    ca_file: Option<String>,
    /// Where `GET /metrics` is served (plain HTTP), if anywhere.
    metrics: Option<String>,
    /// A cap on every stage cache's capacity in bytes, below its `cacheClusterSize`.
    cache_capacity_bytes_max: Option<u64>,
    /// Endpoints of the AWS services the node calls (Cognito's JWKS).
    aws: Option<AwsConfig>,
    /// Regions in which AWS_IAM callers sign (credential scope); default: the edge's region.
    signing_regions: Option<Vec<String>>,
    /// Request workers; default: one per core.
    workers: Option<u64>,
    /// Client connections the data plane holds at most.
    max_connections: Option<u64>,
}

/// The most request workers a node's config may ask for (a typo guard: each is a thread).
pub const MAX_WORKERS: u64 = 1024;
/// The most client connections a node's config may ask for.
pub const MAX_CONNECTIONS: u64 = 16_777_216;

/// Certificate files of a node, resolved relative to the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Another node, as a config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node_id: NodeId,
    pub addr: SocketAddr,
    pub region: String,
}

pub use crate::cluster::raft::RaftTimings;

/// The management API of an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub sealing_key: PathBuf,
    pub initial_credentials: Option<PathBuf>,
    pub regions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OriginConfig {
    pub node_id: NodeId,
    pub region: String,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tls: TlsFiles,
    /// Initialise a new cluster with this node and `peers` as voters, if it has no state yet.
    pub bootstrap: bool,
    pub timings: RaftTimings,
    pub peers: Vec<Peer>,
    pub admin: Option<AdminConfig>,
    /// Where `GET /metrics` is served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The capacity of the region's response cache (L2) on this origin.
    pub l2_capacity_bytes: u64,
    /// The `[aws]` section: endpoints of the AWS services the node calls.
    pub aws: AwsConfig,
    /// Regions whose AWS_IAM signing keys this origin hands its edges.
    pub signing_regions: Vec<String>,
}

/// The largest L2 an origin's config may ask for (1 TiB), so the MiB → bytes product stays
/// far from overflowing and a typo in the unit is caught.
const L2_CAPACITY_MB_MAX: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConfig {
    pub node_id: NodeId,
    pub region: String,
    pub data_dir: PathBuf,
    pub listen_cluster: SocketAddr,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub tls: TlsFiles,
    /// In failover order: the edge's own region first, as configured.
    pub origins: Vec<Peer>,
    pub functions: crate::integrate::FunctionEndpoints,
    pub ca_file: Option<PathBuf>,
    /// Where `GET /metrics` is served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// A cap on every stage cache's capacity in bytes, below its `cacheClusterSize`.
    pub cache_capacity_bytes_max: Option<u64>,
    /// The `[aws]` section: endpoints of the AWS services the node calls.
    pub aws: AwsConfig,
    /// Regions in which AWS_IAM callers sign; the edge asks its origin for their keys.
    pub signing_regions: Vec<String>,
    /// Request workers (threads, each with its own listeners and upstream pools).
    pub workers: usize,
    /// Client connections the data plane holds at most, shared out over the workers (fewer
    /// when the file-descriptor limit cannot hold them).
    pub max_connections: usize,
}

struct Checker {
    file: String,
    base: PathBuf,
    problems: Vec<(String, String)>,
}

impl Checker {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push((field.into(), message.into()));
    }

    fn addr(&mut self, field: &str, text: &str) -> Option<SocketAddr> {
        match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.problem(
                    field,
                    format!("{text:?} is not an address like 127.0.0.1:7100"),
                );
                None
            }
        }
    }

    fn path(&self, text: &str) -> PathBuf {
        let path = PathBuf::from(text);
        if path.is_absolute() {
            path
        } else {
            self.base.join(path)
        }
    }

    fn existing_file(&mut self, field: &str, text: &str) -> PathBuf {
        let path = self.path(text);
        if !path.is_file() {
            self.problem(field, format!("{} does not exist", path.display()));
        }
        path
    }

    fn tls(&mut self, raw: &RawTls) -> TlsFiles {
        TlsFiles {
            ca: self.existing_file("tls.ca", &raw.ca),
            cert: self.existing_file("tls.cert", &raw.cert),
            key: self.existing_file("tls.key", &raw.key),
        }
    }

    fn node_id(&mut self, field: &str, id: u64) {
        if id == 0 {
            self.problem(field, "node ids start at 1");
        }
    }

    fn region(&mut self, field: &str, region: &str) {
        let valid = !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            self.problem(field, format!("{region:?} is not a region name"));
        }
    }

    fn peers(&mut self, field: &str, raw: &[RawPeer], own_id: u64) -> Vec<Peer> {
        let mut seen = BTreeSet::from([own_id]);
        let mut peers = Vec::new();
        for (index, peer) in raw.iter().enumerate() {
            let at = format!("{field}[{index}]");
            self.node_id(&format!("{at}.node_id"), peer.node_id);
            if !seen.insert(peer.node_id) {
                self.problem(
                    format!("{at}.node_id"),
                    format!("node id {} appears twice", peer.node_id),
                );
            }
            self.region(&format!("{at}.region"), &peer.region);
            if let Some(addr) = self.addr(&format!("{at}.addr"), &peer.addr) {
                peers.push(Peer {
                    node_id: peer.node_id,
                    addr,
                    region: peer.region.clone(),
                });
            }
        }
        peers
    }

    fn aws(&mut self, raw: Option<AwsConfig>) -> AwsConfig {
        let aws = raw.unwrap_or_default();
        for (field, message) in aws.problems() {
            self.problem(field, message);
        }
        aws
    }

    /// `signing_regions` as configured (each a region name, at least one), else `default`.
    fn signing_regions(&mut self, raw: Option<&Vec<String>>, default: Vec<String>) -> Vec<String> {
        let Some(raw) = raw else {
            return default;
        };
        if raw.is_empty() {
            self.problem("signing_regions", "name at least one region");
        }
        for (index, region) in raw.iter().enumerate() {
            self.region(&format!("signing_regions[{index}]"), region);
        }
        let mut regions = raw.clone();
        regions.dedup();
        regions
    }

    fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError {
                file: self.file,
                problems: self.problems,
            })
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(file: &Path) -> Result<(T, Checker), ConfigError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
        file: name.clone(),
        problems: vec![("-".to_string(), format!("cannot read: {error}"))],
    })?;
    let raw: T = toml::from_str(&text).map_err(|error| {
        let location = match error.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
                format!("{line}:{column}")
            }
            None => "-".to_string(),
        };
        ConfigError {
            file: name.clone(),
            problems: vec![(location, error.message().to_string())],
        }
    })?;
    let base = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((
        raw,
        Checker {
            file: name,
            base,
            problems: Vec::new(),
        },
    ))
}

fn positive(checker: &mut Checker, field: &str, value: Option<u64>, default: u64) -> u64 {
    match value {
        None => default,
        Some(0) => {
            checker.problem(field, "must be more than 0");
            default
        }
        Some(value) => value,
    }
}

/// Loads and validates an origin's config file.
pub fn load_origin(file: &Path) -> Result<OriginConfig, ConfigError> {
    let (raw, mut checker): (RawOrigin, _) = parse(file)?;
    checker.node_id("node_id", raw.node_id);
    checker.region("region", &raw.region);
    let listen = checker.addr("listen", &raw.listen);
    let tls = checker.tls(&raw.tls);
    let peers = checker.peers("peers", &raw.peers, raw.node_id);
    let defaults = RaftTimings::default();
    let (bootstrap, timings) = match &raw.raft {
        None => (false, defaults),
        Some(raft) => {
            let timings = RaftTimings {
                heartbeat_ms: positive(
                    &mut checker,
                    "raft.heartbeat_ms",
                    raft.heartbeat_ms,
                    defaults.heartbeat_ms,
                ),
                election_min_ms: positive(
                    &mut checker,
                    "raft.election_min_ms",
                    raft.election_min_ms,
                    defaults.election_min_ms,
                ),
                election_max_ms: positive(
                    &mut checker,
                    "raft.election_max_ms",
                    raft.election_max_ms,
                    defaults.election_max_ms,
                ),
                snapshot_every: positive(
                    &mut checker,
                    "raft.snapshot_every",
                    raft.snapshot_every,
                    defaults.snapshot_every,
                ),
                logs_kept_after_snapshot: raft
                    .logs_kept_after_snapshot
                    .unwrap_or(defaults.logs_kept_after_snapshot),
            };
            if timings.election_min_ms <= timings.heartbeat_ms {
                checker.problem(
                    "raft.election_min_ms",
                    "must be more than raft.heartbeat_ms",
                );
            }
            if timings.election_max_ms <= timings.election_min_ms {
                checker.problem(
                    "raft.election_max_ms",
                    "must be more than raft.election_min_ms",
                );
            }
            (raft.bootstrap, timings)
        }
    };
    let admin = raw.admin.as_ref().and_then(|admin| {
        let listen = checker.addr("admin.listen", &admin.listen)?;
        Some(AdminConfig {
            listen,
            sealing_key: checker.existing_file("admin.sealing_key", &admin.sealing_key),
            initial_credentials: admin
                .initial_credentials
                .as_deref()
                .map(|path| checker.existing_file("admin.initial_credentials", path)),
            regions: admin.regions.clone(),
        })
    });
    let metrics = raw
        .metrics
        .as_deref()
        .and_then(|text| checker.addr("metrics", text));
    let default_mb = crate::cluster::l2::DEFAULT_CAPACITY_BYTES / (1024 * 1024);
    let l2_capacity_mb = positive(
        &mut checker,
        "cache.l2_capacity_mb",
        raw.cache.as_ref().and_then(|cache| cache.l2_capacity_mb),
        default_mb,
    );
    if l2_capacity_mb > L2_CAPACITY_MB_MAX {
        checker.problem(
            "cache.l2_capacity_mb",
            format!("must be at most {L2_CAPACITY_MB_MAX} (1 TiB)"),
        );
    }
    let mut cluster_regions = vec![raw.region.clone()];
    for peer in &peers {
        if !cluster_regions.contains(&peer.region) {
            cluster_regions.push(peer.region.clone());
        }
    }
    let signing_regions = checker.signing_regions(raw.signing_regions.as_ref(), cluster_regions);
    let data_dir = checker.path(&raw.data_dir);
    let aws = checker.aws(raw.aws);
    let config = OriginConfig {
        node_id: raw.node_id,
        region: raw.region,
        data_dir,
        listen: listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        tls,
        bootstrap,
        timings,
        peers,
        admin,
        metrics,
        l2_capacity_bytes: l2_capacity_mb.min(L2_CAPACITY_MB_MAX) * 1024 * 1024,
        aws,
        signing_regions,
    };
    checker.finish(config)
}

/// Loads and validates an edge's config file.
pub fn load_edge(file: &Path) -> Result<EdgeConfig, ConfigError> {
    let (raw, mut checker): (RawEdge, _) = parse(file)?;
    checker.node_id("node_id", raw.node_id);
    checker.region("region", &raw.region);
    let listen_cluster = match &raw.listen_cluster {
        Some(text) => checker.addr("listen_cluster", text),
        None => Some(SocketAddr::from(([0, 0, 0, 0], 0))),
    };
    let http = raw
        .http
        .as_deref()
        .and_then(|text| checker.addr("http", text));
    let https = raw
        .https
        .as_deref()
        .and_then(|text| checker.addr("https", text));
    if raw.http.is_none() && raw.https.is_none() {
        checker.problem("http", "an edge needs an http or https listener");
    }
    let tls = checker.tls(&raw.tls);
    if raw.origins.is_empty() {
        checker.problem("origins", "an edge needs at least one origin");
    }
    let origins = checker.peers("origins", &raw.origins, raw.node_id);
    let mut functions = crate::integrate::FunctionEndpoints::default();
    if let Some(raw_functions) = &raw.functions {
        functions.default = raw_functions.default.clone();
        functions.by_name = raw_functions.by_name.clone().into_iter().collect();
    }
    let ca_file = raw
        .ca_file
        .as_deref()
        .map(|text| checker.existing_file("ca_file", text));
    let metrics = raw
        .metrics
        .as_deref()
        .and_then(|text| checker.addr("metrics", text));
    if raw.cache_capacity_bytes_max == Some(0) {
        checker.problem("cache_capacity_bytes_max", "must be more than 0");
    }
    let workers = match raw.workers {
        None => crate::accept::Workers::default_count(),
        Some(count @ 1..=MAX_WORKERS) => count as usize,
        Some(_) => {
            checker.problem("workers", format!("must be from 1 to {MAX_WORKERS}"));
            1
        }
    };
    let max_connections = match raw.max_connections {
        None => crate::accept::MAX_CONNECTIONS_DEFAULT,
        Some(count @ 1..=MAX_CONNECTIONS) => count as usize,
        Some(_) => {
            checker.problem(
                "max_connections",
                format!("must be from 1 to {MAX_CONNECTIONS}"),
            );
            1
        }
    };
    let signing_regions =
        checker.signing_regions(raw.signing_regions.as_ref(), vec![raw.region.clone()]);
    let data_dir = checker.path(&raw.data_dir);
    let aws = checker.aws(raw.aws);
    let config = EdgeConfig {
        node_id: raw.node_id,
        region: raw.region,
        data_dir,
        listen_cluster: listen_cluster.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        http,
        https,
        tls,
        origins,
        functions,
        ca_file,
        metrics,
        cache_capacity_bytes_max: raw.cache_capacity_bytes_max,
        aws,
        signing_regions,
        workers,
        max_connections,
    };
    checker.finish(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn certs(dir: &Path) {
        for name in ["ca.pem", "node.pem", "node-key.pem"] {
            write(dir, name, "x");
        }
    }

    const TLS: &str = "[tls]\nca = \"ca.pem\"\ncert = \"node.pem\"\nkey = \"node-key.pem\"\n";

    #[test]
    fn a_valid_origin() {
        let dir = tempfile::tempdir().unwrap();
        certs(dir.path());
        let file = write(
            dir.path(),
            "origin.toml",
            &format!(
                "node_id = 1\nregion = \"us-east\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:7100\"\nmetrics = \"127.0.0.1:9100\"\n{TLS}\n[raft]\nbootstrap = true\n\n[[peers]]\nnode_id = 2\naddr = \"127.0.0.2:7100\"\nregion = \"eu-west\"\n"
            ),
        );
        let config = load_origin(&file).unwrap();
        assert_eq!(config.node_id, 1);
        assert!(config.bootstrap);
        assert_eq!(config.peers[0].addr, "127.0.0.2:7100".parse().unwrap());
        assert_eq!(config.data_dir, dir.path().join("data"));
        assert_eq!(config.tls.ca, dir.path().join("ca.pem"));
        assert_eq!(config.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        // AWS_IAM signing regions: by default the cluster's (own and peers').
        assert_eq!(config.signing_regions, ["us-east", "eu-west"]);
    }

    #[test]
    fn edge_metrics_and_cache_cap() {
        let dir = tempfile::tempdir().unwrap();
        certs(dir.path());
        let edge = |extra: &str| {
            format!(
                "node_id = 5\nregion = \"us-east\"\ndata_dir = \"data\"\nhttp = \"127.0.0.1:8080\"\n{extra}{TLS}\n[[origins]]\nnode_id = 1\naddr = \"127.0.0.1:7100\"\nregion = \"us-east\"\n"
            )
        };
        let file = write(
            dir.path(),
            "edge.toml",
            &edge(
                "metrics = \"127.0.0.1:9101\"\ncache_capacity_bytes_max = 1048576\nworkers = 3\n",
            ),
        );
        let config = load_edge(&file).unwrap();
        assert_eq!(config.workers, 3);
        assert_eq!(config.metrics, Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!(config.cache_capacity_bytes_max, Some(1_048_576));
        assert_eq!(config.signing_regions, ["us-east"]);
        let file = write(
            dir.path(),
            "regions.toml",
            &edge("signing_regions = [\"us-east-1\", \"eu-west-1\"]\n"),
        );
        assert_eq!(
            load_edge(&file).unwrap().signing_regions,
            ["us-east-1", "eu-west-1"]
        );
        for bad in ["signing_regions = []\n", "signing_regions = [\"a b\"]\n"] {
            let file = write(dir.path(), "bad-regions.toml", &edge(bad));
            let error = load_edge(&file).unwrap_err();
            assert!(
                error.problems[0].0.starts_with("signing_regions"),
                "{error}"
            );
        }
        let file = write(
            dir.path(),
            "bad.toml",
            &edge(
                "metrics = \"nowhere\"\ncache_capacity_bytes_max = 0\nworkers = 0\nmax_connections = 0\n",
            ),
        );
        let error = load_edge(&file).unwrap_err();
        let fields: Vec<&str> = error.problems.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"metrics"), "{fields:?}");
        assert!(fields.contains(&"workers"), "{fields:?}");
        assert!(fields.contains(&"max_connections"), "{fields:?}");
        assert!(fields.contains(&"cache_capacity_bytes_max"), "{fields:?}");
    }

    #[test]
    fn the_aws_section_names_endpoints_and_refuses_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        certs(dir.path());
        let edge = |aws: &str| {
            format!(
                "node_id = 5\nregion = \"us-east\"\ndata_dir = \"data\"\nhttp = \"127.0.0.1:8080\"\n{TLS}\n[[origins]]\nnode_id = 1\naddr = \"127.0.0.1:7100\"\nregion = \"us-east\"\n{aws}"
            )
        };
        let file = write(dir.path(), "none.toml", &edge(""));
        assert_eq!(load_edge(&file).unwrap().aws, AwsConfig::default());
        let file = write(
            dir.path(),
            "aws.toml",
            &edge(
                "[aws]\nendpoint_url = \"http://127.0.0.1:5000\"\n[aws.services.cognito_identity_provider]\nendpoint_url = \"http://127.0.0.1:5001\"\n",
            ),
        );
        let aws = load_edge(&file).unwrap().aws;
        assert_eq!(aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        let (endpoint, _) =
            crate::awsconf::resolve(crate::awsconf::COGNITO_IDP, &aws, |_| None).unwrap();
        assert_eq!(endpoint.base_url("x"), "http://127.0.0.1:5001");
        let file = write(
            dir.path(),
            "typo.toml",
            &edge("[aws]\nendpoint = \"http://x\"\n"),
        );
        let error = load_edge(&file).unwrap_err();
        assert!(error.problems[0].1.contains("endpoint"), "{error}");
        let file = write(
            dir.path(),
            "bad.toml",
            &edge(
                "[aws]\nendpoint_url = \"x\"\n[aws.services.cognito]\nendpoint_url = \"http://x\"\n",
            ),
        );
        let error = load_edge(&file).unwrap_err();
        let fields: Vec<&str> = error.problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["aws.endpoint_url", "aws.services.cognito"],
            "{error}"
        );
        let origin = format!(
            "node_id = 1\nregion = \"a\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:7100\"\n{TLS}\n[aws]\nendpoint_url = \"https://cognito.internal\"\n"
        );
        let file = write(dir.path(), "origin.toml", &origin);
        assert_eq!(
            load_origin(&file).unwrap().aws.endpoint_url.as_deref(),
            Some("https://cognito.internal")
        );
    }

    #[test]
    fn the_l2_capacity_is_configured_in_mib() {
        let dir = tempfile::tempdir().unwrap();
        certs(dir.path());
        let origin = |cache: &str| {
            format!(
                "node_id = 1\nregion = \"a\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:7100\"\n{TLS}\n{cache}"
            )
        };
        let file = write(dir.path(), "default.toml", &origin(""));
        assert_eq!(
            load_origin(&file).unwrap().l2_capacity_bytes,
            256 * 1024 * 1024
        );
        let file = write(
            dir.path(),
            "sized.toml",
            &origin("[cache]\nl2_capacity_mb = 64\n"),
        );
        assert_eq!(
            load_origin(&file).unwrap().l2_capacity_bytes,
            64 * 1024 * 1024
        );
        for (name, cache, field) in [
            (
                "zero.toml",
                "[cache]\nl2_capacity_mb = 0\n",
                "cache.l2_capacity_mb",
            ),
            (
                "huge.toml",
                "[cache]\nl2_capacity_mb = 99999999999\n",
                "cache.l2_capacity_mb",
            ),
        ] {
            let file = write(dir.path(), name, &origin(cache));
            let error = load_origin(&file).unwrap_err();
            assert_eq!(error.problems[0].0, field, "{error}");
        }
        let file = write(
            dir.path(),
            "typo.toml",
            &origin("[cache]\nl2_capacity = 64\n"),
        );
        let error = load_origin(&file).unwrap_err();
        assert!(error.problems[0].1.contains("l2_capacity"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "origin.toml",
            "node_id = 0\nregion = \"bad region\"\ndata_dir = \"d\"\nlisten = \"nowhere\"\n[tls]\nca = \"missing.pem\"\ncert = \"c\"\nkey = \"k\"\n[raft]\nheartbeat_ms = 500\nelection_min_ms = 400\n[[peers]]\nnode_id = 2\naddr = \"x\"\nregion = \"r\"\n[[peers]]\nnode_id = 2\naddr = \"127.0.0.1:1\"\nregion = \"r\"\n",
        );
        let error = load_origin(&file).unwrap_err();
        let fields: Vec<&str> = error.problems.iter().map(|(f, _)| f.as_str()).collect();
        for expected in [
            "node_id",
            "region",
            "listen",
            "tls.ca",
            "tls.cert",
            "tls.key",
            "raft.election_min_ms",
            "peers[0].addr",
            "peers[1].node_id",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
        let text = error.to_string();
        assert!(text.starts_with(&format!("{}: ", file.display())), "{text}");
    }

    #[test]
    fn syntax_errors_and_unknown_fields_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "edge.toml", "node_id = 3\nregoin = \"typo\"\n");
        let error = load_edge(&file).unwrap_err();
        assert_eq!(error.problems.len(), 1);
        assert_eq!(error.problems[0].0, "2:1");
        assert!(error.problems[0].1.contains("regoin"), "{error}");
        let file = write(dir.path(), "broken.toml", "node_id = \n");
        let error = load_edge(&file).unwrap_err();
        assert!(error.problems[0].0.starts_with("1:"), "{error}");
    }
}
