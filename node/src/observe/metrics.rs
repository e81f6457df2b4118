//! The node's Prometheus metrics: one registry per node (tests run several nodes in one
//! process), served as text on a listener of its own (`serve::metrics`) so that scraping never competes with the
//! data plane's listeners or shows up in its access log.
//!
//! Request-path code never touches the registry: a counter handle is an `Arc<AtomicU64>`,
//! fetched from its family when a snapshot is attached (see `cache::ResponseCache::attach`),
//! so counting a request is one atomic add.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::body::Body;

/// The labels of the cache counters: cardinality is bounded by the deployed methods.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub api: String,
    pub stage: String,
    /// Verb and resource path: `GET /pets/{id}`.
    pub method: String,
}

/// Every metric of one node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub cache_hits: Family<CacheLabels, Counter>,
    pub cache_misses: Family<CacheLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let cache_hits = Family::<CacheLabels, Counter>::default();
        let cache_misses = Family::<CacheLabels, Counter>::default();
        registry.register(
            "portico_cache_hits",
            "Requests answered from the response cache without calling the backend",
            cache_hits.clone(),
        );
        registry.register(
            "portico_cache_misses",
            "Requests to cached methods that called the backend",
            cache_misses.clone(),
        );
        Metrics {
            registry,
            cache_hits,
            cache_misses,
        }
    }

    /// The hit and miss counters of one cached method (created on first use).
    pub fn cache_counters(&self, labels: &CacheLabels) -> (Counter, Counter) {
        (
            self.cache_hits.get_or_create(labels).clone(),
            self.cache_misses.get_or_create(labels).clone(),
        )
    }

    /// The registry in the OpenMetrics text format (which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Answers `GET /metrics`; anything else is a 404 (or 405 for another verb on it).
    pub fn respond(&self, method: &Method, path: &str) -> Response<Body> {
        let (status, content_type, text) = match (path, method) {
            ("/metrics", &Method::GET | &Method::HEAD) => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.render(),
            ),
            ("/metrics", _) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "method not allowed\n".to_string(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found\n".to_string(),
            ),
        };
        let mut response = Response::new(crate::body::full(Bytes::from(text)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_labels() {
        let metrics = Metrics::new();
        let labels = CacheLabels {
            api: "abc".into(),
            stage: "prod".into(),
            method: "GET /pets/{id}".into(),
        };
        let (hits, misses) = metrics.cache_counters(&labels);
        hits.inc();
        hits.inc();
        misses.inc();
        let text = metrics.render();
        assert!(
            text.contains(
                r#"portico_cache_hits_total{api="abc",stage="prod",method="GET /pets/{id}"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"portico_cache_misses_total{api="abc",stage="prod",method="GET /pets/{id}"} 1"#
            ),
            "{text}"
        );
        assert_eq!(metrics.respond(&Method::GET, "/nope").status(), 404);
        assert_eq!(metrics.respond(&Method::POST, "/metrics").status(), 405);
    }
}
