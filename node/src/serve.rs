//! Wiring: what runs behind which listener. The gateway (the pipeline) behind the data plane's
//! HTTP and HTTPS listeners, and the metrics registry behind the metrics listener.
//!
//! `accept` is the listener loop, generic over the handler, and `observe` only renders the
//! metrics; the roles (`dev`, `cluster::edge`, `cluster::origin`) call these to bind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::accept::{self, Listener, Shutdown};
use crate::observe::metrics::Metrics;
use crate::pipeline::Gateway;

/// Starts serving `gateway` on `listener`, over TLS when `tls` is given.
pub fn serve_gateway(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    gateway: Arc<Gateway>,
    shutdown: &Shutdown,
    drain_timeout: Duration,
) -> std::io::Result<Listener> {
    accept::serve(
        listener,
        tls,
        shutdown,
        drain_timeout,
        move |request, remote| {
            let gateway = gateway.clone();
            async move { gateway.handle(request, remote).await }
        },
    )
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
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the HTTP listener to {addr}"))?;
        let listener = serve_gateway(listener, None, gateway.clone(), shutdown, drain_timeout)?;
        started.http_addr = Some(listener.local_addr);
        started.listeners.push(listener);
    }
    if let Some(addr) = https {
        let key = crate::tls::load_or_create_self_signed(data_dir)?;
        let tls = Arc::new(crate::tls::server_config(key)?);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the HTTPS listener to {addr}"))?;
        let listener = serve_gateway(
            listener,
            Some(tls),
            gateway.clone(),
            shutdown,
            drain_timeout,
        )?;
        started.https_addr = Some(listener.local_addr);
        started.listeners.push(listener);
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
    let listener = tokio::net::TcpListener::bind(addr)
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
