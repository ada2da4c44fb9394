//! Chaos runs: a random cluster, configuration, network and fault schedule, all derived from
//! one seed, then a calm phase in which the protocol must settle into agreement.
//!
//! See [`Chaos`].

use std::time::Duration;

use bytes::Bytes;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use gossip_core::sim::invariants::{self, Checks};
use gossip_core::sim::{
    Action, Bootstrap, ClockJump, Latency, LinkModel, ProcessingDelay, Scenario, SimConfig, SimError,
    Simulation, Violation, derive_seed, min_suspicion_timeout, node_address,
};
use gossip_core::{AntiEntropyMode, Config, Dissemination};

/// Keys the writes draw from: few, so that writes and deletes collide.
const KEYS: u32 = 12;

/// The chaos generator and runner: random clusters, configurations, networks and fault
/// schedules, each a pure function of its seed.
///
/// A run has two phases:
///
/// 1. **Chaos.** 2 to 64 nodes (small clusters more often) join a few seeds over links with
///    0 to 60% loss, 0 to 15% duplication, latency and jitter, while the plan partitions
///    them (symmetric, one-way, isolating one node), crashes and restarts them (sometimes
///    at a new address), pauses them, slows them down, jumps their clocks, and writes and
///    deletes keys on them concurrently. The node configuration is drawn too (intervals,
///    Lifeguard on or off, short tombstone grace and dead retention so that collection and
///    forgetting happen within the run, a small key cap). Every invariant of
///    [`invariants`] is checked after every step.
/// 2. **Calm.** Every cut heals, links become perfect, paused nodes resume, slow ones speed
///    up, and each crashed node is restarted or left down for good (a seed is always
///    brought back). The run then waits, up to a deadline computed from the configuration
///    (suspicion timeouts, dead retention, join backoff), for
///    [`check_agreement`](gossip_core::sim::invariants::check_agreement) to pass twice, a few
///    probe periods apart; if the deadline passes first, the last disagreement is the
///    violation.
///
/// ```
/// use gossip_sim::chaos::Chaos;
///
/// let outcome = Chaos::new().run(7).unwrap();
/// assert!(outcome.violation.is_none(), "{}", outcome.violation.unwrap());
/// assert_eq!(Chaos::new().run(7).unwrap().trace_hash, outcome.trace_hash);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Chaos {
    /// Largest cluster drawn (at least 2).
    pub max_nodes: usize,
    /// How often invariants are checked during the run.
    pub checks: Checks,
    /// The replay command printed with a violation (`{seed}` is replaced).
    pub replay: Option<String>,
}

/// How many faults of each kind a run played, and how often the protocol's recovery
/// mechanisms fired meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultCounts {
    /// Symmetric partitions into two random sides.
    pub partitions: u32,
    /// One-way cuts.
    pub one_way_cuts: u32,
    /// One node cut off from all others.
    pub isolations: u32,
    /// Crashes.
    pub crashes: u32,
    /// Restarts (during the chaos phase, at the same or a new address).
    pub restarts: u32,
    /// Pauses.
    pub pauses: u32,
    /// Clock jumps.
    pub clock_jumps: u32,
    /// Slowdowns (a processing delay).
    pub slowdowns: u32,
    /// Writes.
    pub writes: u32,
    /// Deletes.
    pub deletes: u32,
    /// Nodes left down for good in the calm phase.
    pub left_down: u32,
    /// Contributions to aggregates (`aggregate_set`).
    pub aggregate_sets: u32,
    /// Tombstones the live nodes collected (their metrics at the end of the run).
    pub tombstones_collected: u64,
    /// Departed members the live nodes forgot.
    pub members_forgotten: u64,
    /// Replicas rebuilt because a peer had collected tombstones they lacked.
    pub replica_resets: u64,
    /// Accusations the live nodes refuted.
    pub refutations: u64,
}

