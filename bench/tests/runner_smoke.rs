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

#[test]
fn smoke_pass_of_the_floods() {
    // A few connections for two seconds each: checks that every kind of flood runs, is torn
    // down, and that the node is still alive afterwards. Whether the targets were met is a
    // timing under a debug build and a shared machine, so the exit status is not asserted.
    let portico = PathBuf::from(RUNNER).with_file_name("portico");
    let output = Command::new(RUNNER)
        .args(["--portico"])
        .arg(&portico)
        .args([
            "floods",
            "--window",
            "2",
            "--ramp",
            "1",
            "--rate",
            "5",
            "--slowloris",
            "20",
            "--streams",
            "20",
            "--uploads",
            "2",
            "--import-bytes",
            "20000",
            "--slow-seconds",
            "5",
        ])
        .args(["--flood", "slowloris", "--flood", "h2-streams"])
        .args(["--flood", "admin-uploads", "--flood", "import-deep"])
        .output()
        .expect("runs portico-bench floods");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for flood in ["slowloris", "h2-streams", "admin-uploads", "import-deep"] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(&format!("| {flood} |")))
            .unwrap_or_else(|| panic!("no row for {flood}\nstdout:\n{stdout}\nstderr:\n{stderr}"));
        assert!(
            row.contains("| yes |"),
            "{flood}: not alive after\n{stdout}"
        );
    }
    assert!(stdout.contains("20 conns: 20 opened"), "{stdout}");
    assert!(stdout.contains("20 streams on 1 conns"), "{stdout}");
    assert!(stdout.contains("answers 400x"), "{stdout}");
}
