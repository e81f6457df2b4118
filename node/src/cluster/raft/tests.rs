//! In-process cluster tests: nodes talk through a router that calls `handle_rpc` directly and
//! can cut a node off (a partition), so the whole encode → transport → decode path runs with
//! no sockets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::testing::{StoreBuilder, Suite};
use openraft::{BasicNode, Raft, RaftMetrics};
use portico_proto::cluster::{Command, CommandOutcome, RaftRpc, apply};
use portico_proto::model::*;
use tempfile::TempDir;
use tokio::sync::broadcast::error::TryRecvError;

use super::types::StorageError;
use super::*;

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// openraft's storage suite

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new().map_err(types::write_error)?;
        let db = redb::Database::create(dir.path().join(DB_FILE)).map_err(types::write_error)?;
        let db = Arc::new(db);
        Ok((dir, LogStore::new(db.clone())?, StateMachineStore::new(db)?))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(Builder)
}

// ---------------------------------------------------------------------------------------------
// The in-process router

#[derive(Default)]
struct Router {
    nodes: Mutex<HashMap<u64, Raft<TypeConfig>>>,
    isolated: Mutex<HashSet<u64>>,
}

impl Router {
    fn cut(&self, from: u64, to: u64) -> bool {
        let isolated = self.isolated.lock().expect("lock");
        isolated.contains(&from) || isolated.contains(&to)
    }

    fn isolate(&self, id: u64) {
        self.isolated.lock().expect("lock").insert(id);
    }

    fn heal(&self, id: u64) {
        self.isolated.lock().expect("lock").remove(&id);
    }
}

struct TestTransport {
    from: u64,
    router: Arc<Router>,
}

impl RaftTransport for TestTransport {
    fn send(
        &self,
        target: u64,
        _addr: &str,
        rpc: RaftRpc,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, RaftTransportError>> + Send>> {
        let router = self.router.clone();
        let from = self.from;
        Box::pin(async move {
            let unreachable = || RaftTransportError::Unreachable(format!("{from} -/-> {target}"));
            if router.cut(from, target) {
                return Err(unreachable());
            }
            let raft = router
                .nodes
                .lock()
                .expect("lock")
                .get(&target)
                .cloned()
                .ok_or_else(unreachable)?;
            let response = tokio::time::timeout(timeout, handle_rpc(&raft, rpc, &payload))
                .await
                .map_err(|_| RaftTransportError::Timeout)?
                .map_err(RaftTransportError::Remote)?;
            // A partition that started meanwhile loses the response too.
            if router.cut(from, target) {
                return Err(unreachable());
            }
            Ok(response)
        })
    }
}

fn addr(id: u64) -> String {
    format!("10.0.0.{id}:4433")
}

struct Cluster {
    router: Arc<Router>,
    dirs: HashMap<u64, TempDir>,
    nodes: BTreeMap<u64, RaftNode>,
    timings: RaftTimings,
}

impl Cluster {
    fn new(timings: RaftTimings) -> Self {
        Cluster {
            router: Arc::new(Router::default()),
            dirs: HashMap::new(),
            nodes: BTreeMap::new(),
            timings,
        }
    }

    async fn start(&mut self, id: u64) {
        let dir = self
            .dirs
            .entry(id)
            .or_insert_with(|| TempDir::new().expect("tempdir"));
        let transport = Arc::new(TestTransport {
            from: id,
            router: self.router.clone(),
        });
        let node = RaftNode::start(id, dir.path(), self.timings, transport)
            .await
            .expect("start");
        self.router
            .nodes
            .lock()
            .expect("lock")
            .insert(id, node.raft.clone());
        self.nodes.insert(id, node);
    }

    async fn stop(&mut self, id: u64) {
        self.router.nodes.lock().expect("lock").remove(&id);
        if let Some(node) = self.nodes.remove(&id) {
            node.shutdown().await.expect("shutdown");
        }
    }

