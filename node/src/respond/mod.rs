//! Every error the gateway itself answers with, mapped to a response in one place.
//!
//! Pipeline stages return a [`GatewayError`]; only this module decides the status, the
//! client-visible message and the `x-amzn-ErrorType` header, so that what a client sees matches
//! Amazon API Gateway's recorded behaviour (see `../shared/AWS-FACTS.md` §2) and cannot drift
//! between stages. The internal detail an operator needs goes to the log, never to the client.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{self, Body};

pub mod gateway;

/// The longest request target (path and query) served: API Gateway's limit on a regional API's
/// URL, 10,240 characters, applied to the part of the URL the client controls.
pub const MAX_REQUEST_TARGET_BYTES: usize = 10_240;

/// The gateway responses of API Gateway (`GatewayResponseType`) that this node can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// No such resource, method or stage (API Gateway answers 403, not 404).
    MissingAuthenticationToken,
    /// The Host names no API this node serves.
    UnknownApi,
    /// The integration is misconfigured (e.g. a stage variable it needs is missing).
    ApiConfiguration,
    /// The backend could not be reached or failed at the transport level.
    IntegrationFailure,
    /// The backend did not answer within the integration timeout.
    IntegrationTimeout,
    /// A function's reply was malformed, or the function raised.
    BadFunctionResponse,
    /// The request body exceeds the 10 MB payload limit.
    RequestTooLarge,
    /// No mapping template matches the request's content type and passthrough is off.
    UnsupportedMediaType,
    /// The request could not be understood: a missing, repeated or malformed Host, broken body
    /// framing, a path that would leave the integration's base, and the like.
    BadRequest,
    /// The request target is longer than [`MAX_REQUEST_TARGET_BYTES`].
    UriTooLong,
    /// The client stopped sending its request body (idle past the body read timeout).
    RequestTimeout,
    /// The method requires an API key and the request's is missing, unknown, disabled or in
    /// no usage plan of the stage (`INVALID_API_KEY`).
    Forbidden,
    /// A token bucket refused the request (`THROTTLED`).
    Throttled,
    /// The usage plan's quota is spent (`QUOTA_EXCEEDED`).
    QuotaExceeded,
    /// An authorizer found no identity, or refused it (`UNAUTHORIZED`).
    Unauthorized,
    /// A policy does not allow the caller (`ACCESS_DENIED`); the message names why.
    AccessDenied,
    /// An authorizer could not decide: its function failed, answered nonsense or cannot be
    /// reached (`AUTHORIZER_CONFIGURATION_ERROR`, message `null` as on AWS).
    AuthorizerConfiguration,
    /// A SigV4 signature does not verify or has expired (`INVALID_SIGNATURE`).
    InvalidSignature,
    /// A SigV4 signature names an unknown access key.
    UnrecognizedClient,
    /// A SigV4 signature is incomplete or unparsable (no Credential, no SignedHeaders...).
    IncompleteSignature,
}

/// What a client sees for one error: status, `x-amzn-ErrorType` and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorView {
    pub status: StatusCode,
    pub error_type: &'static str,
    /// `None` is JSON `null` (AWS's authorizer configuration errors).
    pub message: Option<&'static str>,
}

