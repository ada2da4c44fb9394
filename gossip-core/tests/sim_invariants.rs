//! Simulation: each invariant check catches a deliberately broken replica. A hand-crafted
//! datagram that the node accepts (it cannot know better) puts a replica in a state the
//! owner's ledger contradicts; the run must stop with that violation, its seed and a replay
//! command. Checks that the core can never be driven to break are tested on synthetic
//! observations.

use std::time::Duration;

use bytes::Bytes;
use gossip_core::proto::v1::{self, envelope::Body};
use gossip_core::sim::{
    Bootstrap, OwnerLog, SimConfig, SimError, Simulation, VersionMemory, ViolationKind, invariants,
    node_address,
};

const SEED: u64 = 99;

fn cluster() -> Simulation {
    let config =
        SimConfig::new(3, SEED).with_bootstrap(Bootstrap::InSync).with_replay("replay-me --seed {seed}");
    Simulation::new(config).unwrap()
}

fn entry(key: &str, value: &str, version: u64) -> v1::Entry {
    v1::Entry {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(value.as_bytes()),
        version,
        ..Default::default()
    }
}

/// A push from node 1 carrying one crafted delta of node 1's own table.
fn forged_push(sim: &Simulation, delta: v1::NodeDelta) -> Bytes {
    sim.forge(1, Body::Push(v1::Push { deltas: vec![delta], ..Default::default() }))
}

fn delta_of_n1(generation: u64, from: u64, to: u64, entries: Vec<v1::Entry>) -> v1::NodeDelta {
    let address = node_address(1);
    let ip = match address.ip() {
        std::net::IpAddr::V4(ip) => Bytes::copy_from_slice(&ip.octets()),
        std::net::IpAddr::V6(ip) => Bytes::copy_from_slice(&ip.octets()),
    };
    v1::NodeDelta {
        name: "n1".to_owned(),
        generation,
        address: Some(v1::Address { ip, port: u32::from(address.port()) }),
        from_version: from,
        to_version: to,
        entries,
        ..Default::default()
    }
}

/// Injects the datagram into node 2 and returns the violation it must cause.
fn violation(sim: &mut Simulation, datagram: &[u8]) -> ViolationKind {
    match sim.inject(2, node_address(1), datagram) {
        Err(SimError::Invariant(violation)) => {
            let text = violation.to_string();
            assert!(text.contains(&format!("seed: {SEED}")), "{text}");
            assert!(text.contains(&format!("replay-me --seed {SEED}")), "{text}");
            assert_eq!(violation.node, 2);
            assert!(sim.step().is_err(), "the run stays stopped");
            violation.kind
        }
        other => panic!("the broken replica went unnoticed: {other:?}"),
    }
}

#[test]
fn a_delta_that_skips_a_version_is_a_hole() {
    let mut sim = cluster();
    sim.set(1, "a", "1").unwrap();
    sim.set(1, "b", "2").unwrap();
    let datagram = forged_push(&sim, delta_of_n1(1, 0, 2, vec![entry("b", "2", 2)]));
    let kind = violation(&mut sim, &datagram);
    assert!(
        matches!(&kind, ViolationKind::Hole { key, expected_version: 1, found: None, .. } if key == "a"),
        "{kind}"
    );
}

#[test]
fn a_replica_rebuilt_without_the_tombstone_resurrects_the_key() {
    let mut sim = cluster();
    sim.set(1, "a", "1").unwrap();
    sim.set(1, "b", "2").unwrap();
    sim.run_for(Duration::from_secs(5)).unwrap();
    assert_eq!(sim.node(2).unwrap().node("n1").unwrap().max_version, 2);
    sim.delete(1, "a").unwrap();
    sim.set(1, "c", "4").unwrap();
    // A reset that claims a watermark above the tombstone but still carries the deleted key.
    let mut reset = delta_of_n1(1, 0, 4, vec![entry("a", "1", 1), entry("b", "2", 2), entry("c", "4", 4)]);
    reset.reset = true;
    reset.gc_watermark = 3;
    let datagram = forged_push(&sim, reset);
    let kind = violation(&mut sim, &datagram);
    assert!(
        matches!(&kind, ViolationKind::Resurrected { key, live_version: 1, tombstone_version: 3, .. } if key == "a"),
        "{kind}"
    );
}

