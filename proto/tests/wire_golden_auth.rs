//! Frozen encodings of the authorization ops (issue 12, appended to `AdminOp` after
//! `FlushStageCache`): a failure means a change would make this release unable to read an older
//! node's log, or the reverse. See the compatibility rule in `proto::cluster`.

use portico_proto::admin::{AdminOp, PatchOperation};
use portico_proto::cluster::Command;
use portico_proto::codec;
use portico_proto::{Authorizer, GatewayResponse};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn authorization_ops_keep_their_encoding() {
    let patch = vec![PatchOperation::new("add", "/x", Some("v"))];
    // Format version 1, Command::Admin (7), then the op's variant index and fields.
    let cases: Vec<(AdminOp, &str)> = vec![
        (
            AdminOp::CreateAuthorizer {
                api_id: "a".into(),
                authorizer: Authorizer {
                    id: "i".into(),
                    name: "n".into(),
                    authorizer_type: "TOKEN".into(),
                    provider_arns: vec!["p".into()],
                    auth_type: None,
                    authorizer_uri: Some("u".into()),
                    authorizer_credentials: None,
                    identity_source: Some("s".into()),
                    identity_validation_expression: None,
                    authorizer_result_ttl_in_seconds: Some(300),
                },
            },
            "01 07 1d 0161 0169 016e 05544f4b454e 01 0170 00 01 0175 00 01 0173 00 01 fb5802",
        ),
        (
            AdminOp::UpdateAuthorizer {
                api_id: "a".into(),
                authorizer_id: "i".into(),
                patch: patch.clone(),
            },
            "01 07 1e 0161 0169 01 03616464 022f78 01 0176 00",
        ),
        (
            AdminOp::DeleteAuthorizer {
                api_id: "a".into(),
                authorizer_id: "i".into(),
            },
            "01 07 1f 0161 0169",
        ),
        (
            AdminOp::UpdateMethod {
                api_id: "a".into(),
                resource_id: "r".into(),
                http_method: "GET".into(),
                patch: vec![],
            },
            "01 07 20 0161 0172 03474554 00",
        ),
        (
            AdminOp::PutGatewayResponse {
                api_id: "a".into(),
                response: GatewayResponse {
                    response_type: "T".into(),
                    status_code: Some("401".into()),
                    response_parameters: [("k".to_string(), "v".to_string())].into(),
                    response_templates: Default::default(),
                    default_response: false,
                },
            },
            "01 07 21 0161 0154 01 03343031 01 016b 0176 00 00",
        ),
        (
            AdminOp::UpdateGatewayResponse {
                api_id: "a".into(),
                response_type: "T".into(),
                patch: vec![],
            },
            "01 07 22 0161 0154 00",
        ),
        (
            AdminOp::DeleteGatewayResponse {
                api_id: "a".into(),
                response_type: "T".into(),
            },
            "01 07 23 0161 0154",
        ),
        (
            AdminOp::FlushStageAuthorizersCache {
                api_id: "a".into(),
                stage_name: "s".into(),
            },
            "01 07 24 0161 0173",
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

/// The replicated state gained `authorizer_generations` (a map encoded like
/// `cache_generations`): an entry replaces the empty map's length byte with the length and the
/// entry, wherever the field sits among the members appended after it.
#[test]
fn authorizer_generations_encode_as_a_map() {
    let mut state = portico_proto::GatewayState::default();
    let empty = codec::encode(&state).unwrap();
    state.authorizer_generations.insert("a/s".into(), 2);
    let bytes = codec::encode(&state).unwrap();
    let at = empty
        .iter()
        .zip(&bytes)
        .position(|(a, b)| a != b)
        .expect("the encodings differ");
    assert_eq!(empty[at], 0, "an empty map is one zero length byte");
    let entry = [0x01, 0x03, b'a', b'/', b's', 0x02];
    assert_eq!(&bytes[at..at + entry.len()], &entry);
    assert_eq!(&bytes[at + entry.len()..], &empty[at + 1..]);
    let back: portico_proto::GatewayState = codec::decode(&bytes).unwrap();
    assert_eq!(back, state);
}
