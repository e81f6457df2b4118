//! Concurrent misses of one key on two edges of a region make one backend call: each edge's
//! L1 coalesces its own misses into one fill, the fills ask the region's L2 on the origin,
//! the first becomes the filler and the other waits for its put.

use std::sync::atomic::Ordering;
use std::time::Duration;

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, http_get_within, wait_for};
use serde_json::json;

/// Room for the slow backend in a GET (the harness's `http_get` waits 1 s).
const SLOW: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_two_edges_make_one_backend_call() -> anyhow::Result<()> {
    let topology = Topology {
        regions: vec!["a".into()],
        origins_per_region: 1,
        edges_per_region: 2,
        delay: Duration::from_millis(0),
        snapshot_every: None,
        admin: true,
    };
    let mut cluster = Cluster::start(&topology).await?;
    let (backend, calls) =
        portico_cluster_tests::backend::counting_backend(Duration::from_millis(500)).await?;
    let origin = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let (_, api) = wait_for(WAIT, "the management API to accept the first key", || {
        let answer = cluster.admin_call(origin, "POST", "/restapis", Some(r#"{"name": "items"}"#));
        async move { answer.ok().filter(|(status, _)| *status == 201) }
    })
    .await?;
    let api_id = api["id"].as_str().expect("an id").to_string();
    let root = api["rootResourceId"].as_str().expect("a root").to_string();
    let call = |method: &str, path: String, body: serde_json::Value| {
        let (status, value) = cluster
            .admin_call(origin, method, &path, Some(&body.to_string()))
            .expect("curl runs");
        assert!(status < 300, "{method} {path}: {status} {value}");
        value
    };
    let items = call(
        "POST",
        format!("/restapis/{api_id}/resources/{root}"),
        json!({"pathPart": "items"}),
    );
    let items_id = items["id"].as_str().expect("resource id").to_string();
    let item = call(
        "POST",
        format!("/restapis/{api_id}/resources/{items_id}"),
        json!({"pathPart": "{id}"}),
    );
    let item_id = item["id"].as_str().expect("resource id").to_string();
    let method = format!("/restapis/{api_id}/resources/{item_id}/methods/GET");
    call(
        "PUT",
        method.clone(),
        json!({"authorizationType": "NONE", "requestParameters": {"method.request.path.id": true}}),
    );
    call(
        "PUT",
        format!("{method}/integration"),
        json!({
            "type": "HTTP_PROXY",
            "httpMethod": "GET",
            "uri": format!("http://{backend}/items/{{id}}"),
            "requestParameters": {"integration.request.path.id": "method.request.path.id"},
        }),
    );
    call(
        "POST",
        format!("/restapis/{api_id}/deployments"),
        json!({"stageName": "prod"}),
    );
    call(
        "PATCH",
        format!("/restapis/{api_id}/stages/prod"),
        json!({"patchOperations": [
            {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
            {"op": "replace", "path": "/cacheClusterSize", "value": "0.5"},
            {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
        ]}),
    );

    // Each edge caches (a second request of a probe id does not reach the backend) before the
    // race starts. Probe ids are the edge's own, so nothing is shared through the L2 yet.
    let host = format!("{api_id}.execute-api.portico.test");
    let edges = cluster.edges();
    for edge in &edges {
        let addr = cluster.nodes[edge].http_addr.expect("edges serve HTTP");
        let mut probe = 0;
        wait_for(WAIT, &format!("edge {edge} to cache"), || {
            probe += 1;
            let path = format!("/prod/items/probe-{edge}-{probe}");
            let host = host.clone();
            let calls = calls.clone();
            async move {
                let (status, _) = http_get_within(addr, &host, &path, SLOW).await?;
                if status != 200 {
                    return None;
                }
                let before = calls.load(Ordering::SeqCst);
                let (status, _) = http_get_within(addr, &host, &path, SLOW).await?;
                (status == 200 && calls.load(Ordering::SeqCst) == before).then_some(())
            }
        })
        .await?;
    }

    // The race: ten requests on each edge for one new key, all at once.
    let before = calls.load(Ordering::SeqCst);
    let mut requests = Vec::new();
    for edge in &edges {
        let addr = cluster.nodes[edge].http_addr.expect("edges serve HTTP");
        for _ in 0..10 {
            let host = host.clone();
            requests.push(tokio::spawn(async move {
                http_get_within(addr, &host, "/prod/items/42", SLOW).await
            }));
        }
    }
    let mut bodies = Vec::new();
    for request in requests {
        let (status, body) = request.await?.expect("the edge answers");
        assert_eq!(status, 200, "{body}");
        bodies.push(body);
    }
    let made = calls.load(Ordering::SeqCst) - before;
    println!("20 concurrent requests for one key on two edges of a region: {made} backend call(s)");
    assert_eq!(made, 1, "{bodies:?}");
    assert!(bodies.iter().all(|body| *body == bodies[0]), "{bodies:?}");
    Ok(())
}
