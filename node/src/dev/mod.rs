//! `portico dev`: one process that is both origin and edge, serving one OpenAPI-defined API.
//!
//! Boot is "apply the first change": the definition is imported into the same replicated-state
//! shape a cluster holds (an API, a deployment, a stage), compiled into a snapshot, and served
//! by the same pipeline an edge runs. Nothing here is a shortcut the cluster will not take.

pub mod demo;
pub mod functions;
pub mod invalidation;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use portico_proto::{ApiState, Deployment, GatewayState, Stage};

use crate::accept::{self, Listener, Shutdown};
use crate::config::compile;
use crate::integrate::{
    FunctionEndpoints, IntegrationSettings, Integrations, client::BackendClient,
};
use crate::openapi;
use crate::pipeline::Gateway;

/// Validated options of `portico dev`.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The definition to serve; `None` serves the bundled example with its demo backends.
    pub api_file: Option<PathBuf>,
    pub stage: String,
    pub stage_variables: Vec<(String, String)>,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub functions: FunctionEndpoints,
    pub data_dir: PathBuf,
    pub ca_file: Option<PathBuf>,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Where the management API listens (HTTPS), if anywhere.
    pub admin: Option<SocketAddr>,
    /// The management API's access key id and secret; generated when `None`.
    pub admin_credentials: Option<(String, String)>,
    /// Where `GET /metrics` (Prometheus text) is served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// A cap on every stage cache's capacity in bytes (below its `cacheClusterSize`).
    pub cache_capacity_bytes_max: Option<u64>,
    /// Turns the stage's cache on with this `cacheClusterSize` (GB, AWS's enum: "0.5", ...),
    /// as CreateStage's `cacheClusterEnabled`/`cacheClusterSize` do.
    pub cache_cluster_size: Option<String>,
    /// Endpoints of the AWS services the node calls (`--aws-endpoint-url`).
    pub aws: crate::awsconf::AwsConfig,
    /// Regions AWS_IAM callers may sign for; empty: `AWS_REGION`, else `AWS_DEFAULT_REGION`,
    /// else `us-east-1`.
    pub signing_regions: Vec<String>,
    /// Request workers (threads, each with its own listeners); default: one per core.
    pub workers: usize,
    /// Client connections the data plane holds at most (shared out over the workers).
    pub max_connections: usize,
}

impl DevOptions {
    /// Options with the defaults of the CLI.
    pub fn new(data_dir: PathBuf) -> Self {
        DevOptions {
            api_file: None,
            stage: "dev".to_string(),
            stage_variables: Vec::new(),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            https: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
            functions: FunctionEndpoints::default(),
            data_dir,
            ca_file: None,
            drain_timeout: Duration::from_secs(30),
            admin: None,
            admin_credentials: None,
            metrics: None,
            cache_capacity_bytes_max: None,
            cache_cluster_size: None,
            aws: crate::awsconf::AwsConfig::default(),
            signing_regions: Vec::new(),
            workers: crate::accept::Workers::default_count(),
            max_connections: crate::accept::MAX_CONNECTIONS_DEFAULT,
        }
    }
}

/// A stage name as API Gateway accepts it.
pub fn validate_stage_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "stage name {name:?} must be 1 to 128 letters, digits, '-' or '_'"
        ))
    }
}

/// Re-derives `dev`'s AWS_IAM signing keys a few seconds after every UTC midnight, so the set
/// always covers yesterday, today and tomorrow.
async fn refresh_iam_daily(control: Arc<crate::admin::control::LocalControl>) {
    loop {
        let now = crate::time::epoch_seconds(SystemTime::now());
        let wait = crate::admin::iam::seconds_to_midnight(now) + 5;
        tokio::time::sleep(Duration::from_secs(u64::try_from(wait).unwrap_or(60))).await;
        control.refresh_iam(crate::time::epoch_seconds(SystemTime::now()));
    }
}

