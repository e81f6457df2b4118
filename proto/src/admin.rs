//! Every management-API write as a deterministic transition of [`GatewayState`].
//!
//! The management API (boto3, the AWS CLI) edits APIs one small step at a time: create a
//! resource, put a method, patch a stage. Each step is an [`AdminOp`] that the origin proposes
//! through Raft inside [`crate::cluster::Command::Admin`], so every origin and edge applies the
//! same steps in the same order with the same [`apply`]. That is why this module is pure: no
//! clock, no randomness, no I/O. The proposer chooses ids and timestamps and puts them in the op.
//!
//! Validation that depends on the state (does the parent exist, is the name taken, does the
//! stage's deployment exist) happens here, because only the replicated state can answer it
//! consistently. Refusals carry AWS's own error texts where they were recorded from real AWS
//! (see `AWS-FACTS.md` §1), so the node can hand them to clients unchanged.
//!
//! A refused op leaves the state exactly as it was: ops that edit an API's definition work on a
//! copy of that one definition and keep it only on success; the others check everything before
//! they change anything.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cluster::Refusal;
use crate::model::{
    ApiDefinition, ApiKey, ApiKeySource, ApiState, Deployment, GatewayState,
    INTEGRATION_TIMEOUT_MS_MAX, INTEGRATION_TIMEOUT_MS_MIN, Integration, IntegrationResponse,
    IntegrationType, Method, MethodResponse, MethodSetting, Resource, RestApi, Stage, StringMap,
    UsagePlan,
};

mod auth;
mod keys;
mod methods;
pub mod quotas;

pub use auth::{
    AUTHORIZER_TTL_DEFAULT_SECONDS, AUTHORIZER_TTL_MAX_SECONDS, AUTHORIZER_TYPES,
    DEFAULT_GATEWAY_RESPONSE_TEMPLATE, GATEWAY_RESPONSE_TYPES, authorizer_generation_key,
    check_authorizer, check_response_type, default_gateway_response, default_status_code,
    effective_gateway_response, effective_gateway_responses,
};
pub use keys::{
    API_KEY_DESCRIPTION_MAX, API_KEY_NAME_MAX, API_KEY_VALUE_MAX, API_KEY_VALUE_MIN,
    ImportedApiKey, check_method_throttle_key, validate_api_key_value,
};

/// One management write. Appending variants is wire-compatible; reordering is not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminOp {
    /// `api.id`, `api.root_resource_id` and `api.created_date` are chosen by the proposer; the
    /// root resource `/` is created with `api.root_resource_id`.
    CreateRestApi {
        api: RestApi,
    },
    UpdateRestApi {
        api_id: String,
        patch: Vec<PatchOperation>,
    },
    DeleteRestApi {
        api_id: String,
    },
    CreateResource {
        api_id: String,
        parent_id: String,
        path_part: String,
        resource_id: String,
    },
    /// Removes the resource and its descendants; the root cannot be deleted.
    DeleteResource {
        api_id: String,
        resource_id: String,
    },
    /// Creates the method or replaces an existing one entirely.
    PutMethod {
        api_id: String,
        resource_id: String,
        method: Method,
    },
    DeleteMethod {
        api_id: String,
        resource_id: String,
        http_method: String,
    },
    /// An integration without `cache_namespace` gets the resource id, as AWS does.
    PutIntegration {
        api_id: String,
        resource_id: String,
        http_method: String,
        integration: Integration,
    },
    DeleteIntegration {
        api_id: String,
        resource_id: String,
        http_method: String,
    },
    PutMethodResponse {
        api_id: String,
        resource_id: String,
        http_method: String,
        response: MethodResponse,
    },
    PutIntegrationResponse {
        api_id: String,
        resource_id: String,
        http_method: String,
        response: IntegrationResponse,
    },
    /// Freezes the working definition. With a stage: creates it, or points an existing one at
    /// the new deployment (its variables are updated with the given ones).
    CreateDeployment {
        api_id: String,
        deployment_id: String,
        description: Option<String>,
        created_date: i64,
        stage: Option<NewStage>,
    },
    DeleteDeployment {
        api_id: String,
        deployment_id: String,
    },
    CreateStage {
        api_id: String,
        stage: Stage,
    },
    UpdateStage {
        api_id: String,
        stage_name: String,
        patch: Vec<PatchOperation>,
        now: i64,
    },
    DeleteStage {
        api_id: String,
        stage_name: String,
    },
    /// PutRestApi on an existing API (`mode=merge|overwrite`).
    PutRestApi {
        api_id: String,
        definition: ApiDefinition,
        mode: PutMode,
    },
    /// ImportRestApi: a new API from a whole definition (ids chosen by the proposer; the root
    /// resource's id must be `definition.api.root_resource_id`).
    ImportRestApi {
        definition: ApiDefinition,
    },
    /// The key's value is already hashed and sealed by the proposer (see [`keys`]).
    CreateApiKey {
        key: ApiKey,
    },
    UpdateApiKey {
        key_id: String,
        patch: Vec<PatchOperation>,
        now: i64,
    },
    /// Also removes the key from every usage plan.
    DeleteApiKey {
        key_id: String,
    },
    /// ImportApiKeys: every row or none.
    ImportApiKeys {
        keys: Vec<ImportedApiKey>,
    },
    /// `plan.key_ids` must be empty: keys join with CreateUsagePlanKey.
    CreateUsagePlan {
        plan: UsagePlan,
    },
    UpdateUsagePlan {
        plan_id: String,
        patch: Vec<PatchOperation>,
    },
    DeleteUsagePlan {
        plan_id: String,
    },
    CreateUsagePlanKey {
        plan_id: String,
        key_id: String,
    },
    DeleteUsagePlanKey {
        plan_id: String,
        key_id: String,
    },
    UpdateAccount {
        patch: Vec<PatchOperation>,
    },
    /// FlushStageCache: bumps the stage's cache generation, which every cache tier puts in its
    /// keys, so every entry of the stage is orphaned at once on every node that applies it (old
    /// entries age out by TTL or capacity). Generations are never reset, not even when the
    /// stage is deleted, so a stage created again under the same name cannot meet old entries.
    FlushStageCache {
        api_id: String,
        stage_name: String,
    },
    // ---- Authorization (issue 12), appended ----
    /// CreateAuthorizer; `authorizer.id` is chosen by the proposer.
    CreateAuthorizer {
        api_id: String,
        authorizer: crate::model::Authorizer,
    },
    UpdateAuthorizer {
        api_id: String,
        authorizer_id: String,
        patch: Vec<PatchOperation>,
    },
    /// Refused while a method of the API's working definition names the authorizer.
    DeleteAuthorizer {
        api_id: String,
        authorizer_id: String,
    },
    UpdateMethod {
        api_id: String,
        resource_id: String,
        http_method: String,
        patch: Vec<PatchOperation>,
    },
    /// PutGatewayResponse: members left out keep the type's default.
    PutGatewayResponse {
        api_id: String,
        response: crate::model::GatewayResponse,
    },
    UpdateGatewayResponse {
        api_id: String,
        response_type: String,
        patch: Vec<PatchOperation>,
    },
    /// Back to the type's default.
    DeleteGatewayResponse {
        api_id: String,
        response_type: String,
    },
    /// FlushStageAuthorizersCache: bumps `GatewayState.authorizer_generations` for the stage,
    /// which the data plane puts in its authorizer-cache keys (as FlushStageCache does for
    /// responses). Never reset.
    FlushStageAuthorizersCache {
        api_id: String,
        stage_name: String,
    },
    // ---- The rest of the REST control plane (issue 15), appended ----
    DeleteMethodResponse {
        api_id: String,
        resource_id: String,
        http_method: String,
        status_code: String,
    },
    DeleteIntegrationResponse {
        api_id: String,
        resource_id: String,
        http_method: String,
        status_code: String,
    },
    UpdateIntegration {
        api_id: String,
        resource_id: String,
        http_method: String,
        patch: Vec<PatchOperation>,
    },
    UpdateMethodResponse {
        api_id: String,
        resource_id: String,
        http_method: String,
        status_code: String,
        patch: Vec<PatchOperation>,
    },
    UpdateIntegrationResponse {
        api_id: String,
        resource_id: String,
        http_method: String,
        status_code: String,
        patch: Vec<PatchOperation>,
    },
    /// Renames (`/pathPart`) or moves (`/parentId`) a resource with its descendants.
    UpdateResource {
        api_id: String,
        resource_id: String,
        patch: Vec<PatchOperation>,
    },
    /// Patches a deployment's description (its frozen definition never changes).
    UpdateDeployment {
        api_id: String,
        deployment_id: String,
        patch: Vec<PatchOperation>,
    },
}

