//! Property tests: push-sum mass is conserved under any interleaving of rounds, deliveries,
//! duplicates and losses, and every node's estimate tends to the truth once transfers get
//! through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gossip_proto::v1;
use proptest::collection::vec;
use proptest::prelude::*;

use super::state::{Aggregation, Mass, Peer};
use crate::config::AggregationConfig;

const NAME: &str = "load";

/// A datagram in flight between two of the test's nodes.
#[derive(Debug, Clone)]
enum Wire {
    Transfer { from: usize, to: usize, transfer: v1::AggregateTransfer },
    Ack { from: usize, to: usize, ack: v1::AggregateAck },
}

/// What the scheduler does next.
#[derive(Debug, Clone)]
enum Step {
    /// Node `node` runs a round, giving half its mass to `target` (or only resending).
    Round { node: usize, target: Option<usize> },
    /// Delivers the datagram at this position of the network.
    Deliver(prop::sample::Index),
    /// Delivers it and keeps a copy in flight.
    Duplicate(prop::sample::Index),
    /// Loses it.
    Lose(prop::sample::Index),
}

fn step(nodes: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..nodes, prop::option::weighted(0.8, 0..nodes))
            .prop_map(|(node, target)| Step::Round { node, target }),
        4 => any::<prop::sample::Index>().prop_map(Step::Deliver),
        1 => any::<prop::sample::Index>().prop_map(Step::Duplicate),
        1 => any::<prop::sample::Index>().prop_map(Step::Lose),
    ]
}

fn name(node: usize) -> String {
    format!("n{node}")
}

fn address(node: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, node as u8], 7946))
}

fn node_of(to: SocketAddr) -> usize {
    match to {
        SocketAddr::V4(v4) => usize::from(v4.ip().octets()[3]),
        SocketAddr::V6(_) => unreachable!("the test uses IPv4 only"),
    }
}

/// A few nodes exchanging push-sum transfers through a network the test controls.
struct Cluster {
    nodes: Vec<Aggregation>,
    network: Vec<Wire>,
    now: Instant,
    /// The mass every node brought in.
    initial: Mass,
}

impl Cluster {
    fn new(values: &[f64]) -> Self {
        #[allow(clippy::disallowed_methods)] // only differences of instants matter
        let now = Instant::now();
        let config = AggregationConfig { max_resends_per_round: 8, ..AggregationConfig::lan() };
        let mut nodes = Vec::new();
        let mut initial = Mass::default();
        for (index, value) in values.iter().enumerate() {
            let mut node = Aggregation::new(config.clone(), 16, now);
            // Node 0 leads: it brings the total weight.
            node.start_epoch(1, index == 0);
            node.contribute(NAME, *value);
            initial = initial.plus(node.held_mass(NAME));
            nodes.push(node);
        }
        Self { nodes, network: Vec::new(), now, initial }
    }

    fn run(&mut self, step: &Step) {
        self.now += Duration::from_millis(10);
        match step {
            Step::Round { node, target } => {
                let target = target.filter(|t| t != node).map(|t| Peer {
                    name: Arc::from(name(t)),
                    generation: 1,
                    address: address(t),
                });
                for (to, transfer) in self.nodes[*node].round(target, self.now) {
                    self.network.push(Wire::Transfer { from: *node, to: node_of(to), transfer });
                }
            }
            Step::Deliver(index) | Step::Duplicate(index) | Step::Lose(index) => {
                if self.network.is_empty() {
                    return;
                }
                let at = index.index(self.network.len());
                let wire = match step {
                    Step::Duplicate(_) => self.network[at].clone(),
                    _ => self.network.swap_remove(at),
                };
                if !matches!(step, Step::Lose(_)) {
                    self.deliver(wire);
                }
            }
        }
    }

    fn deliver(&mut self, wire: Wire) {
        match wire {
            Wire::Transfer { from, to, transfer } => {
                if let Ok(ack) = self.nodes[to].receive(&name(from), 1, &transfer) {
                    self.network.push(Wire::Ack { from: to, to: from, ack });
                }
            }
            Wire::Ack { from, to, ack } => self.nodes[to].acknowledged(&name(from), 1, &ack),
        }
    }

    /// Mass held by the nodes plus mass given but not yet applied by its receiver.
    fn total(&self) -> Mass {
        let mut total = Mass::default();
        for (i, node) in self.nodes.iter().enumerate() {
            total = total.plus(node.held_mass(NAME));
            for (j, peer) in self.nodes.iter().enumerate() {
                let in_flight = node.given_to(&name(j), NAME).minus(peer.received_from(&name(i), NAME));
                total = total.plus(in_flight);
            }
        }
        total
    }

    fn held(&self) -> Mass {
        self.nodes.iter().fold(Mass::default(), |sum, node| sum.plus(node.held_mass(NAME)))
    }

    /// Delivers everything, and lets every node resend until every transfer is acknowledged.
    fn settle(&mut self) {
        for _ in 0..20 {
            while let Some(wire) = self.network.pop() {
                self.deliver(wire);
            }
            for node in 0..self.nodes.len() {
                self.run(&Step::Round { node, target: None });
            }
            if self.network.is_empty() {
                return;
            }
        }
    }
}

