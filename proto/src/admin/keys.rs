//! API keys, usage plans, usage plan keys and the account throttle as deterministic
//! transitions of [`GatewayState`].
//!
//! A key's value never reaches this module in the clear: the node that accepts the request
//! hashes it (the hash is how edges will recognise callers) and seals it (so an origin can
//! show it again for `includeValue`), and only those two forms travel in the op. That is why
//! the value's own rules (length) are checked by the proposer with [`validate_api_key_value`],
//! while everything that needs the replicated state (is the hash taken, does the plan exist,
//! does a key already reach this stage through another plan) is checked here, the same way on
//! every replica.
//!
//! Invariants kept by every op here, so the enforcement built on this state can rely on them:
//! - no two keys share a `value_hash`;
//! - every id in a plan's `key_ids` names an existing key;
//! - a key reaches one API stage through at most one plan.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{HTTP_METHODS, PatchOperation, bad, check_op, required_value, unescape_pointer};
use crate::cluster::Refusal;
use crate::model::{
    AccountSettings, ApiKey, ApiStage, GatewayState, QuotaPeriod, QuotaSettings, ThrottleSettings,
    UsagePlan,
};

/// AWS's limits on an API key's value (recorded texts, AWS-FACTS §1).
pub const API_KEY_VALUE_MIN: usize = 20;
pub const API_KEY_VALUE_MAX: usize = 128;
/// AWS's limit on an API key's name (recorded: LS extended `test_create_api_key_with_invalid_name`).
pub const API_KEY_NAME_MAX: usize = 1024;
/// The longest API key description accepted. AWS refuses long descriptions with a recorded
/// text but the limit itself was not recorded; 125 is what the console states.
pub const API_KEY_DESCRIPTION_MAX: usize = 125;

/// One row of ImportApiKeys: the key and the plans it joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedApiKey {
    pub key: ApiKey,
    pub usage_plan_ids: Vec<String>,
}

/// Checks a caller-chosen key value with AWS's texts (recorded, LS extended
/// `test_create_api_key_with_invalid_value`). Counted in characters, as AWS counts them.
pub fn validate_api_key_value(value: &str) -> Result<(), Refusal> {
    let length = value.chars().count();
    if length < API_KEY_VALUE_MIN {
        return Err(bad("API Key value should be at least 20 characters"));
    }
    if length > API_KEY_VALUE_MAX {
        return Err(bad("API Key value exceeds maximum size of 128 characters"));
    }
    Ok(())
}

pub(super) fn api_key_not_found() -> Refusal {
    Refusal::NotFound("Invalid API Key identifier specified".to_string())
}

pub(super) fn usage_plan_not_found() -> Refusal {
    Refusal::NotFound("Invalid Usage Plan ID specified".to_string())
}

fn check_key_fields(key: &ApiKey) -> Result<(), Refusal> {
    if key
        .name
        .as_ref()
        .is_some_and(|name| name.chars().count() > API_KEY_NAME_MAX)
    {
        return Err(bad("Invalid API Key name, can be at most 1024 characters."));
    }
    check_description(key.description.as_deref())?;
    if key.id.is_empty() || key.value_hash.is_empty() {
        return Err(bad("Invalid API Key: missing identifiers"));
    }
    Ok(())
}

fn check_description(description: Option<&str>) -> Result<(), Refusal> {
    if description.is_some_and(|text| text.chars().count() > API_KEY_DESCRIPTION_MAX) {
        return Err(bad("Invalid API Key description specified."));
    }
    Ok(())
}

/// `{restApiId}/{stageName}` naming an existing stage.
fn check_stage_key(state: &GatewayState, stage_key: &str) -> Result<(), Refusal> {
    let exists = stage_key
        .split_once('/')
        .and_then(|(api_id, stage_name)| Some((state.apis.get(api_id)?, stage_name)))
        .is_some_and(|(api, stage_name)| {
            api.stages
                .iter()
                .any(|stage| stage.stage_name == stage_name)
        });
    if exists {
        Ok(())
    } else {
        Err(bad(format!("Invalid stage key specified: {stage_key}")))
    }
}

fn hash_taken(state: &GatewayState, value_hash: &str) -> bool {
    state
        .api_keys
        .values()
        .any(|key| key.value_hash == value_hash)
}

fn duplicate_value() -> Refusal {
    Refusal::Conflict("An API key with the same value already exists".to_string())
}

