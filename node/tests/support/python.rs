//! The Python virtualenv the tests share (`target/python-venv`), installed from
//! `tests/python/requirements.txt` (exact versions) the first time, and again whenever that
//! file changes: a copy of the file installed last is kept in the venv and compared.
//! Included by `#[path]` from the tests that need it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the node crate sits in the workspace")
        .to_path_buf()
}

/// The venv's `bin` folder, ready.
pub fn venv_bin() -> PathBuf {
    let root = workspace();
    let venv = root.join("target").join("python-venv");
    let requirements = root.join("tests").join("python").join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/python/requirements.txt");
    let stamp = venv.join("portico-requirements.txt");
    let bin = venv.join("bin");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && bin.join("pytest").exists()
    {
        return bin;
    }
    if !bin.join("pip").exists() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for the Python tests");
        assert!(created.success(), "python3 -m venv failed");
    }
    let installed = Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .status()
        .expect("pip runs");
    assert!(
        installed.success(),
        "installing tests/python/requirements.txt failed"
    );
    std::fs::write(&stamp, &wanted).expect("write the venv's requirements stamp");
    bin
}

/// `PATH` with the venv's `bin` first.
pub fn path_with_venv(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
