//! The response cache end to end: a `dev` node (data plane, management keys, metrics listener)
//! serving a cache-enabled stage in front of a backend that counts its calls.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use common::{Reply, TEST_TIMEOUT, get, send};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use portico::accept::{self, Listener, Shutdown};
use portico::body::Body;
use portico::dev::{DevNode, DevOptions};
use portico_proto::{MethodSetting, Stage};

const KEY_ID: &str = "AKIDCACHETEST0000001";
const SECRET: &str = "cache-test-secret-key-000000000000000000";

const API: &str = r#"
openapi: 3.0.1
info: { title: cached, version: "1" }
paths:
  /items/{id}:
    get:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: http://BACKEND/items/{id}
        requestParameters:
          integration.request.path.id: method.request.path.id
        cacheKeyParameters:
          - method.request.querystring.page
          - method.request.header.x-tenant
    post:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: POST
        uri: http://BACKEND/items/{id}
        requestParameters:
          integration.request.path.id: method.request.path.id
  /slow:
    get:
      x-amazon-apigateway-integration: { type: http_proxy, httpMethod: GET, uri: "http://BACKEND/slow" }
  /flaky:
    get:
      x-amazon-apigateway-integration: { type: http_proxy, httpMethod: GET, uri: "http://BACKEND/flaky" }
  /big:
    get:
      x-amazon-apigateway-integration: { type: http_proxy, httpMethod: GET, uri: "http://BACKEND/big" }
  /staged:
    get:
      x-amazon-apigateway-integration: { type: http_proxy, httpMethod: GET, uri: "http://${stageVariables.host}/items/staged" }
  /missing:
    get:
      x-amazon-apigateway-integration: { type: http_proxy, httpMethod: GET, uri: "http://BACKEND/missing" }
"#;

/// A backend that counts every call and says which call answered.
struct Backend {
    calls: Arc<AtomicUsize>,
    /// 0: healthy; otherwise `/flaky` answers this status.
    flaky_status: Arc<AtomicU16>,
    _listener: Listener,
    shutdown: Shutdown,
}

impl Backend {
    async fn start() -> (Backend, String) {
        let calls = Arc::new(AtomicUsize::new(0));
        let flaky_status = Arc::new(AtomicU16::new(0));
        let shutdown = Shutdown::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (counter, flaky) = (calls.clone(), flaky_status.clone());
        let listener = accept::serve(
            listener,
            None,
            &shutdown,
            Duration::from_secs(1),
            move |request, _connection| {
                let call = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let flaky = flaky.load(Ordering::SeqCst);
                async move { answer(request, call, flaky).await }
            },
        )
        .unwrap();
        let addr = listener.local_addr.to_string();
        (
            Backend {
                calls,
                flaky_status,
                _listener: listener,
                shutdown,
            },
            addr,
        )
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    call: usize,
    flaky: u16,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    let respond = |status: u16, body: Bytes| {
        let mut response = Response::new(portico::body::full(body));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        response
    };
    match path.as_str() {
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            respond(200, Bytes::from(format!("call={call}")))
        }
        "/flaky" if flaky != 0 => respond(flaky, Bytes::from_static(b"broken")),
        "/big" => respond(200, Bytes::from(vec![b'x'; 2 * 1024 * 1024])),
        "/missing" => respond(404, Bytes::from(format!("call={call}"))),
        _ => {
            let tenant = request
                .headers()
                .get("x-tenant")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-");
            let query = request.uri().query().unwrap_or("");
            let size = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("size="))
                .and_then(|size| size.parse::<usize>().ok())
                .unwrap_or(0);
            let text = format!(
                "call={call} path={path} tenant={tenant} {}",
                "x".repeat(size)
            );
            respond(200, Bytes::from(text))
        }
    }
}

struct Harness {
    node: DevNode,
    backend: Backend,
    base: String,
    stage_key: String,
    backend_addr: String,
    /// The served state, for tests that change it.
    state: portico_proto::GatewayState,
    _data_dir: tempfile::TempDir,
}

