//! The `portico` command: parse arguments, validate them, run. Everything else is the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use portico::dev::{DevNode, DevOptions};
use portico::integrate::FunctionEndpoints;

#[derive(Parser, Debug)]
#[command(
    name = "portico",
    version,
    about = "A self-hosted, multi-region API gateway compatible with Amazon API Gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve one OpenAPI-defined REST API from a single process (origin and edge in one).
    Dev(Box<DevArgs>),
    /// Run a control-plane node: a Raft member holding the replicated state.
    Origin {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a data-plane node that follows the origins and serves the APIs.
    Edge {
        #[arg(long)]
        config: PathBuf,
        /// Request workers (threads, each with its own listeners); overrides the config's
        /// `workers`. Default: one per core.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=portico::cluster::config::MAX_WORKERS))]
        workers: Option<u64>,
    },
    /// Cluster set-up.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Administer a running cluster through any origin.
    Ctl(CtlArgs),
    /// Check an OpenAPI 3.0 / Swagger 2.0 definition; print every problem.
    Validate {
        /// The definition (JSON or YAML).
        file: PathBuf,
        /// Treat warnings (unsupported features) as problems too.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Create the cluster CA and a certificate for each node and for the admin client.
    Init {
        /// Where the certificates go (must not hold a CA yet).
        #[arg(long)]
        dir: PathBuf,
        /// An origin: ID=HOST[,HOST...] (the names or IPs it is reached at; repeatable).
        #[arg(long = "node", value_name = "ID=HOSTS", value_parser = parse_node_spec, required = true)]
        nodes: Vec<(u64, Vec<String>)>,
        /// An edge: ID=HOST[,HOST...] (repeatable). Edge certificates cannot act as origins.
        #[arg(long = "edge", value_name = "ID=HOSTS", value_parser = parse_node_spec)]
        edges: Vec<(u64, Vec<String>)>,
    },
    /// Issue a certificate for a node joining later, with the existing CA.
    AddNode {
        #[arg(long)]
        dir: PathBuf,
        /// An origin, ID=HOSTS.
        #[arg(long = "node", value_name = "ID=HOSTS", value_parser = parse_node_spec, conflicts_with = "edge", required_unless_present = "edge")]
        node: Option<(u64, Vec<String>)>,
        /// An edge, ID=HOSTS.
        #[arg(long = "edge", value_name = "ID=HOSTS", value_parser = parse_node_spec)]
        edge: Option<(u64, Vec<String>)>,
    },
}

fn parse_node_spec(text: &str) -> Result<(u64, Vec<String>), String> {
    let (id, hosts) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not ID=HOST[,HOST...]"))?;
    let id: u64 = id
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("{id:?} is not a node id (1 or more)"))?;
    let hosts: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(str::to_string)
        .collect();
    if hosts.is_empty() {
        return Err(format!("node {id} names no host"));
    }
    Ok((id, hosts))
}

#[derive(clap::Args, Debug)]
struct CtlArgs {
    /// Any origin's cluster address (ip:port).
    #[arg(long, value_name = "ADDR")]
    origin: SocketAddr,
    /// The folder with ca.pem, admin.pem and admin-key.pem.
    #[arg(long, value_name = "DIR")]
    certs: PathBuf,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Subcommand, Debug)]
enum CtlCommand {
    /// Import a definition, deploy it, and point the stage at the deployment.
    Apply {
        file: PathBuf,
        /// The API's name: an API of that name is updated, else one is created.
        #[arg(long)]
        api: String,
        #[arg(long)]
        stage: String,
        /// A variable for a new stage, NAME=VALUE (repeatable).
        #[arg(long = "stage-var", value_name = "NAME=VALUE", value_parser = parse_pair)]
        stage_vars: Vec<(String, String)>,
    },
    /// Members, leader, term, applied index, and the version every edge serves.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the APIs, `[id, name]` as JSON.
    Apis {
        /// The answering origin's own state, without going through the leader (may be stale).
        #[arg(long)]
        local: bool,
    },
    /// Add a node as a learner; it catches up from the log or a snapshot.
    AddLearner {
        #[arg(long)]
        node_id: u64,
        #[arg(long)]
        addr: String,
    },
    /// Remove nodes from the group (comma-separated ids); voters are demoted first.
    RemoveNodes {
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<u64>,
    },
    /// Make exactly these nodes the voters (comma-separated ids; each must be a member).
    SetVoters {
        #[arg(long, value_delimiter = ',', required = true)]
        voters: Vec<u64>,
    },
}

