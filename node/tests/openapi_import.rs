//! Import of the LocalStack/AWS fixture documents, round trips, error precision and a property
//! test over random resource trees.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use portico::openapi::{ImportError, Imported, export_oas30, export_swagger2, import};
use portico_proto::{ApiDefinition, Integration, IntegrationType, Method, Resource};
use proptest::prelude::*;
use serde_json::json;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/localstack-openapi/"
);
const NOW: i64 = 1_700_000_000;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{name}"))
        .unwrap_or_else(|error| panic!("reading fixture {name}: {error}"))
}

fn ids() -> impl FnMut() -> String {
    let mut counter = 0u32;
    move || {
        counter += 1;
        format!("id{counter:08}")
    }
}

fn try_import(name: &str, text: &str) -> Result<Imported, ImportError> {
    let mut next = ids();
    import(name, text, "api0000001", NOW, &mut next)
}

fn import_ok(name: &str, text: &str) -> Imported {
    try_import(name, text).unwrap_or_else(|error| panic!("{name} should import:\n{error}"))
}

fn import_err(name: &str, text: &str) -> ImportError {
    match try_import(name, text) {
        Ok(imported) => panic!(
            "{name} should be rejected; imported {:#?}",
            imported.definition
        ),
        Err(error) => error,
    }
}

fn pointers(error: &ImportError) -> Vec<&str> {
    error.problems.iter().map(|p| p.pointer.as_str()).collect()
}

fn has_warning(imported: &Imported, pointer: &str, needle: &str) -> bool {
    imported
        .warnings
        .iter()
        .any(|w| w.pointer == pointer && w.message.contains(needle))
}

fn paths(definition: &ApiDefinition) -> Vec<&str> {
    definition
        .resources
        .iter()
        .map(|r| r.path.as_str())
        .collect()
}

fn method<'d>(definition: &'d ApiDefinition, path: &str, verb: &str) -> &'d Method {
    definition
        .resource_by_path(path)
        .and_then(|r| r.resource_methods.get(verb))
        .unwrap_or_else(|| panic!("no {verb} {path}"))
}

fn integration<'d>(definition: &'d ApiDefinition, path: &str, verb: &str) -> &'d Integration {
    method(definition, path, verb)
        .method_integration
        .as_ref()
        .unwrap_or_else(|| panic!("no integration on {verb} {path}"))
}

/// Replaces generated ids by names derived from what they identify, sorts the lists and drops
/// the warnings (an export leaves out what was warned about, so the re-import warns less).
fn normalize(mut definition: ApiDefinition) -> ApiDefinition {
    let mut names = HashMap::new();
    for resource in &definition.resources {
        names.insert(resource.id.clone(), format!("resource:{}", resource.path));
    }
    for authorizer in &definition.authorizers {
        names.insert(
            authorizer.id.clone(),
            format!("authorizer:{}", authorizer.name),
        );
    }
    for model in &definition.models {
        names.insert(model.id.clone(), format!("model:{}", model.name));
    }
    for validator in &definition.request_validators {
        names.insert(
            validator.id.clone(),
            format!("validator:{}", validator.name),
        );
    }
    let rename = |id: &mut String| {
        if let Some(name) = names.get(id) {
            *id = name.clone();
        }
    };
    definition.api.warnings.clear();
    rename(&mut definition.api.root_resource_id);
    for resource in &mut definition.resources {
        rename(&mut resource.id);
        if let Some(parent) = &mut resource.parent_id {
            rename(parent);
        }
        for method in resource.resource_methods.values_mut() {
            if let Some(id) = &mut method.authorizer_id {
                rename(id);
            }
            if let Some(id) = &mut method.request_validator_id {
                rename(id);
            }
            if let Some(integration) = &mut method.method_integration
                && let Some(namespace) = &mut integration.cache_namespace
            {
                rename(namespace);
            }
        }
    }
    for authorizer in &mut definition.authorizers {
        rename(&mut authorizer.id);
    }
    for model in &mut definition.models {
        rename(&mut model.id);
    }
    for validator in &mut definition.request_validators {
        rename(&mut validator.id);
    }
    definition.resources.sort_by(|a, b| a.path.cmp(&b.path));
    definition.authorizers.sort_by(|a, b| a.name.cmp(&b.name));
    definition.models.sort_by(|a, b| a.name.cmp(&b.name));
    definition
        .request_validators
        .sort_by(|a, b| a.name.cmp(&b.name));
    definition
        .gateway_responses
        .sort_by(|a, b| a.response_type.cmp(&b.response_type));
    definition
}

/// import → export (OAS 3.0 and Swagger 2.0) → import gives the same definition.
fn assert_round_trip(name: &str, first: &Imported) {
    let exported = export_oas30(&first.definition, Some("https://example.com/prod"));
    let text = serde_json::to_string_pretty(&exported).unwrap_or_default();
    let second = import_ok(&format!("{name} (exported)"), &text);
    assert_eq!(
        normalize(first.definition.clone()),
        normalize(second.definition),
        "OAS 3.0 round trip of {name} changed the definition; export was:\n{text}"
    );
}

fn assert_swagger_round_trip(name: &str, first: &Imported) {
    let exported = export_swagger2(&first.definition, Some("https://example.com/prod"));
    let text = serde_json::to_string_pretty(&exported).unwrap_or_default();
    let second = import_ok(&format!("{name} (swagger export)"), &text);
    assert_eq!(
        normalize(first.definition.clone()),
        normalize(second.definition),
        "Swagger 2.0 round trip of {name} changed the definition; export was:\n{text}"
    );
}

// ---- fixtures ----------------------------------------------------------------------------

#[test]
fn fixture_openapi_basepath_server_variable_yaml_imports() {
    let name = "openapi-basepath-server-variable.yaml";
    let imported = import_ok(name, &fixture(name));
    let definition = &imported.definition;
    assert_eq!(definition.api.name, "test-import-oas");
    assert_eq!(definition.api.version.as_deref(), Some("2.0"));
    // basePath handling is AWS's default `ignore`: the server variable does not prefix paths.
    assert_eq!(paths(definition), ["/", "/test"]);
    let get = method(definition, "/test", "GET");
    assert_eq!(
        get.method_responses["200"].response_models["application/json"],
        "Empty"
    );
    assert!(
        !get.method_responses["200"].response_parameters["method.response.header.Access-Control-Allow-Origin"]
    );
    let mock = integration(definition, "/test", "GET");
    assert_eq!(mock.integration_type, IntegrationType::Mock);
    assert_eq!(mock.integration_responses["200"].selection_pattern, None);
    assert_eq!(
        mock.request_parameters["integration.request.header.X-Amz-Invocation-Type"],
        "'Event'"
    );
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert_eq!(definition.models.len(), 1);
    assert_round_trip(name, &imported);
    assert_swagger_round_trip(name, &imported);
}

