use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use portico_proto::GatewayState;
use portico_proto::iam::{AccessKeyStatus, IamAccessKey, IamOp};

use super::*;
use crate::admin::iam::derive_signing_keys;
use crate::admin::secrets::SealingKey;

const KEY: &str = "AKIAALICE00000000001";
const SECRET: &str = "alice-secret-alice-secret-alice-secret-0";
const ARN: &str = "arn:aws:iam::000000000000:user/alice";
const METHOD: &str = "arn:aws:execute-api:us-east-1:000000000000:abcdefghij/prod/GET/pets";
// 2026-12-02T12:00:00Z
const NOW: i64 = 1_796_212_800;

fn apply(state: &mut GatewayState, op: IamOp) {
    state.iam.apply(&op, &|_| false).expect("op applies");
}

/// A state with alice (one active key) and `policies`, and a verifier fed from it the way
/// `dev` and edges feed theirs.
fn setup(policies: &[&str]) -> (GatewayState, SealingKey, IamVerifier) {
    let sealing = SealingKey::from_bytes([3; 32]);
    let mut state = GatewayState::default();
    apply(
        &mut state,
        IamOp::CreateUser {
            user_name: "alice".into(),
            path: "/".into(),
            user_id: "AIDAALICE".into(),
            account_id: "000000000000".into(),
            create_date: 0,
        },
    );
    let sealed = sealing.seal(KEY, SECRET);
    apply(
        &mut state,
        IamOp::CreateAccessKey {
            key: IamAccessKey {
                access_key_id: KEY.into(),
                user_name: "alice".into(),
                status: AccessKeyStatus::Active,
                create_date: 0,
                nonce: sealed.nonce.to_vec(),
                sealed_secret: sealed.ciphertext,
            },
        },
    );
    for (index, document) in policies.iter().enumerate() {
        apply(
            &mut state,
            IamOp::PutUserPolicy {
                user_name: "alice".into(),
                policy_name: format!("p{index}"),
                policy_document: (*document).into(),
            },
        );
    }
    let verifier = IamVerifier::new();
    feed(&verifier, &state, &sealing);
    (state, sealing, verifier)
}

fn feed(verifier: &IamVerifier, state: &GatewayState, sealing: &SealingKey) {
    verifier.observe_state(state);
    verifier.set_signing_keys(&derive_signing_keys(
        state,
        sealing,
        &["us-east-1".to_string()],
        NOW,
    ));
}

struct Signed {
    headers: HeaderMap,
}

fn signed(access_key: &str, secret: &str, region: &str, at: i64) -> Signed {
    let mut headers = HeaderMap::new();
    headers.insert(
        "host",
        HeaderValue::from_static("abcdefghij.execute-api.localhost"),
    );
    let uri: http::Uri = "https://abcdefghij.execute-api.localhost/prod/pets?a=1"
        .parse()
        .unwrap();
    crate::sigv4::sign(
        "GET",
        &uri,
        &mut headers,
        b"",
        access_key,
        secret,
        region,
        SERVICE,
        at,
    );
    Signed { headers }
}

impl Signed {
    fn check(&self, verifier: &IamVerifier, now: i64) -> Result<IamCaller, IamDenial> {
        verifier.authenticate(
            &SignedRequest {
                method: "GET",
                path: "/prod/pets",
                query: Some("a=1"),
                headers: &self.headers,
                body: b"",
            },
            now,
        )
    }
}