#[derive(clap::Args, Debug)]
struct DevArgs {
    /// The API definition (OpenAPI 3.0 / Swagger 2.0, JSON or YAML). Without it, the bundled
    /// example (deploy/examples/petstore.yaml) is served with demo backends.
    #[arg(long)]
    api: Option<PathBuf>,
    /// The stage name: requests go to /{stage}/...
    #[arg(long, default_value = "dev")]
    stage: String,
    /// A stage variable, NAME=VALUE (repeatable).
    #[arg(long = "stage-var", value_name = "NAME=VALUE", value_parser = parse_pair)]
    stage_vars: Vec<(String, String)>,
    /// Plaintext HTTP listener address, or "off".
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    http: Listen,
    /// HTTPS listener address (self-signed certificate kept in the data dir), or "off".
    #[arg(long, default_value = "127.0.0.1:8443", value_parser = parse_listen)]
    https: Listen,
    /// Lambda Invoke API endpoint for every function --function does not map.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    lambda_endpoint: Option<String>,
    /// Invoke API endpoint of one function, NAME=URL (repeatable).
    #[arg(long = "function", value_name = "NAME=URL", value_parser = parse_function)]
    functions: Vec<(String, String)>,
    /// Where the node keeps its certificate and state.
    #[arg(long, default_value = "portico-data")]
    data_dir: PathBuf,
    /// Extra PEM CA certificates to trust for HTTPS backends (beside the system roots).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Seconds SIGTERM waits for in-flight requests.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// Serve the management API (Amazon API Gateway's control plane, HTTPS) on this address.
    /// Its key comes from PORTICO_ADMIN_ACCESS_KEY_ID / PORTICO_ADMIN_SECRET_ACCESS_KEY, or is
    /// generated and printed.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    /// Serve Prometheus metrics (`GET /metrics`, plain HTTP) on this address.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Turn the stage's response cache on with this cacheClusterSize (GB: 0.5, 1.6, 6.1, 13.5,
    /// 28.4, 58.2, 118 or 237). GET methods are then cached for 300 s.
    #[arg(long, value_name = "GB", value_parser = ["0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237"])]
    cache_cluster_size: Option<String>,
    /// Cap every stage cache at this many bytes (below its cacheClusterSize).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    cache_max_bytes: Option<u64>,
    /// Endpoint of the AWS services the node calls (Cognito user pools' JWKS), as the node
    /// config's `[aws] endpoint_url`: AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER (or
    /// AWS_ENDPOINT_URL_COGNITO_IDP) and AWS_ENDPOINT_URL win over it.
    #[arg(long, value_name = "URL")]
    aws_endpoint_url: Option<String>,
    /// A region AWS_IAM callers may sign for (repeatable). Default: AWS_REGION, else
    /// AWS_DEFAULT_REGION, else us-east-1.
    #[arg(long = "signing-region", value_name = "REGION")]
    signing_regions: Vec<String>,
    /// Request workers (threads, each with its own listeners and upstream connections).
    /// Default: one per core.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=portico::cluster::config::MAX_WORKERS))]
    workers: Option<u64>,
    /// Client connections the data plane holds at most (shared out over the workers; fewer
    /// when the file-descriptor limit cannot hold them and an upstream connection each).
    #[arg(long, default_value_t = portico::accept::MAX_CONNECTIONS_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=portico::cluster::config::MAX_CONNECTIONS))]
    max_connections: u64,
}

#[derive(Clone, Debug)]
struct Listen(Option<SocketAddr>);

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    text.parse::<SocketAddr>()
        .map(|addr| Listen(Some(addr)))
        .map_err(|_| format!("{text:?} is not an address like 127.0.0.1:8080 (or \"off\")"))
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let valid_name =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(format!(
            "{name:?} is not a valid name (letters, digits and '_')"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

fn parse_endpoint(text: &str) -> Result<String, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|error| format!("{text:?} is not a URL: {error}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.authority().is_some() => {
            Ok(text.trim_end_matches('/').to_string())
        }
        _ => Err(format!("{text:?} must be an http:// or https:// URL")),
    }
}

