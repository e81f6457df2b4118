//! The pool against scripted backends on 127.0.0.1: what the backend sees (connections
//! accepted) is the oracle, plus the worker's idle count.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Every test's bound on a single await.
const STEP: Duration = Duration::from_secs(10);

/// How a scripted backend answers each request on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    /// `200 ok` with keep-alive.
    KeepAlive,
    /// `200 ok`, then 20 ms later the backend closes the socket (no `Connection: close`: a
    /// silent close, as a backend's idle timeout does).
    CloseAfterResponse,
    /// Headers announcing 1 MB, 16 KiB of it, then nothing until the client goes away.
    Partial,
}

struct Backend {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    async fn start(script: Script) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let accepted = accepted.clone();
            let requests = requests.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, script, requests.clone()));
                }
            }
        });
        Backend {
            address,
            accepted,
            requests,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head (the tests send no bodies); `false` at end of stream.
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
        if head.len() > 64 * 1024 {
            return false;
        }
    }
    true
}

async fn serve(mut stream: TcpStream, script: Script, requests: Arc<AtomicUsize>) {
    while read_head(&mut stream).await {
        requests.fetch_add(1, Ordering::SeqCst);
        match script {
            Script::KeepAlive | Script::CloseAfterResponse => {
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(reply).await.is_err() {
                    return;
                }
                if script == Script::CloseAfterResponse {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return;
                }
            }
            Script::Partial => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n";
                if stream.write_all(head).await.is_err()
                    || stream.write_all(&[b'x'; 16 * 1024]).await.is_err()
                {
                    return;
                }
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {}
                return;
            }
        }
    }
}

fn client(limits: Limits) -> BackendClient {
    BackendClient::with_limits(None, limits).unwrap()
}

fn get(url: &str) -> Request<Body> {
    Request::get(url).body(crate::body::empty()).unwrap()
}

async fn fetch(client: &BackendClient, url: &str) -> (http::StatusCode, Bytes) {
    let response = tokio::time::timeout(STEP, client.request(false, get(url)))
        .await
        .expect("a response head in time")
        .expect("a response");
    let status = response.status();
    let body = tokio::time::timeout(STEP, response.into_body().collect())
        .await
        .expect("the body in time")
        .expect("a complete body")
        .to_bytes();
    (status, body)
}

fn key(client: &BackendClient, url: &str) -> Key {
    Target::of(&url.parse().unwrap(), client.inner.id, false)
        .unwrap()
        .key
}

#[tokio::test]
async fn a_keep_alive_connection_serves_sequential_requests() {
    let backend = Backend::start(Script::KeepAlive).await;
    let client = client(Limits::default());
    for _ in 0..3 {
        assert_eq!(
            fetch(&client, &backend.url("/a")).await,
            (http::StatusCode::OK, Bytes::from_static(b"ok"))
        );
    }
    assert_eq!(backend.accepted(), 1);
    assert_eq!(pool::idle_count(&key(&client, &backend.url("/"))), 1);
}

