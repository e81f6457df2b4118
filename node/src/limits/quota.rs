//! An edge's side of the quota ledger: spending leased units on the request path, and the
//! reporter that asks for, reports and returns leases.
//!
//! The request path touches only atomics: a unit is spent by incrementing the lease's `spent`
//! counter while it is below `granted`. The reporter runs beside it, every
//! [`REPORT_EVERY`], and turns what it sees into [`QuotaOp`]s for the ledger: top-ups when a
//! lease runs low (sized to half a second of demand), cumulative reports that also renew the lease,
//! returns when a key goes idle or its period ends. Grants come back through the replicated
//! state the edge follows ([`QuotaPool::adopt`]), not through the reply, so an edge never
//! believes in a lease the ledger does not hold.
//!
//! A lease stops being spent [`SPEND_MARGIN`] before it expires by this node's clock, so that a
//! lease the leader expires (by its clock) is never spent afterwards while clocks agree within
//! that margin.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use portico_proto::quota::{Lease, QuotaOp};

/// How often the reporter runs.
pub const REPORT_EVERY: Duration = Duration::from_millis(100);
/// Lease lifetime from each grant or report.
pub const LEASE_TTL_MS: u64 = 10_000;
/// Stop spending a lease this long before it expires (clock skew between nodes).
pub const SPEND_MARGIN_MS: i64 = 1_000;
/// Alias for the docs above.
pub const SPEND_MARGIN: Duration = Duration::from_millis(SPEND_MARGIN_MS as u64);
/// A lease whose key saw no request for this long is returned.
pub const IDLE_RETURN_MS: i64 = 5_000;
/// A grant asked for and not yet seen is not asked for again before this long.
const GRANT_PATIENCE_MS: i64 = 500;
/// Units asked for before the demand is known.
const FIRST_GRANT: u64 = 10;
/// A grant is this many seconds of the key's demand on this edge.
const LEASE_SECONDS: f64 = 0.5;
/// The most one grant asks for.
const MAX_GRANT: u64 = 1_000_000;

/// One lease as this edge spends it.
#[derive(Debug)]
pub struct LeaseSlot {
    pub lease_id: u64,
    granted: AtomicU64,
    spent: AtomicU64,
    /// What the ledger has recorded as spent (what we last saw in the state).
    reported: AtomicU64,
    usable_until_ms: AtomicI64,
    period_end_ms: i64,
    /// Set before the final report: nothing is spent afterwards.
    closed: AtomicBool,
}

/// Everything one edge does for one (plan, key): spend leased units, or, for a plan without a
/// quota, count requests for the daily usage.
#[derive(Debug)]
pub struct QuotaPool {
    pub plan_id: String,
    pub key_id: String,
    /// On the reporter's list of pools that need it ([`ActivePools`]).
    listed: AtomicBool,
    has_quota: AtomicBool,
    slot: ArcSwapOption<LeaseSlot>,
    /// Requests that asked this pool for a unit since the reporter last looked.
    demand: AtomicU64,
    /// Requests admitted on a plan without a quota since the reporter last looked.
    counted: AtomicU64,
    /// Until when (epoch ms: the end of the period it was seen in) the ledger has nothing left
    /// for this key beyond our own lease; 0 when it has. A new period clears it by itself.
    exhausted_until_ms: AtomicI64,
    /// A return is waiting to be acknowledged by the state (see `ReporterState::returning`).
    returning: AtomicBool,
    /// Requests are waiting for a grant.
    wanted: AtomicBool,
    granted_notify: tokio::sync::Notify,
    /// Reporter-only state.
    reporter: std::sync::Mutex<ReporterState>,
}

#[derive(Debug, Default)]
struct ReporterState {
    /// Requests per second, smoothed.
    rate: f64,
    last_demand_ms: i64,
    grant_asked_ms: Option<i64>,
    /// The size of the last grant asked for (doubled while requests starve).
    last_want: u64,
    /// Spent count last sent for the current slot.
    sent_spent: u64,
    /// Leases this edge gave up (returned, or granted to it but never used) with the units it
    /// spent on each, re-sent until the state no longer shows them: a return lost to a
    /// partition is retried rather than left to expire.
    returning: Vec<(u64, u64)>,
}

/// The answer of [`QuotaPool::try_spend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Spent,
    /// No leased unit now; `exhausted` says the ledger has none left either.
    Empty {
        exhausted: bool,
    },
}

