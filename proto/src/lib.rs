//! Portico's data model and the encoding of everything nodes exchange or store.
//!
//! This crate is pure data: no networking, no files, no clocks, no randomness. Callers pass
//! time and identifiers in. That keeps the model usable from the Raft state machine (which
//! must be deterministic), from edges, from tests and from tools alike.

#![warn(missing_debug_implementations)]

pub mod admin;
pub mod cache;
pub mod cluster;
pub mod codec;
pub mod iam;
pub mod model;
pub mod quota;
pub mod throttle;

pub use model::*;
