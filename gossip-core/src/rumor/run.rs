//! How the node spreads rumors: hot news pushed to random peers until it cools.

use std::net::SocketAddr;

use gossip_proto::v1::{self, envelope::Body};
use rand_core::Rng;

use crate::config::Dissemination;
use crate::delta::{self};
use crate::digest;
use crate::membership::Source;
use crate::message::Push;
use crate::node::Node;

impl<R: Rng> Node<R> {
    /// Makes the run `(from, to]` of a node a hot rumor, when rumors are on.
    pub(crate) fn heat_rumor(&mut self, index: usize, generation: u64, from: u64, to: u64) {
        if self.config.dissemination == Dissemination::AntiEntropy {
            return;
        }
        if self.rumors.heat(index, generation, from, to) {
            self.out.metrics.rumors_dropped += 1;
        }
        if let (Some(delay), None) = (self.config.rumor_forward_delay, self.rumors.forward_due()) {
            self.rumors.set_forward_due(Some(self.now + delay));
        }
    }

    /// Forwards the news (a write, or deltas that were news) to `fanout` random peers, once
    /// it has waited `rumor_forward_delay`, and again each delay after until it went out
    /// `rumor_forwards` times; what does not fit one datagram waits another delay. One
    /// forward to 3 peers misses about e^-3 = 5% of a cluster, two about e^-6 = 0.25%.
    ///
    /// The pushes want no answer (feedback comes from the rounds' pushes: forwards that
    /// asked for it cooled rumors before the rounds had pushed them to the nodes the
    /// forwards missed, and cost a `PushAck` each) and carry no summary, so they are not
    /// pushed back to.
    pub(crate) fn drive_forwards(&mut self) {
        let Some(due) = self.rumors.forward_due() else { return };
        if self.now < due {
            return;
        }
        self.rumors.set_forward_due(None);
        let times = self.config.rumor_forwards;
        let plans = self.rumors.unforwarded_plans(times);
        if plans.is_empty() {
            return;
        }
        let waiting: Vec<usize> = plans.iter().map(|plan| plan.index).collect();
        let mut budget = self.budget();
        budget.take(2);
        let (deltas, indexes) = delta::pack(&self.table, plans, &mut budget);
        if deltas.is_empty() {
            // Nothing fits (or its node is gone): the rounds carry it, no retry every delay.
            self.rumors.stop_forwarding(&waiting);
            return;
        }
        for peer in self.random_live_members(self.config.fanout, &[]) {
            self.rumors.mark_sent(&indexes);
            self.out.metrics.rumor_pushes += 1;
            self.send(
                peer,
                Body::Push(v1::Push {
                    deltas: deltas.clone(),
                    want_ack: false,
                    summary: None,
                    data_summary: None,
                }),
            );
        }
        // Counted as forwarded even with no live peer to take it: the rounds carry it on.
        self.rumors.mark_forwarded(&indexes);
        if self.rumors.has_unforwarded(times) {
            let delay = self.config.rumor_forward_delay.unwrap_or_default();
            self.rumors.set_forward_due(Some(self.now + delay));
        }
    }

    /// Pushes the hot rumors, least-sent first, to `fanout` random peers.
    pub(crate) fn spread_rumors(&mut self) {
        self.rumors.start_round(self.table.summary());
        if self.rumors.is_empty() {
            return;
        }
        let summary = self.table.summary().to_wire();
        let data_summary = self.table.data_summary().to_wire();
        let summary_len = crate::budget::field_len(prost::Message::encoded_len(&summary))
            + crate::budget::field_len(prost::Message::encoded_len(&data_summary));
        for peer in self.random_live_members(self.config.fanout, &[]) {
            // `want_ack: true` takes two bytes beyond the empty body the budget assumes, and
            // the summary its own; a delta as large as a datagram allows goes without it
            // (the peer then lists what it knew).
            let mut packed = None;
            for with_summary in [true, false] {
                let mut budget = self.budget();
                budget.take(2 + if with_summary { summary_len } else { 0 });
                let (deltas, indexes) = delta::pack(&self.table, self.rumors.plans(), &mut budget);
                if !deltas.is_empty() {
                    packed = Some((deltas, indexes, with_summary.then_some((summary, data_summary))));
                    break;
                }
            }
            let Some((deltas, indexes, summaries)) = packed else { continue };
            self.rumors.mark_sent(&indexes);
            self.rumors.mark_forwarded(&indexes);
            self.rumors.note_pushed(peer);
            self.out.metrics.rumor_pushes += 1;
            let (summary, data_summary) = summaries.unzip();
            self.send(peer, Body::Push(v1::Push { deltas, want_ack: true, summary, data_summary }));
        }
        if !self.rumors.has_unforwarded(self.config.rumor_forwards) {
            self.rumors.set_forward_due(None);
        }
    }

