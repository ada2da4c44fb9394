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
        if self.config.dissemination != Dissemination::AntiEntropy
            && self.rumors.heat(index, generation, from, to)
        {
            self.out.metrics.rumors_dropped += 1;
        }
    }

    /// Pushes the hot rumors, least-sent first, to `fanout` random peers.
    pub(crate) fn spread_rumors(&mut self) {
        self.rumors.start_round(self.table.summary());
        if self.rumors.is_empty() {
            return;
        }
        let summary = self.table.summary().to_wire();
        let summary_len = crate::budget::field_len(prost::Message::encoded_len(&summary));
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
                    packed = Some((deltas, indexes, with_summary.then_some(summary)));
                    break;
                }
            }
            let Some((deltas, indexes, summary)) = packed else { continue };
            self.rumors.mark_sent(&indexes);
            self.rumors.note_pushed(peer);
            self.out.metrics.rumor_pushes += 1;
            self.send(peer, Body::Push(v1::Push { deltas, want_ack: true, summary }));
        }
    }

    /// A push arrived: apply it, and when the sender spreads rumors, tell it what was old news.
    pub(crate) fn on_push(&mut self, from: SocketAddr, source: Source<'_>, push: Push) {
        let before = self.table.summary();
        let already_known = self.apply_deltas(push.deltas, source);
        if !push.want_ack || already_known.is_empty() {
            return;
        }
        if push.summary == Some(before) && self.table.summary() == before {
            // Nothing new, and we hold what the sender holds: one flag says it all.
            self.send(from, Body::PushAck(v1::PushAck { known: Vec::new(), in_sync: true }));
            return;
        }
        let known = already_known
            .into_iter()
            .filter_map(|index| self.table.get(index).map(|(name, replica)| digest::entry(name, replica)));
        let mut budget = self.budget();
        let mut entries = Vec::new();
        digest::push_entries(known, &mut budget, &mut entries);
        self.send(from, Body::PushAck(v1::PushAck { known: entries, in_sync: false }));
    }

    /// Rumor feedback: the peer already knew these nodes up to the versions given.
    pub(crate) fn on_push_ack(&mut self, from: SocketAddr, ack: v1::PushAck) {
        if ack.in_sync {
            self.out.metrics.rumor_feedback += 1;
            let (rule, k) = (self.config.rumor_rule, self.config.rumor_k);
            if let Some(cooled) = self.rumors.peer_in_sync(from, rule, k, &mut self.rng) {
                self.out.metrics.rumors_cooled += cooled as u64;
                // As after a probe: in sync with a peer while our table stays as pushed.
                if self.config.idle_backoff() && self.rumors.pushed_summary() == Some(self.table.summary()) {
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
