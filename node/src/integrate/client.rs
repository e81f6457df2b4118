//! The pooled HTTP(S) client every integration shares: per-worker pools of hyper connections
//! whose HTTP/1.1 exchange runs in the request's own task.
//!
//! Why not hyper-util's legacy client (what this replaced): it spawns a task per connection and
//! talks to it through channels, so every proxied request woke two more tasks, often on another
//! CPU, and the response body crossed a channel between them. nginx and HAProxy handle both
//! sides of a request in one event-loop pass; so does this client:
//!
//! ```text
//!   request task ─┬─ poll Connection (writes the request, reads the response head)
//!                 └─ poll the response future            ─▶ Response<UpstreamBody>
//!   UpstreamBody::poll_frame ─┬─ poll Connection (reads the body into hyper's channel)
//!                             └─ poll the body            ─▶ frames, then back to the pool
//! ```
//!
//! - **Per worker.** The idle connections live in a `thread_local!`: a node worker is one
//!   thread with a current-thread runtime, so a request never touches another worker's pool and
//!   needs no lock. On a multi-thread runtime (tests, admin TestInvoke) it is still correct:
//!   connections are checked out and in synchronously, so a task that migrates carries its
//!   connection with it, and only the pool it returns to differs.
//! - **HTTP/1.1** (plain, and TLS when ALPN picks `http/1.1` or nothing): the connection is
//!   never spawned. The request's task drives it until the response head arrives, and the
//!   response body drives it until the end of the body, then puts it back (LIFO, so the warmest
//!   connection goes out first). A connection goes back only after a clean end of body, polled
//!   once more to be idle and ready; a body dropped early, an error, or a connection that ended
//!   drops the socket. A failed connection is never reused.
//! - **HTTP/2** (TLS backends that pick `h2`): multiplexed streams need the connection driven
//!   independently of any one request, so its future is spawned on the current runtime; one
//!   connection per backend per worker, its `SendRequest` cloned per request.
//! - **Stale idle connections.** A pooled HTTP/1.1 connection is not polled while idle, so a
//!   backend's close is noticed at checkout: the connection is polled once with a no-op waker
//!   (no system call unless the runtime saw the socket readable) and dropped if it ended. A
//!   request that a connection refuses before writing it (closed in the meantime) comes back
//!   (`try_send_request`) and is sent once more on a fresh connection.
//! - **Keys** are the client (a node may build several, e.g. with different CA files), the
//!   verification flag (so the relaxed TLS config can never lend a connection to a verified
//!   integration), the scheme and the authority, hashed with FxHash: no SipHash per request.
//! - **Limits**: at most [`Limits::max_idle_per_host`] idle connections per key, dropped after
//!   [`Limits::idle_timeout`] (checked at checkout, plus a sweep of every key at most every
//!   [`SWEEP_INTERVAL`] when the pool is used), connect and TLS handshake timeouts.
//!
//! No redirects are followed and nothing is decompressed, which a proxy must not do.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, header};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustc_hash::FxHasher;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::Body;

/// How often, at most, a pool walks all its keys for expired idle connections.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// TCP keepalive probes on upstream sockets, as the legacy client had.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The pool's limits and timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Idle HTTP/1.1 connections kept per key; past it, the oldest is closed.
    pub max_idle_per_host: usize,
    /// An idle connection older than this is closed rather than reused.
    pub idle_timeout: Duration,
    /// Resolving the host and the TCP connect, together.
    pub connect_timeout: Duration,
    /// The TLS handshake, after the TCP connect.
    pub tls_handshake_timeout: Duration,
    /// Connections open at once per key on one worker (in use and idle; an HTTP/2 connection
    /// counts one). A request that finds them all busy waits for one to go idle or close,
    /// within its integration timeout: HTTP/2 clients multiplex up to 256 requests on one
    /// connection, so without this a slow backend could make one client connection cost
    /// hundreds of file descriptors.
    pub max_connections_per_host: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_idle_per_host: 256,
            idle_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections_per_host: 4096,
        }
    }
}

