//! Test harness: real listeners on loopback ports the OS picks, a recording HTTP backend, a
//! Lambda Invoke API endpoint with test functions, and a client. Everything binds to 127.0.0.1
//! and stops when the test's `Shutdown` fires or the runtime ends.

#![allow(dead_code)]

pub mod admin;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portico::accept::{self, Listener, Shutdown};
use portico::body::{self, Body};
use portico::dev::functions::{self, FunctionError, Handler};
use portico::dev::{DevNode, DevOptions};
use portico::integrate::FunctionEndpoints;

/// Every wait in these tests is bounded by this.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A backend that answers with a JSON description of the request it received.
///
/// Paths steer it: `/status/{code}` answers that status, `/slow/{ms}` waits first,
/// `/big/{bytes}` answers that many bytes, `/stall` sends a first chunk and then hangs.
pub async fn start_echo_backend(shutdown: &Shutdown) -> Listener {
    start_echo_backend_with_tls(shutdown, None).await
}

/// The same backend over TLS (HTTP/1.1 or HTTP/2 by ALPN) when `tls` is given.
pub async fn start_echo_backend_with_tls(
    shutdown: &Shutdown,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Listener {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    accept::serve(
        listener,
        tls,
        shutdown,
        Duration::from_secs(1),
        |request, _| echo(request),
    )
    .unwrap()
}

async fn echo(request: Request<hyper::body::Incoming>) -> Response<Body> {
    let (parts, incoming) = request.into_parts();
    let body = incoming
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let mut status = StatusCode::OK;
    if let Some(code) = path.strip_prefix("/status/") {
        status = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    if path.starts_with("/stall") {
        // Headers and a first chunk, then nothing: a backend that hangs mid-body.
        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
            hyper::body::Frame::data(Bytes::from_static(b"partial")),
        )]);
        let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
        return Response::new(body::boxed(http_body_util::StreamBody::new(stream)));
    }
    if let Some(size) = path.strip_prefix("/big/") {
        let size: usize = size.parse().unwrap_or(0);
        return Response::new(body::full(vec![b'x'; size]));
    }
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into()),
            )
        })
        .collect();
    let description = serde_json::json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = Response::new(body::full(description.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("server", HeaderValue::from_static("echo-backend"));
    headers.insert("x-backend", HeaderValue::from_static("echo"));
    response
}

/// Test functions behind a real Invoke API endpoint.
pub async fn start_functions(shutdown: &Shutdown) -> Listener {
    let mut map: HashMap<String, Handler> = HashMap::new();
    // Returns the event it received as the body, so tests can inspect it.
    map.insert(
        "echo".into(),
        Arc::new(|event| {
            Ok(serde_json::json!({
                "statusCode": 200,
                "headers": {"content-type": "application/json", "x-function": "echo"},
                "body": event.to_string(),
            }))
        }),
    );
    map.insert(
        "malformed".into(),
        Arc::new(|_| Ok(serde_json::json!("a bare string"))),
    );
    map.insert(
        "raises".into(),
        Arc::new(|_| {
            Err(FunctionError {
                error_type: "Exception".into(),
                message: "boom".into(),
            })
        }),
    );
    map.insert(
        "created".into(),
        Arc::new(|_| {
            Ok(serde_json::json!({
                "statusCode": "201",
                "multiValueHeaders": {"X-Multi": ["a", "b"]},
                "headers": {"x-multi": "c", "x-flag": true},
            }))
        }),
    );
    // Declares a Content-Length that contradicts its body.
    map.insert(
        "lying_length".into(),
        Arc::new(|_| {
            Ok(serde_json::json!({
                "statusCode": 200,
                "headers": {"Content-Length": "1", "Connection": "close", "Transfer-Encoding": "chunked"},
                "body": "hello",
            }))
        }),
    );
    map.insert(
        "slow".into(),
        Arc::new(|_| {
            std::thread::sleep(Duration::from_millis(800));
            Ok(serde_json::json!({"statusCode": 200, "body": "late"}))
        }),
    );
    // A Lambda authorizer (TOKEN or REQUEST): the token (or the `who` query string) says what
    // to answer; every call is counted by token in `AUTHORIZER_CALLS`.
    map.insert("authorizer".into(), Arc::new(authorizer_function));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    functions::serve(listener, map, shutdown).unwrap()
}

/// How many times the test authorizer was called, by token.
pub static AUTHORIZER_CALLS: std::sync::Mutex<Option<HashMap<String, usize>>> =
    std::sync::Mutex::new(None);

/// The last event the test authorizer received, by token.
pub static AUTHORIZER_EVENTS: std::sync::Mutex<Option<HashMap<String, serde_json::Value>>> =
    std::sync::Mutex::new(None);

pub fn authorizer_event(token: &str) -> Option<serde_json::Value> {
    AUTHORIZER_EVENTS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|events| events.get(token).cloned())
}

pub fn authorizer_calls(token: &str) -> usize {
    AUTHORIZER_CALLS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|calls| calls.get(token).copied())
        .unwrap_or(0)
}

