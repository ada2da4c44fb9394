//! Anti-entropy: every `gossip_interval` a node contacts `fanout` random peers and
//! reconciles its table with theirs.
//!
//! - **push**: one `Push` of the deltas of recently changed nodes;
//! - **pull**: `Syn` (summary and digest) -> `SynAck` (what the initiator lacks, the peer's
//!   digest) -> `Ack2` (requests) -> `DeltaReply`;
//! - **push-pull**: as pull, and the `Ack2` also carries what the peer lacks; the `Syn`
//!   itself carries the deltas of the initiator's fresh news and the `SynAck` those of the
//!   responder's, so news crosses in one datagram each way (what matters under loss).
//!
//! A `Syn` whose summary equals the peer's ends the exchange at once, so an idle cluster
//! sends one small datagram per peer per round. A `Syn` carries the recently changed nodes
//! first; while this node has lately seen a peer out of sync, it also carries a rotating
//! window over the whole table, so every difference is found within a bounded number of
//! rounds even when the digest is far larger than a datagram.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use gossip_proto::v1::{self, ExchangeMode, envelope::Body};
use rand::RngExt;
use rand_core::Rng;

use crate::broadcast::membership_field_len;
use crate::budget::Budget;
use crate::config::{AntiEntropyMode, Dissemination};
use crate::delta::{self, DeltaPlan};
use crate::digest::{self, Comparison, RecentPart};
use crate::membership::{ClaimKind, Source};
use crate::message::{Ack2, Syn, SynAck};
use crate::node::Node;
use crate::summary::BUCKETS;

pub(crate) mod schedule;
#[cfg(test)]
mod tests;

/// A `Syn` names the nodes changed within this many gossip intervals...
const SYN_RECENT_ROUNDS: u32 = 4;
/// ... and at most this many of them.
const SYN_RECENT_ENTRIES: usize = 16;
/// In push-pull mode a `Syn` also carries the deltas of those nodes, in at most this share
/// (numerator, denominator) of the room for fresh news (the whole datagram's, or half of it
/// while the digest window rotates): the rest is for their digest entries.
const SYN_DELTAS_SHARE: (usize, usize) = (1, 2);
/// The field number of `Syn.bucket_sums` in proto/gossip.proto.
const SYN_BUCKET_SUMS: u32 = 5;
/// A `Syn` carries bucket sums only while at most this many nodes changed within
/// [`SYN_RECENT_ROUNDS`].
const BUCKET_SUMS_MAX_RECENT: usize = 8;

impl<R: Rng> Node<R> {
    /// Runs the anti-entropy round when due at `now`, and schedules the next one.
    pub(crate) fn drive_gossip_round(&mut self, now: std::time::Instant) {
        let fired = self.gossip.next_round();
        if now >= fired {
            self.gossip_round();
            self.gossip.after_round(fired, now, &self.config);
        }
    }

    /// One anti-entropy round: collect garbage, then contact `fanout` random peers.
    pub(crate) fn gossip_round(&mut self) {
        self.out.metrics.gossip_rounds += 1;
        let now = self.now;
        self.out.metrics.tombstones_collected += self.table.collect_garbage(now) as u64;
        self.forget_departed();
        let window = self.config.gossip_interval * self.config.recent_rounds;
        self.table.prune_recent(now, window);
        if self.config.dissemination != Dissemination::Rumors {
            if !self.confirmed_in_sync() {
                for peer in self.choose_peers() {
                    match self.config.mode {
                        // Seeds and the dead are the backstop that re-merges a cluster and
                        // repairs old gaps: a push of recent news (often none) would do neither.
                        AntiEntropyMode::Push if !self.is_backstop(peer) => self.send_push(peer),
                        _ => self.send_syn(peer),
                    }
                }
            } else if let Some(seed) = self.seed_outside_view() {
                // In sync, perhaps only within an island (a partition at startup): a seed
                // that is not a live member here is still contacted, as `choose_peers` does.
                self.send_syn(seed);
            }
        }
        if self.config.dissemination != Dissemination::AntiEntropy {
            self.spread_rumors();
        }
    }

