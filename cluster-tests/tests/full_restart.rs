//! Stop and restart the whole cluster: the state is intact and a leader is elected again.

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, generation_api, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cluster_restarts_with_its_state() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(&Topology::three_regions()).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(cluster.apply(leader, &format!("api-{n}"), &generation_api(n))?);
    }
    let applied_before = cluster
        .status(leader)
        .and_then(|status| status["applied_index"].as_u64())
        .expect("the leader reports its applied index");
    assert!(applied_before >= 5);

    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    for id in &all {
        cluster.kill(*id);
    }
    for id in &all {
        cluster.spawn(*id)?;
    }

    let leader = wait_for(WAIT, "a leader after the restart", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let status = cluster.status(leader).expect("the leader answers");
    assert!(status["applied_index"].as_u64().unwrap_or(0) >= applied_before);
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
    for origin in cluster.origins() {
        let apis = wait_for(WAIT, &format!("origin {origin} to hold its state"), || {
            let apis = cluster.apis(origin, true);
            let ids = &ids;
            async move {
                let apis = apis?;
                ids.iter()
                    .all(|id| apis.iter().any(|(api, _)| api == id))
                    .then_some(apis)
            }
        })
        .await?;
        assert_eq!(apis.len(), 5);
    }
    // The edges follow the origins again: a write after the restart reaches every one.
    cluster.apply(leader, "api-4", &generation_api(44))?;
    for edge in cluster.edges() {
        wait_for(
            WAIT,
            &format!("edge {edge} following after the restart"),
            || {
                let cluster = &cluster;
                let id = ids[4].clone();
                async move { (cluster.edge_generation(edge, &id).await == Some(44)).then_some(()) }
            },
        )
        .await?;
    }
    Ok(())
}
