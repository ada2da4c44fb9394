//! Ready-made trials of membership and failure detection (SWIM with Lifeguard), shared by
//! the `simulate` example and the simulation tests.
//!
//! Every trial starts from an in-sync cluster ([`Bootstrap::InSync`]: every node knows every
//! other as Alive) that runs [`SwimStudy::settle_periods`] probe periods before anything
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

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::config::Config;
use crate::membership::MemberState;
use crate::sim::cluster::{derive_seed, index_of_name};
use crate::sim::config::SimConfig;
use crate::sim::invariants::Checks;
use crate::sim::kind::{BodyKind, KindCounts};
use crate::sim::link::LinkModel;
use crate::sim::trial::Progress;
use crate::sim::watch::{MemberChange, MemberRecord, ProcessingDelay};
use crate::sim::{SimError, Simulation};

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

/// Distinct false accusations of members that were up and running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tally {
    /// Distinct `(member, incarnation)` that some member marked Suspect. One accusation
    /// that spreads to every member counts once; a member that refutes and is accused again
    /// counts again.
    pub suspicions: u64,
    /// Distinct `(member, incarnation)` that some member declared Dead.
    pub deaths: u64,
    /// `MemberSuspected` events (one per member that marked one of them Suspect).
    pub suspicion_reports: u64,
    /// `MemberFailed` events (one per member that declared one of them Dead).
    pub death_reports: u64,
}

impl Tally {
    fn count(&mut self, record: &MemberRecord, seen: &mut HashSet<(usize, u32, bool)>) {
        let incarnation = record.incarnation.unwrap_or(u32::MAX);
        match record.change {
            MemberChange::Suspected => {
                self.suspicion_reports += 1;
                if seen.insert((record.member, incarnation, false)) {
                    self.suspicions += 1;
                }
            }
            MemberChange::Failed => {
                self.death_reports += 1;
                if seen.insert((record.member, incarnation, true)) {
                    self.deaths += 1;
                }
            }
            _ => {}
        }
    }
}

/// What one crash trial measured (see [`SwimStudy::crash`]). Times are from the crash.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CrashOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Nodes in the cluster (the crashed one included).
    pub nodes: usize,
    /// The node that crashed.
    pub crashed: usize,
    /// The probe period.
    pub period: Duration,
    /// Until the first ping sent to the crashed node, by anyone.
    pub first_probe: Option<Duration>,
    /// Until the first member marked it Suspect.
    pub first_suspect: Option<Duration>,
    /// Until the first member declared it Dead.
    pub first_dead: Option<Duration>,
    /// Until every live member held it Dead; `None` if some did not within the trial.
    pub all_know_dead: Option<Duration>,
    /// Live members that declared it Dead.
    pub knew_dead: usize,
    /// Live members.
    pub live: usize,
    /// Datagrams the live members sent from the crash to the end of the trial, by kind.
    pub sent: KindCounts,
    /// The length of that window.
    pub window: Duration,
    /// Distinct `(member, incarnation)` of *other* members suspected meanwhile.
    pub other_suspicions: u64,
    /// The minimum suspicion timeout, `suspicion_mult x log10(n) x probe_interval` (the
    /// whole timeout without Lifeguard).
    pub suspicion_timeout: Duration,
    /// The longest suspicion timeout (Lifeguard: `suspicion_max_timeout_mult x` the
    /// minimum; without Lifeguard the minimum).
    pub max_suspicion_timeout: Duration,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

impl CrashOutcome {
    /// `duration` in probe periods.
    pub fn periods(&self, duration: Duration) -> f64 {
        duration.as_secs_f64() / self.period.as_secs_f64()
    }

    /// Pings, ping-reqs, acks and nacks sent per live member per probe period in the
    /// window.
    pub fn probe_messages_per_member_per_period(&self) -> f64 {
        let periods = self.periods(self.window).max(1e-9);
        self.sent.probe_messages() as f64 / self.live.max(1) as f64 / periods
    }

    /// The goal for `all_know_dead`: the suspicion timeout (its minimum) plus
    /// `2 log2(n)` probe periods.
    pub fn all_know_dead_goal(&self) -> Duration {
        self.suspicion_timeout + self.period.mul_f64(2.0 * (self.nodes.max(2) as f64).log2())
    }
}