#[test]
fn a_replica_ahead_of_its_owner_is_caught() {
    let mut sim = cluster();
    sim.set(1, "a", "1").unwrap();
    let datagram = forged_push(&sim, delta_of_n1(1, 0, 2, vec![entry("a", "1", 1), entry("z", "?", 2)]));
    let kind = violation(&mut sim, &datagram);
    assert!(matches!(kind, ViolationKind::AheadOfOwner { max_version: 2, owner_max: 1, .. }), "{kind}");
}

#[test]
fn a_value_the_owner_never_wrote_is_caught() {
    let mut sim = cluster();
    sim.set(1, "a", "1").unwrap();
    let datagram = forged_push(&sim, delta_of_n1(1, 0, 1, vec![entry("a", "evil", 1)]));
    let kind = violation(&mut sim, &datagram);
    assert!(matches!(&kind, ViolationKind::WrongValue { key, version: 1, .. } if key == "a"), "{kind}");
}

#[test]
fn a_generation_that_never_ran_is_caught() {
    let mut sim = cluster();
    let datagram = forged_push(&sim, delta_of_n1(7, 0, 1, vec![entry("a", "1", 1)]));
    let kind = violation(&mut sim, &datagram);
    assert!(matches!(kind, ViolationKind::UnknownGeneration { generation: 7, .. }), "{kind}");
}

#[test]
fn honest_traffic_never_trips_the_checks() {
    let mut sim = cluster();
    sim.set(1, "a", "1").unwrap();
    sim.delete(1, "a").unwrap();
    sim.set(1, "a", "3").unwrap();
    sim.run_for(Duration::from_secs(10)).unwrap();
    sim.check_all().unwrap();
    assert_eq!(sim.node(2).unwrap().get("n1", "a"), Some(&b"3"[..]));
}

#[test]
fn the_version_check_catches_a_replica_going_back() {
    // The core cannot be driven to lower a max version, so feed the checker observations.
    let mut memory = VersionMemory::new();
    assert_eq!(memory.observe(2, 1, "n1", 1, 4), Ok(true));
    let went_back = memory.observe(2, 1, "n1", 1, 3);
    assert!(matches!(went_back, Err(ViolationKind::VersionWentBack { was: (1, 4), now: (1, 3), .. })));
    assert!(memory.observe(2, 1, "n1", 0, 9).is_err(), "an older generation is going back too");
}

#[test]
fn the_replica_check_fails_on_synthetic_holes_and_resurrections() {
    let mut log = OwnerLog::new();
    log.record("a", Some(Bytes::from_static(b"1")));
    log.record("a", None);
    let one = Bytes::from_static(b"1");
    let snapshot = |max_version, entries| invariants::ReplicaSnapshot {
        owner: "n1",
        generation: 1,
        max_version,
        entries,
    };
    assert_eq!(invariants::check_replica(&log, &snapshot(1, vec![("a", &one, 1)])), Ok(()));
    assert!(matches!(
        invariants::check_replica(&log, &snapshot(2, vec![("a", &one, 1)])),
        Err(ViolationKind::Resurrected { .. })
    ));
    // At version 1 the replica may lack `a`: the owner deleted it at 2, and deltas carry the
    // owner's current entries, so a delta built after the delete has no `a = 1` to send.
    assert_eq!(invariants::check_replica(&log, &snapshot(1, vec![])), Ok(()));
    log.record("b", Some(Bytes::from_static(b"2")));
    assert!(matches!(invariants::check_replica(&log, &snapshot(3, vec![])), Err(ViolationKind::Hole { .. })));
}