#[tokio::test]
async fn a_body_the_server_never_polls_to_its_end_still_returns_the_connection() {
    // hyper's server drops a sized body after its last byte without polling it for the end;
    // the connection must come back all the same.
    let backend = Backend::start(Script::KeepAlive).await;
    let client = client(Limits::default());
    for _ in 0..2 {
        let response = tokio::time::timeout(STEP, client.request(false, get(&backend.url("/"))))
            .await
            .unwrap()
            .unwrap();
        let mut body = response.into_body();
        let frame = tokio::time::timeout(STEP, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(frame.into_data().unwrap(), "ok");
        assert!(http_body::Body::is_end_stream(&body));
        drop(body);
    }
    assert_eq!(backend.accepted(), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_not_reused() {
    let backend = Backend::start(Script::CloseAfterResponse).await;
    let client = client(Limits::default());
    fetch(&client, &backend.url("/")).await;
    assert_eq!(pool::idle_count(&key(&client, &backend.url("/"))), 1);
    // Let the runtime see the close (in production: whatever ran in between).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        fetch(&client, &backend.url("/")).await,
        (http::StatusCode::OK, Bytes::from_static(b"ok"))
    );
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn a_stale_connection_hands_the_request_back_for_a_retry() {
    let backend = Backend::start(Script::CloseAfterResponse).await;
    let client = client(Limits::default());
    let key = key(&client, &backend.url("/"));
    fetch(&client, &backend.url("/")).await;
    assert_eq!(pool::idle_count(&key), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Past the checkout's probe (which would have dropped it): the exchange itself must refuse
    // the request without writing it, and give it back.
    let idle = pool::take_unprobed(&key).expect("the first connection was pooled");
    let mut request = get("/again");
    request
        .headers_mut()
        .insert(header::HOST, HeaderValue::from_static("backend"));
    match exchange_h1(idle, request, &key, &Limits::default()).await {
        Exchange::Refused(returned, _) => assert_eq!(returned.uri(), "/again"),
        Exchange::Done(result) => panic!("expected a refusal, got {result:?}"),
    }
    assert_eq!(backend.requests.load(Ordering::SeqCst), 1);
    fetch(&client, &backend.url("/")).await;
    assert_eq!(backend.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_dropped_mid_stream_closes_its_connection() {
    let backend = Backend::start(Script::Partial).await;
    let client = client(Limits::default());
    for _ in 0..2 {
        let response = tokio::time::timeout(STEP, client.request(false, get(&backend.url("/"))))
            .await
            .unwrap()
            .unwrap();
        let mut body = response.into_body();
        let frame = tokio::time::timeout(STEP, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(!frame.into_data().unwrap().is_empty());
        drop(body);
    }
    assert_eq!(backend.accepted(), 2);
    assert_eq!(pool::idle_count(&key(&client, &backend.url("/"))), 0);
}

#[tokio::test]
async fn idle_connections_per_host_are_bounded() {
    let backend = Backend::start(Script::KeepAlive).await;
    let client = client(Limits {
        max_idle_per_host: 2,
        ..Limits::default()
    });
    // Four at once need four connections; two stay.
    let url = backend.url("/");
    let responses = futures_util::future::join_all((0..4).map(|_| fetch(&client, &url))).await;
    assert!(responses.iter().all(|(status, _)| *status == 200));
    assert_eq!(backend.accepted(), 4);
    assert_eq!(pool::idle_count(&key(&client, &url)), 2);
    fetch(&client, &url).await;
    assert_eq!(backend.accepted(), 4);
}

#[tokio::test]
async fn idle_connections_expire() {
    let backend = Backend::start(Script::KeepAlive).await;
    let client = client(Limits {
        idle_timeout: Duration::from_millis(50),
        ..Limits::default()
    });
    let url = backend.url("/");
    fetch(&client, &url).await;
    fetch(&client, &url).await;
    assert_eq!(backend.accepted(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    fetch(&client, &url).await;
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn clients_and_verification_modes_never_share_connections() {
    let backend = Backend::start(Script::KeepAlive).await;
    let url = backend.url("/");
    let first = client(Limits::default());
    let second = client(Limits::default());
    fetch(&first, &url).await;
    fetch(&second, &url).await;
    let insecure = tokio::time::timeout(STEP, first.request(true, get(&url)))
        .await
        .unwrap()
        .unwrap();
    insecure.into_body().collect().await.unwrap();
    assert_eq!(backend.accepted(), 3);
}

#[tokio::test]
async fn connect_timeout() {
    // A listener that never accepts, with its queue full: further SYNs are dropped, so a
    // connect hangs until the timeout.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let address = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(address)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    let client = client(Limits {
        connect_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let started = std::time::Instant::now();
    let error = tokio::time::timeout(
        STEP,
        client.request(false, get(&format!("http://{address}/"))),
    )
    .await
    .expect("the client gives up by itself")
    .expect_err("nothing answers");
    assert!(
        matches!(error, UpstreamError::ConnectTimeout { .. }),
        "{error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn tls_handshake_timeout() {
    // Accepts, then says nothing: the TLS handshake cannot finish.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = client(Limits {
        tls_handshake_timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let error = tokio::time::timeout(
        STEP,
        client.request(true, get(&format!("https://{address}/"))),
    )
    .await
    .expect("the client gives up by itself")
    .expect_err("nothing answers");
    assert!(
        matches!(error, UpstreamError::TlsTimeout { .. }),
        "{error:?}"
    );
    silent.abort();
}

#[tokio::test]
async fn refused_connections_and_bad_uris_are_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = client(Limits::default());
    let error = client
        .request(false, get(&format!("http://{address}/")))
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, UpstreamError::Connect { .. }), "{error:?}");
    let error = client
        .request(false, get("ftp://127.0.0.1/"))
        .await
        .expect_err("not http");
    assert!(matches!(error, UpstreamError::BadUri(_)), "{error:?}");
}

/// A TLS backend (dev's self-signed certificate) on hyper-util's auto server, which speaks what
/// ALPN picked; `alpn` is what it offers.
async fn tls_backend(
    alpn: &[&[u8]],
) -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let dir = tempfile::tempdir().unwrap();
    let key = crate::tls::load_or_create_self_signed(dir.path()).unwrap();
    let mut config = crate::tls::server_config(key).unwrap();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(|request: Request<Incoming>| async move {
                            let text = format!("{:?} {}", request.version(), request.uri().path());
                            Ok::<_, std::convert::Infallible>(Response::new(
                                http_body_util::Full::new(Bytes::from(text)),
                            ))
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        }
    });
    (address, accepted, task)
}

#[tokio::test]
async fn h2_is_used_when_a_tls_backend_negotiates_it_and_the_connection_is_shared() {
    let (address, accepted, task) = tls_backend(&[b"h2", b"http/1.1"]).await;
    let client = client(Limits::default());
    let url = format!("https://localhost:{}/two", address.port());
    for _ in 0..2 {
        let response = tokio::time::timeout(STEP, client.request(true, get(&url)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "HTTP/2.0 /two");
    }
    // Concurrent requests share the one connection too.
    let concurrent =
        futures_util::future::join_all((0..4).map(|_| client.request(true, get(&url)))).await;
    assert!(concurrent.iter().all(Result::is_ok));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    task.abort();
}

#[tokio::test]
async fn http1_over_tls_when_the_backend_offers_only_http1() {
    let (address, accepted, task) = tls_backend(&[b"http/1.1"]).await;
    let client = client(Limits::default());
    let url = format!("https://localhost:{}/one", address.port());
    for _ in 0..2 {
        let response = tokio::time::timeout(STEP, client.request(true, get(&url)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.version(), http::Version::HTTP_11);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "HTTP/1.1 /one");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    task.abort();
}

#[tokio::test]
async fn a_verified_client_refuses_an_untrusted_certificate() {
    let (address, _accepted, task) = tls_backend(&[b"h2", b"http/1.1"]).await;
    let client = client(Limits::default());
    let error = client
        .request(
            false,
            get(&format!("https://localhost:{}/", address.port())),
        )
        .await
        .expect_err("self-signed");
    assert!(matches!(error, UpstreamError::Tls { .. }), "{error:?}");
    task.abort();
}

#[test]
fn host_header_keeps_only_non_default_ports() {
    let host = |authority: &str, https| host_header(&authority.parse().unwrap(), https).unwrap();
    assert_eq!(host("backend.internal", false), "backend.internal");
    assert_eq!(host("backend.internal:80", false), "backend.internal");
    assert_eq!(host("backend.internal:443", false), "backend.internal:443");
    assert_eq!(host("backend.internal:443", true), "backend.internal");
    assert_eq!(host("[::1]:8080", true), "[::1]:8080");
}

#[test]
fn the_exchange_future_is_boxed_and_its_connect_path_too() {
    // The request future is part of every proxied request's future, which hyper boxes and the
    // pipeline moves: it must stay a pointer. The exchange inside it must not hold the connect
    // path's TLS and HTTP/2 handshakes inline either (3 KB in a debug build).
    let client = client(Limits::default());
    let future = client.request(false, get("http://127.0.0.1:1/"));
    assert_eq!(
        std::mem::size_of_val(&future),
        2 * std::mem::size_of::<usize>()
    );
    let inner = client.exchange(false, get("http://127.0.0.1:1/"));
    let size = std::mem::size_of_val(&inner);
    assert!(size <= 2048, "the exchange future is {size} bytes");
}

#[tokio::test]
async fn a_request_over_the_per_host_cap_waits_for_a_connection_to_free() {
    let backend = Backend::start(Script::Partial).await;
    let client = client(Limits {
        max_connections_per_host: 1,
        ..Limits::default()
    });
    let url = backend.url("/held");
    // The first response's body never ends: its connection stays busy while it is held.
    let first = tokio::time::timeout(STEP, client.request(false, get(&url)))
        .await
        .unwrap()
        .unwrap();
    let second = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .request(false, get(&url))
                .await
                .map(|response| response.status())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second request did not wait");
    assert_eq!(backend.accepted(), 1);
    // Dropping the first body closes its connection: the waiting request gets the slot.
    drop(first);
    let status = tokio::time::timeout(STEP, second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn a_waiting_request_takes_a_connection_that_went_idle() {
    let backend = Backend::start(Script::KeepAlive).await;
    let client = client(Limits {
        max_connections_per_host: 1,
        ..Limits::default()
    });
    let url = backend.url("/ok");
    let first = tokio::time::timeout(STEP, client.request(false, get(&url)))
        .await
        .unwrap()
        .unwrap();
    let second = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move { fetch(&client, &url).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second.is_finished());
    // Reading the first body to its end puts the connection back idle, for the waiter.
    let body = first.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), b"ok");
    let (status, body) = tokio::time::timeout(STEP, second).await.unwrap().unwrap();
    assert_eq!((status, body.as_ref()), (http::StatusCode::OK, &b"ok"[..]));
    assert_eq!(
        backend.accepted(),
        1,
        "the waiter should reuse the idle connection"
    );
}
