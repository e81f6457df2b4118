use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::cluster::{Command, CommandOutcome};
use crate::model::{Authorizer, EndpointConfiguration};

fn rest_api(id: &str, root: &str) -> RestApi {
    RestApi {
        id: id.into(),
        name: "api".into(),
        description: None,
        created_date: 100,
        version: None,
        warnings: vec![],
        binary_media_types: vec![],
        minimum_compression_size: None,
        api_key_source: ApiKeySource::Header,
        endpoint_configuration: EndpointConfiguration::default(),
        policy: None,
        tags: BTreeMap::new(),
        disable_execute_api_endpoint: false,
        root_resource_id: root.into(),
    }
}

fn ok(state: &mut GatewayState, op: AdminOp) {
    if let Err(refusal) = apply(state, &op) {
        panic!("{op:?} refused: {refusal}");
    }
}

/// Applies `op`, expects a refusal, and checks the state did not change.
fn refused(state: &mut GatewayState, op: AdminOp) -> Refusal {
    let before = state.clone();
    let refusal = apply(state, &op).expect_err("expected a refusal");
    assert_eq!(*state, before, "a refused op changed the state");
    refusal
}

fn bad_request(refusal: Refusal) -> String {
    match refusal {
        Refusal::BadRequest(message) => message,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

/// An API `a` with root `r`.
fn fresh() -> GatewayState {
    let mut state = GatewayState::default();
    ok(
        &mut state,
        AdminOp::CreateRestApi {
            api: rest_api("a", "r"),
        },
    );
    state
}

fn create_resource(state: &mut GatewayState, parent: &str, part: &str, id: &str) {
    ok(
        state,
        AdminOp::CreateResource {
            api_id: "a".into(),
            parent_id: parent.into(),
            path_part: part.into(),
            resource_id: id.into(),
        },
    );
}

fn create_resource_op(parent: &str, part: &str, id: &str) -> AdminOp {
    AdminOp::CreateResource {
        api_id: "a".into(),
        parent_id: parent.into(),
        path_part: part.into(),
        resource_id: id.into(),
    }
}

fn put_method(state: &mut GatewayState, resource: &str, verb: &str) {
    ok(
        state,
        AdminOp::PutMethod {
            api_id: "a".into(),
            resource_id: resource.into(),
            method: Method::new(verb),
        },
    );
}

fn mock() -> Integration {
    Integration::new(IntegrationType::Mock)
}

fn put_integration(state: &mut GatewayState, resource: &str, verb: &str, integration: Integration) {
    ok(
        state,
        AdminOp::PutIntegration {
            api_id: "a".into(),
            resource_id: resource.into(),
            http_method: verb.into(),
            integration,
        },
    );
}

/// `fresh()` plus `/pets` (`p`) with a MOCK GET, deployed as `d1` to stage `prod`.
fn deployed() -> GatewayState {
    let mut state = fresh();
    create_resource(&mut state, "r", "pets", "p");
    put_method(&mut state, "p", "GET");
    put_integration(&mut state, "p", "GET", mock());
    ok(
        &mut state,
        AdminOp::CreateDeployment {
            api_id: "a".into(),
            deployment_id: "d1".into(),
            description: Some("first".into()),
            created_date: 200,
            stage: Some(NewStage {
                stage_name: "prod".into(),
                description: None,
                variables: BTreeMap::new(),
            }),
        },
    );
    state
}

fn definition(state: &GatewayState) -> &ApiDefinition {
    &state.apis["a"].definition
}

fn stage(state: &GatewayState) -> &Stage {
    &state.apis["a"].stages[0]
}

fn update_stage(patch: Vec<PatchOperation>) -> AdminOp {
    AdminOp::UpdateStage {
        api_id: "a".into(),
        stage_name: "prod".into(),
        patch,
        now: 999,
    }
}

fn patch(op: &str, path: &str, value: Option<&str>) -> PatchOperation {
    PatchOperation::new(op, path, value)
}

// ---------------------------------------------------------------------------------------------
// REST APIs

#[test]
fn create_rest_api_creates_the_root_resource() {
    let state = fresh();
    let definition = definition(&state);
    assert_eq!(definition.api.id, "a");
    assert_eq!(definition.resources.len(), 1);
    assert_eq!(definition.resources[0].id, "r");
    assert_eq!(definition.resources[0].path, "/");
    assert_eq!(definition.resources[0].parent_id, None);
    assert_eq!(definition.resources[0].path_part, None);
}

#[test]
fn create_rest_api_refusals() {
    let mut state = fresh();
    let refusal = refused(
        &mut state,
        AdminOp::CreateRestApi {
            api: rest_api("a", "x"),
        },
    );
    assert!(matches!(refusal, Refusal::Conflict(_)));
    let mut api = rest_api("b", "x");
    api.description = Some(String::new());
    assert_eq!(
        bad_request(refused(&mut state, AdminOp::CreateRestApi { api })),
        "Description cannot be an empty string"
    );
    let mut api = rest_api("b", "x");
    api.minimum_compression_size = Some(-1);
    assert_eq!(
        bad_request(refused(&mut state, AdminOp::CreateRestApi { api })),
        "Invalid minimum compression size, must be between 0 and 10485760"
    );
}

fn update_api(patch: Vec<PatchOperation>) -> AdminOp {
    AdminOp::UpdateRestApi {
        api_id: "a".into(),
        patch,
    }
}

#[test]
fn update_rest_api_binary_media_types_add_replace_remove() {
    // The sequence of LS api `test_update_rest_api_operation_add_remove`.
    let mut state = fresh();
    ok(
        &mut state,
        update_api(vec![
            patch("add", "/binaryMediaTypes/image~1png", None),
            patch("add", "/binaryMediaTypes/image~1jpeg", None),
        ]),
    );
    assert_eq!(
        definition(&state).api.binary_media_types,
        ["image/png", "image/jpeg"]
    );
    ok(
        &mut state,
        update_api(vec![patch(
            "replace",
            "/binaryMediaTypes/image~1png",
            Some("image/gif"),
        )]),
    );
    assert_eq!(
        definition(&state).api.binary_media_types,
        ["image/jpeg", "image/gif"]
    );
    ok(
        &mut state,
        update_api(vec![patch("remove", "/binaryMediaTypes/image~1gif", None)]),
    );
    assert_eq!(definition(&state).api.binary_media_types, ["image/jpeg"]);
}

#[test]
fn update_rest_api_scalar_paths() {
    let mut state = fresh();
    ok(
        &mut state,
        update_api(vec![
            patch("replace", "/name", Some("renamed")),
            patch("replace", "/description", Some("d")),
            patch("replace", "/version", Some("v2")),
            patch("replace", "/apiKeySource", Some("AUTHORIZER")),
            patch("replace", "/minimumCompressionSize", Some("10")),
            patch("replace", "/disableExecuteApiEndpoint", Some("true")),
            patch(
                "replace",
                "/endpointConfiguration/types/0",
                Some("REGIONAL"),
            ),
            patch("replace", "/policy", Some("{}")),
        ]),
    );
    let api = &definition(&state).api;
    assert_eq!(api.name, "renamed");
    assert_eq!(api.description.as_deref(), Some("d"));
    assert_eq!(api.version.as_deref(), Some("v2"));
    assert_eq!(api.api_key_source, ApiKeySource::Authorizer);
    assert_eq!(api.minimum_compression_size, Some(10));
    assert!(api.disable_execute_api_endpoint);
    assert_eq!(api.endpoint_configuration.types, ["REGIONAL"]);
    assert_eq!(api.policy.as_deref(), Some("{}"));
    // LS api `test_update_rest_api_compression` `disable-compression` / `set-compression-zero`.
    ok(
        &mut state,
        update_api(vec![patch("replace", "/minimumCompressionSize", Some(""))]),
    );
    assert_eq!(definition(&state).api.minimum_compression_size, None);
    ok(
        &mut state,
        update_api(vec![patch("replace", "/minimumCompressionSize", Some("0"))]),
    );
    assert_eq!(definition(&state).api.minimum_compression_size, Some(0));
}

#[test]
fn update_rest_api_refusals_leave_the_api_unchanged() {
    let mut state = fresh();
    // LS api `test_update_rest_api_compression`: negative, string, unsupported op.
    for (operation, message) in [
        (
            patch("replace", "/minimumCompressionSize", Some("-1")),
            "Invalid minimum compression size, must be between 0 and 10485760",
        ),
        (
            patch("replace", "/minimumCompressionSize", Some("abc")),
            "Invalid minimum compression size, must be between 0 and 10485760",
        ),
        (
            patch("add", "/minimumCompressionSize", Some("10")),
            "Invalid patch operation specified. Must be one of: [replace]",
        ),
        // LS api `test_update_rest_api_behaviour` `update-rest-api-add-base-path`.
        (
            patch("add", "/binaryMediaTypes", Some("x")),
            "Invalid patch path /binaryMediaTypes",
        ),
        (
            patch("replace", "/endpointConfiguration/types/0", Some("WRONG")),
            "Invalid EndpointTypes specified. Valid options are REGIONAL,EDGE,PRIVATE",
        ),
        (
            patch(
                "replace",
                "/endpointConfiguration/ipAddressType",
                Some("ipv5"),
            ),
            "ipAddressType must be either ipv4 or dualstack.",
        ),
        (
            patch("replace", "/nope", Some("x")),
            "Invalid patch path /nope",
        ),
    ] {
        // A valid first operation must be rolled back too.
        let op = update_api(vec![patch("replace", "/name", Some("changed")), operation]);
        assert_eq!(bad_request(refused(&mut state, op)), message);
    }
    let message = bad_request(refused(
        &mut state,
        update_api(vec![patch("wrong", "/name", Some("x"))]),
    ));
    assert!(message.starts_with("1 validation error detected: Value 'wrong'"));
    assert_eq!(
        refused(
            &mut state,
            AdminOp::UpdateRestApi {
                api_id: "zz".into(),
                patch: vec![]
            }
        ),
        Refusal::NotFound("Invalid API identifier specified zz".into())
    );
}

#[test]
fn delete_rest_api() {
    let mut state = fresh();
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::DeleteRestApi {
                api_id: "zz".into()
            }
        ),
        Refusal::NotFound(_)
    ));
    ok(&mut state, AdminOp::DeleteRestApi { api_id: "a".into() });
    assert!(state.apis.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Resources

#[test]
fn create_resource_builds_paths() {
    let mut state = fresh();
    create_resource(&mut state, "r", "pets", "p");
    create_resource(&mut state, "p", "{petId}", "q");
    create_resource(&mut state, "q", "toys", "t");
    let definition = definition(&state);
    assert_eq!(definition.resource("p").unwrap().path, "/pets");
    assert_eq!(definition.resource("q").unwrap().path, "/pets/{petId}");
    assert_eq!(definition.resource("t").unwrap().path, "/pets/{petId}/toys");
    assert_eq!(
        definition.resource("q").unwrap().parent_id.as_deref(),
        Some("p")
    );
}

#[test]
fn create_resource_refusals() {
    let mut state = fresh();
    create_resource(&mut state, "r", "pets", "p");
    create_resource(&mut state, "r", "{proxy+}", "x");
    // LS api `test_update_resource_behaviour` `existing-future-sibling-path`.
    assert_eq!(
        refused(&mut state, create_resource_op("r", "pets", "n")),
        Refusal::Conflict(
            "Another resource with the same parent already has this name: pets".into()
        )
    );
    // LS api `test_create_proxy_resource_validation`.
    assert_eq!(
        bad_request(refused(&mut state, create_resource_op("r", "{id}", "n"))),
        "A sibling ({proxy+}) of this resource already has a variable path part -- only one is allowed"
    );
    assert_eq!(
        bad_request(refused(&mut state, create_resource_op("x", "child", "n"))),
        "Cannot create a child of a resource with a greedy path variable: {proxy+}"
    );
    assert_eq!(
        bad_request(refused(&mut state, create_resource_op("x", "{id}", "n"))),
        "Cannot create a child of a resource with a greedy path variable: {proxy+}"
    );
    // LS api `test_create_resource_parent_invalid`.
    assert_eq!(
        refused(&mut state, create_resource_op("nope", "cats", "n")),
        Refusal::NotFound("Invalid Resource identifier specified".into())
    );
    for part in ["", "a/b", "a b", "{", "{}", "{a", "a}", "{a b}", "%41"] {
        let message = bad_request(refused(&mut state, create_resource_op("r", part, "n")));
        assert!(
            message.starts_with("Resource's path part only allow"),
            "{part}"
        );
    }
    // A static sibling next to a greedy variable is fine (LS `test_create_proxy_resource`).
    create_resource(&mut state, "r", "static", "s");
    // Literal characters AWS allows.
    create_resource(&mut state, "r", "a.b_c-d~e:f@g", "l");
    assert!(matches!(
        refused(&mut state, create_resource_op("r", "other", "p")),
        Refusal::Conflict(_)
    ));
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::CreateResource {
                api_id: "zz".into(),
                parent_id: "r".into(),
                path_part: "x".into(),
                resource_id: "n".into()
            }
        ),
        Refusal::NotFound(_)
    ));
}

