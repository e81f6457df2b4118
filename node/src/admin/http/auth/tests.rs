//! Renderers and parsers against responses recorded from real AWS (LocalStack's validated
//! snapshots at 8b9a79f0, `/work/shared/fixtures/localstack-aws-snapshots/`), with the
//! snapshots' id placeholders used as ids.

use portico_proto::admin::{self, AdminOp};
use portico_proto::model::{ApiKeySource, EndpointConfiguration, GatewayState, Method, RestApi};
use serde_json::{Value, json};

use super::*;

const TEMPLATE_404: &str = "{\n     \"message\": $context.error.messageString,\n     \"type\":  \"$context.error.responseType\",\n     \"stage\":  \"$context.stage\",\n     \"resourcePath\":  \"$context.resourcePath\",\n     \"stageVariables.a\":  \"$stageVariables.a\",\n     \"statusCode\": \"'404'\"\n}";

/// LS api `test_gateway_response_put` `get-gateway-responses` (items sorted by type).
const RECORDED_AFTER_PUTS: &str = r#"[{"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "ACCESS_DENIED", "statusCode": "403"}, {"defaultResponse": true, "responseParameters": {"gatewayresponse.header.x-request-header": "method.request.header.Accept"}, "responseTemplates": {"application/json": "{\n     \"message\": $context.error.messageString,\n     \"type\":  \"$context.error.responseType\",\n     \"stage\":  \"$context.stage\",\n     \"resourcePath\":  \"$context.resourcePath\",\n     \"stageVariables.a\":  \"$stageVariables.a\",\n     \"statusCode\": \"'404'\"\n}"}, "responseType": "API_CONFIGURATION_ERROR", "statusCode": "599"}, {"defaultResponse": true, "responseParameters": {"gatewayresponse.header.x-request-header": "method.request.header.Accept"}, "responseTemplates": {"application/json": "{\n     \"message\": $context.error.messageString,\n     \"type\":  \"$context.error.responseType\",\n     \"stage\":  \"$context.stage\",\n     \"resourcePath\":  \"$context.resourcePath\",\n     \"stageVariables.a\":  \"$stageVariables.a\",\n     \"statusCode\": \"'404'\"\n}"}, "responseType": "AUTHORIZER_CONFIGURATION_ERROR", "statusCode": "599"}, {"defaultResponse": false, "responseParameters": {"gatewayresponse.header.foo": "'bar'"}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "AUTHORIZER_FAILURE", "statusCode": "500"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "BAD_REQUEST_BODY", "statusCode": "400"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "BAD_REQUEST_PARAMETERS", "statusCode": "400"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "DEFAULT_4XX"}, {"defaultResponse": false, "responseParameters": {"gatewayresponse.header.x-request-header": "method.request.header.Accept"}, "responseTemplates": {"application/json": "{\n     \"message\": $context.error.messageString,\n     \"type\":  \"$context.error.responseType\",\n     \"stage\":  \"$context.stage\",\n     \"resourcePath\":  \"$context.resourcePath\",\n     \"stageVariables.a\":  \"$stageVariables.a\",\n     \"statusCode\": \"'404'\"\n}"}, "responseType": "DEFAULT_5XX", "statusCode": "599"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "EXPIRED_TOKEN", "statusCode": "403"}, {"defaultResponse": true, "responseParameters": {"gatewayresponse.header.x-request-header": "method.request.header.Accept"}, "responseTemplates": {"application/json": "{\n     \"message\": $context.error.messageString,\n     \"type\":  \"$context.error.responseType\",\n     \"stage\":  \"$context.stage\",\n     \"resourcePath\":  \"$context.resourcePath\",\n     \"stageVariables.a\":  \"$stageVariables.a\",\n     \"statusCode\": \"'404'\"\n}"}, "responseType": "INTEGRATION_FAILURE", "statusCode": "599"}, {"defaultResponse": true, "responseParameters": {"gatewayresponse.header.x-request-header": "method.request.header.Accept"}, "responseTemplates": {"application/json": "{\n     \"message\": $context.error.messageString,\n     \"type\":  \"$context.error.responseType\",\n     \"stage\":  \"$context.stage\",\n     \"resourcePath\":  \"$context.resourcePath\",\n     \"stageVariables.a\":  \"$stageVariables.a\",\n     \"statusCode\": \"'404'\"\n}"}, "responseType": "INTEGRATION_TIMEOUT", "statusCode": "599"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "INVALID_API_KEY", "statusCode": "403"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "INVALID_SIGNATURE", "statusCode": "403"}, {"defaultResponse": false, "responseParameters": {}, "responseTemplates": {"application/json": "{\n     \"message\": $context.error.messageString,\n     \"type\":  \"$context.error.responseType\",\n     \"stage\":  \"$context.stage\",\n     \"resourcePath\":  \"$context.resourcePath\",\n     \"stageVariables.a\":  \"$stageVariables.a\",\n     \"statusCode\": \"'404'\"\n}"}, "responseType": "MISSING_AUTHENTICATION_TOKEN", "statusCode": "403"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "QUOTA_EXCEEDED", "statusCode": "429"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "REQUEST_TOO_LARGE", "statusCode": "413"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "RESOURCE_NOT_FOUND", "statusCode": "404"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "THROTTLED", "statusCode": "429"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "UNAUTHORIZED", "statusCode": "401"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "UNSUPPORTED_MEDIA_TYPE", "statusCode": "415"}, {"defaultResponse": true, "responseParameters": {}, "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"}, "responseType": "WAF_FILTERED", "statusCode": "403"}]"#;

