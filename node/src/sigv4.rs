//! AWS Signature Version 4 verification: the management API (with secrets) and AWS_IAM data-plane
//! requests (with per-day signing keys derived from them, [`verify_with_signing_key`]).
//!
//! Why hand-rolled: the management API must accept requests signed by boto3 and the AWS CLI, and
//! the only maintained Rust crate (`aws-sigv4`) is a *signer*: it chooses its own signed-header
//! set. A verifier must rebuild the canonical request from the client's own `SignedHeaders`, so it
//! is written here on `ring` (HMAC-SHA256, SHA-256, constant-time tag check) and `aws-sigv4` is
//! kept as a test oracle only.
//!
//! ```text
//!  request ──► extract (Authorization header | X-Amz-* query) ──► scope checks (service, region,
//!  scope date) ──► clock skew / expiry ──► secret lookup ──► canonical request ──► string to sign
//!  ──► HMAC chain AWS4+secret → date → region → service → aws4_request ──► constant-time compare
//! ```
//!
//! Canonicalisation follows the spec as the AWS SDKs implement it for every service but S3:
//! the path *as received* (already percent-encoded) has its dot segments and repeated slashes
//! removed and is percent-encoded once more (`%` becomes `%25`); query pairs are decoded, encoded
//! with only `A-Z a-z 0-9 - _ . ~` left bare and uppercase hex, and sorted by name then value;
//! header values are trimmed of spaces, runs of spaces collapse to one, and repeated headers are
//! joined with `,`.
//!
//! The checks run in the order AWS reports them: a malformed signature is reported before a
//! wrong scope, a stale clock before an unknown key, and an unknown key before a bad signature.
//! Nothing here logs; `AuthError` messages never contain secrets or signatures.

use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use ring::{digest, hmac};

/// The only algorithm SigV4 defines (SigV4a's ECDSA variant is not supported).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far `x-amz-date` may be from the server's clock, either way.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;
/// The longest `X-Amz-Expires` AWS accepts for a presigned request (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECONDS: i64 = 7 * 24 * 60 * 60;

const TERMINATOR: &str = "aws4_request";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// Everything but the RFC 3986 unreserved characters is encoded (SigV4 "UriEncode").
const QUERY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same for the path, where `/` separates segments and stays bare.
const PATH_ENCODE_SET: &AsciiSet = &QUERY_ENCODE_SET.remove(b'/');

/// Headers a signer leaves out because proxies add, drop or rewrite them (the set the AWS SDKs
/// share), plus `authorization` itself.
const UNSIGNABLE_HEADERS: [&str; 6] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
    "expect",
    "connection",
];

/// A request as received, borrowed from the listener.
///
/// `headers` must contain `host`; over HTTP/2 the caller copies `:authority` into it, since
/// clients sign the authority under the name `host`.
#[derive(Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The raw path, still percent-encoded as received, without the query.
    pub path: &'a str,
    /// The raw query string without the leading `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl std::fmt::Debug for SignedRequest<'_> {
    /// Header names and sizes only: values and the query may carry a signature.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_len", &self.query.map(str::len))
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

/// Why a request was refused. Each variant names the AWS error (`error_type`, sent as
/// `x-amzn-ErrorType`), its status and AWS's message text, so botocore raises the same exception
/// class it would against AWS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor `X-Amz-Algorithm` in the query.
    #[error("{}", self.message())]
    MissingAuthentication,
    /// The signature is present but incomplete or unparsable; the text says what is wrong.
    #[error("{}", self.message())]
    Malformed(String),
    /// The access key id is unknown or disabled.
    #[error("{}", self.message())]
    UnknownAccessKey,
    /// The signature does not match the one computed with the stored secret.
    #[error("{}", self.message())]
    SignatureMismatch,
    /// `x-amz-date` is more than `window_seconds` from `now_epoch_s` (or a presigned request has
    /// expired). `skew_seconds` is now minus the signing time: positive when the request is old.
    #[error("{}", self.message())]
    Stale {
        skew_seconds: i64,
        now_epoch_s: i64,
        window_seconds: i64,
    },
    /// The credential scope names another service.
    #[error("{}", self.message())]
    WrongService { expected: String, received: String },
    /// The credential scope names a region this node does not serve.
    #[error("{}", self.message())]
    WrongRegion(String),
}

