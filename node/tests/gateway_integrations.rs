//! Each integration type end to end: a real gateway, a real backend, a real function endpoint.

mod common;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;

const API: &str = r#"
openapi: 3.0.1
info: { title: integrations, version: "1" }
paths:
  /proxy/{proxy+}:
    x-amazon-apigateway-any-method:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: ANY
        uri: http://{{BACKEND}}/upstream/{proxy}
        requestParameters:
          integration.request.path.proxy: method.request.path.proxy
          integration.request.header.x-mapped: "'static-value'"
  /forced-post:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: POST
        uri: http://{{BACKEND}}/forced
  /status/{code}:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://{{BACKEND}}/status/{code}
  /slow:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://{{BACKEND}}/slow/2000
        timeoutInMillis: 100
  /unreachable:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://127.0.0.1:1/nothing
  /staged:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://${stageVariables.host}/${stageVariables.path}
  /missing-var:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://${stageVariables.nope}/x
  /mapped/{id}:
    post:
      parameters:
        - { name: id, in: path, required: true, schema: { type: string } }
        - { name: q, in: query, schema: { type: string } }
        - { name: x-in, in: header, schema: { type: string } }
      x-amazon-apigateway-integration:
        type: http
        httpMethod: PUT
        uri: http://{{BACKEND}}/items/{item}
        passthroughBehavior: when_no_match
        requestParameters:
          integration.request.path.item: method.request.path.id
          integration.request.querystring.search: method.request.querystring.q
          integration.request.querystring.stage: stageVariables.host
          integration.request.header.x-out: method.request.header.x-in
          integration.request.header.x-request-id: context.requestId
        responses:
          default:
            statusCode: "200"
            responseParameters:
              method.response.header.x-from-backend: integration.response.header.x-backend
              method.response.header.x-literal: "'yes'"
  /nonproxy-status:
    get:
      x-amazon-apigateway-integration:
        type: http
        httpMethod: GET
        uri: http://{{BACKEND}}/status/400
        responses:
          default:
            statusCode: "200"
  /selected:
    get:
      x-amazon-apigateway-integration:
        type: http
        httpMethod: GET
        uri: http://{{BACKEND}}/status/404
        responses:
          "4\\d\\d":
            statusCode: "400"
            responseTemplates:
              application/json: '{"message": "mapped client error"}'
          default:
            statusCode: "200"
  /never:
    post:
      x-amazon-apigateway-integration:
        type: http
        httpMethod: POST
        uri: http://{{BACKEND}}/never
        passthroughBehavior: never
        requestTemplates:
          application/json: '{"fixed": true}'
        responses:
          default: { statusCode: "200" }
  /fn/{proxy+}:
    x-amazon-apigateway-any-method:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:echo/invocations
  /fn-static:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations
  /fn-bad/{which}:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/${stageVariables.badFunction}/invocations
  /fn-created:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/created/invocations
  /fn-slow:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        timeoutInMillis: 200
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/slow/invocations
  /stall-proxy:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://{{BACKEND}}/stall
        timeoutInMillis: 300
  /stall-http:
    get:
      x-amazon-apigateway-integration:
        type: http
        httpMethod: GET
        uri: http://{{BACKEND}}/stall
        timeoutInMillis: 300
        responses: { default: { statusCode: "200" } }
  /inject:
    get:
      x-amazon-apigateway-integration:
        type: http
        httpMethod: GET
        uri: http://{{BACKEND}}/items/{item}
        requestParameters:
          integration.request.path.item: method.request.querystring.id
        responses: { default: { statusCode: "200" } }
  /bad-header-mapping:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://{{BACKEND}}/x
        requestParameters:
          integration.request.header.Content-Length: "'5'"
  /fn-get-verb:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: GET
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations
  /fn-lying:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/lying_length/invocations
  /mock:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates:
          application/json: '{"statusCode": 202}'
        responses:
          "2\\d\\d":
            statusCode: "202"
            responseParameters:
              method.response.header.x-mock: "'mocked'"
            responseTemplates:
              application/json: '{"mocked": true}'
          default:
            statusCode: "500"
"#;

