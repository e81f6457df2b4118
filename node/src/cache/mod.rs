//! Response caching (issue #6). The edge's L1 tier lives here; `shared` is the seam to the
//! region's L2 on the origins.

pub mod auth;
pub mod shared;
