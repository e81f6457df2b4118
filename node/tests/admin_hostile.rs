//! Hostile input to the management API (issue #14): floods of slow and forged uploads, forged
//! uploads that declare their payload hash, huge and deeply nested definitions, oversized
//! fields. Each test checks that the admin's signed calls still succeed, the data plane keeps
//! answering and memory stays bounded, and prints the figures it measured.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use common::admin::{Admin, KEY_ID, SECRET};
use http::{HeaderMap, Request};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The process's resident set, in KiB (the dev node runs inside the test process).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn tls_connector(admin: &Admin) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let cert = CertificateDer::from_pem_file(admin.data_dir.path().join("cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(portico::tls::client_config(roots).unwrap()))
}

type Stream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Opens a TLS connection to the management API and sends `head` (and no body).
async fn open(admin: &Admin, head: &str) -> Stream {
    let addr = admin.node.admin_addr.unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = tls_connector(admin).connect(name, tcp).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// The status of the response on `stream`, if one arrives within `wait`.
async fn status_within(stream: &mut Stream, wait: Duration) -> Option<u16> {
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(wait, stream.read(&mut buffer)).await;
    let Ok(Ok(len)) = read else { return None };
    let text = String::from_utf8_lossy(&buffer[..len]);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
}

/// A request head that names the test key with a fresh date and a made-up signature.
fn forged_head(admin: &Admin, length: usize, extra: &str) -> String {
    let now = portico::time::epoch_seconds(SystemTime::now());
    let amz_date = portico::sigv4::format_amz_date(now);
    let host = admin.base.trim_start_matches("https://");
    format!(
        "POST /restapis?mode=import HTTP/1.1\r\nhost: {host}\r\nx-amz-date: {amz_date}\r\n\
         authorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/{}/us-east-1/apigateway/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={}\r\ncontent-length: {length}\r\n{extra}\r\n",
        &amz_date[..8],
        "0".repeat(64)
    )
}

/// A signed call whose head declares the body's SHA-256 (`x-amz-content-sha256`), as the
/// AWS SDKs do for S3 and `curl --aws-sigv4` can: verifiable before the body is read.
async fn signed_call_with_hash(
    admin: &Admin,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Option<String>, Value) {
    let uri: http::Uri = format!("{}{path}", admin.base).parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("host", uri.authority().unwrap().as_str().parse().unwrap());
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    headers.insert(
        "x-amz-content-sha256",
        hex::encode(digest.as_ref()).parse().unwrap(),
    );
    let now = portico::time::epoch_seconds(SystemTime::now());
    portico::sigv4::sign(
        method,
        &uri,
        &mut headers,
        body.as_bytes(),
        KEY_ID,
        SECRET,
        "us-east-1",
        "apigateway",
        now,
    );
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), admin.client.request(request))
        .await
        .unwrap()
        .unwrap();
    let reply = common::read(response).await;
    let error_type = reply
        .headers
        .get("x-amzn-errortype")
        .map(|value| value.to_str().unwrap().to_string());
    let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status.as_u16(), error_type, json)
}

