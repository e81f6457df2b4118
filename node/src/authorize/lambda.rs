//! Lambda authorizers (TOKEN and REQUEST): the identity check before any invocation, the
//! event AWS sends, the function's answer parsed into a policy, and the decision cache.
//!
//! The cache is keyed by stage, deployment, authorizer, the stage's authorizer-cache generation (bumped by
//! FlushStageAuthorizersCache, so a flush is O(1) on every node) and the identity values, and
//! each entry lives for its authorizer's TTL. Concurrent misses for one key make one
//! invocation. Only answers with a policy are cached: `Unauthorized` and failures are not, so
//! a function that recovers is asked again at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use serde_json::{Map, Value};

use super::Decision;
use super::policy::Policy;
use crate::config::auth::{AuthorizerKind, CompiledAuthorizer, IdentitySource};
use crate::integrate::{self, Integrations, params};
use crate::request::{Authorized, Failure, RequestView};
use crate::respond::GatewayError;

/// How long an authorizer function may take, request to last byte.
pub const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest identity (all sources together) that is looked up or sent to a function.
pub const MAX_IDENTITY_BYTES: usize = 16 * 1024;
/// Fixed bookkeeping per cached decision, on top of its key and the function's answer.
const ENTRY_OVERHEAD_BYTES: u32 = 256;

pub type Cached = Arc<CachedDecision>;

#[derive(Debug)]
pub struct CachedDecision {
    pub decision: Decision,
    ttl: Duration,
    weight: u32,
}

struct DecisionExpiry;

impl Expiry<Arc<[u8]>, Cached> for DecisionExpiry {
    fn expire_after_create(
        &self,
        _key: &Arc<[u8]>,
        value: &Cached,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The node's cache of authorizer decisions, bounded in bytes.
pub struct DecisionCache {
    cache: moka::future::Cache<Arc<[u8]>, Cached>,
}

pub fn decision_cache(max_bytes: u64) -> DecisionCache {
    DecisionCache {
        cache: moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &Arc<[u8]>, value: &Cached| {
                value
                    .weight
                    .saturating_add(u32::try_from(key.len()).unwrap_or(u32::MAX))
            })
            .expire_after(DecisionExpiry)
            .build(),
    }
}

impl DecisionCache {
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// The decision for this request's identity: cached, or from one invocation.
    pub async fn decide(
        &self,
        integrations: &Integrations,
        authorizer: &CompiledAuthorizer,
        view: &RequestView<'_>,
        method_arn: &str,
    ) -> Result<Arc<CachedDecision>, Failure> {
        let identity = identity(authorizer, view)?;
        if authorizer.ttl.is_zero() {
            return invoke(integrations, authorizer, view, method_arn, &identity)
                .await
                .map(|(decision, _)| Arc::new(decision));
        }
        let key = cache_key(view, authorizer, &identity);
        // A hit is looked up by the bytes as built (the key type borrows as `[u8]`): no copy.
        if let Some(hit) = self.cache.get(key.as_slice()).await {
            return Ok(hit);
        }
        self.cache
            .try_get_with(Arc::from(key), async {
                invoke(integrations, authorizer, view, method_arn, &identity)
                    .await
                    .map(|(decision, _)| Arc::new(decision))
            })
            .await
            .map_err(|failure: Arc<Failure>| failure.as_ref().clone())
    }
}

/// The identity values, in source order. A missing or empty value, or a token the validation
/// expression refuses, is 401 Unauthorized without invoking the function.
pub fn identity(
    authorizer: &CompiledAuthorizer,
    view: &RequestView<'_>,
) -> Result<Vec<String>, Failure> {
    let mut values = Vec::with_capacity(authorizer.identity.len());
    let mut total = 0usize;
    for source in &authorizer.identity {
        let value = match source {
            IdentitySource::Header(name) => view
                .parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string),
            IdentitySource::Query(name) => params::parse_query(view.query)
                .into_iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value),
            IdentitySource::StageVariable(name) => view.stage().variables.get(name).cloned(),
            IdentitySource::Context(name) => params::context_variable(name, view),
        };
        let Some(value) = value.filter(|value| !value.is_empty()) else {
            return Err(Failure::new(
                GatewayError::Unauthorized,
                "an identity source of the authorizer is missing or empty",
            ));
        };
        total += value.len();
        if total > MAX_IDENTITY_BYTES {
            return Err(Failure::new(
                GatewayError::Unauthorized,
                "the identity is over 16 KiB",
            ));
        }
        values.push(value);
    }
    if let (Some(validation), [token]) = (&authorizer.validation, values.as_slice())
        && !validation.is_match(token)
    {
        return Err(Failure::new(
            GatewayError::Unauthorized,
            "the token does not match the authorizer's identityValidationExpression",
        ));
    }
    Ok(values)
}

