//! A real origin's regional cache (L2), spoken to with the edges' certificates: concurrent
//! misses of one key from two edges make one filler (the other edge waits for its put rather
//! than calling the backend), and an invalidation signed for `execute-api` with the admin key
//! `cluster init` issued is allowed by the origin, which opens the key with its sealing key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, wait_for};

fn edge_tls(cluster: &Cluster, edge: u64) -> anyhow::Result<portico::cluster::certs::ClusterTls> {
    portico::cluster::certs::ClusterTls::load(
        &cluster.certs.join("ca.pem"),
        &cluster.certs.join(format!("node-{edge}.pem")),
        &cluster.certs.join(format!("node-{edge}-key.pem")),
    )
}

/// A GET with `Cache-Control: max-age=0` signed for `execute-api` with `(key id, secret)`.
fn invalidation(
    (access_key_id, secret): (&str, &str),
) -> portico_proto::cache::InvalidationRequest {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "host",
        http::HeaderValue::from_static("abc1234567.execute-api.portico.test"),
    );
    headers.insert("cache-control", http::HeaderValue::from_static("max-age=0"));
    let uri = http::Uri::from_static("https://abc1234567.execute-api.portico.test/prod/items");
    let now = portico::time::epoch_seconds(std::time::SystemTime::now());
    portico::admin::sigv4::sign(
        "GET",
        &uri,
        &mut headers,
        b"",
        access_key_id,
        secret,
        "us-east-1",
        "execute-api",
        now,
    );
    portico_proto::cache::InvalidationRequest {
        method: "GET".into(),
        path: "/prod/items".into(),
        query: None,
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect(),
        body: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_share_their_region_cache_on_the_origin() -> anyhow::Result<()> {
    use portico::cache::shared::SharedLookup;
    use portico::cluster::config::Peer;
    use portico::cluster::transport::Transport;

    let topology = Topology {
        regions: vec!["a".into()],
        origins_per_region: 1,
        edges_per_region: 2,
        delay: Duration::from_millis(0),
        snapshot_every: None,
        admin: true,
    };
    let mut cluster = Cluster::start(&topology).await?;
    let origin = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    // The management key is in the replicated state once the API accepts it.
    wait_for(WAIT, "the first management key", || {
        let answer = cluster.admin_call(origin, "GET", "/restapis", None);
        async move { answer.ok().filter(|(status, _)| *status == 200) }
    })
    .await?;
    let current = Peer {
        node_id: origin,
        addr: cluster.nodes[&origin].cluster_addr,
        region: "a".into(),
    };
    let mut seams = Vec::new();
    let mut transports = Vec::new();
    for edge in cluster.edges() {
        let transport = Transport::bind("127.0.0.1:0".parse()?, &edge_tls(&cluster, edge)?)?;
        let following = Arc::new(std::sync::Mutex::new(Some(current.clone())));
        seams.push(portico::cluster::l2::edge_seams(
            transport.clone(),
            following,
        ));
        transports.push(transport);
    }
    let (first, first_authority) = seams[0].clone();
    let (second, _) = seams[1].clone();

    // The first edge misses and becomes the key's filler; the second edge's miss of the same
    // key waits on the origin for the first edge's put instead of calling the backend.
    let key: Arc<[u8]> = Arc::from(&b"items/prod/1/GET/items"[..]);
    let asked = Instant::now();
    let filler = first.get(key.clone()).await;
    assert!(matches!(filler, SharedLookup::Miss), "{filler:?}");
    let waiting = tokio::spawn({
        let second = second.clone();
        let key = key.clone();
        async move { second.get(key).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the second edge did not wait for the fill"
    );
    let stored_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    first.put(
        key.clone(),
        Arc::new(portico_proto::cache::CachedResponse {
            status: 200,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: b"{\"call\": 1}".to_vec(),
            stored_at_ms,
            ttl_ms: 300_000,
        }),
    );
    let waited = tokio::time::timeout(Duration::from_secs(15), waiting).await??;
    match waited {
        SharedLookup::Hit(entry) => assert_eq!(entry.body, b"{\"call\": 1}"),
        other => anyhow::bail!("the waiting edge got {other:?}, not the filler's entry"),
    }
    println!(
        "L2 single flight across two edges: the waiter got the filler's entry {:?} after the first ask (the put came after 500 ms)",
        asked.elapsed()
    );

    // Invalidation: the admin key from `cluster init` may, a wrong secret may not.
    let credentials = std::fs::read_to_string(cluster.certs.join("admin-credentials"))?;
    let value = |name: &str| {
        credentials.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let id = value("aws_access_key_id").expect("a key id");
    let secret = value("aws_secret_access_key").expect("a secret");
    assert!(
        first_authority
            .may_invalidate(invalidation((&id, &secret)))
            .await
    );
    assert!(
        !first_authority
            .may_invalidate(invalidation((&id, "not-the-secret")))
            .await
    );
    for transport in transports {
        transport.close().await;
    }
    Ok(())
}
