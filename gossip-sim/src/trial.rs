//! Ready-made trials for convergence and traffic studies, shared by the `simulate` command
//! and the simulation tests.
//!
//! - [`Study::spread`]: an in-sync cluster idles until no node counts as recently changed,
//!   then one random node writes one key at a random moment; the trial measures how many
//!   gossip intervals pass until every live node has it.
//! - [`Study::steady`]: an in-sync cluster with no writes; the trial measures the background
//!   traffic.
//! - [`Study::burst`]: every node writes one key at once; the trial measures how long until
//!   every node holds every key, then the traffic of the quiet window after the writes.
//!
//! Rounds are **fractional**: `(time every node had it - time of the write) / interval`. The
//! textbook figures count synchronous rounds, in which round `r` ends at time `r`, so the two
//! compare directly (in the asynchronous simulation a node informed mid-interval may pass the
//! update on within the same interval, as in a real deployment).

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use gossip_core::sim::{BodyKind, Checks, KindCounts, LinkModel, SimError, Simulation, Traffic, derive_seed};
use gossip_core::{Config, Dissemination};

use crate::progress::Progress;
use crate::setup::{InSync, start_in_sync};

/// The cluster a study runs on, and its two trials.
///
/// - [`spread`](Self::spread): an in-sync cluster idles until no node counts as recently
///   changed, then one random node writes one key at a random moment; the trial measures how
///   many gossip intervals pass until every live node has it.
/// - [`steady`](Self::steady): an in-sync cluster with no writes; the trial measures the
///   background traffic.
///
/// Rounds are fractional: `(time every node had it - time of the write) / interval`,
/// directly comparable with the synchronous rounds of the textbook figures.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Study {
    /// Number of nodes.
    pub nodes: usize,
    /// The configuration of every node (its `gossip_interval` is the unit of a round).
    pub node_config: Config,
    /// Every link.
    pub link: LinkModel,
    /// How often invariants are checked.
    pub checks: Checks,
    /// Intervals to idle after the in-sync start; `None` waits `recent_rounds + 1`, so that
    /// no node still counts as recently changed.
    pub idle_rounds: Option<u32>,
    /// The replay command printed with a violation (`{seed}` is replaced).
    pub replay: Option<String>,
}

