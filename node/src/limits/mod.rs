//! API keys, throttling and quotas on the request path (the stage between route and
//! integrate).
//!
//! ```text
//! routed request ─▶ API key (x-api-key → SHA-256 → key → plan of this stage)  ─▶ 403 Forbidden
//!                ─▶ token buckets: account, stage method, plan, plan method   ─▶ 429 Too Many Requests
//!                ─▶ quota: spend a leased unit                                 ─▶ 429 Limit Exceeded
//! ```
//!
//! Everything the request path reads is compiled from the replicated state into
//! [`CompiledLimits`] and swapped atomically; buckets and quota pools are shared between
//! compilations through a registry (touched only when compiling and by the reporters), so a
//! new deployment or key does not reset anyone's bucket. Admission is local: the only wait is a
//! request whose key has no leased quota unit on this edge yet (see [`quota`]).

pub mod bucket;
pub mod demand;
pub mod quota;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use portico_proto::GatewayState;
use portico_proto::model::{ApiKeySource, ThrottleSettings};
use portico_proto::quota::QuotaOp;
use portico_proto::throttle::BucketKey;

use crate::request::BoxFuture;
use crate::respond::GatewayError;
use crate::route::Routed;
use bucket::{Bucket, Clock};
use quota::QuotaPool;

/// How long a request waits for a quota lease when its key has none on this edge yet.
pub const QUOTA_PATIENCE: Duration = Duration::from_secs(2);

/// Where an edge's quota traffic goes: an origin (which proposes it through Raft), or `dev`'s
/// own state machine.
pub trait QuotaAuthority: Send + Sync + 'static {
    fn submit(&self, ops: Vec<QuotaOp>) -> BoxFuture<'_, Result<(), String>>;
}

/// Who this node is to the ledger. A restarted edge is a new incarnation: it cannot know what
/// its previous life spent, so it never reuses that life's leases.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub edge_id: u64,
    pub incarnation: u64,
}

impl Identity {
    pub fn new(edge_id: u64) -> Self {
        let mut bytes = [0u8; 8];
        // A clash would need two lives of one edge to draw the same 64 random bits. Should the
        // system's generator fail, the start time and process id still tell lives apart.
        let random =
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_ok();
        let incarnation = if random {
            u64::from_le_bytes(bytes)
        } else {
            crate::time::epoch_millis(std::time::SystemTime::now())
                ^ (u64::from(std::process::id()) << 44)
        };
        Identity {
            edge_id,
            incarnation,
        }
    }
}

/// A usage plan as it applies to one key on one stage.
#[derive(Debug)]
struct Binding {
    plan: Option<Arc<Bucket>>,
    /// Per-method overrides, keyed `/{resource path}/{VERB}` as the plan writes them.
    methods: HashMap<String, Arc<Bucket>>,
    pool: Arc<QuotaPool>,
}

#[derive(Debug)]
struct CompiledKey {
    enabled: bool,
    /// `(api id, stage, the plan binding)`, one per API stage the key's plans cover (a key
    /// reaches a stage through at most one plan). A short list, searched linearly: a key is in
    /// one or a few plans, and two nested hash maps per key cost ~700 bytes each, 70 MB for
    /// 100,000 keys. The ids are shared between keys (interned while compiling).
    stages: Vec<(Arc<str>, Arc<str>, Binding)>,
}

impl CompiledKey {
    fn binding(&self, api_id: &str, stage: &str) -> Option<&Binding> {
        self.stages
            .iter()
            .find(|(api, name, _)| &**api == api_id && &**name == stage)
            .map(|(_, _, binding)| binding)
    }
}

#[derive(Debug, Default)]
struct StageLimits {
    /// Throttled methods keyed `{resource path without leading slash}/{VERB}`, each with its
    /// own bucket (from its own setting or the stage's `*/*`).
    methods: HashMap<String, Arc<Bucket>>,
}

