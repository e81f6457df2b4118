use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::super::{AdminOp, NewStage, PatchOperation, apply};
use super::*;
use crate::cluster::{self, Command};
use crate::model::{
    AdminKey, ApiKeySource, EndpointConfiguration, GatewayState, Integration, IntegrationType,
    Method, RestApi,
};

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

fn message(refusal: &Refusal) -> &str {
    match refusal {
        Refusal::NotFound(text) | Refusal::Conflict(text) | Refusal::BadRequest(text) => text,
        Refusal::Iam(error) => &error.message,
    }
}

fn patch(op: &str, path: &str, value: Option<&str>) -> PatchOperation {
    PatchOperation::new(op, path, value)
}

/// APIs `a` and `b`, each with a MOCK `GET /` deployed to stages `prod` and `dev`.
fn with_stages() -> GatewayState {
    let mut state = GatewayState::default();
    for api_id in ["a", "b"] {
        ok(
            &mut state,
            AdminOp::CreateRestApi {
                api: RestApi {
                    id: api_id.into(),
                    name: api_id.into(),
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
                    root_resource_id: format!("{api_id}root"),
                },
            },
        );
        let mut method = Method::new("GET");
        method.method_integration = Some(Integration::new(IntegrationType::Mock));
        ok(
            &mut state,
            AdminOp::PutMethod {
                api_id: api_id.into(),
                resource_id: format!("{api_id}root"),
                method,
            },
        );
        for (deployment, stage) in [("d1", "prod"), ("d2", "dev")] {
            ok(
                &mut state,
                AdminOp::CreateDeployment {
                    api_id: api_id.into(),
                    deployment_id: deployment.into(),
                    description: None,
                    created_date: 2,
                    stage: Some(NewStage {
                        stage_name: stage.into(),
                        description: None,
                        variables: BTreeMap::new(),
                    }),
                },
            );
        }
    }
    state
}

fn api_key(id: &str, hash: &str) -> ApiKey {
    ApiKey {
        id: id.into(),
        name: Some(format!("name-{id}")),
        description: None,
        customer_id: None,
        enabled: false,
        created_date: 10,
        last_updated_date: 10,
        stage_keys: vec![],
        tags: BTreeMap::new(),
        value_hash: hash.into(),
        nonce: vec![1; 12],
        sealed_value: vec![2; 36],
    }
}

fn plan(id: &str, stages: &[(&str, &str)]) -> UsagePlan {
    UsagePlan {
        id: id.into(),
        name: format!("plan-{id}"),
        description: None,
        api_stages: stages
            .iter()
            .map(|(api_id, stage)| ApiStage {
                api_id: (*api_id).into(),
                stage: (*stage).into(),
                throttle: BTreeMap::new(),
            })
            .collect(),
        throttle: None,
        quota: None,
        product_code: None,
        tags: BTreeMap::new(),
        key_ids: BTreeSet::new(),
    }
}

fn create_key(state: &mut GatewayState, id: &str, hash: &str) {
    ok(
        state,
        AdminOp::CreateApiKey {
            key: api_key(id, hash),
        },
    );
}

fn create_plan(state: &mut GatewayState, id: &str, stages: &[(&str, &str)]) {
    ok(
        state,
        AdminOp::CreateUsagePlan {
            plan: plan(id, stages),
        },
    );
}

fn add_key(plan_id: &str, key_id: &str) -> AdminOp {
    AdminOp::CreateUsagePlanKey {
        plan_id: plan_id.into(),
        key_id: key_id.into(),
    }
}

fn update_plan(plan_id: &str, patch: Vec<PatchOperation>) -> AdminOp {
    AdminOp::UpdateUsagePlan {
        plan_id: plan_id.into(),
        patch,
    }
}

// ---------------------------------------------------------------------------------------------
// API keys

