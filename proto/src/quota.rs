//! The quota ledger: exact quotas across edges and regions.
//!
//! An edge may admit a request against a usage plan's quota only by spending a unit *leased* to
//! it. Leases are granted, topped up, reported, returned and expired by replicated commands
//! ([`QuotaOp`], applied here by the same pure function on every origin and edge), so for every
//! account (plan, key, period) the ledger keeps, at every log index,
//!
//! ```text
//! used + forfeited + outstanding ≤ limit      (outstanding = Σ open leases' granted − reported)
//! ```
//!
//! whatever fails: an edge spends only what the ledger granted it, and a grant never exceeds
//! what the account has left. A lease belongs to one incarnation of one edge (a restarted edge
//! cannot know what its previous life spent, so it never reuses that lease). Reports carry the
//! cumulative count spent on the lease, so a repeated report changes nothing. A lease an edge
//! returns gives its unspent units back at once; a lease that expires (its edge died or was cut
//! off and could not report) is *forfeited*: its unreported units are counted as spent, because
//! its edge may have admitted them before it stopped. That forfeit is the only way the ledger can
//! under-admit, and it is bounded by the leases that expired. Once expired, a lease id is fenced:
//! later reports for it are ignored.
//!
//! Daily counts (what GetUsage reports) are kept per plan and key for every plan, with or without
//! a quota; forfeited units count on the day they were forfeited.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{QuotaPeriod, QuotaSettings, UsagePlan};

/// How long daily counts are kept, in days (AWS keeps usage for 90 days).
pub const USAGE_RETENTION_DAYS: i64 = 90;

const DAY_MS: i64 = 86_400_000;

/// Identifies an account: a usage plan, an API key and the start of a quota period.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId {
    pub plan_id: String,
    pub key_id: String,
    /// Epoch milliseconds of the period's first instant.
    pub period_start_ms: i64,
}

/// What one period of one plan and key has spent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Units reported as admitted.
    pub used: u64,
    /// Units of expired leases that their edges never reported (counted as spent).
    pub forfeited: u64,
    /// Units granted to open leases and not yet reported.
    pub outstanding: u64,
}

impl Account {
    pub fn spent(&self) -> u64 {
        self.used + self.forfeited
    }
}

/// Units of an account leased to one incarnation of one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub account: AccountId,
    pub edge_id: u64,
    pub incarnation: u64,
    /// Units granted so far (grants top the lease up).
    pub granted: u64,
    /// Units the edge has reported spending (cumulative).
    pub reported: u64,
    /// Epoch milliseconds after which the lease is void.
    pub expires_at_ms: i64,
    /// Epoch milliseconds after which the period is over: the edge stops spending then too.
    pub period_end_ms: i64,
}

/// The replicated quota state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLedger {
    pub accounts: BTreeMap<AccountId, Account>,
    pub leases: BTreeMap<u64, Lease>,
    /// The id the next new lease gets.
    pub next_lease_id: u64,
    /// Spent units per `(plan id, key id)` per day (days since the Unix epoch, UTC).
    pub daily: BTreeMap<(String, String), BTreeMap<i64, u64>>,
}

/// One change to the ledger. Batched in `Command::Quota` with the proposer's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuotaOp {
    /// Grants up to `want` more units of the current period to the edge incarnation: a top-up
    /// of `lease_id` (extended to `now + ttl_ms`) when given, else a new lease. Grants nothing
    /// when the account has nothing left, the plan has no quota, or `lease_id` is no longer an
    /// open lease of this edge incarnation on the current period (a top-up never revives a
    /// lease the edge gave up on).
    Grant {
        edge_id: u64,
        incarnation: u64,
        plan_id: String,
        key_id: String,
        lease_id: Option<u64>,
        want: u64,
        ttl_ms: u64,
    },
    /// The lease's edge has spent `spent` units of it so far (cumulative, at most `granted`);
    /// `release` closes the lease and returns what was not spent; otherwise the lease is
    /// extended to `now + ttl_ms` (0: unchanged).
    /// Ignored unless the lease is held by this edge incarnation.
    Report {
        edge_id: u64,
        incarnation: u64,
        lease_id: u64,
        spent: u64,
        release: bool,
        ttl_ms: u64,
    },
    /// Requests admitted on a plan without a quota, for the daily counts.
    Count {
        plan_id: String,
        key_id: String,
        count: u64,
    },
    /// Closes every lease that expired by `now` (forfeiting its unreported units), and drops
    /// accounts of finished periods that no lease refers to, and daily counts past retention.
    Expire,
}