/// Why an upstream request failed. The source chain carries hyper's error, whose own source is
/// the request body's error (so callers can find `http_body_util::LengthLimitError`).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0} is not an http or https URI with a host")]
    BadUri(Uri),
    #[error("resolving {host} failed")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} resolved to no address")]
    NoAddress { host: String },
    #[error("connecting to {address} failed")]
    Connect {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {host} timed out after {} ms", timeout.as_millis())]
    ConnectTimeout { host: String, timeout: Duration },
    #[error("{host} is not a valid TLS server name")]
    ServerName { host: String },
    #[error("the TLS handshake with {host} failed")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the TLS handshake with {host} timed out after {} ms", timeout.as_millis())]
    TlsTimeout { host: String, timeout: Duration },
    #[error("the HTTP handshake failed")]
    Handshake(#[source] hyper::Error),
    #[error("the backend exchange failed")]
    Exchange(#[source] hyper::Error),
}

/// Hands out ids so two clients in one process (nodes with different CA files) never share a
/// pooled connection.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Clone)]
pub struct BackendClient {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    verified: tokio_rustls::TlsConnector,
    insecure: tokio_rustls::TlsConnector,
    limits: Limits,
}

impl std::fmt::Debug for BackendClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BackendClient")
            .field("id", &self.inner.id)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

// === impl BackendClient ===

impl BackendClient {
    /// `extra_ca_file` adds PEM roots to the system's, for backends behind a private CA.
    pub fn new(extra_ca_file: Option<&Path>) -> anyhow::Result<Self> {
        Self::with_limits(extra_ca_file, Limits::default())
    }

    pub fn with_limits(extra_ca_file: Option<&Path>, limits: Limits) -> anyhow::Result<Self> {
        let roots = crate::tls::backend_roots(extra_ca_file)?;
        Ok(Self::from_configs(
            crate::tls::client_config(roots)?,
            crate::tls::insecure_client_config()?,
            limits,
        ))
    }

    /// A client from explicit TLS configs (tests trust a test CA this way). ALPN is set here:
    /// `h2` first, then `http/1.1`.
    pub fn from_configs(
        mut verified: rustls::ClientConfig,
        mut insecure: rustls::ClientConfig,
        limits: Limits,
    ) -> Self {
        for config in [&mut verified, &mut insecure] {
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        BackendClient {
            inner: Arc::new(Inner {
                id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
                verified: tokio_rustls::TlsConnector::from(Arc::new(verified)),
                insecure: tokio_rustls::TlsConnector::from(Arc::new(insecure)),
                limits,
            }),
        }
    }

    /// Sends `request` (absolute URI, `http` or `https`) and returns the response with its body
    /// still streaming. `insecure_skip_verification` accepts any server certificate.
    ///
    /// The future is boxed: it is about 1.4 KB (the request, its target, the exchange's state),
    /// and it is part of every proxied request's future, which hyper boxes and the pipeline
    /// moves several times; inline, those copies cost more than this client saves
    /// (callgrind: 99k instructions per proxied request inline, against 64k for the legacy
    /// client, whose future was boxed too).
    pub fn request(
        &self,
        insecure_skip_verification: bool,
        request: Request<Body>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send + '_>>
    {
        Box::pin(self.exchange(insecure_skip_verification, request))
    }

    async fn exchange(
        &self,
        insecure_skip_verification: bool,
        mut request: Request<Body>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let target = Target::of(request.uri(), self.inner.id, insecure_skip_verification)?;
        let limits = &self.inner.limits;

        let slot = loop {
            // Checked on every turn: a request that waited for a slot may find that another
            // one has opened a (shared) HTTP/2 connection meanwhile.
            if target.https
                && let Some(sender) = pool::checkout_h2(&target.key)
            {
                match send_h2(sender, request).await {
                    Exchange::Done(result) => return result,
                    // The connection went away (GOAWAY, close) before taking the request.
                    Exchange::Refused(returned, _) => {
                        pool::forget_h2(&target.key);
                        request = returned;
                    }
                }
            }
            if let Some(idle) = pool::checkout_h1(&target.key, limits) {
                let absolute = request.uri().clone();
                prepare_h1(&mut request, &target);
                match exchange_h1(idle, request, &target.key, limits).await {
                    Exchange::Done(result) => return result,
                    // Refused before a byte was written: the connection had closed while idle.
                    Exchange::Refused(mut returned, _) => {
                        *returned.uri_mut() = absolute;
                        request = returned;
                    }
                }
            }
            let opened = pool::opened(&target.key);
            if let Some(slot) = OpenSlot::take(&opened, limits.max_connections_per_host) {
                break slot;
            }
            // Every connection this worker may hold to the backend is busy: wait until one
            // goes idle or closes (the caller's deadline bounds the wait).
            let freed = opened.freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if opened.open() < limits.max_connections_per_host || pool::has_idle(&target.key) {
                continue;
            }
            freed.await;
        };
        // Boxed: connecting is rare, and its future (TLS and HTTP/2 handshakes, several KB)
        // would otherwise be part of every request's future, copied whenever that moves.
        match Box::pin(self.connect(&target, insecure_skip_verification, slot)).await? {
            Fresh::H2(sender) => {
                pool::store_h2(target.key.clone(), sender.clone());
                match send_h2(sender, request).await {
                    Exchange::Done(result) => result,
                    Exchange::Refused(_, error) => Err(UpstreamError::Exchange(error)),
                }
            }
            Fresh::H1(connection) => {
                prepare_h1(&mut request, &target);
                match exchange_h1(connection, request, &target.key, limits).await {
                    Exchange::Done(result) => result,
                    Exchange::Refused(_, error) => Err(UpstreamError::Exchange(error)),
                }
            }
        }
    }

    async fn connect(
        &self,
        target: &Target,
        insecure: bool,
        slot: OpenSlot,
    ) -> Result<Fresh, UpstreamError> {
        let limits = &self.inner.limits;
        let stream = tokio::time::timeout(limits.connect_timeout, connect_tcp(target))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout {
                host: target.host().to_string(),
                timeout: limits.connect_timeout,
            })??;
        if !target.https {
            let (sender, connection) = http1::handshake(TokioIo::new(Stream::Plain(stream)))
                .await
                .map_err(UpstreamError::Handshake)?;
            return Ok(Fresh::H1(Idle::new(sender, connection, slot)));
        }
        let name =
            rustls_pki_types::ServerName::try_from(target.host().to_string()).map_err(|_| {
                UpstreamError::ServerName {
                    host: target.host().to_string(),
                }
            })?;
        let connector = if insecure {
            &self.inner.insecure
        } else {
            &self.inner.verified
        };
        let tls = tokio::time::timeout(
            limits.tls_handshake_timeout,
            connector.connect(name, stream),
        )
        .await
        .map_err(|_| UpstreamError::TlsTimeout {
            host: target.host().to_string(),
            timeout: limits.tls_handshake_timeout,
        })?
        .map_err(|source| UpstreamError::Tls {
            host: target.host().to_string(),
            source,
        })?;
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(TokioIo::new(Stream::Tls(Box::new(tls))))
                .await
                .map_err(UpstreamError::Handshake)?;
            tokio::spawn(async move {
                // The slot is held for as long as the connection lives.
                let _slot = slot;
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "an upstream HTTP/2 connection ended");
                }
            });
            return Ok(Fresh::H2(sender));
        }
        let (sender, connection) = http1::handshake(TokioIo::new(Stream::Tls(Box::new(tls))))
            .await
            .map_err(UpstreamError::Handshake)?;
        Ok(Fresh::H1(Idle::new(sender, connection, slot)))
    }
}

