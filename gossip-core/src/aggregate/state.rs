//! The push-sum state of one node: mass per aggregate, cumulative transfers, epochs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use gossip_proto::v1;

use crate::config::AggregationConfig;

/// What a node knows of one aggregate at the end of an epoch (or so far in the current one).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AggregateEstimate {
    /// The epoch the estimate comes from.
    pub epoch: u64,
    /// The average of the contributions; `None` until some weight has reached this node.
    pub average: Option<f64>,
    /// The sum of the contributions; `None` until the leader's weight has reached this node.
    pub sum: Option<f64>,
    /// How many nodes contribute (the cluster-size estimate when every node contributes).
    pub count: Option<f64>,
    /// The smallest contribution heard of.
    pub min: Option<f64>,
    /// The largest contribution heard of.
    pub max: Option<f64>,
}

impl AggregateEstimate {
    /// Whether `self` differs from `other` by more than `threshold` (relative) in any figure,
    /// or has a figure `other` lacks.
    pub(crate) fn differs_from(&self, other: &Self, threshold: f64) -> bool {
        let pairs = [
            (self.average, other.average),
            (self.sum, other.sum),
            (self.count, other.count),
            (self.min, other.min),
            (self.max, other.max),
        ];
        pairs.iter().any(|pair| match *pair {
            (Some(a), Some(b)) => (a - b).abs() > threshold * a.abs().max(b.abs()),
            (None, None) => false,
            _ => true,
        })
    }
}

/// The largest contribution, in magnitude: sums over any cluster and epoch stay far from
/// `f64::MAX`.
pub(crate) const MAX_CONTRIBUTION: f64 = 1e100;

/// The largest number a transfer may carry, in magnitude: cumulative shares of contributions
/// within [`MAX_CONTRIBUTION`] stay far below it.
const MAX_TRANSFERRED: f64 = 1e110;

/// Below this weight a node has not really been reached by the weight yet: its ratio would be
/// dominated by rounding.
const MIN_WEIGHT: f64 = 1e-12;

/// Push-sum mass of one aggregate: the two instances' values and weights.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Mass {
    pub(crate) average_value: f64,
    pub(crate) average_weight: f64,
    pub(crate) sum_value: f64,
    pub(crate) count_value: f64,
    pub(crate) total_weight: f64,
}

impl Mass {
    /// The mass a contribution of `value` brings (the total weight comes from the leader).
    fn contribution(value: f64) -> Self {
        Self {
            average_value: value,
            average_weight: 1.0,
            sum_value: value,
            count_value: 1.0,
            total_weight: 0.0,
        }
    }

    fn map(self, f: impl Fn(f64) -> f64) -> Self {
        Self {
            average_value: f(self.average_value),
            average_weight: f(self.average_weight),
            sum_value: f(self.sum_value),
            count_value: f(self.count_value),
            total_weight: f(self.total_weight),
        }
    }

    fn zip(self, other: Self, f: impl Fn(f64, f64) -> f64) -> Self {
        Self {
            average_value: f(self.average_value, other.average_value),
            average_weight: f(self.average_weight, other.average_weight),
            sum_value: f(self.sum_value, other.sum_value),
            count_value: f(self.count_value, other.count_value),
            total_weight: f(self.total_weight, other.total_weight),
        }
    }

    pub(crate) fn plus(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b)
    }

    pub(crate) fn minus(self, other: Self) -> Self {
        self.zip(other, |a, b| a - b)
    }

    fn is_finite(self) -> bool {
        [self.average_value, self.average_weight, self.sum_value, self.count_value, self.total_weight]
            .iter()
            .all(|x| x.is_finite())
    }

    fn weights(self) -> [f64; 2] {
        [self.average_weight, self.total_weight]
    }

    fn from_wire(share: &v1::AggregateShare) -> Self {
        Self {
            average_value: share.average_value,
            average_weight: share.average_weight,
            sum_value: share.sum_value,
            count_value: share.count_value,
            total_weight: share.total_weight,
        }
    }
}

/// What a node holds of one aggregate in the current epoch.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    mass: Mass,
    min: Option<f64>,
    max: Option<f64>,
}

impl Held {
    fn see(&mut self, min: Option<f64>, max: Option<f64>) {
        self.min = fold(self.min, min, f64::min);
        self.max = fold(self.max, max, f64::max);
    }

    fn estimate(&self, epoch: u64) -> AggregateEstimate {
        let Mass { average_value, average_weight, sum_value, count_value, total_weight } = self.mass;
        let ratio = |value: f64, weight: f64| (weight > MIN_WEIGHT).then(|| value / weight);
        AggregateEstimate {
            epoch,
            average: ratio(average_value, average_weight),
            sum: ratio(sum_value, total_weight),
            count: ratio(count_value, total_weight),
            min: self.min,
            max: self.max,
        }
    }
}

