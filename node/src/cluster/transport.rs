//! Node-to-node links: QUIC with mutual TLS against the cluster CA.
//!
//! Why QUIC: one connection per peer carries any number of independent streams, so a large
//! snapshot transfer or a long-lived edge subscription never holds up a Raft heartbeat (no
//! head-of-line blocking as on one TCP connection), and connection set-up is one round trip on
//! links that may have 50–100 ms RTT.
//!
//! Why mutual TLS: every link is authenticated in both directions by certificates from the
//! cluster's own CA ([`super::certs`]). The server side *requires* a client certificate, and the
//! handler is told who the verified peer is ([`PeerIdentity`]), so it can refuse, say, Raft RPCs
//! from the admin certificate. Clients verify the server as [`CLUSTER_SERVER_NAME`], which every
//! node certificate carries, because nodes are dialed by IP address.
//!
//! Protocol: one request per bidirectional stream. Each message is a frame
//! `[u32 big-endian length][codec::encode(value)]`; the client writes one [`NodeRequest`] and
//! finishes its side; the server answers with one [`NodeResponse`], or, for
//! [`NodeRequest::Subscribe`], with a sequence of [`EdgeUpdate`] frames until it finishes the
//! stream. A frame longer than [`MAX_FRAME_BYTES`] is refused before anything is allocated for
//! it, and a body is only buffered as its bytes arrive.
//!
//! Errors: [`TransportError::Unreachable`] means "try again later" (connect failures, closed or
//! lost connections; Raft backs off on it), [`TransportError::Refused`] means the peer (or we)
//! rejected the TLS handshake or identity, which a retry will not fix.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use portico_proto::cluster::{EdgeUpdate, NodeRequest, NodeResponse, Subscribe};
use portico_proto::codec;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

use super::certs::{CLUSTER_SERVER_NAME, ClusterTls, PeerIdentity, identity_of};

/// The ALPN protocol of cluster links.
pub const ALPN: &[u8] = b"portico/1";

/// The largest frame either side accepts: room for a full state snapshot.
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// Close after this long without any packet; keep-alives keep healthy idle links open. Longer
/// than any election timeout, so a link is not torn down while Raft still counts on it.
/// A peer that says nothing for this long is gone (keep-alives flow every `KEEP_ALIVE`); it
/// bounds how long a Raft RPC or an edge subscription can sit on a dead path.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// Per-stream and per-connection flow-control windows, sized so that a snapshot moves at a
/// useful rate over a 100 ms RTT (window / RTT ≈ 80 MB/s per stream).
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

/// How many updates a subscriber may have buffered before reading stops (and QUIC flow control
/// pushes back on the sender).
const SUBSCRIBE_BUFFER: usize = 16;

/// Application error codes on streams and connections.
const CODE_BAD_REQUEST: u32 = 1;
const CODE_HANDLER_FAILED: u32 = 2;
const CODE_UNKNOWN_IDENTITY: u32 = 3;
const CODE_ENDPOINT_CLOSED: u32 = 4;

/// A boxed, sendable future (no `futures` crate needed).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a node does with the requests it receives.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request from `peer` (identity taken from its verified certificate).
    fn handle(&self, peer: PeerIdentity, request: NodeRequest) -> BoxFuture<'static, Reply>;
}

/// A handler's answer to one request.
#[derive(Debug)]
pub enum Reply {
    Response(NodeResponse),
    /// For `Subscribe`: the updates to write until the sender is dropped (the stream is then
    /// finished) or the peer goes away (the receiver is then dropped).
    Stream(mpsc::Receiver<EdgeUpdate>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer could not be reached or the connection was lost; retry later.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    #[error("timed out")]
    Timeout,
    /// The peer sent something that is not a valid frame, or ended the stream too early.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The TLS handshake or the peer's identity was rejected, by either side.
    #[error("refused: {0}")]
    Refused(String),
}

/// A node's (or the admin's) QUIC endpoint: the server for its peers and the client that dials
/// them, with one cached connection per peer address.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: quinn::Endpoint,
    /// Whether this endpoint accepts connections (node certificates) or only dials (admin).
    serving: bool,
    /// One slot per peer address; its async lock serialises dialing, so concurrent calls to a
    /// peer that is down make one connection attempt, not one each.
    connections: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<Option<quinn::Connection>>>>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("local_addr", &self.inner.endpoint.local_addr().ok())
            .field("serving", &self.inner.serving)
            .finish()
    }
}