#[test]
fn fixture_openapi_basepath_url_yaml_imports_with_awss_request_parameter_warning() {
    let name = "openapi-basepath-url.yaml";
    let imported = import_ok(name, &fixture(name));
    let definition = &imported.definition;
    assert_eq!(paths(definition), ["/", "/test"]);
    // AWS keeps the string parameters and warns about the boolean one, with this text.
    let mock = integration(definition, "/test", "GET");
    assert_eq!(
        mock.request_parameters.keys().collect::<Vec<_>>(),
        [
            "integration.request.header.X-Amz-Invocation-Type",
            "integration.request.header.double-single"
        ]
    );
    assert_eq!(
        definition.api.warnings,
        [
            "/paths/~1test/get/x-amazon-apigateway-integration/requestParameters/integration.request.header.nothing: Invalid format for 'requestParameters'. Expected type string for property 'integration.request.header.nothing' of resource '/test' and method 'GET' but got 'true'"
        ]
    );
    assert_round_trip(name, &imported);
}

#[test]
fn fixture_openapi_http_method_integration_is_rejected_for_its_placeholder_uri() {
    let name = "openapi-http-method-integration.json";
    let text = fixture(name);
    let error = import_err(name, &text);
    assert_eq!(
        pointers(&error),
        ["/paths/~1/get/x-amazon-apigateway-integration/uri"]
    );
    assert!(
        error.problems[0]
            .message
            .starts_with("AWS ARN for integration must contain path or action")
    );
    // With the Terraform placeholder filled in (as LocalStack's test does) it imports: an AWS
    // integration, stored with a warning, and a VTL request template, stored with a warning.
    let filled = text.replace(
        "${lambda_invocation_arn}",
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:f/invocations",
    );
    let imported = import_ok(name, &filled);
    let definition = &imported.definition;
    assert_eq!(paths(definition), ["/"]);
    let aws = integration(definition, "/", "GET");
    assert_eq!(aws.integration_type, IntegrationType::Aws);
    assert_eq!(aws.http_method.as_deref(), Some("POST"));
    assert_eq!(aws.passthrough_behavior.as_str(), "WHEN_NO_TEMPLATES");
    assert_eq!(
        aws.content_handling.map(|c| c.as_str()),
        Some("CONVERT_TO_TEXT")
    );
    let at = "/paths/~1/get/x-amazon-apigateway-integration";
    assert!(has_warning(
        &imported,
        &format!("{at}/type"),
        "AWS service integrations"
    ));
    assert!(has_warning(
        &imported,
        &format!("{at}/requestTemplates/application~1json"),
        "not evaluated"
    ));
    // The MOCK OPTIONS template `{"statusCode": 200}` is static: no warning.
    assert!(
        !imported
            .warnings
            .iter()
            .any(|w| w.pointer.contains("/options/"))
    );
    assert_round_trip(name, &imported);
}

#[test]
fn fixture_openapi_mock_imports() {
    let name = "openapi-mock.json";
    let imported = import_ok(name, &fixture(name));
    let definition = &imported.definition;
    assert_eq!(definition.api.name, "wait-for-seconds");
    assert_eq!(paths(definition), ["/", "/echo", "/echo/{data}"]);
    assert!(
        definition
            .resource_by_path("/echo")
            .is_some_and(|r| r.resource_methods.is_empty())
    );
    let any = integration(definition, "/echo/{data}", "ANY");
    assert_eq!(any.integration_type, IntegrationType::Mock);
    assert_eq!(any.passthrough_behavior.as_str(), "WHEN_NO_TEMPLATES");
    assert_eq!(
        any.integration_responses["200"].response_templates["application/json"],
        "{\"echo\": \"$input.params('data')\", \"response\": \"mocked\"}"
    );
    assert!(has_warning(
        &imported,
        "/paths/~1echo~1{data}/x-amazon-apigateway-any-method/x-amazon-apigateway-integration/responses/default/responseTemplates/application~1json",
        "not evaluated"
    ));
    assert_eq!(imported.warnings.len(), 1);
    assert_round_trip(name, &imported);
    assert_swagger_round_trip(name, &imported);
}

#[test]
fn fixture_openapi_spec_imports_with_ref_integration_and_authorizer() {
    let name = "openapi.spec.json";
    let imported = import_ok(name, &fixture(name));
    let definition = &imported.definition;
    assert_eq!(definition.api.name, "Example Pet Store");
    assert_eq!(
        definition.api.description.as_deref(),
        Some("A Pet Store API.")
    );
    assert_eq!(paths(definition), ["/", "/pets", "/pets/{petId}"]);
    // The POST integration is a $ref into components/x-amazon-apigateway-integrations.
    let post = integration(definition, "/pets", "POST");
    assert_eq!(post.integration_type, IntegrationType::HttpProxy);
    assert_eq!(
        post.uri.as_deref(),
        Some("http://petstore.execute-api.us-west-1.amazonaws.com/petstore/pets")
    );
    assert_eq!(post.http_method.as_deref(), Some("POST"));
    assert_eq!(
        post.cache_namespace.as_deref(),
        Some(
            definition
                .resource_by_path("/pets")
                .map(|r| r.id.as_str())
                .unwrap_or("?")
        )
    );
    assert!(post.cache_key_parameters.is_empty());
    assert_eq!(post.connection_type.as_deref(), Some("INTERNET"));
    let create = method(definition, "/pets", "POST");
    assert_eq!(create.operation_name.as_deref(), Some("Create Pet"));
    assert_eq!(create.request_models["application/json"], "NewPet");
    let list = method(definition, "/pets", "GET");
    assert!(!list.request_parameters["method.request.querystring.type"]);
    let get = method(definition, "/pets/{petId}", "GET");
    assert!(get.request_parameters["method.request.path.petId"]);
    assert_eq!(get.authorization_type, "CUSTOM");
    let authorizer = &definition.authorizers[0];
    assert_eq!(get.authorizer_id.as_deref(), Some(authorizer.id.as_str()));
    assert_eq!(authorizer.name, "myAuthorizer");
    assert_eq!(authorizer.authorizer_type, "REQUEST");
    assert_eq!(
        authorizer.auth_type.as_deref(),
        Some("Custom scheme with corporate claims")
    );
    assert_eq!(authorizer.authorizer_result_ttl_in_seconds, Some(300));
    assert_eq!(
        definition
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        [
            "Empty",
            "NewPet",
            "NewPetResponse",
            "Pet",
            "PetType",
            "Pets"
        ]
    );
    assert!(has_warning(
        &imported,
        "/x-amazon-apigateway-cors",
        "x-amazon-apigateway-cors is not supported"
    ));
    assert!(has_warning(
        &imported,
        "/components/x-amazon-apigateway-integrations/NewPet/payloadFormatVersion",
        "HTTP APIs only"
    ));
    // Authorizers are enforced: no warning says otherwise.
    assert!(!has_warning(
        &imported,
        "/components/securitySchemes/myAuthorizer/x-amazon-apigateway-authorizer",
        "not enforced yet"
    ));
    assert!(has_warning(
        &imported,
        "/components/securitySchemes/myAuthorizer/x-amazon-apigateway-authorizer/enableSimpleResponses",
        "enableSimpleResponses"
    ));
    assert_round_trip(name, &imported);
    assert_swagger_round_trip(name, &imported);
}