#[test]
fn delete_resource_removes_descendants_but_never_the_root() {
    let mut state = fresh();
    create_resource(&mut state, "r", "pets", "p");
    create_resource(&mut state, "p", "{petId}", "q");
    create_resource(&mut state, "q", "toys", "t");
    create_resource(&mut state, "r", "cats", "c");
    let delete = |id: &str| AdminOp::DeleteResource {
        api_id: "a".into(),
        resource_id: id.into(),
    };
    bad_request(refused(&mut state, delete("r")));
    ok(&mut state, delete("p"));
    let ids: Vec<&str> = definition(&state)
        .resources
        .iter()
        .map(|resource| resource.id.as_str())
        .collect();
    assert_eq!(ids, ["r", "c"]);
    // LS api `test_delete_resource` `delete-subresource`.
    assert_eq!(
        refused(&mut state, delete("q")),
        Refusal::NotFound("Invalid Resource identifier specified".into())
    );
}

// ---------------------------------------------------------------------------------------------
// Methods, integrations, responses

#[test]
fn put_method_creates_and_replaces() {
    let mut state = fresh();
    put_method(&mut state, "r", "get");
    let method = &definition(&state).resources[0].resource_methods["GET"];
    assert_eq!(method.http_method, "GET");
    put_integration(&mut state, "r", "GET", mock());
    // Replacing drops the old integration: the method is replaced entirely.
    let mut replacement = Method::new("GET");
    replacement.api_key_required = true;
    replacement
        .request_models
        .insert("application/json".into(), "Empty".into());
    ok(
        &mut state,
        AdminOp::PutMethod {
            api_id: "a".into(),
            resource_id: "r".into(),
            method: replacement.clone(),
        },
    );
    assert_eq!(
        definition(&state).resources[0].resource_methods["GET"],
        replacement
    );
}

#[test]
fn put_method_refusals() {
    let mut state = fresh();
    let put = |api: &str, resource: &str, method: Method| AdminOp::PutMethod {
        api_id: api.into(),
        resource_id: resource.into(),
        method,
    };
    // LS api `test_put_method_validation`.
    assert_eq!(
        refused(&mut state, put("zz", "r", Method::new("GET"))),
        Refusal::NotFound("Invalid Resource identifier specified".into())
    );
    assert_eq!(
        refused(&mut state, put("a", "zz", Method::new("GET"))),
        Refusal::NotFound("Invalid Resource identifier specified".into())
    );
    assert_eq!(
        bad_request(refused(&mut state, put("a", "r", Method::new("WRONG")))),
        "Invalid HttpMethod specified. Valid options are GET,PUT,POST,DELETE,PATCH,OPTIONS,HEAD,ANY"
    );
    let mut custom = Method::new("GET");
    custom.authorization_type = "CUSTOM".into();
    assert_eq!(
        bad_request(refused(&mut state, put("a", "r", custom.clone()))),
        "Invalid authorizer ID specified. Setting the authorization type to CUSTOM or COGNITO_USER_POOLS requires a valid authorizer."
    );
    custom.authorizer_id = Some("nope".into());
    bad_request(refused(&mut state, put("a", "r", custom)));
    let mut validated = Method::new("GET");
    validated.request_validator_id = Some("nope".into());
    assert_eq!(
        bad_request(refused(&mut state, put("a", "r", validated))),
        "Invalid Request Validator identifier specified"
    );
    let mut modelled = Method::new("GET");
    modelled
        .request_models
        .insert("application/json".into(), "petModel".into());
    assert_eq!(
        bad_request(refused(&mut state, put("a", "r", modelled))),
        "Invalid model identifier specified: petModel"
    );
    let mut typed = Method::new("GET");
    typed.authorization_type = "MAGIC".into();
    bad_request(refused(&mut state, put("a", "r", typed)));
}

#[test]
fn put_method_with_a_known_authorizer() {
    let mut state = fresh();
    std::sync::Arc::make_mut(&mut state.apis.get_mut("a").unwrap().definition)
        .authorizers
        .push(Authorizer {
            id: "au".into(),
            name: "auth".into(),
            authorizer_type: "TOKEN".into(),
            provider_arns: vec![],
            auth_type: None,
            authorizer_uri: None,
            authorizer_credentials: None,
            identity_source: None,
            identity_validation_expression: None,
            authorizer_result_ttl_in_seconds: None,
        });
    let mut custom = Method::new("GET");
    custom.authorization_type = "CUSTOM".into();
    custom.authorizer_id = Some("au".into());
    ok(
        &mut state,
        AdminOp::PutMethod {
            api_id: "a".into(),
            resource_id: "r".into(),
            method: custom,
        },
    );
}