pub(super) fn create_api_key(state: &mut GatewayState, key: &ApiKey) -> Result<(), Refusal> {
    let taken = hash_taken(state, &key.value_hash);
    insert_api_key(state, key, taken)
}

/// CreateApiKey's checks and insertion, with whether the value's hash is taken already
/// answered by the caller (a scan of every key for one key; a set for an import).
fn insert_api_key(state: &mut GatewayState, key: &ApiKey, hash_taken: bool) -> Result<(), Refusal> {
    check_key_fields(key)?;
    if state.api_keys.contains_key(&key.id) {
        return Err(Refusal::Conflict(format!(
            "API Key identifier {} already exists",
            key.id
        )));
    }
    if hash_taken {
        return Err(duplicate_value());
    }
    for stage_key in &key.stage_keys {
        check_stage_key(state, stage_key)?;
    }
    state.api_keys.insert(key.id.clone(), key.clone());
    Ok(())
}

/// The paths UpdateApiKey's `replace` accepts, in AWS's words (recorded, LS extended
/// `test_update_api_key_immutable_field`, including its double space).
fn invalid_key_path(operation: &PatchOperation) -> Refusal {
    let allowed = match operation.op.as_str() {
        "add" | "remove" => "[/stages]",
        _ => "[/description, /enabled, /name, /customerId]",
    };
    bad(format!(
        "Invalid patch path  '{}' specified for op '{}'. Must be one of: {allowed}",
        operation.path, operation.op
    ))
}

pub(super) fn update_api_key(
    state: &mut GatewayState,
    key_id: &str,
    patch: &[PatchOperation],
    now: i64,
) -> Result<(), Refusal> {
    let mut key = state
        .api_keys
        .get(key_id)
        .cloned()
        .ok_or_else(api_key_not_found)?;
    for operation in patch {
        check_op(operation)?;
        match (operation.op.as_str(), operation.path.as_str()) {
            // AWS takes anything but `true` as false (recorded: LS extended
            // `test_update_api_key_invalid_enabled_type`).
            ("replace", "/enabled") => {
                key.enabled = operation
                    .value
                    .as_deref()
                    .is_some_and(|value| value.eq_ignore_ascii_case("true"));
            }
            ("replace", "/name") => {
                let name = operation.value.clone().filter(|name| !name.is_empty());
                if name
                    .as_ref()
                    .is_some_and(|name| name.chars().count() > API_KEY_NAME_MAX)
                {
                    return Err(bad("Invalid API Key name, can be at most 1024 characters."));
                }
                key.name = name;
            }
            ("replace", "/description") => {
                let description = operation.value.clone().filter(|text| !text.is_empty());
                check_description(description.as_deref())?;
                key.description = description;
            }
            ("replace", "/customerId") => {
                key.customer_id = operation.value.clone().filter(|text| !text.is_empty());
            }
            ("add", "/stages") => {
                let stage_key = required_value(operation)?;
                check_stage_key(state, stage_key)?;
                if !key.stage_keys.iter().any(|known| known == stage_key) {
                    key.stage_keys.push(stage_key.to_string());
                }
            }
            ("remove", "/stages") => {
                let stage_key = required_value(operation)?;
                key.stage_keys.retain(|known| known != stage_key);
            }
            _ => return Err(invalid_key_path(operation)),
        }
    }
    key.last_updated_date = now;
    state.api_keys.insert(key_id.to_string(), key);
    Ok(())
}

pub(super) fn delete_api_key(state: &mut GatewayState, key_id: &str) -> Result<(), Refusal> {
    state
        .api_keys
        .remove(key_id)
        .ok_or_else(api_key_not_found)?;
    for plan in state.usage_plans.values_mut() {
        plan.key_ids.remove(key_id);
    }
    Ok(())
}