fn authorizer_function(event: serde_json::Value) -> Result<serde_json::Value, FunctionError> {
    let token = match event["type"].as_str() {
        Some("TOKEN") => event["authorizationToken"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        _ => event["queryStringParameters"]["who"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    };
    *AUTHORIZER_CALLS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(token.clone())
        .or_default() += 1;
    AUTHORIZER_EVENTS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(token.clone(), event.clone());
    let arn = event["methodArn"].as_str().unwrap_or("").to_string();
    // arn:aws:execute-api:{region}:{account}:{api}/{stage}/{VERB}/{path}
    let api_and_stage: String = arn.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
    let policy = |effect: &str, resource: &str| {
        serde_json::json!({
            "principalId": "user-1",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]
            },
            "context": {"tier": "gold", "n": 1, "flag": true},
            "usageIdentifierKey": "authorizer-key-value-0123456789",
        })
    };
    let kind = token.split('#').next().unwrap_or("");
    match kind {
        "allow" => Ok(policy("Allow", &arn)),
        "allow-stage" => Ok(policy("Allow", &format!("{api_and_stage}/*"))),
        "deny" => Ok(policy("Deny", &arn)),
        "allow-other" => Ok(policy(
            "Allow",
            &format!("{api_and_stage}/DELETE/elsewhere"),
        )),
        "unauthorized" => Err(FunctionError {
            error_type: "Error".into(),
            message: "Unauthorized".into(),
        }),
        "garbage" => Ok(serde_json::json!({"principalId": "x"})),
        _ => Err(FunctionError {
            error_type: "Error".into(),
            message: format!("unexpected token {token}"),
        }),
    }
}

/// A running gateway serving one definition, plus its backends.
pub struct TestGateway {
    pub node: DevNode,
    pub backend: SocketAddr,
    pub functions: SocketAddr,
    pub data_dir: tempfile::TempDir,
    backends_shutdown: Shutdown,
    _backends: Vec<Listener>,
}

impl TestGateway {
    /// Serves `definition` (YAML or JSON); `{{BACKEND}}` and `{{FUNCTIONS}}` in it are replaced
    /// by the backends' addresses.
    pub async fn start(definition: &str, stage_vars: &[(&str, &str)]) -> TestGateway {
        Self::start_with(definition, stage_vars, |_| {}).await
    }

    pub async fn start_with(
        definition: &str,
        stage_vars: &[(&str, &str)],
        adjust: impl FnOnce(&mut DevOptions),
    ) -> TestGateway {
        let backends_shutdown = Shutdown::new();
        let backend = start_echo_backend(&backends_shutdown).await;
        let functions = start_functions(&backends_shutdown).await;
        let data_dir = tempfile::tempdir().unwrap();
        let text = definition
            .replace("{{BACKEND}}", &backend.local_addr.to_string())
            .replace("{{FUNCTIONS}}", &functions.local_addr.to_string());
        let api_file = data_dir.path().join("api.yaml");
        std::fs::write(&api_file, text).unwrap();
        let mut options = DevOptions::new(data_dir.path().to_path_buf());
        options.api_file = Some(api_file);
        options.stage = "test".into();
        options.stage_variables = stage_vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        options.http = Some("127.0.0.1:0".parse().unwrap());
        options.https = Some("127.0.0.1:0".parse().unwrap());
        options.functions = FunctionEndpoints {
            by_name: HashMap::new(),
            default: Some(format!("http://{}", functions.local_addr)),
        };
        options.drain_timeout = Duration::from_secs(5);
        adjust(&mut options);
        let node = tokio::time::timeout(TEST_TIMEOUT, DevNode::start(options))
            .await
            .expect("the gateway starts in time")
            .expect("the gateway starts");
        TestGateway {
            node,
            backend: backend.local_addr,
            functions: functions.local_addr,
            data_dir,
            backends_shutdown,
            _backends: vec![backend, functions],
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!(
            "http://{}/test{}",
            self.node.http_addr.expect("http listener"),
            path_and_query
        )
    }

    pub async fn shutdown(self) {
        self.backends_shutdown.trigger();
        self.node.shutdown().await;
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    let response = tokio::time::timeout(TEST_TIMEOUT, client().request(request))
        .await
        .expect("response in time")
        .expect("request sent");
    read(response).await
}

pub async fn read(response: Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(TEST_TIMEOUT, body.collect())
        .await
        .expect("body in time")
        .expect("body read")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
        version: parts.version,
    }
}

pub async fn get(url: &str) -> Reply {
    send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
}

/// Asserts an API Gateway error: status, `x-amzn-ErrorType` and `{"message": ...}`.
pub fn assert_gateway_error(reply: &Reply, status: u16, error_type: &str, message: &str) {
    assert_eq!(reply.status.as_u16(), status, "body: {}", reply.text());
    assert_eq!(reply.headers["x-amzn-errortype"], error_type);
    assert_eq!(reply.json(), serde_json::json!({ "message": message }));
    assert!(reply.headers.contains_key("x-amzn-requestid"));
}