#[test]
fn delete_method() {
    let mut state = fresh();
    put_method(&mut state, "r", "GET");
    let delete = |verb: &str| AdminOp::DeleteMethod {
        api_id: "a".into(),
        resource_id: "r".into(),
        http_method: verb.into(),
    };
    assert_eq!(
        refused(&mut state, delete("POST")),
        Refusal::NotFound("Invalid Method identifier specified".into())
    );
    ok(&mut state, delete("GET"));
    assert!(definition(&state).resources[0].resource_methods.is_empty());
}

fn put_integration_op(resource: &str, verb: &str, integration: Integration) -> AdminOp {
    AdminOp::PutIntegration {
        api_id: "a".into(),
        resource_id: resource.into(),
        http_method: verb.into(),
        integration,
    }
}

#[test]
fn put_integration_defaults_the_cache_namespace_to_the_resource() {
    let mut state = fresh();
    put_method(&mut state, "r", "GET");
    let mut http = Integration::new(IntegrationType::Http);
    http.http_method = Some("POST".into());
    http.uri = Some("https://example.com".into());
    put_integration(&mut state, "r", "get", http);
    let integration = definition(&state).resources[0].resource_methods["GET"]
        .method_integration
        .clone()
        .unwrap();
    assert_eq!(integration.cache_namespace.as_deref(), Some("r"));
    let mut named = mock();
    named.cache_namespace = Some("custom".into());
    put_integration(&mut state, "r", "GET", named);
    let integration = definition(&state).resources[0].resource_methods["GET"]
        .method_integration
        .clone()
        .unwrap();
    assert_eq!(integration.cache_namespace.as_deref(), Some("custom"));
}

#[test]
fn put_integration_refusals() {
    let mut state = fresh();
    put_method(&mut state, "r", "GET");
    // LS api `test_put_integration_response_validation` `put-integration-wrong-method`.
    assert_eq!(
        refused(&mut state, put_integration_op("r", "POST", mock())),
        Refusal::NotFound("Invalid Method identifier specified".into())
    );
    assert_eq!(
        refused(&mut state, put_integration_op("zz", "GET", mock())),
        Refusal::NotFound("Invalid Resource identifier specified".into())
    );
    for timeout in [49, 29_001] {
        let mut slow = mock();
        slow.timeout_in_millis = timeout;
        assert_eq!(
            bad_request(refused(&mut state, put_integration_op("r", "GET", slow))),
            "Timeout should be between 50 ms and 29000 ms"
        );
    }
    let mut http = Integration::new(IntegrationType::Http);
    http.uri = Some("https://example.com".into());
    assert_eq!(
        bad_request(refused(
            &mut state,
            put_integration_op("r", "GET", http.clone())
        )),
        "Enumeration value for HttpMethod must be non-empty"
    );
    http.http_method = Some("GET".into());
    http.uri = Some("ftp://example.com".into());
    assert_eq!(
        bad_request(refused(&mut state, put_integration_op("r", "GET", http))),
        "Invalid HTTP endpoint specified for URI"
    );
    let mut lambda = Integration::new(IntegrationType::AwsProxy);
    lambda.http_method = Some("POST".into());
    lambda.uri = Some("arn:aws:apigateway:us-east-1:s3:path/b/k".into());
    assert_eq!(
        bad_request(refused(&mut state, put_integration_op("r", "GET", lambda))),
        "Integrations of type 'AWS_PROXY' currently only supports Lambda function and Firehose stream invocations."
    );
    let mut aws = Integration::new(IntegrationType::Aws);
    aws.http_method = Some("POST".into());
    aws.uri = Some("not-an-arn".into());
    assert_eq!(
        bad_request(refused(&mut state, put_integration_op("r", "GET", aws))),
        "Invalid ARN specified in the request"
    );
}

#[test]
fn delete_integration() {
    let mut state = fresh();
    put_method(&mut state, "r", "GET");
    let delete = AdminOp::DeleteIntegration {
        api_id: "a".into(),
        resource_id: "r".into(),
        http_method: "GET".into(),
    };
    assert_eq!(
        refused(&mut state, delete.clone()),
        Refusal::NotFound("Invalid Integration identifier specified".into())
    );
    put_integration(&mut state, "r", "GET", mock());
    ok(&mut state, delete);
    assert!(
        definition(&state).resources[0].resource_methods["GET"]
            .method_integration
            .is_none()
    );
}

fn method_response(status: &str) -> MethodResponse {
    MethodResponse {
        status_code: status.into(),
        response_parameters: BTreeMap::from([("method.response.header.X".to_string(), false)]),
        response_models: BTreeMap::new(),
    }
}

fn integration_response(status: &str) -> IntegrationResponse {
    IntegrationResponse {
        status_code: status.into(),
        selection_pattern: Some("2\\d{2}".into()),
        response_parameters: BTreeMap::new(),
        response_templates: BTreeMap::new(),
        content_handling: None,
    }
}

#[test]
fn method_and_integration_responses() {
    let mut state = fresh();
    put_method(&mut state, "r", "GET");
    let put_method_response = |status: &str| AdminOp::PutMethodResponse {
        api_id: "a".into(),
        resource_id: "r".into(),
        http_method: "GET".into(),
        response: method_response(status),
    };
    let put_integration_response = |status: &str| AdminOp::PutIntegrationResponse {
        api_id: "a".into(),
        resource_id: "r".into(),
        http_method: "GET".into(),
        response: integration_response(status),
    };
    ok(&mut state, put_method_response("200"));
    // LS api `test_integration_response_invalid_statuscode`.
    assert_eq!(
        bad_request(refused(&mut state, put_method_response("wrong"))),
        "1 validation error detected: Value 'wrong' at 'statusCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [1-5]\\d\\d"
    );
    bad_request(refused(&mut state, put_method_response("600")));
    assert_eq!(
        refused(&mut state, put_integration_response("200")),
        Refusal::NotFound("Invalid Integration identifier specified".into())
    );
    put_integration(&mut state, "r", "GET", mock());
    ok(&mut state, put_integration_response("200"));
    bad_request(refused(&mut state, put_integration_response("20")));
    let method = &definition(&state).resources[0].resource_methods["GET"];
    assert_eq!(method.method_responses["200"], method_response("200"));
    assert_eq!(
        method
            .method_integration
            .as_ref()
            .unwrap()
            .integration_responses["200"],
        integration_response("200")
    );
}

// ---------------------------------------------------------------------------------------------
// Deployments and stages

fn create_deployment_op(id: &str, stage: Option<NewStage>) -> AdminOp {
    AdminOp::CreateDeployment {
        api_id: "a".into(),
        deployment_id: id.into(),
        description: None,
        created_date: 300,
        stage,
    }
}

#[test]
fn create_deployment_needs_methods_with_integrations() {
    let mut state = fresh();
    assert_eq!(
        bad_request(refused(&mut state, create_deployment_op("d1", None))),
        "The REST API doesn't contain any methods"
    );
    put_method(&mut state, "r", "GET");
    assert_eq!(
        bad_request(refused(&mut state, create_deployment_op("d1", None))),
        "No integration defined for method"
    );
    put_integration(&mut state, "r", "GET", mock());
    ok(&mut state, create_deployment_op("d1", None));
    let api = &state.apis["a"];
    assert_eq!(api.deployments[0].definition, api.definition);
    assert!(api.stages.is_empty());
    assert!(matches!(
        refused(&mut state, create_deployment_op("d1", None)),
        Refusal::Conflict(_)
    ));
}

#[test]
fn create_deployment_with_a_stage_creates_then_moves_it() {
    let mut state = deployed();
    let created = stage(&state).clone();
    assert_eq!(created.deployment_id, "d1");
    assert_eq!(created.created_date, 200);
    ok(
        &mut state,
        create_deployment_op(
            "d2",
            Some(NewStage {
                stage_name: "prod".into(),
                description: Some("ignored for an existing stage".into()),
                variables: BTreeMap::from([("k".to_string(), "v".to_string())]),
            }),
        ),
    );
    let moved = stage(&state);
    assert_eq!(state.apis["a"].stages.len(), 1);
    assert_eq!(moved.deployment_id, "d2");
    assert_eq!(moved.created_date, 200);
    assert_eq!(moved.last_updated_date, 300);
    assert_eq!(moved.description, None);
    assert_eq!(moved.variables["k"], "v");
    bad_request(refused(
        &mut state,
        create_deployment_op(
            "d3",
            Some(NewStage {
                stage_name: "bad name".into(),
                description: None,
                variables: BTreeMap::new(),
            }),
        ),
    ));
}

#[test]
fn delete_deployment() {
    let mut state = deployed();
    let delete = |id: &str| AdminOp::DeleteDeployment {
        api_id: "a".into(),
        deployment_id: id.into(),
    };
    // LS common `test_create_delete_deployments` `delete-deployment-error-0`.
    assert_eq!(
        bad_request(refused(&mut state, delete("d1"))),
        "Active stages pointing to this deployment must be moved or deleted"
    );
    assert!(matches!(
        refused(&mut state, delete("zz")),
        Refusal::NotFound(_)
    ));
    ok(&mut state, create_deployment_op("d2", None));
    ok(&mut state, delete("d2"));
    assert_eq!(state.apis["a"].deployments.len(), 1);
}