    /// The peers of one anti-entropy round: `fanout` random live members; a seed as well
    /// when none of them is a seed or fewer members are live than there are seeds
    /// (Cassandra's rule against seed islands); and a dead member with probability
    /// `#dead / (#live + 1)` (and at least every `swim.dead_gossip_every_rounds` base
    /// intervals, see `drive_dead_gossip`), so that a healed partition always re-merges.
    pub(crate) fn choose_peers(&mut self) -> Vec<SocketAddr> {
        let mut peers = self.random_live_members(self.config.fanout, &[]);
        let seeds: Vec<SocketAddr> =
            self.join.seeds().iter().copied().filter(|s| *s != self.identity.address).collect();
        let live = self.live_members();
        if !seeds.is_empty() && (!peers.iter().any(|p| seeds.contains(p)) || live < seeds.len()) {
            let seed = seeds[self.rng.random_range(0..seeds.len())];
            if !peers.contains(&seed) {
                peers.push(seed);
            }
        }
        let dead = self.table.departed_count();
        if dead > 0 && self.rng.random_bool((dead as f64 / (live as f64 + 1.0)).min(1.0)) {
            if let Some(address) = self.random_departed_address().filter(|a| !peers.contains(a)) {
                peers.push(address);
                self.gossip.note_dead_contact(self.now);
            }
        }
        peers
    }

    /// A seed that no live member here listens at, if any (taken in turn round by round):
    /// while it stays outside our view we may be an island that never merges. O(n) in the
    /// table, only in rounds skipped as in sync.
    fn seed_outside_view(&self) -> Option<SocketAddr> {
        let seeds = self.join.seeds();
        if seeds.is_empty() {
            return None;
        }
        let mut outside = vec![true; seeds.len()];
        for (_, member) in self.table.iter().filter(|(_, member)| member.state.is_live()) {
            if let Some(at) = seeds.iter().position(|seed| *seed == member.address) {
                outside[at] = false;
            }
        }
        let outside: Vec<SocketAddr> = seeds
            .iter()
            .zip(outside)
            .filter(|(seed, out)| *out && **seed != self.identity.address)
            .map(|(s, _)| *s)
            .collect();
        let turn = self.out.metrics.gossip_rounds as usize;
        (!outside.is_empty()).then(|| outside[turn % outside.len()])
    }

    pub(crate) fn budget(&self) -> Budget {
        Budget::new(self.datagram_limit(), self.envelopes.base_len())
    }

    /// A prober's summary differs from ours: open an exchange with it now rather than wait
    /// for a (possibly stretched) gossip round; at most one such exchange per gossip interval.
    pub(crate) fn sync_with_prober(&mut self, prober: SocketAddr) {
        let interval = self.config.gossip_interval;
        if self.gossip.triggered_recently(self.now, interval) {
            return;
        }
        if self.config.dissemination == Dissemination::Rumors {
            return;
        }
        self.gossip.note_triggered_sync(self.now);
        self.note_activity();
        // A digest exchange, in push mode too: the difference may be older than the recent
        // news a push carries (a member forgotten and found again, say).
        self.send_syn(prober);
    }

    /// Whether `peer` is a seed or a dead or departed member (see `choose_peers`).
    fn is_backstop(&self, peer: SocketAddr) -> bool {
        self.join.seeds().contains(&peer)
            || self
                .table
                .departed_names()
                .any(|name| self.table.by_name(name).is_some_and(|m| m.address == peer))
    }

    /// Whether, with the idle backoff on, a probe showed within the last two probe periods
    /// that a peer holds exactly what we hold, and nothing changed since: the round's
    /// exchanges would only confirm it, so they are skipped (a probe whose summary differs
    /// opens an exchange at once).
    fn confirmed_in_sync(&mut self) -> bool {
        let window = self.config.swim.probe_interval * 2;
        let confirmed = self.gossip.confirmed_in_sync(self.now, window);
        if confirmed {
            self.out.metrics.rounds_skipped_in_sync += 1;
        }
        confirmed
    }

