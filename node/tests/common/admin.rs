//! A `portico dev --admin` on loopback and a client that signs its management API calls with
//! SigV4, for the tests of the management API.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portico::dev::{DevNode, DevOptions};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

pub const KEY_ID: &str = "AKIAPORTICORUSTTEST1";
pub const SECRET: &str = "portico-rust-admin-test-secret-000000000";

pub struct Admin {
    pub node: DevNode,
    pub data_dir: tempfile::TempDir,
    pub client: HttpsClient,
    pub base: String,
}

impl Admin {
    pub async fn start() -> Admin {
        Admin::start_with(|_| {}).await
    }

    /// Like [`Admin::start`], with the options adjusted (an API file, a data-plane listener).
    pub async fn start_with(adjust: impl FnOnce(&mut DevOptions)) -> Admin {
        let data_dir = tempfile::tempdir().unwrap();
        let mut options = DevOptions::new(data_dir.path().to_path_buf());
        options.http = None;
        options.https = None;
        options.admin = Some("127.0.0.1:0".parse().unwrap());
        options.admin_credentials = Some((KEY_ID.into(), SECRET.into()));
        adjust(&mut options);
        let node = tokio::time::timeout(super::TEST_TIMEOUT, DevNode::start(options))
            .await
            .unwrap()
            .unwrap();
        let client = https_client(&data_dir.path().join("cert.pem"));
        let base = format!("https://127.0.0.1:{}", node.admin_addr.unwrap().port());
        Admin {
            node,
            data_dir,
            client,
            base,
        }
    }

    /// A signed call: `(status, x-amzn-ErrorType, JSON body)`.
    pub async fn call(&self, method: &str, path: &str, body: &str) -> (u16, Option<String>, Value) {
        signed_call(&self.client, &self.base, method, path, body).await
    }
}

pub type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// An HTTPS client trusting the dev node's self-signed certificate (`cert.pem` in its data
/// directory).
pub fn https_client(cert_pem: &std::path::Path) -> HttpsClient {
    let cert = CertificateDer::from_pem_file(cert_pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(portico::tls::client_config(roots).unwrap())
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// A management API call signed with the test key: `(status, x-amzn-ErrorType, JSON body)`.
pub async fn signed_call(
    client: &HttpsClient,
    base: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Option<String>, Value) {
    let uri: http::Uri = format!("{base}{path}").parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("host", uri.authority().unwrap().as_str().parse().unwrap());
    if !body.is_empty() {
        headers.insert("content-type", "application/json".parse().unwrap());
    }
    let now = portico::time::epoch_seconds(SystemTime::now());
    portico::admin::sigv4::sign(
        method,
        &uri,
        &mut headers,
        body.as_bytes(),
        KEY_ID,
        SECRET,
        "us-east-1",
        "apigateway",
        now,
    );
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client.request(request))
        .await
        .unwrap()
        .unwrap();
    let reply = super::read(response).await;
    let error_type = reply
        .headers
        .get("x-amzn-errortype")
        .map(|value| value.to_str().unwrap().to_string());
    let json = if reply.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&reply.body).unwrap_or(Value::String(reply.text()))
    };
    (reply.status.as_u16(), error_type, json)
}

impl Admin {
    /// A signed IAM call (query protocol, form-encoded body): `(status, XML body)`.
    #[allow(dead_code)] // used by the IAM tests only
    pub async fn iam(&self, params: &[(&str, &str)]) -> (u16, String) {
        let body: String = params
            .iter()
            .chain([("Version", "2010-05-08")].iter())
            .map(|(name, value)| {
                format!(
                    "{}={}",
                    name,
                    percent_encoding::utf8_percent_encode(
                        value,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let uri: http::Uri = format!("{}/", self.base).parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", uri.authority().unwrap().as_str().parse().unwrap());
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        let now = portico::time::epoch_seconds(SystemTime::now());
        portico::sigv4::sign(
            "POST",
            &uri,
            &mut headers,
            body.as_bytes(),
            KEY_ID,
            SECRET,
            "us-east-1",
            "iam",
            now,
        );
        let mut request = Request::builder().method("POST").uri(uri);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(20), self.client.request(request))
            .await
            .unwrap()
            .unwrap();
        let reply = super::read(response).await;
        (reply.status.as_u16(), reply.text())
    }
}

/// The text of the first `<tag>...</tag>` in `xml`.
#[allow(dead_code)] // used by the IAM tests only
pub fn xml_value<'x>(xml: &'x str, tag: &str) -> Option<&'x str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}