// === impl AuthError ===

impl AuthError {
    /// The AWS error code, for the `x-amzn-ErrorType` header (and `__type` if a body wants one).
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthentication => "MissingAuthenticationTokenException",
            AuthError::Malformed(_) => "IncompleteSignatureException",
            AuthError::UnknownAccessKey => "UnrecognizedClientException",
            AuthError::SignatureMismatch
            | AuthError::Stale { .. }
            | AuthError::WrongService { .. }
            | AuthError::WrongRegion(_) => "InvalidSignatureException",
        }
    }

    /// API Gateway answers every authentication failure with 403 (its gateway responses
    /// MISSING_AUTHENTICATION_TOKEN, INVALID_SIGNATURE and EXPIRED_TOKEN are all 403), including
    /// IncompleteSignatureException, which generic AWS JSON services send as 400.
    pub fn status_code(&self) -> u16 {
        403
    }

    /// The client-visible message, in AWS's wording where AWS has one.
    pub fn message(&self) -> String {
        match self {
            AuthError::MissingAuthentication => "Missing Authentication Token".to_owned(),
            AuthError::Malformed(text) => text.clone(),
            AuthError::UnknownAccessKey => {
                "The security token included in the request is invalid.".to_owned()
            }
            AuthError::SignatureMismatch => "The request signature we calculated does not match \
                 the signature you provided. Check your AWS Secret Access Key and signing method. \
                 Consult the service documentation for details."
                .to_owned(),
            AuthError::Stale {
                skew_seconds,
                now_epoch_s,
                window_seconds,
            } => {
                let signed_at = format_amz_date(now_epoch_s - skew_seconds);
                let now = format_amz_date(*now_epoch_s);
                let minutes = window_seconds / 60;
                if *skew_seconds > 0 {
                    format!(
                        "Signature expired: {signed_at} is now earlier than {} ({now} - {minutes} min.)",
                        format_amz_date(now_epoch_s - window_seconds)
                    )
                } else {
                    format!(
                        "Signature not yet current: {signed_at} is still later than {} ({now} + {minutes} min.)",
                        format_amz_date(now_epoch_s + window_seconds)
                    )
                }
            }
            AuthError::WrongService { expected, .. } => {
                format!("Credential should be scoped to correct service: '{expected}'. ")
            }
            AuthError::WrongRegion(region) => {
                format!("Credential should be scoped to a valid region, not '{region}'. ")
            }
        }
    }
}

/// Verifies a SigV4-signed request, either header-signed (`Authorization: AWS4-HMAC-SHA256 ...`)
/// or presigned (`X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...` in the query).
///
/// `secret_for(access_key_id)` returns the secret if the key exists and is enabled.
pub fn verify(
    request: &SignedRequest<'_>,
    now_epoch_s: i64,
    allowed_service: &str,
    region_allowed: &dyn Fn(&str) -> bool,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Verified, AuthError> {
    verify_inner(
        request,
        Some(request.body),
        now_epoch_s,
        allowed_service,
        region_allowed,
        &|access_key_id, date, region, service| {
            secret_for(access_key_id).map(|secret| signing_key(&secret, date, region, service))
        },
    )
}

/// What a request's `x-amz-content-sha256` header declares the body to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredPayload {
    /// `UNSIGNED-PAYLOAD`: the signature does not cover the body.
    Unsigned,
    /// The SHA-256 of the body, which the signature covers in its place.
    Sha256([u8; 32]),
}