fn assert_close(a: Mass, b: Mass, what: &str) -> Result<(), TestCaseError> {
    let pairs = [
        (a.average_value, b.average_value),
        (a.average_weight, b.average_weight),
        (a.sum_value, b.sum_value),
        (a.count_value, b.count_value),
        (a.total_weight, b.total_weight),
    ];
    for (x, y) in pairs {
        prop_assert!((x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs())), "{what}: {a:?} != {b:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the network does, held plus in-flight mass stays what the nodes brought in,
    /// and once everything is delivered and acknowledged the nodes hold all of it.
    #[test]
    fn mass_is_conserved_under_loss_duplication_and_reordering(
        values in vec(-1e3..1e3f64, 2..6),
        steps in vec(step(6), 0..300),
    ) {
        let mut cluster = Cluster::new(&values);
        let n = values.len();
        for step in &steps {
            let step = match step {
                Step::Round { node, target } => Step::Round { node: node % n, target: target.map(|t| t % n) },
                other => other.clone(),
            };
            cluster.run(&step);
            assert_close(cluster.total(), cluster.initial, "held + in flight")?;
        }
        cluster.settle();
        prop_assert!(cluster.network.is_empty(), "every transfer acknowledged");
        assert_close(cluster.held(), cluster.initial, "held after settling")?;
    }

    /// With a lossy, duplicating network the estimates still reach the true average, sum and
    /// count: loss delays push-sum here but does not bias it.
    #[test]
    fn estimates_converge_despite_loss(values in vec(0.0..100.0f64, 2..6), seed in any::<u64>()) {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut cluster = Cluster::new(&values);
        let n = values.len();
        for _ in 0..400 {
            let node = rng.random_range(0..n);
            let target = (node + rng.random_range(1..n)) % n;
            cluster.run(&Step::Round { node, target: Some(target) });
            let mut flight = std::mem::take(&mut cluster.network);
            for wire in flight.drain(..) {
                let roll: f64 = rng.random();
                if roll < 0.3 {
                    continue; // lost
                }
                if roll < 0.4 {
                    cluster.deliver(wire.clone()); // duplicated
                }
                cluster.deliver(wire);
            }
        }
        cluster.settle();
        let average = values.iter().sum::<f64>() / n as f64;
        for node in &cluster.nodes {
            let estimate = node.running(NAME).expect("every node holds the aggregate");
            let close = |x: Option<f64>, truth: f64| x.is_some_and(|x| (x - truth).abs() <= 1e-6 * truth.abs().max(1.0));
            prop_assert!(close(estimate.average, average), "average {:?} vs {average}", estimate.average);
            prop_assert!(close(estimate.sum, average * n as f64), "sum {:?}", estimate.sum);
            prop_assert!(close(estimate.count, n as f64), "count {:?}", estimate.count);
            let (min, max) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            prop_assert_eq!(estimate.min, Some(min));
            prop_assert_eq!(estimate.max, Some(max));
        }
    }
}

#[test]
fn a_transfer_whose_weights_shrink_is_refused_and_changes_nothing() {
    let mut cluster = Cluster::new(&[1.0, 2.0]);
    cluster.run(&Step::Round { node: 0, target: Some(1) });
    let Some(Wire::Transfer { transfer, .. }) = cluster.network.pop() else { panic!("a transfer") };
    assert!(cluster.nodes[1].receive("n0", 1, &transfer).is_ok());
    let before = cluster.nodes[1].held_mass(NAME);
    let mut shrunk = transfer.clone();
    shrunk.sequence += 1;
    shrunk.shares[0].average_weight /= 2.0;
    assert!(cluster.nodes[1].receive("n0", 1, &shrunk).is_err());
    assert_eq!(cluster.nodes[1].held_mass(NAME), before);
}

#[test]
fn a_new_epoch_starts_again_from_own_values() {
    let mut cluster = Cluster::new(&[1.0, 3.0]);
    cluster.run(&Step::Round { node: 0, target: Some(1) });
    cluster.settle();
    let settled = cluster.nodes[1].start_epoch(2, false);
    assert_eq!(settled.len(), 1, "the finished epoch's estimate is reported");
    assert_eq!(cluster.nodes[1].settled(NAME).map(|e| e.epoch), Some(1));
    assert_eq!(cluster.nodes[1].running(NAME).and_then(|e| e.average), Some(3.0), "own value only");
    assert_eq!(cluster.nodes[1].running(NAME).and_then(|e| e.count), None, "no total weight yet");
}

#[test]
fn a_restarted_sender_numbers_its_transfers_afresh_and_they_are_applied() {
    let mut cluster = Cluster::new(&[1.0, 2.0]);
    for _ in 0..3 {
        cluster.run(&Step::Round { node: 0, target: Some(1) });
    }
    let Some(Wire::Transfer { transfer: third, .. }) = cluster.network.pop() else { panic!("a transfer") };
    assert_eq!(third.sequence, 3);
    assert!(cluster.nodes[1].receive("n0", 1, &third).is_ok());
    // n0 restarts under generation 2: its first transfer is number 1 again.
    let mut first = third.clone();
    first.sequence = 1;
    first.shares[0].average_value = 4.0;
    first.shares[0].average_weight = 0.5;
    let before = cluster.nodes[1].held_mass(NAME);
    let ack = cluster.nodes[1].receive("n0", 2, &first).expect("applied");
    assert_eq!(ack.sequence, 1);
    let after = cluster.nodes[1].held_mass(NAME);
    assert_eq!(after.average_weight - before.average_weight, 0.5, "all of it is new");
    assert_eq!(after.average_value - before.average_value, 4.0);
}
