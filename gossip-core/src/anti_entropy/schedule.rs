//! When anti-entropy runs and how eagerly: the round deadline with its idle backoff, the
//! shortcuts taken while a probe has shown a peer in sync, the rotating digest window while a
//! peer is out of sync, and the last contact with the dead.

use std::time::{Duration, Instant};

use crate::config::Config;

/// The anti-entropy component's own timing state. Only `anti_entropy` and the probe handler
/// (through [`peer_in_sync`](Self::peer_in_sync)) change it.
#[derive(Debug)]
pub(crate) struct GossipSchedule {
    /// When the next round is due.
    next_round: Instant,
    /// Rounds since anything changed (drives the idle backoff).
    idle_rounds: u32,
    /// When a prober's differing summary last made us open an exchange.
    last_triggered_sync: Option<Instant>,
    /// When a probe last showed a peer holding exactly what we hold (cleared on change).
    confirmed_in_sync: Option<Instant>,
    /// Until then, `Syn`s carry a rotating window of the digest as well as recent changes.
    out_of_sync_until: Option<Instant>,
    /// When a dead or departed member was last contacted.
    last_dead_contact: Option<Instant>,
}

impl GossipSchedule {
    /// A schedule whose first round is at `first_round`.
    pub(crate) fn new(first_round: Instant) -> Self {
        Self {
            next_round: first_round,
            idle_rounds: 0,
            last_triggered_sync: None,
            confirmed_in_sync: None,
            out_of_sync_until: None,
            last_dead_contact: None,
        }
    }

    /// When the next round is due.
    pub(crate) fn next_round(&self) -> Instant {
        self.next_round
    }

    /// Schedules the round after the one due at `fired`, run at `now`: the base interval
    /// while things change, then doubling each idle round after `recent_rounds` up to
    /// `max_idle_gossip_interval` (pings carry the digest summary meanwhile, so a difference
    /// is still noticed within a probe period). A node not called for a while (a paused
    /// process) does not catch up in a burst.
    pub(crate) fn after_round(&mut self, fired: Instant, now: Instant, config: &Config) {
        self.idle_rounds = self.idle_rounds.saturating_add(1);
        let base = config.gossip_interval;
        let doublings = self.idle_rounds.saturating_sub(config.recent_rounds).min(20);
        let interval = base.saturating_mul(1 << doublings).min(config.max_idle_gossip_interval.max(base));
        self.next_round = fired + interval;
        if self.next_round <= now {
            self.next_round = now + base;
        }
    }

    /// Something changed or a peer is out of sync: the next round comes within `base`, and
    /// the backoff starts over.
    pub(crate) fn note_activity(&mut self, now: Instant, base: Duration) {
        self.confirmed_in_sync = None;
        self.idle_rounds = 0;
        self.next_round = self.next_round.min(now + base);
    }

    /// A probe showed a peer holding exactly what we hold: no need to keep offering rotating
    /// digest windows, and rounds may be skipped for a while.
    pub(crate) fn peer_in_sync(&mut self, now: Instant) {
        self.confirmed_in_sync = Some(now);
        self.out_of_sync_until = None;
    }

    /// Whether a peer was shown in sync within `window` before `now` (and nothing changed
    /// since).
    pub(crate) fn confirmed_in_sync(&self, now: Instant, window: Duration) -> bool {
        self.confirmed_in_sync.is_some_and(|at| now < at + window)
    }

    /// Whether a prober's differing summary already opened an exchange within `interval`.
    pub(crate) fn triggered_recently(&self, now: Instant, interval: Duration) -> bool {
        self.last_triggered_sync.is_some_and(|at| now < at + interval)
    }

    /// A prober's differing summary opened an exchange at `now`.
    pub(crate) fn note_triggered_sync(&mut self, now: Instant) {
        self.last_triggered_sync = Some(now);
    }

    /// Whether `Syn`s still carry the rotating digest window.
    pub(crate) fn out_of_sync(&self, now: Instant) -> bool {
        self.out_of_sync_until.is_some_and(|until| now < until)
    }

    /// A peer was out of sync: `Syn`s carry the rotating digest window until `until`.
    pub(crate) fn mark_out_of_sync(&mut self, until: Instant) {
        self.out_of_sync_until = Some(until);
    }

    /// When a dead or departed member was last contacted.
    pub(crate) fn last_dead_contact(&self) -> Option<Instant> {
        self.last_dead_contact
    }

    /// A dead or departed member was contacted at `now`.
    pub(crate) fn note_dead_contact(&mut self, now: Instant) {
        self.last_dead_contact = Some(now);
    }
}
