use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::model::{QuotaPeriod, QuotaSettings, UsagePlan};

fn plan(limit: i32) -> BTreeMap<String, UsagePlan> {
    let plan = UsagePlan {
        id: "plan".into(),
        name: "p".into(),
        description: None,
        api_stages: Vec::new(),
        throttle: None,
        quota: Some(QuotaSettings {
            limit,
            offset: 0,
            period: QuotaPeriod::Day,
        }),
        product_code: None,
        tags: BTreeMap::new(),
        key_ids: BTreeSet::from(["key".to_string()]),
    };
    BTreeMap::from([("plan".to_string(), plan)])
}

fn grant(edge: u64, incarnation: u64, lease_id: Option<u64>, want: u64) -> QuotaOp {
    QuotaOp::Grant {
        edge_id: edge,
        incarnation,
        plan_id: "plan".into(),
        key_id: "key".into(),
        lease_id,
        want,
        ttl_ms: 1_000,
    }
}

const T0: i64 = 1_790_000_000_000;

#[test]
fn grants_stop_at_the_limit_and_returns_come_back() {
    let plans = plan(10);
    let mut ledger = QuotaLedger::default();
    ledger.apply(&plans, T0, &[grant(1, 1, None, 6), grant(2, 1, None, 6)]);
    let granted: Vec<u64> = ledger.leases.values().map(|lease| lease.granted).collect();
    assert_eq!(granted, vec![6, 4]);
    assert_eq!(ledger.available(&plans["plan"], "key", T0), Some(0));
    // Only the lease's own edge incarnation may report on it (or return it).
    for (edge_id, incarnation) in [(2, 1), (1, 2)] {
        ledger.apply(
            &plans,
            T0 + 5,
            &[QuotaOp::Report {
                edge_id,
                incarnation,
                lease_id: 0,
                spent: 0,
                release: true,
                ttl_ms: 0,
            }],
        );
    }
    assert_eq!(ledger.available(&plans["plan"], "key", T0 + 5), Some(0));
    // Edge 1 spent 2 and returns its lease: 4 units come back.
    ledger.apply(
        &plans,
        T0 + 10,
        &[QuotaOp::Report {
            edge_id: 1,
            incarnation: 1,
            lease_id: 0,
            spent: 2,
            release: true,
            ttl_ms: 0,
        }],
    );
    assert_eq!(ledger.available(&plans["plan"], "key", T0 + 10), Some(4));
    // A late report for the closed lease is fenced.
    ledger.apply(
        &plans,
        T0 + 20,
        &[QuotaOp::Report {
            edge_id: 1,
            incarnation: 1,
            lease_id: 0,
            spent: 5,
            release: false,
            ttl_ms: 0,
        }],
    );
    assert_eq!(ledger.available(&plans["plan"], "key", T0 + 20), Some(4));
    // Edge 2 dies: its lease expires and its 4 units are forfeited.
    ledger.apply(&plans, T0 + 5_000, &[QuotaOp::Expire]);
    assert!(ledger.leases.is_empty());
    assert_eq!(ledger.available(&plans["plan"], "key", T0 + 5_000), Some(4));
    let day = T0.div_euclid(DAY_MS);
    assert_eq!(ledger.daily_usage("plan", "key", day, day), vec![(day, 6)]);
    ledger.check().unwrap();
}

#[test]
fn a_new_period_starts_a_new_account() {
    let plans = plan(3);
    let mut ledger = QuotaLedger::default();
    ledger.apply(&plans, T0, &[grant(1, 1, None, 5)]);
    // A top-up of a lease that is not this edge's grants nothing.
    ledger.apply(&plans, T0, &[grant(2, 1, Some(0), 5)]);
    assert_eq!(ledger.leases[&0].granted, 3);
    assert_eq!(ledger.available(&plans["plan"], "key", T0), Some(0));
    let tomorrow = T0 + DAY_MS;
    assert_eq!(ledger.available(&plans["plan"], "key", tomorrow), Some(3));
    // Yesterday's lease is not topped up today; a new one is made.
    ledger.apply(&plans, tomorrow, &[grant(1, 1, Some(0), 2)]);
    assert_eq!(ledger.leases.len(), 1);
    ledger.apply(&plans, tomorrow, &[grant(1, 1, None, 2)]);
    assert_eq!(ledger.leases.len(), 2, "one lease per period");
    assert_eq!(ledger.available(&plans["plan"], "key", tomorrow), Some(1));
}

#[test]
fn periods_follow_utc_with_the_offset() {
    let day = |y, m, d| days_from_civil(y, m, d) * DAY_MS;
    // 2026-11-21 is a Saturday.
    let now = day(2026, 11, 21) + 3_600_000;
    let quota = |period, offset| QuotaSettings {
        limit: 1,
        offset,
        period,
    };
    assert_eq!(
        period_bounds(&quota(QuotaPeriod::Day, 0), now),
        (day(2026, 11, 21), day(2026, 11, 22))
    );
    assert_eq!(
        period_bounds(&quota(QuotaPeriod::Week, 0), now),
        (day(2026, 11, 15), day(2026, 11, 22)),
        "weeks start on Sunday with offset 0"
    );
    assert_eq!(
        period_bounds(&quota(QuotaPeriod::Week, 1), now),
        (day(2026, 11, 16), day(2026, 11, 23)),
        "offset 1: Monday"
    );
    assert_eq!(
        period_bounds(&quota(QuotaPeriod::Month, 0), now),
        (day(2026, 11, 1), day(2026, 12, 1))
    );
    assert_eq!(
        period_bounds(&quota(QuotaPeriod::Month, 24), now),
        (day(2026, 10, 25), day(2026, 11, 25)),
        "offset 24: from the 25th"
    );
    assert_eq!(
        period_bounds(&quota(QuotaPeriod::Month, 0), day(2026, 12, 31)),
        (day(2026, 12, 1), day(2027, 1, 1))
    );
    assert_eq!(parse_day("2026-02-29"), None);
    assert_eq!(format_day(parse_day("2024-02-29").unwrap()), "2024-02-29");
}

