use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::admin::sigv4;
use crate::cluster::certs::{ClusterTls, NodeCertSpec, NodeRole, init_cluster};
use crate::cluster::transport::{Handler, Reply};

const WAIT: Duration = Duration::from_secs(10);

fn entry(body_bytes: usize, stored_at_ms: u64, ttl_ms: u64) -> Arc<CachedResponse> {
    Arc::new(CachedResponse {
        status: 200,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: vec![b'x'; body_bytes],
        stored_at_ms,
        ttl_ms,
    })
}

fn key(text: &str) -> Arc<[u8]> {
    Arc::from(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_key_make_one_filler() {
    let cache = Arc::new(RegionalCache::new(DEFAULT_CAPACITY_BYTES, FILL_WAIT));
    let now = now_ms();
    let askers = 100;
    let barrier = Arc::new(tokio::sync::Barrier::new(askers));
    let (sender, mut results) = tokio::sync::mpsc::channel(askers);
    for _ in 0..askers {
        let cache = cache.clone();
        let barrier = barrier.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            let lookup = cache.get(key("k"), now).await;
            let _ = sender.send(lookup).await;
        });
    }
    // The filler's answer comes back at once; everyone else waits for its put.
    let first = tokio::time::timeout(WAIT, results.recv())
        .await
        .expect("the filler answers at once")
        .expect("a lookup");
    assert!(matches!(first, Lookup::Miss), "{first:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        results.try_recv().is_err(),
        "a second asker did not wait for the fill"
    );
    cache.put(key("k"), entry(10, now, 60_000), now).await;
    let mut hits = 0;
    for _ in 1..askers {
        let lookup = tokio::time::timeout(WAIT, results.recv())
            .await
            .expect("waiters are woken by the put")
            .expect("a lookup");
        match lookup {
            Lookup::Hit(entry) => {
                assert_eq!(entry.body.len(), 10);
                hits += 1;
            }
            Lookup::Miss => panic!("a second miss: the backend would be called twice"),
        }
    }
    assert_eq!(hits, askers - 1);
    // Later askers hit without waiting.
    assert!(matches!(cache.get(key("k"), now).await, Lookup::Hit(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_released_when_the_filler_never_puts() {
    let fill_wait = Duration::from_secs(1);
    let cache = Arc::new(RegionalCache::new(DEFAULT_CAPACITY_BYTES, fill_wait));
    let now = now_ms();
    assert!(matches!(cache.get(key("k"), now).await, Lookup::Miss));
    let started = Instant::now();
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(key("k"), now).await }
    });
    let lookup = tokio::time::timeout(WAIT, waiter)
        .await
        .expect("bounded")
        .expect("joined");
    assert!(matches!(lookup, Lookup::Miss), "{lookup:?}");
    let waited = started.elapsed();
    assert!(
        waited >= fill_wait && waited < fill_wait + Duration::from_secs(3),
        "waited {waited:?}"
    );
    // The stale fill is taken over by the next asker, who becomes the filler at once.
    let started = Instant::now();
    assert!(matches!(cache.get(key("k"), now).await, Lookup::Miss));
    assert!(started.elapsed() < fill_wait);
    // ... and whoever comes after it waits for that new fill, which a put completes.
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(key("k"), now).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    cache.put(key("k"), entry(1, now, 60_000), now).await;
    let lookup = tokio::time::timeout(WAIT, waiter).await.expect("bounded");
    assert!(matches!(lookup, Ok(Lookup::Hit(_))), "{lookup:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_put_releases_the_waiters_at_once() {
    let cache = Arc::new(RegionalCache::new(DEFAULT_CAPACITY_BYTES, FILL_WAIT));
    let now = now_ms();
    assert!(matches!(cache.get(key("big"), now).await, Lookup::Miss));
    let started = Instant::now();
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(key("big"), now).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    cache
        .put(key("big"), entry(MAX_ENTRY_BYTES, now, 60_000), now)
        .await;
    let lookup = tokio::time::timeout(WAIT, waiter).await.expect("bounded");
    assert!(matches!(lookup, Ok(Lookup::Miss)), "{lookup:?}");
    assert!(started.elapsed() < FILL_WAIT);
    assert_eq!(cache.weighted_size().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_within_the_capacity() {
    let capacity = 1024 * 1024;
    let cache = RegionalCache::new(capacity, FILL_WAIT);
    let now = now_ms();
    let body = 64 * 1024;
    for index in 0..200 {
        cache
            .put(key(&format!("k{index}")), entry(body, now, 60_000), now)
            .await;
        assert!(
            cache.weighted_size().await <= capacity,
            "over capacity after {index} puts"
        );
    }
    // 200 × 64 KiB were offered; about 15 fit.
    cache.entries.run_pending_tasks().await;
    let held = cache.entries.entry_count();
    assert!(held > 0 && held <= 16, "{held} entries held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_at_stored_at_plus_ttl() {
    let cache = RegionalCache::new(DEFAULT_CAPACITY_BYTES, FILL_WAIT);
    let now = now_ms();
    cache.put(key("k"), entry(5, now, 1_000), now).await;
    assert!(matches!(
        cache.get(key("k"), now + 999).await,
        Lookup::Hit(_)
    ));
    // Stale by the asker's clock: a miss, and the asker fills it.
    assert!(matches!(
        cache.get(key("k"), now + 1_000).await,
        Lookup::Miss
    ));
    // An entry stored stale is not kept at all.
    cache
        .put(key("old"), entry(5, now - 10_000, 1_000), now)
        .await;
    assert_eq!(cache.entries.get(&key("old")).await, None);
    // The memory of an expired entry is reclaimed by the wall clock.
    let short = RegionalCache::new(DEFAULT_CAPACITY_BYTES, FILL_WAIT);
    short.put(key("k"), entry(5, now_ms(), 50), now_ms()).await;
    assert!(short.weighted_size().await > 0);
    // (moka's timer wheel has about a second of granularity.)
    eventually(|| async { (short.weighted_size().await == 0).then_some(()) }).await;
}

// --- the invalidation authority on an origin ---------------------------------------------------

const ACCESS_KEY: &str = "AKIAEXAMPLE0000001";
const SECRET: &str = "secret/for/invalidation";

fn verifier(enabled: bool) -> InvalidationVerifier {
    let sealing = SealingKey::from_bytes([7; 32]);
    let sealed = sealing.seal(ACCESS_KEY, SECRET);
    let key = AdminKey {
        access_key_id: ACCESS_KEY.into(),
        nonce: sealed.nonce.to_vec(),
        sealed_secret: sealed.ciphertext,
        created_date: 0,
        enabled,
    };
    let keys = BTreeMap::from([(ACCESS_KEY.to_string(), key)]);
    InvalidationVerifier {
        sealing,
        regions: vec![],
        admin_key: Box::new(move |id| keys.get(id).cloned()),
    }
}

/// A GET with `Cache-Control: max-age=0`, signed for `service` at `now`.
fn invalidation(service: &str, secret: &str, now: i64) -> InvalidationRequest {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "host",
        "abc1234567.execute-api.portico.test".parse().unwrap(),
    );
    headers.insert("cache-control", "max-age=0".parse().unwrap());
    let uri: http::Uri = "https://abc1234567.execute-api.portico.test/prod/pets?type=dog"
        .parse()
        .unwrap();
    sigv4::sign(
        "GET",
        &uri,
        &mut headers,
        b"",
        ACCESS_KEY,
        secret,
        "us-east-1",
        service,
        now,
    );
    InvalidationRequest {
        method: "GET".into(),
        path: "/prod/pets".into(),
        query: Some("type=dog".into()),
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect(),
        body: vec![],
    }
}

fn now_s() -> i64 {
    crate::time::epoch_seconds(SystemTime::now())
}

#[tokio::test]
async fn invalidation_needs_an_execute_api_signature_of_an_enabled_admin_key() {
    let origin = OriginL2::new(DEFAULT_CAPACITY_BYTES, Some(verifier(true)));
    let edge = PeerIdentity::Edge(101);
    let ask = |request: InvalidationRequest| {
        origin.handle(&edge, false, NodeRequest::AuthorizeInvalidation(request))
    };
    let now = now_s();
    assert_eq!(
        ask(invalidation("execute-api", SECRET, now)).await,
        NodeResponse::Authorized(true)
    );
    // The management API's service name, a wrong secret, a tampered path, an old signature.
    assert_eq!(
        ask(invalidation("apigateway", SECRET, now)).await,
        NodeResponse::Authorized(false)
    );
    assert_eq!(
        ask(invalidation("execute-api", "wrong", now)).await,
        NodeResponse::Authorized(false)
    );
    let mut tampered = invalidation("execute-api", SECRET, now);
    tampered.path = "/prod/cats".into();
    assert_eq!(ask(tampered).await, NodeResponse::Authorized(false));
    assert_eq!(
        ask(invalidation("execute-api", SECRET, now - 3600)).await,
        NodeResponse::Authorized(false)
    );
    let mut unsigned = invalidation("execute-api", SECRET, now);
    unsigned.headers.retain(|(name, _)| name != "authorization");
    assert_eq!(ask(unsigned).await, NodeResponse::Authorized(false));
    let mut garbage = invalidation("execute-api", SECRET, now);
    garbage.headers.push(("bad name".into(), b"x".to_vec()));
    assert_eq!(ask(garbage).await, NodeResponse::Authorized(false));

    // A disabled key, and an origin without `[admin]`, never allow.
    let disabled = OriginL2::new(DEFAULT_CAPACITY_BYTES, Some(verifier(false)));
    let request = NodeRequest::AuthorizeInvalidation(invalidation("execute-api", SECRET, now));
    assert_eq!(
        disabled.handle(&edge, false, request.clone()).await,
        NodeResponse::Authorized(false)
    );
    let without_admin = OriginL2::new(DEFAULT_CAPACITY_BYTES, None);
    assert_eq!(
        without_admin.handle(&edge, false, request).await,
        NodeResponse::Authorized(false)
    );
}

#[tokio::test]
async fn only_edges_and_member_origins_may_use_the_l2() {
    let origin = OriginL2::new(DEFAULT_CAPACITY_BYTES, None);
    // A key per caller, so none of them waits on another's fill.
    let get = |peer: &PeerIdentity| NodeRequest::CacheGet {
        key: peer.to_string().into_bytes(),
    };
    for (peer, member, allowed) in [
        (PeerIdentity::Edge(101), false, true),
        (PeerIdentity::Node(2), true, true),
        (PeerIdentity::Node(9), false, false),
        (PeerIdentity::Admin, false, false),
    ] {
        let answer = origin.handle(&peer, member, get(&peer)).await;
        assert_eq!(
            !matches!(answer, NodeResponse::Error(_)),
            allowed,
            "{peer}: {answer:?}"
        );
    }
    // Keys are bounded, for gets and puts alike.
    let edge = PeerIdentity::Edge(101);
    let long = vec![b'k'; MAX_KEY_BYTES + 1];
    let answer = origin
        .handle(&edge, false, NodeRequest::CacheGet { key: long.clone() })
        .await;
    assert!(matches!(answer, NodeResponse::Error(_)), "{answer:?}");
    let put = NodeRequest::CachePut {
        key: long,
        entry: (*entry(1, now_ms(), 60_000)).clone(),
    };
    let answer = origin.handle(&edge, false, put).await;
    assert!(matches!(answer, NodeResponse::Error(_)), "{answer:?}");
    assert_eq!(origin.cache.weighted_size().await, 0);
}

// --- the edge's seams over QUIC ----------------------------------------------------------------

struct L2Handler(Arc<OriginL2>);

impl Handler for L2Handler {
    fn handle(
        &self,
        peer: PeerIdentity,
        request: NodeRequest,
    ) -> crate::cluster::transport::BoxFuture<'static, Reply> {
        let origin = self.0.clone();
        Box::pin(async move { Reply::Response(origin.handle(&peer, false, request).await) })
    }
}

fn tls(dir: &std::path::Path, id: u64) -> ClusterTls {
    ClusterTls::load(
        &dir.join("ca.pem"),
        &dir.join(format!("node-{id}.pem")),
        &dir.join(format!("node-{id}-key.pem")),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_reaches_its_origin_l2_over_quic() {
    let dir = tempfile::tempdir().unwrap();
    let spec = |node_id, role| NodeCertSpec {
        node_id,
        hosts: vec!["127.0.0.1".into()],
        role,
    };
    init_cluster(
        dir.path(),
        &[spec(1, NodeRole::Origin), spec(101, NodeRole::Edge)],
    )
    .unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let origin_transport = Transport::bind(loopback, &tls(dir.path(), 1)).unwrap();
    let origin = Arc::new(OriginL2::new(DEFAULT_CAPACITY_BYTES, Some(verifier(true))));
    let serving = origin_transport.serve(Arc::new(L2Handler(origin.clone())));
    let edge_transport = Transport::bind(loopback, &tls(dir.path(), 101)).unwrap();
    let current: CurrentOrigin = Arc::new(Mutex::new(None));
    let (tier, authority) = edge_seams(edge_transport.clone(), current.clone());

    // Not following any origin yet: unavailable at once.
    assert!(matches!(
        tier.get(key("k")).await,
        SharedLookup::Unavailable
    ));
    *current.lock().unwrap() = Some(Peer {
        node_id: 1,
        addr: origin_transport.local_addr(),
        region: "a".into(),
    });
    assert!(matches!(tier.get(key("k")).await, SharedLookup::Miss));
    tier.put(key("k"), entry(3, now_ms(), 60_000));
    let hit = crate::cluster::l2::tests::eventually(|| {
        let tier = tier.clone();
        async move {
            match tier.get(key("k")).await {
                SharedLookup::Hit(entry) => Some(entry),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(hit.body, b"xxx");
    assert!(
        authority
            .may_invalidate(invalidation("execute-api", SECRET, now_s()))
            .await
    );
    assert!(
        !authority
            .may_invalidate(invalidation("execute-api", "wrong", now_s()))
            .await
    );

    // The origin goes away: the first call fails, later ones are answered at once.
    serving.abort();
    origin_transport.close().await;
    let started = std::time::Instant::now();
    assert!(matches!(
        tier.get(key("k")).await,
        SharedLookup::Unavailable
    ));
    assert!(started.elapsed() < GET_TIMEOUT + Duration::from_secs(1));
    let started = std::time::Instant::now();
    assert!(matches!(
        tier.get(key("k")).await,
        SharedLookup::Unavailable
    ));
    assert!(
        !authority
            .may_invalidate(invalidation("execute-api", SECRET, now_s()))
            .await
    );
    assert!(started.elapsed() < Duration::from_millis(100));
    edge_transport.close().await;
}

/// Polls `check` every 10 ms for up to [`WAIT`].
async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
