//! MOCK integrations: the answer comes from the integration itself, never a backend.
//!
//! As in API Gateway, the request template (`{"statusCode": 200}`) yields the integration's
//! status, which selects an integration response; that response's status, header mappings and
//! template make the method response. CORS preflight `OPTIONS` methods are the common case.

use bytes::Bytes;
use http::{HeaderMap, Response};

use crate::body::Body;
use crate::config::compile::MockIntegration;
use crate::request::{Failure, RequestView};
use crate::respond::GatewayError;

pub async fn invoke(
    integration: &MockIntegration,
    view: &RequestView<'_>,
    body: Body,
) -> Result<Response<Body>, Failure> {
    // The body only matters for passthrough; read it so the connection stays reusable.
    let body = super::read_body(body).await?;
    let media_type = super::request_media_type(view.parts);
    let template = super::http::request_body(
        &integration.request_templates,
        integration.passthrough,
        &media_type,
        body,
    )?;
    let status = mock_status(&template)?;
    let selected = integration
        .responses
        .select(&status.to_string())
        .ok_or_else(|| {
            Failure::new(
                GatewayError::ApiConfiguration,
                format!(
                    "no integration response matches mock status {status} and none is the default"
                ),
            )
        })?;
    super::http::respond(selected, &HeaderMap::new(), Bytes::new(), view)
}

/// The status a rendered mock request template asks for; 200 when it names none.
fn mock_status(rendered: &[u8]) -> Result<u16, Failure> {
    let text = std::str::from_utf8(rendered).unwrap_or("").trim();
    if text.is_empty() {
        return Ok(200);
    }
    let invalid = |detail: String| Failure::new(GatewayError::ApiConfiguration, detail);
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| invalid(format!("the mock request template is not JSON: {error}")))?;
    match value.get("statusCode") {
        None => Ok(200),
        Some(serde_json::Value::Number(number)) => number
            .as_u64()
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(|| invalid(format!("mock statusCode {number} is not an HTTP status"))),
        Some(serde_json::Value::String(text)) => text
            .parse::<u16>()
            .ok()
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(|| invalid(format!("mock statusCode {text:?} is not an HTTP status"))),
        Some(other) => Err(invalid(format!(
            "mock statusCode {other} is not an HTTP status"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_status_from_template() {
        assert_eq!(mock_status(b"{\"statusCode\": 200}").ok(), Some(200));
        assert_eq!(mock_status(b"{\"statusCode\": \"404\"}").ok(), Some(404));
        assert_eq!(mock_status(b"").ok(), Some(200));
        assert_eq!(mock_status(b"{}").ok(), Some(200));
        assert!(mock_status(b"{\"statusCode\": 99}").is_err());
        assert!(mock_status(b"nope").is_err());
    }
}
