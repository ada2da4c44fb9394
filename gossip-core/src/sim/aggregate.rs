//! Aggregation and leave commands of the simulation, and the error of the nodes' aggregate
//! estimates against a known truth (what the push-sum studies of `gossip-sim` measure).

use crate::aggregate::AggregateEstimate;
use crate::error::AggregateError;
use crate::sim::{SimError, Simulation};

impl Simulation {
    /// Node `index` contributes `value` to the aggregate `name` now.
    pub fn aggregate_set(&mut self, index: usize, name: &str, value: f64) -> Result<(), SimError> {
        let node = self.slots.get_mut(index).ok_or(SimError::NoSuchNode(index))?;
        let node = node.node.as_mut().ok_or(SimError::NodeDown(index))?;
        node.aggregate_set(name, value)
            .map_err(|error: AggregateError| SimError::Setup(error.to_string()))?;
        self.steps += 1;
        self.drain(index);
        Ok(())
    }

    /// Node `index` leaves the cluster gracefully now (it keeps running, as a leaving
    /// process does until it shuts down).
    pub fn leave(&mut self, index: usize) -> Result<(), SimError> {
        let node = self.slots.get_mut(index).ok_or(SimError::NoSuchNode(index))?;
        node.node.as_mut().ok_or(SimError::NodeDown(index))?.leave();
        self.steps += 1;
        self.drain(index);
        Ok(())
    }

    /// The largest relative error, over the live nodes, of a figure of their estimates of
    /// `name` (`None` when some live node has no such figure yet).
    pub fn aggregate_error(
        &self,
        name: &str,
        figure: impl Fn(&AggregateEstimate) -> Option<f64>,
        truth: f64,
        settled: bool,
    ) -> Option<f64> {
        let mut worst: f64 = 0.0;
        for index in 0..self.len() {
            let Some(node) = self.node(index) else { continue };
            let estimate = if settled { node.aggregate(name) } else { node.aggregate_running(name) };
            let value = estimate.as_ref().and_then(&figure)?;
            worst = worst.max(relative_error(value, truth));
        }
        Some(worst)
    }
}

fn relative_error(value: f64, truth: f64) -> f64 {
    (value - truth).abs() / truth.abs().max(f64::MIN_POSITIVE)
}
