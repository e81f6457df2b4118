//! Hostile and malformed input at the data plane's front (issue #14): RFC 9112 framing and
//! Host rules, the request-target limit, dot segments in greedy paths, stalled bodies, and
//! lingering on refused uploads. Requests are written as raw bytes where a client library
//! would have fixed them up.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use portico::accept::{Listener, Shutdown};
use portico::config::compile;
use portico::integrate::{
    FunctionEndpoints, IntegrationSettings, Integrations, client::BackendClient,
};
use portico::pipeline::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn mock(name: &str) -> String {
    format!(
        r#"
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {{ application/json: '{{"statusCode": 200}}' }}
        responses:
          default:
            statusCode: "200"
            responseParameters: {{ method.response.header.x-route: "'{name}'" }}"#
    )
}

fn api(name: &str) -> String {
    format!(
        r#"
openapi: 3.0.1
info: {{ title: {name}, version: "1" }}
paths:
  /who:
    get:{who}
    post:{who}
  /keyed:
    post:
      security: [ {{ api_key: [] }} ]{who}
  /files/{{proxy+}}:
    get:
      parameters: [ {{ name: proxy, in: path, required: true, schema: {{ type: string }} }} ]
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://{{{{BACKEND}}}}/base/{{proxy}}
  /echo:
    post:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: POST
        uri: http://{{{{BACKEND}}}}/echo
  /fn:
    post:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations
components:
  securitySchemes:
    api_key: {{ type: apiKey, name: x-api-key, in: header }}
"#,
        who = mock(name)
    )
}

/// Two APIs ("first", "second") behind one gateway, with the echo backend and the test
/// functions, a body idle timeout of `idle`.
struct Hostile {
    addr: SocketAddr,
    ids: Vec<String>,
    shutdown: Shutdown,
    _listeners: Vec<Listener>,
    _workers: portico::accept::Workers,
}

impl Hostile {
    async fn start(idle: Duration) -> Hostile {
        let shutdown = Shutdown::new();
        let backend = start_echo_backend(&shutdown).await;
        let functions = start_functions(&shutdown).await;
        let mut state = portico_proto::GatewayState::default();
        let mut ids = Vec::new();
        for name in ["first", "second"] {
            let text = api(name).replace("{{BACKEND}}", &backend.local_addr.to_string());
            let (one, _) = portico::dev::build_state("inline", &text, "prod", &[], 0).unwrap();
            let (id, api) = one.apis.into_iter().next().unwrap();
            ids.push(id.clone());
            state.apis.insert(id, api);
        }
        let snapshot = compile::compile(&state, false).unwrap();
        let integrations = Integrations {
            client: BackendClient::new(None).unwrap(),
            settings: IntegrationSettings {
                functions: FunctionEndpoints {
                    default: Some(format!("http://{}", functions.local_addr)),
                    ..FunctionEndpoints::default()
                },
                ..IntegrationSettings::default()
            },
        };
        let gateway = Arc::new(Gateway::new(snapshot, integrations).with_body_idle_timeout(idle));
        let workers = portico::accept::Workers::start(1).unwrap();
        let mut listeners = portico::serve::serve_gateway(
            &workers,
            "127.0.0.1:0".parse().unwrap(),
            None,
            &gateway,
            &shutdown,
            Duration::from_secs(1),
        )
        .unwrap();
        let addr = listeners[0].local_addr;
        listeners.extend([backend, functions]);
        Hostile {
            addr,
            ids,
            shutdown,
            _listeners: listeners,
            _workers: workers,
        }
    }

    fn host(&self, index: usize) -> String {
        format!("{}.execute-api.example.com", self.ids[index])
    }

    async fn stop(self) {
        self.shutdown.trigger();
        for listener in self._listeners {
            listener.stopped().await;
        }
        drop(self._workers);
    }
}

/// One response read from a raw connection: status, head (lower-cased) and body.
#[derive(Debug)]
struct RawReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.head))
    }

    fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "{}", self.head);
        assert_eq!(self.json(), serde_json::json!({ "message": message }));
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert!(self.header("x-amzn-requestid").is_some(), "{}", self.head);
    }
}

