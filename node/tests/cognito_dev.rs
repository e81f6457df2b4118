//! COGNITO_USER_POOLS end to end: `dev` serving an API whose methods use a Cognito user pool
//! authorizer, moto in server mode as the issuer (its JWKS found through the node's
//! `[aws] endpoint_url`, i.e. `dev --aws-endpoint-url`), a real Invoke API endpoint echoing
//! the AWS_PROXY event. AWS's answers for valid, missing, expired, tampered, foreign and
//! wrongly-scoped tokens, and the claims in `requestContext.authorizer.claims`.

mod common;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/python.rs"]
mod python;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;

const ECHO_URI: &str =
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations";

fn api(pool_arn: &str) -> String {
    format!(
        r#"
openapi: 3.0.1
info: {{ title: cognito, version: "1" }}
components:
  securitySchemes:
    pool:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: cognito_user_pools
      x-amazon-apigateway-authorizer:
        type: cognito_user_pools
        providerARNs: ["{pool_arn}"]
paths:
  /me:
    get:
      security: [{{ pool: [] }}]
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
  /admin:
    get:
      security: [{{ pool: ["aws.cognito.signin.user.admin"] }}]
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
  /pets:
    get:
      security: [{{ pool: ["pets/read"] }}]
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
"#
    )
}

async fn call(gateway: &TestGateway, path: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().method("GET").uri(gateway.url(path));
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    send(request.body(Full::new(Bytes::new())).unwrap()).await
}

fn assert_refused(reply: &Reply, message: &str, case: &str) {
    assert_eq!(reply.status, 401, "{case}: {}", reply.text());
    assert_eq!(
        reply.headers.get("x-amzn-errortype").map(|v| v.as_bytes()),
        Some(&b"UnauthorizedException"[..]),
        "{case}"
    );
    assert_eq!(reply.json()["message"], message, "{case}");
}

/// The token with a claim changed under the original signature.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["cognito:username"] = "mallory".into();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cognito_user_pool_authorizers_answer_as_api_gateway_does() {
    let (moto, tokens) = tokio::task::spawn_blocking(|| {
        let moto = moto::Moto::start();
        let tokens = moto.tokens();
        (moto, tokens)
    })
    .await
    .unwrap();
    let main = &tokens["main"];
    let id_token = main["id_token"].as_str().unwrap();
    let access_token = main["access_token"].as_str().unwrap();
    let moto_url = moto.url.clone();
    let gateway = TestGateway::start_with(
        &api(main["pool_arn"].as_str().unwrap()),
        &[],
        move |options| options.aws.endpoint_url = Some(moto_url),
    )
    .await;

    // A valid ID token: 200, and the claims reach the function as strings.
    let reply = call(&gateway, "/me", Some(id_token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let event: serde_json::Value = serde_json::from_str(&reply.text()).unwrap();
    let claims = &event["requestContext"]["authorizer"]["claims"];
    assert_eq!(claims["cognito:username"], "alice", "{event}");
    assert_eq!(claims["token_use"], "id");
    assert_eq!(claims["aud"], main["client_id"]);
    assert!(claims["sub"].is_string());
    assert!(
        claims["exp"]
            .as_str()
            .is_some_and(|exp| exp.contains(" UTC "))
    );
    // With `Bearer ` in front too.
    let reply = call(&gateway, "/me", Some(&format!("Bearer {id_token}"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // Missing, empty, malformed, tampered, expired, another pool's.
    assert_refused(
        &call(&gateway, "/me", None).await,
        "Unauthorized",
        "no token",
    );
    assert_refused(
        &call(&gateway, "/me", Some("")).await,
        "Unauthorized",
        "empty",
    );
    assert_refused(
        &call(&gateway, "/me", Some("not.a.jwt")).await,
        "Unauthorized",
        "malformed",
    );
    assert_refused(
        &call(&gateway, "/me", Some(&tampered(id_token))).await,
        "Unauthorized",
        "tampered",
    );
    assert_refused(
        &call(&gateway, "/me", main["expired_id_token"].as_str()).await,
        "The incoming token has expired",
        "expired",
    );
    assert_refused(
        &call(&gateway, "/me", tokens["other"]["id_token"].as_str()).await,
        "Unauthorized",
        "another pool",
    );
    let huge = "a".repeat(20_000);
    assert_refused(
        &call(&gateway, "/me", Some(&huge)).await,
        "Unauthorized",
        "huge",
    );

    // Scopes: the access token on methods that name one of its scopes, and only there.
    assert_refused(
        &call(&gateway, "/me", Some(access_token)).await,
        "Unauthorized",
        "access token without scopes",
    );
    let reply = call(&gateway, "/admin", Some(access_token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let event: serde_json::Value = serde_json::from_str(&reply.text()).unwrap();
    assert_eq!(
        event["requestContext"]["authorizer"]["claims"]["scope"],
        "aws.cognito.signin.user.admin"
    );
    assert_refused(
        &call(&gateway, "/admin", Some(id_token)).await,
        "Unauthorized",
        "ID token where scopes are required",
    );
    assert_refused(
        &call(&gateway, "/pets", Some(access_token)).await,
        "Unauthorized",
        "a scope the token lacks",
    );
    drop(moto);
}
