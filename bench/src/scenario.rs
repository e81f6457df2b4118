//! The scenarios, their targets, the alternating rounds, the table and the targets' verdicts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use crate::cluster;
use crate::load::{self, Generator, Load, LoadResult};
use crate::procs::{self, Process};
use crate::upstream::SMALL_BODY;

const NGINX_CONF: &str = include_str!("../config/nginx.conf");
const NGINX_TLS_CONF: &str = include_str!("../config/nginx-tls.conf");
const HAPROXY_CFG: &str = include_str!("../config/haproxy.cfg");
const HAPROXY_TLS_CFG: &str = include_str!("../config/haproxy-tls.cfg");
const NGINX_CACHE_CONF: &str = include_str!("../config/nginx-cache.conf");
const PROXY_API: &str = include_str!("../config/proxy.yaml");
const MOCK_API: &str = include_str!("../config/mock.yaml");
const KEYED_API: &str = include_str!("../config/keyed.yaml");
const AUTHORIZERS_API: &str = include_str!("../config/authorizers.yaml");
/// The token the authorizers scenario sends to its Lambda TOKEN authorizer.
const BENCH_TOKEN: &str = "Bearer portico-bench-token";

/// The keys-throttle scenario's API key (AWS wants at least 20 characters) and the management
/// API's credentials it gives `portico dev`.
const BENCH_API_KEY: &str = "portico-bench-api-key-0123456789";
const BENCH_API_KEY_NOQUOTA: &str = "portico-bench-api-key-noquota-0123456789";
pub(crate) const ADMIN_ACCESS_KEY_ID: &str = "AKIAPORTICOBENCH0001";
pub(crate) const ADMIN_SECRET: &str = "portico-bench-admin-secret-0000000000000";
/// Limits that never reject: a rate of 1e9 req/s, a burst of 2e9, a daily quota of 2e9.
const HUGE_RATE: &str = "1000000000";
const HUGE_BURST: &str = "2000000000";

/// Routes in the large-table scenarios.
pub const N_ROUTES: usize = 10_000;
/// API keys the keys-100k scenario imports, and how many rows go in one ImportApiKeys body
/// (the management API takes at most 10,000 rows per import).
pub const N_KEYS: usize = 100_000;
const IMPORT_BATCH: usize = 10_000;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub portico: PathBuf,
    pub install: bool,
    pub smoke: bool,
    pub scenarios: Vec<String>,
    pub duration: Duration,
    pub rounds: u32,
    pub pin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ProxySmall,
    ProxyLarge,
    Mock,
    TlsH1,
    TlsH2,
    Routes10k,
    CacheHit,
    KeysThrottle,
    Cluster3,
    Keys100k,
    Authorizers,
}

#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub what: &'static str,
    pub kind: Kind,
    pub unavailable: Option<&'static str>,
}

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "proxy-small",
        what: "HTTP_PROXY plain, ~100-byte body, 1 and 64 connections",
        kind: Kind::ProxySmall,
        unavailable: None,
    },
    Scenario {
        name: "proxy-large",
        what: "HTTP_PROXY plain, 16 KiB body, 1 and 64 connections",
        kind: Kind::ProxyLarge,
        unavailable: None,
    },
    Scenario {
        name: "mock",
        what: "MOCK (~100-byte body) against nginx `return 200`",
        kind: Kind::Mock,
        unavailable: None,
    },
    Scenario {
        name: "tls-h1",
        what: "HTTPS, HTTP/1.1 (wrk), TLS-terminating nginx and HAProxy",
        kind: Kind::TlsH1,
        unavailable: None,
    },
    Scenario {
        name: "tls-h2",
        what: "HTTPS, HTTP/2 (h2load), TLS-terminating nginx and HAProxy",
        kind: Kind::TlsH2,
        unavailable: None,
    },
    Scenario {
        name: "routes-10k",
        what: "a gateway with 10,000 routes: lookup cost and RSS",
        kind: Kind::Routes10k,
        unavailable: None,
    },
    Scenario {
        name: "keys-throttle",
        what: "the same HTTP_PROXY route without and with an API key + never-rejecting throttles and quota",
        kind: Kind::KeysThrottle,
        unavailable: None,
    },
    Scenario {
        name: "cache-hit",
        what: "cache hits (~100-byte body) against nginx proxy_cache hits",
        kind: Kind::CacheHit,
        unavailable: None,
    },
    Scenario {
        name: "keys-100k",
        what: "10,000 routes and 100,000 API keys in one plan: import time, RSS, keyed lookup cost",
        kind: Kind::Keys100k,
        unavailable: None,
    },
    Scenario {
        name: "authorizers",
        what: "the same HTTP_PROXY route without authorization, behind a cached Lambda authorizer and behind a Cognito JWT",
        kind: Kind::Authorizers,
        unavailable: None,
    },
    Scenario {
        name: "cluster-3",
        what: "three edges of a local cluster (3 origins) behind the same load, against one dev",
        kind: Kind::Cluster3,
        unavailable: None,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Upstream,
    Portico,
    Nginx,
    Haproxy,
}

/// One thing under load. The upstream target has no process of its own here: its process is
/// the scenario's shared upstream.
struct Target {
    name: String,
    role: Role,
    url: String,
    /// Shared when two targets are routes of one Portico (keys-throttle).
    process: Option<Rc<Process>>,
    /// Request headers the load sends (the API key).
    headers: Vec<(String, String)>,
    idle_rss: u64,
    /// Portico's metrics endpoint, where the scenario reads its cache counters.
    metrics: Option<String>,
    /// When not empty, the target is these processes side by side (cluster-3's edges): each
    /// gets its own load generator and a share of the connections, at the same time; `url`
    /// and `process` are unused.
    shares: Vec<Share>,
    /// Processes of the target that serve no request but are part of it (cluster-3's
    /// origins): their CPU is reported apart.
    side: Vec<Rc<Process>>,
}

/// One process of a fanned-out target and the URL its share of the load goes to.
struct Share {
    name: String,
    url: String,
    process: Rc<Process>,
    idle_rss: u64,
}

impl Target {
    /// The processes serving the target: its own (or the upstream's), or its shares' (each
    /// once: the `portico-x3` control's three shares are one process).
    fn serving<'a>(&'a self, upstream: &'a Process) -> Vec<&'a Process> {
        if self.shares.is_empty() {
            return vec![self.process.as_deref().unwrap_or(upstream)];
        }
        let mut processes: Vec<&Process> = Vec::new();
        for share in &self.shares {
            if !processes
                .iter()
                .any(|seen| seen.pid() == share.process.pid())
            {
                processes.push(&share.process);
            }
        }
        processes
    }

    /// True when every share is a process of its own (per-share CPU and RSS mean something).
    fn shares_are_distinct(&self) -> bool {
        let distinct = self
            .shares
            .iter()
            .map(|share| share.process.pid())
            .collect::<std::collections::BTreeSet<_>>();
        distinct.len() == self.shares.len()
    }

    fn peak_rss(&self, upstream: &Process) -> u64 {
        self.serving(upstream)
            .iter()
            .map(|process| process.tree_peak_rss())
            .sum()
    }
}

#[derive(Debug, Clone, Default)]
struct Sample {
    load: LoadResult,
    cpu_seconds: f64,
    /// A fanned-out target's shares: each one's load and CPU, in `Target::shares` order.
    shares: Vec<(LoadResult, f64)>,
    /// CPU of the target's side processes (cluster-3's origins) during the run.
    side_cpu_seconds: f64,
    /// Context switches of the serving processes during the run.
    context_switches: u64,
}

/// The aggregate of one target at one connection count.
#[derive(Debug, Clone, Default)]
struct Figures {
    requests_per_second: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    cpu_us_per_request: f64,
    peak_rss: u64,
    idle_rss: u64,
}

struct Verdict {
    what: String,
    figure: String,
    met: Option<bool>,
}

