//! Lambda authorizers, resource policies and gateway responses end to end: a real gateway, a
//! real Invoke API endpoint hosting the authorizer and the integration functions.

mod common;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;

const AUTHORIZER_URI: &str = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:authorizer/invocations";
const ECHO_URI: &str =
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations";

fn api(policy: Option<&str>) -> String {
    let policy = policy
        .map(|policy| format!("x-amazon-apigateway-policy: {policy}\n"))
        .unwrap_or_default();
    format!(
        r#"
openapi: 3.0.1
info: {{ title: authz, version: "1" }}
{policy}components:
  securitySchemes:
    tok:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: {AUTHORIZER_URI}
        authorizerResultTtlInSeconds: 300
        identityValidationExpression: "(allow|deny|allow-other|allow-stage|unauthorized|garbage|crash)(#.*)?"
    nocache:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: {AUTHORIZER_URI}
        authorizerResultTtlInSeconds: 0
    req:
      type: apiKey
      name: Unused
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: request
        identitySource: method.request.querystring.who, method.request.header.x-tenant
        authorizerUri: {AUTHORIZER_URI}
        authorizerResultTtlInSeconds: 60
paths:
  /token/{{id}}:
    get:
      security: [{{ tok: [] }}]
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
    delete:
      security: [{{ tok: [] }}]
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
  /uncached:
    get:
      security: [{{ nocache: [] }}]
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
  /mapped:
    get:
      security: [{{ tok: [] }}]
      x-amazon-apigateway-integration:
        type: http
        httpMethod: GET
        uri: http://{{{{BACKEND}}}}/mapped
        requestParameters:
          integration.request.header.x-principal: context.authorizer.principalId
          integration.request.header.x-tier: context.authorizer.tier
        responses:
          default: {{ statusCode: "200" }}
  /request:
    get:
      security: [{{ req: [] }}]
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
  /open:
    get:
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
x-amazon-apigateway-gateway-responses:
  UNAUTHORIZED:
    statusCode: 401
    responseParameters:
      gatewayresponse.header.WWW-Authenticate: "'Bearer realm=portico'"
    responseTemplates:
      application/json: '{{"message":$context.error.messageString,"type":"$context.error.responseType"}}'
  MISSING_AUTHENTICATION_TOKEN:
    statusCode: 404
    responseTemplates:
      application/json: '{{"message":"no such route","stage":"$context.stage"}}'
"#
    )
}

async fn call(gateway: &TestGateway, verb: &str, path: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().method(verb).uri(gateway.url(path));
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    send(request.body(Full::new(Bytes::new())).unwrap()).await
}