impl GatewayError {
    pub fn view(self) -> ErrorView {
        let (status, error_type, message) = match self {
            GatewayError::MissingAuthenticationToken => (
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            GatewayError::UnknownApi => (StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden"),
            // API Gateway answers configuration errors and transport failures alike with a
            // bare 500 (recorded: HTTP_PROXY to an unreachable backend).
            GatewayError::ApiConfiguration | GatewayError::IntegrationFailure => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                "Internal server error",
            ),
            GatewayError::IntegrationTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "InternalServerErrorException",
                "Endpoint request timed out",
            ),
            GatewayError::BadFunctionResponse => (
                StatusCode::BAD_GATEWAY,
                "InternalServerErrorException",
                "Internal server error",
            ),
            GatewayError::RequestTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                "Request Too Long",
            ),
            GatewayError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaTypeException",
                "Unsupported Media Type",
            ),
            GatewayError::Forbidden => (StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden"),
            GatewayError::Throttled => (
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Too Many Requests",
            ),
            GatewayError::QuotaExceeded => (
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                "Limit Exceeded",
            ),
            GatewayError::BadRequest => (
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                "Bad Request",
            ),
            // Neither is recorded from AWS (its edge answers them before API Gateway sees the
            // request); the types are the ones AWS's SDKs know (botocore retries
            // `RequestTimeoutException`).
            GatewayError::UriTooLong => (
                StatusCode::URI_TOO_LONG,
                "BadRequestException",
                "Request-URI Too Long",
            ),
            GatewayError::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                "Request Timeout",
            ),
            GatewayError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UnauthorizedException",
                "Unauthorized",
            ),
            GatewayError::AccessDenied => (
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "User is not authorized to access this resource",
            ),
            GatewayError::AuthorizerConfiguration => {
                return ErrorView {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    error_type: "AuthorizerConfigurationException",
                    message: None,
                };
            }
            GatewayError::InvalidSignature => (
                StatusCode::FORBIDDEN,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ),
            GatewayError::UnrecognizedClient => (
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            // The message says what is missing; the failure carries it.
            GatewayError::IncompleteSignature => (
                StatusCode::FORBIDDEN,
                "IncompleteSignatureException",
                "The request signature is incomplete.",
            ),
        };
        ErrorView {
            status,
            error_type,
            message: Some(message),
        }
    }

    /// The API Gateway response type this error is answered with (`GatewayResponseType`);
    /// `None` falls to DEFAULT_4XX or DEFAULT_5XX by status.
    pub fn response_type(self) -> Option<&'static str> {
        Some(match self {
            GatewayError::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            GatewayError::ApiConfiguration => "API_CONFIGURATION_ERROR",
            GatewayError::IntegrationFailure => "INTEGRATION_FAILURE",
            GatewayError::IntegrationTimeout => "INTEGRATION_TIMEOUT",
            GatewayError::RequestTooLarge => "REQUEST_TOO_LARGE",
            GatewayError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            GatewayError::Forbidden => "INVALID_API_KEY",
            GatewayError::Throttled => "THROTTLED",
            GatewayError::QuotaExceeded => "QUOTA_EXCEEDED",
            GatewayError::Unauthorized => "UNAUTHORIZED",
            GatewayError::AccessDenied => "ACCESS_DENIED",
            GatewayError::AuthorizerConfiguration => "AUTHORIZER_CONFIGURATION_ERROR",
            GatewayError::InvalidSignature => "INVALID_SIGNATURE",
            GatewayError::UnknownApi
            | GatewayError::BadFunctionResponse
            | GatewayError::BadRequest
            | GatewayError::UriTooLong
            | GatewayError::RequestTimeout
            | GatewayError::UnrecognizedClient
            | GatewayError::IncompleteSignature => return None,
        })
    }

    /// A stable, low-cardinality name for logs and metrics.
    pub fn kind(self) -> &'static str {
        match self {
            GatewayError::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            GatewayError::UnknownApi => "UNKNOWN_API",
            GatewayError::ApiConfiguration => "API_CONFIGURATION_ERROR",
            GatewayError::IntegrationFailure => "INTEGRATION_FAILURE",
            GatewayError::IntegrationTimeout => "INTEGRATION_TIMEOUT",
            GatewayError::BadFunctionResponse => "BAD_FUNCTION_RESPONSE",
            GatewayError::RequestTooLarge => "REQUEST_TOO_LARGE",
            GatewayError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            GatewayError::BadRequest => "BAD_REQUEST",
            GatewayError::UriTooLong => "URI_TOO_LONG",
            GatewayError::RequestTimeout => "REQUEST_TIMEOUT",
            GatewayError::Forbidden => "INVALID_API_KEY",
            GatewayError::Throttled => "THROTTLED",
            GatewayError::QuotaExceeded => "QUOTA_EXCEEDED",
            GatewayError::Unauthorized => "UNAUTHORIZED",
            GatewayError::AccessDenied => "ACCESS_DENIED",
            GatewayError::AuthorizerConfiguration => "AUTHORIZER_CONFIGURATION_ERROR",
            GatewayError::InvalidSignature => "INVALID_SIGNATURE",
            GatewayError::UnrecognizedClient => "UNRECOGNIZED_CLIENT",
            GatewayError::IncompleteSignature => "INCOMPLETE_SIGNATURE",
        }
    }

    /// The response API Gateway would send: JSON `{"message": ...}` plus `x-amzn-ErrorType`.
    pub fn into_response(self) -> Response<Body> {
        let view = self.view();
        json_error_or_null(view.status, view.error_type, view.message)
    }
}

/// A JSON error body in API Gateway's shape.
pub fn json_error(status: StatusCode, error_type: &'static str, message: &str) -> Response<Body> {
    json_error_or_null(status, error_type, Some(message))
}

fn json_error_or_null(
    status: StatusCode,
    error_type: &'static str,
    message: Option<&str>,
) -> Response<Body> {
    let payload = serde_json::json!({ "message": message }).to_string();
    let mut response = Response::new(body::full(Bytes::from(payload)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_route_is_403_with_aws_error_type() {
        let response = GatewayError::MissingAuthenticationToken.into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        assert_eq!(response.headers()["content-type"], "application/json");
    }

    #[test]
    fn timeouts_are_504_and_function_errors_502() {
        assert_eq!(
            GatewayError::IntegrationTimeout.view().message,
            Some("Endpoint request timed out")
        );
        assert_eq!(
            GatewayError::IntegrationTimeout.view().status,
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            GatewayError::BadFunctionResponse.view().status,
            StatusCode::BAD_GATEWAY
        );
    }
}