#[test]
fn fixture_openapi_spec_stage_variables_imports() {
    let name = "openapi.spec.stage-variables.json";
    let imported = import_ok(name, &fixture(name));
    let definition = &imported.definition;
    assert_eq!(paths(definition), ["/", "/path1"]);
    let proxy = integration(definition, "/path1", "GET");
    assert_eq!(proxy.integration_type, IntegrationType::HttpProxy);
    assert_eq!(
        proxy.uri.as_deref(),
        Some(
            "https://${stageVariables.TestHost}/${stageVariables.testPath}?${stageVariables.querystring}"
        )
    );
    assert_eq!(
        method(definition, "/path1", "GET").method_responses["200"]
            .response_models
            .len(),
        0
    );
    assert_round_trip(name, &imported);
}

#[test]
fn fixture_openapi_spec_tf_imports_with_api_key() {
    let name = "openapi.spec.tf.json";
    let imported = import_ok(name, &fixture(name));
    let definition = &imported.definition;
    assert_eq!(definition.api.name, "local-api");
    assert_eq!(
        definition.api.version.as_deref(),
        Some("1"),
        "integer version as AWS renders it"
    );
    assert_eq!(paths(definition), ["/"]);
    let get = method(definition, "/", "GET");
    assert!(get.api_key_required);
    assert_eq!(get.authorization_type, "NONE");
    let lambda = integration(definition, "/", "GET");
    assert_eq!(lambda.integration_type, IntegrationType::AwsProxy);
    assert_eq!(
        lambda.content_handling.map(|c| c.as_str()),
        Some("CONVERT_TO_TEXT")
    );
    assert!(!method(definition, "/", "OPTIONS").api_key_required);
    assert!(has_warning(&imported, "/", "apiKeyRequired answer 403"));
    assert_round_trip(name, &imported);
    assert_swagger_round_trip(name, &imported);
}

#[test]
fn fixture_petstore_authorizer_swagger_is_rejected_for_uri_placeholders() {
    let name = "petstore-authorizer.swagger.json";
    let text = fixture(name);
    let error = import_err(name, &text);
    assert_eq!(
        pointers(&error),
        [
            "/paths/~1pets/get/x-amazon-apigateway-integration/uri",
            "/paths/~1pets/post/x-amazon-apigateway-integration/uri",
            "/paths/~1pets~1{petId}/get/x-amazon-apigateway-integration/uri",
        ]
    );
    // Filled in as LocalStack's test does, it gives what AWS recorded (test_import_swagger_api).
    let filled = text.replace(
        "${uri}",
        "http://petstore.execute-api.us-east-1.amazonaws.com/petstore/pets",
    );
    let imported = import_ok(name, &filled);
    let definition = &imported.definition;
    assert_eq!(definition.api.name, "PetStore");
    assert_eq!(definition.api.version.as_deref(), Some("1.0"));
    assert_eq!(paths(definition), ["/", "/pets", "/pets/{petId}"]);
    let names: Vec<_> = definition
        .authorizers
        .iter()
        .map(|a| (a.name.as_str(), a.authorizer_type.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("test-authorizer", "TOKEN"),
            ("test-authorizer-not-used", "TOKEN")
        ]
    );
    let authorizer = &definition.authorizers[0];
    assert_eq!(authorizer.auth_type.as_deref(), Some("oauth2"));
    assert_eq!(
        authorizer.identity_source.as_deref(),
        Some("method.request.header.Authorization")
    );
    assert_eq!(
        authorizer.identity_validation_expression.as_deref(),
        Some("^x-[a-z]+")
    );
    assert_eq!(authorizer.authorizer_result_ttl_in_seconds, Some(60));
    let list = method(definition, "/pets", "GET");
    assert_eq!(list.authorization_type, "CUSTOM");
    assert_eq!(list.authorizer_id.as_deref(), Some(authorizer.id.as_str()));
    assert_eq!(
        list.method_responses["200"].response_models["application/json"],
        "Pets"
    );
    let http = integration(definition, "/pets", "GET");
    assert_eq!(http.integration_type, IntegrationType::Http);
    assert_eq!(http.connection_type.as_deref(), Some("INTERNET"));
    assert_eq!(http.timeout_in_millis, 29_000);
    assert_eq!(
        method(definition, "/pets", "POST")
            .operation_name
            .as_deref(),
        Some("CreatePet")
    );
    assert_eq!(
        method(definition, "/pets", "POST").request_models["application/json"],
        "NewPet"
    );
    let pet = definition
        .models
        .iter()
        .find(|m| m.name == "NewPet")
        .and_then(|m| m.schema.clone())
        .unwrap_or_default();
    assert!(pet.contains("#/components/schemas/PetType"), "{pet}");
    assert!(has_warning(
        &imported,
        "/x-amazon-apigateway-documentation",
        "not supported"
    ));
    assert_round_trip(name, &imported);
    assert_swagger_round_trip(name, &imported);
}

#[test]
fn fixture_petstore_swagger_is_rejected_for_uri_placeholders() {
    let name = "petstore-swagger.json";
    let text = fixture(name);
    let error = import_err(name, &text);
    assert_eq!(error.problems.len(), 3);
    let first = &error.problems[0];
    assert_eq!(
        first.pointer,
        "/paths/~1pets/get/x-amazon-apigateway-integration/uri"
    );
    assert_eq!(
        first.message,
        "Invalid HTTP endpoint specified for URI: ${uri} is not an absolute http:// or https:// URL"
    );
    assert_eq!(
        error.to_string().lines().next(),
        Some(
            "petstore-swagger.json: /paths/~1pets/get/x-amazon-apigateway-integration/uri: Invalid HTTP endpoint specified for URI: ${uri} is not an absolute http:// or https:// URL"
        )
    );
    let filled = text.replace("${uri}", "http://petstore.example.com/pets");
    let imported = import_ok(name, &filled);
    assert_eq!(imported.definition.api.version, None);
    assert!(imported.definition.authorizers.is_empty());
    assert_round_trip(name, &imported);
}

#[test]
fn fixture_swagger_mock_cors_imports() {
    let name = "swagger-mock-cors.json";
    let imported = import_ok(name, &fixture(name));
    let definition = &imported.definition;
    assert_eq!(
        paths(definition),
        ["/", "/product", "/product/{product_id}"]
    );
    let lambda = integration(definition, "/product/{product_id}", "GET");
    assert_eq!(lambda.integration_type, IntegrationType::AwsProxy);
    assert!(
        lambda
            .uri
            .as_deref()
            .is_some_and(|uri| uri.ends_with(":live/invocations"))
    );
    assert!(
        method(definition, "/product", "GET")
            .method_responses
            .is_empty()
    );
    let options = method(definition, "/product", "OPTIONS");
    assert!(options.method_responses["200"].response_models.is_empty());
    assert_eq!(options.method_responses["200"].response_parameters.len(), 3);
    assert!(definition.models.is_empty());
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert_round_trip(name, &imported);
    assert_swagger_round_trip(name, &imported);
}

#[test]
fn every_fixture_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let this = include_str!("openapi_import.rs");
    for name in &names {
        assert!(
            this.contains(&format!("let name = \"{name}\"")),
            "no test for fixture {name}"
        );
    }
    assert_eq!(names.len(), 10);
}

// ---- a handcrafted document exercising every feature -----------------------------------

