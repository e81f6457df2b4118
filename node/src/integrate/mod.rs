//! Integrations: how a routed request reaches its backend and how the answer comes back.
//!
//! One module per integration type (`http` for HTTP and HTTP_PROXY, `lambda` for AWS_PROXY,
//! `mock` for MOCK), sharing the request view of `crate::request` and the pooled client in
//! `client`. Each returns either a response or an [`Failure`]: the client-visible error plus the
//! operator-visible detail, which goes to the access log and never to the client.

pub mod client;
pub mod http;
pub mod lambda;
pub mod mock;
pub mod params;

use std::collections::HashMap;

use ::http::request::Parts;

use crate::body::Body;
use crate::config::compile::CompiledIntegration;
use crate::request::{Failure, RequestView};
use crate::respond::GatewayError;

/// The API Gateway payload limit for REST APIs.
pub const MAX_REQUEST_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Where functions live: the Lambda Invoke API endpoint per function name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionEndpoints {
    /// Function name → endpoint base URL (`http://127.0.0.1:9001`).
    pub by_name: HashMap<String, String>,
    /// Used for every function `by_name` does not list.
    pub default: Option<String>,
}

impl FunctionEndpoints {
    pub fn endpoint_for(&self, function_name: &str) -> Option<&str> {
        self.by_name
            .get(function_name)
            .or(self.default.as_ref())
            .map(String::as_str)
    }
}

/// Node-wide integration settings.
#[derive(Debug, Clone)]
pub struct IntegrationSettings {
    pub functions: FunctionEndpoints,
    /// The account id reported in proxy events (`requestContext.accountId`).
    pub account_id: String,
    /// The region in method ARNs (authorizer events, policies).
    pub region: String,
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        IntegrationSettings {
            functions: FunctionEndpoints::default(),
            account_id: "000000000000".to_string(),
            region: "us-east-1".to_string(),
        }
    }
}

/// The shared machinery integrations use.
#[derive(Debug)]
pub struct Integrations {
    pub client: client::BackendClient,
    pub settings: IntegrationSettings,
}

/// Sends the request to the method's integration.
pub async fn invoke(
    integrations: &Integrations,
    view: &RequestView<'_>,
    body: Body,
) -> Result<::http::Response<Body>, Failure> {
    match &view.method().integration {
        Err(reason) => Err(Failure::new(GatewayError::ApiConfiguration, reason.clone())),
        Ok(CompiledIntegration::Http(integration)) => {
            http::invoke(integrations, integration, view, body).await
        }
        Ok(CompiledIntegration::Lambda(integration)) => {
            lambda::invoke(integrations, integration, view, body).await
        }
        Ok(CompiledIntegration::Mock(integration)) => mock::invoke(integration, view, body).await,
    }
}

/// Reads the whole request body, refusing more than the payload limit.
pub async fn read_body(body: Body) -> Result<bytes::Bytes, Failure> {
    use http_body_util::BodyExt;
    match crate::body::limited(body, MAX_REQUEST_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(request_body_failure(error.as_ref()).unwrap_or_else(|| {
            Failure::new(
                GatewayError::BadRequest,
                format!("reading the request body failed: {error}"),
            )
        })),
    }
}

/// The client's fault, if `error` (or anything in its source chain) is one reading the request
/// body: over the payload limit (413), stalled past the idle timeout (408), or malformed
/// framing (400). A streamed upload's error arrives wrapped in the backend client's, and must
/// not be answered as a backend failure.
pub fn request_body_failure(error: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    use crate::body::ClientBodyError;
    let mut source = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return Some(Failure::new(
                GatewayError::RequestTooLarge,
                "request body over 10 MB",
            ));
        }
        match current.downcast_ref::<ClientBodyError>() {
            Some(idle @ ClientBodyError::Idle(_)) => {
                return Some(Failure::new(GatewayError::RequestTimeout, idle.to_string()));
            }
            Some(malformed @ ClientBodyError::Malformed(_)) => {
                return Some(Failure::new(
                    GatewayError::BadRequest,
                    malformed.to_string(),
                ));
            }
            None => {}
        }
        source = current.source();
    }
    None
}

/// The request's content type for template selection: its media type, lower-cased, without
/// parameters; `application/json` when absent, as API Gateway assumes.
pub fn request_media_type(parts: &Parts) -> String {
    parts
        .headers
        .get(::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|media| !media.is_empty())
        .unwrap_or_else(|| "application/json".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error wrapping another, as the backend client wraps a failed upload.
    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Wrapped(#[source] crate::body::BoxError);

    #[tokio::test]
    async fn client_body_errors_are_found_inside_other_errors() {
        use http_body_util::BodyExt;
        let idle = Wrapped(Box::new(crate::body::ClientBodyError::Idle(
            std::time::Duration::from_secs(20),
        )));
        let failure = request_body_failure(&idle).map(|failure| failure.error);
        assert_eq!(failure, Some(GatewayError::RequestTimeout));
        let over = crate::body::limited(crate::body::full("abc"), 1)
            .collect()
            .await;
        let Err(over) = over else {
            panic!("a body over its limit is refused")
        };
        let too_large = Wrapped(over);
        let failure = request_body_failure(&too_large).map(|failure| failure.error);
        assert_eq!(failure, Some(GatewayError::RequestTooLarge));
        let backend = Wrapped(Box::new(std::io::Error::other("connection refused")));
        assert!(request_body_failure(&backend).is_none());
    }
}