/// A running `dev` node.
#[derive(Debug)]
pub struct DevNode {
    pub gateway: Arc<Gateway>,
    pub api_id: String,
    pub api_name: String,
    pub stage: String,
    pub warnings: Vec<String>,
    pub http_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    /// `(verb, path template, integration type)` of every route, for the banner.
    pub routes: Vec<(String, String, String)>,
    /// The management API's address and access key id, when it is served.
    pub admin_addr: Option<SocketAddr>,
    pub admin_access_key_id: Option<String>,
    /// The secret, only when this node generated it (so it can be shown once).
    pub admin_generated_secret: Option<String>,
    /// Where `GET /metrics` is served, when it is.
    pub metrics_addr: Option<SocketAddr>,
    listeners: Vec<Listener>,
    shutdown: Shutdown,
    /// The bundled example's demo backends; stopped only after the edge has drained, so that
    /// in-flight requests can still reach them.
    demo_backends: Vec<Listener>,
    demo_shutdown: Shutdown,
    /// The quota reporter, when the management API runs.
    quota_reporter: Option<tokio::task::JoinHandle<()>>,
    /// AWS_IAM verification: identities and signing keys from this node's own state (kept
    /// current by the management API's writes and a daily re-derivation; empty without
    /// `--admin`, since identities exist only through the IAM endpoint).
    pub iam: Arc<crate::authorize::iam::IamVerifier>,
    /// The daily re-derivation of the signing keys, when the management API runs.
    iam_refresher: Option<tokio::task::JoinHandle<()>>,
    /// The data plane's request workers; dropped (stopped) after the listeners drained.
    workers: crate::accept::Workers,
}

/// Imports the definition into a one-API state with one deployment and one stage.
pub fn build_state(
    source_name: &str,
    text: &str,
    stage_name: &str,
    variables: &[(String, String)],
    now: i64,
) -> Result<(GatewayState, Vec<String>), openapi::ImportError> {
    let api_id = crate::ids::new_id();
    let imported = openapi::import(source_name, text, &api_id, now, &mut crate::ids::new_id)?;
    let warnings = imported
        .warnings
        .iter()
        .map(|warning| format!("{source_name}: {warning}"))
        .collect();
    // The deployment shares the working definition (one copy in memory, not two).
    let definition = std::sync::Arc::new(imported.definition);
    let deployment = Deployment {
        id: crate::ids::new_id(),
        description: Some("portico dev".to_string()),
        created_date: now,
        definition: definition.clone(),
    };
    let mut stage = Stage::new(stage_name, deployment.id.clone(), now);
    stage.variables = variables.iter().cloned().collect();
    let mut state = GatewayState {
        version: 1,
        ..GatewayState::default()
    };
    state.apis.insert(
        api_id,
        ApiState {
            definition,
            deployments: vec![deployment],
            stages: vec![stage],
        },
    );
    Ok((state, warnings))
}

