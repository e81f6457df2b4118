//! Frozen encodings: every message and command variant as this release writes it. A failure here
//! means a change would make this release unable to read an older node's log or messages (or
//! the reverse): append a variant instead (see the compatibility rule in `proto::cluster`).

use portico_proto::cluster::*;
use portico_proto::codec;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn node_requests_keep_their_encoding() {
    let cases: Vec<(NodeRequest, &str)> = vec![
        (
            NodeRequest::Raft {
                rpc: RaftRpc::Vote,
                payload: vec![7],
            },
            "0100010107",
        ),
        (NodeRequest::Status, "0103"),
        (
            NodeRequest::Subscribe(Subscribe {
                edge_id: 5,
                region: "a".into(),
                have_version: Some(9),
            }),
            "010205016101 09".trim(),
        ),
        (
            NodeRequest::AddLearner {
                node_id: 4,
                addr: "x".into(),
            },
            "01040401 78",
        ),
        (
            NodeRequest::ChangeVoters { voters: vec![1, 2] },
            "0105020102",
        ),
        (NodeRequest::ListApis { local: true }, "010601"),
        (
            NodeRequest::EdgeReport {
                edge_id: 1,
                region: "b".into(),
                version: 3,
            },
            "0107010162 03",
        ),
        (NodeRequest::RemoveNodes { nodes: vec![4] }, "01080104"),
        (NodeRequest::ReadIndex, "0109"),
        (NodeRequest::CacheGet { key: vec![7] }, "010d0107"),
        (
            NodeRequest::CachePut {
                key: vec![7],
                entry: portico_proto::cache::CachedResponse {
                    status: 200,
                    headers: vec![("a".into(), vec![1])],
                    body: vec![2],
                    stored_at_ms: 3,
                    ttl_ms: 4,
                },
            },
            "010e 0107 c8 01 0161 0101 0102 03 04",
        ),
        (
            NodeRequest::AuthorizeInvalidation(portico_proto::cache::InvalidationRequest {
                method: "G".into(),
                path: "/".into(),
                query: None,
                headers: vec![],
                body: vec![],
            }),
            "010f 0147 012f 00 00 00",
        ),
    ];
    for (request, expected) in cases {
        let expected: String = expected.split_whitespace().collect();
        assert_eq!(
            hex(&codec::encode(&request).unwrap()),
            expected,
            "{request:?}"
        );
        let back: NodeRequest = codec::decode(&codec::encode(&request).unwrap()).unwrap();
        assert_eq!(back, request);
    }
}

#[test]
fn responses_and_commands_keep_their_variant_indexes() {
    // The first byte after the format version is the variant index.
    let index = |bytes: Vec<u8>| bytes[1];
    assert_eq!(index(codec::encode(&NodeResponse::Done).unwrap()), 5);
    assert_eq!(
        index(codec::encode(&NodeResponse::Apis(vec![])).unwrap()),
        4
    );
    assert_eq!(
        index(codec::encode(&NodeResponse::Error(String::new())).unwrap()),
        6
    );
    assert_eq!(
        index(
            codec::encode(&Command::DeleteApi {
                api_id: String::new()
            })
            .unwrap()
        ),
        1
    );
    assert_eq!(
        index(
            codec::encode(&Command::DeleteStage {
                api_id: String::new(),
                stage_name: String::new()
            })
            .unwrap()
        ),
        5
    );
    assert_eq!(index(codec::encode(&NodeResponse::Index(0)).unwrap()), 7);
    assert_eq!(
        index(
            codec::encode(&NodeResponse::CacheHit(
                portico_proto::cache::CachedResponse {
                    status: 200,
                    headers: vec![],
                    body: vec![],
                    stored_at_ms: 0,
                    ttl_ms: 0,
                }
            ))
            .unwrap()
        ),
        9
    );
    assert_eq!(index(codec::encode(&NodeResponse::CacheMiss).unwrap()), 10);
    assert_eq!(
        index(codec::encode(&NodeResponse::Authorized(true)).unwrap()),
        11
    );
    assert_eq!(
        index(
            codec::encode(&Command::Admin(
                portico_proto::admin::AdminOp::FlushStageCache {
                    api_id: String::new(),
                    stage_name: String::new()
                }
            ))
            .unwrap()
        ),
        7
    );
    // The op's own index inside `Command::Admin`.
    assert_eq!(
        codec::encode(&Command::Admin(
            portico_proto::admin::AdminOp::FlushStageCache {
                api_id: String::new(),
                stage_name: String::new()
            }
        ))
        .unwrap()[2],
        28
    );
    assert_eq!(index(codec::encode(&CommandOutcome::Applied).unwrap()), 0);
    assert_eq!(
        index(codec::encode(&EdgeUpdate::Entries(vec![])).unwrap()),
        1
    );
}