impl DeclaredPayload {
    /// The declaration of `headers`, if it has exactly one well-formed one.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let declared = single_header(headers, X_AMZ_CONTENT_SHA256).ok()??;
        if declared == UNSIGNED_PAYLOAD {
            return Some(DeclaredPayload::Unsigned);
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(declared.as_bytes(), &mut digest).ok()?;
        Some(DeclaredPayload::Sha256(digest))
    }

    /// Whether `digest` (the SHA-256 of the body as received) is what was declared.
    pub fn admits(&self, digest: &[u8]) -> bool {
        match self {
            DeclaredPayload::Unsigned => true,
            DeclaredPayload::Sha256(declared) => declared.as_slice() == digest,
        }
    }
}

/// Verifies like [`verify`] before the body has been read, signing the payload hash the
/// request's `x-amz-content-sha256` header declares (an error when it has none). The signature
/// then proves who sent the head; the caller must still hash the body as it arrives and refuse
/// it with [`AuthError::SignatureMismatch`] unless [`DeclaredPayload::admits`] the digest, as
/// [`verify`] does when given the whole body. This is what lets the management API refuse a
/// forged upload before buffering it.
pub fn verify_head(
    request: &SignedRequest<'_>,
    now_epoch_s: i64,
    allowed_service: &str,
    region_allowed: &dyn Fn(&str) -> bool,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Verified, AuthError> {
    verify_inner(
        request,
        None,
        now_epoch_s,
        allowed_service,
        region_allowed,
        &|access_key_id, date, region, service| {
            secret_for(access_key_id).map(|secret| signing_key(&secret, date, region, service))
        },
    )
}

/// Verifies like [`verify`], with the derived signing key of the credential scope instead of
/// the secret: `key_for(access_key_id, date, region)` returns the 32 bytes of
/// `HMAC chain(secret, date, region, allowed_service, "aws4_request")` (see
/// [`derive_signing_key`]) if the key exists and is enabled. The checks and their order are
/// [`verify`]'s, so both give the same answer for the same request.
pub fn verify_with_signing_key(
    request: &SignedRequest<'_>,
    now_epoch_s: i64,
    allowed_service: &str,
    region_allowed: &dyn Fn(&str) -> bool,
    key_for: &SigningKeyFor<'_>,
) -> Result<Verified, AuthError> {
    verify_inner(
        request,
        Some(request.body),
        now_epoch_s,
        allowed_service,
        region_allowed,
        &|access_key_id, date, region, _service| {
            key_for(access_key_id, date, region)
                .map(|bytes| hmac::Key::new(hmac::HMAC_SHA256, &bytes))
        },
    )
}

/// `(access_key_id, date, region)` → the derived signing key, for [`verify_with_signing_key`].
pub type SigningKeyFor<'a> = dyn Fn(&str, &str, &str) -> Option<[u8; 32]> + 'a;

type KeyFor<'a> = dyn Fn(&str, &str, &str, &str) -> Option<hmac::Key> + 'a;

/// `body` is `None` when the body has not been read: the declared payload hash is signed.
fn verify_inner(
    request: &SignedRequest<'_>,
    body: Option<&[u8]>,
    now_epoch_s: i64,
    allowed_service: &str,
    region_allowed: &dyn Fn(&str) -> bool,
    key_for: &KeyFor<'_>,
) -> Result<Verified, AuthError> {
    let auth = extract(request)?;
    let scope = parse_credential(&auth.credential)?;

    if scope.service != allowed_service {
        return Err(AuthError::WrongService {
            expected: allowed_service.to_owned(),
            received: scope.service.to_owned(),
        });
    }
    if !region_allowed(scope.region) {
        return Err(AuthError::WrongRegion(scope.region.to_owned()));
    }

    let signed_at = parse_amz_date(&auth.amz_date).ok_or_else(|| {
        AuthError::Malformed(format!(
            "Invalid X-Amz-Date '{}': expected the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z'.",
            auth.amz_date
        ))
    })?;
    let date_of_signing = &auth.amz_date[..8];
    if scope.date != date_of_signing {
        return Err(AuthError::Malformed(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{}' != '{date_of_signing}', from '{}'.",
            scope.date, auth.amz_date
        )));
    }
    check_time(signed_at, now_epoch_s, auth.expires_seconds)?;

    let signed_headers = parse_signed_headers(&auth.signed_headers)?;
    let key = key_for(scope.access_key_id, scope.date, scope.region, scope.service)
        .ok_or(AuthError::UnknownAccessKey)?;

    let canonical = canonical_request(
        request.method,
        request.path,
        request.query,
        auth.presigned,
        request.headers,
        &signed_headers,
        body,
    )?;
    let string_to_sign = string_to_sign(&auth.amz_date, &scope.to_string(), &canonical);

    // A signature that is not 32 bytes of hex can never match; say so the same way.
    let provided = hex::decode(&auth.signature).map_err(|_| AuthError::SignatureMismatch)?;
    hmac::verify(&key, string_to_sign.as_bytes(), &provided)
        .map_err(|_| AuthError::SignatureMismatch)?;

    Ok(Verified {
        access_key_id: scope.access_key_id.to_owned(),
        region: scope.region.to_owned(),
        service: scope.service.to_owned(),
    })
}

