//! Ready-made trials of membership and failure detection (SWIM with Lifeguard), shared by
//! the `simulate` command and the simulation tests.
//!
//! Every trial starts from an in-sync cluster
//! ([`Bootstrap::InSync`](gossip_core::sim::Bootstrap::InSync): every node knows every other
//! as Alive) that runs [`SwimStudy::settle_periods`] probe periods before anything
//! happens, so that probing is in its steady state. Times are measured from the moment of
//! the fault (or of the heal) with the simulator's exact event times; "periods" are
//! `swim.probe_interval`s.
//!
//! - [`crash`](SwimStudy::crash): one random member crashes; when is it first probed, first
//!   suspected, first declared dead, and when does every member hold it dead; how many
//!   probe messages (pings, ping-reqs, acks, nacks) each member sends per period meanwhile.
//! - [`healthy`](SwimStudy::healthy) and [`slow`](SwimStudy::slow): nobody fails; count the
//!   false suspicions and false deaths, on a lossy network or with a fraction of slow
//!   members (a [`ProcessingDelay`]).
//! - [`partition`](SwimStudy::partition): the cluster splits in two halves, then heals; how
//!   long until every member sees every other Alive again, and how many `MemberFailed`
//!   events name a member the observer could reach (`false_failures_after_heal`).
//! - [`restart`](SwimStudy::restart): a member restarts under a new generation (at a new
//!   address); how long until every member sees the new generation Alive there.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use gossip_core::sim::{
    BodyKind, Checks, KindCounts, LinkModel, MemberChange, ProcessingDelay, SimError, Simulation,
    derive_seed, index_of_name, min_suspicion_timeout, node_address, node_name,
};
use gossip_core::{Config, MemberState};

use crate::progress::Progress;
use crate::setup::{InSync, start_in_sync};

mod outcome;

pub use outcome::{CrashOutcome, FalsePositives, PartitionOutcome, RestartOutcome, Tally};

/// How often the trials that wait for a state (partition, restart) look at every node's
/// table: the resolution of `heal` and `rejoin`.
const POLL: Duration = Duration::from_millis(10);

/// The cluster the membership (SWIM) trials run on, and the trials.
///
/// Every trial starts from an in-sync cluster (every node knows every other as Alive) that
/// runs [`settle_periods`](Self::settle_periods) probe periods before its fault. Times are
/// measured from the fault (or the heal) with the simulator's exact event times; a period is
/// `swim.probe_interval`.
///
/// - [`crash`](Self::crash): one member crashes; first probe, first suspicion, first death,
///   everyone knows, and the probe load meanwhile.
/// - [`healthy`](Self::healthy) and [`slow`](Self::slow): nobody fails; false suspicions
///   and false deaths, on a lossy link or with slow members.
/// - [`partition`](Self::partition): two halves apart, then healed; until every member sees
///   every other Alive.
/// - [`restart`](Self::restart): one member restarts (at a new address); until every member
///   sees the new generation Alive there.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SwimStudy {
    /// Number of nodes.
    pub nodes: usize,
    /// The configuration of every node (its `swim.probe_interval` is the unit of a period).
    pub node_config: Config,
    /// Every link.
    pub link: LinkModel,
    /// How often invariants are checked.
    pub checks: Checks,
    /// Probe periods the in-sync cluster runs before the trial's fault.
    pub settle_periods: u32,
    /// The replay command printed with a violation (`{seed}` is replaced).
    pub replay: Option<String>,
}

/// Which members are slow, and how (see [`SwimStudy::slow`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowdown {
    /// The fraction of members that are slow (rounded to the nearest count, at least one
    /// when above zero).
    pub fraction: f64,
    /// How late each of them handles its datagrams and timers.
    pub delay: ProcessingDelay,
}

