//! COGNITO_USER_POOLS authorizers: Cognito user pool JWTs verified at the edge.
//!
//! A token is accepted when, as API Gateway checks it:
//! - it is a compact JWS (`header.payload.signature`, base64url) of at most 16 KiB (an optional
//!   `Bearer ` prefix is accepted, as API Gateway does);
//! - its header says `alg: RS256` (nothing else: no `none`, no HMAC) and names a `kid` of the
//!   pool's JWKS, and the RSA PKCS#1 v1.5 SHA-256 signature verifies (ring, 2048–8192-bit keys);
//! - its `iss` is `https://cognito-idp.{region}.amazonaws.com/{poolId}` for one of the
//!   authorizer's `providerARNs` (`arn:aws:cognito-idp:{region}:{account}:userpool/{poolId}`).
//!   The issuer is AWS's name for the pool whatever endpoint the keys are fetched from: Cognito
//!   and moto both put AWS's URL in `iss` (moto's `CognitoIdpUserPool.create_jwt`);
//! - `exp` is in the future and `nbf`/`iat` are not (10 s of leeway for clock skew);
//! - `token_use` is `id` when the method has no `authorizationScopes`, and `access` with a
//!   `scope` claim holding one of them when it has some (AWS: "If there are no scopes defined
//!   the API Gateway Cognito Authorizer will require the ID Token"; repost.aws
//!   QUrEQW0PtJTZm34jx0UrnLlw and the knowledge-center article api-gateway-cognito-401-unauthorized);
//! - `sub` is a string, and the ID token's `aud` / the access token's `client_id` is present.
//!   REST API Cognito authorizers do not compare the app client with a configured list (that is
//!   the HTTP API JWT authorizer's `audience`): any app client of the pool is accepted.
//!   `identityValidationExpression`, when set on a COGNITO_USER_POOLS authorizer, is a regex over
//!   `aud`, which the caller applies to [`CognitoIdentity::claims`].
//!
//! Keys: the JWKS of pool P comes from `{cognito-idp endpoint}/{P}/.well-known/jwks.json` (see
//! `crate::awsconf`), fetched when a snapshot naming P compiles ([`CognitoVerifier::prefetch`])
//! or by the first request that needs it, and kept per pool. A `kid` the cached set lacks starts
//! a refresh, at most once a minute per pool (`RefreshGate`); a failed refresh keeps the keys
//! the pool had. A token whose `kid` is cached is verified without any network wait; only a
//! pool with no keys yet, or a `kid` not seen before while a refresh is allowed, waits for the
//! one fetch in flight (at most 5 s).
//!
//! Answers (`CognitoRejection`): every refusal is AWS's 401 `UnauthorizedException`
//! `{"message":"Unauthorized"}`, except an expired token, which gets
//! `{"message":"The incoming token has expired"}` (the text API Gateway answers, as reported in
//! aws-amplify/amplify-js#10147). A pool whose keys cannot be fetched at all answers 500
//! `AuthorizerConfigurationException` with a null message, as a misconfigured Lambda
//! authorizer does: the caller did nothing wrong, so a 401 would send it to sign in again for
//! nothing (AWS's own JWKS is never unreachable, so there is no recorded answer to copy).
//!
//! Hostile input is bounded before any work: token length, JSON nesting (16 levels), JWKS body
//! (64 KiB), keys per JWKS (32), `kid` length (256). Nothing here panics on input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Map, Value};

use crate::awsconf::{AwsConfig, Endpoint};
use crate::integrate::client::BackendClient;
use crate::request::Failure;
use crate::respond::GatewayError;

/// The longest token accepted (header, payload and signature, base64url).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The deepest JSON nesting accepted in a token's header or payload.
const MAX_JSON_DEPTH: usize = 16;
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// The most keys one JWKS may hold (Cognito publishes two).
const MAX_KEYS_PER_JWKS: usize = 32;
const MAX_KID_BYTES: usize = 256;
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_S: u64 = 10;
/// A pool that has keys refreshes them at most this often (an unknown `kid`).
pub const REFRESH_INTERVAL_S: u64 = 60;
/// A pool without keys retries its first fetch at most this often.
pub const RETRY_WITHOUT_KEYS_S: u64 = 5;
/// How long one JWKS fetch may take, and how long a request waits for one.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a token was refused (the operator's view; the client sees [`Self::message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CognitoRejection {
    #[error("no token")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not RS256")]
    Algorithm,
    #[error("the token's issuer is not a user pool of the authorizer")]
    Issuer,
    #[error("the token's key id is not in the pool's JWKS")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("the token's claims are incomplete (sub, aud or client_id, exp)")]
    Claims,
    #[error("the token's token_use does not fit the method (id without scopes, access with)")]
    TokenUse,
    #[error("the access token holds none of the method's authorization scopes")]
    Scope,
    #[error("the user pool's JWKS could not be fetched and no key is cached")]
    KeysUnavailable,
}