fn parse_function(text: &str) -> Result<(String, String), String> {
    let (name, url) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=URL"))?;
    if name.is_empty() {
        return Err(format!("{text:?} names no function"));
    }
    Ok((name.to_string(), parse_endpoint(url)?))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { file, strict } => validate(&file, strict),
        Command::Cluster(command) => match cluster(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Ctl(args) => run_async(false, ctl(args)),
        Command::Origin { config } => run_async(true, origin(config)),
        Command::Edge { config, workers } => run_async(true, edge(config, workers)),
        Command::Dev(args) => run_async(true, dev(*args)),
    }
}

/// Runs `work` on a multi-threaded runtime; logging is set up first for long-running nodes.
fn run_async(
    logging: bool,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    if logging {
        portico::observe::init_logging();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(work);
    portico::observe::access::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn cluster(command: ClusterCommand) -> anyhow::Result<()> {
    use portico::cluster::certs::{self, NodeCertSpec, NodeRole};
    let spec = |role: NodeRole| {
        move |(node_id, hosts): (u64, Vec<String>)| NodeCertSpec {
            node_id,
            hosts,
            role,
        }
    };
    match command {
        ClusterCommand::Init { dir, nodes, edges } => {
            let specs: Vec<NodeCertSpec> = nodes
                .into_iter()
                .map(spec(NodeRole::Origin))
                .chain(edges.into_iter().map(spec(NodeRole::Edge)))
                .collect();
            certs::init_cluster(&dir, &specs)?;
            // The management API: a sealing key for admin secrets (origins only) and the first
            // access key, as an AWS credentials file.
            let sealing = portico::admin::secrets::SealingKey::generate();
            sealing.to_file(&dir.join("sealing.key"))?;
            let (access_key_id, secret) = portico::admin::secrets::generate_access_key();
            portico::admin::secrets::write_credentials_file(
                &dir.join("admin-credentials"),
                &access_key_id,
                &secret,
            )?;
            println!(
                "cluster CA and {} node certificates written to {} (admin client: admin.pem;\n\
                 management API key {access_key_id} in admin-credentials, sealing key in sealing.key)",
                specs.len(),
                dir.display()
            );
        }
        ClusterCommand::AddNode { dir, node, edge } => {
            let spec = match (node, edge) {
                (Some(node), _) => spec(NodeRole::Origin)(node),
                (None, Some(edge)) => spec(NodeRole::Edge)(edge),
                (None, None) => anyhow::bail!("name the node with --node or --edge"),
            };
            certs::issue_node_cert(&dir, &spec)?;
            println!(
                "certificate for node {} written to {}",
                spec.node_id,
                dir.display()
            );
        }
    }
    Ok(())
}

async fn ctl(args: CtlArgs) -> anyhow::Result<()> {
    use portico::cluster::ctl::{Ctl, render_status};
    let ctl = Ctl::connect(args.origin, &args.certs)?;
    match args.command {
        CtlCommand::Apply {
            file,
            api,
            stage,
            stage_vars,
        } => {
            let applied = ctl
                .apply(&file, &api, &stage, stage_vars.into_iter().collect())
                .await?;
            for warning in &applied.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "applied API {api:?} (id {}), deployment {} on stage {stage:?}, at index {}",
                applied.api_id, applied.deployment_id, applied.index
            );
            println!("api_id={}", applied.api_id);
        }
        CtlCommand::Status { json } => {
            let status = ctl.status().await?;
            if json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                print!("{}", render_status(&status));
            }
        }
        CtlCommand::Apis { local } => {
            println!("{}", serde_json::to_string(&ctl.list_apis(local).await?)?);
        }
        CtlCommand::AddLearner { node_id, addr } => {
            ctl.add_learner(node_id, &addr).await?;
            println!("node {node_id} added as a learner");
        }
        CtlCommand::RemoveNodes { nodes } => {
            ctl.remove_nodes(nodes.clone()).await?;
            println!("removed {nodes:?}");
        }
        CtlCommand::SetVoters { voters } => {
            ctl.set_voters(voters.clone()).await?;
            println!("voters are now {voters:?}");
        }
    }
    Ok(())
}

async fn origin(config: PathBuf) -> anyhow::Result<()> {
    let config = portico::cluster::config::load_origin(&config)?;
    let node = portico::cluster::origin::OriginNode::start(config).await?;
    wait_for_signal().await;
    eprintln!("shutting down");
    node.shutdown().await;
    Ok(())
}