impl SwimStudy {
    /// `nodes` nodes running `node_config` over 1 ms perfect links, settling for 10
    /// periods, with invariants checked on one step in `nodes`.
    pub fn new(nodes: usize, node_config: Config) -> Self {
        Self {
            nodes,
            node_config,
            link: LinkModel::default(),
            checks: Checks::Sampled { every: nodes.max(1) as u64 },
            settle_periods: 10,
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

    /// Settling for this many probe periods.
    pub fn with_settle_periods(mut self, periods: u32) -> Self {
        self.settle_periods = periods;
        self
    }

    /// With this replay command.
    pub fn with_replay(mut self, replay: impl Into<String>) -> Self {
        self.replay = Some(replay.into());
        self
    }

    /// The probe period.
    pub fn period(&self) -> Duration {
        self.node_config.swim.probe_interval
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 2, 0))
    }

    /// Builds the in-sync cluster and lets it settle.
    fn start(&self, seed: u64, progress: &mut impl FnMut(Progress)) -> Result<Simulation, SimError> {
        if self.nodes < 2 {
            return Err(SimError::Setup("a membership trial needs at least two nodes".to_owned()));
        }
        let mut sim = start_in_sync(InSync {
            nodes: self.nodes,
            seed,
            node_config: &self.node_config,
            link: self.link,
            checks: self.checks,
            replay: self.replay.as_deref(),
            membership_log: true,
        })?;
        for period in 1..=self.settle_periods {
            sim.run_until(self.period() * period)?;
            progress(Progress::Settling { period, of: self.settle_periods });
        }
        Ok(sim)
    }

    /// The suspicion timeout's minimum and maximum for this cluster.
    fn suspicion_timeouts(&self) -> (Duration, Duration) {
        let swim = &self.node_config.swim;
        let min = min_suspicion_timeout(swim, self.nodes);
        let max = if swim.lifeguard { min * swim.suspicion_max_timeout_mult } else { min };
        (min, max)
    }

