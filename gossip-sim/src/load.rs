//! The steady write load: every node updates one key of its own table every `period` (a
//! load report, as Cassandra's nodes gossip theirs), each at its own phase. The trial
//! measures how long each update takes to reach every node, and what the cluster sends
//! meanwhile.
//!
//! The load runs for `warmup`, then `measure` (the updates written then are the measured
//! ones, and the traffic of that window is counted), then `tail`, so that the last measured
//! updates spread under the same load as the first ones.

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use gossip_core::sim::{BodyKind, KindCounts, SimError, Simulation, Traffic, WriteId, derive_seed};

use crate::progress::Progress;
use crate::trial::Study;

/// The shape of a steady-load trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPlan {
    /// Each node updates its key this often.
    pub period: Duration,
    /// Load before the measured window (the cluster reaches its steady state).
    pub warmup: Duration,
    /// The measured window: its updates are timed, its traffic counted.
    pub measure: Duration,
    /// Load after the measured window, while its last updates spread.
    pub tail: Duration,
}

impl LoadPlan {
    /// An update every 5 s per node, one period of warm-up, 30 s measured, one period of
    /// tail.
    pub const DEFAULT: LoadPlan = LoadPlan {
        period: Duration::from_secs(5),
        warmup: Duration::from_secs(5),
        measure: Duration::from_secs(30),
        tail: Duration::from_secs(5),
    };
}

/// What one steady-load trial measured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoadOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Live nodes.
    pub nodes: usize,
    /// For each update written in the measured window that reached every node, the intervals
    /// it took (fractional); sorted.
    pub update_rounds: Vec<f64>,
    /// Updates of the measured window that had not reached every node by the end.
    pub incomplete: usize,
    /// Datagrams and bytes all nodes sent in the measured window.
    pub traffic: Traffic,
    /// The datagrams of the measured window by body kind.
    pub kinds: KindCounts,
    /// The measured window's length.
    pub measure: Duration,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

impl LoadOutcome {
    /// Bytes each node sent per second of the measured window.
    pub fn bytes_per_node_per_second(&self) -> f64 {
        self.traffic.bytes as f64 / self.node_seconds()
    }

    /// Datagrams each node sent per second of the measured window.
    pub fn datagrams_per_node_per_second(&self) -> f64 {
        self.traffic.datagrams as f64 / self.node_seconds()
    }

    /// Datagrams of `kind` each node sent per second of the measured window.
    pub fn kind_per_node_per_second(&self, kind: BodyKind) -> f64 {
        self.kinds.get(kind) as f64 / self.node_seconds()
    }

    fn node_seconds(&self) -> f64 {
        self.nodes.max(1) as f64 * self.measure.as_secs_f64().max(1e-9)
    }
}

impl Study {
    /// One steady-load trial (see the [module](self)) on the idle in-sync cluster.
    pub fn load(
        &self,
        seed: u64,
        plan: LoadPlan,
        mut progress: impl FnMut(Progress),
    ) -> Result<LoadOutcome, SimError> {
        if self.nodes < 2 || plan.period.is_zero() {
            return Err(SimError::Setup("a load trial needs two nodes and a nonzero period".to_owned()));
        }
        let mut sim = self.start(seed, &mut progress)?;
        let interval = self.node_config.gossip_interval;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 3, 0));
        let start = sim.now();
        let measure_from = start + plan.warmup;
        let measure_until = measure_from + plan.measure;
        let end = measure_until + plan.tail;
        let mut schedule: Vec<(Duration, usize)> = Vec::new();
        for node in 0..self.nodes {
            let mut at = start + plan.period.mul_f64(rng.random::<f64>());
            while at < end {
                schedule.push((at, node));
                at += plan.period;
            }
        }
        schedule.sort_unstable();

        let total_rounds = ((end - start).as_secs_f64() / interval.as_secs_f64()).ceil() as u32;
        let mut measured: Vec<WriteId> = Vec::new();
        let mut window: Option<Window> = None;
        for (at, node) in schedule {
            if window.is_none() && at >= measure_from {
                sim.run_until(measure_from)?;
                window = Some(Window::open(&sim));
            }
            if let Some(open) = window.as_mut().filter(|w| w.closed.is_none() && at >= measure_until) {
                sim.run_until(measure_until)?;
                open.close(&sim);
            }
            sim.run_until(at)?;
            let load = format!("{:.2}", rng.random::<f64>() * 4.0);
            let write = sim.set(node, "load", load)?;
            if (measure_from..measure_until).contains(&at) {
                measured.push(write);
            }
            let round = ((at - start).as_secs_f64() / interval.as_secs_f64()) as u32;
            progress(Progress::Measuring { round, of: total_rounds });
        }
        let mut window = window.unwrap_or_else(|| Window::open(&sim));
        if window.closed.is_none() {
            sim.run_until(measure_until.max(sim.now()))?;
            window.close(&sim);
        }
        sim.run_until(end.max(sim.now()))?;

        let mut update_rounds = Vec::new();
        let mut incomplete = 0;
        for write in measured.iter().filter_map(|id| sim.write(*id)) {
            match write.all_informed_at {
                Some(at) => {
                    update_rounds.push((at - write.written_at).as_secs_f64() / interval.as_secs_f64())
                }
                None => incomplete += 1,
            }
        }
        update_rounds.sort_by(f64::total_cmp);
        let (traffic, kinds) = window.closed.unwrap_or_default();
        Ok(LoadOutcome {
            seed,
            nodes: sim.live_nodes(),
            update_rounds,
            incomplete,
            traffic,
            kinds,
            measure: plan.measure,
            trace_hash: sim.trace_hash(),
        })
    }
}

/// The traffic counters at the opening of the measured window, and what was sent in it
/// once it closed.
struct Window {
    sent: Traffic,
    kinds: KindCounts,
    closed: Option<(Traffic, KindCounts)>,
}

impl Window {
    fn open(sim: &Simulation) -> Self {
        Self { sent: sim.stats().sent, kinds: sim.stats().sent_kinds, closed: None }
    }

    fn close(&mut self, sim: &Simulation) {
        let sent = sim.stats().sent;
        let traffic =
            Traffic { datagrams: sent.datagrams - self.sent.datagrams, bytes: sent.bytes - self.sent.bytes };
        self.closed = Some((traffic, sim.stats().sent_kinds.since(&self.kinds)));
    }
}
