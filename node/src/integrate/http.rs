//! HTTP_PROXY and HTTP integrations.
//!
//! HTTP_PROXY streams: the client's body goes to the backend as it arrives (bounded by the
//! payload limit) and the backend's body comes back the same way, so a large upload or
//! download never sits in the gateway's memory. The non-proxy HTTP integration buffers,
//! because passthrough rules, templates and `method.request.body` mappings need the whole body,
//! and maps the backend's status through the integration responses.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};

use super::client::UpstreamBody;
use super::params::{self, Mapped};
use super::{Integrations, MAX_REQUEST_BODY_BYTES};
use crate::request::{Failure, RequestView};

/// Integration responses a non-proxy integration buffers are bounded like requests (API
/// Gateway's payload limit is 10 MB both ways).
const MAX_INTEGRATION_RESPONSE_BYTES: usize = 10 * 1024 * 1024;
use crate::body::{self, Body};
use crate::config::compile::{
    CompiledIntegrationResponse, HttpIntegration, MappingTemplate, ValueSource,
};
use crate::respond::GatewayError;

/// Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy. `HeaderName`s rather than
/// strings: removing by a string parses it on every call, twice per proxied request.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Header names the gateway sets on every proxied request. Constants: inserting by a `&str`
/// parses and validates the name on every call.
const X_AMZN_APIGATEWAY_API_ID: HeaderName = HeaderName::from_static("x-amzn-apigateway-api-id");
pub const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Response headers API Gateway renames to `x-amzn-Remapped-*` because the gateway sets its
/// own: they would otherwise contradict the framing or identity of the gateway's response.
const REMAPPED: [(HeaderName, HeaderName); 4] = [
    (
        header::CONNECTION,
        HeaderName::from_static("x-amzn-remapped-connection"),
    ),
    (
        header::CONTENT_LENGTH,
        HeaderName::from_static("x-amzn-remapped-content-length"),
    ),
    (
        header::DATE,
        HeaderName::from_static("x-amzn-remapped-date"),
    ),
    (
        header::SERVER,
        HeaderName::from_static("x-amzn-remapped-server"),
    ),
];

/// Makes a backend's, function's or mapping's response headers safe to send as the gateway's
/// own: `Connection`, `Content-Length`, `Date` and `Server` are renamed `x-amzn-Remapped-*` (as
/// API Gateway does), other hop-by-hop headers dropped. The gateway frames the body itself.
pub fn sanitize_response_headers(headers: &mut HeaderMap) {
    remove_connection_listed(headers);
    remap_reserved(headers);
    strip_hop_by_hop(headers);
}