/// The bounds `[start, end)` in epoch milliseconds of the quota period containing `now_ms`.
///
/// Periods follow UTC. `offset` is AWS's: for WEEK the day the week starts (0 = Sunday,
/// 1 = Monday, ...), for MONTH the day of the month it starts (0 = the 1st), for DAY it must be 0
/// (ignored here).
pub fn period_bounds(quota: &QuotaSettings, now_ms: i64) -> (i64, i64) {
    let day = now_ms.div_euclid(DAY_MS);
    match quota.period {
        QuotaPeriod::Day => (day * DAY_MS, (day + 1) * DAY_MS),
        QuotaPeriod::Week => {
            // 1970-01-01 was a Thursday (weekday 4 with Sunday = 0).
            let weekday = (day + 4).rem_euclid(7);
            let first = i64::from(quota.offset.clamp(0, 6));
            let start = day - (weekday - first).rem_euclid(7);
            (start * DAY_MS, (start + 7) * DAY_MS)
        }
        QuotaPeriod::Month => {
            let offset = i64::from(quota.offset.clamp(0, 27));
            let (year, month, dom) = civil_from_days(day);
            let (year, month) = if dom > offset {
                (year, month)
            } else if month == 1 {
                (year - 1, 12)
            } else {
                (year, month - 1)
            };
            let start = days_from_civil(year, month, 1) + offset;
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            let end = days_from_civil(next_year, next_month, 1) + offset;
            (start * DAY_MS, end * DAY_MS)
        }
    }
}

/// Days since the Unix epoch → (year, month 1..=12, day 1..=31), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month 1..=12, day 1..=31) → days since the Unix epoch.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD` into days since the epoch.
pub fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // Refuse dates that do not exist (2026-02-30).
    (civil_from_days(days) == (year, month, day)).then_some(days)
}

