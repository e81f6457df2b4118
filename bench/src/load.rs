//! Driving load: wrk for HTTP/1.1 (plain and TLS), h2load for HTTP/2, and, only when neither is
//! installed (the CI smoke), a minimal hyper client loop that checks the runner works but is
//! not a measurement.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// One load run's outcome.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub requests: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
    /// Non-2xx responses included in `requests` (wrk and the builtin loop count every response
    /// there; h2load's `requests` are its successes only, so 0).
    pub non_2xx: u64,
}

impl LoadResult {
    pub fn requests_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Which generator drives a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    Wrk,
    H2load,
    /// The fallback loop (smoke only).
    Builtin,
}

/// What to run: the URL, connections, duration, and the CPU list to pin the generator to.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    pub url: &'a str,
    pub connections: u32,
    pub duration: Duration,
    pub cpu: Option<&'a str>,
    pub h2: bool,
    /// Extra request headers (name, value), e.g. `x-api-key`.
    pub headers: &'a [(String, String)],
}

fn pinned(cpu: Option<&str>, program: &str) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.args(["-c", cpu, program]);
            command
        }
        None => Command::new(program),
    }
}

pub fn run(generator: Generator, load: &Load<'_>, scratch: &Path) -> anyhow::Result<LoadResult> {
    match generator {
        Generator::Wrk => run_wrk(load),
        Generator::H2load => run_h2load(load, scratch),
        Generator::Builtin => run_builtin(load),
    }
}

fn run_wrk(load: &Load<'_>) -> anyhow::Result<LoadResult> {
    let seconds = load.duration.as_secs().max(1);
    let output = pinned(load.cpu, "wrk")
        .args(["-t1", "--latency", "--timeout", "5s"])
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{seconds}s"))
        .args(header_args(load.headers))
        .arg(load.url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("parsing wrk's output:\n{text}"))
}

/// `-H "name: value"` for each header: wrk and h2load take the same flag.
fn header_args(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .flat_map(|(name, value)| ["-H".to_string(), format!("{name}: {value}")])
        .collect()
}

/// `35.12us`, `1.20ms`, `2.00s` → microseconds.
fn parse_duration_us(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(number) = text.strip_suffix("us") {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix("ms") {
        (number, 1_000.0)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1_000_000.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60_000_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|value| value * factor)
}

pub fn parse_wrk(text: &str) -> anyhow::Result<LoadResult> {
    let mut result = LoadResult::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => result.p50_us = parse_duration_us(value).unwrap_or(0.0),
            ["99%", value] => result.p99_us = parse_duration_us(value).unwrap_or(0.0),
            [count, "requests", "in", elapsed, ..] => {
                result.requests = count.parse().context("request count")?;
                let elapsed = elapsed.trim_end_matches(',');
                result.seconds = parse_duration_us(elapsed).context("elapsed")? / 1e6;
            }
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                let count = count.parse::<u64>().unwrap_or(0);
                result.errors += count;
                result.non_2xx += count;
            }
            ["Socket", "errors:", rest @ ..] => {
                for word in rest {
                    if let Ok(count) = word.trim_end_matches(',').parse::<u64>() {
                        result.errors += count;
                    }
                }
            }
            _ => {}
        }
    }
    if result.seconds == 0.0 {
        bail!("no `requests in` line");
    }
    Ok(result)
}

fn run_h2load(load: &Load<'_>, scratch: &Path) -> anyhow::Result<LoadResult> {
    let log = scratch.join("h2load.log");
    let _ = std::fs::remove_file(&log);
    let seconds = load.duration.as_secs().max(1);
    let mut command = pinned(load.cpu, "h2load");
    command
        .args(["-t1", "-m1"])
        .arg(format!("-c{}", load.connections))
        .arg(format!("-D{seconds}"))
        .arg(format!("--log-file={}", log.display()))
        .args(header_args(load.headers));
    if !load.h2 {
        command.arg("--h1");
    }
    let output = command.arg(load.url).output().context("running h2load")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "h2load failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut result = parse_h2load(&text).with_context(|| format!("h2load's output:\n{text}"))?;
    // h2load prints no percentiles; its per-request log has every latency.
    let log_text = std::fs::read_to_string(&log).context("reading h2load's log")?;
    let mut latencies: Vec<f64> = log_text
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.trim().parse::<f64>().ok())
        .collect();
    latencies.sort_by(f64::total_cmp);
    result.p50_us = percentile(&latencies, 0.50);
    result.p99_us = percentile(&latencies, 0.99);
    Ok(result)
}

