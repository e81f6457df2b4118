//! Wiring: what runs behind which listener. The gateway (the pipeline) behind the data plane's
//! HTTP and HTTPS listeners, on the request workers, and the metrics registry behind the
//! metrics listener, on the main runtime.
//!
//! `accept` is the listener loop, generic over the handler, and `observe` only renders the
//! metrics; the roles (`dev`, `cluster::edge`, `cluster::origin`) call these to bind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::accept::{self, Listener, Shutdown, Workers};
use crate::observe::metrics::Metrics;
use crate::pipeline::Gateway;

/// Serves `gateway` on `addr` from every worker, over TLS when `tls` is given.
pub fn serve_gateway(
    workers: &Workers,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    gateway: &Arc<Gateway>,
    shutdown: &Shutdown,
    drain_timeout: Duration,
) -> std::io::Result<Vec<Listener>> {
    accept::serve_on_workers(workers, addr, tls, shutdown, drain_timeout, || {
        // The worker's own handle: every request clones this `Arc`, whose count lives in a
        // cache line only this worker writes, instead of the gateway's, which every core
        // would bounce between them.
        let local = Arc::new(gateway.clone());
        move |request, remote| {
            let local = local.clone();
            async move { local.handle(request, remote).await }
        }
    })
}

/// The data plane's listeners: plaintext HTTP and HTTPS (the data dir's certificate), each
/// optional.
#[derive(Debug, Default)]
pub struct GatewayListeners {
    pub listeners: Vec<Listener>,
    pub http_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
}

/// Binds and serves `gateway` on the configured addresses (an edge's and `dev`'s data plane).
pub async fn start_gateway_listeners(
    workers: &Workers,
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    data_dir: &std::path::Path,
    gateway: &Arc<Gateway>,
    shutdown: &Shutdown,
    drain_timeout: Duration,
) -> anyhow::Result<GatewayListeners> {
    use anyhow::Context as _;
    let mut started = GatewayListeners::default();
    if let Some(addr) = http {
        let listeners = serve_gateway(workers, addr, None, gateway, shutdown, drain_timeout)
            .with_context(|| format!("binding the HTTP listener to {addr}"))?;
        started.http_addr = listeners.first().map(|listener| listener.local_addr);
        started.listeners.extend(listeners);
    }
    if let Some(addr) = https {
        let key = crate::tls::load_or_create_self_signed(data_dir)?;
        let tls = Arc::new(crate::tls::server_config(key)?);
        let listeners = serve_gateway(workers, addr, Some(tls), gateway, shutdown, drain_timeout)
            .with_context(|| format!("binding the HTTPS listener to {addr}"))?;
        started.https_addr = listeners.first().map(|listener| listener.local_addr);
        started.listeners.extend(listeners);
    }
    Ok(started)
}

/// Serves `GET /metrics` over plain HTTP on `addr` until `shutdown`.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: &Shutdown,
    drain_timeout: Duration,
) -> anyhow::Result<Listener> {
    use anyhow::Context as _;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics listener to {addr}"))?;
    let listener = accept::serve(
        listener,
        None,
        shutdown,
        drain_timeout,
        move |request, _connection| {
            let response = metrics.respond(request.method(), request.uri().path());
            async move { response }
        },
    )?;
    Ok(listener)
}
