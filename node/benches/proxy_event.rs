//! Encoding the Lambda proxy event (AWS_PROXY payload 1.0) for a typical browser-like request:
//! ten headers, two query parameters, one path parameter, two stage variables, a small JSON
//! body. The request view is built the way the pipeline builds it: a compiled snapshot of a
//! real definition, routed with `route::resolve`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use portico::config::compile::{Snapshot, compile};
use portico::integrate::lambda::encode_event;
use portico::request::RequestView;

const API: &str = r#"
openapi: 3.0.1
info: { title: bench, version: "1" }
paths:
  /hello/{name}:
    post:
      parameters:
        - { name: name, in: path, required: true, schema: { type: string } }
      responses: { "200": { description: ok } }
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:local:lambda:path/2015-03-31/functions/arn:aws:lambda:local:000000000000:function:hello/invocations
"#;

const BODY: &[u8] =
    br#"{"id":1,"name":"Rex","kind":"dog","owner":"Ada Lovelace","tags":["good","boy"]}"#;

fn main() {
    divan::main();
}

fn snapshot() -> Snapshot {
    let variables = vec![
        ("backend".to_string(), "10.0.0.5:8080".to_string()),
        ("mode".to_string(), "bench".to_string()),
    ];
    let (state, _warnings) =
        portico::dev::build_state("bench.yaml", API, "prod", &variables, 0).expect("imports");
    compile(&state, true).expect("compiles")
}

fn parts() -> http::request::Parts {
    let (parts, ()) = http::Request::post("/prod/hello/ada?lang=en&verbose=1")
        .header("host", "abc123.execute-api.localhost:8080")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
        .header("accept", "application/json")
        .header("accept-encoding", "gzip, deflate, br")
        .header("accept-language", "en-GB,en;q=0.9")
        .header("content-type", "application/json")
        .header("content-length", BODY.len().to_string())
        .header("cookie", "session=0123456789abcdef")
        .header("x-request-source", "bench")
        .header("x-forwarded-for", "203.0.113.7")
        .body(())
        .expect("valid request")
        .into_parts();
    parts
}

#[divan::bench]
fn encode_proxy_event(bencher: divan::Bencher) {
    let snapshot = snapshot();
    let parts = parts();
    let path = "/prod/hello/ada";
    let host = "abc123.execute-api.localhost:8080";
    let routed = portico::route::resolve(&snapshot, Some(host), path, "POST").expect("routes");
    let view = RequestView {
        request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        extended_request_id: "BIGjCFdUoAMEc8w=",
        trace_id: "Root=1-5f84c7a9-0123456789abcdef01234567",
        trace_header: &http::HeaderValue::from_static("Root=1-5f84c7a9-0123456789abcdef01234567"),
        routed: &routed,
        parts: &parts,
        path,
        query: Some("lang=en&verbose=1"),
        host: Some(host),
        source_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        local_port: 8080,
        secure: false,
        received_at: SystemTime::now(),
        auth: None,
    };
    bencher.bench_local(|| encode_event(divan::black_box(&view), "000000000000", BODY));
}