impl QuotaPool {
    pub fn new(plan_id: String, key_id: String, has_quota: bool) -> Self {
        QuotaPool {
            plan_id,
            key_id,
            listed: AtomicBool::new(false),
            has_quota: AtomicBool::new(has_quota),
            slot: ArcSwapOption::empty(),
            demand: AtomicU64::new(0),
            counted: AtomicU64::new(0),
            exhausted_until_ms: AtomicI64::new(0),
            returning: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
            granted_notify: tokio::sync::Notify::new(),
            reporter: std::sync::Mutex::new(ReporterState::default()),
        }
    }

    pub fn set_has_quota(&self, has_quota: bool) {
        self.has_quota.store(has_quota, Ordering::Relaxed);
    }

    pub fn has_quota(&self) -> bool {
        self.has_quota.load(Ordering::Relaxed)
    }

    /// Counts a request admitted on a plan without a quota.
    pub fn count(&self) {
        self.counted.fetch_add(1, Ordering::Relaxed);
    }

    /// Puts back counts whose report was not delivered (a count reported twice is better
    /// than one lost).
    pub fn recount(&self, count: u64) {
        self.counted.fetch_add(count, Ordering::Relaxed);
    }

    /// Spends one leased unit at `now_ms`, without waiting.
    pub fn try_spend(&self, now_ms: i64) -> Spend {
        self.demand.fetch_add(1, Ordering::Relaxed);
        self.spend_leased(now_ms)
    }

    /// [`QuotaPool::try_spend`] without counting demand (a waiting request asking again).
    fn spend_leased(&self, now_ms: i64) -> Spend {
        if let Some(slot) = self.slot.load().as_ref()
            && now_ms < slot.usable_until_ms.load(Ordering::SeqCst)
            && now_ms < slot.period_end_ms
        {
            let before = slot.spent.fetch_add(1, Ordering::SeqCst);
            // `closed` is checked after the increment: the reporter sets it before reading
            // `spent` for the final report, so a unit is either in that report or undone here.
            if before < slot.granted.load(Ordering::SeqCst) && !slot.closed.load(Ordering::SeqCst) {
                return Spend::Spent;
            }
            slot.spent.fetch_sub(1, Ordering::SeqCst);
        }
        Spend::Empty {
            exhausted: self.is_exhausted(now_ms),
        }
    }

    fn is_exhausted(&self, now_ms: i64) -> bool {
        now_ms < self.exhausted_until_ms.load(Ordering::Relaxed)
    }

    /// Nothing to report, return or wait for: the reporter and the state observer skip it
    /// (an edge may hold pools for many keys that see no traffic).
    pub fn is_quiet(&self) -> bool {
        self.exhausted_until_ms.load(Ordering::Relaxed) == 0
            && self.slot.load().is_none()
            && !self.wanted.load(Ordering::Relaxed)
            && self.demand.load(Ordering::Relaxed) == 0
            && self.counted.load(Ordering::Relaxed) == 0
            && !self.returning.load(Ordering::Relaxed)
    }

