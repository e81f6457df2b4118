use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use base64::Engine;
use proptest::prelude::*;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::json;

use super::*;

const KEY_A: &[u8] = include_bytes!("../testdata/rsa-a.der");
const KEY_B: &[u8] = include_bytes!("../testdata/rsa-b.der");
const REGION: &str = "eu-west-1";
const POOL: &str = "eu-west-1_Abc123";
const NOW: u64 = 1_700_000_000;

fn arn(pool: &str) -> String {
    format!("arn:aws:cognito-idp:{REGION}:123456789012:userpool/{pool}")
}

fn issuer(pool: &str) -> String {
    format!("https://cognito-idp.{REGION}.amazonaws.com/{pool}")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn keypair(der: &[u8]) -> RsaKeyPair {
    RsaKeyPair::from_der(der).expect("test key")
}

fn jwk(der: &[u8], kid: &str) -> Value {
    let components: RsaPublicKeyComponents<Vec<u8>> = keypair(der).public().into();
    json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
           "n": b64(&components.n), "e": b64(&components.e)})
}

fn jwks(keys: &[(&[u8], &str)]) -> Vec<u8> {
    let keys: Vec<Value> = keys.iter().map(|(der, kid)| jwk(der, kid)).collect();
    serde_json::to_vec(&json!({ "keys": keys })).expect("json")
}

/// A compact JWS over raw header and payload texts, signed RS256 with `der`.
fn sign_raw(der: &[u8], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let key = keypair(der);
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .expect("sign");
    format!("{input}.{}", b64(&signature))
}

fn sign(der: &[u8], kid: &str, claims: &Value) -> String {
    sign_raw(
        der,
        &json!({"kid": kid, "alg": "RS256"}).to_string(),
        &claims.to_string(),
    )
}

fn id_claims() -> Value {
    json!({
        "sub": "2f1c-user", "iss": issuer(POOL), "aud": "app-client-1", "token_use": "id",
        "auth_time": NOW - 60, "iat": NOW - 60, "exp": NOW + 3600,
        "cognito:username": "alice", "email_verified": true, "cognito:groups": ["admin", "ops"],
    })
}

