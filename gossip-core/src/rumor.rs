//! Rumor mongering (Demers et al., 1987): a write, or a delta that was news, becomes a hot
//! rumor that the node pushes to `fanout` random peers every round, least-sent first. A peer
//! that already knew it says so (a `PushAck`), and by the feedback rule the rumor cools:
//! after `k` such contacts (counter) or with probability 1/k on each (coin). Anti-entropy
//! stays the backstop for the few nodes a rumor misses.
//!
//! News is also forwarded as it arrives (`rumor_forward_delay` after, batched, in
//! `rumor_forwards` successive forwards), so that a rumor's hops take milliseconds rather
//! than a round each; the rounds then push it on to the few the forwards missed.

use std::net::SocketAddr;
use std::time::Instant;

use rand::RngExt;
use rand_core::Rng;

use crate::config::RumorRule;
use crate::delta::DeltaPlan;
use crate::summary::DigestSummary;

mod run;

/// One hot rumor: the run `(from, to]` of a node's versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rumor {
    /// The node, by table index.
    index: usize,
    generation: u64,
    from: u64,
    to: u64,
    /// Pushes that carried it.
    sent: u32,
    /// Contacts that already knew it.
    known: u32,
    /// How many times it went out to `fanout` peers since it last became hot (forwarded, or
    /// pushed by a round).
    forwards: u32,
}

/// The hot rumors of one node, at most `capacity`.
#[derive(Debug)]
pub(crate) struct Rumors {
    hot: Vec<Rumor>,
    capacity: usize,
    /// The peers of the latest rumor round whose push is unanswered: only they may answer
    /// that they are in sync, once each.
    pushed_to: Vec<SocketAddr>,
    /// The digest summary the latest round's pushes carried.
    pushed_summary: Option<DigestSummary>,
    /// When the news not yet forwarded goes out; `None` when none waits.
    forward_due: Option<Instant>,
}

impl Rumors {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { hot: Vec::new(), capacity, pushed_to: Vec::new(), pushed_summary: None, forward_due: None }
    }

    /// A rumor round starts, its pushes carrying `summary`: the previous round's pushes can
    /// no longer be answered in sync.
    pub(crate) fn start_round(&mut self, summary: DigestSummary) {
        self.pushed_to.clear();
        self.pushed_summary = Some(summary);
    }

    /// The digest summary the latest round's pushes carried.
    pub(crate) fn pushed_summary(&self) -> Option<DigestSummary> {
        self.pushed_summary
    }

    /// A push went to `peer` in this round.
    pub(crate) fn note_pushed(&mut self, peer: SocketAddr) {
        self.pushed_to.push(peer);
    }

    /// `peer` answered a push of this round that it holds everything we hold: every hot
    /// rumor met a contact that knew it (the feedback rule applies to each). Returns how
    /// many cooled, or `None` when `peer` has no push of this round to answer.
    pub(crate) fn peer_in_sync<R: Rng>(
        &mut self,
        peer: SocketAddr,
        rule: RumorRule,
        k: u32,
        rng: &mut R,
    ) -> Option<usize> {
        let at = self.pushed_to.iter().position(|p| *p == peer)?;
        self.pushed_to.swap_remove(at);
        let before = self.hot.len();
        self.hot.retain_mut(|rumor| {
            rumor.known += 1;
            keeps_spreading(rumor, rule, k, rng)
        });
        Some(before - self.hot.len())
    }

    pub(crate) fn len(&self) -> usize {
        self.hot.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.hot.is_empty()
    }

    /// Makes the run `(from, to]` of a node hot. A run that extends a hot rumor of the same
    /// generation merges with it and starts afresh. Returns `true` when the table was full and
    /// the most-sent rumor was dropped to make room.
    pub(crate) fn heat(&mut self, index: usize, generation: u64, from: u64, to: u64) -> bool {
        if let Some(rumor) = self.hot.iter_mut().find(|r| r.index == index) {
            let from =
                if rumor.generation == generation && rumor.to >= from { rumor.from.min(from) } else { from };
            *rumor = Rumor { index, generation, from, to: to.max(from), sent: 0, known: 0, forwards: 0 };
            return false;
        }
        let mut dropped = false;
        if self.hot.len() >= self.capacity {
            if let Some(most_sent) = (0..self.hot.len()).max_by_key(|&i| self.hot[i].sent) {
                self.hot.swap_remove(most_sent);
                dropped = true;
            }
        }
        self.hot.push(Rumor { index, generation, from, to, sent: 0, known: 0, forwards: 0 });
        dropped
    }

    /// The deltas to push, least-sent first.
    pub(crate) fn plans(&self) -> Vec<DeltaPlan> {
        plans_of(self.hot.iter())
    }

    /// The deltas of the news that went out fewer than `times` times, least-sent first.
    pub(crate) fn unforwarded_plans(&self, times: u32) -> Vec<DeltaPlan> {
        plans_of(self.hot.iter().filter(|rumor| rumor.forwards < times))
    }

    /// Whether some news went out fewer than `times` times.
    pub(crate) fn has_unforwarded(&self, times: u32) -> bool {
        self.hot.iter().any(|rumor| rumor.forwards < times)
    }

    /// When the news not yet forwarded goes out.
    pub(crate) fn forward_due(&self) -> Option<Instant> {
        self.forward_due
    }

    /// Sets (or clears) when the news not yet forwarded goes out.
    pub(crate) fn set_forward_due(&mut self, due: Option<Instant>) {
        self.forward_due = due;
    }

    /// Counts a push of the rumors of these nodes.
    pub(crate) fn mark_sent(&mut self, indexes: &[usize]) {
        for rumor in self.hot.iter_mut().filter(|r| indexes.contains(&r.index)) {
            rumor.sent += 1;
        }
    }

    /// The rumors of these nodes went to `fanout` peers (forwarded, or pushed by a round).
    pub(crate) fn mark_forwarded(&mut self, indexes: &[usize]) {
        for rumor in self.hot.iter_mut().filter(|r| indexes.contains(&r.index)) {
            rumor.forwards = rumor.forwards.saturating_add(1);
        }
    }

    /// The rumors of these nodes are not forwarded any more (the rounds carry them).
    pub(crate) fn stop_forwarding(&mut self, indexes: &[usize]) {
        for rumor in self.hot.iter_mut().filter(|r| indexes.contains(&r.index)) {
            rumor.forwards = u32::MAX;
        }
    }

    /// A peer already knew node `index` up to `known_max` in `generation`: apply the feedback
    /// rule to the rumors that covers. Returns how many cooled.
    pub(crate) fn feedback<R: Rng>(
        &mut self,
        index: usize,
        generation: u64,
        known_max: u64,
        rule: RumorRule,
        k: u32,
        rng: &mut R,
    ) -> usize {
        let before = self.hot.len();
        self.hot.retain_mut(|rumor| {
            if rumor.index != index || rumor.generation != generation || rumor.to > known_max {
                return true;
            }
            rumor.known += 1;
            keeps_spreading(rumor, rule, k, rng)
        });
        before - self.hot.len()
    }

    /// The node at table index `from` moved to `to`.
    pub(crate) fn reindex(&mut self, from: usize, to: usize) {
        for rumor in self.hot.iter_mut().filter(|r| r.index == from) {
            rumor.index = to;
        }
    }

    /// Drops the rumors of a node (it restarted or was forgotten).
    pub(crate) fn forget(&mut self, index: usize) {
        self.hot.retain(|rumor| rumor.index != index);
    }
}

