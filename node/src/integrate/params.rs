//! Request parameter mapping: evaluating `method.request.*`, `stageVariables.*`, `context.*` and
//! literal sources against one request, and building the integration's path, query and headers.
//!
//! Values keep API Gateway's encodings: path parameters are the raw bytes of the request path
//! (never decoded), query values are decoded (`+` is a space), and values placed back into a
//! URI are encoded again.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::config::compile::{
    ParameterMapping, ParameterTarget, Template, TemplatePart, ValueSource,
};
use crate::request::{Failure, RequestView};
use crate::respond::GatewayError;

/// Characters escaped in a query component (RFC 3986 query minus the separators).
const QUERY_COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'%')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

/// Characters escaped in a value placed into a path segment: everything that would end the
/// segment or change the URI's structure (`/`, `?`, `#`, `%`).
const PATH_SEGMENT: &AsciiSet = &QUERY_COMPONENT.add(b'/').add(b'?').add(b';');

/// The query string decoded into `(name, value)` pairs, in request order, repeats kept.
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let spaced: Cow<'_, str> = if text.contains('+') {
        Cow::Owned(text.replace('+', " "))
    } else {
        Cow::Borrowed(text)
    };
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

pub fn encode_query_component(text: &str) -> String {
    utf8_percent_encode(text, QUERY_COMPONENT).to_string()
}

/// A value resolved for a mapping: one value or several (multi-value sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    One(String),
    Many(Vec<String>),
}

impl Resolved {
    pub fn into_values(self) -> Vec<String> {
        match self {
            Resolved::One(value) => vec![value],
            Resolved::Many(values) => values,
        }
    }

    pub fn last(self) -> Option<String> {
        match self {
            Resolved::One(value) => Some(value),
            Resolved::Many(mut values) => values.pop(),
        }
    }
}

/// Evaluates a request-side source. `None` means the request lacks it (API Gateway then leaves
/// the target out).
pub fn resolve(
    source: &ValueSource,
    view: &RequestView<'_>,
    query: &[(String, String)],
    body: Option<&[u8]>,
) -> Option<Resolved> {
    match source {
        ValueSource::Literal(text) => Some(Resolved::One(text.clone())),
        ValueSource::MethodPath(name) => view
            .routed
            .path_parameters(view.path)
            .find(|(param, _)| param == name)
            .map(|(_, value)| Resolved::One(value.to_string())),
        ValueSource::MethodQuery(name) => query
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| Resolved::One(value.clone())),
        ValueSource::MethodMultiQuery(name) => {
            let values: Vec<String> = query
                .iter()
                .filter(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .collect();
            (!values.is_empty()).then_some(Resolved::Many(values))
        }
        ValueSource::MethodHeader(name) => view
            .parts
            .headers
            .get_all(name.as_str())
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .map(|value| Resolved::One(value.to_string())),
        ValueSource::MethodMultiHeader(name) => {
            let values: Vec<String> = view
                .parts
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|value| value.to_str().ok().map(str::to_string))
                .collect();
            (!values.is_empty()).then_some(Resolved::Many(values))
        }
        ValueSource::MethodBody => {
            body.map(|bytes| Resolved::One(String::from_utf8_lossy(bytes).into_owned()))
        }
        ValueSource::StageVariable(name) => view
            .stage()
            .variables
            .get(name)
            .map(|value| Resolved::One(value.clone())),
        ValueSource::Context(name) => context_variable(name, view).map(Resolved::One),
        // Response-side sources are evaluated by the response mapping, not here.
        ValueSource::IntegrationHeader(_) | ValueSource::IntegrationBody => None,
    }
}

/// The `$context` variables a mapping can name.
pub fn context_variable(name: &str, view: &RequestView<'_>) -> Option<String> {
    Some(match name {
        "requestId" => view.request_id.to_string(),
        "extendedRequestId" => view.extended_request_id.to_string(),
        "apiId" => view.stage().api_id.to_string(),
        "stage" => view.stage().name.to_string(),
        "deploymentId" => view.stage().deployment_id.to_string(),
        "resourceId" => view.method().resource_id.to_string(),
        "resourcePath" => view.method().resource_path.to_string(),
        "httpMethod" => view.parts.method.as_str().to_string(),
        "path" => view.path.to_string(),
        "protocol" => view.protocol().to_string(),
        "domainName" => view.host?.to_string(),
        "identity.sourceIp" => view.source_ip.to_string(),
        "identity.userAgent" => view.user_agent()?.to_string(),
        "requestTimeEpoch" => crate::time::epoch_millis(view.received_at).to_string(),
        "requestTime" => crate::time::clf_timestamp(view.received_at),
        _ => return authorizer_variable(name, view),
    })
}

