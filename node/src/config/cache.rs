//! Response-cache settings, resolved once per deployment so the request path only reads them.
//!
//! API Gateway spreads a method's cache behaviour over three places: the stage
//! (`cacheClusterEnabled`, `cacheClusterSize`), the stage's method settings (`*/*`, then a
//! `{path}/{VERB}` override) and the integration (`cacheKeyParameters`). Merging them per request
//! would cost a map lookup and string formatting on every call; here a method either compiles
//! to `None` (not cached: the pipeline pays one branch) or to a [`MethodCache`] with everything
//! the cache needs, including its metric label.
//!
//! Two stage variables opt into behaviour API Gateway does not have (stage variables are the
//! knob users already hold): `portico.cache.staleIfError` (seconds a stale entry may be served
//! when the backend fails or answers 5xx) and `portico.cache.header` (`true` adds
//! `x-cache: Hit|Miss|Stale`).

use std::sync::Arc;

use portico_proto::{Integration, MethodSetting, Stage};

/// AWS's default cache TTL (seconds) and its bounds.
pub const TTL_SECONDS_DEFAULT: i32 = 300;
pub const TTL_SECONDS_MAX: i32 = 3600;

/// The stage variable that sets the serve-stale-if-error window, in seconds.
pub const STALE_IF_ERROR_VARIABLE: &str = "portico.cache.staleIfError";
/// The stage variable that turns the `x-cache` response header on (`true`).
pub const HEADER_VARIABLE: &str = "portico.cache.header";
/// The longest stale-if-error window honoured (one day): entries are kept that long past their
/// TTL, so the window is bounded like everything else the cache holds.
pub const STALE_IF_ERROR_SECONDS_MAX: u64 = 86_400;

/// The stage's cache, when `cacheClusterEnabled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCache {
    /// `{apiId}/{stageName}`: the key of the stage's store and of its cache generation.
    pub stage_key: Arc<str>,
    /// The stage's flush counter (`GatewayState.cache_generations`), part of every key, so a
    /// FlushStageCache orphans every entry at once.
    pub generation: u64,
    /// `cacheClusterSize` as bytes (before any node-level cap).
    pub capacity_bytes: u64,
    pub stale_if_error_ms: u64,
    pub x_cache_header: bool,
    /// The metric label of every cached method of the stage (filled by `compile`), so their
    /// counters can be created before the first request.
    pub metric_methods: Vec<Arc<str>>,
}

/// How an unauthorized `Cache-Control: max-age=0` is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnauthorizedStrategy {
    FailWith403,
    SucceedWithResponseHeader,
    SucceedWithoutResponseHeader,
}

impl UnauthorizedStrategy {
    fn parse(text: &str) -> Self {
        match text {
            "FAIL_WITH_403" => UnauthorizedStrategy::FailWith403,
            "SUCCEED_WITHOUT_RESPONSE_HEADER" => UnauthorizedStrategy::SucceedWithoutResponseHeader,
            // AWS's default; the management API refuses other values.
            _ => UnauthorizedStrategy::SucceedWithResponseHeader,
        }
    }
}

/// One declared cache key parameter (`method.request.{querystring,header,path}.NAME`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyParameter {
    Query(String),
    /// Lower case: header names compare without case.
    Header(String),
    Path(String),
}

/// A cached method: everything the cache needs, decided at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodCache {
    pub ttl_ms: u64,
    /// Sorted and deduplicated, so the order of the declaration does not split the cache.
    pub key_parameters: Vec<KeyParameter>,
    pub require_authorization: bool,
    pub unauthorized_strategy: UnauthorizedStrategy,
    /// The `method` label of the cache metrics: `GET /pets/{id}`.
    pub metric_method: Arc<str>,
}

/// `cacheClusterSize` (GB, AWS's enum) → bytes. Anything else is AWS's default, 0.5 GB.
pub fn cluster_size_bytes(size: Option<&str>) -> u64 {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let gigabytes = match size {
        Some(text @ ("0.5" | "1.6" | "6.1" | "13.5" | "28.4" | "58.2" | "118" | "237")) => {
            text.parse::<f64>().unwrap_or(0.5)
        }
        _ => 0.5,
    };
    (gigabytes * GIB) as u64
}

/// The stage's cache settings, or `None` when the stage has no cache cluster.
pub fn compile_stage(api_id: &str, stage: &Stage, generation: u64) -> Option<StageCache> {
    if !stage.cache_cluster_enabled {
        return None;
    }
    let stale_if_error_seconds = stage
        .variables
        .get(STALE_IF_ERROR_VARIABLE)
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(0)
        .min(STALE_IF_ERROR_SECONDS_MAX);
    Some(StageCache {
        stage_key: Arc::from(format!("{api_id}/{}", stage.stage_name)),
        generation,
        capacity_bytes: cluster_size_bytes(stage.cache_cluster_size.as_deref()),
        stale_if_error_ms: stale_if_error_seconds * 1000,
        x_cache_header: stage
            .variables
            .get(HEADER_VARIABLE)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true")),
        metric_methods: Vec::new(),
    })
}