#[test]
fn key_values_are_checked_with_aws_texts() {
    assert_eq!(
        message(&validate_api_key_value("short").unwrap_err()),
        "API Key value should be at least 20 characters"
    );
    assert_eq!(
        message(&validate_api_key_value(&"x".repeat(129)).unwrap_err()),
        "API Key value exceeds maximum size of 128 characters"
    );
    assert!(validate_api_key_value(&"x".repeat(20)).is_ok());
    assert!(validate_api_key_value(&"x".repeat(128)).is_ok());
    // Characters, not bytes: 20 two-byte characters are enough.
    assert!(validate_api_key_value(&"é".repeat(20)).is_ok());
}

#[test]
fn create_api_key_and_its_refusals() {
    let mut state = with_stages();
    create_key(&mut state, "k1", "h1");
    assert_eq!(state.api_keys["k1"].value_hash, "h1");

    let duplicate_value = refused(
        &mut state,
        AdminOp::CreateApiKey {
            key: api_key("k2", "h1"),
        },
    );
    assert!(matches!(duplicate_value, Refusal::Conflict(_)));
    let duplicate_id = refused(
        &mut state,
        AdminOp::CreateApiKey {
            key: api_key("k1", "h2"),
        },
    );
    assert!(matches!(duplicate_id, Refusal::Conflict(_)));

    let mut long_name = api_key("k3", "h3");
    long_name.name = Some("n".repeat(1025));
    assert_eq!(
        message(&refused(
            &mut state,
            AdminOp::CreateApiKey { key: long_name }
        )),
        "Invalid API Key name, can be at most 1024 characters."
    );
    let mut long_description = api_key("k3", "h3");
    long_description.description = Some("d".repeat(126));
    assert_eq!(
        message(&refused(
            &mut state,
            AdminOp::CreateApiKey {
                key: long_description
            }
        )),
        "Invalid API Key description specified."
    );
    let mut bad_stage = api_key("k3", "h3");
    bad_stage.stage_keys = vec!["a/nope".into()];
    assert!(matches!(
        refused(&mut state, AdminOp::CreateApiKey { key: bad_stage }),
        Refusal::BadRequest(_)
    ));
    let mut good_stage = api_key("k3", "h3");
    good_stage.stage_keys = vec!["a/prod".into()];
    ok(&mut state, AdminOp::CreateApiKey { key: good_stage });
}

#[test]
fn update_api_key_patch_paths() {
    let mut state = with_stages();
    create_key(&mut state, "k1", "h1");
    ok(
        &mut state,
        AdminOp::UpdateApiKey {
            key_id: "k1".into(),
            patch: vec![
                patch("replace", "/enabled", Some("true")),
                patch("replace", "/name", Some("renamed")),
                patch("replace", "/description", Some("about")),
                patch("replace", "/customerId", Some("cust")),
                patch("add", "/stages", Some("a/prod")),
                patch("add", "/stages", Some("b/dev")),
                patch("remove", "/stages", Some("a/prod")),
            ],
            now: 77,
        },
    );
    let key = &state.api_keys["k1"];
    assert!(key.enabled);
    assert_eq!(key.name.as_deref(), Some("renamed"));
    assert_eq!(key.description.as_deref(), Some("about"));
    assert_eq!(key.customer_id.as_deref(), Some("cust"));
    assert_eq!(key.stage_keys, vec!["b/dev".to_string()]);
    assert_eq!(key.last_updated_date, 77);
    assert_eq!(key.created_date, 10);

    // AWS takes a value that is not `true` as false (recorded).
    ok(
        &mut state,
        AdminOp::UpdateApiKey {
            key_id: "k1".into(),
            patch: vec![patch("replace", "/enabled", Some("invalid"))],
            now: 78,
        },
    );
    assert!(!state.api_keys["k1"].enabled);

    let immutable = refused(
        &mut state,
        AdminOp::UpdateApiKey {
            key_id: "k1".into(),
            patch: vec![
                patch("replace", "/name", Some("half-way")),
                patch("replace", "/id", Some("x")),
            ],
            now: 79,
        },
    );
    assert_eq!(
        message(&immutable),
        "Invalid patch path  '/id' specified for op 'replace'. Must be one of: [/description, /enabled, /name, /customerId]"
    );
    let long = "d".repeat(126);
    assert_eq!(
        message(&refused(
            &mut state,
            AdminOp::UpdateApiKey {
                key_id: "k1".into(),
                patch: vec![patch("replace", "/description", Some(&long))],
                now: 79,
            },
        )),
        "Invalid API Key description specified."
    );
    assert_eq!(
        message(&refused(
            &mut state,
            AdminOp::UpdateApiKey {
                key_id: "nope".into(),
                patch: vec![],
                now: 79,
            },
        )),
        "Invalid API Key identifier specified"
    );
}

