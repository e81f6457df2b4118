//! Routing: Host → API, first path segment → stage, the rest → resource and method.
//!
//! Requests are addressed as on `execute-api`: `Host: {apiId}.execute-api.{domain}` picks the
//! API and `/{stage}/...` the stage. A node that serves a single API on any Host (`dev`) falls
//! back to it when the Host names none. A stage, resource or method the deployment lacks answers
//! 403 "Missing Authentication Token", as API Gateway does, so that clients cannot probe which
//! routes exist. Nothing here allocates: the snapshot is read, never built.

pub mod host;
pub mod table;

use std::sync::Arc;

use crate::config::compile::{CompiledMethod, CompiledResource, CompiledStage, Snapshot};
use crate::respond::GatewayError;
use table::Captures;

/// The outcome of routing one request.
#[derive(Debug)]
pub struct Routed {
    pub stage: Arc<CompiledStage>,
    pub resource: Arc<CompiledResource>,
    pub method: Arc<CompiledMethod>,
    /// Path variables as ranges into the stage-less path (see [`Routed::stage_path`]).
    pub captures: Captures,
    /// Byte offset in the request path where the stage-less path starts.
    stage_path_start: usize,
}

impl Routed {
    /// The request path without the stage prefix (`/pets/1` for `/prod/pets/1`), as API
    /// Gateway puts it in the proxy event's `path`.
    pub fn stage_path<'p>(&self, request_path: &'p str) -> &'p str {
        match request_path.get(self.stage_path_start..) {
            Some("") | None => "/",
            Some(rest) => rest,
        }
    }

    /// `(name, raw value)` of every path variable.
    pub fn path_parameters<'a>(
        &'a self,
        request_path: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let stage_path = self.stage_path(request_path);
        self.resource
            .param_names
            .iter()
            .enumerate()
            .filter_map(move |(index, name)| {
                let range = self.captures.get(index)?;
                Some((name.as_ref(), stage_path.get(range)?))
            })
    }
}

/// The host name of a `Host` header value, without the port (`[::1]:8443` → `[::1]`).
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Extracts the API id from an `execute-api` Host (`abc123defg.execute-api.example.com`).
pub fn api_id_from_host(host: &str) -> Option<&str> {
    let host = host_without_port(host);
    let (api_id, rest) = host.split_once('.')?;
    let rest_lower = rest.get(..12)?;
    (rest_lower.eq_ignore_ascii_case("execute-api.") && !api_id.is_empty()).then_some(api_id)
}

/// Routes a request. `path` is the request path without the query string.
/// The stage a request names, whether or not a route matches: error answers use its gateway
/// responses. Only called on the error path.
pub fn stage_for(
    snapshot: &Snapshot,
    host: Option<&str>,
    path: &str,
) -> Option<Arc<CompiledStage>> {
    let api = host
        .and_then(api_id_from_host)
        .and_then(|api_id| snapshot.apis.get(api_id))
        .or(snapshot.default_api.as_ref())?;
    let after_slash = path.strip_prefix('/')?;
    let stage_name = after_slash.split('/').next()?;
    api.stages.get(stage_name).cloned()
}

pub fn resolve(
    snapshot: &Snapshot,
    host: Option<&str>,
    path: &str,
    verb: &str,
) -> Result<Routed, GatewayError> {
    let named_api = host
        .and_then(api_id_from_host)
        .and_then(|api_id| snapshot.apis.get(api_id));
    let api = match (named_api, &snapshot.default_api) {
        (Some(api), _) => api,
        (None, Some(default)) => default,
        (None, None) => return Err(GatewayError::UnknownApi),
    };

    let after_slash = path.strip_prefix('/').ok_or(GatewayError::BadRequest)?;
    let stage_len = after_slash.find('/').unwrap_or(after_slash.len());
    let stage_name = &after_slash[..stage_len];
    let stage = api
        .stages
        .get(stage_name)
        .ok_or(GatewayError::MissingAuthenticationToken)?;
    let stage_path_start = 1 + stage_len;
    let stage_path = match &path[stage_path_start..] {
        "" => "/",
        rest => rest,
    };

    let hit = stage
        .routes
        .lookup(stage_path)
        .ok_or(GatewayError::MissingAuthenticationToken)?;
    let method = hit
        .value
        .method(verb)
        .ok_or(GatewayError::MissingAuthenticationToken)?
        .clone();
    Ok(Routed {
        stage: stage.clone(),
        resource: hit.value.clone(),
        method,
        captures: hit.captures,
        stage_path_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_id_from_execute_api_hosts() {
        assert_eq!(
            api_id_from_host("abc123defg.execute-api.example.com"),
            Some("abc123defg")
        );
        assert_eq!(
            api_id_from_host("abc123defg.Execute-Api.localhost:8080"),
            Some("abc123defg")
        );
        assert_eq!(api_id_from_host("localhost:8080"), None);
        assert_eq!(api_id_from_host("api.example.com"), None);
        assert_eq!(api_id_from_host(".execute-api.x"), None);
        assert_eq!(api_id_from_host("[::1]:8443"), None);
    }

    #[test]
    fn hosts_without_ports() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:8443"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
    }
}
