//! kill -9 the leader under a steady stream of writes: writes resume after the election, and
//! every acknowledged write is present afterwards on every origin, once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, generation_api, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_the_loss_of_the_leader() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(&Topology::three_regions()).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;

    // Writes are new APIs named w-N: a lost write is a missing name, a doubled one a name
    // that appears twice.
    let mut acknowledged = BTreeSet::new();
    let mut attempted = 0u64;
    let writer_origins: Vec<u64> = cluster
        .origins()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let mut write = |cluster: &Cluster, n: u64| {
        let origin = writer_origins[(n as usize) % writer_origins.len()];
        match cluster.apply(origin, &format!("w-{n}"), &generation_api(n)) {
            Ok(_) => {
                acknowledged.insert(format!("w-{n}"));
                true
            }
            Err(error) => {
                eprintln!("write w-{n} not acknowledged: {error}");
                false
            }
        }
    };
    for _ in 0..5 {
        write(&cluster, attempted);
        attempted += 1;
    }

    cluster.kill(leader);
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(60);
    let mut after_kill = 0;
    while after_kill < 5 {
        assert!(
            Instant::now() < deadline,
            "writes did not resume within 60 s of the kill"
        );
        if write(&cluster, attempted) {
            after_kill += 1;
        }
        attempted += 1;
    }
    println!(
        "writes resumed; {} acknowledged of {} attempted, {:?} after the kill",
        acknowledged.len(),
        attempted,
        killed_at.elapsed()
    );

    cluster.spawn(leader)?;
    for origin in cluster.origins() {
        let names = wait_for(
            WAIT,
            &format!("origin {origin} to hold every acknowledged write"),
            || {
                let apis = cluster.apis(origin, true);
                let acknowledged = &acknowledged;
                async move {
                    let apis = apis?;
                    let names: Vec<String> = apis.into_iter().map(|(_, name)| name).collect();
                    acknowledged
                        .iter()
                        .all(|name| names.contains(name))
                        .then_some(names)
                }
            },
        )
        .await?;
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "origin {origin} holds a write twice: {names:?}"
        );
    }
    Ok(())
}