    /// A push arrived: apply it, and when the sender spreads rumors, tell it what was old news.
    pub(crate) fn on_push(&mut self, from: SocketAddr, source: Source<'_>, push: Push) {
        let before = self.table.summary();
        let data_before = self.table.data_summary();
        // Only a push that asks for an answer and states the sender's summary is pushed back to.
        let may_push_back = push.want_ack && push.summary.is_some();
        let carried: Vec<String> = if may_push_back {
            push.deltas.iter().map(|delta| delta.name.clone()).collect()
        } else {
            Vec::new()
        };
        let already_known = self.apply_deltas(push.deltas, source);
        // Our rumors can bring the sender something only if our data differ (when it says
        // what it holds of them): membership states that differ are not what rumors carry.
        let data_differs = match push.data_summary {
            Some(theirs) => theirs != self.table.data_summary(),
            None => push.summary != Some(self.table.summary()),
        };
        if may_push_back && data_differs {
            self.push_back(from, &carried);
        }
        if !push.want_ack || already_known.is_empty() {
            return;
        }
        let learned_nothing = self.table.summary() == before;
        if push.summary == Some(before) && learned_nothing {
            // Nothing new, and we hold what the sender holds: one flag says it all.
            self.send(
                from,
                Body::PushAck(v1::PushAck { known: Vec::new(), in_sync: true, data_in_sync: false }),
            );
            return;
        }
        if push.data_summary == Some(data_before) && learned_nothing {
            // The same, but for membership states: every rumor of the sender is old news here.
            self.send(
                from,
                Body::PushAck(v1::PushAck { known: Vec::new(), in_sync: false, data_in_sync: true }),
            );
            return;
        }
        let known = already_known
            .into_iter()
            .filter_map(|index| self.table.get(index).map(|(name, replica)| digest::entry(name, replica)));
        let mut budget = self.budget();
        let mut entries = Vec::new();
        digest::push_entries(known, &mut budget, &mut entries);
        self.send(from, Body::PushAck(v1::PushAck { known: entries, in_sync: false, data_in_sync: false }));
    }

    /// Push-pull rumor mongering: a pusher that does not hold what we hold gets our hot
    /// rumors about the nodes its push did not carry, in one datagram it does not answer.
    fn push_back(&mut self, peer: SocketAddr, carried: &[String]) {
        let skip: Vec<usize> = carried.iter().filter_map(|name| self.table.index_of(name)).collect();
        let plans = self.rumors.plans().into_iter().filter(|plan| !skip.contains(&plan.index));
        let mut budget = self.budget();
        budget.take(2);
        let (deltas, indexes) = delta::pack(&self.table, plans, &mut budget);
        if deltas.is_empty() {
            return;
        }
        self.rumors.mark_sent(&indexes);
        self.out.metrics.rumor_pushes += 1;
        self.send(peer, Body::Push(v1::Push { deltas, want_ack: false, summary: None, data_summary: None }));
    }