/// Signs a request (for tests, `portico ctl`-style clients and the TestInvoke path): sets
/// `x-amz-date` and `Authorization`, and `host` from the URI's authority when absent.
///
/// Every header already in `headers` is signed except the ones proxies rewrite (`user-agent`,
/// `x-amzn-trace-id`, `transfer-encoding`, `expect`, `connection`). The payload hash is the
/// `x-amz-content-sha256` header when present, else the SHA-256 of `body`.
#[allow(clippy::too_many_arguments)] // the brief's signature: one argument per SigV4 input
pub fn sign(
    method: &str,
    uri: &http::Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now_epoch_s: i64,
) {
    let amz_date = format_amz_date(now_epoch_s);
    headers.remove(AUTHORIZATION);
    if let Ok(value) = HeaderValue::from_str(&amz_date) {
        headers.insert(X_AMZ_DATE, value);
    }
    if !headers.contains_key(HOST)
        && let Some(host) = host_from_uri(uri)
        && let Ok(value) = HeaderValue::from_str(&host)
    {
        headers.insert(HOST, value);
    }

    let mut names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| !UNSIGNABLE_HEADERS.contains(&name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let signed_headers: Vec<&str> = names.iter().map(String::as_str).collect();

    // Every name came from the map itself, so canonicalisation cannot miss a header.
    let Ok(canonical) = canonical_request(
        method,
        uri.path(),
        uri.query(),
        false,
        headers,
        &signed_headers,
        Some(body),
    ) else {
        return;
    };
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{service}/{TERMINATOR}");
    let string_to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let key = signing_key(secret, date, region, service);
    let signature = hex::encode(hmac::sign(&key, string_to_sign.as_bytes()).as_ref());
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}",
        signed_headers.join(";")
    );
    if let Ok(mut value) = HeaderValue::from_str(&authorization) {
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
}

/// The SigV4 signing key: HMAC chain over `AWS4`+secret, date, region, service, `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    hmac::Key::new(
        hmac::HMAC_SHA256,
        signing_key_bytes(secret, date, region, service).as_ref(),
    )
}

/// The signing key's bytes (what AWS's documentation prints in its worked example): what
/// origins hand edges for AWS_IAM verification, per access key, day and region.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(signing_key_bytes(secret, date, region, service).as_ref());
    out
}

fn signing_key_bytes(secret: &str, date: &str, region: &str, service: &str) -> hmac::Tag {
    let mut key_material = Vec::with_capacity(4 + secret.len());
    key_material.extend_from_slice(b"AWS4");
    key_material.extend_from_slice(secret.as_bytes());
    let mut tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key_material),
        date.as_bytes(),
    );
    for part in [region, service, TERMINATOR] {
        tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref()),
            part.as_bytes(),
        );
    }
    tag
}

