//! SWIM probing: every `probe_interval` (scaled by local health) ping one member chosen by
//! shuffled round-robin; without an ack within `probe_timeout`, ask `indirect_checks` others
//! to ping it (ping-req) and relay the ack, or a nack if it stays silent; without any ack by
//! the end of the period, suspect it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use gossip_proto::v1::{self, envelope::Body};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_core::Rng;

use crate::membership::MemberState;
use crate::node::Node;
use crate::table::LOCAL;

/// The probe of the current period.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    target: Arc<str>,
    sequence: u32,
    /// When indirect probes go out if no ack has come.
    indirect_at: Instant,
    indirect_sent: bool,
    acked: bool,
    nacks_expected: u32,
    nacks: u32,
}

/// A ping-req we relay: our ping's sequence maps to the requester's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relay {
    requester: SocketAddr,
    sequence: u32,
    nack: bool,
    deadline: Instant,
}

/// Probe scheduling state.
#[derive(Debug)]
pub(crate) struct Prober {
    /// Shuffled round-robin order of the members to probe.
    order: Vec<Arc<str>>,
    position: usize,
    pub(crate) next_probe: Instant,
    pub(crate) current: Option<Probe>,
    relays: BTreeMap<u32, Relay>,
    next_sequence: u32,
    /// Sequences of the pings that announce our leave.
    pub(crate) leave_pings: Vec<u32>,
}

impl Prober {
    pub(crate) fn new(first_probe: Instant) -> Self {
        Self {
            order: Vec::new(),
            position: 0,
            next_probe: first_probe,
            current: None,
            relays: BTreeMap::new(),
            next_sequence: 1,
            leave_pings: Vec::new(),
        }
    }

    pub(crate) fn sequence(&mut self) -> u32 {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        sequence
    }

    /// Puts a new member at a random place in the order, so it is probed within `2n - 1`
    /// periods.
    pub(crate) fn insert<R: Rng>(&mut self, name: Arc<str>, rng: &mut R) {
        let at = rng.random_range(0..=self.order.len());
        if at < self.position {
            self.position += 1;
        }
        self.order.insert(at, name);
    }

    /// Drops from the order the names `keep` refuses (members forgotten since the last
    /// reshuffle), so that the order never holds more names than the table: otherwise a
    /// round kept long by live members would collect every name that came and went.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let (old_position, mut position, mut at) = (self.position, self.position, 0);
        self.order.retain(|name| {
            let kept = keep(name);
            if !kept && at < old_position {
                position -= 1;
            }
            at += 1;
            kept
        });
        self.position = position;
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

impl<R: Rng> Node<R> {
    /// Runs the probe machinery up to `now`.
    pub(crate) fn drive_probes(&mut self) {
        let now = self.now;
        self.expire_relays(now);
        let indirect_due = self
            .prober
            .current
            .as_ref()
            .is_some_and(|p| !p.acked && !p.indirect_sent && p.indirect_at <= now);
        if indirect_due {
            self.send_indirect_probes();
        }
        if now >= self.prober.next_probe {
            self.finish_probe();
            if !self.leaving() {
                self.start_probe();
            }
            let interval = self.health.scale(self.config.swim.probe_interval);
            self.prober.next_probe = now + interval;
        }
    }

    /// The period ended: a probe without any ack makes its target a suspect.
    fn finish_probe(&mut self) {
        let Some(probe) = self.prober.current.take() else { return };
        if probe.acked {
            self.health_probe_succeeded();
            return;
        }
        self.metrics.probes_failed += 1;
        self.health_probe_failed(probe.nacks_expected, probe.nacks);
        let Some(index) = self.table.index_of(&probe.target) else { return };
        let Some(mut claim) = self.claim_about(index) else { return };
        if claim.state == MemberState::Suspect {
            // Our own failed probe independently confirms the suspicion (as memberlist's
            // suspectNode does), so Lifeguard's timeout shrinks toward its minimum.
            let me = self.identity.name.clone();
            if self.confirm_suspicion(&claim.name, &me) {
                self.broadcast(claim);
            }
            return;
        }
        if claim.state != MemberState::Alive {
            return;
        }
        claim.state = MemberState::Suspect;
        let address = claim.address;
        self.set_member(index, &claim, MemberState::Alive, address);
        self.broadcast(claim);
    }

