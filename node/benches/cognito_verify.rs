//! The cost of a COGNITO_USER_POOLS check: a token seen for the first time (parse, RS256
//! verification with ring, claims) and a token seen again (the verifier's cache of verified
//! tokens: a hash and the claim checks). Keys are installed, so nothing touches the network.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portico::authorize::cognito::{
    CognitoVerifier, KeySet, check_claims, event_claims, parse, parse_jwks, verify_signature,
};
use portico::awsconf::Endpoint;
use portico::integrate::client::BackendClient;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::json;

const KEY: &[u8] = include_bytes!("../src/authorize/testdata/rsa-a.der");
const ARN: &str = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Bench";
const NOW: u64 = 1_700_000_000;

fn main() {
    divan::main();
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A Cognito-sized ID token (about 1 KB) and the key set that verifies it.
fn fixture() -> (String, KeySet) {
    let key = RsaKeyPair::from_der(KEY).expect("test key");
    let claims = json!({
        "sub": "5a1c9a0e-8f4b-4e7e-9d51-2f0b6c7d8e9f",
        "cognito:groups": ["admin"],
        "email_verified": true,
        "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Bench",
        "cognito:username": "alice",
        "origin_jti": "0f6a7c2e-1b3d-4c5e-8f9a-0b1c2d3e4f5a",
        "aud": "4p8r9e9b24t2u6u7i08gqcp1u0",
        "event_id": "87b4fd4c-c372-45c7-af6b-75d23f309d1a",
        "token_use": "id",
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "iat": NOW - 60,
        "jti": "e3c1b2a4-5d6f-4a8b-9c0d-1e2f3a4b5c6d",
        "email": "alice@example.com",
    });
    let input = format!(
        "{}.{}",
        b64(br#"{"kid":"k1","alg":"RS256"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .expect("sign");
    let components: RsaPublicKeyComponents<Vec<u8>> = key.public().into();
    let jwks = json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
                                "n": b64(&components.n), "e": b64(&components.e)}]});
    let keys = parse_jwks(jwks.to_string().as_bytes()).expect("jwks");
    (format!("{input}.{}", b64(&signature)), keys)
}

#[divan::bench]
fn first_sight_parse_verify_claims(bencher: divan::Bencher) {
    let (token, keys) = fixture();
    bencher.bench_local(|| {
        let parsed = parse(divan::black_box(&token)).expect("parses");
        let key = keys.get(&parsed.kid).expect("key");
        assert!(verify_signature(
            key,
            parsed.signing_input.as_bytes(),
            &parsed.signature
        ));
        check_claims(&parsed.claims, &[], NOW).expect("valid");
        event_claims(&parsed.claims)
    });
}

#[divan::bench]
fn seen_again_through_the_verifier(bencher: divan::Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (token, keys) = fixture();
    let arns = vec![ARN.to_string()];
    let verifier: Arc<CognitoVerifier> = runtime.block_on(async {
        let verifier = CognitoVerifier::new(
            Endpoint::Url("http://127.0.0.1:1".to_string()),
            BackendClient::new(None).expect("client"),
        );
        assert!(verifier.install_keys(ARN, keys));
        verifier
            .verify(&token, &arns, &[], NOW)
            .await
            .expect("verifies");
        verifier
    });
    bencher.bench_local(|| {
        runtime
            .block_on(verifier.verify(divan::black_box(&token), &arns, &[], NOW))
            .expect("verifies")
    });
}
