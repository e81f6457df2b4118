//! Authorization state reaches every edge of a two-region cluster:
//!
//! - FlushStageAuthorizersCache through an origin's management API: each edge has cached the
//!   Lambda authorizer's decision for a token (its own cache: one call per edge, then none),
//!   and after the flush's 202 every edge calls the function again for that token within a
//!   bound (the flush bumps `GatewayState.authorizer_generations`, part of each edge's
//!   authorizer cache key). Prints the time from the 202 to each edge's first re-invocation.
//! - DeleteAccessKey through the IAM endpoint: an AWS_IAM method that every edge admits with a
//!   SigV4-signed request becomes 403 `UnrecognizedClientException` on every edge within a
//!   bound. Prints the time per edge.
//!
//! The authorizer and the integration are functions served by an in-process Lambda Invoke API
//! endpoint in this test process; every edge's `[functions]` points at it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, anyhow, bail, ensure};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use portico::dev::functions::{FunctionError, Handler};
use portico_cluster_tests::harness::{Cluster, Topology, WAIT, wait_for};

const AUTHORIZER_URI: &str = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:authorizer/invocations";
const ECHO_URI: &str =
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations";
/// The token whose cached decision the flush must reach on every edge.
const TOKEN: &str = "flush-me";
/// Flush rounds, for a spread of timings.
const FLUSHES: u64 = 5;
/// How long after the management API's answer every edge must have acted on it.
const BOUND: Duration = Duration::from_secs(5);

/// `GET /who` behind a TOKEN authorizer (decisions cached 300 s), `POST /who` behind AWS_IAM;
/// both proxy the `echo` function.
fn definition() -> String {
    format!(
        r#"openapi: 3.0.1
info: {{ title: authz, version: "1" }}
components:
  securitySchemes:
    tok:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: {AUTHORIZER_URI}
        authorizerResultTtlInSeconds: 300
paths:
  /who:
    get:
      security: [{{ tok: [] }}]
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
    post:
      x-amazon-apigateway-auth: {{ type: aws_iam }}
      x-amazon-apigateway-integration: {{ type: aws_proxy, httpMethod: POST, uri: "{ECHO_URI}" }}
"#
    )
}

/// Calls of the authorizer, by token.
type Calls = Arc<Mutex<HashMap<String, usize>>>;

fn calls_of(calls: &Calls, token: &str) -> usize {
    calls
        .lock()
        .map(|calls| calls.get(token).copied().unwrap_or(0))
        .unwrap_or(0)
}

/// The functions: `authorizer` counts its calls per token and allows the whole stage of the
/// method ARN it is asked about; `echo` answers the event it received.
fn functions(calls: Calls) -> HashMap<String, Handler> {
    let mut map: HashMap<String, Handler> = HashMap::new();
    map.insert(
        "echo".into(),
        Arc::new(|event| {
            Ok(serde_json::json!({
                "statusCode": 200,
                "headers": {"content-type": "application/json"},
                "body": event.to_string(),
            }))
        }),
    );
    map.insert(
        "authorizer".into(),
        Arc::new(move |event: serde_json::Value| {
            let token = event["authorizationToken"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if let Ok(mut calls) = calls.lock() {
                *calls.entry(token).or_default() += 1;
            }
            let Some(arn) = event["methodArn"].as_str() else {
                return Err(FunctionError {
                    error_type: "Error".into(),
                    message: "no methodArn".into(),
                });
            };
            // arn:aws:execute-api:{region}:{account}:{api}/{stage}/{VERB}/{path}
            let api_and_stage = arn.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
            Ok(serde_json::json!({
                "principalId": "user-1",
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Action": "execute-api:Invoke",
                        "Effect": "Allow",
                        "Resource": format!("{api_and_stage}/*"),
                    }],
                },
            }))
        }),
    );
    map
}

/// An edge's answer: status, `x-amzn-ErrorType` (if any) and body.
#[derive(Debug)]
struct Reply {
    status: u16,
    error_type: Option<String>,
    body: String,
}