/// `context.authorizer.*` and the IAM caller's `context.identity.*`.
fn authorizer_variable(name: &str, view: &RequestView<'_>) -> Option<String> {
    let auth = view.auth?;
    if let Some(field) = name.strip_prefix("identity.") {
        let caller = auth.caller.as_ref()?;
        return Some(
            match field {
                "accessKey" => &caller.access_key,
                "userArn" => &caller.user_arn,
                "caller" => &caller.caller,
                "user" => &caller.user,
                "accountId" => &caller.account_id,
                _ => return None,
            }
            .clone(),
        );
    }
    let field = name.strip_prefix("authorizer.")?;
    if field == "principalId" {
        return auth.principal_id.clone();
    }
    let value = match field.strip_prefix("claims.") {
        Some(claim) => auth.claims.as_ref()?.get(claim)?,
        None => auth.context.get(field)?,
    };
    Some(match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

/// The integration request's path parameters, query pairs and headers after mapping.
#[derive(Debug, Default)]
pub struct Mapped {
    pub path: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(http::HeaderName, String)>,
}

/// Applies every request parameter mapping of an integration.
pub fn map_request(
    mappings: &[ParameterMapping],
    view: &RequestView<'_>,
    query: &[(String, String)],
    body: Option<&[u8]>,
) -> Mapped {
    let mut mapped = Mapped::default();
    for mapping in mappings {
        let Some(value) = resolve(&mapping.source, view, query, body) else {
            continue;
        };
        match &mapping.target {
            ParameterTarget::Path(name) => {
                if let Some(value) = value.last() {
                    // A method path parameter is passed as the client sent it (already encoded);
                    // anything decoded (query, header, literal, stage variable) is encoded again
                    // so it stays one segment and cannot inject a query or `..`.
                    let value = match mapping.source {
                        ValueSource::MethodPath(_) => value,
                        _ => utf8_percent_encode(&value, PATH_SEGMENT).to_string(),
                    };
                    mapped.path.push((name.clone(), value));
                }
            }
            ParameterTarget::Query(name) => {
                if let Some(value) = value.last() {
                    mapped.query.push((name.clone(), value));
                }
            }
            ParameterTarget::MultiQuery(name) => {
                for value in value.into_values() {
                    mapped.query.push((name.clone(), value));
                }
            }
            ParameterTarget::Header(name) => {
                if let Some(value) = value.last() {
                    mapped.headers.push((name.clone(), value));
                }
            }
            ParameterTarget::MultiHeader(name) => {
                for value in value.into_values() {
                    mapped.headers.push((name.clone(), value));
                }
            }
        }
    }
    mapped
}

/// Renders an integration URI: stage variables, then `{name}` from the mapped path parameters
/// (falling back to the method's own path variable of that name), then the mapped query and,
/// for proxies, the client's query string.
pub fn render_uri(
    template: &Template,
    view: &RequestView<'_>,
    mapped: &Mapped,
    client_query: Option<&str>,
) -> Result<http::Uri, Failure> {
    let mut uri = String::with_capacity(128);
    for part in &template.parts {
        match part {
            TemplatePart::Literal(text) => uri.push_str(text),
            TemplatePart::StageVariable(name) => {
                let value = view.stage().variables.get(name).ok_or_else(|| {
                    Failure::new(
                        GatewayError::ApiConfiguration,
                        format!("stage variable {name} is not set on this stage"),
                    )
                })?;
                uri.push_str(value);
            }
            TemplatePart::PathParameter(name) => {
                let mapped_value = mapped
                    .path
                    .iter()
                    .rev()
                    .find(|(param, _)| param == name)
                    .map(|(_, value)| value.as_str());
                let value = mapped_value
                    .or_else(|| {
                        view.routed
                            .path_parameters(view.path)
                            .find(|(param, _)| param == name)
                            .map(|(_, value)| value)
                    })
                    .ok_or_else(|| {
                        Failure::new(
                            GatewayError::ApiConfiguration,
                            format!("integration path parameter {{{name}}} has no value"),
                        )
                    })?;
                uri.push_str(value);
            }
        }
    }
    let mut separator = if uri.contains('?') { '&' } else { '?' };
    for (name, value) in &mapped.query {
        uri.push(separator);
        uri.push_str(&encode_query_component(name));
        uri.push('=');
        uri.push_str(&encode_query_component(value));
        separator = '&';
    }
    if let Some(query) = client_query.filter(|query| !query.is_empty()) {
        uri.push(separator);
        uri.push_str(query);
    }
    uri.parse::<http::Uri>().map_err(|error| {
        Failure::new(
            GatewayError::ApiConfiguration,
            format!("integration uri {uri:?} is invalid: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_keeps_order_and_repeats() {
        let pairs = parse_query(Some("category=electronics&category=books&q=a+b%21&flag"));
        assert_eq!(
            pairs,
            vec![
                ("category".into(), "electronics".into()),
                ("category".into(), "books".into()),
                ("q".into(), "a b!".into()),
                ("flag".into(), "".into()),
            ]
        );
        assert!(parse_query(None).is_empty());
    }

    #[test]
    fn decoded_values_cannot_escape_their_path_segment() {
        for (raw, encoded) in [
            ("x?admin=true", "x%3Fadmin%3Dtrue"),
            ("../../secret", "..%2F..%2Fsecret"),
            ("a b#c", "a%20b%23c"),
        ] {
            assert_eq!(utf8_percent_encode(raw, PATH_SEGMENT).to_string(), encoded);
        }
    }

    #[test]
    fn query_encoding_round_trips() {
        let text = "a b&c=d+é";
        let encoded = encode_query_component(text);
        assert_eq!(encoded, "a%20b%26c%3Dd%2B%C3%A9");
        assert_eq!(parse_query(Some(&format!("k={encoded}")))[0].1, text);
    }
}