/// One step of a random history. Edges are 0..3; each has an incarnation (a crash starts a
/// new one, forgetting what it spent and never reporting it).
#[derive(Debug, Clone)]
enum Step {
    Grant {
        edge: usize,
        want: u64,
        top_up: bool,
    },
    Spend {
        edge: usize,
        units: u64,
    },
    Report {
        edge: usize,
        release: bool,
    },
    Crash {
        edge: usize,
    },
    Tick {
        ms: i64,
    },
    Expire,
    /// The command that carries this edge's next op is lost (partition).
    Lose {
        edge: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, 0..8u64, any::<bool>()).prop_map(|(edge, want, top_up)| Step::Grant {
            edge,
            want,
            top_up
        }),
        (0..3usize, 1..5u64).prop_map(|(edge, units)| Step::Spend { edge, units }),
        (0..3usize, any::<bool>()).prop_map(|(edge, release)| Step::Report { edge, release }),
        (0..3usize).prop_map(|edge| Step::Crash { edge }),
        (1..700i64).prop_map(|ms| Step::Tick { ms }),
        Just(Step::Expire),
        (0..3usize).prop_map(|edge| Step::Lose { edge }),
    ]
}

/// What an edge knows: its incarnation, and per lease the units it spent (admitted).
#[derive(Debug, Default, Clone)]
struct Edge {
    incarnation: u64,
    spent: BTreeMap<u64, u64>,
    lose_next: bool,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random interleavings of grant, spend, report, return, expiry, crashes and lost
    /// commands never admit more than the limit, and the ledger's books always balance.
    #[test]
    fn the_ledger_never_over_admits(limit in 0i32..40, steps in prop::collection::vec(step(), 1..120)) {
        let plans = plan(limit);
        let mut ledger = QuotaLedger::default();
        let mut edges = [Edge::default(), Edge::default(), Edge::default()];
        let mut now = T0;
        let mut admitted = 0u64;
        // An edge stops spending a lease this long before it expires (clock margin).
        let margin = 100;
        for step in steps {
            let mut ops = Vec::new();
            let mut sender = None;
            match step {
                Step::Grant { edge, want, top_up } => {
                    let incarnation = edges[edge].incarnation;
                    let lease = top_up.then(|| {
                        ledger
                            .leases
                            .iter()
                            .find(|(_, lease)| lease.edge_id == edge as u64 && lease.incarnation == incarnation)
                            .map(|(id, _)| *id)
                    })
                    .flatten();
                    ops.push(grant(edge as u64, incarnation, lease, want));
                    sender = Some(edge);
                }
                Step::Spend { edge, units } => {
                    let incarnation = edges[edge].incarnation;
                    // The edge spends only from leases it sees in the ledger, before expiry.
                    let leases: Vec<(u64, Lease)> = ledger
                        .leases
                        .iter()
                        .filter(|(_, lease)| lease.edge_id == edge as u64 && lease.incarnation == incarnation)
                        .map(|(id, lease)| (*id, lease.clone()))
                        .collect();
                    for (id, lease) in leases {
                        if now + margin >= lease.expires_at_ms {
                            continue;
                        }
                        let spent = edges[edge].spent.entry(id).or_default();
                        let can = (lease.granted - *spent).min(units);
                        *spent += can;
                        admitted += can;
                    }
                }
                Step::Report { edge, release } => {
                    for (id, spent) in &edges[edge].spent {
                        ops.push(QuotaOp::Report {
                            edge_id: edge as u64,
                            incarnation: edges[edge].incarnation,
                            lease_id: *id,
                            spent: *spent,
                            release,
                            ttl_ms: 1_000,
                        });
                    }
                    sender = Some(edge);
                }
                Step::Crash { edge } => {
                    edges[edge].incarnation += 1;
                    edges[edge].spent.clear();
                }
                Step::Tick { ms } => now += ms,
                Step::Expire => ops.push(QuotaOp::Expire),
                Step::Lose { edge } => edges[edge].lose_next = true,
            }
            if let Some(edge) = sender && std::mem::take(&mut edges[edge].lose_next) {
                continue;
            }
            ledger.apply(&plans, now, &ops);
            prop_assert!(ledger.check().is_ok(), "{:?}", ledger.check());
            for account in ledger.accounts.values() {
                prop_assert!(account.spent() + account.outstanding <= limit as u64);
            }
            prop_assert!(admitted <= limit as u64, "admitted {admitted} > limit {limit}");
        }
    }
}