impl FaultCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.partitions += other.partitions;
        self.one_way_cuts += other.one_way_cuts;
        self.isolations += other.isolations;
        self.crashes += other.crashes;
        self.restarts += other.restarts;
        self.pauses += other.pauses;
        self.clock_jumps += other.clock_jumps;
        self.slowdowns += other.slowdowns;
        self.writes += other.writes;
        self.deletes += other.deletes;
        self.left_down += other.left_down;
        self.aggregate_sets += other.aggregate_sets;
        self.tombstones_collected += other.tombstones_collected;
        self.members_forgotten += other.members_forgotten;
        self.replica_resets += other.replica_resets;
        self.refutations += other.refutations;
    }
}

/// One seed's cluster and fault schedule (see [`Chaos::plan`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChaosPlan {
    /// The simulator settings (nodes, node configuration, link, seeds).
    pub config: SimConfig,
    /// The chaos phase.
    pub scenario: Scenario,
    /// When the calm phase starts.
    pub calm_at: Duration,
    /// How long the calm phase may take to reach agreement.
    pub calm_deadline: Duration,
    /// The faults of the chaos phase.
    pub faults: FaultCounts,
}

/// What one chaos run did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChaosOutcome {
    /// The seed.
    pub seed: u64,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// The faults played.
    pub faults: FaultCounts,
    /// Virtual time from the start of the calm phase to agreement; `None` if it failed.
    pub settled_after: Option<Duration>,
    /// The broken invariant, if any.
    pub violation: Option<Box<Violation>>,
    /// Steps the simulator ran.
    pub steps: u64,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

impl Default for Chaos {
    fn default() -> Self {
        Self::new()
    }
}

impl Chaos {
    /// Up to 64 nodes, invariants checked after every step.
    pub fn new() -> Self {
        Self { max_nodes: 64, checks: Checks::EveryStep, replay: None }
    }

    /// With this replay command (`{seed}` is replaced by the seed).
    pub fn with_replay(mut self, replay: impl Into<String>) -> Self {
        self.replay = Some(replay.into());
        self
    }

    /// Drawing at most this many nodes.
    pub fn with_max_nodes(mut self, max_nodes: usize) -> Self {
        self.max_nodes = max_nodes.max(2);
        self
    }

    /// The cluster and fault schedule of `seed`.
    pub fn plan(&self, seed: u64) -> ChaosPlan {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 3, 0));
        // Small clusters more often: they are cheap and break in more ways per second.
        let spread = (self.max_nodes.max(2) - 2) as f64;
        let n = 2 + (spread * rng.random::<f64>().powi(2)).round() as usize;
        let node_config = node_config(&mut rng);
        let link = link(&mut rng);
        let seeds = pick(&mut rng, n, 3.min(n));
        let mut config = SimConfig::new(n, seed)
            .with_node_config(node_config.clone())
            .with_link(link)
            .with_bootstrap(Bootstrap::Join(seeds.clone()))
            .with_checks(self.checks);
        config.restart_seeds = seeds;
        config.replay = self.replay.clone();
        let chaos = Duration::from_secs(rng.random_range(5..=60));
        let (mut scenario, mut faults) = faults(&mut rng, n, chaos);
        // Aggregation draws from its own stream, so the fault schedules stay those of the
        // seeds run before it existed.
        let mut aggregation = ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 5, 0));
        aggregates(&mut aggregation, n, chaos, &mut config.node_config, &mut scenario, &mut faults);
        ChaosPlan { config, scenario, calm_at: chaos, calm_deadline: calm_deadline(&node_config, n), faults }
    }

    /// Plays the plan of `seed`: the chaos phase, then the calm phase until agreement.
    /// A broken invariant is reported in the outcome; `Err` means the run could not be set
    /// up at all.
    pub fn run(&self, seed: u64) -> Result<ChaosOutcome, SimError> {
        self.run_plan(self.plan(seed)).map(|(_, outcome)| outcome)
    }

    /// Plays `plan` (from [`plan`](Self::plan), perhaps changed: to record events, say) and
    /// returns the simulation for inspection along with the outcome.
    pub fn run_plan(&self, plan: ChaosPlan) -> Result<(Simulation, ChaosOutcome), SimError> {
        let seed = plan.config.seed;
        let nodes = plan.config.nodes;
        let mut sim = Simulation::new(plan.config.clone())?;
        sim.load(&plan.scenario);
        let mut faults = plan.faults;
        let mut outcome = ChaosOutcome {
            seed,
            nodes,
            faults,
            settled_after: None,
            violation: None,
            steps: 0,
            trace_hash: 0,
        };
        let result = sim
            .run_until(plan.calm_at)
            .and_then(|()| calm(&mut sim, &plan, &mut faults))
            .and_then(|()| settle(&mut sim, &plan));
        match result {
            Ok(settled) => outcome.settled_after = Some(settled),
            Err(SimError::Invariant(violation)) => outcome.violation = Some(violation),
            Err(other) => return Err(other),
        }
        for index in 0..sim.len() {
            let Some(node) = sim.node(index) else { continue };
            let metrics = node.metrics();
            faults.tombstones_collected += metrics.tombstones_collected;
            faults.members_forgotten += metrics.members_forgotten;
            faults.replica_resets += metrics.replica_resets;
            faults.refutations += metrics.refutations;
        }
        outcome.faults = faults;
        outcome.steps = sim.steps();
        outcome.trace_hash = sim.trace_hash();
        Ok((sim, outcome))
    }
}

