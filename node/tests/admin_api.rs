//! The management API over real HTTPS, signed with SigV4: a bad request to every operation gets
//! an API Gateway error (a 4xx, `x-amzn-ErrorType`, `{"message": ...}`), never a 500.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::admin::Admin;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

impl Admin {
    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, _, json) = self.call(method, path, &body.to_string()).await;
        assert!(status < 300, "{method} {path}: {status} {json}");
        json
    }
}

#[tokio::test]
async fn every_operation_answers_bad_requests_with_aws_errors() {
    let admin = Admin::start().await;
    // A small API to aim the bad requests at.
    let api = admin
        .ok("POST", "/restapis", json!({"name": "target"}))
        .await;
    let api_id = api["id"].as_str().unwrap().to_string();
    let root = api["rootResourceId"].as_str().unwrap().to_string();
    let res = admin
        .ok(
            "POST",
            &format!("/restapis/{api_id}/resources/{root}"),
            json!({"pathPart": "a"}),
        )
        .await;
    let res_id = res["id"].as_str().unwrap().to_string();
    let method = format!("/restapis/{api_id}/resources/{res_id}/methods/GET");
    admin
        .ok("PUT", &method, json!({"authorizationType": "NONE"}))
        .await;

    let r = format!("/restapis/{api_id}");
    let cases: Vec<(&str, &str, String, String, u16)> = vec![
        (
            "CreateRestApi",
            "POST",
            "/restapis".into(),
            "{not json".into(),
            400,
        ),
        (
            "CreateRestApi",
            "POST",
            "/restapis".into(),
            "{}".into(),
            400,
        ),
        (
            "GetRestApis",
            "GET",
            "/restapis?limit=0".into(),
            "".into(),
            400,
        ),
        (
            "GetRestApi",
            "GET",
            "/restapis/0000000000".into(),
            "".into(),
            404,
        ),
        (
            "UpdateRestApi",
            "PATCH",
            r.clone(),
            r#"{"patchOperations":[{"op":"explode","path":"/name"}]}"#.into(),
            400,
        ),
        (
            "DeleteRestApi",
            "DELETE",
            "/restapis/0000000000".into(),
            "".into(),
            404,
        ),
        (
            "ImportRestApi",
            "POST",
            "/restapis?mode=import".into(),
            "openapi: [".into(),
            400,
        ),
        (
            "PutRestApi",
            "PUT",
            format!("{r}?mode=sideways"),
            "{}".into(),
            400,
        ),
        (
            "PutRestApi",
            "PUT",
            "/restapis/0000000000?mode=overwrite".into(),
            r#"{"openapi":"3.0.1","info":{"title":"x","version":"1"},"paths":{}}"#.into(),
            404,
        ),
        (
            "GetResources",
            "GET",
            "/restapis/0000000000/resources".into(),
            "".into(),
            404,
        ),
        (
            "GetResource",
            "GET",
            format!("{r}/resources/0000000000"),
            "".into(),
            404,
        ),
        (
            "CreateResource",
            "POST",
            format!("{r}/resources/0000000000"),
            r#"{"pathPart":"b"}"#.into(),
            404,
        ),
        (
            "CreateResource",
            "POST",
            format!("{r}/resources/{root}"),
            r#"{"pathPart":"bad/part"}"#.into(),
            400,
        ),
        (
            "CreateResource",
            "POST",
            format!("{r}/resources/{root}"),
            r#"{"pathPart":"a"}"#.into(),
            409,
        ),
        (
            "DeleteResource",
            "DELETE",
            format!("{r}/resources/0000000000"),
            "".into(),
            404,
        ),
        (
            "PutMethod",
            "PUT",
            format!("{r}/resources/{res_id}/methods/FETCH"),
            r#"{"authorizationType":"NONE"}"#.into(),
            400,
        ),
        (
            "GetMethod",
            "GET",
            format!("{r}/resources/{res_id}/methods/POST"),
            "".into(),
            404,
        ),
        (
            "DeleteMethod",
            "DELETE",
            format!("{r}/resources/{res_id}/methods/POST"),
            "".into(),
            404,
        ),
        (
            "PutIntegration",
            "PUT",
            format!("{method}/integration"),
            r#"{"type":"CARRIER_PIGEON"}"#.into(),
            400,
        ),
        (
            "PutIntegration",
            "PUT",
            format!("{method}/integration"),
            r#"{"type":"HTTP_PROXY","httpMethod":"GET","uri":"not a url"}"#.into(),
            400,
        ),
        (
            "GetIntegration",
            "GET",
            format!("{method}/integration"),
            "".into(),
            404,
        ),
        (
            "DeleteIntegration",
            "DELETE",
            format!("{method}/integration"),
            "".into(),
            404,
        ),
        (
            "PutMethodResponse",
            "PUT",
            format!("{r}/resources/{res_id}/methods/POST/responses/200"),
            "{}".into(),
            404,
        ),
        (
            "PutMethodResponse",
            "PUT",
            format!("{method}/responses/999"),
            "{}".into(),
            400,
        ),
        (
            "PutIntegrationResponse",
            "PUT",
            format!("{method}/integration/responses/200"),
            "{}".into(),
            404,
        ),
        (
            "CreateDeployment",
            "POST",
            format!("{r}/deployments"),
            r#"{"stageName":"prod"}"#.into(),
            400,
        ),
        (
            "GetDeployments",
            "GET",
            "/restapis/0000000000/deployments".into(),
            "".into(),
            404,
        ),
        (
            "GetDeployment",
            "GET",
            format!("{r}/deployments/0000000000"),
            "".into(),
            404,
        ),
        (
            "DeleteDeployment",
            "DELETE",
            format!("{r}/deployments/0000000000"),
            "".into(),
            404,
        ),
        (
            "CreateStage",
            "POST",
            format!("{r}/stages"),
            r#"{"stageName":"prod"}"#.into(),
            400,
        ),
        (
            "GetStages",
            "GET",
            "/restapis/0000000000/stages".into(),
            "".into(),
            404,
        ),
        (
            "GetStage",
            "GET",
            format!("{r}/stages/nope"),
            "".into(),
            404,
        ),
        (
            "UpdateStage",
            "PATCH",
            format!("{r}/stages/nope"),
            r#"{"patchOperations":[]}"#.into(),
            404,
        ),
        (
            "DeleteStage",
            "DELETE",
            format!("{r}/stages/nope"),
            "".into(),
            404,
        ),
        (
            "GetExport",
            "GET",
            format!("{r}/stages/nope/exports/oas30"),
            "".into(),
            404,
        ),
        (
            "FlushStageCache",
            "DELETE",
            format!("{r}/stages/nope/cache/data"),
            "".into(),
            404,
        ),
        (
            "FlushStageCache",
            "DELETE",
            "/restapis/0000000000/stages/prod/cache/data".into(),
            "".into(),
            404,
        ),
        // Authorization (issue 12).
        (
            "CreateAuthorizer",
            "POST",
            format!("{r}/authorizers"),
            r#"{"name":"a","type":"OAUTH"}"#.into(),
            400,
        ),
        (
            "CreateAuthorizer",
            "POST",
            format!("{r}/authorizers"),
            r#"{"name":"a","type":"TOKEN","identitySource":"method.request.header.A","authorizerUri":"https://x"}"#.into(),
            400,
        ),
        (
            "CreateAuthorizer",
            "POST",
            format!("{r}/authorizers"),
            r#"{"type":"TOKEN"}"#.into(),
            400,
        ),
        (
            "CreateAuthorizer",
            "POST",
            "/restapis/0000000000/authorizers".into(),
            format!(r#"{{"name":"a","type":"TOKEN","identitySource":"method.request.header.A","authorizerUri":"{LAMBDA_URI}"}}"#),
            409,
        ),
        (
            "GetAuthorizers",
            "GET",
            "/restapis/0000000000/authorizers".into(),
            "".into(),
            404,
        ),
        (
            "GetAuthorizers",
            "GET",
            format!("{r}/authorizers?limit=0"),
            "".into(),
            400,
        ),
        (
            "GetAuthorizer",
            "GET",
            format!("{r}/authorizers/nope"),
            "".into(),
            404,
        ),
        (
            "UpdateAuthorizer",
            "PATCH",
            format!("{r}/authorizers/nope"),
            r#"{"patchOperations":[]}"#.into(),
            404,
        ),
        (
            "TestInvokeAuthorizer",
            "POST",
            format!("{r}/authorizers/nope"),
            "{}".into(),
            404,
        ),
        (
            "TestInvokeAuthorizer",
            "POST",
            "/restapis/0000000000/authorizers/nope".into(),
            "{}".into(),
            404,
        ),
        (
            "DeleteAuthorizer",
            "DELETE",
            format!("{r}/authorizers/nope"),
            "".into(),
            404,
        ),
        (
            "UpdateMethod",
            "PATCH",
            method.clone(),
            r#"{"patchOperations":[{"op":"replace","path":"/authorizationType","value":"CUSTOM"}]}"#.into(),
            400,
        ),
        (
            "UpdateMethod",
            "PATCH",
            format!("{r}/resources/{res_id}/methods/POST"),
            r#"{"patchOperations":[]}"#.into(),
            404,
        ),
        (
            "UpdateMethod",
            "PATCH",
            method.clone(),
            r#"{"patchOperations":[{"op":"jump","path":"/x"}]}"#.into(),
            400,
        ),
        (
            "UpdateRestApi",
            "PATCH",
            r.clone(),
            r#"{"patchOperations":[{"op":"replace","path":"/policy","value":"not json"}]}"#.into(),
            400,
        ),
        (
            "UpdateResource",
            "PATCH",
            format!("{r}/resources/0000000000"),
            r#"{"patchOperations":[]}"#.into(),
            404,
        ),
        (
            "UpdateResource",
            "PATCH",
            format!("{r}/resources/{res_id}"),
            r#"{"patchOperations":[{"op":"replace","path":"/pathPart","value":"bad/part"}]}"#
                .into(),
            400,
        ),
        (
            "UpdateIntegration",
            "PATCH",
            format!("{method}/integration"),
            r#"{"patchOperations":[]}"#.into(),
            404,
        ),
        (
            "UpdateMethodResponse",
            "PATCH",
            format!("{method}/responses/200"),
            r#"{"patchOperations":[]}"#.into(),
            404,
        ),
        (
            "UpdateMethodResponse",
            "PATCH",
            format!("{method}/responses/600"),
            r#"{"patchOperations":[]}"#.into(),
            400,
        ),
        (
            "UpdateIntegrationResponse",
            "PATCH",
            format!("{method}/integration/responses/200"),
            r#"{"patchOperations":[{"op":"fly","path":"/selectionPattern"}]}"#.into(),
            400,
        ),
        (
            "DeleteMethodResponse",
            "DELETE",
            format!("{method}/responses/200"),
            "".into(),
            404,
        ),
        (
            "DeleteIntegrationResponse",
            "DELETE",
            format!("{method}/integration/responses/200"),
            "".into(),
            404,
        ),
        (
            "UpdateDeployment",
            "PATCH",
            format!("{r}/deployments/0000000000"),
            r#"{"patchOperations":[]}"#.into(),
            404,
        ),
        (
            "CreateRestApi",
            "POST",
            "/restapis".into(),
            r#"{"name":"p","policy":"[1]"}"#.into(),
            400,
        ),
        (
            "GetGatewayResponses",
            "GET",
            "/restapis/0000000000/gatewayresponses".into(),
            "".into(),
            404,
        ),
        (
            "GetGatewayResponse",
            "GET",
            format!("{r}/gatewayresponses/NOPE"),
            "".into(),
            400,
        ),
        (
            "PutGatewayResponse",
            "PUT",
            format!("{r}/gatewayresponses/UNAUTHORIZED"),
            r#"{"statusCode":"99"}"#.into(),
            400,
        ),
        (
            "PutGatewayResponse",
            "PUT",
            format!("{r}/gatewayresponses/NOPE"),
            "{}".into(),
            400,
        ),
        (
            "UpdateGatewayResponse",
            "PATCH",
            format!("{r}/gatewayresponses/DEFAULT_4XX"),
            r#"{"patchOperations":[{"op":"add","path":"/statusCode","value":"444"}]}"#.into(),
            400,
        ),
        (
            "UpdateGatewayResponse",
            "PATCH",
            format!("{r}/gatewayresponses/DEFAULT_5XX"),
            r#"{"patchOperations":[{"op":"replace","path":"/responseParameters/x","value":"'v'"}]}"#.into(),
            404,
        ),
        (
            "DeleteGatewayResponse",
            "DELETE",
            format!("{r}/gatewayresponses/DEFAULT_4XX"),
            "".into(),
            404,
        ),
        (
            "FlushStageAuthorizersCache",
            "DELETE",
            format!("{r}/stages/nope/cache/authorizers"),
            "".into(),
            404,
        ),
        (
            "FlushStageAuthorizersCache",
            "DELETE",
            "/restapis/0000000000/stages/prod/cache/authorizers".into(),
            "".into(),
            404,
        ),
        (
            "TestInvokeMethod",
            "POST",
            format!("{r}/resources/0000000000/methods/GET"),
            "{}".into(),
            404,
        ),
        (
            "Unknown",
            "GET",
            "/domainnames/x/nothing".into(),
            "".into(),
            404,
        ),
    ];
    for (operation, method, path, body, expected) in cases {
        let (status, error_type, json) = admin.call(method, &path, &body).await;
        assert_eq!(status, expected, "{operation} {method} {path}: {json}");
        let error_type = error_type.unwrap_or_else(|| panic!("{operation}: no x-amzn-ErrorType"));
        assert!(
            error_type.ends_with("Exception"),
            "{operation}: {error_type}"
        );
        assert!(
            json["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{operation}: {json}"
        );
    }

    // An export with an unknown type, on a real stage.
    admin
        .ok(
            "PUT",
            &format!("{method}/integration"),
            json!({"type": "MOCK", "requestTemplates": {"application/json": "{\"statusCode\": 200}"}}),
        )
        .await;
    admin
        .ok(
            "POST",
            &format!("{r}/deployments"),
            json!({"stageName": "prod"}),
        )
        .await;
    let (status, error_type, _) = admin
        .call("GET", &format!("{r}/stages/prod/exports/raml"), "")
        .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (400, Some("BadRequestException"))
    );
    // FlushStageCache on a real stage: 202 and no body, as AWS answers.
    let (status, _, body) = admin
        .call("DELETE", &format!("{r}/stages/prod/cache/data"), "")
        .await;
    assert_eq!(status, 202, "{body}");
    // FlushStageAuthorizersCache on a real stage: 202 and no body.
    let (status, _, body) = admin
        .call("DELETE", &format!("{r}/stages/prod/cache/authorizers"), "")
        .await;
    assert_eq!(status, 202, "{body}");
    // An authorizer in use cannot be deleted (409).
    let authorizer = admin
        .ok(
            "POST",
            &format!("{r}/authorizers"),
            json!({"name": "tok", "type": "TOKEN", "authorizerUri": LAMBDA_URI,
                   "identitySource": "method.request.header.Authorization"}),
        )
        .await;
    let authorizer_id = authorizer["id"].as_str().unwrap().to_string();
    admin
        .ok(
            "PATCH",
            &method,
            json!({"patchOperations": [
                {"op": "replace", "path": "/authorizationType", "value": "CUSTOM"},
                {"op": "replace", "path": "/authorizerId", "value": authorizer_id},
            ]}),
        )
        .await;
    let (status, error_type, body) = admin
        .call("DELETE", &format!("{r}/authorizers/{authorizer_id}"), "")
        .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (409, Some("ConflictException")),
        "{body}"
    );
    admin.node.shutdown().await;
}

