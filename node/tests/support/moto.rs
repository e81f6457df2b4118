//! moto in server mode (PyPI `moto[server]`, pinned in tests/python/requirements.txt) on
//! 127.0.0.1 and a port it picks, killed on drop; and real Cognito tokens from it.
//! Needs `support/python.rs` included as `python` beside it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::python;

pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub fn start() -> Moto {
        let bin = python::venv_bin();
        let mut child = Command::new(bin.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto_server starts");
        // Werkzeug prints "Running on http://127.0.0.1:PORT" (stderr); read both streams.
        let (sender, receiver) = mpsc::channel::<String>();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        let mut moto = Moto {
            child,
            url: String::new(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while moto.url.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = receiver
                .recv_timeout(left)
                .expect("moto_server printed its address within 60 s");
            if let Some(at) = line.find("http://127.0.0.1:") {
                moto.url = line[at..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_string();
            }
        }
        moto
    }

    /// Two user pools with a signed-in user each (tests/python/cognito_tokens.py).
    pub fn tokens(&self) -> serde_json::Value {
        let root = python::workspace();
        let output = Command::new(python::venv_bin().join("python"))
            .arg(root.join("tests").join("python").join("cognito_tokens.py"))
            .arg(&self.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "cognito_tokens.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("cognito_tokens.py prints JSON")
    }
}