fn everything() -> serde_json::Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "everything", "description": "all features", "version": "7" },
        "servers": [{ "url": "https://ignored.example.com/base" }],
        "security": [{ "api_key": [] }],
        "x-amazon-apigateway-request-validator": "all",
        "paths": {
            "/": {
                "get": {
                    "security": [],
                    "responses": { "200": { "description": "ok" } },
                    "x-amazon-apigateway-integration": {
                        "type": "mock",
                        "requestTemplates": { "application/json": "{\"statusCode\": 200}" },
                        "responses": {
                            "default": { "statusCode": "200", "responseTemplates": { "text/html": "<p>hi</p>" } },
                            "4\\d{2}": { "statusCode": "400", "responseTemplates": { "application/json": "{\"error\": \"$context.error.message\"}" } }
                        }
                    }
                }
            },
            "/{proxy+}": {
                "x-amazon-apigateway-any-method": {
                    "operationId": "proxyAll",
                    "parameters": [{ "name": "proxy", "in": "path", "required": true, "schema": { "type": "string" } }],
                    "responses": {},
                    "x-amazon-apigateway-integration": {
                        "type": "http_proxy",
                        "httpMethod": "ANY",
                        "uri": "https://${stageVariables.backend}/{proxy}",
                        "requestParameters": { "integration.request.path.proxy": "method.request.path.proxy" },
                        "timeoutInMillis": 5000,
                        "cacheNamespace": "shared-ns",
                        "cacheKeyParameters": ["method.request.path.proxy"],
                        "tlsConfig": { "insecureSkipVerification": true },
                        "connectionType": "VPC_LINK",
                        "connectionId": "vpclink1"
                    }
                }
            },
            "/pets": {
                "parameters": [{ "name": "X-Trace", "in": "header", "required": true, "schema": { "type": "string" } }],
                "get": {
                    "parameters": [{ "name": "page", "in": "query", "schema": { "type": "integer" } }],
                    "security": [{ "lambdaAuth": [] }],
                    "responses": {
                        "200": {
                            "description": "pets",
                            "headers": { "X-Count": { "required": true, "schema": { "type": "integer" } }, "X-Other": { "schema": { "type": "string" } } },
                            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Pets" } } }
                        }
                    },
                    "x-amazon-apigateway-integration": {
                        "type": "http",
                        "httpMethod": "get",
                        "uri": "http://backend.example.com/pets",
                        "requestParameters": {
                            "integration.request.querystring.page": "method.request.querystring.page",
                            "integration.request.header.X-Stage": "stageVariables.name",
                            "integration.request.header.X-Id": "context.requestId",
                            "integration.request.header.X-Static": "'static'"
                        },
                        "passthroughBehavior": "NEVER",
                        "contentHandling": "CONVERT_TO_BINARY",
                        "credentials": "arn:aws:iam::123456789012:role/apigw",
                        "responses": {
                            "default": {
                                "statusCode": 200,
                                "responseParameters": { "method.response.header.X-Count": "integration.response.header.X-Count" },
                                "contentHandling": "CONVERT_TO_TEXT"
                            }
                        }
                    }
                },
                "post": {
                    "x-amazon-apigateway-request-validator": "body-only",
                    "security": [{ "cognito": ["pets/write", "pets/read"] }, { "api_key": [] }],
                    "requestBody": {
                        "content": {
                            "application/json": { "schema": { "$ref": "#/components/schemas/Pet" } },
                            "application/x-www-form-urlencoded": { "schema": { "type": "object", "properties": { "name": { "type": "string" } } } }
                        }
                    },
                    "responses": { "201": { "$ref": "#/components/responses/Created" } },
                    "x-amazon-apigateway-integration": {
                        "type": "aws_proxy",
                        "httpMethod": "POST",
                        "uri": "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:${stageVariables.fn}/invocations"
                    }
                }
            },
            "/pets/{petId}": {
                "delete": {
                    "x-amazon-apigateway-auth": { "type": "AWS_IAM" },
                    "parameters": [{ "name": "petId", "in": "path", "required": true, "schema": { "type": "string" } }],
                    "responses": { "204": { "description": "gone" } },
                    "x-amazon-apigateway-integration": {
                        "type": "HTTP",
                        "httpMethod": "DELETE",
                        "uri": "https://backend.example.com/pets/{id}",
                        "requestParameters": { "integration.request.path.id": "method.request.path.petId" }
                    }
                }
            },
            "/empty/leaf": {}
        },
        "components": {
            "schemas": {
                "Pet": { "type": "object", "properties": { "name": { "type": "string" }, "friend": { "$ref": "#/components/schemas/Pet" } } },
                "Pets": { "type": "array", "items": { "$ref": "#/components/schemas/Pet" } }
            },
            "responses": { "Created": { "description": "created", "headers": { "Location": { "schema": { "type": "string" } } } } },
            "securitySchemes": {
                "api_key": { "type": "apiKey", "name": "x-api-key", "in": "header" },
                "lambdaAuth": {
                    "type": "apiKey", "name": "Authorization", "in": "header",
                    "x-amazon-apigateway-authtype": "custom",
                    "x-amazon-apigateway-authorizer": {
                        "type": "token",
                        "authorizerUri": "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:auth/invocations",
                        "authorizerResultTtlInSeconds": 120
                    }
                },
                "cognito": {
                    "type": "apiKey", "name": "Authorization", "in": "header",
                    "x-amazon-apigateway-authtype": "cognito_user_pools",
                    "x-amazon-apigateway-authorizer": {
                        "type": "cognito_user_pools",
                        "providerARNs": ["arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc"]
                    }
                },
                "oauth": { "type": "oauth2", "flows": {} }
            }
        },
        "x-amazon-apigateway-api-key-source": "AUTHORIZER",
        "x-amazon-apigateway-binary-media-types": ["image/png", "application/octet-stream"],
        "x-amazon-apigateway-minimum-compression-size": 1024,
        "x-amazon-apigateway-policy": { "Version": "2012-10-17", "Statement": [] },
        "x-amazon-apigateway-endpoint-configuration": { "types": ["REGIONAL"], "disableExecuteApiEndpoint": true },
        "x-amazon-apigateway-gateway-responses": {
            "DEFAULT_4XX": { "statusCode": "400", "responseParameters": { "gatewayresponse.header.X-Err": "'1'" }, "responseTemplates": { "application/json": "{\"message\":$context.error.messageString}" } }
        },
        "x-amazon-apigateway-request-validators": {
            "all": { "validateRequestBody": true, "validateRequestParameters": true },
            "body-only": { "validateRequestBody": true, "validateRequestParameters": false }
        },
        "x-amazon-apigateway-tag-value": "ignored"
    })
}

