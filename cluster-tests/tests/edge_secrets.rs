//! Edges hold API key hashes, never sealed secrets: what an origin streams to its edges (the
//! snapshot on subscribe and the entries after it) has every API key's sealed value, every
//! admin key's sealed secret and every IAM access key's sealed secret emptied, while origins
//! keep them (an API key's value can still be read back through any origin with
//! `includeValue`). For AWS_IAM, each edge instead obtains from its origin the per-day signing
//! keys of its region (`execute-api`), and never the secret.

use std::path::Path;

use portico_cluster_tests::harness::{Cluster, Topology, WAIT, wait_for};
use portico_proto::GatewayState;
use portico_proto::iam::SigningKeySet;
use serde_json::json;

/// The edge's persisted state, once it holds API key `key_id`.
fn edge_state_with(data_dir: &Path, key_id: &str) -> Option<(GatewayState, Vec<u8>)> {
    let bytes = std::fs::read(data_dir.join("edge-state.bin")).ok()?;
    let state: GatewayState = portico_proto::codec::decode(&bytes).ok()?;
    state
        .api_keys
        .contains_key(key_id)
        .then_some((state, bytes))
}

/// The text of the first `<tag>...</tag>` in `xml`.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_string())
}

/// The edge's persisted signing keys, once they include `access_key_id`.
fn signing_keys_for(data_dir: &Path, access_key_id: &str) -> Option<SigningKeySet> {
    let set = portico::cluster::signing::load(data_dir)?;
    set.keys
        .iter()
        .any(|key| key.access_key_id == access_key_id)
        .then_some(set)
}