#[test]
fn create_and_delete_stage() {
    let mut state = deployed();
    let create = |name: &str, deployment: &str| AdminOp::CreateStage {
        api_id: "a".into(),
        stage: Stage::new(name, deployment, 400),
    };
    assert_eq!(
        refused(&mut state, create("prod", "d1")),
        Refusal::Conflict("Stage already exists".into())
    );
    bad_request(refused(&mut state, create("beta", "zz")));
    bad_request(refused(&mut state, create("be/ta", "d1")));
    let mut sized = Stage::new("beta", "d1", 400);
    sized.cache_cluster_size = Some("2.0".into());
    bad_request(refused(
        &mut state,
        AdminOp::CreateStage {
            api_id: "a".into(),
            stage: sized,
        },
    ));
    ok(&mut state, create("beta", "d1"));
    assert_eq!(state.apis["a"].stages.len(), 2);
    let delete = |name: &str| AdminOp::DeleteStage {
        api_id: "a".into(),
        stage_name: name.into(),
    };
    assert!(matches!(
        refused(&mut state, delete("zz")),
        Refusal::NotFound(_)
    ));
    ok(&mut state, delete("beta"));
    assert_eq!(state.apis["a"].stages.len(), 1);
}

#[test]
fn update_stage_scalars_and_variables() {
    let mut state = deployed();
    ok(&mut state, create_deployment_op("d2", None));
    ok(
        &mut state,
        update_stage(vec![
            patch("replace", "/description", Some("stage new")),
            patch("add", "/variables/var1", Some("test")),
            patch("replace", "/variables/var2", Some("test2")),
            patch("add", "/variables/gone", Some("x")),
            patch("remove", "/variables/gone", None),
            patch("replace", "/tracingEnabled", Some("true")),
            patch("replace", "/cacheClusterEnabled", Some("true")),
            patch("replace", "/cacheClusterSize", Some("0.5")),
            patch("replace", "/deploymentId", Some("d2")),
        ]),
    );
    let updated = stage(&state);
    assert_eq!(updated.description.as_deref(), Some("stage new"));
    assert_eq!(
        updated.variables,
        BTreeMap::from([
            ("var1".to_string(), "test".to_string()),
            ("var2".to_string(), "test2".to_string())
        ])
    );
    assert!(updated.tracing_enabled);
    assert!(updated.cache_cluster_enabled);
    assert_eq!(updated.cache_cluster_size.as_deref(), Some("0.5"));
    assert_eq!(updated.deployment_id, "d2");
    assert_eq!(updated.last_updated_date, 999);
    assert_eq!(updated.created_date, 200);
}

#[test]
fn update_stage_method_settings_materialise_defaults() {
    // LS common `test_create_update_stages` `update-stage` and `update-stage-override`.
    let mut state = deployed();
    ok(
        &mut state,
        update_stage(vec![
            patch("replace", "/*/*/caching/enabled", Some("true")),
            patch("replace", "/*/*/throttling/burstLimit", Some("123")),
            patch("replace", "/test/GET/caching/enabled", Some("true")),
            patch("replace", "/test/GET/throttling/burstLimit", Some("124")),
        ]),
    );
    let settings = &stage(&state).method_settings;
    let expected_all = MethodSetting {
        caching_enabled: true,
        throttling_burst_limit: 123,
        ..MethodSetting::default()
    };
    assert_eq!(settings["*/*"], expected_all);
    assert_eq!(settings["test/GET"].throttling_burst_limit, 124);
    assert_eq!(settings.len(), 2);
    ok(
        &mut state,
        update_stage(vec![patch(
            "replace",
            "/*/*/throttling/burstLimit",
            Some("100"),
        )]),
    );
    assert_eq!(
        stage(&state).method_settings["*/*"].throttling_burst_limit,
        100
    );
    assert_eq!(
        stage(&state).method_settings["test/GET"].throttling_burst_limit,
        124
    );
}

#[test]
fn update_stage_every_setting_member() {
    let mut state = deployed();
    ok(
        &mut state,
        update_stage(vec![
            patch("replace", "/~1pets~1{id}/GET/metrics/enabled", Some("true")),
            patch("replace", "/pets~1{id}/GET/logging/loglevel", Some("info")),
            patch("replace", "/pets~1{id}/GET/logging/dataTrace", Some("true")),
            patch(
                "replace",
                "/pets~1{id}/GET/throttling/rateLimit",
                Some("12.5"),
            ),
            patch(
                "replace",
                "/pets~1{id}/GET/throttling/burstLimit",
                Some("7"),
            ),
            patch("replace", "/pets~1{id}/GET/caching/enabled", Some("true")),
            patch(
                "replace",
                "/pets~1{id}/GET/caching/ttlInSeconds",
                Some("3600"),
            ),
            patch(
                "replace",
                "/pets~1{id}/GET/caching/dataEncrypted",
                Some("true"),
            ),
            patch(
                "replace",
                "/pets~1{id}/GET/caching/requireAuthorizationForCacheControl",
                Some("false"),
            ),
            patch(
                "replace",
                "/pets~1{id}/GET/caching/unauthorizedCacheControlHeaderStrategy",
                Some("FAIL_WITH_403"),
            ),
        ]),
    );
    let setting = &stage(&state).method_settings["pets/{id}/GET"];
    assert_eq!(
        *setting,
        MethodSetting {
            metrics_enabled: true,
            logging_level: Some("INFO".into()),
            data_trace_enabled: true,
            throttling_burst_limit: 7,
            throttling_rate_limit: 12.5,
            caching_enabled: true,
            cache_ttl_in_seconds: 3600,
            cache_data_encrypted: true,
            require_authorization_for_cache_control: false,
            unauthorized_cache_control_header_strategy: "FAIL_WITH_403".into(),
        }
    );
    assert_eq!(stage(&state).method_settings.len(), 1);
    // Removing one key; removing a member restores its default.
    ok(
        &mut state,
        update_stage(vec![patch(
            "remove",
            "/pets~1{id}/GET/caching/ttlInSeconds",
            None,
        )]),
    );
    assert_eq!(
        stage(&state).method_settings["pets/{id}/GET"].cache_ttl_in_seconds,
        300
    );
    ok(
        &mut state,
        update_stage(vec![patch("remove", "/pets~1{id}/GET", None)]),
    );
    assert!(stage(&state).method_settings.is_empty());
}

#[test]
fn update_stage_remove_wildcard() {
    // LS common `test_update_stage_remove_wildcard`.
    let mut state = deployed();
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_stage(vec![patch("remove", "/*/*", None)])
        )),
        "Cannot remove method setting */* because there is no method setting for this method "
    );
    ok(
        &mut state,
        update_stage(vec![
            patch("replace", "/*/*/caching/enabled", Some("true")),
            patch("replace", "/test/GET/caching/enabled", Some("true")),
        ]),
    );
    ok(
        &mut state,
        update_stage(vec![patch("remove", "/*/*", None)]),
    );
    assert!(stage(&state).method_settings.is_empty());
}