#[test]
fn handcrafted_document_imports_everything() {
    let text = serde_json::to_string_pretty(&everything()).unwrap_or_default();
    let imported = import_ok("everything.json", &text);
    let definition = &imported.definition;
    let api = &definition.api;
    assert_eq!(api.id, "api0000001");
    assert_eq!(api.created_date, NOW);
    assert_eq!(api.version.as_deref(), Some("7"));
    assert_eq!(
        api.binary_media_types,
        ["image/png", "application/octet-stream"]
    );
    assert_eq!(api.minimum_compression_size, Some(1024));
    assert_eq!(api.api_key_source, portico_proto::ApiKeySource::Authorizer);
    assert_eq!(api.endpoint_configuration.types, ["REGIONAL"]);
    assert!(api.disable_execute_api_endpoint);
    assert!(
        api.policy
            .as_deref()
            .is_some_and(|p| p.contains("2012-10-17"))
    );
    assert_eq!(api.root_resource_id, definition.resources[0].id);
    assert_eq!(
        paths(definition),
        [
            "/",
            "/empty",
            "/empty/leaf",
            "/pets",
            "/pets/{petId}",
            "/{proxy+}"
        ]
    );
    let root = method(definition, "/", "GET");
    assert!(
        !root.api_key_required,
        "`security: []` overrides the global api key"
    );
    let mock = integration(definition, "/", "GET");
    assert_eq!(
        mock.integration_responses["400"]
            .selection_pattern
            .as_deref(),
        Some("4\\d{2}")
    );
    assert_eq!(mock.integration_responses["200"].selection_pattern, None);

    let proxy = method(definition, "/{proxy+}", "ANY");
    assert!(proxy.api_key_required);
    assert_eq!(
        proxy.request_validator_id.as_deref(),
        Some(definition.request_validators[0].id.as_str())
    );
    let proxy = integration(definition, "/{proxy+}", "ANY");
    assert_eq!(proxy.timeout_in_millis, 5000);
    assert_eq!(proxy.cache_namespace.as_deref(), Some("shared-ns"));
    assert_eq!(
        proxy
            .tls_config
            .as_ref()
            .map(|t| t.insecure_skip_verification),
        Some(true)
    );

    let list = method(definition, "/pets", "GET");
    assert_eq!(list.authorization_type, "CUSTOM");
    assert!(!list.api_key_required);
    assert!(list.request_parameters["method.request.header.X-Trace"]);
    assert!(!list.request_parameters["method.request.querystring.page"]);
    assert!(list.method_responses["200"].response_parameters["method.response.header.X-Count"]);
    assert_eq!(
        integration(definition, "/pets", "GET")
            .http_method
            .as_deref(),
        Some("GET")
    );

    let create = method(definition, "/pets", "POST");
    assert_eq!(create.authorization_type, "COGNITO_USER_POOLS");
    assert_eq!(create.authorization_scopes, ["pets/write", "pets/read"]);
    assert!(create.api_key_required);
    assert_eq!(create.request_models["application/json"], "Pet");
    let inline = &create.request_models["application/x-www-form-urlencoded"];
    assert!(
        inline.starts_with("Inline") && inline.len() == 14,
        "{inline}"
    );
    assert!(
        create.method_responses["201"]
            .response_parameters
            .contains_key("method.response.header.Location")
    );
    let delete = method(definition, "/pets/{petId}", "DELETE");
    assert_eq!(delete.authorization_type, "AWS_IAM");

    assert_eq!(definition.gateway_responses[0].response_type, "DEFAULT_4XX");
    assert!(has_warning(
        &imported,
        "/x-amazon-apigateway-tag-value",
        "not supported"
    ));
    assert!(has_warning(
        &imported,
        "/components/securitySchemes/oauth",
        "type oauth2"
    ));
    assert!(has_warning(
        &imported,
        "/paths/~1/get/x-amazon-apigateway-integration/responses/4\\d{2}/responseTemplates/application~1json",
        "not evaluated"
    ));
    assert!(has_warning(&imported, "/", "apiKeyRequired answer 403"));
    assert_round_trip("everything.json", &imported);
}

#[test]
fn handcrafted_document_round_trips_through_yaml_and_swagger() {
    let value = everything();
    let imported = import_ok("everything.json", &value.to_string());
    let yaml = yaml_serde::to_string(&value).unwrap_or_default();
    let from_yaml = import_ok("everything.yaml", &yaml);
    assert_eq!(
        normalize(imported.definition.clone()),
        normalize(from_yaml.definition)
    );
    // Swagger 2.0 has one body schema per operation: different models per request content
    // type cannot be expressed, so that one feature is left out of the Swagger round trip.
    let mut single_body_model = imported.clone();
    for resource in &mut single_body_model.definition.resources {
        for method in resource.resource_methods.values_mut() {
            method
                .request_models
                .remove("application/x-www-form-urlencoded");
        }
    }
    assert_swagger_round_trip("everything.json", &single_body_model);
}

#[test]
fn export_omits_defaults_and_writes_extensions() {
    let imported = import_ok("everything.json", &everything().to_string());
    let exported = export_oas30(&imported.definition, Some("https://api.example.com/prod"));
    assert_eq!(exported["openapi"], "3.0.1");
    assert_eq!(
        exported["servers"][0]["url"],
        "https://api.example.com/prod"
    );
    let root_get = &exported["paths"]["/"]["get"]["x-amazon-apigateway-integration"];
    assert!(root_get.get("timeoutInMillis").is_none());
    assert!(root_get.get("cacheNamespace").is_none());
    assert_eq!(root_get["responses"]["default"]["statusCode"], "200");
    assert!(exported["paths"]["/{proxy+}"]["x-amazon-apigateway-any-method"].is_object());
    assert_eq!(exported["paths"]["/empty/leaf"], json!({}));
    assert!(exported["paths"].get("/empty").is_none());
    assert_eq!(
        exported["components"]["securitySchemes"]["api_key"]["name"],
        "x-api-key"
    );
    assert_eq!(
        exported["paths"]["/pets/{petId}"]["delete"]["x-amazon-apigateway-auth"]["type"],
        "AWS_IAM"
    );
    assert_eq!(
        exported["x-amazon-apigateway-policy"]["Version"],
        "2012-10-17"
    );
    assert_eq!(
        exported["x-amazon-apigateway-binary-media-types"][0],
        "image/png"
    );
    let swagger = export_swagger2(&imported.definition, Some("https://api.example.com/prod"));
    assert_eq!(swagger["swagger"], "2.0");
    assert_eq!(swagger["host"], "api.example.com");
    assert_eq!(swagger["basePath"], "/prod");
    assert!(swagger["definitions"]["Pets"]["items"]["$ref"] == "#/definitions/Pet");
}

// ---- error precision ------------------------------------------------------------------------

fn minimal(paths: serde_json::Value) -> serde_json::Value {
    json!({ "openapi": "3.0.1", "info": { "title": "t" }, "paths": paths })
}

fn mock() -> serde_json::Value {
    json!({ "responses": {}, "x-amazon-apigateway-integration": { "type": "mock" } })
}

fn single_error(document: &serde_json::Value) -> (String, String) {
    let error = import_err("doc.json", &document.to_string());
    assert_eq!(error.problems.len(), 1, "{error}");
    (
        error.problems[0].pointer.clone(),
        error.problems[0].message.clone(),
    )
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let text = "{\n  \"openapi\": \"3.0.1\",\n  \"info\": { \"title\": \"x\", }\n}\n";
    let error = import_err("bad.json", text);
    assert_eq!(error.problems.len(), 1);
    assert_eq!(error.problems[0].line, Some((3, 27)));
    assert!(
        error
            .to_string()
            .starts_with("bad.json:3:27: invalid JSON: "),
        "{error}"
    );
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let text = "openapi: 3.0.1\ninfo:\n  title: x\n paths: {}\n";
    let error = import_err("bad.yaml", text);
    assert_eq!(error.problems.len(), 1);
    let (line, _) = error.problems[0].line.unwrap_or((0, 0));
    assert_eq!(line, 4, "{error}");
    assert!(error.to_string().starts_with("bad.yaml:4:"), "{error}");
}