async fn edge(config: PathBuf, workers: Option<u64>) -> anyhow::Result<()> {
    let mut config = portico::cluster::config::load_edge(&config)?;
    if let Some(workers) = workers {
        config.workers = workers as usize;
    }
    let node = portico::cluster::edge::EdgeNode::start(config).await?;
    wait_for_signal().await;
    eprintln!("shutting down: draining in-flight requests");
    node.shutdown().await;
    Ok(())
}

fn validate(file: &std::path::Path, strict: bool) -> ExitCode {
    let name = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{name}: cannot read: {error}");
            return ExitCode::FAILURE;
        }
    };
    match portico::dev::build_state(&name, &text, "validate", &[], 0) {
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
        Ok((state, warnings)) => {
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            if let Err(error) = portico::config::compile::compile(&state, true) {
                eprintln!("{name}: {error}");
                return ExitCode::FAILURE;
            }
            if strict && !warnings.is_empty() {
                eprintln!("{name}: {} warning(s), failing (--strict)", warnings.len());
                return ExitCode::FAILURE;
            }
            println!("{name}: OK ({} warning(s))", warnings.len());
            ExitCode::SUCCESS
        }
    }
}

async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let mut options = DevOptions::new(args.data_dir);
    options.api_file = args.api;
    options.stage = args.stage;
    options.stage_variables = args.stage_vars;
    options.http = args.http.0;
    options.https = args.https.0;
    options.functions = FunctionEndpoints {
        by_name: args.functions.into_iter().collect(),
        default: args.lambda_endpoint,
    };
    options.ca_file = args.ca_file;
    options.drain_timeout = Duration::from_secs(args.drain_seconds);
    options.admin = args.admin;
    options.metrics = args.metrics;
    options.cache_capacity_bytes_max = args.cache_max_bytes;
    options.cache_cluster_size = args.cache_cluster_size;
    options.aws.endpoint_url = args.aws_endpoint_url;
    if let Some((field, message)) = options.aws.problems().into_iter().next() {
        anyhow::bail!("--aws-endpoint-url ({field}): {message}");
    }
    options.signing_regions = args.signing_regions;
    if let Some(workers) = args.workers {
        options.workers = workers as usize;
    }
    options.max_connections = args.max_connections as usize;
    options.admin_credentials = match (
        std::env::var("PORTICO_ADMIN_ACCESS_KEY_ID"),
        std::env::var("PORTICO_ADMIN_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Some((id, secret)),
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => anyhow::bail!(
            "set both PORTICO_ADMIN_ACCESS_KEY_ID and PORTICO_ADMIN_SECRET_ACCESS_KEY, or neither"
        ),
        _ => None,
    };
    anyhow::ensure!(
        options.http.is_some() || options.https.is_some(),
        "--http and --https are both off: nothing to serve"
    );

    let node = DevNode::start(options).await?;
    for warning in &node.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "Serving API {:?} (id {}) on stage {:?}",
        node.api_name, node.api_id, node.stage
    );
    let bases: Vec<String> = [("http", node.http_addr), ("https", node.https_addr)]
        .into_iter()
        .filter_map(|(scheme, addr)| addr.map(|addr| format!("{scheme}://{addr}/{}", node.stage)))
        .collect();
    for base in &bases {
        println!("  {base}");
    }
    if let Some(base) = bases.first() {
        for (verb, path, kind) in &node.routes {
            println!("  {verb:<7} {base}{path}  ({kind})");
        }
    }
    if let (Some(addr), Some(key_id)) = (node.admin_addr, &node.admin_access_key_id) {
        println!("Management API (service apigateway, SigV4, any region): https://{addr}");
        println!("  access key id: {key_id}");
        if let Some(secret) = &node.admin_generated_secret {
            println!("  secret access key: {secret}   (generated; set PORTICO_ADMIN_* to choose)");
        }
        println!(
            "  aws apigateway get-rest-apis --endpoint-url https://{addr} --no-verify-ssl --region us-east-1"
        );
    }
    if let Some(addr) = node.metrics_addr {
        println!("Metrics (Prometheus): http://{addr}/metrics");
    }
    println!("Stop with Ctrl-C (in-flight requests are drained).");

    wait_for_signal().await;
    eprintln!("shutting down: draining in-flight requests");
    node.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