impl Study {
    /// `nodes` nodes running `node_config` over 1 ms perfect links, with invariants checked
    /// after every step.
    pub fn new(nodes: usize, node_config: Config) -> Self {
        Self {
            nodes,
            node_config,
            link: LinkModel::default(),
            checks: Checks::EveryStep,
            idle_rounds: None,
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

    fn interval(&self) -> Duration {
        self.node_config.gossip_interval
    }

    /// Builds the in-sync cluster and idles it.
    pub(crate) fn start(
        &self,
        seed: u64,
        progress: &mut impl FnMut(Progress),
    ) -> Result<Simulation, SimError> {
        let mut sim = start_in_sync(InSync {
            nodes: self.nodes,
            seed,
            node_config: &self.node_config,
            link: self.link,
            checks: self.checks,
            replay: self.replay.as_deref(),
            membership_log: false,
        })?;
        let idle = self.idle_rounds.unwrap_or(self.node_config.recent_rounds + 1);
        for round in 1..=idle {
            sim.run_until(self.interval() * round)?;
            progress(Progress::Idle { round, of: idle });
        }
        Ok(sim)
    }

    /// One spread trial (see [`Study`]); `max_rounds` bounds the wait.
    pub fn spread(
        &self,
        seed: u64,
        max_rounds: u32,
        mut progress: impl FnMut(Progress),
    ) -> Result<SpreadOutcome, SimError> {
        if self.nodes == 0 {
            return Err(SimError::Setup("a spread trial needs at least one node".to_owned()));
        }
        let mut sim = self.start(seed, &mut progress)?;
        let interval = self.interval();
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 1, 0));
        let writer = rng.random_range(0..self.nodes);
        sim.run_for(interval.mul_f64(rng.random::<f64>()))?;
        let sent_before = sim.stats().sent;
        let write = sim.set(writer, "spread", "x")?;
        let written_at = sim.now();
        let complete = |sim: &Simulation| sim.write(write).is_some_and(|w| w.all_informed_at.is_some());
        // Rumors alone can die out: then the trial ends once no rumor was pushed for two
        // rounds (other traffic, such as failure detection, goes on forever).
        let rumors_only = self.node_config.dissemination == Dissemination::Rumors;
        let mut quiet_rounds = 0;
        for round in 1..=max_rounds {
            let before = activity(&sim, rumors_only);
            if sim.run_until_true(written_at + interval * round, complete)? {
                break;
            }
            let informed = sim.write(write).map_or(0, |w| w.informed);
            progress(Progress::Spreading { round, informed, live: sim.live_nodes() });
            quiet_rounds = if activity(&sim, rumors_only) == before { quiet_rounds + 1 } else { 0 };
            if quiet_rounds >= 2 {
                break;
            }
        }
        let tracked =
            sim.write(write).ok_or_else(|| SimError::Setup("the write was not tracked".to_owned()))?;
        let mut informed_after: Vec<Duration> = tracked.learned().map(|(_, at)| at - written_at).collect();
        informed_after.sort_unstable();
        let live = sim.live_nodes();
        let rounds =
            tracked.all_informed_at.map(|at| (at - written_at).as_secs_f64() / interval.as_secs_f64());
        let end = tracked.all_informed_at.unwrap_or(sim.now());
        let sent_after = sim.stats().sent;
        Ok(SpreadOutcome {
            seed,
            nodes: live,
            writer,
            rounds,
            residue: 1.0 - tracked.informed as f64 / live as f64,
            informed_after,
            traffic: Traffic {
                datagrams: sent_after.datagrams - sent_before.datagrams,
                bytes: sent_after.bytes - sent_before.bytes,
            },
            measured: end - written_at,
            rumor_pushes: (0..sim.len()).filter_map(|i| sim.node(i)).map(|n| n.metrics().rumor_pushes).sum(),
            interval,
            trace_hash: sim.trace_hash(),
        })
    }

    /// One steady trial: the traffic of `rounds` intervals of an idle in-sync cluster.
    pub fn steady(
        &self,
        seed: u64,
        rounds: u32,
        mut progress: impl FnMut(Progress),
    ) -> Result<SteadyOutcome, SimError> {
        let mut sim = self.start(seed, &mut progress)?;
        let before = sim.stats().sent;
        let start = sim.now();
        for round in 1..=rounds {
            sim.run_until(start + self.interval() * round)?;
            progress(Progress::Measuring { round, of: rounds });
        }
        let after = sim.stats().sent;
        Ok(SteadyOutcome {
            seed,
            nodes: sim.live_nodes(),
            rounds,
            traffic: Traffic {
                datagrams: after.datagrams - before.datagrams,
                bytes: after.bytes - before.bytes,
            },
            trace_hash: sim.trace_hash(),
        })
    }
}

/// The quiet window of a burst trial, as the peers' harnesses measure it: `after` the
/// writes, for `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietWindow {
    /// From the writes to the start of the window.
    pub after: Duration,
    /// The window's length.
    pub length: Duration,
}

impl QuietWindow {
    /// memberlist's and chitchat's harnesses: 10 s from 1 s after the last write.
    pub const PEERS: QuietWindow =
        QuietWindow { after: Duration::from_secs(1), length: Duration::from_secs(10) };
}