    /// Spends one unit, waiting up to `patience` for a grant when none is leased and the ledger
    /// may still have some. `Err` means no unit: the quota is exhausted (or no grant came).
    ///
    /// `enlist` is called after each change that makes the pool need the reporter (demand
    /// counted, a grant wanted), before any wait: it puts the pool on the reporter's list.
    pub async fn spend(
        &self,
        now_ms: impl Fn() -> i64,
        wake_reporter: &tokio::sync::Notify,
        enlist: impl Fn(),
        patience: Duration,
    ) -> Result<(), &'static str> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut first = true;
        loop {
            let granted = self.granted_notify.notified();
            // Demand counts each request once, not each time a waiting one asks again.
            let attempt = if std::mem::take(&mut first) {
                let attempt = self.try_spend(now_ms());
                enlist();
                attempt
            } else {
                self.spend_leased(now_ms())
            };
            match attempt {
                Spend::Spent => return Ok(()),
                Spend::Empty { exhausted: true } => return Err("quota exhausted"),
                Spend::Empty { exhausted: false } => {}
            }
            self.wanted.store(true, Ordering::Relaxed);
            enlist();
            wake_reporter.notify_one();
            if tokio::time::timeout_at(deadline, granted).await.is_err() {
                return Err("no quota lease was granted in time");
            }
        }
    }

    /// Takes in the ledger's view: this edge incarnation's open leases on the account, and
    /// whether the account has anything left in the period ending at `period_end_ms`. Called
    /// after applied states, off the request path.
    pub fn adopt(&self, leases: &[(u64, &Lease)], ledger_has_units: bool, period_end_ms: i64) {
        let mut woke = false;
        let Ok(mut state) = self.reporter.lock() else {
            return;
        };
        // Returns the state no longer shows have landed (or the lease expired): done.
        state
            .returning
            .retain(|(id, _)| leases.iter().any(|(lease_id, _)| lease_id == id));
        let current = self.slot.load_full();
        if let Some(slot) = &current {
            match leases.iter().find(|(id, _)| *id == slot.lease_id) {
                Some((_, lease)) => {
                    let before = slot.granted.fetch_max(lease.granted, Ordering::SeqCst);
                    slot.reported.fetch_max(lease.reported, Ordering::SeqCst);
                    slot.usable_until_ms
                        .fetch_max(lease.expires_at_ms - SPEND_MARGIN_MS, Ordering::SeqCst);
                    woke = lease.granted > before;
                    if woke {
                        // The top-up asked for has landed: the next may be asked at once, and
                        // waiting requests may try again.
                        state.grant_asked_ms = None;
                        self.wanted.store(false, Ordering::Relaxed);
                    }
                }
                None => {
                    // The ledger closed it (it expired while we could not renew it): stop.
                    slot.closed.store(true, Ordering::SeqCst);
                    self.slot.store(None);
                    state.sent_spent = 0;
                }
            }
        }
        // Leases of ours the ledger holds that we neither use nor return: the newest becomes
        // the slot when there is none; the others (a grant retried after a lost answer) go back.
        let using = self.slot.load().as_ref().map(|slot| slot.lease_id);
        let mut spare: Vec<(u64, &Lease)> = leases
            .iter()
            .filter(|(id, _)| Some(*id) != using && !state.returning.iter().any(|(r, _)| r == id))
            .map(|(id, lease)| (*id, *lease))
            .collect();
        spare.sort_by_key(|(id, _)| *id);
        if using.is_none()
            && let Some((lease_id, lease)) = spare.pop()
        {
            let slot = LeaseSlot {
                lease_id,
                granted: AtomicU64::new(lease.granted),
                // Our own incarnation's lease: what the ledger recorded, we spent.
                spent: AtomicU64::new(lease.reported),
                reported: AtomicU64::new(lease.reported),
                usable_until_ms: AtomicI64::new(lease.expires_at_ms - SPEND_MARGIN_MS),
                period_end_ms: lease.period_end_ms,
                closed: AtomicBool::new(false),
            };
            state.sent_spent = lease.reported;
            state.grant_asked_ms = None;
            self.wanted.store(false, Ordering::Relaxed);
            self.slot.store(Some(Arc::new(slot)));
            woke = true;
        }
        for (id, lease) in spare {
            state.returning.push((id, lease.reported));
        }
        self.returning
            .store(!state.returning.is_empty(), Ordering::Relaxed);
        drop(state);
        let own_left = self
            .slot
            .load()
            .as_ref()
            .map(|slot| {
                slot.granted
                    .load(Ordering::SeqCst)
                    .saturating_sub(slot.spent.load(Ordering::SeqCst))
            })
            .unwrap_or(0);
        let exhausted = !ledger_has_units && own_left == 0;
        let until = if exhausted { period_end_ms } else { 0 };
        let was = self.exhausted_until_ms.swap(until, Ordering::Relaxed);
        if woke || (exhausted && was == 0) {
            self.granted_notify.notify_waiters();
        }
    }

    /// What the reporter sends for this pool at `now_ms`.
    pub fn reporter_ops(&self, now_ms: i64, edge_id: u64, incarnation: u64) -> Vec<QuotaOp> {
        let mut ops = Vec::new();
        let Ok(mut state) = self.reporter.lock() else {
            return ops;
        };
        let demand = self.demand.swap(0, Ordering::Relaxed);
        if demand > 0 {
            state.last_demand_ms = now_ms;
        }
        // Smoothed requests per second (REPORT_EVERY windows).
        let window_s = REPORT_EVERY.as_secs_f64();
        state.rate = 0.7 * state.rate + 0.3 * (demand as f64 / window_s);

        for (lease_id, spent) in &state.returning {
            ops.push(QuotaOp::Report {
                edge_id,
                incarnation,
                lease_id: *lease_id,
                spent: *spent,
                release: true,
                ttl_ms: 0,
            });
        }
        if !self.has_quota() {
            // The plan lost its quota: give back a lease still held, then just count.
            if let Some(slot) = self.slot.load_full() {
                ops.push(self.give_back(&slot, &mut state, (edge_id, incarnation)));
            }
            let count = self.counted.swap(0, Ordering::Relaxed);
            if count > 0 {
                ops.push(QuotaOp::Count {
                    plan_id: self.plan_id.clone(),
                    key_id: self.key_id.clone(),
                    count,
                });
            }
            return ops;
        }

        // Half a second of demand per grant: enough that a top-up lands before the lease runs
        // dry, small enough that a lease lost with its edge forfeits little. Demand seen by an
        // edge whose clients wait for units is capped by what it admits, so while requests
        // starve the grant doubles instead (as a slow start would).
        let starving = self.wanted.load(Ordering::Relaxed);
        let by_rate = (state.rate * LEASE_SECONDS).ceil() as u64;
        let want = if starving {
            by_rate.max(state.last_want.saturating_mul(2))
        } else {
            by_rate
        }
        .clamp(FIRST_GRANT, MAX_GRANT);
        let slot = self.slot.load_full();
        let idle = now_ms - state.last_demand_ms > IDLE_RETURN_MS;
        match slot {
            Some(slot) => {
                let over = now_ms >= slot.period_end_ms
                    || now_ms >= slot.usable_until_ms.load(Ordering::SeqCst);
                if over || idle {
                    ops.push(self.give_back(&slot, &mut state, (edge_id, incarnation)));
                    // Demand continues into a new period: ask for the next lease now.
                    if !idle && !self.is_exhausted(now_ms) {
                        ops.push(self.grant(edge_id, incarnation, None, want));
                        state.grant_asked_ms = Some(now_ms);
                        state.last_want = want;
                    }
                    return ops;
                }
                let spent = slot.spent.load(Ordering::SeqCst);
                let granted = slot.granted.load(Ordering::SeqCst);
                let usable_for = slot.usable_until_ms.load(Ordering::SeqCst) - now_ms;
                let renew = usable_for < (LEASE_TTL_MS as i64) / 2;
                if spent != state.sent_spent || renew {
                    ops.push(QuotaOp::Report {
                        edge_id,
                        incarnation,
                        lease_id: slot.lease_id,
                        spent,
                        release: false,
                        ttl_ms: LEASE_TTL_MS,
                    });
                    state.sent_spent = spent;
                }
                let low = starving || granted.saturating_sub(spent) < want / 2 + 1;
                let patient = state
                    .grant_asked_ms
                    .is_some_and(|asked| now_ms - asked < GRANT_PATIENCE_MS);
                if low && !patient && !self.is_exhausted(now_ms) && !idle {
                    ops.push(self.grant(edge_id, incarnation, Some(slot.lease_id), want));
                    state.grant_asked_ms = Some(now_ms);
                    state.last_want = want;
                }
            }
            None => {
                let patient = state
                    .grant_asked_ms
                    .is_some_and(|asked| now_ms - asked < GRANT_PATIENCE_MS);
                if (starving || !idle) && !patient && !self.is_exhausted(now_ms) {
                    ops.push(self.grant(edge_id, incarnation, None, want));
                    state.grant_asked_ms = Some(now_ms);
                    state.last_want = want;
                }
            }
        }
        ops
    }

    /// Stops spending `slot` and returns its unspent units: the final report, re-sent until the
    /// state no longer shows the lease. Closed first, then read, so no unit is spent after it.
    fn give_back(
        &self,
        slot: &LeaseSlot,
        state: &mut ReporterState,
        (edge_id, incarnation): (u64, u64),
    ) -> QuotaOp {
        slot.closed.store(true, Ordering::SeqCst);
        let spent = slot.spent.load(Ordering::SeqCst);
        state.returning.push((slot.lease_id, spent));
        self.returning.store(true, Ordering::Relaxed);
        self.slot.store(None);
        state.sent_spent = 0;
        QuotaOp::Report {
            edge_id,
            incarnation,
            lease_id: slot.lease_id,
            spent,
            release: true,
            ttl_ms: 0,
        }
    }

    fn grant(&self, edge_id: u64, incarnation: u64, lease_id: Option<u64>, want: u64) -> QuotaOp {
        QuotaOp::Grant {
            edge_id,
            incarnation,
            plan_id: self.plan_id.clone(),
            key_id: self.key_id.clone(),
            lease_id,
            want,
            ttl_ms: LEASE_TTL_MS,
        }
    }
}