#[test]
fn missing_title_is_reported_at_info_title() {
    let (pointer, message) =
        single_error(&json!({ "openapi": "3.0.1", "info": { "version": "1" }, "paths": {} }));
    assert_eq!(pointer, "/info/title");
    assert!(message.contains("info.title"), "{message}");
}

#[test]
fn versions_are_checked() {
    let (pointer, _) = single_error(&json!({ "info": { "title": "t" }, "paths": {} }));
    assert_eq!(pointer, "/");
    let (pointer, message) = single_error(&json!({ "openapi": "2.5", "info": { "title": "t" } }));
    assert_eq!(pointer, "/openapi");
    assert!(message.contains("2.5"));
    let (pointer, _) = single_error(&json!({ "swagger": "1.2", "info": { "title": "t" } }));
    assert_eq!(pointer, "/swagger");
    let imported = import_ok(
        "v31.json",
        &json!({ "openapi": "3.1.0", "info": { "title": "t" }, "paths": {} }).to_string(),
    );
    assert!(has_warning(&imported, "/openapi", "3.1"));
}

#[test]
fn greedy_variable_must_be_last() {
    let (pointer, message) = single_error(&minimal(json!({ "/{proxy+}/x": { "get": mock() } })));
    assert_eq!(pointer, "/paths/~1{proxy+}~1x");
    assert!(message.contains("must be the last segment"), "{message}");
}

#[test]
fn two_variable_siblings_are_rejected_with_awss_message() {
    let (pointer, message) = single_error(&minimal(
        json!({ "/{proxy+}": { "get": mock() }, "/{id}": { "get": mock() } }),
    ));
    assert_eq!(pointer, "/paths/~1{proxy+}");
    assert_eq!(
        message,
        "A sibling ({id}) of this resource already has a variable path part -- only one is allowed"
    );
}

#[test]
fn bad_path_templates_are_rejected() {
    let (pointer, _) = single_error(&minimal(json!({ "pets": { "get": mock() } })));
    assert_eq!(pointer, "/paths/pets");
    let (pointer, _) = single_error(&minimal(json!({ "/pets//x": { "get": mock() } })));
    assert_eq!(pointer, "/paths/~1pets~1~1x");
    let (pointer, _) = single_error(&minimal(json!({ "/a{b}": { "get": mock() } })));
    assert_eq!(pointer, "/paths/~1a{b}");
}

#[test]
fn timeout_out_of_range() {
    let document = minimal(
        json!({ "/a": { "get": { "responses": {}, "x-amazon-apigateway-integration": {
        "type": "http", "httpMethod": "GET", "uri": "http://x.example.com", "timeoutInMillis": 10 } } } }),
    );
    let (pointer, message) = single_error(&document);
    assert_eq!(
        pointer,
        "/paths/~1a/get/x-amazon-apigateway-integration/timeoutInMillis"
    );
    assert_eq!(
        message,
        "timeoutInMillis must be an integer from 50 to 29000, not 10"
    );
}

#[test]
fn unknown_integration_type() {
    let document = minimal(
        json!({ "/a": { "get": { "responses": {}, "x-amazon-apigateway-integration": { "type": "grpc" } } } }),
    );
    let (pointer, message) = single_error(&document);
    assert_eq!(
        pointer,
        "/paths/~1a/get/x-amazon-apigateway-integration/type"
    );
    assert!(
        message.starts_with("unknown integration type grpc"),
        "{message}"
    );
}

#[test]
fn unresolvable_and_external_refs() {
    let document = minimal(json!({ "/a": { "post": {
        "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Nope" } } } },
        "responses": { "200": { "$ref": "other.yaml#/responses/ok" } },
        "x-amazon-apigateway-integration": { "type": "mock" } } } }));
    let error = import_err("refs.json", &document.to_string());
    assert_eq!(
        pointers(&error),
        [
            "/paths/~1a/post/requestBody/content/application~1json/schema/$ref",
            "/paths/~1a/post/responses/200/$ref",
        ]
    );
    assert_eq!(
        error.problems[0].message,
        "$ref #/components/schemas/Nope does not resolve"
    );
    assert!(error.problems[1].message.starts_with("external $ref"));
}

#[test]
fn ref_cycles_are_reported() {
    let document = json!({ "openapi": "3.0.1", "info": { "title": "t" },
        "paths": { "/a": { "$ref": "#/x-loop/a" } },
        "x-loop": { "a": { "$ref": "#/x-loop/b" }, "b": { "$ref": "#/x-loop/a" } } });
    let error = import_err("cycle.json", &document.to_string());
    assert_eq!(pointers(&error), ["/paths/~1a/$ref"]);
    assert!(error.problems[0].message.contains("cycle"));
}

#[test]
fn path_parameter_mapping_must_name_a_template_variable() {
    let document = minimal(
        json!({ "/pets/{petId}": { "get": { "responses": {}, "x-amazon-apigateway-integration": {
        "type": "http", "httpMethod": "GET", "uri": "http://x.example.com/{x}",
        "requestParameters": { "integration.request.path.x": "method.request.path.x" } } } } }),
    );
    let (pointer, message) = single_error(&document);
    assert_eq!(
        pointer,
        "/paths/~1pets~1{petId}/get/x-amazon-apigateway-integration/requestParameters/integration.request.path.x"
    );
    assert!(message.contains("path parameter x"), "{message}");
}

#[test]
fn unknown_security_scheme_is_an_error() {
    let document = minimal(
        json!({ "/a": { "get": { "security": [{ "nope": [] }], "responses": {},
        "x-amazon-apigateway-integration": { "type": "mock" } } } }),
    );
    let (pointer, _) = single_error(&document);
    assert_eq!(pointer, "/paths/~1a/get/security/0/nope");
}

#[test]
fn aws_proxy_uri_must_be_a_lambda_invocation() {
    let document = minimal(
        json!({ "/a": { "get": { "responses": {}, "x-amazon-apigateway-integration": {
        "type": "aws_proxy", "httpMethod": "POST", "uri": "arn:aws:apigateway:us-east-1:s3:path/bucket" } } } }),
    );
    let (pointer, message) = single_error(&document);
    assert_eq!(
        pointer,
        "/paths/~1a/get/x-amazon-apigateway-integration/uri"
    );
    assert_eq!(
        message,
        "Integrations of type 'AWS_PROXY' currently only supports Lambda function and Firehose stream invocations."
    );
}