fn fold(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

/// What this node has given one peer in the epoch.
#[derive(Debug, Clone)]
struct Outgoing {
    /// The peer's generation: a restarted peer knows nothing of what its predecessor got.
    generation: u64,
    address: SocketAddr,
    /// Sequence number of the latest transfer.
    sequence: u64,
    /// Highest sequence number the peer acknowledged.
    acked: u64,
    /// Cumulative mass given, per aggregate.
    given: BTreeMap<Arc<str>, Mass>,
    /// When the latest transfer (or resend) went out.
    sent_at: Instant,
}

/// What this node has applied from one peer in the epoch.
#[derive(Debug, Clone, Default)]
struct Incoming {
    /// The sender's generation: a restarted sender numbers its transfers from 1 again.
    generation: u64,
    sequence: u64,
    received: BTreeMap<Arc<str>, Mass>,
}

/// Why a transfer was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferRefusal {
    /// From an earlier epoch: the sender is told ours.
    StaleEpoch,
    /// Its cumulative weights went down: not from an honest sender.
    Shrank,
    /// A new sender while `max_nodes` senders are tracked this epoch.
    TooManyPeers,
    /// Applying it would take the mass held out of the finite numbers.
    Overflow,
}

/// The aggregation state of one node.
#[derive(Debug)]
pub(crate) struct Aggregation {
    config: AggregationConfig,
    epoch: u64,
    /// Rounds run in this epoch.
    rounds: u32,
    /// Whether this node brings the total weight this epoch; decided when it first holds
    /// an aggregate in the epoch.
    leads: Option<bool>,
    /// This node's contributions.
    own: BTreeMap<Arc<str>, f64>,
    /// The contributions already brought into this epoch's mass.
    injected: BTreeMap<Arc<str>, f64>,
    held: BTreeMap<Arc<str>, Held>,
    outgoing: BTreeMap<Arc<str>, Outgoing>,
    incoming: BTreeMap<Arc<str>, Incoming>,
    /// Estimates of the last finished epoch.
    settled: BTreeMap<Arc<str>, AggregateEstimate>,
    /// The last estimate reported by an event, per aggregate.
    reported: BTreeMap<Arc<str>, AggregateEstimate>,
    pub(crate) next_round: Instant,
    /// Most peers tracked on each side (`max_nodes`).
    max_peers: usize,
    /// Shares dropped because `max_aggregates` names were already held.
    pub(crate) names_over_cap: u64,
}

/// A transfer to send.
pub(crate) type Transfer = (SocketAddr, v1::AggregateTransfer);

/// A member this node exchanges mass with.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) name: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) address: SocketAddr,
}