    /// Rumor feedback: the peer already knew these nodes up to the versions given.
    pub(crate) fn on_push_ack(&mut self, from: SocketAddr, ack: v1::PushAck) {
        if ack.in_sync || ack.data_in_sync {
            self.out.metrics.rumor_feedback += 1;
            let (rule, k) = (self.config.rumor_rule, self.config.rumor_k);
            if let Some(cooled) = self.rumors.peer_in_sync(from, rule, k, &mut self.rng) {
                self.out.metrics.rumors_cooled += cooled as u64;
                // As after a probe: in sync with a peer while our table stays as pushed
                // (membership included: a data-only match says nothing of it).
                if ack.in_sync
                    && self.config.idle_backoff()
                    && self.rumors.pushed_summary() == Some(self.table.summary())
                {
                    self.gossip.peer_in_sync(self.now);
                }
            }
        }
        for known in &ack.known {
            let Some(index) = self.table.index_of(&known.name) else { continue };
            if index == crate::table::LOCAL {
                // Only we write our table: a peer that knows more of it holds a forgery.
                self.heal_if_ahead_of_us(known.generation, known.max_version);
            }
            self.out.metrics.rumor_feedback += 1;
            let (rule, k) = (self.config.rumor_rule, self.config.rumor_k);
            let cooled =
                self.rumors.feedback(index, known.generation, known.max_version, rule, k, &mut self.rng);
            self.out.metrics.rumors_cooled += cooled as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use prost::Message;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::config::Config;
    use crate::identity::Identity;
    use crate::{Output, Transmit};

    fn address(i: u8) -> v1::Address {
        v1::Address { ip: Bytes::copy_from_slice(&[10, 0, 0, i]), port: 7946 }
    }

    /// A push from node `p` (10.0.0.2) carrying node `a`'s first key, with `summary`.
    fn push_of_a(summary: Option<v1::Summary>) -> Vec<u8> {
        push_of_a_with(summary, None)
    }

    /// [`push_of_a`] with a data summary too.
    fn push_of_a_with(summary: Option<v1::Summary>, data_summary: Option<v1::Summary>) -> Vec<u8> {
        let delta = v1::NodeDelta {
            name: "a".to_owned(),
            generation: 1,
            address: Some(address(3)),
            from_version: 0,
            to_version: 1,
            entries: vec![v1::Entry {
                key: "x".to_owned(),
                value: Bytes::from_static(b"1"),
                version: 1,
                deleted: false,
            }],
            state: v1::MemberState::Alive as i32,
            ..Default::default()
        };
        v1::Envelope {
            protocol_version: gossip_proto::PROTOCOL_VERSION,
            cluster: Config::lan().cluster,
            sender: Some(v1::NodeIdentity { name: "p".to_owned(), generation: 1, address: Some(address(2)) }),
            body: Some(Body::Push(v1::Push { deltas: vec![delta], want_ack: true, summary, data_summary })),
            membership: Vec::new(),
            broadcasts: Vec::new(),
        }
        .encode_to_vec()
    }

    /// Node "me" (10.0.0.1) with `Config::lan()`, which wrote one key (a hot rumor), and the
    /// time it started at.
    fn node_with_a_rumor() -> (Instant, Node<ChaCha8Rng>) {
        #[allow(clippy::disallowed_methods)] // A base instant; only differences matter.
        let now = Instant::now();
        let me = Identity::new("me", 1, "10.0.0.1:7946".parse().unwrap());
        let mut node = Node::new(Config::lan(), me, now, ChaCha8Rng::seed_from_u64(1)).unwrap();
        node.set("mine", "1").unwrap();
        (now, node)
    }

    fn sent(node: &mut Node<ChaCha8Rng>) -> Vec<v1::envelope::Body> {
        let mut bodies = Vec::new();
        while let Some(output) = node.poll() {
            if let Output::Transmit(Transmit { payload, .. }) = output {
                if let Ok(v1::Envelope { body: Some(body), .. }) = v1::Envelope::decode(&payload[..]) {
                    bodies.push(body);
                }
            }
        }
        bodies
    }

    fn pushes(bodies: &[v1::envelope::Body]) -> Vec<&v1::Push> {
        bodies
            .iter()
            .filter_map(|body| match body {
                Body::Push(push) => Some(push),
                _ => None,
            })
            .collect()
    }

    /// News that arrives goes on to `fanout` peers `rumor_forward_delay` later and again
    /// each delay after, `rumor_forwards` times in all, in pushes that want no answer and
    /// carry no summary (so they are not pushed back to); without a delay it waits for the
    /// round.
    #[test]
    fn news_is_forwarded_after_the_delay_as_many_times_as_configured() {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let delay = Duration::from_millis(20);
        let from: SocketAddr = "10.0.0.2:7946".parse().unwrap();
        let me = Identity::new("me", 1, "10.0.0.1:7946".parse().unwrap());
        for times in [1, 2] {
            let config = Config { rumor_forward_delay: Some(delay), rumor_forwards: times, ..Config::lan() };
            let mut node = Node::new(config, me.clone(), now, ChaCha8Rng::seed_from_u64(1)).unwrap();
            node.handle_input(now, from, &push_of_a(None));
            let _ = sent(&mut node);
            assert_eq!(node.poll_timeout(), now + delay);

            node.handle_timeout(now + delay - Duration::from_millis(1));
            assert!(pushes(&sent(&mut node)).is_empty(), "not before the delay");
            for forward in 1..=times {
                node.handle_timeout(now + delay * forward);
                let bodies = sent(&mut node);
                let forwards = pushes(&bodies);
                assert!(!forwards.is_empty(), "forward {forward} of {times}: {bodies:?}");
                for push in &forwards {
                    assert!(!push.want_ack && push.summary.is_none(), "{push:?}");
                    assert!(push.deltas.iter().any(|delta| delta.name == "a"), "{push:?}");
                }
            }
            node.handle_timeout(now + delay * (times + 1));
            assert!(pushes(&sent(&mut node)).is_empty(), "forwarded {times} times, not more");
        }

        let config = Config { rumor_forward_delay: None, ..Config::lan() };
        let mut node = Node::new(config, me, now, ChaCha8Rng::seed_from_u64(1)).unwrap();
        node.handle_input(now, from, &push_of_a(None));
        let _ = sent(&mut node);
        assert!(node.poll_timeout() > now + delay);
        node.handle_timeout(now + delay);
        assert!(pushes(&sent(&mut node)).is_empty(), "no forwarding without a delay");
    }

    /// A push from a peer that does not hold what we hold gets our other hot rumors back (not
    /// the ones it carried), in a push that wants no answer; a peer in sync gets none.
    #[test]
    fn a_pusher_out_of_sync_gets_our_other_rumors_back() {
        let (now, mut node) = node_with_a_rumor();
        let _ = sent(&mut node);
        let from: SocketAddr = "10.0.0.2:7946".parse().unwrap();
        let stranger = v1::Summary { hash: 1, nodes: 9 };
        node.handle_input(now, from, &push_of_a(Some(stranger)));
        let bodies = sent(&mut node);
        let pushed_back = pushes(&bodies);
        assert_eq!(pushed_back.len(), 1, "{bodies:?}");
        assert!(!pushed_back[0].want_ack);
        let names: Vec<&str> = pushed_back[0].deltas.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["me"], "only the rumor the push did not carry");

        // The same push again, now from a peer that holds what we hold: nothing comes back.
        let ours = node.table.summary().to_wire();
        node.handle_input(now, from, &push_of_a(Some(ours)));
        let bodies = sent(&mut node);
        assert!(!bodies.iter().any(|body| matches!(body, Body::Push(_))), "{bodies:?}");
        assert!(bodies.iter().any(|body| matches!(body, Body::PushAck(v1::PushAck { in_sync: true, .. }))));
    }

    /// A pusher that holds every version we hold, in other membership states, gets
    /// `data_in_sync` (every rumor of it met a contact that knew it) and none of our rumors
    /// back; a pusher whose data differ gets the feedback list and our other rumors.
    #[test]
    fn a_pusher_that_differs_in_membership_only_gets_data_in_sync_and_no_push_back() {
        let (now, mut node) = node_with_a_rumor();
        let from: SocketAddr = "10.0.0.2:7946".parse().unwrap();
        node.handle_input(now, from, &push_of_a(None));
        let _ = sent(&mut node);
        let other_states = v1::Summary { hash: 1, nodes: 9 };
        let ours = node.table.data_summary().to_wire();
        node.handle_input(now, from, &push_of_a_with(Some(other_states), Some(ours)));
        let bodies = sent(&mut node);
        assert!(!bodies.iter().any(|body| matches!(body, Body::Push(_))), "no push back: {bodies:?}");
        let acks: Vec<&v1::PushAck> = bodies
            .iter()
            .filter_map(|body| match body {
                Body::PushAck(ack) => Some(ack),
                _ => None,
            })
            .collect();
        assert_eq!(acks.len(), 1, "{bodies:?}");
        assert!(acks[0].data_in_sync && !acks[0].in_sync && acks[0].known.is_empty(), "{acks:?}");

        let other_data = v1::Summary { hash: 2, nodes: 9 };
        node.handle_input(now, from, &push_of_a_with(Some(other_states), Some(other_data)));
        let bodies = sent(&mut node);
        assert_eq!(pushes(&bodies).len(), 1, "our other rumor goes back: {bodies:?}");
        assert!(bodies.iter().any(|body| matches!(
            body,
            Body::PushAck(v1::PushAck { in_sync: false, data_in_sync: false, known, .. }) if known.len() == 1
        )));
    }

    /// A `data_in_sync` answer cools every hot rumor as an `in_sync` one does: with the
    /// counter rule (k = 3), three such answers from peers of the latest round cool them all.
    #[test]
    fn data_in_sync_answers_cool_every_hot_rumor() {
        let (now, mut node) = node_with_a_rumor();
        node.handle_input(now, "10.0.0.2:7946".parse().unwrap(), &push_of_a(None));
        let _ = sent(&mut node);
        assert_eq!(node.rumors.len(), 2);
        let peers: Vec<SocketAddr> = (5..8).map(|i| SocketAddr::from(([10, 0, 0, i], 7946))).collect();
        node.rumors.start_round(node.table.summary());
        for &peer in &peers {
            node.rumors.note_pushed(peer);
        }
        let ack = v1::PushAck { known: Vec::new(), in_sync: false, data_in_sync: true };
        for (answered, &peer) in peers.iter().enumerate() {
            assert_eq!(node.rumors.len(), 2, "{answered} answers: still hot");
            node.on_push_ack(peer, ack.clone());
        }
        assert!(node.rumors.is_empty(), "three contacts that knew them");
    }
}
