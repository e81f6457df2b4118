//! The demo backends `portico dev` starts for the bundled example: a small pet service behind
//! the HTTP routes and a `hello` function behind the AWS_PROXY routes, both on loopback, so the
//! first command a new user runs shows every integration type answering.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::functions::{self, FunctionError, Handler};
use crate::accept::{self, Listener, Shutdown};
use crate::body::{self, Body};

/// The bundled example API (`deploy/examples/petstore.yaml`).
pub const EXAMPLE_API: &str = include_str!("../../../deploy/examples/petstore.yaml");
pub const EXAMPLE_API_NAME: &str = "deploy/examples/petstore.yaml";

const PETS: &str = r#"[{"id":1,"type":"dog","price":249.99},{"id":2,"type":"cat","price":124.99},{"id":3,"type":"fish","price":0.99}]"#;

fn json(status: StatusCode, payload: String) -> Response<Body> {
    let mut response = Response::new(body::full(payload));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn pets(request: Request<Incoming>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["pets"]) => {
            let wanted = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("type="))
                .map(str::to_string);
            let all: Vec<serde_json::Value> = serde_json::from_str(PETS).unwrap_or_default();
            let list: Vec<&serde_json::Value> = all
                .iter()
                .filter(|pet| wanted.as_deref().is_none_or(|kind| pet["type"] == kind))
                .collect();
            json(StatusCode::OK, serde_json::json!(list).to_string())
        }
        ("GET", ["pets", id]) => {
            let all: Vec<serde_json::Value> = serde_json::from_str(PETS).unwrap_or_default();
            match all
                .iter()
                .find(|pet| id.parse::<u64>().is_ok_and(|id| pet["id"] == id))
            {
                Some(pet) => json(StatusCode::OK, pet.to_string()),
                None => json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({ "message": format!("no pet {id}") }).to_string(),
                ),
            }
        }
        ("POST", ["pets"]) => {
            let bytes = match request.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return json(StatusCode::BAD_REQUEST, "{}".into()),
            };
            match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(mut pet) if pet.is_object() => {
                    pet["id"] = serde_json::json!(4);
                    json(StatusCode::CREATED, pet.to_string())
                }
                _ => json(
                    StatusCode::BAD_REQUEST,
                    r#"{"message":"expected a JSON object"}"#.into(),
                ),
            }
        }
        _ => json(StatusCode::NOT_FOUND, r#"{"message":"not found"}"#.into()),
    }
}

/// The `hello` function: answers with a greeting and what it saw of the proxy event.
pub fn hello(event: serde_json::Value) -> Result<serde_json::Value, FunctionError> {
    let name = event["queryStringParameters"]["name"]
        .as_str()
        .unwrap_or("world")
        .to_string();
    let reply = serde_json::json!({
        "message": format!("Hello, {name}! (from a function behind AWS_PROXY)"),
        "resource": event["resource"],
        "path": event["path"],
        "pathParameters": event["pathParameters"],
        "stage": event["requestContext"]["stage"],
        "requestId": event["requestContext"]["requestId"],
        "authorizer": event["requestContext"]["authorizer"],
    });
    Ok(serde_json::json!({
        "statusCode": 200,
        "headers": { "Content-Type": "application/json" },
        "body": reply.to_string(),
    }))
}

/// The `authorizer` function, a Lambda TOKEN authorizer: `Bearer allow` is allowed every
/// method of the stage, `Bearer deny` is denied explicitly, anything else is Unauthorized.
pub fn authorizer(event: serde_json::Value) -> Result<serde_json::Value, FunctionError> {
    let token = event["authorizationToken"].as_str().unwrap_or("");
    let arn = event["methodArn"].as_str().unwrap_or("");
    // arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}: the whole stage.
    let stage: Vec<&str> = arn.splitn(3, '/').take(2).collect();
    let effect = match token {
        "Bearer allow" => "Allow",
        "Bearer deny" => "Deny",
        _ => {
            return Err(FunctionError {
                error_type: "Error".to_string(),
                message: "Unauthorized".to_string(),
            });
        }
    };
    Ok(serde_json::json!({
        "principalId": "demo-user",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": effect,
                "Resource": format!("{}/*", stage.join("/")),
            }],
        },
        "context": { "plan": "demo" },
    }))
}

/// The demo function endpoint's functions.
pub fn functions() -> HashMap<String, Handler> {
    let mut map: HashMap<String, Handler> = HashMap::new();
    map.insert("hello".to_string(), Arc::new(hello));
    map.insert("authorizer".to_string(), Arc::new(authorizer));
    map
}

/// Starts the pet service and the function endpoint on loopback ports of the OS's choosing.
pub async fn start(shutdown: &Shutdown) -> std::io::Result<(Listener, Listener)> {
    let pets_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let pets_server = accept::serve(
        pets_listener,
        None,
        shutdown,
        Duration::from_secs(5),
        |request, _remote| pets(request),
    )?;
    let functions_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let function_server = functions::serve(functions_listener, functions(), shutdown)?;
    Ok((pets_server, function_server))
}
