//! Runs `tests/python` (boto3 and the AWS CLI driving the management API) as part of
//! `cargo test`, so the README's test command is the whole suite. The test sets up its own
//! virtualenv under `target/python-venv` (boto3, awscli, pytest from PyPI) the first time.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the node crate sits in the workspace")
        .to_path_buf()
}

#[test]
fn boto3_and_the_aws_cli_drive_the_management_api() {
    let root = workspace();
    let venv = root.join("target").join("python-venv");
    let pytest = venv.join("bin").join("pytest");
    if !pytest.exists() || !venv.join("bin").join("aws").exists() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for the management API tests");
        assert!(created.success(), "python3 -m venv failed");
        let installed = Command::new(venv.join("bin").join("pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "boto3",
                "awscli",
                "pytest",
            ])
            .status()
            .expect("pip runs");
        assert!(
            installed.success(),
            "installing boto3, awscli and pytest failed"
        );
    }
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new(&pytest)
        .args(["-q", "-p", "no:cacheprovider"])
        .arg(root.join("tests").join("python"))
        .current_dir(&root)
        .env("PORTICO_BINARY", env!("CARGO_BIN_EXE_portico"))
        .env("PATH", path)
        .output()
        .expect("pytest runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the boto3 / AWS CLI tests failed");
}
