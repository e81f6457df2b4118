//! Replicated commands, the deterministic function that applies them, and the messages nodes
//! exchange.
//!
//! Compatibility rule: these enums are encoded by variant index and their structs by field
//! order (bincode), in the Raft log, in snapshots and on the wire. A release may only *append*
//! variants; it never reorders, removes or changes the fields of an existing one (a new shape
//! is a new variant). `tests/wire_golden.rs` freezes the bytes of every variant, so a change
//! that would break a running cluster's log or its older peers fails CI. A change that must
//! break the format bumps `codec::FORMAT_VERSION` and keeps a decoder for the old one.
//!
//! Every change to the gateway's state is a [`Command`]. Origins agree on their order through
//! Raft and apply them with [`apply`]; edges receive the same commands (or a snapshot) from an
//! origin and apply them with the same function, so an edge at version V holds exactly the state
//! an origin held at Raft index V. `apply` is pure: ids and timestamps are chosen by the node
//! that proposes a command and travel inside it, never read while applying.

use serde::{Deserialize, Serialize};

use crate::model::{ApiDefinition, ApiState, Deployment, GatewayState, Stage, StringMap};

/// A change to the replicated state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Creates the API or replaces its working definition (deployments are untouched).
    PutApi {
        definition: ApiDefinition,
    },
    DeleteApi {
        api_id: String,
    },
    /// Freezes the API's current working definition as a new deployment.
    CreateDeployment {
        api_id: String,
        deployment_id: String,
        description: Option<String>,
        created_date: i64,
    },
    DeleteDeployment {
        api_id: String,
        deployment_id: String,
    },
    /// Creates or replaces a stage.
    PutStage {
        api_id: String,
        stage: Stage,
    },
    DeleteStage {
        api_id: String,
        stage_name: String,
    },
    /// `portico ctl apply`: put the definition, deploy it, and point the stage at the
    /// deployment, in one step so no edge ever sees a stage without its deployment. The API is
    /// the existing one with the definition's name (the lowest id if several), else a new one
    /// with the definition's id; applying the same `deployment_id` again changes nothing, so a
    /// client that lost the answer can retry.
    ApplyDefinition {
        definition: ApiDefinition,
        deployment_id: String,
        stage_name: String,
        /// Variables for a stage that does not exist yet; an existing stage keeps its own.
        stage_variables: StringMap,
        now: i64,
    },
    /// A management-API write (see [`crate::admin`]). Appended last: variants are encoded by
    /// position.
    Admin(crate::admin::AdminOp),
    /// Adds (or replaces) a management API access key.
    PutAdminKey(crate::model::AdminKey),
    DeleteAdminKey {
        access_key_id: String,
    },
    /// Quota leases and usage counts from the edges (see [`crate::quota`]), with the clock of
    /// the origin that proposed them.
    Quota {
        now_ms: i64,
        ops: Vec<crate::quota::QuotaOp>,
    },
    /// An IAM write (users, access keys, inline policies; see [`crate::iam`]).
    Iam(crate::iam::IamOp),
}

impl Command {
    /// Whether applying the command can change what the data plane routes or how (APIs,
    /// stages, keys, plans, settings). Quota bookkeeping cannot, so an edge applying only such
    /// commands does not recompile its routing snapshot.
    pub fn changes_routes(&self) -> bool {
        !matches!(self, Command::Quota { .. })
    }
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    Applied,
    /// The command was valid Raft-wise but refused by the state (unknown API, ...). The state
    /// is unchanged.
    Refused(Refusal),
}

/// Why a command left the state unchanged, in the terms of API Gateway's errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    NotFound(String),
    Conflict(String),
    BadRequest(String),
    /// An IAM op refused with IAM's error (appended: variants are encoded by position).
    Iam(crate::iam::IamError),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotFound(message) => write!(f, "not found: {message}"),
            Refusal::Conflict(message) => write!(f, "conflict: {message}"),
            Refusal::BadRequest(message) => write!(f, "bad request: {message}"),
            Refusal::Iam(error) => write!(f, "{error}"),
        }
    }
}

fn api_mut<'s>(state: &'s mut GatewayState, api_id: &str) -> Result<&'s mut ApiState, Refusal> {
    state
        .apis
        .get_mut(api_id)
        .ok_or_else(|| Refusal::NotFound(format!("Invalid API identifier specified {api_id}")))
}

