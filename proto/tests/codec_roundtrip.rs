//! The model must survive the wire and disk encoding unchanged: bincode cannot carry every
//! serde construct, and a field that silently fails to round-trip would corrupt replicated state.

use std::collections::BTreeMap;

use portico_proto::codec::{self, CodecError};
use portico_proto::*;
use proptest::prelude::*;

fn sample_state(
    stage_vars: BTreeMap<String, String>,
    timeout: u32,
    paths: Vec<String>,
) -> GatewayState {
    let mut integration = Integration::new(IntegrationType::HttpProxy);
    integration.uri = Some("http://example.com/{proxy}".into());
    integration.timeout_in_millis = timeout;
    integration.integration_responses.insert(
        "200".into(),
        IntegrationResponse {
            status_code: "200".into(),
            selection_pattern: None,
            response_parameters: BTreeMap::new(),
            response_templates: BTreeMap::new(),
            content_handling: Some(ContentHandling::ConvertToText),
        },
    );
    let mut method = Method::new("GET");
    method.method_integration = Some(integration);
    let mut resources = vec![Resource {
        id: "root000000".into(),
        parent_id: None,
        path_part: None,
        path: "/".into(),
        resource_methods: BTreeMap::new(),
    }];
    for (index, path) in paths.into_iter().enumerate() {
        let mut resource_methods = BTreeMap::new();
        resource_methods.insert("GET".to_string(), method.clone());
        resources.push(Resource {
            id: format!("r{index:09}"),
            parent_id: Some("root000000".into()),
            path_part: Some(path.clone()),
            path: format!("/{path}"),
            resource_methods,
        });
    }
    let definition = ApiDefinition {
        api: RestApi {
            id: "abcdefghij".into(),
            name: "pets".into(),
            description: None,
            created_date: 1_700_000_000,
            version: Some("1.0".into()),
            warnings: vec![],
            binary_media_types: vec!["image/png".into()],
            minimum_compression_size: None,
            api_key_source: ApiKeySource::Header,
            endpoint_configuration: EndpointConfiguration::default(),
            policy: None,
            tags: BTreeMap::new(),
            disable_execute_api_endpoint: false,
            root_resource_id: "root000000".into(),
        },
        resources,
        authorizers: vec![],
        models: vec![],
        request_validators: vec![],
        gateway_responses: vec![],
    };
    let mut stage = Stage::new("prod", "dep0000000", 1_700_000_000);
    stage.variables = stage_vars;
    stage
        .method_settings
        .insert("*/*".into(), MethodSetting::default());
    let mut apis = BTreeMap::new();
    apis.insert(
        "abcdefghij".to_string(),
        ApiState {
            definition: std::sync::Arc::new(definition.clone()),
            deployments: vec![Deployment {
                id: "dep0000000".into(),
                description: None,
                created_date: 1_700_000_000,
                definition: std::sync::Arc::new(definition),
            }],
            stages: vec![stage],
        },
    );
    GatewayState {
        version: 7,
        apis,
        admin_keys: BTreeMap::new(),
        ..GatewayState::default()
    }
}

proptest! {
    #[test]
    fn state_round_trips(
        vars in proptest::collection::btree_map("[a-zA-Z0-9]{1,8}", ".{0,20}", 0..5),
        timeout in 50u32..=29_000,
        paths in proptest::collection::vec("[a-z{}+]{1,10}", 0..6),
    ) {
        let state = sample_state(vars, timeout, paths);
        let bytes = codec::encode(&state).unwrap();
        let back: GatewayState = codec::decode(&bytes).unwrap();
        prop_assert_eq!(back, state);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode::<GatewayState>(&bytes);
    }
}

#[test]
fn unknown_version_and_trailing_bytes_are_refused() {
    let state = sample_state(BTreeMap::new(), 29_000, vec!["pets".into()]);
    let mut bytes = codec::encode(&state).unwrap();
    bytes.push(0);
    assert!(matches!(
        codec::decode::<GatewayState>(&bytes),
        Err(CodecError::Trailing { trailing: 1 })
    ));
    bytes[0] = 9;
    assert!(matches!(
        codec::decode::<GatewayState>(&bytes),
        Err(CodecError::UnsupportedVersion { found: 9 })
    ));
    assert!(matches!(
        codec::decode::<GatewayState>(&[]),
        Err(CodecError::Empty)
    ));
}

#[test]
fn json_rendering_uses_aws_member_names() {
    let state = sample_state(BTreeMap::new(), 29_000, vec!["pets".into()]);
    let json = serde_json::to_value(&state.apis["abcdefghij"].definition.resources[1]).unwrap();
    assert_eq!(json["pathPart"], "pets");
    let integration = &json["resourceMethods"]["GET"]["methodIntegration"];
    assert_eq!(integration["type"], "HTTP_PROXY");
    assert_eq!(integration["passthroughBehavior"], "WHEN_NO_MATCH");
    assert_eq!(integration["timeoutInMillis"], 29000);
}

/// `proto` is the wire contract and the deterministic state machine's input: it must never
/// grow a dependency that does I/O.
#[test]
fn proto_has_no_io_dependencies() {
    let manifest = include_str!("../Cargo.toml");
    for forbidden in ["tokio", "hyper", "quinn", "std::fs", "redb"] {
        assert!(
            !manifest.contains(forbidden),
            "proto must not depend on {forbidden}"
        );
    }
}