/// What the request path reads, rebuilt when keys, plans or settings change.
#[derive(Debug, Default)]
pub struct CompiledLimits {
    account: Option<Arc<Bucket>>,
    /// api id → stage → throttled methods.
    stages: HashMap<String, HashMap<String, StageLimits>>,
    /// SHA-256 of the key value → key.
    keys: HashMap<[u8; 32], CompiledKey>,
    /// APIs whose key source is the authorizer (no `x-api-key`).
    authorizer_sourced: std::collections::HashSet<String>,
}

#[derive(Debug, Default)]
struct Registry {
    buckets: HashMap<BucketKey, Arc<Bucket>>,
    pools: HashMap<(String, String), Arc<QuotaPool>>,
}

impl Registry {
    fn bucket(&mut self, key: BucketKey, settings: &ThrottleSettings) -> Arc<Bucket> {
        let bucket = self
            .buckets
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Bucket::new(
                    key,
                    settings.rate_limit,
                    f64::from(settings.burst_limit),
                ))
            })
            .clone();
        bucket.set_limits(settings.rate_limit, f64::from(settings.burst_limit));
        bucket
    }
}

/// The limits stage of one node.
pub struct Limits {
    identity: Identity,
    clock: Clock,
    compiled: ArcSwap<CompiledLimits>,
    registry: Mutex<Registry>,
    /// Wakes the quota reporter (a request waits for a grant).
    wake: tokio::sync::Notify,
    /// Wakes the demand reporter (a bucket saw its first request after being idle).
    demand_wake: tokio::sync::Notify,
    /// The pools that saw requests since they were last quiet.
    active: quota::ActivePools,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    i64::try_from(crate::time::epoch_millis(std::time::SystemTime::now())).unwrap_or(i64::MAX)
}

/// `{resource path without leading slash}/{VERB}`: the key of a stage's method setting.
fn setting_key(resource_path: &str, verb: &str) -> String {
    format!("{}/{verb}", resource_path.trim_start_matches('/'))
}

impl Limits {
    pub fn new(identity: Identity) -> Self {
        Limits {
            identity,
            clock: Clock::default(),
            compiled: ArcSwap::from_pointee(CompiledLimits::default()),
            registry: Mutex::new(Registry::default()),
            wake: tokio::sync::Notify::new(),
            demand_wake: tokio::sync::Notify::new(),
            active: quota::ActivePools::default(),
        }
    }

    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// The registry; a panic elsewhere while it was held does not stop keys, throttles and
    /// quotas from following the state.
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every bucket's share back to the whole bucket: an edge cut off from every origin
    /// shares the rate among what it can see, which is itself.
    pub fn reset_shares(&self) {
        let now = self.clock.now();
        for bucket in self.registry().buckets.values() {
            bucket.set_share(1.0, now);
        }
    }

