//! How the node joins, leaves, contacts the dead and forgets departed members.

use std::net::SocketAddr;
use std::time::Instant;

use gossip_proto::v1::{self, envelope::Body};
use rand::RngExt;
use rand_core::Rng;

use crate::event::Event;
use crate::membership::MemberState;
use crate::node::Node;
use crate::table::LOCAL;

use super::*;

impl<R: Rng> Node<R> {
    /// Contacts seed addresses until one answers (then [`Event::Joined`]), retrying with
    /// exponential backoff from `swim.join_retry_initial` to `swim.join_retry_max`. If none
    /// has answered within `swim.join_timeout`, [`Event::JoinFailed`] says what each seed did;
    /// the node keeps trying in the background. Seeds
    /// keep a place in every anti-entropy round afterwards (Cassandra's rule against seed
    /// islands). Addresses of this node are ignored.
    pub fn join(&mut self, seeds: impl IntoIterator<Item = SocketAddr>) {
        for seed in seeds {
            if seed == self.identity.address || self.join.seeds.contains(&seed) {
                continue;
            }
            if self.join.seeds.len() >= self.config.max_nodes {
                break;
            }
            self.join.seeds.push(seed);
            self.send_syn(seed);
        }
        if !self.join.joined && !self.join.seeds.is_empty() {
            self.join.backoff = self.config.swim.join_retry_initial;
            self.join.retry_at = Some(self.now + self.join.backoff);
            self.join.deadline = Some(self.now + self.config.swim.join_timeout);
        }
    }

    /// Whether a seed (or any member) has answered since the first [`join`](Self::join); a
    /// node never asked to join counts as joined (it is the first of its cluster).
    pub fn has_joined(&self) -> bool {
        self.join.joined || self.join.seeds.is_empty()
    }

    /// A seed sent something unusable: remembered for the report of a failed join.
    pub(crate) fn note_join_problem(&mut self, from: SocketAddr, problem: JoinProblem) {
        if !self.join.joined && self.join.seeds.contains(&from) {
            self.join.problems.insert(from, problem);
        }
    }

    /// Starts a graceful leave: raises our incarnation, gossips `Left`, and pings a few
    /// members so they hear it at once. [`Node::has_left`] turns true (and
    /// [`Event::LeaveComplete`] is emitted) once all of them (at most `swim.leave_acks`) answered or
    /// `swim.leave_timeout` passed. The node stops probing others meanwhile.
    pub fn leave(&mut self) {
        if self.leave.is_some() {
            return;
        }
        if self.has_given_up_name() {
            // No longer a member: nothing to announce.
            self.leave = Some(Leave { deadline: self.now, acks: 0, needed: 0, done: false });
            self.finish_leave();
            return;
        }
        let incarnation = self.table.local().incarnation.saturating_add(1);
        self.table.modify(LOCAL, |_, me| {
            me.incarnation = incarnation;
            me.state = MemberState::Left;
        });
        let peers = self.random_live_members(self.config.swim.leave_acks.max(1), &[]);
        let deadline = self.now + self.config.swim.leave_timeout;
        self.leave = Some(Leave { deadline, acks: 0, needed: peers.len(), done: false });
        if let Some(claim) = self.claim_about(LOCAL) {
            self.queue_claim(claim);
        }
        for peer in &peers {
            let sequence = self.prober.leave_ping(&mut self.rng);
            let me = self.identity.name.clone();
            let ping = v1::Ping { sequence, summary: None };
            self.send_with_priority(*peer, Body::Ping(ping), Some(&me));
        }
        self.hand_off_aggregates();
        if peers.is_empty() {
            self.finish_leave();
        }
    }

    /// Whether a graceful leave has completed.
    pub fn has_left(&self) -> bool {
        self.leave.as_ref().is_some_and(|leave| leave.done)
    }

    pub(crate) fn leaving(&self) -> bool {
        self.leave.is_some()
    }

    pub(crate) fn on_leave_ack(&mut self, sequence: u32) {
        if !self.prober.leave_ping_acked(sequence) {
            return;
        }
        if let Some(leave) = self.leave.as_mut() {
            leave.acks += 1;
            if leave.acks >= leave.needed {
                self.finish_leave();
            }
        }
    }