/// Where a request goes, parsed once.
struct Target {
    key: Key,
    https: bool,
    port: u16,
}

impl Target {
    /// The host without IPv6 brackets (for DNS, connect and the TLS server name). Borrowed:
    /// only a connect needs it, and an owned copy per request was a malloc and a free.
    fn host(&self) -> &str {
        let host = self.key.authority.host();
        host.strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host)
    }

    fn of(uri: &Uri, client: u64, insecure: bool) -> Result<Target, UpstreamError> {
        let bad = || UpstreamError::BadUri(uri.clone());
        let https = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTPS => true,
            Some(scheme) if *scheme == Scheme::HTTP => false,
            _ => return Err(bad()),
        };
        let authority = uri.authority().ok_or_else(bad)?.clone();
        if authority.host().is_empty() {
            return Err(bad());
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Target {
            key: Key {
                client,
                insecure,
                https,
                authority,
            },
            https,
            port,
        })
    }
}

async fn connect_tcp(target: &Target) -> Result<TcpStream, UpstreamError> {
    let addresses: Vec<SocketAddr> = match target.host().parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host(), target.port))
            .await
            .map_err(|source| UpstreamError::Resolve {
                host: target.host().to_string(),
                source,
            })?
            .collect(),
    };
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                configure_socket(&stream);
                return Ok(stream);
            }
            Err(source) => last_error = Some(UpstreamError::Connect { address, source }),
        }
    }
    Err(last_error.unwrap_or_else(|| UpstreamError::NoAddress {
        host: target.host().to_string(),
    }))
}

