//! The gateway's data model, in the shapes of Amazon API Gateway's control plane.
//!
//! Field names and enum spellings follow botocore's `apigateway` 2015-07-09 service model so
//! that the management API can render these types directly as the SDKs expect them, and so that
//! what a user reads in AWS's documentation means the same thing here.
//!
//! These types are also what the cluster replicates (bincode) and what an edge compiles into
//! routing tables. bincode cannot decode self-describing or skipped fields, so nothing here uses
//! `skip_serializing_if`, `flatten`, `untagged` or `serde_json::Value`; JSON renderings that must
//! omit absent members strip nulls at the boundary instead. Timestamps are epoch seconds supplied
//! by the caller: this crate never reads a clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Map types are ordered so that encodings (and therefore snapshots and their hashes) are
/// deterministic across nodes.
pub type StringMap = BTreeMap<String, String>;

/// A REST API's metadata (botocore `RestApi`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestApi {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Epoch seconds.
    pub created_date: i64,
    pub version: Option<String>,
    pub warnings: Vec<String>,
    pub binary_media_types: Vec<String>,
    pub minimum_compression_size: Option<i32>,
    pub api_key_source: ApiKeySource,
    pub endpoint_configuration: EndpointConfiguration,
    /// The resource policy, a JSON document kept as text (as the AWS API does).
    pub policy: Option<String>,
    pub tags: StringMap,
    pub disable_execute_api_endpoint: bool,
    pub root_resource_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ApiKeySource {
    #[default]
    #[serde(rename = "HEADER")]
    Header,
    #[serde(rename = "AUTHORIZER")]
    Authorizer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConfiguration {
    pub types: Vec<String>,
    pub ip_address_type: Option<String>,
    pub vpc_endpoint_ids: Vec<String>,
}

impl Default for EndpointConfiguration {
    fn default() -> Self {
        EndpointConfiguration {
            types: vec!["EDGE".to_string()],
            ip_address_type: Some("ipv4".to_string()),
            vpc_endpoint_ids: Vec::new(),
        }
    }
}

/// A node of the resource tree (botocore `Resource`). The root has no parent and no path part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    pub parent_id: Option<String>,
    pub path_part: Option<String>,
    /// The full path template, e.g. `/pets/{petId}`.
    pub path: String,
    /// Keyed by HTTP verb in upper case, or `ANY`.
    pub resource_methods: BTreeMap<String, Method>,
}

/// A method on a resource (botocore `Method`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Method {
    pub http_method: String,
    /// `NONE`, `AWS_IAM`, `CUSTOM` or `COGNITO_USER_POOLS`.
    pub authorization_type: String,
    pub authorizer_id: Option<String>,
    pub api_key_required: bool,
    pub request_validator_id: Option<String>,
    pub operation_name: Option<String>,
    /// `method.request.{path|querystring|header}.NAME` → required.
    pub request_parameters: BTreeMap<String, bool>,
    /// Content type → model name.
    pub request_models: StringMap,
    pub method_responses: BTreeMap<String, MethodResponse>,
    pub method_integration: Option<Integration>,
    pub authorization_scopes: Vec<String>,
}

impl Method {
    /// A method with AWS's defaults: no authorization, no key, no integration yet.
    pub fn new(http_method: impl Into<String>) -> Self {
        Method {
            http_method: http_method.into(),
            authorization_type: "NONE".to_string(),
            authorizer_id: None,
            api_key_required: false,
            request_validator_id: None,
            operation_name: None,
            request_parameters: BTreeMap::new(),
            request_models: BTreeMap::new(),
            method_responses: BTreeMap::new(),
            method_integration: None,
            authorization_scopes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodResponse {
    pub status_code: String,
    /// `method.response.header.NAME` → required.
    pub response_parameters: BTreeMap<String, bool>,
    pub response_models: StringMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntegrationType {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTP_PROXY")]
    HttpProxy,
    #[serde(rename = "AWS")]
    Aws,
    #[serde(rename = "AWS_PROXY")]
    AwsProxy,
    #[serde(rename = "MOCK")]
    Mock,
}

impl IntegrationType {
    /// The spelling AWS uses on the wire and in OpenAPI extensions.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::Http => "HTTP",
            IntegrationType::HttpProxy => "HTTP_PROXY",
            IntegrationType::Aws => "AWS",
            IntegrationType::AwsProxy => "AWS_PROXY",
            IntegrationType::Mock => "MOCK",
        }
    }

    /// Parses AWS's spelling, case-insensitively as the OpenAPI importer accepts it.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "HTTP" => IntegrationType::Http,
            "HTTP_PROXY" => IntegrationType::HttpProxy,
            "AWS" => IntegrationType::Aws,
            "AWS_PROXY" => IntegrationType::AwsProxy,
            "MOCK" => IntegrationType::Mock,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PassthroughBehavior {
    #[default]
    #[serde(rename = "WHEN_NO_MATCH")]
    WhenNoMatch,
    #[serde(rename = "WHEN_NO_TEMPLATES")]
    WhenNoTemplates,
    #[serde(rename = "NEVER")]
    Never,
}

impl PassthroughBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            PassthroughBehavior::WhenNoMatch => "WHEN_NO_MATCH",
            PassthroughBehavior::WhenNoTemplates => "WHEN_NO_TEMPLATES",
            PassthroughBehavior::Never => "NEVER",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "WHEN_NO_MATCH" => PassthroughBehavior::WhenNoMatch,
            "WHEN_NO_TEMPLATES" => PassthroughBehavior::WhenNoTemplates,
            "NEVER" => PassthroughBehavior::Never,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentHandling {
    #[serde(rename = "CONVERT_TO_BINARY")]
    ConvertToBinary,
    #[serde(rename = "CONVERT_TO_TEXT")]
    ConvertToText,
}

impl ContentHandling {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentHandling::ConvertToBinary => "CONVERT_TO_BINARY",
            ContentHandling::ConvertToText => "CONVERT_TO_TEXT",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "CONVERT_TO_BINARY" => ContentHandling::ConvertToBinary,
            "CONVERT_TO_TEXT" => ContentHandling::ConvertToText,
            _ => return None,
        })
    }
}

