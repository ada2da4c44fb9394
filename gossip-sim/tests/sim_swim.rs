//! Simulation: membership and failure detection (SWIM with Lifeguard) reach their target
//! figures (docs/FIGURES.md) on the deterministic simulator, at sizes that keep the suite fast. Seeds are fixed;
//! `GOSSIP_SIM_SEED` replays another.
//!
//! The full-size figures come from the `simulate` command (see its `--scenario crash`,
//! `healthy`, `slow`, `partition` and `restart`).

use std::time::Duration;

use gossip_core::Config;
use gossip_core::sim::{BodyKind, Checks, LinkModel, ProcessingDelay, SimConfig, Simulation, seed_from_env};
use gossip_sim::swim::{CrashOutcome, Slowdown, SwimStudy};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn lan(lifeguard: bool) -> Config {
    let mut config = Config::lan();
    config.swim.lifeguard = lifeguard;
    config
}

fn crash_trials(nodes: usize, trials: u64) -> Vec<CrashOutcome> {
    let seed = seed_from_env(41);
    let study = SwimStudy::new(nodes, lan(true));
    (0..trials).map(|t| study.crash(seed + t, 200, |_| {}).unwrap_or_else(|e| panic!("{e}"))).collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn a_crash_is_probed_and_suspected_as_soon_as_swim_expects() {
    let outcomes = crash_trials(100, 20);
    for o in &outcomes {
        let (probe, suspect) = (o.first_probe.expect("probed"), o.first_suspect.expect("suspected"));
        // The first prober suspects it when its period ends, one probe interval later.
        assert!(
            suspect <= probe + o.period,
            "seed {}: probed at {probe:?}, suspected at {suspect:?}",
            o.seed
        );
        assert_eq!(o.other_suspicions, 0, "seed {}: nobody else is suspected without loss", o.seed);
    }
    let first_probe = mean(outcomes.iter().map(|o| o.periods(o.first_probe.unwrap())));
    let first_suspect = mean(outcomes.iter().map(|o| o.periods(o.first_suspect.unwrap())));
    assert!(first_probe <= 1.58, "first probe after {first_probe:.3} periods on average (SWIM: e/(e-1))");
    assert!(first_suspect <= first_probe + 1.0 + 1e-9, "first suspicion after {first_suspect:.3} periods");
    let load = mean(outcomes.iter().map(CrashOutcome::probe_messages_per_member_per_period));
    assert!(load <= 2.5, "{load:.3} probe messages per member per period");
}

#[test]
fn every_member_learns_of_a_crash_within_the_longest_suspicion_timeout() {
    for o in crash_trials(100, 5) {
        let all =
            o.all_know_dead.unwrap_or_else(|| panic!("seed {}: {} of {} knew", o.seed, o.knew_dead, o.live));
        // What the core guarantees today: Lifeguard's longest timeout, plus dissemination.
        let bound =
            o.first_suspect.unwrap() + o.max_suspicion_timeout + o.period.mul_f64(2.0 * 100f64.log2());
        assert!(all <= bound, "seed {}: all knew after {all:?}, bound {bound:?}", o.seed);
        assert!(o.sent.get(BodyKind::Ping) > 0 && o.sent.get(BodyKind::Ack) > 0);
    }
}

/// Crash detection within the minimum suspicion timeout plus `2 log2(n)` periods. It needs
/// failed probes of a member already suspected to count as Lifeguard confirmations (in
/// `probe.rs`, `finish_probe` returns early for a Suspect target): without them the timeout
/// stays near its maximum, `suspicion_max_timeout_mult` times the minimum.
#[test]
fn every_member_learns_of_a_crash_within_the_suspicion_timeout_plus_two_log_n_periods() {
    for o in crash_trials(100, 10) {
        let all =
            o.all_know_dead.unwrap_or_else(|| panic!("seed {}: {} of {} knew", o.seed, o.knew_dead, o.live));
        assert!(all <= o.all_know_dead_goal(), "seed {}: {all:?} > {:?}", o.seed, o.all_know_dead_goal());
    }
}

#[test]
fn a_lossy_cluster_suspects_but_declares_nobody_dead() {
    let seed = seed_from_env(43);
    let study = SwimStudy::new(40, lan(true)).with_link(LinkModel::default().with_loss(0.1));
    let outcome = study.healthy(seed, 300, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.healthy.deaths, 0, "seed {seed}: {:?}", outcome.healthy);
    assert!(outcome.healthy.suspicions > 0, "10% loss makes some probes fail");
    assert!(outcome.refutations.0 > 0, "the suspects refuted");
}

#[test]
fn lifeguard_cuts_the_false_suspicions_slow_members_make() {
    let seed = seed_from_env(47);
    let slowdown =
        Slowdown { fraction: 0.1, delay: ProcessingDelay::new(Duration::from_millis(1500), Duration::ZERO) };
    let run = |lifeguard: bool| {
        SwimStudy::new(40, lan(lifeguard)).slow(seed, 120, slowdown, |_| {}).unwrap_or_else(|e| panic!("{e}"))
    };
    let (with, without) = (run(true), run(false));
    assert_eq!(with.slow.len(), 4);
    assert!(without.healthy.suspicions > 0, "the scenario shows false suspicions without Lifeguard");
    assert!(
        with.healthy.suspicions * 10 <= without.healthy.suspicions,
        "with Lifeguard {:?}, without {:?}",
        with.healthy,
        without.healthy
    );
    assert_eq!(with.healthy.deaths, 0);
    assert!(with.mean_health.1 > with.mean_health.0, "the slow members know they are unhealthy");
}

#[test]
fn a_node_slow_at_everything_alike_accuses_nobody() {
    // Datagrams and timers equally late shift the node's life: its acks still come before
    // its timeouts (see `ProcessingDelay`).
    // Without Lifeguard the whole suspicion timeout is the minimum, which `Config::lan()`
    // now keeps at log10(n) periods (1.5 s here): shorter than the delay, so a slow member
    // would be declared dead before its refutation could leave it. memberlist's multiplier
    // (4) gives it the time this test is about.
    let seed = seed_from_env(53);
    let slowdown = Slowdown { fraction: 0.1, delay: ProcessingDelay::uniform(Duration::from_millis(1500)) };
    let mut config = lan(false);
    config.swim.suspicion_mult = 4;
    let outcome =
        SwimStudy::new(30, config).slow(seed, 60, slowdown, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.healthy.suspicions, 0, "{:?}", outcome.healthy);
    assert!(outcome.slowed.suspicions > 0, "the slow members themselves answer late");
}

#[test]
fn a_partition_of_a_minute_heals_within_30_seconds() {
    let seed = seed_from_env(59);
    let study = SwimStudy::new(40, lan(true));
    let outcome = study.partition(seed, s(60), s(120), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert!(outcome.dead_at_heal * 2 > outcome.cross_pairs, "each side had declared the other dead");
    let heal = outcome.heal.expect("healed");
    assert!(heal <= s(30), "seed {seed}: healed after {heal:?}");
    assert_eq!(outcome.converged, 40);
}

#[test]
fn a_member_restarting_at_a_new_address_rejoins_within_10_seconds() {
    let seed = seed_from_env(61);
    let study = SwimStudy::new(100, lan(true));
    for trial in 0..3 {
        let outcome = study.restart(seed + trial, true, s(60), |_| {}).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(outcome.old_address, outcome.new_address);
        assert_eq!(outcome.generation, 2);
        let rejoin = outcome.rejoin.expect("rejoined");
        assert!(rejoin <= s(10), "seed {}: rejoined after {rejoin:?}", seed + trial);
        assert!(outcome.knows_all.is_some_and(|at| at <= s(10)));
    }
}

#[test]
fn membership_trials_replay_exactly() {
    let study = SwimStudy::new(30, lan(true)).with_checks(Checks::EveryStep);
    let a = study.crash(7, 100, |_| {}).unwrap();
    let b = study.crash(7, 100, |_| {}).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.trace_hash, study.crash(8, 100, |_| {}).unwrap().trace_hash);
}

#[test]
fn a_slow_node_handles_datagrams_late_in_order_and_a_moved_node_leaves_its_old_address() {
    let config = SimConfig::new(5, seed_from_env(67)).with_membership_log();
    let mut sim = Simulation::new(config).unwrap();
    sim.run_for(s(5)).unwrap();
    let delay = ProcessingDelay::new(Duration::from_millis(300), Duration::ZERO);
    sim.set_processing_delay(3, delay).unwrap();
    assert_eq!(sim.processing_delay(3), Some(delay));
    sim.run_for(s(10)).unwrap();
    assert!(sim.stats().held_by_slow_nodes > 0);
    let old = sim.address(2).unwrap();
    let mut new = old;
    new.set_port(9000);
    assert!(sim.restart_at(2, sim.address(1).unwrap()).is_err(), "another node's address is taken");
    sim.restart_at(2, new).unwrap();
    assert_eq!((sim.index_at(new), sim.index_at(old)), (Some(2), None));
    sim.run_for(s(10)).unwrap();
    for observer in [0, 1, 3, 4] {
        let view = sim.node(observer).unwrap().node("n2").unwrap();
        assert_eq!((view.generation, view.address), (2, new), "node {observer}");
    }
    assert!(sim.take_membership_log().iter().all(|record| record.member < 5));
    sim.check_all().unwrap();
}

/// After a partition heals, the other side's Dead claims (made while it could not
/// reach us) must not make a member declare failed a member it could reach the whole time.
/// Before the fix every member of one side took the other side's Dead claims about its own
/// side at the same incarnation at once.
#[test]
fn no_member_is_declared_failed_after_a_partition_heals() {
    let seed = seed_from_env(71);
    let study = SwimStudy::new(30, lan(true));
    let outcome = study.partition(seed, s(30), s(60), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert!(outcome.dead_at_heal * 2 > outcome.cross_pairs, "each side had declared the other dead");
    assert_eq!(outcome.false_failures_during_split, 0);
    assert_eq!(
        outcome.false_failures_after_heal, 0,
        "seed {seed}: MemberFailed about reachable members after the heal ({} suspicions)",
        outcome.suspicions_after_heal
    );
    assert!(outcome.heal.expect("healed") <= s(30));
    assert_eq!(outcome.converged, 30);
}