/// `TCP_NODELAY` (a request head must not wait for an ACK) and keepalive probes, as before.
fn configure_socket(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY on an upstream socket");
    }
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%error, "TCP keepalive on an upstream socket");
    }
}

/// HTTP/1.1 wants the origin form (`/path?query`) and a `Host` header.
fn prepare_h1(request: &mut Request<Body>, target: &Target) {
    if !request.headers().contains_key(header::HOST)
        && let Some(host) = host_header(&target.key.authority, target.https)
    {
        request.headers_mut().insert(header::HOST, host);
    }
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(path);
}

/// The `Host` value for an authority: the host, with the port unless it is the scheme's
/// default (what the legacy client sent).
pub fn host_header(authority: &Authority, https: bool) -> Option<HeaderValue> {
    match authority.port_u16() {
        Some(port) if port != if https { 443 } else { 80 } => {
            HeaderValue::from_str(authority.as_str()).ok()
        }
        _ => HeaderValue::from_str(authority.host()).ok(),
    }
}

async fn send_h2(mut sender: http2::SendRequest<Body>, request: Request<Body>) -> Exchange {
    // Waits for a free stream when the backend's concurrency limit is reached.
    if let Err(error) = sender.ready().await {
        return Exchange::Refused(request, error);
    }
    match sender.try_send_request(request).await {
        Ok(response) => Exchange::Done(Ok(response.map(|body| UpstreamBody {
            inner: body,
            held: None,
        }))),
        Err(mut error) => match error.take_message() {
            Some(request) => Exchange::Refused(request, error.into_error()),
            None => Exchange::Done(Err(UpstreamError::Exchange(error.into_error()))),
        },
    }
}

type H1Connection = http1::Connection<TokioIo<Stream>, Body>;

/// An HTTP/1.1 connection, boxed once when it is made: it is about 700 bytes (hyper's
/// dispatcher and buffers), and moves between the pool, the exchange and the response body.
type Conn = Box<Idle>;

/// An HTTP/1.1 connection and when it last went idle.
struct Idle {
    sender: http1::SendRequest<Body>,
    connection: H1Connection,
    since: Instant,
    slot: OpenSlot,
}

impl Idle {
    fn new(sender: http1::SendRequest<Body>, connection: H1Connection, slot: OpenSlot) -> Conn {
        Box::new(Idle {
            sender,
            connection,
            since: Instant::now(),
            slot,
        })
    }

    /// Polls the connection once without a waker that matters: `true` if it is still open and
    /// ready for a request. Costs a system call only when the runtime saw the socket readable
    /// (a close, or bytes the backend should not have sent).
    fn poll_idle(&mut self) -> bool {
        let mut context = Context::from_waker(Waker::noop());
        match Pin::new(&mut self.connection).poll(&mut context) {
            Poll::Pending => self.sender.is_ready(),
            Poll::Ready(_) => false,
        }
    }
}

/// The connections open to one key on one worker, and a wake-up for a request waiting for one
/// of them to go idle or close. Shared with the connections' slots, which may drop on another
/// thread (a task that migrated on a multi-thread runtime).
#[derive(Debug, Default)]
struct Opened {
    count: AtomicUsize,
    freed: tokio::sync::Notify,
}

