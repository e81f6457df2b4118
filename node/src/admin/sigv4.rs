//! SigV4 lives in the leaf module [`crate::sigv4`] (the data plane verifies AWS_IAM requests
//! with it too); re-exported here so the management API's callers keep their paths.

pub use crate::sigv4::*;
