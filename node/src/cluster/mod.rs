//! The cluster roles: origins replicate state through Raft over QUIC; edges follow an origin
//! and serve from the replicated snapshot, surviving the loss of every origin.
//!
//! - `certs`: the cluster's private PKI (`portico cluster init`); identities from certificates.
//! - `transport`: QUIC with mutual TLS; one request per stream, or a stream of updates.
//! - `raft`: openraft on redb: log, state machine (`proto::cluster::apply`), snapshots.
//! - `origin`: a Raft member serving Raft RPCs, admin requests and edge subscriptions.
//! - `edge`/`follow`: the data plane following an origin, with its state persisted.
//! - `l2`: the region's response cache on the origins, and the edge's ends of the cache seams.
//! - `signing`: an edge's AWS_IAM signing keys, fetched from its origin and kept on disk.
//! - `ctl`: the admin client; `config`: node config files.

pub mod certs;
pub mod config;
pub mod ctl;
pub mod edge;
pub mod follow;
pub mod l2;
pub mod origin;
pub mod raft;
pub mod signing;
pub mod transport;