/// Applies `command` at log index `index`: the state's version becomes `index` whether the
/// command was applied or refused, so every replica agrees on the version too.
pub fn apply(state: &mut GatewayState, index: u64, command: &Command) -> CommandOutcome {
    let outcome = match apply_inner(state, command) {
        Ok(()) => CommandOutcome::Applied,
        Err(refusal) => CommandOutcome::Refused(refusal),
    };
    state.version = index;
    outcome
}

fn apply_inner(state: &mut GatewayState, command: &Command) -> Result<(), Refusal> {
    match command {
        Command::PutApi { definition } => {
            let api_id = definition.api.id.clone();
            match state.apis.get_mut(&api_id) {
                Some(existing) => existing.definition = std::sync::Arc::new(definition.clone()),
                None => {
                    state.apis.insert(
                        api_id,
                        ApiState {
                            definition: std::sync::Arc::new(definition.clone()),
                            deployments: Vec::new(),
                            stages: Vec::new(),
                        },
                    );
                }
            }
            Ok(())
        }
        Command::DeleteApi { api_id } => {
            state.apis.remove(api_id).map(|_| ()).ok_or_else(|| {
                Refusal::NotFound(format!("Invalid API identifier specified {api_id}"))
            })
        }
        Command::CreateDeployment {
            api_id,
            deployment_id,
            description,
            created_date,
        } => {
            let api = api_mut(state, api_id)?;
            if api.deployment(deployment_id).is_some() {
                return Err(Refusal::Conflict(format!(
                    "deployment {deployment_id} already exists"
                )));
            }
            let deployment = Deployment {
                id: deployment_id.clone(),
                description: description.clone(),
                created_date: *created_date,
                definition: api.definition.clone(),
            };
            api.deployments.push(deployment);
            Ok(())
        }
        Command::DeleteDeployment {
            api_id,
            deployment_id,
        } => {
            let api = api_mut(state, api_id)?;
            if api
                .stages
                .iter()
                .any(|stage| &stage.deployment_id == deployment_id)
            {
                return Err(Refusal::BadRequest(
                    "Active stages pointing to this deployment must be moved or deleted"
                        .to_string(),
                ));
            }
            let before = api.deployments.len();
            api.deployments
                .retain(|deployment| &deployment.id != deployment_id);
            if api.deployments.len() == before {
                return Err(Refusal::NotFound(format!(
                    "Invalid Deployment identifier specified {deployment_id}"
                )));
            }
            Ok(())
        }
        Command::PutStage { api_id, stage } => {
            let api = api_mut(state, api_id)?;
            if api.deployment(&stage.deployment_id).is_none() {
                return Err(Refusal::BadRequest(format!(
                    "Invalid deployment identifier specified {}",
                    stage.deployment_id
                )));
            }
            match api
                .stages
                .iter_mut()
                .find(|existing| existing.stage_name == stage.stage_name)
            {
                Some(existing) => *existing = stage.clone(),
                None => api.stages.push(stage.clone()),
            }
            Ok(())
        }
        Command::DeleteStage { api_id, stage_name } => {
            let api = api_mut(state, api_id)?;
            let before = api.stages.len();
            api.stages.retain(|stage| &stage.stage_name != stage_name);
            if api.stages.len() == before {
                return Err(Refusal::NotFound(format!(
                    "Invalid Stage identifier specified {stage_name}"
                )));
            }
            Ok(())
        }
        Command::ApplyDefinition {
            definition,
            deployment_id,
            stage_name,
            stage_variables,
            now,
        } => {
            let name = &definition.api.name;
            let api_id = state
                .apis
                .iter()
                .find(|(_, api)| &api.definition.api.name == name)
                .map(|(id, _)| id.clone())
                .unwrap_or_else(|| definition.api.id.clone());
            let already_deployed = state
                .apis
                .get(&api_id)
                .is_some_and(|api| api.deployment(deployment_id).is_some());
            if !already_deployed {
                let mut definition = definition.clone();
                definition.api.id = api_id.clone();
                apply_inner(state, &Command::PutApi { definition })?;
                apply_inner(
                    state,
                    &Command::CreateDeployment {
                        api_id: api_id.clone(),
                        deployment_id: deployment_id.clone(),
                        description: Some("portico ctl apply".to_string()),
                        created_date: *now,
                    },
                )?;
            }
            let api = api_mut(state, &api_id)?;
            match api
                .stages
                .iter_mut()
                .find(|stage| &stage.stage_name == stage_name)
            {
                Some(stage) => {
                    if &stage.deployment_id != deployment_id {
                        stage.deployment_id = deployment_id.clone();
                        stage.last_updated_date = *now;
                    }
                }
                None => {
                    let mut stage = Stage::new(stage_name.clone(), deployment_id.clone(), *now);
                    stage.variables = stage_variables.clone();
                    api.stages.push(stage);
                }
            }
            Ok(())
        }
        Command::Admin(op) => crate::admin::apply(state, op),
        Command::PutAdminKey(key) => {
            state
                .admin_keys
                .insert(key.access_key_id.clone(), key.clone());
            Ok(())
        }
        Command::DeleteAdminKey { access_key_id } => state
            .admin_keys
            .remove(access_key_id)
            .map(|_| ())
            .ok_or_else(|| Refusal::NotFound(format!("Invalid access key {access_key_id}"))),
        Command::Quota { now_ms, ops } => {
            state.quota.apply(&state.usage_plans, *now_ms, ops);
            Ok(())
        }
        Command::Iam(op) => {
            let admin_keys = &state.admin_keys;
            state
                .iam
                .apply(op, &|id| admin_keys.contains_key(id))
                .map_err(Refusal::Iam)
        }
    }
}