/// Heals everything: cuts, links, pauses, slowdowns; restarts each crashed node or leaves it
/// down for good (a seed comes back unless one that has joined is up, so restarted nodes
/// have someone to join).
fn calm(sim: &mut Simulation, plan: &ChaosPlan, faults: &mut FaultCounts) -> Result<(), SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(sim.seed(), u64::MAX - 4, 0));
    sim.heal_all();
    let clean = LinkModel::fixed(Duration::from_millis(1));
    sim.set_default_link(clean)?;
    let n = sim.len();
    for index in 0..n {
        sim.set_processing_delay(index, ProcessingDelay::NONE)?;
        if sim.is_paused(index) {
            sim.resume(index)?;
        }
    }
    // A seed counts only once it has joined: one restarted while its own seeds were all
    // down has no one to join, and no one reaches it if it moved (an island of one).
    let seeds = &plan.config.restart_seeds;
    let seed_up = seeds.iter().any(|s| sim.node(*s).is_some_and(|node| node.has_joined()));
    let comeback = if seed_up { None } else { seeds.iter().copied().find(|s| sim.node(*s).is_none()) };
    for index in 0..n {
        if sim.node(index).is_some() {
            continue;
        }
        if comeback == Some(index) || rng.random_bool(0.5) {
            sim.restart(index)?;
        } else {
            faults.left_down += 1;
        }
    }
    Ok(())
}

/// Runs the calm phase until [`invariants::check_agreement`] passes twice, five probe
/// periods apart; returns the time taken.
fn settle(sim: &mut Simulation, plan: &ChaosPlan) -> Result<Duration, SimError> {
    let start = sim.now();
    let deadline = start + plan.calm_deadline;
    let every = plan.config.node_config.swim.probe_interval;
    let mut agreed_at: Option<Duration> = None;
    loop {
        sim.run_until((sim.now() + every).min(deadline))?;
        match invariants::check_agreement(sim) {
            Ok(()) => match agreed_at {
                // At the deadline, agreement that has not yet lasted five periods still counts.
                Some(at) if sim.now() >= at + every * 5 || sim.now() >= deadline => return Ok(at - start),
                Some(_) => {}
                None => agreed_at = Some(sim.now()),
            },
            Err(violation) if sim.now() >= deadline => {
                return Err(SimError::Invariant(Box::new(violation)));
            }
            Err(_) => agreed_at = None,
        }
    }
}

/// The longest the calm phase may need: a suspicion at its longest (local health at its
/// worst), then dead retention twice (a member forgotten is kept out that long again), the
/// join backoff at its longest, and a minute to spread.
fn calm_deadline(config: &Config, n: usize) -> Duration {
    let swim = &config.swim;
    let min = min_suspicion_timeout(swim, n);
    let suspicion = min * swim.suspicion_max_timeout_mult * (swim.max_health_score + 1);
    suspicion + swim.dead_retention * 2 + swim.join_retry_max + Duration::from_secs(60)
}

