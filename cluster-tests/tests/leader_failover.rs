//! kill -9 the leader under a steady stream of writes from two concurrent writers: writes resume
//! after the election, and every acknowledged write is present afterwards on every origin, once.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
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
    let cluster = Arc::new(Mutex::new(cluster));

    // Writes are new APIs named w-<writer>-<n>. A writer retries a failed write with the same
    // name (the apply is idempotent), as a client would; a lost write is a missing name, a
    // doubled one a name present twice.
    let acknowledged: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let acknowledged_after_kill = Arc::new(Mutex::new(0usize));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(90);
    let mut writers = Vec::new();
    for writer in 0..2usize {
        let cluster = cluster.clone();
        let acknowledged = acknowledged.clone();
        let after_kill = acknowledged_after_kill.clone();
        let killed_at = killed_at.clone();
        writers.push(std::thread::spawn(move || {
            let mut n = 0;
            while Instant::now() < stop_at && *after_kill.lock().unwrap() < 10 {
                let name = format!("w-{writer}-{n}");
                let definition = generation_api(n);
                let result = {
                    // Only hold the lock to read what ctl needs, not while it runs.
                    let guard = cluster.lock().unwrap();
                    let args = guard.ctl_apply_args(&name, &definition);
                    drop(guard);
                    args.and_then(|(binary, args)| {
                        Ok(std::process::Command::new(binary).args(args).output()?)
                    })
                };
                match result {
                    Ok(output) if output.status.success() => {
                        acknowledged.lock().unwrap().insert(name);
                        if killed_at.lock().unwrap().is_some() {
                            *after_kill.lock().unwrap() += 1;
                        }
                        n += 1;
                    }
                    _ => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.lock().unwrap().kill(leader);
    *killed_at.lock().unwrap() = Some(Instant::now());
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let after_kill = *acknowledged_after_kill.lock().unwrap();
    let resumed_in = killed_at.lock().unwrap().map(|at| at.elapsed());
    println!(
        "{} writes acknowledged, {after_kill} of them after killing leader {leader} ({resumed_in:?} ago)",
        acknowledged.lock().unwrap().len()
    );
    assert!(after_kill >= 10, "writes did not resume after the kill");

    let mut cluster = Arc::try_unwrap(cluster)
        .map_err(|_| anyhow::anyhow!("writers still hold the cluster"))?
        .into_inner()
        .unwrap();
    cluster.spawn(leader)?;
    let acknowledged = acknowledged.lock().unwrap().clone();
    for origin in cluster.origins() {
        let names = wait_for(
            WAIT,
            &format!("origin {origin} to hold every acknowledged write"),
            || {
                let apis = cluster.apis(origin, true);
                let acknowledged = &acknowledged;
                async move {
                    let names: Vec<String> = apis?.into_iter().map(|(_, name)| name).collect();
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