const LAMBDA_URI: &str = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:auth/invocations";

#[tokio::test]
async fn unsigned_requests_are_refused() {
    let admin = Admin::start().await;
    let request = Request::get(format!("{}/restapis", admin.base))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = common::read(admin.client.request(request).await.unwrap()).await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.headers["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    admin.node.shutdown().await;
}

/// Credentials are checked before a request slot is taken or the body read: an unsigned
/// request whose body never arrives is refused at once, and cannot tie the API up.
#[tokio::test]
async fn unsigned_requests_are_refused_before_their_body_is_read() {
    let admin = Admin::start().await;
    let client = Client::builder(TokioExecutor::new()).build(
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config({
                let cert =
                    CertificateDer::from_pem_file(admin.data_dir.path().join("cert.pem")).unwrap();
                let mut roots = rustls::RootCertStore::empty();
                roots.add(cert).unwrap();
                portico::tls::client_config(roots).unwrap()
            })
            .https_only()
            .enable_http1()
            .build(),
    );
    let mut pending = Vec::new();
    for _ in 0..80 {
        // A body that never ends.
        let never = http_body_util::StreamBody::new(futures_util::stream::pending::<
            Result<hyper::body::Frame<Bytes>, std::io::Error>,
        >());
        let request = Request::post(format!("{}/restapis", admin.base))
            .body(never)
            .unwrap();
        pending.push(tokio::spawn(client.request(request)));
    }
    for request in pending {
        let response = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("refused without waiting for the body")
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), 403);
    }
    // Signed requests still get through.
    let (status, _, _) = admin.call("GET", "/restapis", "").await;
    assert_eq!(status, 200);
    admin.node.shutdown().await;
}

