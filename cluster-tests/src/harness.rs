//! Starting, faulting and observing a cluster of real `portico` processes.
//!
//! ```text
//!   region a                 region b                 region c
//!   origin 1 ◀──relay──────▶ origin 2 ◀──relay──────▶ origin 3      (relays: delay, loss, cut)
//!   edges 101, 102           edges 103, 104           edges 105, 106
//! ```
//!
//! Each node gets its own loopback address, so ports never collide between nodes. A node in
//! region A reaches a node in region B only through the relay for (A → B); nodes of one region
//! talk directly. Cutting a region cuts every relay into and out of it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::link::Link;

/// Every wait in the cluster tests is bounded by this unless a test says otherwise.
pub const WAIT: Duration = Duration::from_secs(60);

/// The `portico` binary built for this test run (`target/<profile>/portico`).
pub fn portico_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test binary> → target/<profile>/portico
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("unexpected test binary location")?;
    let binary = profile_dir.join("portico");
    if !binary.exists() {
        bail!(
            "{} does not exist: run the cluster tests with `cargo test --workspace` (or build it with `cargo build -p portico`)",
            binary.display()
        );
    }
    Ok(binary)
}

/// A loopback /24 of our own per cluster, so tests running at the same time never collide.
fn next_subnet() -> u8 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let salt = std::process::id() % 50;
    (10 + (salt * 4 + NEXT.fetch_add(1, Ordering::Relaxed)) % 240) as u8
}

/// Every node has a loopback address of its own, so fixed ports below the ephemeral range
/// never collide: no probing a free port and releasing it for someone else to take.
const CLUSTER_PORT: u16 = 7100;
const HTTP_PORT: u16 = 8080;
const ADMIN_PORT: u16 = 9443;
/// How long one `portico ctl` run may take before the harness kills it.
const CTL_LIMIT: Duration = Duration::from_secs(45);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Origin,
    Edge,
}

/// One node of the cluster and its process.
#[derive(Debug)]
pub struct Node {
    pub id: u64,
    pub region: String,
    pub role: Role,
    pub cluster_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

/// The shape of a test cluster.
#[derive(Debug, Clone)]
pub struct Topology {
    pub regions: Vec<String>,
    pub origins_per_region: usize,
    pub edges_per_region: usize,
    /// One-way delay of every inter-region link.
    pub delay: Duration,
    /// Raft snapshot interval of the origins (entries); `None` keeps the default.
    pub snapshot_every: Option<u64>,
    /// Serve the management API on every origin (port 9443 of its address).
    pub admin: bool,
}

impl Topology {
    /// Three regions of one origin and two edges each, 50 ms one way between regions.
    pub fn three_regions() -> Self {
        Topology {
            regions: vec!["a".into(), "b".into(), "c".into()],
            origins_per_region: 1,
            edges_per_region: 2,
            delay: Duration::from_millis(50),
            snapshot_every: None,
            admin: false,
        }
    }
}

/// A running cluster. Dropping it kills every process.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub certs: PathBuf,
    pub nodes: BTreeMap<u64, Node>,
    /// `(from region, to node)` → relay.
    pub links: BTreeMap<(String, u64), Link>,
    binary: PathBuf,
    subnet: u8,
    next_host: u8,
    snapshot_every: Option<u64>,
    admin: bool,
    /// TOML appended to every edge's config (tables only, e.g. `[functions]`).
    edge_extra: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // PORTICO_KEEP_CLUSTER=1 keeps configs, logs and data dirs for a post-mortem.
        if std::env::var_os("PORTICO_KEEP_CLUSTER").is_some() {
            let kept = std::mem::replace(
                &mut self.dir,
                tempfile::TempDir::new().unwrap_or_else(|_| {
                    tempfile::TempDir::new_in(".").expect("a temporary directory")
                }),
            );
            eprintln!("cluster kept in {}", kept.keep().display());
        }
    }
}

impl Cluster {
    fn next_ip(&mut self) -> IpAddr {
        self.next_host += 1;
        IpAddr::V4(Ipv4Addr::new(127, 1, self.subnet, self.next_host))
    }

    /// Creates certificates, relays and configs, and starts every node. The first origin
    /// bootstraps the Raft group with all origins as voters.
    pub async fn start(topology: &Topology) -> anyhow::Result<Cluster> {
        Self::start_with_edge_config(topology, "").await
    }