#[test]
fn all_problems_are_reported_together() {
    let document = json!({
        "openapi": "3.0.1",
        "info": { "description": "no title" },
        "paths": {
            "/{a+}/b": { "get": { "responses": {}, "x-amazon-apigateway-integration": { "type": "mok" } } },
            "/c": { "get": { "responses": { "abc": { "description": "x" } }, "x-amazon-apigateway-integration": {
                "type": "http", "httpMethod": "FETCH", "uri": "not a url", "timeoutInMillis": 30000,
                "passthroughBehavior": "sometimes",
                "responses": { "default": { "statusCode": "2000" } } } } },
            "/d": { "post": { "responses": {}, "x-amazon-apigateway-integration": { "type": "mock",
                "requestParameters": { "integration.request.body": "method.request.body" } } } }
        }
    });
    let error = import_err("many.json", &document.to_string());
    let at = "/paths/~1c/get/x-amazon-apigateway-integration";
    let mut expected = vec![
        "/info/title".to_string(),
        "/paths/~1{a+}~1b".to_string(),
        "/paths/~1{a+}~1b/get/x-amazon-apigateway-integration/type".to_string(),
        "/paths/~1c/get/responses/abc".to_string(),
        format!("{at}/httpMethod"),
        format!("{at}/uri"),
        format!("{at}/passthroughBehavior"),
        format!("{at}/timeoutInMillis"),
        format!("{at}/responses/default/statusCode"),
        "/paths/~1d/post/x-amazon-apigateway-integration/requestParameters/integration.request.body".to_string(),
    ];
    let mut actual: Vec<String> = pointers(&error).into_iter().map(str::to_string).collect();
    expected.sort();
    actual.sort();
    assert_eq!(actual, expected, "{error}");
    assert_eq!(error.to_string().lines().count(), 10);
    assert!(
        error
            .to_string()
            .lines()
            .all(|line| line.starts_with("many.json: /"))
    );
}

// ---- property test ------------------------------------------------------------------------

const VERBS: [&str; 8] = [
    "ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT",
];

/// A random tree: paths of literal segments, at most one `{vN}` variable name per depth (so
/// variable siblings never conflict), each with a random set of methods.
fn tree_strategy() -> impl Strategy<Value = BTreeMap<String, BTreeSet<&'static str>>> {
    let segment = prop_oneof![Just("a"), Just("b"), Just("c-d"), Just("{v}")];
    let path = proptest::collection::vec(segment, 1..4).prop_map(|segments| {
        segments
            .iter()
            .enumerate()
            .map(|(depth, s)| {
                if *s == "{v}" {
                    format!("/{{v{depth}}}")
                } else {
                    format!("/{s}")
                }
            })
            .collect::<String>()
    });
    let verbs = proptest::collection::btree_set(proptest::sample::select(VERBS.to_vec()), 0..4);
    proptest::collection::btree_map(prop_oneof![Just("/".to_string()), path], verbs, 0..8)
}

fn definition_from_tree(tree: &BTreeMap<String, BTreeSet<&'static str>>) -> ApiDefinition {
    let mut counter = 0u32;
    let mut next = || {
        counter += 1;
        format!("tree{counter:06}")
    };
    let mut imported = import_ok("seed.json", &minimal(json!({})).to_string());
    let definition = &mut imported.definition;
    for (path, verbs) in tree {
        let mut parent = definition.api.root_resource_id.clone();
        let mut current = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            current.push('/');
            current.push_str(segment);
            let existing = definition.resource_by_path(&current).map(|r| r.id.clone());
            parent = existing.unwrap_or_else(|| {
                let id = next();
                definition.resources.push(Resource {
                    id: id.clone(),
                    parent_id: Some(parent.clone()),
                    path_part: Some(segment.to_string()),
                    path: current.clone(),
                    resource_methods: BTreeMap::new(),
                });
                id
            });
        }
        let target = definition.resources.iter_mut().find(|r| r.id == parent);
        if let Some(resource) = target {
            for verb in verbs {
                let mut method = Method::new(*verb);
                method.method_integration = Some(Integration::new(IntegrationType::Mock));
                resource.resource_methods.insert(verb.to_string(), method);
            }
        }
    }
    definition.clone()
}

fn shape(definition: &ApiDefinition) -> BTreeMap<String, BTreeSet<String>> {
    definition
        .resources
        .iter()
        .map(|r| (r.path.clone(), r.resource_methods.keys().cloned().collect()))
        .collect()
}

proptest! {
    #[test]
    fn random_trees_survive_export_and_import(tree in tree_strategy()) {
        let definition = definition_from_tree(&tree);
        let text = export_oas30(&definition, None).to_string();
        let reimported = import_ok("tree.json", &text);
        prop_assert_eq!(shape(&definition), shape(&reimported.definition));
        let swagger = export_swagger2(&definition, None).to_string();
        let reimported = import_ok("tree-swagger.json", &swagger);
        prop_assert_eq!(shape(&definition), shape(&reimported.definition));
    }
}

// ---- authorization: every authorizer kind, security, gateway responses, policy ------------

const AUTH_LAMBDA: &str = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:auth/invocations";
const AUTH_POOL: &str = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc";

fn mock_integration() -> serde_json::Value {
    json!({ "type": "mock", "requestTemplates": { "application/json": "{\"statusCode\": 200}" } })
}

/// A Swagger 2.0 document using every authorization feature API Gateway's import knows.
fn authorization_swagger() -> serde_json::Value {
    json!({
        "swagger": "2.0",
        "info": { "title": "secured", "version": "1" },
        "x-amazon-apigateway-api-key-source": "AUTHORIZER",
        "x-amazon-apigateway-policy": {
            "Version": "2012-10-17",
            "Statement": [
                { "Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*" },
                { "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*/DELETE/*",
                  "Condition": { "NotIpAddress": { "aws:SourceIp": ["10.0.0.0/8"] } } }
            ]
        },
        "x-amazon-apigateway-gateway-responses": {
            "UNAUTHORIZED": {
                "statusCode": "401",
                "responseParameters": { "gatewayresponse.header.WWW-Authenticate": "'Bearer'" },
                "responseTemplates": { "application/json": "{\"error\":$context.error.messageString}" }
            },
            "ACCESS_DENIED": { "responseParameters": { "gatewayresponse.header.Access-Control-Allow-Origin": "'*'" } },
            "DEFAULT_5XX": { "responseTemplates": { "application/json": "{\"oops\":true}" } },
            "EXPIRED_TOKEN": { "statusCode": "401" }
        },
        "securityDefinitions": {
            "api_key": { "type": "apiKey", "name": "x-api-key", "in": "header" },
            "tokens": {
                "type": "apiKey", "name": "X-Token", "in": "header",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": {
                    "type": "token",
                    "authorizerUri": AUTH_LAMBDA,
                    "authorizerCredentials": "arn:aws:iam::123456789012:role/invoke-auth",
                    "identitySource": "method.request.header.X-Token",
                    "identityValidationExpression": "^Bearer [-0-9a-zA-Z._]+$",
                    "authorizerResultTtlInSeconds": 600
                }
            },
            "requests": {
                "type": "apiKey", "name": "Unused", "in": "header",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": {
                    "type": "request",
                    "authorizerUri": AUTH_LAMBDA,
                    "identitySource": "method.request.header.Auth, method.request.querystring.tenant, stageVariables.realm, context.sourceIp",
                    "authorizerResultTtlInSeconds": 0
                }
            },
            "pool": {
                "type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authtype": "cognito_user_pools",
                "x-amazon-apigateway-authorizer": {
                    "type": "cognito_user_pools",
                    "providerARNs": [AUTH_POOL, AUTH_POOL.replace("abc", "def")],
                    "identitySource": "method.request.header.Authorization",
                    "authorizerResultTtlInSeconds": 60
                }
            }
        },
        "paths": {
            "/token": { "get": {
                "security": [{ "tokens": [] }, { "api_key": [] }],
                "responses": { "200": { "description": "ok" } },
                "x-amazon-apigateway-integration": mock_integration()
            } },
            "/request": { "get": {
                "security": [{ "requests": [] }],
                "responses": { "200": { "description": "ok" } },
                "x-amazon-apigateway-integration": mock_integration()
            } },
            "/pool": {
                "get": {
                    "security": [{ "pool": ["email", "pets/read"] }],
                    "responses": { "200": { "description": "ok" } },
                    "x-amazon-apigateway-integration": mock_integration()
                },
                "post": {
                    "security": [{ "pool": [] }],
                    "responses": { "200": { "description": "ok" } },
                    "x-amazon-apigateway-integration": mock_integration()
                }
            },
            "/iam": { "delete": {
                "x-amazon-apigateway-auth": { "type": "AWS_IAM" },
                "responses": { "204": { "description": "gone" } },
                "x-amazon-apigateway-integration": mock_integration()
            } },
            "/open": { "get": {
                "responses": { "200": { "description": "ok" } },
                "x-amazon-apigateway-integration": mock_integration()
            } }
        }
    })
}