/// Removes the headers a `Connection` header names (they are hop-by-hop by declaration).
fn remove_connection_listed(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| *name != header::CONNECTION)
        .collect();
    for name in listed {
        headers.remove(name);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the (few) names present instead of nine hashed removals: a request or
    // response rarely carries any hop-by-hop header, and comparing a standard name is an enum
    // comparison.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    remove_connection_listed(headers);
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

pub async fn invoke(
    integrations: &Integrations,
    integration: &HttpIntegration,
    view: &RequestView<'_>,
    body: Body,
) -> Result<Response<Body>, Failure> {
    if integration.proxy {
        proxy(integrations, integration, view, body).await
    } else {
        non_proxy(integrations, integration, view, body).await
    }
}

fn backend_method(integration: &HttpIntegration, view: &RequestView<'_>) -> http::Method {
    integration
        .method
        .clone()
        .unwrap_or_else(|| view.parts.method.clone())
}

/// Headers API Gateway adds to every HTTP integration request.
fn add_gateway_headers(headers: &mut HeaderMap, view: &RequestView<'_>) {
    if let Some(value) = &view.stage().api_id_header {
        headers.insert(X_AMZN_APIGATEWAY_API_ID, value.clone());
    }
    headers.insert(X_AMZN_TRACE_ID, view.trace_header.clone());
}

fn apply_mapped_headers(headers: &mut HeaderMap, mapped: &Mapped) {
    let mut seen: Vec<&HeaderName> = Vec::new();
    for (name, value) in &mapped.headers {
        let Ok(value) = HeaderValue::from_str(value) else {
            continue;
        };
        // The first mapping of a name replaces what the client sent; later ones add to it.
        if seen.contains(&name) {
            headers.append(name.clone(), value);
        } else {
            headers.insert(name.clone(), value);
            seen.push(name);
        }
    }
}

/// The failure for an integration that missed its deadline.
pub fn timed_out(what: std::fmt::Arguments<'_>, timeout: Duration) -> Failure {
    Failure::new(
        GatewayError::IntegrationTimeout,
        format!("{what} within {} ms", timeout.as_millis()),
    )
}

/// The one timer of an HTTP integration: it bounds the response head, then moves into the
/// response body (`DeadlineBody::with_timer`) or the collection of a non-proxy body.
type Timer = std::pin::Pin<Box<tokio::time::Sleep>>;

async fn send(
    integrations: &Integrations,
    integration: &HttpIntegration,
    request: Request<Body>,
    timer: &mut Timer,
) -> Result<Response<UpstreamBody>, Failure> {
    let uri = request.uri().clone();
    let exchange = integrations
        .client
        .request(integration.insecure_skip_verification, request);
    let outcome = tokio::select! {
        biased;
        outcome = exchange => Some(outcome),
        () = timer.as_mut() => None,
    };
    match outcome {
        None => Err(timed_out(
            format_args!("no response from {uri}"),
            integration.timeout,
        )),
        Some(Ok(response)) => Ok(response),
        Some(Err(error)) => {
            // The client's upload failing (too large, stalled, malformed chunks) surfaces
            // here, wrapped in the client pool's error: it is answered as the client's fault.
            if let Some(failure) = super::request_body_failure(&error) {
                return Err(failure);
            }
            Err(Failure::new(
                GatewayError::IntegrationFailure,
                format!("request to {uri} failed: {}", error_chain(&error)),
            ))
        }
    }
}

/// An error and its causes on one line, for the log.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn proxy(
    integrations: &Integrations,
    integration: &HttpIntegration,
    view: &RequestView<'_>,
    body: Body,
) -> Result<Response<Body>, Failure> {
    let query = if integration.parameters.is_empty() {
        Vec::new()
    } else {
        params::parse_query(view.query)
    };
    let mapped = params::map_request(&integration.parameters, view, &query, None);
    let uri = params::render_uri(&integration.uri, view, &mapped, view.query)?;

    // A clone, not a move: the view lends the client's parts to the cache key, the mappings
    // and the access log for the whole request; with few headers the clone is a few hundred
    // instructions (the values are shared `Bytes`).
    let mut headers = view.parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    // For a plain-HTTP backend (always HTTP/1.1) the Host header is set here; the same value
    // the client would set (host and non-default port). An HTTPS backend may turn out to speak
    // HTTP/2, which carries the authority instead, so the client decides there.
    if uri.scheme() == Some(&http::uri::Scheme::HTTP)
        && let Some(host) = backend_host(&uri)
    {
        headers.insert(header::HOST, host);
    }
    append_forwarded_for(&mut headers, view);
    add_gateway_headers(&mut headers, view);
    apply_mapped_headers(&mut headers, &mapped);

    let mut request = Request::new(body::limited(body, MAX_REQUEST_BODY_BYTES));
    *request.method_mut() = backend_method(integration, view);
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;

    let mut timer = Box::pin(tokio::time::sleep(integration.timeout));
    let response = send(integrations, integration, request, &mut timer).await?;
    let (mut parts, body) = response.into_parts();
    sanitize_response_headers(&mut parts.headers);
    Ok(Response::from_parts(
        parts,
        body::boxed(body::DeadlineBody::with_timer(body, timer)),
    ))
}