impl Harness {
    /// A dev node with management keys and metrics, serving `API` with its stage's cache on;
    /// `configure` adjusts the stage (method settings, variables) before it is compiled.
    async fn start(cap_bytes: Option<u64>, configure: impl FnOnce(&mut Stage)) -> Harness {
        let (backend, backend_addr) = Backend::start().await;
        let text = API.replace("BACKEND", &backend_addr);
        let data_dir = tempfile::tempdir().unwrap();
        let api_file = data_dir.path().join("api.yaml");
        std::fs::write(&api_file, &text).unwrap();
        let mut options = DevOptions::new(data_dir.path().to_path_buf());
        options.api_file = Some(api_file);
        options.stage = "prod".into();
        options.http = Some("127.0.0.1:0".parse().unwrap());
        options.https = None;
        options.admin = Some("127.0.0.1:0".parse().unwrap());
        options.admin_credentials = Some((KEY_ID.into(), SECRET.into()));
        options.metrics = Some("127.0.0.1:0".parse().unwrap());
        options.cache_capacity_bytes_max = cap_bytes;
        let node = tokio::time::timeout(TEST_TIMEOUT, DevNode::start(options))
            .await
            .unwrap()
            .unwrap();

        // The served deployment, with the stage's cache configured as a test needs it.
        let (mut state, _) = portico::dev::build_state("api.yaml", &text, "prod", &[], 0).unwrap();
        let (api_id, api) = state.apis.iter_mut().next().unwrap();
        let api_id = api_id.clone();
        let stage = &mut api.stages[0];
        stage.cache_cluster_enabled = true;
        stage.cache_cluster_size = Some("0.5".into());
        configure(stage);
        let snapshot = portico::config::compile::compile(&state, true).unwrap();
        node.gateway.swap(snapshot);
        let base = format!("http://{}/prod", node.http_addr.unwrap());
        Harness {
            node,
            backend,
            base,
            stage_key: format!("{api_id}/prod"),
            backend_addr,
            state,
            _data_dir: data_dir,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        get(&format!("{}{path}", self.base)).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(request.body(Full::new(Bytes::new())).unwrap()).await
    }

    /// A GET with `Cache-Control: max-age=0`, SigV4-signed (service `execute-api`) with
    /// `secret`.
    async fn signed_invalidation(&self, path: &str, secret: &str) -> Reply {
        let uri = format!("{}{path}", self.base);
        let host = uri
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let headers = [("host", host.as_str()), ("cache-control", "max-age=0")];
        let identity = Credentials::new(KEY_ID, secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "GET",
            uri.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&[]),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut request = Request::get(uri.as_str());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request.body(Full::new(Bytes::new())).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        send(request).await
    }

    async fn shutdown(self) {
        self.node.shutdown().await;
        self.backend.shutdown.trigger();
    }
}

fn setting(configure: impl FnOnce(&mut MethodSetting)) -> MethodSetting {
    let mut setting = MethodSetting {
        caching_enabled: true,
        ..MethodSetting::default()
    };
    configure(&mut setting);
    setting
}

fn call_of(reply: &Reply) -> String {
    reply
        .text()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Sleeps until `deadline` (at once if it passed).
async fn sleep_past(deadline: std::time::Instant) {
    let now = std::time::Instant::now();
    if deadline > now {
        tokio::time::sleep(deadline - now).await;
    }
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let harness = Harness::start(None, |stage| {
        stage
            .method_settings
            .insert("*/*".into(), setting(|s| s.cache_ttl_in_seconds = 1));
        stage
            .variables
            .insert("portico.cache.header".into(), "true".into());
    })
    .await;
    let stored_at = std::time::Instant::now();
    let first = harness.get("/items/1").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["x-cache"], "Miss");
    let second = harness.get("/items/1").await;
    assert_eq!(call_of(&second), call_of(&first));
    assert_eq!(second.headers["x-cache"], "Hit");
    assert!(second.headers.contains_key("x-amzn-requestid"));
    assert_ne!(
        second.headers["x-amzn-requestid"],
        first.headers["x-amzn-requestid"]
    );
    assert_eq!(harness.backend.calls(), 1);

    sleep_past(stored_at + Duration::from_millis(1300)).await;
    let third = harness.get("/items/1").await;
    assert_eq!(third.headers["x-cache"], "Miss");
    assert_eq!(call_of(&third), "call=2");
    assert_eq!(harness.backend.calls(), 2);
    harness.shutdown().await;
}

#[tokio::test]
async fn key_parameters_split_the_cache_and_nothing_else_does() {
    let harness = Harness::start(None, |_| {}).await;
    let base = harness.get("/items/1?page=1").await;
    assert_eq!(call_of(&base), "call=1");
    // Undeclared query strings and headers share the entry.
    let same = harness
        .get_with("/items/1?utm=mail&page=1", &[("x-other", "a")])
        .await;
    assert_eq!(call_of(&same), "call=1");
    // A declared query string, a declared header and the path parameter split it.
    let page = harness.get("/items/1?page=2").await;
    assert_eq!(call_of(&page), "call=2");
    let tenant = harness
        .get_with("/items/1?page=1", &[("x-tenant", "acme")])
        .await;
    assert_eq!(call_of(&tenant), "call=3");
    let tenant_again = harness
        .get_with("/items/1?page=1&x=y", &[("X-Tenant", "acme")])
        .await;
    assert_eq!(call_of(&tenant_again), "call=3");
    let other_id = harness.get("/items/2?page=1").await;
    assert_eq!(call_of(&other_id), "call=4");
    assert_eq!(harness.backend.calls(), 4);

    // POST is not cached (no method setting enables it); 404s and large bodies are not stored.
    for _ in 0..2 {
        let reply = send(
            Request::post(format!("{}/items/1", harness.base))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(harness.backend.calls(), 6);
    for _ in 0..2 {
        assert_eq!(harness.get("/missing").await.status, 404);
    }
    assert_eq!(harness.backend.calls(), 8);
    for _ in 0..2 {
        let big = harness.get("/big").await;
        assert_eq!(big.status, 200);
        assert_eq!(big.body.len(), 2 * 1024 * 1024);
    }
    assert_eq!(harness.backend.calls(), 10);
    harness.shutdown().await;
}

#[tokio::test]
async fn a_caller_signed_by_an_admin_key_invalidates() {
    let harness = Harness::start(None, |_| {}).await;
    assert_eq!(call_of(&harness.get("/items/1").await), "call=1");
    let refreshed = harness.signed_invalidation("/items/1", SECRET).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    assert_eq!(call_of(&refreshed), "call=2");
    assert!(!refreshed.headers.contains_key("warning"));
    // The entry was replaced.
    assert_eq!(call_of(&harness.get("/items/1").await), "call=2");
    // A wrong secret is unauthorized: the default strategy serves the cache with a warning.
    let forged = harness
        .signed_invalidation("/items/1", "not-the-secret")
        .await;
    assert_eq!(call_of(&forged), "call=2");
    assert_eq!(
        forged.headers["warning"],
        portico::cache::UNAUTHORIZED_WARNING
    );
    assert_eq!(harness.backend.calls(), 2);
    harness.shutdown().await;
}

#[tokio::test]
async fn unauthorized_invalidation_follows_the_strategy() {
    let invalidate = [("cache-control", "max-age=0")];
    for strategy in [
        "FAIL_WITH_403",
        "SUCCEED_WITH_RESPONSE_HEADER",
        "SUCCEED_WITHOUT_RESPONSE_HEADER",
    ] {
        let harness = Harness::start(None, |stage| {
            stage.method_settings.insert(
                "items/{id}/GET".into(),
                setting(|s| s.unauthorized_cache_control_header_strategy = strategy.into()),
            );
        })
        .await;
        assert_eq!(call_of(&harness.get("/items/1").await), "call=1");
        let reply = harness.get_with("/items/1", &invalidate).await;
        match strategy {
            "FAIL_WITH_403" => {
                assert_eq!(reply.status, 403, "{strategy}");
                assert_eq!(reply.headers["x-amzn-errortype"], "AccessDeniedException");
                assert_eq!(
                    reply.json(),
                    serde_json::json!({ "message": portico::cache::UNAUTHORIZED_MESSAGE })
                );
                assert!(reply.headers.contains_key("x-amzn-requestid"));
            }
            "SUCCEED_WITH_RESPONSE_HEADER" => {
                assert_eq!(call_of(&reply), "call=1", "{strategy}");
                assert_eq!(
                    reply.headers["warning"],
                    portico::cache::UNAUTHORIZED_WARNING
                );
            }
            _ => {
                assert_eq!(call_of(&reply), "call=1", "{strategy}");
                assert!(!reply.headers.contains_key("warning"));
            }
        }
        assert_eq!(harness.backend.calls(), 1, "{strategy}");
        harness.shutdown().await;
    }

    // Without requireAuthorizationForCacheControl anyone invalidates.
    let harness = Harness::start(None, |stage| {
        stage.method_settings.insert(
            "items/{id}/GET".into(),
            setting(|s| {
                s.require_authorization_for_cache_control = false;
                s.unauthorized_cache_control_header_strategy = "FAIL_WITH_403".into();
            }),
        );
    })
    .await;
    assert_eq!(call_of(&harness.get("/items/1").await), "call=1");
    let reply = harness.get_with("/items/1", &invalidate).await;
    assert_eq!(call_of(&reply), "call=2");
    assert_eq!(call_of(&harness.get("/items/1").await), "call=2");
    harness.shutdown().await;
}

#[tokio::test]
async fn concurrent_misses_make_one_backend_call() {
    let harness = Harness::start(None, |_| {}).await;
    let client = common::client();
    let url = format!("{}/slow", harness.base);
    let requests = (0..100).map(|_| {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let response = client
                .request(Request::get(url).body(Full::new(Bytes::new())).unwrap())
                .await
                .unwrap();
            common::read(response).await
        })
    });
    let replies = tokio::time::timeout(TEST_TIMEOUT, futures_util::future::join_all(requests))
        .await
        .expect("all answered in time");
    for reply in replies {
        let reply = reply.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), "call=1");
    }
    assert_eq!(harness.backend.calls(), 1);
    harness.shutdown().await;
}

