//! Disabling or deleting an API key takes effect on every edge of every region within a
//! second of the management API's answer.

use std::time::{Duration, Instant};

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, wait_for};
use portico_cluster_tests::usage::{KEY_VALUE, keyed_get};
use serde_json::json;

/// Polls every edge until each answers `want`; returns how long the slowest took.
async fn every_edge_answers(
    cluster: &Cluster,
    host: &str,
    want: u16,
    within: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut pending: Vec<u64> = cluster.edges();
    let mut slowest = Duration::ZERO;
    while !pending.is_empty() {
        anyhow::ensure!(
            started.elapsed() < within,
            "edges {pending:?} still do not answer {want} after {within:?}"
        );
        let mut still = Vec::new();
        for edge in pending {
            let addr = cluster.nodes[&edge].http_addr.expect("edges serve HTTP");
            if keyed_get(addr, host, "/prod/item", KEY_VALUE).await == Some(want) {
                slowest = slowest.max(started.elapsed());
            } else {
                still.push(edge);
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And it sticks: every edge keeps answering the same for a while.
    for _ in 0..5 {
        for edge in cluster.edges() {
            let addr = cluster.nodes[&edge].http_addr.expect("edges serve HTTP");
            let answer = keyed_get(addr, host, "/prod/item", KEY_VALUE).await;
            anyhow::ensure!(
                answer == Some(want),
                "edge {edge} answered {answer:?} after answering {want}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_and_deleted_keys_stop_working_everywhere_within_a_second() -> anyhow::Result<()> {
    let topology = Topology {
        admin: true,
        ..Topology::three_regions()
    };
    let mut cluster = Cluster::start(&topology).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    // Changes go through a follower's management API (forwarded to the leader).
    let follower = cluster
        .origins()
        .into_iter()
        .find(|id| *id != leader)
        .expect("three origins");
    let api_id = cluster.keyed_api(follower).await?;
    let (key_id, _) = cluster.key_and_plan(follower, &api_id, json!({}))?;
    let host = format!("{api_id}.execute-api.portico.test");
    every_edge_answers(&cluster, &host, 200, WAIT).await?;

    cluster.admin_ok(
        follower,
        "PATCH",
        &format!("/apikeys/{key_id}"),
        json!({"patchOperations": [{"op": "replace", "path": "/enabled", "value": "false"}]}),
    )?;
    let disabled = every_edge_answers(&cluster, &host, 403, Duration::from_secs(1)).await?;
    println!(
        "key disabled: all {} edges refuse it {disabled:?} after the management API answered",
        cluster.edges().len()
    );

    cluster.admin_ok(
        follower,
        "PATCH",
        &format!("/apikeys/{key_id}"),
        json!({"patchOperations": [{"op": "replace", "path": "/enabled", "value": "true"}]}),
    )?;
    every_edge_answers(&cluster, &host, 200, Duration::from_secs(5)).await?;

    let (status, _) =
        cluster.admin_call(follower, "DELETE", &format!("/apikeys/{key_id}"), None)?;
    assert_eq!(status, 202);
    let deleted = every_edge_answers(&cluster, &host, 403, Duration::from_secs(1)).await?;
    println!(
        "key deleted: all {} edges refuse it {deleted:?} after the management API answered",
        cluster.edges().len()
    );
    Ok(())
}
