//! The limits stage against states built by hand: key checks, every throttle level, quotas
//! through a ledger applied in process (as `dev` does).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use portico_proto::cluster::{Command, apply};
use portico_proto::model::{
    ApiKey, ApiStage, MethodSetting, QuotaPeriod, QuotaSettings, ThrottleSettings, UsagePlan,
};

use super::*;
use crate::config::compile;

const DOC: &str = r#"
openapi: 3.0.1
info: { title: limited, version: '1' }
components:
  securitySchemes:
    api_key: { type: apiKey, name: x-api-key, in: header }
paths:
  /open:
    get:
      x-amazon-apigateway-integration: { type: mock, requestTemplates: { application/json: '{"statusCode": 200}' }, responses: { default: { statusCode: '200' } } }
  /keyed:
    get:
      security: [ { api_key: [] } ]
      x-amazon-apigateway-integration: { type: mock, requestTemplates: { application/json: '{"statusCode": 200}' }, responses: { default: { statusCode: '200' } } }
"#;

const VALUE: &str = "a-very-secret-key-value-0001";

fn state() -> GatewayState {
    let (mut state, _) = crate::dev::build_state("inline", DOC, "prod", &[], 0).unwrap();
    let api_id = state.apis.keys().next().unwrap().clone();
    let hash = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        VALUE.as_bytes(),
    ));
    state.api_keys.insert(
        "key1".into(),
        ApiKey {
            id: "key1".into(),
            name: Some("k".into()),
            description: None,
            customer_id: None,
            enabled: true,
            created_date: 0,
            last_updated_date: 0,
            stage_keys: Vec::new(),
            tags: BTreeMap::new(),
            value_hash: hash,
            nonce: Vec::new(),
            sealed_value: Vec::new(),
        },
    );
    state.usage_plans.insert(
        "plan1".into(),
        UsagePlan {
            id: "plan1".into(),
            name: "p".into(),
            description: None,
            api_stages: vec![ApiStage {
                api_id,
                stage: "prod".into(),
                throttle: BTreeMap::new(),
            }],
            throttle: None,
            quota: None,
            product_code: None,
            tags: BTreeMap::new(),
            key_ids: BTreeSet::from(["key1".to_string()]),
        },
    );
    state
}

struct Node {
    limits: Arc<Limits>,
    snapshot: compile::Snapshot,
}

fn node(state: &GatewayState) -> Node {
    let limits = Arc::new(Limits::new(Identity::new(1)));
    limits.observe(state, true);
    Node {
        limits,
        snapshot: compile::compile(state, true).unwrap(),
    }
}

impl Node {
    async fn call(&self, path: &str, key: Option<&str>) -> Result<(), GatewayError> {
        let routed = crate::route::resolve(&self.snapshot, None, path, "GET").unwrap();
        let mut headers = http::HeaderMap::new();
        if let Some(key) = key {
            headers.insert("x-api-key", key.parse().unwrap());
        }
        self.limits
            .admit(&routed, &headers, None)
            .await
            .map_err(|(error, _)| error)
    }
}

#[tokio::test]
async fn keys_are_checked_where_required() {
    let mut state = state();
    let node = node(&state);
    assert_eq!(node.call("/prod/open", None).await, Ok(()));
    assert_eq!(
        node.call("/prod/keyed", None).await,
        Err(GatewayError::Forbidden)
    );
    assert_eq!(
        node.call("/prod/keyed", Some("not-the-key-at-all-000000"))
            .await,
        Err(GatewayError::Forbidden)
    );
    assert_eq!(node.call("/prod/keyed", Some(VALUE)).await, Ok(()));
    // Disabled: refused at once.
    state.api_keys.get_mut("key1").unwrap().enabled = false;
    node.limits.observe(&state, true);
    assert_eq!(
        node.call("/prod/keyed", Some(VALUE)).await,
        Err(GatewayError::Forbidden)
    );
    // In no plan of this stage: refused.
    state.api_keys.get_mut("key1").unwrap().enabled = true;
    state.usage_plans.get_mut("plan1").unwrap().api_stages[0].stage = "other".into();
    node.limits.observe(&state, true);
    assert_eq!(
        node.call("/prod/keyed", Some(VALUE)).await,
        Err(GatewayError::Forbidden)
    );
}

#[tokio::test]
async fn the_tightest_throttle_wins() {
    let mut state = state();
    // Account: 30, just enough for what the tighter levels admit below (20 + 5 + 3 + 1), so
    // tokens not given back when a later level refuses would show. Stage method: burst 5.
    // Plan: burst 3. Plan method: burst 1.
    state.account.throttle = Some(ThrottleSettings {
        burst_limit: 30,
        rate_limit: 0.001,
    });
    let node = node(&state);
    let count = |results: Vec<Result<(), GatewayError>>| {
        results.iter().filter(|result| result.is_ok()).count()
    };
    let mut results = Vec::new();
    for _ in 0..20 {
        results.push(node.call("/prod/open", None).await);
    }
    assert_eq!(count(results), 20, "the account bucket holds 100");

    let api_id = state.apis.keys().next().unwrap().clone();
    let api = state.apis.get_mut(&api_id).unwrap();
    api.stages[0].method_settings.insert(
        "open/GET".into(),
        MethodSetting {
            throttling_burst_limit: 5,
            throttling_rate_limit: 0.001,
            ..MethodSetting::default()
        },
    );
    let plan = state.usage_plans.get_mut("plan1").unwrap();
    plan.throttle = Some(ThrottleSettings {
        burst_limit: 3,
        rate_limit: 0.001,
    });
    node.limits.observe(&state, true);
    let mut results = Vec::new();
    for _ in 0..20 {
        results.push(node.call("/prod/open", None).await);
    }
    assert_eq!(
        results.iter().filter(|result| result.is_ok()).count(),
        5,
        "the stage method's burst"
    );
    assert_eq!(results[19], Err(GatewayError::Throttled));
    let mut results = Vec::new();
    for _ in 0..20 {
        results.push(node.call("/prod/keyed", Some(VALUE)).await);
    }
    assert_eq!(
        results.iter().filter(|result| result.is_ok()).count(),
        3,
        "the plan's burst per key"
    );
    // A per-method override on the plan.
    let plan = state.usage_plans.get_mut("plan1").unwrap();
    plan.api_stages[0].throttle.insert(
        "/keyed/GET".into(),
        ThrottleSettings {
            burst_limit: 1,
            rate_limit: 0.001,
        },
    );
    plan.throttle = Some(ThrottleSettings {
        burst_limit: 50,
        rate_limit: 0.001,
    });
    node.limits.observe(&state, true);
    let mut results = Vec::new();
    for _ in 0..20 {
        results.push(node.call("/prod/keyed", Some(VALUE)).await);
    }
    assert_eq!(
        results.iter().filter(|result| result.is_ok()).count(),
        1,
        "the plan's per-method override"
    );
}

