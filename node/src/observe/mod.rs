//! Observability: the access log (one JSON line per request) and the logging setup.
//!
//! Access-log lines go through `tracing` under the target `portico::access`, so they can be
//! routed separately from diagnostics: the binary writes them as JSON to stdout (through the
//! lean layer and writer thread of `access`) and everything else as text to stderr.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub mod access;
pub mod metrics;

pub const ACCESS_TARGET: &str = "portico::access";

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

pub fn log_access(record: &AccessRecord<'_>) {
    // The address as a string field: through `%` (Display) the layer formats it with `write!`
    // into a temporary string, on every request.
    let mut ip = String::with_capacity(15);
    crate::integrate::http::push_ip(&mut ip, record.source_ip);
    tracing::info!(
        target: ACCESS_TARGET,
        requestId = record.request_id,
        ip = ip.as_str(),
        httpMethod = record.method,
        resourcePath = record.resource_path,
        path = record.path,
        protocol = record.protocol,
        status = record.status,
        latencyMs = record.latency_ms,
        integrationLatencyMs = record.integration_latency_ms,
        apiId = record.api_id,
        stage = record.stage,
        error = record.error,
        errorDetail = record.error_detail,
    );
}

/// Installs the process's logging: access lines as JSON on stdout, diagnostics on stderr
/// filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let access = access::AccessLayer
        .with_filter(Targets::new().with_target(ACCESS_TARGET, tracing::Level::INFO));
    use std::io::IsTerminal as _;
    let diagnostics = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter_fn(|metadata| metadata.target() != ACCESS_TARGET))
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    let _ = tracing_subscriber::registry()
        .with(access)
        .with(diagnostics)
        .try_init();
}