/// A node configuration: a preset with drawn intervals, modes and limits.
fn node_config(rng: &mut ChaCha8Rng) -> Config {
    let mut config = if rng.random_bool(0.5) { Config::lan() } else { Config::local() };
    config.gossip_interval = Duration::from_millis(rng.random_range(50..=500));
    config.fanout = rng.random_range(1..=4);
    config.swim.probe_interval = Duration::from_millis(rng.random_range(200..=1500));
    config.swim.probe_timeout = config.swim.probe_interval.mul_f64(rng.random_range(0.2..0.5));
    config.swim.lifeguard = rng.random_bool(0.8);
    config.swim.suspicion_mult = rng.random_range(2..=5);
    (config.mode, config.dissemination) = match rng.random_range(0..4) {
        0 => (AntiEntropyMode::PushPull, Dissemination::AntiEntropy),
        1 => (AntiEntropyMode::PushPull, Dissemination::Both),
        2 => (AntiEntropyMode::Pull, Dissemination::Both),
        _ => (AntiEntropyMode::Push, Dissemination::Both),
    };
    if rng.random_bool(0.3) {
        config.max_idle_gossip_interval = config.gossip_interval;
    }
    // Short enough that tombstones are collected and the dead forgotten within the run.
    config.tombstone_grace = Duration::from_millis(rng.random_range(500..=20_000));
    config.swim.dead_retention = Duration::from_secs(rng.random_range(10..=90));
    if rng.random_bool(0.3) {
        // Fewer than the keys written: some writes are refused, the cap must hold.
        config.max_keys_per_node = rng.random_range(4..KEYS as usize);
    }
    config
}

/// The chaos phase's default link: loss, duplication, latency with jitter.
fn link(rng: &mut ChaCha8Rng) -> LinkModel {
    let min = Duration::from_micros(rng.random_range(100..=20_000));
    let latency = match rng.random_range(0..3) {
        0 => Latency::Fixed(min),
        1 => Latency::Uniform { min, max: min + Duration::from_micros(rng.random_range(0..=100_000)) },
        _ => Latency::Exponential { min, mean_extra: Duration::from_micros(rng.random_range(0..=50_000)) },
    };
    LinkModel::fixed(min)
        .with_latency(latency)
        .with_loss(rng.random_range(0.0..=0.6))
        .with_duplication(rng.random_range(0.0..=0.15))
}

/// `count` distinct nodes of `0..n`, sorted.
fn pick(rng: &mut ChaCha8Rng, n: usize, count: usize) -> Vec<usize> {
    let mut chosen = rand::seq::index::sample(rng, n, count.min(n)).into_vec();
    chosen.sort_unstable();
    chosen
}

/// Splits `0..n` into two non-empty random sides (needs `n >= 2`).
fn split(rng: &mut ChaCha8Rng, n: usize) -> (Vec<usize>, Vec<usize>) {
    let size = rng.random_range(1..n);
    let a = pick(rng, n, size);
    let b = (0..n).filter(|i| !a.contains(i)).collect();
    (a, b)
}

