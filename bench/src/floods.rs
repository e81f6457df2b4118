//! `portico-bench floods`: issue #14's hostile-input targets, measured one flood at a time.
//!
//! The targets are about a node under attack, not about throughput: under each flood the
//! resident set stays under 300 MB, a well-behaved client keeps >= 99 % of its requests
//! answered (2xx) within 1 s, the admin's signed calls succeed, and the node still answers
//! afterwards. So each flood gets a fresh `portico dev` (a crash or a leak is attributed to the
//! flood that caused it), runs for a ramp plus a measuring window, and is then torn down.
//!
//! The hostile side is written here rather than taken from a tool (slowhttptest, h2load) so
//! that every connection is bounded in time and count and counted the same way: what the node
//! did to it (answered, closed, reset) is part of the figures. The well-behaved client opens a
//! new connection per request, so it measures admission (the connection cap, the accept loop)
//! as well as the request path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::rustls;

use crate::procs::{self, Process};
use crate::scenario::{ADMIN_ACCESS_KEY_ID, ADMIN_SECRET, load_average, write_certificate};

/// The issue's targets.
const RSS_TARGET_BYTES: u64 = 300 * 1000 * 1000;
const ANSWERED_TARGET: f64 = 0.99;
const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// The management API's body limit is 16 MiB; the hostile documents stay just under it, so
/// they are parsed rather than refused for their size.
const IMPORT_BYTES: usize = 16_000_000;
/// hyper's server allows 256 concurrent streams per HTTP/2 connection.
const STREAMS_PER_CONNECTION: usize = 250;
/// The well-behaved client gives up on a request after this long (counted as not answered).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The API every flood's node serves: a fast route and a slow one, both HTTP_PROXY to the
/// bench upstream. Stage `b`, stage variable `upstream`.
const FLOODS_API: &str = r#"openapi: 3.0.1
info:
  title: bench-floods
  version: "1"
paths:
  /small:
    get:
      responses:
        "200":
          description: the ~100-byte JSON body at once
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://${stageVariables.upstream}/small
  /slow:
    get:
      responses:
        "200":
          description: the same body after the upstream's delay
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://${stageVariables.upstream}/slow
"#;

#[derive(clap::Args, Debug)]
pub struct FloodArgs {
    /// Floods to run (repeatable; default all): slowloris, h2-streams, admin-uploads,
    /// import-deep, import-deep-yaml, import-aliases, import-wide.
    #[arg(long = "flood")]
    floods: Vec<String>,
    /// Seconds the well-behaved client measures during each flood (after the ramp).
    #[arg(long, default_value_t = 15)]
    window: u64,
    /// Seconds the flood gets to build up before the measuring starts.
    #[arg(long, default_value_t = 3)]
    ramp: u64,
    /// Well-behaved requests per second (a new connection each).
    #[arg(long, default_value_t = 20)]
    rate: u64,
    /// Slowloris connections.
    #[arg(long, default_value_t = 1000)]
    slowloris: usize,
    /// Stalled HTTP/2 streams (250 per connection).
    #[arg(long, default_value_t = 4000)]
    streams: usize,
    /// Slow unsigned / forged-signature management uploads.
    #[arg(long, default_value_t = 64)]
    uploads: usize,
    /// Size of the hostile import documents, in bytes (at most 16 MiB, the API's body limit).
    #[arg(long, default_value_t = IMPORT_BYTES)]
    import_bytes: usize,
    /// How long the upstream's `/slow` waits, in seconds.
    #[arg(long, default_value_t = 20)]
    slow_seconds: u64,
    /// Request workers of the node (default: the node's own default).
    #[arg(long)]
    workers: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    Slowloris,
    H2Streams,
    AdminUploads,
    ImportDeep,
    ImportDeepYaml,
    ImportAliases,
    ImportWide,
}

const FLOODS: &[(&str, Flood)] = &[
    ("slowloris", Flood::Slowloris),
    ("h2-streams", Flood::H2Streams),
    ("admin-uploads", Flood::AdminUploads),
    ("import-deep", Flood::ImportDeep),
    ("import-deep-yaml", Flood::ImportDeepYaml),
    ("import-aliases", Flood::ImportAliases),
    ("import-wide", Flood::ImportWide),
];

/// A node started for one flood: the upstream and `portico dev`, killed when dropped.
struct Node {
    portico: Process,
    _upstream: Process,
    http: SocketAddr,
    admin: SocketAddr,
    metrics: SocketAddr,
    api_id: String,
}