#[tokio::test]
async fn inserting_past_the_capacity_keeps_the_weighted_size_bounded() {
    const CAPACITY: u64 = 256 * 1024;
    let harness = Harness::start(Some(CAPACITY), |_| {}).await;
    let cache = harness.node.gateway.cache().clone();
    assert_eq!(cache.capacity_bytes(&harness.stage_key), Some(CAPACITY));
    // 400 distinct entries of ~4 KiB: about six times the capacity.
    for id in 0..400 {
        let reply = harness.get(&format!("/items/{id}?size=4096")).await;
        assert_eq!(reply.status, 200);
    }
    let size = cache.weighted_size(&harness.stage_key).await.unwrap();
    assert!(
        size <= CAPACITY,
        "weighted size {size} > capacity {CAPACITY}"
    );
    assert!(size > CAPACITY / 4, "the cache holds something: {size}");
    harness.shutdown().await;
}

#[tokio::test]
async fn stale_entries_are_served_when_the_backend_fails_within_the_window() {
    let harness = Harness::start(None, |stage| {
        stage
            .method_settings
            .insert("*/*".into(), setting(|s| s.cache_ttl_in_seconds = 1));
        stage
            .variables
            .insert("portico.cache.staleIfError".into(), "2".into());
        stage
            .variables
            .insert("portico.cache.header".into(), "true".into());
    })
    .await;
    let stored_at = std::time::Instant::now();
    assert_eq!(call_of(&harness.get("/flaky").await), "call=1");
    harness.backend.flaky_status.store(503, Ordering::SeqCst);

    sleep_past(stored_at + Duration::from_millis(1300)).await;
    let stale = harness.get("/flaky").await;
    assert_eq!(stale.status, 200);
    assert_eq!(call_of(&stale), "call=1");
    assert_eq!(stale.headers["x-cache"], "Stale");
    assert_eq!(harness.backend.calls(), 2, "the backend was asked first");

    // Past TTL + window the failure reaches the client.
    sleep_past(stored_at + Duration::from_millis(3400)).await;
    let failed = harness.get("/flaky").await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.headers["x-cache"], "Miss");
    harness.shutdown().await;

    // Without the window, an expired entry is never served.
    let harness = Harness::start(None, |stage| {
        stage
            .method_settings
            .insert("*/*".into(), setting(|s| s.cache_ttl_in_seconds = 1));
    })
    .await;
    let stored_at = std::time::Instant::now();
    assert_eq!(call_of(&harness.get("/flaky").await), "call=1");
    harness.backend.flaky_status.store(503, Ordering::SeqCst);
    sleep_past(stored_at + Duration::from_millis(1300)).await;
    let failed = harness.get("/flaky").await;
    assert_eq!(failed.status, 503);
    assert!(!failed.headers.contains_key("x-cache"), "not opted in");
    harness.shutdown().await;
}