/// All rows or none: every row is checked against the state and against the rows before it.
/// The hashes already taken are collected once into a set (checking each row by scanning every
/// key made an import of n rows into a state of m keys cost n x m comparisons: 100,000 keys in
/// batches of 10,000 took minutes). A refused import removes exactly what it added: its keys
/// are new (their ids were free) and it only added them to plans.
pub(super) fn import_api_keys(
    state: &mut GatewayState,
    keys: &[ImportedApiKey],
) -> Result<(), Refusal> {
    let mut hashes: BTreeSet<String> = state
        .api_keys
        .values()
        .map(|key| key.value_hash.clone())
        .collect();
    let mut added: Vec<&str> = Vec::with_capacity(keys.len());
    let outcome = keys.iter().try_for_each(|imported| {
        let taken = hashes.contains(&imported.key.value_hash);
        insert_api_key(state, &imported.key, taken)?;
        added.push(&imported.key.id);
        hashes.insert(imported.key.value_hash.clone());
        imported
            .usage_plan_ids
            .iter()
            .try_for_each(|plan_id| create_usage_plan_key(state, plan_id, &imported.key.id))
    });
    if outcome.is_err() {
        for key_id in added {
            state.api_keys.remove(key_id);
            for plan in state.usage_plans.values_mut() {
                plan.key_ids.remove(key_id);
            }
        }
    }
    outcome
}

// ---------------------------------------------------------------------------------------------
// Usage plans

/// AWS's text for an API stage that does not exist or is not in the plan (recorded, LS common
/// `test_usage_plan_crud` `update-wrong-api-stages-wrong-api`).
fn invalid_api_stage(api_id: &str, stage: &str, plan_id: &str) -> String {
    format!("Invalid API Stage {{api: {api_id}, stage: {stage}}} specified for usageplan {plan_id}")
}

fn stage_exists(state: &GatewayState, api_id: &str, stage: &str) -> bool {
    state
        .apis
        .get(api_id)
        .is_some_and(|api| api.stages.iter().any(|known| known.stage_name == stage))
}

fn check_throttle(throttle: &ThrottleSettings, at: &str) -> Result<(), Refusal> {
    if !throttle.rate_limit.is_finite() || throttle.rate_limit < 0.0 {
        return Err(bad(format!(
            "Invalid {at}rateLimit: the rate must be a non-negative number"
        )));
    }
    if throttle.burst_limit < 0 {
        return Err(bad(format!(
            "Invalid {at}burstLimit: the burst must be a non-negative integer"
        )));
    }
    Ok(())
}

fn check_quota(quota: &QuotaSettings) -> Result<(), Refusal> {
    if quota.limit < 0 {
        return Err(bad(
            "Invalid quota limit: the limit must be a non-negative integer",
        ));
    }
    // The offset is days into the period for WEEK (0-6) and MONTH (0-27); a DAY has none.
    let offset_max = match quota.period {
        QuotaPeriod::Day => 0,
        QuotaPeriod::Week => 6,
        QuotaPeriod::Month => 27,
    };
    if !(0..=offset_max).contains(&quota.offset) {
        return Err(bad(format!(
            "Invalid quota offset {}: must be between 0 and {offset_max} for period {}",
            quota.offset,
            period_name(quota.period)
        )));
    }
    Ok(())
}

fn period_name(period: QuotaPeriod) -> &'static str {
    match period {
        QuotaPeriod::Day => "DAY",
        QuotaPeriod::Week => "WEEK",
        QuotaPeriod::Month => "MONTH",
    }
}

/// A per-method throttle key: `/{resource path}/{VERB}` (`/pets/GET`, `//GET` for the root,
/// `/*/*` for every method).
pub fn check_method_throttle_key(key: &str) -> Result<(), Refusal> {
    let valid = key.starts_with('/')
        && key.rsplit_once('/').is_some_and(|(path, verb)| {
            (HTTP_METHODS.contains(&verb) || verb == "*")
                && (path.is_empty() || path.starts_with('/'))
        });
    if valid {
        Ok(())
    } else {
        Err(bad(format!(
            "Invalid method throttle key {key}: expected /{{resourcePath}}/{{httpMethod}}"
        )))
    }
}

fn check_api_stage(api_stage: &ApiStage) -> Result<(), Refusal> {
    for (method, throttle) in &api_stage.throttle {
        check_method_throttle_key(method)?;
        check_throttle(throttle, &format!("throttle for {method}: "))?;
    }
    Ok(())
}

fn check_plan(plan: &UsagePlan) -> Result<(), Refusal> {
    if plan.id.is_empty() {
        return Err(bad("Invalid usage plan: missing identifier"));
    }
    if plan.name.is_empty() {
        return Err(bad("Invalid usage plan name specified"));
    }
    if let Some(throttle) = &plan.throttle {
        check_throttle(throttle, "")?;
    }
    if let Some(quota) = &plan.quota {
        check_quota(quota)?;
    }
    let mut seen = BTreeSet::new();
    for api_stage in &plan.api_stages {
        if !seen.insert((&api_stage.api_id, &api_stage.stage)) {
            return Err(bad(format!(
                "Duplicate API Stage {}:{} in usage plan",
                api_stage.api_id, api_stage.stage
            )));
        }
        check_api_stage(api_stage)?;
    }
    Ok(())
}

