//! The simulated network: the link model of every directed link, partitions, and the fate of
//! each datagram (lost, delivered once, delivered twice, and when).
//!
//! Loss, latency and duplication are decided when a datagram is sent; partitions are checked
//! when it would arrive, so a partition that starts while a datagram is in flight drops it.

use std::time::Duration;

use rand::RngExt;
use rand_core::Rng;

use crate::sim::FixedHashMap;
use crate::sim::link::{LinkModel, Loss};

/// Identifies a cut made by [`crate::sim::Simulation::partition`] or
/// [`crate::sim::Simulation::cut_one_way`], to heal it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CutId(pub(crate) u64);

/// A set of node indexes as a bitmap: constant-time membership at any cluster size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeSet {
    words: Vec<u64>,
}

impl NodeSet {
    pub(crate) fn contains(&self, node: usize) -> bool {
        self.words.get(node / 64).is_some_and(|word| word & (1 << (node % 64)) != 0)
    }

    pub(crate) fn insert(&mut self, node: usize) {
        if self.words.len() <= node / 64 {
            self.words.resize(node / 64 + 1, 0);
        }
        self.words[node / 64] |= 1 << (node % 64);
    }
}

impl FromIterator<usize> for NodeSet {
    fn from_iter<I: IntoIterator<Item = usize>>(nodes: I) -> Self {
        let mut set = Self::default();
        for node in nodes {
            set.insert(node);
        }
        set
    }
}

/// Datagrams from `from` to `to` are dropped.
#[derive(Debug, Clone)]
struct Cut {
    id: CutId,
    from: NodeSet,
    to: NodeSet,
}

/// What happens to one datagram at send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Lost on the link.
    Lost,
    /// Arrives after this latency, and a duplicate after the second one if any.
    Arrives(Duration, Option<Duration>),
}

/// Link models, per-link state and cuts.
#[derive(Debug)]
pub(crate) struct Network {
    default: LinkModel,
    /// Links whose model differs from the default, by (from, to).
    links: FixedHashMap<(u32, u32), LinkModel>,
    /// Gilbert-Elliott state (`true` = bad) of the links that use bursty loss.
    bursts: FixedHashMap<(u32, u32), bool>,
    cuts: Vec<Cut>,
    next_cut: u64,
}

impl Network {
    pub(crate) fn new(default: LinkModel) -> Self {
        Self {
            default,
            links: FixedHashMap::default(),
            bursts: FixedHashMap::default(),
            cuts: Vec::new(),
            next_cut: 0,
        }
    }

    /// The model of the link from `from` to `to`.
    pub(crate) fn link(&self, from: usize, to: usize) -> &LinkModel {
        if self.links.is_empty() {
            return &self.default;
        }
        self.links.get(&(from as u32, to as u32)).unwrap_or(&self.default)
    }

    pub(crate) fn set_default(&mut self, model: LinkModel) {
        self.default = model;
    }

    pub(crate) fn set_link(&mut self, from: usize, to: usize, model: LinkModel) {
        self.links.insert((from as u32, to as u32), model);
    }

    /// Decides the fate of a datagram sent now from `from` to `to`.
    pub(crate) fn send<R: Rng>(&mut self, from: usize, to: usize, rng: &mut R) -> Fate {
        let model = *self.link(from, to);
        let lost = match model.loss {
            Loss::None => false,
            Loss::Independent(p) => rng.random::<f64>() < p,
            Loss::Bursty(ge) => ge.lose(self.bursts.entry((from as u32, to as u32)).or_default(), rng),
        };
        if lost {
            return Fate::Lost;
        }
        let first = model.latency.sample(rng);
        let second = (model.duplicate > 0.0 && rng.random::<f64>() < model.duplicate)
            .then(|| model.latency.sample(rng));
        Fate::Arrives(first, second)
    }

    /// Whether a cut blocks datagrams from `from` to `to` now.
    pub(crate) fn blocked(&self, from: usize, to: usize) -> bool {
        self.cuts.iter().any(|cut| cut.from.contains(from) && cut.to.contains(to))
    }

    /// Drops every datagram from a node of `from` to a node of `to` until healed.
    pub(crate) fn cut(&mut self, from: NodeSet, to: NodeSet) -> CutId {
        self.next_cut += 1;
        let id = CutId(self.next_cut);
        self.cuts.push(Cut { id, from, to });
        id
    }

    /// Removes every cut made under `id`; returns whether there was one.
    pub(crate) fn heal(&mut self, id: CutId) -> bool {
        let before = self.cuts.len();
        self.cuts.retain(|cut| cut.id != id);
        self.cuts.len() != before
    }

    pub(crate) fn heal_all(&mut self) {
        self.cuts.clear();
    }

    /// A symmetric partition between `a` and `b` is two cuts under one id.
    pub(crate) fn partition(&mut self, a: NodeSet, b: NodeSet) -> CutId {
        let id = self.cut(a.clone(), b.clone());
        self.cuts.push(Cut { id, from: b, to: a });
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    #[test]
    fn cuts_block_one_way_and_partitions_both_ways() {
        let mut network = Network::new(LinkModel::default());
        let one_way = network.cut([0, 1].into_iter().collect(), [2].into_iter().collect());
        assert!(network.blocked(0, 2) && network.blocked(1, 2));
        assert!(!network.blocked(2, 0) && !network.blocked(0, 1));
        let both = network.partition([0].into_iter().collect(), [3, 200].into_iter().collect());
        assert!(network.blocked(0, 200) && network.blocked(200, 0) && network.blocked(3, 0));
        assert!(network.heal(one_way));
        assert!(!network.blocked(0, 2));
        assert!(network.heal(both) && !network.heal(both));
        assert!(!network.blocked(0, 200));
    }

    #[test]
    fn loss_and_duplication_follow_the_link_model() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut network = Network::new(LinkModel::default().with_loss(0.25).with_duplication(0.5));
        let fates: Vec<Fate> = (0..20_000).map(|_| network.send(0, 1, &mut rng)).collect();
        let lost = fates.iter().filter(|f| **f == Fate::Lost).count() as f64 / 20_000.0;
        let twice = fates.iter().filter(|f| matches!(f, Fate::Arrives(_, Some(_)))).count() as f64 / 20_000.0;
        assert!((lost - 0.25).abs() < 0.02, "lost {lost}");
        assert!((twice - 0.375).abs() < 0.02, "duplicated {twice}");
        network.set_link(0, 1, LinkModel::fixed(Duration::from_millis(7)));
        assert_eq!(network.send(0, 1, &mut rng), Fate::Arrives(Duration::from_millis(7), None));
    }
}