#[tokio::test]
async fn metrics_count_hits_and_misses() {
    let harness = Harness::start(None, |_| {}).await;
    for _ in 0..3 {
        assert_eq!(harness.get("/items/7").await.status, 200);
    }
    let metrics = get(&format!(
        "http://{}/metrics",
        harness.node.metrics_addr.unwrap()
    ))
    .await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    let api_id = harness.stage_key.split('/').next().unwrap();
    let hits = format!(
        r#"portico_cache_hits_total{{api="{api_id}",stage="prod",method="GET /items/{{id}}"}} 2"#
    );
    let misses = format!(
        r#"portico_cache_misses_total{{api="{api_id}",stage="prod",method="GET /items/{{id}}"}} 1"#
    );
    assert!(text.contains(&hits), "{hits} not in:\n{text}");
    assert!(text.contains(&misses), "{misses} not in:\n{text}");
    // Methods that are cached but not called yet are there at 0.
    assert!(
        text.contains(&format!(
            r#"portico_cache_hits_total{{api="{api_id}",stage="prod",method="GET /slow"}} 0"#
        )),
        "{text}"
    );
    let not_found = get(&format!(
        "http://{}/other",
        harness.node.metrics_addr.unwrap()
    ))
    .await;
    assert_eq!(not_found.status, 404);
    harness.shutdown().await;
}

