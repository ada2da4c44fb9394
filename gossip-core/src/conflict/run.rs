//! How the node runs the name-conflict check: pinging a newer holder of its name, answering
//! displaced processes, giving the name up.

use std::net::SocketAddr;

use gossip_proto::v1::{self, envelope::Body};
use rand_core::Rng;

use crate::event::{Event, SelfHealReason};
use crate::identity::Identity;
use crate::message;
use crate::node::Node;

use super::*;

impl<R: Rng> Node<R> {
    /// Whether this node gave its name up to a newer process under the same name (it
    /// reported [`Event::NameConflict`] with `kept: false`). It is inert from then on: it
    /// handles no datagram and no timeout and sends nothing; writes fail with
    /// [`WriteError::NameGivenUp`](crate::WriteError::NameGivenUp). Start it again under
    /// another name.
    pub fn has_given_up_name(&self) -> bool {
        self.name_check.given_up()
    }

    /// A claim names us under the newer `generation`, Alive or Suspect at `address`, which
    /// is not ours: ping it to see whether a process answers there under our name.
    pub(crate) fn check_name_holder(&mut self, address: SocketAddr, generation: u64) {
        let pending = self.name_check.pending.get_or_insert(PendingCheck {
            pinged: None,
            generation,
            deadline: self.now,
        });
        pending.generation = pending.generation.max(generation);
        if pending.pinged.is_some() {
            return;
        }
        let sequence = self.prober.sequence(&mut self.rng, Some(&self.identity.name));
        let deadline = self.now + self.config.swim.probe_interval;
        if let Some(pending) = self.name_check.pending.as_mut() {
            pending.pinged = Some((address, sequence));
            pending.deadline = deadline;
        }
        let ping = v1::Ping { sequence, summary: None };
        self.send(address, Body::Ping(ping));
    }

    /// A digest entry or a delta names us under the newer `generation`, without an address:
    /// wait a little for a claim that says where (the next ack of a probe brings it when the
    /// newer generation is a live process), then heal if none came.
    pub(crate) fn await_name_holder(&mut self, generation: u64) {
        let deadline = self.now + 2 * self.config.swim.probe_interval;
        let pending =
            self.name_check.pending.get_or_insert(PendingCheck { pinged: None, generation, deadline });
        pending.generation = pending.generation.max(generation);
    }

    /// Nobody answered the check in time: the newer generation was forged or its process is
    /// gone, so heal past it.
    pub(crate) fn drive_name_check(&mut self) {
        let Some(pending) = self.name_check.pending.take_if(|pending| self.now >= pending.deadline) else {
            return;
        };
        self.heal(SelfHealReason::GenerationAhead, pending.generation);
    }

    /// A datagram from another generation of our own name, from `from`: an older process
    /// checking whether we hold its name gets an ack. Everything else is dropped as stale.
    pub(crate) fn on_own_name(&mut self, from: SocketAddr, sender: &Identity, body: message::Body) {
        let ours = &self.identity;
        let elsewhere = from != ours.address;
        match body {
            message::Body::Ping(ping) if elsewhere && sender.generation < ours.generation => {
                self.send(from, Body::Ack(v1::Ack { sequence: ping.sequence, summary_differs: false }));
                self.report_older_holder(from, sender.generation);
            }
            _ => self.out.metrics.stale_senders += 1,
        }
    }

    /// A ping from `sender`, older than the generation we hold for its name: if it comes
    /// from another address than that generation's, it is a live process that does not know
    /// it was displaced; ack it, with the current claim about its name first.
    /// Returns whether it was answered (counted in `Metrics::displaced_answered`).
    /// Only a ping meant for us is answered: a check by the displaced process (its target is
    /// its own name) must be answered by the process under that name alone.
    pub(crate) fn answer_displaced(&mut self, from: SocketAddr, sender: &Identity, ping: &v1::Ping) -> bool {
        if !crate::probe::meant_for(ping.sequence, &self.identity.name) {
            return false;
        }
        let sequence = ping.sequence;
        let Some(index) = self.table.index_of(&sender.name) else { return false };
        let Some(current) = self.claim_about(index).filter(|current| current.address != from) else {
            return false;
        };
        self.out.metrics.displaced_answered += 1;
        self.send_with_claims(
            from,
            Body::Ack(v1::Ack { sequence, summary_differs: false }),
            None,
            vec![current.to_wire()],
        );
        true
    }

    /// An ack from `from`: whether it answers our check, which then succeeded (acks carry
    /// no sender; the sequence, drawn from our RNG, is the proof).
    pub(crate) fn answers_name_check(&mut self, from: SocketAddr, sequence: u32) -> bool {
        let Some(pending) = self.name_check.pending.as_ref() else { return false };
        if pending.pinged != Some((from, sequence)) {
            return false;
        }
        let generation = pending.generation;
        self.give_up_name(from, generation);
        true
    }

    /// An older process under our name is alive at `from`: report it once.
    fn report_older_holder(&mut self, from: SocketAddr, generation: u64) {
        self.out.metrics.name_conflicts += 1;
        let reported = &mut self.name_check.reported;
        if reported.len() < CONFLICTS_REPORTED && reported.insert((from, generation)) {
            self.out.events.emit(Event::NameConflict {
                other_address: from,
                other_generation: generation,
                kept: true,
            });
        }
    }

    /// A newer process under our name answered from `address`: it keeps the name, we stop.
    fn give_up_name(&mut self, address: SocketAddr, generation: u64) {
        self.name_check.pending = None;
        self.name_check.given_up_to = Some((address, generation));
        self.out.metrics.name_conflicts += 1;
        self.out.events.emit(Event::NameConflict {
            other_address: address,
            other_generation: generation,
            kept: false,
        });
    }
}
