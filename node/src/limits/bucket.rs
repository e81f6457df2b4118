//! One edge's copy of a token bucket, lock-free.
//!
//! The bucket is kept as GCRA (the generic cell rate algorithm): a single "theoretical arrival
//! time" (TAT) in nanoseconds, moved forward by one emission interval `T = 1 / rate` per admitted
//! request. A request at `now` is admitted when `max(TAT, now) + T − now ≤ burst × T`, which is
//! exactly a token bucket of `burst` tokens refilled at `rate` per second (the unit test below
//! checks it against the textbook bucket step by step). One atomic word means admission is one
//! compare-and-swap, with no lock on the request path.
//!
//! The edge's rate and burst are the bucket's cluster-wide settings times this edge's share
//! (1 when alone); both can change while requests run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use portico_proto::throttle::BucketKey;

/// Nanoseconds since the process's clock origin.
pub type Nanos = u64;

#[derive(Debug)]
pub struct Bucket {
    pub key: BucketKey,
    /// f64 bits: requests per second across the cluster.
    rate: AtomicU64,
    /// f64 bits: bucket size across the cluster.
    burst: AtomicU64,
    /// f64 bits: this edge's share of rate and burst, 0..=1.
    share: AtomicU64,
    tat: AtomicU64,
    /// Requests that reached this bucket since the demand reporter last looked.
    demand: AtomicU64,
    /// Whether the last look found demand (so the drop to none is reported once).
    active: std::sync::atomic::AtomicBool,
}

impl Bucket {
    pub fn new(key: BucketKey, rate: f64, burst: f64) -> Self {
        Bucket {
            key,
            rate: AtomicU64::new(rate.to_bits()),
            burst: AtomicU64::new(burst.to_bits()),
            share: AtomicU64::new(1f64.to_bits()),
            tat: AtomicU64::new(0),
            demand: AtomicU64::new(0),
            active: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn set_limits(&self, rate: f64, burst: f64) {
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
        self.burst.store(burst.to_bits(), Ordering::Relaxed);
    }

    /// Sets this edge's share at `now`. The requests the bucket owes (how far its TAT runs
    /// ahead of `now`, in emission intervals) carry over to the new interval, so a bucket
    /// that spent its slice at a small share is not held back for the old, longer intervals
    /// once its share grows (nor freed early when it shrinks).
    pub fn set_share(&self, share: f64, now: Nanos) {
        let share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let before = self.params();
        self.share.store(share.to_bits(), Ordering::Relaxed);
        let after = self.params();
        if let (Some((old, _)), Some((new, _))) = (before, after)
            && old != new
        {
            let _ = self
                .tat
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                    (tat > now).then(|| {
                        let owed = (tat - now) as f64 / old as f64;
                        now + (owed * new as f64) as u64
                    })
                });
        }
    }

    pub fn share(&self) -> f64 {
        f64::from_bits(self.share.load(Ordering::Relaxed))
    }

    /// The requests that reached the bucket since the last call.
    pub fn take_demand(&self) -> u64 {
        self.demand.swap(0, Ordering::Relaxed)
    }

    /// Like [`Bucket::take_demand`], but `None` when there is nothing to tell: no demand now
    /// and none at the previous look either (an edge reports a bucket's drop to zero once, so
    /// the origin answers the share it has then, and stays silent about idle buckets).
    pub fn take_reportable_demand(&self) -> Option<u64> {
        let demand = self.take_demand();
        let was_active = self.active.swap(demand > 0, Ordering::Relaxed);
        (demand > 0 || was_active).then_some(demand)
    }

    /// This edge's emission interval and tolerance (`burst × T`), in nanoseconds; `None` when
    /// the bucket admits nothing (a rate or burst of zero).
    fn params(&self) -> Option<(u64, u64)> {
        let share = self.share();
        let rate = f64::from_bits(self.rate.load(Ordering::Relaxed)) * share;
        let burst = f64::from_bits(self.burst.load(Ordering::Relaxed));
        if rate <= 0.0 || burst < 1.0 || !rate.is_finite() {
            return None;
        }
        // An edge's slice of the burst never drops below two requests (one for a bucket of
        // one): a slice of one would refuse every request that arrives a little early, so an
        // edge with a small share would admit less than its share.
        let burst = (burst * share).max(burst.min(2.0));
        // Bounded so that `TAT + interval` never overflows: an interval of at most ~3 years,
        // a tolerance of at most ~146 years.
        let interval = (1e9 / rate).round().clamp(1.0, 1e17) as u64;
        let tolerance = (burst * interval as f64).min((1u64 << 62) as f64) as u64;
        Some((interval, tolerance))
    }

    /// Whether the bucket was idle (nothing reported at the last look, nothing since) before
    /// the request that just reached it: this edge's share is then stale, and worth refreshing
    /// at once rather than at the next tick.
    pub fn just_woke(&self) -> bool {
        !self.active.load(Ordering::Relaxed) && self.demand.load(Ordering::Relaxed) == 1
    }