/// The pools the reporter and the state observer look at: those that saw a request since they
/// were last quiet. An edge (or `dev`) may hold a pool for each of 100,000 keys; walking all of
/// them every 100 ms was 15 % of a loaded `dev`'s CPU with a p99 of 30 ms (the `keys-100k`
/// bench). A pool joins on the request path only when it goes from quiet to busy (one
/// uncontended lock per transition, not per request) and leaves when the reporter finds it
/// quiet again.
///
/// Joining and leaving race without losing a pool: the request path changes the pool's state
/// and then reads `listed`; the reporter clears `listed` and then reads the state, each pair
/// separated by a `SeqCst` fence, so at least one of them sees the other's write: either the
/// reporter sees the pool busy and keeps it, or the request path sees it unlisted and adds it
/// again (a duplicate, if both happen, is removed by the next pass).
#[derive(Debug, Default)]
pub struct ActivePools {
    pools: std::sync::Mutex<Vec<Arc<QuotaPool>>>,
}

impl ActivePools {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<QuotaPool>>> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts `pool` on the list unless it is there. Call after changing the pool's state.
    pub fn enlist(&self, pool: &Arc<QuotaPool>) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if !pool.listed.load(Ordering::SeqCst) && !pool.listed.swap(true, Ordering::SeqCst) {
            self.lock().push(pool.clone());
        }
    }

    /// The listed pools (each once).
    pub fn snapshot(&self) -> Vec<Arc<QuotaPool>> {
        let mut pools = self.lock().clone();
        pools.sort_by_key(|pool| Arc::as_ptr(pool) as usize);
        pools.dedup_by(|a, b| Arc::ptr_eq(a, b));
        pools
    }

    /// Drops the pools that are quiet, and those `keep` refuses (pools the registry no longer
    /// holds), and duplicates.
    pub fn prune(&self, keep: impl Fn(&Arc<QuotaPool>) -> bool) {
        let mut pools = self.lock();
        pools.sort_by_key(|pool| Arc::as_ptr(pool) as usize);
        pools.dedup_by(|a, b| Arc::ptr_eq(a, b));
        pools.retain(|pool| {
            if !keep(pool) {
                pool.listed.store(false, Ordering::SeqCst);
                return false;
            }
            if !pool.is_quiet() {
                return true;
            }
            pool.listed.store(false, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if pool.is_quiet() {
                return false;
            }
            // Busy again meanwhile: stays (the request path may have added it too).
            pool.listed.store(true, Ordering::SeqCst);
            true
        });
    }
}