/// The chaos phase: faults and writes at random times in `0..chaos`.
fn faults(rng: &mut ChaCha8Rng, n: usize, chaos: Duration) -> (Scenario, FaultCounts) {
    let mut scenario = Scenario::new();
    let mut counts = FaultCounts::default();
    let at = |rng: &mut ChaCha8Rng| chaos.mul_f64(rng.random::<f64>());
    let lasting = |rng: &mut ChaCha8Rng| {
        rng.random_bool(0.7).then(|| Duration::from_millis(rng.random_range(100..=30_000)))
    };
    let events = rng.random_range(1..=(n / 2 + 6));
    for _ in 0..events {
        let when = at(rng);
        let node = rng.random_range(0..n);
        match rng.random_range(0..10) {
            0 => {
                let (a, b) = split(rng, n);
                counts.partitions += 1;
                scenario.push(when, Action::Partition { a, b, heal_after: lasting(rng) });
            }
            1 => {
                let (from, to) = split(rng, n);
                counts.one_way_cuts += 1;
                scenario.push(when, Action::CutOneWay { from, to, heal_after: lasting(rng) });
            }
            2 => {
                let rest = (0..n).filter(|i| *i != node).collect();
                counts.isolations += 1;
                scenario.push(when, Action::Partition { a: vec![node], b: rest, heal_after: lasting(rng) });
            }
            3 => {
                counts.crashes += 1;
                scenario.push(when, Action::Crash(node));
                if rng.random_bool(0.5) {
                    counts.restarts += 1;
                    let later = when + Duration::from_millis(rng.random_range(0..=20_000));
                    scenario.push(later.min(chaos), restart(rng, node));
                }
            }
            4 => {
                counts.restarts += 1;
                scenario.push(when, restart(rng, node));
            }
            5 => {
                counts.pauses += 1;
                scenario.push(when, Action::Pause(node));
                let later = when + Duration::from_millis(rng.random_range(0..=40_000));
                if later < chaos {
                    scenario.push(later, Action::Resume(node));
                }
            }
            6 => {
                counts.clock_jumps += 1;
                let by = Duration::from_millis(rng.random_range(1..=30_000));
                let jump =
                    if rng.random_bool(0.5) { ClockJump::Forward(by) } else { ClockJump::Backward(by) };
                scenario.push(when, Action::ClockJump { node, jump });
            }
            7 => {
                counts.slowdowns += 1;
                let delay = Duration::from_millis(rng.random_range(1..=3_000));
                let timers = if rng.random_bool(0.5) { delay } else { Duration::ZERO };
                let delay = ProcessingDelay::new(delay, timers);
                scenario.push(when, Action::SetProcessingDelay { node, delay });
            }
            _ => {}
        }
    }
    // Concurrent writes and deletes all through the chaos phase.
    let writes = rng.random_range(0..=(2 * n + 20));
    for _ in 0..writes {
        let when = at(rng);
        let node = rng.random_range(0..n);
        let key = format!("k{}", rng.random_range(0..KEYS));
        if rng.random_bool(0.25) {
            counts.deletes += 1;
            scenario.push(when, Action::delete(node, key));
        } else {
            counts.writes += 1;
            let value = Bytes::from(format!("v{}", rng.random_range(0..1_000_000u32)));
            scenario.push(when, Action::set(node, key, value));
        }
    }
    (scenario, counts)
}

/// Contributions to up to three aggregates through the chaos phase, in six plans of ten, with
/// short epochs so that several end during the run. Mass lost to crashes and the like is
/// not checked (the next epoch repairs it); the caps, the invariants and the absence of
/// panics are.
fn aggregates(
    rng: &mut ChaCha8Rng,
    n: usize,
    chaos: Duration,
    config: &mut Config,
    scenario: &mut Scenario,
    faults: &mut FaultCounts,
) {
    if !rng.random_bool(0.6) {
        return;
    }
    config.aggregation.interval = Duration::from_millis(rng.random_range(100..=1000));
    config.aggregation.epoch_rounds = rng.random_range(5..=60);
    for _ in 0..rng.random_range(1..=2 * n) {
        let when = chaos.mul_f64(rng.random::<f64>());
        let node = rng.random_range(0..n);
        let name = format!("a{}", rng.random_range(0..3));
        let value = rng.random_range(-100.0..100.0);
        faults.aggregate_sets += 1;
        scenario.push(when, Action::AggregateSet { node, name, value });
    }
}

/// A restart, at a new address one time in four.
fn restart(rng: &mut ChaCha8Rng, node: usize) -> Action {
    if rng.random_bool(0.25) {
        let mut address = node_address(node);
        address.set_port(address.port().wrapping_add(rng.random_range(1..=100)));
        Action::RestartAt { node, address }
    } else {
        Action::Restart(node)
    }
}