/// Issue 15's operations over HTTP: botocore's status codes, AWS's shapes and error types.
#[tokio::test]
async fn control_plane_updates_and_deletes_answer_as_aws() {
    let admin = Admin::start().await;
    let api = admin.ok("POST", "/restapis", json!({"name": "cp"})).await;
    let api_id = api["id"].as_str().unwrap().to_string();
    let root = api["rootResourceId"].as_str().unwrap().to_string();
    let r = format!("/restapis/{api_id}");
    let pets = admin
        .ok(
            "POST",
            &format!("{r}/resources/{root}"),
            json!({"pathPart": "pets"}),
        )
        .await;
    let pets_id = pets["id"].as_str().unwrap().to_string();
    let sub = admin
        .ok(
            "POST",
            &format!("{r}/resources/{pets_id}"),
            json!({"pathPart": "subpets"}),
        )
        .await;
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let method = format!("{r}/resources/{pets_id}/methods/GET");
    admin
        .ok("PUT", &method, json!({"authorizationType": "NONE"}))
        .await;
    admin
        .ok(
            "PUT",
            &format!("{method}/integration"),
            json!({"type": "MOCK", "requestTemplates": {"application/json": "{\"statusCode\": 200}"}}),
        )
        .await;
    admin
        .ok("PUT", &format!("{method}/responses/200"), json!({}))
        .await;
    admin
        .ok(
            "PUT",
            &format!("{method}/integration/responses/200"),
            json!({"selectionPattern": "", "responseTemplates": {"application/json": "\"created\""}}),
        )
        .await;

    // UpdateMethodResponse answers 201 (botocore's responseCode), recorded shape.
    let (status, _, body) = admin
        .call(
            "PATCH",
            &format!("{method}/responses/200"),
            &json!({"patchOperations": [
                {"op": "add", "path": "/responseParameters/method.response.header.my-header", "value": "true"},
                {"op": "add", "path": "/responseModels/application~1json", "value": "Empty"}
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"statusCode": "200", "responseModels": {"application/json": "Empty"},
               "responseParameters": {"method.response.header.my-header": true}})
    );
    // A wrong op and a wrong status code in one ValidationException (recorded text).
    let (status, kind, body) = admin
        .call(
            "PATCH",
            &format!("{method}/responses/wrong"),
            r#"{"patchOperations":[{"op":"wrong_op","path":"/x"}]}"#,
        )
        .await;
    assert_eq!(
        (status, kind.as_deref()),
        (400, Some("ValidationException"))
    );
    assert_eq!(
        body["message"],
        "2 validation errors detected: Value 'wrong_op' at 'updateMethodResponseInput.patchOperations.1.member.op' failed to satisfy constraint: Member must satisfy enum value set: [add, remove, move, test, replace, copy]; Value 'wrong' at 'statusCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [1-5]\\d\\d"
    );

    // UpdateIntegrationResponse (recorded `update-integration-response`).
    let (status, _, body) = admin
        .call(
            "PATCH",
            &format!("{method}/integration/responses/200"),
            r#"{"patchOperations":[{"op":"replace","path":"/selectionPattern","value":"updated-pattern"}]}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"statusCode": "200", "selectionPattern": "updated-pattern",
               "responseTemplates": {"application/json": "\"created\""}})
    );

    // UpdateIntegration answers the whole integration.
    let (status, _, body) = admin
        .call(
            "PATCH",
            &format!("{method}/integration"),
            r#"{"patchOperations":[{"op":"replace","path":"/timeoutInMillis","value":"1000"}]}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["timeoutInMillis"], 1000);
    assert_eq!(body["type"], "MOCK");
    assert_eq!(
        body["integrationResponses"]["200"]["selectionPattern"],
        "updated-pattern"
    );
    let (status, kind, body) = admin
        .call(
            "PATCH",
            &format!("{method}/integration"),
            r#"{"patchOperations":[{"op":"replace","path":"/nothing","value":"x"}]}"#,
        )
        .await;
    assert_eq!(
        (status, kind.as_deref()),
        (400, Some("BadRequestException"))
    );
    assert_eq!(body["message"], "Invalid patch path /nothing");

    // The deletes: 204, then 404 with AWS's text.
    for path in [
        format!("{method}/integration/responses/200"),
        format!("{method}/responses/200"),
    ] {
        let (status, _, _) = admin.call("DELETE", &path, "").await;
        assert_eq!(status, 204, "{path}");
        let (status, kind, body) = admin.call("DELETE", &path, "").await;
        assert_eq!((status, kind.as_deref()), (404, Some("NotFoundException")));
        assert_eq!(body["message"], "Invalid Response status code specified");
    }
    let (status, _, method_now) = admin.call("GET", &method, "").await;
    assert_eq!(status, 200);
    assert!(method_now.get("methodResponses").is_none(), "{method_now}");

    // UpdateResource: a move answers the resource with its new path; a clash is a 409.
    let (status, _, body) = admin
        .call(
            "PATCH",
            &format!("{r}/resources/{sub_id}"),
            &json!({"patchOperations": [{"op": "replace", "path": "/parentId", "value": root}]})
                .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"id": sub_id, "parentId": root, "path": "/subpets", "pathPart": "subpets"})
    );
    let (status, kind, body) = admin
        .call(
            "PATCH",
            &format!("{r}/resources/{sub_id}"),
            r#"{"patchOperations":[{"op":"replace","path":"/pathPart","value":"pets"}]}"#,
        )
        .await;
    assert_eq!((status, kind.as_deref()), (409, Some("ConflictException")));
    assert_eq!(
        body["message"],
        "Another resource with the same parent already has this name: pets"
    );

    // Deployments: UpdateDeployment, GetStages' filter, DeleteDeployment refused while used.
    let first = admin
        .ok(
            "POST",
            &format!("{r}/deployments"),
            json!({"stageName": "stage1"}),
        )
        .await;
    let first_id = first["id"].as_str().unwrap().to_string();
    let second = admin
        .ok(
            "POST",
            &format!("{r}/deployments"),
            json!({"stageName": "stage2"}),
        )
        .await;
    let second_id = second["id"].as_str().unwrap().to_string();
    let (status, _, body) = admin
        .call(
            "PATCH",
            &format!("{r}/deployments/{first_id}"),
            r#"{"patchOperations":[{"op":"replace","path":"/description","value":"renamed"}]}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["description"], "renamed");
    assert_eq!(body["id"], first_id.as_str());
    for (id, name) in [(&first_id, "stage1"), (&second_id, "stage2")] {
        let (status, _, body) = admin
            .call("GET", &format!("{r}/stages?deploymentId={id}"), "")
            .await;
        assert_eq!(status, 200);
        let items = body["item"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{body}");
        assert_eq!(items[0]["stageName"], name);
    }
    let (_, _, all) = admin.call("GET", &format!("{r}/stages"), "").await;
    assert_eq!(all["item"].as_array().unwrap().len(), 2);
    let (status, kind, body) = admin
        .call("DELETE", &format!("{r}/deployments/{first_id}"), "")
        .await;
    assert_eq!(
        (status, kind.as_deref()),
        (400, Some("BadRequestException"))
    );
    assert_eq!(
        body["message"],
        "Active stages pointing to this deployment must be moved or deleted"
    );
}
