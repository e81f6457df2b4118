//! The pooled HTTP(S) client every integration shares.
//!
//! hyper-util's legacy client: pooled keep-alive connections per backend, HTTP/1.1 and HTTP/2
//! (by ALPN), bodies streamed both ways, and no redirect following or decompression, which a
//! proxy must not do. Integrations that skip certificate verification get a second pool, so
//! the relaxed config can never leak into a verified connection.

use std::path::Path;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;

type Pool = Client<HttpsConnector<HttpConnector>, Body>;

#[derive(Clone, Debug)]
pub struct BackendClient {
    verified: Pool,
    insecure: Pool,
}

impl BackendClient {
    /// `extra_ca_file` adds PEM roots to the system's, for backends behind a private CA.
    pub fn new(extra_ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let roots = crate::tls::backend_roots(extra_ca_file)?;
        Ok(BackendClient {
            verified: pool(crate::tls::client_config(roots)?),
            insecure: pool(crate::tls::insecure_client_config()?),
        })
    }

    pub fn pool(&self, insecure_skip_verification: bool) -> &Pool {
        if insecure_skip_verification {
            &self.insecure
        } else {
            &self.verified
        }
    }
}

fn pool(tls: rustls::ClientConfig) -> Pool {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}
