//! An origin's view of throttle demand: its own edges' reports and the other origins' totals,
//! from which each edge's share of a bucket is computed.
//!
//! Shares follow demand: `share(edge) = demand(edge) / Σ demand(cluster)`, so edges that see
//! more traffic refill faster and the cluster as a whole admits the bucket's rate. An edge
//! alone gets exactly 1 (it is then exactly one token bucket). An edge that reports no demand
//! for a bucket gets a small floor, so that its first requests are not all refused before its
//! next report. Reports older than [`FRESH_FOR`] are forgotten: an edge or region that stops
//! reporting stops holding a share (during a partition each side shares the rate among what it
//! can see, so the cluster may admit more than the rate until the partition heals).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portico_proto::throttle::{BucketKey, DemandReport};

/// How long a report counts.
pub const FRESH_FOR: Duration = Duration::from_millis(1_500);
/// How often edges report and origins exchange totals.
pub const REPORT_EVERY: Duration = Duration::from_millis(250);
/// The share of an edge that reports no demand for a bucket others use.
const IDLE_FLOOR: f64 = 0.05;

/// Reports by sender id: when each arrived, and its demand per bucket.
type Reports = HashMap<u64, (Instant, HashMap<BucketKey, f64>)>;

#[derive(Debug, Default)]
pub struct DemandBoard {
    /// This origin's edges.
    edges: Mutex<Reports>,
    /// Other origins' totals.
    origins: Mutex<Reports>,
}

impl DemandBoard {
    /// Records an edge's report and answers its shares.
    pub fn edge_report(&self, edge_id: u64, report: &DemandReport) -> Vec<(BucketKey, f64)> {
        let now = Instant::now();
        let own: HashMap<BucketKey, f64> = report
            .buckets
            .iter()
            .map(|(key, rate)| (key.clone(), sanitize(*rate)))
            .collect();
        let Ok(mut edges) = self.edges.lock() else {
            return Vec::new();
        };
        edges.retain(|_, (at, _)| now.duration_since(*at) < FRESH_FOR);
        edges.insert(edge_id, (now, own));
        let Ok(mut origins) = self.origins.lock() else {
            return Vec::new();
        };
        origins.retain(|_, (at, _)| now.duration_since(*at) < FRESH_FOR);
        let own = &edges[&edge_id].1;
        own.iter()
            .map(|(key, mine)| {
                let total: f64 = edges
                    .values()
                    .filter_map(|(_, demand)| demand.get(key))
                    .chain(origins.values().filter_map(|(_, demand)| demand.get(key)))
                    .sum();
                let share = if total <= 0.0 {
                    // Nobody asks: whoever asks first gets the whole bucket.
                    1.0
                } else if *mine <= 0.0 {
                    IDLE_FLOOR
                } else {
                    mine / total
                };
                (key.clone(), share)
            })
            .collect()
    }

    /// Records another origin's totals.
    pub fn origin_report(&self, origin_id: u64, report: &DemandReport) {
        let demand = report
            .buckets
            .iter()
            .map(|(key, rate)| (key.clone(), sanitize(*rate)))
            .collect();
        if let Ok(mut origins) = self.origins.lock() {
            origins.insert(origin_id, (Instant::now(), demand));
        }
    }

    /// The sum of this origin's fresh edge reports, for the other origins.
    pub fn own_totals(&self) -> Vec<(BucketKey, f64)> {
        let now = Instant::now();
        let Ok(edges) = self.edges.lock() else {
            return Vec::new();
        };
        let mut totals: HashMap<BucketKey, f64> = HashMap::new();
        for (at, demand) in edges.values() {
            if now.duration_since(*at) >= FRESH_FOR {
                continue;
            }
            for (key, rate) in demand {
                *totals.entry(key.clone()).or_default() += rate;
            }
        }
        totals.into_iter().collect()
    }
}

fn sanitize(rate: f64) -> f64 {
    if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(node_id: u64, rate: f64) -> DemandReport {
        DemandReport {
            node_id,
            region: "a".into(),
            buckets: vec![(BucketKey::Account, rate)],
        }
    }

    #[test]
    fn shares_follow_demand_across_origins() {
        let board = DemandBoard::default();
        assert_eq!(
            board.edge_report(1, &report(1, 70.0)),
            vec![(BucketKey::Account, 1.0)],
            "an edge alone holds the whole bucket"
        );
        board.origin_report(9, &report(9, 30.0));
        let shares = board.edge_report(1, &report(1, 70.0));
        assert!((shares[0].1 - 0.7).abs() < 1e-9, "{shares:?}");
        let shares = board.edge_report(2, &report(2, 0.0));
        assert_eq!(shares[0].1, IDLE_FLOOR);
        assert_eq!(board.own_totals(), vec![(BucketKey::Account, 70.0)]);
        // Garbage rates count as nothing.
        let shares = board.edge_report(3, &report(3, f64::NAN));
        assert_eq!(shares[0].1, IDLE_FLOOR);
    }
}