/// The ledger applied in process, as `dev` does: every submitted op batch is applied and the
/// new state observed.
struct InProcess {
    state: Mutex<GatewayState>,
    limits: Mutex<Option<Arc<Limits>>>,
    grants: std::sync::atomic::AtomicU64,
}

impl QuotaAuthority for InProcess {
    fn submit(&self, ops: Vec<QuotaOp>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let grants = ops
                .iter()
                .filter(|op| matches!(op, QuotaOp::Grant { .. }))
                .count() as u64;
            self.grants
                .fetch_add(grants, std::sync::atomic::Ordering::Relaxed);
            let mut state = self.state.lock().unwrap();
            let index = state.version + 1;
            let now_ms = now_ms();
            apply(&mut state, index, &Command::Quota { now_ms, ops });
            if let Some(limits) = self.limits.lock().unwrap().as_ref() {
                limits.observe(&state, false);
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn quotas_are_exact_and_usage_is_counted() {
    let mut state = state();
    state.usage_plans.get_mut("plan1").unwrap().quota = Some(QuotaSettings {
        limit: 25,
        offset: 0,
        period: QuotaPeriod::Day,
    });
    let node = node(&state);
    let authority = Arc::new(InProcess {
        state: Mutex::new(state),
        limits: Mutex::new(Some(node.limits.clone())),
        grants: Default::default(),
    });
    let reporter = tokio::spawn(node.limits.clone().run_quota_reporter(authority.clone()));
    let mut admitted = 0;
    let mut refused = 0;
    for _ in 0..40 {
        match node.call("/prod/keyed", Some(VALUE)).await {
            Ok(()) => admitted += 1,
            Err(GatewayError::QuotaExceeded) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((admitted, refused), (25, 15));
    // The reporter reports what was spent; the ledger's daily count matches.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let used = {
            let state = authority.state.lock().unwrap();
            let day = now_ms().div_euclid(86_400_000);
            state.quota.daily_usage("plan1", "key1", day, day)[0].1
        };
        if used == 25 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usage stuck at {used}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    reporter.abort();
}

/// A client that sends its next request only when the last one is answered sees no more demand
/// than the edge admits; grants must still grow to its pace (doubling while it waits) rather
/// than trickle at the first grant's size.
#[tokio::test]
async fn grants_grow_for_a_closed_loop_client() {
    let mut state = state();
    state.usage_plans.get_mut("plan1").unwrap().quota = Some(QuotaSettings {
        limit: 1_000_000,
        offset: 0,
        period: QuotaPeriod::Day,
    });
    let node = node(&state);
    let authority = Arc::new(InProcess {
        state: Mutex::new(state),
        limits: Mutex::new(Some(node.limits.clone())),
        grants: Default::default(),
    });
    let reporter = tokio::spawn(node.limits.clone().run_quota_reporter(authority.clone()));
    // Bounded, as every wait: a stalling quota path (grants trickling in at the first size,
    // half a second apart) would need minutes.
    let run = async {
        for _ in 0..5_000 {
            assert_eq!(node.call("/prod/keyed", Some(VALUE)).await, Ok(()));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("5,000 sequential requests stalled on quota grants");
    let grants = authority.grants.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        grants <= 20,
        "{grants} grants for 5,000 sequential requests: the grant size does not grow"
    );
    reporter.abort();
}

#[tokio::test]
async fn an_authorizer_names_the_key_when_the_key_source_is_authorizer() {
    let mut state = state();
    for api in state.apis.values_mut() {
        std::sync::Arc::make_mut(&mut api.definition)
            .api
            .api_key_source = portico_proto::ApiKeySource::Authorizer;
    }
    let node = node(&state);
    let admit = |header: Option<&str>, from_authorizer: Option<&'static str>| {
        let routed = crate::route::resolve(&node.snapshot, None, "/prod/keyed", "GET").unwrap();
        let mut headers = http::HeaderMap::new();
        if let Some(key) = header {
            headers.insert("x-api-key", key.parse().unwrap());
        }
        let limits = node.limits.clone();
        async move {
            limits
                .admit(&routed, &headers, from_authorizer)
                .await
                .map_err(|(error, _)| error)
        }
    };
    // The header is not a key source any more; the authorizer's usageIdentifierKey is.
    assert_eq!(admit(Some(VALUE), None).await, Err(GatewayError::Forbidden));
    assert_eq!(admit(None, Some(VALUE)).await, Ok(()));
    assert_eq!(
        admit(None, Some("an-unknown-key-value-000000")).await,
        Err(GatewayError::Forbidden)
    );
}
