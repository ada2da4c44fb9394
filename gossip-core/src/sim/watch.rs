//! Opt-in observation for membership studies: a log of the membership changes every node
//! reports (from its events), a log of the datagrams sent to chosen nodes, and the model of
//! a slow (CPU-starved) node.

use std::time::Duration;

use crate::event::Event;
use crate::sim::kind::BodyKind;

/// How late a slow node handles what happens to it (see
/// [`Simulation::set_processing_delay`](crate::sim::Simulation::set_processing_delay)).
///
/// - `datagrams`: every datagram that reaches the node waits this long, in arrival order,
///   before the node handles it (a receive path that cannot keep up: the datagrams sit in
///   the socket buffer);
/// - `timers`: the node's timer fires this long after its deadline (the process gets the
///   CPU late).
///
/// Equal delays shift everything the node does by the same amount: it then only looks slow
/// to others (its acks come late), while its own probes still see their acks before their
/// timeouts. A node accuses healthy members falsely only when its datagrams wait longer than
/// its timers, by more than the time between its probe's ack and the end of the probe
/// period (about `probe_interval`): the acks it is sent are read after it gave up on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ProcessingDelay {
    /// How long each inbound datagram waits before the node handles it.
    pub datagrams: Duration,
    /// How long after its deadline the node's timer fires.
    pub timers: Duration,
}

impl ProcessingDelay {
    /// No delay: a healthy node.
    pub const NONE: Self = Self { datagrams: Duration::ZERO, timers: Duration::ZERO };

    /// Datagrams wait `datagrams`, timers fire `timers` late.
    pub fn new(datagrams: Duration, timers: Duration) -> Self {
        Self { datagrams, timers }
    }

    /// Everything `delay` late (datagrams and timers alike).
    pub fn uniform(delay: Duration) -> Self {
        Self { datagrams: delay, timers: delay }
    }

    /// Whether the node is slowed down at all.
    pub fn is_none(&self) -> bool {
        self.datagrams.is_zero() && self.timers.is_zero()
    }
}

/// A membership change a node reported (one of its events), as the membership log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemberChange {
    /// The observer learned of the member for the first time ([`Event::MemberDiscovered`]).
    Discovered,
    /// The member came back under a higher generation ([`Event::MemberRestarted`]).
    Restarted,
    /// The observer now suspects the member ([`Event::MemberSuspected`]).
    Suspected,
    /// The observer declared the member failed ([`Event::MemberFailed`]).
    Failed,
    /// The member refuted a suspicion or a death ([`Event::MemberRecovered`]).
    Recovered,
    /// The member left gracefully ([`Event::MemberLeft`]).
    Left,
    /// The member moved to a new address ([`Event::MemberAddressChanged`]).
    MemberAddressChanged,
}

/// One entry of the membership log: at `at`, node `observer` reported `change` about node
/// `member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberRecord {
    /// When.
    pub at: Duration,
    /// The node that reported it.
    pub observer: usize,
    /// The node it is about.
    pub member: usize,
    /// What changed.
    pub change: MemberChange,
    /// The member's generation, when the event gives it (discovered, restarted, failed,
    /// left).
    pub generation: Option<u64>,
    /// The member's incarnation: from the event (suspected, recovered), or for failed and
    /// left, the incarnation the observer holds right after the change (the one declared
    /// dead or departed).
    pub incarnation: Option<u32>,
}

impl MemberRecord {
    /// The record of `event`, if it is a membership change about a simulated node; `lookup`
    /// gives the observer's current incarnation of a member by name (for failed and left).
    pub(crate) fn from_event(
        at: Duration,
        observer: usize,
        event: &Event,
        index_of: impl Fn(&str) -> Option<usize>,
        lookup: impl Fn(&str) -> Option<u32>,
    ) -> Option<Self> {
        let (name, change, generation, incarnation) = match event {
            Event::MemberDiscovered { name, generation, .. } => {
                (name, MemberChange::Discovered, Some(*generation), None)
            }
            Event::MemberRestarted { name, generation, .. } => {
                (name, MemberChange::Restarted, Some(*generation), None)
            }
            Event::MemberSuspected { name, incarnation } => {
                (name, MemberChange::Suspected, None, Some(*incarnation))
            }
            Event::MemberRecovered { name, incarnation } => {
                (name, MemberChange::Recovered, None, Some(*incarnation))
            }
            Event::MemberFailed { name, generation } => {
                (name, MemberChange::Failed, Some(*generation), lookup(name))
            }
            Event::MemberLeft { name, generation } => {
                (name, MemberChange::Left, Some(*generation), lookup(name))
            }
            Event::MemberAddressChanged { name, .. } => {
                (name, MemberChange::MemberAddressChanged, None, None)
            }
            _ => return None,
        };
        let member = index_of(name)?;
        Some(Self { at, observer, member, change, generation, incarnation })
    }
}

/// A datagram sent to a watched node (see
/// [`Simulation::watch_sends_to`](crate::sim::Simulation::watch_sends_to)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentRecord {
    /// When it was sent.
    pub at: Duration,
    /// The sender.
    pub from: usize,
    /// The watched receiver.
    pub to: usize,
    /// What it carries.
    pub kind: BodyKind,
}