/// The `Host` a backend request carries: the URI's host, with its port unless it is the
/// scheme's default (what `client::host_header` sets for HTTPS over HTTP/1.1).
fn backend_host(uri: &http::Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let secure = matches!(uri.scheme_str(), Some("https" | "wss"));
    let value = match uri.port_u16() {
        Some(port) if !(secure && port == 443 || !secure && port == 80) => {
            let mut value = String::with_capacity(host.len() + 6);
            value.push_str(host);
            value.push(':');
            push_decimal(&mut value, u32::from(port));
            HeaderValue::from_str(&value)
        }
        _ => HeaderValue::from_str(host),
    };
    value.ok()
}

/// The client's `X-Forwarded-For` chain (every line of it) with the client's address appended.
pub fn forwarded_for(view: &RequestView<'_>) -> String {
    let mut chain = String::with_capacity(48);
    for value in view.parts.headers.get_all(&X_FORWARDED_FOR) {
        let value = String::from_utf8_lossy(value.as_bytes());
        let value = value.trim();
        if !value.is_empty() {
            chain.push_str(value);
            chain.push_str(", ");
        }
    }
    push_ip(&mut chain, view.source_ip);
    chain
}

/// Appends `ip` as `Display` would write it; IPv4 without the formatting machinery (this runs
/// on every proxied request, for `X-Forwarded-For` and the access log).
pub fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(ip) => {
            for (index, octet) in ip.octets().into_iter().enumerate() {
                if index > 0 {
                    out.push('.');
                }
                push_decimal(out, u32::from(octet));
            }
        }
        std::net::IpAddr::V6(ip) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{ip}");
        }
    }
}

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut String, value: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, view: &RequestView<'_>) {
    if let Ok(value) = HeaderValue::from_str(&forwarded_for(view)) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

fn remap_reserved(headers: &mut HeaderMap) {
    for (name, remapped) in &REMAPPED {
        let header::Entry::Occupied(entry) = headers.entry(name) else {
            continue;
        };
        let values: Vec<HeaderValue> = entry.remove_entry_mult().1.collect();
        for value in values {
            headers.append(remapped.clone(), value);
        }
    }
}

async fn non_proxy(
    integrations: &Integrations,
    integration: &HttpIntegration,
    view: &RequestView<'_>,
    body: Body,
) -> Result<Response<Body>, Failure> {
    let body = super::read_body(body).await?;
    let query = params::parse_query(view.query);
    let mapped = params::map_request(&integration.parameters, view, &query, Some(&body));
    let uri = params::render_uri(&integration.uri, view, &mapped, None)?;

    let media_type = super::request_media_type(view.parts);
    let outgoing = request_body(
        &integration.request_templates,
        integration.passthrough,
        &media_type,
        body,
    )?;

    // A non-proxy integration sends only what is mapped, not the client's headers.
    let mut headers = HeaderMap::new();
    if let Some(content_type) = view.parts.headers.get(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, content_type.clone());
    }
    add_gateway_headers(&mut headers, view);
    apply_mapped_headers(&mut headers, &mapped);

    let mut request = Request::new(body::full(outgoing));
    *request.method_mut() = backend_method(integration, view);
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;

    let mut timer = Box::pin(tokio::time::sleep(integration.timeout));
    let response = send(integrations, integration, request, &mut timer).await?;
    let (parts, backend_body) = response.into_parts();
    let collect = http_body_util::BodyExt::collect(http_body_util::Limited::new(
        backend_body,
        MAX_INTEGRATION_RESPONSE_BYTES,
    ));
    let collected = tokio::select! {
        biased;
        collected = collect => Some(collected),
        () = timer.as_mut() => None,
    };
    let backend_body = collected
        .ok_or_else(|| {
            timed_out(
                format_args!("the backend body was not complete"),
                integration.timeout,
            )
        })?
        .map_err(|error| {
            Failure::new(
                GatewayError::IntegrationFailure,
                format!("reading the backend body failed: {error}"),
            )
        })?
        .to_bytes();

    let selector = parts.status.as_str();
    let selected = integration.responses.select(selector).ok_or_else(|| {
        Failure::new(
            GatewayError::ApiConfiguration,
            format!(
                "no integration response matches backend status {selector} and none is the default"
            ),
        )
    })?;
    respond(selected, &parts.headers, backend_body, view)
}