/// What one healthy or slow trial measured (see [`SwimStudy::healthy`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FalsePositives {
    /// The trial's seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// Probe periods measured.
    pub periods: u32,
    /// The slow members (none in a healthy trial).
    pub slow: Vec<usize>,
    /// Accusations of the members that are not slow: every one is false.
    pub healthy: Tally,
    /// Accusations of the slow members (they are up, so these are false too, but they are
    /// what a failure detector exists to notice).
    pub slowed: Tally,
    /// Datagrams sent during the measured periods, by kind.
    pub sent: KindCounts,
    /// Refutations (a member raised its incarnation to answer a suspicion of itself),
    /// healthy members and slow ones.
    pub refutations: (u64, u64),
    /// Probes sent, and probes that failed, by the healthy members.
    pub healthy_probes: (u64, u64),
    /// Probes sent, and probes that failed, by the slow members.
    pub slow_probes: (u64, u64),
    /// Mean local-health score at the end, of the healthy and of the slow members.
    pub mean_health: (f64, f64),
    /// The trace hash of the run.
    pub trace_hash: u64,
}

impl FalsePositives {
    /// Pings, ping-reqs, acks and nacks sent per member per probe period.
    pub fn probe_messages_per_member_per_period(&self) -> f64 {
        self.sent.probe_messages() as f64 / self.nodes.max(1) as f64 / f64::from(self.periods.max(1))
    }
}

/// What one partition trial measured (see [`SwimStudy::partition`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PartitionOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// How long the halves were apart.
    pub split: Duration,
    /// From the heal until every member saw every other Alive (looked at every 10 ms);
    /// `None` if that did not happen within the trial.
    pub heal: Option<Duration>,
    /// Ordered pairs `(a, b)` of members on different sides.
    pub cross_pairs: usize,
    /// Of those, at the heal: `a` held `b` Dead, or Suspect.
    pub dead_at_heal: usize,
    /// See `dead_at_heal`.
    pub suspect_at_heal: usize,
    /// Members that saw every other Alive at the end of the trial.
    pub converged: usize,
    /// `MemberFailed` events emitted during the split by a member about a member of its own
    /// side (which it could reach the whole time).
    pub false_failures_during_split: usize,
    /// `MemberFailed` events emitted after the heal (from the heal until the trial's end:
    /// convergence, or `max_wait`, plus the longest suspicion timeout so that a suspicion
    /// still running at convergence is counted too) about a live member. After the heal every
    /// live member can reach every other (the trial crashes nobody), so each one names a
    /// member the observer could reach at that moment: an application acting on it would
    /// move shards off a member that never failed.
    pub false_failures_after_heal: usize,
    /// `MemberSuspected` events in the same window (information: suspicions cost the
    /// application nothing, failures do).
    pub suspicions_after_heal: usize,
    /// The trace hash of the run.
    pub trace_hash: u64,
}

/// What one restart trial measured (see [`SwimStudy::restart`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RestartOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// The node that restarted.
    pub restarted: usize,
    /// Its address before.
    pub old_address: SocketAddr,
    /// Its address after (the same when the trial keeps it).
    pub new_address: SocketAddr,
    /// Its new generation.
    pub generation: u64,
    /// From the restart until every other member saw the new generation Alive at the new
    /// address (within 10 ms); `None` if that did not happen within the trial.
    pub rejoin: Option<Duration>,
    /// From the restart until the restarted node saw every other member Alive.
    pub knows_all: Option<Duration>,
    /// Members that saw the new generation Alive at the new address at the end.
    pub informed: usize,
    /// The trace hash of the run.
    pub trace_hash: u64,
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
        let config = SimConfig::in_sync(
            self.nodes,
            seed,
            &self.node_config,
            self.link,
            self.checks,
            self.replay.clone(),
        )
        .with_membership_log();
        let mut sim = Simulation::new(config)?;
        for period in 1..=self.settle_periods {
            sim.run_until(self.period() * period)?;
            progress(Progress::Settling { period, of: self.settle_periods });
        }
        Ok(sim)
    }

    /// The suspicion timeout's minimum and maximum for this cluster.
    fn suspicion_timeouts(&self) -> (Duration, Duration) {
        let swim = &self.node_config.swim;
        let min = crate::suspicion::min_timeout(swim.suspicion_mult, self.nodes, swim.probe_interval);
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
        let mut seen = HashSet::new();
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
        let mut seen = HashSet::new();
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
        let old_address = sim.address(victim).unwrap_or_else(|| crate::sim::node_address(victim));
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
    let name = crate::sim::node_name(member);
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
