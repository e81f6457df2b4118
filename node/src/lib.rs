//! The Portico node: an API gateway compatible with Amazon API Gateway's REST APIs.
//!
//! The modules follow the request path (see ARCHITECTURE.md): `accept` (listeners, TLS, HTTP,
//! generic over the handler) → `pipeline` (one request end to end) → `route` → `authorize` →
//! `limits` → `cache` → `integrate` → `respond`, sharing the request context of `request`, with
//! `config` compiling replicated state into the snapshot those stages read, and `observe`
//! writing the access log and rendering metrics. `serve` wires the gateway and the metrics
//! behind listeners. `config` feeds the data path and never imports from it; the data-plane
//! stages never import the control plane (`admin`, `cluster`) or the wiring (`dev`,
//! `pipeline`, `serve`, `accept`): `node/tests/layering.rs` checks both.

pub mod accept;
pub mod admin;
pub mod authorize;
pub mod awsconf;
pub mod body;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod dev;
pub mod ids;
pub mod integrate;
pub mod limits;
pub mod memory;
pub mod observe;
pub mod openapi;
pub mod pipeline;
pub mod request;
pub mod respond;
pub mod route;
pub mod serve;
pub mod sigv4;
pub mod time;
pub mod tls;
