//! Ready-made trials of push-sum aggregation, shared by the `simulate` command and the
//! simulation tests.
//!
//! Every trial starts from an in-sync cluster
//! ([`Bootstrap::InSync`](gossip_core::sim::Bootstrap::InSync)) in which every node
//! contributes a random value (uniform in `[0, 100)`, from the seed) to one aggregate at time
//! zero. A round is `aggregation.interval`; rounds are counted from time zero.
//!
//! - [`convergence`](AggregateStudy::convergence): rounds until every node's running
//!   average is within 1e-3 and 1e-6 (relative) of the true average, and the errors of the
//!   average and of the count after a fixed number of rounds.
//! - [`churn`](AggregateStudy::churn): a fraction of the nodes (the count's leader among
//!   them) crash in the middle of the first epoch; how wrong every survivor's estimate of the
//!   next epoch is.

use std::time::Duration;

use rand::RngExt;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use gossip_core::sim::{BodyKind, Checks, LinkModel, SimError, Simulation, derive_seed};
use gossip_core::{AggregateEstimate, Config};

use crate::progress::Progress;
use crate::setup::{InSync, start_in_sync};

/// The aggregate every trial computes.
pub const AGGREGATE: &str = "load";

/// How many times per round the convergence trial looks at every node's estimate.
const SAMPLES_PER_ROUND: u32 = 4;

/// The cluster the aggregation trials run on, and the trials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AggregateStudy {
    /// Number of nodes.
    pub nodes: usize,
    /// The configuration of every node (`aggregation.interval` is the unit of a round).
    pub node_config: Config,
    /// Every link.
    pub link: LinkModel,
    /// How often invariants are checked.
    pub checks: Checks,
    /// The replay command printed with a violation (`{seed}` is replaced).
    pub replay: Option<String>,
}

/// What one convergence trial measured (see [`AggregateStudy::convergence`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConvergenceOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// The true average of the contributions.
    pub average: f64,
    /// Rounds until every node's running average was within 1e-3 of the truth.
    pub rounds_to_1e3: Option<f64>,
    /// Rounds until every node's running average was within 1e-6 of the truth.
    pub rounds_to_1e6: Option<f64>,
    /// Rounds measured.
    pub rounds: u32,
    /// The largest relative error of a node's running average after `rounds`.
    pub final_max_relative_error: Option<f64>,
    /// The largest relative error of a node's running count (the cluster size) after
    /// `rounds`.
    pub count_estimate_error: Option<f64>,
    /// The largest relative error of a node's running sum after `rounds`.
    pub sum_estimate_error: Option<f64>,
    /// Aggregation datagrams (transfers and acks) sent per node per round.
    pub datagrams_per_node_per_round: f64,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

/// What one churn trial measured (see [`AggregateStudy::churn`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChurnOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Nodes before the crash.
    pub nodes: usize,
    /// Nodes that crashed (node 0, the first epoch's leader, always among them).
    pub crashed: usize,
    /// When they crashed, in rounds.
    pub crash_round: u32,
    /// The true average of the survivors' contributions.
    pub average: f64,
    /// The epoch during which the crash happened.
    pub crash_epoch: u64,
    /// Rounds from the crash until every survivor had finished the next epoch; `None` if
    /// that did not happen within two more epochs.
    pub recovered_after_rounds: Option<f64>,
    /// The largest relative error of a survivor's average from the epoch after the crash.
    pub average_error: Option<f64>,
    /// The largest relative error of a survivor's count from the epoch after the crash.
    pub count_error: Option<f64>,
    /// The same, of the epoch of the crash (what the crash did before recovery).
    pub crash_epoch_average_error: Option<f64>,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

impl AggregateStudy {
    /// `nodes` nodes running `node_config` over 1 ms perfect links, with invariants checked
    /// on one step in `nodes`.
    pub fn new(nodes: usize, node_config: Config) -> Self {
        Self {
            nodes,
            node_config,
            link: LinkModel::default(),
            checks: Checks::Sampled { every: nodes.max(1) as u64 },
            replay: None,
        }
    }

    /// With this link model.
    pub fn with_link(mut self, link: LinkModel) -> Self {
        self.link = link;
        self
    }

