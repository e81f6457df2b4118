//! API keys, usage plans and paced load for the throttling and quota tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::harness::{Cluster, WAIT, wait_for};

/// The API key value every test uses (AWS wants at least 20 characters).
pub const KEY_VALUE: &str = "portico-cluster-test-key-0000000001";

impl Cluster {
    /// A management API call that must succeed; its JSON answer.
    pub fn admin_ok(
        &self,
        origin: u64,
        method: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let body = body.to_string();
        let (status, value) = self.admin_call(origin, method, path, Some(&body))?;
        anyhow::ensure!(status < 300, "{method} {path}: {status} {value}");
        Ok(value)
    }

    /// Waits for the management API to accept the bootstrap key, then creates an API whose
    /// `GET /item` (a MOCK) requires an API key, deployed to `prod`. Returns the API id.
    pub async fn keyed_api(&self, origin: u64) -> anyhow::Result<String> {
        let (_, api) = wait_for(WAIT, "the management API to accept the first key", || {
            let answer =
                self.admin_call(origin, "POST", "/restapis", Some(r#"{"name": "metered"}"#));
            async move { answer.ok().filter(|(status, _)| *status == 201) }
        })
        .await?;
        let api_id = api["id"].as_str().context("an API id")?.to_string();
        let root = api["rootResourceId"]
            .as_str()
            .context("a root id")?
            .to_string();
        let resource = self.admin_ok(
            origin,
            "POST",
            &format!("/restapis/{api_id}/resources/{root}"),
            json!({"pathPart": "item"}),
        )?;
        let resource_id = resource["id"].as_str().context("a resource id")?;
        let method = format!("/restapis/{api_id}/resources/{resource_id}/methods/GET");
        self.admin_ok(
            origin,
            "PUT",
            &method,
            json!({"authorizationType": "NONE", "apiKeyRequired": true}),
        )?;
        self.admin_ok(
            origin,
            "PUT",
            &format!("{method}/integration"),
            json!({"type": "MOCK", "requestTemplates": {"application/json": "{\"statusCode\": 200}"}}),
        )?;
        self.admin_ok(origin, "PUT", &format!("{method}/responses/200"), json!({}))?;
        self.admin_ok(
            origin,
            "PUT",
            &format!("{method}/integration/responses/200"),
            json!({"responseTemplates": {"application/json": "{\"ok\": true}"}}),
        )?;
        self.admin_ok(
            origin,
            "POST",
            &format!("/restapis/{api_id}/deployments"),
            json!({"stageName": "prod"}),
        )?;
        Ok(api_id)
    }

    /// Creates an enabled key with [`KEY_VALUE`] and a usage plan covering `api_id`/prod with
    /// `settings` (`throttle`, `quota`), and attaches the key. Returns `(key id, plan id)`.
    pub fn key_and_plan(
        &self,
        origin: u64,
        api_id: &str,
        settings: Value,
    ) -> anyhow::Result<(String, String)> {
        let key = self.admin_ok(
            origin,
            "POST",
            "/apikeys",
            json!({"name": "tester", "enabled": true, "value": KEY_VALUE}),
        )?;
        let key_id = key["id"].as_str().context("a key id")?.to_string();
        let mut plan = json!({
            "name": "plan",
            "apiStages": [{"apiId": api_id, "stage": "prod"}],
        });
        if let (Some(plan), Some(settings)) = (plan.as_object_mut(), settings.as_object()) {
            for (name, value) in settings {
                plan.insert(name.clone(), value.clone());
            }
        }
        let plan = self.admin_ok(origin, "POST", "/usageplans", plan)?;
        let plan_id = plan["id"].as_str().context("a plan id")?.to_string();
        self.admin_ok(
            origin,
            "POST",
            &format!("/usageplans/{plan_id}/keys"),
            json!({"keyId": key_id, "keyType": "API_KEY"}),
        )?;
        Ok((key_id, plan_id))
    }
}

/// `GET path` with an `x-api-key`, on a fresh connection; the status, or `None` when the edge
/// did not answer within five seconds.
pub async fn keyed_get(addr: SocketAddr, host: &str, path: &str, key: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nx-api-key: {key}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response);
        text.split(' ').nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// What one paced client saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: AtomicU64,
    /// 429s, throttled or over the quota alike.
    pub throttled: AtomicU64,
    pub forbidden: AtomicU64,
    pub other: AtomicU64,
    pub lost: AtomicU64,
}

impl Tally {
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    fn record(&self, status: Option<u16>) {
        let counter = match status {
            Some(200) => &self.ok,
            Some(429) => &self.throttled,
            Some(403) => &self.forbidden,
            Some(_) => &self.other,
            None => &self.lost,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn summary(&self) -> String {
        format!(
            "200: {}, 429: {}, 403: {}, other: {}, no answer: {}",
            self.ok.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
            self.forbidden.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed)
        )
    }
}

/// Sends `rate` requests per second to `addr` (open loop: each request on its own task at
/// its own tick) from `start` until `start + duration`; only requests sent at or after
/// `start + warmup` are counted. Returns when every request has been answered or given up.
pub async fn paced_load(
    addr: SocketAddr,
    host: String,
    rate: f64,
    start: Instant,
    warmup: Duration,
    duration: Duration,
) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent: u32 = 0;
    loop {
        let at = start + interval * sent;
        if at >= start + duration {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let counted = at >= start + warmup;
        let tally = tally.clone();
        let host = host.clone();
        tasks.spawn(async move {
            let status = keyed_get(addr, &host, "/prod/item", KEY_VALUE).await;
            if counted {
                tally.record(status);
            }
        });
        sent += 1;
    }
    while tasks.join_next().await.is_some() {}
    tally
}
