//! The management API on the origins of a three-region cluster: changes made through any
//! origin (a follower forwards to the leader) reach every edge through replication, without
//! restarts: a new API, a new deployment, a stage variable update, a rollback.

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, http_get, wait_for};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_changes_reach_every_edge() -> anyhow::Result<()> {
    let topology = Topology {
        admin: true,
        ..Topology::three_regions()
    };
    let mut cluster = Cluster::start(&topology).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    let follower = cluster
        .origins()
        .into_iter()
        .find(|id| *id != leader)
        .expect("three origins");

    // The first key is installed by the bootstrap origin shortly after the election.
    let (status, api) = wait_for(WAIT, "the management API to accept the first key", || {
        let answer =
            cluster.admin_call(follower, "POST", "/restapis", Some(r#"{"name": "orders"}"#));
        async move { answer.ok().filter(|(status, _)| *status == 201) }
    })
    .await?;
    assert_eq!(status, 201);
    let api_id = api["id"].as_str().expect("an id").to_string();
    let root = api["rootResourceId"].as_str().expect("a root").to_string();

    let call = |method: &str, path: String, body: serde_json::Value| {
        let answer = cluster.admin_call(follower, method, &path, Some(&body.to_string()));
        let (status, value) = answer.expect("curl runs");
        assert!(status < 300, "{method} {path}: {status} {value}");
        value
    };
    let resource = call(
        "POST",
        format!("/restapis/{api_id}/resources/{root}"),
        json!({"pathPart": "orders"}),
    );
    let resource_id = resource["id"].as_str().expect("resource id").to_string();
    let method = format!("/restapis/{api_id}/resources/{resource_id}/methods/GET");
    call("PUT", method.clone(), json!({"authorizationType": "NONE"}));
    call(
        "PUT",
        format!("{method}/integration"),
        json!({"type": "MOCK", "requestTemplates": {"application/json": "{\"statusCode\": 200}"}}),
    );
    call(
        "PUT",
        format!("{method}/responses/200"),
        json!({"responseParameters": {"method.response.header.x-color": false}}),
    );
    let respond = |version: u32| {
        json!({
            "responseParameters": {"method.response.header.x-color": "stageVariables.color"},
            "responseTemplates": {"application/json": format!("{{\"version\": {version}}}")},
        })
    };
    call(
        "PUT",
        format!("{method}/integration/responses/200"),
        respond(1),
    );
    let first = call(
        "POST",
        format!("/restapis/{api_id}/deployments"),
        json!({"stageName": "prod", "variables": {"color": "blue"}}),
    );

    let host = format!("{api_id}.execute-api.portico.test");
    let expect_everywhere = |body: &'static str| {
        let cluster = &cluster;
        let host = host.clone();
        async move {
            for edge in cluster.edges() {
                let addr = cluster.nodes[&edge].http_addr.expect("edges serve HTTP");
                wait_for(WAIT, &format!("edge {edge} to serve {body}"), || {
                    let host = host.clone();
                    async move {
                        let (status, text) = http_get(addr, &host, "/prod/orders").await?;
                        (status == 200 && text == body).then_some(())
                    }
                })
                .await?;
            }
            anyhow::Ok(())
        }
    };
    expect_everywhere(r#"{"version": 1}"#).await?;

    // A new deployment, then a rollback through UpdateStage, each served by every edge.
    call(
        "PUT",
        format!("{method}/integration/responses/200"),
        respond(2),
    );
    call(
        "POST",
        format!("/restapis/{api_id}/deployments"),
        json!({"stageName": "prod"}),
    );
    expect_everywhere(r#"{"version": 2}"#).await?;
    let first_id = first["id"].as_str().expect("deployment id");
    call(
        "PATCH",
        format!("/restapis/{api_id}/stages/prod"),
        json!({"patchOperations": [
            {"op": "replace", "path": "/deploymentId", "value": first_id},
            {"op": "replace", "path": "/variables/color", "value": "green"}
        ]}),
    );
    expect_everywhere(r#"{"version": 1}"#).await?;

    // Reads through another origin see the writes (linearizable), and errors keep AWS's shape.
    let other = cluster
        .origins()
        .into_iter()
        .find(|id| *id != follower)
        .expect("three origins");
    let (status, stage) = cluster.admin_call(
        other,
        "GET",
        &format!("/restapis/{api_id}/stages/prod"),
        None,
    )?;
    assert_eq!(status, 200);
    assert_eq!(stage["variables"]["color"], "green");
    assert_eq!(stage["deploymentId"], first_id);
    let (status, error) = cluster.admin_call(other, "GET", "/restapis/nothing000", None)?;
    assert_eq!(status, 404);
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("Invalid API identifier")
    );
    Ok(())
}