/// Chooses the integration request body by the passthrough rules of API Gateway.
pub fn request_body(
    templates: &std::collections::BTreeMap<String, MappingTemplate>,
    passthrough: portico_proto::PassthroughBehavior,
    media_type: &str,
    body: Bytes,
) -> Result<Bytes, Failure> {
    use portico_proto::PassthroughBehavior::*;
    match templates.get(media_type) {
        Some(MappingTemplate::Static(text)) => Ok(Bytes::from(text.clone())),
        Some(MappingTemplate::Expression(_)) => Err(Failure::new(
            GatewayError::ApiConfiguration,
            format!(
                "the {media_type} request template uses mapping-template expressions, which are not supported yet"
            ),
        )),
        None => match passthrough {
            WhenNoMatch => Ok(body),
            WhenNoTemplates if templates.is_empty() => Ok(body),
            WhenNoTemplates | Never => Err(Failure::new(
                GatewayError::UnsupportedMediaType,
                format!("no request template for {media_type} and passthrough does not apply"),
            )),
        },
    }
}

/// Picks the response template for a client: the one for its `Accept` media type, else
/// `application/json`, else the first. Returns the content type and the template.
fn response_template<'t>(
    templates: &'t std::collections::BTreeMap<String, MappingTemplate>,
    accept: &str,
) -> Option<(&'t str, &'t MappingTemplate)> {
    let wanted = accept.split(',').map(|media| {
        media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    for media in wanted {
        if let Some((key, template)) = templates.get_key_value(&media) {
            return Some((key, template));
        }
    }
    templates
        .get_key_value("application/json")
        .or_else(|| templates.iter().next())
        .map(|(key, template)| (key.as_str(), template))
}

/// Builds the method response from a selected integration response.
pub fn respond(
    selected: &CompiledIntegrationResponse,
    backend_headers: &HeaderMap,
    backend_body: Bytes,
    view: &RequestView<'_>,
) -> Result<Response<Body>, Failure> {
    let accept = view
        .parts
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let (body, content_type) = match response_template(&selected.templates, accept) {
        Some((media, MappingTemplate::Static(text))) => {
            (Bytes::from(text.clone()), HeaderValue::from_str(media).ok())
        }
        Some((media, MappingTemplate::Expression(_))) => {
            return Err(Failure::new(
                GatewayError::ApiConfiguration,
                format!(
                    "the {media} response template uses mapping-template expressions, which are not supported yet"
                ),
            ));
        }
        // No template: the backend's body passes through with its content type.
        None => (
            backend_body.clone(),
            backend_headers.get(header::CONTENT_TYPE).cloned(),
        ),
    };
    let mut response = Response::new(body::full(body));
    *response.status_mut() = selected.status;
    let headers = response.headers_mut();
    for (name, source) in &selected.headers {
        let value = match source {
            ValueSource::IntegrationHeader(from) => backend_headers
                .get(from.as_str())
                .and_then(|value| value.to_str().ok())
                .map(str::to_string),
            ValueSource::IntegrationBody => {
                Some(String::from_utf8_lossy(&backend_body).into_owned())
            }
            other => params::resolve(other, view, &[], None).and_then(|value| value.last()),
        };
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
            headers.insert(name.clone(), value);
        }
    }
    sanitize_response_headers(headers);
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            content_type.unwrap_or(HeaderValue::from_static("application/json")),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_proto::PassthroughBehavior;
    use std::collections::BTreeMap;

    #[test]
    fn backend_host_is_what_the_client_pool_would_set() {
        let host = |uri: &str| backend_host(&uri.parse().unwrap()).unwrap();
        assert_eq!(host("http://backend.internal/a"), "backend.internal");
        assert_eq!(host("http://backend.internal:80/a"), "backend.internal");
        assert_eq!(host("http://127.0.0.1:8080/a?b=c"), "127.0.0.1:8080");
        assert_eq!(host("http://[::1]:8080/"), "[::1]:8080");
        assert_eq!(host("http://backend.internal:443/"), "backend.internal:443");
        assert_eq!(host("https://backend.internal:443/"), "backend.internal");
        assert_eq!(host("https://backend.internal:80/"), "backend.internal:80");
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.3.255",
            "::1",
            "2001:db8::8a2e:370:7334",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut text = String::new();
            push_ip(&mut text, ip);
            assert_eq!(text, ip.to_string());
        }
        for value in [0, 7, 10, 99, 100, 65_535, u32::MAX] {
            let mut text = String::new();
            push_decimal(&mut text, value);
            assert_eq!(text, value.to_string());
        }
    }

    #[test]
    fn passthrough_rules() {
        let none = BTreeMap::new();
        let mut json_only = BTreeMap::new();
        json_only.insert(
            "application/json".to_string(),
            MappingTemplate::Static("{}".into()),
        );
        let body = Bytes::from_static(b"raw");
        let pass = |templates, behavior, media| {
            request_body(templates, behavior, media, body.clone()).map_err(|failure| failure.error)
        };
        assert_eq!(
            pass(&none, PassthroughBehavior::WhenNoMatch, "text/plain"),
            Ok(body.clone())
        );
        assert_eq!(
            pass(&none, PassthroughBehavior::WhenNoTemplates, "text/plain"),
            Ok(body.clone())
        );
        assert_eq!(
            pass(&none, PassthroughBehavior::Never, "text/plain"),
            Err(GatewayError::UnsupportedMediaType)
        );
        assert_eq!(
            pass(&json_only, PassthroughBehavior::WhenNoMatch, "text/plain"),
            Ok(body.clone())
        );
        assert_eq!(
            pass(
                &json_only,
                PassthroughBehavior::WhenNoTemplates,
                "text/plain"
            ),
            Err(GatewayError::UnsupportedMediaType)
        );
        assert_eq!(
            pass(&json_only, PassthroughBehavior::Never, "application/json"),
            Ok(Bytes::from_static(b"{}"))
        );
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn reserved_response_headers_are_remapped_and_hop_by_hop_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert("server", HeaderValue::from_static("backend"));
        headers.insert("date", HeaderValue::from_static("yesterday"));
        headers.insert("content-length", HeaderValue::from_static("1"));
        headers.insert("connection", HeaderValue::from_static("x-private"));
        headers.insert("x-private", HeaderValue::from_static("secret"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        sanitize_response_headers(&mut headers);
        assert_eq!(headers["x-amzn-remapped-server"], "backend");
        assert_eq!(headers["x-amzn-remapped-date"], "yesterday");
        assert_eq!(headers["x-amzn-remapped-content-length"], "1");
        assert_eq!(headers["x-amzn-remapped-connection"], "x-private");
        for gone in [
            "server",
            "date",
            "content-length",
            "connection",
            "x-private",
            "transfer-encoding",
        ] {
            assert!(!headers.contains_key(gone), "{gone}");
        }
        assert_eq!(headers["x-kept"], "1");
    }

    #[test]
    fn response_template_follows_accept() {
        let mut templates = BTreeMap::new();
        templates.insert(
            "text/html".to_string(),
            MappingTemplate::Static("<p/>".into()),
        );
        templates.insert(
            "application/json".to_string(),
            MappingTemplate::Static("{}".into()),
        );
        assert_eq!(
            response_template(&templates, "text/html").unwrap().0,
            "text/html"
        );
        assert_eq!(
            response_template(&templates, "*/*").unwrap().0,
            "application/json"
        );
        let mut only_html = BTreeMap::new();
        only_html.insert(
            "text/html".to_string(),
            MappingTemplate::Static("<p/>".into()),
        );
        assert_eq!(response_template(&only_html, "").unwrap().0, "text/html");
    }
}