fn state() -> GatewayState {
    let mut state = GatewayState::default();
    let api = RestApi {
        id: "a".into(),
        name: "api".into(),
        description: None,
        created_date: 1,
        version: None,
        warnings: vec![],
        binary_media_types: vec![],
        minimum_compression_size: None,
        api_key_source: ApiKeySource::Header,
        endpoint_configuration: EndpointConfiguration::default(),
        policy: None,
        tags: Default::default(),
        disable_execute_api_endpoint: false,
        root_resource_id: "r".into(),
    };
    admin::apply(&mut state, &AdminOp::CreateRestApi { api }).unwrap();
    state
}

fn put(state: &mut GatewayState, response_type: &str, body: Value) -> Value {
    let response = parse_put_gateway_response(response_type, &body).unwrap();
    admin::apply(
        state,
        &AdminOp::PutGatewayResponse {
            api_id: "a".into(),
            response,
        },
    )
    .unwrap();
    render_gateway_response(&admin::effective_gateway_response(
        &state.apis["a"].definition,
        response_type,
    ))
}

#[test]
fn gateway_responses_match_the_recorded_puts() {
    let mut state = state();
    // The same puts as LS api `test_gateway_response_put`, each answer as recorded.
    let parameters = json!({
        "gatewayresponse.header.x-request-path": "method.request.path.petId",
        "gatewayresponse.header.Access-Control-Allow-Origin": "'a.b.c'",
        "gatewayresponse.header.x-request-query": "method.request.querystring.q",
        "gatewayresponse.header.x-request-header": "method.request.header.Accept",
    });
    let all = put(
        &mut state,
        "MISSING_AUTHENTICATION_TOKEN",
        json!({"statusCode": "404", "responseParameters": parameters, "responseTemplates": {"application/json": TEMPLATE_404}}),
    );
    assert_eq!(
        all,
        json!({"defaultResponse": false, "responseParameters": parameters,
               "responseTemplates": {"application/json": TEMPLATE_404},
               "responseType": "MISSING_AUTHENTICATION_TOKEN", "statusCode": "404"})
    );
    assert_eq!(
        put(
            &mut state,
            "MISSING_AUTHENTICATION_TOKEN",
            json!({"statusCode": "404"})
        ),
        json!({"defaultResponse": false, "responseParameters": {},
               "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"},
               "responseType": "MISSING_AUTHENTICATION_TOKEN", "statusCode": "404"})
    );
    let header = json!({"gatewayresponse.header.x-request-header": "method.request.header.Accept"});
    assert_eq!(
        put(
            &mut state,
            "MISSING_AUTHENTICATION_TOKEN",
            json!({"responseParameters": header})
        ),
        json!({"defaultResponse": false, "responseParameters": header,
               "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"},
               "responseType": "MISSING_AUTHENTICATION_TOKEN", "statusCode": "403"})
    );
    assert_eq!(
        put(
            &mut state,
            "MISSING_AUTHENTICATION_TOKEN",
            json!({"responseTemplates": {"application/json": TEMPLATE_404}})
        ),
        json!({"defaultResponse": false, "responseParameters": {},
               "responseTemplates": {"application/json": TEMPLATE_404},
               "responseType": "MISSING_AUTHENTICATION_TOKEN", "statusCode": "403"})
    );
    put(
        &mut state,
        "DEFAULT_5XX",
        json!({"statusCode": "599", "responseParameters": header, "responseTemplates": {"application/json": TEMPLATE_404}}),
    );
    assert_eq!(
        put(
            &mut state,
            "AUTHORIZER_FAILURE",
            json!({"responseParameters": {"gatewayresponse.header.foo": "'bar'"}})
        ),
        json!({"defaultResponse": false, "responseParameters": {"gatewayresponse.header.foo": "'bar'"},
               "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"},
               "responseType": "AUTHORIZER_FAILURE", "statusCode": "500"})
    );
    let listed: Vec<Value> = admin::effective_gateway_responses(&state.apis["a"].definition)
        .iter()
        .map(render_gateway_response)
        .collect();
    let recorded: Value = serde_json::from_str(RECORDED_AFTER_PUTS).unwrap();
    assert_eq!(Value::Array(listed), recorded);
}