fn cache_key(
    view: &RequestView<'_>,
    authorizer: &CompiledAuthorizer,
    identity: &[String],
) -> Vec<u8> {
    let stage = view.stage();
    let mut key =
        Vec::with_capacity(64 + identity.iter().map(|value| value.len() + 4).sum::<usize>());
    let mut field = |bytes: &[u8]| {
        key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        key.extend_from_slice(bytes);
    };
    field(&stage.authorizer_generation.to_le_bytes());
    field(stage.api_id.as_bytes());
    field(stage.name.as_bytes());
    // A redeployment may change the authorizer (identity sources, function): its answers are
    // never reused under another deployment.
    field(stage.deployment_id.as_bytes());
    field(authorizer.id.as_bytes());
    for value in identity {
        field(value.as_bytes());
    }
    key
}

/// Calls the function and parses its answer; the second value is the raw answer and the
/// latency (TestInvokeAuthorizer shows both).
pub async fn invoke(
    integrations: &Integrations,
    authorizer: &CompiledAuthorizer,
    view: &RequestView<'_>,
    method_arn: &str,
    identity: &[String],
) -> Result<(CachedDecision, (bytes::Bytes, Duration)), Failure> {
    let function = authorizer.function.as_ref().ok_or_else(|| {
        Failure::new(
            GatewayError::AuthorizerConfiguration,
            "the authorizer names no function",
        )
    })?;
    let function = integrate::lambda::resolve_function(function, view.stage())
        .map_err(as_configuration_error)?;
    let event = match authorizer.kind {
        AuthorizerKind::Token => serde_json::to_vec(&serde_json::json!({
            "type": "TOKEN",
            "authorizationToken": identity.first().map(String::as_str).unwrap_or(""),
            "methodArn": method_arn,
        }))
        .unwrap_or_default(),
        _ => integrate::lambda::encode_authorizer_event(
            view,
            &integrations.settings.account_id,
            method_arn,
        ),
    };
    let started = Instant::now();
    let reply =
        integrate::lambda::call_function(integrations, &function, event, AUTHORIZER_TIMEOUT)
            .await
            .map_err(as_configuration_error)?;
    let latency = started.elapsed();
    if let Some(kind) = &reply.function_error {
        // The convention API Gateway honours: a function that fails with "Unauthorized" means
        // the caller is not authenticated (401); any other failure is a configuration error.
        let message = serde_json::from_slice::<Value>(&reply.payload)
            .ok()
            .and_then(|value| value.get("errorMessage")?.as_str().map(str::to_string));
        if message.as_deref() == Some("Unauthorized") {
            return Err(Failure::new(
                GatewayError::Unauthorized,
                "the authorizer function answered Unauthorized",
            ));
        }
        return Err(Failure::new(
            GatewayError::AuthorizerConfiguration,
            format!(
                "the authorizer function failed ({kind}): {}",
                String::from_utf8_lossy(&reply.payload[..reply.payload.len().min(512)])
            ),
        ));
    }
    let decision = parse_output(&reply.payload).map_err(|why| {
        Failure::new(
            GatewayError::AuthorizerConfiguration,
            format!("the authorizer function's answer is malformed: {why}"),
        )
    })?;
    // What the entry holds: the parsed policy (its patterns) and the context, not the reply.
    let weight = ENTRY_OVERHEAD_BYTES
        .saturating_add(u32::try_from(decision.policy.weight()).unwrap_or(u32::MAX))
        .saturating_add(u32::try_from(reply.payload.len()).unwrap_or(u32::MAX));
    Ok((
        CachedDecision {
            decision,
            ttl: authorizer.ttl,
            weight,
        },
        (reply.payload, latency),
    ))
}

/// What TestInvokeAuthorizer reports: the authorizer run for real, without the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct TestInvokeOutcome {
    /// What a client would have seen: 200 when the function answered a well-formed policy,
    /// 401 for a missing or refused identity, 500 for a failing or misconfigured function.
    pub client_status: u16,
    pub latency_ms: u64,
    pub principal_id: Option<String>,
    /// The function's `policyDocument`, as JSON text.
    pub policy: Option<String>,
    pub context: Map<String, Value>,
    pub log: Vec<String>,
}

