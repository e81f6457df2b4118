//! AWS_IAM: SigV4-signed data-plane requests (service `execute-api`) from the IAM identities of
//! the replicated state, allowed by their inline policies' `execute-api:Invoke` statements.
//!
//! ```text
//!   request ─▶ authenticate: SigV4 scope → (access key, date, region) → derived signing key
//!                            (one hash lookup, ArcSwap, no lock, no network) → IamCaller
//!           ─▶ authorize: the user's policies on the method ARN (explicit deny wins)
//! ```
//!
//! The verifier never holds a secret: it verifies with per-day signing keys (SigV4's derived
//! `kSigning`, service `execute-api`) handed to it by whoever opens the sealed secrets (an
//! origin for an edge; `dev` itself). Identities and policies come from the state the node
//! follows ([`IamVerifier::observe_state`]); keys from [`IamVerifier::set_signing_keys`]. A key
//! that the state no longer holds, or holds `Inactive`, is refused at once, whatever signing
//! keys are still loaded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use portico_proto::GatewayState;
use portico_proto::iam::{AccessKeyStatus, SigningKeySet};

use super::policy::{Evaluation, Policy, PolicyRequest, Principal};
use crate::sigv4::{self, AuthError, SignedRequest};

/// The service AWS_IAM requests are signed for.
pub const SERVICE: &str = "execute-api";
/// The action every data-plane request asks for.
pub const INVOKE: &str = "execute-api:Invoke";

/// Who signed a request (`requestContext.identity` on AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamCaller {
    pub access_key: String,
    pub user_arn: String,
    /// The user's id (`AIDA...`), AWS's `caller`.
    pub caller: String,
    /// Also the user's id on AWS (`identity.user`).
    pub user: String,
    pub account_id: String,
    /// The user's name (for `aws:username` conditions; not in the event).
    pub user_name: String,
}

impl From<IamCaller> for crate::request::CallerIdentity {
    /// `requestContext.identity` of the caller.
    fn from(caller: IamCaller) -> Self {
        crate::request::CallerIdentity {
            access_key: caller.access_key,
            user_arn: caller.user_arn,
            caller: caller.caller,
            user: caller.user,
            account_id: caller.account_id,
        }
    }
}

/// Why an AWS_IAM request is refused, with API Gateway's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IamDenial {
    /// The SigV4 check failed (missing, malformed, unknown key, bad or expired signature).
    Authentication(AuthError),
    /// The caller's policies do not allow `execute-api:Invoke` on the method.
    NotAuthorized {
        user_arn: String,
        method_arn: String,
        explicit_deny: bool,
    },
}

impl IamDenial {
    /// Always 403, as API Gateway answers every IAM failure.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::FORBIDDEN
    }

    /// `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            IamDenial::Authentication(error) => error.error_type(),
            IamDenial::NotAuthorized { .. } => "AccessDeniedException",
        }
    }

    /// The gateway response type this denial goes through (`None`: DEFAULT_4XX), as
    /// [`IamDenial::into_failure`] maps it.
    pub fn gateway_response_type(&self) -> Option<&'static str> {
        self.clone().into_failure().error.response_type()
    }

    /// The `message` of the JSON body. The method ARN's account is masked but for its last
    /// four digits, as in the resource-policy denials.
    pub fn message(&self) -> String {
        match self {
            IamDenial::Authentication(error) => error.message(),
            IamDenial::NotAuthorized {
                user_arn,
                method_arn,
                explicit_deny: true,
            } => format!(
                "User: {user_arn} is not authorized to perform: {INVOKE} on resource: \
                 {} with an explicit deny",
                super::mask_account(method_arn)
            ),
            IamDenial::NotAuthorized {
                user_arn,
                method_arn,
                explicit_deny: false,
            } => format!(
                "User: {user_arn} is not authorized to perform: {INVOKE} on resource: \
                 {} because no identity-based policy allows the {INVOKE} action",
                super::mask_account(method_arn)
            ),
        }
    }

    /// The pipeline's failure for this denial: the gateway error (for gateway responses and
    /// the log) with AWS's message. `InvalidSignature` carries every signature problem
    /// (mismatch, expiry, malformed, wrong scope) with its own text.
    pub fn into_failure(self) -> crate::request::Failure {
        use crate::request::Failure;
        use crate::respond::GatewayError;
        let message = self.message();
        match &self {
            IamDenial::Authentication(AuthError::MissingAuthentication) => Failure::new(
                GatewayError::MissingAuthenticationToken,
                "AWS_IAM: the request is not signed",
            ),
            IamDenial::Authentication(AuthError::UnknownAccessKey) => Failure::new(
                GatewayError::UnrecognizedClient,
                "AWS_IAM: unknown, inactive or not yet keyed access key",
            ),
            IamDenial::Authentication(AuthError::Malformed(_)) => Failure::with_message(
                GatewayError::IncompleteSignature,
                message,
                "AWS_IAM: the signature is incomplete",
            ),
            IamDenial::Authentication(_) => Failure::with_message(
                GatewayError::InvalidSignature,
                message,
                "AWS_IAM: the signature does not verify",
            ),
            IamDenial::NotAuthorized { explicit_deny, .. } => Failure::with_message(
                GatewayError::AccessDenied,
                message,
                if *explicit_deny {
                    "AWS_IAM: the caller's policy denies this method"
                } else {
                    "AWS_IAM: no policy of the caller allows this method"
                },
            ),
        }
    }
}

