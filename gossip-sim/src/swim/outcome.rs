//! What the membership trials measure: one outcome type per trial, and the tally of false
//! accusations.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use gossip_core::sim::{KindCounts, MemberChange, MemberRecord};

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
    /// Counts `record` if it accuses a member; `seen` holds the (member, incarnation, death)
    /// accusations counted so far.
    pub(super) fn count(&mut self, record: &MemberRecord, seen: &mut BTreeSet<(usize, u32, bool)>) {
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

/// What one crash trial measured (see [`SwimStudy::crash`](super::SwimStudy::crash)). Times
/// are from the crash.
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

/// What one healthy or slow trial measured (see
/// [`SwimStudy::healthy`](super::SwimStudy::healthy)).
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

/// What one partition trial measured (see
/// [`SwimStudy::partition`](super::SwimStudy::partition)).
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

/// What one restart trial measured (see [`SwimStudy::restart`](super::SwimStudy::restart)).
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