impl Study {
    /// One burst trial: every node of the idle in-sync cluster writes one key at the same
    /// moment; the trial measures how long until every node holds every key (`max_rounds`
    /// bounds the wait), then the traffic of the `quiet` window that follows the writes.
    pub fn burst(
        &self,
        seed: u64,
        max_rounds: u32,
        quiet: QuietWindow,
        mut progress: impl FnMut(Progress),
    ) -> Result<BurstOutcome, SimError> {
        if self.nodes < 2 {
            return Err(SimError::Setup("a burst trial needs at least two nodes".to_owned()));
        }
        let mut sim = self.start(seed, &mut progress)?;
        let interval = self.interval();
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 2, 0));
        sim.run_for(interval.mul_f64(rng.random::<f64>()))?;
        let writes =
            (0..self.nodes).map(|node| sim.set(node, "burst", "x")).collect::<Result<Vec<_>, _>>()?;
        let written_at = sim.now();
        let all_informed = |sim: &Simulation| -> Option<Duration> {
            writes
                .iter()
                .map(|w| sim.write(*w).and_then(|w| w.all_informed_at))
                .try_fold(Duration::ZERO, |latest, at| at.map(|at| latest.max(at)))
        };
        for round in 1..=max_rounds {
            if sim.run_until_true(written_at + interval * round, |sim| all_informed(sim).is_some())? {
                break;
            }
            let informed =
                writes.iter().filter(|w| sim.write(**w).is_some_and(|w| w.all_informed_at.is_some())).count();
            progress(Progress::Spreading { round, informed, live: self.nodes });
        }
        let converged = all_informed(&sim);
        let start = written_at + quiet.after;
        if sim.now() < start {
            sim.run_until(start)?;
        }
        let before = sim.stats().sent;
        let kinds_before = sim.stats().sent_kinds;
        let counters_before = QuietCounters::of(&sim);
        sim.run_until(sim.now().max(start) + quiet.length)?;
        let after = sim.stats().sent;
        let quiet_kinds = sim.stats().sent_kinds.since(&kinds_before);
        let counters = QuietCounters::of(&sim).minus(&counters_before);
        Ok(BurstOutcome {
            seed,
            nodes: sim.live_nodes(),
            rounds: converged.map(|at| (at - written_at).as_secs_f64() / interval.as_secs_f64()),
            quiet_traffic: Traffic {
                datagrams: after.datagrams - before.datagrams,
                bytes: after.bytes - before.bytes,
            },
            quiet_counters: counters,
            quiet_kinds,
            quiet: quiet.length,
            trace_hash: sim.trace_hash(),
        })
    }
}

/// What one burst trial measured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BurstOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Live nodes.
    pub nodes: usize,
    /// Intervals from the writes until every node held every key (fractional); `None` if
    /// that did not happen within the trial's bound.
    pub rounds: Option<f64>,
    /// Datagrams and bytes all nodes sent in the quiet window.
    pub quiet_traffic: Traffic,
    /// What the nodes did in the quiet window.
    pub quiet_counters: QuietCounters,
    /// The datagrams of the quiet window by body kind.
    pub quiet_kinds: KindCounts,
    /// The quiet window's length.
    pub quiet: Duration,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

impl BurstOutcome {
    /// Bytes each node sent per second of the quiet window.
    pub fn quiet_bytes_per_node_per_second(&self) -> f64 {
        self.quiet_traffic.bytes as f64 / (self.nodes.max(1) as f64 * self.quiet.as_secs_f64().max(1e-9))
    }

    /// Datagrams each node sent per second of the quiet window.
    pub fn quiet_datagrams_per_node_per_second(&self) -> f64 {
        self.quiet_traffic.datagrams as f64 / (self.nodes.max(1) as f64 * self.quiet.as_secs_f64().max(1e-9))
    }

    /// Datagrams of `kind` each node sent per second of the quiet window.
    pub fn quiet_kind_per_node_per_second(&self, kind: BodyKind) -> f64 {
        self.quiet_kinds.get(kind) as f64 / (self.nodes.max(1) as f64 * self.quiet.as_secs_f64().max(1e-9))
    }
}