/// Runs `authorizer` for `view` as a request would, bypassing the cache.
pub async fn test_invoke(
    integrations: &Integrations,
    authorizer: &CompiledAuthorizer,
    view: &RequestView<'_>,
    method_arn: &str,
) -> TestInvokeOutcome {
    let mut log = vec![format!(
        "Starting authorizer: {} for request: {}",
        authorizer.id, view.request_id
    )];
    let started = Instant::now();
    let failed = |failure: Failure, mut log: Vec<String>| {
        let status = failure.error.view().status.as_u16();
        log.push(format!("Execution failed: {}", failure.detail));
        log.push(format!(
            "AuthorizerConfigurationException or Unauthorized: client status {status}"
        ));
        TestInvokeOutcome {
            client_status: status,
            latency_ms: started.elapsed().as_millis() as u64,
            principal_id: None,
            policy: None,
            context: Map::new(),
            log,
        }
    };
    let identity = match identity(authorizer, view) {
        Ok(identity) => identity,
        Err(failure) => return failed(failure, log),
    };
    log.push(format!("Incoming identity: {} value(s)", identity.len()));
    match invoke(integrations, authorizer, view, method_arn, &identity).await {
        Err(failure) => failed(failure, log),
        Ok((cached, (payload, latency))) => {
            log.push(format!(
                "Authorizer result payload: {}",
                String::from_utf8_lossy(&payload[..payload.len().min(4096)])
            ));
            log.push(format!("Authorizer latency: {} ms", latency.as_millis()));
            let policy = serde_json::from_slice::<Value>(&payload)
                .ok()
                .and_then(|value| value.get("policyDocument").map(Value::to_string));
            let authorized = &cached.decision.authorized;
            TestInvokeOutcome {
                client_status: 200,
                latency_ms: latency.as_millis() as u64,
                principal_id: authorized.principal_id.clone(),
                policy,
                context: authorized.context.clone(),
                log,
            }
        }
    }
}

fn as_configuration_error(failure: Failure) -> Failure {
    Failure::new(GatewayError::AuthorizerConfiguration, failure.detail)
}

/// Parses an authorizer's answer: `principalId`, `policyDocument`, optional `context` (string,
/// number and boolean values only) and `usageIdentifierKey`.
pub fn parse_output(payload: &[u8]) -> Result<Decision, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(output) = value else {
        return Err("the answer is not a JSON object".to_string());
    };
    let principal_id = match output.get("principalId") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(_) => return Err("principalId is not a string".to_string()),
        None => return Err("principalId is missing".to_string()),
    };
    let policy = match output.get("policyDocument") {
        Some(document) => Policy::from_value(document).map_err(|error| error.0)?,
        None => return Err("policyDocument is missing".to_string()),
    };
    let context = match output.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(context)) => {
            for (key, value) in context {
                if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                    return Err(format!("context.{key} is not a string, number or boolean"));
                }
            }
            context.clone()
        }
        Some(_) => return Err("context is not an object".to_string()),
    };
    let usage_identifier_key = match output.get("usageIdentifierKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(_) => return Err("usageIdentifierKey is not a string".to_string()),
    };
    Ok(Decision {
        policy,
        authorized: Arc::new(Authorized {
            principal_id: Some(principal_id),
            context,
            usage_identifier_key,
            ..Authorized::default()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_parses() {
        let fixture = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/aws-lambda-go-events/apigw-custom-auth-response.json"
        ))
        .unwrap();
        // The fixture's Effect is the placeholder "Allow|Deny": refused, with the reason.
        assert!(parse_output(&fixture).unwrap_err().contains("Effect"));
        let text = String::from_utf8(fixture)
            .unwrap()
            .replace("Allow|Deny", "Allow");
        let decision = parse_output(text.as_bytes()).unwrap();
        assert_eq!(
            decision.authorized.principal_id.as_deref(),
            Some("yyyyyyyy")
        );
        assert_eq!(decision.authorized.context["numberKey"], "1");
        assert_eq!(
            decision.authorized.usage_identifier_key.as_deref(),
            Some("{api-key}")
        );
    }

    #[test]
    fn malformed_answers_say_why() {
        for (answer, why) in [
            (&b"\"allow\""[..], "not a JSON object"),
            (b"{", "not JSON"),
            (b"{\"policyDocument\":{\"Statement\":[]}}", "principalId is missing"),
            (b"{\"principalId\":\"u\"}", "policyDocument is missing"),
            (b"{\"principalId\":[],\"policyDocument\":{}}", "principalId"),
            (
                b"{\"principalId\":\"u\",\"policyDocument\":{\"Statement\":[]},\"context\":{\"a\":{\"b\":1}}}",
                "context.a",
            ),
            (
                b"{\"principalId\":\"u\",\"policyDocument\":{\"Statement\":[]},\"usageIdentifierKey\":7}",
                "usageIdentifierKey",
            ),
            (b"{\"principalId\":\"u\",\"policyDocument\":\"Allow\"}", "JSON object"),
        ] {
            let refused = parse_output(answer).unwrap_err();
            assert!(refused.contains(why), "{}: {refused}", String::from_utf8_lossy(answer));
        }
    }
}