#[test]
fn update_stage_refusals() {
    let mut state = deployed();
    let invalid_path = |path: &str| {
        format!(
            "Invalid method setting path: {path}. Must be one of: [/deploymentId, /description, /cacheClusterEnabled"
        )
    };
    // LS common `test_create_update_stages` `error-update-doc-version` and `error-update-tags`.
    for path in [
        "/documentation_version",
        "/tags/tag1",
        "/*/*/caching/nope",
        "/*/*",
        "/test/FETCH/caching/enabled",
        "/*/*/caching",
    ] {
        let message = bad_request(refused(
            &mut state,
            update_stage(vec![patch("replace", path, Some("1"))]),
        ));
        assert!(
            message.starts_with(&invalid_path(path)),
            "{path}: {message}"
        );
        assert!(message.ends_with("/variables/{variable_name}, /tracingEnabled]"));
    }
    for (path, value) in [
        ("/*/*/caching/ttlInSeconds", "3601"),
        ("/*/*/caching/ttlInSeconds", "-1"),
        ("/*/*/caching/ttlInSeconds", "ten"),
        ("/*/*/throttling/burstLimit", "-5"),
        ("/*/*/throttling/burstLimit", "1.5"),
        ("/*/*/throttling/rateLimit", "NaN"),
        ("/*/*/throttling/rateLimit", "-1"),
        ("/*/*/caching/enabled", "yes"),
        ("/*/*/logging/loglevel", "DEBUG"),
        (
            "/*/*/caching/unauthorizedCacheControlHeaderStrategy",
            "ALLOW",
        ),
        ("/cacheClusterSize", "2.0"),
        ("/tracingEnabled", "maybe"),
        ("/deploymentId", "zz"),
        ("/variables/bad-name", "x"),
    ] {
        // The valid first operation is rolled back with the rest.
        let op = update_stage(vec![
            patch("replace", "/description", Some("changed")),
            patch("replace", path, Some(value)),
        ]);
        bad_request(refused(&mut state, op));
    }
    bad_request(refused(
        &mut state,
        update_stage(vec![patch("move", "/description", Some("x"))]),
    ));
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::UpdateStage {
                api_id: "a".into(),
                stage_name: "zz".into(),
                patch: vec![],
                now: 1
            }
        ),
        Refusal::NotFound(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// PutRestApi and ImportRestApi

/// A definition for `/` and `/pets`, ids prefixed with `prefix`, each with a MOCK `verb`.
fn incoming(prefix: &str, verb: &str, extra: Option<&str>) -> ApiDefinition {
    let root = format!("{prefix}root");
    let pets = format!("{prefix}pets");
    let mut method = Method::new(verb);
    let mut integration = mock();
    integration.cache_namespace = Some(pets.clone());
    method.method_integration = Some(integration);
    let mut resources = vec![
        Resource {
            id: root.clone(),
            parent_id: None,
            path_part: None,
            path: "/".into(),
            resource_methods: BTreeMap::new(),
        },
        Resource {
            id: pets.clone(),
            parent_id: Some(root.clone()),
            path_part: Some("pets".into()),
            path: "/pets".into(),
            resource_methods: BTreeMap::from([(verb.to_string(), method)]),
        },
    ];
    if let Some(part) = extra {
        resources.push(Resource {
            id: format!("{prefix}{part}"),
            parent_id: Some(pets),
            path_part: Some(part.into()),
            path: format!("/pets/{part}"),
            resource_methods: BTreeMap::new(),
        });
    }
    let mut api = rest_api("ignored", &root);
    api.name = "imported".into();
    api.version = Some("1.0.0".into());
    api.binary_media_types = vec!["image/png".into()];
    ApiDefinition {
        api,
        resources,
        authorizers: vec![],
        models: vec![],
        request_validators: vec![],
        gateway_responses: vec![],
    }
}

fn put_rest_api(definition: ApiDefinition, mode: PutMode) -> AdminOp {
    AdminOp::PutRestApi {
        api_id: "a".into(),
        definition,
        mode,
    }
}

#[test]
fn put_rest_api_overwrite_keeps_identity_deployments_and_stages() {
    let mut state = deployed();
    ok(
        &mut state,
        update_api(vec![patch("add", "/binaryMediaTypes/image~1heif", None)]),
    );
    ok(
        &mut state,
        put_rest_api(incoming("n", "POST", Some("{id}")), PutMode::Overwrite),
    );
    let api = &state.apis["a"];
    let definition = &api.definition;
    assert_eq!(definition.api.id, "a");
    assert_eq!(definition.api.root_resource_id, "r");
    assert_eq!(definition.api.created_date, 100);
    assert_eq!(definition.api.name, "imported");
    assert_eq!(definition.api.version.as_deref(), Some("1.0.0"));
    // LS import `test_put_rest_api_mode_binary_media_types[overwrite]`.
    assert_eq!(definition.api.binary_media_types, ["image/png"]);
    let ids: Vec<&str> = definition.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r", "npets", "n{id}"]);
    assert_eq!(definition.resources[1].parent_id.as_deref(), Some("r"));
    assert!(!definition.resources[1].resource_methods.contains_key("GET"));
    assert_eq!(api.deployments.len(), 1);
    assert_eq!(api.stages.len(), 1);
}

#[test]
fn put_rest_api_merge_matches_resources_by_path() {
    let mut state = deployed();
    ok(
        &mut state,
        update_api(vec![patch("add", "/binaryMediaTypes/image~1heif", None)]),
    );
    ok(
        &mut state,
        put_rest_api(incoming("n", "POST", Some("{id}")), PutMode::Merge),
    );
    let definition = &state.apis["a"].definition;
    let ids: Vec<&str> = definition.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r", "p", "n{id}"]);
    let pets = definition.resource("p").unwrap();
    assert!(pets.resource_methods.contains_key("GET"));
    assert!(pets.resource_methods.contains_key("POST"));
    // The incoming namespace named the incoming id; the merged method lives on `p`.
    assert_eq!(
        pets.resource_methods["POST"]
            .method_integration
            .as_ref()
            .unwrap()
            .cache_namespace
            .as_deref(),
        Some("p")
    );
    assert_eq!(
        definition.resource("n{id}").unwrap().parent_id.as_deref(),
        Some("p")
    );
    // LS import `test_put_rest_api_mode_binary_media_types[merge]`.
    assert_eq!(
        definition.api.binary_media_types,
        ["image/heif", "image/png"]
    );
    assert_eq!(definition.api.name, "imported");
    // Merging GET replaces the same verb.
    let mut again = incoming("m", "GET", None);
    again.resources[1]
        .resource_methods
        .get_mut("GET")
        .unwrap()
        .api_key_required = true;
    ok(&mut state, put_rest_api(again, PutMode::Merge));
    let pets = state.apis["a"].definition.resource("p").unwrap();
    assert!(pets.resource_methods["GET"].api_key_required);
    assert!(pets.resource_methods.contains_key("POST"));
}

#[test]
fn put_rest_api_refusals() {
    let mut state = deployed();
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::PutRestApi {
                api_id: "zz".into(),
                definition: incoming("n", "GET", None),
                mode: PutMode::Merge
            }
        ),
        Refusal::NotFound(_)
    ));
    let mut broken = incoming("n", "GET", None);
    broken.resources.swap(0, 1);
    bad_request(refused(
        &mut state,
        put_rest_api(broken, PutMode::Overwrite),
    ));
    let mut wrong_path = incoming("n", "GET", None);
    wrong_path.resources[1].path = "/cats".into();
    bad_request(refused(
        &mut state,
        put_rest_api(wrong_path, PutMode::Merge),
    ));
    // A new resource whose incoming id is already used by another path.
    let mut clash = incoming("n", "GET", Some("x"));
    clash.resources[2].id = "p".into();
    assert!(matches!(
        refused(&mut state, put_rest_api(clash, PutMode::Merge)),
        Refusal::Conflict(_)
    ));
}

#[test]
fn import_rest_api() {
    let mut state = GatewayState::default();
    let mut definition = incoming("i", "GET", None);
    definition.api.id = "b".into();
    ok(
        &mut state,
        AdminOp::ImportRestApi {
            definition: definition.clone(),
        },
    );
    assert_eq!(*state.apis["b"].definition, definition);
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::ImportRestApi {
                definition: definition.clone()
            }
        ),
        Refusal::Conflict(_)
    ));
    let mut other = definition.clone();
    other.api.id = "c".into();
    other.api.root_resource_id = "elsewhere".into();
    bad_request(refused(
        &mut state,
        AdminOp::ImportRestApi { definition: other },
    ));
}

// ---------------------------------------------------------------------------------------------
// Determinism and the cluster command

fn script() -> Vec<AdminOp> {
    vec![
        AdminOp::CreateRestApi {
            api: rest_api("a", "r"),
        },
        create_resource_op("r", "pets", "p"),
        create_resource_op("p", "{id}", "q"),
        AdminOp::PutMethod {
            api_id: "a".into(),
            resource_id: "q".into(),
            method: Method::new("GET"),
        },
        put_integration_op("q", "GET", mock()),
        // Refused (duplicate), still part of the log.
        create_resource_op("r", "pets", "z"),
        create_deployment_op(
            "d1",
            Some(NewStage {
                stage_name: "prod".into(),
                description: Some("p".into()),
                variables: BTreeMap::new(),
            }),
        ),
        update_stage(vec![patch("replace", "/*/*/caching/enabled", Some("true"))]),
        put_rest_api(incoming("n", "POST", Some("x")), PutMode::Merge),
    ]
}

#[test]
fn the_same_ops_give_the_same_state() {
    let mut first = GatewayState::default();
    let mut second = GatewayState::default();
    let mut outcomes = Vec::new();
    for op in script() {
        let outcome = apply(&mut first, &op).is_ok();
        assert_eq!(apply(&mut second, &op).is_ok(), outcome);
        outcomes.push(outcome);
    }
    assert_eq!(first, second);
    assert_eq!(
        outcomes,
        [true, true, true, true, true, false, true, true, true]
    );
}

