//! Configuration: from replicated state to the compiled snapshot the data plane serves.

pub mod auth;
pub mod cache;
pub mod compile;