const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:abcdefghij/*"}]}"#;

fn ip() -> IpAddr {
    "203.0.113.9".parse().unwrap()
}

fn denial_parts(denial: &IamDenial) -> (u16, &'static str, String) {
    (
        denial.status().as_u16(),
        denial.error_type(),
        denial.message(),
    )
}

#[test]
fn a_signed_request_names_its_caller() {
    let (_, _, verifier) = setup(&[ALLOW_ALL]);
    let caller = signed(KEY, SECRET, "us-east-1", NOW)
        .check(&verifier, NOW)
        .unwrap();
    assert_eq!(
        caller,
        IamCaller {
            access_key: KEY.into(),
            user_arn: ARN.into(),
            caller: "AIDAALICE".into(),
            user: "AIDAALICE".into(),
            account_id: "000000000000".into(),
            user_name: "alice".into(),
        }
    );
    assert_eq!(verifier.authorize(&caller, METHOD, ip()), Ok(()));
    let identity = crate::request::CallerIdentity::from(caller);
    assert_eq!(
        (
            identity.user_arn.as_str(),
            identity.caller.as_str(),
            identity.account_id.as_str()
        ),
        (ARN, "AIDAALICE", "000000000000")
    );
    // Signed just before midnight, checked just after: yesterday's key is in the set.
    let before_midnight = NOW - 12 * 3600 - 60;
    assert!(
        signed(KEY, SECRET, "us-east-1", before_midnight)
            .check(&verifier, before_midnight + 120)
            .is_ok()
    );
}

#[test]
fn every_authentication_failure_gets_api_gateways_answer() {
    let (mut state, sealing, verifier) = setup(&[ALLOW_ALL]);
    let unsigned = Signed {
        headers: HeaderMap::new(),
    };
    assert_eq!(
        unsigned
            .check(&verifier, NOW)
            .unwrap_err()
            .into_failure()
            .error,
        crate::respond::GatewayError::MissingAuthenticationToken
    );
    assert_eq!(
        denial_parts(&unsigned.check(&verifier, NOW).unwrap_err()),
        (
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token".to_string()
        )
    );
    let unknown = signed("AKIAUNKNOWN000000000", SECRET, "us-east-1", NOW);
    assert_eq!(
        unknown
            .check(&verifier, NOW)
            .unwrap_err()
            .into_failure()
            .error,
        crate::respond::GatewayError::UnrecognizedClient
    );
    assert_eq!(
        denial_parts(&unknown.check(&verifier, NOW).unwrap_err()),
        (
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".to_string()
        )
    );
    let wrong_secret = signed(KEY, "not-the-secret", "us-east-1", NOW);
    let (status, kind, message) = denial_parts(&wrong_secret.check(&verifier, NOW).unwrap_err());
    assert_eq!((status, kind), (403, "InvalidSignatureException"));
    assert!(
        message.starts_with(
            "The request signature we calculated does not match the signature you provided."
        ),
        "{message}"
    );
    let old = signed(KEY, SECRET, "us-east-1", NOW - 600);
    let expired = old.check(&verifier, NOW).unwrap_err();
    let failure = expired.clone().into_failure();
    assert_eq!(
        failure.error,
        crate::respond::GatewayError::InvalidSignature
    );
    assert_eq!(failure.message.as_deref(), Some(expired.message().as_str()));
    let (status, kind, message) = denial_parts(&expired);
    assert_eq!((status, kind), (403, "InvalidSignatureException"));
    assert_eq!(
        message,
        "Signature expired: 20261202T115000Z is now earlier than 20261202T115500Z (20261202T120000Z - 5 min.)"
    );
    assert_eq!(
        IamDenial::Authentication(crate::sigv4::AuthError::Stale {
            skew_seconds: 600,
            now_epoch_s: NOW,
            window_seconds: 300
        })
        .gateway_response_type(),
        Some("INVALID_SIGNATURE")
    );
    // A region the cluster does not accept.
    let elsewhere = signed(KEY, SECRET, "ap-south-1", NOW);
    let (status, kind, message) = denial_parts(&elsewhere.check(&verifier, NOW).unwrap_err());
    assert_eq!((status, kind), (403, "InvalidSignatureException"));
    assert!(message.contains("'ap-south-1'"), "{message}");

    // Deactivated: refused from the state at once, with the signing keys still loaded.
    let good = signed(KEY, SECRET, "us-east-1", NOW);
    apply(
        &mut state,
        IamOp::UpdateAccessKey {
            user_name: "alice".into(),
            access_key_id: KEY.into(),
            status: AccessKeyStatus::Inactive,
        },
    );
    verifier.observe_state(&state);
    assert_eq!(
        good.check(&verifier, NOW).unwrap_err().error_type(),
        "UnrecognizedClientException"
    );
    // Reactivated, but the keys on hand are from another day: nothing verifies.
    apply(
        &mut state,
        IamOp::UpdateAccessKey {
            user_name: "alice".into(),
            access_key_id: KEY.into(),
            status: AccessKeyStatus::Active,
        },
    );
    verifier.observe_state(&state);
    assert!(good.check(&verifier, NOW).is_ok());
    verifier.set_signing_keys(&derive_signing_keys(
        &state,
        &sealing,
        &["us-east-1".to_string()],
        NOW + 3 * 86_400,
    ));
    assert_eq!(
        good.check(&verifier, NOW).unwrap_err().error_type(),
        "UnrecognizedClientException"
    );
    // Deleted.
    feed(&verifier, &state, &sealing);
    apply(
        &mut state,
        IamOp::DeleteAccessKey {
            user_name: "alice".into(),
            access_key_id: KEY.into(),
        },
    );
    verifier.observe_state(&state);
    assert_eq!(
        good.check(&verifier, NOW).unwrap_err().error_type(),
        "UnrecognizedClientException"
    );
}

#[test]
fn policies_decide_and_an_explicit_deny_wins() {
    let deny_delete = r#"{"Statement":{"Effect":"Deny","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:abcdefghij/*/DELETE/*"}}"#;
    let (_, _, verifier) = setup(&[ALLOW_ALL, deny_delete]);
    let caller = signed(KEY, SECRET, "us-east-1", NOW)
        .check(&verifier, NOW)
        .unwrap();
    assert_eq!(verifier.authorize(&caller, METHOD, ip()), Ok(()));
    let delete = "arn:aws:execute-api:us-east-1:000000000000:abcdefghij/prod/DELETE/pets";
    let denial = verifier.authorize(&caller, delete, ip()).unwrap_err();
    assert_eq!(
        denial_parts(&denial),
        (
            403,
            "AccessDeniedException",
            format!(
                "User: {ARN} is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:********0000:abcdefghij/prod/DELETE/pets with an explicit deny"
            )
        )
    );
    let failure = denial.into_failure();
    assert_eq!(failure.error, crate::respond::GatewayError::AccessDenied);
    assert!(failure.message.unwrap().ends_with("with an explicit deny"));
    let other_api = "arn:aws:execute-api:us-east-1:000000000000:zzzzzzzzzz/prod/GET/pets";
    let denial = verifier.authorize(&caller, other_api, ip()).unwrap_err();
    assert_eq!(
        denial.message(),
        format!(
            "User: {ARN} is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:********0000:zzzzzzzzzz/prod/GET/pets because no identity-based policy allows the execute-api:Invoke action"
        )
    );
    assert_eq!(denial.gateway_response_type(), Some("ACCESS_DENIED"));
}

#[test]
fn no_policy_denies_and_conditions_see_the_caller() {
    let (_, _, verifier) = setup(&[]);
    let caller = signed(KEY, SECRET, "us-east-1", NOW)
        .check(&verifier, NOW)
        .unwrap();
    assert!(verifier.authorize(&caller, METHOD, ip()).is_err());

    let by_ip = r#"{"Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"},"StringEquals":{"aws:username":"alice"}}}]}"#;
    let (_, _, verifier) = setup(&[by_ip]);
    let caller = signed(KEY, SECRET, "us-east-1", NOW)
        .check(&verifier, NOW)
        .unwrap();
    assert_eq!(verifier.authorize(&caller, METHOD, ip()), Ok(()));
    assert!(
        verifier
            .authorize(&caller, METHOD, "198.51.100.1".parse().unwrap())
            .is_err()
    );
}

#[test]
fn a_policy_this_node_cannot_read_refuses_everything() {
    // The state's structural check passes; the evaluator refuses the effect.
    let unreadable = r#"{"Statement":[{"Effect":"Perhaps","Action":"*","Resource":"*"}]}"#;
    let (_, _, verifier) = setup(&[ALLOW_ALL, unreadable]);
    let caller = signed(KEY, SECRET, "us-east-1", NOW)
        .check(&verifier, NOW)
        .unwrap();
    // Refused as an explicit deny, so that no resource policy allow can admit the user.
    assert!(matches!(
        verifier.authorize(&caller, METHOD, ip()),
        Err(IamDenial::NotAuthorized {
            explicit_deny: true,
            ..
        })
    ));
}

#[test]
fn the_verifier_holds_no_secret_and_a_set_from_another_sealing_key_verifies_nothing() {
    let (state, _, verifier) = setup(&[ALLOW_ALL]);
    assert!(!format!("{verifier:?}").contains(SECRET));
    feed(&verifier, &state, &SealingKey::from_bytes([9; 32]));
    assert!(
        signed(KEY, SECRET, "us-east-1", NOW)
            .check(&verifier, NOW)
            .is_err()
    );
}

#[test]
fn http2_requests_are_checked_with_their_authority_as_host() {
    let (_, _, verifier) = setup(&[ALLOW_ALL]);
    let signed = signed(KEY, SECRET, "us-east-1", NOW);
    // As hyper hands over an HTTP/2 request: no host header, the authority in the URI.
    let mut request = http::Request::get("https://abcdefghij.execute-api.localhost/prod/pets?a=1")
        .version(http::Version::HTTP_2)
        .body(())
        .unwrap();
    for (name, value) in &signed.headers {
        if name != http::header::HOST {
            request.headers_mut().insert(name, value.clone());
        }
    }
    let (parts, ()) = request.into_parts();
    let caller = verifier
        .authenticate_parts(&parts, "/prod/pets", Some("a=1"), b"", NOW)
        .unwrap();
    assert_eq!(caller.access_key, KEY);
    // The same body the client signed, or nothing.
    assert!(
        verifier
            .authenticate_parts(&parts, "/prod/pets", Some("a=1"), b"x", NOW)
            .is_err()
    );
}
