//! The node's timer table: every deadline of every component, by kind, in one place.
//! [`Node::poll_timeout`] is its earliest entry; [`Node::handle_timeout`] runs the timers in
//! the fixed order of [`Timer::ORDER`] (each one does nothing before its deadline), so that
//! what one timer changes is seen by the ones after it.

use std::time::Instant;

use rand_core::Rng;

use crate::node::Node;

/// One kind of deadline of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A name-conflict check waiting for an answer (`conflict.rs`).
    NameCheck,
    /// The earliest key whose TTL is up (`ttl.rs`).
    KeyExpiry,
    /// The probe period, the indirect probes, the relays we run for others (`probe.rs`).
    Probe,
    /// The join's retry and time limit, the leave's time limit (`lifecycle.rs`).
    Lifecycle,
    /// The earliest suspicion to expire (`suspicion.rs`).
    Suspicion,
    /// The next contact with a dead or departed member (`lifecycle.rs`).
    DeadGossip,
    /// The next aggregation round (`aggregate/`).
    Aggregation,
    /// The next `Gossip` datagrams, while application broadcasts wait (`messages/`).
    Broadcasts,
    /// The earliest query timeout, asked or received (`queries/`).
    Queries,
    /// The earliest write request retry or end, made or asked (`requests/`).
    Requests,
    /// The news waiting to be forwarded (`rumor/`).
    Forward,
    /// The next anti-entropy round (`anti_entropy/`).
    GossipRound,
}

impl Timer {
    /// The order in which due timers run. Name checks first: a check that ends in a heal
    /// changes the generation everything after speaks for. Keys expire before the round
    /// that spreads their deletion. Probes before suspicions: a failed probe may confirm a
    /// suspicion and pull its deadline in. Suspicions before dead gossip: a suspicion that
    /// expires makes a dead member. The gossip round last, with everything above in it;
    /// forwards just before it, so a round does not push again what was just forwarded.
    pub(crate) const ORDER: [Timer; 12] = [
        Timer::NameCheck,
        Timer::KeyExpiry,
        Timer::Probe,
        Timer::Lifecycle,
        Timer::Suspicion,
        Timer::DeadGossip,
        Timer::Aggregation,
        Timer::Broadcasts,
        Timer::Queries,
        Timer::Requests,
        Timer::Forward,
        Timer::GossipRound,
    ];
}

impl<R: Rng> Node<R> {
    /// When `timer` is next due; `None` when it is not armed.
    pub(crate) fn deadline_of(&self, timer: Timer) -> Option<Instant> {
        match timer {
            Timer::NameCheck => self.name_check.deadline(),
            Timer::KeyExpiry => self.expiries.next_deadline(),
            Timer::Probe => Some(self.prober.next_deadline()),
            Timer::Lifecycle => self.next_lifecycle_deadline(),
            Timer::Suspicion => self.next_suspicion_deadline(),
            Timer::DeadGossip => self.next_dead_gossip(),
            Timer::Aggregation => self.next_aggregation_deadline(),
            Timer::Broadcasts => self.messages.deadline(),
            Timer::Queries => self.queries.deadline(),
            Timer::Requests => self.requests.deadline(),
            Timer::Forward => self.rumors.forward_due(),
            Timer::GossipRound => Some(self.gossip.next_round()),
        }
    }

    /// The earliest deadline of the table.
    pub(crate) fn earliest_deadline(&self) -> Option<Instant> {
        Timer::ORDER.into_iter().filter_map(|timer| self.deadline_of(timer)).min()
    }

    /// Runs every timer, in [`Timer::ORDER`]: whatever of each is due at `now`.
    pub(crate) fn run_timers(&mut self, now: Instant) {
        for timer in Timer::ORDER {
            self.run_timer(timer, now);
        }
    }

    /// Runs `timer`: whatever of it is due, nothing otherwise. Every timer runs at
    /// `self.now` except the gossip round, which compares its deadline with the `now` given
    /// to `handle_timeout` (earlier than `self.now` after a clock that went back).
    fn run_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::NameCheck => self.drive_name_check(),
            Timer::KeyExpiry => self.expire_keys(),
            Timer::Probe => self.drive_probes(),
            Timer::Lifecycle => self.drive_lifecycle(),
            Timer::Suspicion => self.expire_suspicions(),
            Timer::DeadGossip => self.drive_dead_gossip(),
            Timer::Aggregation => self.drive_aggregation(),
            Timer::Broadcasts => self.drive_broadcasts(),
            Timer::Queries => self.drive_queries(),
            Timer::Requests => self.drive_requests(),
            Timer::Forward => self.drive_forwards(),
            Timer::GossipRound => self.drive_gossip_round(now),
        }
    }
}
