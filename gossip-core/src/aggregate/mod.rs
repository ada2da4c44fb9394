//! Push-sum aggregation (Kempe, Dobra, Gehrke 2003): every node can read the cluster-wide
//! average, sum, count, minimum and maximum of named numbers, without knowing who contributes.
//!
//! Each node holds some *mass* per aggregate and, once per round, keeps half and sends half to
//! one random member. Two push-sum instances run side by side:
//!
//! - the **average** instance: every contributor starts with its value and a weight of 1,
//!   so value / weight tends to the average everywhere;
//! - the **total** instance: every contributor starts with its value and a count of 1, and
//!   the weight (1 in all) starts at one node only, the *leader* (the member with the
//!   smallest name this node knows to be live), so value / weight tends to the sum and
//!   count / weight to the number of contributors.
//!
//! Minimum and maximum spread by plain gossip: every transfer carries the extremes its sender
//! has seen.
//!
//! **Mass is conserved.** Transfers are cumulative: a transfer says how much the sender has
//! given this receiver in the epoch so far, and the receiver applies the difference from what
//! it already got. A lost transfer is resent (the sender keeps serving unacknowledged peers),
//! a duplicated or reordered one changes nothing, so loss delays the estimate but does not
//! bias it. Mass is lost only with a crashed node (its own and what was on its way to it).
//!
//! **Epochs** restart the computation from every node's own values every
//! `aggregation.epoch_rounds` rounds, so estimates follow churn. A node moves to a higher epoch
//! as soon as it hears of one, so epochs spread like a rumor. [`crate::Node::aggregate`]
//! reads the estimate of the last finished epoch, [`crate::Node::aggregate_running`] the one
//! being computed.

#[cfg(test)]
mod conservation;
pub(crate) mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use gossip_proto::v1::{self, envelope::Body};
use rand::RngExt;
use rand_core::Rng;

pub use state::AggregateEstimate;
pub(crate) use state::valid_transfer;
use state::{MAX_CONTRIBUTION, Peer};

use crate::error::AggregateError;
use crate::event::Event;
use crate::identity::Identity;
use crate::node::Node;
use crate::table::LOCAL;
use state::TransferRefusal;

impl<R: Rng> Node<R> {
    /// Contributes `value` to the aggregate `name` (replacing this node's earlier value):
    /// every node will read it in the cluster-wide average, sum, count, minimum and maximum.
    ///
    /// A new or changed value enters the current epoch's averages and sums at once; the
    /// minimum and maximum forget an old value only at the next epoch.
    pub fn aggregate_set(&mut self, name: &str, value: f64) -> Result<(), AggregateError> {
        let limits = &self.config.aggregation;
        if !value.is_finite() {
            return Err(AggregateError::NotFinite { value });
        }
        if value.abs() > MAX_CONTRIBUTION {
            return Err(AggregateError::OutOfRange { value, max: MAX_CONTRIBUTION });
        }
        if !(1..=limits.max_name_size).contains(&name.len()) {
            return Err(AggregateError::InvalidName { len: name.len(), max: limits.max_name_size });
        }
        if !self.aggregation.contributes(name) && self.aggregation.contributions() >= limits.max_aggregates {
            return Err(AggregateError::TooManyAggregates { max: limits.max_aggregates });
        }
        let was_active = self.aggregation.is_active();
        self.decide_aggregation_leadership();
        self.aggregation.contribute(name, value);
        if !was_active {
            self.schedule_first_aggregation_round();
        }
        Ok(())
    }

    /// Stops contributing to `name` from the next epoch on; `false` when this node did not
    /// contribute to it.
    pub fn aggregate_remove(&mut self, name: &str) -> bool {
        self.aggregation.withdraw(name)
    }

    /// The estimate of `name` at the end of the last finished epoch: the figure to read.
    /// `None` before a first epoch ends (about `epoch_rounds x interval` after a start).
    pub fn aggregate(&self, name: &str) -> Option<AggregateEstimate> {
        self.aggregation.settled(name)
    }

    /// The estimate of `name` being computed in the current epoch: it starts from this
    /// node's own value at each epoch and converges during the epoch.
    pub fn aggregate_running(&self, name: &str) -> Option<AggregateEstimate> {
        self.aggregation.running(name)
    }

    /// The current aggregation epoch.
    pub fn aggregation_epoch(&self) -> u64 {
        self.aggregation.epoch()
    }

    /// The first round comes at a random point of one interval, so that nodes that start
    /// together do not send together.
    fn schedule_first_aggregation_round(&mut self) {
        let interval = self.config.aggregation.interval;
        self.aggregation.next_round = self.now + interval.mul_f64(self.rng.random::<f64>());
    }

    /// When the next aggregation round is due, while this node holds an aggregate.
    pub(crate) fn next_aggregation_deadline(&self) -> Option<Instant> {
        self.aggregation.is_active().then_some(self.aggregation.next_round)
    }

