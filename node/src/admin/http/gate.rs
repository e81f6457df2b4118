//! What the management API spends on a request before its signature is verified.
//!
//! SigV4 covers the body, so a request whose client did not send `x-amz-content-sha256` can
//! only be verified once its body is in. Until then anyone who knows an access key id (not
//! its secret) looks like an admin: such requests must not take the request slots admins'
//! verified calls need, nor hold memory the node cannot spare. So an unverified body is read
//! only within budgets, per source address and per access key id (requests at once and bytes
//! held), within one global byte budget and a short deadline; a source whose signatures keep
//! failing is refused before it gets any budget at all. Requests the gate never holds: those
//! verified from their head (an empty body, or a declared payload hash), which are checked at
//! once and cost one HMAC whether forged or not.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Unverified requests held at once for one source address.
pub const MAX_UNVERIFIED_PER_SOURCE: usize = 8;
/// Unverified requests held at once naming one access key id (from any source).
pub const MAX_UNVERIFIED_PER_KEY: usize = 32;
/// Bytes of unverified bodies held at once, all sources together.
pub const MAX_UNVERIFIED_BYTES: usize = 32 * 1024 * 1024;
/// Bytes of unverified bodies held at once for one source (two 6 MB imports).
pub const MAX_UNVERIFIED_BYTES_PER_SOURCE: usize = 12 * 1024 * 1024;
/// Bytes of unverified bodies held at once naming one access key id, so that one key id,
/// known to an attacker, cannot take the whole node's budget from the other keys.
pub const MAX_UNVERIFIED_BYTES_PER_KEY: usize = 24 * 1024 * 1024;
/// An unverified body must be complete within this.
pub const UNVERIFIED_BODY_DEADLINE: Duration = Duration::from_secs(10);
/// Each failed signature puts a source this far into debt; the debt drains in real time.
const FAILURE_COST: Duration = Duration::from_secs(1);
/// A source more than this in debt (20 failures at once, or a failure a second sustained) gets
/// no budget for unverified bodies until it drains.
const FAILURE_TOLERANCE: Duration = Duration::from_secs(20);
/// Sources remembered for their failures; past it, the ones whose debt has drained are
/// forgotten (and, should all still be in debt, the oldest half).
const MAX_TRACKED_SOURCES: usize = 10_000;

/// Why an unverified request was not admitted or its body not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its source's recent signatures failed.
    Failing,
    /// Its source or its key id holds as many unverified requests as allowed.
    Busy,
    /// Holding the body would exceed the source's or the node's byte budget.
    Bytes,
}

#[derive(Debug, Default)]
struct Usage {
    requests: usize,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Held {
    by_source: HashMap<IpAddr, Usage>,
    by_key: HashMap<String, Usage>,
}

/// The node's budgets for unverified requests (one per management listener).
#[derive(Debug)]
pub struct Gate {
    held: Mutex<Held>,
    bytes: Arc<Semaphore>,
    /// Per source: the instant its failure debt is paid off.
    failures: Mutex<HashMap<IpAddr, Instant>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            held: Mutex::default(),
            bytes: Arc::new(Semaphore::new(MAX_UNVERIFIED_BYTES)),
            failures: Mutex::default(),
        }
    }
}

impl Gate {
    /// Whether `source` is refused unverified bodies for its failed signatures.
    pub fn failing(&self, source: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.get(&source).is_some_and(|paid_off| {
            paid_off.saturating_duration_since(Instant::now()) > FAILURE_TOLERANCE
        })
    }

    /// Counts a failed signature against `source`.
    pub fn record_failure(&self, source: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED_SOURCES && !failures.contains_key(&source) {
            failures.retain(|_, paid_off| *paid_off > now);
            if failures.len() >= MAX_TRACKED_SOURCES {
                let mut by_age: Vec<Instant> = failures.values().copied().collect();
                by_age.sort_unstable();
                let median = by_age[by_age.len() / 2];
                failures.retain(|_, paid_off| *paid_off > median);
            }
        }
        let paid_off = failures.entry(source).or_insert(now);
        // Debt never exceeds twice the tolerance, so a source that stops failing is let back
        // in after at most that long.
        *paid_off = (*paid_off).max(now) + FAILURE_COST;
        if paid_off.saturating_duration_since(now) > 2 * FAILURE_TOLERANCE {
            *paid_off = now + 2 * FAILURE_TOLERANCE;
        }
    }