fn authorizer<'d>(definition: &'d ApiDefinition, name: &str) -> &'d portico_proto::Authorizer {
    definition
        .authorizers
        .iter()
        .find(|authorizer| authorizer.name == name)
        .unwrap_or_else(|| panic!("no authorizer {name}"))
}

#[test]
fn authorization_round_trips_losslessly() {
    let text = serde_json::to_string_pretty(&authorization_swagger()).unwrap_or_default();
    let imported = import_ok("authorization.json", &text);
    let definition = &imported.definition;

    // What was imported, member by member (so the round trip below is not vacuous).
    assert_eq!(
        definition.api.api_key_source,
        portico_proto::ApiKeySource::Authorizer
    );
    let policy: serde_json::Value =
        serde_json::from_str(definition.api.policy.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(
        policy["Statement"][1]["Condition"]["NotIpAddress"]["aws:SourceIp"][0],
        "10.0.0.0/8"
    );
    let tokens = authorizer(definition, "tokens");
    assert_eq!(tokens.authorizer_type, "TOKEN");
    assert_eq!(tokens.auth_type.as_deref(), Some("custom"));
    assert_eq!(tokens.authorizer_uri.as_deref(), Some(AUTH_LAMBDA));
    assert_eq!(
        tokens.authorizer_credentials.as_deref(),
        Some("arn:aws:iam::123456789012:role/invoke-auth")
    );
    assert_eq!(
        tokens.identity_source.as_deref(),
        Some("method.request.header.X-Token")
    );
    assert_eq!(
        tokens.identity_validation_expression.as_deref(),
        Some("^Bearer [-0-9a-zA-Z._]+$")
    );
    assert_eq!(tokens.authorizer_result_ttl_in_seconds, Some(600));
    let requests = authorizer(definition, "requests");
    assert_eq!(requests.authorizer_type, "REQUEST");
    assert!(
        requests
            .identity_source
            .as_deref()
            .is_some_and(|source| source.contains("context.sourceIp"))
    );
    assert_eq!(requests.authorizer_result_ttl_in_seconds, Some(0));
    let pool = authorizer(definition, "pool");
    assert_eq!(pool.authorizer_type, "COGNITO_USER_POOLS");
    assert_eq!(pool.provider_arns.len(), 2);
    assert_eq!(pool.authorizer_result_ttl_in_seconds, Some(60));

    let token_get = method(definition, "/token", "GET");
    assert_eq!(token_get.authorization_type, "CUSTOM");
    assert_eq!(token_get.authorizer_id.as_deref(), Some(tokens.id.as_str()));
    assert!(token_get.api_key_required);
    assert_eq!(
        method(definition, "/request", "GET")
            .authorizer_id
            .as_deref(),
        Some(requests.id.as_str())
    );
    let pool_get = method(definition, "/pool", "GET");
    assert_eq!(pool_get.authorization_type, "COGNITO_USER_POOLS");
    assert_eq!(pool_get.authorization_scopes, ["email", "pets/read"]);
    assert!(
        method(definition, "/pool", "POST")
            .authorization_scopes
            .is_empty()
    );
    assert_eq!(
        method(definition, "/iam", "DELETE").authorization_type,
        "AWS_IAM"
    );
    assert_eq!(
        method(definition, "/open", "GET").authorization_type,
        "NONE"
    );

    let responses: BTreeMap<&str, &portico_proto::GatewayResponse> = definition
        .gateway_responses
        .iter()
        .map(|response| (response.response_type.as_str(), response))
        .collect();
    assert_eq!(responses.len(), 4);
    assert_eq!(
        responses["UNAUTHORIZED"].response_parameters["gatewayresponse.header.WWW-Authenticate"],
        "'Bearer'"
    );
    // Members left out take the type's defaults, as PutGatewayResponse does.
    assert_eq!(
        responses["ACCESS_DENIED"].status_code.as_deref(),
        Some("403")
    );
    assert_eq!(
        responses["ACCESS_DENIED"].response_templates["application/json"],
        "{\"message\":$context.error.messageString}"
    );
    assert_eq!(responses["DEFAULT_5XX"].status_code, None);
    assert_eq!(
        responses["EXPIRED_TOKEN"].status_code.as_deref(),
        Some("401")
    );

    assert_round_trip("authorization.json", &imported);
    assert_swagger_round_trip("authorization.json", &imported);
    // And from an OAS 3.0 document (the export of the Swagger one).
    let oas3 = serde_json::to_string(&export_oas30(definition, None)).unwrap_or_default();
    let from_oas3 = import_ok("authorization (oas30)", &oas3);
    assert_round_trip("authorization (oas30)", &from_oas3);
    assert_swagger_round_trip("authorization (oas30)", &from_oas3);
    assert_eq!(
        normalize(from_oas3.definition.clone()),
        normalize(definition.clone())
    );
}

#[test]
fn authorization_import_refuses_what_the_management_api_refuses() {
    let mut document = authorization_swagger();
    document["securityDefinitions"]["tokens"]["x-amazon-apigateway-authorizer"]["identitySource"] =
        json!("method.request.querystring.token");
    document["x-amazon-apigateway-gateway-responses"]["NOT_A_TYPE"] = json!({});
    document["x-amazon-apigateway-policy"] = json!("not a policy");
    let text = serde_json::to_string(&document).unwrap_or_default();
    let error = import_err("bad-authorization.json", &text);
    let found = pointers(&error);
    assert!(
        found.contains(&"/securityDefinitions/tokens/x-amazon-apigateway-authorizer"),
        "{error}"
    );
    assert!(
        found.contains(&"/x-amazon-apigateway-gateway-responses/NOT_A_TYPE"),
        "{error}"
    );
    assert!(found.contains(&"/x-amazon-apigateway-policy"), "{error}");
    assert!(
        error
            .to_string()
            .contains("Invalid token source expression")
    );
}