#[test]
fn deleting_a_key_drops_it_from_every_plan() {
    let mut state = with_stages();
    create_key(&mut state, "k1", "h1");
    create_plan(&mut state, "p1", &[("a", "prod")]);
    create_plan(&mut state, "p2", &[("b", "prod")]);
    ok(&mut state, add_key("p1", "k1"));
    ok(&mut state, add_key("p2", "k1"));
    ok(
        &mut state,
        AdminOp::DeleteApiKey {
            key_id: "k1".into(),
        },
    );
    assert!(state.api_keys.is_empty());
    assert!(
        state
            .usage_plans
            .values()
            .all(|plan| plan.key_ids.is_empty())
    );
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::DeleteApiKey {
                key_id: "k1".into()
            }
        ),
        Refusal::NotFound(_)
    ));
}

#[test]
fn import_is_all_or_nothing() {
    let mut state = with_stages();
    create_plan(&mut state, "p1", &[("a", "prod")]);
    let row = |id: &str, hash: &str, plans: &[&str]| ImportedApiKey {
        key: api_key(id, hash),
        usage_plan_ids: plans.iter().map(|plan| (*plan).to_string()).collect(),
    };
    // The second row repeats the first one's value: nothing is imported.
    let refusal = refused(
        &mut state,
        AdminOp::ImportApiKeys {
            keys: vec![row("k1", "h1", &["p1"]), row("k2", "h1", &[])],
        },
    );
    assert!(matches!(refusal, Refusal::Conflict(_)));
    // An unknown plan: nothing is imported either.
    let refusal = refused(
        &mut state,
        AdminOp::ImportApiKeys {
            keys: vec![row("k1", "h1", &["p1"]), row("k2", "h2", &["nope"])],
        },
    );
    assert_eq!(message(&refusal), "Invalid Usage Plan ID specified");
    ok(
        &mut state,
        AdminOp::ImportApiKeys {
            keys: vec![row("k1", "h1", &["p1"]), row("k2", "h2", &[])],
        },
    );
    assert_eq!(state.api_keys.len(), 2);
    assert_eq!(
        state.usage_plans["p1"].key_ids,
        BTreeSet::from(["k1".to_string()])
    );
}

// ---------------------------------------------------------------------------------------------
// Usage plans

#[test]
fn create_usage_plan_validates_stages_and_limits() {
    let mut state = with_stages();
    let refusal = refused(
        &mut state,
        AdminOp::CreateUsagePlan {
            plan: plan("p1", &[("a", "nope")]),
        },
    );
    assert_eq!(
        refusal,
        Refusal::BadRequest(
            "Invalid API Stage {api: a, stage: nope} specified for usageplan p1".into()
        )
    );
    let mut negative_rate = plan("p1", &[("a", "prod")]);
    negative_rate.throttle = Some(ThrottleSettings {
        burst_limit: 1,
        rate_limit: -1.0,
    });
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::CreateUsagePlan {
                plan: negative_rate
            }
        ),
        Refusal::BadRequest(_)
    ));
    let mut negative_quota = plan("p1", &[("a", "prod")]);
    negative_quota.quota = Some(QuotaSettings {
        limit: -1,
        offset: 0,
        period: QuotaPeriod::Day,
    });
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::CreateUsagePlan {
                plan: negative_quota
            }
        ),
        Refusal::BadRequest(_)
    ));
    let mut bad_offset = plan("p1", &[("a", "prod")]);
    bad_offset.quota = Some(QuotaSettings {
        limit: 10,
        offset: 7,
        period: QuotaPeriod::Week,
    });
    assert!(matches!(
        refused(&mut state, AdminOp::CreateUsagePlan { plan: bad_offset }),
        Refusal::BadRequest(_)
    ));
    let mut bad_method = plan("p1", &[("a", "prod")]);
    bad_method.api_stages[0].throttle.insert(
        "/pets/FETCH".into(),
        ThrottleSettings {
            burst_limit: 1,
            rate_limit: 1.0,
        },
    );
    assert!(matches!(
        refused(&mut state, AdminOp::CreateUsagePlan { plan: bad_method }),
        Refusal::BadRequest(_)
    ));

    // Burst above rate is fine (recorded: LS extended `test_create_usage_plan_with_throttle`).
    let mut good = plan("p1", &[("a", "prod")]);
    good.throttle = Some(ThrottleSettings {
        burst_limit: 20,
        rate_limit: 10.0,
    });
    good.api_stages[0].throttle.insert(
        "/pets/GET".into(),
        ThrottleSettings {
            burst_limit: 2,
            rate_limit: 1.5,
        },
    );
    ok(&mut state, AdminOp::CreateUsagePlan { plan: good });
    assert!(matches!(
        refused(
            &mut state,
            AdminOp::CreateUsagePlan {
                plan: plan("p1", &[])
            }
        ),
        Refusal::Conflict(_)
    ));
}

