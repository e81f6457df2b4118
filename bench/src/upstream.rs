//! The bench upstream: a hyper HTTP/1.1 server on one thread with two fixed JSON bodies.
//!
//! `/large` (any path containing `large`) answers 16 KiB, everything else the ~100-byte body,
//! so the same server backs every proxy and every route of the 10,000-route API. It also
//! answers the Lambda Invoke API for the authorizers scenario's function (an allow-all policy)
//! and serves the JWKS of its Cognito user pool. `/slow` answers the small body after a delay
//! (the floods' stalled backend).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// The ~100-byte body (also the MOCK scenario's body, so the sizes compare).
pub const SMALL_BODY: &str = r#"{"id":1,"name":"Rex","kind":"dog","owner":"Ada Lovelace","tags":["good","boy"],"price":249.99}"#;

/// What the authorizers scenario's Lambda authorizer answers: allow every method.
pub const AUTHORIZER_ANSWER: &str = r#"{"principalId":"bench","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]},"context":{"tier":"bench"}}"#;

/// The authorizers scenario's Cognito user pool, whose JWKS this upstream serves at
/// `/{pool}/.well-known/jwks.json` (the runner points dev's cognito-idp endpoint here).
pub const BENCH_POOL: &str = "us-east-1_PorticoBench";
/// A test-only RSA key (also the node's Cognito unit tests' key): never a secret.
const BENCH_RSA_KEY: &[u8] = include_bytes!("../../node/src/authorize/testdata/rsa-a.der");

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn bench_key() -> anyhow::Result<ring::signature::RsaKeyPair> {
    ring::signature::RsaKeyPair::from_der(BENCH_RSA_KEY)
        .map_err(|error| anyhow::anyhow!("the bench RSA key: {error}"))
}

/// The pool's JWKS: the bench key's public half.
pub fn bench_jwks() -> anyhow::Result<Bytes> {
    let key = bench_key()?;
    let components: ring::signature::RsaPublicKeyComponents<Vec<u8>> = key.public().into();
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig",
        "kid": "bench", "n": b64(&components.n), "e": b64(&components.e)}]});
    Ok(Bytes::from(jwks.to_string()))
}

/// A Cognito-shaped ID token of the bench pool, valid for a day from `now_s`.
pub fn bench_id_token(now_s: u64) -> anyhow::Result<String> {
    let key = bench_key()?;
    let claims = serde_json::json!({
        "sub": "5a1c9a0e-8f4b-4e7e-9d51-2f0b6c7d8e9f",
        "iss": format!("https://cognito-idp.us-east-1.amazonaws.com/{BENCH_POOL}"),
        "aud": "portico-bench-client",
        "token_use": "id",
        "cognito:username": "bench",
        "email": "bench@example.com",
        "auth_time": now_s,
        "iat": now_s,
        "exp": now_s + 86_400,
    });
    let input = format!(
        "{}.{}",
        b64(br#"{"kid":"bench","alg":"RS256"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| anyhow::anyhow!("signing the bench token failed"))?;
    Ok(format!("{input}.{}", b64(&signature)))
}

/// A 16 KiB JSON body.
pub fn large_body() -> Bytes {
    let mut body = String::with_capacity(16 * 1024);
    body.push_str("{\"items\":[");
    let mut index = 0;
    while body.len() < 16 * 1024 - 64 {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&format!("{{\"id\":{index},\"v\":\"abcdefghij\"}}"));
        index += 1;
    }
    body.push_str("],\"pad\":\"");
    while body.len() < 16 * 1024 - 2 {
        body.push('x');
    }
    body.push_str("\"}");
    Bytes::from(body)
}

/// Serves until the process is killed. Runs on a current-thread runtime: the runner pins it to
/// the load generator's core, away from the target's.
pub fn serve(listen: SocketAddr, slow: std::time::Duration) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let small = Bytes::from_static(SMALL_BODY.as_bytes());
        let large = large_body();
        let jwks = bench_jwks()?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let small = small.clone();
            let large = large.clone();
            let jwks = jwks.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let path = request.uri().path();
                    let delay = path.contains("slow").then_some(slow);
                    let body = if path.starts_with("/2015-03-31/functions/") {
                        Bytes::from_static(AUTHORIZER_ANSWER.as_bytes())
                    } else if path.ends_with("/.well-known/jwks.json") {
                        jwks.clone()
                    } else if path.contains("large") {
                        large.clone()
                    } else {
                        small.clone()
                    };
                    async move {
                        if let Some(delay) = delay {
                            tokio::time::sleep(delay).await;
                        }
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .unwrap_or_default(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