// === extraction ===

/// The signature's parts, from the header or the query. Not `Debug`: it holds the signature.
struct Authentication {
    credential: String,
    signed_headers: String,
    signature: String,
    amz_date: String,
    presigned: bool,
    expires_seconds: Option<i64>,
}

struct Scope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl std::fmt::Display for Scope<'_> {
    /// The credential scope as it appears in the string to sign (without the key id).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

fn extract(request: &SignedRequest<'_>) -> Result<Authentication, AuthError> {
    let mut authorization = request.headers.get_all(AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(AuthError::Malformed(
            "Only one Authorization header may be specified.".to_owned(),
        ));
    }
    let presign = request
        .query
        .is_some_and(|query| query_pairs(query).any(|(name, _)| name == "X-Amz-Algorithm"));
    match (header, presign) {
        (None, false) => Err(AuthError::MissingAuthentication),
        (Some(_), true) => Err(AuthError::Malformed(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified"
                .to_owned(),
        )),
        (Some(value), false) => from_header(value, request.headers),
        (None, true) => from_query(request.query.unwrap_or_default()),
    }
}

fn from_header(value: &HeaderValue, headers: &HeaderMap) -> Result<Authentication, AuthError> {
    let value = value.to_str().map_err(|_| {
        AuthError::Malformed("The Authorization header contains non-ASCII characters.".to_owned())
    })?;
    let value = value.trim();
    let (algorithm, parameters) = value.split_once([' ', '\t']).unwrap_or((value, ""));

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if algorithm == ALGORITHM {
        for component in parameters.split(',') {
            let component = component.trim();
            if component.is_empty() {
                continue;
            }
            let Some((name, value)) = component.split_once('=') else {
                return Err(AuthError::Malformed(
                    "Invalid key=value pair (missing equal-sign) in Authorization header."
                        .to_owned(),
                ));
            };
            match name.trim() {
                "Credential" => credential = Some(value.trim().to_owned()),
                "SignedHeaders" => signed_headers = Some(value.trim().to_owned()),
                "Signature" => signature = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let amz_date = single_header(headers, X_AMZ_DATE)?;

    // AWS lists every missing part in one message, in this order.
    let mut missing = String::new();
    if credential.is_none() {
        missing.push_str("Authorization header requires 'Credential' parameter. ");
    }
    if signature.is_none() {
        missing.push_str("Authorization header requires 'Signature' parameter. ");
    }
    if signed_headers.is_none() {
        missing.push_str("Authorization header requires 'SignedHeaders' parameter. ");
    }
    if amz_date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    match (credential, signed_headers, signature, amz_date) {
        (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) => {
            Ok(Authentication {
                credential,
                signed_headers,
                signature,
                amz_date,
                presigned: false,
                expires_seconds: None,
            })
        }
        _ => Err(AuthError::Malformed(missing.trim_end().to_owned())),
    }
}

fn from_query(query: &str) -> Result<Authentication, AuthError> {
    let mut algorithm = None;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    let mut amz_date = None;
    let mut expires = None;
    for (name, value) in query_pairs(query) {
        let slot = match name.as_str() {
            "X-Amz-Algorithm" => &mut algorithm,
            "X-Amz-Credential" => &mut credential,
            "X-Amz-SignedHeaders" => &mut signed_headers,
            "X-Amz-Signature" => &mut signature,
            "X-Amz-Date" => &mut amz_date,
            "X-Amz-Expires" => &mut expires,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(AuthError::Malformed(format!(
                "The query-string parameter '{name}' may appear only once."
            )));
        }
    }
    let (
        Some(algorithm),
        Some(credential),
        Some(signed_headers),
        Some(signature),
        Some(amz_date),
        Some(expires),
    ) = (
        algorithm,
        credential,
        signed_headers,
        signature,
        amz_date,
        expires,
    )
    else {
        return Err(AuthError::Malformed(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', \
             'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. \
             Re-examine the query-string parameters."
                .to_owned(),
        ));
    };
    if algorithm != ALGORITHM {
        return Err(AuthError::Malformed(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\"."
        )));
    }
    let expires_seconds = expires
        .parse::<i64>()
        .ok()
        .filter(|seconds| (1..=MAX_PRESIGNED_EXPIRES_SECONDS).contains(seconds))
        .ok_or_else(|| {
            AuthError::Malformed(format!(
                "X-Amz-Expires must be a whole number of seconds from 1 to \
                 {MAX_PRESIGNED_EXPIRES_SECONDS}."
            ))
        })?;
    Ok(Authentication {
        credential,
        signed_headers,
        signature,
        amz_date,
        presigned: true,
        expires_seconds: Some(expires_seconds),
    })
}

/// The value of a header that must appear at most once.
fn single_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Malformed(format!(
            "Only one '{name}' header may be specified."
        )));
    }
    first
        .to_str()
        .map(|value| Some(value.trim().to_owned()))
        .map_err(|_| AuthError::Malformed(format!("The '{name}' header is not ASCII.")))
}