#[test]
fn update_usage_plan_patch_paths() {
    let mut state = with_stages();
    create_plan(&mut state, "p1", &[("a", "prod")]);
    ok(
        &mut state,
        update_plan(
            "p1",
            vec![
                patch("replace", "/name", Some("gold")),
                patch("replace", "/description", Some("the gold plan")),
                patch("replace", "/productCode", Some("pc")),
                patch("replace", "/throttle/burstLimit", Some("100")),
                patch("replace", "/throttle/rateLimit", Some("200")),
                patch("replace", "/quota/limit", Some("5000")),
                patch("replace", "/quota/period", Some("MONTH")),
                patch("replace", "/quota/offset", Some("3")),
                patch("add", "/apiStages", Some("b:dev")),
                patch(
                    "replace",
                    "/apiStages/a:prod/throttle/~1pets/GET/rateLimit",
                    Some("5"),
                ),
                patch(
                    "replace",
                    "/apiStages/a:prod/throttle/pets/{id}/DELETE/burstLimit",
                    Some("7"),
                ),
            ],
        ),
    );
    let current = &state.usage_plans["p1"];
    assert_eq!(current.name, "gold");
    assert_eq!(current.description.as_deref(), Some("the gold plan"));
    assert_eq!(current.product_code.as_deref(), Some("pc"));
    assert_eq!(
        current.throttle,
        Some(ThrottleSettings {
            burst_limit: 100,
            rate_limit: 200.0
        })
    );
    assert_eq!(
        current.quota,
        Some(QuotaSettings {
            limit: 5000,
            offset: 3,
            period: QuotaPeriod::Month
        })
    );
    assert_eq!(current.api_stages.len(), 2);
    let overrides = &current.api_stages[0].throttle;
    assert_eq!(overrides["/pets/GET"].rate_limit, 5.0);
    assert_eq!(overrides["/pets/{id}/DELETE"].burst_limit, 7);

    ok(
        &mut state,
        update_plan(
            "p1",
            vec![
                patch("remove", "/throttle", None),
                patch("remove", "/quota", None),
                patch("remove", "/apiStages/a:prod/throttle/~1pets/GET", None),
                patch("remove", "/apiStages", Some("b:dev")),
            ],
        ),
    );
    let current = &state.usage_plans["p1"];
    assert_eq!(current.throttle, None);
    assert_eq!(current.quota, None);
    assert_eq!(current.api_stages.len(), 1);
    assert_eq!(
        current.api_stages[0].throttle.keys().collect::<Vec<_>>(),
        vec!["/pets/{id}/DELETE"]
    );

    // Recorded texts (LS common `test_usage_plan_crud`).
    assert_eq!(
        refused(&mut state, update_plan("nope", vec![])),
        Refusal::NotFound("Invalid Usage Plan ID specified".into())
    );
    assert_eq!(
        refused(
            &mut state,
            update_plan("p1", vec![patch("remove", "/apiStages", None)])
        ),
        Refusal::BadRequest("Invalid API Stage specified".into())
    );
    assert_eq!(
        refused(
            &mut state,
            update_plan("p1", vec![patch("remove", "/apiStages", Some("wrong"))])
        ),
        Refusal::BadRequest("Invalid API Stage specified".into())
    );
    assert_eq!(
        refused(
            &mut state,
            update_plan("p1", vec![patch("remove", "/apiStages", Some("ab:prod"))])
        ),
        Refusal::NotFound(
            "Invalid API Stage {api: ab, stage: prod} specified for usageplan p1".into()
        )
    );
    assert_eq!(
        refused(
            &mut state,
            update_plan(
                "p1",
                vec![patch("add", "/apiStages", Some("a:fakestagename"))]
            )
        ),
        Refusal::NotFound(
            "Invalid API Stage {api: a, stage: fakestagename} specified for usageplan p1".into()
        )
    );
    // A bad op later in the list leaves the earlier ones unapplied.
    refused(
        &mut state,
        update_plan(
            "p1",
            vec![
                patch("replace", "/name", Some("changed")),
                patch("replace", "/throttle/rateLimit", Some("-1")),
            ],
        ),
    );
    refused(
        &mut state,
        update_plan("p1", vec![patch("replace", "/quota/period", Some("YEAR"))]),
    );
    refused(
        &mut state,
        update_plan("p1", vec![patch("replace", "/id", Some("x"))]),
    );
    ok(
        &mut state,
        AdminOp::DeleteUsagePlan {
            plan_id: "p1".into(),
        },
    );
    assert!(state.usage_plans.is_empty());
}