/// The stage a deployment creates or moves (CreateDeployment's `stageName`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewStage {
    pub stage_name: String,
    pub description: Option<String>,
    pub variables: StringMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutMode {
    Overwrite,
    Merge,
}

/// One JSON Patch operation as the AWS API carries it: values are strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchOperation {
    pub op: String,
    pub path: String,
    pub value: Option<String>,
    pub from: Option<String>,
}

impl PatchOperation {
    pub fn new(op: &str, path: &str, value: Option<&str>) -> Self {
        PatchOperation {
            op: op.to_string(),
            path: path.to_string(),
            value: value.map(str::to_string),
            from: None,
        }
    }
}

/// The verbs PutMethod accepts, in the order AWS lists them.
pub const HTTP_METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "ANY",
];
pub const AUTHORIZATION_TYPES: [&str; 4] = ["NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS"];
pub const CACHE_CLUSTER_SIZES: [&str; 8] =
    ["0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237"];
pub const UNAUTHORIZED_CACHE_CONTROL_STRATEGIES: [&str; 3] = [
    "FAIL_WITH_403",
    "SUCCEED_WITH_RESPONSE_HEADER",
    "SUCCEED_WITHOUT_RESPONSE_HEADER",
];
pub const LOGGING_LEVELS: [&str; 3] = ["OFF", "ERROR", "INFO"];
pub const ENDPOINT_TYPES: [&str; 3] = ["REGIONAL", "EDGE", "PRIVATE"];
pub const MINIMUM_COMPRESSION_SIZE_MAX: i32 = 10_485_760;
pub const CACHE_TTL_SECONDS_MAX: i32 = 3600;
/// Models every new REST API has in AWS; method request models may name them.
pub const BUILTIN_MODELS: [&str; 2] = ["Empty", "Error"];

const PATCH_OPS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];

/// AWS's text for an unknown UpdateStage path, verbatim (recorded, LS common
/// `test_create_update_stages`), including its missing separators.
const STAGE_PATHS: &str = "[/deploymentId, /description, /cacheClusterEnabled, /cacheClusterSize, /clientCertificateId, /accessLogSettings, /accessLogSettings/destinationArn, /accessLogSettings/format, /{resourcePath}/{httpMethod}/metrics/enabled, /{resourcePath}/{httpMethod}/logging/dataTrace, /{resourcePath}/{httpMethod}/logging/loglevel, /{resourcePath}/{httpMethod}/throttling/burstLimit/{resourcePath}/{httpMethod}/throttling/rateLimit/{resourcePath}/{httpMethod}/caching/ttlInSeconds, /{resourcePath}/{httpMethod}/caching/enabled, /{resourcePath}/{httpMethod}/caching/dataEncrypted, /{resourcePath}/{httpMethod}/caching/requireAuthorizationForCacheControl, /{resourcePath}/{httpMethod}/caching/unauthorizedCacheControlHeaderStrategy, /*/*/metrics/enabled, /*/*/logging/dataTrace, /*/*/logging/loglevel, /*/*/throttling/burstLimit /*/*/throttling/rateLimit /*/*/caching/ttlInSeconds, /*/*/caching/enabled, /*/*/caching/dataEncrypted, /*/*/caching/requireAuthorizationForCacheControl, /*/*/caching/unauthorizedCacheControlHeaderStrategy, /variables/{variable_name}, /tracingEnabled]";

const PATH_PART_RULE: &str = "Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end and an optional plus sign before the closing brace.";

fn api_not_found(api_id: &str) -> Refusal {
    Refusal::NotFound(format!("Invalid API identifier specified {api_id}"))
}

fn resource_not_found() -> Refusal {
    Refusal::NotFound("Invalid Resource identifier specified".to_string())
}

fn method_not_found() -> Refusal {
    Refusal::NotFound("Invalid Method identifier specified".to_string())
}

fn integration_not_found() -> Refusal {
    Refusal::NotFound("Invalid Integration identifier specified".to_string())
}

fn stage_not_found(stage_name: &str) -> Refusal {
    Refusal::NotFound(format!("Invalid Stage identifier specified {stage_name}"))
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::BadRequest(message.into())
}