    /// Takes in a new state: recompiles what the request path reads when `routes_changed`
    /// (anything but quota bookkeeping changed), and always hands the ledger's view to the
    /// quota pools. Never called on the request path.
    pub fn observe(&self, state: &GatewayState, routes_changed: bool) {
        let mut registry = self.registry();
        if routes_changed {
            let compiled = compile(state, &mut registry);
            self.compiled.store(Arc::new(compiled));
        }
        let now = now_ms();
        let mut mine: HashMap<(&str, &str), Vec<(u64, &portico_proto::quota::Lease)>> =
            HashMap::new();
        for (id, lease) in &state.quota.leases {
            if lease.edge_id == self.identity.edge_id
                && lease.incarnation == self.identity.incarnation
            {
                mine.entry((
                    lease.account.plan_id.as_str(),
                    lease.account.key_id.as_str(),
                ))
                .or_default()
                .push((*id, lease));
            }
        }
        if routes_changed {
            // Pools a recompile dropped (their key left the plan) are no longer reported.
            self.active.prune(|pool| {
                registry
                    .pools
                    .get(&(pool.plan_id.clone(), pool.key_id.clone()))
                    .is_some_and(|held| Arc::ptr_eq(held, pool))
            });
        }
        // Only pools that saw requests lately, and those the ledger shows leases of ours for:
        // not every key's pool (there may be 100,000).
        let mut candidates = self.active.snapshot();
        for (plan_id, key_id) in mine.keys() {
            if let Some(pool) = registry
                .pools
                .get(&((*plan_id).to_string(), (*key_id).to_string()))
                && !candidates.iter().any(|listed| Arc::ptr_eq(listed, pool))
            {
                candidates.push(pool.clone());
            }
        }
        for pool in &candidates {
            let (plan_id, key_id) = (&pool.plan_id, &pool.key_id);
            let leases = mine
                .get(&(plan_id.as_str(), key_id.as_str()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            // Keys nobody used lately, not refused, and we hold nothing of: nothing to learn.
            if leases.is_empty() && pool.is_quiet() {
                continue;
            }
            let Some(plan) = state.usage_plans.get(plan_id) else {
                continue;
            };
            pool.set_has_quota(plan.quota.is_some());
            let has_units = state
                .quota
                .available(plan, key_id, now)
                .is_none_or(|left| left > 0);
            let period_end = plan.quota.map_or(i64::MAX, |quota| {
                portico_proto::quota::period_bounds(&quota, now).1
            });
            pool.adopt(leases, has_units, period_end);
        }
    }

    /// Decides whether the routed request may proceed.
    pub async fn admit(
        &self,
        routed: &Routed,
        headers: &http::HeaderMap,
        authorizer_key: Option<&str>,
    ) -> Result<(), (GatewayError, &'static str)> {
        let compiled = self.compiled.load_full();
        let api_id = routed.stage.api_id.as_ref();
        let stage = routed.stage.name.as_ref();
        let method = &routed.method;

        // The plan binding of the caller's key, when the method requires a key.
        let mut binding = None;
        if method.api_key_required {
            let value = if compiled.authorizer_sourced.contains(api_id) {
                let Some(key) = authorizer_key else {
                    return Err((
                        GatewayError::Forbidden,
                        "the API's key source is AUTHORIZER and no authorizer named a key (usageIdentifierKey)",
                    ));
                };
                key.as_bytes()
            } else {
                let Some(value) = headers.get("x-api-key") else {
                    return Err((GatewayError::Forbidden, "no x-api-key header"));
                };
                value.as_bytes()
            };
            let digest = ring::digest::digest(&ring::digest::SHA256, value);
            let mut hash = [0u8; 32];
            hash.copy_from_slice(digest.as_ref());
            let Some(key) = compiled.keys.get(&hash) else {
                return Err((GatewayError::Forbidden, "unknown API key"));
            };
            if !key.enabled {
                return Err((GatewayError::Forbidden, "the API key is disabled"));
            }
            let Some(found) = key.binding(api_id, stage) else {
                return Err((
                    GatewayError::Forbidden,
                    "the API key is in no usage plan of this stage",
                ));
            };
            binding = Some(found);
        }

        // Token buckets, every level; a refusal gives back the tokens taken above it.
        let now = self.clock.now();
        let mut taken: [Option<&Arc<Bucket>>; 4] = [None; 4];
        let stage_method = compiled
            .stages
            .get(api_id)
            .and_then(|stages| stages.get(stage))
            .and_then(|limits| {
                if limits.methods.is_empty() {
                    return None;
                }
                limits
                    .methods
                    .get(&setting_key(&method.resource_path, &method.http_method))
            });
        let plan_method = binding.and_then(|binding| {
            if binding.methods.is_empty() {
                return None;
            }
            binding
                .methods
                .get(&format!("{}/{}", method.resource_path, method.http_method))
        });
        let candidates = [
            compiled.account.as_ref(),
            stage_method,
            binding.and_then(|binding| binding.plan.as_ref()),
            plan_method,
        ];
        for (level, bucket) in candidates.into_iter().flatten().enumerate() {
            let admitted = bucket.try_acquire(now);
            if bucket.just_woke() {
                self.demand_wake.notify_one();
            }
            if !admitted {
                for taken in taken.iter().take(level).flatten() {
                    taken.refund();
                }
                return Err((GatewayError::Throttled, "throttled"));
            }
            taken[level] = Some(bucket);
        }

        // The quota, after the throttles: a throttled request spends no quota.
        if let Some(binding) = binding {
            let pool = &binding.pool;
            if pool.has_quota() {
                let enlist = || self.active.enlist(pool);
                if let Err(why) = pool.spend(now_ms, &self.wake, enlist, QUOTA_PATIENCE).await {
                    // A request refused for its quota does not drain the shared buckets.
                    for bucket in taken.iter().flatten() {
                        bucket.refund();
                    }
                    return Err((GatewayError::QuotaExceeded, why));
                }
            } else {
                pool.count();
                self.active.enlist(pool);
            }
        }
        Ok(())
    }

    /// Runs the quota reporter until the process ends: every [`quota::REPORT_EVERY`] (or at
    /// once when a request waits for a grant) it sends the pools' ops to `authority`.
    pub async fn run_quota_reporter(self: Arc<Self>, authority: Arc<dyn QuotaAuthority>) {
        loop {
            let _ = tokio::time::timeout(quota::REPORT_EVERY, self.wake.notified()).await;
            let pools = self.active.snapshot();
            let now = now_ms();
            let ops: Vec<QuotaOp> = pools
                .iter()
                .filter(|pool| !pool.is_quiet())
                .flat_map(|pool| {
                    pool.reporter_ops(now, self.identity.edge_id, self.identity.incarnation)
                })
                .collect();
            // Pools the reporter has nothing more to do for leave the list (a request puts
            // them back); so do pools a recompile dropped from the registry.
            self.active.prune(|_| true);
            if ops.is_empty() {
                continue;
            }
            let counts: Vec<(String, String, u64)> = ops
                .iter()
                .filter_map(|op| match op {
                    QuotaOp::Count {
                        plan_id,
                        key_id,
                        count,
                    } => Some((plan_id.clone(), key_id.clone(), *count)),
                    _ => None,
                })
                .collect();
            let submitted =
                tokio::time::timeout(Duration::from_secs(5), authority.submit(ops)).await;
            let failed = match submitted {
                Ok(Ok(())) => false,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "quota report refused");
                    true
                }
                Err(_) => {
                    tracing::warn!("quota report timed out");
                    true
                }
            };
            // Leases and reports are retried from the pools' own state; counts are put back.
            if failed && !counts.is_empty() {
                let registry = self.registry();
                for (plan_id, key_id, count) in counts {
                    if let Some(pool) = registry.pools.get(&(plan_id, key_id)) {
                        pool.recount(count);
                    }
                }
            }
        }
    }