impl CognitoRejection {
    pub fn status(self) -> StatusCode {
        match self {
            CognitoRejection::KeysUnavailable => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `x-amzn-ErrorType` header.
    pub fn error_type(self) -> &'static str {
        match self {
            CognitoRejection::KeysUnavailable => "AuthorizerConfigurationException",
            _ => "UnauthorizedException",
        }
    }

    /// The body's `message`; `None` is JSON `null` (AWS's configuration errors).
    pub fn message(self) -> Option<&'static str> {
        match self {
            CognitoRejection::Expired => Some("The incoming token has expired"),
            CognitoRejection::KeysUnavailable => None,
            _ => Some("Unauthorized"),
        }
    }

    /// The gateway response type that shapes the answer.
    pub fn gateway_response_type(self) -> &'static str {
        match self {
            CognitoRejection::KeysUnavailable => "AUTHORIZER_CONFIGURATION_ERROR",
            _ => "UNAUTHORIZED",
        }
    }

    /// The pipeline's failure for this refusal (rendered through the API's gateway
    /// responses); the log gets [`Self`]'s `Display` as the detail.
    pub fn failure(self) -> Failure {
        let detail = format!("Cognito authorizer: {self}");
        match self {
            CognitoRejection::KeysUnavailable => {
                Failure::new(GatewayError::AuthorizerConfiguration, detail)
            }
            CognitoRejection::Expired => Failure::with_message(
                GatewayError::Unauthorized,
                "The incoming token has expired",
                detail,
            ),
            _ => Failure::new(GatewayError::Unauthorized, detail),
        }
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq)]
pub struct CognitoIdentity {
    /// The claims as API Gateway hands them to integrations in
    /// `requestContext.authorizer.claims`: every value a string (see [`event_claims`]). Shared:
    /// a token seen again hands out the same map.
    pub claims: Arc<Map<String, Value>>,
    /// `sub`.
    pub principal_id: String,
}

// ---------------------------------------------------------------------------------------------
// Pure parts: parsing, keys, issuers, claims.

/// A token split and decoded, its signature not checked yet.
#[derive(Debug)]
pub struct ParsedToken<'a> {
    /// `header.payload` as sent: what the signature covers.
    pub signing_input: &'a str,
    pub kid: String,
    pub claims: Map<String, Value>,
    pub signature: Vec<u8>,
}

/// Splits and decodes a token (after an optional `Bearer ` prefix). Checks the header's
/// `alg` and `kid` and that the payload is a JSON object; nothing about the claims.
pub fn parse(token: &str) -> Result<ParsedToken<'_>, CognitoRejection> {
    let token = strip_bearer(token.trim_start()).trim();
    if token.is_empty() {
        return Err(CognitoRejection::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(CognitoRejection::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CognitoRejection::Malformed);
    };
    let header = decode_json_object(header)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "RS256" => {}
        _ => return Err(CognitoRejection::Algorithm),
    }
    // A JWS with `crit` asks for extensions we do not implement (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(CognitoRejection::Malformed);
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_BYTES => kid.clone(),
        _ => return Err(CognitoRejection::Malformed),
    };
    let claims = decode_json_object(payload)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| CognitoRejection::Malformed)?;
    if signature.is_empty() {
        return Err(CognitoRejection::Signature);
    }
    let signing_input = &token[..token.len() - signature_len(token)];
    Ok(ParsedToken {
        signing_input,
        kid,
        claims,
        signature,
    })
}

/// The length of `.signature` at the end of a three-part token.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

fn strip_bearer(token: &str) -> &str {
    match token.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        _ => token,
    }
}