#[test]
fn a_key_reaches_a_stage_through_one_plan_only() {
    let mut state = with_stages();
    create_key(&mut state, "k1", "h1");
    create_plan(&mut state, "p1", &[("a", "prod")]);
    create_plan(&mut state, "p2", &[("a", "prod"), ("b", "prod")]);
    create_plan(&mut state, "p3", &[("a", "dev")]);
    assert_eq!(
        refused(&mut state, add_key("p1", "nope")),
        Refusal::NotFound("Invalid API Key identifier specified".into())
    );
    assert_eq!(
        refused(&mut state, add_key("nope", "k1")),
        Refusal::NotFound("Invalid Usage Plan ID specified".into())
    );
    ok(&mut state, add_key("p1", "k1"));
    assert!(matches!(
        refused(&mut state, add_key("p1", "k1")),
        Refusal::Conflict(_)
    ));
    let conflict = refused(&mut state, add_key("p2", "k1"));
    assert_eq!(
        conflict,
        Refusal::Conflict("Usage Plan p2 cannot be added because API Key k1 cannot reference multiple Usage Plans with the same API Stage: a:prod".into())
    );
    // Another stage of the same API is fine.
    ok(&mut state, add_key("p3", "k1"));
    // Moving p3 onto a:prod would give k1 two plans for a:prod.
    assert!(matches!(
        refused(
            &mut state,
            update_plan("p3", vec![patch("add", "/apiStages", Some("a:prod"))])
        ),
        Refusal::Conflict(_)
    ));
    ok(
        &mut state,
        AdminOp::DeleteUsagePlanKey {
            plan_id: "p1".into(),
            key_id: "k1".into(),
        },
    );
    ok(&mut state, add_key("p2", "k1"));
    assert_eq!(
        refused(
            &mut state,
            AdminOp::DeleteUsagePlanKey {
                plan_id: "p1".into(),
                key_id: "k1".into(),
            }
        ),
        Refusal::NotFound("Invalid API Key identifier specified".into())
    );
}