    /// Resolves when a bucket wakes from idle (see [`Bucket::just_woke`]).
    pub async fn demand_woken(&self) {
        self.demand_wake.notified().await;
    }

    /// Every bucket's demand since the last call, in requests per second over `window`.
    pub fn take_demand(&self, window: Duration) -> Vec<(BucketKey, f64)> {
        let registry = self.registry();
        let seconds = window.as_secs_f64().max(0.001);
        // Only buckets that saw requests (or just stopped seeing them): an edge may hold
        // buckets for many idle keys.
        registry
            .buckets
            .values()
            .filter_map(|bucket| {
                let demand = bucket.take_reportable_demand()?;
                Some((bucket.key.clone(), demand as f64 / seconds))
            })
            .collect()
    }

    /// Applies the shares an origin computed for this edge.
    pub fn set_shares(&self, shares: &[(BucketKey, f64)]) {
        let registry = self.registry();
        for (key, share) in shares {
            if let Some(bucket) = registry.buckets.get(key) {
                bucket.set_share(*share, self.clock.now());
            }
        }
    }
}

/// One shared copy of `text` per compilation.
fn intern<'s>(interned: &mut HashMap<&'s str, Arc<str>>, text: &'s str) -> Arc<str> {
    interned
        .entry(text)
        .or_insert_with(|| Arc::from(text))
        .clone()
}