fn decode_json_object(part: &str) -> Result<Map<String, Value>, CognitoRejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| CognitoRejection::Malformed)?;
    if json_depth(&bytes) > MAX_JSON_DEPTH {
        return Err(CognitoRejection::Malformed);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(CognitoRejection::Malformed),
    }
}

/// The deepest nesting of `[`/`{` in a JSON text, ignoring brackets inside strings. Counts
/// past the limit stop early; malformed text is left for the parser to refuse.
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_JSON_DEPTH {
                    return deepest;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// One RSA signing key of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// A pool's usable keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|key| key.kid == kid)
    }
}

/// Reads a JWKS document (RFC 7517). Keys that cannot sign RS256 (other `kty`, `use` other
/// than `sig`, an `alg` other than RS256, a modulus outside 2048–8192 bits) are skipped; a
/// document with no usable key, more than 32 keys or nesting past 16 levels is refused.
pub fn parse_jwks(body: &[u8]) -> Result<KeySet, String> {
    if body.len() > MAX_JWKS_BYTES {
        return Err(format!("the JWKS is over {MAX_JWKS_BYTES} bytes"));
    }
    if json_depth(body) > MAX_JSON_DEPTH {
        return Err("the JWKS nests too deeply".to_string());
    }
    let document: Value =
        serde_json::from_slice(body).map_err(|error| format!("the JWKS is not JSON: {error}"))?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err("the JWKS has no \"keys\" array".to_string());
    };
    if entries.len() > MAX_KEYS_PER_JWKS {
        return Err(format!(
            "the JWKS holds {} keys (at most {MAX_KEYS_PER_JWKS})",
            entries.len()
        ));
    }
    let mut keys = Vec::new();
    for entry in entries {
        let text = |name: &str| entry.get(name).and_then(Value::as_str);
        if text("kty") != Some("RSA") {
            continue;
        }
        if text("use").is_some_and(|usage| usage != "sig")
            || text("alg").is_some_and(|alg| alg != "RS256")
        {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (text("kid"), text("n"), text("e")) else {
            continue;
        };
        if kid.is_empty() || kid.len() > MAX_KID_BYTES {
            continue;
        }
        let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
            continue;
        };
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        if !(256..=1024).contains(&n.len()) || e.is_empty() || e.len() > 8 {
            continue;
        }
        if keys.iter().any(|key: &Jwk| key.kid == kid) {
            continue;
        }
        keys.push(Jwk {
            kid: kid.to_string(),
            n,
            e,
        });
    }
    if keys.is_empty() {
        return Err("the JWKS holds no RS256 signing key".to_string());
    }
    Ok(KeySet { keys })
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&byte| byte == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// Checks an RS256 signature.
pub fn verify_signature(key: &Jwk, signing_input: &[u8], signature: &[u8]) -> bool {
    ring::signature::RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signing_input,
        signature,
    )
    .is_ok()
}

/// A user pool named by a provider ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserPool {
    pub region: String,
    pub id: String,
    /// The `iss` of the pool's tokens.
    pub issuer: String,
}

/// `arn:{partition}:cognito-idp:{region}:{account}:userpool/{poolId}` → the pool. Region and
/// pool id are restricted to `[A-Za-z0-9_-]` (they become a URL path and a host label).
pub fn parse_provider_arn(arn: &str) -> Option<UserPool> {
    let mut parts = arn.splitn(6, ':');
    let (
        Some("arn"),
        Some(partition),
        Some("cognito-idp"),
        Some(region),
        Some(_account),
        Some(resource),
    ) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    )
    else {
        return None;
    };
    let id = resource.strip_prefix("userpool/")?;
    let safe = |text: &str| {
        !text.is_empty()
            && text.len() <= 128
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    if !safe(region) || !safe(id) {
        return None;
    }
    let domain = match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    Some(UserPool {
        region: region.to_string(),
        id: id.to_string(),
        issuer: format!("https://cognito-idp.{region}.{domain}/{id}"),
    })
}

