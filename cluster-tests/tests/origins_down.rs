//! Kill every origin: every edge keeps answering every request on the last config; an edge
//! restarted while the origins are still down serves from its disk snapshot.

use std::time::Duration;

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, generation_api, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_outlive_the_control_plane() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(&Topology::three_regions()).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let api_id = cluster.apply(leader, "gen", &generation_api(7))?;
    let edges = cluster.edges();
    for edge in &edges {
        wait_for(WAIT, &format!("edge {edge} at generation 7"), || {
            let cluster = &cluster;
            let api_id = &api_id;
            async move { (cluster.edge_generation(*edge, api_id).await == Some(7)).then_some(()) }
        })
        .await?;
    }

    for origin in cluster.origins() {
        cluster.kill(origin);
    }
    // Every request to every edge is answered, for a while, with the last config.
    let mut answered = 0;
    for round in 0..20 {
        for edge in &edges {
            let generation = cluster.edge_generation(*edge, &api_id).await;
            assert_eq!(generation, Some(7), "edge {edge}, round {round}");
            answered += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{answered} of {answered} requests answered with every origin down");

    // A restarted edge serves from its disk snapshot at once; no origin can answer it.
    let edge = edges[0];
    cluster.restart(edge)?;
    wait_for(
        Duration::from_secs(20),
        "the restarted edge to serve its snapshot",
        || {
            let cluster = &cluster;
            let api_id = &api_id;
            async move { (cluster.edge_generation(edge, api_id).await == Some(7)).then_some(()) }
        },
    )
    .await?;
    Ok(())
}