/// One user as the verifier needs it.
#[derive(Debug)]
struct User {
    name: String,
    id: String,
    arn: String,
    account_id: String,
    /// `Err` when a stored document does not parse here: the user is then refused everything
    /// (a policy this node cannot read might hold the deny that matters).
    policies: Result<Vec<Policy>, String>,
}

/// Identities from the state: access key id → (active, user).
#[derive(Debug, Default)]
struct Identities {
    /// Whether a state was observed at all.
    observed: bool,
    revision: u64,
    keys: HashMap<String, (bool, Arc<User>)>,
}

/// One derived key: `(date YYYYMMDD, region, kSigning)`.
type DayKey = ([u8; 8], String, [u8; 32]);

/// Signing keys by access key id, a handful per key. `Debug` prints counts only: the keys sign
/// requests.
#[derive(Default)]
struct KeyTable {
    revision: u64,
    loaded: bool,
    regions: Vec<String>,
    by_key: HashMap<String, Vec<DayKey>>,
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyTable")
            .field("revision", &self.revision)
            .field("loaded", &self.loaded)
            .field("regions", &self.regions)
            .field("access_keys", &self.by_key.len())
            .finish()
    }
}

/// The node-wide AWS_IAM verifier. Cheap to share (`Arc`); updates swap whole tables.
#[derive(Debug, Default)]
pub struct IamVerifier {
    identities: ArcSwap<Identities>,
    keys: ArcSwap<KeyTable>,
}

impl IamVerifier {
    pub fn new() -> IamVerifier {
        IamVerifier::default()
    }

    /// Takes in the identities and policies of `state` (the node's followed state). Cheap when
    /// the IAM part did not change (one comparison). Returns whether it changed.
    pub fn observe_state(&self, state: &GatewayState) -> bool {
        let iam = &state.iam;
        let current = self.identities.load();
        if current.observed && current.revision == iam.revision {
            return false;
        }
        let users: HashMap<&str, Arc<User>> = iam
            .users
            .values()
            .map(|user| {
                let policies = user
                    .policies
                    .iter()
                    .map(|(name, document)| {
                        Policy::parse(document).map_err(|error| format!("{name}: {}", error.0))
                    })
                    .collect::<Result<Vec<_>, _>>();
                if let Err(error) = &policies {
                    tracing::error!(user = %user.user_name, %error, "an IAM policy does not parse; the user is refused everything");
                }
                (
                    user.user_name.as_str(),
                    Arc::new(User {
                        name: user.user_name.clone(),
                        id: user.user_id.clone(),
                        arn: user.arn.clone(),
                        account_id: user.account_id.clone(),
                        policies,
                    }),
                )
            })
            .collect();
        let keys = iam
            .access_keys
            .values()
            .filter_map(|key| {
                let user = users.get(key.user_name.as_str())?;
                Some((
                    key.access_key_id.clone(),
                    (key.status == AccessKeyStatus::Active, user.clone()),
                ))
            })
            .collect();
        self.identities.store(Arc::new(Identities {
            observed: true,
            revision: iam.revision,
            keys,
        }));
        true
    }

    /// The IAM revision of the observed state.
    pub fn state_revision(&self) -> u64 {
        self.identities.load().revision
    }

    /// Replaces the signing keys (from an origin, or derived locally in `dev`).
    pub fn set_signing_keys(&self, set: &SigningKeySet) {
        let mut by_key: HashMap<String, Vec<DayKey>> = HashMap::new();
        for derived in &set.keys {
            let (Ok(date), Ok(key)) = (
                <[u8; 8]>::try_from(derived.date.as_bytes()),
                <[u8; 32]>::try_from(derived.key.as_slice()),
            ) else {
                tracing::warn!(access_key_id = %derived.access_key_id, "ignoring a malformed signing key");
                continue;
            };
            by_key
                .entry(derived.access_key_id.clone())
                .or_default()
                .push((date, derived.region.clone(), key));
        }
        self.keys.store(Arc::new(KeyTable {
            revision: set.revision,
            loaded: true,
            regions: set.regions.clone(),
            by_key,
        }));
    }