    fn finish_leave(&mut self) {
        if let Some(leave) = self.leave.as_mut() {
            if !leave.done {
                leave.done = true;
                self.out.events.emit(Event::LeaveComplete);
            }
        }
    }

    /// Retries the join, finishes a leave that timed out, and forgets long-departed members.
    pub(crate) fn drive_lifecycle(&mut self) {
        let now = self.now;
        if self.join.deadline.is_some_and(|deadline| !self.join.joined && now >= deadline) {
            self.join.deadline = None;
            let seeds = self
                .join
                .seeds
                .iter()
                .map(|seed| (*seed, self.join.problems.get(seed).copied().unwrap_or(JoinProblem::NoAnswer)))
                .collect();
            self.out.events.emit(Event::JoinFailed { seeds });
        }
        if let Some(retry_at) = self.join.retry_at {
            if !self.join.joined && now >= retry_at {
                for seed in self.join.seeds.clone() {
                    self.send_syn(seed);
                }
                self.join.backoff = (self.join.backoff * 2).min(self.config.swim.join_retry_max);
                self.join.retry_at = Some(now + self.join.backoff);
            }
        }
        if self.leave.as_ref().is_some_and(|leave| !leave.done && now >= leave.deadline) {
            self.finish_leave();
        }
    }

    /// A datagram came from `from`: the first one ends the join.
    pub(crate) fn note_contact(&mut self, from: SocketAddr) {
        if !self.join.joined && !self.join.seeds.is_empty() {
            self.join.joined = true;
            self.join.retry_at = None;
            self.join.deadline = None;
            self.join.problems.clear();
            self.out.events.emit(Event::Joined { via: from });
        }
    }

    /// Forgets members that have been dead or gone for `swim.dead_retention`.
    pub(crate) fn forget_departed(&mut self) {
        let retention = self.config.swim.dead_retention;
        let removals = self.table.forget_departed(self.now, retention);
        for &(index, moved_from) in &removals {
            self.rumors.forget(index);
            if let Some(moved_from) = moved_from {
                self.rumors.reindex(moved_from, index);
            }
            self.out.metrics.members_forgotten += 1;
        }
        if !removals.is_empty() {
            let table = &self.table;
            self.prober.retain(|name| table.index_of(name).is_some());
        }
    }

    /// The address of a random dead or departed member not yet forgotten.
    pub(crate) fn random_departed_address(&mut self) -> Option<SocketAddr> {
        let dead = self.table.departed_count();
        if dead == 0 {
            return None;
        }
        let pick = self.rng.random_range(0..dead);
        let name = self.table.departed_names().nth(pick)?;
        self.table.by_name(name).map(|member| member.address)
    }

    /// When a dead or departed member is next contacted, if there is one.
    pub(crate) fn next_dead_gossip(&self) -> Option<Instant> {
        if self.table.departed_count() == 0 {
            return None;
        }
        let every = self.config.gossip_interval * self.config.swim.dead_gossip_every_rounds;
        Some(self.gossip.last_dead_contact().map_or(self.now, |at| at + every))
    }

    /// Contacts a dead or departed member at least every `swim.dead_gossip_every_rounds` base
    /// gossip intervals, however stretched the idle anti-entropy interval is: if it was only
    /// cut off, the exchange lets both sides learn that it lives (memberlist #222).
    pub(crate) fn drive_dead_gossip(&mut self) {
        if self.next_dead_gossip().is_none_or(|due| self.now < due) {
            return;
        }
        self.gossip.note_dead_contact(self.now);
        if let Some(address) = self.random_departed_address() {
            self.send_syn(address);
        }
    }

    /// The deadline of the join retry or time limit, or of the leave.
    pub(crate) fn next_lifecycle_deadline(&self) -> Option<Instant> {
        let join = self.join.retry_at.filter(|_| !self.join.joined);
        let join_deadline = self.join.deadline.filter(|_| !self.join.joined);
        let leave = self.leave.as_ref().filter(|l| !l.done).map(|l| l.deadline);
        [join, join_deadline, leave].into_iter().flatten().min()
    }
}
