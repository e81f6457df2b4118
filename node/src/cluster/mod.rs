//! The cluster roles: origins replicate state through Raft over QUIC; edges follow an origin
//! and serve from the replicated snapshot, surviving the loss of every origin.

pub mod config;
pub mod follow;