    /// Admits one unverified request from `source` naming `key_id`, or says why not. The
    /// returned guard gives everything back when dropped.
    pub fn admit(self: &Arc<Self>, source: IpAddr, key_id: &str) -> Result<Pending, Refused> {
        if self.failing(source) {
            return Err(Refused::Failing);
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let by_source = held
            .by_source
            .get(&source)
            .map_or(0, |usage| usage.requests);
        let by_key = held.by_key.get(key_id).map_or(0, |usage| usage.requests);
        if by_source >= MAX_UNVERIFIED_PER_SOURCE || by_key >= MAX_UNVERIFIED_PER_KEY {
            return Err(Refused::Busy);
        }
        held.by_source.entry(source).or_default().requests += 1;
        held.by_key.entry(key_id.to_string()).or_default().requests += 1;
        Ok(Pending {
            gate: self.clone(),
            source,
            key_id: key_id.to_string(),
            bytes: 0,
            permit: None,
        })
    }

    /// Bytes of unverified bodies held now (for tests and metrics).
    pub fn bytes_held(&self) -> usize {
        MAX_UNVERIFIED_BYTES - self.bytes.available_permits()
    }
}

/// One admitted unverified request and the bytes of its body taken so far.
#[derive(Debug)]
pub struct Pending {
    gate: Arc<Gate>,
    source: IpAddr,
    key_id: String,
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Pending {
    /// Takes `len` more bytes from the source's and the node's budgets.
    pub fn take(&mut self, len: usize) -> Result<(), Refused> {
        if len == 0 {
            return Ok(());
        }
        let permits = u32::try_from(len).map_err(|_| Refused::Bytes)?;
        let mut held = self.gate.held.lock().unwrap_or_else(|e| e.into_inner());
        let by_source = held
            .by_source
            .get(&self.source)
            .map_or(0, |usage| usage.bytes);
        let by_key = held.by_key.get(&self.key_id).map_or(0, |usage| usage.bytes);
        if by_source + len > MAX_UNVERIFIED_BYTES_PER_SOURCE
            || by_key + len > MAX_UNVERIFIED_BYTES_PER_KEY
        {
            return Err(Refused::Bytes);
        }
        let permit = self
            .gate
            .bytes
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| Refused::Bytes)?;
        held.by_source.entry(self.source).or_default().bytes += len;
        held.by_key.entry(self.key_id.clone()).or_default().bytes += len;
        self.bytes += len;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut held = self.gate.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(usage) = held.by_source.get_mut(&self.source) {
            usage.requests = usage.requests.saturating_sub(1);
            usage.bytes = usage.bytes.saturating_sub(self.bytes);
            if usage.requests == 0 {
                held.by_source.remove(&self.source);
            }
        }
        if let Some(usage) = held.by_key.get_mut(&self.key_id) {
            usage.requests = usage.requests.saturating_sub(1);
            usage.bytes = usage.bytes.saturating_sub(self.bytes);
            if usage.requests == 0 {
                held.by_key.remove(&self.key_id);
            }
        }
        // The byte permit goes back to the semaphore when `self.permit` drops.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_source_holds_at_most_its_share_of_requests() {
        let gate = Arc::new(Gate::default());
        let held: Vec<Pending> = (0..MAX_UNVERIFIED_PER_SOURCE)
            .map(|_| gate.admit(ip(1), "AKID").expect("within the budget"))
            .collect();
        assert_eq!(gate.admit(ip(1), "AKID").unwrap_err(), Refused::Busy);
        // Another source naming the same key still gets in.
        let other = gate.admit(ip(2), "AKID").expect("another source");
        drop(held);
        assert!(gate.admit(ip(1), "AKID").is_ok());
        drop(other);
        assert!(gate.held.lock().unwrap().by_key.is_empty());
    }