#[test]
fn update_account_throttle_and_role() {
    let mut state = with_stages();
    assert_eq!(
        state.account.throttle, None,
        "no account throttle until one is set"
    );
    ok(
        &mut state,
        AdminOp::UpdateAccount {
            patch: vec![
                patch("replace", "/throttle/rateLimit", Some("50.5")),
                patch("replace", "/throttle/burstLimit", Some("20")),
                patch(
                    "replace",
                    "/cloudwatchRoleArn",
                    Some("arn:aws:iam::1:role/r"),
                ),
            ],
        },
    );
    let throttle = state.account.throttle.expect("set");
    assert_eq!(throttle.rate_limit, 50.5);
    assert_eq!(throttle.burst_limit, 20);
    assert_eq!(
        state.account.cloudwatch_role_arn.as_deref(),
        Some("arn:aws:iam::1:role/r")
    );
    refused(
        &mut state,
        AdminOp::UpdateAccount {
            patch: vec![patch("replace", "/throttle/burstLimit", Some("-5"))],
        },
    );
    refused(
        &mut state,
        AdminOp::UpdateAccount {
            patch: vec![patch("replace", "/features", Some("x"))],
        },
    );
    refused(
        &mut state,
        AdminOp::UpdateAccount {
            patch: vec![patch("replace", "/throttle/rateLimit", Some("fast"))],
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Determinism, invariants and what edges receive

fn arb_op() -> impl Strategy<Value = Command> {
    let key_id = prop::sample::select(vec!["k1", "k2", "k3"]);
    let plan_id = prop::sample::select(vec!["p1", "p2"]);
    let hash = prop::sample::select(vec!["h1", "h2", "h3"]);
    let stage = prop::sample::select(vec![("a", "prod"), ("a", "dev"), ("b", "prod"), ("a", "x")]);
    prop_oneof![
        (key_id.clone(), hash.clone()).prop_map(|(id, hash)| Command::Admin(
            AdminOp::CreateApiKey {
                key: api_key(id, hash)
            }
        )),
        key_id
            .clone()
            .prop_map(|id| Command::Admin(AdminOp::DeleteApiKey { key_id: id.into() })),
        (key_id.clone(), any::<bool>()).prop_map(|(id, enabled)| Command::Admin(
            AdminOp::UpdateApiKey {
                key_id: id.into(),
                patch: vec![patch(
                    "replace",
                    "/enabled",
                    Some(if enabled { "true" } else { "false" })
                )],
                now: 5,
            }
        )),
        (
            key_id.clone(),
            hash.clone(),
            key_id.clone(),
            hash.clone(),
            plan_id.clone()
        )
            .prop_map(|(id1, hash1, id2, hash2, plan_id)| Command::Admin(
                AdminOp::ImportApiKeys {
                    keys: vec![
                        ImportedApiKey {
                            key: api_key(id1, hash1),
                            usage_plan_ids: vec![plan_id.into()],
                        },
                        ImportedApiKey {
                            key: api_key(&format!("{id2}i"), hash2),
                            usage_plan_ids: vec![],
                        },
                    ],
                }
            )),
        (plan_id.clone(), stage.clone()).prop_map(|(id, (api_id, stage_name))| Command::Admin(
            AdminOp::CreateUsagePlan {
                plan: plan(id, &[(api_id, stage_name)])
            }
        )),
        (plan_id.clone(), stage.clone(), any::<bool>()).prop_map(
            |(id, (api_id, stage_name), add)| Command::Admin(AdminOp::UpdateUsagePlan {
                plan_id: id.into(),
                patch: vec![patch(
                    if add { "add" } else { "remove" },
                    "/apiStages",
                    Some(&format!("{api_id}:{stage_name}"))
                )],
            })
        ),
        plan_id
            .clone()
            .prop_map(|id| Command::Admin(AdminOp::DeleteUsagePlan { plan_id: id.into() })),
        (plan_id.clone(), key_id.clone())
            .prop_map(|(plan_id, key_id)| Command::Admin(add_key(plan_id, key_id))),
        (plan_id, key_id.clone()).prop_map(|(plan_id, key_id)| Command::Admin(
            AdminOp::DeleteUsagePlanKey {
                plan_id: plan_id.into(),
                key_id: key_id.into(),
            }
        )),
        key_id.clone().prop_map(|id| Command::PutAdminKey(AdminKey {
            access_key_id: format!("AKIA{id}"),
            nonce: vec![9; 12],
            sealed_secret: vec![8; 56],
            created_date: 3,
            enabled: true,
        })),
        arb_iam_op(key_id),
    ]
}

/// IAM users, keys (sealed secrets) and policies over a few names, so ops meet each other.
fn arb_iam_op(
    key_id: impl Strategy<Value = &'static str> + Clone + 'static,
) -> impl Strategy<Value = Command> {
    use crate::iam::{AccessKeyStatus, IamAccessKey, IamOp};
    let user = prop::sample::select(vec!["alice", "bob"]);
    prop_oneof![
        user.clone().prop_map(|name| IamOp::CreateUser {
            user_name: name.into(),
            path: "/".into(),
            user_id: format!("AIDA{name}"),
            account_id: "000000000000".into(),
            create_date: 1,
        }),
        user.clone().prop_map(|name| IamOp::DeleteUser {
            user_name: name.into()
        }),
        (user.clone(), key_id.clone()).prop_map(|(name, id)| IamOp::CreateAccessKey {
            key: IamAccessKey {
                access_key_id: format!("AKIA{id}"),
                user_name: name.into(),
                status: AccessKeyStatus::Active,
                create_date: 2,
                nonce: vec![3; 12],
                sealed_secret: vec![4; 56],
            },
        }),
        (user.clone(), key_id.clone()).prop_map(|(name, id)| IamOp::DeleteAccessKey {
            user_name: name.into(),
            access_key_id: format!("AKIA{id}"),
        }),
        (user.clone(), key_id, any::<bool>()).prop_map(|(name, id, active)| {
            IamOp::UpdateAccessKey {
                user_name: name.into(),
                access_key_id: format!("AKIA{id}"),
                status: if active {
                    AccessKeyStatus::Active
                } else {
                    AccessKeyStatus::Inactive
                },
            }
        }),
        user.clone().prop_map(|name| IamOp::PutUserPolicy {
            user_name: name.into(),
            policy_name: "p".into(),
            policy_document: r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#
                .into(),
        }),
        user.prop_map(|name| IamOp::DeleteUserPolicy {
            user_name: name.into(),
            policy_name: "p".into(),
        }),
    ]
    .prop_map(Command::Iam)
}

fn check_invariants(state: &GatewayState) {
    let hashes: BTreeSet<&str> = state
        .api_keys
        .values()
        .map(|key| key.value_hash.as_str())
        .collect();
    assert_eq!(hashes.len(), state.api_keys.len(), "two keys share a hash");
    let mut reached: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
    for plan in state.usage_plans.values() {
        for key_id in &plan.key_ids {
            assert!(
                state.api_keys.contains_key(key_id),
                "plan names a missing key"
            );
            for api_stage in &plan.api_stages {
                assert!(
                    reached.insert((key_id, &api_stage.api_id, &api_stage.stage)),
                    "a key reaches a stage through two plans"
                );
            }
        }
    }
}

proptest! {
    /// Replicas that apply the same commands (one of them after the wire encoding) agree on
    /// every outcome and state; the invariants hold after every step; and an edge fed the
    /// redacted snapshot and redacted commands holds exactly the redacted origin state, with
    /// no sealed value anywhere.
    #[test]
    fn replicas_agree_and_edges_hold_no_sealed_values(
        commands in prop::collection::vec(arb_op(), 1..40),
        snapshot_at in 0usize..40,
    ) {
        let mut origin = with_stages();
        let mut replica = origin.clone();
        let mut edge = cluster::redact_for_edge(origin.clone());
        for (step, command) in commands.iter().enumerate() {
            let index = step as u64 + 1;
            let outcome = cluster::apply(&mut origin, index, command);
            let decoded: Command =
                crate::codec::decode(&crate::codec::encode(command).unwrap()).unwrap();
            prop_assert_eq!(&cluster::apply(&mut replica, index, &decoded), &outcome);
            prop_assert_eq!(&replica, &origin);
            check_invariants(&origin);
            if step == snapshot_at {
                // The edge resubscribes: a fresh redacted snapshot replaces its state.
                edge = cluster::redact_for_edge(origin.clone());
            } else {
                let redacted = cluster::redact_command_for_edge(command.clone());
                let edge_outcome = cluster::apply(&mut edge, index, &redacted);
                prop_assert_eq!(edge_outcome, outcome);
            }
            prop_assert_eq!(&edge, &cluster::redact_for_edge(origin.clone()));
            prop_assert!(edge.api_keys.values().all(|key| key.sealed_value.is_empty() && key.nonce.is_empty()));
            prop_assert!(edge.admin_keys.values().all(|key| key.sealed_secret.is_empty() && key.nonce.is_empty()));
            prop_assert!(edge.iam.access_keys.values().all(|key| key.sealed_secret.is_empty() && key.nonce.is_empty()));
        }
        // Something was actually exercised: origins keep what edges do not.
        if origin.api_keys.values().any(|key| !key.sealed_value.is_empty())
            || !origin.iam.access_keys.is_empty()
        {
            prop_assert_ne!(&edge, &origin);
        }
    }
}

#[test]
fn redaction_empties_every_sealed_form_and_keeps_the_rest() {
    let mut state = with_stages();
    create_key(&mut state, "k1", "h1");
    cluster::apply(
        &mut state,
        1,
        &Command::PutAdminKey(AdminKey {
            access_key_id: "AKIA1".into(),
            nonce: vec![1; 12],
            sealed_secret: vec![2; 40],
            created_date: 0,
            enabled: true,
        }),
    );
    let redacted = cluster::redact_for_edge(state.clone());
    assert!(redacted.api_keys["k1"].sealed_value.is_empty());
    assert!(redacted.api_keys["k1"].nonce.is_empty());
    assert_eq!(redacted.api_keys["k1"].value_hash, "h1");
    assert!(redacted.admin_keys["AKIA1"].sealed_secret.is_empty());
    assert_eq!(redacted.apis, state.apis);

    let command = Command::Admin(AdminOp::ImportApiKeys {
        keys: vec![ImportedApiKey {
            key: api_key("k2", "h2"),
            usage_plan_ids: vec![],
        }],
    });
    let Command::Admin(AdminOp::ImportApiKeys { keys }) = cluster::redact_command_for_edge(command)
    else {
        panic!("the variant changed");
    };
    assert!(keys[0].key.sealed_value.is_empty());
    assert_eq!(keys[0].key.value_hash, "h2");

    // IAM access keys: the state's and the command's sealed secrets are emptied.
    use crate::iam::{AccessKeyStatus, IamAccessKey, IamOp};
    let iam_key = IamAccessKey {
        access_key_id: "AKIAIAM".into(),
        user_name: "alice".into(),
        status: AccessKeyStatus::Active,
        create_date: 0,
        nonce: vec![1; 12],
        sealed_secret: vec![2; 56],
    };
    for op in [
        IamOp::CreateUser {
            user_name: "alice".into(),
            path: "/".into(),
            user_id: "AIDA1".into(),
            account_id: "000000000000".into(),
            create_date: 0,
        },
        IamOp::CreateAccessKey {
            key: iam_key.clone(),
        },
    ] {
        assert_eq!(
            cluster::apply(&mut state, 2, &Command::Iam(op)),
            cluster::CommandOutcome::Applied
        );
    }
    let redacted = cluster::redact_for_edge(state.clone());
    let kept = &redacted.iam.access_keys["AKIAIAM"];
    assert!(kept.sealed_secret.is_empty() && kept.nonce.is_empty());
    assert_eq!(kept.status, AccessKeyStatus::Active);
    assert_eq!(redacted.iam.users, state.iam.users);
    let Command::Iam(IamOp::CreateAccessKey { key }) =
        cluster::redact_command_for_edge(Command::Iam(IamOp::CreateAccessKey { key: iam_key }))
    else {
        panic!("the variant changed");
    };
    assert!(key.sealed_secret.is_empty() && key.nonce.is_empty());
    assert_eq!(key.access_key_id, "AKIAIAM");
}
