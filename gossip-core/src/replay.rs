//! Anti-replay: a sliding window of counters per sending session (as IPsec and WireGuard
//! do), so a captured datagram sent again, however much later, is dropped.
//!
//! Every sealed datagram carries its sender's session (random, new for every process and
//! generation) and a counter that grows with every datagram the session sends. A receiver
//! accepts each (session, counter) once: counters more than [`WINDOW`] behind the highest one
//! seen are refused as too old, so memory per session is a fixed 128 bytes. Windows are kept
//! for at most a configured number of sessions; beyond it the one heard from least recently is
//! dropped (a replay into a dropped session's past is then refused one level up, as stale:
//! a session ends with a restart, and the restart's higher generation makes the old
//! generation's datagrams stale everywhere).

use std::collections::BTreeMap;
use std::time::Instant;

/// Counters accepted behind the highest one seen (the bitmap holds 1,024 bits, of which one
/// word is kept as slack while the window slides).
pub(crate) const WINDOW: u64 = 1024 - 64;

const WORDS: usize = 16;

/// The counters seen of one session.
#[derive(Debug, Clone)]
struct Window {
    highest: u64,
    /// Bit `c % 1024` tells whether counter `c` was seen (for `c` within the window).
    bits: [u64; WORDS],
    last_seen: Instant,
}

impl Window {
    fn new(counter: u64, now: Instant) -> Self {
        let mut window = Self { highest: counter, bits: [0; WORDS], last_seen: now };
        window.mark(counter);
        window
    }

    fn mark(&mut self, counter: u64) {
        self.bits[(counter / 64) as usize % WORDS] |= 1 << (counter % 64);
    }

    /// Accepts `counter` once; `false` for a replay or a counter too far behind.
    fn accept(&mut self, counter: u64) -> bool {
        if counter > self.highest {
            let (from, to) = (self.highest / 64, counter / 64);
            for word in (from + 1)..=to.min(from + WORDS as u64) {
                self.bits[word as usize % WORDS] = 0;
            }
            self.highest = counter;
        } else if self.highest - counter >= WINDOW
            || self.bits[(counter / 64) as usize % WORDS] & (1 << (counter % 64)) != 0
        {
            return false;
        }
        self.mark(counter);
        true
    }
}

/// The windows of the sessions heard from, bounded.
#[derive(Debug)]
pub(crate) struct ReplayGuard {
    windows: BTreeMap<u64, Window>,
    max_sessions: usize,
}

impl ReplayGuard {
    pub(crate) fn new(max_sessions: usize) -> Self {
        Self { windows: BTreeMap::new(), max_sessions: max_sessions.max(1) }
    }

    /// Accepts `(session, counter)` once. Call it only for authenticated datagrams: a forged
    /// counter must not move a window.
    pub(crate) fn accept(&mut self, session: u64, counter: u64, now: Instant) -> bool {
        if let Some(window) = self.windows.get_mut(&session) {
            let fresh = window.accept(counter);
            if fresh {
                window.last_seen = window.last_seen.max(now);
            }
            return fresh;
        }
        if self.windows.len() >= self.max_sessions {
            let stalest = self.windows.iter().min_by_key(|(_, w)| w.last_seen).map(|(s, _)| *s);
            if let Some(stalest) = stalest {
                self.windows.remove(&stalest);
            }
        }
        self.windows.insert(session, Window::new(counter, now));
        true
    }

    /// Sessions tracked.
    pub(crate) fn len(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn now() -> Instant {
        // Only differences matter.
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    #[test]
    fn each_counter_is_accepted_once_in_any_order_within_the_window() {
        let t = now();
        let mut guard = ReplayGuard::new(4);
        for counter in [5, 3, 9, 4, 2000, 1990, 1041] {
            assert!(guard.accept(1, counter, t), "{counter} is new");
            assert!(!guard.accept(1, counter, t), "{counter} replayed");
        }
        // 2000 - 1040 = 960 = WINDOW: too old; earlier ones long gone.
        assert!(!guard.accept(1, 1040, t));
        assert!(!guard.accept(1, 5, t));
        // Another session has its own window.
        assert!(guard.accept(2, 5, t));
    }

    #[test]
    fn sessions_are_bounded_and_the_stalest_goes_first() {
        let t = now();
        let mut guard = ReplayGuard::new(2);
        assert!(guard.accept(1, 0, t));
        assert!(guard.accept(2, 0, t + std::time::Duration::from_secs(1)));
        assert!(guard.accept(3, 0, t + std::time::Duration::from_secs(2)));
        assert_eq!(guard.len(), 2);
        assert!(!guard.accept(2, 0, t), "session 2 kept");
        assert!(guard.accept(1, 0, t), "session 1 was dropped, so its window starts anew");
    }

    proptest! {
        /// Against a model that remembers every counter: the window never accepts a counter
        /// twice, and accepts every new counter within `WINDOW` of the highest seen.
        #[test]
        fn the_window_agrees_with_a_set(counters in prop::collection::vec(0..5_000u64, 1..300)) {
            let t = now();
            let mut guard = ReplayGuard::new(1);
            let mut seen = std::collections::BTreeSet::new();
            let mut highest = 0;
            for counter in counters {
                let accepted = guard.accept(7, counter, t);
                let new = !seen.contains(&counter);
                if accepted {
                    prop_assert!(new, "{} accepted twice", counter);
                    seen.insert(counter);
                    highest = highest.max(counter);
                } else {
                    prop_assert!(!new || counter + WINDOW <= highest, "{} refused, highest {}", counter, highest);
                }
            }
        }
    }
}