/// Applies one management write. On `Err` the state is unchanged.
pub fn apply(state: &mut GatewayState, op: &AdminOp) -> Result<(), Refusal> {
    match op {
        AdminOp::CreateRestApi { api } => create_rest_api(state, api),
        AdminOp::UpdateRestApi { api_id, patch } => {
            edit_definition(state, api_id, api_not_found, |definition| {
                update_rest_api(&mut definition.api, patch)?;
                quotas::check_rest_api(&definition.api)
            })
        }
        AdminOp::DeleteRestApi { api_id } => state
            .apis
            .remove(api_id)
            .map(|_| ())
            .ok_or_else(|| api_not_found(api_id)),
        AdminOp::CreateResource {
            api_id,
            parent_id,
            path_part,
            resource_id,
        } => edit_definition(state, api_id, api_not_found, |definition| {
            create_resource(definition, parent_id, path_part, resource_id)
        }),
        AdminOp::DeleteResource {
            api_id,
            resource_id,
        } => edit_definition(state, api_id, api_not_found, |definition| {
            delete_resource(definition, resource_id)
        }),
        // AWS answers an unknown API under a resource path with the resource's error
        // (recorded: LS api `test_put_method_validation` `wrong-api`).
        AdminOp::PutMethod {
            api_id,
            resource_id,
            method,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| put_method(definition, resource_id, method),
        ),
        AdminOp::DeleteMethod {
            api_id,
            resource_id,
            http_method,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                let resource = resource_mut(definition, resource_id)?;
                resource
                    .resource_methods
                    .remove(&http_method.to_ascii_uppercase())
                    .map(|_| ())
                    .ok_or_else(method_not_found)
            },
        ),
        AdminOp::PutIntegration {
            api_id,
            resource_id,
            http_method,
            integration,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                check_integration(integration)?;
                let method = method_mut(definition, resource_id, http_method)?;
                let mut integration = integration.clone();
                if integration.cache_namespace.is_none() {
                    integration.cache_namespace = Some(resource_id.clone());
                }
                method.method_integration = Some(integration);
                Ok(())
            },
        ),
        AdminOp::DeleteIntegration {
            api_id,
            resource_id,
            http_method,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                let method = method_mut(definition, resource_id, http_method)?;
                method
                    .method_integration
                    .take()
                    .map(|_| ())
                    .ok_or_else(integration_not_found)
            },
        ),
        AdminOp::PutMethodResponse {
            api_id,
            resource_id,
            http_method,
            response,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                check_status_code(&response.status_code)?;
                let method = method_mut(definition, resource_id, http_method)?;
                method
                    .method_responses
                    .insert(response.status_code.clone(), response.clone());
                Ok(())
            },
        ),
        AdminOp::PutIntegrationResponse {
            api_id,
            resource_id,
            http_method,
            response,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                check_status_code(&response.status_code)?;
                let method = method_mut(definition, resource_id, http_method)?;
                let integration = method
                    .method_integration
                    .as_mut()
                    .ok_or_else(integration_not_found)?;
                integration
                    .integration_responses
                    .insert(response.status_code.clone(), response.clone());
                Ok(())
            },
        ),
        AdminOp::CreateDeployment {
            api_id,
            deployment_id,
            description,
            created_date,
            stage,
        } => create_deployment(
            state,
            api_id,
            deployment_id,
            description,
            *created_date,
            stage.as_ref(),
        ),
        AdminOp::DeleteDeployment {
            api_id,
            deployment_id,
        } => {
            let api = api_mut(state, api_id)?;
            let position = api
                .deployments
                .iter()
                .position(|deployment| &deployment.id == deployment_id)
                .ok_or_else(|| {
                    Refusal::NotFound(format!(
                        "Invalid Deployment identifier specified {deployment_id}"
                    ))
                })?;
            if api
                .stages
                .iter()
                .any(|stage| &stage.deployment_id == deployment_id)
            {
                return Err(bad(
                    "Active stages pointing to this deployment must be moved or deleted",
                ));
            }
            api.deployments.remove(position);
            Ok(())
        }
        AdminOp::CreateStage { api_id, stage } => {
            let api = api_mut(state, api_id)?;
            check_stage_name(&stage.stage_name)?;
            quotas::check_stage_variables(&stage.variables)?;
            quotas::check_tags(&stage.tags)?;
            if let Some(size) = &stage.cache_cluster_size {
                check_cache_cluster_size(size)?;
            }
            if api
                .stages
                .iter()
                .any(|existing| existing.stage_name == stage.stage_name)
            {
                return Err(Refusal::Conflict("Stage already exists".to_string()));
            }
            if api.deployment(&stage.deployment_id).is_none() {
                return Err(bad(format!(
                    "Invalid deployment identifier specified {}",
                    stage.deployment_id
                )));
            }
            api.stages.push(stage.clone());
            Ok(())
        }
        AdminOp::UpdateStage {
            api_id,
            stage_name,
            patch,
            now,
        } => {
            let api = api_mut(state, api_id)?;
            let position = api
                .stages
                .iter()
                .position(|stage| &stage.stage_name == stage_name)
                .ok_or_else(|| stage_not_found(stage_name))?;
            let mut stage = api.stages[position].clone();
            for operation in patch {
                patch_stage(&mut stage, operation, &api.deployments)?;
            }
            quotas::check_stage_variables(&stage.variables)?;
            stage.last_updated_date = *now;
            api.stages[position] = stage;
            Ok(())
        }
        AdminOp::DeleteStage { api_id, stage_name } => {
            let api = api_mut(state, api_id)?;
            let before = api.stages.len();
            api.stages.retain(|stage| &stage.stage_name != stage_name);
            if api.stages.len() == before {
                return Err(stage_not_found(stage_name));
            }
            Ok(())
        }
        AdminOp::PutRestApi {
            api_id,
            definition,
            mode,
        } => {
            check_tree(definition)?;
            edit_definition(state, api_id, api_not_found, |existing| {
                *existing = match mode {
                    PutMode::Overwrite => overwrite(existing, definition)?,
                    PutMode::Merge => merge(existing, definition)?,
                };
                check_tree(existing)
            })
        }
        AdminOp::ImportRestApi { definition } => {
            let api_id = &definition.api.id;
            if api_id.is_empty() || state.apis.contains_key(api_id) {
                return Err(Refusal::Conflict(format!(
                    "REST API identifier {api_id} already exists"
                )));
            }
            check_rest_api(&definition.api)?;
            check_tree(definition)?;
            if definition.resources[0].id != definition.api.root_resource_id {
                return Err(bad("Invalid API definition: the root resource id differs"));
            }
            state.apis.insert(
                api_id.clone(),
                ApiState {
                    definition: std::sync::Arc::new(definition.clone()),
                    deployments: Vec::new(),
                    stages: Vec::new(),
                },
            );
            Ok(())
        }
        AdminOp::CreateApiKey { key } => keys::create_api_key(state, key),
        AdminOp::UpdateApiKey { key_id, patch, now } => {
            keys::update_api_key(state, key_id, patch, *now)
        }
        AdminOp::DeleteApiKey { key_id } => keys::delete_api_key(state, key_id),
        AdminOp::ImportApiKeys { keys: rows } => keys::import_api_keys(state, rows),
        AdminOp::CreateUsagePlan { plan } => keys::create_usage_plan(state, plan),
        AdminOp::UpdateUsagePlan { plan_id, patch } => {
            keys::update_usage_plan(state, plan_id, patch)
        }
        AdminOp::DeleteUsagePlan { plan_id } => keys::delete_usage_plan(state, plan_id),
        AdminOp::CreateUsagePlanKey { plan_id, key_id } => {
            keys::create_usage_plan_key(state, plan_id, key_id)
        }
        AdminOp::DeleteUsagePlanKey { plan_id, key_id } => {
            keys::delete_usage_plan_key(state, plan_id, key_id)
        }
        AdminOp::UpdateAccount { patch } => keys::update_account(state, patch),
        AdminOp::FlushStageCache { api_id, stage_name } => {
            let api = state
                .apis
                .get(api_id)
                .ok_or_else(|| api_not_found(api_id))?;
            if !api
                .stages
                .iter()
                .any(|stage| &stage.stage_name == stage_name)
            {
                return Err(stage_not_found(stage_name));
            }
            let generation = state
                .cache_generations
                .entry(cache_generation_key(api_id, stage_name))
                .or_insert(0);
            *generation = generation.wrapping_add(1);
            Ok(())
        }
        AdminOp::CreateAuthorizer { api_id, authorizer } => {
            edit_definition(state, api_id, api_not_found, |definition| {
                auth::create_authorizer(definition, authorizer)
            })
        }
        AdminOp::UpdateAuthorizer {
            api_id,
            authorizer_id,
            patch,
        } => edit_definition(state, api_id, api_not_found, |definition| {
            auth::update_authorizer(definition, authorizer_id, patch)
        }),
        AdminOp::DeleteAuthorizer {
            api_id,
            authorizer_id,
        } => edit_definition(state, api_id, api_not_found, |definition| {
            auth::delete_authorizer(definition, authorizer_id)
        }),
        // As PutMethod: an unknown API is reported as an unknown resource (recorded, LS api
        // `test_update_method_validation` `wrong-rest-api`).
        AdminOp::UpdateMethod {
            api_id,
            resource_id,
            http_method,
            patch,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| auth::update_method(definition, resource_id, http_method, patch),
        ),
        AdminOp::PutGatewayResponse { api_id, response } => {
            edit_definition(state, api_id, api_not_found, |definition| {
                auth::put_gateway_response(definition, response)
            })
        }
        AdminOp::UpdateGatewayResponse {
            api_id,
            response_type,
            patch,
        } => edit_definition(state, api_id, api_not_found, |definition| {
            auth::update_gateway_response(definition, response_type, patch)
        }),
        AdminOp::DeleteGatewayResponse {
            api_id,
            response_type,
        } => edit_definition(state, api_id, api_not_found, |definition| {
            auth::delete_gateway_response(definition, response_type)
        }),
        AdminOp::FlushStageAuthorizersCache { api_id, stage_name } => {
            auth::flush_stage_authorizers_cache(state, api_id, stage_name)
        }
        // Under a resource path an unknown API is an unknown resource, as for PutMethod
        // (recorded, LS api `test_delete_integration_response_errors` `non-existent-api-id`).
        AdminOp::DeleteMethodResponse {
            api_id,
            resource_id,
            http_method,
            status_code,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                methods::delete_method_response(definition, resource_id, http_method, status_code)
            },
        ),
        AdminOp::DeleteIntegrationResponse {
            api_id,
            resource_id,
            http_method,
            status_code,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                methods::delete_integration_response(
                    definition,
                    resource_id,
                    http_method,
                    status_code,
                )
            },
        ),
        AdminOp::UpdateIntegration {
            api_id,
            resource_id,
            http_method,
            patch,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| methods::update_integration(definition, resource_id, http_method, patch),
        ),
        AdminOp::UpdateMethodResponse {
            api_id,
            resource_id,
            http_method,
            status_code,
            patch,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                methods::update_method_response(
                    definition,
                    resource_id,
                    http_method,
                    status_code,
                    patch,
                )
            },
        ),
        AdminOp::UpdateIntegrationResponse {
            api_id,
            resource_id,
            http_method,
            status_code,
            patch,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| {
                methods::update_integration_response(
                    definition,
                    resource_id,
                    http_method,
                    status_code,
                    patch,
                )
            },
        ),
        AdminOp::UpdateResource {
            api_id,
            resource_id,
            patch,
        } => edit_definition(
            state,
            api_id,
            |_| resource_not_found(),
            |definition| methods::update_resource(definition, resource_id, patch),
        ),
        AdminOp::UpdateDeployment {
            api_id,
            deployment_id,
            patch,
        } => methods::update_deployment(api_mut(state, api_id)?, deployment_id, patch),
    }
}