/// The method's cache settings, or `None` when it is not cached. GET methods are cached by
/// default when the stage cache is on (under `*/*` when that exists); any other verb only when
/// its own `{path}/{VERB}` setting enables caching. A TTL of 0 disables caching.
pub fn compile_method(
    stage: &Stage,
    resource_path: &str,
    verb: &str,
    integration: Option<&Integration>,
) -> Option<MethodCache> {
    if !stage.cache_cluster_enabled {
        return None;
    }
    let own_key = format!("{}/{verb}", resource_path.trim_start_matches('/'));
    let default_get = MethodSetting {
        caching_enabled: true,
        ..MethodSetting::default()
    };
    let setting = match stage.method_settings.get(&own_key) {
        Some(setting) => setting,
        None if verb == "GET" => stage.method_settings.get("*/*").unwrap_or(&default_get),
        None => return None,
    };
    if !setting.caching_enabled || setting.cache_ttl_in_seconds <= 0 {
        return None;
    }
    let ttl_seconds = setting.cache_ttl_in_seconds.min(TTL_SECONDS_MAX);
    let mut key_parameters: Vec<KeyParameter> = integration
        .map(|integration| integration.cache_key_parameters.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|name| parse_key_parameter(name))
        .collect();
    key_parameters.sort();
    key_parameters.dedup();
    Some(MethodCache {
        ttl_ms: u64::try_from(ttl_seconds).unwrap_or(0) * 1000,
        key_parameters,
        require_authorization: setting.require_authorization_for_cache_control,
        unauthorized_strategy: UnauthorizedStrategy::parse(
            &setting.unauthorized_cache_control_header_strategy,
        ),
        metric_method: Arc::from(format!("{verb} {resource_path}")),
    })
}

/// `method.request.querystring.X` and friends; anything else (a literal, a context variable)
/// cannot vary per request in a way the key could use, and is ignored.
fn parse_key_parameter(text: &str) -> Option<KeyParameter> {
    let named = |prefix: &str| {
        text.strip_prefix(prefix)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
    };
    if let Some(name) = named("method.request.querystring.")
        .or_else(|| named("method.request.multivaluequerystring."))
    {
        return Some(KeyParameter::Query(name));
    }
    if let Some(name) =
        named("method.request.header.").or_else(|| named("method.request.multivalueheader."))
    {
        return Some(KeyParameter::Header(name.to_ascii_lowercase()));
    }
    named("method.request.path.").map(KeyParameter::Path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(enabled: bool) -> Stage {
        let mut stage = Stage::new("prod", "d1", 0);
        stage.cache_cluster_enabled = enabled;
        stage
    }

    #[test]
    fn get_is_cached_by_default_other_verbs_only_by_their_own_setting() {
        let mut stage = stage(true);
        let get = compile_method(&stage, "/pets", "GET", None).expect("GET cached");
        assert_eq!(get.ttl_ms, 300_000);
        assert!(get.require_authorization);
        assert_eq!(
            get.unauthorized_strategy,
            UnauthorizedStrategy::SucceedWithResponseHeader
        );
        assert_eq!(&*get.metric_method, "GET /pets");
        assert!(compile_method(&stage, "/pets", "POST", None).is_none());

        // `*/*` does not reach other verbs, but governs GET.
        stage.method_settings.insert(
            "*/*".to_string(),
            MethodSetting {
                caching_enabled: true,
                cache_ttl_in_seconds: 10,
                ..MethodSetting::default()
            },
        );
        assert!(compile_method(&stage, "/pets", "POST", None).is_none());
        assert_eq!(
            compile_method(&stage, "/pets", "GET", None).map(|m| m.ttl_ms),
            Some(10_000)
        );
        stage.method_settings.insert(
            "pets/POST".to_string(),
            MethodSetting {
                caching_enabled: true,
                cache_ttl_in_seconds: 5000,
                unauthorized_cache_control_header_strategy: "FAIL_WITH_403".to_string(),
                ..MethodSetting::default()
            },
        );
        let post = compile_method(&stage, "/pets", "POST", None).expect("POST cached");
        assert_eq!(post.ttl_ms, 3_600_000);
        assert_eq!(
            post.unauthorized_strategy,
            UnauthorizedStrategy::FailWith403
        );
        // The root resource's key is `/GET`.
        stage.method_settings.insert(
            "/GET".to_string(),
            MethodSetting {
                caching_enabled: true,
                cache_ttl_in_seconds: 0,
                ..MethodSetting::default()
            },
        );
        assert!(compile_method(&stage, "/", "GET", None).is_none());
    }

    #[test]
    fn nothing_is_cached_without_the_stage_cache() {
        let stage = stage(false);
        assert!(compile_method(&stage, "/pets", "GET", None).is_none());
        assert!(compile_stage("a", &stage, 0).is_none());
    }

    #[test]
    fn key_parameters_sorted_and_filtered() {
        let stage = stage(true);
        let mut integration = Integration::new(portico_proto::IntegrationType::HttpProxy);
        integration.cache_key_parameters = vec![
            "method.request.querystring.b".into(),
            "method.request.header.X-Tenant".into(),
            "method.request.querystring.a".into(),
            "method.request.querystring.a".into(),
            "context.requestId".into(),
        ];
        let method = compile_method(&stage, "/pets", "GET", Some(&integration)).expect("cached");
        assert_eq!(
            method.key_parameters,
            [
                KeyParameter::Query("a".into()),
                KeyParameter::Query("b".into()),
                KeyParameter::Header("x-tenant".into()),
            ]
        );
    }

    #[test]
    fn stage_settings() {
        let mut stage = stage(true);
        stage.cache_cluster_size = Some("1.6".into());
        stage
            .variables
            .insert(STALE_IF_ERROR_VARIABLE.into(), "30".into());
        stage
            .variables
            .insert(HEADER_VARIABLE.into(), "true".into());
        let compiled = compile_stage("api", &stage, 7).expect("enabled");
        assert_eq!(&*compiled.stage_key, "api/prod");
        assert_eq!(compiled.generation, 7);
        assert_eq!(
            compiled.capacity_bytes,
            (1.6 * 1024.0 * 1024.0 * 1024.0) as u64
        );
        assert_eq!(compiled.stale_if_error_ms, 30_000);
        assert!(compiled.x_cache_header);
        assert_eq!(cluster_size_bytes(Some("bogus")), 512 * 1024 * 1024);
    }
}