    /// Something changed or a peer is out of sync: gossip at the base interval again.
    pub(crate) fn note_activity(&mut self) {
        self.gossip.note_activity(self.now, self.config.gossip_interval);
    }

    /// A peer is out of sync: gossip at the base interval, with the rotating digest window.
    fn mark_out_of_sync(&mut self) {
        self.note_activity();
        self.gossip.mark_out_of_sync(self.now + self.config.gossip_interval * self.config.out_of_sync_rounds);
    }

    /// Opens a pull or push-pull exchange with `peer`.
    pub(crate) fn send_syn(&mut self, peer: SocketAddr) {
        let summary = self.table.summary().to_wire();
        let mode = match self.config.mode {
            AntiEntropyMode::Pull => ExchangeMode::Pull,
            _ => ExchangeMode::PushPull,
        };
        let mut budget = self.budget();
        budget.take(crate::budget::field_len(prost::Message::encoded_len(&summary)) + 2);
        let rotate = self.gossip.out_of_sync(self.now);
        // Only fresh news leads a Syn: most Syns meet a peer already in sync and are
        // dropped unread, and a responder pushes its own recent changes anyway.
        let recent = RecentPart {
            changed_since: self.now.checked_sub(self.config.gossip_interval * SYN_RECENT_ROUNDS),
            max_entries: SYN_RECENT_ENTRIES,
        };
        // Bucket sums let the peer name what this node lacks: worth their 259 bytes only
        // while out of sync, when the table is larger than a window, and when little is
        // changing (under a write load every bucket differs and they would only take room
        // from the news).
        let quiet = || {
            self.table.recent_first_since(recent.changed_since, BUCKET_SUMS_MAX_RECENT + 1).len()
                <= BUCKET_SUMS_MAX_RECENT
        };
        let with_sums = rotate && self.table.len() > BUCKETS && quiet();
        let bucket_sums = if with_sums { self.table.bucket_sums() } else { Vec::new() };
        budget.take(prost::encoding::fixed32::encoded_len_packed(SYN_BUCKET_SUMS, &bucket_sums));
        // The fresh news (its deltas, then its digest entries) leads; while rotating it takes
        // at most half the room, as `digest::push_window` would give it, so that the rotating
        // window keeps the other half and its bound.
        let mut fresh = if rotate { budget.share(1, 2) } else { budget };
        let fresh_before = fresh.remaining();
        // Push-pull: the fresh news itself goes with the Syn, so that pushing it takes one
        // datagram rather than three (Syn, SynAck, Ack2). At most a share of the room: the
        // digest entries still go out and tell the responder our versions.
        // Push mode opens push-pull exchanges too (with seeds and the dead, see
        // `gossip_round`): a pull alone would never hand our news to the seed.
        let deltas = if self.config.mode != AntiEntropyMode::Pull {
            let plans =
                self.recent_plans(self.table.recent_first_since(recent.changed_since, recent.max_entries));
            let mut share = fresh.share(SYN_DELTAS_SHARE.0, SYN_DELTAS_SHARE.1);
            let before = share.remaining();
            let (deltas, _) = delta::pack(&self.table, plans, &mut share);
            fresh.settle(before, share.remaining());
            deltas
        } else {
            Vec::new()
        };
        let mut digest = Vec::new();
        digest::push_window(&mut self.table, &BTreeSet::new(), recent, false, &mut fresh, &mut digest);
        budget.settle(fresh_before, fresh.remaining());
        if rotate {
            let offered: BTreeSet<usize> =
                digest.iter().filter_map(|entry| self.table.index_of(&entry.name)).collect();
            let none = RecentPart { changed_since: None, max_entries: 0 };
            digest::push_window(&mut self.table, &offered, none, true, &mut budget, &mut digest);
        }
        self.send(
            peer,
            Body::Syn(v1::Syn { summary: Some(summary), digest, mode: mode as i32, deltas, bucket_sums }),
        );
    }

    /// The delta plans of the recently changed nodes at `indexes`, each from where its recent
    /// run began (nodes with nothing since are left out).
    fn recent_plans(&self, indexes: Vec<usize>) -> Vec<DeltaPlan> {
        indexes
            .into_iter()
            .filter_map(|index| {
                let (_, replica) = self.table.get(index)?;
                let from = replica.recent_base();
                let missing = replica.max_version.checked_sub(from).filter(|m| *m > 0)?;
                Some(DeltaPlan { index, from, reset: false, missing })
            })
            .collect()
    }