    /// Starts nodes `ids` and bootstraps them as the voters, from the first.
    async fn bootstrap(timings: RaftTimings, ids: &[u64]) -> Self {
        let mut cluster = Cluster::new(timings);
        for &id in ids {
            cluster.start(id).await;
        }
        let members = ids
            .iter()
            .map(|&id| (id, BasicNode { addr: addr(id) }))
            .collect();
        cluster.nodes[&ids[0]]
            .initialize(members)
            .await
            .expect("initialize");
        cluster
    }

    fn node(&self, id: u64) -> &RaftNode {
        &self.nodes[&id]
    }

    /// Waits until every node in `among` reports the same leader, also in `among`.
    async fn leader(&self, among: &[u64]) -> u64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leaders: HashSet<Option<u64>> = among
                .iter()
                .map(|id| self.node(*id).raft.metrics().borrow().current_leader)
                .collect();
            if leaders.len() == 1
                && let Some(Some(leader)) = leaders.into_iter().next()
                && among.contains(&leader)
                && self.node(leader).raft.metrics().borrow().state == openraft::ServerState::Leader
            {
                return leader;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader among {among:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_applied(&self, id: u64, index: u64) -> RaftMetrics<u64, BasicNode> {
        self.node(id)
            .raft
            .wait(Some(WAIT))
            .applied_index_at_least(Some(index), format!("node {id} applies {index}"))
            .await
            .expect("applied in time")
    }

    async fn write(&self, via: u64, n: u64) -> u64 {
        let (index, outcome) = tokio::time::timeout(WAIT, self.node(via).write(put(n)))
            .await
            .expect("write in time")
            .expect("write");
        assert_eq!(outcome, CommandOutcome::Applied);
        index
    }

    /// Waits for every node to apply `index` and checks they hold the same state.
    async fn converged(&self, index: u64) -> GatewayState {
        let mut states = Vec::new();
        for &id in self.nodes.keys() {
            self.wait_applied(id, index).await;
            states.push((id, self.node(id).state_machine.current()));
        }
        let (_, (version, state)) = states[0].clone();
        for (id, (other_version, other)) in &states {
            assert_eq!(*other_version, other.version, "node {id}");
            assert_eq!(other, &state, "node {id} diverged");
        }
        assert_eq!(version, state.version);
        state
    }
}

fn api_id(n: u64) -> String {
    format!("api{n:07}")
}

fn put(n: u64) -> Command {
    Command::PutApi {
        definition: ApiDefinition {
            api: RestApi {
                id: api_id(n),
                name: format!("api {n}"),
                description: None,
                created_date: n as i64,
                version: None,
                warnings: vec![],
                binary_media_types: vec![],
                minimum_compression_size: None,
                api_key_source: ApiKeySource::Header,
                endpoint_configuration: EndpointConfiguration::default(),
                policy: None,
                tags: BTreeMap::new(),
                disable_execute_api_endpoint: false,
                root_resource_id: "root".into(),
            },
            resources: vec![Resource {
                id: "root".into(),
                parent_id: None,
                path_part: None,
                path: "/".into(),
                resource_methods: BTreeMap::new(),
            }],
            authorizers: vec![],
            models: vec![],
            request_validators: vec![],
            gateway_responses: vec![],
        },
    }
}

fn written_id(command: &Command) -> Option<String> {
    match command {
        Command::PutApi { definition } => Some(definition.api.id.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster behaviour

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_fifty_writes_and_followers_forward() {
    let cluster = Cluster::bootstrap(RaftTimings::local(), &[1, 2, 3]).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let mut last = 0;
    for n in 0..50 {
        last = cluster.write(leader, n).await;
    }
    let state = cluster.converged(last).await;
    assert_eq!(state.apis.len(), 50);
    assert_eq!(state.version, last);

    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let refused = cluster.node(follower).write(put(99)).await;
    assert_eq!(
        refused,
        Err(WriteError::ForwardToLeader {
            leader_id: Some(leader),
            leader_addr: Some(addr(leader)),
        })
    );

    let status = cluster.node(follower).status();
    assert_eq!(status.leader, Some(leader));
    assert_eq!(status.last_applied, last);
    assert_eq!(
        status
            .members
            .iter()
            .map(|member| (member.node_id, member.voter, member.addr.clone()))
            .collect::<Vec<_>>(),
        vec![(1, true, addr(1)), (2, true, addr(2)), (3, true, addr(3))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_is_replaced_and_converges_after_healing() {
    let mut cluster = Cluster::new(RaftTimings::local());
    let mut feeds = BTreeMap::new();
    for id in [1, 2, 3] {
        cluster.start(id).await;
        feeds.insert(id, cluster.node(id).state_machine.subscribe());
    }
    let members = [1, 2, 3]
        .into_iter()
        .map(|id| (id, BasicNode { addr: addr(id) }))
        .collect();
    cluster.node(1).initialize(members).await.expect("init");
    let old = cluster.leader(&[1, 2, 3]).await;
    let mut acknowledged = BTreeSet::new();
    for n in 0..10 {
        cluster.write(old, n).await;
        acknowledged.insert(api_id(n));
    }

    cluster.router.isolate(old);
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
    let new = cluster.leader(&rest).await;
    assert_ne!(new, old);
    let mut last = 0;
    for n in 10..20 {
        last = cluster.write(new, n).await;
        acknowledged.insert(api_id(n));
    }
    // The old leader cannot commit anything alone: this write is never acknowledged.
    let lost = tokio::time::timeout(
        Duration::from_millis(1500),
        cluster.node(old).write(put(666)),
    )
    .await;
    assert!(
        !matches!(lost, Ok(Ok(_))),
        "a minority acknowledged a write"
    );

    cluster.router.heal(old);
    // One more write after healing, so every node has applied past the old leader's log.
    last = last.max(cluster.write(new, 20).await);
    acknowledged.insert(api_id(20));
    let state = cluster.converged(last).await;

    for id in &acknowledged {
        assert!(state.apis.contains_key(id), "acknowledged {id} lost");
    }
    assert!(!state.apis.contains_key(&api_id(666)));
    // Every majority node saw each acknowledged write applied exactly once, in index order.
    for id in rest {
        let feed = feeds.get_mut(&id).expect("feed");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        // Initialization writes the first membership at index 0.
        let mut previous: Option<u64> = None;
        loop {
            match feed.try_recv() {
                Ok(AppliedEvent::Entry { index, command }) => {
                    assert_eq!(
                        index,
                        previous.map_or(0, |previous| previous + 1),
                        "node {id}: gap or reorder"
                    );
                    previous = Some(index);
                    if let Some(written) = command.as_deref().and_then(written_id) {
                        *seen.entry(written).or_default() += 1;
                    }
                }
                Ok(AppliedEvent::Reset { .. }) => panic!("no snapshot expected"),
                Err(TryRecvError::Empty) => break,
                Err(error) => panic!("feed: {error}"),
            }
        }
        assert!(previous >= Some(last));
        for written in &acknowledged {
            assert_eq!(seen.get(written), Some(&1), "node {id}: {written}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_recovers_from_snapshot_and_log_and_rejoins() {
    let timings = RaftTimings {
        snapshot_every: 20,
        logs_kept_after_snapshot: 5,
        ..RaftTimings::local()
    };
    let mut cluster = Cluster::bootstrap(timings, &[1, 2, 3]).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let mut last = 0;
    for n in 0..45 {
        last = cluster.write(leader, n).await;
    }
    cluster.converged(last).await;
    let restarted = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster
        .node(restarted)
        .raft
        .wait(Some(WAIT))
        .metrics(
            |metrics| metrics.snapshot.is_some() && metrics.purged.is_some(),
            "the follower snapshotted and purged",
        )
        .await
        .expect("snapshot in time");
    let (before_version, before_state) = cluster.node(restarted).state_machine.current();

    cluster.stop(restarted).await;
    for n in 45..55 {
        last = cluster.write(leader, n).await;
    }

    // Restart cut off from the others: what it holds now came from its own disk.
    cluster.router.isolate(restarted);
    tokio::time::timeout(WAIT, cluster.start(restarted))
        .await
        .expect("restart in time");
    let recovered = cluster.wait_applied(restarted, before_version).await;
    assert!(recovered.snapshot.is_some());
    let (version, state) = cluster.node(restarted).state_machine.current();
    assert_eq!(version, before_version);
    assert_eq!(state, before_state);

    cluster.router.heal(restarted);
    let state = cluster.converged(last).await;
    assert_eq!(state.apis.len(), 55);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_catches_up_by_snapshot_and_is_promoted() {
    let mut cluster = Cluster::bootstrap(RaftTimings::local(), &[1, 2, 3]).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let mut last = 0;
    for n in 0..30 {
        last = cluster.write(leader, n).await;
    }
    cluster.converged(last).await;
    let raft = cluster.node(leader).raft.clone();
    raft.trigger().snapshot().await.expect("snapshot");
    raft.wait(Some(WAIT))
        .metrics(
            |metrics| metrics.snapshot.is_some_and(|log_id| log_id.index >= last),
            "leader snapshot",
        )
        .await
        .expect("snapshot in time");
    raft.trigger().purge_log(last).await.expect("purge");
    raft.wait(Some(WAIT))
        .metrics(
            |metrics| metrics.purged.is_some_and(|log_id| log_id.index >= last),
            "leader purged",
        )
        .await
        .expect("purge in time");

    cluster.start(4).await;
    let mut feed = cluster.node(4).state_machine.subscribe();
    tokio::time::timeout(WAIT, cluster.node(leader).add_learner(4, addr(4)))
        .await
        .expect("learner in time")
        .expect("add learner");
    cluster.wait_applied(4, last).await;
    // Its first event is the snapshot's reset: it never saw the purged entries.
    match feed.recv().await.expect("event") {
        AppliedEvent::Reset { version } => assert!(version >= last),
        other => panic!("expected a reset, got {other:?}"),
    }

    let promoted = tokio::time::timeout(
        WAIT,
        cluster
            .node(leader)
            .change_voters(BTreeSet::from([1, 2, 3, 4])),
    )
    .await
    .expect("promotion in time")
    .expect("change voters");
    assert!(promoted > last);
    let status = cluster.node(leader).status();
    assert!(
        status
            .members
            .iter()
            .all(|member| member.voter && member.addr == addr(member.node_id))
    );
    assert_eq!(status.members.len(), 4);

    let last = cluster.write(leader, 30).await;
    let state = cluster.converged(last).await;
    assert_eq!(state.apis.len(), 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_every_later_index_once_in_order() {
    let cluster = Arc::new(Cluster::bootstrap(RaftTimings::local(), &[1]).await);
    let leader = cluster.leader(&[1]).await;
    for n in 0..5 {
        cluster.write(leader, n).await;
    }
    // Subscribe while writes are flowing.
    let writer = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut last = 0;
            for n in 5..40 {
                last = cluster.write(leader, n).await;
            }
            last
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let handle = cluster.node(leader).state_machine.clone();
    let mut feed = handle.subscribe();
    let (mut version, mut state) = handle.current();
    let last = writer.await.expect("writer");

    while version < last {
        let event = tokio::time::timeout(WAIT, feed.recv())
            .await
            .expect("event in time")
            .expect("event");
        match event {
            AppliedEvent::Entry { index, .. } if index <= version => {}
            AppliedEvent::Entry { index, command } => {
                assert_eq!(index, version + 1, "gap or reorder");
                match command {
                    Some(command) => {
                        apply(&mut state, index, &command);
                    }
                    None => state.version = index,
                }
                version = index;
            }
            AppliedEvent::Reset { .. } => panic!("no snapshot expected"),
        }
    }
    assert_eq!(version, last);
    assert_eq!(handle.current(), (last, state));
}
