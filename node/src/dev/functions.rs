//! A small Lambda Invoke API server hosting in-process functions.
//!
//! `portico dev` uses it to run the bundled example's functions, so AWS_PROXY routes work on a
//! fresh machine with nothing else installed; tests use it as a real function endpoint. It
//! speaks the wire contract of `POST /2015-03-31/functions/{FunctionName}/invocations` from
//! botocore's `lambda` model (invocation types, `X-Amz-Function-Error`, error payloads,
//! `ResourceNotFoundException`), which is what AWS_PROXY calls whichever server is behind it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use std::time::Duration;

use crate::accept::{self, Listener, Shutdown};
use crate::body::{self, Body};

/// A function's failure, reported as Lambda reports an unhandled error.
#[derive(Debug, Clone)]
pub struct FunctionError {
    pub error_type: String,
    pub message: String,
}

/// A function: event in, result out.
pub type Handler =
    Arc<dyn Fn(serde_json::Value) -> Result<serde_json::Value, FunctionError> + Send + Sync>;

/// Invoke payloads above Lambda's 6 MB synchronous limit are refused.
const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// Serves `functions` on `listener` until `shutdown` fires.
pub fn serve(
    listener: tokio::net::TcpListener,
    functions: HashMap<String, Handler>,
    shutdown: &Shutdown,
) -> std::io::Result<Listener> {
    let functions = Arc::new(functions);
    accept::serve(
        listener,
        None,
        shutdown,
        Duration::from_secs(5),
        move |request, _remote| {
            let functions = functions.clone();
            async move { invoke(&functions, request).await }
        },
    )
}

fn error(status: StatusCode, error_type: &'static str, message: &str) -> Response<Body> {
    let payload = serde_json::json!({ "Type": "User", "message": message }).to_string();
    let mut response = Response::new(body::full(payload));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn invoke(
    functions: &HashMap<String, Handler>,
    request: Request<Incoming>,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    let Some(name) = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation",
        );
    };
    if request.method() != http::Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            "Invoke takes POST",
        );
    }
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .into_owned();
    // A name, a partial ARN (`123:function:name`) or a full ARN all name the same function.
    let short = name.rsplit(":function:").next().unwrap_or(&name);
    let short = short.split(':').next().unwrap_or(short);
    let Some(handler) = functions.get(short) else {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        );
    };
    let invocation_type = request
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_string();
    let payload = match http_body_util::Limited::new(request.into_body(), MAX_PAYLOAD_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
            );
        }
    };
    let event: serde_json::Value = if payload.is_empty() {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(&payload) {
            Ok(event) => event,
            Err(parse_error) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    &format!("Could not parse request body into json: {parse_error}"),
                );
            }
        }
    };
    match invocation_type.as_str() {
        "DryRun" => return status_only(StatusCode::NO_CONTENT),
        "Event" => {
            let handler = handler.clone();
            tokio::task::spawn_blocking(move || handler(event));
            return status_only(StatusCode::ACCEPTED);
        }
        _ => {}
    }
    let handler = handler.clone();
    let outcome = match tokio::task::spawn_blocking(move || handler(event)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(FunctionError {
            error_type: "Runtime.ExitError".to_string(),
            message: "the function panicked".to_string(),
        }),
    };
    let (payload, failed) = match outcome {
        Ok(value) => (value, false),
        Err(failure) => (
            serde_json::json!({
                "errorMessage": failure.message,
                "errorType": failure.error_type,
                "stackTrace": [],
            }),
            true,
        ),
    };
    let mut response = Response::new(body::full(Bytes::from(payload.to_string())));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    if failed {
        headers.insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    response
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    response
}
