//! Routing as API Gateway does it, through real requests: precedence, ANY, stages, Hosts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use portico::accept::Shutdown;
use portico::config::compile;
use portico::integrate::{IntegrationSettings, Integrations, client::BackendClient};
use portico::pipeline::Gateway;

/// Every route is a MOCK that names itself in a header, so a reply says which route matched.
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

fn api() -> String {
    format!(
        r#"
openapi: 3.0.1
info: {{ title: routing, version: "1" }}
paths:
  /:
    get:{root}
  /pets:
    get:{pets}
  /pets/mine:
    get:{mine}
  /pets/{{petId}}:
    get:{pet}
    delete:{delete_pet}
  /pets/{{petId}}/toys:
    x-amazon-apigateway-any-method:{toys}
  /{{proxy+}}:
    x-amazon-apigateway-any-method:{catch_all}
"#,
        root = mock("root"),
        pets = mock("pets"),
        mine = mock("mine"),
        pet = mock("pet"),
        delete_pet = mock("delete-pet"),
        toys = mock("toys"),
        catch_all = mock("catch-all"),
    )
}

async fn route_of(gw: &TestGateway, method: &str, path: &str) -> String {
    let request = Request::builder()
        .method(method)
        .uri(gw.url(path))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = send(request).await;
    match reply.headers.get("x-route") {
        Some(route) => route.to_str().unwrap().to_string(),
        None => format!("{} {}", reply.status.as_u16(), reply.text()),
    }
}

#[tokio::test]
async fn literal_beats_param_beats_greedy() {
    let gw = TestGateway::start(&api(), &[]).await;
    let cases = [
        ("GET", "", "root"),
        ("GET", "/", "root"),
        ("GET", "/pets", "pets"),
        ("GET", "/pets/", "pets"),
        ("GET", "/pets/mine", "mine"),
        ("GET", "/pets/7", "pet"),
        ("DELETE", "/pets/7", "delete-pet"),
        // The resource is chosen first, then the verb: /pets/{petId} has no PUT, so the request
        // is refused rather than handed to the greedy route.
        (
            "PUT",
            "/pets/7",
            "403 {\"message\":\"Missing Authentication Token\"}",
        ),
        ("GET", "/pets/mine/toys", "toys"),
        ("POST", "/pets/7/toys", "toys"),
        ("GET", "/pets/7/toys/x", "catch-all"),
        ("GET", "/anything/else", "catch-all"),
    ];
    for (method, path, expected) in cases {
        assert_eq!(
            route_of(&gw, method, path).await,
            expected,
            "{method} {path}"
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn missing_routes_methods_and_stages_are_403() {
    let text = r#"
openapi: 3.0.1
info: { title: small, version: "1" }
paths:
  /pets:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: { application/json: '{"statusCode": 200}' }
        responses: { default: { statusCode: "200" } }
"#;
    let gw = TestGateway::start(text, &[]).await;
    for url in [
        gw.url("/dogs"),
        gw.url("/pets/1"),
        gw.url(""),
        format!("http://{}/otherstage/pets", gw.node.http_addr.unwrap()),
        format!("http://{}/", gw.node.http_addr.unwrap()),
    ] {
        assert_gateway_error(
            &get(&url).await,
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    }
    let post = Request::post(gw.url("/pets"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_gateway_error(
        &send(post).await,
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    );
    assert_eq!(get(&gw.url("/pets")).await.status, 200);
    gw.shutdown().await;
}

/// With several APIs, `Host: {apiId}.execute-api.{domain}` picks the API.
#[tokio::test]
async fn host_selects_the_api_among_several() {
    let mut state = portico_proto::GatewayState::default();
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let text = format!(
            "openapi: 3.0.1\ninfo: {{ title: {name}, version: '1' }}\npaths:\n  /who:\n    get:{}\n",
            mock(name)
        );
        let (one, _) = portico::dev::build_state("inline", &text, "prod", &[], 0).unwrap();
        let (id, api) = one.apis.into_iter().next().unwrap();
        ids.push(id.clone());
        state.apis.insert(id, api);
    }
    let snapshot = compile::compile(&state, false).unwrap();
    assert!(snapshot.default_api.is_none());
    let integrations = Integrations {
        client: BackendClient::new(None).unwrap(),
        settings: IntegrationSettings::default(),
    };
    let gateway = Arc::new(Gateway::new(snapshot, integrations));
    let shutdown = Shutdown::new();
    // Two workers: whichever accepts, the answer is the same.
    let workers = portico::accept::Workers::start(2).unwrap();
    let listeners = portico::serve::serve_gateway(
        &workers,
        "127.0.0.1:0".parse().unwrap(),
        None,
        &gateway,
        &shutdown,
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(listeners.len(), 2);
    let base = format!("http://{}", listeners[0].local_addr);

    for (id, expected) in ids.iter().zip(["first", "second"]) {
        let request = Request::get(format!("{base}/prod/who"))
            .header("host", format!("{id}.execute-api.example.com"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let reply = send(request).await;
        assert_eq!(reply.headers["x-route"], expected);
    }
    // A Host that names no API this node serves.
    for host in ["zzzzzzzzzz.execute-api.example.com", "localhost"] {
        let request = Request::get(format!("{base}/prod/who"))
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_gateway_error(&send(request).await, 403, "ForbiddenException", "Forbidden");
    }
    shutdown.trigger();
    for listener in listeners {
        listener.stopped().await;
    }
}

/// In `dev` with a single API, any Host reaches it, and an execute-api Host naming it works too.
#[tokio::test]
async fn dev_serves_its_single_api_on_any_host() {
    let gw = TestGateway::start(&api(), &[]).await;
    for host in [
        "localhost".to_string(),
        format!("{}.execute-api.localhost", gw.node.api_id),
    ] {
        let request = Request::get(gw.url("/pets"))
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(send(request).await.headers["x-route"], "pets");
    }
    gw.shutdown().await;
}

/// A new snapshot swapped in is served by the next request, without restart.
#[tokio::test]
async fn swapped_snapshots_take_effect() {
    let gw = TestGateway::start(&api(), &[]).await;
    assert_eq!(route_of(&gw, "GET", "/pets").await, "pets");
    let text = format!(
        "openapi: 3.0.1\ninfo: {{ title: v2, version: '2' }}\npaths:\n  /pets:\n    get:{}\n",
        mock("v2")
    );
    let (state, _) = portico::dev::build_state("v2", &text, "test", &[], 0).unwrap();
    gw.node
        .gateway
        .swap(compile::compile(&state, true).unwrap());
    assert_eq!(route_of(&gw, "GET", "/pets").await, "v2");
    gw.shutdown().await;
}
