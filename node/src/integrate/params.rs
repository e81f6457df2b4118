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
    // Where the first path parameter went: the template's literal path before it is the base
    // no parameter may climb out of.
    let mut first_parameter_at = None;
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
                first_parameter_at.get_or_insert(uri.len());
                uri.push_str(value);
            }
        }
    }
    if let Some(at) = first_parameter_at {
        confine_path(&mut uri, at)?;
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

/// Resolves the dot segments of a rendered integration URI's path (RFC 3986 §5.2.4, `%2e`
/// counted as `.`), refusing with 400 a path that would climb above the literal prefix the
/// template gives before its first path parameter (`/base/` of `http://be/base/{proxy}`).
///
/// The refusal is conservative, because backends disagree about what a separator is: for the
/// climb check, `\`, `%2F` and `%5C` also separate segments, a segment's `;params` are ignored
/// (`..;` is `..` to some servlet containers) and empty segments do not count as depth (some
/// servers merge `//`). What is forwarded is the RFC's normalisation only; every other byte
/// (encoded slashes, `..;`, other percent-encodings) goes to the backend as the client sent it.
fn confine_path(uri: &mut String, first_parameter_at: usize) -> Result<(), Failure> {
    let path_start = match uri.find("://") {
        Some(scheme_end) => uri[scheme_end + 3..]
            .find('/')
            .map_or(uri.len(), |slash| scheme_end + 3 + slash),
        None => 0,
    };
    let path_end = uri[path_start..]
        .find(['?', '#'])
        .map_or(uri.len(), |end| path_start + end);
    if first_parameter_at >= path_end {
        return Ok(());
    }
    // The base ends at the last `/` before the first parameter (the whole path's root when the
    // parameter is in the authority).
    let base_end = match uri[path_start..first_parameter_at.max(path_start)].rfind('/') {
        Some(slash) => path_start + slash + 1,
        None => path_start,
    };
    let rest = &uri[base_end..path_end];
    let suspicious = rest.contains('.') || rest.contains('\\') || rest.contains('%');
    if !suspicious {
        return Ok(());
    }
    let refuse = || {
        Failure::new(
            GatewayError::BadRequest,
            format!("the integration path {rest:?} climbs above its base"),
        )
    };
    let mut depth: usize = 0;
    for segment in split_lenient(rest) {
        let segment = segment.split(';').next().unwrap_or("");
        match dots(segment) {
            Some(1) => {}
            Some(2) => depth = depth.checked_sub(1).ok_or_else(refuse)?,
            _ if segment.is_empty() => {}
            _ => depth += 1,
        }
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in rest.split('/') {
        trailing_slash = false;
        match dots(segment) {
            Some(1) => trailing_slash = true,
            Some(2) => {
                kept.pop().ok_or_else(refuse)?;
                trailing_slash = true;
            }
            _ => kept.push(segment),
        }
    }
    let mut normalised = kept.join("/");
    if trailing_slash && !kept.is_empty() {
        normalised.push('/');
    }
    uri.replace_range(base_end..path_end, &normalised);
    Ok(())
}

/// Splits a path at `/`, `\`, `%2F` and `%5C` (either case).
fn split_lenient(path: &str) -> impl Iterator<Item = &str> {
    let bytes = path.as_bytes();
    let mut start = 0;
    let mut index = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while index < bytes.len() {
            let width = match bytes[index] {
                b'/' | b'\\' => 1,
                b'%' if bytes.get(index + 1) == Some(&b'2')
                    && bytes
                        .get(index + 2)
                        .is_some_and(|b| b.eq_ignore_ascii_case(&b'f')) =>
                {
                    3
                }
                b'%' if bytes.get(index + 1) == Some(&b'5')
                    && bytes
                        .get(index + 2)
                        .is_some_and(|b| b.eq_ignore_ascii_case(&b'c')) =>
                {
                    3
                }
                _ => 0,
            };
            if width > 0 {
                let segment = &path[start..index];
                index += width;
                start = index;
                return Some(segment);
            }
            index += 1;
        }
        done = true;
        Some(&path[start..])
    })
}

/// `Some(1)` for a `.` segment, `Some(2)` for `..`, with `%2e` (either case) as a dot.
fn dots(segment: &str) -> Option<usize> {
    let bytes = segment.as_bytes();
    let mut count = 0;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'.' {
            index += 1;
        } else if bytes[index] == b'%'
            && bytes.get(index + 1) == Some(&b'2')
            && bytes
                .get(index + 2)
                .is_some_and(|b| b.eq_ignore_ascii_case(&b'e'))
        {
            index += 3;
        } else {
            return None;
        }
        count += 1;
    }
    matches!(count, 1 | 2).then_some(count)
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

    /// `uri` with its first path parameter at `marker`'s position (the marker removed).
    fn confined(uri: &str) -> Result<String, GatewayError> {
        let at = uri.find('|').expect("a marker");
        let mut uri = uri.replacen('|', "", 1);
        confine_path(&mut uri, at)
            .map(|()| uri)
            .map_err(|failure| failure.error)
    }

    #[test]
    fn dot_segments_resolve_inside_the_base() {
        for (rendered, expected) in [
            ("http://be/base/|a/b", "http://be/base/a/b"),
            ("http://be/base/|a/../b", "http://be/base/b"),
            ("http://be/base/|a/%2e%2E/b", "http://be/base/b"),
            ("http://be/base/|a/./b/.", "http://be/base/a/b/"),
            ("http://be/base/|a/..", "http://be/base/"),
            ("http://be/base/|.", "http://be/base/"),
            ("http://be/base/|a//../b", "http://be/base/a/b"),
            (
                "http://be/base/|a/../b?x=/../..",
                "http://be/base/b?x=/../..",
            ),
            ("http://be/base/|a%2Fb/%41", "http://be/base/a%2Fb/%41"),
            ("http://be/base/pre-|x/../y", "http://be/base/y"),
            ("http://be/|a/../x/..", "http://be/"),
            ("http://be/x?q=|..", "http://be/x?q=.."),
        ] {
            assert_eq!(confined(rendered), Ok(expected.to_string()), "{rendered}");
        }
    }

    #[test]
    fn dot_segments_that_climb_above_the_base_are_refused() {
        for rendered in [
            "http://be/base/|..",
            "http://be/base/|../admin",
            "http://be/base/|a/../../admin",
            "http://be/base/|%2e%2e/admin",
            "http://be/base/|.%2E/admin",
            "http://be/base/|a%2F..%2F..%2Fadmin",
            "http://be/base/|a%2f..%2f..",
            "http://be/base/|a\\..\\..\\admin",
            "http://be/base/|a%5c..%5C..",
            "http://be/base/|..;/admin",
            "http://be/base/|a//../../admin",
            "http://be/base/pre-|x/../../y",
            // Above the root too: a backend would clamp it, but nothing legitimate asks for it.
            "http://be/|a/../../x",
        ] {
            assert_eq!(
                confined(rendered),
                Err(GatewayError::BadRequest),
                "{rendered}"
            );
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