/// Reads one response (Content-Length framed, as the gateway's error and mock answers are).
async fn read_reply(stream: &mut TcpStream) -> RawReply {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let status = head
                .get(9..12)
                .and_then(|code| code.parse().ok())
                .unwrap_or_else(|| panic!("no status line: {head:?}"));
            let mut reply = RawReply {
                status,
                head,
                body: Vec::new(),
            };
            let length: usize = reply
                .header("content-length")
                .and_then(|length| length.parse().ok())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
                    .await
                    .expect("the body in time")
                    .expect("the body read");
                assert!(read > 0, "closed mid-body");
                buffer.extend_from_slice(&chunk[..read]);
            }
            reply.body = buffer[end + 4..end + 4 + length].to_vec();
            return reply;
        }
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("the answer read");
        assert!(
            read > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&buffer)
        );
        buffer.extend_from_slice(&chunk[..read]);
    }
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_reply(&mut stream).await
}

/// Whether the connection is still open (another request on it is answered).
async fn still_serves(stream: &mut TcpStream, host: &str) -> bool {
    let request = format!("GET /prod/who HTTP/1.1\r\nHost: {host}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut buffer = [0u8; 1024];
    match tokio::time::timeout(TEST_TIMEOUT, stream.read(&mut buffer)).await {
        Ok(Ok(read)) => buffer[..read].starts_with(b"HTTP/1.1 200"),
        _ => false,
    }
}

#[tokio::test]
async fn host_rules_of_rfc_9112() {
    let gw = Hostile::start(Duration::from_secs(5)).await;
    let (first, second) = (gw.host(0), gw.host(1));

    // HTTP/1.1 without Host, and with two.
    exchange(gw.addr, b"GET /prod/who HTTP/1.1\r\n\r\n")
        .await
        .assert_error(400, "Missing Host header");
    let two = format!("GET /prod/who HTTP/1.1\r\nHost: {first}\r\nHost: {first}\r\n\r\n");
    exchange(gw.addr, two.as_bytes())
        .await
        .assert_error(400, "Multiple Host headers");
    // Userinfo and other malformed hosts, in Host or in an absolute-form target.
    for host in [
        format!("a@{second}"),
        format!("{first}@{second}"),
        format!("{first}:x"),
        "[::1".to_string(),
    ] {
        let request = format!("GET /prod/who HTTP/1.1\r\nHost: {host}\r\n\r\n");
        exchange(gw.addr, request.as_bytes())
            .await
            .assert_error(400, "Invalid Host header");
    }
    let request = format!("GET http://a@{second}/prod/who HTTP/1.1\r\nHost: {second}\r\n\r\n");
    exchange(gw.addr, request.as_bytes())
        .await
        .assert_error(400, "Invalid Host header");

    // The absolute-form authority wins over Host.
    let request = format!("GET http://{second}/prod/who HTTP/1.1\r\nHost: {first}\r\n\r\n");
    let reply = exchange(gw.addr, request.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    assert_eq!(reply.header("x-route"), Some("second"));

    // Host names are case-insensitive.
    let request = format!(
        "GET /prod/who HTTP/1.1\r\nHost: {}:443\r\n\r\n",
        second.to_ascii_uppercase()
    );
    let reply = exchange(gw.addr, request.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    assert_eq!(reply.header("x-route"), Some("second"));

    // HTTP/1.0 may leave Host out: no API named, as before.
    exchange(gw.addr, b"GET /prod/who HTTP/1.0\r\n\r\n")
        .await
        .assert_error(403, "Forbidden");
    gw.stop().await;
}

#[tokio::test]
async fn a_request_target_over_the_limit_is_414() {
    let gw = Hostile::start(Duration::from_secs(5)).await;
    let host = gw.host(0);
    let long = format!(
        "GET /prod/who?q={} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "a".repeat(10_240)
    );
    exchange(gw.addr, long.as_bytes())
        .await
        .assert_error(414, "Request-URI Too Long");
    let fits = format!(
        "GET /prod/who?q={} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        "a".repeat(10_240 - "/prod/who?q=".len())
    );
    assert_eq!(exchange(gw.addr, fits.as_bytes()).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn broken_chunked_framing_on_a_streaming_proxy_is_400() {
    let gw = Hostile::start(Duration::from_secs(5)).await;
    let host = gw.host(0);
    // hyper skips chunk extensions unread, so `5;\x01` is not among the malformed.
    for chunk_line in ["zz", "FFFFFFFFFFFFFFFFFFFF", "-1", "", "5 5"] {
        let request = format!(
            "POST /prod/echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\
             3\r\nabc\r\n{chunk_line}\r\nxxxxx\r\n0\r\n\r\n"
        );
        let reply = exchange(gw.addr, request.as_bytes()).await;
        assert_eq!(
            reply.status,
            400,
            "{chunk_line:?}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.assert_error(400, "Bad Request");
    }
    // The same route with well-formed chunks reaches the backend.
    let request = format!(
        "POST /prod/echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n0\r\n\r\n"
    );
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(TEST_TIMEOUT, stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"body\":\"abc\""), "{answer}");
    gw.stop().await;
}

#[tokio::test]
async fn dot_segments_cannot_leave_the_integration_base() {
    let gw = Hostile::start(Duration::from_secs(5)).await;
    let host = gw.host(0);
    for path in [
        "/prod/files/../../admin",
        "/prod/files/a/../../admin",
        "/prod/files/%2e%2e/admin",
        "/prod/files/a/%2E%2e/%2e%2e/admin",
        "/prod/files/a%2F..%2F..%2Fadmin",
        "/prod/files/..;/admin",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        exchange(gw.addr, request.as_bytes())
            .await
            .assert_error(400, "Bad Request");
    }
    // Inside the base, dot segments are resolved before the backend sees the path.
    for (path, backend_path) in [
        ("/prod/files/a/../b", "/base/b"),
        ("/prod/files/a/%2e%2e/b/./c", "/base/b/c"),
        ("/prod/files/a/b", "/base/a/b"),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let reply = exchange(gw.addr, request.as_bytes()).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.head);
        assert_eq!(reply.json()["path"], backend_path, "{path}");
    }
    gw.stop().await;
}

/// A stalled body is answered 408 by every kind of integration that waits for it: buffered
/// (MOCK, AWS_PROXY) and streamed (HTTP_PROXY).
#[tokio::test]
async fn a_stalled_request_body_is_408() {
    let gw = Hostile::start(Duration::from_millis(300)).await;
    let host = gw.host(0);
    for path in ["/prod/who", "/prod/fn", "/prod/echo"] {
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\nonly some");
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        read_reply(&mut stream)
            .await
            .assert_error(408, "Request Timeout");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
    }
    // A body that keeps arriving, slower than the timeout overall but never idle that long,
    // is read whole.
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!("POST /prod/fn HTTP/1.1\r\nHost: {host}\r\nContent-Length: 6\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    for byte in b"abcdef" {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(&[*byte]).await.unwrap();
    }
    let reply = read_reply(&mut stream).await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    gw.stop().await;
}

/// A refused upload is drained: the client reads its answer, and the connection even serves
/// the next request.
#[tokio::test]
async fn refused_uploads_are_drained_so_the_client_reads_the_answer() {
    let gw = Hostile::start(Duration::from_secs(5)).await;
    let host = gw.host(0);
    let body = vec![b'a'; 1024 * 1024];
    // Refused before the body is read: no route (403), no API key (403).
    for (path, status, message) in [
        ("/prod/nowhere", 403, "Missing Authentication Token"),
        ("/prod/keyed", 403, "Forbidden"),
    ] {
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Written in full: the gateway reads what it refused rather than resetting.
        tokio::time::timeout(TEST_TIMEOUT, stream.write_all(&body))
            .await
            .expect("the body is taken in time")
            .expect("the body is taken");
        read_reply(&mut stream).await.assert_error(status, message);
        assert!(still_serves(&mut stream, &host).await, "{path}");
    }
    // Declared over the payload limit: answered at once, the upload drained behind it.
    let oversized = vec![b'a'; 10 * 1024 * 1024 + 1];
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /prod/echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        oversized.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move { writer.write_all(&oversized).await.map(|()| writer) });
    let reader_stream_reply = {
        let mut buffer = vec![0u8; 4096];
        let read = tokio::time::timeout(TEST_TIMEOUT, reader.read(&mut buffer))
            .await
            .expect("the 413 in time")
            .expect("the 413 read");
        String::from_utf8_lossy(&buffer[..read]).into_owned()
    };
    assert!(
        reader_stream_reply.starts_with("HTTP/1.1 413"),
        "{reader_stream_reply}"
    );
    let writer = tokio::time::timeout(TEST_TIMEOUT, writing)
        .await
        .expect("the upload is drained in time")
        .unwrap()
        .expect("the upload is taken whole");
    let mut stream = reader.reunite(writer).unwrap();
    assert!(still_serves(&mut stream, &host).await);
    gw.stop().await;
}

/// Fuzzing the HTTP/1.1 front: raw requests built from a grammar of hostile pieces (methods,
/// targets with dot segments and bad escapes, Host variants, conflicting framing headers,
/// broken chunks), sometimes mutated, each sent on a fresh connection to a real listener.
/// Properties: no task of the node panics; every byte that comes back is a well-formed
/// HTTP/1.1 response head (a gateway error with a JSON `{"message": ...}` body), or the
/// connection closes, or (for input that is not a complete request) nothing comes; and the
/// node still serves afterwards. `PORTICO_FUZZ_CASES=2000 cargo test -p portico --test
/// gateway_hostile fuzz` runs it longer than the default 40 cases.
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const WORKER_NAME: &str = "fuzz-front-worker";
    static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("GET".to_string()),
            Just("POST".to_string()),
            Just("HEAD".to_string()),
            Just("OPTIONS".to_string()),
            Just("DELETE".to_string()),
            Just("G\u{0}T".to_string()),
            Just(String::new()),
            "[A-Z]{1,12}",
        ]
    }

    fn target() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("%2e%2E".to_string()),
            Just("..;".to_string()),
            Just("a%2F..".to_string()),
            Just("%zz".to_string()),
            Just("%00".to_string()),
            Just("\u{e9}".to_string()),
            Just(String::new()),
            "[a-z0-9]{1,8}",
        ];
        let path = prop_oneof![
            Just("/prod/who".to_string()),
            Just("/prod/echo".to_string()),
            Just("/prod/fn".to_string()),
            proptest::collection::vec(segment, 0..6)
                .prop_map(|segments| format!("/prod/files/{}", segments.join("/"))),
            Just("*".to_string()),
            Just(String::new()),
            Just("/".repeat(3000)),
            "[ -~]{0,40}",
        ];
        let query = prop_oneof![
            Just(String::new()),
            Just("?a=1&a=2".to_string()),
            Just("?%%".to_string()),
            Just(format!("?q={}", "x".repeat(10_300))),
        ];
        let authority = prop_oneof![
            Just(String::new()),
            Just("http://a.execute-api.x".to_string()),
            Just("http://u@a.execute-api.x".to_string()),
            Just("http://[::1".to_string()),
        ];
        (authority, path, query)
            .prop_map(|(authority, path, query)| format!("{authority}{path}{query}"))
    }

    fn version() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            6 => Just("HTTP/1.1"),
            1 => Just("HTTP/1.0"),
            1 => Just("HTTP/2.0"),
            1 => Just("HTTP/1.1x"),
            1 => Just(""),
        ]
    }

    fn header(host: String) -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just(format!("Host: {host}")),
            1 => Just(format!("Host: {}", host.to_ascii_uppercase())),
            1 => Just(format!("Host: a@{host}")),
            1 => Just("Host:".to_string()),
            1 => Just("Host: [::1".to_string()),
            1 => (0u64..20_000_000).prop_map(|length| format!("Content-Length: {length}")),
            1 => Just("Content-Length: -1".to_string()),
            1 => Just("Content-Length: 99999999999999999999999".to_string()),
            2 => Just("Transfer-Encoding: chunked".to_string()),
            1 => Just("Transfer-Encoding: gzip, chunked".to_string()),
            1 => Just("Transfer-Encoding: xchunked".to_string()),
            1 => Just("Expect: 100-continue".to_string()),
            1 => Just("Connection: close".to_string()),
            1 => Just("x-api-key: k".to_string()),
            1 => "[!-9;-~]{1,12}: [ -~]{0,24}",
            1 => "[ -~]{0,30}",
        ]
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        let chunk_line = prop_oneof![
            Just("3".to_string()),
            Just("zz".to_string()),
            Just("FFFFFFFFFFFFFFFFFFFF".to_string()),
            Just("-1".to_string()),
            Just("0".to_string()),
            Just("3;ext=1".to_string()),
        ];
        prop_oneof![
            Just(Vec::new()),
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::vec(chunk_line, 1..4).prop_map(|lines| {
                let mut body = String::new();
                for line in lines {
                    body.push_str(&line);
                    body.push_str("\r\nabc\r\n");
                }
                body.push_str("0\r\n\r\n");
                body.into_bytes()
            }),
        ]
    }

    fn request(host: String) -> impl Strategy<Value = Vec<u8>> {
        let head = (
            method(),
            target(),
            version(),
            proptest::collection::vec(header(host), 0..5),
        );
        (head, body(), any::<Option<(prop::sample::Index, u8)>>()).prop_map(
            |((method, target, version, headers), body, mutation)| {
                let mut bytes = format!("{method} {target} {version}\r\n").into_bytes();
                for header in headers {
                    bytes.extend_from_slice(header.as_bytes());
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"\r\n");
                bytes.extend_from_slice(&body);
                if let Some((at, xor)) = mutation {
                    let at = at.index(bytes.len());
                    bytes[at] ^= xor.max(1);
                }
                bytes
            },
        )
    }

    /// What came back on one connection: the bytes read, and whether it closed.
    async fn send_raw(addr: SocketAddr, request: &[u8]) -> (Vec<u8>, bool) {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            return (Vec::new(), true);
        };
        // The node may refuse (and close) before taking everything: not a failure.
        let _ = stream.write_all(request).await;
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Err(_) => return (received, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
                Ok(Ok(read)) => {
                    received.extend_from_slice(&chunk[..read]);
                    if received.len() > 64 * 1024 {
                        return (received, false);
                    }
                }
            }
        }
    }

    /// Checks every response head in `received`; a body is checked when the gateway answered
    /// an error whole.
    fn check_answer(received: &[u8]) -> Result<(), TestCaseError> {
        let mut rest = received;
        while !rest.is_empty() {
            let Some(end) = rest.windows(4).position(|window| window == b"\r\n\r\n") else {
                // A head cut by the read window (or a pipelined answer in progress).
                prop_assert!(rest.starts_with(b"HTTP/1.1 ") || b"HTTP/1.1 ".starts_with(rest));
                return Ok(());
            };
            let head = std::str::from_utf8(&rest[..end])
                .map_err(|_| TestCaseError::fail("a response head that is not UTF-8"))?;
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            prop_assert!(
                status_line.len() >= 12
                    && (status_line.starts_with("HTTP/1.1 ")
                        || status_line.starts_with("HTTP/1.0 "))
                    && status_line[9..12].bytes().all(|byte| byte.is_ascii_digit()),
                "status line {:?}",
                status_line
            );
            let status: u16 = status_line[9..12].parse().unwrap_or(0);
            prop_assert!((100..600).contains(&status), "status {}", status);
            let mut length = 0usize;
            let mut gateway_error = false;
            for line in lines {
                let (name, value) = line
                    .split_once(':')
                    .ok_or_else(|| TestCaseError::fail(format!("header line {line:?}")))?;
                prop_assert!(
                    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_graphic()),
                    "header name {:?}",
                    name
                );
                if name.eq_ignore_ascii_case("content-length") {
                    length = value
                        .trim()
                        .parse()
                        .map_err(|_| TestCaseError::fail(format!("content-length {value:?}")))?;
                }
                if name.eq_ignore_ascii_case("x-amzn-errortype") {
                    gateway_error = true;
                }
            }
            rest = &rest[end + 4..];
            if status == 100 {
                continue;
            }
            // An answer to HEAD declares a length it does not send: the next response follows.
            if rest.starts_with(b"HTTP/1.") {
                length = 0;
            }
            let body = &rest[..length.min(rest.len())];
            if gateway_error && length > 0 && body.len() == length {
                let json: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
                    TestCaseError::fail(format!("error body is not JSON: {error}"))
                })?;
                prop_assert!(json.get("message").is_some(), "{}", json);
            }
            if body.len() < length {
                // Cut by the read window or a HEAD answer's declared length: the head was
                // checked.
                return Ok(());
            }
            rest = &rest[length..];
        }
        Ok(())
    }

    #[test]
    fn the_http1_front_survives_hostile_bytes() {
        let cases = std::env::var("PORTICO_FUZZ_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(40);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(WORKER_NAME)
            .enable_all()
            .build()
            .unwrap();
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(WORKER_NAME) {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default_hook(info);
        }));
        let gw = runtime.block_on(Hostile::start(Duration::from_millis(200)));
        let (addr, host) = (gw.addr, gw.host(0));
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let answered = AtomicUsize::new(0);
        let result = runner.run(&request(host.clone()), |request| {
            let (received, closed) = runtime.block_on(send_raw(addr, &request));
            if !received.is_empty() || closed {
                answered.fetch_add(1, Ordering::Relaxed);
            }
            check_answer(&received)?;
            prop_assert_eq!(
                SERVER_PANICS.load(Ordering::SeqCst),
                0,
                "a node task panicked"
            );
            Ok(())
        });
        if let Err(failure) = result {
            panic!("{failure}");
        }
        // Not vacuous: most hostile requests are answered or closed within the window.
        let answered = answered.load(Ordering::Relaxed);
        eprintln!("{answered} of {cases} hostile requests answered or closed within the window");
        assert!(
            answered * 2 >= cases as usize,
            "{answered} of {cases} answered"
        );
        // And the node still serves.
        let ok = runtime.block_on(async {
            let request = format!("GET /prod/who HTTP/1.1\r\nHost: {host}\r\n\r\n");
            exchange(addr, request.as_bytes()).await.status
        });
        assert_eq!(ok, 200);
        runtime.block_on(gw.stop());
    }
}