#[test]
fn admin_commands_apply_through_the_cluster_and_survive_bincode() {
    let mut direct = GatewayState::default();
    let mut through_cluster = GatewayState::default();
    for (index, op) in script().into_iter().enumerate() {
        let command = Command::Admin(op.clone());
        let bytes = bincode::serde::encode_to_vec(&command, bincode::config::standard()).unwrap();
        let (decoded, _): (Command, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(decoded, command);
        let expected = apply(&mut direct, &op);
        let outcome = crate::cluster::apply(&mut through_cluster, index as u64 + 1, &decoded);
        match expected {
            Ok(()) => assert_eq!(outcome, CommandOutcome::Applied),
            Err(refusal) => assert_eq!(outcome, CommandOutcome::Refused(refusal)),
        }
    }
    through_cluster.version = direct.version;
    assert_eq!(direct, through_cluster);
}

// ---------------------------------------------------------------------------------------------
// FlushStageCache

fn flush(api_id: &str, stage_name: &str) -> AdminOp {
    AdminOp::FlushStageCache {
        api_id: api_id.into(),
        stage_name: stage_name.into(),
    }
}

#[test]
fn flush_stage_cache_bumps_the_stage_generation_only() {
    let mut state = deployed();
    assert_eq!(state.cache_generations.get("a/prod"), None);
    ok(&mut state, flush("a", "prod"));
    assert_eq!(state.cache_generations["a/prod"], 1);
    ok(&mut state, flush("a", "prod"));
    assert_eq!(state.cache_generations["a/prod"], 2);
    assert_eq!(state.cache_generations.len(), 1);
    assert_eq!(cache_generation_key("a", "prod"), "a/prod");
    // The definition and stage are untouched: a flush only orphans cache entries.
    let mut expected = deployed();
    expected.cache_generations.insert("a/prod".into(), 2);
    assert_eq!(state, expected);
}

#[test]
fn flush_stage_cache_is_deterministic_through_the_log() {
    // Two replicas applying the same commands agree on the generation and the version.
    let commands = [
        Command::Admin(flush("a", "prod")),
        Command::Admin(flush("a", "nope")),
        Command::Admin(flush("a", "prod")),
    ];
    let replay = || {
        let mut state = deployed();
        let outcomes: Vec<CommandOutcome> = commands
            .iter()
            .enumerate()
            .map(|(index, command)| crate::cluster::apply(&mut state, 10 + index as u64, command))
            .collect();
        (state, outcomes)
    };
    let (first, outcomes) = replay();
    assert_eq!(replay(), (first.clone(), outcomes.clone()));
    assert_eq!(first.cache_generations["a/prod"], 2);
    assert_eq!(first.version, 12);
    assert!(matches!(
        outcomes[1],
        CommandOutcome::Refused(Refusal::NotFound(_))
    ));
}

#[test]
fn flush_stage_cache_refusals_use_aws_texts() {
    let mut state = deployed();
    assert_eq!(
        refused(&mut state, flush("zzzzzzzzzz", "prod")),
        Refusal::NotFound("Invalid API identifier specified zzzzzzzzzz".into())
    );
    assert_eq!(
        refused(&mut state, flush("a", "beta")),
        Refusal::NotFound("Invalid Stage identifier specified beta".into())
    );
}

#[test]
fn a_stage_created_again_keeps_its_generation() {
    let mut state = deployed();
    ok(&mut state, flush("a", "prod"));
    ok(
        &mut state,
        AdminOp::DeleteStage {
            api_id: "a".into(),
            stage_name: "prod".into(),
        },
    );
    ok(
        &mut state,
        AdminOp::CreateStage {
            api_id: "a".into(),
            stage: Stage::new("prod", "d1", 300),
        },
    );
    // Entries cached under generation 0 before the flush can never be served again.
    assert_eq!(state.cache_generations["a/prod"], 1);
}

proptest! {
    /// Arbitrary stage patches never panic, and a refused one changes nothing.
    #[test]
    fn arbitrary_stage_patches_are_total(
        ops in proptest::collection::vec(
            (
                prop_oneof![Just("add".to_string()), Just("remove".to_string()), Just("replace".to_string()), "[a-z]{0,4}"],
                prop_oneof![
                    Just("/*/*/caching/ttlInSeconds".to_string()),
                    Just("/*/*/throttling/rateLimit".to_string()),
                    Just("/*/*".to_string()),
                    Just("/variables/v".to_string()),
                    Just("/deploymentId".to_string()),
                    "/[a-z~0-9*{}+]{0,6}(/[A-Z*]{0,4}(/[a-zA-Z]{0,8}(/[a-zA-Z]{0,8})?)?)?",
                ],
                proptest::option::of("[a-zA-Z0-9.-]{0,6}"),
            ),
            0..4,
        )
    ) {
        let mut state = deployed();
        let before = state.clone();
        let patch = ops
            .iter()
            .map(|(op, path, value)| PatchOperation::new(op, path, value.as_deref()))
            .collect();
        if apply(&mut state, &update_stage(patch)).is_err() {
            prop_assert_eq!(state, before);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Quotas (issue #14): each bound refuses with a BadRequest that names the field, never the
// value, and leaves the state as it was; the bound itself is accepted.

#[test]
fn rest_api_fields_are_bounded() {
    let mut state = GatewayState::default();
    let mut api = rest_api("b", "rb");
    api.name = "n".repeat(quotas::API_NAME_MAX);
    api.binary_media_types = (0..quotas::BINARY_MEDIA_TYPES_MAX)
        .map(|i| format!("image/t{i}"))
        .collect();
    api.tags = (0..quotas::TAGS_MAX)
        .map(|i| (format!("k{i}"), "v".repeat(quotas::TAG_VALUE_MAX)))
        .collect();
    ok(&mut state, AdminOp::CreateRestApi { api: api.clone() });

    let too_big: [fn(&mut RestApi); 8] = [
        |api| api.name = "é".repeat(quotas::API_NAME_MAX + 1),
        |api| api.description = Some("d".repeat(quotas::DESCRIPTION_MAX + 1)),
        |api| api.version = Some("v".repeat(quotas::VERSION_MAX + 1)),
        |api| api.binary_media_types.push("image/one-more".into()),
        |api| api.binary_media_types[0] = "t".repeat(quotas::MEDIA_TYPE_MAX + 1),
        |api| {
            api.tags.insert("one-more".into(), "v".into());
        },
        |api| {
            api.tags.insert("aws:reserved".into(), "v".into());
        },
        |api| api.policy = Some("p".repeat(quotas::POLICY_MAX + 1)),
    ];
    for (index, grow) in too_big.iter().enumerate() {
        let mut bigger = api.clone();
        bigger.id = format!("c{index}");
        grow(&mut bigger);
        let message = bad_request(refused(&mut state, AdminOp::CreateRestApi { api: bigger }));
        assert!(message.len() < 100, "{message}");
    }
}

#[test]
fn patches_cannot_grow_fields_past_their_bounds() {
    let mut state = fresh();
    let patch = vec![PatchOperation::new(
        "replace",
        "/name",
        Some(&"n".repeat(quotas::API_NAME_MAX + 1)),
    )];
    bad_request(refused(
        &mut state,
        AdminOp::UpdateRestApi {
            api_id: "a".into(),
            patch,
        },
    ));
    let adds: Vec<String> = (0..=quotas::BINARY_MEDIA_TYPES_MAX)
        .map(|i| format!("/binaryMediaTypes/image~1t{i}"))
        .collect();
    let patch = adds
        .iter()
        .map(|path| PatchOperation::new("add", path, None))
        .collect();
    bad_request(refused(
        &mut state,
        AdminOp::UpdateRestApi {
            api_id: "a".into(),
            patch,
        },
    ));
}

#[test]
fn an_api_has_at_most_300_resources() {
    let mut state = fresh();
    for i in 1..quotas::RESOURCES_MAX {
        create_resource(&mut state, "r", &format!("p{i}"), &format!("id{i}"));
    }
    let message = bad_request(refused(
        &mut state,
        create_resource_op("r", "last", "idlast"),
    ));
    assert!(
        message.starts_with("Maximum number of Resources"),
        "{message}"
    );
}

#[test]
fn stage_variables_are_bounded_on_every_path() {
    let mut state = deployed();
    let variables = |count: usize, value: usize| -> StringMap {
        (0..count)
            .map(|i| (format!("v{i}"), "x".repeat(value)))
            .collect()
    };
    ok(
        &mut state,
        AdminOp::CreateDeployment {
            api_id: "a".into(),
            deployment_id: "d2".into(),
            description: None,
            created_date: 300,
            stage: Some(NewStage {
                stage_name: "prod".into(),
                description: None,
                variables: variables(
                    quotas::STAGE_VARIABLES_MAX,
                    quotas::STAGE_VARIABLE_VALUE_MAX,
                ),
            }),
        },
    );
    // One more on top of the stage's 100, through a deployment or a patch.
    let mut extra = StringMap::new();
    extra.insert("another".into(), "x".into());
    let message = bad_request(refused(
        &mut state,
        AdminOp::CreateDeployment {
            api_id: "a".into(),
            deployment_id: "d3".into(),
            description: None,
            created_date: 400,
            stage: Some(NewStage {
                stage_name: "prod".into(),
                description: None,
                variables: extra,
            }),
        },
    ));
    assert!(message.contains("at most 100 stage variables"), "{message}");
    let message = bad_request(refused(
        &mut state,
        AdminOp::UpdateStage {
            api_id: "a".into(),
            stage_name: "prod".into(),
            patch: vec![PatchOperation::new(
                "replace",
                "/variables/another",
                Some("x"),
            )],
            now: 500,
        },
    ));
    assert!(message.contains("at most 100 stage variables"), "{message}");
    let mut stage = Stage::new("long", "d1", 600);
    stage.variables = variables(1, quotas::STAGE_VARIABLE_VALUE_MAX + 1);
    bad_request(refused(
        &mut state,
        AdminOp::CreateStage {
            api_id: "a".into(),
            stage,
        },
    ));
    let mut stage = Stage::new("named", "d1", 600);
    stage
        .variables
        .insert("n".repeat(quotas::STAGE_VARIABLE_NAME_MAX + 1), "x".into());
    bad_request(refused(
        &mut state,
        AdminOp::CreateStage {
            api_id: "a".into(),
            stage,
        },
    ));
}

// ---- Issue 15: the rest of the REST control plane ----

fn one_op(op: &str, path: &str, value: Option<&str>) -> Vec<PatchOperation> {
    vec![PatchOperation::new(op, path, value)]
}

fn not_found(refusal: Refusal) -> String {
    match refusal {
        Refusal::NotFound(message) => message,
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn conflict(refusal: Refusal) -> String {
    match refusal {
        Refusal::Conflict(message) => message,
        other => panic!("expected Conflict, got {other:?}"),
    }
}

/// `deployed()` plus a 200 method response and a 200 integration response on `GET /pets`.
fn with_responses() -> GatewayState {
    let mut state = deployed();
    ok(
        &mut state,
        AdminOp::PutMethodResponse {
            api_id: "a".into(),
            resource_id: "p".into(),
            http_method: "GET".into(),
            response: MethodResponse {
                status_code: "200".into(),
                response_parameters: BTreeMap::new(),
                response_models: BTreeMap::new(),
            },
        },
    );
    ok(
        &mut state,
        AdminOp::PutIntegrationResponse {
            api_id: "a".into(),
            resource_id: "p".into(),
            http_method: "GET".into(),
            response: IntegrationResponse {
                status_code: "200".into(),
                selection_pattern: Some(String::new()),
                response_parameters: BTreeMap::new(),
                response_templates: BTreeMap::from([(
                    "application/json".to_string(),
                    "\"created\"".to_string(),
                )]),
                content_handling: None,
            },
        },
    );
    state
}

fn get_pets(state: &GatewayState) -> &Method {
    &definition(state)
        .resource("p")
        .expect("/pets")
        .resource_methods["GET"]
}

fn response_op(delete_integration: bool, api: &str, verb: &str, status: &str) -> AdminOp {
    let (api_id, resource_id, http_method, status_code) =
        (api.into(), "p".into(), verb.into(), status.into());
    if delete_integration {
        AdminOp::DeleteIntegrationResponse {
            api_id,
            resource_id,
            http_method,
            status_code,
        }
    } else {
        AdminOp::DeleteMethodResponse {
            api_id,
            resource_id,
            http_method,
            status_code,
        }
    }
}

#[test]
fn delete_method_and_integration_responses_with_aws_texts() {
    let mut state = with_responses();
    // Recorded, LS api `test_delete_integration_response_errors`.
    assert_eq!(
        not_found(refused(&mut state, response_op(true, "zz", "GET", "200"))),
        "Invalid Resource identifier specified"
    );
    assert_eq!(
        not_found(refused(&mut state, response_op(true, "a", "POST", "200"))),
        "Invalid Integration identifier specified"
    );
    assert_eq!(
        not_found(refused(&mut state, response_op(true, "a", "GET", "404"))),
        "Invalid Response status code specified"
    );
    assert_eq!(
        not_found(refused(&mut state, response_op(false, "a", "POST", "200"))),
        "Invalid Method identifier specified"
    );
    assert_eq!(
        not_found(refused(&mut state, response_op(false, "a", "GET", "404"))),
        "Invalid Response status code specified"
    );
    ok(&mut state, response_op(true, "a", "GET", "200"));
    ok(&mut state, response_op(false, "a", "GET", "200"));
    let method = get_pets(&state);
    assert!(method.method_responses.is_empty());
    let integration = method.method_integration.as_ref().expect("integration");
    assert!(integration.integration_responses.is_empty());
    // A second delete finds nothing.
    refused(&mut state, response_op(false, "a", "GET", "200"));
}

fn update_integration(patch: Vec<PatchOperation>) -> AdminOp {
    AdminOp::UpdateIntegration {
        api_id: "a".into(),
        resource_id: "p".into(),
        http_method: "GET".into(),
        patch,
    }
}

#[test]
fn update_integration_patches_the_working_definition_only() {
    let mut state = deployed();
    let mut http = Integration::new(IntegrationType::Http);
    http.http_method = Some("GET".into());
    http.uri = Some("http://one.example/".into());
    put_integration(&mut state, "p", "GET", http);
    ok(
        &mut state,
        update_integration(vec![
            PatchOperation::new("replace", "/uri", Some("http://two.example/{id}")),
            PatchOperation::new("replace", "/timeoutInMillis", Some("5000")),
            PatchOperation::new("replace", "/passthroughBehavior", Some("NEVER")),
            PatchOperation::new("add", "/requestTemplates/application~1json", Some("{}")),
            PatchOperation::new(
                "add",
                "/requestParameters/integration.request.path.id",
                Some("method.request.path.id"),
            ),
            PatchOperation::new("add", "/cacheKeyParameters/method.request.path.id", None),
        ]),
    );
    let integration = get_pets(&state)
        .method_integration
        .clone()
        .expect("integration");
    assert_eq!(integration.uri.as_deref(), Some("http://two.example/{id}"));
    assert_eq!(integration.timeout_in_millis, 5000);
    assert_eq!(
        integration.passthrough_behavior,
        crate::model::PassthroughBehavior::Never
    );
    assert_eq!(integration.request_templates["application/json"], "{}");
    assert_eq!(
        integration.request_parameters["integration.request.path.id"],
        "method.request.path.id"
    );
    assert_eq!(integration.cache_key_parameters, ["method.request.path.id"]);
    // The stage serves its deployment's snapshot: still the MOCK of d1.
    let deployed_method = &state.apis["a"].deployments[0]
        .definition
        .resource("p")
        .expect("p")
        .resource_methods["GET"];
    assert_eq!(
        deployed_method
            .method_integration
            .as_ref()
            .map(|integration| integration.integration_type),
        Some(IntegrationType::Mock)
    );

    assert_eq!(
        bad_request(refused(
            &mut state,
            update_integration(one_op("replace", "/nothing", Some("x")))
        )),
        "Invalid patch path /nothing"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_integration(one_op("replace", "/timeoutInMillis", Some("10")))
        )),
        "Timeout should be between 50 ms and 29000 ms"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_integration(one_op("replace", "/uri", Some("ftp://x")))
        )),
        "Invalid HTTP endpoint specified for URI"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_integration(one_op("add", "/uri", Some("http://x/")))
        )),
        "Invalid patch operation specified. Must be one of: [replace]"
    );
    assert_eq!(
        not_found(refused(
            &mut state,
            update_integration(one_op("remove", "/requestTemplates/text~1plain", None))
        )),
        "Content-Type specified was not found"
    );
    ok(
        &mut state,
        update_integration(one_op(
            "remove",
            "/requestTemplates/application~1json",
            None,
        )),
    );
    assert!(
        get_pets(&state)
            .method_integration
            .as_ref()
            .is_some_and(|integration| integration.request_templates.is_empty())
    );
}

fn update_method_response(patch: Vec<PatchOperation>) -> AdminOp {
    AdminOp::UpdateMethodResponse {
        api_id: "a".into(),
        resource_id: "p".into(),
        http_method: "GET".into(),
        status_code: "200".into(),
        patch,
    }
}

#[test]
fn update_method_response_with_aws_texts() {
    let mut state = with_responses();
    ok(
        &mut state,
        update_method_response(vec![
            PatchOperation::new(
                "add",
                "/responseParameters/method.response.header.my-header",
                Some("true"),
            ),
            PatchOperation::new("add", "/responseModels/application~1json", Some("Empty")),
        ]),
    );
    let response = &get_pets(&state).method_responses["200"];
    assert!(response.response_parameters["method.response.header.my-header"]);
    assert_eq!(response.response_models["application/json"], "Empty");
    // Recorded, LS api `test_update_method_lack_response_parameters_and_models` and
    // `test_update_method_wrong_param_names`.
    assert_eq!(
        not_found(refused(
            &mut state,
            update_method_response(one_op(
                "remove",
                "/responseParameters/method.response.header.other",
                None
            ))
        )),
        "Invalid parameter name specified"
    );
    assert_eq!(
        not_found(refused(
            &mut state,
            update_method_response(one_op("remove", "/responseModels/text~1plain", None))
        )),
        "Content-Type specified was not found"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_method_response(one_op(
                "add",
                "/wrong/method.response.header.my-header",
                Some("true")
            ))
        )),
        "Invalid patch path /wrong/method.response.header.my-header"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_method_response(one_op(
                "add",
                "/responseModels/application~1xml",
                Some("Nope")
            ))
        )),
        "Invalid model identifier specified: Nope"
    );
    // Recorded, LS api `test_update_method_response_negative_tests`.
    let mut unknown_status = update_method_response(vec![]);
    if let AdminOp::UpdateMethodResponse { status_code, .. } = &mut unknown_status {
        *status_code = "404".into();
    }
    assert_eq!(
        not_found(refused(&mut state, unknown_status)),
        "Invalid Response status code specified"
    );
    ok(
        &mut state,
        update_method_response(one_op(
            "remove",
            "/responseParameters/method.response.header.my-header",
            None,
        )),
    );
    assert!(
        get_pets(&state).method_responses["200"]
            .response_parameters
            .is_empty()
    );
}