/// The set holds exactly the edge's region, three days, and the keys SigV4 derives from the
/// secret for `execute-api`; neither the set nor its file holds the secret.
fn check_signing_keys(
    edge: u64,
    region: &str,
    set: &SigningKeySet,
    access_key_id: &str,
    secret: &str,
    data_dir: &Path,
) {
    assert_eq!(set.regions, [region], "edge {edge}");
    assert_eq!(set.dates.len(), 3, "edge {edge}");
    let mine: Vec<_> = set
        .keys
        .iter()
        .filter(|key| key.access_key_id == access_key_id)
        .collect();
    assert_eq!(mine.len(), 3, "edge {edge}: one key per day");
    for key in mine {
        assert_eq!(key.region, region, "edge {edge}");
        assert_eq!(
            key.key,
            portico::sigv4::derive_signing_key(secret, &key.date, region, "execute-api"),
            "edge {edge}: the key of {}",
            key.date
        );
    }
    let bytes = std::fs::read(portico::cluster::signing::keys_file(data_dir)).expect("the file");
    assert!(
        !contains(&bytes, secret.as_bytes()),
        "edge {edge} holds the IAM secret"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn assert_redacted(edge: u64, state: &GatewayState, bytes: &[u8], values: &[&str]) {
    assert!(
        !state.admin_keys.is_empty(),
        "edge {edge}: no admin key at all"
    );
    for key in state.admin_keys.values() {
        assert!(
            key.sealed_secret.is_empty() && key.nonce.is_empty(),
            "edge {edge} holds admin key {}'s sealed secret",
            key.access_key_id
        );
    }
    for key in state.iam.access_keys.values() {
        assert!(
            key.sealed_secret.is_empty() && key.nonce.is_empty(),
            "edge {edge} holds IAM key {}'s sealed secret",
            key.access_key_id
        );
    }
    for key in state.api_keys.values() {
        assert!(
            key.sealed_value.is_empty() && key.nonce.is_empty(),
            "edge {edge} holds API key {}'s sealed value",
            key.id
        );
        assert_eq!(key.value_hash.len(), 64, "edge {edge}: {}", key.value_hash);
    }
    for value in values {
        assert!(
            !contains(bytes, value.as_bytes()),
            "edge {edge} holds a key value"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_hold_no_sealed_secrets() -> anyhow::Result<()> {
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
    let origins = cluster.origins();
    let follower = *origins
        .iter()
        .find(|id| **id != leader)
        .expect("three origins");

    let first_value = "edge-secret-test-value-00000000001";
    let body = json!({"name": "first", "value": first_value, "enabled": true}).to_string();
    let (_, created) = wait_for(WAIT, "the management API to accept the first key", || {
        let answer = cluster.admin_call(follower, "POST", "/apikeys", Some(&body));
        async move { answer.ok().filter(|(status, _)| *status == 201) }
    })
    .await?;
    let first_id = created["id"].as_str().expect("an id").to_string();

    // An IAM user with an access key, created before the edges are checked, so the first
    // states they persist with the API key hold it too.
    let (status, xml) =
        cluster.iam_call(follower, &[("Action", "CreateUser"), ("UserName", "alice")])?;
    assert_eq!(status, 200, "{xml}");
    let (status, xml) = cluster.iam_call(
        follower,
        &[("Action", "CreateAccessKey"), ("UserName", "alice")],
    )?;
    assert_eq!(status, 200, "{xml}");
    let iam_key_id = xml_value(&xml, "AccessKeyId").expect("an access key id");
    let iam_secret = xml_value(&xml, "SecretAccessKey").expect("a secret");

    // Every origin can open the value again: they keep the sealed form.
    for origin in &origins {
        let (status, key) = cluster.admin_call(
            *origin,
            "GET",
            &format!("/apikeys/{first_id}?includeValue=true"),
            None,
        )?;
        assert_eq!(status, 200, "origin {origin}: {key}");
        assert_eq!(key["value"], first_value, "origin {origin}");
    }

    // Entries: the key reached every edge through the stream, without its sealed value.
    for edge in cluster.edges() {
        let data_dir = cluster.nodes[&edge].data_dir.clone();
        let (state, bytes) = wait_for(WAIT, &format!("edge {edge} to hold the keys"), || {
            let found = edge_state_with(&data_dir, &first_id)
                .filter(|(state, _)| state.iam.access_keys.contains_key(&iam_key_id));
            async move { found }
        })
        .await?;
        assert_redacted(edge, &state, &bytes, &[first_value, &iam_secret]);
        let region = cluster.nodes[&edge].region.clone();
        let keys = wait_for(WAIT, &format!("edge {edge} to get signing keys"), || {
            let found = signing_keys_for(&data_dir, &iam_key_id);
            async move { found }
        })
        .await?;
        check_signing_keys(edge, &region, &keys, &iam_key_id, &iam_secret, &data_dir);
    }

    // Snapshot: an edge that was down when a key was created gets it in the snapshot it
    // receives on subscribing again.
    let edge = cluster.edges()[0];
    cluster.kill(edge);
    let second_value = "edge-secret-test-value-00000000002";
    let body = json!({"name": "second", "value": second_value}).to_string();
    let (status, created) = cluster.admin_call(follower, "POST", "/apikeys", Some(&body))?;
    assert_eq!(status, 201, "{created}");
    let second_id = created["id"].as_str().expect("an id").to_string();
    cluster.spawn(edge)?;
    let data_dir = cluster.nodes[&edge].data_dir.clone();
    let (state, bytes) = wait_for(WAIT, &format!("edge {edge} to hold the second key"), || {
        let found = edge_state_with(&data_dir, &second_id);
        async move { found }
    })
    .await?;
    assert_redacted(
        edge,
        &state,
        &bytes,
        &[first_value, second_value, &iam_secret],
    );
    assert!(
        state.iam.access_keys.contains_key(&iam_key_id),
        "edge {edge}: the snapshot lacks the IAM key"
    );
    // The restarted edge serves with the signing keys it kept on disk, and refreshes them.
    let keys = signing_keys_for(&data_dir, &iam_key_id).expect("kept across the restart");
    let region = cluster.nodes[&edge].region.clone();
    check_signing_keys(edge, &region, &keys, &iam_key_id, &iam_secret, &data_dir);
    Ok(())
}