impl Transport {
    /// Binds the UDP socket. A node certificate makes the endpoint a server and a client; the
    /// admin certificate (which is not valid for servers) makes it a client only. Must be
    /// called within a tokio runtime.
    pub fn bind(addr: SocketAddr, tls: &ClusterTls) -> anyhow::Result<Transport> {
        let transport = Arc::new(transport_config());
        // Only origins accept links; edges and the admin only dial.
        let serving = matches!(tls.identity, PeerIdentity::Node(_));
        let server = if serving {
            let mut server = quinn::ServerConfig::with_crypto(Arc::new(
                QuicServerConfig::try_from(server_tls(tls)?)
                    .context("TLS config unusable for QUIC")?,
            ));
            server.transport_config(transport.clone());
            Some(server)
        } else {
            None
        };
        let socket = std::net::UdpSocket::bind(addr)
            .with_context(|| format!("binding the cluster endpoint on {addr}"))?;
        let runtime = quinn::default_runtime().context("no async runtime for QUIC")?;
        let mut endpoint = quinn::Endpoint::new(endpoint_config(tls), server, socket, runtime)
            .with_context(|| format!("binding the cluster endpoint on {addr}"))?;
        let mut client = quinn::ClientConfig::new(Arc::new(
            QuicClientConfig::try_from(client_tls(tls)?).context("TLS config unusable for QUIC")?,
        ));
        client.transport_config(transport);
        endpoint.set_default_client_config(client);
        Ok(Transport {
            inner: Arc::new(Inner {
                endpoint,
                serving,
                connections: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner
            .endpoint
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// One request/response on a new bi stream; the connection per address is cached and
    /// re-dialed when closed.
    pub async fn call(
        &self,
        addr: SocketAddr,
        request: &NodeRequest,
        timeout: Duration,
    ) -> Result<NodeResponse, TransportError> {
        tokio::time::timeout(timeout, async {
            let connection = self.connection(addr).await?;
            let (mut send, mut recv) = open(&connection).await?;
            let sent = async {
                write_frame(&mut send, request).await?;
                send.finish()
                    .map_err(|_| FrameError::Io("stream closed".into()))
            }
            .await;
            if let Err(error) = sent {
                return Err(stream_error(&connection, error));
            }
            match read_frame::<NodeResponse, _>(&mut recv).await {
                Ok(Some(response)) => Ok(response),
                Ok(None) => Err(stream_error(
                    &connection,
                    FrameError::Protocol("the stream ended without a response".into()),
                )),
                Err(error) => Err(stream_error(&connection, error)),
            }
        })
        .await
        .map_err(|_| {
            // The peer may be gone without a word (kill -9, a cut link): do not keep sending
            // the next call into the same connection.
            self.evict(addr);
            TransportError::Timeout
        })?
    }

    /// Drops (and closes) the cached connection to `addr`.
    fn evict(&self, addr: SocketAddr) {
        let slot = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&addr);
        if let Some(slot) = slot
            && let Ok(slot) = slot.try_lock()
            && let Some(connection) = slot.as_ref()
        {
            connection.close(CODE_ENDPOINT_CLOSED.into(), b"timed out");
        }
    }

    /// Sends `Subscribe` on a new bi stream and returns a receiver of updates read from it (ends
    /// when the stream or connection ends). `timeout` bounds connecting and sending the request;
    /// a refusal that TLS 1.3 only reports after the handshake arrives as the receiver's first
    /// item.
    pub async fn subscribe(
        &self,
        addr: SocketAddr,
        subscribe: &Subscribe,
        timeout: Duration,
    ) -> Result<mpsc::Receiver<Result<EdgeUpdate, TransportError>>, TransportError> {
        let request = NodeRequest::Subscribe(subscribe.clone());
        let (connection, mut recv) = tokio::time::timeout(timeout, async {
            let connection = self.connection(addr).await?;
            let (mut send, recv) = open(&connection).await?;
            let sent = async {
                write_frame(&mut send, &request).await?;
                send.finish()
                    .map_err(|_| FrameError::Io("stream closed".into()))
            }
            .await;
            match sent {
                Ok(()) => Ok((connection, recv)),
                Err(error) => Err(stream_error(&connection, error)),
            }
        })
        .await
        .map_err(|_| {
            self.evict(addr);
            TransportError::Timeout
        })??;

        let (tx, rx) = mpsc::channel(SUBSCRIBE_BUFFER);
        tokio::spawn(async move {
            loop {
                let item = tokio::select! {
                    // The subscriber went away: dropping `recv` tells the server to stop.
                    () = tx.closed() => return,
                    frame = read_frame::<EdgeUpdate, _>(&mut recv) => frame,
                };
                let item = match item {
                    Ok(Some(update)) => Ok(update),
                    Ok(None) => return,
                    Err(error) => Err(stream_error(&connection, error)),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// Serves incoming connections until the endpoint closes. Each connection, and each stream
    /// on it, is handled in its own task.
    pub fn serve(&self, handler: Arc<dyn Handler>) -> tokio::task::JoinHandle<()> {
        let endpoint = self.inner.endpoint.clone();
        let serving = self.inner.serving;
        tokio::spawn(async move {
            if !serving {
                return;
            }
            while let Some(incoming) = endpoint.accept().await {
                tokio::spawn(serve_connection(incoming, handler.clone()));
            }
        })
    }

    /// Closes every connection and the endpoint, and waits (bounded) for peers to be told.
    pub async fn close(&self) {
        self.inner
            .endpoint
            .close(CODE_ENDPOINT_CLOSED.into(), b"node shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.inner.endpoint.wait_idle()).await;
    }

    /// The cached connection to `addr`, or a new one.
    async fn connection(&self, addr: SocketAddr) -> Result<quinn::Connection, TransportError> {
        let slot = {
            let mut connections = self
                .inner
                .connections
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            connections.entry(addr).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(connection) = slot.as_ref()
            && connection.close_reason().is_none()
        {
            return Ok(connection.clone());
        }
        *slot = None;
        let connecting = self
            .inner
            .endpoint
            .connect(addr, CLUSTER_SERVER_NAME)
            .map_err(|error| TransportError::Unreachable(format!("{addr}: {error}")))?;
        let connection = connecting.await.map_err(connection_error)?;
        *slot = Some(connection.clone());
        Ok(connection)
    }
}

/// A stateless-reset key derived from the node's private key, so it is the same across
/// restarts: when a node is killed and restarted, the first packet a peer sends on its old
/// connection is answered with a reset and the peer re-dials at once, instead of waiting out
/// the idle timeout on a connection nobody holds any more.
fn endpoint_config(tls: &ClusterTls) -> quinn::EndpointConfig {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"portico quic stateless reset v1");
    context.update(tls.key.secret_der());
    let derived = context.finish();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref());
    quinn::EndpointConfig::new(Arc::new(key))
}

fn transport_config() -> quinn::TransportConfig {
    let mut config = quinn::TransportConfig::default();
    // 30 s always fits in a VarInt of milliseconds.
    config.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    config.keep_alive_interval(Some(KEEP_ALIVE));
    config.stream_receive_window(STREAM_WINDOW.into());
    config.receive_window(CONNECTION_WINDOW.into());
    config.send_window(u64::from(CONNECTION_WINDOW));
    config
}

fn roots(tls: &ClusterTls) -> anyhow::Result<Arc<rustls::RootCertStore>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(tls.ca.clone())
        .context("the cluster CA certificate is unusable")?;
    Ok(Arc::new(roots))
}

/// TLS 1.3 only (QUIC requires it); client certificates required and verified against the
/// cluster CA only.
fn server_tls(tls: &ClusterTls) -> anyhow::Result<rustls::ServerConfig> {
    let provider = crate::tls::provider();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(tls)?, provider.clone())
            .build()
            .context("building the client certificate verifier")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(tls.chain.clone(), tls.key.clone_key())
        .context("the cluster certificate does not match its key")?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Trusts only the cluster CA and presents this node's (or the admin's) certificate.
fn client_tls(tls: &ClusterTls) -> anyhow::Result<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS protocol versions")?
        .with_root_certificates(roots(tls)?)
        .with_client_auth_cert(tls.chain.clone(), tls.key.clone_key())
        .context("the cluster certificate does not match its key")?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

async fn open(
    connection: &quinn::Connection,
) -> Result<(quinn::SendStream, quinn::RecvStream), TransportError> {
    connection.open_bi().await.map_err(connection_error)
}

/// Maps a stream failure: if the connection is gone, its reason says more than the stream's.
fn stream_error(connection: &quinn::Connection, error: FrameError) -> TransportError {
    if let Some(reason) = connection.close_reason() {
        return connection_error(reason);
    }
    match error {
        FrameError::Io(message) => TransportError::Unreachable(message),
        FrameError::TooLarge { .. } | FrameError::Protocol(_) => {
            TransportError::Protocol(error.to_string())
        }
    }
}

fn connection_error(error: quinn::ConnectionError) -> TransportError {
    use quinn::ConnectionError as E;
    let is_crypto = |code: quinn::TransportErrorCode| (0x100..0x200).contains(&u64::from(code));
    match &error {
        // A TLS alert, from the peer or raised here (e.g. an untrusted certificate).
        E::ConnectionClosed(close) if is_crypto(close.error_code) => {
            TransportError::Refused(error.to_string())
        }
        E::TransportError(inner) if is_crypto(inner.code) => {
            TransportError::Refused(error.to_string())
        }
        E::ApplicationClosed(close) if close.error_code == CODE_UNKNOWN_IDENTITY.into() => {
            TransportError::Refused(error.to_string())
        }
        _ => TransportError::Unreachable(error.to_string()),
    }
}

async fn serve_connection(incoming: quinn::Incoming, handler: Arc<dyn Handler>) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            tracing::debug!(%remote, %error, "cluster handshake failed");
            return;
        }
    };
    let Some(peer) = peer_identity(&connection) else {
        tracing::warn!(%remote, "cluster peer certificate has no Portico identity; closing");
        connection.close(CODE_UNKNOWN_IDENTITY.into(), b"unknown peer identity");
        return;
    };
    tracing::debug!(%remote, %peer, "cluster peer connected");
    loop {
        match connection.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(peer, send, recv, handler.clone()));
            }
            Err(error) => {
                tracing::debug!(%remote, %peer, %error, "cluster connection ended");
                return;
            }
        }
    }
}

fn peer_identity(connection: &quinn::Connection) -> Option<PeerIdentity> {
    let certs = connection
        .peer_identity()?
        .downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
        .ok()?;
    identity_of(certs.first()?)
}

async fn serve_stream(
    peer: PeerIdentity,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    handler: Arc<dyn Handler>,
) {
    let request = match read_frame::<NodeRequest, _>(&mut recv).await {
        Ok(Some(request)) => request,
        Ok(None) => return,
        Err(error) => {
            tracing::debug!(%peer, %error, "bad request frame");
            let _ = recv.stop(CODE_BAD_REQUEST.into());
            let _ = send.reset(CODE_BAD_REQUEST.into());
            return;
        }
    };
    drop(recv);
    // The handler runs in its own task so that a panic (in `handle` or in its future) is
    // caught here and costs only this stream.
    let reply = tokio::spawn(async move {
        let future = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handler.handle(peer, request)
        }));
        match future {
            Ok(future) => Some(future.await),
            Err(_) => None,
        }
    })
    .await;
    let reply = match reply {
        Ok(Some(reply)) => reply,
        Ok(None) | Err(_) => {
            tracing::error!(%peer, "cluster request handler panicked");
            let _ = send.reset(CODE_HANDLER_FAILED.into());
            return;
        }
    };
    match reply {
        Reply::Response(response) => {
            if let Err(error) = write_frame(&mut send, &response).await {
                tracing::debug!(%peer, %error, "could not send the response");
                let _ = send.reset(CODE_HANDLER_FAILED.into());
                return;
            }
            let _ = send.finish();
        }
        Reply::Stream(mut updates) => {
            // Resolves when the subscriber stops reading or the connection goes.
            let stopped = send.stopped();
            tokio::pin!(stopped);
            loop {
                let update = tokio::select! {
                    _ = &mut stopped => return,
                    update = updates.recv() => update,
                };
                let Some(update) = update else {
                    let _ = send.finish();
                    return;
                };
                let written = tokio::select! {
                    _ = &mut stopped => return,
                    written = write_frame(&mut send, &update) => written,
                };
                if let Err(error) = written {
                    tracing::debug!(%peer, %error, "subscription ended");
                    let _ = send.reset(CODE_HANDLER_FAILED.into());
                    return;
                }
            }
        }
    }
}

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes")]
    TooLarge { len: u64 },
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Io(String),
}

