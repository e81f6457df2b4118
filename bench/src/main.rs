//! `portico-bench`: drives the same load at Portico and its peers in alternating rounds and
//! prints req/s, latency, errors, CPU per request and peak RSS, with the issue's targets.
//!
//! A Rust binary rather than a script: it owns the upstream (a hyper server, the same stack as
//! the gateway), reads `/proc` for the process trees, parses the load generators' output and
//! computes the ratios in one place that `cargo test` also exercises (`--smoke`). The load
//! itself comes from wrk (HTTP/1.1, plain and TLS) and h2load (HTTP/2), not from this program.
//!
//! ```text
//!   CPU 1: wrk / h2load ──▶ CPU 0: target (portico | nginx | haproxy) ──▶ CPU 1: upstream
//!          (and the upstream itself as the "direct" target)
//! ```

mod cluster;
mod floods;
mod load;
mod procs;
mod scenario;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "portico-bench",
    about = "Load benchmarks of Portico against nginx, HAProxy and the bare upstream"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Internal>,
    /// The portico binary (default: target/release/portico, else target/debug/portico).
    #[arg(long, global = true)]
    portico: Option<PathBuf>,
    /// Do not install missing tools with apt-get.
    #[arg(long)]
    no_install: bool,
    /// A few-second pass of `proxy-small` against the upstream and Portico only (CI).
    #[arg(long)]
    smoke: bool,
    /// Scenarios to run (repeatable; default: every available one). See --list.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Seconds of load per target per round.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Alternating rounds per load.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Do not pin targets and load to separate CPUs.
    #[arg(long)]
    no_pin: bool,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

#[derive(Subcommand, Debug)]
enum Internal {
    /// The bench upstream (started by the runner itself).
    #[command(hide = true)]
    Upstream {
        #[arg(long)]
        listen: SocketAddr,
        /// How long `/slow` waits before answering, in milliseconds.
        #[arg(long, default_value_t = 20_000)]
        slow_ms: u64,
    },
    /// Issue #14's floods, one at a time against a fresh `portico dev`, with a well-behaved
    /// client and the admin's signed calls measured during each (see bench/README.md).
    Floods(floods::FloodArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Internal::Upstream { listen, slow_ms }) => {
            return match upstream::serve(listen, Duration::from_millis(slow_ms)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("upstream: {error:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Internal::Floods(args)) => {
            let portico = cli.portico.unwrap_or_else(default_portico);
            return match floods::run(&portico, &args) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => {
                    eprintln!("portico-bench floods: {error:#}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    if cli.list {
        for scenario in scenario::ALL {
            let availability = scenario.unavailable.unwrap_or("available");
            println!("{:<14} {} [{availability}]", scenario.name, scenario.what);
        }
        return ExitCode::SUCCESS;
    }
    let options = scenario::Options {
        portico: cli.portico.unwrap_or_else(default_portico),
        install: !cli.no_install && !cli.smoke,
        smoke: cli.smoke,
        scenarios: cli.scenarios,
        duration: Duration::from_secs(cli.duration.max(1)),
        rounds: cli.rounds.max(1),
        pin: !cli.no_pin,
    };
    match scenario::run_all(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("portico-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_portico() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let release = target.join("release/portico");
    if release.is_file() {
        release
    } else {
        target.join("debug/portico")
    }
}
