//! Membership formation: every node joins one seed at the same moment, as the cluster
//! example's first phase does on real sockets; the trial measures how long until every node
//! sees every other as live, and what the formation cost in traffic.

use std::time::Duration;

use gossip_core::sim::{Bootstrap, SimError, Simulation, Traffic};

use crate::progress::Progress;
use crate::setup::{InSync, start_with};
use crate::trial::Study;

/// Checks of completion per gossip interval (the times reported are this fine).
const CHECKS_PER_ROUND: u32 = 10;

/// What one join trial measured (see [`Study::join`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JoinOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Number of nodes.
    pub nodes: usize,
    /// Seconds from the joins until half of the nodes saw every other as live.
    pub half_seconds: Option<f64>,
    /// Seconds from the joins until every node saw every other as live; `None` if that did
    /// not happen within the trial's bound.
    pub all_seconds: Option<f64>,
    /// The same in gossip intervals.
    pub all_rounds: Option<f64>,
    /// Everything sent until then (or until the bound).
    pub traffic: Traffic,
}

impl Study {
    /// One join trial: `nodes` fresh nodes, every one but node 0 joining node 0 at time zero
    /// (the study's idle rounds do not apply: nothing is in sync to idle); waits at most
    /// `max_rounds` gossip intervals.
    pub fn join(
        &self,
        seed: u64,
        max_rounds: u32,
        mut progress: impl FnMut(Progress),
    ) -> Result<JoinOutcome, SimError> {
        if self.nodes < 2 {
            return Err(SimError::Setup("a join trial needs at least two nodes".to_owned()));
        }
        let setup = InSync {
            nodes: self.nodes,
            seed,
            node_config: &self.node_config,
            link: self.link,
            checks: self.checks,
            replay: self.replay.as_deref(),
            membership_log: false,
        };
        let mut sim = start_with(setup, Bootstrap::Join(vec![0]), |config| config)?;
        let interval = self.node_config.gossip_interval;
        let step = interval / CHECKS_PER_ROUND;
        let mut half = None;
        let mut all = None;
        'rounds: for round in 1..=max_rounds {
            for check in 1..=CHECKS_PER_ROUND {
                let at = interval * (round - 1) + step * check;
                sim.run_until(at)?;
                let complete = complete_nodes(&sim);
                if half.is_none() && 2 * complete >= self.nodes {
                    half = Some(at);
                }
                if complete == self.nodes {
                    all = Some(at);
                    break 'rounds;
                }
                if check == CHECKS_PER_ROUND {
                    progress(Progress::Spreading { round, informed: complete, live: self.nodes });
                }
            }
        }
        let seconds = |at: Option<Duration>| at.map(|at| at.as_secs_f64());
        Ok(JoinOutcome {
            seed,
            nodes: self.nodes,
            half_seconds: seconds(half),
            all_seconds: seconds(all),
            all_rounds: all.map(|at| at.as_secs_f64() / interval.as_secs_f64()),
            traffic: sim.stats().sent,
        })
    }
}

/// How many nodes see every node of the cluster (themselves included) as live.
fn complete_nodes(sim: &Simulation) -> usize {
    (0..sim.len())
        .filter(|&index| {
            sim.node(index)
                .is_some_and(|node| node.nodes().filter(|view| view.state.is_live()).count() == sim.len())
        })
        .count()
}