async fn gateway() -> TestGateway {
    TestGateway::start(
        API,
        &[("host", "example.internal"), ("badFunction", "malformed")],
    )
    .await
}

#[tokio::test]
async fn http_proxy_forwards_method_path_query_headers_and_body() {
    let gw = gateway().await;
    let request = Request::builder()
        .method("PATCH")
        .uri(gw.url("/proxy/a/b%20c?x=1&x=2"))
        .header("x-custom", "kept")
        .header("connection", "keep-alive")
        .header("x-forwarded-for", "10.9.8.7")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = reply.json();
    assert_eq!(seen["method"], "PATCH");
    assert_eq!(seen["path"], "/upstream/a/b%20c");
    assert_eq!(seen["query"], "x=1&x=2");
    assert_eq!(seen["body"], "payload");
    let headers = &seen["headers"];
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(headers["x-mapped"], "static-value");
    assert_eq!(headers["x-forwarded-for"], "10.9.8.7, 127.0.0.1");
    assert_eq!(headers["host"], gw.backend.to_string());
    assert_eq!(headers["x-amzn-apigateway-api-id"], gw.node.api_id.as_str());
    assert!(
        headers["x-amzn-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    // The backend's Server header comes back renamed, its own headers as they are.
    assert_eq!(reply.headers["x-amzn-remapped-server"], "echo-backend");
    assert_eq!(reply.headers["x-backend"], "echo");
    assert!(reply.headers.contains_key("x-amzn-requestid"));
    gw.shutdown().await;
}

#[tokio::test]
async fn http_proxy_integration_method_overrides_and_status_passes_through() {
    let gw = gateway().await;
    let reply = get(&gw.url("/forced-post")).await;
    assert_eq!(reply.json()["method"], "POST");
    let reply = get(&gw.url("/status/418")).await;
    assert_eq!(reply.status, 418);
    gw.shutdown().await;
}

#[tokio::test]
async fn http_proxy_failures_answer_as_api_gateway_does() {
    let gw = gateway().await;
    assert_gateway_error(
        &get(&gw.url("/slow")).await,
        504,
        "InternalServerErrorException",
        "Endpoint request timed out",
    );
    assert_gateway_error(
        &get(&gw.url("/unreachable")).await,
        500,
        "InternalServerErrorException",
        "Internal server error",
    );
    // A stage variable the URI needs but the stage lacks is a configuration error: 500.
    assert_gateway_error(
        &get(&gw.url("/missing-var")).await,
        500,
        "InternalServerErrorException",
        "Internal server error",
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn stage_variables_build_the_uri() {
    let backend_shutdown = portico::accept::Shutdown::new();
    let backend = start_echo_backend(&backend_shutdown).await;
    let host = backend.local_addr.to_string();
    let gw = TestGateway::start(API, &[("host", &host), ("path", "from-stage")]).await;
    let reply = get(&gw.url("/staged")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["path"], "/from-stage");
    gw.shutdown().await;
    backend_shutdown.trigger();
}

#[tokio::test]
async fn http_integration_maps_parameters_and_responses() {
    let gw = gateway().await;
    let request = Request::builder()
        .method("POST")
        .uri(gw.url("/mapped/42?q=a%20b&ignored=1"))
        .header("x-in", "header-value")
        .header("x-not-mapped", "dropped")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"raw body")))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["x-from-backend"], "echo");
    assert_eq!(reply.headers["x-literal"], "yes");
    let seen = reply.json();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/items/42");
    assert_eq!(seen["query"], "search=a%20b&stage=example.internal");
    assert_eq!(seen["headers"]["x-out"], "header-value");
    assert_eq!(
        seen["headers"]["x-request-id"],
        reply.headers["x-amzn-requestid"].to_str().unwrap()
    );
    assert!(seen["headers"].get("x-not-mapped").is_none());
    assert_eq!(seen["body"], "raw body");
    gw.shutdown().await;
}

