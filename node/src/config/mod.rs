//! Configuration: from replicated state to the compiled snapshot the data plane serves.

pub mod cache;
pub mod compile;