#[tokio::test]
async fn token_authorizer_decides_and_caches_per_token() {
    let gateway = TestGateway::start(&api(None), &[]).await;

    // Allowed: the function's principal and context reach the proxy event.
    let reply = call(&gateway, "GET", "/token/1", Some("allow#event")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let event: serde_json::Value = serde_json::from_str(&reply.text()).unwrap();
    let authorizer = &event["requestContext"]["authorizer"];
    assert_eq!(authorizer["principalId"], "user-1");
    assert_eq!(authorizer["tier"], "gold");
    assert_eq!(authorizer["n"], 1);
    assert_eq!(authorizer["flag"], true);
    // The TOKEN event as AWS sends it.
    let sent = authorizer_event("allow#event").unwrap();
    assert_eq!(sent["type"], "TOKEN");
    assert_eq!(sent["authorizationToken"], "allow#event");
    let api_id = event["requestContext"]["apiId"].as_str().unwrap();
    assert_eq!(
        sent["methodArn"],
        format!("arn:aws:execute-api:us-east-1:000000000000:{api_id}/test/GET/token/1")
    );

    // Cached: the same token on the same method calls the function once.
    for _ in 0..3 {
        let reply = call(&gateway, "GET", "/token/1", Some("allow#cached")).await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(authorizer_calls("allow#cached"), 1);
    // The cached policy decides other methods of the stage: it names only GET /token/1.
    let reply = call(&gateway, "GET", "/token/2", Some("allow#cached")).await;
    assert_gateway_error(
        &reply,
        403,
        "AccessDeniedException",
        "User is not authorized to access this resource",
    );
    assert_eq!(authorizer_calls("allow#cached"), 1);
    // A policy over the whole stage allows every method with one call.
    for path in ["/token/1", "/token/2", "/mapped"] {
        let reply = call(&gateway, "GET", path, Some("allow-stage#s")).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    let reply = call(&gateway, "DELETE", "/token/9", Some("allow-stage#s")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(authorizer_calls("allow-stage#s"), 1);

    // TTL 0: every request calls the function.
    for _ in 0..2 {
        let reply = call(&gateway, "GET", "/uncached", Some("allow#nocache")).await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(authorizer_calls("allow#nocache"), 2);
    gateway.shutdown().await;
}

#[tokio::test]
async fn token_authorizer_outcomes_have_aws_answers() {
    let gateway = TestGateway::start(&api(None), &[]).await;

    // No token, or one the validation expression refuses: 401 without a call, through the
    // API's customised UNAUTHORIZED response.
    for token in [None, Some(""), Some("nonsense")] {
        let reply = call(&gateway, "GET", "/token/1", token).await;
        assert_eq!(reply.status, 401, "{token:?}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer realm=portico");
        assert_eq!(reply.headers["x-amzn-errortype"], "UnauthorizedException");
        assert_eq!(
            reply.json(),
            serde_json::json!({"message": "Unauthorized", "type": "UNAUTHORIZED"})
        );
    }
    assert_eq!(authorizer_calls("nonsense"), 0);

    // The function says Unauthorized: 401, not cached.
    for _ in 0..2 {
        let reply = call(&gateway, "GET", "/token/1", Some("unauthorized")).await;
        assert_eq!(reply.status, 401);
    }
    assert_eq!(authorizer_calls("unauthorized"), 2);

    // Explicit deny and a policy that does not cover the method.
    let reply = call(&gateway, "GET", "/token/1", Some("deny")).await;
    assert_gateway_error(
        &reply,
        403,
        "AccessDeniedException",
        "User is not authorized to access this resource with an explicit deny",
    );
    let reply = call(&gateway, "GET", "/token/1", Some("allow-other")).await;
    assert_gateway_error(
        &reply,
        403,
        "AccessDeniedException",
        "User is not authorized to access this resource",
    );

    // A function that fails or answers without a policy: 500 with a null message.
    for token in ["crash", "garbage"] {
        let reply = call(&gateway, "GET", "/token/1", Some(token)).await;
        assert_eq!(reply.status, 500, "{token}");
        assert_eq!(
            reply.headers["x-amzn-errortype"],
            "AuthorizerConfigurationException"
        );
        assert_eq!(reply.json(), serde_json::json!({"message": null}));
    }

    // A huge token is refused before any call, never a crash.
    let huge = format!("allow#{}", "x".repeat(20 * 1024));
    let reply = call(&gateway, "GET", "/token/1", Some(&huge)).await;
    assert_eq!(reply.status, 401);

    // Unknown routes use the customised MISSING_AUTHENTICATION_TOKEN response.
    let reply = call(&gateway, "GET", "/nowhere", None).await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json(),
        serde_json::json!({"message": "no such route", "stage": "test"})
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn authorizer_context_reaches_http_integrations() {
    let gateway = TestGateway::start(&api(None), &[]).await;
    let reply = call(&gateway, "GET", "/mapped", Some("allow#mapped")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = reply.json();
    assert_eq!(seen["headers"]["x-principal"], "user-1");
    assert_eq!(seen["headers"]["x-tier"], "gold");
    gateway.shutdown().await;
}

#[tokio::test]
async fn request_authorizer_needs_every_identity_source() {
    let gateway = TestGateway::start(&api(None), &[]).await;
    let request = |who: Option<&str>, tenant: Option<&str>| {
        let mut uri = gateway.url("/request");
        if let Some(who) = who {
            uri.push_str(&format!("?who={who}"));
        }
        let mut builder = Request::builder().uri(uri);
        if let Some(tenant) = tenant {
            builder = builder.header("x-tenant", tenant);
        }
        builder.body(Full::new(Bytes::new())).unwrap()
    };
    // A source missing: 401 without invoking.
    let reply = send(request(Some("allow-stage%23r"), None)).await;
    assert_eq!(reply.status, 401);
    let reply = send(request(None, Some("t1"))).await;
    assert_eq!(reply.status, 401);
    assert_eq!(authorizer_calls("allow-stage#r"), 0);

    let reply = send(request(Some("allow-stage%23r"), Some("t1"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = authorizer_event("allow-stage#r").unwrap();
    assert_eq!(sent["type"], "REQUEST");
    assert!(
        sent["methodArn"]
            .as_str()
            .unwrap()
            .ends_with("/test/GET/request")
    );
    assert_eq!(sent["resource"], "/request");
    assert_eq!(sent["queryStringParameters"]["who"], "allow-stage#r");
    assert!(sent.get("body").is_none(), "{sent}");
    assert!(sent["requestContext"]["requestId"].is_string());
    // Cached by all identity values: another tenant is another identity.
    let reply = send(request(Some("allow-stage%23r"), Some("t1"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(authorizer_calls("allow-stage#r"), 1);
    let reply = send(request(Some("allow-stage%23r"), Some("t2"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(authorizer_calls("allow-stage#r"), 2);
    gateway.shutdown().await;
}

#[tokio::test]
async fn resource_policies_allow_deny_and_combine_with_authorizers() {
    // Only loopback may call; one path is denied to everyone.
    let policy = r#"'{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}},
        {"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*/GET/token/666"}]}'"#;
    let gateway = TestGateway::start(&api(Some(policy)), &[]).await;
    let reply = call(&gateway, "GET", "/open", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // An explicit deny refuses before the authorizer is called.
    let reply = call(&gateway, "GET", "/token/666", Some("allow#rp")).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.headers["x-amzn-errortype"], "AccessDeniedException");
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:********0000:")
            && message.ends_with("/test/GET/token/666 with an explicit deny"),
        "{message}"
    );
    assert_eq!(authorizer_calls("allow#rp"), 0);
    // The trailing slash routing ignores is ignored by the ARN too: no way around the deny.
    let reply = call(&gateway, "GET", "/token/666/", Some("allow#rp")).await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .ends_with("/test/GET/token/666 with an explicit deny")
    );
    assert_eq!(authorizer_calls("allow#rp"), 0);
    // Allowed by both.
    let reply = call(&gateway, "GET", "/token/1", Some("allow#rp")).await;
    assert_eq!(reply.status, 200);
    gateway.shutdown().await;

    // A policy that allows nobody from here: implicit deny.
    let policy = r#"'{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}]}'"#;
    let gateway = TestGateway::start(&api(Some(policy)), &[]).await;
    let reply = call(&gateway, "GET", "/open", None).await;
    assert_eq!(reply.status, 403);
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.ends_with("/test/GET/open"), "{message}");
    // With a Lambda authorizer, no explicit deny: the authorizer decides (AWS's table).
    let reply = call(&gateway, "GET", "/token/1", Some("allow#rp2")).await;
    assert_eq!(reply.status, 200);
    gateway.shutdown().await;
}