#[tokio::test]
async fn slow_forged_uploads_do_not_lock_out_the_admin() {
    let admin = Admin::start().await;
    let before = rss_kib();
    // 64 uploads naming the admin's key id with a forged signature, each declaring 4 MB and
    // sending 64 KiB of it, then stalling.
    let mut floods = Vec::new();
    for _ in 0..64 {
        let mut stream = open(&admin, &forged_head(&admin, 4 << 20, "")).await;
        stream.write_all(&[b'x'; 64 * 1024]).await.unwrap();
        floods.push(stream);
    }
    // And 64 without any signature, refused from their heads.
    for _ in 0..64 {
        let head =
            forged_head(&admin, 4 << 20, "").replace("authorization:", "x-not-authorization:");
        let mut stream = open(&admin, &head).await;
        let _ = stream.write_all(&[b'x'; 1024]).await;
        assert_eq!(
            status_within(&mut stream, Duration::from_secs(2)).await,
            Some(403)
        );
    }
    let mut refused_at_once = 0;
    let mut held = Vec::new();
    for mut stream in floods {
        match status_within(&mut stream, Duration::from_millis(300)).await {
            Some(429) => refused_at_once += 1,
            Some(other) => panic!("a forged upload was answered {other}"),
            None => held.push(stream),
        }
    }
    // One source holds at most its share of unverified requests; the rest cost a 429.
    assert_eq!(
        held.len(),
        portico::admin::http::gate::MAX_UNVERIFIED_PER_SOURCE
    );
    assert_eq!(refused_at_once, 64 - held.len());

    // Meanwhile the admin's signed calls succeed: a read (no body) and writes whose head
    // declares the payload hash, none of which waits for the gate.
    let started = Instant::now();
    let (status, _, listed) = admin.call("GET", "/restapis", "").await;
    assert_eq!(status, 200, "{listed}");
    let (status, _, created) = signed_call_with_hash(
        &admin,
        "POST",
        "/restapis",
        &json!({"name": "during-the-flood"}).to_string(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let document = json!({"openapi": "3.0.1", "info": {"title": "imported", "version": "1"},
        "paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"type": "MOCK"}}}}});
    let (status, _, imported) = signed_call_with_hash(
        &admin,
        "POST",
        "/restapis?mode=import",
        &document.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{imported}");
    let admin_latency = started.elapsed();
    let during = rss_kib();
    println!(
        "slow forged uploads: {} held, {refused_at_once} refused at once; admin calls took \
         {admin_latency:?}; RSS {before} KiB before, {during} KiB during",
        held.len()
    );
    assert!(admin_latency < Duration::from_secs(5));
    // The held uploads are cut off at the unverified body deadline, not kept for good.
    let deadline = portico::admin::http::gate::UNVERIFIED_BODY_DEADLINE + Duration::from_secs(5);
    for mut stream in held {
        assert_eq!(status_within(&mut stream, deadline).await, Some(408));
    }
    // And the source's slots are free again: an upload without a declared hash gets through.
    let (status, _, created) = admin
        .call("POST", "/restapis", &json!({"name": "after"}).to_string())
        .await;
    assert_eq!(status, 201, "{created}");
}

#[tokio::test]
async fn a_forged_upload_that_declares_its_hash_is_refused_before_its_body() {
    let admin = Admin::start().await;
    let declared = format!("x-amz-content-sha256: {}\r\n", "ab".repeat(32));
    // The head claims 6 MB and the signature covers the declared hash: the signature is
    // checked (and fails) before a byte of the body is read.
    let head = forged_head(&admin, 6 << 20, &declared).replace(
        "SignedHeaders=host;x-amz-date",
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date",
    );
    let mut stream = open(&admin, &head).await;
    assert_eq!(
        status_within(&mut stream, Duration::from_secs(2)).await,
        Some(403)
    );
    // A body that is not the one declared is refused even when the head is genuinely signed.
    let uri: http::Uri = format!("{}/restapis", admin.base).parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("host", uri.authority().unwrap().as_str().parse().unwrap());
    let declared = ring::digest::digest(&ring::digest::SHA256, b"{\"name\":\"declared\"}");
    headers.insert(
        "x-amz-content-sha256",
        hex::encode(declared.as_ref()).parse().unwrap(),
    );
    let now = portico::time::epoch_seconds(SystemTime::now());
    portico::sigv4::sign(
        "POST",
        &uri,
        &mut headers,
        b"{\"name\":\"declared\"}",
        KEY_ID,
        SECRET,
        "us-east-1",
        "apigateway",
        now,
    );
    let mut request = Request::builder().method("POST").uri(uri);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from_static(b"{\"name\":\"swapped\"}")))
        .unwrap();
    let reply = common::read(admin.client.request(request).await.unwrap()).await;
    assert_eq!(reply.status.as_u16(), 403);
    assert_eq!(
        reply.headers.get("x-amzn-errortype").unwrap(),
        "InvalidSignatureException"
    );
    let (_, _, listed) = admin.call("GET", "/restapis", "").await;
    let names: Vec<&str> = listed["item"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|api| api["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"swapped") && !names.contains(&"declared"),
        "nothing was created: {listed}"
    );
}

#[tokio::test]
async fn forged_bodies_are_bounded_by_the_byte_budgets() {
    let admin = Admin::start().await;
    let before = rss_kib();
    // Eight forged 6 MB uploads from one source, sent at once: the source's byte budget
    // (12 MiB) holds two bodies' worth at a time, the others are cut off with 429 before they
    // are complete, and every one ends refused.
    let body = vec![b'x'; 6 << 20];
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let stream = open(&admin, &forged_head(&admin, body.len(), "")).await;
        let (mut reader, mut writer) = tokio::io::split(stream);
        let body = body.clone();
        tokio::spawn(async move {
            // The server may answer and close before the body is all sent.
            let _ = writer.write_all(&body).await;
            writer
        });
        tasks.push(tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            let read =
                tokio::time::timeout(Duration::from_secs(20), reader.read(&mut buffer)).await;
            let Ok(Ok(len)) = read else { return None };
            let text = String::from_utf8_lossy(&buffer[..len]).to_string();
            text.split_whitespace()
                .nth(1)
                .and_then(|code| code.parse::<u16>().ok())
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let peak = rss_kib();
    println!(
        "forged 6 MB uploads: statuses {statuses:?}; RSS {before} KiB before, {peak} KiB after"
    );
    assert!(
        statuses
            .iter()
            .all(|status| matches!(status, Some(403 | 429)))
    );
    assert!(statuses.contains(&Some(429)), "{statuses:?}");
    // A flood from a failing source is then refused outright, before any body is read,
    // while the admin's signed calls still succeed.
    let (status, _, _) = admin.call("GET", "/restapis", "").await;
    assert_eq!(status, 200);
    // Larger than AWS's 6 MB: refused from the head alone.
    let mut stream = open(&admin, &forged_head(&admin, 16 << 20, "")).await;
    assert_eq!(
        status_within(&mut stream, Duration::from_secs(2)).await,
        Some(413)
    );
}

#[tokio::test]
async fn a_deeply_nested_definition_is_refused_quickly() {
    let admin = Admin::start().await;
    // 160 KB of nested flow mappings took 11 s to parse before the depth limit.
    let nested = format!(
        "openapi: 3.0.1\ninfo:\n  title: deep\n  version: '1'\npaths: {}1{}\n",
        "{a: ".repeat(40_000),
        "}".repeat(40_000)
    );
    let started = Instant::now();
    let (status, error_type, body) =
        signed_call_with_hash(&admin, "POST", "/restapis?mode=import", &nested).await;
    let took = started.elapsed();
    println!("nested YAML of {} bytes refused in {took:?}", nested.len());
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_type.as_deref(), Some("BadRequestException"));
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid OpenAPI input. 5:"),
        "the line and column of the 33rd level: {message}"
    );
    assert!(message.contains("nested more than 32 levels"), "{message}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn an_alias_bomb_is_refused_quickly() {
    let admin = Admin::start().await;
    // 100 KB of YAML whose aliases expand to 50 million nodes (5 GB and 29 s when parsed).
    let bomb = format!(
        "openapi: 3.0.1\ninfo:\n  title: bomb\n  version: '1'\npaths: {{}}\nx-a: &a [{}x]\nx-b: [{}]\n",
        "x,".repeat(50_000),
        vec!["*a"; 900].join(",")
    );
    let before = rss_kib();
    let started = Instant::now();
    let (status, error_type, body) =
        signed_call_with_hash(&admin, "POST", "/restapis?mode=import", &bomb).await;
    let took = started.elapsed();
    println!(
        "alias bomb of {} bytes refused in {took:?}; RSS {before} KiB before, {} KiB after",
        bomb.len(),
        rss_kib()
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_type.as_deref(), Some("BadRequestException"));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("once its aliases are expanded"),
        "{body}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn oversized_fields_are_refused_with_aws_errors() {
    let admin = Admin::start().await;
    let long_name = "n".repeat(2000);
    let cases = [
        json!({"name": long_name}),
        json!({"name": "ok", "description": "d".repeat(16_385)}),
        json!({"name": "ok", "binaryMediaTypes": (0..101).map(|i| format!("a/b{i}")).collect::<Vec<_>>()}),
        json!({"name": "ok", "tags": (0..51).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
        json!({"name": "ok", "tags": {"k": "v".repeat(257)}}),
        json!({"name": "ok", "policy": format!("{{\"Version\":\"2012-10-17\",\"Statement\":[],\"x\":\"{}\"}}", "p".repeat(8200))}),
    ];
    for body in cases {
        let (status, error_type, reply) = admin.call("POST", "/restapis", &body.to_string()).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(
            error_type.as_deref(),
            Some("BadRequestException"),
            "{reply}"
        );
        let message = reply["message"].as_str().unwrap();
        assert!(
            message.len() < 200,
            "the message never echoes the value: {message}"
        );
    }
    // Nothing of it was stored: the list stays small (it was 17 MB after a 10 MB name and a
    // million binary media types).
    let (_, _, listed) = admin.call("GET", "/restapis", "").await;
    assert!(listed.to_string().len() < 4096, "{listed}");
    let (status, _, api) = admin
        .call("POST", "/restapis", &json!({"name": "small"}).to_string())
        .await;
    assert_eq!(status, 201);
    let api_id = api["id"].as_str().unwrap();
    // A patch cannot grow a field past its bound either.
    let patch =
        json!({"patchOperations": [{"op": "replace", "path": "/name", "value": long_name}]});
    let (status, _, reply) = admin
        .call("PATCH", &format!("/restapis/{api_id}"), &patch.to_string())
        .await;
    assert_eq!(status, 400, "{reply}");
    // An import whose title is too long is refused the same way.
    let document = json!({"openapi": "3.0.1", "info": {"title": long_name, "version": "1"},
        "paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"type": "MOCK"}}}}});
    let (status, error_type, reply) = admin
        .call("POST", "/restapis?mode=import", &document.to_string())
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(error_type.as_deref(), Some("BadRequestException"));
    // More than 300 resources.
    let paths: serde_json::Map<String, Value> = (0..300)
        .map(|i| {
            (
                format!("/r{i}"),
                json!({"get": {"x-amazon-apigateway-integration": {"type": "MOCK"}}}),
            )
        })
        .collect();
    let document =
        json!({"openapi": "3.0.1", "info": {"title": "wide", "version": "1"}, "paths": paths});
    let (status, _, reply) = admin
        .call("POST", "/restapis?mode=import", &document.to_string())
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("Maximum number of Resources")
    );
    // Stage variables: 101 of them, or a value over 512 characters.
    let (status, _, _) = admin
        .call(
            "PUT",
            &format!(
                "/restapis/{api_id}/resources/{}/methods/GET",
                api["rootResourceId"].as_str().unwrap()
            ),
            &json!({"authorizationType": "NONE"}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let root = api["rootResourceId"].as_str().unwrap();
    let (status, _, _) = admin
        .call(
            "PUT",
            &format!("/restapis/{api_id}/resources/{root}/methods/GET/integration"),
            &json!({"type": "MOCK"}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("v{i}"), json!("x"))).collect();
    for variables in [Value::Object(many), json!({"v": "x".repeat(513)})] {
        let (status, error_type, reply) = admin
            .call(
                "POST",
                &format!("/restapis/{api_id}/deployments"),
                &json!({"stageName": "prod", "variables": variables}).to_string(),
            )
            .await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(error_type.as_deref(), Some("BadRequestException"));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_data_plane_answers_during_a_hostile_import() {
    let dir = tempfile::tempdir().unwrap();
    let api_file = dir.path().join("health.yaml");
    std::fs::write(
        &api_file,
        "openapi: 3.0.1\ninfo:\n  title: health\n  version: '1'\npaths:\n  /health:\n    get:\n      \
         x-amazon-apigateway-integration:\n        type: MOCK\n        requestTemplates:\n          \
         application/json: '{\"statusCode\": 200}'\n        responses:\n          default:\n            \
         statusCode: '200'\n",
    )
    .unwrap();
    let admin = Admin::start_with(|options| {
        options.http = Some("127.0.0.1:0".parse().unwrap());
        options.api_file = Some(api_file.clone());
    })
    .await;
    let data_plane = format!("http://{}/dev/health", admin.node.http_addr.unwrap());
    let first = common::get(&data_plane).await;
    assert_eq!(first.status.as_u16(), 200, "{}", first.text());
    // The costliest documents the limits let through, each made invalid at the end (`paths`
    // is not an object) so it is parsed in full and then refused: YAML flow mappings nested
    // 30 deep up to the YAML node bound, and a JSON array up to the JSON node bound. The
    // runtime here has one thread, so a parse on it would stall everything below.
    let unit = format!("- {}1{}\n", "{a: ".repeat(30), "}".repeat(30));
    let yaml = format!(
        "openapi: 3.0.1\ninfo:\n  title: hostile\n  version: '1'\npaths: 5\nx-filler:\n{}",
        unit.repeat(portico::openapi::limits::MAX_YAML_NODES / 70)
    );
    let json = format!(
        "{{\"openapi\": \"3.0.1\", \"info\": {{\"title\": \"hostile\", \"version\": \"1\"}}, \"paths\": 5, \"x-filler\": [{}0]}}",
        "0,".repeat(portico::openapi::limits::MAX_JSON_NODES - 100)
    );
    // All of it under a flood: 64 slow forged uploads (the source's 8 held, the rest refused)
    // and a 16 MB one, as in the issue.
    let mut flood = Vec::new();
    for _ in 0..64 {
        let mut stream = open(&admin, &forged_head(&admin, 4 << 20, "")).await;
        let _ = stream.write_all(&[b'x'; 64 * 1024]).await;
        flood.push(stream);
    }
    let mut huge = open(&admin, &forged_head(&admin, 16 << 20, "")).await;
    assert_eq!(
        status_within(&mut huge, Duration::from_secs(2)).await,
        Some(413)
    );
    let before = rss_kib();
    let mut peak = before;
    for hostile in [yaml, json] {
        // The admin's import declares its payload hash, so the flood holding this source's
        // unverified budget does not stand in its way.
        let done = std::sync::atomic::AtomicBool::new(false);
        let import = async {
            let started = Instant::now();
            let reply =
                signed_call_with_hash(&admin, "POST", "/restapis?mode=import", &hostile).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            (reply, started.elapsed())
        };
        let poll = async {
            let mut slowest = Duration::ZERO;
            let mut answered = 0;
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                let reply = tokio::time::timeout(Duration::from_secs(1), common::get(&data_plane))
                    .await
                    .expect("the data plane answers within 1 s");
                assert_eq!(reply.status.as_u16(), 200);
                slowest = slowest.max(started.elapsed());
                answered += 1;
                peak = peak.max(rss_kib());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (slowest, answered, peak)
        };
        let (((status, error_type, body), took), (slowest, answered, peak_here)) =
            tokio::join!(import, poll);
        peak = peak.max(peak_here);
        println!(
            "hostile import of {} bytes: {status} after {took:?}; {answered} data-plane \
             requests meanwhile, slowest {slowest:?}; RSS {before} KiB before, peak {peak} KiB",
            hostile.len()
        );
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_type.as_deref(), Some("BadRequestException"));
        assert!(answered > 0);
    }
    drop(flood);
    let (status, _, _) = admin.call("GET", "/restapis", "").await;
    assert_eq!(status, 200);
}
