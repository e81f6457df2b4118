//! Frozen encodings of the management ops for API keys, usage plans and the account (appended
//! to `AdminOp` after `ImportRestApi`): a failure means a change would make this release unable
//! to read an older node's log, or the reverse. See the compatibility rule in `proto::cluster`.

use portico_proto::admin::{AdminOp, PatchOperation};
use portico_proto::cluster::Command;
use portico_proto::codec;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn key_and_plan_ops_keep_their_encoding() {
    // Format version 1, Command::Admin (7), then the op's variant index and fields.
    let cases: Vec<(AdminOp, &str)> = vec![
        (
            AdminOp::DeleteApiKey { key_id: "k".into() },
            "01 07 14 016b",
        ),
        (
            AdminOp::DeleteUsagePlan {
                plan_id: "p".into(),
            },
            "01 07 18 0170",
        ),
        (
            AdminOp::CreateUsagePlanKey {
                plan_id: "p".into(),
                key_id: "k".into(),
            },
            "01 07 19 0170 016b",
        ),
        (
            AdminOp::DeleteUsagePlanKey {
                plan_id: "p".into(),
                key_id: "k".into(),
            },
            "01 07 1a 0170 016b",
        ),
        (
            AdminOp::UpdateAccount {
                patch: vec![PatchOperation::new("remove", "/x", None)],
            },
            "01 07 1b 01 0672656d6f7665 022f78 00 00",
        ),
        (
            AdminOp::UpdateUsagePlan {
                plan_id: "p".into(),
                patch: vec![],
            },
            "01 07 17 0170 00",
        ),
        (
            AdminOp::UpdateApiKey {
                key_id: "k".into(),
                patch: vec![],
                now: 5,
            },
            "01 07 13 016b 00 0a",
        ),
        (AdminOp::ImportApiKeys { keys: vec![] }, "01 07 15 00"),
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

#[test]
fn create_ops_keep_their_variant_indexes() {
    let key = portico_proto::ApiKey {
        id: "k".into(),
        name: None,
        description: None,
        customer_id: None,
        enabled: false,
        created_date: 0,
        last_updated_date: 0,
        stage_keys: vec![],
        tags: Default::default(),
        value_hash: "h".into(),
        nonce: vec![],
        sealed_value: vec![],
    };
    let plan = portico_proto::UsagePlan {
        id: "p".into(),
        name: "n".into(),
        description: None,
        api_stages: vec![],
        throttle: None,
        quota: None,
        product_code: None,
        tags: Default::default(),
        key_ids: Default::default(),
    };
    let index = |op: AdminOp| codec::encode(&Command::Admin(op)).unwrap()[2];
    assert_eq!(index(AdminOp::CreateApiKey { key }), 18);
    assert_eq!(index(AdminOp::CreateUsagePlan { plan }), 22);
}