/// The integration limits of API Gateway REST APIs, in milliseconds.
pub const INTEGRATION_TIMEOUT_MS_MIN: u32 = 50;
pub const INTEGRATION_TIMEOUT_MS_MAX: u32 = 29_000;
pub const INTEGRATION_TIMEOUT_MS_DEFAULT: u32 = 29_000;

/// How a method reaches its backend (botocore `Integration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    #[serde(rename = "type")]
    pub integration_type: IntegrationType,
    /// The verb sent to the backend; `ANY` forwards the client's.
    pub http_method: Option<String>,
    pub uri: Option<String>,
    pub connection_type: Option<String>,
    pub connection_id: Option<String>,
    pub credentials: Option<String>,
    /// `integration.request.{path|querystring|header}.NAME` → a source expression
    /// (`method.request.*`, `stageVariables.*`, `context.*` or a `'literal'`).
    pub request_parameters: StringMap,
    /// Content type → mapping template.
    pub request_templates: StringMap,
    pub passthrough_behavior: PassthroughBehavior,
    pub content_handling: Option<ContentHandling>,
    pub timeout_in_millis: u32,
    pub cache_namespace: Option<String>,
    pub cache_key_parameters: Vec<String>,
    /// Keyed by the method response status code they produce.
    pub integration_responses: BTreeMap<String, IntegrationResponse>,
    pub tls_config: Option<TlsConfig>,
}

impl Integration {
    pub fn new(integration_type: IntegrationType) -> Self {
        Integration {
            integration_type,
            http_method: None,
            uri: None,
            connection_type: None,
            connection_id: None,
            credentials: None,
            request_parameters: BTreeMap::new(),
            request_templates: BTreeMap::new(),
            passthrough_behavior: PassthroughBehavior::default(),
            content_handling: None,
            timeout_in_millis: INTEGRATION_TIMEOUT_MS_DEFAULT,
            cache_namespace: None,
            cache_key_parameters: Vec::new(),
            integration_responses: BTreeMap::new(),
            tls_config: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponse {
    pub status_code: String,
    /// A regular expression matched against the backend status (HTTP) or error message; `None`
    /// marks the default response.
    pub selection_pattern: Option<String>,
    /// `method.response.header.NAME` → `integration.response.header.X`, `'literal'`, ...
    pub response_parameters: StringMap,
    pub response_templates: StringMap,
    pub content_handling: Option<ContentHandling>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    pub insecure_skip_verification: bool,
}

/// A Lambda or Cognito authorizer (botocore `Authorizer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorizer {
    pub id: String,
    pub name: String,
    /// `TOKEN`, `REQUEST`, `COGNITO_USER_POOLS` or `JWT`.
    #[serde(rename = "type")]
    pub authorizer_type: String,
    #[serde(rename = "providerARNs")]
    pub provider_arns: Vec<String>,
    pub auth_type: Option<String>,
    pub authorizer_uri: Option<String>,
    pub authorizer_credentials: Option<String>,
    pub identity_source: Option<String>,
    pub identity_validation_expression: Option<String>,
    pub authorizer_result_ttl_in_seconds: Option<i32>,
}

impl Authorizer {
    /// How long a decision is cached: `authorizerResultTtlInSeconds`, or AWS's default of 300
    /// seconds when it is not set (AWS renders an unset TTL as absent, so the model keeps
    /// `None`). 0 disables caching.
    pub fn result_ttl_seconds(&self) -> i32 {
        self.authorizer_result_ttl_in_seconds
            .unwrap_or(crate::admin::AUTHORIZER_TTL_DEFAULT_SECONDS)
    }
}

/// A request or response body schema (botocore `Model`); the schema is JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub schema: Option<String>,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestValidator {
    pub id: String,
    pub name: String,
    pub validate_request_body: bool,
    pub validate_request_parameters: bool,
}

/// A customised gateway error response (botocore `GatewayResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayResponse {
    pub response_type: String,
    pub status_code: Option<String>,
    pub response_parameters: StringMap,
    pub response_templates: StringMap,
    pub default_response: bool,
}