// === what edges may hold ===

/// The state an origin streams to an edge: every sealed secret emptied. Edges match API keys
/// by `value_hash` and never serve the management API, so they need neither an API key's
/// sealed value nor an admin key's sealed secret; keeping them off edges means an edge's disk
/// snapshot cannot be used to attack the sealing.
pub fn redact_for_edge(mut state: GatewayState) -> GatewayState {
    for key in state.api_keys.values_mut() {
        redact_api_key(key);
    }
    for key in state.admin_keys.values_mut() {
        redact_admin_key(key);
    }
    for key in state.iam.access_keys.values_mut() {
        redact_iam_key(key);
    }
    state
}

/// A command as an origin streams it to an edge, redacted like [`redact_for_edge`]: applying
/// the redacted commands to a redacted state gives the redacted result of the originals.
pub fn redact_command_for_edge(command: Command) -> Command {
    use crate::admin::AdminOp;
    match command {
        Command::PutAdminKey(mut key) => {
            redact_admin_key(&mut key);
            Command::PutAdminKey(key)
        }
        Command::Admin(AdminOp::CreateApiKey { mut key }) => {
            redact_api_key(&mut key);
            Command::Admin(AdminOp::CreateApiKey { key })
        }
        Command::Admin(AdminOp::ImportApiKeys { mut keys }) => {
            for imported in &mut keys {
                redact_api_key(&mut imported.key);
            }
            Command::Admin(AdminOp::ImportApiKeys { keys })
        }
        Command::Iam(crate::iam::IamOp::CreateAccessKey { mut key }) => {
            redact_iam_key(&mut key);
            Command::Iam(crate::iam::IamOp::CreateAccessKey { key })
        }
        other => other,
    }
}

fn redact_api_key(key: &mut crate::model::ApiKey) {
    key.sealed_value = Vec::new();
    key.nonce = Vec::new();
}

fn redact_admin_key(key: &mut crate::model::AdminKey) {
    key.sealed_secret = Vec::new();
    key.nonce = Vec::new();
}

fn redact_iam_key(key: &mut crate::iam::IamAccessKey) {
    key.sealed_secret = Vec::new();
    key.nonce = Vec::new();
}

/// The id of a node in the cluster (never reused).
pub type NodeId = u64;

/// What an edge sends an origin when it connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    pub edge_id: NodeId,
    pub region: String,
    /// The version the edge already serves (from its disk snapshot), if any.
    pub have_version: Option<u64>,
}

/// What an origin streams to a subscribed edge: one snapshot, then changes in index order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EdgeUpdate {
    Snapshot(Box<GatewayState>),
    /// Entries `(index, command)` in order; `None` marks an index that changed no gateway
    /// state (a Raft membership or blank entry), which still advances the version.
    Entries(Vec<(u64, Option<Command>)>),
}

/// The Raft RPCs. Their payloads are openraft's own request and response types, encoded by the
/// node's `raft` module: they are openraft's contract, not Portico's, and keeping them opaque
/// here keeps this crate free of openraft (and of tokio, which openraft pulls in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

