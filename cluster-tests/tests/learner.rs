//! A learner joins, catches up through a snapshot (the log it would need is purged), and is
//! promoted to voter.

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, generation_api, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_joins_by_snapshot_and_becomes_a_voter() -> anyhow::Result<()> {
    let topology = Topology {
        edges_per_region: 0,
        snapshot_every: Some(10),
        ..Topology::three_regions()
    };
    let mut cluster = Cluster::start(&topology).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(cluster.apply(leader, &format!("api-{n}"), &generation_api(n))?);
    }

    let learner = 4;
    let addr = cluster.add_origin(learner, "a")?;
    let output = cluster.ctl(
        leader,
        &["add-learner", "--node-id", "4", "--addr", &addr.to_string()],
    )?;
    assert!(
        output.status.success(),
        "add-learner: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for(WAIT, "the learner to hold every API", || {
        let apis = cluster.apis(learner, true);
        let ids = &ids;
        async move {
            let apis = apis?;
            ids.iter()
                .all(|id| apis.iter().any(|(api, _)| api == id))
                .then_some(())
        }
    })
    .await?;
    let log = cluster.log_of(learner);
    assert!(
        log.contains("installed snapshot"),
        "the learner caught up without a snapshot:\n{log}"
    );

    let output = cluster.ctl(leader, &["set-voters", "--voters", "1,2,3,4"])?;
    assert!(
        output.status.success(),
        "set-voters: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = cluster.status(leader).expect("the leader answers");
    let voters: Vec<u64> = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|member| member["voter"] == true)
        .filter_map(|member| member["node_id"].as_u64())
        .collect();
    assert_eq!(voters, vec![1, 2, 3, 4]);
    // The promoted node takes part in writes.
    cluster.apply(learner, "after-promotion", &generation_api(99))?;

    // And it can be removed again: the group is back to three members, all voters.
    let output = cluster.ctl(leader, &["remove-nodes", "--nodes", "4"])?;
    assert!(
        output.status.success(),
        "remove-nodes: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = cluster.status(leader).expect("the leader answers");
    let members: Vec<(u64, bool)> = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|member| Some((member["node_id"].as_u64()?, member["voter"] == true)))
        .collect();
    assert_eq!(members, vec![(1, true), (2, true), (3, true)]);
    cluster.apply(leader, "after-removal", &generation_api(100))?;
    Ok(())
}
