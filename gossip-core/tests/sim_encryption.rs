//! Simulation: keys rotate across a 100-node cluster, and encryption turns on one node at a
//! time, under 10% loss, with no datagram refused for its key and no false failure.
//! Seeds are fixed; `GOSSIP_SIM_SEED` replays another.

use std::time::Duration;

use gossip_core::sim::{Bootstrap, LinkModel, SimConfig, Simulation, seed_from_env};
use gossip_core::{EncryptionMode, Event, SecretKey};

const N: usize = 100;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).expect("32 bytes")
}

fn lossy_cluster(seed: u64) -> Simulation {
    let config = SimConfig::new(N, seed)
        .with_bootstrap(Bootstrap::InSync)
        .with_link(LinkModel::fixed(Duration::from_millis(1)).with_loss(0.1))
        .with_recorded_events();
    let mut sim = Simulation::new(config).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    sim.run_for(Duration::from_secs(10)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    sim
}

fn count(sim: &Simulation, since: Duration, what: impl Fn(&Event) -> bool) -> usize {
    sim.events().unwrap_or_default().iter().filter(|(at, _, event)| *at >= since && what(event)).count()
}

/// Datagrams dropped for their framing or key anywhere: the only way a key change or a mode
/// change can cut a member off.
fn refused_for_keys(sim: &Simulation) -> u64 {
    (0..N)
        .filter_map(|i| sim.node(i))
        .map(|node| {
            let m = node.metrics();
            m.sealed_refused + m.plain_refused + m.unknown_key_ids + m.unauthentic_datagrams
        })
        .sum()
}

fn step(sim: &mut Simulation, seed: u64, duration: Duration) {
    sim.run_for(duration).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
}

/// Runs until `done` holds, checked every 500 ms of virtual time (it reads every node's
/// keyring status: too costly after every step), for at most a minute.
fn wait_until(sim: &mut Simulation, seed: u64, what: &str, done: impl Fn(&Simulation) -> bool) {
    let give_up = sim.now() + Duration::from_secs(60);
    while !done(sim) {
        assert!(sim.now() < give_up, "seed {seed}: not within a minute: {what}");
        step(sim, seed, Duration::from_millis(500));
    }
}

/// Every node, one after another `gap` apart, moves to `mode`.
fn roll(sim: &mut Simulation, seed: u64, mode: EncryptionMode, gap: Duration) {
    for i in 0..N {
        sim.set_encryption(i, mode).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        step(sim, seed, gap);
    }
}

#[test]
fn encryption_turns_on_one_node_at_a_time_with_no_false_death() {
    let seed = seed_from_env(11);
    let mut sim = lossy_cluster(seed);
    let began = sim.now();
    for i in 0..N {
        sim.install_key(i, &key(1)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    let gap = Duration::from_millis(200);
    for mode in [EncryptionMode::Accept, EncryptionMode::Send, EncryptionMode::Require] {
        roll(&mut sim, seed, mode, gap);
    }
    step(&mut sim, seed, Duration::from_secs(30));
    let failed = count(&sim, began, |e| matches!(e, Event::MemberFailed { .. }));
    assert_eq!(failed, 0, "seed {seed}: false deaths while encryption was turned on");
    assert_eq!(refused_for_keys(&sim), 0, "seed {seed}: a datagram was refused for its framing");
    assert!((0..N).all(|i| sim.node(i).is_some_and(|n| n.encryption() == EncryptionMode::Require)));
}

#[test]
fn a_key_rotates_across_a_hundred_nodes_under_loss_without_refusing_a_datagram() {
    let seed = seed_from_env(12);
    let mut sim = lossy_cluster(seed);
    for mode in [EncryptionMode::Accept, EncryptionMode::Send, EncryptionMode::Require] {
        for i in 0..N {
            if mode == EncryptionMode::Accept {
                sim.install_key(i, &key(1)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            }
            sim.set_encryption(i, mode).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        step(&mut sim, seed, Duration::from_secs(5));
    }
    let began = sim.now();
    let (old, new) = (key(1).fingerprint(), key(2).fingerprint());
    // 1. Install the new key everywhere; wait until node 0 sees every member holding it.
    for i in 0..N {
        sim.install_key(i, &key(2)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    let held = |sim: &Simulation, what: &dyn Fn(&gossip_core::KeyStatus) -> bool| {
        (0..N).all(|i| sim.node(i).is_some_and(|node| node.keyring_status().key(new).is_some_and(what)))
    };
    wait_until(&mut sim, seed, "every member holds the new key", |sim| held(sim, &|k| k.holders == N));
    // 2. Make it primary everywhere; wait until nobody publishes the old one as primary.
    for i in 0..N {
        sim.use_key(i, new).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    wait_until(&mut sim, seed, "every member seals with the new key", |sim| {
        held(sim, &|k| k.primary_for == N)
    });
    // 3. Remove the old key everywhere.
    for i in 0..N {
        sim.remove_key(i, old).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    step(&mut sim, seed, Duration::from_secs(30));
    assert_eq!(refused_for_keys(&sim), 0, "seed {seed}: the rotation made a datagram unreadable");
    let failed = count(&sim, began, |e| matches!(e, Event::MemberFailed { .. }));
    assert_eq!(failed, 0, "seed {seed}: false deaths during the rotation");
    assert!((0..N).all(|i| sim.node(i).is_some_and(|node| node.keys() == vec![new])));
}