#[test]
fn authorizers_render_as_recorded() {
    // LS basic `test_apigateway_with_custom_authorization_method` `authorizer`: no TTL
    // member when none was given.
    let created = parse_create_authorizer(
        &json!({"name": "lambda_authorizer", "type": "TOKEN", "authType": "custom",
                "authorizerUri": "<authorizer-uri:1>", "identitySource": "method.request.header.Auth"}),
        "<id:1>".into(),
    )
    .unwrap();
    assert_eq!(
        render_authorizer(&created),
        json!({"authType": "custom", "authorizerUri": "<authorizer-uri:1>", "id": "<id:1>",
               "identitySource": "method.request.header.Auth", "name": "lambda_authorizer",
               "type": "TOKEN"})
    );
    // LS import `test_import_swagger_api` `get-authorizers` (first item).
    let imported = parse_create_authorizer(
        &json!({"name": "test-authorizer", "type": "TOKEN", "authType": "oauth2",
                "authorizerCredentials": "<authorizer-credentials:1>",
                "authorizerResultTtlInSeconds": 60, "authorizerUri": "<authorizer-uri:1>",
                "identitySource": "method.request.header.Authorization",
                "identityValidationExpression": "^x-[a-z]+"}),
        "<authorizer-id:1>".into(),
    )
    .unwrap();
    assert_eq!(
        render_authorizer(&imported),
        json!({"authType": "oauth2", "authorizerCredentials": "<authorizer-credentials:1>",
               "authorizerResultTtlInSeconds": 60, "authorizerUri": "<authorizer-uri:1>",
               "id": "<authorizer-id:1>", "identitySource": "method.request.header.Authorization",
               "identityValidationExpression": "^x-[a-z]+", "name": "test-authorizer",
               "type": "TOKEN"})
    );
    // LS import `test_import_with_cognito_auth_identity_source` (first item).
    let pool = parse_create_authorizer(
        &json!({"name": "cognito-test-identity-source", "type": "COGNITO_USER_POOLS",
                "providerARNs": ["arn:aws:cognito-idp:us-east-1:111111111111:userpool/us-east-1_ABC123"],
                "authType": "cognito_user_pools", "identitySource": "method.request.header.TestHeaderAuth"}),
        "<authorizer-id:1>".into(),
    )
    .unwrap();
    assert_eq!(
        render_authorizer(&pool),
        json!({"id": "<authorizer-id:1>", "name": "cognito-test-identity-source",
               "type": "COGNITO_USER_POOLS",
               "providerARNs": ["arn:aws:cognito-idp:us-east-1:111111111111:userpool/us-east-1_ABC123"],
               "authType": "cognito_user_pools", "identitySource": "method.request.header.TestHeaderAuth"})
    );
}

#[test]
fn create_authorizer_parse_errors() {
    let error = |body: Value| parse_create_authorizer(&body, "i".into()).unwrap_err();
    let missing_name = error(json!({"type": "TOKEN"}));
    assert_eq!(missing_name.error_type, "ValidationException");
    assert!(
        missing_name
            .message
            .contains("'createAuthorizerInput.name'")
    );
    assert!(
        error(json!({"name": "n"}))
            .message
            .contains("'createAuthorizerInput.type'")
    );
    assert!(
        error(json!({"name": "n", "type": "TOKEN", "authorizerResultTtlInSeconds": "x"}))
            .message
            .contains("Invalid authorizer result TTL")
    );
    assert!(
        error(json!({"name": "n", "type": "TOKEN", "providerARNs": "x"}))
            .message
            .contains("providerARNs")
    );
    assert!(
        error(json!({"name": 5, "type": "TOKEN"}))
            .message
            .contains("'name'")
    );
    assert!(error(json!([1])).message.contains("JSON object"));
    assert!(
        parse_put_gateway_response("THROTTLED", &json!({"responseTemplates": {"a": 1}})).is_err()
    );
}