/// One flood's figures.
struct Row {
    name: &'static str,
    /// What the hostile side did and what the node did to it.
    hostile: String,
    sent: usize,
    answered_in_time: usize,
    p50_ms: f64,
    p99_ms: f64,
    admin_ok: usize,
    admin_total: usize,
    peak_rss: u64,
    hwm: u64,
    alive: Result<(), String>,
}

impl Row {
    fn answered_fraction(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.answered_in_time as f64 / self.sent as f64
        }
    }

    fn met(&self) -> bool {
        self.peak_rss < RSS_TARGET_BYTES
            && self.answered_fraction() >= ANSWERED_TARGET
            && self.admin_total > 0
            && self.admin_ok == self.admin_total
            && self.alive.is_ok()
    }
}

pub fn run(portico: &Path, args: &FloodArgs) -> anyhow::Result<bool> {
    let selected: Vec<(&'static str, Flood)> = if args.floods.is_empty() {
        FLOODS.to_vec()
    } else {
        let mut selected = Vec::new();
        for name in &args.floods {
            match FLOODS.iter().find(|(known, _)| known == name) {
                Some(flood) => selected.push(*flood),
                None => bail!(
                    "no flood `{name}` (one of: {})",
                    FLOODS
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        selected
    };
    if !portico.is_file() {
        bail!(
            "no portico binary at {} (build it: cargo build --release -p portico, or pass --portico)",
            portico.display()
        );
    }
    if !procs::on_path("curl") {
        bail!("the floods sign management calls with `curl --aws-sigv4`: install curl");
    }
    if args.import_bytes > 16 * 1024 * 1024 {
        bail!("--import-bytes is at most 16 MiB (the management API's body limit)");
    }
    let fd_limit = raise_fd_limit();
    let scratch = std::env::temp_dir().join(format!("portico-floods-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    write_certificate(&scratch)?;
    let self_exe = std::env::current_exe()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "portico-bench floods: {cpus} CPU(s), fd limit {fd_limit}, window {} s after a {} s ramp, {} req/s well-behaved; portico = {}",
        args.window,
        args.ramp,
        args.rate,
        portico.display()
    );
    println!("load before the run: {}", load_average());
    // The hostile side needs more threads than the node has cores only for its own
    // bookkeeping; two keep it from starving the well-behaved client's timers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for (name, flood) in selected {
        println!("\n== {name}, load {}", load_average());
        let mut node = start_node(portico, args, &self_exe, &scratch)
            .with_context(|| format!("starting the node for {name}"))?;
        let row = runtime
            .block_on(run_flood(name, flood, &mut node, args, &scratch))
            .with_context(|| format!("flood {name}"))?;
        println!("{}", render_row(&row));
        rows.push(row);
        drop(node);
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    println!("\n# Floods\n{}", render_table(&rows));
    println!("load after the run: {}", load_average());
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(rows.iter().all(Row::met))
}

/// Raises this process's open-file limit to its hard limit (the node and the upstream,
/// started later, inherit it); returns the soft limit now in force.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        let wanted = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
            limit = wanted;
        }
    }
    limit.rlim_cur
}

fn start_node(
    portico: &Path,
    args: &FloodArgs,
    self_exe: &Path,
    scratch: &Path,
) -> anyhow::Result<Node> {
    let upstream_addr: SocketAddr = ([127, 0, 0, 1], procs::free_port()?).into();
    let mut upstream = Process::start(
        "upstream",
        self_exe,
        &[
            "upstream".to_string(),
            "--listen".to_string(),
            upstream_addr.to_string(),
            "--slow-ms".to_string(),
            (args.slow_seconds * 1000).to_string(),
        ],
        &[],
        None,
        scratch,
    )?;
    upstream.wait_for_port(upstream_addr, Duration::from_secs(10), scratch)?;
    let http: SocketAddr = ([127, 0, 0, 1], procs::free_port()?).into();
    let admin: SocketAddr = ([127, 0, 0, 1], procs::free_port()?).into();
    let metrics: SocketAddr = ([127, 0, 0, 1], procs::free_port()?).into();
    let api_file = scratch.join("floods.api.yaml");
    std::fs::write(&api_file, FLOODS_API)?;
    let data_dir = scratch.join("portico-data");
    let mut command_args: Vec<String> = vec![
        "dev".into(),
        "--api".into(),
        api_file.display().to_string(),
        "--stage".into(),
        "b".into(),
        "--stage-var".into(),
        format!("upstream={upstream_addr}"),
        "--http".into(),
        http.to_string(),
        "--https".into(),
        "off".into(),
        "--admin".into(),
        admin.to_string(),
        "--metrics".into(),
        metrics.to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    if let Some(workers) = args.workers {
        command_args.extend(["--workers".to_string(), workers.to_string()]);
    }
    let env = [
        ("RUST_LOG", "warn"),
        ("PORTICO_ADMIN_ACCESS_KEY_ID", ADMIN_ACCESS_KEY_ID),
        ("PORTICO_ADMIN_SECRET_ACCESS_KEY", ADMIN_SECRET),
    ];
    let mut portico = Process::start("portico", portico, &command_args, &env, None, scratch)?;
    portico.wait_for_port(http, Duration::from_secs(120), scratch)?;
    portico.wait_for_port(admin, Duration::from_secs(30), scratch)?;
    let api_id = crate::scenario::only_api_id(admin)?;
    Ok(Node {
        portico,
        _upstream: upstream,
        http,
        admin,
        metrics,
        api_id,
    })
}

/// Counters the hostile tasks share.
#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    connect_failed: AtomicU64,
    closed_by_node: AtomicU64,
    answered: AtomicU64,
    errors: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl Counters {
    fn status(&self, status: u16) {
        if let Ok(mut statuses) = self.statuses.lock() {
            *statuses.entry(status).or_default() += 1;
        }
    }

    fn statuses(&self) -> String {
        let statuses = self.statuses.lock().map(|s| s.clone()).unwrap_or_default();
        if statuses.is_empty() {
            return "none".to_string();
        }
        statuses
            .iter()
            .map(|(status, count)| format!("{status}x{count}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

async fn run_flood(
    name: &'static str,
    flood: Flood,
    node: &mut Node,
    args: &FloodArgs,
    scratch: &Path,
) -> anyhow::Result<Row> {
    let ramp = Duration::from_secs(args.ramp);
    let window = Duration::from_secs(args.window.max(1));
    let started = Instant::now();
    let measure_from = started + ramp;
    let end = measure_from + window;
    let counters = Arc::new(Counters::default());
    // The imports' calls, awaited (30 s at most) after the window so their answers are counted.
    let mut import_task = None;

    // The RSS sampler runs from the flood's first connection until the node was checked.
    let pid = node.portico.pid();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler_on = sampling.clone();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        let give_up = Instant::now() + Duration::from_secs(600);
        while sampler_on.load(Ordering::Relaxed) && Instant::now() < give_up {
            peak = peak.max(procs::rss_of(pid));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peak
    });

    let describe: Box<dyn Fn(&Counters) -> String + Send> = match flood {
        Flood::Slowloris => {
            for index in 0..args.slowloris {
                // One in ten sends nothing at all; the rest trickle a header.
                let silent = index % 10 == 9;
                tokio::spawn(slowloris(node.http, silent, end, counters.clone()));
            }
            let total = args.slowloris;
            Box::new(move |c: &Counters| {
                format!(
                    "{total} conns: {} opened, {} closed by node, {} connect failures, answers {}",
                    Counters::get(&c.opened),
                    Counters::get(&c.closed_by_node),
                    Counters::get(&c.connect_failed),
                    c.statuses()
                )
            })
        }
        Flood::H2Streams => {
            let mut left = args.streams;
            while left > 0 {
                let streams = left.min(STREAMS_PER_CONNECTION);
                left -= streams;
                tokio::spawn(h2_streams(node.http, streams, end, counters.clone()));
            }
            let total = args.streams;
            Box::new(move |c: &Counters| {
                format!(
                    "{total} streams on {} conns: {} answered ({}), {} failed, {} held to the end",
                    Counters::get(&c.opened),
                    Counters::get(&c.answered),
                    c.statuses(),
                    Counters::get(&c.errors),
                    (total as u64)
                        .saturating_sub(Counters::get(&c.answered) + Counters::get(&c.errors))
                )
            })
        }
        Flood::AdminUploads => {
            let tls = tls_connector()?;
            for index in 0..args.uploads {
                let forged = index % 2 == 1;
                tokio::spawn(slow_upload(
                    node.admin,
                    forged,
                    end,
                    counters.clone(),
                    tls.clone(),
                ));
            }
            let total = args.uploads;
            Box::new(move |c: &Counters| {
                format!(
                    "{total} uploads (half forged): {} conns opened, answers {}, {} closed without answer, {} failures",
                    Counters::get(&c.opened),
                    c.statuses(),
                    Counters::get(&c.closed_by_node),
                    Counters::get(&c.errors)
                )
            })
        }
        Flood::ImportDeep | Flood::ImportDeepYaml | Flood::ImportAliases | Flood::ImportWide => {
            let (document, content_type) = match flood {
                Flood::ImportDeep => (deep_document(args.import_bytes, false), "application/json"),
                Flood::ImportDeepYaml => {
                    (deep_document(args.import_bytes, true), "application/yaml")
                }
                Flood::ImportAliases => (alias_document(args.import_bytes), "application/yaml"),
                _ => (wide_document(args.import_bytes), "application/json"),
            };
            let file = scratch.join(format!("{name}.doc"));
            std::fs::write(&file, document)?;
            let admin = node.admin;
            let path = format!("/restapis/{}?mode=overwrite", node.api_id);
            let task_counters = counters.clone();
            let messages = Arc::new(Mutex::new(Vec::<String>::new()));
            let task_messages = messages.clone();
            import_task = Some(tokio::task::spawn_blocking(move || {
                // Repeated while the window lasts (at most 20 times): the node must take the
                // import's cost more than once without growing.
                for _ in 0..20 {
                    if Instant::now() >= end {
                        break;
                    }
                    task_counters.opened.fetch_add(1, Ordering::Relaxed);
                    let call_started = Instant::now();
                    match curl_signed(admin, "PUT", &path, Some((content_type, &file)), 60) {
                        Ok((status, body)) => {
                            task_counters.status(status);
                            task_counters.answered.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut messages) = task_messages.lock()
                                && messages.is_empty()
                            {
                                let body: String = body.chars().take(120).collect();
                                messages.push(format!(
                                    "{status} in {:.1} s: {body}",
                                    call_started.elapsed().as_secs_f64()
                                ));
                            }
                        }
                        Err(error) => {
                            task_counters.errors.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut messages) = task_messages.lock()
                                && messages.is_empty()
                            {
                                messages.push(format!("{error:#}"));
                            }
                        }
                    }
                }
            }));
            let size = args.import_bytes;
            Box::new(move |c: &Counters| {
                let first = messages
                    .lock()
                    .ok()
                    .and_then(|m| m.first().cloned())
                    .unwrap_or_default();
                let calls = Counters::get(&c.opened);
                format!(
                    "{size}-byte PUT x{calls}: answers {}, {} failed, {} unanswered 30 s after the window; first: {first}",
                    c.statuses(),
                    Counters::get(&c.errors),
                    calls.saturating_sub(Counters::get(&c.answered) + Counters::get(&c.errors))
                )
            })
        }
    };

    tokio::time::sleep_until(measure_from.into()).await;
    let admin_task = tokio::spawn(admin_calls(node.admin, end));
    let latencies = well_behaved(node.http, args.rate.max(1), end).await;
    let (admin_ok, admin_total) = admin_task.await.unwrap_or((0, 0));
    // Let the hostile tasks see the end and close; then the node should be itself again.
    tokio::time::sleep_until((end + Duration::from_secs(1)).into()).await;
    if let Some(task) = import_task {
        let _ = timeout(Duration::from_secs(30), task).await;
    }
    let hostile = describe(&counters);
    let alive = check_alive(node).await;
    sampling.store(false, Ordering::Relaxed);
    let peak_rss = sampler.await.unwrap_or(0);

    let sent = latencies.len();
    let mut answered: Vec<f64> = latencies
        .iter()
        .filter_map(|latency| *latency)
        .map(|latency| latency.as_secs_f64() * 1000.0)
        .collect();
    let answered_in_time = answered
        .iter()
        .filter(|ms| **ms <= ANSWER_WITHIN.as_secs_f64() * 1000.0)
        .count();
    // Unanswered requests count as the slowest in the percentiles.
    answered.extend(std::iter::repeat_n(
        REQUEST_TIMEOUT.as_secs_f64() * 1000.0,
        sent - answered.len(),
    ));
    answered.sort_by(f64::total_cmp);
    Ok(Row {
        name,
        hostile,
        sent,
        answered_in_time,
        p50_ms: percentile(&answered, 0.50),
        p99_ms: percentile(&answered, 0.99),
        admin_ok,
        admin_total,
        peak_rss,
        hwm: procs::hwm_of(pid),
        alive,
    })
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// One slowloris connection, reopened when the node closes it, until `end`: the request line
/// and `Host` at once, then a header one byte every 2 s (or nothing at all when `silent`).
async fn slowloris(addr: SocketAddr, silent: bool, end: Instant, counters: Arc<Counters>) {
    let trickle = b"X-Slowloris: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for _ in 0..100 {
        if Instant::now() >= end {
            return;
        }
        let Ok(Ok(mut stream)) = timeout(Duration::from_secs(5), TcpStream::connect(addr)).await
        else {
            counters.connect_failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        counters.opened.fetch_add(1, Ordering::Relaxed);
        let mut sent = 0usize;
        if !silent
            && stream
                .write_all(format!("GET /b/small HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
                .await
                .is_err()
        {
            counters.closed_by_node.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut buffer = [0u8; 512];
        loop {
            let next = (Instant::now() + Duration::from_secs(2)).min(end);
            tokio::select! {
                read = stream.read(&mut buffer) => {
                    match read {
                        Ok(n) if n > 0 => counters.status(status_of(&buffer[..n])),
                        _ => {}
                    }
                    counters.closed_by_node.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                _ = tokio::time::sleep_until(next.into()) => {
                    if Instant::now() >= end {
                        return;
                    }
                    if silent {
                        continue;
                    }
                    let byte = trickle[sent % trickle.len()];
                    sent += 1;
                    if stream.write_all(&[byte]).await.is_err() {
                        counters.closed_by_node.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        // A closed connection is reopened, but not in a tight loop.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The status code of a response head's first bytes (`HTTP/1.1 503 ...`), or 0.
fn status_of(head: &[u8]) -> u16 {
    std::str::from_utf8(head)
        .ok()
        .and_then(|text| text.split_whitespace().nth(1))
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

/// `streams` GETs of the slow route on one HTTP/2 (prior knowledge) connection, held until
/// `end` (the upstream answers after `--slow-seconds`).
async fn h2_streams(addr: SocketAddr, streams: usize, end: Instant, counters: Arc<Counters>) {
    let failed = |n: usize| {
        counters.errors.fetch_add(n as u64, Ordering::Relaxed);
    };
    let Ok(Ok(stream)) = timeout(Duration::from_secs(5), TcpStream::connect(addr)).await else {
        counters.connect_failed.fetch_add(1, Ordering::Relaxed);
        failed(streams);
        return;
    };
    let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream));
    let Ok(Ok((sender, connection))) = timeout(Duration::from_secs(5), handshake).await else {
        failed(streams);
        return;
    };
    counters.opened.fetch_add(1, Ordering::Relaxed);
    let driver = tokio::spawn(connection);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..streams {
        let mut sender = sender.clone();
        let counters = counters.clone();
        requests.spawn(async move {
            let request = http::Request::get(format!("http://{addr}/b/slow"))
                .body(Empty::<Bytes>::new())
                .ok();
            let outcome = match request {
                Some(request) => match sender.ready().await {
                    Ok(()) => sender.send_request(request).await.ok(),
                    Err(_) => None,
                },
                None => None,
            };
            match outcome {
                Some(response) => {
                    counters.status(response.status().as_u16());
                    counters.answered.fetch_add(1, Ordering::Relaxed);
                    let _ = response.into_body().collect().await;
                }
                None => {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep_until(end.into()).await;
    requests.abort_all();
    drop(sender);
    driver.abort();
}

/// One slow management upload, reopened (after 1 s) when the node answers or closes it, until
/// `end`: a CreateRestApi head announcing a 16,000,000-byte body, unsigned or with a forged
/// SigV4 signature, then 64 KiB of body a second.
async fn slow_upload(
    admin: SocketAddr,
    forged: bool,
    end: Instant,
    counters: Arc<Counters>,
    tls: tokio_rustls::TlsConnector,
) {
    let chunk = vec![b' '; 64 * 1024];
    let authorization = if forged {
        format!(
            "Authorization: AWS4-HMAC-SHA256 Credential={ADMIN_ACCESS_KEY_ID}/20260101/us-east-1/apigateway/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={}\r\nX-Amz-Date: 20260101T000000Z\r\n",
            "0".repeat(64)
        )
    } else {
        String::new()
    };
    let head = format!(
        "POST /restapis HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/json\r\nContent-Length: {IMPORT_BYTES}\r\n{authorization}\r\n"
    );
    for _ in 0..100 {
        if Instant::now() >= end {
            return;
        }
        let connected = timeout(Duration::from_secs(5), async {
            let stream = TcpStream::connect(admin).await?;
            let name = rustls::pki_types::ServerName::try_from("localhost")
                .map_err(std::io::Error::other)?;
            tls.connect(name, stream).await
        })
        .await;
        let Ok(Ok(mut stream)) = connected else {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        counters.opened.fetch_add(1, Ordering::Relaxed);
        if stream.write_all(head.as_bytes()).await.is_err() {
            counters.closed_by_node.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut buffer = [0u8; 512];
        let mut sent = 0usize;
        loop {
            let next = (Instant::now() + Duration::from_secs(1)).min(end);
            tokio::select! {
                read = stream.read(&mut buffer) => {
                    match read {
                        Ok(n) if n > 0 => counters.status(status_of(&buffer[..n])),
                        _ => { counters.closed_by_node.fetch_add(1, Ordering::Relaxed); }
                    }
                    break;
                }
                _ = tokio::time::sleep_until(next.into()) => {
                    if Instant::now() >= end {
                        return;
                    }
                    if sent + chunk.len() >= IMPORT_BYTES {
                        continue;
                    }
                    // A write that cannot complete is the node's back-pressure: wait it out
                    // until the end rather than counting it.
                    match timeout(end.saturating_duration_since(Instant::now()), stream.write_all(&chunk)).await {
                        Ok(Ok(())) => sent += chunk.len(),
                        Ok(Err(_)) => {
                            counters.closed_by_node.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(_) => return,
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The well-behaved client: `rate` GETs of the fast route a second until `end`, each on a new
/// connection; the latency of each 2xx answer, `None` for anything else (an error status, a
/// refused or reset connection, no answer in 5 s).
async fn well_behaved(addr: SocketAddr, rate: u64, end: Instant) -> Vec<Option<Duration>> {
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut requests = Vec::new();
    while Instant::now() < end && requests.len() < 100_000 {
        ticker.tick().await;
        requests.push(tokio::spawn(async move {
            let started = Instant::now();
            match timeout(REQUEST_TIMEOUT, get(addr, "/b/small")).await {
                Ok(Ok(status)) if (200..300).contains(&status) => Some(started.elapsed()),
                _ => None,
            }
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    for request in requests {
        latencies.push(request.await.ok().flatten());
    }
    latencies
}

/// One GET on a new HTTP/1.1 connection; the status once the body is read.
async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// The admin's signed GetRestApis, one started every second until `end` whether or not the
/// last one answered (a wedged management API shows as failures, not as fewer calls);
/// (2xx answers, calls).
async fn admin_calls(admin: SocketAddr, end: Instant) -> (usize, usize) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut calls = Vec::new();
    while Instant::now() < end && calls.len() < 1000 {
        ticker.tick().await;
        calls.push(tokio::task::spawn_blocking(move || {
            curl_signed(admin, "GET", "/restapis", None, 10)
        }));
    }
    let total = calls.len();
    let mut ok = 0;
    for call in calls {
        if let Ok(Ok((status, _))) = call.await
            && (200..300).contains(&status)
        {
            ok += 1;
        }
    }
    (ok, total)
}

/// After the flood: the process runs, the fast route answers 200, a signed management call
/// succeeds and the metrics listener answers.
async fn check_alive(node: &mut Node) -> Result<(), String> {
    if node.portico.exited() {
        return Err("the process exited".to_string());
    }
    match timeout(REQUEST_TIMEOUT, get(node.http, "/b/small")).await {
        Ok(Ok(200)) => {}
        Ok(Ok(status)) => return Err(format!("the fast route answered {status}")),
        Ok(Err(error)) => return Err(format!("the fast route failed: {error:#}")),
        Err(_) => return Err("the fast route did not answer in 5 s".to_string()),
    }
    let admin = node.admin;
    match tokio::task::spawn_blocking(move || curl_signed(admin, "GET", "/restapis", None, 10))
        .await
    {
        Ok(Ok((200, _))) => {}
        Ok(Ok((status, body))) => return Err(format!("GetRestApis answered {status}: {body}")),
        Ok(Err(error)) => return Err(format!("GetRestApis failed: {error:#}")),
        Err(error) => return Err(format!("GetRestApis: {error}")),
    }
    match timeout(REQUEST_TIMEOUT, get(node.metrics, "/metrics")).await {
        Ok(Ok(200)) => Ok(()),
        other => Err(format!("the metrics listener: {other:?}")),
    }
}

/// One signed management call with curl (`--aws-sigv4`), the body read from `data`'s file;
/// the status and the body.
fn curl_signed(
    admin: SocketAddr,
    method: &str,
    path: &str,
    data: Option<(&str, &Path)>,
    max_seconds: u64,
) -> anyhow::Result<(u16, String)> {
    let mut command = Command::new("curl");
    command
        .args([
            "-sS",
            "-k",
            "--max-time",
            &max_seconds.to_string(),
            "-X",
            method,
        ])
        .args(["--aws-sigv4", "aws:amz:us-east-1:apigateway"])
        .args(["--user", &format!("{ADMIN_ACCESS_KEY_ID}:{ADMIN_SECRET}")])
        .args(["-w", "\n%{http_code}"]);
    if let Some((content_type, file)) = data {
        command
            .args(["-H", &format!("Content-Type: {content_type}")])
            .args(["--data-binary", &format!("@{}", file.display())]);
    }
    let output = command
        .arg(format!("https://{admin}{path}"))
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "curl {method} {path}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let (body, status) = text
        .rsplit_once('\n')
        .with_context(|| format!("curl printed no status: {text}"))?;
    let status = status
        .trim()
        .parse()
        .with_context(|| format!("curl's status `{status}`"))?;
    Ok((status, body.to_string()))
}

/// An OpenAPI document (JSON, or YAML with flow sequences) whose `x-deep` extension is `bytes`
/// of nested arrays: a parser that recurses per level without a limit overflows its stack.
fn deep_document(bytes: usize, yaml: bool) -> Vec<u8> {
    let (prefix, suffix): (&[u8], &[u8]) = if yaml {
        (
            b"openapi: 3.0.1\ninfo:\n  title: deep\n  version: \"1\"\npaths: {}\nx-deep: ",
            b"\n",
        )
    } else {
        (
            br#"{"openapi":"3.0.1","info":{"title":"deep","version":"1"},"paths":{},"x-deep":"#,
            b"}",
        )
    };
    let depth = bytes.saturating_sub(prefix.len() + suffix.len()) / 2;
    let mut document = Vec::with_capacity(bytes);
    document.extend_from_slice(prefix);
    document.extend(std::iter::repeat_n(b'[', depth));
    document.extend(std::iter::repeat_n(b']', depth));
    document.extend_from_slice(suffix);
    document
}

/// A YAML "billion laughs": ten levels of anchors, each ten aliases of the one before
/// (10^10 leaves if expanded), padded with a comment to `bytes`.
fn alias_document(bytes: usize) -> Vec<u8> {
    let mut document =
        String::from("openapi: 3.0.1\ninfo:\n  title: aliases\n  version: \"1\"\npaths: {}\n");
    document.push_str("x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let _ = writeln!(
            document,
            "x-a{level}: &a{level} [{}]",
            vec![previous; 10].join(", ")
        );
    }
    let mut document = document.into_bytes();
    while document.len() + 2 < bytes {
        let line = (bytes - document.len() - 1).min(1000);
        document.push(b'#');
        document.extend(std::iter::repeat_n(b'x', line.saturating_sub(2)));
        document.push(b'\n');
    }
    document
}

/// A valid OpenAPI document of `bytes`: as many HTTP_PROXY routes as fit, each with a long
/// description (the import is accepted, so the node holds what it describes).
fn wide_document(bytes: usize) -> Vec<u8> {
    let mut document = String::with_capacity(bytes);
    document.push_str(r#"{"openapi":"3.0.1","info":{"title":"wide","version":"1"},"paths":{"#);
    let padding = "w".repeat(400);
    let mut index = 0;
    loop {
        let path = format!(
            r#""/w{index}":{{"get":{{"description":"{padding}","responses":{{"200":{{"description":"ok"}}}},"x-amazon-apigateway-integration":{{"type":"http_proxy","httpMethod":"GET","uri":"http://127.0.0.1:9/w"}}}}}}"#
        );
        if document.len() + path.len() + 4 > bytes {
            break;
        }
        if index > 0 {
            document.push(',');
        }
        document.push_str(&path);
        index += 1;
    }
    document.push_str("}}");
    document.into_bytes()
}

/// The management API's certificate is dev's self-signed one: the uploads do not verify it.
fn tls_connector() -> anyhow::Result<tokio_rustls::TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn render_row(row: &Row) -> String {
    format!(
        "  hostile: {}\n  well-behaved: {}/{} answered <= 1 s ({:.1} %), p50 {:.1} ms, p99 {:.1} ms; admin {}/{}; peak RSS {:.1} MiB (VmHWM {:.1} MiB); after: {}",
        row.hostile,
        row.answered_in_time,
        row.sent,
        row.answered_fraction() * 100.0,
        row.p50_ms,
        row.p99_ms,
        row.admin_ok,
        row.admin_total,
        mib(row.peak_rss),
        mib(row.hwm),
        match &row.alive {
            Ok(()) => "alive".to_string(),
            Err(why) => format!("NOT alive: {why}"),
        }
    )
}

fn render_table(rows: &[Row]) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| flood | well-behaved answered <= 1 s | p50 / p99 ms | admin calls ok | peak RSS MiB (VmHWM) | alive after | verdict |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|---|");
    for row in rows {
        let _ = writeln!(
            table,
            "| {} | {:.1} % ({}/{}) | {:.1} / {:.1} | {}/{} | {:.1} ({:.1}) | {} | {} |",
            row.name,
            row.answered_fraction() * 100.0,
            row.answered_in_time,
            row.sent,
            row.p50_ms,
            row.p99_ms,
            row.admin_ok,
            row.admin_total,
            mib(row.peak_rss),
            mib(row.hwm),
            if row.alive.is_ok() { "yes" } else { "NO" },
            if row.met() { "met" } else { "NOT MET" }
        );
    }
    for row in rows {
        let _ = writeln!(table, "- {}: {}", row.name, row.hostile);
        if let Err(why) = &row.alive {
            let _ = writeln!(table, "  after the flood: {why}");
        }
    }
    let _ = write!(
        table,
        "targets: peak RSS < 300 MB ({:.1} MiB), >= 99 % of well-behaved requests 2xx within 1 s, every signed admin call 2xx, the node alive after",
        mib(RSS_TARGET_BYTES)
    );
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_documents_have_the_asked_size_and_shape() {
        let yaml = deep_document(1000, true);
        assert!(yaml.len() <= 1000 && yaml.len() > 990, "{}", yaml.len());
        assert!(yaml.starts_with(b"openapi: 3.0.1\n"));
        let deep = deep_document(1000, false);
        assert!(deep.len() <= 1000 && deep.len() > 990, "{}", deep.len());
        let text = String::from_utf8(deep).unwrap();
        assert!(text.contains(&"[".repeat(400)));
        serde_json::from_str::<serde_json::Value>(&text).unwrap_err();

        let aliases = alias_document(100_000);
        assert!(aliases.len() <= 100_000 && aliases.len() > 99_000);
        assert!(
            String::from_utf8(aliases)
                .unwrap()
                .contains("x-a9: &a9 [*a8, *a8")
        );

        let wide = wide_document(100_000);
        assert!(wide.len() <= 100_000 && wide.len() > 99_000);
        let parsed: serde_json::Value = serde_json::from_slice(&wide).unwrap();
        assert!(parsed["paths"].as_object().unwrap().len() > 100);
    }

    #[test]
    fn status_of_reads_a_response_head() {
        assert_eq!(status_of(b"HTTP/1.1 503 Service Unavailable\r\n"), 503);
        assert_eq!(status_of(b""), 0);
        assert_eq!(status_of(b"garbage"), 0);
    }

    #[test]
    fn a_row_meets_the_targets_only_when_all_four_hold() {
        let row = |answered, rss, alive: Result<(), String>| Row {
            name: "t",
            hostile: String::new(),
            sent: 100,
            answered_in_time: answered,
            p50_ms: 1.0,
            p99_ms: 2.0,
            admin_ok: 5,
            admin_total: 5,
            peak_rss: rss,
            hwm: rss,
            alive,
        };
        assert!(row(99, 100 << 20, Ok(())).met());
        assert!(!row(98, 100 << 20, Ok(())).met());
        assert!(!row(100, 300 << 20, Ok(())).met());
        assert!(!row(100, 100 << 20, Err("dead".into())).met());
    }
}