/// The key of a stage in [`GatewayState::cache_generations`].
pub fn cache_generation_key(api_id: &str, stage_name: &str) -> String {
    format!("{api_id}/{stage_name}")
}

fn api_mut<'s>(state: &'s mut GatewayState, api_id: &str) -> Result<&'s mut ApiState, Refusal> {
    state
        .apis
        .get_mut(api_id)
        .ok_or_else(|| api_not_found(api_id))
}

/// Runs `edit` on a copy of one API's definition and keeps the copy only if `edit` succeeded,
/// so a refusal half-way through an op (or a patch list) changes nothing.
fn edit_definition(
    state: &mut GatewayState,
    api_id: &str,
    missing: impl FnOnce(&str) -> Refusal,
    edit: impl FnOnce(&mut ApiDefinition) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    let api = state.apis.get_mut(api_id).ok_or_else(|| missing(api_id))?;
    // A copy, edited, then swapped in: a refused edit leaves the state as it was.
    let mut definition = ApiDefinition::clone(&api.definition);
    edit(&mut definition)?;
    api.definition = std::sync::Arc::new(definition);
    Ok(())
}

fn resource_mut<'d>(
    definition: &'d mut ApiDefinition,
    resource_id: &str,
) -> Result<&'d mut Resource, Refusal> {
    definition
        .resources
        .iter_mut()
        .find(|resource| resource.id == resource_id)
        .ok_or_else(resource_not_found)
}

fn method_mut<'d>(
    definition: &'d mut ApiDefinition,
    resource_id: &str,
    http_method: &str,
) -> Result<&'d mut Method, Refusal> {
    resource_mut(definition, resource_id)?
        .resource_methods
        .get_mut(&http_method.to_ascii_uppercase())
        .ok_or_else(method_not_found)
}

// ---------------------------------------------------------------------------------------------
// REST APIs

fn check_rest_api(api: &RestApi) -> Result<(), Refusal> {
    if api.id.is_empty() || api.root_resource_id.is_empty() {
        return Err(bad("Invalid API definition: missing identifiers"));
    }
    if api.name.is_empty() {
        return Err(bad("Name cannot be empty"));
    }
    if api.description.as_deref() == Some("") {
        return Err(bad("Description cannot be an empty string"));
    }
    if let Some(size) = api.minimum_compression_size {
        check_compression_size(size)?;
    }
    quotas::check_rest_api(api)
}

fn check_compression_size(size: i32) -> Result<(), Refusal> {
    if !(0..=MINIMUM_COMPRESSION_SIZE_MAX).contains(&size) {
        return Err(bad(
            "Invalid minimum compression size, must be between 0 and 10485760",
        ));
    }
    Ok(())
}

fn create_rest_api(state: &mut GatewayState, api: &RestApi) -> Result<(), Refusal> {
    check_rest_api(api)?;
    if state.apis.contains_key(&api.id) {
        return Err(Refusal::Conflict(format!(
            "REST API identifier {} already exists",
            api.id
        )));
    }
    let root = Resource {
        id: api.root_resource_id.clone(),
        parent_id: None,
        path_part: None,
        path: "/".to_string(),
        resource_methods: BTreeMap::new(),
    };
    state.apis.insert(
        api.id.clone(),
        ApiState {
            definition: std::sync::Arc::new(ApiDefinition {
                api: api.clone(),
                resources: vec![root],
                authorizers: Vec::new(),
                models: Vec::new(),
                request_validators: Vec::new(),
                gateway_responses: Vec::new(),
            }),
            deployments: Vec::new(),
            stages: Vec::new(),
        },
    );
    Ok(())
}

/// Undoes JSON Pointer escaping in one path segment (`~1` is `/`, `~0` is `~`).
pub fn unescape_pointer(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

fn check_op(operation: &PatchOperation) -> Result<(), Refusal> {
    if !PATCH_OPS.contains(&operation.op.as_str()) {
        return Err(bad(format!(
            "1 validation error detected: Value '{}' at 'patchOperations.1.member.op' failed to satisfy constraint: Member must satisfy enum value set: [add, remove, move, test, replace, copy]",
            operation.op
        )));
    }
    Ok(())
}

fn unsupported_op() -> Refusal {
    bad("Invalid patch operation specified. Must be 'add'|'remove'|'replace'")
}

fn required_value(operation: &PatchOperation) -> Result<&str, Refusal> {
    operation
        .value
        .as_deref()
        .ok_or_else(|| bad(format!("Invalid null value for path {}", operation.path)))
}

fn parse_bool(operation: &PatchOperation) -> Result<bool, Refusal> {
    let value = required_value(operation)?;
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(format!(
            "Invalid boolean value '{value}' for path {}",
            operation.path
        ))),
    }
}