/// The node counters that say where quiet traffic goes, summed over the live nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuietCounters {
    /// Anti-entropy rounds run (skipped ones included).
    pub gossip_rounds: u64,
    /// Rounds skipped because a probe showed the node in sync.
    pub rounds_skipped_in_sync: u64,
    /// `Syn`s that met a peer in sync.
    pub exchanges_in_sync: u64,
    /// `Syn`s that met a peer out of sync.
    pub exchanges_out_of_sync: u64,
    /// Direct probes sent.
    pub probes_sent: u64,
}

impl QuietCounters {
    fn of(sim: &Simulation) -> Self {
        let mut sum = Self::default();
        for metrics in (0..sim.len()).filter_map(|i| sim.node(i)).map(|node| node.metrics()) {
            sum.gossip_rounds += metrics.gossip_rounds;
            sum.rounds_skipped_in_sync += metrics.rounds_skipped_in_sync;
            sum.exchanges_in_sync += metrics.exchanges_in_sync;
            sum.exchanges_out_of_sync += metrics.exchanges_out_of_sync;
            sum.probes_sent += metrics.probes_sent;
        }
        sum
    }

    fn minus(&self, earlier: &Self) -> Self {
        Self {
            gossip_rounds: self.gossip_rounds - earlier.gossip_rounds,
            rounds_skipped_in_sync: self.rounds_skipped_in_sync - earlier.rounds_skipped_in_sync,
            exchanges_in_sync: self.exchanges_in_sync - earlier.exchanges_in_sync,
            exchanges_out_of_sync: self.exchanges_out_of_sync - earlier.exchanges_out_of_sync,
            probes_sent: self.probes_sent - earlier.probes_sent,
        }
    }
}

/// What counts as dissemination still going on: rumor pushes when rumors spread alone,
/// datagrams otherwise.
fn activity(sim: &Simulation, rumors_only: bool) -> u64 {
    if rumors_only {
        (0..sim.len()).filter_map(|i| sim.node(i)).map(|node| node.metrics().rumor_pushes).sum()
    } else {
        sim.stats().sent.datagrams
    }
}

/// What one spread trial measured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SpreadOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Live nodes.
    pub nodes: usize,
    /// The node that wrote.
    pub writer: usize,
    /// Intervals from the write until every live node had it (fractional); `None` if some
    /// never did.
    pub rounds: Option<f64>,
    /// Fraction of live nodes that never learned the write.
    pub residue: f64,
    /// For each node that learned it (the writer included, at zero), how long after the
    /// write; sorted.
    pub informed_after: Vec<Duration>,
    /// Datagrams and bytes all nodes sent from the write until every node had it (or the
    /// end of the trial).
    pub traffic: Traffic,
    /// The length of that window.
    pub measured: Duration,
    /// Rumor pushes sent by the nodes still up, over their whole life.
    pub rumor_pushes: u64,
    /// The gossip interval (the unit of a round).
    pub interval: Duration,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

impl SpreadOutcome {
    /// The fraction of live nodes that had the write `rounds` intervals after it.
    pub fn informed_fraction_at(&self, rounds: f64) -> f64 {
        let at = self.interval.mul_f64(rounds.max(0.0));
        let informed = self.informed_after.partition_point(|after| *after <= at);
        informed as f64 / self.nodes.max(1) as f64
    }
}

/// What one steady trial measured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SteadyOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Live nodes.
    pub nodes: usize,
    /// Intervals measured.
    pub rounds: u32,
    /// Datagrams and bytes all nodes sent meanwhile.
    pub traffic: Traffic,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

impl SteadyOutcome {
    /// Bytes each node sent per interval, on average.
    pub fn bytes_per_node_per_round(&self) -> f64 {
        self.traffic.bytes as f64 / (self.nodes.max(1) as f64 * f64::from(self.rounds.max(1)))
    }

    /// Datagrams each node sent per interval, on average.
    pub fn messages_per_node_per_round(&self) -> f64 {
        self.traffic.datagrams as f64 / (self.nodes.max(1) as f64 * f64::from(self.rounds.max(1)))
    }
}
