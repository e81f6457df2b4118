//! Authorizers through the management API against a real gateway and a real function endpoint:
//! FlushStageAuthorizersCache empties a stage's authorizer cache (a cached decision is served
//! without calling the function until the flush; the next request after the 202 calls it again),
//! and TestInvokeAuthorizer runs the function for real, uncached.

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

#[tokio::test]
async fn test_invoke_authorizer_runs_the_function_uncached() {
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
    let (_, _, apis) = signed_call(&client, &base, "GET", "/restapis", "").await;
    let api_id = apis["item"][0]["id"].as_str().unwrap().to_string();
    let (_, _, authorizers) = signed_call(
        &client,
        &base,
        "GET",
        &format!("/restapis/{api_id}/authorizers"),
        "",
    )
    .await;
    let authorizer_id = authorizers["item"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/restapis/{api_id}/authorizers/{authorizer_id}");
    let invoke = |token: &'static str| {
        let body = serde_json::json!({
            "headers": {"Authorization": token},
            "pathWithQueryString": "/token/7?x=1",
        })
        .to_string();
        let (client, base, path) = (client.clone(), base.clone(), path.clone());
        async move { signed_call(&client, &base, "POST", &path, &body).await }
    };

    for expected_calls in 1..=2 {
        let (status, _, report) = invoke("allow#test-invoke").await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["clientStatus"], 200, "{report}");
        assert_eq!(report["principalId"], "user-1");
        let policy: serde_json::Value =
            serde_json::from_str(report["policy"].as_str().unwrap()).unwrap();
        assert_eq!(policy["Statement"][0]["Effect"], "Allow");
        assert!(
            report["log"]
                .as_str()
                .unwrap()
                .starts_with("Execution log for request")
        );
        assert!(report["latency"].is_number());
        // Never cached: every test invocation calls the function.
        assert_eq!(authorizer_calls("allow#test-invoke"), expected_calls);
    }
    let sent = authorizer_event("allow#test-invoke").unwrap();
    assert_eq!(sent["type"], "TOKEN");
    assert!(
        sent["methodArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{api_id}/test-invoke-stage/GET/token/7")),
        "{sent}"
    );

    // No token: 401 without a call.
    let body = serde_json::json!({"headers": {}}).to_string();
    let (status, _, report) = signed_call(&client, &base, "POST", &path, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["clientStatus"], 401, "{report}");
    assert!(report.get("principalId").is_none());
    // A function that fails: 500.
    let (_, _, report) = invoke("crash").await;
    assert_eq!(report["clientStatus"], 500, "{report}");
    // An unknown authorizer.
    let (status, error_type, _) = signed_call(
        &client,
        &base,
        "POST",
        &format!("/restapis/{api_id}/authorizers/nope"),
        "{}",
    )
    .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (404, Some("NotFoundException"))
    );
    gateway.shutdown().await;
}
