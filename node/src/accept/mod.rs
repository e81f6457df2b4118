//! Listeners: TCP accept, TLS, HTTP/1.1 and HTTP/2, limits, and graceful drain.
//!
//! Gateway listeners run on the request workers ([`Workers`]: one current-thread runtime and
//! one `SO_REUSEPORT` socket per core); the others (management, metrics, `dev`'s demo
//! backends) on the runtime that starts them. Each listener runs one accept loop; every connection gets its own task, which does the TLS
//! handshake (bounded in time, so a silent client cannot hold a slot) and then serves HTTP with
//! hyper-util's auto builder (HTTP/2 by ALPN or preface, HTTP/1.1 otherwise). Header sizes are
//! bounded per protocol; hyper answers a malformed or oversized request head with 400/431
//! itself, and a connection error ends only that connection. Shutdown stops accepting, asks
//! every connection to finish its in-flight requests (GOAWAY / close after response), and waits
//! up to a drain deadline.
//!
//! Generic over the handler: this module knows nothing of the pipeline or of any stage; what
//! runs behind a listener is wired in `serve` (the gateway, the metrics) and `dev`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::Body;
use crate::request::ConnectionInfo;

mod workers;
pub use workers::Workers;

/// Request heads above this many bytes are refused (API Gateway's own limit is 10 KB of
/// headers; this leaves room for large cookies and tokens while bounding memory).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 200;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A running listener.
#[derive(Debug)]
pub struct Listener {
    pub local_addr: SocketAddr,
    pub tls: bool,
    task: JoinHandle<()>,
}

/// Signals every listener to stop and drain.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            sender: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.sender.subscribe()
    }
}

fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(30));
    builder
}

/// Serves any request handler: the metrics listener, the management API, and the demo
/// backends and function endpoint of `dev`, all with the same loop, limits and drain, on the
/// runtime this is called from.
pub fn serve<H, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: &Shutdown,
    drain_timeout: Duration,
    handler: H,
) -> std::io::Result<Listener>
where
    H: Fn(Request<Incoming>, ConnectionInfo) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let local_addr = listener.local_addr()?;
    let is_tls = tls.is_some();
    let task = tokio::spawn(run(
        listener,
        local_addr,
        tls,
        shutdown.subscribe(),
        drain_timeout,
        Arc::new(handler),
    ));
    Ok(Listener {
        local_addr,
        tls: is_tls,
        task,
    })
}

/// Serves on every worker of `workers`: one `SO_REUSEPORT` socket per worker on `addr`, each
/// with its own accept loop and connections on that worker's runtime. `make_handler` is called
/// once per worker, so a handler can hold per-worker state (a per-worker handle on shared
/// state, whose reference count no other core touches).
pub fn serve_on_workers<M, H, F>(
    workers: &Workers,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: &Shutdown,
    drain_timeout: Duration,
    make_handler: M,
) -> std::io::Result<Vec<Listener>>
where
    M: Fn() -> H,
    H: Fn(Request<Incoming>, ConnectionInfo) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut listeners = Vec::with_capacity(workers.len());
    for (runtime, listener) in workers.bind(addr)? {
        let local_addr = listener.local_addr()?;
        let task = runtime.spawn(run(
            listener,
            local_addr,
            tls.clone(),
            shutdown.subscribe(),
            drain_timeout,
            Arc::new(make_handler()),
        ));
        listeners.push(Listener {
            local_addr,
            tls: tls.is_some(),
            task,
        });
    }
    Ok(listeners)
}

/// One listener's accept loop, its connections, and their drain.
async fn run<H, F>(
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
    handler: Arc<H>,
) where
    H: Fn(Request<Incoming>, ConnectionInfo) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let is_tls = tls.is_some();
    let builder = Arc::new(http_builder());
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    // Connection tasks are owned here so that any still open after the drain deadline can
    // be aborted rather than left behind.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { stop.wait_for(|stopped| *stopped).await.map(|_| ()) } => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        connections.spawn(async move {
            let connection = ConnectionInfo {
                remote,
                local: local_addr,
                tls: is_tls,
            };
            let service = service_fn(move |request| {
                // Boxed: the gateway's request future is ~15 KB (the integration, cache
                // and client futures nest inside it), and hyper's HTTP/2 server spawns one
                // task per stream holding this future, which moved it by value four times
                // per request (60 % of the instructions of an HTTP/2 request, callgrind).
                // Boxed, it is built once on the heap and only a pointer moves.
                let response = Box::pin(handler(request, connection));
                async move { Ok::<_, Infallible>(response.await) }
            });
            let result = match acceptor {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%remote, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                return;
                            }
                        };
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            %local_addr,
            open = connections.len(),
            "connections still open after the drain deadline; closing them"
        );
    }
    // Whatever is left (a connection still in its TLS handshake, or past the deadline).
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

impl Listener {
    /// Waits until the listener has stopped and drained (after [`Shutdown::trigger`]).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}
