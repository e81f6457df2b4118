//! The `cluster-3` scenario's local cluster: three origins (one Raft group) and three edges on
//! loopback, as `scripts/local-cluster.sh` and `cluster-tests/src/harness.rs` build one.
//!
//! ```text
//!   portico cluster init ──▶ certs/          (CA, one certificate per node, the admin client)
//!   origin 1 (a) ◀─Raft─▶ origin 2 (b) ◀─Raft─▶ origin 3 (c)        control plane, QUIC
//!        ▲                     ▲                     ▲
//!   edge 101 (a)          edge 102 (b)          edge 103 (c)        data plane, HTTP/1.1
//!        ▲                     ▲                     ▲
//!       wrk                   wrk                   wrk              a third of the load each
//! ```
//!
//! The API is deployed the way an operator (and the cluster tests' `Cluster::apply`) deploys
//! one: `portico ctl apply` with the admin certificate, through an origin, which forwards the
//! write to the leader; each edge then receives it on its update stream. Nothing here reaches
//! into a node's state.
//!
//! Every node listens on 127.0.0.1 with a port picked free (TCP for the edges' HTTP, UDP for
//! the origins' QUIC), not on the distinct loopback addresses the script and the tests use:
//! a bench may run beside the cluster tests on one machine, and their fixed ports on their own
//! addresses must not collide with ours.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::load;
use crate::procs::{self, Process};

/// The regions, one origin and one edge each (the script's layout).
const REGIONS: [&str; 3] = ["a", "b", "c"];
/// How long one `portico ctl` call may take before it is killed.
const CTL_LIMIT: Duration = Duration::from_secs(45);
/// How long the origins get to elect a leader, and the edges to serve the API.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// One edge: its HTTP address and process.
pub struct Edge {
    pub name: String,
    pub http: SocketAddr,
    pub process: Rc<Process>,
}

/// A running cluster; dropping it kills every node (each [`Process`] does).
pub struct LocalCluster {
    pub origins: Vec<Rc<Process>>,
    pub edges: Vec<Edge>,
    /// The deployed API's id; requests name it in `Host: {id}.execute-api.{domain}`.
    pub api_id: String,
}

impl LocalCluster {
    /// The `Host` header that routes to the deployed API (edges serve several APIs by host,
    /// unlike `dev`, which answers any host with its only API).
    pub fn host(&self) -> String {
        format!("{}.execute-api.portico.test", self.api_id)
    }
}

/// What the cluster serves and where its processes run.
pub struct Plan<'a> {
    pub portico: &'a Path,
    pub dir: &'a Path,
    /// The API definition, deployed as API `bench` on `stage`.
    pub definition: &'a str,
    pub stage: &'a str,
    pub stage_variables: &'a [(String, String)],
    /// A request path (stage included) that must answer 200 on every edge before it counts
    /// as serving.
    pub probe_path: &'a str,
    /// CPU list for every node (origins and edges), as for any target.
    pub cpu: Option<&'a str>,
    /// `TOKIO_WORKER_THREADS` for every node and `--workers` for every edge (1 when pinned,
    /// as `dev` gets).
    pub worker_threads: Option<&'a str>,
}

/// A UDP port free on 127.0.0.1 (bound, then released): origins listen for QUIC on UDP.
fn free_udp_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}

/// Runs `command`, killing it after `limit`; its output (stdout and stderr captured).
fn run_bounded(mut command: Command, what: &str, limit: Duration) -> anyhow::Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let deadline = Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}

fn tls_block(certs: &Path, id: u64) -> String {
    format!(
        "[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        certs.join("ca.pem"),
        certs.join(format!("node-{id}.pem")),
        certs.join(format!("node-{id}-key.pem")),
    )
}

