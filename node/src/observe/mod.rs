//! Observability: the access log (one JSON line per request) and the logging setup.
//!
//! Access-log lines bypass `tracing` (see `access` for why): the binary writes them as JSON to
//! stdout through per-worker buffers and a writer thread, and diagnostics go through `tracing`
//! as text to stderr.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub mod access;
pub mod metrics;

/// One request as the access log records it.
#[derive(Debug)]
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub source_ip: std::net::IpAddr,
    pub method: &'a str,
    pub resource_path: Option<&'a str>,
    pub path: &'a str,
    pub protocol: &'static str,
    pub status: u16,
    pub latency_ms: f64,
    pub integration_latency_ms: Option<f64>,
    pub api_id: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_detail: Option<&'a str>,
}

/// Logs one request (a no-op until the binary's [`init_logging`] enabled the access log).
pub fn log_access(record: &AccessRecord<'_>) {
    access::log(record);
}

/// Installs the process's logging: access lines as JSON on stdout, diagnostics on stderr
/// filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    access::enable();
    use std::io::IsTerminal as _;
    let diagnostics = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    let _ = tracing_subscriber::registry().with(diagnostics).try_init();
}
