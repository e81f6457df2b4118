//! `portico-bench --smoke` as CI runs it: a few seconds of `proxy-small` against the upstream
//! and Portico, no apt and no network beyond loopback. Asserts only that the runner works and
//! the gateway answered without errors, never a timing.

use std::path::PathBuf;
use std::process::Command;

const RUNNER: &str = env!("CARGO_BIN_EXE_portico-bench");

#[test]
fn smoke_pass_runs_and_prints_the_table() {
    // `cargo test --workspace` builds the gateway's binary beside this one (the node crate's
    // own tests need it).
    let portico = PathBuf::from(RUNNER).with_file_name("portico");
    assert!(
        portico.is_file(),
        "{} is missing: run `cargo build -p portico` (cargo test --workspace builds it)",
        portico.display()
    );
    let output = Command::new(RUNNER)
        .args(["--smoke", "--duration", "1", "--rounds", "1", "--portico"])
        .arg(&portico)
        .output()
        .expect("runs portico-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "portico-bench --smoke failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("| 8 | upstream |"), "{stdout}");
    assert!(stdout.contains("| 8 | portico |"), "{stdout}");
}

#[test]
fn smoke_pass_of_the_authorizers_scenario() {
    // The authorized routes answer through a cached Lambda authorizer whose Invoke API is the
    // bench upstream and a Cognito authorizer whose JWKS it serves: any 401/403/500 would
    // count as errors and fail the smoke pass.
    let portico = PathBuf::from(RUNNER).with_file_name("portico");
    let output = Command::new(RUNNER)
        .args([
            "--smoke",
            "--scenario",
            "authorizers",
            "--duration",
            "1",
            "--rounds",
            "1",
            "--portico",
        ])
        .arg(&portico)
        .output()
        .expect("runs portico-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "portico-bench --smoke --scenario authorizers failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("| 8 | portico-lambda |"), "{stdout}");
    assert!(stdout.contains("| 8 | portico-cognito |"), "{stdout}");
}