    /// Push mode: the deltas of recently changed nodes, from where their recent run began.
    fn send_push(&mut self, peer: SocketAddr) {
        let mut budget = self.budget();
        let most = budget.remaining() / delta::MIN_USEFUL_DELTA;
        let plans = self.recent_plans(self.table.recent_first_since(None, most));
        if plans.is_empty() {
            return;
        }
        let (deltas, _) = delta::pack(&self.table, plans, &mut budget);
        if !deltas.is_empty() {
            self.send(
                peer,
                Body::Push(v1::Push { deltas, want_ack: false, summary: None, data_summary: None }),
            );
        }
    }

    /// Applies the peer's winning membership claims, and returns ours that win over the
    /// peer's (to send with the reply), after taking their room from `budget`.
    fn settle_claims(
        &mut self,
        comparison: &mut Comparison,
        source: Source<'_>,
        budget: &mut Budget,
    ) -> Vec<v1::MembershipUpdate> {
        for claim in std::mem::take(&mut comparison.claims) {
            self.apply_claim(claim, source, ClaimKind::News);
        }
        let mut tell = Vec::new();
        for index in std::mem::take(&mut comparison.tell) {
            let Some(claim) = self.claim_about(index) else { continue };
            let update = claim.to_wire();
            if !budget.take(membership_field_len(prost::Message::encoded_len(&update))) {
                break;
            }
            tell.push(update);
        }
        tell
    }

    /// A peer opened an exchange: unless our summaries agree, apply the fresh news it
    /// pushed, then answer.
    pub(crate) fn on_syn(&mut self, from: SocketAddr, source: Source<'_>, syn: Syn) {
        let theirs = crate::summary::DigestSummary::from_wire(syn.summary.as_ref());
        if theirs == Some(self.table.summary()) {
            // Its pushed deltas, if any, are already known.
            self.out.metrics.exchanges_in_sync += 1;
            return;
        }
        self.out.metrics.exchanges_out_of_sync += 1;
        self.mark_out_of_sync();
        // First, so that the comparison below sees what they brought.
        self.apply_deltas(syn.deltas, source);
        let push_pull = syn.mode != ExchangeMode::Pull;
        let mut comparison = self.compare_digest(&syn.digest, source);
        let mut budget = self.budget();
        let tell = self.settle_claims(&mut comparison, source, &mut budget);
        let mut digest = Vec::new();
        if push_pull {
            // Room for what we lack, but at most a third: the deltas matter more.
            let mut share = budget.share(1, 3);
            let before = share.remaining();
            digest::push_entries(comparison.behind, &mut share, &mut digest);
            budget.settle(before, share.remaining());
        }
        let mut plans = delta::by_need(comparison.deltas, &mut self.rng);
        // Our recent changes the initiator did not mention: its summary differs, so it most
        // likely lacks them; sending them now saves the Ack2 / DeltaReply round trip. Only as
        // many as could fit are sorted: under write load every node is recent, and sorting
        // them all on every Syn took a tenth of a loaded 500-node process's CPU.
        let most = budget.remaining() / delta::MIN_USEFUL_DELTA + comparison.mentioned.len();
        for index in self.table.recent_first_since(None, most) {
            if comparison.mentioned.contains(&index) {
                continue;
            }
            let Some((_, replica)) = self.table.get(index) else { continue };
            let from = replica.recent_base();
            if let Some(missing) = replica.max_version.checked_sub(from).filter(|m| *m > 0) {
                plans.push(DeltaPlan { index, from, reset: false, missing });
            }
        }
        let (deltas, _) = delta::pack(&self.table, plans, &mut budget);
        // The bucket sums serve a peer that knows other nodes than we do (its summary counts
        // another number): the nodes of the buckets that differ, from a random one on, name
        // what it lacks, at most half the room, as the rotating window would take. Not when
        // only versions or states differ: every state they carry that the initiator lacks
        // becomes news it passes on, and at 1,000 nodes on two cores that churn of
        // suspicions and refutations fed itself. Not when most buckets differ either: that
        // would be no better than the window.
        let other_nodes = theirs.is_some_and(|theirs| theirs.nodes != self.table.summary().nodes);
        let few_differ = |mask: &u64| *mask != 0 && mask.count_ones() as usize <= BUCKETS / 2;
        let mask = other_nodes.then(|| self.table.differing_buckets(&syn.bucket_sums)).flatten();
        if let Some(mask) = mask.filter(few_differ) {
            let start = self.rng.random_range(0..self.table.len());
            let mut share = budget.share(1, 2);
            let before = share.remaining();
            let candidates = self.table.in_buckets(mask, start);
            digest::push_indexes(&self.table, candidates, &mut comparison.mentioned, &mut share, &mut digest);
            budget.settle(before, share.remaining());
        }
        digest::push_window(
            &mut self.table,
            &comparison.mentioned,
            RecentPart::ALL,
            true,
            &mut budget,
            &mut digest,
        );
        if deltas.is_empty() && digest.is_empty() && tell.is_empty() {
            return;
        }
        self.send_with_claims(from, Body::SynAck(v1::SynAck { deltas, digest }), None, tell);
    }