fn parse_credential(credential: &str) -> Result<Scope<'_>, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(AuthError::Malformed(format!(
            "Credential should have the form <access key id>/<YYYYMMDD>/<region>/<service>/\
             {TERMINATOR}; it has {} parts.",
            parts.len()
        )));
    };
    if terminator != TERMINATOR {
        return Err(AuthError::Malformed(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not \
             '{terminator}'."
        )));
    }
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(AuthError::Malformed(
            "Credential has an empty access key id, region or service.".to_owned(),
        ));
    }
    Ok(Scope {
        access_key_id,
        date,
        region,
        service,
    })
}

fn parse_signed_headers(list: &str) -> Result<Vec<&str>, AuthError> {
    let names: Vec<&str> = list.split(';').collect();
    if names.iter().any(|name| name.is_empty()) {
        return Err(AuthError::Malformed(format!(
            "SignedHeaders '{list}' contains an empty header name."
        )));
    }
    if !names.contains(&"host") {
        return Err(AuthError::Malformed(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    Ok(names)
}

fn check_time(
    signed_at: i64,
    now_epoch_s: i64,
    expires_seconds: Option<i64>,
) -> Result<(), AuthError> {
    let skew_seconds = now_epoch_s - signed_at;
    // Neither form may be dated ahead of the clock by more than the skew allowance.
    if skew_seconds < -MAX_SKEW_SECONDS {
        return Err(AuthError::Stale {
            skew_seconds,
            now_epoch_s,
            window_seconds: MAX_SKEW_SECONDS,
        });
    }
    let window_seconds = expires_seconds.unwrap_or(MAX_SKEW_SECONDS);
    if skew_seconds > window_seconds {
        return Err(AuthError::Stale {
            skew_seconds,
            now_epoch_s,
            window_seconds,
        });
    }
    Ok(())
}

// === canonical request ===

/// The canonical request exactly as SigV4 defines it; the caller hashes it.
fn canonical_request(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    presigned: bool,
    headers: &HeaderMap,
    signed_headers: &[&str],
    body: Option<&[u8]>,
) -> Result<String, AuthError> {
    let mut canonical = String::with_capacity(256);
    canonical.push_str(method);
    canonical.push('\n');
    canonical.push_str(&canonical_uri(raw_path));
    canonical.push('\n');
    canonical.push_str(&canonical_query(raw_query.unwrap_or_default(), presigned));
    canonical.push('\n');
    for name in signed_headers {
        let mut values = headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(AuthError::Malformed(format!(
                "The signed header '{name}' is not present in the request."
            )));
        }
        canonical.push_str(name);
        canonical.push(':');
        let mut first = true;
        for value in values {
            if !first {
                canonical.push(',');
            }
            first = false;
            push_trimmed_value(&mut canonical, value.as_bytes());
        }
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&payload_hash(headers, body)?);
    Ok(canonical)
}

/// Trims spaces at both ends and collapses runs of spaces, as the SDKs do (tabs are kept).
fn push_trimmed_value(out: &mut String, value: &[u8]) {
    let text = String::from_utf8_lossy(value);
    let mut previous_space = false;
    for character in text.trim_matches(' ').chars() {
        if character == ' ' {
            if previous_space {
                continue;
            }
            previous_space = true;
        } else {
            previous_space = false;
        }
        out.push(character);
    }
}

/// The payload hash to sign: the declared one (checked against `body` when it is given), else
/// the SHA-256 of `body`.
fn payload_hash(headers: &HeaderMap, body: Option<&[u8]>) -> Result<String, AuthError> {
    let computed = || body.map(|body| hex::encode(digest::digest(&digest::SHA256, body)));
    let Some(declared) = single_header(headers, X_AMZ_CONTENT_SHA256)? else {
        return computed().ok_or_else(|| {
            AuthError::Malformed(format!(
                "{X_AMZ_CONTENT_SHA256} is required to verify a request before its body."
            ))
        });
    };
    if declared == UNSIGNED_PAYLOAD {
        return Ok(declared);
    }
    let is_hex_digest =
        declared.len() == 64 && declared.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !is_hex_digest {
        return Err(AuthError::Malformed(format!(
            "x-amz-content-sha256 must be a hex SHA-256 digest or {UNSIGNED_PAYLOAD}."
        )));
    }
    // A declared digest is signed in place of the body, so the body must match it (checked by
    // the caller when the body has not been read yet).
    if let Some(computed) = computed()
        && !declared.eq_ignore_ascii_case(&computed)
    {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(declared)
}

/// Removes dot segments and empty segments, then encodes the path once more.
fn canonical_uri(raw_path: &str) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let needs_normalising = path.contains('.') || path.contains("//") || !path.starts_with('/');
    if !needs_normalising {
        return utf8_percent_encode(path, PATH_ENCODE_SET).to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normalised = String::with_capacity(path.len() + 1);
    normalised.push('/');
    normalised.push_str(&segments.join("/"));
    let ends_with_slash = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|suffix| path.ends_with(suffix));
    if ends_with_slash && !normalised.ends_with('/') {
        normalised.push('/');
    }
    utf8_percent_encode(&normalised, PATH_ENCODE_SET).to_string()
}

/// Decoded `(name, value)` pairs of a raw query; `+` is a space, as in form encoding.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
}

fn form_decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(name, _)| !(presigned && name == "X-Amz-Signature"))
        .map(|(name, value)| {
            (
                utf8_percent_encode(&name, QUERY_ENCODE_SET).to_string(),
                utf8_percent_encode(&value, QUERY_ENCODE_SET).to_string(),
            )
        })
        .collect();
    pairs.sort();
    let mut canonical = String::with_capacity(query.len() + 8);
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            canonical.push('&');
        }
        canonical.push_str(name);
        canonical.push('=');
        canonical.push_str(value);
    }
    canonical
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hashed = hex::encode(digest::digest(
        &digest::SHA256,
        canonical_request.as_bytes(),
    ));
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{hashed}")
}

/// `host[:port]` from an absolute URI, leaving out the scheme's default port as clients do.
fn host_from_uri(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?;
    match (uri.scheme_str(), uri.port_u16()) {
        (_, None) | (Some("http"), Some(80)) | (Some("https"), Some(443)) => Some(host.to_owned()),
        (_, Some(port)) => Some(format!("{host}:{port}")),
    }
}

// === dates ===

/// `20150830T123600Z` → seconds since the epoch; `None` unless exactly that shape and valid.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Seconds since the epoch → `20150830T123600Z`.
pub fn format_amz_date(epoch_s: i64) -> String {
    let (year, month, day) = crate::time::civil_from_days(epoch_s.div_euclid(86_400));
    let second_of_day = epoch_s.rem_euclid(86_400);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60
    )
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm; the inverse of
/// `time::civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