impl Opened {
    fn open(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// One open connection's place in its key's count, given back when the connection closes.
#[derive(Debug)]
struct OpenSlot(Arc<Opened>);

impl OpenSlot {
    fn take(opened: &Arc<Opened>, max: usize) -> Option<OpenSlot> {
        opened
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| OpenSlot(opened.clone()))
    }

    /// Wakes one request waiting for this key's connections (one just went idle).
    fn notify_freed(&self) {
        self.0.freed.notify_one();
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

enum Fresh {
    H1(Conn),
    H2(http2::SendRequest<Body>),
}

enum Exchange {
    Done(Result<Response<UpstreamBody>, UpstreamError>),
    /// The connection refused the request before sending any of it; here it is back, to be
    /// sent once more on a fresh connection.
    Refused(Request<Body>, hyper::Error),
}

/// Sends `request` on `conn`, driving the connection in this task until the response head.
async fn exchange_h1(
    mut conn: Conn,
    request: Request<Body>,
    key: &Key,
    limits: &Limits,
) -> Exchange {
    // The future owns what it needs: hyper's `SendRequest` lends nothing to it.
    let response = conn.sender.try_send_request(request);
    let mut response = std::pin::pin!(response);
    let mut conn = Some(conn);
    let result = std::future::poll_fn(|context| {
        if let Some(driven) = conn.as_mut()
            && Pin::new(&mut driven.connection).poll(context).is_ready()
        {
            // Ended (closed or failed): dropping it settles the response future, with the
            // response if one came, else the error or the unsent request.
            conn = None;
        }
        response.as_mut().poll(context)
    })
    .await;
    match result {
        Ok(response) => {
            let held = conn.map(|conn| Held {
                conn,
                key: key.clone(),
                max_idle: limits.max_idle_per_host,
                idle_timeout: limits.idle_timeout,
            });
            Exchange::Done(Ok(response.map(|body| UpstreamBody { inner: body, held })))
        }
        Err(mut error) => match error.take_message() {
            Some(request) => Exchange::Refused(request, error.into_error()),
            None => Exchange::Done(Err(UpstreamError::Exchange(error.into_error()))),
        },
    }
}

/// The connection an HTTP/1.1 response body is read from, and where it goes back.
struct Held {
    conn: Conn,
    key: Key,
    max_idle: usize,
    idle_timeout: Duration,
}

/// A backend's response body. For HTTP/1.1 it owns the connection, drives it while the body is
/// read, and returns it to the worker's pool after a clean end of body.
pub struct UpstreamBody {
    inner: Incoming,
    held: Option<Held>,
}

impl UpstreamBody {
    /// The body is over: the connection goes back if it is idle and ready. Called with `inner`
    /// still alive: hyper's dispatcher treats a dropped body receiver as an aborted read.
    fn release(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        if held.conn.poll_idle() {
            held.conn.since = Instant::now();
            pool::checkin(held.key, held.conn, held.max_idle, held.idle_timeout);
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(held) = this.held.as_mut()
            && Pin::new(&mut held.conn.connection).poll(context).is_ready()
        {
            // The connection ended: what it read is in the body's channel (or the body's
            // error is); it is never reused.
            this.held = None;
        }
        match Pin::new(&mut this.inner).poll_frame(context) {
            Poll::Ready(None) => {
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                this.held = None;
                Poll::Ready(Some(Err(error)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // hyper's server does not poll a body that says it ended (a sized body after its last
        // byte, a 204): its connection is still good. A body dropped earlier closes it.
        if self.held.is_some() && http_body::Body::is_end_stream(&self.inner) {
            self.release();
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UpstreamBody")
            .field("pooled", &self.held.is_some())
            .finish_non_exhaustive()
    }
}

/// A pool key. `Authority` compares the host case-insensitively and is a reference-counted
/// clone of the request URI's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    client: u64,
    insecure: bool,
    https: bool,
    authority: Authority,
}

/// The worker's pools.
mod pool {
    use super::*;

    type FxBuild = BuildHasherDefault<FxHasher>;

    #[derive(Default)]
    struct Pools {
        h1: HashMap<Key, VecDeque<Conn>, FxBuild>,
        h2: HashMap<Key, http2::SendRequest<Body>, FxBuild>,
        opened: HashMap<Key, Arc<Opened>, FxBuild>,
        next_sweep: Option<Instant>,
    }

    /// How many backends' connection counts a worker keeps before pruning unused ones.
    const OPENED_PRUNE_AT: usize = 64;

    thread_local! {
        static POOLS: RefCell<Pools> = RefCell::new(Pools::default());
    }

    /// Takes the most recently used live idle connection for `key`; stale ones are dropped.
    pub(super) fn checkout_h1(key: &Key, limits: &Limits) -> Option<Conn> {
        let now = Instant::now();
        let mut dropped = Vec::new();
        let found = POOLS
            .try_with(|pools| {
                let mut pools = pools.borrow_mut();
                let idle = pools.h1.get_mut(key)?;
                while let Some(mut candidate) = idle.pop_back() {
                    if now.saturating_duration_since(candidate.since) < limits.idle_timeout
                        && candidate.poll_idle()
                    {
                        return Some(candidate);
                    }
                    dropped.push(candidate);
                }
                None
            })
            .ok()
            .flatten();
        // Sockets are closed outside the pool's borrow.
        drop(dropped);
        found
    }

    /// The count of `key`'s open connections on this worker.
    pub(super) fn opened(key: &Key) -> Arc<Opened> {
        POOLS
            .try_with(|pools| {
                let mut pools = pools.borrow_mut();
                if let Some(opened) = pools.opened.get(key) {
                    return opened.clone();
                }
                // Keys no connection holds any more go before a new one comes in (the sweep
                // does it too, but only runs on an HTTP/1.1 check-in).
                if pools.opened.len() >= OPENED_PRUNE_AT {
                    pools
                        .opened
                        .retain(|_, opened| Arc::strong_count(opened) > 1 || opened.open() > 0);
                }
                let opened = Arc::new(Opened::default());
                pools.opened.insert(key.clone(), opened.clone());
                opened
            })
            // A thread being torn down: a count of its own, which bounds nothing for long.
            .unwrap_or_default()
    }

    /// Whether this worker holds an idle connection for `key`.
    pub(super) fn has_idle(key: &Key) -> bool {
        POOLS
            .try_with(|pools| {
                pools
                    .borrow()
                    .h1
                    .get(key)
                    .is_some_and(|list| !list.is_empty())
            })
            .unwrap_or(false)
    }

    /// Returns a connection after a clean exchange, closing the oldest past the limit.
    pub(super) fn checkin(key: Key, idle: Conn, max_idle: usize, idle_timeout: Duration) {
        let now = idle.since;
        let mut dropped = Vec::new();
        // A thread being torn down has no pool left: the connection is closed instead.
        let _ = POOLS.try_with(|pools| {
            let mut pools = pools.borrow_mut();
            if max_idle == 0 {
                dropped.push(idle);
                return;
            }
            let list = pools.h1.entry(key).or_default();
            while list.len() >= max_idle {
                dropped.extend(list.pop_front());
            }
            idle.slot.notify_freed();
            list.push_back(idle);
            if pools.next_sweep.is_none_or(|next| now >= next) {
                pools.next_sweep = Some(now + SWEEP_INTERVAL);
                sweep(&mut pools, now, idle_timeout, &mut dropped);
            }
        });
        drop(dropped);
    }

    /// Closes idle connections older than `idle_timeout` under every key.
    fn sweep(pools: &mut Pools, now: Instant, idle_timeout: Duration, dropped: &mut Vec<Conn>) {
        pools.h1.retain(|_, list| {
            while list
                .front()
                .is_some_and(|oldest| now.saturating_duration_since(oldest.since) >= idle_timeout)
            {
                dropped.extend(list.pop_front());
            }
            !list.is_empty()
        });
        pools.h2.retain(|_, sender| !sender.is_closed());
        // Counts no connection holds any more.
        pools
            .opened
            .retain(|_, opened| Arc::strong_count(opened) > 1 || opened.open() > 0);
    }

    pub(super) fn checkout_h2(key: &Key) -> Option<http2::SendRequest<Body>> {
        POOLS
            .try_with(|pools| {
                let mut pools = pools.borrow_mut();
                match pools.h2.get(key) {
                    Some(sender) if !sender.is_closed() => Some(sender.clone()),
                    Some(_) => {
                        pools.h2.remove(key);
                        None
                    }
                    None => None,
                }
            })
            .ok()
            .flatten()
    }

    pub(super) fn forget_h2(key: &Key) {
        let _ = POOLS.try_with(|pools| pools.borrow_mut().h2.remove(key));
    }

    pub(super) fn store_h2(key: Key, sender: http2::SendRequest<Body>) {
        let _ = POOLS.try_with(|pools| pools.borrow_mut().h2.insert(key, sender));
    }

    /// The most recent idle connection for `key`, as it is (tests of the exchange's refusal).
    #[cfg(test)]
    pub(super) fn take_unprobed(key: &Key) -> Option<Conn> {
        POOLS.with(|pools| pools.borrow_mut().h1.get_mut(key)?.pop_back())
    }

    /// Idle HTTP/1.1 connections this thread holds for `key` (tests).
    #[cfg(test)]
    pub(super) fn idle_count(key: &Key) -> usize {
        POOLS.with(|pools| pools.borrow().h1.get(key).map_or(0, VecDeque::len))
    }
}

/// An upstream socket, plain or TLS, so both kinds share one pool type.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(context, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(context, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write_vectored(context, bufs),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(context, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(stream) => stream.is_write_vectored(),
            Stream::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(context),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

#[cfg(test)]
mod tests;