    /// Pings the next member of the shuffled round-robin.
    fn start_probe(&mut self) {
        let Some(target) = self.next_probe_target() else { return };
        let Some(index) = self.table.index_of(&target) else { return };
        let Some((_, member)) = self.table.get(index) else { return };
        let address = member.address;
        let sequence = self.prober.sequence();
        let timeout = self.health.scale(self.config.swim.probe_timeout);
        self.prober.current = Some(Probe {
            target: target.clone(),
            sequence,
            indirect_at: self.now + timeout,
            indirect_sent: false,
            acked: false,
            nacks_expected: 0,
            nacks: 0,
        });
        self.metrics.probes_sent += 1;
        let summary = Some(self.table.summary().to_wire());
        let ping = v1::Ping { sequence, target: target.to_string(), summary };
        // The buddy system: a suspect learns of the suspicion from the ping itself, even
        // when the suspicion has used up its piggyback transmissions.
        let suspected = self.config.swim.lifeguard && member.state == MemberState::Suspect;
        let buddy = if suspected { self.claim_about(index).map(|claim| claim.to_wire()) } else { None };
        self.send_with_claims(address, Body::Ping(ping), None, buddy.into_iter().collect());
    }

    fn next_probe_target(&mut self) -> Option<Arc<str>> {
        for _ in 0..2 {
            while self.prober.position < self.prober.order.len() {
                let name = self.prober.order[self.prober.position].clone();
                self.prober.position += 1;
                let live = self.table.index_of(&name).filter(|&i| i != LOCAL).and_then(|i| self.table.get(i));
                if live.is_some_and(|(_, member)| member.state.is_live()) {
                    return Some(name);
                }
            }
            // End of the round: reshuffle the live members.
            let mut order: Vec<Arc<str>> =
                self.table.live_names().filter(|n| **n != *self.identity.name).collect();
            order.shuffle(&mut self.rng);
            self.prober.order = order;
            self.prober.position = 0;
        }
        None
    }

    fn send_indirect_probes(&mut self) {
        let Some(probe) = self.prober.current.as_mut() else { return };
        probe.indirect_sent = true;
        let (target, sequence) = (probe.target.clone(), probe.sequence);
        let Some(target_identity) = self.table.index_of(&target).and_then(|i| self.identity_of(i)) else {
            return;
        };
        let relays = self.random_live_members(self.config.swim.indirect_checks, &[&target]);
        let nack = self.config.swim.lifeguard;
        if let Some(probe) = self.prober.current.as_mut() {
            probe.nacks_expected = if nack { relays.len() as u32 } else { 0 };
        }
        for relay in relays {
            let request = v1::PingReq { sequence, target: Some(target_identity.clone()), nack };
            self.metrics.ping_reqs_sent += 1;
            self.send(relay, Body::PingReq(request));
        }
    }

    /// Tells relays that did not hear from their target in time to send a nack.
    fn expire_relays(&mut self, now: Instant) {
        let expired: Vec<u32> =
            self.prober.relays.iter().filter(|(_, r)| r.deadline <= now).map(|(s, _)| *s).collect();
        for sequence in expired {
            let Some(relay) = self.prober.relays.remove(&sequence) else { continue };
            if relay.nack {
                self.send(relay.requester, Body::Nack(v1::Nack { sequence: relay.sequence }));
            }
        }
    }

    /// A ping for us: answer it.
    pub(crate) fn on_ping(&mut self, from: SocketAddr, ping: v1::Ping) {
        if !ping.target.is_empty() && ping.target != self.identity.name {
            // The address now belongs to someone else: do not vouch for the old owner.
            self.metrics.misdirected_pings += 1;
            return;
        }
        self.send(from, Body::Ack(v1::Ack { sequence: ping.sequence }));
        let theirs = crate::summary::DigestSummary::from_wire(ping.summary.as_ref());
        let backoff = self.config.max_idle_gossip_interval > self.config.gossip_interval;
        match theirs {
            Some(theirs) if backoff && theirs != self.table.summary() => self.sync_with_prober(from),
            Some(_) if backoff => {
                // In sync with a peer: no need to keep offering rotating digest windows.
                self.confirmed_in_sync = Some(self.now);
                self.out_of_sync_until = None;
            }
            _ => {}
        }
    }