impl DevNode {
    /// Imports, compiles and starts serving. Fails with a message naming the file and every
    /// problem when the definition is broken.
    pub async fn start(mut options: DevOptions) -> anyhow::Result<DevNode> {
        validate_stage_name(&options.stage).map_err(anyhow::Error::msg)?;
        let shutdown = Shutdown::new();
        let demo_shutdown = Shutdown::new();
        let mut listeners = Vec::new();
        let mut demo_backends = Vec::new();

        let (source_name, text) = match &options.api_file {
            Some(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => {
                // The bundled example reaches demo backends through stage variables.
                let (pets, function_endpoint) = demo::start(&demo_shutdown).await?;
                let defaults = [
                    ("petsBackend", pets.local_addr.to_string()),
                    ("helloFunction", "hello".to_string()),
                ];
                for (name, value) in defaults {
                    if !options.stage_variables.iter().any(|(n, _)| n == name) {
                        options.stage_variables.push((name.to_string(), value));
                    }
                }
                options
                    .functions
                    .default
                    .get_or_insert_with(|| format!("http://{}", function_endpoint.local_addr));
                demo_backends.push(pets);
                demo_backends.push(function_endpoint);
                (
                    demo::EXAMPLE_API_NAME.to_string(),
                    demo::EXAMPLE_API.to_string(),
                )
            }
        };

        let now = crate::time::epoch_seconds(SystemTime::now());
        let (mut state, warnings) = build_state(
            &source_name,
            &text,
            &options.stage,
            &options.stage_variables,
            now,
        )?;
        if let Some(size) = &options.cache_cluster_size {
            for stage in state
                .apis
                .values_mut()
                .flat_map(|api| api.stages.iter_mut())
            {
                stage.cache_cluster_enabled = true;
                stage.cache_cluster_size = Some(size.clone());
            }
        }
        let snapshot = compile::compile(&state, true)?;
        let (api_id, api_state) = state
            .apis
            .iter()
            .next()
            .context("the imported state holds no API")?;
        let (api_id, api_name) = (api_id.clone(), api_state.definition.api.name.clone());
        let mut routes = Vec::new();
        for resource in &api_state.definition.resources {
            for (verb, method) in &resource.resource_methods {
                let kind = method
                    .method_integration
                    .as_ref()
                    .map(|integration| integration.integration_type.as_str())
                    .unwrap_or("none");
                routes.push((verb.clone(), resource.path.clone(), kind.to_string()));
            }
        }

        let integrations = Integrations {
            client: BackendClient::new(options.ca_file.as_deref())?,
            settings: IntegrationSettings {
                functions: options.functions.clone(),
                ..IntegrationSettings::default()
            },
        };
        let metrics = Arc::new(crate::observe::metrics::Metrics::new());
        let cache = Arc::new(crate::cache::ResponseCache::local(
            crate::cache::CacheOptions {
                capacity_bytes_max: options.cache_capacity_bytes_max,
            },
            metrics.clone(),
        ));
        let iam = Arc::new(crate::authorize::iam::IamVerifier::new());
        let cognito = crate::authorize::cognito::CognitoVerifier::from_config(
            &options.aws,
            integrations.client.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        let gateway = Arc::new(
            Gateway::new(snapshot, integrations)
                .with_cache(cache.clone())
                .with_authorizers(Arc::new(
                    crate::authorize::Authorizers::default()
                        .with_iam(iam.clone())
                        .with_cognito(cognito.clone()),
                )),
        );
        gateway.observe_state(&state, true);
        let mut iam_refresher = None;

        let mut admin_addr = None;
        let mut quota_reporter = None;
        let mut admin_access_key_id = None;
        let mut admin_generated_secret = None;
        if let Some(addr) = options.admin {
            let (access_key_id, secret) = match options.admin_credentials.clone() {
                Some(credentials) => credentials,
                None => {
                    let generated = crate::admin::secrets::generate_access_key();
                    admin_generated_secret = Some(generated.1.clone());
                    generated
                }
            };
            // dev keeps its state in memory, so its sealing key lives (and dies) with it. The
            // cache's invalidation authority checks signatures against the same keys.
            let mut sealing_bytes = [0u8; crate::admin::secrets::SEALING_KEY_LEN];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut sealing_bytes)
                .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
            let sealing = crate::admin::secrets::SealingKey::from_bytes(sealing_bytes);
            let sealed = sealing.seal(&access_key_id, &secret);
            state.admin_keys.insert(
                access_key_id.clone(),
                portico_proto::AdminKey {
                    access_key_id: access_key_id.clone(),
                    nonce: sealed.nonce.to_vec(),
                    sealed_secret: sealed.ciphertext,
                    created_date: now,
                    enabled: true,
                },
            );
            let signing_regions = if options.signing_regions.is_empty() {
                crate::admin::iam::default_signing_regions(None)
            } else {
                options.signing_regions.clone()
            };
            // The control owns the state from here (nothing below reads it).
            let control = Arc::new(
                crate::admin::control::LocalControl::new(
                    std::mem::take(&mut state),
                    gateway.clone(),
                )
                .with_iam(
                    iam.clone(),
                    crate::admin::secrets::SealingKey::from_bytes(sealing_bytes),
                    signing_regions,
                ),
            );
            iam_refresher = Some(tokio::spawn(refresh_iam_daily(control.clone())));
            cache.set_authority(Arc::new(invalidation::LocalAuthority::new(
                control.clone(),
                crate::admin::secrets::SealingKey::from_bytes(sealing_bytes),
            )));
            // Keys and plans exist only through the management API, so only then can a quota
            // be spent; dev's ledger is its own state.
            let quota_authority: Arc<dyn crate::limits::QuotaAuthority> = control.clone();
            quota_reporter = Some(tokio::spawn(
                gateway.limits().clone().run_quota_reporter(quota_authority),
            ));
            let admin_integrations = Arc::new(Integrations {
                client: BackendClient::new(options.ca_file.as_deref())?,
                settings: IntegrationSettings {
                    functions: options.functions.clone(),
                    ..IntegrationSettings::default()
                },
            });
            let admin = Arc::new(
                crate::admin::http::AdminApi::new(control, sealing, Vec::new(), admin_integrations)
                    .with_cognito(cognito.clone()),
            );
            let key = crate::tls::load_or_create_self_signed(&options.data_dir)?;
            let tls = Arc::new(crate::tls::server_config(key)?);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the management listener to {addr}"))?;
            let listener = accept::serve(
                listener,
                Some(tls),
                &shutdown,
                options.drain_timeout,
                move |request, connection| {
                    let admin = admin.clone();
                    async move {
                        admin
                            .handle(request.map(crate::body::incoming), connection.remote.ip())
                            .await
                    }
                },
            )?;
            admin_addr = Some(listener.local_addr);
            admin_access_key_id = Some(access_key_id);
            listeners.push(listener);
        }

        // Without the management API nothing reads the state after compiling it.
        drop(state);
        // The document's parse tree, the import's copies and the compile's temporaries are
        // freed by now: give their pages back before the gateway listens, so the RSS a client
        // sees once it answers is what the gateway keeps.
        crate::memory::release_freed_heap();

        let workers = crate::accept::Workers::start_with(options.workers, options.max_connections)
            .context("starting the request workers")?;
        let data_plane = crate::serve::start_gateway_listeners(
            &workers,
            options.http,
            options.https,
            &options.data_dir,
            &gateway,
            &shutdown,
            options.drain_timeout,
        )
        .await?;
        let (http_addr, https_addr) = (data_plane.http_addr, data_plane.https_addr);
        listeners.extend(data_plane.listeners);

        let mut metrics_addr = None;
        if let Some(addr) = options.metrics {
            let listener =
                crate::serve::serve_metrics(addr, metrics, &shutdown, options.drain_timeout)
                    .await?;
            metrics_addr = Some(listener.local_addr);
            listeners.push(listener);
        }

        Ok(DevNode {
            gateway,
            api_id,
            api_name,
            stage: options.stage.clone(),
            warnings,
            http_addr,
            https_addr,
            routes,
            admin_addr,
            admin_access_key_id,
            admin_generated_secret,
            metrics_addr,
            listeners,
            shutdown,
            demo_backends,
            demo_shutdown,
            quota_reporter,
            iam,
            iam_refresher,
            workers,
        })
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain timeout), and returns.
    pub async fn shutdown(self) {
        if let Some(reporter) = &self.quota_reporter {
            reporter.abort();
        }
        if let Some(refresher) = &self.iam_refresher {
            refresher.abort();
        }
        self.shutdown.trigger();
        for listener in self.listeners {
            listener.stopped().await;
        }
        self.demo_shutdown.trigger();
        for backend in self.demo_backends {
            backend.stopped().await;
        }
        drop(self.workers);
    }
}