/// One HTTP/1.1 exchange with `Connection: close`; `None` if the edge did not answer within
/// five seconds (room for the authorizer and the function).
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<Reply> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream.write_all(&bytes).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let error_type = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("x-amzn-errortype")
                .then(|| value.trim().to_string())
        });
        Some(Reply {
            status,
            error_type,
            body: body.to_string(),
        })
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// `GET /prod/who` with `Authorization: {token}`.
async fn get_with_token(addr: SocketAddr, host: &str, token: &str) -> Option<Reply> {
    let headers = [
        ("host".to_string(), host.to_string()),
        ("authorization".to_string(), token.to_string()),
    ];
    exchange(addr, "GET", "/prod/who", &headers, b"").await
}

/// `POST /prod/who`, signed now with SigV4 for `execute-api` in `region`.
async fn signed_post(
    addr: SocketAddr,
    host: &str,
    key_id: &str,
    secret: &str,
    region: &str,
) -> anyhow::Result<Option<Reply>> {
    let body = br#"{"hello":"world"}"#;
    let uri = format!("http://{host}/prod/who");
    let identity = Credentials::new(key_id, secret, None, None, "cluster-test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| anyhow!("signing parameters: {error}"))?
        .into();
    let headers = [("host", host), ("content-type", "application/json")];
    let signable = SignableRequest::new(
        "POST",
        uri.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|error| anyhow!("signable request: {error}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|error| anyhow!("signing: {error}"))?
        .into_parts();
    let mut request = http::Request::post(uri.as_str())
        .header("host", host)
        .header("content-type", "application/json")
        .body(())?;
    instructions.apply_to_request_http1x(&mut request);
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            Ok((
                name.to_string(),
                value.to_str().context("a signed header")?.to_string(),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(exchange(addr, "POST", "/prod/who", &headers, body).await)
}

/// The text of the first `<tag>...</tag>` in `xml`.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_string())
}

/// The authorizer generation of `{api_id}/prod` in the state an edge last persisted.
fn edge_authorizer_generation(cluster: &Cluster, edge: u64, api_id: &str) -> Option<u64> {
    let path = cluster.nodes[&edge].data_dir.join("edge-state.bin");
    let bytes = std::fs::read(path).ok()?;
    let state: portico_proto::GatewayState = portico_proto::codec::decode(&bytes).ok()?;
    Some(
        state
            .authorizer_generations
            .get(&portico_proto::admin::cache_generation_key(api_id, "prod"))
            .copied()
            .unwrap_or(0),
    )
}

fn median_and_max(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_flush_and_key_deletion_reach_every_edge() -> anyhow::Result<()> {
    let calls: Calls = Arc::default();
    let shutdown = portico::accept::Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = portico::dev::functions::serve(listener, functions(calls.clone()), &shutdown)?;
    let topology = Topology {
        regions: vec!["a".into(), "b".into()],
        origins_per_region: 1,
        edges_per_region: 1,
        delay: Duration::from_millis(50),
        snapshot_every: None,
        admin: true,
    };
    let edge_config = format!(
        "[functions]\ndefault = \"http://{}\"\n",
        endpoint.local_addr
    );
    let mut cluster = Cluster::start_with_edge_config(&topology, &edge_config).await?;
    let leader = wait_for(WAIT, "a leader", || {
        let leader = cluster.leader();
        async move { leader }
    })
    .await?;
    // Writes through the origin of the other region: a follower forwards them to the leader.
    let origin = cluster
        .origins()
        .into_iter()
        .find(|id| *id != leader)
        .context("two origins")?;
    let api_id = cluster.apply(origin, "authz", &definition())?;
    let host = format!("{api_id}.execute-api.portico.test");
    let edges = cluster.edges();
    let edge_addr = |edge: u64| cluster.nodes[&edge].http_addr.expect("edges serve HTTP");

    // Every edge serves the API through the authorizer (with a token of its own).
    for edge in &edges {
        let addr = edge_addr(*edge);
        let reply = wait_for(WAIT, &format!("edge {edge} to serve GET /who"), || {
            let host = host.clone();
            async move {
                get_with_token(addr, &host, "warm-up")
                    .await
                    .filter(|reply| reply.status == 200)
            }
        })
        .await?;
        ensure!(
            reply.body.contains(r#""principalId":"user-1""#),
            "edge {edge}: the authorizer's principal does not reach the function: {}",
            reply.body
        );
    }

    // --- FlushStageAuthorizersCache ---------------------------------------------------------
    // One call per edge: each edge has a decision cache of its own.
    for edge in &edges {
        let before = calls_of(&calls, TOKEN);
        let reply = get_with_token(edge_addr(*edge), &host, TOKEN)
            .await
            .with_context(|| format!("edge {edge} answers"))?;
        ensure!(reply.status == 200, "edge {edge}: {reply:?}");
        ensure!(
            calls_of(&calls, TOKEN) == before + 1,
            "edge {edge} did not call the authorizer once for a new token"
        );
    }
    ensure!(calls_of(&calls, TOKEN) == edges.len());
    // Cached: no new call on any edge.
    for edge in &edges {
        let reply = get_with_token(edge_addr(*edge), &host, TOKEN)
            .await
            .with_context(|| format!("edge {edge} answers"))?;
        ensure!(reply.status == 200, "edge {edge}: {reply:?}");
    }
    ensure!(
        calls_of(&calls, TOKEN) == edges.len(),
        "a cached decision called the authorizer again"
    );

    let mut flush_samples: BTreeMap<u64, Vec<Duration>> = BTreeMap::new();
    for round in 1..=FLUSHES {
        let path = format!("/restapis/{api_id}/stages/prod/cache/authorizers");
        let (status, body) = cluster.admin_call(origin, "DELETE", &path, None)?;
        ensure!(status == 202, "FlushStageAuthorizersCache: {status} {body}");
        let acknowledged = Instant::now();
        let mut pending = edges.clone();
        while !pending.is_empty() {
            if acknowledged.elapsed() > BOUND {
                let logs: String = pending
                    .iter()
                    .map(|edge| format!("edge {edge}:\n{}", cluster.log_of(*edge)))
                    .collect();
                bail!(
                    "flush {round}: edges {pending:?} still serve the cached decision {BOUND:?} \
                     after the 202\n{logs}"
                );
            }
            let mut still = Vec::new();
            for edge in pending {
                let before = calls_of(&calls, TOKEN);
                let reply = get_with_token(edge_addr(edge), &host, TOKEN).await;
                let answered = reply.as_ref().map(|reply| reply.status);
                ensure!(
                    answered == Some(200),
                    "flush {round}, edge {edge}: {reply:?}"
                );
                if calls_of(&calls, TOKEN) > before {
                    flush_samples
                        .entry(edge)
                        .or_default()
                        .push(acknowledged.elapsed());
                } else {
                    still.push(edge);
                }
            }
            pending = still;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for edge in &edges {
            // The edge runs on the new generation, and the new decision is cached again.
            ensure!(
                edge_authorizer_generation(&cluster, *edge, &api_id) == Some(round),
                "edge {edge} after flush {round}: generation {:?}",
                edge_authorizer_generation(&cluster, *edge, &api_id)
            );
            let before = calls_of(&calls, TOKEN);
            let reply = get_with_token(edge_addr(*edge), &host, TOKEN)
                .await
                .with_context(|| format!("edge {edge} answers"))?;
            ensure!(reply.status == 200, "edge {edge}: {reply:?}");
            ensure!(
                calls_of(&calls, TOKEN) == before,
                "edge {edge} did not cache the decision it made after flush {round}"
            );
        }
        ensure!(calls_of(&calls, TOKEN) == edges.len() * (round as usize + 1));
    }
    let via = cluster.nodes[&origin].region.clone();
    for (edge, samples) in &mut flush_samples {
        let region = &cluster.nodes[edge].region;
        let (median, max) = median_and_max(samples);
        println!(
            "authorizer flush -> edge {edge} (region {region}; 50 ms one way between regions; \
             {FLUSHES} flushes through the follower origin of region {via}): first re-invocation \
             p50 {median:?}, max {max:?} after the 202"
        );
    }
    let (status, body) = cluster.admin_call(
        origin,
        "DELETE",
        &format!("/restapis/{api_id}/stages/nope/cache/authorizers"),
        None,
    )?;
    ensure!(status == 404, "flush of a missing stage: {status} {body}");

    // --- DeleteAccessKey --------------------------------------------------------------------
    let iam = |params: &[(&str, &str)]| -> anyhow::Result<String> {
        let (status, xml) = cluster.iam_call(origin, params)?;
        ensure!(status == 200, "IAM {params:?}: {status} {xml}");
        Ok(xml)
    };
    iam(&[("Action", "CreateUser"), ("UserName", "caller")])?;
    let xml = iam(&[("Action", "CreateAccessKey"), ("UserName", "caller")])?;
    let key_id = xml_value(&xml, "AccessKeyId").context("an access key id")?;
    let secret = xml_value(&xml, "SecretAccessKey").context("a secret")?;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:{api_id}/prod/POST/*"}}]}}"#
    );
    iam(&[
        ("Action", "PutUserPolicy"),
        ("UserName", "caller"),
        ("PolicyName", "invoke"),
        ("PolicyDocument", &policy),
    ])?;
    // Each edge admits the key once it holds the user, the policy and its region's signing
    // keys (callers sign for the edge's region).
    for edge in &edges {
        let addr = edge_addr(*edge);
        let region = cluster.nodes[edge].region.clone();
        let reply = wait_for(WAIT, &format!("edge {edge} to admit the key"), || {
            let (host, key_id, secret, region) =
                (host.clone(), key_id.clone(), secret.clone(), region.clone());
            async move {
                signed_post(addr, &host, &key_id, &secret, &region)
                    .await
                    .ok()
                    .flatten()
                    .filter(|reply| reply.status == 200)
            }
        })
        .await?;
        ensure!(
            reply.body.contains(&format!(r#""accessKey":"{key_id}""#)),
            "edge {edge}: the caller's identity does not reach the function: {}",
            reply.body
        );
    }

    iam(&[
        ("Action", "DeleteAccessKey"),
        ("UserName", "caller"),
        ("AccessKeyId", &key_id),
    ])?;
    let acknowledged = Instant::now();
    let mut refused: BTreeMap<u64, Duration> = BTreeMap::new();
    while refused.len() < edges.len() {
        if acknowledged.elapsed() > BOUND {
            let pending: Vec<u64> = edges
                .iter()
                .filter(|edge| !refused.contains_key(edge))
                .copied()
                .collect();
            bail!("edges {pending:?} still admit the deleted key {BOUND:?} after the answer");
        }
        for edge in &edges {
            if refused.contains_key(edge) {
                continue;
            }
            let region = &cluster.nodes[edge].region;
            let reply = signed_post(edge_addr(*edge), &host, &key_id, &secret, region).await?;
            match reply {
                Some(reply) if reply.status == 200 => {}
                Some(reply)
                    if reply.status == 403
                        && reply.error_type.as_deref() == Some("UnrecognizedClientException") =>
                {
                    refused.insert(*edge, acknowledged.elapsed());
                }
                other => bail!("edge {edge} after DeleteAccessKey: {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // And it sticks.
    for _ in 0..5 {
        for edge in &edges {
            let region = &cluster.nodes[edge].region;
            let reply = signed_post(edge_addr(*edge), &host, &key_id, &secret, region).await?;
            let status = reply.as_ref().map(|reply| reply.status);
            ensure!(
                status == Some(403),
                "edge {edge} admitted the deleted key again: {reply:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (edge, took) in &refused {
        println!(
            "access key deleted -> edge {edge} (region {}) answers 403 UnrecognizedClientException \
             {took:?} after the IAM answer (through the follower origin of region {via})",
            cluster.nodes[edge].region
        );
    }
    drop(cluster);
    shutdown.trigger();
    drop(endpoint);
    Ok(())
}