#[tokio::test]
async fn http_integration_selects_integration_responses() {
    let gw = gateway().await;
    // Only a default 200 response: the backend's 400 becomes a 200 (recorded AWS behaviour).
    let reply = get(&gw.url("/nonproxy-status")).await;
    assert_eq!(reply.status, 200);
    let reply = get(&gw.url("/selected")).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        serde_json::json!({"message": "mapped client error"})
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn passthrough_never_refuses_unmatched_content_types() {
    let gw = gateway().await;
    let request = Request::post(gw.url("/never"))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"x")))
        .unwrap();
    assert_gateway_error(
        &send(request).await,
        415,
        "UnsupportedMediaTypeException",
        "Unsupported Media Type",
    );
    let request = Request::post(gw.url("/never"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"ignored\": 1}")))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["body"], "{\"fixed\": true}");
    gw.shutdown().await;
}

#[tokio::test]
async fn aws_proxy_sends_the_v1_event() {
    let gw = gateway().await;
    let request = Request::builder()
        .method("POST")
        .uri(gw.url("/fn/a/b%2Bc/?category=electronics&category=books&q=x+y"))
        .header("content-type", "application/json")
        .header("x-repeated", "one")
        .header("x-repeated", "two")
        .body(Full::new(Bytes::from_static(br#"{"hello":"world"}"#)))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["x-function"], "echo");
    let event = reply.json();
    assert_eq!(event["resource"], "/fn/{proxy+}");
    assert_eq!(event["path"], "/fn/a/b%2Bc/");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(
        event["pathParameters"],
        serde_json::json!({"proxy": "a/b%2Bc"})
    );
    assert_eq!(event["queryStringParameters"]["category"], "books");
    assert_eq!(event["queryStringParameters"]["q"], "x y");
    assert_eq!(
        event["multiValueQueryStringParameters"]["category"],
        serde_json::json!(["electronics", "books"])
    );
    assert_eq!(event["headers"]["Content-Type"], "application/json");
    assert_eq!(event["headers"]["X-Repeated"], "two");
    assert_eq!(
        event["multiValueHeaders"]["X-Repeated"],
        serde_json::json!(["one", "two"])
    );
    assert_eq!(event["headers"]["X-Forwarded-For"], "127.0.0.1");
    assert_eq!(event["headers"]["X-Forwarded-Proto"], "http");
    assert_eq!(
        event["headers"]["X-Forwarded-Port"],
        gw.node.http_addr.unwrap().port().to_string()
    );
    assert_eq!(event["body"], r#"{"hello":"world"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(
        event["stageVariables"],
        serde_json::json!({"badFunction": "malformed", "host": "example.internal"})
    );
    let context = &event["requestContext"];
    assert_eq!(context["path"], "/test/fn/a/b%2Bc/");
    assert_eq!(context["resourcePath"], "/fn/{proxy+}");
    assert_eq!(context["stage"], "test");
    assert_eq!(context["apiId"], gw.node.api_id.as_str());
    assert_eq!(context["httpMethod"], "POST");
    assert_eq!(context["protocol"], "HTTP/1.1");
    assert_eq!(context["identity"]["sourceIp"], "127.0.0.1");
    assert!(context["identity"]["user"].is_null());
    assert_eq!(
        context["requestId"],
        reply.headers["x-amzn-requestid"].to_str().unwrap()
    );
    assert!(context["requestTimeEpoch"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(context["requestTime"].as_str().unwrap().ends_with(" +0000"));
    gw.shutdown().await;
}

#[tokio::test]
async fn aws_proxy_absent_parts_are_null() {
    let gw = TestGateway::start(API, &[]).await;
    let event = get(&gw.url("/fn-static")).await.json();
    for field in [
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ] {
        assert!(
            event[field].is_null(),
            "{field} should be null: {}",
            event[field]
        );
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn aws_proxy_reply_rules() {
    let gw = gateway().await;
    let reply = get(&gw.url("/fn-created")).await;
    assert_eq!(reply.status, 201);
    let multi: Vec<_> = reply.headers.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["a", "b", "c"]);
    assert_eq!(reply.headers["x-flag"], "true");
    assert_eq!(reply.headers["content-type"], "application/json");
    assert!(reply.body.is_empty());
    gw.shutdown().await;
}

#[tokio::test]
async fn aws_proxy_failures() {
    let gw = gateway().await;
    // A reply that is not a proxy response object → 502.
    assert_gateway_error(
        &get(&gw.url("/fn-bad/x")).await,
        502,
        "InternalServerErrorException",
        "Internal server error",
    );
    // The function raised (X-Amz-Function-Error) → 502.
    let raises = TestGateway::start(API, &[("badFunction", "raises")]).await;
    assert_gateway_error(
        &get(&raises.url("/fn-bad/x")).await,
        502,
        "InternalServerErrorException",
        "Internal server error",
    );
    // The endpoint does not know the function (404 from the Invoke API) → 500.
    let unknown = TestGateway::start(API, &[("badFunction", "nobody")]).await;
    assert_gateway_error(
        &get(&unknown.url("/fn-bad/x")).await,
        500,
        "InternalServerErrorException",
        "Internal server error",
    );
    // Slower than the integration timeout → 504.
    assert_gateway_error(
        &get(&gw.url("/fn-slow")).await,
        504,
        "InternalServerErrorException",
        "Endpoint request timed out",
    );
    gw.shutdown().await;
    raises.shutdown().await;
    unknown.shutdown().await;
}

#[tokio::test]
async fn functions_map_to_their_own_endpoints() {
    // `--function echo=URL` wins over the default endpoint, which here points nowhere.
    let gw = TestGateway::start_with(API, &[], |options| {
        let endpoint = options.functions.default.take().unwrap();
        options.functions.by_name.insert("echo".into(), endpoint);
        options.functions.default = Some("http://127.0.0.1:1".into());
    })
    .await;
    assert_eq!(get(&gw.url("/fn-static")).await.status, 200);
    assert_eq!(get(&gw.url("/fn-created")).await.status, 500);
    gw.shutdown().await;
}

#[tokio::test]
async fn mock_answers_from_integration_responses() {
    let gw = gateway().await;
    let reply = get(&gw.url("/mock")).await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.headers["x-mock"], "mocked");
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.json(), serde_json::json!({"mocked": true}));
    gw.shutdown().await;
}

#[tokio::test]
async fn https_backends_are_verified_against_system_roots_plus_the_ca_file() {
    let backend_shutdown = portico::accept::Shutdown::new();
    let cert_dir = tempfile::tempdir().unwrap();
    let key = portico::tls::load_or_create_self_signed(cert_dir.path()).unwrap();
    let tls = std::sync::Arc::new(portico::tls::server_config(key).unwrap());
    let backend = start_echo_backend_with_tls(&backend_shutdown, Some(tls)).await;
    let definition = format!(
        r#"
openapi: 3.0.1
info: {{ title: tls, version: "1" }}
paths:
  /verified:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: https://127.0.0.1:{port}/verified
  /insecure:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: https://127.0.0.1:{port}/insecure
        tlsConfig: {{ insecureSkipVerification: true }}
"#,
        port = backend.local_addr.port()
    );

    // The backend's certificate is not signed by any system root: refused, unless the
    // integration opts out of verification.
    let untrusting = TestGateway::start(&definition, &[]).await;
    assert_gateway_error(
        &get(&untrusting.url("/verified")).await,
        500,
        "InternalServerErrorException",
        "Internal server error",
    );
    let reply = get(&untrusting.url("/insecure")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["path"], "/insecure");
    untrusting.shutdown().await;

    // With the certificate in --ca-file, verification succeeds.
    let ca_file = cert_dir.path().join("cert.pem");
    let trusting = TestGateway::start_with(&definition, &[], |options| {
        options.ca_file = Some(ca_file);
    })
    .await;
    let reply = get(&trusting.url("/verified")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["path"], "/verified");
    trusting.shutdown().await;
    backend_shutdown.trigger();
}

#[tokio::test]
async fn the_integration_timeout_covers_the_whole_response() {
    let gw = gateway().await;
    // Streamed: the headers arrive, then the body is cut when the deadline passes, instead of
    // holding the client forever.
    let response = tokio::time::timeout(
        TEST_TIMEOUT,
        client().request(
            Request::get(gw.url("/stall-proxy"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        http_body_util::BodyExt::collect(response.into_body()),
    )
    .await
    .expect("the stalled body ends within the deadline");
    assert!(
        body.is_err(),
        "a cut body is an error, not a complete response"
    );
    // Buffered: the whole call is one deadline, answered with 504.
    assert_gateway_error(
        &get(&gw.url("/stall-http")).await,
        504,
        "InternalServerErrorException",
        "Endpoint request timed out",
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn decoded_values_mapped_into_a_path_stay_one_segment() {
    let gw = gateway().await;
    for (query, expected) in [
        ("id=x%3Fadmin%3Dtrue", "/items/x%3Fadmin%3Dtrue"),
        ("id=a%2F..%2Fb", "/items/a%2F..%2Fb"),
        ("id=a%20b", "/items/a%20b"),
    ] {
        let reply = get(&gw.url(&format!("/inject?{query}"))).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
        assert_eq!(reply.json()["path"], expected, "{query}");
        assert!(
            reply.json()["query"].is_null(),
            "{query}: nothing injected into the query"
        );
    }
    // Encoded as one segment, `../../secret` would still climb above `/items/` on a backend
    // that decodes `%2F` before resolving dot segments: refused.
    assert_gateway_error(
        &get(&gw.url("/inject?id=..%2F..%2Fsecret")).await,
        400,
        "BadRequestException",
        "Bad Request",
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn framing_headers_never_pass_through() {
    let gw = gateway().await;
    // A function that declares a wrong Content-Length: the body still arrives whole, and the
    // declared value comes back renamed, as API Gateway does.
    let reply = get(&gw.url("/fn-lying")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello");
    assert_eq!(reply.headers["x-amzn-remapped-content-length"], "1");
    assert!(!reply.headers.contains_key("transfer-encoding"));
    // The keep-alive connection is still in sync: the next request on the pool works.
    assert_eq!(get(&gw.url("/mock")).await.status, 202);
    // Mapping a framing header into the integration request is refused (500), as recorded.
    assert_gateway_error(
        &get(&gw.url("/bad-header-mapping")).await,
        500,
        "InternalServerErrorException",
        "Internal server error",
    );
    // A Lambda proxy integration with another verb than POST fails, as recorded on AWS.
    assert_gateway_error(
        &get(&gw.url("/fn-get-verb")).await,
        500,
        "InternalServerErrorException",
        "Internal server error",
    );
    gw.shutdown().await;
}

/// The event has exactly the fields of a real one: top level as in AWS's published sample event
/// (`aws-lambda-go-events/apigw-request.json`), `requestContext` and `identity` as in an event
/// recorded from real API Gateway without authorizer or key
/// (`localstack-aws-snapshots/test_apigateway_lambda.snapshot.json`).
#[tokio::test]
async fn aws_proxy_event_has_the_fields_of_real_aws_events() {
    let read = |path: &str| -> serde_json::Value {
        let full = format!(
            "{}/../../shared/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
    };
    let sample = read("aws-lambda-go-events/apigw-request.json");
    let recorded = read("localstack-aws-snapshots/test_apigateway_lambda.snapshot.json");
    let recorded_context = &recorded["tests/aws/services/apigateway/test_apigateway_lambda.py::test_lambda_aws_proxy_integration"]
        ["recorded-content"]["invocation-payload-without-trailing-slash"]["requestContext"];
    assert!(
        recorded_context.is_object(),
        "the recorded event is where this test expects it"
    );

    let gw = gateway().await;
    let event = get(&gw.url("/fn/x?name=me")).await.json();
    let keys = |value: &serde_json::Value| -> std::collections::BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    };
    // The sample predates `isBase64Encoded`, which recorded AWS events carry (AWS-FACTS §3).
    let mut expected = keys(&sample);
    expected.insert("isBase64Encoded".to_string());
    assert_eq!(keys(&event), expected);
    assert_eq!(keys(&event["requestContext"]), keys(recorded_context));
    assert_eq!(
        keys(&event["requestContext"]["identity"]),
        keys(&recorded_context["identity"])
    );
    gw.shutdown().await;
}