/// The deltas of `rumors`, least-sent first.
fn plans_of<'a>(rumors: impl Iterator<Item = &'a Rumor>) -> Vec<DeltaPlan> {
    let mut hot: Vec<&Rumor> = rumors.collect();
    hot.sort_by_key(|rumor| rumor.sent);
    hot.iter()
        .map(|r| DeltaPlan { index: r.index, from: r.from, reset: false, missing: r.to - r.from })
        .collect()
}

/// The feedback rule, after a contact that knew `rumor`: whether it stays hot.
fn keeps_spreading<R: Rng>(rumor: &Rumor, rule: RumorRule, k: u32, rng: &mut R) -> bool {
    match rule {
        RumorRule::Counter => rumor.known < k,
        RumorRule::Coin => !rng.random_ratio(1, k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    #[test]
    fn counter_rule_cools_after_k_contacts_that_knew() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut rumors = Rumors::new(8);
        rumors.heat(3, 1, 4, 5);
        assert_eq!(rumors.feedback(3, 1, 4, RumorRule::Counter, 2, &mut rng), 0, "peer behind: not feedback");
        assert_eq!(rumors.feedback(3, 1, 5, RumorRule::Counter, 2, &mut rng), 0);
        assert!(!rumors.is_empty());
        assert_eq!(rumors.feedback(3, 1, 9, RumorRule::Counter, 2, &mut rng), 1);
        assert!(rumors.is_empty());
    }

    #[test]
    fn an_in_sync_answer_counts_for_every_rumor_once_per_push() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let peer: SocketAddr = "10.0.0.2:7946".parse().unwrap();
        let stranger: SocketAddr = "10.0.0.9:7946".parse().unwrap();
        let mut rumors = Rumors::new(8);
        rumors.heat(1, 1, 0, 1);
        rumors.heat(2, 1, 0, 1);
        let summary = DigestSummary::default();
        rumors.start_round(summary);
        rumors.note_pushed(peer);
        assert_eq!(rumors.peer_in_sync(stranger, RumorRule::Counter, 2, &mut rng), None);
        assert_eq!(rumors.peer_in_sync(peer, RumorRule::Counter, 2, &mut rng), Some(0), "one contact of two");
        assert_eq!(rumors.peer_in_sync(peer, RumorRule::Counter, 2, &mut rng), None, "its push was answered");
        assert_eq!(rumors.len(), 2);
        rumors.start_round(summary);
        rumors.note_pushed(peer);
        assert_eq!(rumors.peer_in_sync(peer, RumorRule::Counter, 2, &mut rng), Some(2), "both cool at k = 2");
        assert!(rumors.is_empty());
    }

    #[test]
    fn an_extending_run_merges_and_is_hot_again() {
        let mut rumors = Rumors::new(8);
        rumors.heat(1, 1, 0, 2);
        rumors.mark_sent(&[1]);
        rumors.heat(1, 1, 2, 3);
        let plans = rumors.plans();
        assert_eq!(plans.len(), 1);
        assert_eq!((plans[0].from, plans[0].missing), (0, 3));
    }

    #[test]
    fn a_full_table_drops_the_most_sent_rumor() {
        let mut rumors = Rumors::new(2);
        rumors.heat(1, 1, 0, 1);
        rumors.heat(2, 1, 0, 1);
        rumors.mark_sent(&[1]);
        assert!(rumors.heat(3, 1, 0, 1));
        let nodes: Vec<usize> = rumors.plans().iter().map(|p| p.index).collect();
        assert!(nodes.contains(&2) && nodes.contains(&3) && !nodes.contains(&1));
    }
}
