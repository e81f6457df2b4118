//! A config write reaches all six edges of a three-region cluster; prints the propagation time
//! (from the write's acknowledgement to the last edge serving it) p50/p99 over 20 writes.

use std::time::{Duration, Instant};

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, generation_api, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reaches_every_edge() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(&Topology::three_regions()).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let api_id = cluster.apply(leader, "gen", &generation_api(0))?;
    let edges = cluster.edges();

    // End to end: from issuing the write (ctl starts: import, Raft commit across regions,
    // ctl's read-back of the API id) to the last edge serving it; and from the moment ctl
    // returned (by then most edges have it already).
    let mut end_to_end = Vec::new();
    let mut after_ack = Vec::new();
    for generation in 1..=20u64 {
        let issued = Instant::now();
        cluster.apply(leader, "gen", &generation_api(generation))?;
        let acknowledged = Instant::now();
        for edge in &edges {
            wait_for(
                WAIT,
                &format!("edge {edge} at generation {generation}"),
                || {
                    let cluster = &cluster;
                    let api_id = &api_id;
                    async move {
                        (cluster.edge_generation(*edge, api_id).await == Some(generation))
                            .then_some(())
                    }
                },
            )
            .await?;
        }
        end_to_end.push(issued.elapsed());
        after_ack.push(acknowledged.elapsed());
    }
    let percentiles = |samples: &mut Vec<Duration>| {
        samples.sort();
        let p50 = samples[samples.len() / 2];
        let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
        (p50, p99)
    };
    let (p50, p99) = percentiles(&mut end_to_end);
    let (ack_p50, ack_p99) = percentiles(&mut after_ack);
    println!(
        "propagation to all {} edges over 20 writes (50 ms one-way between regions): \
         from the write issued p50 {p50:?}, p99 {p99:?}; after ctl returned p50 {ack_p50:?}, p99 {ack_p99:?}",
        edges.len()
    );
    assert!(p99 < Duration::from_secs(10));
    Ok(())
}
