//! How the node probes: the probe period, indirect probes through helpers, the relays it
//! runs for others, and the pings and acks on the wire.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use gossip_proto::v1::{self, envelope::Body};
use rand::seq::SliceRandom;
use rand_core::Rng;
use smol_str::SmolStr;

use crate::membership::MemberState;
use crate::message::PingReq;
use crate::node::Node;
use crate::table::LOCAL;

use super::*;

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
            if self.deferred_incarnation(&probe.target).is_some() {
                // It answered us after the Dead claim we deferred: it is alive, whatever
                // others could not reach (its refutation of our ping's accusation follows).
                self.stop_suspicion(&probe.target);
            }
            return;
        }
        self.out.metrics.probes_failed += 1;
        let Some(index) = self.table.index_of(&probe.target) else { return };
        // A member never heard from may not exist (a hostile peer can name thousands): its
        // silence says nothing about our own health.
        if self.table.get(index).is_some_and(|(_, member)| member.heard) {
            self.health_probe_failed(probe.nacks_expected, probe.nacked.len() as u32);
        }
        let Some(mut claim) = self.claim_about(index) else { return };
        if let Some(incarnation) = self.deferred_incarnation(&claim.name) {
            // A third party's Dead claim that we deferred, and now we cannot reach the
            // member either: the death is confirmed first-hand.
            self.declare_deferred_death(index, incarnation);
            return;
        }
        if claim.state == MemberState::Suspect {
            // Our own failed probe independently confirms the suspicion (as memberlist's
            // suspectNode does), so Lifeguard's timeout shrinks toward its minimum.
            let me = self.identity.name.clone();
            if self.confirm_suspicion(&claim.name, &me) {
                self.queue_claim(claim);
            }
            return;
        }
        if claim.state != MemberState::Alive {
            return;
        }
        claim.state = MemberState::Suspect;
        let address = claim.address;
        if self.table.get(index).is_some_and(|(_, member)| member.heard) {
            // Probe it again next period: the ping carries the accusation (the buddy
            // system), so a member that only lost a datagram refutes long before the
            // suspicion can time out.
            self.prober.probe_soon(probe.target.clone());
        }
        self.set_member(index, &claim, MemberState::Alive, address);
        self.queue_claim(claim);
    }

    /// Pings the next member of the shuffled round-robin.
    fn start_probe(&mut self) {
        let Some(target) = self.next_probe_target() else { return };
        let Some(index) = self.table.index_of(&target) else { return };
        let Some((_, member)) = self.table.get(index) else { return };
        let address = member.address;
        let sequence = self.prober.sequence(&mut self.rng, Some(&target));
        let timeout = self.health.scale(self.config.swim.probe_timeout);
        self.prober.current = Some(Probe {
            target: target.clone(),
            sequence,
            indirect_at: self.now + timeout,
            indirect_sent: false,
            acked: false,
            address,
            relays: Vec::new(),
            nacked: Vec::new(),
            nacks_expected: 0,
            summary: self.table.summary(),
        });
        self.out.metrics.probes_sent += 1;
        let ping = v1::Ping { sequence, summary: Some(self.table.summary().ping_check()) };
        // The buddy system: a suspect learns of the suspicion from the ping itself, even
        // when the suspicion has used up its piggyback transmissions.
        let suspected = self.config.swim.lifeguard && member.state == MemberState::Suspect;
        let deferred = self.deferred_incarnation(&target);
        let buddy = if suspected || deferred.is_some() {
            self.claim_about(index).map(|mut claim| {
                // A deferred Dead claim: the accusation to refute is the claim's.
                if let Some(incarnation) = deferred {
                    claim.state = MemberState::Suspect;
                    claim.incarnation = claim.incarnation.max(incarnation);
                }
                claim.to_wire()
            })
        } else {
            None
        };
        self.send_with_claims(address, Body::Ping(ping), None, buddy.into_iter().collect());
    }

    /// The next member to probe: from the order of members heard from and the order of the
    /// others in turn (from the one that has a member when the other has none).
    fn next_probe_target(&mut self) -> Option<Arc<str>> {
        while let Some(name) = self.prober.soon.pop_front() {
            let accused = self.table.by_name(&name).is_some_and(|member| {
                member.state == MemberState::Suspect
                    || (member.state == MemberState::Alive && self.deferred_incarnation(&name).is_some())
            });
            if accused && *name != *self.identity.name {
                return Some(name);
            }
        }
        let unheard_first = self.prober.unheard_turn;
        for unheard in [unheard_first, !unheard_first] {
            if let Some(name) = self.next_in_order(unheard) {
                self.prober.unheard_turn = !unheard;
                return Some(name);
            }
        }
        None
    }

    /// The next live member of one order (`unheard` or heard), reshuffling it at the end of
    /// its round. A member of the unheard order heard from since is left to the other.
    fn next_in_order(&mut self, unheard: bool) -> Option<Arc<str>> {
        for _ in 0..2 {
            loop {
                let order = if unheard { &mut self.prober.unheard } else { &mut self.prober.heard };
                let Some(name) = order.names.get(order.position) else { break };
                order.position += 1;
                let member =
                    self.table.index_of(name).filter(|&i| i != LOCAL).and_then(|i| self.table.get(i));
                if member.is_some_and(|(_, member)| member.state.is_live() && !(unheard && member.heard)) {
                    return Some(Arc::from(name.as_str()));
                }
            }
            // End of the round: reshuffle the live members of this kind.
            let mut names: Vec<SmolStr> = self
                .table
                .live_names()
                .filter(|name| name.as_str() != self.identity.name.as_str())
                .filter(|name| self.table.by_name(name).is_some_and(|member| member.heard != unheard))
                .collect();
            names.shuffle(&mut self.rng);
            let order = if unheard { &mut self.prober.unheard } else { &mut self.prober.heard };
            *order = Order { names, position: 0 };
            if order.names.is_empty() {
                return None;
            }
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
        let chosen = self.random_live_member_indices(self.config.swim.indirect_checks, &[&target]);
        let relays: Vec<(SocketAddr, bool)> = chosen
            .into_iter()
            .filter_map(|i| self.table.get(i).map(|(_, member)| (member.address, member.heard)))
            .collect();
        let nack = self.config.swim.lifeguard;
        // Only relays heard from are expected to nack: a missing nack from one only heard of
        // says nothing about our own health.
        let heard_relays = relays.iter().filter(|(_, heard)| *heard).count() as u32;
        let relays: Vec<SocketAddr> = relays.into_iter().map(|(address, _)| address).collect();
        if let Some(probe) = self.prober.current.as_mut() {
            probe.nacks_expected = if nack { heard_relays } else { 0 };
            probe.relays = relays.clone();
        }
        for relay in relays {
            let request = v1::PingReq { sequence, target: Some(target_identity.clone()), nack };
            self.out.metrics.ping_reqs_sent += 1;
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
        if !crate::probe::meant_for(ping.sequence, &self.identity.name) {
            // The address now belongs to someone else: do not vouch for the old owner.
            self.out.metrics.misdirected_pings += 1;
            return;
        }
        let theirs = ping.summary;
        let differs = theirs.is_some_and(|theirs| theirs != self.table.summary().ping_check());
        // Before the exchange a difference opens, so that the prober learns of it first.
        self.send(from, Body::Ack(v1::Ack { sequence: ping.sequence, summary_differs: differs }));
        let backoff = self.config.idle_backoff();
        match theirs {
            Some(_) if backoff && differs => self.sync_with_prober(from),
            Some(_) if backoff => {
                // In sync with a peer: no need to keep offering rotating digest windows.
                self.gossip.peer_in_sync(self.now);
            }
            _ => {}
        }
    }

    /// A member asks us to probe another: ping it and remember whom to tell.
    pub(crate) fn on_ping_req(&mut self, from: SocketAddr, request: PingReq) {
        let address = request.address;
        let swim = &self.config.swim;
        let from_requester = self.prober.relays.values().filter(|r| r.requester == from).count();
        if self.prober.pending_relays() >= swim.max_pending_relays
            || from_requester >= swim.max_relays_per_requester
        {
            self.out.metrics.relays_refused += 1;
            return;
        }
        let sequence = self.prober.sequence(&mut self.rng, Some(&request.target));
        // Answer within the requester's period: its ping-req left one probe timeout into a
        // period of about twice that, so a nack at a full timeout would always come too late
        // and count against the requester's health.
        let deadline = self.now + self.health.scale(swim.probe_timeout).mul_f64(0.8);
        self.prober.relays.insert(
            sequence,
            Relay {
                requester: from,
                target: address,
                sequence: request.sequence,
                nack: request.nack,
                deadline,
            },
        );
        let summary = Some(self.table.summary().ping_check());
        self.send(address, Body::Ping(v1::Ping { sequence, summary }));
    }

    /// An ack from `from`: our probe succeeded (the target answered from the address we
    /// pinged, or a relay we asked passed the target's ack on), a relayed probe succeeded
    /// (the target answered from the address we pinged), or a leave was heard. Anything else
    /// is stray.
    pub(crate) fn on_ack(&mut self, from: SocketAddr, ack: v1::Ack) {
        if let Some(probe) = self.prober.current.as_mut() {
            if probe.sequence == ack.sequence && (from == probe.address || probe.relays.contains(&from)) {
                probe.acked = true;
                if from == probe.address {
                    let target = probe.target.clone();
                    // The target compared our summary with its own: equal, and ours has not
                    // changed since, we are in sync with it as surely as when it pings us.
                    let in_sync = !ack.summary_differs && probe.summary == self.table.summary();
                    if let Some(index) = self.table.index_of(&target) {
                        self.table.mark_heard(index);
                    }
                    if in_sync && self.config.idle_backoff() {
                        self.gossip.peer_in_sync(self.now);
                    }
                }
                return;
            }
        }
        if self.prober.relays.get(&ack.sequence).is_some_and(|relay| relay.target == from) {
            if let Some(relay) = self.prober.relays.remove(&ack.sequence) {
                self.send(
                    relay.requester,
                    Body::Ack(v1::Ack { sequence: relay.sequence, summary_differs: false }),
                );
            }
            return;
        }
        if self.prober.is_leave_ping(ack.sequence) {
            self.on_leave_ack(ack.sequence);
            return;
        }
        if self.answers_name_check(from, ack.sequence) {
            return;
        }
        self.out.metrics.stray_acks += 1;
    }

    /// A relay's nack: the relay is alive and answered, so our own link is not the problem.
    /// Only from a relay asked, at most once each.
    pub(crate) fn on_nack(&mut self, from: SocketAddr, nack: v1::Nack) {
        if let Some(probe) = self.prober.current.as_mut() {
            if probe.sequence == nack.sequence
                && probe.relays.contains(&from)
                && !probe.nacked.contains(&from)
                && (probe.nacked.len() as u32) < probe.nacks_expected
            {
                probe.nacked.push(from);
                if probe.nacked.len() == probe.relays.len() {
                    // Every relay asked answered that the target is silent to it too: no
                    // ack can be on its way, so the probe has failed now rather than at the
                    // end of the period (the suspicion starts up to half a period sooner).
                    self.finish_probe();
                }
                return;
            }
        }
        self.out.metrics.stray_acks += 1;
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
            body: Some(Body::Ack(v1::Ack { sequence: 0, summary_differs: false })),
            membership,
            broadcasts: Vec::new(),
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
        node.prober.unheard.position = 0;
        for cycle in 0..50 {
            let names: Vec<String> = (0..10).map(|i| format!("c{cycle}-{i}")).collect();
            node.handle_input(now, from, &claims(&names, v1::MemberState::Alive));
            node.handle_input(now, from, &claims(&names, v1::MemberState::Left));
            now += Duration::from_secs(2);
            node.now = now;
            node.forget_departed();
            while node.poll().is_some() {}
            let names = node.prober.heard.names.len() + node.prober.unheard.names.len();
            assert!(
                names <= node.table.len(),
                "cycle {cycle}: {names} names in the probe orders, {} in the table",
                node.table.len()
            );
            assert!(node.prober.unheard.position <= node.prober.unheard.names.len());
        }
        assert!(node.metrics().members_forgotten >= 400);
    }

    /// A ping is answered only by the node its sequence's tag names (or by anyone under tag
    /// 0), and the ack says whether the ping's 32-bit summary was ours.
    #[test]
    fn pings_are_answered_by_the_tagged_node_only() {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let me = Identity::new("me", 1, "10.0.0.1:7946".parse().unwrap());
        let mut node = Node::new(Config::lan(), me, now, ChaCha8Rng::seed_from_u64(1)).unwrap();
        while node.poll().is_some() {}
        let from: SocketAddr = "10.0.0.2:7946".parse().unwrap();
        let ours = 0;
        let ping = |sequence: u32, summary: Option<u32>| {
            v1::Envelope {
                protocol_version: gossip_proto::PROTOCOL_VERSION,
                cluster: Config::lan().cluster,
                sender: Some(v1::NodeIdentity { address: None, ..wire("prober", 7946) }),
                body: Some(Body::Ping(v1::Ping { sequence, summary })),
                membership: Vec::new(),
                broadcasts: Vec::new(),
            }
            .encode_to_vec()
        };
        let answer = |node: &mut Node<ChaCha8Rng>, datagram: Vec<u8>| {
            node.handle_input(now, from, &datagram);
            let mut acks = Vec::new();
            while let Some(output) = node.poll() {
                if let crate::Output::Transmit(t) = output {
                    if let Ok(v1::Envelope { body: Some(Body::Ack(ack)), .. }) =
                        v1::Envelope::decode(&t.payload[..])
                    {
                        acks.push(ack);
                    }
                }
            }
            acks
        };
        let mine = u32::from(crate::probe::ping_target_tag("me")) << 16;
        let mut other = u32::from(crate::probe::ping_target_tag("someone-else")) << 16;
        if other == mine {
            other ^= 1 << 16;
        }
        assert!(answer(&mut node, ping(other | 5, Some(ours))).is_empty(), "answered for another name");
        assert_eq!(node.metrics().misdirected_pings, 1);
        // The prober is a member now: our summary covers it.
        let ours = node.table.summary().ping_check();
        let acks = answer(&mut node, ping(mine | 6, Some(ours)));
        assert_eq!(acks, vec![v1::Ack { sequence: mine | 6, summary_differs: false }]);
        let acks = answer(&mut node, ping(mine | 7, Some(ours ^ 1)));
        assert_eq!(acks, vec![v1::Ack { sequence: mine | 7, summary_differs: true }]);
        let acks = answer(&mut node, ping(8, None));
        assert_eq!(acks, vec![v1::Ack { sequence: 8, summary_differs: false }], "tag 0: anyone answers");
        assert_eq!(node.metrics().misdirected_pings, 1);
    }

    /// A probe's sequence carries its target's tag (a leave ping's, tag 0), and is never 0.
    #[test]
    fn probe_sequences_carry_the_target_tag() {
        #[allow(clippy::disallowed_methods)]
        let mut prober = crate::probe::Prober::new(Instant::now());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let tag = u32::from(crate::probe::ping_target_tag("n1"));
        for _ in 0..1_000 {
            let sequence = prober.sequence(&mut rng, Some("n1"));
            assert_eq!(sequence >> 16, tag);
            assert!(crate::probe::meant_for(sequence, "n1"));
            let anyone = prober.sequence(&mut rng, None);
            assert_eq!(anyone >> 16, 0);
            assert!(anyone != 0 && crate::probe::meant_for(anyone, "n1"));
        }
    }
}