/// HTTP/2 carries the host as `:authority`, which wins; a `Host` that names another host is
/// refused, one that agrees (in any case) is accepted.
#[tokio::test]
async fn http2_authority_selects_the_api_and_host_must_agree() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    let gw = Hostile::start(Duration::from_secs(5)).await;
    let (first, second) = (gw.host(0), gw.host(1));
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let mut ask = async |authority: &str, host: Option<&str>| {
        let mut request = http::Request::get(format!("http://{authority}/prod/who"));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = tokio::time::timeout(
            TEST_TIMEOUT,
            sender.send_request(request.body(Full::new(Bytes::new())).unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts, body)
    };
    let (parts, _) = ask(&second, None).await;
    assert_eq!(parts.version, http::Version::HTTP_2);
    assert_eq!(parts.headers["x-route"], "second");
    let (parts, _) = ask(&second.to_ascii_uppercase(), Some(&second)).await;
    assert_eq!(parts.headers["x-route"], "second");
    let (parts, body) = ask(&second, Some(&first)).await;
    assert_eq!(parts.status, 400);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"message": "Host header does not match the request authority"})
    );
    let (parts, body) = ask(&format!("a@{second}"), None).await;
    assert_eq!(parts.status, 400);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"message": "Invalid Host header"})
    );
    gw.stop().await;
}

