//! SWIM probing: every `probe_interval` (scaled by local health) ping one member chosen by
//! shuffled round-robin; without an ack within `probe_timeout`, ask `indirect_checks` others
//! to ping it (ping-req) and relay the ack, or a nack if it stays silent; without any ack by
//! the end of the period, suspect it.
//!
//! Against hostile peers: sequence numbers are drawn from the node's RNG, so an ack cannot
//! be guessed, and an ack counts only from the address pinged (the target's, or a relay's we
//! asked). Members heard from directly and members only heard of (which a peer may make up
//! by the thousand) are probed in two round-robin orders taken in turn, so every member
//! heard from is probed at least once every two rounds of that order however many fakes
//! there are, and fakes get at most every other probe.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::RngExt;
use rand_core::Rng;
use smol_str::SmolStr;
use xxhash_rust::xxh3::xxh3_64;

use crate::summary::DigestSummary;

mod run;

/// The 16-bit tag of a member's name that a ping's sequence carries in its high half, so
/// that a node now holding a reused address does not answer for the member pinged there:
/// the top 16 bits of XXH3-64 of the name (seed 0), or 1 when those are 0 (0 means anyone).
/// See docs/PROTOCOL.md, 7.1.
///
/// ```
/// let sequence = u32::from(gossip_core::ping_target_tag("node-1")) << 16 | 0x2a;
/// assert_ne!(sequence >> 16, 0);
/// ```
pub fn ping_target_tag(name: &str) -> u16 {
    ((xxh3_64(name.as_bytes()) >> 48) as u16).max(1)
}

/// Whether a ping with this sequence is meant for the node named `name`: the sequence
/// carries its tag, or tag 0 (anyone may answer).
pub(crate) fn meant_for(sequence: u32, name: &str) -> bool {
    let tag = (sequence >> 16) as u16;
    tag == 0 || tag == ping_target_tag(name)
}

/// The probe of the current period.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    target: Arc<str>,
    sequence: u32,
    /// When indirect probes go out if no ack has come.
    indirect_at: Instant,
    indirect_sent: bool,
    acked: bool,
    /// Where the target was pinged.
    address: SocketAddr,
    /// The relays asked to ping it (their acks and nacks count).
    relays: Vec<SocketAddr>,
    /// The relays whose nack was counted.
    nacked: Vec<SocketAddr>,
    nacks_expected: u32,
    /// The digest summary the ping carried: an ack that found it equal to the target's
    /// confirms the two nodes in sync only while ours is still the same.
    summary: DigestSummary,
}

/// A ping-req we relay: our ping's sequence maps to the requester's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relay {
    requester: SocketAddr,
    /// Where we pinged the target: only an ack from there counts.
    target: SocketAddr,
    sequence: u32,
    nack: bool,
    deadline: Instant,
}

/// One shuffled round-robin order of members to probe.
///
/// Names as the table keeps them (inline up to 23 bytes): 24 bytes a member, where a shared
/// `Arc<str>` each took a pointer pair and an allocation, 40 bytes or more, made anew for
/// every member at every reshuffle.
#[derive(Debug, Default)]
pub(crate) struct Order {
    names: Vec<SmolStr>,
    position: usize,
}

impl Order {
    /// Puts a name at a random place, so it comes within two rounds.
    fn insert<R: Rng>(&mut self, name: SmolStr, rng: &mut R) {
        let at = rng.random_range(0..=self.names.len());
        if at < self.position {
            self.position += 1;
        }
        self.names.insert(at, name);
    }

    /// Drops the names `keep` refuses, keeping the position on the same next name.
    fn retain(&mut self, keep: &mut impl FnMut(&str) -> bool) {
        let (old_position, mut position, mut at) = (self.position, self.position, 0);
        self.names.retain(|name| {
            let kept = keep(name);
            if !kept && at < old_position {
                position -= 1;
            }
            at += 1;
            kept
        });
        self.position = position;
    }
}