#[test]
fn update_integration_response_patches_pattern_and_maps() {
    let mut state = with_responses();
    let op = |patch: Vec<PatchOperation>| AdminOp::UpdateIntegrationResponse {
        api_id: "a".into(),
        resource_id: "p".into(),
        http_method: "GET".into(),
        status_code: "200".into(),
        patch,
    };
    // Recorded, LS api `test_lifecycle_integration_response` `update-integration-response`.
    ok(
        &mut state,
        op(one_op(
            "replace",
            "/selectionPattern",
            Some("updated-pattern"),
        )),
    );
    ok(
        &mut state,
        op(vec![
            PatchOperation::new(
                "replace",
                "/responseTemplates/application~1json",
                Some("ok"),
            ),
            PatchOperation::new(
                "add",
                "/responseParameters/method.response.header.x",
                Some("'v'"),
            ),
        ]),
    );
    let integration = get_pets(&state)
        .method_integration
        .clone()
        .expect("integration");
    let response = &integration.integration_responses["200"];
    assert_eq!(
        response.selection_pattern.as_deref(),
        Some("updated-pattern")
    );
    assert_eq!(response.response_templates["application/json"], "ok");
    assert_eq!(
        response.response_parameters["method.response.header.x"],
        "'v'"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            op(one_op("replace", "/statusCode", Some("201")))
        )),
        "Invalid patch path /statusCode"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            op(one_op(
                "replace",
                "/contentHandling",
                Some("CONVERT_TO_NOTHING")
            ))
        )),
        "Invalid value 'CONVERT_TO_NOTHING' for path /contentHandling. Must be one of: [CONVERT_TO_BINARY, CONVERT_TO_TEXT]"
    );
}