/// Checks the claims of a token whose signature verified, at `now` (epoch seconds).
pub fn check_claims(
    claims: &Map<String, Value>,
    scopes: &[String],
    now: u64,
) -> Result<(), CognitoRejection> {
    let exp = claims
        .get("exp")
        .and_then(epoch_seconds)
        .ok_or(CognitoRejection::Claims)?;
    if now >= exp.saturating_add(LEEWAY_S) {
        return Err(CognitoRejection::Expired);
    }
    for name in ["nbf", "iat"] {
        match claims.get(name) {
            None => {}
            Some(value) => {
                let at = epoch_seconds(value).ok_or(CognitoRejection::Claims)?;
                if at > now.saturating_add(LEEWAY_S) {
                    return Err(CognitoRejection::NotYetValid);
                }
            }
        }
    }
    if !matches!(claims.get("sub"), Some(Value::String(sub)) if !sub.is_empty()) {
        return Err(CognitoRejection::Claims);
    }
    let token_use = claims.get("token_use").and_then(Value::as_str);
    if scopes.is_empty() {
        if token_use != Some("id") {
            return Err(CognitoRejection::TokenUse);
        }
        if !matches!(claims.get("aud"), Some(Value::String(aud)) if !aud.is_empty()) {
            return Err(CognitoRejection::Claims);
        }
    } else {
        if token_use != Some("access") {
            return Err(CognitoRejection::TokenUse);
        }
        if !matches!(claims.get("client_id"), Some(Value::String(id)) if !id.is_empty()) {
            return Err(CognitoRejection::Claims);
        }
        let granted = claims.get("scope").and_then(Value::as_str).unwrap_or("");
        if !granted
            .split(' ')
            .any(|scope| !scope.is_empty() && scopes.iter().any(|wanted| wanted == scope))
        {
            return Err(CognitoRejection::Scope);
        }
    }
    Ok(())
}

/// A NumericDate (RFC 7519 §2): a non-negative number of seconds; fractions are truncated.
fn epoch_seconds(value: &Value) -> Option<u64> {
    let number = value.as_number()?;
    if let Some(seconds) = number.as_u64() {
        return Some(seconds);
    }
    let seconds = number.as_f64()?;
    (seconds.is_finite() && seconds >= 0.0 && seconds < u64::MAX as f64).then_some(seconds as u64)
}

/// The claims as API Gateway passes them to integrations (`requestContext.authorizer.claims`):
/// every value a string. `exp` and `iat` become dates as AWS writes them
/// (`Sun Mar 28 13:40:42 UTC 2021`); other numbers their decimal text (`auth_time`:
/// `"1616935242"`); booleans `"true"`/`"false"`; arrays `[a b]` (as `cognito:groups` arrives);
/// objects their JSON text. (AWS's rendering observed in events published from real APIs; the
/// array form was seen as `[admin]` / `[group1 group2]`, not recorded here.)
pub fn event_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(name, value)| {
            let text = match (name.as_str(), value) {
                ("exp" | "iat", Value::Number(_)) => match epoch_seconds(value) {
                    Some(seconds) => aws_date(seconds),
                    None => value.to_string(),
                },
                (_, value) => claim_text(value),
            };
            (name.clone(), Value::String(text))
        })
        .collect()
}

fn claim_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => value.to_string(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(claim_text).collect();
            format!("[{}]", inner.join(" "))
        }
    }
}

/// `Sun Mar 28 13:40:42 UTC 2021` (Java's `Date.toString` in UTC, which API Gateway uses).
fn aws_date(seconds: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    let (year, month, day) = crate::time::civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[(days % 7) as usize],
        MONTHS[(month as usize).saturating_sub(1).min(11)],
        day,
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        year
    )
}

/// Whether a pool's keys may be fetched now: one fetch at a time; a pool with keys at most
/// once per [`REFRESH_INTERVAL_S`], one without at most once per [`RETRY_WITHOUT_KEYS_S`].
/// A clock that jumps back counts as elapsed time, so refreshes never stall.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefreshGate {
    in_flight: bool,
    last_started_s: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAnswer {
    /// The caller starts a fetch and must call [`RefreshGate::finish`].
    Start,
    /// A fetch is running: wait for it.
    InFlight,
    /// Too soon after the last one.
    TooSoon,
}

impl RefreshGate {
    pub fn try_start(&mut self, now_s: u64, has_keys: bool) -> GateAnswer {
        if self.in_flight {
            return GateAnswer::InFlight;
        }
        let interval = if has_keys {
            REFRESH_INTERVAL_S
        } else {
            RETRY_WITHOUT_KEYS_S
        };
        if let Some(last) = self.last_started_s
            && last.abs_diff(now_s) < interval
        {
            return GateAnswer::TooSoon;
        }
        self.in_flight = true;
        self.last_started_s = Some(now_s);
        GateAnswer::Start
    }

