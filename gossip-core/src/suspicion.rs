//! Suspicion timers with Lifeguard's dynamic timeout: a suspicion starts at
//! `suspicion_max_timeout_mult x` the minimum and shrinks toward the minimum
//! (`suspicion_mult x log10(n) x probe_interval`) as independent confirmations arrive, so a
//! member that many others also cannot reach is declared dead sooner, and one accused by a
//! single (perhaps unhealthy) member gets the longest time to refute.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod run;

/// One running suspicion.
#[derive(Debug, Clone)]
pub(crate) struct Suspicion {
    incarnation: u32,
    started: Instant,
    min: Duration,
    max: Duration,
    /// Confirmations that would bring the timeout down to `min`.
    expected: u32,
    /// Distinct members that confirmed (the first accuser included).
    confirmed_by: Vec<String>,
    deadline: Instant,
    /// Started by a third party's Dead claim about a member this node held Alive (see
    /// `Node::defer_death`): further Dead claims only confirm it, and it ends in a death
    /// when it times out or when this node's own probe of the member fails.
    deferred: bool,
}

impl Suspicion {
    /// The incarnation under suspicion, if this suspicion is a deferred death (see
    /// `Node::defer_death`).
    pub(crate) fn deferred_incarnation(&self) -> Option<u32> {
        self.deferred.then_some(self.incarnation)
    }

    /// Makes this suspicion a deferred death.
    pub(crate) fn defer(&mut self) {
        self.deferred = true;
    }
    pub(crate) fn new(
        incarnation: u32,
        from: &str,
        now: Instant,
        min: Duration,
        max: Duration,
        expected: u32,
    ) -> Self {
        let mut suspicion = Self {
            incarnation,
            started: now,
            min,
            max,
            expected,
            confirmed_by: vec![from.to_owned()],
            deadline: now + max,
            deferred: false,
        };
        suspicion.deadline = now + suspicion.timeout();
        suspicion
    }

    /// The timeout after `confirmations` independent confirmations (Lifeguard, eq. in the
    /// paper and memberlist): `max - (max - min) x log(C + 1) / log(K + 1)`, at least `min`.
    fn timeout(&self) -> Duration {
        let confirmations = self.confirmed_by.len().saturating_sub(1) as f64;
        if self.expected == 0 {
            return self.min;
        }
        let fraction = (confirmations + 1.0).ln() / (f64::from(self.expected) + 1.0).ln();
        let shrink = (self.max - self.min).mul_f64(fraction.clamp(0.0, 1.0));
        (self.max - shrink).max(self.min)
    }

    /// Counts a confirmation from `from`; `false` if it was not new.
    pub(crate) fn confirm(&mut self, from: &str) -> bool {
        if from.is_empty()
            || self.confirmed_by.iter().any(|c| c == from)
            || self.confirmed_by.len() > self.expected as usize
        {
            return false;
        }
        self.confirmed_by.push(from.to_owned());
        self.deadline = self.started + self.timeout();
        true
    }
}

/// The minimum suspicion timeout for a cluster of `n`: `mult x max(1, log10(n)) x interval`.
pub(crate) fn min_timeout(mult: u32, n: usize, interval: Duration) -> Duration {
    let scale = (n.max(1) as f64).log10().max(1.0);
    interval.mul_f64(f64::from(mult) * scale)
}

/// Every running suspicion, by member name.
pub(crate) type Suspicions = BTreeMap<String, Suspicion>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_starts_at_max_and_shrinks_to_min_with_confirmations() {
        // Only differences from this base matter.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let (min, max) = (Duration::from_secs(4), Duration::from_secs(24));
        let mut suspicion = Suspicion::new(1, "a", now, min, max, 2);
        assert_eq!(suspicion.deadline, now + max);
        assert!(suspicion.confirm("b"));
        assert!(!suspicion.confirm("b"), "the same member confirms once");
        let after_one = suspicion.deadline - now;
        assert!(after_one < max && after_one > min, "{after_one:?}");
        assert!(suspicion.confirm("c"));
        assert_eq!(suspicion.deadline, now + min);
        assert!(!suspicion.confirm("d"), "no need beyond the expected count");
    }

    #[test]
    fn without_expected_confirmations_the_timeout_is_the_minimum() {
        // Only differences from this base matter.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let suspicion = Suspicion::new(1, "a", now, Duration::from_secs(3), Duration::from_secs(18), 0);
        assert_eq!(suspicion.deadline, now + Duration::from_secs(3));
    }

    #[test]
    fn minimum_scales_with_log10_of_the_cluster() {
        let second = Duration::from_secs(1);
        assert_eq!(min_timeout(4, 5, second), Duration::from_secs(4));
        assert_eq!(min_timeout(4, 100, second), Duration::from_secs(8));
        assert_eq!(min_timeout(4, 1000, second), Duration::from_secs(12));
    }
}