/// Everything that defines an API at one moment: what a deployment freezes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiDefinition {
    pub api: RestApi,
    /// Parents always come before their children; the root is first.
    pub resources: Vec<Resource>,
    pub authorizers: Vec<Authorizer>,
    pub models: Vec<Model>,
    pub request_validators: Vec<RequestValidator>,
    pub gateway_responses: Vec<GatewayResponse>,
}

impl ApiDefinition {
    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.iter().find(|resource| resource.id == id)
    }

    pub fn resource_by_path(&self, path: &str) -> Option<&Resource> {
        self.resources.iter().find(|resource| resource.path == path)
    }
}

/// An immutable snapshot of an API (botocore `Deployment`, plus the snapshot itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub description: Option<String>,
    /// Epoch seconds.
    pub created_date: i64,
    /// Shared with the API's working definition it was taken from (and with other deployments
    /// of the same definition) until one of them is edited: an edit copies (`Arc::make_mut`).
    /// A 10,000-route definition is tens of MB, and a deployment used to be a deep copy of it.
    /// serde encodes an `Arc<T>` as the `T` itself, so the wire and snapshot shapes are
    /// unchanged (a decoded state holds unshared copies until the next deployment).
    pub definition: Arc<ApiDefinition>,
}

/// Per-method operational settings (botocore `MethodSetting`): throttling and caching are
/// enforced by later issues, but the shape and defaults are AWS's from the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodSetting {
    pub metrics_enabled: bool,
    pub logging_level: Option<String>,
    pub data_trace_enabled: bool,
    pub throttling_burst_limit: i32,
    pub throttling_rate_limit: f64,
    pub caching_enabled: bool,
    pub cache_ttl_in_seconds: i32,
    pub cache_data_encrypted: bool,
    pub require_authorization_for_cache_control: bool,
    pub unauthorized_cache_control_header_strategy: String,
}

impl Default for MethodSetting {
    /// The values AWS materialises when one member of a method setting is first set.
    fn default() -> Self {
        MethodSetting {
            metrics_enabled: false,
            logging_level: None,
            data_trace_enabled: false,
            throttling_burst_limit: 5000,
            throttling_rate_limit: 10000.0,
            caching_enabled: false,
            cache_ttl_in_seconds: 300,
            cache_data_encrypted: false,
            require_authorization_for_cache_control: true,
            unauthorized_cache_control_header_strategy: "SUCCEED_WITH_RESPONSE_HEADER".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanarySettings {
    pub percent_traffic: f64,
    pub deployment_id: Option<String>,
    pub stage_variable_overrides: StringMap,
    pub use_stage_cache: bool,
}

/// A named pointer at a deployment, with variables and settings (botocore `Stage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub stage_name: String,
    pub deployment_id: String,
    pub description: Option<String>,
    pub cache_cluster_enabled: bool,
    pub cache_cluster_size: Option<String>,
    /// Keyed by `*/*` or `{resource path without leading slash}/{VERB}`.
    pub method_settings: BTreeMap<String, MethodSetting>,
    pub variables: StringMap,
    pub tracing_enabled: bool,
    pub canary_settings: Option<CanarySettings>,
    pub tags: StringMap,
    pub created_date: i64,
    pub last_updated_date: i64,
}

impl Stage {
    pub fn new(stage_name: impl Into<String>, deployment_id: impl Into<String>, now: i64) -> Self {
        Stage {
            stage_name: stage_name.into(),
            deployment_id: deployment_id.into(),
            description: None,
            cache_cluster_enabled: false,
            cache_cluster_size: None,
            method_settings: BTreeMap::new(),
            variables: BTreeMap::new(),
            tracing_enabled: false,
            canary_settings: None,
            tags: BTreeMap::new(),
            created_date: now,
            last_updated_date: now,
        }
    }
}

/// One API with its working definition, its deployments and its stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiState {
    /// The definition the management API edits; deployments share it until it is edited
    /// (copy on write, see [`Deployment::definition`]).
    pub definition: Arc<ApiDefinition>,
    pub deployments: Vec<Deployment>,
    pub stages: Vec<Stage>,
}

impl ApiState {
    pub fn deployment(&self, id: &str) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|deployment| deployment.id == id)
    }
}

