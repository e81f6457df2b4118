//! Gateway responses: an API's own status, headers and body for the errors the gateway answers.
//!
//! Every error goes through [`render`]. Without customisation the answer is the built-in one
//! (`{"message": ...}` and `x-amzn-ErrorType`). A customised response type wins; else the
//! API's DEFAULT_4XX or DEFAULT_5XX, by the error's status class, as API Gateway applies them.
//! Templates are rendered by substitution of `$context.*` (including `$context.error.*`) and
//! `$stageVariables.*` references, which is what gateway response templates use; full Velocity
//! belongs to the mapping-template engine.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, header};

use super::GatewayError;
use crate::body::{self, Body};
use crate::config::auth::GatewayResponses;

/// What a gateway response's templates and header mappings may read about the request.
pub trait ErrorContext {
    /// `$context.NAME` (without the `context.` prefix), for names other than `error.*`.
    fn context(&self, name: &str) -> Option<String>;
    fn stage_variable(&self, name: &str) -> Option<String>;
    /// A mapping source: `method.request.header.X`, `method.request.querystring.X`,
    /// `method.request.path.X`, `stageVariables.X`, `context.X`.
    fn parameter(&self, source: &str) -> Option<String>;
}

/// A context with nothing known about the request but its id (an unrouted request).
pub struct RequestIdOnly<'a>(pub &'a str);

impl ErrorContext for RequestIdOnly<'_> {
    fn context(&self, name: &str) -> Option<String> {
        (name == "requestId").then(|| self.0.to_string())
    }
    fn stage_variable(&self, _: &str) -> Option<String> {
        None
    }
    fn parameter(&self, source: &str) -> Option<String> {
        (source == "context.requestId").then(|| self.0.to_string())
    }
}