    /// Runs an aggregation round when one is due.
    pub(crate) fn drive_aggregation(&mut self) {
        let interval = self.config.aggregation.interval;
        if self.now < self.aggregation.next_round {
            return;
        }
        let fired = self.aggregation.next_round;
        self.aggregation.next_round = (fired + interval).max(self.now + interval / 2);
        if !self.aggregation.is_active() {
            return;
        }
        self.out.metrics.aggregate_rounds += 1;
        if self.aggregation.count_round() {
            self.start_aggregation_epoch(self.aggregation.epoch().wrapping_add(1));
        }
        let table = &self.table;
        let abandoned = self.aggregation.abandon(|peer| {
            table
                .index_of(peer)
                .and_then(|index| table.get(index))
                .is_none_or(|(_, member)| !member.state.is_live())
        });
        self.out.metrics.aggregate_peers_abandoned += abandoned as u64;
        let target = self.random_live_peer();
        let now = self.now;
        let transfers = if self.leave.is_some() {
            self.aggregation.round_giving_all(target, now)
        } else {
            self.aggregation.round(target, now)
        };
        for (to, transfer) in transfers {
            self.send(to, Body::AggregateTransfer(transfer));
        }
    }

    /// Hands all the aggregation mass to a random live member: called when this node leaves,
    /// so the current epoch keeps its contribution.
    pub(crate) fn hand_off_aggregates(&mut self) {
        let Some(target) = self.random_live_peer() else { return };
        let now = self.now;
        for (to, transfer) in self.aggregation.give_all(target, now) {
            self.send(to, Body::AggregateTransfer(transfer));
        }
    }

    /// One live member other than this node, uniformly, with its address.
    fn random_live_peer(&mut self) -> Option<Peer> {
        let index = *self.random_live_member_indices(1, &[]).first()?;
        let (name, member) = self.table.get(index)?;
        Some(Peer { name: Arc::from(name), generation: member.generation, address: member.address })
    }

    /// Whether this node brings the total weight: it has the smallest name of the members
    /// it knows to be live. Members agree on it once membership has converged; while they
    /// do not, the sum and count of that epoch may be off (the average never is).
    fn leads_aggregation(&self) -> bool {
        let own = self.identity.name.as_str();
        self.table.iter().skip(LOCAL + 1).all(|(name, member)| !member.state.is_live() || own < name)
    }

    /// Decides whether this node leads the epoch, before it first holds an aggregate in it.
    fn decide_aggregation_leadership(&mut self) {
        if self.aggregation.leadership_undecided() {
            let leads = self.leads_aggregation();
            self.aggregation.decide_leadership(leads);
        }
    }

    /// Ends the current epoch (reporting the estimates that moved) and starts `epoch`.
    fn start_aggregation_epoch(&mut self, epoch: u64) {
        let leads = self.leads_aggregation();
        for (name, estimate) in self.aggregation.start_epoch(epoch, leads) {
            self.out.events.emit(Event::AggregateChanged { name: name.to_string(), estimate });
        }
    }

    /// Moves to `epoch` when it is ahead of ours (in serial-number order, see
    /// [`state::epoch_ahead`]).
    fn catch_up_aggregation(&mut self, epoch: u64) {
        if state::epoch_ahead(epoch, self.aggregation.epoch()) {
            self.start_aggregation_epoch(epoch);
        }
    }

    /// Applies a transfer and acknowledges it (checked by [`valid_transfer`] already).
    pub(crate) fn on_aggregate_transfer(
        &mut self,
        from: SocketAddr,
        sender: &Identity,
        transfer: v1::AggregateTransfer,
    ) {
        if self.table.index_of(&sender.name).is_none() {
            // Only members move mass: a stranger's transfer would be acknowledged by nobody.
            self.out.metrics.aggregate_transfers_refused += 1;
            return;
        }
        self.catch_up_aggregation(transfer.epoch);
        self.decide_aggregation_leadership();
        let was_active = self.aggregation.is_active();
        let ack = match self.aggregation.receive(&sender.name, sender.generation, &transfer) {
            Ok(ack) => ack,
            Err(TransferRefusal::StaleEpoch) => {
                self.out.metrics.aggregate_transfers_refused += 1;
                // Tell the sender where the cluster is, so it moves on.
                v1::AggregateAck { epoch: self.aggregation.epoch(), sequence: 0 }
            }
            Err(TransferRefusal::Shrank | TransferRefusal::TooManyPeers | TransferRefusal::Overflow) => {
                self.out.metrics.aggregate_transfers_refused += 1;
                return;
            }
        };
        self.out.metrics.aggregate_names_over_cap = self.aggregation.names_over_cap;
        if !was_active && self.aggregation.is_active() {
            self.schedule_first_aggregation_round();
        }
        self.send(from, Body::AggregateAck(ack));
    }

    /// Notes an acknowledgement; a higher epoch in it moves this node on.
    pub(crate) fn on_aggregate_ack(&mut self, sender: &Identity, ack: v1::AggregateAck) {
        self.catch_up_aggregation(ack.epoch);
        self.aggregation.acknowledged(&sender.name, sender.generation, &ack);
    }
}