/// An access key of the management API. The secret is sealed (AEAD) with the cluster's sealing
/// key, which only origins hold: the replicated state, its snapshots and the edges' copies never
/// contain it in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminKey {
    pub access_key_id: String,
    pub nonce: Vec<u8>,
    pub sealed_secret: Vec<u8>,
    pub created_date: i64,
    pub enabled: bool,
}

/// An API key (botocore `ApiKey`). The value itself is never in the replicated state in the
/// clear: edges match callers by `value_hash` (hex SHA-256 of the value), and origins, which
/// hold the sealing key, open `sealed_value` for `includeValue` reads. Origins strip
/// `sealed_value` from what they stream to edges (see `cluster::redact_for_edge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub customer_id: Option<String>,
    pub enabled: bool,
    pub created_date: i64,
    pub last_updated_date: i64,
    /// `{restApiId}/{stageName}` entries (kept and echoed; AWS's legacy association).
    pub stage_keys: Vec<String>,
    pub tags: StringMap,
    /// Lower-case hex SHA-256 of the key's value.
    pub value_hash: String,
    pub nonce: Vec<u8>,
    pub sealed_value: Vec<u8>,
}

/// A token bucket's settings (botocore `ThrottleSettings`): `burst_limit` is the bucket size,
/// `rate_limit` the refill per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleSettings {
    pub burst_limit: i32,
    pub rate_limit: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaPeriod {
    #[serde(rename = "DAY")]
    Day,
    #[serde(rename = "WEEK")]
    Week,
    #[serde(rename = "MONTH")]
    Month,
}

/// botocore `QuotaSettings`: `limit` requests per `period`, the period shifted by `offset`
/// (days into a week or month, hours... as AWS defines it; see `quota::period_bounds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSettings {
    pub limit: i32,
    pub offset: i32,
    pub period: QuotaPeriod,
}

/// One API stage a usage plan covers, with per-method throttle overrides keyed
/// `{resourcePath}/{httpMethod}` (for example `/pets/GET`), as botocore's `ApiStage.throttle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiStage {
    pub api_id: String,
    pub stage: String,
    pub throttle: BTreeMap<String, ThrottleSettings>,
}

/// botocore `UsagePlan`, plus the ids of the API keys attached to it (its usage plan keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsagePlan {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub api_stages: Vec<ApiStage>,
    pub throttle: Option<ThrottleSettings>,
    pub quota: Option<QuotaSettings>,
    pub product_code: Option<String>,
    pub tags: StringMap,
    pub key_ids: std::collections::BTreeSet<String>,
}

/// The account-level settings (botocore `Account`): the account throttle applies to every API.
///
/// Unlike AWS, whose account throttle (10,000 requests per second, bursts of 5,000) is a
/// service quota of a shared platform, a self-hosted cluster has none until an operator sets
/// one with UpdateAccount: a gateway should not refuse traffic its machines can carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSettings {
    pub cloudwatch_role_arn: Option<String>,
    pub throttle: Option<ThrottleSettings>,
}

impl AccountSettings {
    /// What an account throttle starts from when one of its members is first set: AWS's
    /// default.
    pub const AWS_DEFAULT_THROTTLE: ThrottleSettings = ThrottleSettings {
        burst_limit: 5000,
        rate_limit: 10000.0,
    };
}

/// The whole replicated gateway state an edge serves from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayState {
    /// The Raft applied index (or, in `dev`, a counter of local changes) this state reflects.
    pub version: u64,
    pub apis: BTreeMap<String, ApiState>,
    /// Management API access keys, by access key id.
    pub admin_keys: BTreeMap<String, AdminKey>,
    /// API keys by id.
    pub api_keys: BTreeMap<String, ApiKey>,
    /// Usage plans by id.
    pub usage_plans: BTreeMap<String, UsagePlan>,
    pub account: AccountSettings,
    /// The response cache generation of each stage, keyed `{apiId}/{stageName}`; a flush bumps
    /// it, which orphans every cached entry of the stage at once. Absent means 0.
    pub cache_generations: BTreeMap<String, u64>,
    /// Quota leases and usage counts (see `quota`).
    pub quota: crate::quota::QuotaLedger,
    /// IAM users, access keys (secrets sealed) and inline policies (see `iam`).
    pub iam: crate::iam::IamState,
    /// The authorizer cache generation of each stage, keyed `{apiId}/{stageName}` like
    /// `cache_generations`; FlushStageAuthorizersCache bumps it, and the data plane puts it in
    /// its authorizer-cache keys, so a flush orphans every cached decision of the stage on
    /// every node at once. Absent means 0.
    pub authorizer_generations: BTreeMap<String, u64>,
}

/// True when `id` has the shape of an API Gateway identifier: 10 lowercase letters or digits.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 10
        && id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
}