fn update_rest_api(api: &mut RestApi, patch: &[PatchOperation]) -> Result<(), Refusal> {
    for operation in patch {
        check_op(operation)?;
        let op = operation.op.as_str();
        let path = operation.path.as_str();
        if let Some(escaped) = path.strip_prefix("/binaryMediaTypes/") {
            let media_type = unescape_pointer(escaped);
            match op {
                "add" => {
                    if !api.binary_media_types.contains(&media_type) {
                        api.binary_media_types.push(media_type);
                    }
                }
                "remove" => api.binary_media_types.retain(|known| known != &media_type),
                "replace" => {
                    let value = required_value(operation)?.to_string();
                    api.binary_media_types.retain(|known| known != &media_type);
                    if !api.binary_media_types.contains(&value) {
                        api.binary_media_types.push(value);
                    }
                }
                _ => return Err(unsupported_op()),
            }
            continue;
        }
        match (path, op) {
            ("/name", "replace") => {
                let name = required_value(operation)?;
                if name.is_empty() {
                    return Err(bad("Name cannot be empty"));
                }
                api.name = name.to_string();
            }
            ("/description", "replace" | "add") => {
                api.description = operation.value.clone().filter(|value| !value.is_empty());
            }
            ("/description", "remove") => api.description = None,
            ("/version", "replace" | "add") => {
                api.version = operation.value.clone().filter(|value| !value.is_empty());
            }
            ("/version", "remove") => api.version = None,
            ("/policy", "replace" | "add") => {
                api.policy = operation.value.clone().filter(|value| !value.is_empty());
            }
            ("/policy", "remove") => api.policy = None,
            ("/apiKeySource", "replace") => {
                api.api_key_source = match required_value(operation)? {
                    "HEADER" => ApiKeySource::Header,
                    "AUTHORIZER" => ApiKeySource::Authorizer,
                    other => {
                        return Err(bad(format!(
                            "1 validation error detected: Value '{other}' at 'apiKeySource' failed to satisfy constraint: Member must satisfy enum value set: [HEADER, AUTHORIZER]"
                        )));
                    }
                }
            }
            ("/minimumCompressionSize", "replace") => {
                api.minimum_compression_size = match operation.value.as_deref() {
                    None | Some("") => None,
                    Some(text) => {
                        let size = text.parse::<i32>().map_err(|_| {
                            bad("Invalid minimum compression size, must be between 0 and 10485760")
                        })?;
                        check_compression_size(size)?;
                        Some(size)
                    }
                }
            }
            ("/minimumCompressionSize", _) => {
                return Err(bad(
                    "Invalid patch operation specified. Must be one of: [replace]",
                ));
            }
            ("/disableExecuteApiEndpoint", "replace") => {
                api.disable_execute_api_endpoint = parse_bool(operation)?;
            }
            ("/endpointConfiguration/types/0", "replace") => {
                let value = required_value(operation)?;
                if !ENDPOINT_TYPES.contains(&value) {
                    return Err(bad(
                        "Invalid EndpointTypes specified. Valid options are REGIONAL,EDGE,PRIVATE",
                    ));
                }
                api.endpoint_configuration.types = vec![value.to_string()];
            }
            ("/endpointConfiguration/ipAddressType", "replace") => {
                let value = required_value(operation)?;
                if value != "ipv4" && value != "dualstack" {
                    return Err(bad("ipAddressType must be either ipv4 or dualstack."));
                }
                api.endpoint_configuration.ip_address_type = Some(value.to_string());
            }
            (
                "/name"
                | "/apiKeySource"
                | "/disableExecuteApiEndpoint"
                | "/endpointConfiguration/types/0"
                | "/endpointConfiguration/ipAddressType",
                _,
            ) => {
                return Err(bad(
                    "Invalid patch operation specified. Must be one of: [replace]",
                ));
            }
            _ => return Err(bad(format!("Invalid patch path {path}"))),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Resources

fn is_variable(part: &str) -> bool {
    part.starts_with('{')
}

fn is_greedy(part: &str) -> bool {
    part.starts_with('{') && part.ends_with("+}")
}

/// Checks a path part the way AWS does: `{name}`, `{name+}`, or a literal of URL path
/// characters.
pub fn validate_path_part(part: &str) -> Result<(), Refusal> {
    let literal_char = |c: char| c.is_ascii_alphanumeric() || "._~:@!$&'()*+,;=-".contains(c);
    let valid = if let Some(inner) = part.strip_prefix('{') {
        match inner.strip_suffix('}') {
            Some(name) => {
                let name = name.strip_suffix('+').unwrap_or(name);
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            }
            None => false,
        }
    } else {
        !part.is_empty() && part.chars().all(literal_char)
    };
    if valid {
        Ok(())
    } else {
        Err(bad(PATH_PART_RULE))
    }
}

fn join_path(parent_path: &str, part: &str) -> String {
    if parent_path == "/" {
        format!("/{part}")
    } else {
        format!("{parent_path}/{part}")
    }
}

fn create_resource(
    definition: &mut ApiDefinition,
    parent_id: &str,
    path_part: &str,
    resource_id: &str,
) -> Result<(), Refusal> {
    let parent = definition
        .resource(parent_id)
        .ok_or_else(resource_not_found)?;
    validate_path_part(path_part)?;
    if definition.resources.len() >= quotas::RESOURCES_MAX {
        return Err(quotas::too_many_resources());
    }
    if let Some(parent_part) = parent.path_part.as_deref().filter(|part| is_greedy(part)) {
        return Err(bad(format!(
            "Cannot create a child of a resource with a greedy path variable: {parent_part}"
        )));
    }
    let path = join_path(&parent.path, path_part);
    for sibling in definition
        .resources
        .iter()
        .filter(|resource| resource.parent_id.as_deref() == Some(parent_id))
    {
        let Some(sibling_part) = sibling.path_part.as_deref() else {
            continue;
        };
        if sibling_part == path_part {
            return Err(Refusal::Conflict(format!(
                "Another resource with the same parent already has this name: {path_part}"
            )));
        }
        if is_variable(path_part) && is_variable(sibling_part) {
            return Err(bad(format!(
                "A sibling ({sibling_part}) of this resource already has a variable path part -- only one is allowed"
            )));
        }
    }
    if resource_id.is_empty() || definition.resource(resource_id).is_some() {
        return Err(Refusal::Conflict(format!(
            "Resource identifier {resource_id} already exists"
        )));
    }
    definition.resources.push(Resource {
        id: resource_id.to_string(),
        parent_id: Some(parent_id.to_string()),
        path_part: Some(path_part.to_string()),
        path,
        resource_methods: BTreeMap::new(),
    });
    Ok(())
}

fn delete_resource(definition: &mut ApiDefinition, resource_id: &str) -> Result<(), Refusal> {
    let resource = definition
        .resource(resource_id)
        .ok_or_else(resource_not_found)?;
    if resource.parent_id.is_none() {
        return Err(bad("Cannot delete the root resource"));
    }
    let mut doomed = BTreeSet::from([resource_id.to_string()]);
    // Until nothing changes, so the order of `resources` does not matter.
    loop {
        let before = doomed.len();
        for resource in &definition.resources {
            if resource
                .parent_id
                .as_ref()
                .is_some_and(|parent| doomed.contains(parent))
            {
                doomed.insert(resource.id.clone());
            }
        }
        if doomed.len() == before {
            break;
        }
    }
    definition
        .resources
        .retain(|resource| !doomed.contains(&resource.id));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Methods and integrations

fn check_http_method(http_method: &str) -> Result<String, Refusal> {
    let upper = http_method.to_ascii_uppercase();
    if HTTP_METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(bad(
            "Invalid HttpMethod specified. Valid options are GET,PUT,POST,DELETE,PATCH,OPTIONS,HEAD,ANY",
        ))
    }
}

fn put_method(
    definition: &mut ApiDefinition,
    resource_id: &str,
    method: &Method,
) -> Result<(), Refusal> {
    if definition.resource(resource_id).is_none() {
        return Err(resource_not_found());
    }
    let verb = check_http_method(&method.http_method)?;
    let mut method = method.clone();
    auth::settle_method_authorization(definition, &mut method)?;
    if let Some(validator_id) = &method.request_validator_id
        && !definition
            .request_validators
            .iter()
            .any(|validator| &validator.id == validator_id)
    {
        return Err(bad("Invalid Request Validator identifier specified"));
    }
    for model_name in method.request_models.values() {
        let known = BUILTIN_MODELS.contains(&model_name.as_str())
            || definition
                .models
                .iter()
                .any(|model| &model.name == model_name);
        if !known {
            return Err(bad(format!(
                "Invalid model identifier specified: {model_name}"
            )));
        }
    }
    method.http_method = verb.clone();
    resource_mut(definition, resource_id)?
        .resource_methods
        .insert(verb, method);
    Ok(())
}

fn check_integration(integration: &Integration) -> Result<(), Refusal> {
    let timeout = integration.timeout_in_millis;
    if !(INTEGRATION_TIMEOUT_MS_MIN..=INTEGRATION_TIMEOUT_MS_MAX).contains(&timeout) {
        return Err(bad(format!(
            "Timeout should be between {INTEGRATION_TIMEOUT_MS_MIN} ms and {INTEGRATION_TIMEOUT_MS_MAX} ms"
        )));
    }
    if integration.integration_type == IntegrationType::Mock {
        return Ok(());
    }
    match integration.http_method.as_deref() {
        None | Some("") => return Err(bad("Enumeration value for HttpMethod must be non-empty")),
        Some(verb) => {
            check_http_method(verb)?;
        }
    }
    let uri = integration.uri.as_deref().unwrap_or("");
    match integration.integration_type {
        IntegrationType::Http | IntegrationType::HttpProxy => {
            let lower = uri.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(bad("Invalid HTTP endpoint specified for URI"));
            }
        }
        IntegrationType::Aws | IntegrationType::AwsProxy => {
            if !uri.starts_with("arn:") {
                return Err(bad("Invalid ARN specified in the request"));
            }
            if integration.integration_type == IntegrationType::AwsProxy
                && !(uri.contains(":lambda:path/") || uri.contains(":firehose:"))
            {
                return Err(bad(
                    "Integrations of type 'AWS_PROXY' currently only supports Lambda function and Firehose stream invocations.",
                ));
            }
        }
        IntegrationType::Mock => {}
    }
    if integration.connection_type.as_deref() == Some("VPC_LINK")
        && integration
            .connection_id
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        return Err(bad("ConnectionId is required for connection type VPC_LINK"));
    }
    Ok(())
}

/// Status codes must match `[1-5]\d\d`, as botocore's model constrains them.
fn check_status_code(status_code: &str) -> Result<(), Refusal> {
    let bytes = status_code.as_bytes();
    let valid = bytes.len() == 3
        && (b'1'..=b'5').contains(&bytes[0])
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit();
    if valid {
        Ok(())
    } else {
        Err(bad(format!(
            "1 validation error detected: Value '{status_code}' at 'statusCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [1-5]\\d\\d"
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// Deployments and stages

fn check_stage_name(stage_name: &str) -> Result<(), Refusal> {
    let valid = !stage_name.is_empty()
        && stage_name.len() <= 128
        && stage_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(bad(
            "Stage name only allows a-zA-Z0-9_- and must be at most 128 characters",
        ))
    }
}

fn check_cache_cluster_size(size: &str) -> Result<(), Refusal> {
    if CACHE_CLUSTER_SIZES.contains(&size) {
        Ok(())
    } else {
        Err(bad(format!(
            "1 validation error detected: Value '{size}' at 'cacheClusterSize' failed to satisfy constraint: Member must satisfy enum value set: [0.5, 1.6, 6.1, 13.5, 28.4, 58.2, 118, 237]"
        )))
    }
}

fn create_deployment(
    state: &mut GatewayState,
    api_id: &str,
    deployment_id: &str,
    description: &Option<String>,
    created_date: i64,
    stage: Option<&NewStage>,
) -> Result<(), Refusal> {
    let api = api_mut(state, api_id)?;
    if deployment_id.is_empty() || api.deployment(deployment_id).is_some() {
        return Err(Refusal::Conflict(format!(
            "Deployment identifier {deployment_id} already exists"
        )));
    }
    if let Some(stage) = stage {
        check_stage_name(&stage.stage_name)?;
        let mut variables = api
            .stages
            .iter()
            .find(|existing| existing.stage_name == stage.stage_name)
            .map(|existing| existing.variables.clone())
            .unwrap_or_default();
        variables.extend(stage.variables.clone());
        quotas::check_stage_variables(&variables)?;
    }
    let mut methods = api
        .definition
        .resources
        .iter()
        .flat_map(|resource| resource.resource_methods.values())
        .peekable();
    if methods.peek().is_none() {
        return Err(bad("The REST API doesn't contain any methods"));
    }
    if methods.any(|method| method.method_integration.is_none()) {
        return Err(bad("No integration defined for method"));
    }
    api.deployments.push(Deployment {
        id: deployment_id.to_string(),
        description: description.clone(),
        created_date,
        definition: api.definition.clone(),
    });
    if let Some(new_stage) = stage {
        match api
            .stages
            .iter_mut()
            .find(|existing| existing.stage_name == new_stage.stage_name)
        {
            Some(existing) => {
                existing.deployment_id = deployment_id.to_string();
                existing.variables.extend(
                    new_stage
                        .variables
                        .iter()
                        .map(|(name, value)| (name.clone(), value.clone())),
                );
                existing.last_updated_date = created_date;
            }
            None => {
                let mut created =
                    Stage::new(new_stage.stage_name.clone(), deployment_id, created_date);
                created.description = new_stage.description.clone();
                created.variables = new_stage.variables.clone();
                api.stages.push(created);
            }
        }
    }
    Ok(())
}

fn invalid_stage_path(path: &str) -> Refusal {
    bad(format!(
        "Invalid method setting path: {path}. Must be one of: {STAGE_PATHS}"
    ))
}

/// Where a stage patch path points among the method settings.
enum SettingTarget<'p> {
    /// `/{key}`: the whole setting (only `remove`).
    Whole(String),
    /// `/{key}/{group}/{member}`.
    Member(String, &'p str),
}

/// Splits `/*/*/caching/enabled` or `/pets~1{id}/GET/caching/enabled` into the method-setting
/// key (`*/*`, `pets/{id}/GET`) and the member (`caching/enabled`).
fn setting_target(path: &str) -> Option<SettingTarget<'_>> {
    let rest = path.strip_prefix('/')?;
    let mut segments = rest.splitn(3, '/');
    let resource = segments.next()?;
    let verb = segments.next()?;
    let member = segments.next();
    let key = if resource == "*" && verb == "*" {
        "*/*".to_string()
    } else {
        if resource.is_empty() || !HTTP_METHODS.contains(&verb) && verb != "*" {
            return None;
        }
        let resource = unescape_pointer(resource);
        let resource = resource.trim_start_matches('/');
        format!("{resource}/{verb}")
    };
    Some(match member {
        None => SettingTarget::Whole(key),
        Some(member) => SettingTarget::Member(key, member),
    })
}

const SETTING_MEMBERS: [&str; 10] = [
    "metrics/enabled",
    "logging/loglevel",
    "logging/dataTrace",
    "throttling/burstLimit",
    "throttling/rateLimit",
    "caching/enabled",
    "caching/ttlInSeconds",
    "caching/dataEncrypted",
    "caching/requireAuthorizationForCacheControl",
    "caching/unauthorizedCacheControlHeaderStrategy",
];

fn set_member(
    setting: &mut MethodSetting,
    member: &str,
    operation: &PatchOperation,
) -> Result<(), Refusal> {
    // `remove` of one member puts AWS's default back.
    let defaults = MethodSetting::default();
    let remove = operation.op == "remove";
    match member {
        "metrics/enabled" => {
            setting.metrics_enabled = if remove {
                defaults.metrics_enabled
            } else {
                parse_bool(operation)?
            }
        }
        "logging/dataTrace" => {
            setting.data_trace_enabled = if remove {
                defaults.data_trace_enabled
            } else {
                parse_bool(operation)?
            }
        }
        "logging/loglevel" => {
            setting.logging_level = if remove {
                None
            } else {
                let level = required_value(operation)?.to_ascii_uppercase();
                if !LOGGING_LEVELS.contains(&level.as_str()) {
                    return Err(bad(format!(
                        "Invalid logging level specified: {}. Valid options are OFF, ERROR, INFO",
                        required_value(operation)?
                    )));
                }
                Some(level)
            }
        }
        "throttling/burstLimit" => {
            setting.throttling_burst_limit = if remove {
                defaults.throttling_burst_limit
            } else {
                let text = required_value(operation)?;
                text.parse::<i32>()
                    .ok()
                    .filter(|limit| *limit >= 0)
                    .ok_or_else(|| {
                        bad(format!(
                            "Invalid throttling burst limit specified: {text}. It must be a non-negative integer"
                        ))
                    })?
            }
        }
        "throttling/rateLimit" => {
            setting.throttling_rate_limit = if remove {
                defaults.throttling_rate_limit
            } else {
                let text = required_value(operation)?;
                text.parse::<f64>()
                    .ok()
                    .filter(|limit| limit.is_finite() && *limit >= 0.0)
                    .ok_or_else(|| {
                        bad(format!(
                            "Invalid throttling rate limit specified: {text}. It must be a non-negative number"
                        ))
                    })?
            }
        }
        "caching/enabled" => {
            setting.caching_enabled = if remove {
                defaults.caching_enabled
            } else {
                parse_bool(operation)?
            }
        }
        "caching/ttlInSeconds" => {
            setting.cache_ttl_in_seconds = if remove {
                defaults.cache_ttl_in_seconds
            } else {
                let text = required_value(operation)?;
                text.parse::<i32>()
                    .ok()
                    .filter(|ttl| (0..=CACHE_TTL_SECONDS_MAX).contains(ttl))
                    .ok_or_else(|| {
                        bad(format!(
                            "Invalid cache ttl specified: {text}. It must be between 0 and 3600 seconds"
                        ))
                    })?
            }
        }
        "caching/dataEncrypted" => {
            setting.cache_data_encrypted = if remove {
                defaults.cache_data_encrypted
            } else {
                parse_bool(operation)?
            }
        }
        "caching/requireAuthorizationForCacheControl" => {
            setting.require_authorization_for_cache_control = if remove {
                defaults.require_authorization_for_cache_control
            } else {
                parse_bool(operation)?
            }
        }
        "caching/unauthorizedCacheControlHeaderStrategy" => {
            setting.unauthorized_cache_control_header_strategy = if remove {
                defaults.unauthorized_cache_control_header_strategy
            } else {
                let value = required_value(operation)?;
                if !UNAUTHORIZED_CACHE_CONTROL_STRATEGIES.contains(&value) {
                    return Err(bad(format!(
                        "1 validation error detected: Value '{value}' at 'unauthorizedCacheControlHeaderStrategy' failed to satisfy constraint: Member must satisfy enum value set: [FAIL_WITH_403, SUCCEED_WITH_RESPONSE_HEADER, SUCCEED_WITHOUT_RESPONSE_HEADER]"
                    )));
                }
                value.to_string()
            }
        }
        _ => return Err(invalid_stage_path(&operation.path)),
    }
    Ok(())
}

fn patch_stage(
    stage: &mut Stage,
    operation: &PatchOperation,
    deployments: &[Deployment],
) -> Result<(), Refusal> {
    check_op(operation)?;
    let op = operation.op.as_str();
    let path = operation.path.as_str();
    if !matches!(op, "add" | "remove" | "replace") {
        return Err(unsupported_op());
    }
    if let Some(name) = path.strip_prefix("/variables/") {
        let name = unescape_pointer(name);
        let valid_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(bad(format!(
                "Stage variable name {name} must be alphanumeric or underscore"
            )));
        }
        if op == "remove" {
            stage.variables.remove(&name);
        } else {
            stage
                .variables
                .insert(name, required_value(operation)?.to_string());
        }
        return Ok(());
    }
    match path {
        "/deploymentId" => {
            if op != "replace" {
                return Err(unsupported_op());
            }
            let deployment_id = required_value(operation)?;
            if !deployments
                .iter()
                .any(|deployment| deployment.id == deployment_id)
            {
                return Err(bad(format!(
                    "Invalid deployment identifier specified {deployment_id}"
                )));
            }
            stage.deployment_id = deployment_id.to_string();
        }
        "/description" => {
            stage.description = if op == "remove" {
                None
            } else {
                operation.value.clone().filter(|value| !value.is_empty())
            };
        }
        "/cacheClusterEnabled" => {
            stage.cache_cluster_enabled = op != "remove" && parse_bool(operation)?;
        }
        "/cacheClusterSize" => {
            stage.cache_cluster_size = if op == "remove" {
                None
            } else {
                let size = required_value(operation)?;
                check_cache_cluster_size(size)?;
                Some(size.to_string())
            };
        }
        "/tracingEnabled" => {
            stage.tracing_enabled = op != "remove" && parse_bool(operation)?;
        }
        _ => match setting_target(path) {
            Some(SettingTarget::Whole(key)) if op == "remove" => {
                if key == "*/*" {
                    if stage.method_settings.is_empty() {
                        return Err(bad(
                            "Cannot remove method setting */* because there is no method setting for this method ",
                        ));
                    }
                    stage.method_settings.clear();
                } else if stage.method_settings.remove(&key).is_none() {
                    return Err(bad(format!(
                        "Cannot remove method setting {key} because there is no method setting for this method "
                    )));
                }
            }
            Some(SettingTarget::Member(key, member)) if SETTING_MEMBERS.contains(&member) => {
                let setting = stage.method_settings.entry(key).or_default();
                set_member(setting, member, operation)?;
            }
            _ => return Err(invalid_stage_path(path)),
        },
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Whole definitions (PutRestApi, ImportRestApi)

/// The resource list must be a tree whose root comes first and whose parents come before
/// their children, with paths that agree with the parts.
fn check_tree(definition: &ApiDefinition) -> Result<(), Refusal> {
    quotas::check_definition(definition)?;
    let invalid = |reason: &str| bad(format!("Invalid API definition: {reason}"));
    let Some(root) = definition.resources.first() else {
        return Err(invalid("no root resource"));
    };
    if root.parent_id.is_some() || root.path != "/" {
        return Err(invalid("the first resource must be the root"));
    }
    let mut paths: BTreeMap<&str, &str> = BTreeMap::new();
    let mut seen_paths: BTreeSet<&str> = BTreeSet::new();
    for resource in &definition.resources {
        if !seen_paths.insert(resource.path.as_str()) {
            return Err(invalid("duplicate resource path"));
        }
        if let Some(parent_id) = &resource.parent_id {
            let parent_path = paths
                .get(parent_id.as_str())
                .ok_or_else(|| invalid("a resource comes before its parent"))?;
            let part = resource.path_part.as_deref().unwrap_or("");
            validate_path_part(part)?;
            if resource.path != join_path(parent_path, part) {
                return Err(invalid("a resource path does not match its parts"));
            }
        } else if !std::ptr::eq(resource, root) {
            return Err(invalid("more than one root"));
        }
        if paths
            .insert(resource.id.as_str(), resource.path.as_str())
            .is_some()
        {
            return Err(invalid("duplicate resource identifier"));
        }
    }
    Ok(())
}

/// Overwrite: the new definition replaces resources, models, authorizers, validators and
/// gateway responses; the API keeps its id, creation date, root resource id, tags, endpoint
/// configuration, and its name unless the new one sets it.
fn overwrite(existing: &ApiDefinition, incoming: &ApiDefinition) -> Result<ApiDefinition, Refusal> {
    let mut definition = incoming.clone();
    let old_root = incoming.resources[0].id.clone();
    let root = existing.api.root_resource_id.clone();
    let rename = |id: &mut String| {
        if *id == old_root {
            *id = root.clone();
        }
    };
    for resource in &mut definition.resources {
        rename(&mut resource.id);
        if let Some(parent) = resource.parent_id.as_mut() {
            rename(parent);
        }
        for method in resource.resource_methods.values_mut() {
            if let Some(namespace) = method
                .method_integration
                .as_mut()
                .and_then(|integration| integration.cache_namespace.as_mut())
            {
                rename(namespace);
            }
        }
    }
    let name = if incoming.api.name.is_empty() {
        existing.api.name.clone()
    } else {
        incoming.api.name.clone()
    };
    definition.api = RestApi {
        id: existing.api.id.clone(),
        name,
        created_date: existing.api.created_date,
        tags: existing.api.tags.clone(),
        endpoint_configuration: existing.api.endpoint_configuration.clone(),
        root_resource_id: root,
        ..incoming.api.clone()
    };
    Ok(definition)
}

fn merge_by<T: Clone>(existing: &mut Vec<T>, incoming: &[T], key: impl Fn(&T) -> &str) {
    for item in incoming {
        match existing.iter_mut().find(|known| key(known) == key(item)) {
            Some(known) => *known = item.clone(),
            None => existing.push(item.clone()),
        }
    }
}

/// Merge: resources are matched by path; incoming methods replace same-verb methods, others
/// are kept; new resources are added with their incoming ids. Models, authorizers, validators
/// and gateway responses are matched by name (response type) the same way.
fn merge(existing: &ApiDefinition, incoming: &ApiDefinition) -> Result<ApiDefinition, Refusal> {
    let mut merged = existing.clone();
    // Incoming resource id → the id it has in the merged definition.
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for resource in &incoming.resources {
        let final_id = match merged.resource_by_path(&resource.path) {
            Some(known) => known.id.clone(),
            None => resource.id.clone(),
        };
        ids.insert(resource.id.clone(), final_id.clone());
        let methods: Vec<(String, Method)> = resource
            .resource_methods
            .iter()
            .map(|(verb, method)| {
                let mut method = method.clone();
                if let Some(namespace) = method
                    .method_integration
                    .as_mut()
                    .and_then(|integration| integration.cache_namespace.as_mut())
                    && let Some(renamed) = ids.get(namespace.as_str())
                {
                    *namespace = renamed.clone();
                }
                (verb.clone(), method)
            })
            .collect();
        match merged
            .resources
            .iter_mut()
            .find(|known| known.path == resource.path)
        {
            Some(known) => known.resource_methods.extend(methods),
            None => {
                if merged.resource(&final_id).is_some() {
                    return Err(Refusal::Conflict(format!(
                        "Resource identifier {final_id} already exists"
                    )));
                }
                // check_tree ran on `incoming`, so the parent was seen (and mapped) already.
                let parent_id = resource
                    .parent_id
                    .as_ref()
                    .and_then(|parent| ids.get(parent))
                    .cloned();
                merged.resources.push(Resource {
                    id: final_id,
                    parent_id,
                    path_part: resource.path_part.clone(),
                    path: resource.path.clone(),
                    resource_methods: methods.into_iter().collect(),
                });
            }
        }
    }
    merge_by(&mut merged.authorizers, &incoming.authorizers, |item| {
        item.name.as_str()
    });
    merge_by(&mut merged.models, &incoming.models, |item| {
        item.name.as_str()
    });
    merge_by(
        &mut merged.request_validators,
        &incoming.request_validators,
        |item| item.name.as_str(),
    );
    merge_by(
        &mut merged.gateway_responses,
        &incoming.gateway_responses,
        |item| item.response_type.as_str(),
    );
    let api = &mut merged.api;
    if !incoming.api.name.is_empty() {
        api.name = incoming.api.name.clone();
    }
    if incoming.api.description.is_some() {
        api.description = incoming.api.description.clone();
    }
    if incoming.api.version.is_some() {
        api.version = incoming.api.version.clone();
    }
    if incoming.api.policy.is_some() {
        api.policy = incoming.api.policy.clone();
    }
    if incoming.api.minimum_compression_size.is_some() {
        api.minimum_compression_size = incoming.api.minimum_compression_size;
    }
    if incoming.api.api_key_source != ApiKeySource::default() {
        api.api_key_source = incoming.api.api_key_source;
    }
    for media_type in &incoming.api.binary_media_types {
        if !api.binary_media_types.contains(media_type) {
            api.binary_media_types.push(media_type.clone());
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests;
