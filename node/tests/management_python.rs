//! Runs `tests/python` (boto3 and the AWS CLI driving the management API) as part of
//! `cargo test`, so the README's test command is the whole suite. The test sets up its own
//! virtualenv under `target/python-venv` from `tests/python/requirements.txt` (pinned versions).

use std::process::Command;

#[path = "support/python.rs"]
mod python;

#[test]
fn boto3_and_the_aws_cli_drive_the_management_api() {
    let root = python::workspace();
    let bin = python::venv_bin();
    let output = Command::new(bin.join("pytest"))
        .args(["-q", "-p", "no:cacheprovider"])
        .arg(root.join("tests").join("python"))
        .current_dir(&root)
        .env("PORTICO_BINARY", env!("CARGO_BIN_EXE_portico"))
        .env("PATH", python::path_with_venv(&bin))
        .output()
        .expect("pytest runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the boto3 / AWS CLI tests failed");
}
