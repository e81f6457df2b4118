//! An edge whose region's origin is gone fails over to another region's origin (through the
//! link emulator) and keeps receiving updates.

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, generation_api, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_fail_over_to_another_regions_origin() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(&Topology::three_regions()).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let api_id = cluster.apply(leader, "gen", &generation_api(1))?;

    // Region a loses its origin; the others still have a quorum.
    let lost = 1;
    cluster.kill(lost);
    let region_a_edges: Vec<u64> = cluster
        .edges()
        .into_iter()
        .filter(|edge| cluster.nodes[edge].region == "a")
        .collect();
    let writer = if leader == lost { 2 } else { leader };
    wait_for(WAIT, "a write after losing origin 1", || {
        let result = cluster
            .apply(writer, "gen", &generation_api(2))
            .or_else(|_| cluster.apply(3, "gen", &generation_api(2)));
        async move { result.ok() }
    })
    .await?;
    for edge in &region_a_edges {
        wait_for(WAIT, &format!("edge {edge} to receive generation 2 from another region"), || {
            let cluster = &cluster;
            let api_id = &api_id;
            async move { (cluster.edge_generation(*edge, api_id).await == Some(2)).then_some(()) }
        })
        .await?;
    }
    let log = cluster.log_of(region_a_edges[0]);
    assert!(
        log.contains("following origin") && (log.contains("origin=2") || log.contains("origin=3")),
        "the edge did not fail over:\n{log}"
    );

    // The region's origin comes back: its edges fail back to it.
    cluster.spawn(lost)?;
    for edge in &region_a_edges {
        wait_for(
            WAIT,
            &format!("edge {edge} to fail back to origin {lost}"),
            || {
                let log = cluster.log_of(*edge);
                async move {
                    let failed_back = log.contains("failing back");
                    let last_follow = log
                        .lines()
                        .rev()
                        .find(|line| line.contains("following origin"))?;
                    (failed_back && last_follow.contains("origin=1")).then_some(())
                }
            },
        )
        .await?;
    }
    Ok(())
}
