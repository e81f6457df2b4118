//! Frozen encodings of the issue-15 control-plane ops (appended to `AdminOp` after
//! `FlushStageAuthorizersCache`): a failure means a change would make this release unable to
//! read an older node's log, or the reverse. See the compatibility rule in `proto::cluster`.

use portico_proto::admin::{AdminOp, PatchOperation};
use portico_proto::cluster::Command;
use portico_proto::codec;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn control_plane_ops_keep_their_encoding() {
    let patch = vec![PatchOperation::new("add", "/x", Some("v"))];
    // Format version 1, Command::Admin (7), then the op's variant index and fields.
    let cases: Vec<(AdminOp, &str)> = vec![
        (
            AdminOp::DeleteMethodResponse {
                api_id: "a".into(),
                resource_id: "r".into(),
                http_method: "GET".into(),
                status_code: "200".into(),
            },
            "01 07 25 0161 0172 03474554 03323030",
        ),
        (
            AdminOp::DeleteIntegrationResponse {
                api_id: "a".into(),
                resource_id: "r".into(),
                http_method: "GET".into(),
                status_code: "200".into(),
            },
            "01 07 26 0161 0172 03474554 03323030",
        ),
        (
            AdminOp::UpdateIntegration {
                api_id: "a".into(),
                resource_id: "r".into(),
                http_method: "GET".into(),
                patch: patch.clone(),
            },
            "01 07 27 0161 0172 03474554 01 03616464 022f78 01 0176 00",
        ),
        (
            AdminOp::UpdateMethodResponse {
                api_id: "a".into(),
                resource_id: "r".into(),
                http_method: "GET".into(),
                status_code: "200".into(),
                patch: patch.clone(),
            },
            "01 07 28 0161 0172 03474554 03323030 01 03616464 022f78 01 0176 00",
        ),
        (
            AdminOp::UpdateIntegrationResponse {
                api_id: "a".into(),
                resource_id: "r".into(),
                http_method: "GET".into(),
                status_code: "200".into(),
                patch: patch.clone(),
            },
            "01 07 29 0161 0172 03474554 03323030 01 03616464 022f78 01 0176 00",
        ),
        (
            AdminOp::UpdateResource {
                api_id: "a".into(),
                resource_id: "r".into(),
                patch: patch.clone(),
            },
            "01 07 2a 0161 0172 01 03616464 022f78 01 0176 00",
        ),
        (
            AdminOp::UpdateDeployment {
                api_id: "a".into(),
                deployment_id: "d".into(),
                patch,
            },
            "01 07 2b 0161 0164 01 03616464 022f78 01 0176 00",
        ),
    ];
    for (op, expected) in cases {
        let command = Command::Admin(op);
        let expected: String = expected.split_whitespace().collect();
        let bytes = codec::encode(&command).unwrap();
        assert_eq!(hex(&bytes), expected, "{command:?}");
        let back: Command = codec::decode(&bytes).unwrap();
        assert_eq!(back, command);
    }
}
