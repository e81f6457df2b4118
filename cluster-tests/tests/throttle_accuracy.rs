//! Distributed rate limiting: three edges in two regions share one usage plan's rate by
//! demand. With 70/20/10 of the traffic (twice the rate in total), the cluster admits the
//! plan's rate within ±5% over 30 s; one edge alone behaves as one token bucket.

use std::time::{Duration, Instant};

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, wait_for};
use portico_cluster_tests::usage::paced_load;
use serde_json::json;

const RATE: f64 = 40.0;
const BURST: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_share_a_plan_rate_by_demand() -> anyhow::Result<()> {
    let topology = Topology {
        regions: vec!["a".into(), "b".into()],
        origins_per_region: 1,
        edges_per_region: 2,
        admin: true,
        ..Topology::three_regions()
    };
    let mut cluster = Cluster::start(&topology).await?;
    let origin = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let api_id = cluster.keyed_api(origin).await?;
    cluster.key_and_plan(
        origin,
        &api_id,
        json!({"throttle": {"rateLimit": RATE, "burstLimit": BURST}}),
    )?;
    let host = format!("{api_id}.execute-api.portico.test");
    let edges: Vec<(u64, String, std::net::SocketAddr)> = cluster
        .edges()
        .into_iter()
        .map(|id| {
            let node = &cluster.nodes[&id];
            (
                id,
                node.region.clone(),
                node.http_addr.expect("edges serve HTTP"),
            )
        })
        .collect();
    // Every edge has the key and plan: an authorised request passes.
    for (id, _, addr) in &edges {
        wait_for(WAIT, &format!("edge {id} to know the key"), || {
            let host = host.clone();
            let addr = *addr;
            async move {
                portico_cluster_tests::usage::keyed_get(
                    addr,
                    &host,
                    "/prod/item",
                    portico_cluster_tests::usage::KEY_VALUE,
                )
                .await
                .filter(|status| *status == 200)
            }
        })
        .await?;
    }
    // Let the buckets refill after the probes.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // One edge alone: exactly one token bucket (burst, then the rate).
    let (single_id, _, single) = &edges[0];
    let window = Duration::from_secs(10);
    let start = Instant::now();
    let alone = paced_load(
        *single,
        host.clone(),
        RATE * 2.0,
        start,
        Duration::ZERO,
        window,
    )
    .await;
    let expected = BURST as f64 + RATE * window.as_secs_f64();
    let admitted = alone.ok() as f64;
    println!(
        "one edge (node {single_id}), {:.0} req/s offered for {window:?}: admitted {admitted} (a token bucket admits {expected:.0}); {}",
        RATE * 2.0,
        alone.summary()
    );
    assert!(
        (admitted - expected).abs() <= expected * 0.02 + 2.0,
        "a single edge admitted {admitted}, one token bucket {expected}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Three edges in two regions, 70/20/10 of twice the rate.
    let in_a: Vec<_> = edges
        .iter()
        .filter(|(_, region, _)| region == "a")
        .collect();
    let in_b: Vec<_> = edges
        .iter()
        .filter(|(_, region, _)| region == "b")
        .collect();
    let loads = [
        (in_a[0], 0.7 * RATE * 2.0),
        (in_b[0], 0.2 * RATE * 2.0),
        (in_a[1], 0.1 * RATE * 2.0),
    ];
    let warmup = Duration::from_secs(3);
    let measured = Duration::from_secs(30);
    let start = Instant::now();
    let mut runs = Vec::new();
    for ((id, region, addr), rate) in loads {
        let host = host.clone();
        let addr = *addr;
        runs.push((
            *id,
            region.clone(),
            rate,
            tokio::spawn(paced_load(
                addr,
                host,
                rate,
                start,
                warmup,
                warmup + measured,
            )),
        ));
    }
    let mut total = 0;
    for (id, region, rate, run) in runs {
        let tally = run.await?;
        println!(
            "edge {id} (region {region}), {rate:.0} req/s offered: {}",
            tally.summary()
        );
        total += tally.ok();
    }
    let target = RATE * measured.as_secs_f64();
    let error = (total as f64 - target) / target;
    println!(
        "three edges, 70/20/10 of {:.0} req/s against a plan of {RATE} req/s: admitted {total} in {measured:?} (target {target:.0}, error {:+.2}%)",
        RATE * 2.0,
        error * 100.0
    );
    assert!(
        error.abs() <= 0.05,
        "admitted {total}, the plan's rate allows {target} (±5%)"
    );
    Ok(())
}
