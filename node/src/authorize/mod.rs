//! Authorization at the edge: who may call a method, decided before keys, throttles, the cache
//! and the integration, as API Gateway orders it.

pub mod iam;
pub mod policy;
