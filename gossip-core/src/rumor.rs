//! Rumor mongering (Demers et al., 1987): a write, or a delta that was news, becomes a hot
//! rumor that the node pushes to `fanout` random peers every round, least-sent first. A peer
//! that already knew it says so (a `PushAck`), and by the feedback rule the rumor cools:
//! after `k` such contacts (counter) or with probability 1/k on each (coin). Anti-entropy
//! stays the backstop for the few nodes a rumor misses.

use rand::RngExt;
use rand_core::Rng;

use crate::config::RumorRule;
use crate::delta::DeltaPlan;

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
}

/// The hot rumors of one node, at most `capacity`.
#[derive(Debug)]
pub(crate) struct Rumors {
    hot: Vec<Rumor>,
    capacity: usize,
}

impl Rumors {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { hot: Vec::new(), capacity }
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
            *rumor = Rumor { index, generation, from, to: to.max(from), sent: 0, known: 0 };
            return false;
        }
        let mut dropped = false;
        if self.hot.len() >= self.capacity {
            if let Some(most_sent) = (0..self.hot.len()).max_by_key(|&i| self.hot[i].sent) {
                self.hot.swap_remove(most_sent);
                dropped = true;
            }
        }
        self.hot.push(Rumor { index, generation, from, to, sent: 0, known: 0 });
        dropped
    }

    /// The deltas to push, least-sent first.
    pub(crate) fn plans(&self) -> Vec<DeltaPlan> {
        let mut hot = self.hot.clone();
        hot.sort_by_key(|rumor| rumor.sent);
        hot.iter()
            .map(|r| DeltaPlan { index: r.index, from: r.from, reset: false, missing: r.to - r.from })
            .collect()
    }

    /// Counts a push of the rumors of these nodes.
    pub(crate) fn mark_sent(&mut self, indexes: &[usize]) {
        for rumor in self.hot.iter_mut().filter(|r| indexes.contains(&r.index)) {
            rumor.sent += 1;
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
            match rule {
                RumorRule::Counter => rumor.known < k,
                RumorRule::Coin => !rng.random_ratio(1, k),
            }
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
