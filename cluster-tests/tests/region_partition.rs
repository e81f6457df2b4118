//! Cut one region off: the other two keep accepting writes, the cut-off origin refuses writes
//! with a clear error, its edges keep serving throughout, and after healing it converges.

use std::time::Duration;

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, generation_api, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_region_serves_and_converges() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(&Topology::three_regions()).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let api_id = cluster.apply(leader, "gen", &generation_api(1))?;
    let cut_origin = 3;
    let cut_edges: Vec<u64> = cluster
        .edges()
        .into_iter()
        .filter(|edge| cluster.nodes[edge].region == "c")
        .collect();
    for edge in &cut_edges {
        wait_for(WAIT, "the edges of region c at generation 1", || {
            let cluster = &cluster;
            let api_id = &api_id;
            async move { (cluster.edge_generation(*edge, api_id).await == Some(1)).then_some(()) }
        })
        .await?;
    }

    cluster.cut_region("c", true);
    // The majority side elects a leader among origins 1 and 2 (if 3 led) and takes writes.
    for generation in 2..=4 {
        let written = wait_for(WAIT, "a write on the majority side", || {
            let result = cluster
                .apply(1, "gen", &generation_api(generation))
                .or_else(|_| cluster.apply(2, "gen", &generation_api(generation)));
            async move { result.ok() }
        })
        .await?;
        assert_eq!(written, api_id);
        // Region c's edges keep answering, on the state they had.
        for edge in &cut_edges {
            assert_eq!(
                cluster.edge_generation(*edge, &api_id).await,
                Some(1),
                "edge {edge}"
            );
        }
    }
    let refused = cluster
        .apply(cut_origin, "gen", &generation_api(99))
        .expect_err("the cut-off origin must refuse writes");
    let message = refused.to_string();
    println!("the cut-off origin says: {message}");
    // A follower cannot reach the leader (or knows none: it is holding elections alone); a
    // deposed leader cannot commit. Whichever it is, the origin says why.
    assert!(
        message.contains("may be cut off from")
            || message.contains("may not reach a majority of the voters"),
        "unclear refusal: {message}"
    );

    cluster.cut_region("c", false);
    for edge in &cut_edges {
        wait_for(WAIT, &format!("edge {edge} to converge after healing"), || {
            let cluster = &cluster;
            let api_id = &api_id;
            async move { (cluster.edge_generation(*edge, api_id).await == Some(4)).then_some(()) }
        })
        .await?;
    }
    let leader_index = wait_for(WAIT, "a leader after healing", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    wait_for(Duration::from_secs(30), "origin 3 to catch up", || {
        let leader_status = cluster.status(leader_index);
        let cut_status = cluster.status(cut_origin);
        async move {
            let leader_applied = leader_status?["applied_index"].as_u64()?;
            let cut_applied = cut_status?["applied_index"].as_u64()?;
            (cut_applied >= leader_applied).then_some(())
        }
    })
    .await?;
    Ok(())
}