#[tokio::test]
async fn a_flush_generation_orphans_every_entry() {
    // FlushStageCache bumps the stage's generation, which is in every key: the next snapshot
    // misses every entry, without scanning the store.
    let mut harness = Harness::start(None, |_| {}).await;
    assert_eq!(call_of(&harness.get("/items/1").await), "call=1");
    assert_eq!(call_of(&harness.get("/items/1").await), "call=1");
    harness
        .state
        .cache_generations
        .insert(harness.stage_key.clone(), 1);
    let snapshot = portico::config::compile::compile(&harness.state, true).unwrap();
    harness.node.gateway.swap(snapshot);
    assert_eq!(call_of(&harness.get("/items/1").await), "call=2");
    assert_eq!(call_of(&harness.get("/items/1").await), "call=2");
    harness.shutdown().await;
}

/// A region's shared tier as the l2 seam sees it: a map, with counts of what was asked.
#[derive(Debug, Default)]
struct FakeShared {
    entries: std::sync::Mutex<
        std::collections::HashMap<Arc<[u8]>, Arc<portico_proto::cache::CachedResponse>>,
    >,
    gets: AtomicUsize,
    puts: AtomicUsize,
}

impl portico::cache::shared::SharedTier for FakeShared {
    fn get(
        &self,
        key: Arc<[u8]>,
    ) -> portico::request::BoxFuture<'_, portico::cache::shared::SharedLookup> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let found = self.entries.lock().unwrap().get(&key).cloned();
        Box::pin(async move {
            match found {
                Some(entry) => portico::cache::shared::SharedLookup::Hit(entry),
                None => portico::cache::shared::SharedLookup::Miss,
            }
        })
    }

    fn put(&self, key: Arc<[u8]>, entry: Arc<portico_proto::cache::CachedResponse>) {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.entries.lock().unwrap().insert(key, entry);
    }
}