/// Builds what the request path reads from the state, reusing the registry's buckets and pools.
fn compile(state: &GatewayState, registry: &mut Registry) -> CompiledLimits {
    let mut compiled = CompiledLimits {
        account: state
            .account
            .throttle
            .as_ref()
            .map(|throttle| registry.bucket(BucketKey::Account, throttle)),
        ..CompiledLimits::default()
    };
    for (api_id, api) in &state.apis {
        if api.definition.api.api_key_source == ApiKeySource::Authorizer {
            compiled.authorizer_sourced.insert(api_id.clone());
        }
        for stage in &api.stages {
            if stage.method_settings.is_empty() {
                continue;
            }
            let Some(deployment) = api.deployment(&stage.deployment_id) else {
                continue;
            };
            let mut limits = StageLimits::default();
            for resource in &deployment.definition.resources {
                for verb in resource.resource_methods.keys() {
                    let key = setting_key(&resource.path, verb);
                    let Some(setting) = stage
                        .method_settings
                        .get(&key)
                        .or_else(|| stage.method_settings.get("*/*"))
                    else {
                        continue;
                    };
                    let settings = ThrottleSettings {
                        burst_limit: setting.throttling_burst_limit,
                        rate_limit: setting.throttling_rate_limit,
                    };
                    let bucket = registry.bucket(
                        BucketKey::StageMethod {
                            api_id: api_id.clone(),
                            stage: stage.stage_name.clone(),
                            method: key.clone(),
                        },
                        &settings,
                    );
                    limits.methods.insert(key, bucket);
                }
            }
            compiled
                .stages
                .entry(api_id.clone())
                .or_default()
                .insert(stage.stage_name.clone(), limits);
        }
    }
    let mut interned: HashMap<&str, Arc<str>> = HashMap::new();
    for (key_id, key) in &state.api_keys {
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(&key.value_hash, &mut hash).is_err() {
            tracing::error!(key_id, "API key without a valid value hash; ignoring it");
            continue;
        }
        let mut compiled_key = CompiledKey {
            enabled: key.enabled,
            stages: Vec::new(),
        };
        for plan in state.usage_plans.values() {
            if !plan.key_ids.contains(key_id) {
                continue;
            }
            let pool = registry
                .pools
                .entry((plan.id.clone(), key_id.clone()))
                .or_insert_with(|| {
                    Arc::new(QuotaPool::new(
                        plan.id.clone(),
                        key_id.clone(),
                        plan.quota.is_some(),
                    ))
                })
                .clone();
            pool.set_has_quota(plan.quota.is_some());
            for api_stage in &plan.api_stages {
                let plan_bucket = plan.throttle.as_ref().map(|throttle| {
                    registry.bucket(
                        BucketKey::Plan {
                            plan_id: plan.id.clone(),
                            key_id: key_id.clone(),
                        },
                        throttle,
                    )
                });
                let methods = api_stage
                    .throttle
                    .iter()
                    .map(|(method, throttle)| {
                        let bucket = registry.bucket(
                            BucketKey::PlanMethod {
                                plan_id: plan.id.clone(),
                                key_id: key_id.clone(),
                                api_id: api_stage.api_id.clone(),
                                stage: api_stage.stage.clone(),
                                method: method.clone(),
                            },
                            throttle,
                        );
                        (method.clone(), bucket)
                    })
                    .collect();
                let binding = Binding {
                    plan: plan_bucket,
                    methods,
                    pool: pool.clone(),
                };
                // The state keeps a key to one plan per stage; should two name the same stage,
                // the later plan wins, as a map insertion did.
                match compiled_key
                    .stages
                    .iter_mut()
                    .find(|(api, name, _)| **api == *api_stage.api_id && **name == *api_stage.stage)
                {
                    Some(existing) => existing.2 = binding,
                    None => compiled_key.stages.push((
                        intern(&mut interned, &api_stage.api_id),
                        intern(&mut interned, &api_stage.stage),
                        binding,
                    )),
                }
            }
        }
        // A Vec grows to 4 entries at its first push; most keys have one.
        compiled_key.stages.shrink_to_fit();
        compiled.keys.insert(hash, compiled_key);
    }
    // Buckets nothing refers to any more are dropped (their demand is no longer reported).
    registry
        .buckets
        .retain(|_, bucket| Arc::strong_count(bucket) > 1);
    // Pools of keys no longer in their plan go: nothing more is reported for them (the
    // ledger closes their leases).
    registry.pools.retain(|(plan_id, key_id), _| {
        state
            .usage_plans
            .get(plan_id)
            .is_some_and(|plan| plan.key_ids.contains(key_id))
    });
    compiled
}

#[cfg(test)]
mod tests;