fn update_resource(resource: &str, patch: Vec<PatchOperation>) -> AdminOp {
    AdminOp::UpdateResource {
        api_id: "a".into(),
        resource_id: resource.into(),
        patch,
    }
}

fn path_of(state: &GatewayState, id: &str) -> String {
    definition(state)
        .resource(id)
        .expect("resource")
        .path
        .clone()
}

/// The sequence of LS api `test_update_resource_behaviour` and `test_update_resource_on_root`,
/// with AWS's recorded answers.
#[test]
fn update_resource_renames_and_moves_with_aws_texts() {
    let mut state = fresh();
    create_resource(&mut state, "r", "pets", "p");
    create_resource(&mut state, "p", "subpets", "s");
    create_resource(&mut state, "s", "pets", "c");
    put_method(&mut state, "c", "GET");
    assert_eq!(path_of(&state, "c"), "/pets/subpets/pets");

    assert_eq!(
        not_found(refused(
            &mut state,
            update_resource("nope", one_op("replace", "/pathPart", Some("x")))
        )),
        "Invalid Resource identifier specified"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_resource("s", one_op("replace", "/invalid", Some("x")))
        )),
        "Invalid patch path  '/invalid' specified for op 'replace'. Must be one of: [/parentId, /pathPart]"
    );
    assert_eq!(
        not_found(refused(
            &mut state,
            update_resource("s", one_op("replace", "/parentId", Some("nope")))
        )),
        "Invalid Resource identifier specified"
    );
    assert_eq!(
        conflict(refused(
            &mut state,
            update_resource("c", one_op("replace", "/parentId", Some("r")))
        )),
        "Another resource with the same parent already has this name: pets"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_resource("p", one_op("replace", "/parentId", Some("c")))
        )),
        "Resources cannot be cyclical."
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_resource("s", one_op("remove", "/pathPart", None))
        )),
        "Invalid patch path  '/pathPart' specified for op 'remove'. Please choose supported operations"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_resource("s", one_op("add", "/pathPart", Some("x")))
        )),
        "Invalid patch path  '/pathPart' specified for op 'add'. Please choose supported operations"
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_resource("r", one_op("replace", "/pathPart", Some("x")))
        )),
        "Root resource cannot update its pathPart."
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_resource("r", one_op("replace", "/parentId", Some("p")))
        )),
        "Root resource cannot update its parentId."
    );

    // Move /pets/subpets to the root: its child follows, methods and ids kept.
    ok(
        &mut state,
        update_resource("s", one_op("replace", "/parentId", Some("r"))),
    );
    assert_eq!(path_of(&state, "s"), "/subpets");
    assert_eq!(path_of(&state, "c"), "/subpets/pets");
    assert!(
        definition(&state)
            .resource("c")
            .expect("c")
            .resource_methods
            .contains_key("GET")
    );
    assert_eq!(
        conflict(refused(
            &mut state,
            update_resource("s", one_op("replace", "/pathPart", Some("pets")))
        )),
        "Another resource with the same parent already has this name: pets"
    );

    // Move /pets under a resource created after it: the list keeps parents first.
    ok(
        &mut state,
        update_resource("p", one_op("replace", "/parentId", Some("c"))),
    );
    assert_eq!(path_of(&state, "p"), "/subpets/pets/pets");
    check_tree(definition(&state)).expect("parents come first");
    ok(
        &mut state,
        update_resource("c", one_op("replace", "/pathPart", Some("{id}"))),
    );
    assert_eq!(path_of(&state, "p"), "/subpets/{id}/pets");
    assert_eq!(
        bad_request(refused(
            &mut state,
            update_resource("c", one_op("replace", "/pathPart", Some("{proxy+}")))
        )),
        "Cannot create a child of a resource with a greedy path variable: {proxy+}"
    );
}

#[test]
fn update_deployment_patches_the_description_only() {
    let mut state = deployed();
    let op = |patch: Vec<PatchOperation>| AdminOp::UpdateDeployment {
        api_id: "a".into(),
        deployment_id: "d1".into(),
        patch,
    };
    ok(
        &mut state,
        op(one_op("replace", "/description", Some("second"))),
    );
    assert_eq!(
        state.apis["a"].deployments[0].description.as_deref(),
        Some("second")
    );
    assert_eq!(
        bad_request(refused(
            &mut state,
            op(one_op("replace", "/definition", Some("x")))
        )),
        "Invalid patch path /definition"
    );
    assert_eq!(
        not_found(refused(
            &mut state,
            AdminOp::UpdateDeployment {
                api_id: "a".into(),
                deployment_id: "nope".into(),
                patch: vec![],
            }
        )),
        "Invalid Deployment identifier specified nope"
    );
}

proptest! {
    /// Random creates, renames and moves: a refused op changes nothing and is refused for one
    /// of AWS's reasons, never by the final tree check; after every op the tree keeps its
    /// invariants (parents first, each path its parent's path plus its part,
    /// no two siblings with one name), which routing relies on.
    #[test]
    fn resource_moves_and_renames_keep_the_tree_whole(
        steps in proptest::collection::vec(
            (0u8..3, 0usize..8, 0usize..8, prop_oneof![
                Just("a".to_string()), Just("b".to_string()), Just("{id}".to_string()),
                Just("{proxy+}".to_string()), Just("c".to_string()),
            ]),
            1..24,
        )
    ) {
        let mut state = fresh();
        let mut ids = vec!["r".to_string()];
        for (index, (kind, target, other, part)) in steps.into_iter().enumerate() {
            let target = ids[target % ids.len()].clone();
            let other = ids[other % ids.len()].clone();
            let op = match kind {
                0 => {
                    let id = format!("n{index}");
                    create_resource_op(&target, &part, &id)
                }
                1 => update_resource(&target, one_op("replace", "/pathPart", Some(&part))),
                _ => update_resource(&target, one_op("replace", "/parentId", Some(&other))),
            };
            let before = state.clone();
            match apply(&mut state, &op) {
                Ok(()) => {
                    if let AdminOp::CreateResource { resource_id, .. } = &op {
                        ids.push(resource_id.clone());
                    }
                }
                Err(refusal) => {
                    prop_assert_eq!(&state, &before);
                    // The safety net's refusal would mean the op built a broken tree.
                    prop_assert!(
                        !refusal.to_string().contains("Invalid API definition"),
                        "{}",
                        refusal
                    );
                }
            }
            let definition = definition(&state);
            prop_assert!(check_tree(definition).is_ok(), "{:?}", check_tree(definition));
            let mut siblings = BTreeSet::new();
            for resource in &definition.resources {
                if let Some(parent) = &resource.parent_id {
                    prop_assert!(siblings.insert((parent.clone(), resource.path_part.clone())));
                }
            }
        }
    }
}