pub fn parse_h2load(text: &str) -> anyhow::Result<LoadResult> {
    let mut result = LoadResult::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("finished in ") {
            let elapsed = rest.split(',').next().unwrap_or("").trim();
            result.seconds = parse_duration_us(elapsed).context("elapsed")? / 1e6;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            // "N total, N started, N done, N succeeded, N failed, N errored, N timeout"
            for part in rest.split(',') {
                let words: Vec<&str> = part.split_whitespace().collect();
                if let [count, kind] = words.as_slice() {
                    let count: u64 = count.parse().unwrap_or(0);
                    match *kind {
                        "succeeded" => result.requests = count,
                        // `failed` counts every request that did not succeed (errors,
                        // timeouts and 4xx/5xx), so it alone is the error count.
                        "failed" => result.errors += count,
                        _ => {}
                    }
                }
            }
        }
    }
    if result.seconds == 0.0 {
        bail!("no `finished in` line");
    }
    Ok(result)
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// One GET over a fresh connection; the status and body. Used to check a target before load.
pub fn get_once(url: &str) -> anyhow::Result<(u16, bytes::Bytes)> {
    get_once_with(url, &[])
}

/// [`get_once`] with extra request headers.
pub fn get_once_with(
    url: &str,
    headers: &[(String, String)],
) -> anyhow::Result<(u16, bytes::Bytes)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (authority, path) = split_url(url)?;
        let stream = tokio::net::TcpStream::connect(authority).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            sender.send_request(request(authority, path, headers)?),
        )
        .await
        .context("timed out")??;
        let status = response.status().as_u16();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await?
            .to_bytes();
        Ok((status, body))
    })
}

fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .context("the built-in client speaks plain http only")?;
    Ok(match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    })
}

fn request(
    authority: &str,
    path: &str,
    headers: &[(String, String)],
) -> anyhow::Result<http::Request<http_body_util::Empty<bytes::Bytes>>> {
    // A `Host` among `headers` (the cluster's edges route by it) replaces the URL's.
    let mut builder = http::Request::get(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        builder = builder.header(http::header::HOST, authority);
    }
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    Ok(builder.body(http_body_util::Empty::new())?)
}

/// The smoke's fallback: `connections` keep-alive connections in a loop for the duration.
fn run_builtin(load: &Load<'_>) -> anyhow::Result<LoadResult> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (authority, path) = split_url(load.url)?;
    let deadline = Instant::now() + load.duration;
    runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..load.connections {
            let authority = authority.to_string();
            let path = path.to_string();
            let headers = load.headers.to_vec();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let stream = tokio::net::TcpStream::connect(&authority).await?;
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await?;
                tokio::spawn(connection);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = sender
                        .send_request(request(&authority, &path, &headers)?)
                        .await?;
                    let ok = response.status().is_success();
                    http_body_util::BodyExt::collect(response.into_body()).await?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1e6);
                    if !ok {
                        errors += 1;
                    }
                }
                anyhow::Ok((latencies, errors))
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut some, some_errors) = task.await??;
            latencies.append(&mut some);
            errors += some_errors;
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        Ok(LoadResult {
            requests: latencies.len() as u64,
            seconds,
            p50_us: percentile(&latencies, 0.50),
            p99_us: percentile(&latencies, 0.99),
            errors,
            non_2xx: errors,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n  Latency Distribution\n     50%  412.00us\n     75%  500.00us\n     90%  1.00ms\n     99%    2.50ms\n  123456 requests in 5.00s, 20.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  24691.20\n";
        let result = parse_wrk(text).unwrap();
        assert_eq!(result.requests, 123456);
        assert_eq!(result.seconds, 5.0);
        assert_eq!(result.p50_us, 412.0);
        assert_eq!(result.p99_us, 2500.0);
        assert_eq!(result.errors, 7);
        assert_eq!(result.non_2xx, 4);
    }

    #[test]
    fn parses_h2load() {
        let text = "finished in 5.00s, 20000.00 req/s, 3.00MB/s\nrequests: 100000 total, 100064 started, 100000 done, 99990 succeeded, 10 failed, 0 errored, 0 timeout\nstatus codes: 99990 2xx, 0 3xx, 0 4xx, 10 5xx\n";
        let result = parse_h2load(text).unwrap();
        assert_eq!(result.requests, 99990);
        assert_eq!(result.errors, 10);
        assert_eq!(result.seconds, 5.0);
    }

    #[test]
    fn headers_become_dash_h_flags() {
        let headers = [("x-api-key".to_string(), "v".repeat(20))];
        assert_eq!(
            header_args(&headers),
            ["-H".to_string(), format!("x-api-key: {}", "v".repeat(20))]
        );
    }
}
