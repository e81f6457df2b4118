//! Names of the token buckets that throttle requests, and the demand reports edges and origins
//! exchange to share each bucket's rate across the cluster.
//!
//! Admission is always local: an edge refills its own copy of a bucket at its share of the
//! bucket's rate. Shares follow demand: each edge reports how many requests reached each bucket
//! over its last window, the origins of a region add them up and send their totals to the
//! origins of the other regions, and an edge's share is its demand over the cluster's.

use serde::{Deserialize, Serialize};

/// A throttle bucket: the four levels at which API Gateway throttles.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BucketKey {
    /// The account throttle (every API).
    Account,
    /// A stage's method setting: `method` is the setting's key (`*/*` or `pets/{id}/GET`).
    StageMethod {
        api_id: String,
        stage: String,
        method: String,
    },
    /// A usage plan's throttle for one API key.
    Plan { plan_id: String, key_id: String },
    /// A usage plan's per-method override for one API key: `method` as the plan writes it
    /// (`/pets/GET`).
    PlanMethod {
        plan_id: String,
        key_id: String,
        api_id: String,
        stage: String,
        method: String,
    },
}

/// Demand per bucket in requests per second over the sender's last window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandReport {
    /// The edge (for an edge's report) or the origin (for a region total).
    pub node_id: u64,
    pub region: String,
    pub buckets: Vec<(BucketKey, f64)>,
}
