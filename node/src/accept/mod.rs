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
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
pub use workers::{MAX_CONNECTIONS_DEFAULT, Slot, Slots, Workers};

/// Request heads above this many bytes are refused (API Gateway's own limit is 10 KB of
/// headers; this leaves room for large cookies and tokens while bounding memory).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 200;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that sends no byte of HTTP this long after it was accepted (after its TLS
/// handshake) is closed: hyper's head timeout starts only once it reads a head, and the
/// HTTP/1-or-2 detection before it waits for bytes without one.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// The deadline for each request head once hyper waits for it, which is also how long an idle
/// keep-alive connection stays open.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Client connections a listener outside the workers (management, metrics) holds at most.
pub const OTHER_LISTENER_CONNECTIONS: usize = 1024;
/// What a plaintext connection over the limit is told before it is closed (best effort: one
/// non-blocking write; a TLS connection is closed without a word, as a handshake would cost
/// what the limit protects).
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 34\r\nconnection: close\r\nretry-after: 1\r\n\r\n{\"message\":\"Service Unavailable\"}\n";

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
        Arc::new(Slots::new(OTHER_LISTENER_CONNECTIONS)),
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
    for (runtime, listener, slots) in workers.bind(addr)? {
        let local_addr = listener.local_addr()?;
        let task = runtime.spawn(run(
            listener,
            local_addr,
            tls.clone(),
            shutdown.subscribe(),
            drain_timeout,
            Arc::new(make_handler()),
            slots,
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
    slots: Arc<Slots>,
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
        let Some(slot) = slots.try_take() else {
            // Over the limit: refused at once, so the slots held (by a flood) cost the
            // clients that come next an answer, not a hang in the backlog.
            if !is_tls {
                let _ = stream.try_write(REFUSAL);
                // Closing a socket with unread bytes sends a reset, which makes the client's
                // kernel drop the answer unread: read what has arrived (the request, usually)
                // first, without waiting, up to a bound.
                let mut sink = [0u8; 4096];
                for _ in 0..16 {
                    match stream.try_read(&mut sink) {
                        Ok(read) if read > 0 => {}
                        _ => break,
                    }
                }
            }
            tracing::debug!(%remote, limit = slots.limit(), "connection refused: at the limit");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        connections.spawn(async move {
            let _slot = slot;
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
            let seen = Arc::new(AtomicBool::new(false));
            let result = match acceptor {
                None => {
                    let io = FirstByte::new(stream, seen.clone());
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    until_first_byte(watcher.watch(connection.into_owned()), &seen).await
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
                    let io = FirstByte::new(stream, seen.clone());
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    until_first_byte(watcher.watch(connection.into_owned()), &seen).await
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

/// Serves `connection` unless no byte arrives within [`FIRST_BYTE_TIMEOUT`].
async fn until_first_byte<F, E>(connection: F, seen: &AtomicBool) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    tokio::select! {
        result = connection => result,
        () = async {
            tokio::time::sleep(FIRST_BYTE_TIMEOUT).await;
            if seen.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::debug!("no request within {FIRST_BYTE_TIMEOUT:?}; connection closed");
            Ok(())
        }
    }
}

/// A connection's stream that notes when its first bytes arrive.
struct FirstByte<S> {
    inner: S,
    seen: Arc<AtomicBool>,
}

impl<S> FirstByte<S> {
    fn new(inner: S, seen: Arc<AtomicBool>) -> Self {
        FirstByte { inner, seen }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstByte<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.seen.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstByte<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Listener {
    /// Waits until the listener has stopped and drained (after [`Shutdown::trigger`]).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn echo_path(
        request: Request<Incoming>,
        _: ConnectionInfo,
    ) -> std::future::Ready<Response<Body>> {
        std::future::ready(Response::new(crate::body::full(
            request.uri().path().to_string(),
        )))
    }

    async fn listen(limit: usize) -> (SocketAddr, Shutdown, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(run(
            listener,
            addr,
            None,
            shutdown.subscribe(),
            Duration::from_secs(1),
            Arc::new(echo_path),
            Arc::new(Slots::new(limit)),
        ));
        (addr, shutdown, task)
    }

    async fn get(stream: &mut tokio::net::TcpStream, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = vec![0; 1024];
        let read = stream.read(&mut reply).await.unwrap();
        String::from_utf8_lossy(&reply[..read]).into_owned()
    }

    #[tokio::test]
    async fn connections_over_the_limit_are_refused_with_a_json_503_and_slots_come_back() {
        let (addr, shutdown, task) = listen(2).await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut first, "/one").await.ends_with("/one"));
        assert!(get(&mut second, "/two").await.ends_with("/two"));

        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut refusal = String::new();
        tokio::time::timeout(Duration::from_secs(5), third.read_to_string(&mut refusal))
            .await
            .unwrap()
            .unwrap();
        let (head, body) = refusal.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{refusal}");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["message"], "Service Unavailable");

        // A closed connection gives its slot back.
        drop(first);
        let mut fourth = None;
        for _ in 0..100 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let reply = get(&mut stream, "/four").await;
            if reply.ends_with("/four") {
                fourth = Some(stream);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(fourth.is_some(), "the slot never came back");
        shutdown.trigger();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_closed_after_the_first_byte_deadline() {
        let (addr, shutdown, task) = listen(8).await;
        let started = tokio::time::Instant::now();
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut talking = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut talking, "/t").await.ends_with("/t"));
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), silent.read_to_end(&mut rest))
            .await
            .expect("the silent connection was never closed");
        assert_eq!(read.unwrap(), 0);
        let waited = started.elapsed();
        assert!(
            waited >= FIRST_BYTE_TIMEOUT && waited < HEADER_READ_TIMEOUT,
            "{waited:?}"
        );
        // The one that sent a request is still open (its idle keep-alive runs on hyper's
        // head deadline): it answers again.
        assert!(get(&mut talking, "/again").await.ends_with("/again"));
        shutdown.trigger();
        task.await.unwrap();
    }
}
