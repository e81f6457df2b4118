//! The `portico` binary as a user runs it: `dev` on the bundled example (the README's first
//! command), `dev --api`, and `validate`. Processes bind loopback ports the OS picks and are
//! killed when a test ends, however it ends.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/localstack-openapi"
);

/// Kills the child on drop, so a failing assertion never leaks a server.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("portico starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The first banner line that starts with `prefix` (bounded wait).
    fn line_starting(&self, prefix: &str) -> String {
        let deadline = Instant::now() + TEST_TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim_start().starts_with(prefix) => {
                    return line.trim().to_string();
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        panic!("no line starting with {prefix:?} in time");
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + TEST_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "portico did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test]
async fn dev_serves_the_bundled_example_with_every_integration_type() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut node = Running::start(&[
        "dev",
        "--http",
        "127.0.0.1:0",
        "--https",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.path().to_str().unwrap(),
    ]);
    let base = node.line_starting("http://");
    assert!(base.ends_with("/dev"), "{base}");

    // HTTP_PROXY to the demo pet service.
    let pets = get(&format!("{base}/pets")).await;
    assert_eq!(pets.status, 200, "{}", pets.text());
    assert_eq!(pets.json().as_array().unwrap().len(), 3);
    let pet = get(&format!("{base}/pets/2")).await;
    assert_eq!(pet.json()["type"], "cat");
    // HTTP (non-proxy) with a query string mapping.
    let search = get(&format!("{base}/search?kind=fish")).await;
    assert_eq!(search.json()[0]["type"], "fish");
    // AWS_PROXY to the demo function.
    let hello = get(&format!("{base}/hello/there?name=Ada")).await;
    assert_eq!(hello.status, 200, "{}", hello.text());
    let greeting = hello.json();
    assert!(greeting["message"].as_str().unwrap().contains("Ada"));
    assert_eq!(greeting["pathParameters"]["proxy"], "there");
    // MOCK.
    let health = get(&format!("{base}/health")).await;
    assert_eq!(health.json()["status"], "ok");
    // A Lambda TOKEN authorizer (the demo function `authorizer`) in front of the function.
    let private = format!("{base}/private");
    assert_eq!(get(&private).await.status, 401);
    let with_token = |token: &str| {
        http::Request::builder()
            .uri(&private)
            .header("authorization", token)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let allowed = send(with_token("Bearer allow")).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.json()["authorizer"]["principalId"], "demo-user");
    let denied = send(with_token("Bearer deny")).await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    // The self-signed certificate is in the data dir.
    assert!(data_dir.path().join("cert.pem").exists());

    // One JSON access-log line per request on stdout, with the fields the issue names.
    let log = node.line_starting("{");
    let record: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(
        record["requestId"],
        pets.headers["x-amzn-requestid"].to_str().unwrap()
    );
    assert_eq!(record["ip"], "127.0.0.1");
    assert_eq!(record["httpMethod"], "GET");
    assert_eq!(record["resourcePath"], "/pets");
    assert_eq!(record["path"], "/dev/pets");
    assert_eq!(record["status"], 200);
    assert_eq!(record["stage"], "dev");
    assert!(record["apiId"].as_str().unwrap().len() == 10);
    assert!(
        record["latencyMs"].as_f64().unwrap() >= record["integrationLatencyMs"].as_f64().unwrap()
    );

    let status = node.terminate();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn dev_serves_a_given_file_with_stage_variables() {
    let data_dir = tempfile::tempdir().unwrap();
    let api = data_dir.path().join("api.json");
    std::fs::write(
        &api,
        r#"{"openapi":"3.0.1","info":{"title":"t","version":"1"},"paths":{"/v":{"get":{
          "x-amazon-apigateway-integration":{"type":"mock",
            "requestTemplates":{"application/json":"{\"statusCode\": 200}"},
            "responses":{"default":{"statusCode":"200",
              "responseParameters":{"method.response.header.x-stage":"stageVariables.color"}}}}}}}}"#,
    )
    .unwrap();
    let _node_guard;
    let base = {
        let node = Running::start(&[
            "dev",
            "--api",
            api.to_str().unwrap(),
            "--stage",
            "prod",
            "--stage-var",
            "color=blue",
            "--http",
            "127.0.0.1:0",
            "--https",
            "off",
            "--data-dir",
            data_dir.path().to_str().unwrap(),
        ]);
        let base = node.line_starting("http://");
        _node_guard = node;
        base
    };
    assert!(base.ends_with("/prod"), "{base}");
    let reply = get(&format!("{base}/v")).await;
    assert_eq!(reply.headers["x-stage"], "blue");
}

#[test]
fn dev_refuses_bad_arguments_with_clear_errors() {
    for (args, expected) in [
        (vec!["dev", "--stage-var", "novalue"], "is not NAME=VALUE"),
        (vec!["dev", "--http", "nowhere"], "is not an address"),
        (
            vec!["dev", "--lambda-endpoint", "ftp://x"],
            "must be an http:// or https:// URL",
        ),
        (
            vec![
                "dev",
                "--aws-endpoint-url",
                "ftp://x",
                "--http",
                "127.0.0.1:0",
                "--https",
                "off",
            ],
            "--aws-endpoint-url (aws.endpoint_url): \"ftp://x\" must start with http://",
        ),
        (
            vec![
                "dev",
                "--stage",
                "bad stage",
                "--http",
                "127.0.0.1:0",
                "--https",
                "off",
            ],
            "stage name",
        ),
        (
            vec![
                "dev",
                "--api",
                "/nonexistent/api.yaml",
                "--http",
                "127.0.0.1:0",
                "--https",
                "off",
            ],
            "/nonexistent/api.yaml",
        ),
    ] {
        let output = Command::new(BIN).args(&args).output().unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn validate_reports_every_problem_with_file_and_pointer() {
    let good = Command::new(BIN)
        .args([
            "validate",
            &format!("{FIXTURES}/openapi.spec.stage-variables.json"),
        ])
        .output()
        .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("OK"));

    // Warnings (unsupported extensions) are printed; --strict makes them fail.
    let warned = Command::new(BIN)
        .args([
            "validate",
            "--strict",
            &format!("{FIXTURES}/openapi.spec.json"),
        ])
        .output()
        .unwrap();
    assert!(!warned.status.success());
    assert!(String::from_utf8_lossy(&warned.stderr).contains("x-amazon-apigateway-cors"));

    // A broken document: every problem, each naming the file and the JSON pointer.
    let bad_file = format!("{FIXTURES}/petstore-swagger.json");
    let bad = Command::new(BIN)
        .args(["validate", &bad_file])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("Invalid HTTP endpoint"))
        .collect();
    assert_eq!(problems.len(), 3, "{stderr}");
    for problem in problems {
        assert!(problem.starts_with(&bad_file), "{problem}");
        assert!(problem.contains("/paths/"), "{problem}");
        assert!(
            problem.contains("/x-amazon-apigateway-integration/uri"),
            "{problem}"
        );
    }

    // A syntax error names the line and column.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\n  \"openapi\": \"3.0.1\",\n  oops\n}").unwrap();
    let output = Command::new(BIN)
        .args(["validate", broken.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", broken.display())),
        "{stderr}"
    );
}