    /// [`Cluster::start`], with `edge_extra` (whole TOML tables, such as
    /// `[functions]\ndefault = "http://127.0.0.1:PORT"`) appended to every edge's config.
    pub async fn start_with_edge_config(
        topology: &Topology,
        edge_extra: &str,
    ) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let certs = dir.path().join("certs");
        let mut cluster = Cluster {
            certs: certs.clone(),
            dir,
            nodes: BTreeMap::new(),
            links: BTreeMap::new(),
            binary: portico_binary()?,
            subnet: next_subnet(),
            next_host: 0,
            snapshot_every: None,
            admin: false,
            edge_extra: edge_extra.to_string(),
        };

        let mut origin_id = 1;
        let mut edge_id = 101;
        let mut plan: Vec<(u64, String, Role)> = Vec::new();
        for region in &topology.regions {
            for _ in 0..topology.origins_per_region {
                plan.push((origin_id, region.clone(), Role::Origin));
                origin_id += 1;
            }
            for _ in 0..topology.edges_per_region {
                plan.push((edge_id, region.clone(), Role::Edge));
                edge_id += 1;
            }
        }
        for (id, region, role) in plan {
            cluster.add_node_record(id, &region, role)?;
        }

        let mut init = Command::new(&cluster.binary);
        init.args(["cluster", "init", "--dir"]).arg(&certs);
        for node in cluster.nodes.values() {
            let flag = match node.role {
                Role::Origin => "--node",
                Role::Edge => "--edge",
            };
            init.arg(flag)
                .arg(format!("{}={}", node.id, node.cluster_addr.ip()));
        }
        let output = init.output()?;
        if !output.status.success() {
            bail!(
                "portico cluster init failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }

        let origins: Vec<(u64, String, SocketAddr)> = cluster
            .nodes
            .values()
            .filter(|node| node.role == Role::Origin)
            .map(|node| (node.id, node.region.clone(), node.cluster_addr))
            .collect();
        for (target_id, target_region, target_addr) in &origins {
            for region in &topology.regions {
                if region == target_region {
                    continue;
                }
                let ip = cluster.next_ip();
                let link = Link::start(SocketAddr::new(ip, CLUSTER_PORT), *target_addr, *target_id)
                    .await
                    .context("starting a relay")?;
                link.conditions.set_delay(topology.delay);
                cluster.links.insert((region.clone(), *target_id), link);
            }
        }

        let first_origin = origins.first().map(|(id, _, _)| *id);
        let ids: Vec<u64> = cluster.nodes.keys().copied().collect();
        cluster.snapshot_every = topology.snapshot_every;
        cluster.admin = topology.admin;
        for id in &ids {
            cluster.write_config(*id, Some(*id) == first_origin)?;
        }
        for id in ids {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    fn add_node_record(&mut self, id: u64, region: &str, role: Role) -> anyhow::Result<()> {
        let ip = self.next_ip();
        let cluster_addr = SocketAddr::new(ip, CLUSTER_PORT);
        let http_addr = match role {
            Role::Edge => Some(SocketAddr::new(ip, HTTP_PORT)),
            Role::Origin => None,
        };
        let data_dir = self.dir.path().join(format!("node-{id}"));
        std::fs::create_dir_all(&data_dir)?;
        self.nodes.insert(
            id,
            Node {
                id,
                region: region.to_string(),
                role,
                cluster_addr,
                http_addr,
                config: self.dir.path().join(format!("node-{id}.toml")),
                log: self.dir.path().join(format!("node-{id}.log")),
                data_dir,
                child: None,
            },
        );
        Ok(())
    }

    /// How `from_region` reaches node `target`: directly in its own region, else by relay.
    pub fn route_to(&self, from_region: &str, target: u64) -> SocketAddr {
        let node = &self.nodes[&target];
        if node.region == from_region {
            node.cluster_addr
        } else {
            self.links[&(from_region.to_string(), target)].listen
        }
    }

    fn admin_block(&self, node: &Node) -> String {
        if !self.admin || node.role != Role::Origin {
            return String::new();
        }
        format!(
            "\n[admin]\nlisten = \"{}\"\nsealing_key = {:?}\ninitial_credentials = {:?}\n",
            SocketAddr::new(node.cluster_addr.ip(), ADMIN_PORT),
            self.certs.join("sealing.key"),
            self.certs.join("admin-credentials"),
        )
    }

    fn tls_block(&self, id: u64) -> String {
        format!(
            "[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
            self.certs.join("ca.pem"),
            self.certs.join(format!("node-{id}.pem")),
            self.certs.join(format!("node-{id}-key.pem")),
        )
    }

    fn write_config(&self, id: u64, bootstrap: bool) -> anyhow::Result<()> {
        let node = &self.nodes[&id];
        // Origins of the node's own region first: edges fail over in this order.
        let mut origins: Vec<&Node> = self
            .nodes
            .values()
            .filter(|other| other.role == Role::Origin && other.id != id)
            .collect();
        origins.sort_by_key(|other| (other.region != node.region, other.id));
        let mut peers = String::new();
        let table = match node.role {
            Role::Origin => "peers",
            Role::Edge => "origins",
        };
        for other in origins {
            peers.push_str(&format!(
                "\n[[{table}]]\nnode_id = {}\naddr = \"{}\"\nregion = \"{}\"\n",
                other.id,
                self.route_to(&node.region, other.id),
                other.region
            ));
        }
        let text = match node.role {
            Role::Origin => format!(
                "node_id = {id}\nregion = \"{}\"\ndata_dir = {:?}\nlisten = \"{}\"\n{}\n[raft]\nbootstrap = {bootstrap}\nheartbeat_ms = 300\nelection_min_ms = 1500\nelection_max_ms = 3000\n{}{peers}",
                node.region,
                node.data_dir,
                node.cluster_addr,
                self.tls_block(id),
                self.snapshot_every
                    .map(|every| format!(
                        "snapshot_every = {every}\nlogs_kept_after_snapshot = 2\n"
                    ))
                    .unwrap_or_default()
                    + &self.admin_block(node),
            ),
            Role::Edge => format!(
                "node_id = {id}\nregion = \"{}\"\ndata_dir = {:?}\nlisten_cluster = \"{}\"\nhttp = \"{}\"\n{}\n{peers}\n{}",
                node.region,
                node.data_dir,
                node.cluster_addr,
                node.http_addr
                    .map(|addr| addr.to_string())
                    .unwrap_or_default(),
                self.tls_block(id),
                self.edge_extra,
            ),
        };
        std::fs::write(&node.config, text)?;
        Ok(())
    }

    /// Starts (or restarts) a node's process.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let binary = self.binary.clone();
        let node = self.nodes.get_mut(&id).context("no such node")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let role = match node.role {
            Role::Origin => "origin",
            Role::Edge => "edge",
        };
        let child = Command::new(binary)
            .arg(role)
            .arg("--config")
            .arg(&node.config)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        node.child = Some(child);
        Ok(())
    }

    /// Adds an origin that is not a member yet (a future learner): a certificate from the
    /// cluster CA, a config naming the current origins, and its process.
    pub fn add_origin(&mut self, id: u64, region: &str) -> anyhow::Result<SocketAddr> {
        self.add_node_record(id, region, Role::Origin)?;
        let addr = self.nodes[&id].cluster_addr;
        let output = Command::new(&self.binary)
            .args(["cluster", "add-node", "--dir"])
            .arg(&self.certs)
            .arg("--node")
            .arg(format!("{id}={}", addr.ip()))
            .output()?;
        if !output.status.success() {
            bail!(
                "portico cluster add-node failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        self.write_config(id, false)?;
        self.spawn(id)?;
        Ok(addr)
    }

    /// SIGKILL: no shutdown, no flush, as a crash.
    pub fn kill(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.kill(id);
        self.spawn(id)
    }

    /// Cuts (or heals) every relay into and out of `region`.
    pub fn cut_region(&self, region: &str, cut: bool) {
        for ((from, target), link) in &self.links {
            if from == region || self.nodes[target].region == region {
                link.conditions.set_cut(cut);
            }
        }
    }

    pub fn origins(&self) -> Vec<u64> {
        self.ids(Role::Origin)
    }

    pub fn edges(&self) -> Vec<u64> {
        self.ids(Role::Edge)
    }

    fn ids(&self, role: Role) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|node| node.role == role)
            .map(|node| node.id)
            .collect()
    }

    /// Runs `portico ctl` against `origin` (by its direct address) with the admin certificate,
    /// killing it if it runs longer than [`CTL_LIMIT`].
    pub fn ctl(&self, origin: u64, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let addr = self.nodes[&origin].cluster_addr.to_string();
        let mut child = Command::new(&self.binary)
            .args(["ctl", "--origin", &addr, "--certs"])
            .arg(&self.certs)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = Instant::now() + CTL_LIMIT;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("portico ctl {args:?} ran longer than {CTL_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(child.wait_with_output()?)
    }

    /// The log a node wrote so far (for failure messages).
    pub fn log_of(&self, id: u64) -> String {
        std::fs::read_to_string(&self.nodes[&id].log).unwrap_or_default()
    }
}

/// Polls `check` until it returns `Some`, or fails after `within`.
pub async fn wait_for<T, F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain HTTP/1.1 GET with `Connection: close`: `(status, body)`, or `None` if the edge did
/// not answer within a second.
pub async fn http_get(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    http_get_within(addr, host, path, Duration::from_secs(1)).await
}

/// [`http_get`] with room for a slow backend: `None` if no answer came within `within`.
pub async fn http_get_within(
    addr: SocketAddr,
    host: &str,
    path: &str,
    within: Duration,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())?;
        Some((status, body))
    };
    tokio::time::timeout(within, exchange).await.ok().flatten()
}

/// An API whose only route, `GET /gen`, answers `{"gen": N}` (a MOCK): each write of a new
/// generation is visible on an edge as a new body.
pub fn generation_api(generation: u64) -> String {
    format!(
        r#"openapi: 3.0.1
info: {{ title: gen, version: "1" }}
paths:
  /gen:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {{ application/json: '{{"statusCode": 200}}' }}
        responses:
          default:
            statusCode: "200"
            responseTemplates: {{ application/json: '{{"gen": {generation}}}' }}
"#
    )
}

impl Cluster {
    /// `ctl apply` of `definition` as API `name` on stage `prod`; returns the API id.
    pub fn apply(&self, origin: u64, name: &str, definition: &str) -> anyhow::Result<String> {
        let file = self
            .dir
            .path()
            .join(format!("def-{name}-{}.yaml", definition.len()));
        std::fs::write(&file, definition)?;
        let file = file.to_string_lossy().into_owned();
        let output = self.ctl(origin, &["apply", &file, "--api", name, "--stage", "prod"])?;
        if !output.status.success() {
            bail!(
                "ctl apply via node {origin} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("api_id="))
            .map(str::to_string)
            .context("ctl apply printed no api_id")
    }

    /// The command line of a `ctl apply` of `definition` as API `name` through the first live
    /// origin's address (for tests that run writers on threads of their own).
    pub fn ctl_apply_args(
        &self,
        name: &str,
        definition: &str,
    ) -> anyhow::Result<(PathBuf, Vec<std::ffi::OsString>)> {
        let file = self.dir.path().join(format!("def-{name}.yaml"));
        std::fs::write(&file, definition)?;
        let origin = self
            .nodes
            .values()
            .find(|node| node.role == Role::Origin && node.child.is_some())
            .context("no live origin")?;
        let args = [
            "ctl".into(),
            "--origin".into(),
            origin.cluster_addr.to_string().into(),
            "--certs".into(),
            self.certs.clone().into_os_string(),
            "apply".into(),
            file.into_os_string(),
            "--api".into(),
            name.into(),
            "--stage".into(),
            "prod".into(),
        ]
        .into_iter()
        .collect();
        Ok((self.binary.clone(), args))
    }

    /// A management API call signed by curl's own SigV4 implementation (`--aws-sigv4`), with the
    /// key `cluster init` issued: `(status, JSON body)`.
    pub fn admin_call(
        &self,
        origin: u64,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let credentials = std::fs::read_to_string(self.certs.join("admin-credentials"))?;
        let value = |name: &str| {
            credentials.lines().find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let (id, secret) = value("aws_access_key_id")
            .zip(value("aws_secret_access_key"))
            .context("admin-credentials holds no key")?;
        let addr = SocketAddr::new(self.nodes[&origin].cluster_addr.ip(), ADMIN_PORT);
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-k", "--max-time", "30", "-X", method])
            .args(["--aws-sigv4", "aws:amz:us-east-1:apigateway"])
            .args(["--user", &format!("{id}:{secret}")])
            .args(["-w", "\n%{http_code}"]);
        if let Some(body) = body {
            command
                .args(["-H", "Content-Type: application/json"])
                .args(["--data-binary", body]);
        }
        let output = command.arg(format!("https://{addr}{path}")).output()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (payload, status) = text.rsplit_once('\n').context("curl printed no status")?;
        let status: u16 = status.trim().parse().context("curl status")?;
        let json = if payload.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(payload).unwrap_or(serde_json::Value::String(payload.to_string()))
        };
        Ok((status, json))
    }

    /// An IAM call (query protocol) to `origin`'s management listener, signed by curl for the
    /// service `iam` with the key `cluster init` issued: `(status, XML body)`.
    pub fn iam_call(&self, origin: u64, params: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
        let credentials = std::fs::read_to_string(self.certs.join("admin-credentials"))?;
        let value = |name: &str| {
            credentials.lines().find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let (id, secret) = value("aws_access_key_id")
            .zip(value("aws_secret_access_key"))
            .context("admin-credentials holds no key")?;
        let addr = SocketAddr::new(self.nodes[&origin].cluster_addr.ip(), ADMIN_PORT);
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-k", "--max-time", "30", "-X", "POST"])
            .args(["--aws-sigv4", "aws:amz:us-east-1:iam"])
            .args(["--user", &format!("{id}:{secret}")])
            .args(["-w", "\n%{http_code}"])
            .args(["--data-urlencode", "Version=2010-05-08"]);
        for (name, value) in params {
            command.args(["--data-urlencode", &format!("{name}={value}")]);
        }
        let output = command.arg(format!("https://{addr}/")).output()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (payload, status) = text.rsplit_once('\n').context("curl printed no status")?;
        let status: u16 = status.trim().parse().context("curl status")?;
        Ok((status, payload.to_string()))
    }

    /// `ctl status --json` through `origin`.
    pub fn status(&self, origin: u64) -> Option<serde_json::Value> {
        let output = self.ctl(origin, &["status", "--json"]).ok()?;
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    /// The leader, as the first live origin that knows one says.
    pub fn leader(&mut self) -> Option<u64> {
        for id in self.origins() {
            if !self.nodes.get_mut(&id)?.is_running() {
                continue;
            }
            if let Some(leader) = self.status(id).and_then(|status| status["leader"].as_u64()) {
                return Some(leader);
            }
        }
        None
    }

    /// `[(id, name)]` of the APIs in `origin`'s own state (`local`) or through the leader.
    pub fn apis(&self, origin: u64, local: bool) -> Option<Vec<(String, String)>> {
        let args: &[&str] = if local {
            &["apis", "--local"]
        } else {
            &["apis"]
        };
        let output = self.ctl(origin, args).ok()?;
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    /// What an edge answers for `GET /prod/gen` of API `api_id`.
    pub async fn edge_generation(&self, edge: u64, api_id: &str) -> Option<u64> {
        let addr = self.nodes[&edge].http_addr?;
        let host = format!("{api_id}.execute-api.portico.test");
        let (status, body) = http_get(addr, &host, "/prod/gen").await?;
        if status != 200 {
            return None;
        }
        serde_json::from_str::<serde_json::Value>(&body).ok()?["gen"].as_u64()
    }

    /// The cache generation of stage `{api_id}/{stage}` in the state an edge has applied,
    /// compiled and swapped in (it persists the state right after the swap); `None` until the
    /// edge has written a state.
    pub fn edge_cache_generation(&self, edge: u64, api_id: &str, stage: &str) -> Option<u64> {
        let path = self.nodes[&edge].data_dir.join("edge-state.bin");
        let bytes = std::fs::read(path).ok()?;
        let state: portico_proto::GatewayState = portico_proto::codec::decode(&bytes).ok()?;
        Some(
            state
                .cache_generations
                .get(&portico_proto::admin::cache_generation_key(api_id, stage))
                .copied()
                .unwrap_or(0),
        )
    }
}
