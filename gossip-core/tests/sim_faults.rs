//! Simulation: the fault model does what it says. Partitions (symmetric and one-way) hold
//! back updates until healed, a crashed node is gone and comes back under a new generation,
//! a paused node handles its buffered datagrams on resume and its timer fires late, and a
//! node whose clock jumps ahead fires its timers early.

use std::time::Duration;

use gossip_core::sim::{Bootstrap, ClockJump, SimConfig, SimError, Simulation};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn in_sync(nodes: usize, seed: u64) -> Simulation {
    Simulation::new(SimConfig::new(nodes, seed).with_bootstrap(Bootstrap::InSync)).unwrap()
}

#[test]
fn a_partition_holds_an_update_back_until_it_heals() {
    let mut sim = in_sync(6, 1);
    let cut = sim.partition([0, 1, 2], [3, 4, 5]);
    let write = sim.set(0, "k", "v").unwrap();
    sim.run_for(s(20)).unwrap();
    let learned = |sim: &Simulation, node| sim.write(write).unwrap().learned_at(node);
    assert!((1..3).all(|node| learned(&sim, node).is_some()), "its own side has it");
    assert!((3..6).all(|node| learned(&sim, node).is_none()), "the other side does not");
    assert!(sim.stats().blocked > 0);
    assert!(sim.heal(cut));
    sim.run_for(s(20)).unwrap();
    assert!(sim.write(write).unwrap().all_informed_at.is_some_and(|at| at > s(20)));
}

#[test]
fn a_one_way_cut_still_lets_the_other_direction_through() {
    let mut sim = in_sync(2, 2);
    sim.cut_one_way([1], [0]);
    let from_zero = sim.set(0, "a", "1").unwrap();
    let from_one = sim.set(1, "b", "2").unwrap();
    sim.run_for(s(20)).unwrap();
    // Node 1 hears node 0's pushes; node 0 never hears from node 1.
    assert!(sim.write(from_zero).unwrap().learned_at(1).is_some());
    assert!(sim.write(from_one).unwrap().learned_at(0).is_none());
}

#[test]
fn a_crashed_node_comes_back_under_a_new_generation_and_catches_up() {
    let mut sim = in_sync(5, 3);
    let before = sim.set(4, "old", "1").unwrap();
    sim.run_for(s(10)).unwrap();
    assert!(sim.write(before).unwrap().all_informed_at.is_some());
    sim.crash(4).unwrap();
    assert!(sim.node(4).is_none());
    assert!(matches!(sim.set(4, "x", "y"), Err(SimError::NodeDown(4))));
    let during = sim.set(2, "during", "1").unwrap();
    sim.run_for(s(5)).unwrap();
    assert!(sim.stats().to_down_nodes > 0 || sim.write(during).unwrap().all_informed_at.is_some());
    sim.restart(4).unwrap();
    assert_eq!(sim.generation(4), Some(2));
    assert_eq!(sim.node(4).unwrap().get("n4", "old"), None, "a restart starts empty");
    let after = sim.set(4, "new", "2").unwrap();
    sim.run_for(s(30)).unwrap();
    sim.check_all().unwrap();
    assert!(sim.write(after).unwrap().all_informed_at.is_some());
    for reader in 0..4 {
        let node = sim.node(reader).unwrap();
        assert_eq!(node.node("n4").map(|view| view.generation), Some(2), "node {reader}");
        assert_eq!(node.get("n4", "old"), None, "node {reader}: the old generation's state is gone");
    }
    assert!(sim.node(4).unwrap().get("n2", "during").is_some(), "the restarted node caught up");
}

#[test]
fn a_paused_node_handles_its_inputs_on_resume_and_its_timer_fires_late() {
    let mut sim = Simulation::new(SimConfig::new(4, 8).with_recorded_events()).unwrap();
    sim.run_for(s(5)).unwrap();
    sim.pause(2).unwrap();
    let write = sim.set(0, "k", "v").unwrap();
    sim.run_for(s(10)).unwrap();
    assert_eq!(sim.write(write).unwrap().learned_at(2), None, "a paused node learns nothing");
    assert!(sim.stats().held_while_paused > 0);
    let rounds_before = sim.node(2).unwrap().metrics().gossip_rounds;
    sim.resume(2).unwrap();
    assert_eq!(sim.write(write).unwrap().learned_at(2), Some(s(15)), "buffered datagrams first");
    sim.run_for(Duration::from_millis(1)).unwrap();
    assert_eq!(sim.node(2).unwrap().metrics().gossip_rounds, rounds_before + 1, "one late round, no burst");
}

#[test]
fn a_clock_jumping_ahead_fires_timers_early() {
    let mut sim = in_sync(3, 4);
    sim.run_for(s(10)).unwrap();
    let rounds = |sim: &Simulation, node: usize| sim.node(node).unwrap().metrics().gossip_rounds;
    let (steady, jumped) = (rounds(&sim, 0), rounds(&sim, 1));
    sim.jump_clock(1, ClockJump::Forward(s(60))).unwrap();
    sim.run_for(s(1)).unwrap();
    assert!(rounds(&sim, 1) > jumped, "node 1's overdue round ran at once");
    assert!(rounds(&sim, 0) <= steady + 10, "node 0 is unaffected");
    sim.jump_clock(1, ClockJump::Backward(s(120))).unwrap();
    let frozen = rounds(&sim, 1);
    sim.run_for(s(30)).unwrap();
    assert_eq!(rounds(&sim, 1), frozen, "a clock set back stands still: no round for 30 s");
    sim.check_all().unwrap();
}

/// A node that restarts at a new address is reported with both addresses, so the
/// application sees that it moved.
#[test]
fn a_restart_at_a_new_address_is_reported_with_both_addresses() {
    let config = SimConfig::new(4, 7).with_bootstrap(Bootstrap::InSync).with_recorded_events();
    let mut sim = Simulation::new(config).unwrap();
    sim.run_for(s(5)).unwrap();
    let old = sim.address(3).unwrap();
    let new: std::net::SocketAddr = "10.200.0.3:7000".parse().unwrap();
    sim.restart_at(3, new).unwrap();
    sim.run_for(s(10)).unwrap();
    for observer in 0..3 {
        let reported = sim.events().unwrap().iter().any(|(_, at, event)| {
            *at == observer
                && matches!(event, gossip_core::Event::MemberRestarted { name, address, old_address, .. }
                    if name == "n3" && *address == new && *old_address == old)
        });
        assert!(reported, "node {observer} did not report n3 moving from {old} to {new}");
    }
}
