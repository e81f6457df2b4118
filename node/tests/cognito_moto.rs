//! COGNITO_USER_POOLS verification against a real issuer: moto in server mode creates user
//! pools, app clients and users, signs the users in and serves the pools' JWKS; the verifier
//! finds moto through `AWS_ENDPOINT_URL_COGNITO_IDP` (read through a closure, not the process
//! environment) and must accept moto's tokens and refuse altered, expired, foreign and
//! wrongly-scoped ones.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portico::authorize::cognito::{CognitoRejection, CognitoVerifier, LEEWAY_S};
use portico::awsconf::{self, AwsConfig, Source};
use portico::integrate::client::BackendClient;
use serde_json::Value;

#[path = "support/moto.rs"]
mod moto;
#[path = "support/python.rs"]
mod python;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn payload(token: &str) -> serde_json::Map<String, Value> {
    let part = token.split('.').nth(1).expect("three parts");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON object")
}

/// The token with one claim changed and the original signature kept.
fn tampered(token: &str, claim: &str, value: Value) -> String {
    let mut parts = token.split('.');
    let (header, _, signature) = (
        parts.next().expect("header"),
        parts.next().expect("payload"),
        parts.next().expect("signature"),
    );
    let mut claims = payload(token);
    claims.insert(claim.to_string(), value);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    format!("{header}.{body}.{signature}")
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| value.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_issued_tokens_are_verified_as_api_gateway_does() {
    let (moto, tokens) = tokio::task::spawn_blocking(|| {
        let moto = moto::Moto::start();
        let tokens = moto.tokens();
        (moto, tokens)
    })
    .await
    .expect("moto and its tokens");
    let moto_url = moto.url.clone();
    let main = &tokens["main"];
    let other = &tokens["other"];
    let main_arn = main["pool_arn"].as_str().expect("arn").to_string();
    let other_arn = other["pool_arn"].as_str().expect("arn").to_string();
    let id_token = main["id_token"].as_str().expect("id token");
    let access_token = main["access_token"].as_str().expect("access token");

    let (endpoint, source) =
        awsconf::resolve(awsconf::COGNITO_IDP, &AwsConfig::default(), |name| {
            (name == "AWS_ENDPOINT_URL_COGNITO_IDP").then(|| moto_url.clone())
        })
        .expect("endpoint");
    assert_eq!(
        source,
        Source::Env("AWS_ENDPOINT_URL_COGNITO_IDP".to_string())
    );
    let verifier = CognitoVerifier::new(endpoint, BackendClient::new(None).expect("client"));
    let arns = vec![main_arn.clone()];
    verifier.prefetch(&arns);

    // An ID token, for a method without scopes.
    let now = now();
    let identity = tokio::time::timeout(
        Duration::from_secs(10),
        verifier.verify(id_token, &arns, &[], now),
    )
    .await
    .expect("bounded")
    .expect("moto's ID token verifies");
    let claims = payload(id_token);
    assert_eq!(identity.principal_id, claims["sub"].as_str().expect("sub"));
    assert_eq!(identity.claims["cognito:username"], "alice");
    assert_eq!(identity.claims["token_use"], "id");
    assert_eq!(identity.claims["aud"], main["client_id"]);
    assert!(identity.claims.values().all(Value::is_string));
    assert!(
        identity.claims["exp"]
            .as_str()
            .is_some_and(|exp| exp.contains(" UTC ")),
        "{:?}",
        identity.claims["exp"]
    );
    // `Bearer ` in front is accepted.
    assert!(
        verifier
            .verify(&format!("Bearer {id_token}"), &arns, &[], now)
            .await
            .is_ok()
    );

    // The access token: only for methods with scopes, and only with a scope it holds.
    let admin_scope = strings(&["aws.cognito.signin.user.admin"]);
    let access = verifier
        .verify(access_token, &arns, &admin_scope, now)
        .await
        .expect("moto's access token verifies with its scope");
    assert_eq!(access.claims["username"], "alice");
    assert_eq!(
        verifier
            .verify(access_token, &arns, &strings(&["pets/read"]), now)
            .await,
        Err(CognitoRejection::Scope)
    );
    assert_eq!(
        verifier.verify(access_token, &arns, &[], now).await,
        Err(CognitoRejection::TokenUse)
    );
    assert_eq!(
        verifier.verify(id_token, &arns, &admin_scope, now).await,
        Err(CognitoRejection::TokenUse)
    );

    // Altered claims under moto's signature.
    for (claim, value) in [
        ("cognito:username", Value::from("mallory")),
        ("exp", Value::from(now + 86_400 * 365)),
        ("token_use", Value::from("id")),
    ] {
        let forged = tampered(id_token, claim, value);
        assert_eq!(
            verifier.verify(&forged, &arns, &[], now).await,
            Err(CognitoRejection::Signature),
            "{claim}"
        );
    }

    // Expired: the same token once its exp has passed.
    let exp = claims["exp"].as_u64().expect("exp");
    let expired = verifier
        .verify(id_token, &arns, &[], exp + LEEWAY_S)
        .await
        .expect_err("expired");
    assert_eq!(expired, CognitoRejection::Expired);
    assert_eq!(expired.status(), 401);
    assert_eq!(expired.message(), Some("The incoming token has expired"));

    // A token moto's key signed an hour ago, expired in real time.
    let expired_token = main["expired_id_token"].as_str().expect("expired token");
    assert_eq!(
        verifier.verify(expired_token, &arns, &[], now).await,
        Err(CognitoRejection::Expired)
    );

    // Another pool's token: refused by an authorizer of the first pool, accepted by one
    // naming both. (moto signs every pool with one key, so only `iss` tells them apart.)
    let other_token = other["id_token"].as_str().expect("id token");
    let refused = verifier
        .verify(other_token, &arns, &[], now)
        .await
        .expect_err("another pool");
    assert_eq!(refused, CognitoRejection::Issuer);
    assert_eq!(
        (refused.status(), refused.error_type(), refused.message()),
        (
            http::StatusCode::UNAUTHORIZED,
            "UnauthorizedException",
            Some("Unauthorized")
        )
    );
    let both = vec![main_arn, other_arn];
    let identity = verifier
        .verify(other_token, &both, &[], now)
        .await
        .expect("the second pool's token, with both pools");
    assert_eq!(identity.claims["cognito:username"], "bob");
    drop(moto);
}