/// Writes `[u32 BE length][codec::encode(value)]`.
pub(crate) async fn write_frame<T: Serialize, W: AsyncWrite + Unpin>(
    writer: &mut W,
    value: &T,
) -> Result<(), FrameError> {
    let body = codec::encode(value).map_err(|error| FrameError::Protocol(error.to_string()))?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len: body.len() as u64,
        });
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
        len: body.len() as u64,
    })?;
    writer
        .write_all(&len.to_be_bytes())
        .await
        .map_err(|error| FrameError::Io(error.to_string()))?;
    writer
        .write_all(&body)
        .await
        .map_err(|error| FrameError::Io(error.to_string()))
}

/// Reads one frame; `Ok(None)` if the stream ended cleanly before a frame began. The announced
/// length is checked against [`MAX_FRAME_BYTES`] before anything is allocated, and the body
/// buffer grows only as bytes actually arrive.
pub(crate) async fn read_frame<T: DeserializeOwned, R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        let read = reader
            .read(&mut header[filled..])
            .await
            .map_err(|error| FrameError::Io(error.to_string()))?;
        if read == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(FrameError::Protocol("truncated frame header".into()));
        }
        filled += read;
    }
    let len = u32::from_be_bytes(header);
    let len_usize = usize::try_from(len).map_err(|_| FrameError::TooLarge {
        len: u64::from(len),
    })?;
    if len_usize > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
        });
    }
    let mut body = Vec::with_capacity(len_usize.min(64 * 1024));
    let read = (&mut *reader)
        .take(u64::from(len))
        .read_to_end(&mut body)
        .await
        .map_err(|error| FrameError::Io(error.to_string()))?;
    if read != len_usize {
        return Err(FrameError::Protocol(format!(
            "frame truncated: {read} of {len} bytes"
        )));
    }
    codec::decode(&body)
        .map(Some)
        .map_err(|error| FrameError::Protocol(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_proto::cluster::NodeResponse;

    #[tokio::test]
    async fn frames_round_trip() {
        let mut buffer = Vec::new();
        write_frame(&mut buffer, &NodeResponse::Done).await.unwrap();
        write_frame(&mut buffer, &NodeResponse::Error("x".into()))
            .await
            .unwrap();
        let mut reader = buffer.as_slice();
        let first: Option<NodeResponse> = read_frame(&mut reader).await.unwrap();
        let second: Option<NodeResponse> = read_frame(&mut reader).await.unwrap();
        let end: Option<NodeResponse> = read_frame(&mut reader).await.unwrap();
        assert_eq!(first, Some(NodeResponse::Done));
        assert_eq!(second, Some(NodeResponse::Error("x".into())));
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_from_its_header() {
        // Only the header is there: had the reader tried to allocate or read the body, it would
        // report a truncated frame instead.
        let header = u32::MAX.to_be_bytes();
        let result = read_frame::<NodeResponse, _>(&mut header.as_slice()).await;
        assert!(
            matches!(result, Err(FrameError::TooLarge { len }) if len == u64::from(u32::MAX)),
            "{result:?}"
        );
        let just_over = u32::try_from(MAX_FRAME_BYTES + 1).unwrap().to_be_bytes();
        let result = read_frame::<NodeResponse, _>(&mut just_over.as_slice()).await;
        assert!(
            matches!(result, Err(FrameError::TooLarge { .. })),
            "{result:?}"
        );
    }

    /// Fuzzing the frame decoder (a bounded proptest; `PROPTEST_CASES=100000 cargo test -p
    /// portico --lib cluster::transport` runs it longer): whatever bytes a peer sends, reading
    /// frames never panics, never reads past what it was given, refuses an oversized length
    /// from the header, and whatever decodes re-encodes to the bytes it came from.
    mod fuzz {
        use super::*;
        use portico_proto::cluster::NodeRequest;
        use proptest::prelude::*;

        /// Valid frames of a few shapes, so mutations land near the decoder's accepted set
        /// rather than only in noise it refuses at the first byte.
        fn valid_frames() -> impl Strategy<Value = Vec<u8>> {
            let requests = prop_oneof![
                Just(NodeRequest::Status),
                Just(NodeRequest::ReadIndex),
                ".{0,40}".prop_map(|addr| NodeRequest::AddLearner { node_id: 7, addr }),
                proptest::collection::vec(any::<u64>(), 0..8)
                    .prop_map(|voters| NodeRequest::ChangeVoters { voters }),
                (".{0,20}", any::<u64>()).prop_map(|(region, version)| {
                    NodeRequest::EdgeReport {
                        edge_id: 3,
                        region,
                        version,
                    }
                }),
            ];
            proptest::collection::vec(requests, 1..4).prop_map(|requests| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    let mut bytes = Vec::new();
                    for request in &requests {
                        write_frame(&mut bytes, request).await.expect("encodes");
                    }
                    bytes
                })
            })
        }

        /// Noise, valid frames, and valid frames with bytes flipped, cut or inserted.
        fn inputs() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..256),
                valid_frames(),
                (valid_frames(), any::<prop::sample::Index>(), any::<u8>()).prop_map(
                    |(mut bytes, at, xor)| {
                        let at = at.index(bytes.len());
                        bytes[at] ^= xor.max(1);
                        bytes
                    }
                ),
                (valid_frames(), any::<prop::sample::Index>())
                    .prop_map(|(bytes, at)| bytes[..at.index(bytes.len())].to_vec()),
                (
                    valid_frames(),
                    any::<prop::sample::Index>(),
                    proptest::collection::vec(any::<u8>(), 1..16)
                )
                    .prop_map(|(mut bytes, at, noise)| {
                        let at = at.index(bytes.len());
                        bytes.splice(at..at, noise);
                        bytes
                    }),
            ]
        }

        proptest! {
            #[test]
            fn reading_any_bytes_is_safe(input in inputs()) {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    let mut reader = input.as_slice();
                    // Each frame consumes at least its 4-byte header: bounded by the input.
                    for _ in 0..=input.len() / 4 {
                        let before = reader.len();
                        match read_frame::<NodeRequest, _>(&mut reader).await {
                            Ok(None) => break,
                            Ok(Some(request)) => {
                                let consumed = &input[input.len() - before..input.len() - reader.len()];
                                let mut again = Vec::new();
                                write_frame(&mut again, &request).await.expect("re-encodes");
                                prop_assert_eq!(again.as_slice(), consumed);
                            }
                            Err(FrameError::TooLarge { len }) => {
                                prop_assert!(len > MAX_FRAME_BYTES as u64);
                                prop_assert_eq!(before - reader.len(), 4, "refused from the header");
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    // The same bytes read as the other direction's messages.
                    let mut reader = input.as_slice();
                    for _ in 0..=input.len() / 4 {
                        match read_frame::<NodeResponse, _>(&mut reader).await {
                            Ok(Some(_)) => {}
                            _ => break,
                        }
                    }
                    Ok(())
                })?;
            }
        }
    }

    #[tokio::test]
    async fn truncated_and_garbage_frames_are_protocol_errors() {
        let result = read_frame::<NodeResponse, _>(&mut [0u8, 0].as_slice()).await;
        assert!(matches!(result, Err(FrameError::Protocol(_))), "{result:?}");
        let mut short = 10u32.to_be_bytes().to_vec();
        short.extend_from_slice(&[1, 2, 3]);
        let result = read_frame::<NodeResponse, _>(&mut short.as_slice()).await;
        assert!(matches!(result, Err(FrameError::Protocol(_))), "{result:?}");
        let mut garbage = 3u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(&[9, 9, 9]);
        let result = read_frame::<NodeResponse, _>(&mut garbage.as_slice()).await;
        assert!(matches!(result, Err(FrameError::Protocol(_))), "{result:?}");
    }
}
