//! Exact quotas under failure: four edges in three regions spend one key's quota while an edge
//! is killed (kill -9) and the leader's region is cut off (so the leader changes). At no point
//! do the edges together admit more than the quota; after the partition heals and the load
//! goes on until every edge refuses, the shortfall is bounded by the units of the leases that
//! expired (the killed edge's and the cut-off region's).

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, wait_for};
use portico_cluster_tests::usage::{KEY_VALUE, Tally, keyed_get, paced_load};
use serde_json::json;

const LIMIT: u64 = 900;
const RATE: f64 = 20.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_hold_through_kills_and_partitions() -> anyhow::Result<()> {
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
    let api_id = cluster.keyed_api(leader).await?;
    let (key_id, plan_id) = cluster.key_and_plan(
        leader,
        &api_id,
        json!({"quota": {"limit": LIMIT, "period": "DAY"}}),
    )?;
    let host = format!("{api_id}.execute-api.portico.test");
    let leader_region = cluster.nodes[&leader].region.clone();
    let edge_in = |region: &str, nth: usize| {
        cluster
            .edges()
            .into_iter()
            .filter(|id| cluster.nodes[id].region == region)
            .nth(nth)
            .expect("two edges per region")
    };
    let other_regions: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|region| region.to_string())
        .filter(|region| *region != leader_region)
        .collect();
    let cut_off = edge_in(&leader_region, 0);
    let victim = edge_in(&other_regions[0], 0);
    let loaded = [
        cut_off,
        victim,
        edge_in(&other_regions[0], 1),
        edge_in(&other_regions[1], 0),
    ];
    for edge in loaded {
        let addr = cluster.nodes[&edge].http_addr.expect("edges serve HTTP");
        // 403 until the key and plan reach the edge; the probe spends one unit when it passes.
        wait_for(WAIT, &format!("edge {edge} to know the key"), || {
            let host = host.clone();
            async move {
                keyed_get(addr, &host, "/prod/item", KEY_VALUE)
                    .await
                    .filter(|status| *status == 200)
            }
        })
        .await?;
    }
    let probes = loaded.len() as u64;

    // Phase 1: load on four edges; kill one, cut the leader's region off, heal.
    let start = Instant::now();
    let phase = Duration::from_secs(30);
    let mut runs = Vec::new();
    for edge in loaded {
        let addr = cluster.nodes[&edge].http_addr.expect("edges serve HTTP");
        runs.push((
            edge,
            tokio::spawn(paced_load(
                addr,
                host.clone(),
                RATE,
                start,
                Duration::ZERO,
                phase,
            )),
        ));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.kill(victim);
    println!("t={:?}: killed edge {victim} (kill -9)", start.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.cut_region(&leader_region, true);
    println!(
        "t={:?}: cut region {leader_region} off (the leader, origin {leader}, and edge {cut_off})",
        start.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(14)).await;
    cluster.cut_region(&leader_region, false);
    println!("t={:?}: healed", start.elapsed());
    let mut admitted = probes;
    for (edge, run) in runs {
        let tally: Arc<Tally> = run.await?;
        println!("edge {edge}, phase 1: {}", tally.summary());
        admitted += tally.ok();
    }
    assert!(
        admitted <= LIMIT,
        "admitted {admitted} > quota {LIMIT} during the faults"
    );

    // Phase 2: the live edges go on until each refuses for two seconds running.
    let live: Vec<u64> = loaded.into_iter().filter(|edge| *edge != victim).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut refusing_since: Vec<Option<Instant>> = vec![None; live.len()];
    loop {
        for (index, edge) in live.iter().enumerate() {
            let addr = cluster.nodes[edge].http_addr.expect("edges serve HTTP");
            match keyed_get(addr, &host, "/prod/item", KEY_VALUE).await {
                Some(200) => {
                    admitted += 1;
                    refusing_since[index] = None;
                }
                Some(429) => {
                    refusing_since[index].get_or_insert_with(Instant::now);
                }
                other => {
                    refusing_since[index] = None;
                    println!("edge {edge}: {other:?}");
                }
            }
        }
        assert!(admitted <= LIMIT, "admitted {admitted} > quota {LIMIT}");
        if refusing_since
            .iter()
            .all(|since| since.is_some_and(|since| since.elapsed() > Duration::from_secs(2)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edges did not all refuse within 90 s (admitted {admitted})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // What the expired leases held back, as logged by whichever origin committed their expiry
    // (count each lease once).
    let mut expired: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for origin in cluster.origins() {
        for line in cluster.log_of(origin).lines() {
            if !line.contains("expired a quota lease") {
                continue;
            }
            let field = |name: &str| {
                let at = line.find(name)? + name.len();
                line[at..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            };
            if let (Some(lease), Some(unreported)) = (field(" lease="), field("unreported=")) {
                let held = expired.entry(lease).or_default();
                *held = (*held).max(unreported);
            }
        }
    }
    let forfeited: u64 = expired.values().sum();
    let shortfall = LIMIT - admitted;
    let today = {
        let days = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            / 86_400;
        portico_proto::quota::format_day(days as i64)
    };
    let (_, usage) = cluster.admin_call(
        other_regions_origin(&cluster, &leader_region),
        "GET",
        &format!("/usageplans/{plan_id}/usage?endDate={today}&startDate={today}"),
        None,
    )?;
    println!(
        "quota {LIMIT}: admitted {admitted}, shortfall {shortfall}, {} leases expired holding {forfeited} units; GetUsage: {usage}",
        expired.len()
    );
    assert!(
        shortfall <= forfeited,
        "shortfall {shortfall} exceeds what expired leases held ({forfeited})"
    );
    let used = usage["values"][&key_id][0][0].as_u64().unwrap_or(0);
    assert!(
        used >= admitted && used <= LIMIT,
        "GetUsage says {used} used, {admitted} were admitted"
    );
    Ok(())
}

fn other_regions_origin(cluster: &Cluster, region: &str) -> u64 {
    cluster
        .origins()
        .into_iter()
        .find(|id| cluster.nodes[id].region != region)
        .expect("three origins")
}