#[test]
fn policies_must_be_json_objects() {
    assert!(check_policy(r#"{"Version":"2012-10-17","Statement":[]}"#).is_ok());
    for bad in ["", "not json", "[1]", "\"text\"", "{\"a\":"] {
        let error = check_policy(bad).unwrap_err();
        assert_eq!(error.status, http::StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error.error_type, "BadRequestException");
    }
    let patch = |op: &str, value: Option<&str>| vec![PatchOperation::new(op, "/policy", value)];
    assert!(check_policy_patch(&patch("replace", Some("{}"))).is_ok());
    assert!(check_policy_patch(&patch("remove", None)).is_ok());
    assert!(check_policy_patch(&patch("replace", Some("nope"))).is_err());
    assert!(check_policy_patch(&patch("add", Some("[]"))).is_err());
}

#[test]
fn update_method_renders_as_recorded() {
    // LS api `test_update_method`: put, add, replace, authorizer, remove.
    let mut state = state();
    let op = |patch: Vec<PatchOperation>| AdminOp::UpdateMethod {
        api_id: "a".into(),
        resource_id: "r".into(),
        http_method: "ANY".into(),
        patch,
    };
    admin::apply(
        &mut state,
        &AdminOp::PutMethod {
            api_id: "a".into(),
            resource_id: "r".into(),
            method: Method::new("ANY"),
        },
    )
    .unwrap();
    let rendered = |state: &GatewayState| {
        render::render_method(&state.apis["a"].definition.resources[0].resource_methods["ANY"])
    };
    let p = |op: &str, path: &str, value: &str| PatchOperation::new(op, path, Some(value));
    admin::apply(
        &mut state,
        &op(vec![
            p(
                "add",
                "/requestParameters/method.request.querystring.optional",
                "true",
            ),
            p("add", "/requestModels/application~1json", "Empty"),
        ]),
    )
    .unwrap();
    assert_eq!(
        rendered(&state),
        json!({"apiKeyRequired": false, "authorizationType": "NONE", "httpMethod": "ANY",
               "requestModels": {"application/json": "Empty"},
               "requestParameters": {"method.request.querystring.optional": true}})
    );
    admin::apply(
        &mut state,
        &op(vec![
            p("replace", "/operationName", "ReplacedOperationName"),
            p("replace", "/apiKeyRequired", "true"),
            p("replace", "/authorizationType", "AWS_IAM"),
            p(
                "replace",
                "/requestParameters/method.request.querystring.optional",
                "false",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(
        rendered(&state),
        json!({"apiKeyRequired": true, "authorizationType": "AWS_IAM", "httpMethod": "ANY",
               "operationName": "ReplacedOperationName",
               "requestModels": {"application/json": "Empty"},
               "requestParameters": {"method.request.querystring.optional": false}})
    );
    let authorizer = parse_create_authorizer(
        &json!({"name": "authorizer-test", "type": "TOKEN",
                "authorizerUri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:myApiAuthorizer/invocations",
                "identitySource": "method.request.header.Authorization"}),
        "<authorizer-id:1>".into(),
    )
    .unwrap();
    admin::apply(
        &mut state,
        &AdminOp::CreateAuthorizer {
            api_id: "a".into(),
            authorizer,
        },
    )
    .unwrap();
    admin::apply(
        &mut state,
        &op(vec![
            p("replace", "/authorizerId", "<authorizer-id:1>"),
            p("replace", "/authorizationType", "CUSTOM"),
        ]),
    )
    .unwrap();
    admin::apply(
        &mut state,
        &op(vec![
            p(
                "remove",
                "/requestParameters/method.request.querystring.optional",
                "true",
            ),
            p("remove", "/requestModels/application~1json", "Empty"),
        ]),
    )
    .unwrap();
    assert_eq!(
        rendered(&state),
        json!({"apiKeyRequired": true, "authorizationType": "CUSTOM",
               "authorizerId": "<authorizer-id:1>", "httpMethod": "ANY",
               "operationName": "ReplacedOperationName"})
    );
}
