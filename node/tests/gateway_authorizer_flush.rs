//! FlushStageAuthorizersCache through the management API empties a stage's authorizer cache:
//! a cached decision is served without calling the function until the flush, and the next
//! request after the 202 calls it again.

mod common;

use bytes::Bytes;
use common::admin::{KEY_ID, SECRET, https_client, signed_call};
use common::*;
use http::Request;
use http_body_util::Full;

const API: &str = r#"
openapi: 3.0.1
info: { title: flush, version: "1" }
components:
  securitySchemes:
    tok:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:authorizer/invocations
        authorizerResultTtlInSeconds: 3600
paths:
  /token/{id}:
    get:
      security: [{ tok: [] }]
      x-amazon-apigateway-integration: { type: aws_proxy, httpMethod: POST, uri: "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations" }
"#;

async fn call(gateway: &TestGateway, token: &str) -> u16 {
    let request = Request::get(gateway.url("/token/1"))
        .header("authorization", token)
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(request).await.status.as_u16()
}

#[tokio::test]
async fn flushing_the_stage_calls_the_authorizer_again() {
    let gateway = TestGateway::start_with(API, &[], |options| {
        options.admin = Some("127.0.0.1:0".parse().unwrap());
        options.admin_credentials = Some((KEY_ID.into(), SECRET.into()));
    })
    .await;
    let client = https_client(&gateway.data_dir.path().join("cert.pem"));
    let base = format!(
        "https://127.0.0.1:{}",
        gateway.node.admin_addr.expect("admin listener").port()
    );
    let (status, _, apis) = signed_call(&client, &base, "GET", "/restapis", "").await;
    assert_eq!(status, 200, "{apis}");
    let api_id = apis["item"][0]["id"].as_str().unwrap().to_string();

    for _ in 0..3 {
        assert_eq!(call(&gateway, "allow#flush").await, 200);
    }
    assert_eq!(authorizer_calls("allow#flush"), 1, "cached after one call");

    let (status, _, body) = signed_call(
        &client,
        &base,
        "DELETE",
        &format!("/restapis/{api_id}/stages/test/cache/authorizers"),
        "",
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(call(&gateway, "allow#flush").await, 200);
    assert_eq!(
        authorizer_calls("allow#flush"),
        2,
        "the flush emptied the cache"
    );
    assert_eq!(call(&gateway, "allow#flush").await, 200);
    assert_eq!(authorizer_calls("allow#flush"), 2, "cached again");

    // An unknown stage: 404, nothing flushed.
    let (status, error_type, _) = signed_call(
        &client,
        &base,
        "DELETE",
        &format!("/restapis/{api_id}/stages/nope/cache/authorizers"),
        "",
    )
    .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (404, Some("NotFoundException"))
    );
    assert_eq!(call(&gateway, "allow#flush").await, 200);
    assert_eq!(authorizer_calls("allow#flush"), 2);
    gateway.shutdown().await;
}