#[tokio::test]
async fn an_l1_miss_asks_the_shared_tier_and_fills_it() {
    let (backend, backend_addr) = Backend::start().await;
    let text = API.replace("BACKEND", &backend_addr);
    let (mut state, _) = portico::dev::build_state("api.yaml", &text, "prod", &[], 0).unwrap();
    let stage = &mut state.apis.values_mut().next().unwrap().stages[0];
    stage.cache_cluster_enabled = true;
    stage
        .variables
        .insert("portico.cache.header".into(), "true".into());
    let shared = Arc::new(FakeShared::default());
    let shutdown = Shutdown::new();
    // Two edges of one region: each its own L1, one shared L2.
    let mut bases = Vec::new();
    let mut listeners = Vec::new();
    let workers = portico::accept::Workers::start(1).unwrap();
    for _ in 0..2 {
        let snapshot = portico::config::compile::compile(&state, true).unwrap();
        let integrations = portico::integrate::Integrations {
            client: portico::integrate::client::BackendClient::new(None).unwrap(),
            settings: portico::integrate::IntegrationSettings::default(),
        };
        let cache = Arc::new(portico::cache::ResponseCache::new(
            portico::cache::CacheOptions::default(),
            Some(shared.clone()),
            None,
            Arc::new(portico::observe::metrics::Metrics::new()),
        ));
        let gateway =
            Arc::new(portico::pipeline::Gateway::new(snapshot, integrations).with_cache(cache));
        let started = portico::serve::serve_gateway(
            &workers,
            "127.0.0.1:0".parse().unwrap(),
            None,
            &gateway,
            &shutdown,
            Duration::from_secs(1),
        )
        .unwrap();
        bases.push(format!("http://{}/prod", started[0].local_addr));
        listeners.extend(started);
    }

    let first = get(&format!("{}/items/1", bases[0])).await;
    assert_eq!(call_of(&first), "call=1");
    assert_eq!(first.headers["x-cache"], "Miss");
    assert_eq!(shared.puts.load(Ordering::SeqCst), 1);
    // The other edge misses its L1, finds the entry in L2 and never calls the backend.
    let second = get(&format!("{}/items/1", bases[1])).await;
    assert_eq!(call_of(&second), "call=1");
    assert_eq!(second.headers["x-cache"], "Hit");
    assert_eq!(backend.calls(), 1);
    assert_eq!(shared.gets.load(Ordering::SeqCst), 2);
    // Now in that edge's L1: L2 is not asked again.
    let third = get(&format!("{}/items/1", bases[1])).await;
    assert_eq!(call_of(&third), "call=1");
    assert_eq!(shared.gets.load(Ordering::SeqCst), 2);
    shutdown.trigger();
    backend.shutdown.trigger();
}

#[tokio::test]
async fn stale_entries_are_served_when_the_backend_is_unreachable_and_survive_a_redeploy() {
    let mut harness = Harness::start(None, |stage| {
        stage
            .method_settings
            .insert("*/*".into(), setting(|s| s.cache_ttl_in_seconds = 1));
        stage
            .variables
            .insert("portico.cache.staleIfError".into(), "30".into());
    })
    .await;
    // `/staged` reaches the backend through a stage variable, so a redeploy can point it at
    // an address where nothing listens; the stage's store survives the redeploy.
    let redeploy = |harness: &mut Harness, host: &str| {
        let stage = &mut harness.state.apis.values_mut().next().unwrap().stages[0];
        stage.variables.insert("host".into(), host.to_string());
        let snapshot = portico::config::compile::compile(&harness.state, true).unwrap();
        harness.node.gateway.swap(snapshot);
    };
    let backend = harness.backend_addr.clone();
    redeploy(&mut harness, &backend);
    let stored_at = std::time::Instant::now();
    let first = harness.get("/staged").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(call_of(&first), "call=1");

    redeploy(&mut harness, "127.0.0.1:1");
    sleep_past(stored_at + Duration::from_millis(1300)).await;
    let stale = harness.get("/staged").await;
    assert_eq!(stale.status, 200, "{}", stale.text());
    assert_eq!(call_of(&stale), "call=1");
    assert_eq!(harness.backend.calls(), 1);
    harness.shutdown().await;
}