#[cfg(test)]
mod active_tests {
    use super::*;

    fn listed(active: &ActivePools) -> usize {
        active.snapshot().len()
    }

    #[test]
    fn a_pool_joins_when_busy_and_leaves_when_quiet() {
        let active = ActivePools::default();
        let pool = Arc::new(QuotaPool::new("plan".into(), "key".into(), false));
        let other = Arc::new(QuotaPool::new("plan".into(), "other".into(), false));
        assert_eq!(listed(&active), 0);

        pool.count();
        active.enlist(&pool);
        active.enlist(&pool);
        assert_eq!(active.lock().len(), 1, "enlisted once however often asked");
        // Busy: a prune keeps it.
        active.prune(|_| true);
        assert_eq!(listed(&active), 1);

        // The reporter takes the count: the pool is quiet and leaves.
        let ops = pool.reporter_ops(0, 1, 1);
        assert!(matches!(ops.as_slice(), [QuotaOp::Count { count: 1, .. }]));
        assert!(pool.is_quiet());
        active.prune(|_| true);
        assert_eq!(listed(&active), 0);

        // The next request puts it back.
        pool.count();
        active.enlist(&pool);
        other.count();
        active.enlist(&other);
        assert_eq!(listed(&active), 2);
        // A pool the registry no longer holds leaves, busy or not.
        active.prune(|candidate| !Arc::ptr_eq(candidate, &other));
        let left = active.snapshot();
        assert_eq!(left.len(), 1);
        assert!(Arc::ptr_eq(&left[0], &pool));
    }

    #[test]
    fn a_pool_found_busy_after_being_unlisted_stays_listed_once() {
        let active = ActivePools::default();
        let pool = Arc::new(QuotaPool::new("plan".into(), "key".into(), false));
        pool.count();
        active.enlist(&pool);
        // The request path's race with a prune, made explicit: the flag was cleared by a
        // prune that then saw the pool busy, while the request path added it again.
        pool.listed.store(false, Ordering::SeqCst);
        active.enlist(&pool);
        assert_eq!(active.lock().len(), 2);
        active.prune(|_| true);
        assert_eq!(active.lock().len(), 1, "the duplicate is gone");
        assert!(pool.listed.load(Ordering::SeqCst));
    }
}