/// Starts the cluster, deploys the API and waits (bounded) until every edge serves it.
pub fn start(plan: &Plan<'_>) -> anyhow::Result<LocalCluster> {
    let dir = plan.dir.join("cluster");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&dir)?;
    let origin_addrs: Vec<SocketAddr> = (0..REGIONS.len())
        .map(|_| Ok(SocketAddr::from(([127, 0, 0, 1], free_udp_port()?))))
        .collect::<anyhow::Result<_>>()?;
    let edge_addrs: Vec<SocketAddr> = (0..REGIONS.len())
        .map(|_| Ok(SocketAddr::from(([127, 0, 0, 1], procs::free_port()?))))
        .collect::<anyhow::Result<_>>()?;
    let origin_id = |index: usize| index as u64 + 1;
    let edge_id = |index: usize| index as u64 + 101;

    let mut init = Command::new(plan.portico);
    init.args(["cluster", "init", "--dir"]).arg(&certs);
    for index in 0..REGIONS.len() {
        init.arg("--node")
            .arg(format!("{}=127.0.0.1", origin_id(index)));
        init.arg("--edge")
            .arg(format!("{}=127.0.0.1", edge_id(index)));
    }
    let output = run_bounded(init, "portico cluster init", CTL_LIMIT)?;
    if !output.status.success() {
        bail!(
            "portico cluster init failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }

    let mut env: Vec<(&str, &str)> = vec![("RUST_LOG", "warn")];
    if let Some(threads) = plan.worker_threads {
        env.push(("TOKIO_WORKER_THREADS", threads));
    }
    // A peer table in failover order: the node's own region first (edges follow the first
    // origin that answers), as the harness writes it.
    let peers = |table: &str, own: usize, skip_own: bool| -> String {
        let mut order: Vec<usize> = (0..REGIONS.len()).collect();
        order.sort_by_key(|index| *index != own);
        order
            .into_iter()
            .filter(|index| !(skip_own && *index == own))
            .map(|index| {
                format!(
                    "\n[[{table}]]\nnode_id = {}\naddr = \"{}\"\nregion = \"{}\"\n",
                    origin_id(index),
                    origin_addrs[index],
                    REGIONS[index]
                )
            })
            .collect()
    };

    let mut origins = Vec::new();
    for (index, region) in REGIONS.iter().enumerate() {
        let id = origin_id(index);
        let data_dir = dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&data_dir)?;
        let config = dir.join(format!("origin-{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "node_id = {id}\nregion = \"{region}\"\ndata_dir = {data_dir:?}\nlisten = \"{}\"\n{}\n[raft]\nbootstrap = {}\n{}",
                origin_addrs[index],
                tls_block(&certs, id),
                index == 0,
                peers("peers", index, true),
            ),
        )?;
        let args = [
            "origin".to_string(),
            "--config".to_string(),
            path_arg(&config),
        ];
        let name = format!("origin-{id}");
        origins.push(Rc::new(Process::start(
            &name,
            plan.portico,
            &args,
            &env,
            plan.cpu,
            plan.dir,
        )?));
    }

    let mut edges = Vec::new();
    for (index, region) in REGIONS.iter().enumerate() {
        let id = edge_id(index);
        let data_dir = dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&data_dir)?;
        let config = dir.join(format!("edge-{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "node_id = {id}\nregion = \"{region}\"\ndata_dir = {data_dir:?}\nlisten_cluster = \"127.0.0.1:0\"\nhttp = \"{}\"\n{}{}",
                edge_addrs[index],
                tls_block(&certs, id),
                peers("origins", index, false),
            ),
        )?;
        let mut args = vec![
            "edge".to_string(),
            "--config".to_string(),
            path_arg(&config),
        ];
        // The request workers, as many as the runtime threads the node is given.
        if let Some(threads) = plan.worker_threads {
            args.extend(["--workers".to_string(), threads.to_string()]);
        }
        let name = format!("edge-{id}");
        let mut process = Process::start(&name, plan.portico, &args, &env, plan.cpu, plan.dir)?;
        process.wait_for_port(edge_addrs[index], Duration::from_secs(30), plan.dir)?;
        edges.push(Edge {
            name,
            http: edge_addrs[index],
            process: Rc::new(process),
        });
    }

    let ctl = |args: &[&str]| -> anyhow::Result<Output> {
        let mut command = Command::new(plan.portico);
        command
            .args(["ctl", "--origin", &origin_addrs[0].to_string(), "--certs"])
            .arg(&certs)
            .args(args);
        run_bounded(
            command,
            &format!("portico ctl {}", args.join(" ")),
            CTL_LIMIT,
        )
    };

    // A leader first: `ctl apply` before the election would be refused.
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        let output = ctl(&["status", "--json"])?;
        let leader = serde_json::from_slice::<serde_json::Value>(&output.stdout)
            .ok()
            .and_then(|status| status.get("leader")?.as_u64());
        if output.status.success() && leader.is_some() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the origins elected no leader in {READY_LIMIT:?}: {}{}",
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let definition = dir.join("bench-api.yaml");
    std::fs::write(&definition, plan.definition)?;
    let mut args: Vec<String> = vec![
        "apply".into(),
        path_arg(&definition),
        "--api".into(),
        "bench".into(),
        "--stage".into(),
        plan.stage.into(),
    ];
    for (name, value) in plan.stage_variables {
        args.push("--stage-var".into());
        args.push(format!("{name}={value}"));
    }
    let output = ctl(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    if !output.status.success() {
        bail!(
            "portico ctl apply failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let api_id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("api_id="))
        .map(str::to_string)
        .with_context(|| format!("portico ctl apply printed no api_id: {stdout}"))?;

    let cluster = LocalCluster {
        origins,
        edges,
        api_id,
    };
    // Every edge must serve the deployment (its update stream delivered and compiled it).
    let headers = [("Host".to_string(), cluster.host())];
    let deadline = Instant::now() + READY_LIMIT;
    for edge in &cluster.edges {
        let url = format!("http://{}{}", edge.http, plan.probe_path);
        loop {
            let last = match load::get_once_with(&url, &headers) {
                Ok((200, _)) => break,
                Ok((status, body)) => format!("{status}: {}", String::from_utf8_lossy(&body)),
                Err(error) => format!("{error:#}"),
            };
            if Instant::now() > deadline {
                bail!(
                    "{} did not serve the API at {url} in time (last answer {last}); its log:\n{}",
                    edge.name,
                    std::fs::read_to_string(plan.dir.join(format!("{}.stderr", edge.name)))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(cluster)
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}
