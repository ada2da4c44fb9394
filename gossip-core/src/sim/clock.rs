//! Virtual time: one run-wide clock, and each node's own view of it.
//!
//! The simulator's clock is a [`Duration`] since the start of the run. A node sees
//! `base + virtual time + its offset`, where the offset changes with [`ClockJump`]s; the
//! node's clock never goes backwards (after a backward jump it stands still until virtual
//! time catches up), as `Instant` promises.

use std::time::{Duration, Instant};

/// A step of one node's clock relative to the run's virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockJump {
    /// The node's clock leaps ahead: its pending timers fire early in virtual time.
    Forward(Duration),
    /// The node's clock is set back: it stands still until virtual time has caught up
    /// (a node's `Instant`s never go backwards), so its timers fire late.
    Backward(Duration),
}

/// The base `Instant` of a run when the caller gives none.
///
/// Only differences from the base matter, so reading the real clock once does not make a
/// run depend on when it started.
pub(crate) fn default_base() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

/// One node's view of virtual time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NodeClock {
    /// Nanoseconds added to virtual time.
    offset: i128,
    /// The latest local time handed to the node, in nanoseconds since the base.
    last: u128,
}

impl NodeClock {
    /// The node's `Instant` at virtual time `now`; never earlier than the last one given.
    pub(crate) fn local(&mut self, base: Instant, now: Duration) -> Instant {
        let shifted = (now.as_nanos() as i128 + self.offset).max(0) as u128;
        self.last = self.last.max(shifted);
        base + nanos(self.last)
    }

    /// The virtual time at which the node's clock reads `deadline`.
    pub(crate) fn virtual_time_of(&self, base: Instant, deadline: Instant) -> Duration {
        let local = deadline.saturating_duration_since(base).as_nanos() as i128;
        nanos((local - self.offset).max(0) as u128)
    }

    /// Applies a jump of the node's clock.
    pub(crate) fn jump(&mut self, jump: ClockJump) {
        match jump {
            ClockJump::Forward(by) => self.offset += by.as_nanos() as i128,
            ClockJump::Backward(by) => self.offset -= by.as_nanos() as i128,
        }
    }
}

fn nanos(value: u128) -> Duration {
    let secs = (value / 1_000_000_000).min(u128::from(u64::MAX)) as u64;
    Duration::new(secs, (value % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_shift_the_local_clock_and_it_never_goes_back() {
        let base = default_base();
        let s = Duration::from_secs;
        let mut clock = NodeClock::default();
        assert_eq!(clock.local(base, s(10)), base + s(10));
        clock.jump(ClockJump::Forward(s(5)));
        assert_eq!(clock.local(base, s(10)), base + s(15));
        assert_eq!(clock.virtual_time_of(base, base + s(20)), s(15), "timers fire early");
        clock.jump(ClockJump::Backward(s(8)));
        assert_eq!(clock.local(base, s(11)), base + s(15), "stands still after a backward jump");
        assert_eq!(clock.local(base, s(14)), base + s(15));
        assert_eq!(clock.local(base, s(20)), base + s(17));
        assert_eq!(clock.virtual_time_of(base, base + s(20)), s(23), "timers fire late");
    }
}