    pub fn finish(&mut self) {
        self.in_flight = false;
    }
}

// ---------------------------------------------------------------------------------------------
// The verifier: keys per pool, fetched over HTTP(S).

/// The node-wide Cognito verifier (one per `dev` or edge), holding each pool's keys and the
/// tokens it verified recently.
pub struct CognitoVerifier {
    endpoint: Endpoint,
    client: BackendClient,
    /// By issuer, copied on write (a pool is added once; requests only read). Pools come from
    /// authorizers' `providerARNs` only, never from tokens.
    pools: ArcSwap<HashMap<String, Arc<PoolKeys>>>,
    /// Tokens whose signature verified, by token text: a token seen again costs a hash and
    /// the claim checks (with this request's `now`, ARNs and scopes), not an RSA verification.
    verified: moka::future::Cache<String, Arc<Verified>>,
    runtime: Option<tokio::runtime::Handle>,
}

/// What a verified signature established about a token.
struct Verified {
    issuer: String,
    claims: Map<String, Value>,
    identity: CognitoIdentity,
}

/// The cache of verified tokens: bytes (about three times a token's length each), and how
/// long an entry lives at most (its `exp` is checked on every use anyway).
const VERIFIED_CACHE_BYTES: u64 = 32 * 1024 * 1024;
const VERIFIED_CACHE_TTL: Duration = Duration::from_secs(300);

struct PoolKeys {
    jwks_url: String,
    keys: ArcSwapOption<KeySet>,
    gate: Mutex<RefreshGate>,
    /// Bumped when a fetch ends, whatever its outcome.
    fetched: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for CognitoVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoVerifier")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Whether `iss` is the issuer of the pool `arn` names, without allocating; the pool if so.
fn arn_issues<'a>(arn: &'a str, iss: &str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("cognito-idp:")?;
    let (region, rest) = rest.split_once(':')?;
    let (_account, resource) = rest.split_once(':')?;
    let pool = resource.strip_prefix("userpool/")?;
    let domain = if partition == "aws-cn" {
        ".amazonaws.com.cn/"
    } else {
        ".amazonaws.com/"
    };
    let tail = iss.strip_prefix("https://cognito-idp.")?;
    let tail = tail.strip_prefix(region)?;
    let tail = tail.strip_prefix(domain)?;
    (tail == pool).then_some(arn)
}