    /// One crash trial: after settling, at a random moment, a random member crashes. The
    /// trial runs until every live member holds it Dead, or `max_periods` probe periods.
    pub fn crash(
        &self,
        seed: u64,
        max_periods: u32,
        mut progress: impl FnMut(Progress),
    ) -> Result<CrashOutcome, SimError> {
        let mut sim = self.start(seed, &mut progress)?;
        let period = self.period();
        let mut rng = Self::rng(seed);
        let victim = rng.random_range(0..self.nodes);
        sim.run_for(period.mul_f64(rng.random::<f64>()))?;
        sim.take_membership_log();
        sim.watch_sends_to(victim);
        sim.crash(victim)?;
        let crashed_at = sim.now();
        let before = sim.stats().sent_kinds;
        let live = sim.live_nodes();
        let mut knew_dead = vec![false; self.nodes];
        let mut outcome = CrashOutcome {
            seed,
            nodes: self.nodes,
            crashed: victim,
            period,
            first_probe: None,
            first_suspect: None,
            first_dead: None,
            all_know_dead: None,
            knew_dead: 0,
            live,
            sent: KindCounts::default(),
            window: Duration::ZERO,
            other_suspicions: 0,
            suspicion_timeout: self.suspicion_timeouts().0,
            max_suspicion_timeout: self.suspicion_timeouts().1,
            trace_hash: 0,
        };
        let mut others = Tally::default();
        let mut seen = BTreeSet::new();
        let deadline = crashed_at + period * max_periods;
        let step = period / 10;
        let mut steps = 0u32;
        while outcome.all_know_dead.is_none() && sim.now() < deadline {
            sim.run_until((sim.now() + step).min(deadline))?;
            steps += 1;
            for sent in sim.take_sends_log() {
                if sent.kind == BodyKind::Ping && outcome.first_probe.is_none() {
                    outcome.first_probe = Some(sent.at - crashed_at);
                }
            }
            for record in sim.take_membership_log() {
                let after = record.at - crashed_at;
                if record.member != victim {
                    others.count(&record, &mut seen);
                    continue;
                }
                match record.change {
                    MemberChange::Suspected => {
                        outcome.first_suspect.get_or_insert(after);
                    }
                    MemberChange::Failed => {
                        outcome.first_dead.get_or_insert(after);
                        if !std::mem::replace(&mut knew_dead[record.observer], true) {
                            outcome.knew_dead += 1;
                            if outcome.knew_dead >= live {
                                outcome.all_know_dead = Some(after);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if steps % 10 == 0 {
                let seconds = (sim.now() - crashed_at).as_secs() as u32;
                progress(Progress::Waiting { seconds, done: outcome.knew_dead, of: live });
            }
        }
        outcome.sent = sim.stats().sent_kinds.since(&before);
        outcome.window = sim.now() - crashed_at;
        outcome.other_suspicions = others.suspicions;
        outcome.trace_hash = sim.trace_hash();
        Ok(outcome)
    }

    /// One healthy trial: after settling, `periods` probe periods in which nobody fails
    /// (give the study a lossy link to make it interesting). Every accusation is false.
    pub fn healthy(
        &self,
        seed: u64,
        periods: u32,
        progress: impl FnMut(Progress),
    ) -> Result<FalsePositives, SimError> {
        self.false_positives(seed, periods, None, progress)
    }

    /// One slow trial: after settling, a fraction of random members become slow (they
    /// handle their datagrams and timers late, see [`ProcessingDelay`]) for `periods` probe
    /// periods. Nobody fails; accusations of the healthy members are counted apart from
    /// those of the slow ones.
    pub fn slow(
        &self,
        seed: u64,
        periods: u32,
        slowdown: Slowdown,
        progress: impl FnMut(Progress),
    ) -> Result<FalsePositives, SimError> {
        self.false_positives(seed, periods, Some(slowdown), progress)
    }

    fn false_positives(
        &self,
        seed: u64,
        periods: u32,
        slowdown: Option<Slowdown>,
        mut progress: impl FnMut(Progress),
    ) -> Result<FalsePositives, SimError> {
        let mut sim = self.start(seed, &mut progress)?;
        let mut rng = Self::rng(seed);
        let mut slow = match slowdown {
            Some(Slowdown { fraction, .. }) if fraction > 0.0 => {
                let count = ((fraction * self.nodes as f64).round() as usize).clamp(1, self.nodes);
                rand::seq::index::sample(&mut rng, self.nodes, count).into_vec()
            }
            _ => Vec::new(),
        };
        slow.sort_unstable();
        let mut is_slow = vec![false; self.nodes];
        for &index in &slow {
            is_slow[index] = true;
            if let Some(slowdown) = slowdown {
                sim.set_processing_delay(index, slowdown.delay)?;
            }
        }
        sim.take_membership_log();
        let metrics_before: Vec<_> = (0..self.nodes).map(|i| sim.node(i).map(|n| n.metrics())).collect();
        let before = sim.stats().sent_kinds;
        let start = sim.now();
        let (mut healthy, mut slowed) = (Tally::default(), Tally::default());
        let mut seen = BTreeSet::new();
        for period in 1..=periods {
            sim.run_until(start + self.period() * period)?;
            for record in sim.take_membership_log() {
                let tally = if is_slow[record.member] { &mut slowed } else { &mut healthy };
                tally.count(&record, &mut seen);
            }
            progress(Progress::Running { period, of: periods });
        }
        let mut outcome = FalsePositives {
            seed,
            nodes: self.nodes,
            periods,
            slow,
            healthy,
            slowed,
            sent: sim.stats().sent_kinds.since(&before),
            refutations: (0, 0),
            healthy_probes: (0, 0),
            slow_probes: (0, 0),
            mean_health: (0.0, 0.0),
            trace_hash: sim.trace_hash(),
        };
        let (mut health, mut counted) = ([0u64; 2], [0u64; 2]);
        for (index, before) in metrics_before.iter().enumerate() {
            let (Some(node), Some(before)) = (sim.node(index), before) else { continue };
            let now = node.metrics();
            let refuted = now.refutations - before.refutations;
            let probes = (now.probes_sent - before.probes_sent, now.probes_failed - before.probes_failed);
            let (side, refutations, totals) = if is_slow[index] {
                (1, &mut outcome.refutations.1, &mut outcome.slow_probes)
            } else {
                (0, &mut outcome.refutations.0, &mut outcome.healthy_probes)
            };
            *refutations += refuted;
            totals.0 += probes.0;
            totals.1 += probes.1;
            health[side] += u64::from(node.local_health());
            counted[side] += 1;
        }
        let mean =
            |side: usize| if counted[side] == 0 { 0.0 } else { health[side] as f64 / counted[side] as f64 };
        outcome.mean_health = (mean(0), mean(1));
        Ok(outcome)
    }

    /// One partition trial: after settling, the cluster splits into two halves (by index)
    /// for `split`, then heals; the trial waits at most `max_wait` after the heal for every
    /// member to see every other Alive again.
    pub fn partition(
        &self,
        seed: u64,
        split: Duration,
        max_wait: Duration,
        mut progress: impl FnMut(Progress),
    ) -> Result<PartitionOutcome, SimError> {
        let mut sim = self.start(seed, &mut progress)?;
        let half = self.nodes / 2;
        let cut = sim.partition(0..half, half..self.nodes);
        let split_at = sim.now();
        let split_periods = (split.as_secs_f64() / self.period().as_secs_f64()).ceil() as u32;
        for period in 1..=split_periods {
            sim.run_until((split_at + self.period() * period).min(split_at + split))?;
            progress(Progress::Running { period, of: split_periods });
        }
        sim.run_until(split_at + split)?;
        let same_side = |a: usize, b: usize| (a < half) == (b < half);
        let false_failures_during_split = sim
            .take_membership_log()
            .iter()
            .filter(|r| r.change == MemberChange::Failed && same_side(r.observer, r.member))
            .count();
        let (mut dead_at_heal, mut suspect_at_heal) = (0, 0);
        for observer in 0..self.nodes {
            let Some(node) = sim.node(observer) else { continue };
            for view in node.nodes().skip(1) {
                let Some(member) = index_of_name(view.name, self.nodes) else { continue };
                if (observer < half) != (member < half) {
                    dead_at_heal += usize::from(view.state == MemberState::Dead);
                    suspect_at_heal += usize::from(view.state == MemberState::Suspect);
                }
            }
        }
        sim.heal(cut);
        let healed_at = sim.now();
        let heal = wait_for(&mut sim, healed_at, max_wait, see_everyone_alive, &mut progress)?;
        let converged = see_everyone_alive(&sim);
        // A suspicion still running at convergence may yet end in a false failure: watch on
        // for the longest suspicion timeout.
        sim.run_for(self.suspicion_timeouts().1)?;
        let (mut false_failures_after_heal, mut suspicions_after_heal) = (0, 0);
        for record in sim.take_membership_log() {
            if sim.node(record.member).is_none() {
                continue;
            }
            false_failures_after_heal += usize::from(record.change == MemberChange::Failed);
            suspicions_after_heal += usize::from(record.change == MemberChange::Suspected);
        }
        Ok(PartitionOutcome {
            seed,
            nodes: self.nodes,
            split,
            heal,
            cross_pairs: 2 * half * (self.nodes - half),
            dead_at_heal,
            suspect_at_heal,
            converged,
            false_failures_during_split,
            false_failures_after_heal,
            suspicions_after_heal,
            trace_hash: sim.trace_hash(),
        })
    }

    /// One restart trial: after settling, at a random moment, a random member restarts
    /// under its next generation (at a new address when `new_address` is set) and joins
    /// node 0 (node 1 if it is node 0). The trial waits at most `max_wait` for every other
    /// member to see the new generation Alive at its address.
    pub fn restart(
        &self,
        seed: u64,
        new_address: bool,
        max_wait: Duration,
        mut progress: impl FnMut(Progress),
    ) -> Result<RestartOutcome, SimError> {
        let mut sim = self.start(seed, &mut progress)?;
        let mut rng = Self::rng(seed);
        let victim = rng.random_range(0..self.nodes);
        sim.run_for(self.period().mul_f64(rng.random::<f64>()))?;
        let old_address = sim.address(victim).unwrap_or_else(|| node_address(victim));
        if new_address {
            let mut moved = old_address;
            moved.set_port(old_address.port().wrapping_add(1));
            sim.restart_at(victim, moved)?;
        } else {
            sim.restart(victim)?;
        }
        let restarted_at = sim.now();
        let address = sim.address(victim).unwrap_or(old_address);
        let generation = sim.generation(victim).unwrap_or_default();
        let informed = move |sim: &Simulation| see_restarted(sim, victim, generation, address);
        let mut knows_all = None;
        let rejoin = {
            let mut check = |sim: &Simulation| {
                if knows_all.is_none() && sim_node_sees_all(sim, victim) {
                    knows_all = Some(sim.now() - restarted_at);
                }
                informed(sim)
            };
            wait_for(&mut sim, restarted_at, max_wait, &mut check, &mut progress)?
        };
        if knows_all.is_none() {
            // The restarted node may still be catching up: give it the rest of the window.
            let mut check = |sim: &Simulation| usize::from(sim_node_sees_all(sim, victim));
            let left = max_wait.saturating_sub(sim.now() - restarted_at);
            knows_all = wait_until(&mut sim, left, &mut check, 1)?.map(|at| at - restarted_at);
        }
        Ok(RestartOutcome {
            seed,
            nodes: self.nodes,
            restarted: victim,
            old_address,
            new_address: address,
            generation,
            rejoin,
            knows_all,
            informed: informed(&sim),
            trace_hash: sim.trace_hash(),
        })
    }
}

/// Runs `sim` from `from` for at most `max_wait`, looking every [`POLL`] at how many live
/// nodes satisfy `done`; returns how long after `from` all of them did.
fn wait_for(
    sim: &mut Simulation,
    from: Duration,
    max_wait: Duration,
    mut done: impl FnMut(&Simulation) -> usize,
    progress: &mut impl FnMut(Progress),
) -> Result<Option<Duration>, SimError> {
    let mut last_report = 0;
    let deadline = from + max_wait;
    loop {
        let (count, live) = (done(sim), sim.live_nodes());
        if count >= live {
            return Ok(Some(sim.now() - from));
        }
        if sim.now() >= deadline {
            return Ok(None);
        }
        let seconds = (sim.now() - from).as_secs() as u32;
        if seconds > last_report {
            last_report = seconds;
            progress(Progress::Waiting { seconds, done: count, of: live });
        }
        sim.run_until((sim.now() + POLL).min(deadline))?;
    }
}

/// As [`wait_for`] without progress, until `done` reaches `target`; returns the time.
fn wait_until(
    sim: &mut Simulation,
    max_wait: Duration,
    mut done: impl FnMut(&Simulation) -> usize,
    target: usize,
) -> Result<Option<Duration>, SimError> {
    let deadline = sim.now() + max_wait;
    loop {
        if done(sim) >= target {
            return Ok(Some(sim.now()));
        }
        if sim.now() >= deadline {
            return Ok(None);
        }
        sim.run_until((sim.now() + POLL).min(deadline))?;
    }
}

/// Whether live node `index` sees every other live node Alive under its current generation.
fn sim_node_sees_all(sim: &Simulation, index: usize) -> bool {
    let Some(node) = sim.node(index) else { return false };
    let n = sim.len();
    let mut seen = 0;
    for view in node.nodes().skip(1) {
        let Some(member) = index_of_name(view.name, n) else { continue };
        if sim.node(member).is_none() {
            continue;
        }
        if view.state != MemberState::Alive || sim.generation(member) != Some(view.generation) {
            return false;
        }
        seen += 1;
    }
    seen + 1 == sim.live_nodes()
}

/// How many live nodes see every other live node Alive under its current generation.
fn see_everyone_alive(sim: &Simulation) -> usize {
    (0..sim.len()).filter(|&index| sim_node_sees_all(sim, index)).count()
}

/// How many live nodes see node `member` Alive under `generation` at `address` (the node
/// itself counts).
fn see_restarted(sim: &Simulation, member: usize, generation: u64, address: SocketAddr) -> usize {
    let name = node_name(member);
    (0..sim.len())
        .filter(|&observer| {
            let Some(node) = sim.node(observer) else { return false };
            if observer == member {
                return true;
            }
            node.node(&name).is_some_and(|view| {
                view.state == MemberState::Alive && view.generation == generation && view.address == address
            })
        })
        .count()
}
