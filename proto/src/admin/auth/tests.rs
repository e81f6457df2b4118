//! The authorization ops applied alone: every success and every refusal, and a refusal never
//! changes the state.

use std::collections::BTreeMap;

use crate::admin::{AdminOp, NewStage, PatchOperation, apply};
use crate::cluster::Refusal;
use crate::model::{
    ApiKeySource, Authorizer, EndpointConfiguration, GatewayResponse, GatewayState, Integration,
    IntegrationType, Method, RequestValidator, RestApi,
};

const LAMBDA: &str = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:auth/invocations";
const POOL: &str = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_ABC123";

fn ok(state: &mut GatewayState, op: AdminOp) {
    if let Err(refusal) = apply(state, &op) {
        panic!("{op:?} refused: {refusal}");
    }
}

fn refused(state: &mut GatewayState, op: AdminOp) -> Refusal {
    let before = state.clone();
    let refusal = apply(state, &op).expect_err("expected a refusal");
    assert_eq!(*state, before, "a refused op changed the state");
    refusal
}

fn bad(refusal: Refusal) -> String {
    match refusal {
        Refusal::BadRequest(message) => message,
        other => panic!("expected BadRequest, got {other:?}"),
    }
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

fn patch(op: &str, path: &str, value: Option<&str>) -> PatchOperation {
    PatchOperation::new(op, path, value)
}

/// API `a` (root `r`) with a MOCK `GET /` deployed to stage `prod`.
fn api() -> GatewayState {
    let mut state = GatewayState::default();
    ok(
        &mut state,
        AdminOp::CreateRestApi {
            api: RestApi {
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
                tags: BTreeMap::new(),
                disable_execute_api_endpoint: false,
                root_resource_id: "r".into(),
            },
        },
    );
    ok(
        &mut state,
        AdminOp::PutMethod {
            api_id: "a".into(),
            resource_id: "r".into(),
            method: Method::new("GET"),
        },
    );
    ok(
        &mut state,
        AdminOp::PutIntegration {
            api_id: "a".into(),
            resource_id: "r".into(),
            http_method: "GET".into(),
            integration: Integration::new(IntegrationType::Mock),
        },
    );
    ok(
        &mut state,
        AdminOp::CreateDeployment {
            api_id: "a".into(),
            deployment_id: "d".into(),
            description: None,
            created_date: 2,
            stage: Some(NewStage {
                stage_name: "prod".into(),
                description: None,
                variables: BTreeMap::new(),
            }),
        },
    );
    state
}

fn token(id: &str, name: &str) -> Authorizer {
    Authorizer {
        id: id.into(),
        name: name.into(),
        authorizer_type: "TOKEN".into(),
        provider_arns: vec![],
        auth_type: Some("custom".into()),
        authorizer_uri: Some(LAMBDA.into()),
        authorizer_credentials: None,
        identity_source: Some("method.request.header.Authorization".into()),
        identity_validation_expression: None,
        authorizer_result_ttl_in_seconds: None,
    }
}

fn cognito(id: &str, name: &str) -> Authorizer {
    Authorizer {
        authorizer_type: "COGNITO_USER_POOLS".into(),
        provider_arns: vec![POOL.into()],
        authorizer_uri: None,
        ..token(id, name)
    }
}

fn create(authorizer: Authorizer) -> AdminOp {
    AdminOp::CreateAuthorizer {
        api_id: "a".into(),
        authorizer,
    }
}

fn update(id: &str, patch: Vec<PatchOperation>) -> AdminOp {
    AdminOp::UpdateAuthorizer {
        api_id: "a".into(),
        authorizer_id: id.into(),
        patch,
    }
}

fn update_method(patch: Vec<PatchOperation>) -> AdminOp {
    AdminOp::UpdateMethod {
        api_id: "a".into(),
        resource_id: "r".into(),
        http_method: "get".into(),
        patch,
    }
}

fn authorizers(state: &GatewayState) -> &[Authorizer] {
    &state.apis["a"].definition.authorizers
}

fn method(state: &GatewayState) -> &Method {
    &state.apis["a"].definition.resources[0].resource_methods["GET"]
}

// ---------------------------------------------------------------------------------------------
// Authorizers

#[test]
fn create_authorizer_keeps_what_was_given() {
    let mut state = api();
    ok(&mut state, create(token("t1", "tok")));
    assert_eq!(authorizers(&state), &[token("t1", "tok")]);
    // An unset TTL stays unset (AWS renders none) and means 300 seconds.
    assert_eq!(authorizers(&state)[0].result_ttl_seconds(), 300);
    let request = Authorizer {
        authorizer_type: "REQUEST".into(),
        identity_source: Some(
            "method.request.header.A, method.request.querystring.q,stageVariables.s,context.sourceIp"
                .into(),
        ),
        authorizer_result_ttl_in_seconds: Some(0),
        ..token("t2", "req")
    };
    ok(&mut state, create(request.clone()));
    ok(&mut state, create(cognito("c1", "pool")));
    assert_eq!(authorizers(&state).len(), 3);
    assert_eq!(authorizers(&state)[1].result_ttl_seconds(), 0);
    // A REQUEST authorizer without caching needs no identity source.
    let uncached = Authorizer {
        identity_source: None,
        ..request
    };
    ok(
        &mut state,
        create(Authorizer {
            id: "t3".into(),
            name: "req2".into(),
            ..uncached
        }),
    );
}

#[test]
fn create_authorizer_refusals() {
    let mut state = api();
    ok(&mut state, create(token("t1", "tok")));
    let cases: Vec<(Authorizer, &str)> = vec![
        (
            Authorizer {
                name: String::new(),
                ..token("x", "")
            },
            "name must not be empty",
        ),
        (
            Authorizer {
                authorizer_type: "OAUTH".into(),
                ..token("x", "n")
            },
            "Value 'OAUTH' at 'type' failed to satisfy constraint",
        ),
        (
            Authorizer {
                authorizer_type: "JWT".into(),
                ..token("x", "n")
            },
            "only supported by HTTP APIs",
        ),
        (
            Authorizer {
                authorizer_result_ttl_in_seconds: Some(3601),
                ..token("x", "n")
            },
            "between 0 and 3600",
        ),
        (
            Authorizer {
                authorizer_result_ttl_in_seconds: Some(-1),
                ..token("x", "n")
            },
            "between 0 and 3600",
        ),
        (
            Authorizer {
                identity_source: Some("method.request.querystring.t".into()),
                ..token("x", "n")
            },
            "Invalid token source expression: method.request.querystring.t. The source must be a method request header",
        ),
        (
            Authorizer {
                identity_source: None,
                ..token("x", "n")
            },
            "Invalid token source expression: null",
        ),
        (
            Authorizer {
                identity_source: Some("method.request.header.".into()),
                ..token("x", "n")
            },
            "Invalid token source expression",
        ),
        (
            Authorizer {
                authorizer_type: "REQUEST".into(),
                identity_source: Some("method.request.header.A,method.request.body.x".into()),
                ..token("x", "n")
            },
            "Invalid identity source expression: method.request.body.x",
        ),
        (
            Authorizer {
                authorizer_type: "REQUEST".into(),
                identity_source: None,
                ..token("x", "n")
            },
            "identity source is required for a REQUEST authorizer",
        ),
        (
            Authorizer {
                authorizer_uri: None,
                ..token("x", "n")
            },
            "Authorizer URI is required",
        ),
        (
            Authorizer {
                authorizer_uri: Some("https://example.com/auth".into()),
                ..token("x", "n")
            },
            "Invalid Authorizer URI: https://example.com/auth",
        ),
        (
            Authorizer {
                provider_arns: vec![],
                ..cognito("x", "n")
            },
            "ProviderARNs are required",
        ),
        (
            Authorizer {
                provider_arns: vec!["arn:aws:s3:::bucket".into()],
                ..cognito("x", "n")
            },
            "Invalid provider ARN specified: arn:aws:s3:::bucket",
        ),
        (
            Authorizer {
                identity_source: Some("method.request.querystring.t".into()),
                ..cognito("x", "n")
            },
            "Invalid token source expression",
        ),
    ];
    for (authorizer, expected) in cases {
        let message = bad(refused(&mut state, create(authorizer.clone())));
        assert!(message.contains(expected), "{authorizer:?}: {message}");
    }
    assert!(conflict(refused(&mut state, create(token("t1", "other")))).contains("t1"));
    assert_eq!(
        bad(refused(&mut state, create(token("t9", "tok")))),
        "Authorizer name must be unique. Authorizer tok already exists in this RestApi."
    );
    assert!(
        not_found(refused(
            &mut state,
            AdminOp::CreateAuthorizer {
                api_id: "zz".into(),
                authorizer: token("t2", "n")
            }
        ))
        .contains("Invalid API identifier specified zz")
    );
}

#[test]
fn update_authorizer_patches_every_member() {
    let mut state = api();
    ok(&mut state, create(token("t1", "tok")));
    ok(
        &mut state,
        update(
            "t1",
            vec![
                patch("replace", "/name", Some("renamed")),
                patch(
                    "replace",
                    "/identitySource",
                    Some("method.request.header.X-Token"),
                ),
                patch(
                    "replace",
                    "/identityValidationExpression",
                    Some("^Bearer .+$"),
                ),
                patch("replace", "/authorizerResultTtlInSeconds", Some("60")),
                patch(
                    "replace",
                    "/authorizerCredentials",
                    Some("arn:aws:iam::1:role/r"),
                ),
                patch("replace", "/authType", Some("oauth2")),
                patch(
                    "replace",
                    "/authorizerUri",
                    Some(&LAMBDA.replace("auth/", "auth2/")),
                ),
            ],
        ),
    );
    let updated = &authorizers(&state)[0];
    assert_eq!(updated.name, "renamed");
    assert_eq!(
        updated.identity_source.as_deref(),
        Some("method.request.header.X-Token")
    );
    assert_eq!(
        updated.identity_validation_expression.as_deref(),
        Some("^Bearer .+$")
    );
    assert_eq!(updated.authorizer_result_ttl_in_seconds, Some(60));
    assert_eq!(
        updated.authorizer_credentials.as_deref(),
        Some("arn:aws:iam::1:role/r")
    );
    assert_eq!(updated.auth_type.as_deref(), Some("oauth2"));
    assert!(
        updated
            .authorizer_uri
            .as_deref()
            .is_some_and(|uri| uri.contains("auth2"))
    );
    ok(
        &mut state,
        update(
            "t1",
            vec![
                patch("remove", "/identityValidationExpression", None),
                patch("remove", "/authorizerResultTtlInSeconds", None),
                patch("remove", "/authorizerCredentials", None),
            ],
        ),
    );
    let updated = &authorizers(&state)[0];
    assert_eq!(updated.identity_validation_expression, None);
    assert_eq!(updated.authorizer_result_ttl_in_seconds, None);
    assert_eq!(updated.authorizer_credentials, None);
    // TOKEN → COGNITO_USER_POOLS in one patch: type, pool, no URI.
    ok(
        &mut state,
        update(
            "t1",
            vec![
                patch("replace", "/type", Some("COGNITO_USER_POOLS")),
                patch("add", "/providerARNs", Some(POOL)),
                patch("remove", "/authorizerUri", None),
            ],
        ),
    );
    assert_eq!(authorizers(&state)[0].provider_arns, vec![POOL.to_string()]);
    let other = POOL.replace("ABC123", "XYZ");
    ok(
        &mut state,
        update("t1", vec![patch("add", "/providerARNs", Some(&other))]),
    );
    assert_eq!(authorizers(&state)[0].provider_arns.len(), 2);
    ok(
        &mut state,
        update("t1", vec![patch("remove", "/providerARNs", Some(POOL))]),
    );
    assert_eq!(authorizers(&state)[0].provider_arns, vec![other.clone()]);
    let escaped = format!("/providerARNs/{}", other.replace('/', "~1"));
    ok(
        &mut state,
        update("t1", vec![patch("replace", &escaped, Some(POOL))]),
    );
    assert_eq!(authorizers(&state)[0].provider_arns, vec![POOL.to_string()]);
    ok(
        &mut state,
        update("t1", vec![patch("replace", "/providerARNs", Some(&other))]),
    );
    assert_eq!(authorizers(&state)[0].provider_arns, vec![other]);
}

#[test]
fn update_authorizer_refusals() {
    let mut state = api();
    ok(&mut state, create(token("t1", "tok")));
    ok(&mut state, create(token("t2", "tok2")));
    let cases: Vec<(Vec<PatchOperation>, &str)> = vec![
        (
            vec![patch(
                "replace",
                "/authorizerResultTtlInSeconds",
                Some("4000"),
            )],
            "between 0 and 3600",
        ),
        (
            vec![patch("replace", "/authorizerResultTtlInSeconds", Some("x"))],
            "Invalid authorizer result TTL specified: x",
        ),
        (
            vec![patch("replace", "/type", Some("SAML"))],
            "Value 'SAML' at 'type'",
        ),
        (
            vec![patch("remove", "/identitySource", None)],
            "Invalid token source expression: null",
        ),
        (
            vec![patch("remove", "/authorizerUri", None)],
            "Authorizer URI is required",
        ),
        (
            vec![patch("add", "/name", Some("x"))],
            "Must be one of: [replace]",
        ),
        (
            vec![patch("replace", "/nope", Some("x"))],
            "Invalid patch path /nope",
        ),
        (
            vec![patch("move", "/name", Some("x"))],
            "Must be 'add'|'remove'|'replace'",
        ),
        (
            vec![patch("jump", "/name", Some("x"))],
            "Member must satisfy enum value set",
        ),
        // The type changes only with what it needs: a pool for COGNITO_USER_POOLS.
        (
            vec![patch("replace", "/type", Some("COGNITO_USER_POOLS"))],
            "ProviderARNs are required",
        ),
    ];
    for (ops, expected) in cases {
        let message = bad(refused(&mut state, update("t1", ops.clone())));
        assert!(message.contains(expected), "{ops:?}: {message}");
    }
    assert!(
        bad(refused(
            &mut state,
            update("t1", vec![patch("replace", "/name", Some("tok2"))])
        ))
        .contains("Authorizer tok2 already exists")
    );
    assert_eq!(
        not_found(refused(&mut state, update("zz", vec![]))),
        "Invalid Authorizer identifier specified"
    );
    // A CUSTOM method keeps its authorizer a Lambda one.
    ok(
        &mut state,
        update_method(vec![
            patch("replace", "/authorizationType", Some("CUSTOM")),
            patch("replace", "/authorizerId", Some("t1")),
        ]),
    );
    let message = conflict(refused(
        &mut state,
        update(
            "t1",
            vec![
                patch("replace", "/type", Some("COGNITO_USER_POOLS")),
                patch("add", "/providerARNs", Some(POOL)),
            ],
        ),
    ));
    assert!(message.contains("GET /"), "{message}");
}

#[test]
fn delete_authorizer_refused_while_a_method_uses_it() {
    let mut state = api();
    ok(&mut state, create(token("t1", "tok")));
    ok(
        &mut state,
        update_method(vec![
            patch("replace", "/authorizationType", Some("CUSTOM")),
            patch("replace", "/authorizerId", Some("t1")),
        ]),
    );
    let delete = || AdminOp::DeleteAuthorizer {
        api_id: "a".into(),
        authorizer_id: "t1".into(),
    };
    let message = conflict(refused(&mut state, delete()));
    assert_eq!(
        message,
        "Cannot delete authorizer 'tok', is referenced in method: GET /"
    );
    ok(
        &mut state,
        update_method(vec![patch("replace", "/authorizationType", Some("NONE"))]),
    );
    ok(&mut state, delete());
    assert!(authorizers(&state).is_empty());
    assert_eq!(
        not_found(refused(&mut state, delete())),
        "Invalid Authorizer identifier specified"
    );
    assert!(
        not_found(refused(
            &mut state,
            AdminOp::DeleteAuthorizer {
                api_id: "zz".into(),
                authorizer_id: "t1".into()
            }
        ))
        .starts_with("Invalid API identifier")
    );
}

// ---------------------------------------------------------------------------------------------
// Methods

#[test]
fn update_method_sets_authorization_in_any_order() {
    let mut state = api();
    ok(&mut state, create(token("t1", "tok")));
    ok(&mut state, create(cognito("c1", "pool")));
    // authorizerId before authorizationType (recorded `update-method-replace-authorizer`).
    ok(
        &mut state,
        update_method(vec![
            patch("replace", "/authorizerId", Some("t1")),
            patch("replace", "/authorizationType", Some("CUSTOM")),
            patch("replace", "/apiKeyRequired", Some("true")),
        ]),
    );
    assert_eq!(method(&state).authorization_type, "CUSTOM");
    assert_eq!(method(&state).authorizer_id.as_deref(), Some("t1"));
    assert!(method(&state).api_key_required);
    ok(
        &mut state,
        update_method(vec![
            patch("replace", "/authorizationType", Some("COGNITO_USER_POOLS")),
            patch("replace", "/authorizerId", Some("c1")),
            patch("add", "/authorizationScopes", Some("email")),
            patch("add", "/authorizationScopes", Some("openid")),
            patch("add", "/authorizationScopes/pets~1read", None),
            patch("add", "/authorizationScopes", Some("email")),
        ]),
    );
    assert_eq!(
        method(&state).authorization_scopes,
        vec!["email", "openid", "pets/read"]
    );
    ok(
        &mut state,
        update_method(vec![patch("remove", "/authorizationScopes", Some("email"))]),
    );
    ok(
        &mut state,
        update_method(vec![patch(
            "remove",
            "/authorizationScopes/pets~1read",
            None,
        )]),
    );
    assert_eq!(method(&state).authorization_scopes, vec!["openid"]);
    ok(
        &mut state,
        update_method(vec![patch("replace", "/authorizationScopes", Some("a"))]),
    );
    assert_eq!(method(&state).authorization_scopes, vec!["a"]);
    // AWS_IAM: the authorizer id goes; "whatever" is false (Java's parseBoolean, recorded).
    ok(
        &mut state,
        update_method(vec![
            patch("replace", "/authorizationType", Some("AWS_IAM")),
            patch("replace", "/apiKeyRequired", Some("whatever")),
        ]),
    );
    assert_eq!(method(&state).authorization_type, "AWS_IAM");
    assert_eq!(method(&state).authorizer_id, None);
    assert!(!method(&state).api_key_required);
    // An authorizer id on a NONE method is ignored (recorded `skip-auth-id-with-wrong-type`).
    ok(
        &mut state,
        update_method(vec![
            patch("replace", "/authorizationType", Some("NONE")),
            patch("replace", "/authorizerId", Some("abc123")),
        ]),
    );
    assert_eq!(method(&state).authorizer_id, None);
    // Request parameters, models, operation name (recorded `test_update_method`).
    ok(
        &mut state,
        update_method(vec![
            patch(
                "add",
                "/requestParameters/method.request.querystring.optional",
                Some("true"),
            ),
            patch("add", "/requestModels/application~1json", Some("Empty")),
            patch("replace", "/operationName", Some("Op")),
        ]),
    );
    assert!(method(&state).request_parameters["method.request.querystring.optional"]);
    assert_eq!(method(&state).request_models["application/json"], "Empty");
    assert_eq!(method(&state).operation_name.as_deref(), Some("Op"));
    ok(
        &mut state,
        update_method(vec![
            patch(
                "remove",
                "/requestParameters/method.request.querystring.optional",
                Some("true"),
            ),
            patch("remove", "/requestModels/application~1json", Some("Empty")),
        ]),
    );
    assert!(method(&state).request_parameters.is_empty());
    assert!(method(&state).request_models.is_empty());
}

#[test]
fn update_method_refusals_use_aws_texts() {
    let mut state = api();
    ok(&mut state, create(token("t1", "tok")));
    ok(&mut state, create(cognito("c1", "pool")));
    let invalid_authorizer = "Invalid authorizer ID specified. Setting the authorization type to CUSTOM or COGNITO_USER_POOLS requires a valid authorizer.";
    let cases: Vec<(Vec<PatchOperation>, &str)> = vec![
        (
            vec![patch("replace", "/authorizationType", Some("CUSTOM"))],
            invalid_authorizer,
        ),
        (
            vec![
                patch("replace", "/authorizationType", Some("CUSTOM")),
                patch("replace", "/authorizerId", Some("abc123")),
            ],
            invalid_authorizer,
        ),
        // The authorizer must be of the method's kind.
        (
            vec![
                patch("replace", "/authorizationType", Some("CUSTOM")),
                patch("replace", "/authorizerId", Some("c1")),
            ],
            invalid_authorizer,
        ),
        (
            vec![
                patch("replace", "/authorizationType", Some("COGNITO_USER_POOLS")),
                patch("replace", "/authorizerId", Some("t1")),
            ],
            invalid_authorizer,
        ),
        (
            vec![patch("replace", "/authorizationType", Some("OPEN"))],
            "Value 'OPEN' at 'authorizationType' failed to satisfy constraint",
        ),
        (
            vec![patch("add", "/operationName", Some("x"))],
            "Invalid patch operation specified. Must be one of: [replace]",
        ),
        (
            vec![patch("add", "/requestValidatorId", Some("x"))],
            "Invalid patch operation specified. Must be one of: [replace]",
        ),
        (
            vec![patch("add", "/authorizationType", Some("NONE"))],
            "Invalid patch operation specified. Must be one of: [replace]",
        ),
        (
            vec![patch("add", "/httpMethod", Some("PUT"))],
            "Invalid patch path /httpMethod",
        ),
        (
            vec![patch("replace", "/requestParameters", Some("x"))],
            "Invalid patch path /requestParameters",
        ),
        (
            vec![patch(
                "add",
                "/requestModels/application/json",
                Some("Empty"),
            )],
            "Invalid patch path /requestModels/application/json",
        ),
        (
            vec![patch(
                "add",
                "/requestModels/application~1json",
                Some("Pet"),
            )],
            "Invalid model identifier specified: Pet",
        ),
        (
            vec![patch("replace", "/requestValidatorId", Some("fake-id"))],
            "Invalid Request Validator identifier specified",
        ),
    ];
    for (ops, expected) in cases {
        let message = bad(refused(&mut state, update_method(ops.clone())));
        assert!(message.contains(expected), "{ops:?}: {message}");
    }
    // A validator that exists is accepted.
    std::sync::Arc::make_mut(&mut state.apis.get_mut("a").unwrap().definition)
        .request_validators
        .push(RequestValidator {
            id: "v1".into(),
            name: "all".into(),
            validate_request_body: true,
            validate_request_parameters: true,
        });
    ok(
        &mut state,
        update_method(vec![patch("replace", "/requestValidatorId", Some("v1"))]),
    );
    // Unknown API, resource, method (recorded texts).
    let wrong = |api: &str, resource: &str, verb: &str| AdminOp::UpdateMethod {
        api_id: api.into(),
        resource_id: resource.into(),
        http_method: verb.into(),
        patch: vec![],
    };
    assert_eq!(
        not_found(refused(&mut state, wrong("zz", "r", "GET"))),
        "Invalid Resource identifier specified"
    );
    assert_eq!(
        not_found(refused(&mut state, wrong("a", "zz", "GET"))),
        "Invalid Resource identifier specified"
    );
    assert_eq!(
        not_found(refused(&mut state, wrong("a", "r", "POST"))),
        "Invalid Method identifier specified"
    );
}

#[test]
fn put_method_checks_the_authorizer_kind_and_drops_ids_it_ignores() {
    let mut state = api();
    ok(&mut state, create(cognito("c1", "pool")));
    let put = |authorization_type: &str, authorizer_id: Option<&str>| {
        let mut method = Method::new("POST");
        method.authorization_type = authorization_type.into();
        method.authorizer_id = authorizer_id.map(str::to_string);
        AdminOp::PutMethod {
            api_id: "a".into(),
            resource_id: "r".into(),
            method,
        }
    };
    assert!(
        bad(refused(&mut state, put("CUSTOM", Some("c1")))).starts_with("Invalid authorizer ID")
    );
    ok(&mut state, put("COGNITO_USER_POOLS", Some("c1")));
    ok(&mut state, put("NONE", Some("c1")));
    let post = &state.apis["a"].definition.resources[0].resource_methods["POST"];
    assert_eq!(post.authorizer_id, None);
}

// ---------------------------------------------------------------------------------------------
// Gateway responses

fn put_response(
    response_type: &str,
    status: Option<&str>,
    parameters: &[(&str, &str)],
    templates: &[(&str, &str)],
) -> AdminOp {
    AdminOp::PutGatewayResponse {
        api_id: "a".into(),
        response: GatewayResponse {
            response_type: response_type.into(),
            status_code: status.map(str::to_string),
            response_parameters: parameters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            response_templates: templates
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            default_response: true,
        },
    }
}

fn effective(state: &GatewayState, response_type: &str) -> GatewayResponse {
    crate::admin::effective_gateway_response(&state.apis["a"].definition, response_type)
}

const DEFAULT_TEMPLATE: &str = "{\"message\":$context.error.messageString}";

#[test]
fn gateway_responses_default_and_customised() {
    let mut state = api();
    let all = crate::admin::effective_gateway_responses(&state.apis["a"].definition);
    assert_eq!(all.len(), 21);
    assert!(all.iter().all(|response| response.default_response));
    let missing = effective(&state, "MISSING_AUTHENTICATION_TOKEN");
    assert_eq!(missing.status_code.as_deref(), Some("403"));
    assert_eq!(
        missing.response_templates["application/json"],
        DEFAULT_TEMPLATE
    );
    assert_eq!(effective(&state, "DEFAULT_4XX").status_code, None);
    assert_eq!(
        effective(&state, "UNAUTHORIZED").status_code.as_deref(),
        Some("401")
    );
    // Put with only a status keeps the default template; only parameters keep the status.
    ok(
        &mut state,
        put_response("MISSING_AUTHENTICATION_TOKEN", Some("404"), &[], &[]),
    );
    let customised = effective(&state, "MISSING_AUTHENTICATION_TOKEN");
    assert_eq!(customised.status_code.as_deref(), Some("404"));
    assert_eq!(
        customised.response_templates["application/json"],
        DEFAULT_TEMPLATE
    );
    assert!(!customised.default_response);
    ok(
        &mut state,
        put_response(
            "MISSING_AUTHENTICATION_TOKEN",
            None,
            &[("gatewayresponse.header.x", "'y'")],
            &[],
        ),
    );
    let customised = effective(&state, "MISSING_AUTHENTICATION_TOKEN");
    assert_eq!(customised.status_code.as_deref(), Some("403"));
    assert_eq!(
        customised.response_parameters["gatewayresponse.header.x"],
        "'y'"
    );
    // A customised DEFAULT_5XX shapes every 5xx type left at its default (recorded
    // `test_gateway_response_put`), not a customised one.
    ok(
        &mut state,
        put_response(
            "DEFAULT_5XX",
            Some("599"),
            &[("gatewayresponse.header.h", "'v'")],
            &[("application/json", "{}")],
        ),
    );
    ok(
        &mut state,
        put_response(
            "AUTHORIZER_FAILURE",
            None,
            &[("gatewayresponse.header.foo", "'bar'")],
            &[],
        ),
    );
    let failure = effective(&state, "INTEGRATION_FAILURE");
    assert_eq!(failure.status_code.as_deref(), Some("599"));
    assert_eq!(failure.response_templates["application/json"], "{}");
    assert!(failure.default_response);
    let authorizer_failure = effective(&state, "AUTHORIZER_FAILURE");
    assert_eq!(authorizer_failure.status_code.as_deref(), Some("500"));
    assert!(!authorizer_failure.default_response);
    // 4xx types are untouched by DEFAULT_5XX.
    assert_eq!(
        effective(&state, "THROTTLED").status_code.as_deref(),
        Some("429")
    );
    // Delete: back to the default; twice is refused with AWS's text.
    let delete = || AdminOp::DeleteGatewayResponse {
        api_id: "a".into(),
        response_type: "MISSING_AUTHENTICATION_TOKEN".into(),
    };
    ok(&mut state, delete());
    assert!(effective(&state, "MISSING_AUTHENTICATION_TOKEN").default_response);
    assert_eq!(
        not_found(refused(&mut state, delete())),
        "Gateway response type not defined on api"
    );
}

#[test]
fn gateway_response_refusals() {
    let mut state = api();
    let enum_text = "1 validation error detected: Value 'FAKE_RESPONSE_TYPE' at 'responseType' failed to satisfy constraint: Member must satisfy enum value set: [REQUEST_TOO_LARGE, RESOURCE_NOT_FOUND, AUTHORIZER_CONFIGURATION_ERROR, MISSING_AUTHENTICATION_TOKEN, BAD_REQUEST_BODY, INVALID_SIGNATURE, INVALID_API_KEY, BAD_REQUEST_PARAMETERS, AUTHORIZER_FAILURE, UNAUTHORIZED, INTEGRATION_TIMEOUT, ACCESS_DENIED, DEFAULT_4XX, DEFAULT_5XX, WAF_FILTERED, QUOTA_EXCEEDED, THROTTLED, API_CONFIGURATION_ERROR, UNSUPPORTED_MEDIA_TYPE, INTEGRATION_FAILURE, EXPIRED_TOKEN]";
    assert_eq!(
        bad(refused(
            &mut state,
            put_response("FAKE_RESPONSE_TYPE", Some("404"), &[], &[])
        )),
        enum_text
    );
    assert_eq!(
        bad(refused(
            &mut state,
            AdminOp::DeleteGatewayResponse {
                api_id: "a".into(),
                response_type: "FAKE_RESPONSE_TYPE".into()
            }
        )),
        enum_text
    );
    assert_eq!(
        bad(refused(
            &mut state,
            AdminOp::UpdateGatewayResponse {
                api_id: "a".into(),
                response_type: "FAKE_RESPONSE_TYPE".into(),
                patch: vec![]
            }
        )),
        enum_text
    );
    assert!(
        bad(refused(
            &mut state,
            put_response("THROTTLED", Some("99"), &[], &[])
        ))
        .contains("[1-5]\\d\\d")
    );
    assert_eq!(
        not_found(refused(
            &mut state,
            put_response("THROTTLED", None, &[], &[]).with_api("zz")
        )),
        "Invalid API identifier specified zz"
    );
}

#[test]
fn update_gateway_response_paths() {
    let mut state = api();
    let update = |response_type: &str, patch: Vec<PatchOperation>| AdminOp::UpdateGatewayResponse {
        api_id: "a".into(),
        response_type: response_type.into(),
        patch,
    };
    // Not customised yet: starts from the default (recorded `update-gateway-response-not-set`).
    ok(
        &mut state,
        update(
            "DEFAULT_4XX",
            vec![patch("replace", "/statusCode", Some("444"))],
        ),
    );
    let response = effective(&state, "DEFAULT_4XX");
    assert_eq!(response.status_code.as_deref(), Some("444"));
    assert_eq!(
        response.response_templates["application/json"],
        DEFAULT_TEMPLATE
    );
    assert!(!response.default_response);
    ok(
        &mut state,
        update(
            "DEFAULT_4XX",
            vec![
                patch(
                    "add",
                    "/responseParameters/gatewayresponse.header.Access-Control-Allow-Origin",
                    Some("'a'"),
                ),
                patch(
                    "replace",
                    "/responseParameters/gatewayresponse.header.Access-Control-Allow-Origin",
                    Some("'example.com'"),
                ),
                patch("add", "/responseTemplates/application~1xml", Some("<m/>")),
            ],
        ),
    );
    let response = effective(&state, "DEFAULT_4XX");
    assert_eq!(
        response.response_parameters["gatewayresponse.header.Access-Control-Allow-Origin"],
        "'example.com'"
    );
    assert_eq!(response.response_templates["application/xml"], "<m/>");
    ok(
        &mut state,
        update(
            "DEFAULT_4XX",
            vec![patch("remove", "/responseTemplates/application~1xml", None)],
        ),
    );
    assert!(
        !effective(&state, "DEFAULT_4XX")
            .response_templates
            .contains_key("application/xml")
    );
    // Refusals with AWS's texts (recorded `test_update_gateway_response`).
    let cases: Vec<(&str, PatchOperation, Refusal)> = vec![
        ("DEFAULT_4XX", patch("add", "/statusCode", Some("444")), Refusal::BadRequest("Invalid patch path /statusCode".into())),
        ("DEFAULT_4XX", patch("remove", "/statusCode", None), Refusal::BadRequest("Invalid patch path /statusCode".into())),
        ("DEFAULT_5XX", patch("replace", "/responseParameters/gatewayresponse.header.x", Some("'v'")), Refusal::NotFound("Invalid parameter name specified".into())),
        ("DEFAULT_4XX", patch("add", "", Some("'v'")), Refusal::BadRequest("Invalid patch path null".into())),
        ("DEFAULT_4XX", patch("add", "/wrongPath", Some("'v'")), Refusal::BadRequest("Invalid patch path /wrongPath".into())),
        ("DEFAULT_4XX", patch("replace", "/responseTemplates/application~1json", None), Refusal::BadRequest("Invalid null or empty value in responseTemplates".into())),
        ("DEFAULT_4XX", patch("replace", "/responseParameters/gatewayresponse.header.Access-Control-Allow-Origin", None), Refusal::BadRequest("Invalid null or empty value in responseParameters".into())),
        ("DEFAULT_4XX", patch("replace", "/statusCode", Some("600")), Refusal::BadRequest("1 validation error detected: Value '600' at 'statusCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [1-5]\\d\\d".into())),
    ];
    for (response_type, operation, expected) in cases {
        assert_eq!(
            refused(&mut state, update(response_type, vec![operation.clone()])),
            expected,
            "{operation:?}"
        );
    }
    let wrong_op = bad(refused(
        &mut state,
        update(
            "DEFAULT_4XX",
            vec![patch("wrong-op", "/statusCode", Some("1"))],
        ),
    ));
    assert!(wrong_op.contains("Value 'wrong-op'"), "{wrong_op}");
}

// ---------------------------------------------------------------------------------------------
// FlushStageAuthorizersCache

#[test]
fn flush_stage_authorizers_cache_bumps_its_own_generation() {
    let mut state = api();
    let flush = |api: &str, stage: &str| AdminOp::FlushStageAuthorizersCache {
        api_id: api.into(),
        stage_name: stage.into(),
    };
    ok(&mut state, flush("a", "prod"));
    ok(&mut state, flush("a", "prod"));
    assert_eq!(state.authorizer_generations["a/prod"], 2);
    assert_eq!(
        crate::admin::authorizer_generation_key("a", "prod"),
        "a/prod"
    );
    // The response cache generation is another counter.
    assert!(state.cache_generations.is_empty());
    let mut expected = api();
    expected.authorizer_generations.insert("a/prod".into(), 2);
    assert_eq!(state, expected);
    assert_eq!(
        not_found(refused(&mut state, flush("a", "dev"))),
        "Invalid Stage identifier specified dev"
    );
    assert_eq!(
        not_found(refused(&mut state, flush("zz", "prod"))),
        "Invalid API identifier specified zz"
    );
}

#[test]
fn new_ops_survive_the_codec() {
    let mut state = api();
    ok(&mut state, create(token("t1", "tok")));
    ok(
        &mut state,
        put_response(
            "THROTTLED",
            Some("503"),
            &[("gatewayresponse.header.a", "'b'")],
            &[],
        ),
    );
    ok(
        &mut state,
        AdminOp::FlushStageAuthorizersCache {
            api_id: "a".into(),
            stage_name: "prod".into(),
        },
    );
    let bytes = crate::codec::encode(&state).unwrap();
    let back: GatewayState = crate::codec::decode(&bytes).unwrap();
    assert_eq!(back, state);
}

trait WithApi {
    fn with_api(self, api_id: &str) -> AdminOp;
}

impl WithApi for AdminOp {
    fn with_api(self, api_id: &str) -> AdminOp {
        match self {
            AdminOp::PutGatewayResponse { response, .. } => AdminOp::PutGatewayResponse {
                api_id: api_id.into(),
                response,
            },
            other => other,
        }
    }
}