/// Conflicting framing never reaches a backend ambiguous (request smuggling): with both
/// Transfer-Encoding and Content-Length the chunks win and no Content-Length is forwarded
/// (RFC 9112 §6.3); a Transfer-Encoding that does not end in `chunked`, or a Content-Length that
/// is repeated or not a plain number, is refused with 400 (by hyper, before the pipeline).
#[tokio::test]
async fn conflicting_framing_never_reaches_the_backend_ambiguous() {
    let gw = Hostile::start(Duration::from_secs(1)).await;
    let host = gw.host(0);
    for headers in [
        "Content-Length: 3\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 3",
    ] {
        let request = format!(
            "POST /prod/echo HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n\r\n5\r\nabcde\r\n0\r\n\r\n"
        );
        let reply = exchange(gw.addr, request.as_bytes()).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.head);
        let seen = reply.json();
        assert_eq!(seen["body"], "abcde", "{headers:?}");
        assert!(seen["headers"].get("content-length").is_none(), "{seen}");
    }
    for headers in [
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding: chunked, gzip",
        "Content-Length: 3\r\nContent-Length: 5",
        "Content-Length: 3, 5",
        "Content-Length: +3",
    ] {
        let request = format!("POST /prod/echo HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n\r\nabcde");
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 1024];
        let read = tokio::time::timeout(TEST_TIMEOUT, stream.read(&mut answer))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 400"), "{headers:?}: {answer}");
    }
    gw.stop().await;
}
