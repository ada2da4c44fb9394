//! The settings of a simulation run.

use std::time::{Duration, Instant};

use crate::config::{Config, SwimConfig};
use crate::sim::invariants::Checks;
use crate::sim::link::LinkModel;

/// How the cluster is put together at time zero.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bootstrap {
    /// Every node already knows every other and all tables are equal (and empty), without a
    /// single datagram: the start of a convergence study. Built in O(n²) cheap inserts,
    /// spread over the machine's cores.
    InSync,
    /// Every node knows only itself and joins these nodes (by index) at time zero.
    Join(Vec<usize>),
    /// Every node knows only itself; nobody joins.
    Alone,
}

/// The settings of a run. A run is a pure function of these settings (the `seed` above all)
/// and of the scenario played on it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// The seed every random choice of the run derives from: each node's RNG, loss,
    /// latency, duplication.
    pub seed: u64,
    /// Nodes at the start, named `n0`, `n1`, ... at addresses `10.x.y.z:7946`.
    pub nodes: usize,
    /// The configuration every node runs.
    pub node_config: Config,
    /// The model of every link, until changed per link.
    pub link: LinkModel,
    /// How the cluster starts.
    pub bootstrap: Bootstrap,
    /// How often invariants are checked.
    pub checks: Checks,
    /// Whom a restarted node joins (indexes); empty means node 0 (node 1 for node 0).
    pub restart_seeds: Vec<usize>,
    /// Datagrams a paused node buffers; beyond it they are dropped (a full socket buffer).
    pub paused_buffer: usize,
    /// Keep every event of every node (see [`crate::sim::Simulation::events`]).
    pub record_events: bool,
    /// Every node answers every query it gets ([`crate::Event::Query`]) at once, with its
    /// name as the payload (a stand-in for an application that answers).
    pub answer_queries: bool,
    /// Keep a log of the membership changes every node reports (see
    /// [`crate::sim::Simulation::take_membership_log`]).
    pub record_membership: bool,
    /// The replay command printed with a violation; `{seed}` is replaced by the seed.
    pub replay: Option<String>,
    /// The `Instant` virtual time zero maps to; `None` reads the clock once (only
    /// differences from it matter, so the run stays deterministic).
    pub base: Option<Instant>,
    /// Threads used to build an [`Bootstrap::InSync`] cluster; 0 uses every core. The result
    /// does not depend on it.
    pub build_threads: usize,
}

impl SimConfig {
    /// `nodes` nodes with the default node configuration ([`Config::lan`]), 1 ms perfect
    /// links, joining node 0, invariants checked after every step.
    pub fn new(nodes: usize, seed: u64) -> Self {
        Self {
            seed,
            nodes,
            node_config: Config::lan(),
            link: LinkModel::default(),
            bootstrap: Bootstrap::Join(vec![0]),
            checks: Checks::EveryStep,
            restart_seeds: Vec::new(),
            paused_buffer: 4_096,
            record_events: false,
            answer_queries: false,
            record_membership: false,
            replay: None,
            base: None,
            build_threads: 0,
        }
    }

    /// With this node configuration.
    pub fn with_node_config(mut self, config: Config) -> Self {
        self.node_config = config;
        self
    }

    /// With this link model everywhere.
    pub fn with_link(mut self, link: LinkModel) -> Self {
        self.link = link;
        self
    }

    /// Starting this way.
    pub fn with_bootstrap(mut self, bootstrap: Bootstrap) -> Self {
        self.bootstrap = bootstrap;
        self
    }

    /// Checking invariants this often.
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
    }

    /// Keeping every event.
    pub fn with_recorded_events(mut self) -> Self {
        self.record_events = true;
        self
    }

    /// Every node answering every query it gets at once (see [`SimConfig::answer_queries`]).
    pub fn with_answered_queries(mut self) -> Self {
        self.answer_queries = true;
        self
    }

    /// Keeping a log of membership changes (suspected, failed, recovered, ...).
    pub fn with_membership_log(mut self) -> Self {
        self.record_membership = true;
        self
    }

    /// With this replay command in violation reports (`{seed}` is replaced by the seed).
    pub fn with_replay(mut self, command: impl Into<String>) -> Self {
        self.replay = Some(command.into());
        self
    }

    /// The replay text for this run.
    pub(crate) fn replay_text(&self) -> String {
        match &self.replay {
            Some(command) => command.replace("{seed}", &self.seed.to_string()),
            None => format!(
                "run the same scenario with SimConfig::seed = {seed} (tests that read their seed \
                 with sim::seed_from_env: GOSSIP_SIM_SEED={seed} cargo test ...)",
                seed = self.seed
            ),
        }
    }
}

/// The shortest suspicion timeout of a node running `swim` in a cluster of `nodes`:
/// `suspicion_mult x max(1, log10(nodes)) x probe_interval`. With Lifeguard a suspicion
/// starts at `suspicion_max_timeout_mult` times this and shrinks toward it as members confirm
/// it; local health stretches both.
pub fn min_suspicion_timeout(swim: &SwimConfig, nodes: usize) -> Duration {
    crate::suspicion::min_timeout(swim.suspicion_mult, nodes, swim.probe_interval)
}

/// The seed in the `GOSSIP_SIM_SEED` environment variable, or `default`: lets a test with a
/// fixed seed replay another seed without being edited.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var("GOSSIP_SIM_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default)
}