    /// The IAM revision the loaded signing keys were derived from (`None` before any set).
    pub fn keys_revision(&self) -> Option<u64> {
        let keys = self.keys.load();
        keys.loaded.then_some(keys.revision)
    }

    /// Checks the request's SigV4 signature (service `execute-api`) against the signing key
    /// of its access key, day and region.
    pub fn authenticate(
        &self,
        request: &SignedRequest<'_>,
        now_epoch_s: i64,
    ) -> Result<IamCaller, IamDenial> {
        let identities = self.identities.load();
        let keys = self.keys.load();
        // Any region while no key set names its regions (the region must then still have a
        // derived key for the request to verify).
        let region_allowed =
            |region: &str| keys.regions.is_empty() || keys.regions.iter().any(|r| r == region);
        let key_for = |access_key_id: &str, date: &str, region: &str| -> Option<[u8; 32]> {
            match identities.keys.get(access_key_id) {
                Some((true, _)) => {}
                _ => return None,
            }
            keys.by_key
                .get(access_key_id)?
                .iter()
                .find(|(day, key_region, _)| day == date.as_bytes() && key_region == region)
                .map(|(_, _, key)| *key)
        };
        let verified = sigv4::verify_with_signing_key(
            request,
            now_epoch_s,
            SERVICE,
            &region_allowed,
            &key_for,
        )
        .map_err(IamDenial::Authentication)?;
        let (_, user) = identities
            .keys
            .get(&verified.access_key_id)
            .ok_or(IamDenial::Authentication(AuthError::UnknownAccessKey))?;
        Ok(IamCaller {
            access_key: verified.access_key_id,
            user_arn: user.arn.clone(),
            caller: user.id.clone(),
            user: user.id.clone(),
            account_id: user.account_id.clone(),
            user_name: user.name.clone(),
        })
    }

    /// [`IamVerifier::authenticate`] for a request as the pipeline holds it: `path` and
    /// `query` raw as received (`RequestView::path`/`query`, stage prefix included), `body`
    /// the whole body (the signature covers its hash, so an AWS_IAM method's body must be
    /// read before authorization). Over HTTP/2 the client signed `:authority` as `host`: it
    /// is copied in when the request has no `host` header.
    pub fn authenticate_parts(
        &self,
        parts: &http::request::Parts,
        path: &str,
        query: Option<&str>,
        body: &[u8],
        now_epoch_s: i64,
    ) -> Result<IamCaller, IamDenial> {
        let with_host;
        let headers = match (
            parts.headers.contains_key(http::header::HOST),
            parts.uri.authority(),
        ) {
            (false, Some(authority)) => {
                let mut copy = parts.headers.clone();
                if let Ok(value) = http::HeaderValue::from_str(authority.as_str()) {
                    copy.insert(http::header::HOST, value);
                }
                with_host = copy;
                &with_host
            }
            _ => &parts.headers,
        };
        self.authenticate(
            &SignedRequest {
                method: parts.method.as_str(),
                path,
                query,
                headers,
                body,
            },
            now_epoch_s,
        )
    }

    /// `execute-api:Invoke` on `method_arn`
    /// (`arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}`) under the
    /// caller's inline policies: any explicit deny refuses, else some allow is needed.
    pub fn authorize(
        &self,
        caller: &IamCaller,
        method_arn: &str,
        source_ip: IpAddr,
    ) -> Result<(), IamDenial> {
        let identities = self.identities.load();
        let denied = |explicit_deny| IamDenial::NotAuthorized {
            user_arn: caller.user_arn.clone(),
            method_arn: method_arn.to_string(),
            explicit_deny,
        };
        let Some((_, user)) = identities.keys.get(&caller.access_key) else {
            return Err(denied(false));
        };
        // A policy this node cannot evaluate might hold the deny that matters: refuse as an
        // explicit deny, so that no resource policy allow admits the user either.
        let Ok(policies) = &user.policies else {
            return Err(denied(true));
        };
        let context = [
            ("aws:username", user.name.as_str()),
            ("aws:userid", user.id.as_str()),
            ("aws:PrincipalArn", user.arn.as_str()),
            ("aws:PrincipalAccount", user.account_id.as_str()),
            ("aws:PrincipalType", "User"),
        ];
        let request = PolicyRequest {
            action: INVOKE,
            resource: method_arn,
            principal: Principal::Iam {
                arn: &user.arn,
                account: &user.account_id,
            },
            source_ip: Some(source_ip),
            context: &context,
        };
        let mut allowed = false;
        for policy in policies {
            match policy.evaluate(&request) {
                Evaluation::Deny => return Err(denied(true)),
                Evaluation::Allow => allowed = true,
                Evaluation::NotApplicable => {}
            }
        }
        if allowed { Ok(()) } else { Err(denied(false)) }
    }
}

#[cfg(test)]
mod tests;