impl Aggregation {
    pub(crate) fn new(config: AggregationConfig, max_peers: usize, next_round: Instant) -> Self {
        Self {
            config,
            epoch: 0,
            rounds: 0,
            leads: None,
            own: BTreeMap::new(),
            injected: BTreeMap::new(),
            held: BTreeMap::new(),
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            settled: BTreeMap::new(),
            reported: BTreeMap::new(),
            next_round,
            max_peers,
            names_over_cap: 0,
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether rounds should run: this node holds or contributes some aggregate.
    pub(crate) fn is_active(&self) -> bool {
        !self.held.is_empty() || !self.own.is_empty()
    }

    /// Whether the leadership of this epoch is still to be decided (with
    /// [`decide_leadership`](Self::decide_leadership)) before an aggregate is held.
    pub(crate) fn leadership_undecided(&self) -> bool {
        self.leads.is_none()
    }

    pub(crate) fn decide_leadership(&mut self, leads: bool) {
        self.leads.get_or_insert(leads);
    }

    pub(crate) fn contributes(&self, name: &str) -> bool {
        self.own.contains_key(name)
    }

    pub(crate) fn contributions(&self) -> usize {
        self.own.len()
    }

    pub(crate) fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Peers tracked this epoch, the larger of the two sides.
    pub(crate) fn peer_count(&self) -> usize {
        self.outgoing.len().max(self.incoming.len())
    }

    /// Sets this node's contribution to `name`. A new contribution joins the current
    /// epoch's mass at once; a changed one moves the values by the difference (the weights
    /// stay), so the running estimates follow without waiting for the next epoch.
    pub(crate) fn contribute(&mut self, name: &str, value: f64) {
        let name = self.own.get_key_value(name).map_or_else(|| Arc::from(name), |(name, _)| name.clone());
        self.own.insert(name.clone(), value);
        // When relayed names fill the table, our own value waits for the next epoch, which
        // holds our own names first.
        if !self.hold(&name) {
            return;
        }
        let Some(held) = self.held.get_mut(&name) else { return };
        match self.injected.insert(name, value) {
            Some(before) => {
                held.mass.average_value += value - before;
                held.mass.sum_value += value - before;
            }
            None => held.mass = held.mass.plus(Mass::contribution(value)),
        }
        held.see(Some(value), Some(value));
    }

    /// Stops contributing to `name` from the next epoch on (taking a weight back out now
    /// could leave a node with a negative weight).
    pub(crate) fn withdraw(&mut self, name: &str) -> bool {
        self.own.remove(name).is_some()
    }

    pub(crate) fn settled(&self, name: &str) -> Option<AggregateEstimate> {
        self.settled.get(name).copied()
    }

    pub(crate) fn running(&self, name: &str) -> Option<AggregateEstimate> {
        self.held.get(name).map(|held| held.estimate(self.epoch))
    }

    /// Counts a round; `true` when the epoch is over.
    pub(crate) fn count_round(&mut self) -> bool {
        self.rounds += 1;
        self.rounds >= self.config.epoch_rounds
    }

    /// Ends the current epoch and starts `epoch` from this node's own contributions.
    /// Returns the estimates that changed by more than the threshold since last reported.
    pub(crate) fn start_epoch(&mut self, epoch: u64, leads: bool) -> Vec<(Arc<str>, AggregateEstimate)> {
        self.leads = Some(leads);
        let mut changed = Vec::new();
        for (name, held) in &self.held {
            let estimate = held.estimate(self.epoch);
            self.settled.insert(name.clone(), estimate);
            let report = self
                .reported
                .get(name)
                .is_none_or(|last| estimate.differs_from(last, self.config.change_threshold));
            if report {
                self.reported.insert(name.clone(), estimate);
                changed.push((name.clone(), estimate));
            }
        }
        // Settled estimates of aggregates nobody holds any more go with them.
        let held = &self.held;
        self.settled.retain(|name, _| held.contains_key(name));
        self.reported.retain(|name, _| held.contains_key(name));
        self.epoch = epoch;
        self.rounds = 0;
        self.held.clear();
        self.injected.clear();
        self.outgoing.clear();
        self.incoming.clear();
        let own: Vec<(Arc<str>, f64)> = self.own.iter().map(|(name, value)| (name.clone(), *value)).collect();
        for (name, value) in own {
            self.contribute(&name, value);
        }
        changed
    }

    /// Starts holding `name` (with the total weight if this node leads); `false` when
    /// `max_aggregates` names are held already.
    fn hold(&mut self, name: &Arc<str>) -> bool {
        if self.held.contains_key(name) {
            return true;
        }
        if self.held.len() >= self.config.max_aggregates {
            self.names_over_cap += 1;
            return false;
        }
        let mut held = Held::default();
        if self.leads == Some(true) {
            held.mass.total_weight = 1.0;
        }
        self.held.insert(name.clone(), held);
        true
    }

    /// One round: half of every aggregate's mass to `target` (when there is one), and
    /// resends to peers whose transfers of an earlier round are unacknowledged.
    pub(crate) fn round(&mut self, target: Option<Peer>, now: Instant) -> Vec<Transfer> {
        self.give(target, 0.5, now)
    }

    /// As [`round`](Self::round), giving all the mass held rather than half (a node that
    /// has left passes on whatever still reaches it).
    pub(crate) fn round_giving_all(&mut self, target: Option<Peer>, now: Instant) -> Vec<Transfer> {
        self.give(target, 1.0, now)
    }

    /// Gives all the mass held to `target` (a node that leaves hands its mass over, so the
    /// epoch keeps its contribution), plus the resends owed.
    pub(crate) fn give_all(&mut self, target: Peer, now: Instant) -> Vec<Transfer> {
        self.round_giving_all(Some(target), now)
    }

    fn give(&mut self, target: Option<Peer>, fraction: f64, now: Instant) -> Vec<Transfer> {
        let mut transfers = Vec::new();
        if self.held.is_empty() {
            return transfers;
        }
        let target = target
            .filter(|peer| self.outgoing.contains_key(&peer.name) || self.outgoing.len() < self.max_peers);
        if let Some(Peer { name, generation, address }) = target {
            let fresh = || Outgoing {
                generation,
                address,
                sequence: 0,
                acked: 0,
                given: BTreeMap::new(),
                sent_at: now,
            };
            let outgoing = self.outgoing.entry(name).or_insert_with(fresh);
            if outgoing.generation != generation {
                // What went to its predecessor (and was not acknowledged) is lost with it.
                *outgoing = fresh();
            }
            outgoing.address = address;
            for (name, held) in &mut self.held {
                let share = held.mass.map(|x| x * fraction);
                held.mass = held.mass.minus(share);
                let given = outgoing.given.entry(name.clone()).or_default();
                *given = given.plus(share);
            }
            outgoing.sequence += 1;
            outgoing.sent_at = now;
            transfers.push((outgoing.address, transfer(self.epoch, &self.held, outgoing)));
        }
        // Resends: oldest first, each at most once per round.
        let mut owed: Vec<(&Arc<str>, &Outgoing)> = self
            .outgoing
            .iter()
            .filter(|(_, outgoing)| outgoing.acked < outgoing.sequence && outgoing.sent_at < now)
            .collect();
        owed.sort_by_key(|(_, outgoing)| outgoing.sent_at);
        let resend: Vec<Arc<str>> =
            owed.iter().take(self.config.max_resends_per_round).map(|(peer, _)| (*peer).clone()).collect();
        for peer in resend {
            let Some(outgoing) = self.outgoing.get_mut(&peer) else { continue };
            outgoing.sent_at = now;
            let outgoing = &self.outgoing[&peer];
            transfers.push((outgoing.address, transfer(self.epoch, &self.held, outgoing)));
        }
        transfers
    }

    /// Applies a transfer from `sender` (already checked by [`valid_transfer`]). The caller
    /// moves to a higher epoch first. Returns the acknowledgement to send back.
    pub(crate) fn receive(
        &mut self,
        sender: &str,
        generation: u64,
        transfer: &v1::AggregateTransfer,
    ) -> Result<v1::AggregateAck, TransferRefusal> {
        // The caller caught up with an epoch ahead of ours: any other is stale (or exactly
        // half the epoch space away, which is neither ahead nor behind).
        if transfer.epoch != self.epoch {
            return Err(TransferRefusal::StaleEpoch);
        }
        if !self.incoming.contains_key(sender) && self.incoming.len() >= self.max_peers {
            return Err(TransferRefusal::TooManyPeers);
        }
        let incoming = self.incoming.get(sender).filter(|incoming| incoming.generation == generation);
        let applied = incoming.map_or(0, |incoming| incoming.sequence);
        if transfer.sequence <= applied {
            // A duplicate or an older resend: everything in it is already here.
            return Ok(v1::AggregateAck { epoch: self.epoch, sequence: applied });
        }
        let mut received = incoming.map(|i| i.received.clone()).unwrap_or_default();
        let shrank = transfer.shares.iter().any(|share| {
            let then = received.get(share.name.as_str()).copied().unwrap_or_default().weights();
            let now = Mass::from_wire(share).weights();
            now[0] < then[0] || now[1] < then[1]
        });
        if shrank {
            return Err(TransferRefusal::Shrank);
        }
        let overflows = transfer.shares.iter().any(|share| {
            let held = self.held.get(share.name.as_str()).map(|held| held.mass).unwrap_or_default();
            let delta =
                Mass::from_wire(share).minus(received.get(share.name.as_str()).copied().unwrap_or_default());
            !held.plus(delta).is_finite()
        });
        if overflows {
            return Err(TransferRefusal::Overflow);
        }
        for share in &transfer.shares {
            let name: Arc<str> = self
                .held
                .get_key_value(share.name.as_str())
                .map_or_else(|| Arc::from(share.name.as_str()), |(name, _)| name.clone());
            if !self.hold(&name) {
                continue;
            }
            let total = Mass::from_wire(share);
            let delta = total.minus(received.get(&name).copied().unwrap_or_default());
            if let Some(held) = self.held.get_mut(&name) {
                held.mass = held.mass.plus(delta);
                held.see(share.min, share.max);
            }
            received.insert(name, total);
        }
        self.incoming
            .insert(Arc::from(sender), Incoming { generation, sequence: transfer.sequence, received });
        Ok(v1::AggregateAck { epoch: self.epoch, sequence: transfer.sequence })
    }

    /// Notes `sender`'s acknowledgement (the caller moves to a higher epoch first).
    pub(crate) fn acknowledged(&mut self, sender: &str, generation: u64, ack: &v1::AggregateAck) {
        if ack.epoch != self.epoch {
            return;
        }
        if let Some(outgoing) = self.outgoing.get_mut(sender).filter(|o| o.generation == generation) {
            outgoing.acked = outgoing.acked.max(ack.sequence.min(outgoing.sequence));
        }
    }

    /// Forgets what is owed to peers for which `is_gone` holds (dead, departed, forgotten):
    /// resending to them would be wasted. Returns how many were dropped.
    pub(crate) fn abandon(&mut self, is_gone: impl Fn(&str) -> bool) -> usize {
        let before = self.outgoing.len();
        self.outgoing.retain(|peer, outgoing| outgoing.acked >= outgoing.sequence || !is_gone(peer));
        before - self.outgoing.len()
    }

    /// The mass this node holds of `name` (for tests of conservation).
    #[cfg(test)]
    pub(crate) fn held_mass(&self, name: &str) -> Mass {
        self.held.get(name).map(|held| held.mass).unwrap_or_default()
    }

    /// Mass given to `peer` for `name` in this epoch (for tests of conservation).
    #[cfg(test)]
    pub(crate) fn given_to(&self, peer: &str, name: &str) -> Mass {
        self.outgoing.get(peer).and_then(|o| o.given.get(name)).copied().unwrap_or_default()
    }

    /// Mass received from `peer` for `name` in this epoch (for tests of conservation).
    #[cfg(test)]
    pub(crate) fn received_from(&self, peer: &str, name: &str) -> Mass {
        self.incoming.get(peer).and_then(|i| i.received.get(name)).copied().unwrap_or_default()
    }
}

/// Whether epoch `a` comes after epoch `b`, in serial-number order (RFC 1982): ahead by less
/// than half the 64-bit space, modulo 2^64. Epochs wrap rather than saturate, so that an
/// epoch forged far ahead (at most 2^63 - 1) moves the cluster on for one epoch only: were
/// they to stop at `u64::MAX`, every later epoch would share that number, and mass of the
/// forged one could flow into them for good.
pub(crate) fn epoch_ahead(a: u64, b: u64) -> bool {
    let distance = a.wrapping_sub(b);
    distance != 0 && distance < 1 << 63
}

/// The transfer that tells a peer everything given to it this epoch, with our extremes.
fn transfer(epoch: u64, held: &BTreeMap<Arc<str>, Held>, outgoing: &Outgoing) -> v1::AggregateTransfer {
    let shares = outgoing
        .given
        .iter()
        .map(|(name, given)| {
            let held = held.get(name).copied().unwrap_or_default();
            v1::AggregateShare {
                name: name.to_string(),
                average_value: given.average_value,
                average_weight: given.average_weight,
                sum_value: given.sum_value,
                count_value: given.count_value,
                total_weight: given.total_weight,
                min: held.min,
                max: held.max,
            }
        })
        .collect();
    v1::AggregateTransfer { epoch, sequence: outgoing.sequence, shares }
}

/// Whether a transfer keeps the rules: at most `max_aggregates` distinct, well-sized names,
/// finite numbers, no negative weight.
pub(crate) fn valid_transfer(transfer: &v1::AggregateTransfer, config: &AggregationConfig) -> bool {
    if transfer.shares.len() > config.max_aggregates || transfer.sequence == 0 {
        return false;
    }
    let mut names: Vec<&str> = transfer.shares.iter().map(|share| share.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|pair| pair[0] == pair[1]) {
        return false;
    }
    transfer.shares.iter().all(|share| {
        let mass = Mass::from_wire(share);
        let numbers =
            [mass.average_value, mass.average_weight, mass.sum_value, mass.count_value, mass.total_weight];
        (1..=config.max_name_size).contains(&share.name.len())
            && numbers
                .iter()
                .chain(share.min.iter())
                .chain(share.max.iter())
                .all(|x| x.abs() <= MAX_TRANSFERRED)
            && mass.weights().iter().all(|w| *w >= 0.0)
    })
}

#[cfg(test)]
mod epoch_order_tests {
    use super::epoch_ahead;

    #[test]
    fn epochs_compare_in_serial_number_order() {
        assert!(epoch_ahead(2, 1) && !epoch_ahead(1, 2) && !epoch_ahead(5, 5));
        // Past the top: 0 follows u64::MAX, so a forged u64::MAX does not freeze the epochs.
        assert!(epoch_ahead(0, u64::MAX) && !epoch_ahead(u64::MAX, 0));
        // A node at epoch 0 catches up with any real cluster epoch below 2^63.
        assert!(epoch_ahead(1 << 62, 0) && !epoch_ahead(0, 1 << 62));
        assert!(!epoch_ahead(1 << 63, 0), "half the space away is not ahead");
    }
}