impl CognitoVerifier {
    /// `endpoint`: cognito-idp's, from `awsconf::resolve(awsconf::COGNITO_IDP, ..)`.
    pub fn new(endpoint: Endpoint, client: BackendClient) -> Arc<Self> {
        Arc::new(CognitoVerifier {
            endpoint,
            client,
            pools: ArcSwap::from_pointee(HashMap::new()),
            verified: moka::future::Cache::builder()
                .max_capacity(VERIFIED_CACHE_BYTES)
                .weigher(|token: &String, _: &Arc<Verified>| {
                    u32::try_from(token.len().saturating_mul(3)).unwrap_or(u32::MAX)
                })
                .time_to_live(VERIFIED_CACHE_TTL)
                .build(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }

    /// The node's verifier: cognito-idp's endpoint resolved from the process environment and
    /// the node's `[aws]` config (`awsconf`), logged with where it came from.
    pub fn from_config(aws: &AwsConfig, client: BackendClient) -> Result<Arc<Self>, String> {
        let (endpoint, source) =
            crate::awsconf::resolve_from_process(crate::awsconf::COGNITO_IDP, aws)?;
        tracing::info!(endpoint = ?endpoint, source = ?source, "Cognito user pools' keys come from this endpoint");
        Ok(CognitoVerifier::new(endpoint, client))
    }

    /// [`Self::prefetch`] for every COGNITO_USER_POOLS authorizer of every deployed stage in
    /// `state` (call it wherever the node takes in a new state: dev's writes, the edge's
    /// applied entries). Cheap when nothing is new: pools with keys or a fetch are skipped.
    pub fn prefetch_state(&self, state: &portico_proto::GatewayState) {
        let arns = deployed_provider_arns(state);
        if !arns.is_empty() {
            self.prefetch(&arns);
        }
    }

    /// Installs a pool's keys without fetching them (tests, benchmarks, and pools whose JWKS
    /// an operator pins). False when the ARN names no user pool.
    pub fn install_keys(&self, provider_arn: &str, keys: KeySet) -> bool {
        let Some(pool) = parse_provider_arn(provider_arn) else {
            return false;
        };
        self.pool(&pool).keys.store(Some(Arc::new(keys)));
        true
    }

    /// Starts fetching the JWKS of every pool named that has no keys yet (called when a
    /// snapshot compiles, so the first request does not wait). Malformed ARNs are skipped.
    pub fn prefetch(&self, provider_arns: &[String]) {
        let now = crate::time::epoch_seconds(std::time::SystemTime::now()).max(0) as u64;
        for pool in provider_arns
            .iter()
            .filter_map(|arn| parse_provider_arn(arn))
        {
            let state = self.pool(&pool);
            if state.keys.load().is_none() {
                self.start_fetch(&state, now, false);
            }
        }
    }

    /// Verifies `token` for an authorizer whose providerARNs are `provider_arns` and a method
    /// whose authorizationScopes are `scopes` (empty: an ID token; otherwise an access token
    /// whose `scope` holds one of them), at `now_epoch_s`.
    pub async fn verify(
        &self,
        token: &str,
        provider_arns: &[String],
        scopes: &[String],
        now_epoch_s: u64,
    ) -> Result<CognitoIdentity, CognitoRejection> {
        let trimmed = strip_bearer(token.trim_start()).trim();
        if trimmed.is_empty() {
            return Err(CognitoRejection::Missing);
        }
        if trimmed.len() > MAX_TOKEN_BYTES {
            return Err(CognitoRejection::Malformed);
        }
        let verified = match self.verified.get(trimmed).await {
            Some(verified) => verified,
            None => {
                let verified = Arc::new(
                    self.verify_signature_of(trimmed, provider_arns, now_epoch_s)
                        .await?,
                );
                self.verified
                    .insert(trimmed.to_string(), verified.clone())
                    .await;
                verified
            }
        };
        if !provider_arns
            .iter()
            .any(|arn| arn_issues(arn, &verified.issuer).is_some())
        {
            return Err(CognitoRejection::Issuer);
        }
        check_claims(&verified.claims, scopes, now_epoch_s)?;
        Ok(verified.identity.clone())
    }

    /// Parse, issuer, key, signature: what holds for a token whatever the method and time.
    async fn verify_signature_of(
        &self,
        token: &str,
        provider_arns: &[String],
        now: u64,
    ) -> Result<Verified, CognitoRejection> {
        let parsed = parse(token)?;
        let Some(Value::String(issuer)) = parsed.claims.get("iss") else {
            return Err(CognitoRejection::Issuer);
        };
        let pool = provider_arns
            .iter()
            .find_map(|arn| arn_issues(arn, issuer))
            .and_then(parse_provider_arn)
            .ok_or(CognitoRejection::Issuer)?;
        let state = self.pool(&pool);
        let keys = match state.keys.load_full() {
            Some(keys) if keys.get(&parsed.kid).is_some() => keys,
            _ => self.refreshed_keys(&state, &parsed.kid, now).await?,
        };
        let key = keys.get(&parsed.kid).ok_or(CognitoRejection::UnknownKey)?;
        if !verify_signature(key, parsed.signing_input.as_bytes(), &parsed.signature) {
            return Err(CognitoRejection::Signature);
        }
        let principal_id = match parsed.claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(CognitoRejection::Claims),
        };
        Ok(Verified {
            issuer: pool.issuer,
            identity: CognitoIdentity {
                claims: Arc::new(event_claims(&parsed.claims)),
                principal_id,
            },
            claims: parsed.claims,
        })
    }

    /// The pool's keys after a refresh, if one may run (or is running): waits for it.
    async fn refreshed_keys(
        &self,
        state: &Arc<PoolKeys>,
        kid: &str,
        now: u64,
    ) -> Result<Arc<KeySet>, CognitoRejection> {
        let mut fetched = state.fetched.subscribe();
        let had_keys = state.keys.load().is_some();
        let answer = self.start_fetch(state, now, had_keys);
        if answer != GateAnswer::TooSoon {
            // Start or InFlight: the fetch bumps `fetched` when it ends (or times out).
            let _ = tokio::time::timeout(FETCH_TIMEOUT + Duration::from_secs(1), fetched.changed())
                .await;
        }
        match state.keys.load_full() {
            None => Err(CognitoRejection::KeysUnavailable),
            Some(keys) if keys.get(kid).is_some() => Ok(keys),
            Some(_) => Err(CognitoRejection::UnknownKey),
        }
    }

    fn pool(&self, pool: &UserPool) -> Arc<PoolKeys> {
        if let Some(state) = self.pools.load().get(&pool.issuer) {
            return state.clone();
        }
        let fresh = Arc::new(PoolKeys {
            jwks_url: format!(
                "{}/{}/.well-known/jwks.json",
                self.endpoint.base_url(&pool.region),
                pool.id
            ),
            keys: ArcSwapOption::empty(),
            gate: Mutex::new(RefreshGate::default()),
            fetched: tokio::sync::watch::channel(0).0,
        });
        self.pools.rcu(|pools| {
            let mut pools = HashMap::clone(pools);
            pools
                .entry(pool.issuer.clone())
                .or_insert_with(|| fresh.clone());
            pools
        });
        self.pools
            .load()
            .get(&pool.issuer)
            .cloned()
            .unwrap_or(fresh)
    }

    /// Asks the gate and, if it agrees, spawns one fetch.
    fn start_fetch(&self, state: &Arc<PoolKeys>, now: u64, has_keys: bool) -> GateAnswer {
        let Some(runtime) = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            return GateAnswer::TooSoon;
        };
        let answer = state
            .gate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .try_start(now, has_keys);
        if answer == GateAnswer::Start {
            let state = state.clone();
            let client = self.client.clone();
            runtime.spawn(async move {
                match fetch_jwks(&client, &state.jwks_url).await {
                    Ok(keys) => {
                        tracing::info!(url = %state.jwks_url, keys = keys.keys.len(), "fetched a Cognito user pool's JWKS");
                        state.keys.store(Some(Arc::new(keys)));
                    }
                    Err(error) => {
                        tracing::warn!(url = %state.jwks_url, %error, "cannot fetch a Cognito user pool's JWKS; keeping the keys it had");
                    }
                }
                state
                    .gate
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .finish();
                state.fetched.send_modify(|count| *count += 1);
            });
        }
        answer
    }
}

/// The providerARNs of the COGNITO_USER_POOLS authorizers of every deployed stage, with
/// `${stageVariables.NAME}` replaced by the stage's value (AWS allows a stage variable to name
/// the pool); sorted, without duplicates.
pub fn deployed_provider_arns(state: &portico_proto::GatewayState) -> Vec<String> {
    let mut arns = std::collections::BTreeSet::new();
    for api in state.apis.values() {
        for stage in &api.stages {
            let Some(deployment) = api.deployment(&stage.deployment_id) else {
                continue;
            };
            for authorizer in &deployment.definition.authorizers {
                if authorizer.authorizer_type != "COGNITO_USER_POOLS" {
                    continue;
                }
                for arn in &authorizer.provider_arns {
                    arns.insert(with_stage_variables(arn, &stage.variables));
                }
            }
        }
    }
    arns.into_iter().collect()
}

/// `text` with every `${stageVariables.NAME}` the stage defines replaced by its value (the
/// others left as they are, so the ARN names no pool).
pub fn with_stage_variables(
    text: &str,
    variables: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${stageVariables.") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "${stageVariables.".len()..];
        match after.find('}') {
            Some(end) => {
                match variables.get(&after[..end]) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[at..at + "${stageVariables.".len() + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

async fn fetch_jwks(client: &BackendClient, url: &str) -> Result<KeySet, String> {
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(crate::body::empty())
        .map_err(|error| format!("bad JWKS URL: {error}"))?;
    let work = async {
        let response = client.request(false, request).await.map_err(|error| {
            format!(
                "request failed: {}",
                crate::integrate::http::error_chain(&error)
            )
        })?;
        if response.status() != StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
            response.into_body(),
            MAX_JWKS_BYTES,
        ))
        .await
        .map_err(|error| format!("reading the body failed: {error}"))?
        .to_bytes();
        parse_jwks(&body)
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests;