    /// Takes one token at `now`, or says no (and leaves the bucket unchanged).
    pub fn try_acquire(&self, now: Nanos) -> bool {
        self.demand.fetch_add(1, Ordering::Relaxed);
        let Some((interval, tolerance)) = self.params() else {
            return false;
        };
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let next = tat.max(now).saturating_add(interval);
            if next - now > tolerance {
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => tat = actual,
            }
        }
    }

    /// Gives back a token taken by `try_acquire` when a later level refused the request.
    pub fn refund(&self) {
        let Some((interval, _)) = self.params() else {
            return;
        };
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(tat.saturating_sub(interval))
            });
    }
}

/// The process's monotonic clock in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }
}

impl Clock {
    pub fn now(&self) -> Nanos {
        // A process would need to run for 584 years to overflow.
        self.origin.elapsed().as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The textbook token bucket in exact integer arithmetic: tokens are counted in
    /// nanoseconds of refill (one token = `interval` ns), starting full.
    struct Reference {
        interval: u64,
        capacity: u64,
        tokens: u64,
        last: u64,
    }

    impl Reference {
        fn try_acquire(&mut self, now: u64) -> bool {
            self.tokens = (self.tokens + (now - self.last)).min(self.capacity);
            self.last = now;
            if self.tokens >= self.interval {
                self.tokens -= self.interval;
                true
            } else {
                false
            }
        }
    }

    proptest! {
        /// A bucket alone (share 1) admits exactly what one token bucket of the same rate and
        /// burst admits, request by request.
        #[test]
        fn gcra_is_a_token_bucket(
            rate in 1u32..5_000,
            burst in 1u32..50,
            gaps in prop::collection::vec(0u64..5_000_000, 1..400),
        ) {
            let bucket = Bucket::new(BucketKey::Account, f64::from(rate), f64::from(burst));
            let (interval, _) = bucket.params().unwrap();
            let mut reference = Reference {
                interval,
                capacity: u64::from(burst) * interval,
                tokens: u64::from(burst) * interval,
                last: 1_000_000_000,
            };
            let mut now = 1_000_000_000u64;
            for gap in gaps {
                now += gap;
                prop_assert_eq!(bucket.try_acquire(now), reference.try_acquire(now), "at {}", now);
            }
        }
    }

    #[test]
    fn burst_then_rate() {
        let bucket = Bucket::new(BucketKey::Account, 10.0, 5.0);
        let start = 1_000_000_000;
        let admitted = (0..20).filter(|_| bucket.try_acquire(start)).count();
        assert_eq!(admitted, 5, "a full bucket admits its burst at once");
        // One second later, ten more tokens (capped at the burst of five).
        let admitted = (0..20)
            .filter(|_| bucket.try_acquire(start + 1_000_000_000))
            .count();
        assert_eq!(admitted, 5);
        // Refunds give the token back.
        bucket.refund();
        assert!(bucket.try_acquire(start + 1_000_000_000));
        assert_eq!(bucket.take_demand(), 41);
    }

    #[test]
    fn a_share_slices_rate_and_burst() {
        let bucket = Bucket::new(BucketKey::Account, 100.0, 10.0);
        bucket.set_share(0.2, 0);
        let start = 1_000_000_000;
        let admitted = (0..50).filter(|_| bucket.try_acquire(start)).count();
        assert_eq!(admitted, 2, "20% of a burst of 10");
        // Over 10 s at 20 req/s, about 200 more.
        let mut admitted = 0;
        for step in 1..=10_000u64 {
            if bucket.try_acquire(start + step * 1_000_000) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 200);
        // The share grows: what the bucket owed is counted in the new, shorter intervals.
        let bucket = Bucket::new(BucketKey::Account, 10.0, 10.0);
        bucket.set_share(0.1, 0);
        let admitted = (0..20).filter(|_| bucket.try_acquire(start)).count();
        assert_eq!(admitted, 2, "a slice is never under two requests");
        bucket.set_share(1.0, start);
        let admitted = (0..20).filter(|_| bucket.try_acquire(start)).count();
        assert_eq!(
            admitted, 8,
            "the whole burst but the two requests already taken"
        );
        // A rate of one request in ages admits its burst, then nothing, without overflowing.
        let slow = Bucket::new(BucketKey::Account, 1e-11, 5.0);
        let admitted = (0..20).filter(|_| slow.try_acquire(start)).count();
        assert_eq!(admitted, 5);
        assert!(
            !slow.try_acquire(start + 1_000_000_000_000),
            "not a token 1000 s later"
        );
        let closed = Bucket::new(BucketKey::Account, 0.0, 10.0);
        assert!(!closed.try_acquire(start), "rate 0 admits nothing");
    }
}