fn access_claims(scope: &str) -> Value {
    json!({
        "sub": "2f1c-user", "iss": issuer(POOL), "client_id": "app-client-1",
        "token_use": "access", "scope": scope, "iat": NOW - 60, "exp": NOW + 3600,
        "username": "alice",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().expect("object").remove(name);
    claims
}

fn keyset(keys: &[(&[u8], &str)]) -> KeySet {
    parse_jwks(&jwks(keys)).expect("jwks")
}

/// parse → key → signature → claims, as `verify` does with a cached key set.
fn check(token: &str, keys: &KeySet, scopes: &[&str], now: u64) -> Result<(), CognitoRejection> {
    let parsed = parse(token)?;
    let key = keys.get(&parsed.kid).ok_or(CognitoRejection::UnknownKey)?;
    if !verify_signature(key, parsed.signing_input.as_bytes(), &parsed.signature) {
        return Err(CognitoRejection::Signature);
    }
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    check_claims(&parsed.claims, &scopes, now)
}

#[test]
fn a_signed_id_token_verifies_and_its_claims_are_strings_as_aws_sends_them() {
    let keys = keyset(&[(KEY_A, "k1")]);
    let token = sign(KEY_A, "k1", &id_claims());
    assert_eq!(check(&token, &keys, &[], NOW), Ok(()));
    assert_eq!(check(&format!("Bearer {token}"), &keys, &[], NOW), Ok(()));
    let parsed = parse(&token).unwrap();
    let claims = event_claims(&parsed.claims);
    assert_eq!(claims["sub"], "2f1c-user");
    assert_eq!(claims["email_verified"], "true");
    assert_eq!(claims["auth_time"], (NOW - 60).to_string());
    assert_eq!(claims["cognito:groups"], "[admin ops]");
    assert_eq!(claims["exp"], "Tue Nov 14 23:13:20 UTC 2023");
    assert!(claims.values().all(Value::is_string));
}

#[test]
fn dates_are_written_as_api_gateway_writes_them() {
    // From an event of a real API: auth_time 1616935242, iat "Sun Mar 28 12:40:42 UTC 2021".
    assert_eq!(aws_date(1_616_935_242), "Sun Mar 28 12:40:42 UTC 2021");
    assert_eq!(aws_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    assert_eq!(aws_date(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
    assert!(!aws_date(u64::MAX).is_empty());
}

#[test]
fn scopes_select_access_tokens() {
    let keys = keyset(&[(KEY_A, "k1")]);
    let id = sign(KEY_A, "k1", &id_claims());
    let access = sign(KEY_A, "k1", &access_claims("openid pets/read"));
    // No scopes on the method: an ID token only.
    assert_eq!(
        check(&access, &keys, &[], NOW),
        Err(CognitoRejection::TokenUse)
    );
    // Scopes: an access token holding one of them.
    assert_eq!(check(&access, &keys, &["pets/read"], NOW), Ok(()));
    assert_eq!(
        check(&access, &keys, &["pets/write", "openid"], NOW),
        Ok(())
    );
    assert_eq!(
        check(&access, &keys, &["pets/write"], NOW),
        Err(CognitoRejection::Scope)
    );
    assert_eq!(
        check(&access, &keys, &["pets"], NOW),
        Err(CognitoRejection::Scope)
    );
    assert_eq!(
        check(&id, &keys, &["pets/read"], NOW),
        Err(CognitoRejection::TokenUse)
    );
    let no_scope = sign(KEY_A, "k1", &without(access_claims(""), "scope"));
    assert_eq!(
        check(&no_scope, &keys, &["pets/read"], NOW),
        Err(CognitoRejection::Scope)
    );
}

#[test]
fn time_claims_are_checked_with_a_small_leeway() {
    let keys = keyset(&[(KEY_A, "k1")]);
    let token = sign(KEY_A, "k1", &id_claims());
    let exp = NOW + 3600;
    assert_eq!(check(&token, &keys, &[], exp + LEEWAY_S - 1), Ok(()));
    assert_eq!(
        check(&token, &keys, &[], exp + LEEWAY_S),
        Err(CognitoRejection::Expired)
    );
    let future = sign(KEY_A, "k1", &with(id_claims(), "iat", json!(NOW + 120)));
    assert_eq!(
        check(&future, &keys, &[], NOW),
        Err(CognitoRejection::NotYetValid)
    );
    let nbf = sign(
        KEY_A,
        "k1",
        &with(id_claims(), "nbf", json!(NOW + LEEWAY_S)),
    );
    assert_eq!(check(&nbf, &keys, &[], NOW), Ok(()));
    let nbf = sign(KEY_A, "k1", &with(id_claims(), "nbf", json!(NOW + 11)));
    assert_eq!(
        check(&nbf, &keys, &[], NOW),
        Err(CognitoRejection::NotYetValid)
    );
    for claims in [
        without(id_claims(), "exp"),
        with(id_claims(), "exp", json!("tomorrow")),
        with(id_claims(), "exp", json!(-5)),
        with(id_claims(), "iat", json!(null)),
        without(id_claims(), "sub"),
        with(id_claims(), "sub", json!(7)),
        without(id_claims(), "aud"),
        without(access_claims("a"), "client_id"),
    ] {
        let scopes: &[&str] = if claims["token_use"] == "access" {
            &["a"]
        } else {
            &[]
        };
        let token = sign(KEY_A, "k1", &claims);
        assert_eq!(
            check(&token, &keys, scopes, NOW),
            Err(CognitoRejection::Claims),
            "{claims}"
        );
    }
    let fractional = sign(
        KEY_A,
        "k1",
        &with(id_claims(), "exp", json!(NOW as f64 + 0.5)),
    );
    assert_eq!(
        check(&fractional, &keys, &[], NOW + LEEWAY_S),
        Err(CognitoRejection::Expired)
    );
    for token_use in [json!("refresh"), json!(null), json!(["id"])] {
        let token = sign(KEY_A, "k1", &with(id_claims(), "token_use", token_use));
        assert_eq!(
            check(&token, &keys, &[], NOW),
            Err(CognitoRejection::TokenUse)
        );
    }
}

#[test]
fn forged_and_damaged_tokens_are_refused() {
    let keys = keyset(&[(KEY_A, "k1")]);
    let token = sign(KEY_A, "k1", &id_claims());
    // Signed by another key under the trusted kid.
    let forged = sign(KEY_B, "k1", &id_claims());
    assert_eq!(
        check(&forged, &keys, &[], NOW),
        Err(CognitoRejection::Signature)
    );
    // A kid the pool does not have.
    let other = sign(KEY_A, "k9", &id_claims());
    assert_eq!(
        check(&other, &keys, &[], NOW),
        Err(CognitoRejection::UnknownKey)
    );
    // The payload changed after signing.
    let (head, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let changed = with(id_claims(), "cognito:username", json!("mallory"));
    let tampered = format!("{head}.{}.{signature}", b64(changed.to_string().as_bytes()));
    assert_eq!(
        check(&tampered, &keys, &[], NOW),
        Err(CognitoRejection::Signature)
    );
    // Truncated signature, flipped signature bit, no signature.
    let truncated = &token[..token.len() - 10];
    assert!(check(truncated, &keys, &[], NOW).is_err());
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    let flipped = format!("{head}.{}.{}", rest.split_once('.').unwrap().0, b64(&bytes));
    assert_eq!(
        check(&flipped, &keys, &[], NOW),
        Err(CognitoRejection::Signature)
    );
    let unsigned = format!("{head}.{}.", rest.split_once('.').unwrap().0);
    assert_eq!(
        check(&unsigned, &keys, &[], NOW),
        Err(CognitoRejection::Signature)
    );
}

#[test]
fn only_rs256_headers_with_a_kid_are_accepted() {
    let payload = id_claims().to_string();
    for (header, expected) in [
        (
            json!({"alg": "none", "kid": "k1"}),
            CognitoRejection::Algorithm,
        ),
        (
            json!({"alg": "HS256", "kid": "k1"}),
            CognitoRejection::Algorithm,
        ),
        (
            json!({"alg": "RS512", "kid": "k1"}),
            CognitoRejection::Algorithm,
        ),
        (
            json!({"alg": "rs256", "kid": "k1"}),
            CognitoRejection::Algorithm,
        ),
        (json!({"kid": "k1"}), CognitoRejection::Algorithm),
        (json!({"alg": "RS256"}), CognitoRejection::Malformed),
        (
            json!({"alg": "RS256", "kid": ""}),
            CognitoRejection::Malformed,
        ),
        (
            json!({"alg": "RS256", "kid": 5}),
            CognitoRejection::Malformed,
        ),
        (
            json!({"alg": "RS256", "kid": "k".repeat(300)}),
            CognitoRejection::Malformed,
        ),
        (
            json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]}),
            CognitoRejection::Malformed,
        ),
    ] {
        let token = sign_raw(KEY_A, &header.to_string(), &payload);
        assert_eq!(parse(&token).err(), Some(expected), "{header}");
    }
    // alg none with an empty signature, as an attacker would send it.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"k1"}"#),
        b64(payload.as_bytes())
    );
    assert_eq!(parse(&none).err(), Some(CognitoRejection::Algorithm));
}

#[test]
fn hostile_shapes_are_refused_without_panicking() {
    let good = sign(KEY_A, "k1", &id_claims());
    let header = b64(br#"{"alg":"RS256","kid":"k1"}"#);
    let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_payload = format!(r#"{{"a":{}1{}}}"#, "[".repeat(17), "]".repeat(17));
    let cases: Vec<(String, CognitoRejection)> = vec![
        (String::new(), CognitoRejection::Missing),
        ("   ".to_string(), CognitoRejection::Missing),
        ("Bearer ".to_string(), CognitoRejection::Missing),
        ("a".repeat(MAX_TOKEN_BYTES + 1), CognitoRejection::Malformed),
        (format!("{good}.extra"), CognitoRejection::Malformed),
        ("onlyone".to_string(), CognitoRejection::Malformed),
        ("a.b".to_string(), CognitoRejection::Malformed),
        ("...".to_string(), CognitoRejection::Malformed),
        (format!("{header}.!!!.sig"), CognitoRejection::Malformed),
        (format!("%%%.{header}.sig"), CognitoRejection::Malformed),
        (
            format!("{header}.{}.c2ln", b64(b"[1,2]")),
            CognitoRejection::Malformed,
        ),
        (
            format!("{header}.{}.c2ln", b64(b"not json")),
            CognitoRejection::Malformed,
        ),
        (
            format!("{header}.{}.c2ln", b64(bomb.as_bytes())),
            CognitoRejection::Malformed,
        ),
        (
            format!("{header}.{}.c2ln", b64(deep_payload.as_bytes())),
            CognitoRejection::Malformed,
        ),
        (
            format!("{header}.{}.c2ln==", b64(b"{}")),
            CognitoRejection::Malformed,
        ),
        (
            format!("{}.{}.c2ln", b64(bomb.as_bytes()), b64(b"{}")),
            CognitoRejection::Malformed,
        ),
    ];
    for (token, expected) in cases {
        let shown: String = token.chars().take(60).collect();
        assert_eq!(parse(&token).err(), Some(expected), "{shown}");
    }
    // Nesting inside strings does not count.
    assert_eq!(json_depth(br#"{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[["}"#), 1);
    assert_eq!(json_depth(br#"{"a":"\"[[[[[[[[[[[[[[[[[[[[[[[[["}"#), 1);
}

#[test]
fn provider_arns_name_pools_and_their_issuers() {
    let pool = parse_provider_arn(&arn(POOL)).unwrap();
    assert_eq!(pool.issuer, issuer(POOL));
    // The request path's allocation-free match agrees with the parser.
    assert_eq!(
        arn_issues(&arn(POOL), &issuer(POOL)),
        Some(arn(POOL).as_str())
    );
    for other in [
        issuer("eu-west-1_Abc12"),
        issuer("eu-west-1_Abc1234"),
        format!("http://cognito-idp.{REGION}.amazonaws.com/{POOL}"),
        format!("https://cognito-idp.eu-west-2.amazonaws.com/{POOL}"),
        format!("https://cognito-idp.{REGION}.amazonaws.com.cn/{POOL}"),
        format!("{}/", issuer(POOL)),
        String::new(),
    ] {
        assert_eq!(arn_issues(&arn(POOL), &other), None, "{other}");
    }
    assert_eq!(pool.region, REGION);
    assert_eq!(pool.id, POOL);
    let china =
        parse_provider_arn("arn:aws-cn:cognito-idp:cn-north-1:1:userpool/cn-north-1_x").unwrap();
    assert_eq!(
        china.issuer,
        "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_x"
    );
    for bad in [
        "",
        "arn:aws:cognito-idp:eu-west-1:1:userpool/",
        "arn:aws:cognito-idp:eu-west-1:1:pool/eu-west-1_x",
        "arn:aws:cognito-identity:eu-west-1:1:userpool/eu-west-1_x",
        "arn:aws:cognito-idp:eu-west-1:1:userpool/a/b",
        "arn:aws:cognito-idp:eu/west:1:userpool/x",
        "arn:aws:cognito-idp:eu-west-1:1:userpool/x?y",
        "not an arn",
    ] {
        assert_eq!(parse_provider_arn(bad), None, "{bad}");
    }
}

#[test]
fn jwks_documents_are_read_strictly_and_bounded() {
    let set = keyset(&[(KEY_A, "k1"), (KEY_B, "k2")]);
    assert_eq!(set.keys.len(), 2);
    assert!(set.get("k2").is_some());
    // Keys that cannot sign RS256 are skipped; the rest are kept.
    let mixed = json!({"keys": [
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        with(jwk(KEY_A, "enc"), "use", json!("enc")),
        with(jwk(KEY_A, "ps"), "alg", json!("PS256")),
        with(jwk(KEY_A, "tiny"), "n", json!(b64(&[1; 64]))),
        with(jwk(KEY_A, "bad"), "n", json!("***")),
        jwk(KEY_B, "k2"),
        jwk(KEY_A, "k2"),
    ]});
    let set = parse_jwks(mixed.to_string().as_bytes()).unwrap();
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.keys[0].kid, "k2");
    let too_many: Vec<Value> = (0..33).map(|i| jwk(KEY_A, &format!("k{i}"))).collect();
    for body in [
        json!({"keys": too_many}).to_string().into_bytes(),
        json!({"keys": []}).to_string().into_bytes(),
        json!({"keys": {}}).to_string().into_bytes(),
        json!({}).to_string().into_bytes(),
        b"<html>".to_vec(),
        vec![b' '; MAX_JWKS_BYTES + 1],
        format!(r#"{{"keys":{}{}}}"#, "[".repeat(40), "]".repeat(40)).into_bytes(),
    ] {
        assert!(parse_jwks(&body).is_err());
    }
}

#[test]
fn the_refresh_gate_bounds_fetches_per_pool() {
    let mut gate = RefreshGate::default();
    assert_eq!(gate.try_start(NOW, false), GateAnswer::Start);
    assert_eq!(gate.try_start(NOW, false), GateAnswer::InFlight);
    gate.finish();
    // Without keys: a retry every RETRY_WITHOUT_KEYS_S.
    assert_eq!(gate.try_start(NOW + 1, false), GateAnswer::TooSoon);
    assert_eq!(
        gate.try_start(NOW + RETRY_WITHOUT_KEYS_S, false),
        GateAnswer::Start
    );
    gate.finish();
    // With keys: once per REFRESH_INTERVAL_S, however many unknown kids arrive.
    let start = NOW + RETRY_WITHOUT_KEYS_S;
    for offset in 0..REFRESH_INTERVAL_S {
        assert_eq!(gate.try_start(start + offset, true), GateAnswer::TooSoon);
    }
    assert_eq!(
        gate.try_start(start + REFRESH_INTERVAL_S, true),
        GateAnswer::Start
    );
    gate.finish();
    // A clock that jumps back far enough does not stall refreshes.
    assert_eq!(gate.try_start(NOW - 3600, true), GateAnswer::Start);
}

#[test]
fn rejections_carry_aws_answers() {
    let unauthorized = CognitoRejection::Signature;
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unauthorized.error_type(), "UnauthorizedException");
    assert_eq!(unauthorized.message(), Some("Unauthorized"));
    assert_eq!(unauthorized.gateway_response_type(), "UNAUTHORIZED");
    assert_eq!(
        CognitoRejection::Expired.message(),
        Some("The incoming token has expired")
    );
    assert_eq!(CognitoRejection::Expired.status(), StatusCode::UNAUTHORIZED);
    let config = CognitoRejection::KeysUnavailable;
    assert_eq!(config.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(config.error_type(), "AuthorizerConfigurationException");
    assert_eq!(config.message(), None);
    // The pipeline's failures give the same answers.
    for rejection in [
        CognitoRejection::Missing,
        CognitoRejection::Signature,
        CognitoRejection::Expired,
        CognitoRejection::KeysUnavailable,
    ] {
        let failure = rejection.failure();
        let view = failure.error.view();
        assert_eq!(view.status, rejection.status());
        assert_eq!(view.error_type, rejection.error_type());
        let message = failure.message.as_deref().or(view.message);
        assert_eq!(message, rejection.message(), "{rejection:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_verify_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        let keys = keyset(&[(KEY_A, "k1")]);
        prop_assert!(check(&text, &keys, &[], NOW).is_err());
    }

    #[test]
    fn arbitrary_three_part_tokens_never_verify_or_panic(
        header in proptest::collection::vec(any::<u8>(), 0..300),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        signature in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let keys = keyset(&[(KEY_A, "k1")]);
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        prop_assert!(check(&token, &keys, &[], NOW).is_err());
        let _ = parse_jwks(&payload);
    }

    #[test]
    fn mutated_valid_tokens_never_verify(position in 0usize..4096, byte in any::<u8>()) {
        let keys = keyset(&[(KEY_A, "k1")]);
        let token = sign(KEY_A, "k1", &id_claims());
        let mut bytes = token.clone().into_bytes();
        let at = position % bytes.len();
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        // Base64url has slack bits in its last character, so a mutation may decode to the
        // same bytes; only a token whose decoded parts are unchanged may verify.
        if check(&mutated, &keys, &[], NOW).is_ok() {
            let original = parse(&token).unwrap();
            let changed = parse(&mutated).unwrap();
            prop_assert_eq!(original.claims, changed.claims);
            prop_assert_eq!(original.signature, changed.signature);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The verifier against a local JWKS server.

/// What the JWKS server answers: 0 = the JWKS, 1 = 500, 2 = never (hangs).
struct JwksServer {
    addr: SocketAddr,
    body: Arc<Mutex<Vec<u8>>>,
    mode: Arc<AtomicU32>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn jwks_server(body: Vec<u8>) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Arc::new(Mutex::new(body));
    let mode = Arc::new(AtomicU32::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (b, m, r) = (body.clone(), mode.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (b, m, r) = (b.clone(), m.clone(), r.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<_>| {
                    let (b, m, r) = (b.clone(), m.clone(), r.clone());
                    async move {
                        let _: hyper::body::Incoming = request.into_body();
                        r.fetch_add(1, Ordering::SeqCst);
                        match m.load(Ordering::SeqCst) {
                            0 => {}
                            1 => {
                                return Ok::<_, std::convert::Infallible>(
                                    http::Response::builder()
                                        .status(500)
                                        .body(crate::body::empty())
                                        .unwrap(),
                                );
                            }
                            _ => tokio::time::sleep(Duration::from_secs(30)).await,
                        }
                        let bytes = b.lock().unwrap().clone();
                        Ok(http::Response::new(crate::body::full(bytes)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    JwksServer {
        addr,
        body,
        mode,
        requests,
        task,
    }
}

fn verifier(server: &JwksServer) -> Arc<CognitoVerifier> {
    CognitoVerifier::new(
        Endpoint::Url(format!("http://{}", server.addr)),
        BackendClient::new(None).unwrap(),
    )
}

async fn wait_for_requests(server: &JwksServer, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.requests.load(Ordering::SeqCst) < count {
        assert!(tokio::time::Instant::now() < deadline, "no JWKS request");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_verifier_fetches_caches_and_refreshes_keys_at_a_bounded_rate() {
    let server = jwks_server(jwks(&[(KEY_A, "k1")])).await;
    let verifier = verifier(&server);
    let arns = vec![arn(POOL)];
    let token = sign(KEY_A, "k1", &id_claims());

    // The first request waits for the pool's first fetch.
    let identity = verifier.verify(&token, &arns, &[], NOW).await.unwrap();
    assert_eq!(identity.principal_id, "2f1c-user");
    assert_eq!(identity.claims["cognito:username"], "alice");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // Cached keys: no network, even with the server hanging.
    server.mode.store(2, Ordering::SeqCst);
    for _ in 0..20 {
        let answer = tokio::time::timeout(
            Duration::from_millis(500),
            verifier.verify(&token, &arns, &[], NOW),
        )
        .await
        .expect("a cached key never waits");
        assert!(answer.is_ok());
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // A token verified (and cached) for one authorizer is still refused by another whose
    // pools do not issue it.
    assert_eq!(
        verifier
            .verify(&token, &[arn("eu-west-1_Other")], &[], NOW)
            .await,
        Err(CognitoRejection::Issuer)
    );

    // Wrong issuer, tampered, expired, scopes: refused without fetching.
    let other_pool = sign(
        KEY_A,
        "k1",
        &with(id_claims(), "iss", json!(issuer("eu-west-1_Other"))),
    );
    assert_eq!(
        verifier.verify(&other_pool, &arns, &[], NOW).await,
        Err(CognitoRejection::Issuer)
    );
    assert_eq!(
        verifier.verify(&token, &arns, &[], NOW + 7200).await,
        Err(CognitoRejection::Expired)
    );
    assert_eq!(
        verifier
            .verify(&token, &arns, &["pets/read".to_string()], NOW)
            .await,
        Err(CognitoRejection::TokenUse)
    );

    // Rotation: a new kid, once the interval since the first fetch has passed, triggers one
    // refresh; the server now serves both keys.
    server.mode.store(0, Ordering::SeqCst);
    *server.body.lock().unwrap() = jwks(&[(KEY_A, "k1"), (KEY_B, "k2")]);
    let rotated = sign(KEY_B, "k2", &id_claims());
    assert_eq!(
        verifier.verify(&rotated, &arns, &[], NOW + 1).await,
        Err(CognitoRejection::UnknownKey),
        "too soon after the first fetch"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    let later = NOW + REFRESH_INTERVAL_S;
    assert!(verifier.verify(&rotated, &arns, &[], later).await.is_ok());
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);

    // Unknown kids within the interval are refused at once, without a fetch.
    let unknown = sign(KEY_B, "k3", &id_claims());
    for _ in 0..50 {
        assert_eq!(
            verifier.verify(&unknown, &arns, &[], later + 1).await,
            Err(CognitoRejection::UnknownKey)
        );
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);

    // After the interval one refresh runs; it fails (500) and the old keys stay.
    server.mode.store(1, Ordering::SeqCst);
    let latest = later + REFRESH_INTERVAL_S;
    assert_eq!(
        verifier.verify(&unknown, &arns, &[], latest).await,
        Err(CognitoRejection::UnknownKey)
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
    assert!(verifier.verify(&rotated, &arns, &[], latest).await.is_ok());
    assert!(verifier.verify(&token, &arns, &[], latest).await.is_ok());
}

#[tokio::test]
async fn prefetch_loads_keys_before_the_first_request_and_no_keys_is_a_configuration_error() {
    let server = jwks_server(jwks(&[(KEY_A, "k1")])).await;
    let verifier = verifier(&server);
    let arns = vec![arn(POOL), "garbage".to_string(), arn("eu-west-1_Second")];
    verifier.prefetch(&arns);
    wait_for_requests(&server, 2).await;
    verifier.prefetch(&arns);
    let token = sign(KEY_A, "k1", &id_claims());
    // Prefetched: with the server hanging from now on, the request still verifies.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let loaded = verifier.pool(&parse_provider_arn(&arn(POOL)).unwrap());
        if loaded.keys.load().is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.mode.store(2, Ordering::SeqCst);
    let answer = tokio::time::timeout(
        Duration::from_millis(500),
        verifier.verify(&token, &arns, &[], NOW),
    )
    .await
    .expect("prefetched keys");
    assert!(answer.is_ok());
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);

    // A pool whose JWKS cannot be fetched: 500 AuthorizerConfigurationException.
    server.mode.store(1, Ordering::SeqCst);
    let third = sign(
        KEY_A,
        "k1",
        &with(id_claims(), "iss", json!(issuer("eu-west-1_Third"))),
    );
    let arns = vec![arn("eu-west-1_Third")];
    assert_eq!(
        verifier.verify(&third, &arns, &[], NOW).await,
        Err(CognitoRejection::KeysUnavailable)
    );
    // Retries are bounded too: within RETRY_WITHOUT_KEYS_S no new fetch.
    let before = server.requests.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(
            verifier.verify(&third, &arns, &[], NOW + 1).await,
            Err(CognitoRejection::KeysUnavailable)
        );
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), before);
    // Nothing listening at all: the same answer.
    let verifier = CognitoVerifier::new(
        Endpoint::Url("http://127.0.0.1:1".to_string()),
        BackendClient::new(None).unwrap(),
    );
    assert_eq!(
        verifier.verify(&third, &arns, &[], NOW).await,
        Err(CognitoRejection::KeysUnavailable)
    );
}

#[test]
fn deployed_cognito_authorizers_name_the_pools_to_prefetch() {
    let doc = r#"
openapi: 3.0.1
info: { title: pools, version: "1" }
components:
  securitySchemes:
    pool:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: cognito_user_pools
      x-amazon-apigateway-authorizer:
        type: cognito_user_pools
        providerARNs:
          - arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123
          - arn:aws:cognito-idp:eu-west-1:123456789012:userpool/${stageVariables.pool}
          - arn:aws:cognito-idp:eu-west-1:123456789012:userpool/${stageVariables.missing}
paths:
  /me:
    get:
      security: [{ pool: [] }]
      x-amazon-apigateway-integration: { type: mock, requestTemplates: { application/json: '{"statusCode": 200}' } }
"#;
    let variables = vec![("pool".to_string(), "eu-west-1_Staged".to_string())];
    let (state, _) = crate::dev::build_state("inline", doc, "prod", &variables, 0).unwrap();
    let arns = deployed_provider_arns(&state);
    assert_eq!(
        arns,
        [
            "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/${stageVariables.missing}",
            "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123",
            "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Staged",
        ]
    );
    // The unresolved one names no pool, so prefetching skips it.
    assert!(parse_provider_arn(&arns[0]).is_none());
    assert_eq!(
        with_stage_variables(
            "a${stageVariables.x}b${stageVariables.",
            &Default::default()
        ),
        "a${stageVariables.x}b${stageVariables."
    );
}
