//! The edge listener: TLS with HTTP/1.1 and HTTP/2, limits, malformed input, graceful drain.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const API: &str = r#"
openapi: 3.0.1
info: { title: edge, version: "1" }
paths:
  /echo:
    post:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: POST
        uri: http://{{BACKEND}}/echo
  /slow:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://{{BACKEND}}/slow/1000
  /big:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://{{BACKEND}}/big/1048576
  /fn:
    post:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations
  /mock:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: { application/json: '{"statusCode": 200}' }
        responses: { default: { statusCode: "200", responseTemplates: { application/json: '{"ok": true}' } } }
"#;

/// A client that trusts the gateway's self-signed certificate and offers only `alpn`.
fn tls_client(
    gw: &TestGateway,
    alpn: &[u8],
) -> Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
> {
    let cert = CertificateDer::from_pem_file(gw.data_dir.path().join("cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = portico::tls::client_config(roots).unwrap();
    // The connector offers exactly the ALPN protocols of the versions enabled here.
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let https = if alpn == b"h2" {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    let mut builder = Client::builder(TokioExecutor::new());
    if alpn == b"h2" {
        builder.http2_only(true);
    }
    builder.build(https)
}

#[tokio::test]
async fn tls_serves_http1_and_http2() {
    let gw = TestGateway::start(API, &[]).await;
    let url = format!(
        "https://localhost:{}/test/mock",
        gw.node.https_addr.unwrap().port()
    );
    for (alpn, version) in [
        (&b"http/1.1"[..], http::Version::HTTP_11),
        (&b"h2"[..], http::Version::HTTP_2),
    ] {
        let client = tls_client(&gw, alpn);
        let request = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
        let response = tokio::time::timeout(TEST_TIMEOUT, client.request(request))
            .await
            .unwrap()
            .unwrap();
        let reply = read(response).await;
        assert_eq!(reply.version, version);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json(), serde_json::json!({"ok": true}));
        assert!(reply.headers.contains_key("x-amzn-requestid"));
    }
    // HTTP/2 through the proxy integration, with a 1 MiB body streamed back.
    let client = tls_client(&gw, b"h2");
    let big = format!(
        "https://localhost:{}/test/big",
        gw.node.https_addr.unwrap().port()
    );
    let response = client
        .request(Request::get(big).body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let reply = read(response).await;
    assert_eq!(reply.body.len(), 1024 * 1024);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_self_signed_certificate_is_kept_across_restarts() {
    let gw = TestGateway::start(API, &[]).await;
    let first = std::fs::read(gw.data_dir.path().join("cert.pem")).unwrap();
    let data_dir = gw.data_dir.path().to_path_buf();
    let mut options = portico::dev::DevOptions::new(data_dir.clone());
    options.api_file = Some(data_dir.join("api.yaml"));
    options.http = None;
    options.https = Some("127.0.0.1:0".parse().unwrap());
    let again = portico::dev::DevNode::start(options).await.unwrap();
    assert_eq!(std::fs::read(data_dir.join("cert.pem")).unwrap(), first);
    again.shutdown().await;
    gw.shutdown().await;
}

fn chunked_body(
    total: usize,
) -> StreamBody<impl futures_util::Stream<Item = Result<hyper::body::Frame<Bytes>, std::io::Error>>>
{
    let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
    let count = total.div_ceil(chunk.len());
    StreamBody::new(futures_util::stream::iter(
        (0..count).map(move |_| Ok(hyper::body::Frame::data(chunk.clone()))),
    ))
}

#[tokio::test]
async fn bodies_over_10_mb_get_413() {
    let gw = TestGateway::start(API, &[]).await;
    // Declared by Content-Length.
    let request = Request::post(gw.url("/echo"))
        .body(Full::new(Bytes::from(vec![b'a'; 10 * 1024 * 1024 + 1])))
        .unwrap();
    assert_gateway_error(
        &send(request).await,
        413,
        "RequestTooLargeException",
        "Request Too Long",
    );
    // Streamed without a length, to a streaming proxy route and to a buffering function route.
    let client = Client::builder(TokioExecutor::new()).build_http();
    for path in ["/echo", "/fn"] {
        let request = Request::post(gw.url(path))
            .body(chunked_body(11 * 1024 * 1024))
            .unwrap();
        let response = tokio::time::timeout(TEST_TIMEOUT, client.request(request))
            .await
            .expect("in time");
        match response {
            Ok(response) => {
                let reply = read(response).await;
                assert_gateway_error(&reply, 413, "RequestTooLargeException", "Request Too Long");
            }
            Err(error) => panic!("{path}: no 413 answer: {error:?}"),
        }
    }
    // Exactly at the limit passes.
    let request = Request::post(gw.url("/echo"))
        .body(Full::new(Bytes::from(vec![b'a'; 10 * 1024 * 1024])))
        .unwrap();
    assert_eq!(send(request).await.status, 200);
    gw.shutdown().await;
}

async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(TEST_TIMEOUT, stream.read(&mut buffer))
        .await
        .expect("an answer in time")
        .unwrap_or(0);
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_and_the_node_keeps_serving() {
    let gw = TestGateway::start(API, &[]).await;
    let addr = gw.node.http_addr.unwrap();
    let answer = raw_exchange(addr, b"THIS IS NOT HTTP\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = raw_exchange(
        addr,
        b"GET /test/mock HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let huge = format!(
        "GET /test/mock HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let answer = raw_exchange(addr, huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A path that is not valid percent-encoding or UTF-8 still routes safely.
    let answer = raw_exchange(
        addr,
        b"GET /test/%ff%fe/\xc3\x28 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert_eq!(get(&gw.url("/mock")).await.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let gw = TestGateway::start(API, &[]).await;
    let url = gw.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let addr = gw.node.http_addr.unwrap();
    let started = std::time::Instant::now();
    gw.shutdown().await;
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "the in-flight request completes");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The listener is gone: new connections are refused.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
