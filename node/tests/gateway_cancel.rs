//! A backend request is cancelled as soon as its client goes away (issue #14 item 2): the
//! backend connection closes at once instead of living on until the integration timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico::accept::{Shutdown, Workers};
use portico::config::compile;
use portico::integrate::{IntegrationSettings, Integrations, client::BackendClient};
use portico::pipeline::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const API: &str = r#"
openapi: 3.0.1
info: { title: cancel, version: "1" }
paths:
  /slow:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://BACKEND/slow
"#;

/// A backend that reads each request head and never answers; it reports when a request
/// arrived and when its connection was closed by the gateway.
async fn silent_backend() -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<(&'static str, Instant)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (events, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let events = events.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let mut head = Vec::new();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                loop {
                    let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await;
                    match read {
                        Ok(Ok(0)) | Ok(Err(_)) => {
                            let _ = events.send(("closed", Instant::now()));
                            return;
                        }
                        Ok(Ok(read)) => {
                            head.extend_from_slice(&buffer[..read]);
                            if head.windows(4).any(|window| window == b"\r\n\r\n") {
                                let _ = events.send(("request", Instant::now()));
                                head.clear();
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
        }
    });
    (addr, receiver)
}

/// The gateway on one request worker, proxying `/prod/slow` to `backend`.
struct GatewayUnderTest {
    addr: std::net::SocketAddr,
    shutdown: Shutdown,
    listeners: Vec<portico::accept::Listener>,
    _workers: Workers,
}

impl GatewayUnderTest {
    fn start(backend: std::net::SocketAddr) -> GatewayUnderTest {
        let text = API.replace("BACKEND", &backend.to_string());
        let (state, _) = portico::dev::build_state("api.yaml", &text, "prod", &[], 0).unwrap();
        let snapshot = compile::compile(&state, true).unwrap();
        let integrations = Integrations {
            client: BackendClient::new(None).unwrap(),
            settings: IntegrationSettings::default(),
        };
        let gateway = Arc::new(Gateway::new(snapshot, integrations));
        let shutdown = Shutdown::new();
        let workers = Workers::start(1).unwrap();
        let listeners = portico::serve::serve_gateway(
            &workers,
            "127.0.0.1:0".parse().unwrap(),
            None,
            &gateway,
            &shutdown,
            Duration::from_secs(1),
        )
        .unwrap();
        GatewayUnderTest {
            addr: listeners[0].local_addr,
            shutdown,
            listeners,
            _workers: workers,
        }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        for listener in self.listeners {
            listener.stopped().await;
        }
    }
}

#[tokio::test]
async fn the_backend_connection_closes_when_the_client_goes_away() {
    let (backend, mut events) = silent_backend().await;
    let gateway = GatewayUnderTest::start(backend);
    let addr = gateway.addr;

    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /prod/slow HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (what, _) = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the request never reached the backend")
        .unwrap();
    assert_eq!(what, "request");

    let gone = Instant::now();
    drop(client);
    let (what, at) = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("the backend connection outlived its client by 20 s")
        .unwrap();
    assert_eq!(what, "closed");
    let after = at.duration_since(gone);
    println!("backend connection closed {after:?} after the client left");
    assert!(after < Duration::from_secs(3), "{after:?}");

    gateway.stop().await;
}

#[tokio::test]
async fn the_backend_connection_closes_when_an_http2_client_goes_away() {
    let (backend, mut events) = silent_backend().await;
    let gateway = GatewayUnderTest::start(backend);
    let addr = gateway.addr;

    // HTTP/2 with prior knowledge: one stream, then the whole connection goes.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{addr}/prod/slow"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let pending = tokio::spawn(async move { sender.send_request(request).await });
    let (what, _) = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the request never reached the backend")
        .unwrap();
    assert_eq!(what, "request");

    let gone = Instant::now();
    pending.abort();
    driver.abort();
    let (what, at) = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("the backend connection outlived its HTTP/2 client by 20 s")
        .unwrap();
    assert_eq!(what, "closed");
    let after = at.duration_since(gone);
    println!("backend connection closed {after:?} after the HTTP/2 client left");
    assert!(after < Duration::from_secs(3), "{after:?}");

    gateway.stop().await;
}