    /// A member asks us to probe another: ping it and remember whom to tell.
    pub(crate) fn on_ping_req(&mut self, from: SocketAddr, request: v1::PingReq) {
        let Some(target) = request.target.as_ref() else { return };
        let Some(address) = crate::identity::address_from_wire(target.address.as_ref()) else { return };
        let swim = &self.config.swim;
        let from_requester = self.prober.relays.values().filter(|r| r.requester == from).count();
        if self.prober.pending_relays() >= swim.max_pending_relays
            || from_requester >= swim.max_relays_per_requester
        {
            self.metrics.relays_refused += 1;
            return;
        }
        let sequence = self.prober.sequence();
        // Answer within the requester's period: its ping-req left one probe timeout into a
        // period of about twice that, so a nack at a full timeout would always come too late
        // and count against the requester's health.
        let deadline = self.now + self.health.scale(swim.probe_timeout).mul_f64(0.8);
        self.prober.relays.insert(
            sequence,
            Relay { requester: from, sequence: request.sequence, nack: request.nack, deadline },
        );
        let summary = Some(self.table.summary().to_wire());
        self.send(address, Body::Ping(v1::Ping { sequence, target: target.name.clone(), summary }));
    }

    /// An ack: our probe succeeded, a relayed probe succeeded, or a leave was heard.
    pub(crate) fn on_ack(&mut self, ack: v1::Ack) {
        if let Some(probe) = self.prober.current.as_mut() {
            if probe.sequence == ack.sequence {
                probe.acked = true;
                return;
            }
        }
        if let Some(relay) = self.prober.relays.remove(&ack.sequence) {
            self.send(relay.requester, Body::Ack(v1::Ack { sequence: relay.sequence }));
            return;
        }
        if self.prober.leave_pings.contains(&ack.sequence) {
            self.on_leave_ack(ack.sequence);
            return;
        }
        self.metrics.stray_acks += 1;
    }

    /// A relay's nack: the relay is alive and answered, so our own link is not the problem.
    /// At most one per relay asked counts.
    pub(crate) fn on_nack(&mut self, nack: v1::Nack) {
        if let Some(probe) = self.prober.current.as_mut() {
            if probe.sequence == nack.sequence && probe.nacks < probe.nacks_expected {
                probe.nacks += 1;
                return;
            }
        }
        self.metrics.stray_acks += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use prost::Message;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::config::Config;
    use crate::identity::Identity;

    fn wire(name: &str, port: u16) -> v1::NodeIdentity {
        let address = v1::Address { ip: Bytes::from_static(&[10, 0, 0, 1]), port: u32::from(port) };
        v1::NodeIdentity { name: name.to_owned(), generation: 1, address: Some(address) }
    }

    /// A datagram from `mallory` claiming `state` for each of `names`.
    fn claims(names: &[String], state: v1::MemberState) -> Vec<u8> {
        let membership = names
            .iter()
            .map(|name| v1::MembershipUpdate {
                member: Some(wire(name, 9000)),
                incarnation: 0,
                state: state as i32,
                from: String::new(),
            })
            .collect();
        v1::Envelope {
            protocol_version: gossip_proto::PROTOCOL_VERSION,
            cluster: Config::lan().cluster,
            sender: Some(wire("mallory", 9001)),
            body: Some(Body::Ack(v1::Ack { sequence: 0 })),
            membership,
        }
        .encode_to_vec()
    }

    /// Members that come, leave and are forgotten between two reshuffles of the probe order
    /// (a round kept long by live members) leave no trace in it: the order never holds more
    /// names than the table.
    #[test]
    fn forgotten_members_leave_the_probe_order() {
        let mut config = Config::lan();
        config.max_nodes = 16;
        config.swim.dead_retention = Duration::from_secs(1);
        // Only differences from this base matter.
        #[allow(clippy::disallowed_methods)]
        let mut now = Instant::now();
        let from: SocketAddr = "10.0.0.1:9001".parse().unwrap();
        let me = Identity::new("me", 1, "10.0.0.1:7946".parse().unwrap());
        let mut node = Node::new(config, me, now, ChaCha8Rng::seed_from_u64(1)).unwrap();
        // No probe runs in between (the order is reshuffled only at the end of a round).
        node.prober.position = 0;
        for cycle in 0..50 {
            let names: Vec<String> = (0..10).map(|i| format!("c{cycle}-{i}")).collect();
            node.handle_input(now, from, &claims(&names, v1::MemberState::Alive));
            node.handle_input(now, from, &claims(&names, v1::MemberState::Left));
            now += Duration::from_secs(2);
            node.now = now;
            node.forget_departed();
            while node.poll().is_some() {}
            assert!(
                node.prober.order.len() <= node.table.len(),
                "cycle {cycle}: {} names in the probe order, {} in the table",
                node.prober.order.len(),
                node.table.len()
            );
            assert!(node.prober.position <= node.prober.order.len());
        }
        assert!(node.metrics.members_forgotten >= 400);
    }
}