/// A request from one node (or `portico ctl`) to another, one per QUIC stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NodeRequest {
    Raft {
        rpc: RaftRpc,
        payload: Vec<u8>,
    },
    /// Propose a command; a follower forwards it to the leader. (Boxed: a command carries a
    /// whole API definition, which would make every other request as large.)
    Write(Box<Command>),
    /// Start streaming [`EdgeUpdate`]s on this stream.
    Subscribe(Subscribe),
    Status,
    /// Add a node as a non-voting member; it catches up through the log or a snapshot.
    AddLearner {
        node_id: NodeId,
        addr: String,
    },
    /// Make exactly these nodes the voters (each must already be a member).
    ChangeVoters {
        voters: Vec<NodeId>,
    },
    /// The APIs in the replicated state, `(id, name)`: read on the leader after confirming
    /// leadership, or with `local` from the answering origin's own state (possibly stale).
    ListApis {
        local: bool,
    },
    /// An edge reports the version it serves (shown by `ctl status`).
    EdgeReport {
        edge_id: NodeId,
        region: String,
        version: u64,
    },
    /// Remove these nodes from the group (voters are demoted first).
    RemoveNodes {
        nodes: Vec<NodeId>,
    },
    /// The leader's read index: once the asking origin has applied up to it, its local state
    /// reflects every write acknowledged before the request (a linearizable read).
    ReadIndex,
    /// An edge's quota traffic; the origin proposes it as one [`Command::Quota`] with its own
    /// clock (answered like [`NodeRequest::Write`]). The edge learns its grants from the state
    /// it follows.
    Quota {
        edge_id: NodeId,
        ops: Vec<crate::quota::QuotaOp>,
    },
    /// An edge's demand per throttle bucket; answered with [`NodeResponse::Shares`].
    Demand(crate::throttle::DemandReport),
    /// An origin's total demand of the edges it serves, sent to every other origin; answered
    /// with `Done`.
    RegionDemand(crate::throttle::DemandReport),
    /// An edge's L1 missed: the region's L2 answers [`NodeResponse::CacheHit`] or
    /// [`NodeResponse::CacheMiss`]. The first miss of a key makes the asker its filler; later
    /// gets of that key wait (bounded) for the filler's [`NodeRequest::CachePut`].
    CacheGet {
        key: Vec<u8>,
    },
    /// Stores a response the asker fetched from the backend (answered [`NodeResponse::Done`]).
    CachePut {
        key: Vec<u8>,
        entry: crate::cache::CachedResponse,
    },
    /// May this request invalidate a cache entry (`Cache-Control: max-age=0`)? Answered
    /// [`NodeResponse::Authorized`] by an origin, which holds the admin keys.
    AuthorizeInvalidation(crate::cache::InvalidationRequest),
    /// An edge asks for the SigV4 signing keys of the IAM access keys (service `execute-api`,
    /// yesterday, today and tomorrow in UTC, for each of `regions` the origin accepts).
    /// Answered [`NodeResponse::SigningKeys`]; only edge certificates may ask.
    SigningKeys {
        edge_id: NodeId,
        regions: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NodeResponse {
    Raft(Result<Vec<u8>, String>),
    Written {
        index: u64,
        outcome: CommandOutcome,
    },
    /// This node cannot do it; the leader, if known, can (`(id, address)`).
    NotLeader {
        leader: Option<(NodeId, String)>,
    },
    Status(ClusterStatus),
    Apis(Vec<(String, String)>),
    Done,
    Error(String),
    /// Answer to [`NodeRequest::ReadIndex`].
    Index(u64),
    /// The asking edge's share (0..=1) of each bucket it reported.
    Shares(Vec<(crate::throttle::BucketKey, f64)>),
    CacheHit(crate::cache::CachedResponse),
    CacheMiss,
    Authorized(bool),
    /// Answer to [`NodeRequest::SigningKeys`].
    SigningKeys(crate::iam::SigningKeySet),
}

/// What `portico ctl status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub region: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub applied_index: u64,
    pub members: Vec<MemberStatus>,
    pub edges: Vec<EdgeStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub node_id: NodeId,
    pub addr: String,
    pub voter: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeStatus {
    pub edge_id: NodeId,
    pub region: String,
    pub version: u64,
    /// Seconds since the edge last reported, as seen by the answering origin.
    pub last_seen_seconds_ago: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use std::collections::BTreeMap;

    fn definition(id: &str, path: &str) -> ApiDefinition {
        ApiDefinition {
            api: RestApi {
                id: id.into(),
                name: "api".into(),
                description: None,
                created_date: 0,
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
                path: path.into(),
                resource_methods: BTreeMap::new(),
            }],
            authorizers: vec![],
            models: vec![],
            request_validators: vec![],
            gateway_responses: vec![],
        }
    }

    #[test]
    fn apply_definition_deploys_and_points_the_stage() {
        let mut state = GatewayState::default();
        let command = Command::ApplyDefinition {
            definition: definition("a", "/"),
            deployment_id: "d1".into(),
            stage_name: "prod".into(),
            stage_variables: BTreeMap::from([("k".to_string(), "v".to_string())]),
            now: 5,
        };
        assert_eq!(apply(&mut state, 3, &command), CommandOutcome::Applied);
        assert_eq!(state.version, 3);
        let api = &state.apis["a"];
        assert_eq!(api.stages[0].deployment_id, "d1");
        assert_eq!(api.stages[0].variables["k"], "v");

        // A second apply moves the stage and keeps its variables; the first deployment stays
        // for rollback.
        let command = Command::ApplyDefinition {
            definition: definition("a", "/"),
            deployment_id: "d2".into(),
            stage_name: "prod".into(),
            stage_variables: BTreeMap::new(),
            now: 6,
        };
        apply(&mut state, 4, &command);
        let api = &state.apis["a"];
        assert_eq!(api.deployments.len(), 2);
        assert_eq!(api.stages[0].deployment_id, "d2");
        assert_eq!(api.stages[0].variables["k"], "v");
    }

    #[test]
    fn apply_definition_is_keyed_by_name_and_idempotent() {
        let mut state = GatewayState::default();
        let apply_as = |state: &mut GatewayState, id: &str, deployment: &str, index| {
            let command = Command::ApplyDefinition {
                definition: definition(id, "/"),
                deployment_id: deployment.into(),
                stage_name: "prod".into(),
                stage_variables: BTreeMap::new(),
                now: 0,
            };
            apply(state, index, &command)
        };
        apply_as(&mut state, "first", "d1", 1);
        // A second client chose another id for the same name: the existing API is updated.
        apply_as(&mut state, "second", "d2", 2);
        assert_eq!(state.apis.len(), 1);
        assert_eq!(state.apis["first"].deployments.len(), 2);
        // A retried command (same deployment id) changes nothing but the version.
        let before = state.apis.clone();
        assert_eq!(
            apply_as(&mut state, "second", "d2", 3),
            CommandOutcome::Applied
        );
        assert_eq!(state.apis, before);
        assert_eq!(state.version, 3);
    }

    #[test]
    fn refusals_leave_the_state_unchanged_but_advance_the_version() {
        let mut state = GatewayState::default();
        apply(
            &mut state,
            1,
            &Command::PutApi {
                definition: definition("a", "/"),
            },
        );
        let before = state.apis.clone();
        let outcome = apply(
            &mut state,
            2,
            &Command::PutStage {
                api_id: "a".into(),
                stage: Stage::new("prod", "missing", 0),
            },
        );
        assert!(matches!(
            outcome,
            CommandOutcome::Refused(Refusal::BadRequest(_))
        ));
        assert_eq!(state.apis, before);
        assert_eq!(state.version, 2);
        let outcome = apply(
            &mut state,
            3,
            &Command::DeleteApi {
                api_id: "nope".into(),
            },
        );
        assert!(matches!(
            outcome,
            CommandOutcome::Refused(Refusal::NotFound(_))
        ));
    }

    #[test]
    fn a_deployment_in_use_cannot_be_deleted() {
        let mut state = GatewayState::default();
        apply(
            &mut state,
            1,
            &Command::ApplyDefinition {
                definition: definition("a", "/"),
                deployment_id: "d1".into(),
                stage_name: "prod".into(),
                stage_variables: BTreeMap::new(),
                now: 0,
            },
        );
        let outcome = apply(
            &mut state,
            2,
            &Command::DeleteDeployment {
                api_id: "a".into(),
                deployment_id: "d1".into(),
            },
        );
        assert!(matches!(
            outcome,
            CommandOutcome::Refused(Refusal::BadRequest(_))
        ));
    }
}