    /// With this check policy.
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
    }

    /// With this replay command.
    pub fn with_replay(mut self, replay: impl Into<String>) -> Self {
        self.replay = Some(replay.into());
        self
    }

    /// A round.
    pub fn round(&self) -> Duration {
        self.node_config.aggregation.interval
    }

    /// Builds the in-sync cluster; every node contributes its value at time zero. Returns
    /// the values.
    fn start(&self, seed: u64) -> Result<(Simulation, Vec<f64>), SimError> {
        if self.nodes < 2 {
            return Err(SimError::Setup("an aggregation trial needs at least two nodes".to_owned()));
        }
        let mut sim = start_in_sync(InSync {
            nodes: self.nodes,
            seed,
            node_config: &self.node_config,
            link: self.link,
            checks: self.checks,
            replay: self.replay.as_deref(),
            membership_log: false,
        })?;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 3, 0));
        let values: Vec<f64> = (0..self.nodes).map(|_| rng.random_range(0.0..100.0)).collect();
        for (index, value) in values.iter().enumerate() {
            sim.aggregate_set(index, AGGREGATE, *value)?;
        }
        Ok((sim, values))
    }

    /// Runs `rounds` rounds, looking at every node's running average four times a round.
    pub fn convergence(
        &self,
        seed: u64,
        rounds: u32,
        mut progress: impl FnMut(Progress),
    ) -> Result<ConvergenceOutcome, SimError> {
        let (mut sim, values) = self.start(seed)?;
        let average = values.iter().sum::<f64>() / values.len() as f64;
        let (mut to_1e3, mut to_1e6) = (None, None);
        let step = self.round() / SAMPLES_PER_ROUND;
        for sample in 1..=rounds * SAMPLES_PER_ROUND {
            sim.run_until(step * sample)?;
            let error = sim.aggregate_error(AGGREGATE, |e| e.average, average, false);
            let at = f64::from(sample) / f64::from(SAMPLES_PER_ROUND);
            if error.is_some_and(|e| e <= 1e-3) {
                to_1e3.get_or_insert(at);
            }
            if error.is_some_and(|e| e <= 1e-6) {
                to_1e6.get_or_insert(at);
            }
            if sample % SAMPLES_PER_ROUND == 0 {
                progress(Progress::Running { period: sample / SAMPLES_PER_ROUND, of: rounds });
            }
        }
        let n = values.len() as f64;
        let sent = sim.stats().sent_kinds;
        let datagrams = sent.get(BodyKind::AggregateTransfer) + sent.get(BodyKind::AggregateAck);
        Ok(ConvergenceOutcome {
            seed,
            nodes: self.nodes,
            average,
            rounds_to_1e3: to_1e3,
            rounds_to_1e6: to_1e6,
            rounds,
            final_max_relative_error: sim.aggregate_error(AGGREGATE, |e| e.average, average, false),
            count_estimate_error: sim.aggregate_error(AGGREGATE, |e| e.count, n, false),
            sum_estimate_error: sim.aggregate_error(AGGREGATE, |e| e.sum, average * n, false),
            datagrams_per_node_per_round: datagrams as f64 / n / f64::from(rounds.max(1)),
            trace_hash: sim.trace_hash(),
        })
    }

    /// `fraction` of the nodes (at least one; node 0, the leader of the first epoch, always
    /// among them) crash half-way through the first epoch; runs until every survivor has
    /// finished the epoch after, and measures the survivors' estimates from it.
    pub fn churn(
        &self,
        seed: u64,
        fraction: f64,
        mut progress: impl FnMut(Progress),
    ) -> Result<ChurnOutcome, SimError> {
        let (mut sim, values) = self.start(seed)?;
        let epoch_rounds = self.node_config.aggregation.epoch_rounds;
        let crash_round = epoch_rounds / 2;
        sim.run_until(self.round() * crash_round)?;
        let count = ((self.nodes as f64 * fraction).round() as usize).clamp(1, self.nodes - 1);
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 4, 0));
        let mut crashed: Vec<usize> = vec![0];
        crashed.extend(sample(&mut rng, self.nodes - 1, count - 1).into_iter().map(|i| i + 1));
        let crash_epoch = sim.node(1).map_or(0, |node| node.aggregation_epoch());
        for index in &crashed {
            sim.crash(*index)?;
        }
        let survivors: Vec<f64> =
            values.iter().enumerate().filter(|(i, _)| !crashed.contains(i)).map(|(_, v)| *v).collect();
        let average = survivors.iter().sum::<f64>() / survivors.len() as f64;
        let crashed_at = sim.now();
        let target = crash_epoch + 1;
        let settled_epoch = |sim: &Simulation| {
            (0..sim.len())
                .filter_map(|i| sim.node(i))
                .map(|node| node.aggregate(AGGREGATE).map_or(0, |estimate| estimate.epoch))
                .min()
                .unwrap_or(0)
        };
        let mut crash_epoch_error = None;
        let deadline = crashed_at + self.round() * (2 * epoch_rounds + crash_round);
        let mut round = 0;
        while settled_epoch(&sim) < target && sim.now() < deadline {
            sim.run_for(self.round())?;
            round += 1;
            if crash_epoch_error.is_none() && settled_epoch(&sim) >= crash_epoch {
                crash_epoch_error = sim.aggregate_error(AGGREGATE, |e| e.average, average, true);
            }
            progress(Progress::Running { period: round, of: 2 * epoch_rounds });
        }
        let recovered = settled_epoch(&sim) >= target;
        let of_epoch = |sim: &Simulation, figure: fn(&AggregateEstimate) -> Option<f64>, truth: f64| {
            // Each survivor's estimate from the epoch after the crash exactly.
            let mut worst: Option<f64> = Some(0.0);
            for node in (0..sim.len()).filter_map(|i| sim.node(i)) {
                let estimate = node.aggregate(AGGREGATE).filter(|e| e.epoch == target);
                worst = match (worst, estimate.as_ref().and_then(figure)) {
                    (Some(w), Some(value)) => Some(w.max(relative_error(value, truth))),
                    _ => None,
                };
            }
            worst
        };
        Ok(ChurnOutcome {
            seed,
            nodes: self.nodes,
            crashed: crashed.len(),
            crash_round,
            average,
            crash_epoch,
            recovered_after_rounds: recovered
                .then(|| (sim.now() - crashed_at).as_secs_f64() / self.round().as_secs_f64()),
            average_error: of_epoch(&sim, |e| e.average, average),
            count_error: of_epoch(&sim, |e| e.count, survivors.len() as f64),
            crash_epoch_average_error: crash_epoch_error,
            trace_hash: sim.trace_hash(),
        })
    }
}

/// `|value - truth| / |truth|` (the measure of [`Simulation::aggregate_error`]).
fn relative_error(value: f64, truth: f64) -> f64 {
    (value - truth).abs() / truth.abs().max(f64::MIN_POSITIVE)
}