    /// The peer answered our `Syn`: apply what it sent, then send what it lacks and ask
    /// for what we lack.
    pub(crate) fn on_syn_ack(&mut self, from: SocketAddr, source: Source<'_>, syn_ack: SynAck) {
        self.mark_out_of_sync();
        self.apply_deltas(syn_ack.deltas, source);
        let mut comparison = self.compare_digest(&syn_ack.digest, source);
        let mut budget = self.budget();
        let tell = self.settle_claims(&mut comparison, source, &mut budget);
        let mut request = Vec::new();
        digest::push_entries(comparison.behind, &mut budget, &mut request);
        let deltas = if self.config.mode != AntiEntropyMode::Pull {
            let plans = delta::by_need(comparison.deltas, &mut self.rng);
            delta::pack(&self.table, plans, &mut budget).0
        } else {
            Vec::new()
        };
        if deltas.is_empty() && request.is_empty() && tell.is_empty() {
            return;
        }
        self.send_with_claims(from, Body::Ack2(v1::Ack2 { deltas, request }), None, tell);
    }

    /// The last step of an exchange we answered: apply, then send what was requested.
    pub(crate) fn on_ack2(&mut self, from: SocketAddr, source: Source<'_>, ack2: Ack2) {
        self.apply_deltas(ack2.deltas, source);
        let mut comparison = self.compare_digest(&ack2.request, source);
        let mut budget = self.budget();
        let tell = self.settle_claims(&mut comparison, source, &mut budget);
        let plans = delta::by_need(comparison.deltas, &mut self.rng);
        let (deltas, _) = delta::pack(&self.table, plans, &mut budget);
        if !deltas.is_empty() || !tell.is_empty() {
            self.send_with_claims(from, Body::DeltaReply(v1::DeltaReply { deltas }), None, tell);
        }
    }

    /// Compares a peer's digest entries (passed on by `source`) with our table, and heals
    /// when one offers our own table at a version or generation we never had.
    pub(crate) fn compare_digest(
        &mut self,
        entries: &[crate::message::ReceivedDigestEntry],
        source: Source<'_>,
    ) -> Comparison {
        let limits = digest::Limits {
            max_nodes: self.config.max_nodes,
            max_version_jump: self.config.max_version_jump,
        };
        let comparison = digest::compare(&self.table, entries, limits, source, &mut self.out.metrics);
        if let Some((generation, max_version)) = comparison.own_ahead {
            self.heal_if_ahead_of_us(generation, max_version);
        }
        let events = &mut self.out.events;
        for &(index, version) in &comparison.advertised {
            self.table.modify(index, |owner, replica| {
                let first_hand = source.is_first_hand(owner.name);
                replica.note_advertised(owner.name, version, first_hand, events);
            });
        }
        comparison
    }
}