/// Refuses a plan whose keys would reach one of its stages through another plan too.
fn check_key_stage_exclusive(
    state: &GatewayState,
    plan: &UsagePlan,
    key_id: &str,
) -> Result<(), Refusal> {
    for other in state.usage_plans.values() {
        if other.id == plan.id || !other.key_ids.contains(key_id) {
            continue;
        }
        for api_stage in &plan.api_stages {
            if other
                .api_stages
                .iter()
                .any(|theirs| theirs.api_id == api_stage.api_id && theirs.stage == api_stage.stage)
            {
                return Err(Refusal::Conflict(format!(
                    "Usage Plan {} cannot be added because API Key {key_id} cannot reference multiple Usage Plans with the same API Stage: {}:{}",
                    plan.id, api_stage.api_id, api_stage.stage
                )));
            }
        }
    }
    Ok(())
}

pub(super) fn create_usage_plan(state: &mut GatewayState, plan: &UsagePlan) -> Result<(), Refusal> {
    check_plan(plan)?;
    if state.usage_plans.contains_key(&plan.id) {
        return Err(Refusal::Conflict(format!(
            "Usage Plan identifier {} already exists",
            plan.id
        )));
    }
    for api_stage in &plan.api_stages {
        if !stage_exists(state, &api_stage.api_id, &api_stage.stage) {
            return Err(bad(invalid_api_stage(
                &api_stage.api_id,
                &api_stage.stage,
                &plan.id,
            )));
        }
    }
    if !plan.key_ids.is_empty() {
        return Err(bad(
            "A new usage plan has no keys: add them with CreateUsagePlanKey",
        ));
    }
    state.usage_plans.insert(plan.id.clone(), plan.clone());
    Ok(())
}

fn number<T: std::str::FromStr>(operation: &PatchOperation) -> Result<T, Refusal> {
    let value = required_value(operation)?;
    value.trim().parse::<T>().map_err(|_| {
        bad(format!(
            "Invalid value '{value}' for path {}",
            operation.path
        ))
    })
}

fn parse_period(value: &str) -> Result<QuotaPeriod, Refusal> {
    match value {
        "DAY" => Ok(QuotaPeriod::Day),
        "WEEK" => Ok(QuotaPeriod::Week),
        "MONTH" => Ok(QuotaPeriod::Month),
        other => Err(bad(format!(
            "1 validation error detected: Value '{other}' at 'quota.period' failed to satisfy constraint: Member must satisfy enum value set: [DAY, WEEK, MONTH]"
        ))),
    }
}

/// `{apiId}:{stage}` as `/apiStages` patch values carry it.
fn parse_api_stage_value(operation: &PatchOperation) -> Result<(String, String), Refusal> {
    operation
        .value
        .as_deref()
        .and_then(|value| value.split_once(':'))
        .filter(|(api_id, stage)| !api_id.is_empty() && !stage.is_empty())
        .map(|(api_id, stage)| (api_id.to_string(), stage.to_string()))
        .ok_or_else(|| bad("Invalid API Stage specified"))
}

/// Where a `/throttle/...` patch lands: a plan's own throttle or one method override.
fn set_throttle_member(
    throttle: &mut Option<ThrottleSettings>,
    member: &str,
    operation: &PatchOperation,
) -> Result<(), Refusal> {
    let current = throttle.get_or_insert(ThrottleSettings {
        burst_limit: 0,
        rate_limit: 0.0,
    });
    match member {
        "rateLimit" => current.rate_limit = number::<f64>(operation)?,
        "burstLimit" => current.burst_limit = number::<i32>(operation)?,
        _ => return Err(bad(format!("Invalid patch path {}", operation.path))),
    }
    Ok(())
}