/// Probe scheduling state.
#[derive(Debug)]
pub(crate) struct Prober {
    /// Round-robin order of the members heard from directly (see `Replica::heard`).
    heard: Order,
    /// Round-robin order of the members never heard from directly.
    unheard: Order,
    /// Whether the next probe goes to a member never heard from (when there is one).
    unheard_turn: bool,
    /// Members to probe before the round-robin orders, oldest first: those whose death a
    /// third party claimed while we held them Alive (see `Node::defer_death`).
    soon: std::collections::VecDeque<Arc<str>>,
    next_probe: Instant,
    current: Option<Probe>,
    relays: BTreeMap<u32, Relay>,
    /// Sequences of the pings that announce our leave.
    leave_pings: Vec<u32>,
}

impl Prober {
    pub(crate) fn new(first_probe: Instant) -> Self {
        Self {
            heard: Order::default(),
            unheard: Order::default(),
            unheard_turn: false,
            soon: std::collections::VecDeque::new(),
            next_probe: first_probe,
            current: None,
            relays: BTreeMap::new(),
            leave_pings: Vec::new(),
        }
    }

    /// A fresh ping sequence number for a ping meant for `target` (`None`: anyone may
    /// answer): the target's [name tag](ping_target_tag) in the high half, random bits in the low
    /// half (a peer cannot answer a ping it did not see by guessing, but for one chance in
    /// 65,536), never 0, and not one in flight.
    pub(crate) fn sequence<R: Rng>(&mut self, rng: &mut R, target: Option<&str>) -> u32 {
        let tag = u32::from(target.map_or(0, ping_target_tag)) << 16;
        loop {
            let sequence = tag | u32::from(rng.random::<u16>());
            let in_use = self.relays.contains_key(&sequence)
                || self.leave_pings.contains(&sequence)
                || self.current.as_ref().is_some_and(|probe| probe.sequence == sequence);
            if sequence != 0 && !in_use {
                return sequence;
            }
        }
    }

    /// A fresh sequence for a ping that announces our leave; its ack is recognized by
    /// [`is_leave_ping`](Self::is_leave_ping).
    pub(crate) fn leave_ping<R: Rng>(&mut self, rng: &mut R) -> u32 {
        let sequence = self.sequence(rng, None);
        self.leave_pings.push(sequence);
        sequence
    }

    /// Whether `sequence` is that of a leave ping not acked yet.
    pub(crate) fn is_leave_ping(&self, sequence: u32) -> bool {
        self.leave_pings.contains(&sequence)
    }

    /// The leave ping `sequence` was acked: `true` the first time.
    pub(crate) fn leave_ping_acked(&mut self, sequence: u32) -> bool {
        let before = self.leave_pings.len();
        self.leave_pings.retain(|s| *s != sequence);
        self.leave_pings.len() < before
    }

    /// Most members waiting in the `soon` queue.
    const MAX_SOON: usize = 64;

    /// Probes `name` before the round-robin orders (once; at most `MAX_SOON` wait).
    pub(crate) fn probe_soon(&mut self, name: Arc<str>) {
        if self.soon.len() < Self::MAX_SOON && !self.soon.contains(&name) {
            self.soon.push_back(name);
        }
    }

    /// Puts a new member (never heard from yet) at a random place in its order, so it is
    /// probed within two rounds of it.
    pub(crate) fn insert<R: Rng>(&mut self, name: SmolStr, rng: &mut R) {
        self.unheard.insert(name, rng);
    }

    /// Drops from the orders the names `keep` refuses (members forgotten since the last
    /// reshuffle), so that an order never holds more names than the table: otherwise a
    /// round kept long by live members would collect every name that came and went.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.heard.retain(&mut keep);
        self.unheard.retain(&mut keep);
    }

    pub(crate) fn pending_relays(&self) -> usize {
        self.relays.len()
    }

    /// The earliest deadline of the probe machinery.
    pub(crate) fn next_deadline(&self) -> Instant {
        let mut next = self.next_probe;
        if let Some(probe) = &self.current {
            if !probe.acked && !probe.indirect_sent {
                next = next.min(probe.indirect_at);
            }
        }
        self.relays.values().map(|r| r.deadline).fold(next, Instant::min)
    }
}
