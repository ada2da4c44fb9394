//! Simulation: after every node of a cluster writes at once, the keys reach everyone within
//! `2 x ceil(log2 n)` rounds, and once they have, a quiet cluster sends nothing but its
//! probes and their acks (an exchange that would find two nodes in sync is not even opened).
//! Under a steady load (every node updates a key every few seconds) every update spreads
//! within 3 rounds. Seeds are fixed; `GOSSIP_SIM_SEED` replays another.

use std::time::Duration;

use gossip_core::Config;
use gossip_core::sim::{BodyKind, seed_from_env};
use gossip_sim::load::LoadPlan;
use gossip_sim::trial::{QuietWindow, Study};

const NODES: usize = 60;

/// The peers' benchmark settings: gossip every 300 ms to 3 peers, a probe a second.
fn study() -> Study {
    let mut config = Config::lan();
    config.gossip_interval = Duration::from_millis(300);
    config.fanout = 3;
    config.swim.probe_interval = Duration::from_secs(1);
    Study::new(NODES, config)
}

#[test]
fn a_burst_of_writes_converges_and_then_only_probes_remain() {
    let seed = seed_from_env(21);
    let window = QuietWindow { after: Duration::from_secs(2), length: Duration::from_secs(10) };
    let outcome = study().burst(seed, 40, window, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let bound = 2.0 * (NODES as f64).log2().ceil();
    let rounds = outcome.rounds.unwrap_or_else(|| panic!("seed {seed}: not every key reached every node"));
    assert!(rounds <= bound, "seed {seed}: {rounds:.2} rounds, bound {bound}");
    let busy: u64 = [BodyKind::Syn, BodyKind::SynAck, BodyKind::Ack2, BodyKind::Push, BodyKind::PushAck]
        .into_iter()
        .map(|kind| outcome.quiet_kinds.get(kind))
        .sum();
    // Before probes confirmed the prober in sync and pushes carried the summary, about one
    // round in three still opened exchanges here, each a full datagram.
    assert_eq!(busy, 0, "seed {seed}: {:?}", outcome.quiet_kinds);
    let probes = outcome.quiet_kinds.get(BodyKind::Ping) as f64 / (NODES as f64 * 10.0);
    assert!((0.9..=1.1).contains(&probes), "seed {seed}: {probes} pings per node per second");
    let bytes = outcome.quiet_bytes_per_node_per_second();
    assert!(bytes <= 50.0, "seed {seed}: {bytes:.1} bytes per node per second");
}

#[test]
fn the_peers_window_from_one_second_after_the_writes_costs_little_more() {
    let seed = seed_from_env(22);
    let outcome = study().burst(seed, 40, QuietWindow::PEERS, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let bytes = outcome.quiet_bytes_per_node_per_second();
    // Was 700 to 1,100 bytes per node per second at this size: full Syns and pushes to
    // peers already in sync for several seconds after the keys had spread.
    assert!(bytes <= 70.0, "seed {seed}: {bytes:.1} bytes per node per second, {:?}", outcome.quiet_kinds);
}

#[test]
fn under_a_steady_load_every_update_reaches_every_node_within_three_rounds() {
    let seed = seed_from_env(23);
    let plan = LoadPlan {
        period: Duration::from_secs(2),
        warmup: Duration::from_secs(2),
        measure: Duration::from_secs(6),
        tail: Duration::from_secs(2),
    };
    let outcome = study().load(seed, plan, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.incomplete, 0, "seed {seed}: updates that never reached every node");
    // Each node updates three times in the measured window.
    assert_eq!(outcome.update_rounds.len(), NODES * 3, "seed {seed}");
    let p99 = outcome.update_rounds[(outcome.update_rounds.len() * 99).div_ceil(100) - 1];
    assert!(p99 <= 3.0, "seed {seed}: p99 {p99:.2} rounds");
    assert!(outcome.update_rounds[0] > 0.0, "seed {seed}: an update counted before it was written");
    // The updates travel: far more than probes alone (2 datagrams per node per second).
    assert!(outcome.datagrams_per_node_per_second() > 4.0, "seed {seed}: {:?}", outcome.kinds);
}