struct Environment {
    target_cpu: Option<String>,
    load_cpu: Option<String>,
    have_wrk: bool,
    have_h2load: bool,
    scratch: PathBuf,
    self_exe: PathBuf,
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    text
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// Installs what is missing from Debian's packages.
fn install_tools(needed: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(program, _)| !procs::on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {}", missing.join(" "));
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let (program, rest) = match sudo.first() {
            Some(sudo) => (*sudo, [&["apt-get"][..], args].concat()),
            None => ("apt-get", args.to_vec()),
        };
        let status = Command::new(program)
            .args(rest)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-q"])?;
    apt(&[&["install", "-y", "-q"][..], &missing].concat())
}

pub fn run_all(options: &Options) -> anyhow::Result<bool> {
    let selected: Vec<&Scenario> = if options.smoke && options.scenarios.is_empty() {
        vec![&ALL[0]]
    } else if options.scenarios.is_empty() || options.scenarios.iter().any(|s| s == "all") {
        ALL.iter().collect()
    } else {
        let mut selected = Vec::new();
        for name in &options.scenarios {
            match ALL.iter().find(|scenario| scenario.name == name) {
                Some(scenario) => selected.push(scenario),
                None => bail!("no scenario `{name}` (see --list)"),
            }
        }
        selected
    };
    if !options.portico.is_file() {
        bail!(
            "no portico binary at {} (build it: cargo build --release -p portico, or pass --portico)",
            options.portico.display()
        );
    }
    if options.install {
        install_tools(&[
            ("wrk", "wrk"),
            ("h2load", "nghttp2-client"),
            ("nginx", "nginx-light"),
            ("haproxy", "haproxy"),
            ("taskset", "util-linux"),
            // keys-throttle and keys-100k call the management API with `curl --aws-sigv4`.
            ("curl", "curl"),
        ])?;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = options.pin && cpus >= 2 && procs::on_path("taskset");
    let scratch = std::env::temp_dir().join(format!("portico-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let environment = Environment {
        target_cpu: pin.then(|| "0".to_string()),
        load_cpu: pin.then(|| "1".to_string()),
        have_wrk: procs::on_path("wrk"),
        have_h2load: procs::on_path("h2load"),
        scratch: scratch.clone(),
        self_exe: std::env::current_exe()?,
    };
    write_certificate(&scratch)?;

    println!(
        "portico-bench: {} CPU(s), targets on CPU {}, load and upstream on CPU {}; {} s x {} round(s); portico = {}",
        cpus,
        environment.target_cpu.as_deref().unwrap_or("any"),
        environment.load_cpu.as_deref().unwrap_or("any"),
        options.duration.as_secs(),
        options.rounds,
        options.portico.display()
    );
    println!("load before the run: {}", load_average());

    let mut report = String::new();
    let mut verdicts = Vec::new();
    let mut ok = true;
    for scenario in selected {
        if let Some(reason) = scenario.unavailable {
            writeln!(
                report,
                "\n## {}: {}\n{reason}",
                scenario.name, scenario.what
            )?;
            verdicts.push(Verdict {
                what: format!("{}: {}", scenario.name, scenario.what),
                figure: reason.to_string(),
                met: None,
            });
            continue;
        }
        println!(
            "\n== {} ({}), load {}",
            scenario.name,
            scenario.what,
            load_average()
        );
        let (section, scenario_verdicts, scenario_ok) =
            run_scenario(scenario, options, &environment)
                .with_context(|| format!("scenario {}", scenario.name))?;
        print!("{section}");
        report.push_str(&section);
        verdicts.extend(scenario_verdicts);
        ok &= scenario_ok;
    }
    if !options.smoke {
        verdicts.push(Verdict {
            what: "route lookup with 10k routes <= 1 us".to_string(),
            figure: "cargo bench -p portico --bench route_lookup (see bench/README.md)".to_string(),
            met: None,
        });
    }

    println!("\n# Results\n{report}");
    println!("\n# Targets");
    for verdict in &verdicts {
        let mark = match verdict.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "-",
        };
        println!("{:<8} {:<58} {}", mark, verdict.what, verdict.figure);
    }
    println!("load after the run: {}", load_average());
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(ok)
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// One self-signed certificate for every TLS target, so they all do the same handshake work.
pub(crate) fn write_certificate(dir: &Path) -> anyhow::Result<()> {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert = generated.cert.pem();
    let key = generated.signing_key.serialize_pem();
    let portico_dir = dir.join("portico-data");
    std::fs::create_dir_all(&portico_dir)?;
    for target in [dir, portico_dir.as_path()] {
        std::fs::write(target.join("cert.pem"), &cert)?;
        std::fs::write(target.join("key.pem"), &key)?;
    }
    std::fs::write(dir.join("cert-and-key.pem"), format!("{cert}{key}"))?;
    Ok(())
}

/// The 10,000-route API: `/svc{i}/items/{id}`, every one an HTTP_PROXY to the upstream. With
/// `keyed_last`, the last route (the one measured) requires an API key (`x-api-key`), so its
/// requests go through the key lookup.
fn routes_api(keyed_last: bool) -> String {
    let mut paths = serde_json::Map::new();
    for index in 0..N_ROUTES {
        let mut get = serde_json::json!({
            "parameters": [{"name": "id", "in": "path", "required": true,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok"}},
            "x-amazon-apigateway-integration": {
                "type": "http_proxy",
                "httpMethod": "GET",
                "uri": "http://${stageVariables.upstream}/small"
            }
        });
        if keyed_last && index == N_ROUTES - 1 {
            get["security"] = serde_json::json!([{"api_key": []}]);
        }
        paths.insert(
            format!("/svc{index}/items/{{id}}"),
            serde_json::json!({ "get": get }),
        );
    }
    let mut api = serde_json::json!({
        "openapi": "3.0.1",
        "info": {"title": "bench-routes", "version": "1"},
        "paths": paths
    });
    if keyed_last {
        api["components"] = serde_json::json!({"securitySchemes": {"api_key": {
            "type": "apiKey", "name": "x-api-key", "in": "header"
        }}});
    }
    api.to_string()
}

/// The value of the keys-100k scenario's key number `index` (AWS wants 20 to 128 characters).
fn bulk_key_value(index: usize) -> String {
    format!("portico-bench-bulk-key-{index:06}-0123456789")
}

struct Started {
    upstream: Process,
    targets: Vec<Target>,
    keys: Option<KeysSetup>,
    import: Option<BulkImport>,
}

/// What the keys-100k scenario's import took and cost.
struct BulkImport {
    keys: usize,
    batches: usize,
    seconds: f64,
    /// The plan every key joined (through the import's `UsagePlanIds` column).
    plan_id: String,
    /// `VmRSS` right after start, and `VmRSS` / `VmHWM` right after the import.
    rss_after_start: u64,
    rss_after_import: u64,
    hwm_after_import: u64,
}

/// What the keys-throttle scenario created through the management API, to read its usage.
struct KeysSetup {
    admin: SocketAddr,
    plan_id: String,
    key_id: String,
    /// The UTC day the plan was created (`yyyy-MM-dd`).
    first_day: String,
}

/// One signed management API call with curl (`--aws-sigv4`); the status and the JSON body.
fn admin_call(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let data = body.map(|body| ("application/json", body.to_string()));
    curl_admin(admin, method, path, data)
}

/// [`admin_call`] with a body of any type: `data` is the content type and curl's
/// `--data-binary` argument (`@FILE` reads a file: a 10,000-row CSV is larger than one
/// command-line argument may be).
fn curl_admin(
    admin: SocketAddr,
    method: &str,
    path: &str,
    data: Option<(&str, String)>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-k", "--max-time", "300", "-X", method])
        .args(["--aws-sigv4", "aws:amz:us-east-1:apigateway"])
        .args(["--user", &format!("{ADMIN_ACCESS_KEY_ID}:{ADMIN_SECRET}")])
        .args(["-w", "\n%{http_code}"]);
    if let Some((content_type, data)) = data {
        command
            .args(["-H", &format!("Content-Type: {content_type}")])
            .args(["--data-binary", &data]);
    }
    let output = command
        .arg(format!("https://{admin}{path}"))
        .output()
        .context("running curl (needed for the management API)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "curl {method} {path} failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (payload, status) = text
        .rsplit_once('\n')
        .with_context(|| format!("curl printed no status: {text}"))?;
    let status: u16 = status
        .trim()
        .parse()
        .with_context(|| format!("curl's status `{status}`"))?;
    let json = if payload.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(payload)
            .unwrap_or_else(|_| serde_json::Value::String(payload.to_string()))
    };
    Ok((status, json))
}

/// [`admin_call`] that must answer 2xx.
fn admin_ok(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let (status, json) = admin_call(admin, method, path, body)?;
    if !(200..300).contains(&status) {
        bail!("management API {method} {path} answered {status}: {json}");
    }
    Ok(json)
}

fn string_field(json: &serde_json::Value, name: &str) -> anyhow::Result<String> {
    json.get(name)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no `{name}` in {json}"))
}

/// The UTC day of `time` as `yyyy-MM-dd` (days-to-civil, proleptic Gregorian).
fn utc_day(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs()) as i64;
    let days = seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The key, a plan with a throttle, a `/keyed/GET` override and a quota, the plan key, the
/// stage's `*/*` throttle and the account throttle: every level on, none rejecting.
fn set_up_keys(admin: SocketAddr) -> anyhow::Result<KeysSetup> {
    let api_id = only_api_id(admin)?;
    let rate: f64 = HUGE_RATE.parse()?;
    let burst: i64 = HUGE_BURST.parse()?;
    let throttle = serde_json::json!({"rateLimit": rate, "burstLimit": burst});
    let first_day = utc_day(SystemTime::now());
    // One key and plan per keyed route (a key is in one plan per stage): with the quota, and
    // without it (throttles only), to tell their costs apart.
    let mut created = Vec::new();
    for (name, value, resource, quota) in [
        ("bench-key", BENCH_API_KEY, "/keyed", true),
        (
            "bench-key-noquota",
            BENCH_API_KEY_NOQUOTA,
            "/keyed-noquota",
            false,
        ),
    ] {
        let key = admin_ok(
            admin,
            "POST",
            "/apikeys",
            Some(&serde_json::json!({"name": name, "value": value, "enabled": true})),
        )?;
        let key_id = string_field(&key, "id")?;
        let mut plan = serde_json::json!({
            "name": format!("{name}-plan"),
            "apiStages": [{
                "apiId": api_id, "stage": "b",
                "throttle": {format!("{resource}/GET"): throttle}
            }],
            "throttle": throttle,
        });
        if quota {
            plan["quota"] = serde_json::json!({"limit": burst, "period": "DAY"});
        }
        let plan = admin_ok(admin, "POST", "/usageplans", Some(&plan))?;
        let plan_id = string_field(&plan, "id")?;
        admin_ok(
            admin,
            "POST",
            &format!("/usageplans/{plan_id}/keys"),
            Some(&serde_json::json!({"keyId": key_id, "keyType": "API_KEY"})),
        )?;
        created.push((plan_id, key_id));
    }
    let (plan_id, key_id) = created.into_iter().next().context("no plan was created")?;
    let limits = |prefix: &str| {
        serde_json::json!({"patchOperations": [
            {"op": "replace", "path": format!("{prefix}/rateLimit"), "value": HUGE_RATE},
            {"op": "replace", "path": format!("{prefix}/burstLimit"), "value": HUGE_BURST},
        ]})
    };
    admin_ok(
        admin,
        "PATCH",
        &format!("/restapis/{api_id}/stages/b"),
        Some(&limits("/*/*/throttling")),
    )?;
    admin_ok(admin, "PATCH", "/account", Some(&limits("/throttle")))?;
    Ok(KeysSetup {
        admin,
        plan_id,
        key_id,
        first_day,
    })
}

/// The key's `used` count summed over the days since the setup (GetUsage), polled until two
/// reads 500 ms apart agree (edges report every 100 ms) or 10 s pass.
fn keys_usage(keys: &KeysSetup) -> anyhow::Result<u64> {
    let read = || -> anyhow::Result<u64> {
        // Query keys in alphabetical order: curl 7.88's SigV4 signs the query as written.
        let path = format!(
            "/usageplans/{}/usage?endDate={}&keyId={}&startDate={}",
            keys.plan_id,
            utc_day(SystemTime::now()),
            keys.key_id,
            keys.first_day
        );
        let usage = admin_ok(keys.admin, "GET", &path, None)?;
        let days = usage
            .get("values")
            .and_then(|values| values.get(&keys.key_id))
            .and_then(serde_json::Value::as_array)
            .with_context(|| format!("GetUsage has no row for the key: {usage}"))?;
        Ok(days.iter().filter_map(|day| day.get(0)?.as_u64()).sum())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut last = read()?;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = read()?;
        if now == last || std::time::Instant::now() > deadline {
            return Ok(now);
        }
        last = now;
    }
}

/// The only API's id (dev serves one).
pub(crate) fn only_api_id(admin: SocketAddr) -> anyhow::Result<String> {
    let apis = admin_ok(admin, "GET", "/restapis", None)?;
    apis.get("item")
        .and_then(|items| items.get(0))
        .map(|api| string_field(api, "id"))
        .with_context(|| format!("GET /restapis listed no API: {apis}"))?
}

/// keys-100k: one usage plan on the stage (no throttle, no quota), then [`N_KEYS`] enabled
/// keys imported with ImportApiKeys in bodies of [`IMPORT_BATCH`] CSV rows, each row naming
/// the plan in `UsagePlanIds` (so every key is attached without one CreateUsagePlanKey per key).
/// Times the imports and reads the process's RSS before and after.
fn import_bulk_keys(
    admin: SocketAddr,
    process: &Process,
    dir: &Path,
) -> anyhow::Result<BulkImport> {
    let api_id = only_api_id(admin)?;
    let plan = admin_ok(
        admin,
        "POST",
        "/usageplans",
        Some(&serde_json::json!({
            "name": "bench-100k-plan",
            "apiStages": [{"apiId": api_id, "stage": "b"}],
        })),
    )?;
    let plan_id = string_field(&plan, "id")?;
    let rss_after_start = process.tree_rss();
    let file = dir.join("keys-import.csv");
    let mut seconds = 0.0;
    let mut batches = 0;
    for first in (0..N_KEYS).step_by(IMPORT_BATCH) {
        let mut csv = String::from("Name,Key,Enabled,UsagePlanIds\n");
        for index in first..(first + IMPORT_BATCH).min(N_KEYS) {
            let _ = writeln!(
                csv,
                "bench-{index},{},true,{plan_id}",
                bulk_key_value(index)
            );
        }
        std::fs::write(&file, csv)?;
        // Only the call is timed, not writing the CSV.
        let started = std::time::Instant::now();
        let (status, json) = curl_admin(
            admin,
            "POST",
            "/apikeys?format=csv&mode=import",
            Some(("text/csv", format!("@{}", file.display()))),
        )?;
        seconds += started.elapsed().as_secs_f64();
        if status != 201 {
            bail!("ImportApiKeys (rows {first}..) answered {status}: {json}");
        }
        let imported = json
            .get("ids")
            .and_then(serde_json::Value::as_array)
            .map_or(0, Vec::len);
        if imported != (first + IMPORT_BATCH).min(N_KEYS) - first {
            bail!("ImportApiKeys (rows {first}..) returned {imported} ids: {json}");
        }
        batches += 1;
    }
    let _ = std::fs::remove_file(&file);
    Ok(BulkImport {
        keys: N_KEYS,
        batches,
        seconds,
        plan_id,
        rss_after_start,
        rss_after_import: process.tree_rss(),
        hwm_after_import: process.tree_peak_rss(),
    })
}

fn start_targets(
    scenario: &Scenario,
    options: &Options,
    environment: &Environment,
) -> anyhow::Result<Started> {
    let dir = &environment.scratch;
    let target_cpu = environment.target_cpu.as_deref();
    let upstream_port = procs::free_port()?;
    let upstream_addr: SocketAddr = ([127, 0, 0, 1], upstream_port).into();
    let mut upstream = Process::start(
        "upstream",
        &environment.self_exe,
        &[
            "upstream".to_string(),
            "--listen".to_string(),
            upstream_addr.to_string(),
        ],
        &[],
        environment.load_cpu.as_deref(),
        dir,
    )?;
    upstream.wait_for_port(upstream_addr, Duration::from_secs(10), dir)?;

    let path = match scenario.kind {
        Kind::ProxyLarge => "/large",
        _ => "/small",
    };
    let tls = matches!(scenario.kind, Kind::TlsH1 | Kind::TlsH2);
    let scheme = if tls { "https" } else { "http" };
    let mut targets = vec![Target {
        name: "upstream".to_string(),
        role: Role::Upstream,
        url: format!("http://{upstream_addr}{path}"),
        process: None,
        headers: Vec::new(),
        idle_rss: upstream.tree_rss(),
        metrics: None,
        shares: Vec::new(),
        side: Vec::new(),
    }];

    let values = |name: &str, port: u16| {
        vec![
            ("DIR", dir.display().to_string()),
            ("NAME", name.to_string()),
            ("PORT", port.to_string()),
            ("UPSTREAM_PORT", upstream_port.to_string()),
            ("MOCK_BODY", SMALL_BODY.to_string()),
            (
                "USER",
                if is_root() {
                    "user root;".to_string()
                } else {
                    String::new()
                },
            ),
        ]
    };

    // Portico, and the second Portico of the routes scenario.
    let mut porticos: Vec<(&str, String, &str)> = Vec::new();
    match scenario.kind {
        Kind::Mock => porticos.push(("portico", fill(MOCK_API, &values("", 0)), "/b/mock")),
        Kind::Routes10k => {
            porticos.push(("portico", PROXY_API.to_string(), "/b/small"));
            porticos.push(("portico-10k", routes_api(false), "/b/svc9999/items/42"));
        }
        Kind::Keys100k => {
            porticos.push(("portico", PROXY_API.to_string(), "/b/small"));
            porticos.push(("portico-10k-100k", routes_api(true), "/b/svc9999/items/42"));
        }
        Kind::ProxyLarge => porticos.push(("portico", PROXY_API.to_string(), "/b/large")),
        Kind::CacheHit => porticos.push(("portico-cache", PROXY_API.to_string(), "/b/small")),
        Kind::KeysThrottle => porticos.push(("portico", KEYED_API.to_string(), "/b/small")),
        Kind::Authorizers => porticos.push(("portico", AUTHORIZERS_API.to_string(), "/b/small")),
        _ => porticos.push((
            if tls { "portico-tls" } else { "portico" },
            PROXY_API.to_string(),
            "/b/small",
        )),
    }
    let mut keys = None;
    let mut import = None;
    for (name, api, route) in porticos {
        let port = procs::free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let api_file = dir.join(format!("{name}.api"));
        std::fs::write(&api_file, api)?;
        let (http, https) = if tls {
            ("off".to_string(), addr.to_string())
        } else {
            (addr.to_string(), "off".to_string())
        };
        let args: Vec<String> = [
            "dev",
            "--api",
            &api_file.display().to_string(),
            "--stage",
            "b",
            "--stage-var",
            &format!("upstream={upstream_addr}"),
            "--http",
            &http,
            "--https",
            &https,
            "--data-dir",
            &dir.join("portico-data").display().to_string(),
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        let mut args = args;
        let mut metrics_addr = None;
        if scenario.kind == Kind::CacheHit {
            // The stage's cache on (GETs cached for 300 s), and its counters, to check that
            // the run measured hits.
            let addr: SocketAddr = ([127, 0, 0, 1], procs::free_port()?).into();
            args.extend([
                "--cache-cluster-size".to_string(),
                "0.5".to_string(),
                "--metrics".to_string(),
                addr.to_string(),
            ]);
            metrics_addr = Some(addr);
        }
        if scenario.kind == Kind::Authorizers {
            // The Lambda authorizer's Invoke API is the bench upstream.
            args.extend([
                "--lambda-endpoint".to_string(),
                format!("http://{upstream_addr}"),
            ]);
        }
        let mut admin_addr = None;
        if scenario.kind == Kind::KeysThrottle
            || (scenario.kind == Kind::Keys100k && name != "portico")
        {
            // The management API (HTTPS, dev's self-signed certificate), to create the key,
            // the plan and the limits.
            let addr: SocketAddr = ([127, 0, 0, 1], procs::free_port()?).into();
            args.extend(["--admin".to_string(), addr.to_string()]);
            admin_addr = Some(addr);
        }
        // One worker thread, as nginx gets one worker and HAProxy one thread.
        let mut env: Vec<(&str, &str)> = vec![("RUST_LOG", "warn")];
        let cognito_endpoint = format!("http://{upstream_addr}");
        if scenario.kind == Kind::Authorizers {
            // The Cognito authorizer's JWKS comes from the bench upstream.
            env.push((
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                cognito_endpoint.as_str(),
            ));
        }
        if target_cpu.is_some() {
            // One request worker, and one thread for the background runtime.
            args.extend(["--workers".to_string(), "1".to_string()]);
            env.push(("TOKIO_WORKER_THREADS", "1"));
        }
        if admin_addr.is_some() {
            env.push(("PORTICO_ADMIN_ACCESS_KEY_ID", ADMIN_ACCESS_KEY_ID));
            env.push(("PORTICO_ADMIN_SECRET_ACCESS_KEY", ADMIN_SECRET));
        }
        let mut process = Process::start(name, &options.portico, &args, &env, target_cpu, dir)?;
        process.wait_for_port(addr, Duration::from_secs(120), dir)?;
        let idle_rss = process.tree_rss();
        let mut headers = Vec::new();
        if let (Kind::Keys100k, Some(admin)) = (scenario.kind, admin_addr) {
            let imported = import_bulk_keys(admin, &process, dir)
                .context("importing the API keys (ImportApiKeys)")?;
            eprintln!(
                "  imported {} keys in {} bodies in {:.1} s",
                imported.keys, imported.batches, imported.seconds
            );
            import = Some(imported);
            // The last key imported: the lookup cannot stop early on it.
            headers.push(("x-api-key".to_string(), bulk_key_value(N_KEYS - 1)));
        }
        let process = Rc::new(process);
        targets.push(Target {
            name: name.to_string(),
            role: Role::Portico,
            url: format!("{scheme}://{addr}{route}"),
            idle_rss,
            process: Some(process.clone()),
            headers,
            metrics: metrics_addr.map(|addr| format!("http://{addr}/metrics")),
            shares: Vec::new(),
            side: Vec::new(),
        });
        if let (Kind::KeysThrottle, Some(admin)) = (scenario.kind, admin_addr) {
            // The admin listener starts before the gateway's, so it is up by now. The keyed
            // targets are routes of the same process: CPU and RSS are read from it alike.
            keys = Some(set_up_keys(admin).context("setting up the keys, plans and limits")?);
            for (name, route, key) in [
                ("portico-keys", "/b/keyed", BENCH_API_KEY),
                (
                    "portico-keys-noquota",
                    "/b/keyed-noquota",
                    BENCH_API_KEY_NOQUOTA,
                ),
            ] {
                targets.push(Target {
                    name: name.to_string(),
                    role: Role::Portico,
                    url: format!("{scheme}://{addr}{route}"),
                    process: Some(process.clone()),
                    headers: vec![("x-api-key".to_string(), key.to_string())],
                    idle_rss,
                    metrics: None,
                    shares: Vec::new(),
                    side: Vec::new(),
                });
            }
        }
    }

    if scenario.kind == Kind::Authorizers {
        // The authorized route is a route of the same process: CPU and RSS are read alike.
        let plain = targets
            .iter()
            .find(|target| target.name == "portico")
            .context("the authorizers scenario starts its portico")?;
        let (process, idle_rss) = (plain.process.clone(), plain.idle_rss);
        let base = plain.url.trim_end_matches("/b/small").to_string();
        let now_s = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let id_token = crate::upstream::bench_id_token(now_s)?;
        for (name, route, token) in [
            ("portico-lambda", "/b/lambda", BENCH_TOKEN.to_string()),
            ("portico-cognito", "/b/cognito", id_token),
        ] {
            targets.push(Target {
                name: name.to_string(),
                role: Role::Portico,
                url: format!("{base}{route}"),
                process: process.clone(),
                headers: vec![("authorization".to_string(), token)],
                idle_rss,
                metrics: None,
                shares: Vec::new(),
                side: Vec::new(),
            });
        }
    }

    if scenario.kind == Kind::Cluster3 {
        // The same API as the `portico` (dev) target, deployed through the cluster's
        // management path; every node pinned and threaded as that dev process is.
        let started = cluster::start(&cluster::Plan {
            portico: &options.portico,
            dir,
            definition: PROXY_API,
            stage: "b",
            stage_variables: &[("upstream".to_string(), upstream_addr.to_string())],
            probe_path: "/b/small",
            cpu: target_cpu,
            worker_threads: target_cpu.map(|_| "1"),
        })
        .context("starting the local cluster")?;
        let host = started.host();
        let shares: Vec<Share> = started
            .edges
            .into_iter()
            .map(|edge| Share {
                url: format!("http://{}/b/small", edge.http),
                idle_rss: edge.process.tree_rss(),
                name: edge.name,
                process: edge.process,
            })
            .collect();
        targets.push(Target {
            name: "cluster-3".to_string(),
            role: Role::Portico,
            url: shares
                .first()
                .map(|share| share.url.clone())
                .unwrap_or_default(),
            process: None,
            headers: vec![("Host".to_string(), host)],
            idle_rss: shares.iter().map(|share| share.idle_rss).sum(),
            metrics: None,
            shares,
            side: started.origins,
        });
        // The control: the `portico` dev process loaded exactly as the cluster is (three wrk
        // at once, the same split of connections), so the two differ only in serving the
        // requests with one process or three.
        if let Some(dev) = targets.iter().find(|target| target.name == "portico") {
            let process = dev
                .process
                .clone()
                .context("the dev target has no process")?;
            let shares = (1..=3)
                .map(|index| Share {
                    name: format!("wrk-{index}"),
                    url: dev.url.clone(),
                    process: process.clone(),
                    idle_rss: dev.idle_rss,
                })
                .collect();
            targets.push(Target {
                name: "portico-x3".to_string(),
                role: Role::Portico,
                url: dev.url.clone(),
                process: None,
                headers: Vec::new(),
                idle_rss: dev.idle_rss,
                metrics: None,
                shares,
                side: Vec::new(),
            });
        }
    }

    if !options.smoke {
        let peers: Vec<(&str, Role, &str, &str)> = match scenario.kind {
            Kind::ProxySmall | Kind::ProxyLarge => vec![
                ("nginx", Role::Nginx, NGINX_CONF, path),
                ("haproxy", Role::Haproxy, HAPROXY_CFG, path),
            ],
            Kind::Mock => vec![("nginx-return", Role::Nginx, NGINX_CONF, "/mock")],
            Kind::KeysThrottle | Kind::Cluster3 | Kind::Authorizers => {
                vec![("nginx", Role::Nginx, NGINX_CONF, path)]
            }
            Kind::CacheHit => vec![("nginx-cache", Role::Nginx, NGINX_CACHE_CONF, path)],
            Kind::TlsH1 | Kind::TlsH2 => vec![
                ("nginx-tls", Role::Nginx, NGINX_TLS_CONF, path),
                ("haproxy-tls", Role::Haproxy, HAPROXY_TLS_CFG, path),
            ],
            Kind::Routes10k | Kind::Keys100k => Vec::new(),
        };
        for (name, role, template, route) in peers {
            let port = procs::free_port()?;
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let config = dir.join(format!("{name}.conf"));
            std::fs::write(&config, fill(template, &values(name, port)))?;
            let (program, args): (&str, Vec<String>) = match role {
                Role::Nginx => {
                    std::fs::create_dir_all(dir.join(format!("{name}-cache")))?;
                    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                        std::fs::create_dir_all(dir.join(format!("{name}-tmp/{sub}")))?;
                    }
                    (
                        "nginx",
                        vec![
                            "-p".into(),
                            dir.display().to_string(),
                            "-e".into(),
                            dir.join(format!("{name}-error.log")).display().to_string(),
                            "-c".into(),
                            config.display().to_string(),
                        ],
                    )
                }
                _ => (
                    "haproxy",
                    vec!["-db".into(), "-f".into(), config.display().to_string()],
                ),
            };
            let program_path = which(program)?;
            let mut process = Process::start(name, &program_path, &args, &[], target_cpu, dir)?;
            process.wait_for_port(addr, Duration::from_secs(20), dir)?;
            targets.push(Target {
                name: name.to_string(),
                role,
                url: format!("{scheme}://{addr}{route}"),
                idle_rss: process.tree_rss(),
                process: Some(Rc::new(process)),
                headers: Vec::new(),
                metrics: None,
                shares: Vec::new(),
                side: Vec::new(),
            });
        }
    }

    // Every plain-HTTP target (every share of a fanned-out one) must answer 200 before it is
    // measured.
    for target in &targets {
        let urls: Vec<&str> = if target.shares.is_empty() {
            vec![target.url.as_str()]
        } else {
            target
                .shares
                .iter()
                .map(|share| share.url.as_str())
                .collect()
        };
        for url in urls.iter().filter(|url| url.starts_with("http://")) {
            let (status, body) = load::get_once_with(url, &target.headers)
                .with_context(|| format!("checking {} at {url}", target.name))?;
            if status != 200 {
                bail!(
                    "{} answered {status} at {url}: {}",
                    target.name,
                    String::from_utf8_lossy(&body)
                );
            }
        }
        if target.url.starts_with("http://") {
            // A keyed route must refuse a request without its key (an authorized route without
            // its token), or it measures no check.
            if !target.headers.is_empty() {
                let (status, body) = load::get_once(&target.url).with_context(|| {
                    format!("checking {} without its key at {}", target.name, target.url)
                })?;
                let expected = if scenario.kind == Kind::Authorizers {
                    401
                } else {
                    403
                };
                if status != expected {
                    bail!(
                        "{} answered {status} without its key at {} ({expected} expected): {}",
                        target.name,
                        target.url,
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        }
    }
    Ok(Started {
        upstream,
        targets,
        keys,
        import,
    })
}

fn which(program: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{program} is not installed (run without --no-install)"))
}

/// CPU seconds of the target's serving processes (every share of a fanned-out one).
fn cpu_of(target: &Target, upstream: &Process) -> f64 {
    target
        .serving(upstream)
        .iter()
        .map(|process| process.tree_cpu_seconds())
        .sum()
}

/// `connections` spread over `n` processes loaded at once: a share each, the remainder to the
/// first ones; at least one each (so `1` means one connection per process).
fn split_connections(connections: u32, n: usize) -> Vec<u32> {
    let n = n.max(1) as u32;
    if connections < n {
        return vec![connections.max(1); n as usize];
    }
    (0..n)
        .map(|index| connections / n + u32::from(index < connections % n))
        .collect()
}

/// Several loads run at the same time as one: requests, errors summed; the longest elapsed
/// time; and for p50 and p99 the largest of the parts' percentiles. wrk prints percentiles,
/// not its histogram, so the merged distribution's percentiles cannot be computed; the
/// largest part's is an upper bound of them (and the smallest a lower bound).
fn merge(parts: &[LoadResult]) -> LoadResult {
    let largest = |value: fn(&LoadResult) -> f64| parts.iter().map(value).fold(0.0, f64::max);
    LoadResult {
        requests: parts.iter().map(|part| part.requests).sum(),
        seconds: largest(|part| part.seconds),
        p50_us: largest(|part| part.p50_us),
        p99_us: largest(|part| part.p99_us),
        errors: parts.iter().map(|part| part.errors).sum(),
        non_2xx: parts.iter().map(|part| part.non_2xx).sum(),
    }
}

/// One load at `target`: one generator, or for a fanned-out target one wrk per share with its
/// share of the connections, all at once. Returns the (merged) result, each share's result
/// and CPU seconds, and the side processes' CPU seconds.
fn drive(
    target: &Target,
    upstream: &Process,
    generator: Generator,
    connections: u32,
    duration: Duration,
    h2: bool,
    environment: &Environment,
) -> anyhow::Result<Sample> {
    let switches = || -> u64 {
        target
            .serving(upstream)
            .iter()
            .map(|process| process.tree_context_switches())
            .sum()
    };
    let switches_before = switches();
    let mut sample = drive_load(
        target,
        upstream,
        generator,
        connections,
        duration,
        h2,
        environment,
    )?;
    sample.context_switches = switches().saturating_sub(switches_before);
    Ok(sample)
}

/// [`drive`] without the context switches.
fn drive_load(
    target: &Target,
    upstream: &Process,
    generator: Generator,
    connections: u32,
    duration: Duration,
    h2: bool,
    environment: &Environment,
) -> anyhow::Result<Sample> {
    let side_cpu = || -> f64 {
        target
            .side
            .iter()
            .map(|process| process.tree_cpu_seconds())
            .sum()
    };
    let cpu_before = cpu_of(target, upstream);
    let side_before = side_cpu();
    let cpu = environment.load_cpu.as_deref();
    if target.shares.is_empty() {
        let load = Load {
            url: &target.url,
            connections,
            duration,
            cpu,
            // The upstream speaks HTTP/1.1 only.
            h2: h2 && target.role != Role::Upstream,
            headers: &target.headers,
        };
        let result = load::run(generator, &load, &environment.scratch)?;
        return Ok(Sample {
            load: result,
            cpu_seconds: cpu_of(target, upstream) - cpu_before,
            shares: Vec::new(),
            side_cpu_seconds: side_cpu() - side_before,
            context_switches: 0,
        });
    }
    if generator != Generator::Wrk {
        bail!(
            "{} is loaded by one wrk per process: wrk is needed",
            target.name
        );
    }
    let shares_before: Vec<f64> = target
        .shares
        .iter()
        .map(|share| share.process.tree_cpu_seconds())
        .collect();
    // The shares' processes are `Rc`s (not `Send`): the threads get only URLs and headers.
    let plan: Vec<(&str, u32)> = target
        .shares
        .iter()
        .map(|share| share.url.as_str())
        .zip(split_connections(connections, target.shares.len()))
        .collect();
    let headers = target.headers.as_slice();
    let scratch = environment.scratch.as_path();
    let results: Vec<anyhow::Result<LoadResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plan
            .iter()
            .map(|&(url, connections)| {
                scope.spawn(move || {
                    let load = Load {
                        url,
                        connections,
                        duration,
                        cpu,
                        h2: false,
                        headers,
                    };
                    load::run(generator, &load, scratch)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a load thread panicked")))
            })
            .collect()
    });
    let mut shares = Vec::new();
    for ((result, share), before) in results.into_iter().zip(&target.shares).zip(shares_before) {
        let result = result.with_context(|| format!("loading {}", share.name))?;
        shares.push((result, share.process.tree_cpu_seconds() - before));
    }
    let merged = merge(
        &shares
            .iter()
            .map(|(result, _)| result.clone())
            .collect::<Vec<_>>(),
    );
    Ok(Sample {
        load: merged,
        cpu_seconds: cpu_of(target, upstream) - cpu_before,
        shares,
        side_cpu_seconds: side_cpu() - side_before,
        context_switches: 0,
    })
}

fn run_scenario(
    scenario: &Scenario,
    options: &Options,
    environment: &Environment,
) -> anyhow::Result<(String, Vec<Verdict>, bool)> {
    let Started {
        upstream,
        targets,
        keys,
        import,
    } = start_targets(scenario, options, environment)?;
    // 2xx responses and refusals (non-2xx, socket errors) each target gave, warm-ups included
    // (plus the 200 of the check before the load), to compare with what GetUsage counted.
    let mut admitted: Vec<u64> = vec![1; targets.len()];
    let mut refused: Vec<u64> = vec![0; targets.len()];
    let mut tally = |index: usize, result: &LoadResult| {
        admitted[index] += result.requests.saturating_sub(result.non_2xx);
        refused[index] += result.errors;
    };
    let h2 = scenario.kind == Kind::TlsH2;
    let generator_for = |url: &str| -> anyhow::Result<Generator> {
        if h2 || (url.starts_with("https") && !environment.have_wrk) {
            if !environment.have_h2load {
                bail!("h2load is not installed (run without --no-install)");
            }
            Ok(Generator::H2load)
        } else if environment.have_wrk {
            Ok(Generator::Wrk)
        } else if options.smoke {
            Ok(Generator::Builtin)
        } else {
            bail!("wrk is not installed (run without --no-install)")
        }
    };
    let connections: &[u32] = if options.smoke { &[8] } else { &[1, 64] };
    let mut all: BTreeMap<u32, Vec<(usize, Figures)>> = BTreeMap::new();
    // Per-process tables of fanned-out targets (cluster-3's edges and origins).
    let mut share_sections = String::new();
    for &conns in connections {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
        // Warm-up: fill connection pools and caches, unrecorded.
        for (index, target) in targets.iter().enumerate() {
            let warmed = drive(
                target,
                &upstream,
                generator_for(&target.url)?,
                conns,
                Duration::from_secs(1),
                h2,
                environment,
            )
            .with_context(|| format!("warming up {}", target.name))?;
            tally(index, &warmed.load);
        }
        for round in 0..options.rounds as usize {
            // Alternate: each round starts one target later, so drift in the machine's load
            // spreads over every target.
            for offset in 0..targets.len() {
                let index = (round + offset) % targets.len();
                let target = &targets[index];
                let sample = drive(
                    target,
                    &upstream,
                    generator_for(&target.url)?,
                    conns,
                    options.duration,
                    h2,
                    environment,
                )
                .with_context(|| format!("loading {}", target.name))?;
                let result = &sample.load;
                tally(index, result);
                let distinct = target.shares_are_distinct();
                for ((share_result, share_cpu), share) in sample.shares.iter().zip(&target.shares) {
                    eprintln!(
                        "        {:<13} {:>9.0} req/s  p50 {:>8.1} us  p99 {:>8.1} us  errors {}{}",
                        share.name,
                        share_result.requests_per_second(),
                        share_result.p50_us,
                        share_result.p99_us,
                        share_result.errors,
                        if distinct {
                            format!("  cpu {share_cpu:.2} s")
                        } else {
                            String::new()
                        }
                    );
                }
                eprintln!(
                    "  c={conns:<3} round {} {:<13} {:>9.0} req/s  p50 {:>8.1} us  p99 {:>8.1} us  errors {}  cpu {:.2} s  [load {}]",
                    round + 1,
                    target.name,
                    result.requests_per_second(),
                    result.p50_us,
                    result.p99_us,
                    result.errors,
                    sample.cpu_seconds,
                    load_average()
                );
                samples[index].push(sample);
            }
        }
        let figures = targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let mine = &samples[index];
                let requests: u64 = mine.iter().map(|s| s.load.requests).sum();
                let cpu: f64 = mine.iter().map(|s| s.cpu_seconds).sum();
                (
                    index,
                    Figures {
                        requests_per_second: median(
                            &mut mine
                                .iter()
                                .map(|s| s.load.requests_per_second())
                                .collect::<Vec<_>>(),
                        ),
                        p50_us: median(&mut mine.iter().map(|s| s.load.p50_us).collect::<Vec<_>>()),
                        p99_us: median(&mut mine.iter().map(|s| s.load.p99_us).collect::<Vec<_>>()),
                        errors: mine.iter().map(|s| s.load.errors).sum(),
                        cpu_us_per_request: if requests > 0 {
                            cpu * 1e6 / requests as f64
                        } else {
                            0.0
                        },
                        peak_rss: target.peak_rss(&upstream),
                        idle_rss: target.idle_rss,
                    },
                )
            })
            .collect();
        all.insert(conns, figures);
        if scenario.kind == Kind::Cluster3 {
            // Where three gateways on one core spend CPU that one does not: how often the
            // serving processes sleep and wake (or are preempted) per request.
            let per_request: Vec<String> = targets
                .iter()
                .zip(&samples)
                .filter(|(target, _)| target.role == Role::Portico)
                .map(|(target, samples)| {
                    let requests: u64 = samples.iter().map(|s| s.load.requests).sum();
                    let switches: u64 = samples.iter().map(|s| s.context_switches).sum();
                    format!(
                        "{} {:.3}",
                        target.name,
                        if requests > 0 {
                            switches as f64 / requests as f64
                        } else {
                            0.0
                        }
                    )
                })
                .collect();
            let _ = writeln!(
                share_sections,
                "\nc={conns}: context switches per request of the serving processes (every thread, voluntary + involuntary): {}",
                per_request.join(", ")
            );
        }
        for (target, samples) in targets.iter().zip(&samples) {
            if !target.shares.is_empty() && target.shares_are_distinct() {
                share_sections.push_str(&render_shares(conns, target, samples, options));
            }
        }
    }

    let (mut section, mut verdicts) = render(scenario, &targets, &all);
    section.push_str(&share_sections);
    if let Some(import) = &import {
        let _ = writeln!(
            section,
            "\nImportApiKeys: {} keys in {} bodies of {} CSV rows, all in plan {}: {:.1} s ({:.0} keys/s). portico-10k-100k RSS: {:.1} MiB after start, {:.1} MiB after the import (VmHWM {:.1} MiB), peak at the end {:.1} MiB",
            import.keys,
            import.batches,
            IMPORT_BATCH,
            import.plan_id,
            import.seconds,
            import.keys as f64 / import.seconds.max(1e-9),
            mib(import.rss_after_start),
            mib(import.rss_after_import),
            mib(import.hwm_after_import),
            targets
                .iter()
                .find(|target| target.name == "portico-10k-100k")
                .and_then(|target| target.process.as_deref())
                .map_or(0.0, |process| mib(process.tree_peak_rss())),
        );
        verdicts.push(Verdict {
            what: format!("{}: import of {} API keys", scenario.name, import.keys),
            figure: format!(
                "{:.1} s in {} ImportApiKeys calls",
                import.seconds, import.batches
            ),
            met: None,
        });
    }
    for target in &targets {
        if let Some(url) = &target.metrics {
            let (hits, misses) = cache_counters(url)?;
            let _ = writeln!(
                section,
                "\n{}: {hits} cache hits, {misses} misses over the whole scenario (from its /metrics)",
                target.name
            );
        }
    }
    if let Some(keys) = &keys {
        let used = keys_usage(keys).context("reading the key's usage (GetUsage)")?;
        let keyed = targets
            .iter()
            .position(|target| target.name == "portico-keys");
        let (ok, errors) = keyed.map_or((0, 0), |index| (admitted[index], refused[index]));
        let _ = writeln!(
            section,
            "\nGetUsage for the key (plan {}): {used} requests counted; portico-keys answered {ok} with 2xx (warm-ups and the check included; GetUsage / 2xx = {:.3}) and {errors} otherwise",
            keys.plan_id,
            if ok > 0 { used as f64 / ok as f64 } else { 0.0 }
        );
    }
    let mut ok = true;
    if options.smoke {
        for figures in all.values() {
            for (index, figure) in figures {
                if figure.errors > 0 || figure.requests_per_second <= 0.0 {
                    eprintln!(
                        "smoke: {} had {} errors",
                        targets[*index].name, figure.errors
                    );
                    ok = false;
                }
            }
        }
    }
    drop(targets);
    drop(upstream);
    Ok((section, verdicts, ok))
}

/// A fanned-out target's processes at one connection count: each share's median req/s, p50
/// and p99, errors, CPU per request it served and RSS; then the side processes' CPU over the
/// same rounds (cluster-3's origins, which should be idle on the request path).
fn render_shares(conns: u32, target: &Target, samples: &[Sample], options: &Options) -> String {
    let mut out = String::new();
    let split = split_connections(conns, target.shares.len());
    let _ = writeln!(
        out,
        "\n{} at c={conns}, per process ({} connections{}; the row above sums req/s and errors and takes the largest p50 and p99):",
        target.name,
        split
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" + "),
        if split.iter().sum::<u32>() > conns {
            ", so its x nginx / x upstream above compare that many connections with their one"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "| conns | process | req/s | p50 us | p99 us | errors | CPU us/req | peak RSS MiB | idle RSS MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for (index, share) in target.shares.iter().enumerate() {
        let parts: Vec<&(LoadResult, f64)> = samples
            .iter()
            .filter_map(|sample| sample.shares.get(index))
            .collect();
        let requests: u64 = parts.iter().map(|(result, _)| result.requests).sum();
        let cpu: f64 = parts.iter().map(|(_, cpu)| cpu).sum();
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.1} | {:.1} | {} | {:.2} | {:.1} | {:.1} |",
            split.get(index).copied().unwrap_or(0),
            share.name,
            median(
                &mut parts
                    .iter()
                    .map(|(result, _)| result.requests_per_second())
                    .collect::<Vec<_>>()
            ),
            median(
                &mut parts
                    .iter()
                    .map(|(result, _)| result.p50_us)
                    .collect::<Vec<_>>()
            ),
            median(
                &mut parts
                    .iter()
                    .map(|(result, _)| result.p99_us)
                    .collect::<Vec<_>>()
            ),
            parts.iter().map(|(result, _)| result.errors).sum::<u64>(),
            if requests > 0 {
                cpu * 1e6 / requests as f64
            } else {
                0.0
            },
            mib(share.process.tree_peak_rss()),
            mib(share.idle_rss),
        );
    }
    if !target.side.is_empty() {
        let side_cpu: f64 = samples.iter().map(|sample| sample.side_cpu_seconds).sum();
        let requests: u64 = samples.iter().map(|sample| sample.load.requests).sum();
        let loaded_seconds = options.duration.as_secs_f64() * samples.len() as f64;
        let _ = writeln!(
            out,
            "{} side process(es) (the origins): {side_cpu:.2} s CPU over the {loaded_seconds:.0} s of load ({:.1} % of a core; {:.2} us per request served by the edges); RSS now {:.1} MiB, peak {:.1} MiB (summed)",
            target.side.len(),
            if loaded_seconds > 0.0 {
                side_cpu / loaded_seconds * 100.0
            } else {
                0.0
            },
            if requests > 0 {
                side_cpu * 1e6 / requests as f64
            } else {
                0.0
            },
            mib(target.side.iter().map(|process| process.tree_rss()).sum()),
            mib(target
                .side
                .iter()
                .map(|process| process.tree_peak_rss())
                .sum()),
        );
    }
    out
}

/// The sums of Portico's `portico_cache_hits_total` and `portico_cache_misses_total`.
fn cache_counters(url: &str) -> anyhow::Result<(u64, u64)> {
    let (status, body) = load::get_once(url)?;
    if status != 200 {
        bail!("{url} answered {status}");
    }
    let text = String::from_utf8_lossy(&body);
    let sum = |name: &str| -> u64 {
        text.lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    Ok((
        sum("portico_cache_hits_total"),
        sum("portico_cache_misses_total"),
    ))
}

/// `this` against `base` from the same run: req/s and CPU per request as ratios, then the two
/// CPU figures.
fn relative(this: &Figures, base: &Figures) -> String {
    format!(
        "{:.2}x req/s, {:.2}x CPU us/req ({:.2} vs {:.2} us)",
        this.requests_per_second / base.requests_per_second,
        this.cpu_us_per_request / base.cpu_us_per_request,
        this.cpu_us_per_request,
        base.cpu_us_per_request
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn render(
    scenario: &Scenario,
    targets: &[Target],
    all: &BTreeMap<u32, Vec<(usize, Figures)>>,
) -> (String, Vec<Verdict>) {
    let mut out = String::new();
    let mut verdicts = Vec::new();
    let _ = writeln!(out, "\n## {}: {}", scenario.name, scenario.what);
    let _ = writeln!(
        out,
        "| conns | target | req/s | x nginx | x upstream | p50 us | p99 us | errors | CPU us/req | peak RSS MiB | idle RSS MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    let find = |figures: &[(usize, Figures)], role: Role| -> Option<Figures> {
        figures
            .iter()
            .find(|(index, _)| targets[*index].role == role)
            .map(|(_, figure)| figure.clone())
    };
    for (conns, figures) in all {
        let nginx = find(figures, Role::Nginx);
        let upstream = find(figures, Role::Upstream);
        for (index, figure) in figures {
            let ratio = |base: &Option<Figures>| match base {
                Some(base) if base.requests_per_second > 0.0 => {
                    format!(
                        "{:.2}",
                        figure.requests_per_second / base.requests_per_second
                    )
                }
                _ => "-".to_string(),
            };
            // A fanned-out target at fewer connections than shares ran one per share.
            let shares = targets[*index].shares.len() as u32;
            let conns_label = if shares > 1 && *conns < shares {
                format!("{conns} ({shares} x {conns})")
            } else {
                conns.to_string()
            };
            let _ = writeln!(
                out,
                "| {conns_label} | {} | {:.0} | {} | {} | {:.1} | {:.1} | {} | {:.2} | {:.1} | {:.1} |",
                targets[*index].name,
                figure.requests_per_second,
                ratio(&nginx),
                ratio(&upstream),
                figure.p50_us,
                figure.p99_us,
                figure.errors,
                figure.cpu_us_per_request,
                mib(figure.peak_rss),
                mib(figure.idle_rss),
            );
        }
    }

    // The targets, where this scenario measures them.
    let at = |conns: u32, name: &str| -> Option<Figures> {
        let figures = all.get(&conns)?;
        figures
            .iter()
            .find(|(index, _)| targets[*index].name == name)
            .map(|(_, figure)| figure.clone())
    };
    let label = scenario.name;
    // Figures reported without a target, added after the checked ones.
    let mut informative = Vec::new();
    let mut check = |what: String, value: f64, limit: f64, unit: &str, lower_is_better: bool| {
        let met = if lower_is_better {
            value <= limit
        } else {
            value >= limit
        };
        verdicts.push(Verdict {
            what,
            figure: format!("{value:.2}{unit} (target {limit:.2}{unit})"),
            met: Some(met),
        });
    };
    match scenario.kind {
        Kind::ProxySmall | Kind::ProxyLarge => {
            if let (Some(portico), Some(nginx), Some(haproxy)) =
                (at(64, "portico"), at(64, "nginx"), at(64, "haproxy"))
            {
                check(
                    format!("{label} c=64: req/s >= 1.15x nginx"),
                    portico.requests_per_second / nginx.requests_per_second,
                    1.15,
                    "x",
                    false,
                );
                check(
                    format!("{label} c=64: req/s >= 1.0x HAProxy"),
                    portico.requests_per_second / haproxy.requests_per_second,
                    1.0,
                    "x",
                    false,
                );
                check(
                    format!("{label} c=64: CPU/req <= nginx's"),
                    portico.cpu_us_per_request,
                    nginx.cpu_us_per_request,
                    " us",
                    true,
                );
                check(
                    format!("{label} c=64: p99 <= nginx's"),
                    portico.p99_us,
                    nginx.p99_us,
                    " us",
                    true,
                );
            }
            if let (Some(portico), Some(nginx), Some(upstream)) =
                (at(1, "portico"), at(1, "nginx"), at(1, "upstream"))
            {
                check(
                    format!("{label} c=1: added p50 <= nginx's"),
                    portico.p50_us - upstream.p50_us,
                    nginx.p50_us - upstream.p50_us,
                    " us",
                    true,
                );
            }
            if scenario.kind == Kind::ProxySmall
                && let Some(portico) = targets.iter().find(|target| target.name == "portico")
            {
                check(
                    "idle RSS <= 30 MB".to_string(),
                    mib(portico.idle_rss),
                    30.0,
                    " MiB",
                    true,
                );
            }
        }
        Kind::TlsH1 | Kind::TlsH2 => {
            if let (Some(portico), Some(haproxy)) = (at(64, "portico-tls"), at(64, "haproxy-tls")) {
                check(
                    format!("{label} c=64: req/s >= 1.0x HAProxy TLS"),
                    portico.requests_per_second / haproxy.requests_per_second,
                    1.0,
                    "x",
                    false,
                );
            }
        }
        Kind::Routes10k => {
            if let Some(big) = all.values().last().and_then(|figures| {
                figures
                    .iter()
                    .find(|(index, _)| targets[*index].name == "portico-10k")
                    .map(|(_, figure)| figure.clone())
            }) {
                check(
                    "10k routes (no keys) peak RSS <= 200 MB".to_string(),
                    mib(big.peak_rss),
                    200.0,
                    " MiB",
                    true,
                );
            }
        }
        Kind::Keys100k => {
            if let Some(big) = all.values().last().and_then(|figures| {
                figures
                    .iter()
                    .find(|(index, _)| targets[*index].name == "portico-10k-100k")
                    .map(|(_, figure)| figure.clone())
            }) {
                check(
                    "10k routes + 100k keys <= 200 MB (peak RSS)".to_string(),
                    mib(big.peak_rss),
                    200.0,
                    " MiB",
                    true,
                );
            }
            for conns in [1, 64] {
                if let (Some(plain), Some(big)) =
                    (at(conns, "portico"), at(conns, "portico-10k-100k"))
                {
                    informative.push(Verdict {
                        what: format!("{label} c={conns}: 10k routes + keyed route vs 2 routes"),
                        figure: relative(&big, &plain),
                        met: None,
                    });
                }
            }
        }
        Kind::CacheHit => {
            for conns in [1, 64] {
                if let (Some(portico), Some(nginx)) =
                    (at(conns, "portico-cache"), at(conns, "nginx-cache"))
                {
                    informative.push(Verdict {
                        what: format!("{label} c={conns}: req/s and CPU/req vs nginx proxy_cache"),
                        figure: relative(&portico, &nginx),
                        met: None,
                    });
                }
            }
            if let (Some(portico), Some(nginx)) = (at(64, "portico-cache"), at(64, "nginx-cache")) {
                check(
                    format!("{label} c=64: req/s >= 1.2x nginx proxy_cache hit"),
                    portico.requests_per_second / nginx.requests_per_second,
                    1.2,
                    "x",
                    false,
                );
            }
        }
        Kind::KeysThrottle => {
            for (conns, keyed_name, what) in [
                (1, "portico-keys", "keys+throttle+quota"),
                (64, "portico-keys", "keys+throttle+quota"),
                (1, "portico-keys-noquota", "keys+throttle (no quota)"),
                (64, "portico-keys-noquota", "keys+throttle (no quota)"),
            ] {
                if let (Some(plain), Some(keyed)) = (at(conns, "portico"), at(conns, keyed_name)) {
                    informative.push(Verdict {
                        what: format!("{label} c={conns}: {what} cost <= 10% CPU per request"),
                        figure: format!(
                            "{}, {:+.2} us vs the same route without",
                            relative(&keyed, &plain),
                            keyed.cpu_us_per_request - plain.cpu_us_per_request
                        ),
                        met: None,
                    });
                }
            }
            if let (Some(keyed), Some(nginx)) = (at(64, "portico-keys"), at(64, "nginx")) {
                check(
                    format!("{label} c=64: keys+throttling+logging req/s >= 1.0x nginx plain"),
                    keyed.requests_per_second / nginx.requests_per_second,
                    1.0,
                    "x",
                    false,
                );
            }
        }
        Kind::Authorizers => {
            for (conns, name, what) in [
                (1, "portico-lambda", "cached Lambda authorizer"),
                (64, "portico-lambda", "cached Lambda authorizer"),
                (1, "portico-cognito", "Cognito JWT"),
                (64, "portico-cognito", "Cognito JWT"),
            ] {
                if let (Some(plain), Some(authorized)) = (at(conns, "portico"), at(conns, name)) {
                    check(
                        format!(
                            "{label} c={conns}: {what} CPU per request <= 1.10x the same route without"
                        ),
                        authorized.cpu_us_per_request / plain.cpu_us_per_request,
                        1.10,
                        "x",
                        true,
                    );
                }
            }
        }
        Kind::Cluster3 => {
            for (conns, dev_name, what) in [
                (1, "portico", "one dev process, 1 connection"),
                (1, "portico-x3", "one dev process, loaded alike"),
                (64, "portico", "one dev process"),
                (64, "portico-x3", "one dev process, loaded alike"),
            ] {
                if let (Some(cluster), Some(dev)) = (at(conns, "cluster-3"), at(conns, dev_name)) {
                    informative.push(Verdict {
                        what: format!("{label} c={conns}: three edges vs {what}"),
                        figure: relative(&cluster, &dev),
                        met: None,
                    });
                }
            }
        }
        Kind::Mock => {}
    }
    verdicts.extend(informative);
    (out, verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_split_over_the_edges() {
        assert_eq!(split_connections(64, 3), [22, 21, 21]);
        assert_eq!(split_connections(1, 3), [1, 1, 1]);
        assert_eq!(split_connections(3, 3), [1, 1, 1]);
        assert_eq!(split_connections(8, 1), [8]);
    }

    #[test]
    fn merged_loads_sum_counts_and_bound_percentiles_from_above() {
        let part = |requests, p50_us, p99_us, errors| LoadResult {
            requests,
            seconds: 5.0,
            p50_us,
            p99_us,
            errors,
            non_2xx: errors,
        };
        let merged = merge(&[part(100, 10.0, 90.0, 1), part(300, 20.0, 40.0, 0)]);
        assert_eq!(merged.requests, 400);
        assert_eq!(merged.errors, 1);
        assert_eq!(merged.requests_per_second(), 80.0);
        assert_eq!((merged.p50_us, merged.p99_us), (20.0, 90.0));
    }
}
