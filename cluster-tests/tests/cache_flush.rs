//! FlushStageCache through the management API reaches every edge of a two-region cluster:
//! the stage's cache generation (part of every cache key) is bumped by one Raft command, and
//! each edge has applied, compiled and swapped in the new generation well within a second.
//! Prints the flush propagation time per edge.
//!
//! The stage has caching on and its method proxies a counting backend; after the flush, the
//! next request on every edge is checked to reach the backend.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, http_get, wait_for};
use serde_json::json;

/// An HTTP/1.1 backend on loopback answering every request with `{"call": N}`, N counting
/// from 1.
const FLUSHES: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_reaches_every_edge_within_a_second() -> anyhow::Result<()> {
    let topology = Topology {
        regions: vec!["a".into(), "b".into()],
        origins_per_region: 1,
        edges_per_region: 1,
        delay: Duration::from_millis(50),
        snapshot_every: None,
        admin: true,
    };
    let mut cluster = Cluster::start(&topology).await?;
    let (backend, calls) = portico_cluster_tests::backend::counting_backend(Duration::ZERO).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    // Through the origin of the other region: a follower forwards the writes to the leader.
    let origin = cluster
        .origins()
        .into_iter()
        .find(|id| *id != leader)
        .expect("two origins");

    let (_, api) = wait_for(WAIT, "the management API to accept the first key", || {
        let answer = cluster.admin_call(origin, "POST", "/restapis", Some(r#"{"name": "items"}"#));
        async move { answer.ok().filter(|(status, _)| *status == 201) }
    })
    .await?;
    let api_id = api["id"].as_str().expect("an id").to_string();
    let root = api["rootResourceId"].as_str().expect("a root").to_string();
    let call = |method: &str, path: String, body: Option<serde_json::Value>| {
        let body = body.map(|body| body.to_string());
        let (status, value) = cluster
            .admin_call(origin, method, &path, body.as_deref())
            .expect("curl runs");
        assert!(status < 300, "{method} {path}: {status} {value}");
        (status, value)
    };
    let (_, resource) = call(
        "POST",
        format!("/restapis/{api_id}/resources/{root}"),
        Some(json!({"pathPart": "items"})),
    );
    let resource_id = resource["id"].as_str().expect("resource id").to_string();
    let method = format!("/restapis/{api_id}/resources/{resource_id}/methods/GET");
    call(
        "PUT",
        method.clone(),
        Some(json!({"authorizationType": "NONE"})),
    );
    call(
        "PUT",
        format!("{method}/integration"),
        Some(json!({
            "type": "HTTP_PROXY",
            "httpMethod": "GET",
            "uri": format!("http://{backend}/items"),
        })),
    );
    call(
        "POST",
        format!("/restapis/{api_id}/deployments"),
        Some(json!({"stageName": "prod"})),
    );
    // Caching on for the stage, every method, five minutes.
    call(
        "PATCH",
        format!("/restapis/{api_id}/stages/prod"),
        Some(json!({"patchOperations": [
            {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
            {"op": "replace", "path": "/cacheClusterSize", "value": "0.5"},
            {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
            {"op": "replace", "path": "/*/*/caching/ttlInSeconds", "value": "300"},
        ]})),
    );

    let host = format!("{api_id}.execute-api.portico.test");
    let edges = cluster.edges();
    let edge_addr = |edge: u64| cluster.nodes[&edge].http_addr.expect("edges serve HTTP");
    for edge in &edges {
        let addr = edge_addr(*edge);
        wait_for(WAIT, &format!("edge {edge} to serve the backend"), || {
            let host = host.clone();
            async move {
                let (status, body) = http_get(addr, &host, "/prod/items").await?;
                (status == 200 && body.starts_with("{\"call\": ")).then_some(())
            }
        })
        .await?;
        assert_eq!(
            cluster.edge_cache_generation(*edge, &api_id, "prod"),
            Some(0)
        );
    }

    // Flush, then watch every edge's served state for the new generation; then the next
    // request on every edge must go to the backend. Ten rounds, for a spread of timings.
    // Both edges serve a cached response: a second request does not reach the backend.
    for edge in &edges {
        let before = calls.load(Ordering::SeqCst);
        let (status, body) = http_get(edge_addr(*edge), &host, "/prod/items")
            .await
            .expect("the edge answers");
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            before,
            "edge {edge} did not serve from its cache: {body}"
        );
    }
    // For scale: a signed read through the same origin (curl start, TLS, SigV4, a
    // linearizable read on the follower) costs this much of the time from "issued".
    let read_started = Instant::now();
    call("GET", format!("/restapis/{api_id}/stages/prod"), None);
    let read_took = read_started.elapsed();
    let mut samples: BTreeMap<u64, Vec<(Duration, Duration)>> = BTreeMap::new();
    for generation in 1..=FLUSHES {
        let issued = Instant::now();
        let (status, _) = call(
            "DELETE",
            format!("/restapis/{api_id}/stages/prod/cache/data"),
            None,
        );
        assert_eq!(status, 202);
        let acknowledged = Instant::now();
        let mut reached: BTreeMap<u64, (Duration, Duration)> = BTreeMap::new();
        let deadline = acknowledged + Duration::from_secs(5);
        while reached.len() < edges.len() && Instant::now() < deadline {
            for edge in &edges {
                if !reached.contains_key(edge)
                    && cluster.edge_cache_generation(*edge, &api_id, "prod") == Some(generation)
                {
                    reached.insert(*edge, (acknowledged.elapsed(), issued.elapsed()));
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for edge in &edges {
            let Some((from_ack, from_issue)) = reached.get(edge).copied() else {
                anyhow::bail!(
                    "edge {edge} did not apply flush {generation} within 5 s:\n{}",
                    cluster.log_of(*edge)
                );
            };
            assert!(
                from_ack < Duration::from_secs(1),
                "edge {edge} took {from_ack:?} after the 202 to apply flush {generation}"
            );
            samples
                .entry(*edge)
                .or_default()
                .push((from_ack, from_issue));
            let before = calls.load(Ordering::SeqCst);
            let (status, body) = http_get(edge_addr(*edge), &host, "/prod/items")
                .await
                .expect("the edge answers");
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                calls.load(Ordering::SeqCst),
                before + 1,
                "edge {edge} served a flushed entry: {body}"
            );
            // ... and the one after it is a hit on the new generation.
            let (status, again) = http_get(edge_addr(*edge), &host, "/prod/items")
                .await
                .expect("the edge answers");
            assert_eq!(
                (status, &again),
                (200, &body),
                "edge {edge} after flush {generation}"
            );
            assert_eq!(calls.load(Ordering::SeqCst), before + 1);
        }
    }
    let via = &cluster.nodes[&origin].region;
    for (edge, samples) in &mut samples {
        let region = &cluster.nodes[edge].region;
        let mut from_ack: Vec<Duration> = samples.iter().map(|sample| sample.0).collect();
        let mut from_issue: Vec<Duration> = samples.iter().map(|sample| sample.1).collect();
        from_ack.sort();
        from_issue.sort();
        let median = |sorted: &[Duration]| sorted[sorted.len() / 2];
        let max = |sorted: &[Duration]| sorted[sorted.len() - 1];
        println!(
            "flush propagation to edge {edge} (region {region}; 50 ms one way between regions; \
             {FLUSHES} flushes through the follower origin of region {via}): after the request was issued \
             p50 {:?}, max {:?}; after the 202 p50 {:?}, max {:?}",
            median(&from_issue),
            max(&from_issue),
            median(&from_ack),
            max(&from_ack),
        );
    }
    println!("for scale, one signed GetStage through the same origin took {read_took:?}");
    let (status, error) = cluster.admin_call(
        origin,
        "DELETE",
        &format!("/restapis/{api_id}/stages/nope/cache/data"),
        None,
    )?;
    assert_eq!(status, 404, "{error}");
    Ok(())
}
