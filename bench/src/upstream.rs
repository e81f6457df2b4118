//! The bench upstream: a hyper HTTP/1.1 server on one thread with two fixed JSON bodies.
//!
//! `/large` (any path containing `large`) answers 16 KiB, everything else the ~100-byte body,
//! so the same server backs every proxy and every route of the 10,000-route API. It also
//! answers the Lambda Invoke API for the authorizers scenario's function (an allow-all policy).

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
pub fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let small = Bytes::from_static(SMALL_BODY.as_bytes());
        let large = large_body();
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let small = small.clone();
            let large = large.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let path = request.uri().path();
                    let body = if path.starts_with("/2015-03-31/functions/") {
                        Bytes::from_static(AUTHORIZER_ANSWER.as_bytes())
                    } else if path.contains("large") {
                        large.clone()
                    } else {
                        small.clone()
                    };
                    async move {
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