fn patch_method_throttle(
    plan: &mut UsagePlan,
    rest: &str,
    operation: &PatchOperation,
) -> Result<(), Refusal> {
    let plan_id = plan.id.clone();
    // rest = `{apiId}:{stage}/throttle[/{resourcePath...}/{VERB}[/member]]`
    let (stage_ref, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let (api_id, stage) = stage_ref
        .split_once(':')
        .ok_or_else(|| bad("Invalid API Stage specified"))?;
    let api_stage = plan
        .api_stages
        .iter_mut()
        .find(|known| known.api_id == api_id && known.stage == stage)
        .ok_or_else(|| Refusal::NotFound(invalid_api_stage(api_id, stage, &plan_id)))?;
    let Some(throttle_path) = tail.strip_prefix("throttle") else {
        return Err(bad(format!("Invalid patch path {}", operation.path)));
    };
    if throttle_path.is_empty() {
        if operation.op == "remove" {
            api_stage.throttle.clear();
            return Ok(());
        }
        return Err(bad(format!(
            "Invalid patch operation specified for path {}",
            operation.path
        )));
    }
    let segments: Vec<String> = throttle_path
        .trim_start_matches('/')
        .split('/')
        .map(unescape_pointer)
        .collect();
    let (member, method_segments) = match segments.last().map(String::as_str) {
        Some("rateLimit" | "burstLimit") => (
            segments.last().cloned(),
            &segments[..segments.len().saturating_sub(1)],
        ),
        _ => (None, &segments[..]),
    };
    let Some((verb, path_segments)) = method_segments.split_last() else {
        return Err(bad(format!("Invalid patch path {}", operation.path)));
    };
    // `~1pets` and `pets` both name `/pets`; `~1` alone is the root, keyed `//GET`.
    let resource_path = path_segments.join("/");
    let resource_path = if resource_path.starts_with('/') {
        resource_path
    } else {
        format!("/{resource_path}")
    };
    let key = format!("{resource_path}/{verb}");
    check_method_throttle_key(&key)?;
    match (operation.op.as_str(), member) {
        ("remove", _) => {
            api_stage.throttle.remove(&key);
        }
        ("add" | "replace", Some(member)) => {
            let mut current = api_stage.throttle.get(&key).copied();
            set_throttle_member(&mut current, &member, operation)?;
            if let Some(current) = current {
                check_throttle(&current, &format!("throttle for {key}: "))?;
                api_stage.throttle.insert(key, current);
            }
        }
        _ => {
            return Err(bad(format!(
                "Invalid patch operation specified for path {}",
                operation.path
            )));
        }
    }
    Ok(())
}

pub(super) fn update_usage_plan(
    state: &mut GatewayState,
    plan_id: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    let mut plan = state
        .usage_plans
        .get(plan_id)
        .cloned()
        .ok_or_else(usage_plan_not_found)?;
    for operation in patch {
        check_op(operation)?;
        let op = operation.op.as_str();
        let path = operation.path.as_str();
        if let Some(rest) = path.strip_prefix("/apiStages/") {
            patch_method_throttle(&mut plan, rest, operation)?;
            continue;
        }
        match (op, path) {
            ("replace", "/name") => {
                let name = required_value(operation)?;
                if name.is_empty() {
                    return Err(bad("Invalid usage plan name specified"));
                }
                plan.name = name.to_string();
            }
            ("replace" | "add", "/description") => {
                plan.description = operation.value.clone().filter(|text| !text.is_empty());
            }
            ("remove", "/description") => plan.description = None,
            ("replace" | "add", "/productCode") => {
                plan.product_code = operation.value.clone().filter(|text| !text.is_empty());
            }
            ("remove", "/productCode") => plan.product_code = None,
            ("replace", "/throttle/rateLimit") => {
                set_throttle_member(&mut plan.throttle, "rateLimit", operation)?;
            }
            ("replace", "/throttle/burstLimit") => {
                set_throttle_member(&mut plan.throttle, "burstLimit", operation)?;
            }
            ("remove", "/throttle") => plan.throttle = None,
            ("replace", "/quota/limit" | "/quota/period" | "/quota/offset") => {
                let mut quota = plan.quota.unwrap_or(QuotaSettings {
                    limit: 0,
                    offset: 0,
                    period: QuotaPeriod::Day,
                });
                match path {
                    "/quota/limit" => quota.limit = number::<i32>(operation)?,
                    "/quota/offset" => quota.offset = number::<i32>(operation)?,
                    _ => quota.period = parse_period(required_value(operation)?)?,
                }
                plan.quota = Some(quota);
            }
            ("remove", "/quota") => plan.quota = None,
            ("add", "/apiStages") => {
                let (api_id, stage) = parse_api_stage_value(operation)?;
                if !stage_exists(state, &api_id, &stage) {
                    return Err(Refusal::NotFound(invalid_api_stage(
                        &api_id, &stage, plan_id,
                    )));
                }
                if !plan
                    .api_stages
                    .iter()
                    .any(|known| known.api_id == api_id && known.stage == stage)
                {
                    plan.api_stages.push(ApiStage {
                        api_id,
                        stage,
                        throttle: Default::default(),
                    });
                }
            }
            ("remove", "/apiStages") => {
                let (api_id, stage) = parse_api_stage_value(operation)?;
                let before = plan.api_stages.len();
                plan.api_stages
                    .retain(|known| !(known.api_id == api_id && known.stage == stage));
                if plan.api_stages.len() == before {
                    return Err(Refusal::NotFound(invalid_api_stage(
                        &api_id, &stage, plan_id,
                    )));
                }
            }
            _ => {
                return Err(bad(format!(
                    "Invalid patch path '{path}' specified for op '{op}'"
                )));
            }
        }
    }
    check_plan(&plan)?;
    for key_id in &plan.key_ids {
        check_key_stage_exclusive(state, &plan, key_id)?;
    }
    state.usage_plans.insert(plan_id.to_string(), plan);
    Ok(())
}

pub(super) fn delete_usage_plan(state: &mut GatewayState, plan_id: &str) -> Result<(), Refusal> {
    state
        .usage_plans
        .remove(plan_id)
        .map(|_| ())
        .ok_or_else(usage_plan_not_found)
}

pub(super) fn create_usage_plan_key(
    state: &mut GatewayState,
    plan_id: &str,
    key_id: &str,
) -> Result<(), Refusal> {
    let plan = state
        .usage_plans
        .get(plan_id)
        .ok_or_else(usage_plan_not_found)?;
    if !state.api_keys.contains_key(key_id) {
        return Err(api_key_not_found());
    }
    if plan.key_ids.contains(key_id) {
        return Err(Refusal::Conflict(format!(
            "API Key {key_id} is already in usage plan {plan_id}"
        )));
    }
    check_key_stage_exclusive(state, plan, key_id)?;
    if let Some(plan) = state.usage_plans.get_mut(plan_id) {
        plan.key_ids.insert(key_id.to_string());
    }
    Ok(())
}

pub(super) fn delete_usage_plan_key(
    state: &mut GatewayState,
    plan_id: &str,
    key_id: &str,
) -> Result<(), Refusal> {
    let plan = state
        .usage_plans
        .get_mut(plan_id)
        .ok_or_else(usage_plan_not_found)?;
    if plan.key_ids.remove(key_id) {
        Ok(())
    } else {
        Err(api_key_not_found())
    }
}

// ---------------------------------------------------------------------------------------------
// Account

/// UpdateAccount. Changing the account throttle is a Portico extension: AWS lets only its
/// support change it (see ARCHITECTURE.md, deviations).
pub(super) fn update_account(
    state: &mut GatewayState,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    let mut account = state.account.clone();
    for operation in patch {
        check_op(operation)?;
        match (operation.op.as_str(), operation.path.as_str()) {
            ("replace", "/throttle/rateLimit") => {
                account
                    .throttle
                    .get_or_insert(AccountSettings::AWS_DEFAULT_THROTTLE)
                    .rate_limit = number::<f64>(operation)?;
            }
            ("replace", "/throttle/burstLimit") => {
                account
                    .throttle
                    .get_or_insert(AccountSettings::AWS_DEFAULT_THROTTLE)
                    .burst_limit = number::<i32>(operation)?;
            }
            ("remove", "/throttle") => account.throttle = None,
            ("replace" | "add", "/cloudwatchRoleArn") => {
                account.cloudwatch_role_arn =
                    operation.value.clone().filter(|text| !text.is_empty());
            }
            ("remove", "/cloudwatchRoleArn") => account.cloudwatch_role_arn = None,
            (op, path) => {
                return Err(bad(format!(
                    "Invalid patch path '{path}' specified for op '{op}'. Must be one of: [/cloudwatchRoleArn, /throttle, /throttle/rateLimit, /throttle/burstLimit]"
                )));
            }
        }
    }
    if let Some(throttle) = &account.throttle {
        check_throttle(throttle, "account throttle ")?;
    }
    state.account = account;
    Ok(())
}
#[cfg(test)]
mod tests;