    #[test]
    fn a_key_id_holds_at_most_its_share_from_all_sources() {
        let gate = Arc::new(Gate::default());
        let held: Vec<Pending> = (0..MAX_UNVERIFIED_PER_KEY)
            .map(|i| gate.admit(ip(i as u8), "AKID").expect("within the budget"))
            .collect();
        assert_eq!(gate.admit(ip(200), "AKID").unwrap_err(), Refused::Busy);
        assert!(gate.admit(ip(200), "OTHER").is_ok());
        drop(held);
    }

    #[test]
    fn bytes_are_bounded_per_source_and_for_the_node() {
        let gate = Arc::new(Gate::default());
        let mut first = gate.admit(ip(1), "AKID").unwrap();
        first.take(MAX_UNVERIFIED_BYTES_PER_SOURCE).unwrap();
        let mut second = gate.admit(ip(1), "AKID").unwrap();
        assert_eq!(second.take(1).unwrap_err(), Refused::Bytes);
        // Other sources (naming other keys) fill the node's budget, then nobody gets more.
        let mut others = Vec::new();
        let mut source = 2;
        while gate.bytes_held() + MAX_UNVERIFIED_BYTES_PER_SOURCE <= MAX_UNVERIFIED_BYTES {
            let mut pending = gate.admit(ip(source), &format!("KEY{source}")).unwrap();
            pending.take(MAX_UNVERIFIED_BYTES_PER_SOURCE).unwrap();
            others.push(pending);
            source += 1;
        }
        let mut last = gate.admit(ip(250), "LAST").unwrap();
        let room = MAX_UNVERIFIED_BYTES - gate.bytes_held();
        assert_eq!(last.take(room + 1).unwrap_err(), Refused::Bytes);
        drop((first, others));
        assert_eq!(gate.bytes_held(), 0);
        assert!(second.take(1024).is_ok());
        assert_eq!(gate.bytes_held(), 1024);
    }

    #[test]
    fn one_key_id_cannot_take_the_whole_byte_budget() {
        let gate = Arc::new(Gate::default());
        let mut held = Vec::new();
        for source in 1..=2 {
            let mut pending = gate.admit(ip(source), "AKID").unwrap();
            pending.take(MAX_UNVERIFIED_BYTES_PER_SOURCE).unwrap();
            held.push(pending);
        }
        let mut third = gate.admit(ip(3), "AKID").unwrap();
        assert_eq!(third.take(1).unwrap_err(), Refused::Bytes);
        let mut other_key = gate.admit(ip(3), "OTHER").unwrap();
        assert!(other_key.take(1024).is_ok());
        drop(held);
        assert!(third.take(1).is_ok());
    }

    #[test]
    fn failing_sources_are_refused_until_their_debt_drains() {
        let gate = Arc::new(Gate::default());
        for _ in 0..=FAILURE_TOLERANCE.as_secs() {
            assert!(!gate.failing(ip(1)));
            gate.record_failure(ip(1));
        }
        assert!(gate.failing(ip(1)));
        assert_eq!(gate.admit(ip(1), "AKID").unwrap_err(), Refused::Failing);
        assert!(!gate.failing(ip(2)));
        // The debt is capped, so a source that stops failing gets back in.
        for _ in 0..1000 {
            gate.record_failure(ip(1));
        }
        let paid_off = gate.failures.lock().unwrap()[&ip(1)];
        assert!(paid_off <= Instant::now() + 2 * FAILURE_TOLERANCE);
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let gate = Gate::default();
        for i in 0..(MAX_TRACKED_SOURCES as u32 + 10) {
            gate.record_failure(IpAddr::from(i.to_be_bytes()));
        }
        assert!(gate.failures.lock().unwrap().len() <= MAX_TRACKED_SOURCES);
    }
}
