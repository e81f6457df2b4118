//! The harness for multi-process cluster tests.
//!
//! Tests start real `portico` processes on distinct loopback addresses (127.0.0.x) with
//! temporary data dirs, put [`link::Link`] relays between regions, kill (SIGKILL) and restart
//! nodes, and bound every wait. Nothing binds outside 127.0.0.0/8, and every process a test
//! starts is killed when its handle drops, however the test ends.

pub mod backend;
pub mod harness;
pub mod link;
pub mod usage;