/// Formats days since the epoch as `YYYY-MM-DD`.
pub fn format_day(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

impl QuotaLedger {
    /// What is left of the account of (plan, key) in the period containing `now_ms`:
    /// `limit − spent − outstanding`, or `None` when the plan has no quota.
    pub fn available(&self, plan: &UsagePlan, key_id: &str, now_ms: i64) -> Option<u64> {
        let quota = plan.quota?;
        let (start, _) = period_bounds(&quota, now_ms);
        let account = self.accounts.get(&AccountId {
            plan_id: plan.id.clone(),
            key_id: key_id.to_string(),
            period_start_ms: start,
        });
        let limit = u64::try_from(quota.limit).unwrap_or(0);
        Some(match account {
            Some(account) => limit.saturating_sub(account.spent() + account.outstanding),
            None => limit,
        })
    }

    /// Spent units of (plan, key) per day in `[first_day, last_day]`.
    pub fn daily_usage(
        &self,
        plan_id: &str,
        key_id: &str,
        first_day: i64,
        last_day: i64,
    ) -> Vec<(i64, u64)> {
        let counts = self.daily.get(&(plan_id.to_string(), key_id.to_string()));
        (first_day..=last_day)
            .map(|day| {
                let count = counts
                    .and_then(|counts| counts.get(&day))
                    .copied()
                    .unwrap_or(0);
                (day, count)
            })
            .collect()
    }

    fn count(&mut self, plan_id: &str, key_id: &str, now_ms: i64, units: u64) {
        if units == 0 {
            return;
        }
        *self
            .daily
            .entry((plan_id.to_string(), key_id.to_string()))
            .or_default()
            .entry(now_ms.div_euclid(DAY_MS))
            .or_default() += units;
    }

    /// Applies `ops` in order with the proposer's clock `now_ms`. Ops that name a plan, key or
    /// lease that does not exist (any more) change nothing: they are stale, not errors.
    pub fn apply(&mut self, plans: &BTreeMap<String, UsagePlan>, now_ms: i64, ops: &[QuotaOp]) {
        for op in ops {
            match op {
                QuotaOp::Grant {
                    edge_id,
                    incarnation,
                    plan_id,
                    key_id,
                    lease_id,
                    want,
                    ttl_ms,
                } => self.grant(
                    plans,
                    now_ms,
                    (*edge_id, *incarnation),
                    (plan_id, key_id),
                    *lease_id,
                    *want,
                    *ttl_ms,
                ),
                QuotaOp::Report {
                    edge_id,
                    incarnation,
                    lease_id,
                    spent,
                    release,
                    ttl_ms,
                } => self.report(
                    now_ms,
                    (*edge_id, *incarnation),
                    *lease_id,
                    (*spent, *release),
                    *ttl_ms,
                ),
                QuotaOp::Count {
                    plan_id,
                    key_id,
                    count,
                } => {
                    let known = plans
                        .get(plan_id)
                        .is_some_and(|plan| plan.key_ids.contains(key_id));
                    if known {
                        self.count(plan_id, key_id, now_ms, *count);
                    }
                }
                QuotaOp::Expire => {
                    self.retain_attached(plans, now_ms);
                    self.expire(now_ms);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn grant(
        &mut self,
        plans: &BTreeMap<String, UsagePlan>,
        now_ms: i64,
        (edge_id, incarnation): (u64, u64),
        (plan_id, key_id): (&str, &str),
        lease_id: Option<u64>,
        want: u64,
        ttl_ms: u64,
    ) {
        let Some(plan) = plans.get(plan_id) else {
            return;
        };
        let Some(quota) = plan.quota else { return };
        if !plan.key_ids.contains(key_id) {
            return;
        }
        let (start, end) = period_bounds(&quota, now_ms);
        let account_id = AccountId {
            plan_id: plan_id.to_string(),
            key_id: key_id.to_string(),
            period_start_ms: start,
        };
        let limit = u64::try_from(quota.limit).unwrap_or(0);
        let expires_at_ms = now_ms.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        let existing = match lease_id {
            Some(id) => match self.leases.get_mut(&id) {
                Some(lease)
                    if lease.account == account_id
                        && lease.edge_id == edge_id
                        && lease.incarnation == incarnation =>
                {
                    Some(lease)
                }
                _ => return,
            },
            None => None,
        };
        let account = self.accounts.entry(account_id.clone()).or_default();
        let left = limit.saturating_sub(account.spent() + account.outstanding);
        let units = want.min(left);
        match existing {
            Some(lease) => {
                lease.granted += units;
                lease.expires_at_ms = lease.expires_at_ms.max(expires_at_ms);
            }
            None if units > 0 => {
                let id = self.next_lease_id;
                self.next_lease_id += 1;
                self.leases.insert(
                    id,
                    Lease {
                        account: account_id,
                        edge_id,
                        incarnation,
                        granted: units,
                        reported: 0,
                        expires_at_ms,
                        period_end_ms: end,
                    },
                );
            }
            None => {}
        }
        account.outstanding += units;
    }

    fn report(
        &mut self,
        now_ms: i64,
        (edge_id, incarnation): (u64, u64),
        lease_id: u64,
        (spent, release): (u64, bool),
        ttl_ms: u64,
    ) {
        let Some(lease) = self.leases.get_mut(&lease_id) else {
            return; // Expired or released already: fenced.
        };
        if lease.edge_id != edge_id || lease.incarnation != incarnation {
            return; // Not the reporter's lease.
        }
        // Units are counted on a day of the lease's period, even when reported after it.
        let day_ms = now_ms.min(lease.period_end_ms - 1);
        let spent = spent.min(lease.granted);
        let delta = spent.saturating_sub(lease.reported);
        lease.reported += delta;
        if ttl_ms > 0 {
            let until = now_ms.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
            lease.expires_at_ms = lease.expires_at_ms.max(until);
        }
        let account_id = lease.account.clone();
        let unspent = lease.granted - lease.reported;
        if release {
            self.leases.remove(&lease_id);
        }
        if let Some(account) = self.accounts.get_mut(&account_id) {
            account.used += delta;
            account.outstanding -= delta;
            if release {
                account.outstanding -= unspent;
            }
        }
        self.count(&account_id.plan_id, &account_id.key_id, day_ms, delta);
    }

    fn expire(&mut self, now_ms: i64) {
        let expired: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.expires_at_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(lease) = self.leases.remove(&id) else {
                continue;
            };
            self.forfeit(&lease, now_ms);
        }
        // Accounts of periods that are over, with no lease left, are history (the daily
        // counts keep what GetUsage needs).
        let leased: std::collections::BTreeSet<&AccountId> =
            self.leases.values().map(|lease| &lease.account).collect();
        let stale: Vec<AccountId> = self
            .accounts
            .keys()
            .filter(|id| !leased.contains(id) && id.period_start_ms + 32 * DAY_MS <= now_ms)
            .cloned()
            .collect();
        for id in stale {
            self.accounts.remove(&id);
        }
        let oldest = now_ms.div_euclid(DAY_MS) - USAGE_RETENTION_DAYS;
        for counts in self.daily.values_mut() {
            counts.retain(|day, _| *day >= oldest);
        }
        self.daily.retain(|_, counts| !counts.is_empty());
    }

    /// Counts a closed lease's unreported units as spent: its edge may have admitted them.
    fn forfeit(&mut self, lease: &Lease, now_ms: i64) {
        let unreported = lease.granted - lease.reported;
        if let Some(account) = self.accounts.get_mut(&lease.account) {
            account.outstanding -= unreported;
            account.forfeited += unreported;
        }
        let day_ms = now_ms.min(lease.period_end_ms - 1);
        self.count(
            &lease.account.plan_id,
            &lease.account.key_id,
            day_ms,
            unreported,
        );
    }

    /// Closes (forfeiting) the leases of keys no longer attached to their plan. Their
    /// accounts stay until their period is over, so detaching and re-attaching a key does not
    /// give it a fresh quota.
    pub fn retain_attached(&mut self, plans: &BTreeMap<String, UsagePlan>, now_ms: i64) {
        let detached: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, lease)| {
                !plans
                    .get(&lease.account.plan_id)
                    .is_some_and(|plan| plan.key_ids.contains(&lease.account.key_id))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in detached {
            if let Some(lease) = self.leases.remove(&id) {
                self.forfeit(&lease, now_ms);
            }
        }
    }

    /// Whether an `Expire` at `now_ms` would change anything: a lease to expire, a lease of a
    /// detached key, an account of a finished period, or daily counts past retention.
    pub fn needs_expiry(&self, plans: &BTreeMap<String, UsagePlan>, now_ms: i64) -> bool {
        let oldest = now_ms.div_euclid(DAY_MS) - USAGE_RETENTION_DAYS;
        self.leases.values().any(|lease| {
            lease.expires_at_ms <= now_ms
                || !plans
                    .get(&lease.account.plan_id)
                    .is_some_and(|plan| plan.key_ids.contains(&lease.account.key_id))
        }) || self
            .accounts
            .keys()
            .any(|id| id.period_start_ms + 32 * DAY_MS <= now_ms)
            || self
                .daily
                .values()
                .any(|counts| counts.keys().next().is_some_and(|day| *day < oldest))
    }

    /// Whether the ledger's books balance: every account's outstanding units equal its open
    /// leases' unreported units, and no lease reports more than it was granted. (The limit
    /// itself is checked by the callers: a lowered limit can leave an account over it, which
    /// grants nothing more.)
    pub fn check(&self) -> Result<(), String> {
        let mut open: BTreeMap<&AccountId, u64> = BTreeMap::new();
        for lease in self.leases.values() {
            if lease.reported > lease.granted {
                return Err(format!("lease reports more than granted: {lease:?}"));
            }
            *open.entry(&lease.account).or_default() += lease.granted - lease.reported;
        }
        for (id, account) in &self.accounts {
            let expected = open.get(id).copied().unwrap_or(0);
            if account.outstanding != expected {
                return Err(format!(
                    "{id:?}: outstanding {} but open leases hold {expected}",
                    account.outstanding
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