const X_AMZN_ERRORTYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// The response for `error`, with `message` replacing the error's fixed text when set.
pub fn render(
    error: GatewayError,
    message: Option<&str>,
    responses: Option<&GatewayResponses>,
    context: &dyn ErrorContext,
) -> Response<Body> {
    let view = error.view();
    let message = message.or(view.message);
    let custom = responses
        .filter(|responses| !responses.is_empty())
        .and_then(|responses| {
            error
                .response_type()
                .and_then(|kind| responses.get(kind))
                .or_else(|| {
                    responses.get(if view.status.is_server_error() {
                        "DEFAULT_5XX"
                    } else {
                        "DEFAULT_4XX"
                    })
                })
        });
    let Some(custom) = custom else {
        return super::json_error_or_null(view.status, view.error_type, message);
    };
    let response_type = error
        .response_type()
        .unwrap_or(if view.status.is_server_error() {
            "DEFAULT_5XX"
        } else {
            "DEFAULT_4XX"
        });
    let status = custom.status.unwrap_or(view.status);
    let error_vars = ErrorVars {
        message,
        response_type,
    };
    let (media_type, payload) = match &custom.template {
        Some((media_type, template)) => (
            media_type.as_str(),
            substitute(template, &error_vars, context),
        ),
        None => (
            "application/json",
            serde_json::json!({ "message": message }).to_string(),
        ),
    };
    let mut response = Response::new(body::full(Bytes::from(payload)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(media_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(X_AMZN_ERRORTYPE, HeaderValue::from_static(view.error_type));
    for (name, source) in &custom.headers {
        let value = match source
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
        {
            Some(literal) => Some(literal.to_string()),
            None => context.parameter(source),
        };
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
            headers.insert(name.clone(), value);
        }
    }
    response
}

struct ErrorVars<'a> {
    message: Option<&'a str>,
    response_type: &'a str,
}

/// Replaces `$context.NAME`, `${context.NAME}`, `$stageVariables.NAME` and
/// `${stageVariables.NAME}`; an unknown reference becomes empty, as in Velocity's quiet mode.
fn substitute(template: &str, error: &ErrorVars<'_>, context: &dyn ErrorContext) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (braced, body) = match after.strip_prefix('{') {
            Some(inner) => (true, inner),
            None => (false, after),
        };
        let (kind, tail) = if let Some(tail) = body.strip_prefix("context.") {
            ("context", tail)
        } else if let Some(tail) = body.strip_prefix("stageVariables.") {
            ("stage", tail)
        } else {
            out.push('$');
            rest = after;
            continue;
        };
        let mut length = tail
            .bytes()
            .take_while(|byte| byte.is_ascii_alphanumeric() || *byte == b'_' || *byte == b'.')
            .count();
        // A sentence's full stop is not part of the name.
        while length > 0 && tail.as_bytes()[length - 1] == b'.' {
            length -= 1;
        }
        let name = &tail[..length];
        let mut consumed = &tail[length..];
        if braced {
            match consumed.strip_prefix('}') {
                Some(after_brace) => consumed = after_brace,
                None => {
                    out.push('$');
                    rest = after;
                    continue;
                }
            }
        }
        let value = match (kind, name) {
            ("context", "error.message") => error.message.unwrap_or("").to_string(),
            ("context", "error.messageString") => {
                serde_json::to_string(&error.message).unwrap_or_default()
            }
            ("context", "error.responseType") => error.response_type.to_string(),
            ("context", "error.validationErrorString") => String::new(),
            ("context", name) => context.context(name).unwrap_or_default(),
            (_, name) => context.stage_variable(name).unwrap_or_default(),
        };
        out.push_str(&value);
        rest = consumed;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::auth::CompiledGatewayResponse;
    use http::StatusCode;

    struct Fixed;

    impl ErrorContext for Fixed {
        fn context(&self, name: &str) -> Option<String> {
            match name {
                "requestId" => Some("req-1".to_string()),
                "authorizer.principalId" => Some("alice".to_string()),
                _ => None,
            }
        }
        fn stage_variable(&self, name: &str) -> Option<String> {
            (name == "team").then(|| "blue".to_string())
        }
        fn parameter(&self, source: &str) -> Option<String> {
            (source == "method.request.header.Origin").then(|| "https://a.example".to_string())
        }
    }

    fn responses(kind: &str, status: Option<u16>, template: Option<&str>) -> GatewayResponses {
        GatewayResponses {
            custom: vec![(
                kind.to_string(),
                CompiledGatewayResponse {
                    status: status.and_then(|code| StatusCode::from_u16(code).ok()),
                    headers: vec![
                        (
                            HeaderName::from_static("access-control-allow-origin"),
                            "method.request.header.Origin".to_string(),
                        ),
                        (HeaderName::from_static("x-team"), "'blue'".to_string()),
                    ],
                    template: template
                        .map(|text| ("application/json".to_string(), text.to_string())),
                },
            )],
        }
    }

    async fn body_of(response: Response<Body>) -> String {
        use http_body_util::BodyExt;
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn built_in_answers_without_customisation() {
        let response = render(GatewayError::AuthorizerConfiguration, None, None, &Fixed);
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "AuthorizerConfigurationException"
        );
        assert_eq!(body_of(response).await, r#"{"message":null}"#);
    }

    #[tokio::test]
    async fn a_customised_type_sets_status_headers_and_body() {
        let custom = responses(
            "MISSING_AUTHENTICATION_TOKEN",
            Some(404),
            Some(
                r#"{"error":$context.error.messageString,"id":"$context.requestId","type":"${context.error.responseType}","team":"$stageVariables.team","who":"$context.authorizer.principalId."}"#,
            ),
        );
        let response = render(
            GatewayError::MissingAuthenticationToken,
            None,
            Some(&custom),
            &Fixed,
        );
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://a.example"
        );
        assert_eq!(response.headers()["x-team"], "blue");
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        assert_eq!(
            body_of(response).await,
            r#"{"error":"Missing Authentication Token","id":"req-1","type":"MISSING_AUTHENTICATION_TOKEN","team":"blue","who":"alice."}"#
        );
    }

    #[tokio::test]
    async fn default_4xx_covers_uncustomised_client_errors_only() {
        let custom = responses(
            "DEFAULT_4XX",
            None,
            Some(r#"{"oops":"$context.error.message"}"#),
        );
        let throttled = render(GatewayError::Throttled, None, Some(&custom), &Fixed);
        assert_eq!(throttled.status(), 429);
        assert_eq!(body_of(throttled).await, r#"{"oops":"Too Many Requests"}"#);
        let server = render(
            GatewayError::IntegrationFailure,
            None,
            Some(&custom),
            &Fixed,
        );
        assert_eq!(
            body_of(server).await,
            r#"{"message":"Internal server error"}"#
        );
        let denied = render(
            GatewayError::AccessDenied,
            Some("User: anonymous is not authorized"),
            Some(&custom),
            &Fixed,
        );
        assert_eq!(
            body_of(denied).await,
            r#"{"oops":"User: anonymous is not authorized"}"#
        );
    }

    #[test]
    fn substitution_leaves_other_dollars_alone() {
        let vars = ErrorVars {
            message: Some("m"),
            response_type: "T",
        };
        assert_eq!(
            substitute("$5 and $input.body ${context.requestId", &vars, &Fixed),
            "$5 and $input.body ${context.requestId"
        );
        assert_eq!(substitute("$context.unknown|", &vars, &Fixed), "|");
    }
}
