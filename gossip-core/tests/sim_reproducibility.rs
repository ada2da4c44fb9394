//! Simulation: a run is a pure function of its seed and scenario. The same seed gives the
//! same trace hash, a different seed a different one, even under loss, duplication, jitter,
//! partitions, crashes, pauses and clock jumps.

use std::time::Duration;

use gossip_core::sim::{
    Action, Bootstrap, ClockJump, GilbertElliott, Latency, LinkModel, Scenario, SimConfig,
};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn chaos_config(seed: u64) -> SimConfig {
    let ms = Duration::from_millis;
    let link = LinkModel::default()
        .with_latency(Latency::Exponential { min: ms(1), mean_extra: ms(20) })
        .with_loss(0.1)
        .with_duplication(0.05);
    SimConfig::new(12, seed).with_link(link).with_bootstrap(Bootstrap::Join(vec![0, 1]))
}

fn chaos() -> Scenario {
    let bursty = LinkModel::default().with_bursty_loss(GilbertElliott::bursts(0.3, 4.0));
    Scenario::new()
        .at(s(1), Action::set(3, "a", "1"))
        .at(s(2), Action::set(7, "b", "2"))
        .at(s(3), Action::Partition { a: vec![0, 1, 2, 3], b: (4..12).collect(), heal_after: Some(s(10)) })
        .at(s(4), Action::set(3, "a", "3"))
        .at(s(5), Action::delete(7, "b"))
        .at(s(6), Action::Crash(5))
        .at(s(7), Action::Pause(9))
        .at(s(8), Action::ClockJump { node: 10, jump: ClockJump::Forward(s(3)) })
        .at(s(9), Action::SetLink { from: 2, to: 8, link: bursty })
        .at(s(12), Action::Resume(9))
        .at(s(14), Action::Restart(5))
        .at(s(15), Action::CutOneWay { from: vec![11], to: vec![0], heal_after: Some(s(5)) })
        .at(s(16), Action::set(5, "c", "after restart"))
        .at(s(17), Action::ClockJump { node: 10, jump: ClockJump::Backward(s(2)) })
}

#[test]
fn same_seed_same_trace_and_different_seed_different_trace() {
    let run = |seed| chaos().run(chaos_config(seed), s(60)).unwrap_or_else(|e| panic!("{e}"));
    let first = run(21);
    let again = run(21);
    let other = run(22);
    assert!(first.trace_len() > 1_000, "the run did something: {} records", first.trace_len());
    assert_eq!(first.trace_hash(), again.trace_hash());
    assert_eq!(first.stats(), again.stats());
    assert_ne!(first.trace_hash(), other.trace_hash());

    let stats = first.stats();
    assert!(stats.lost > 0 && stats.duplicated > 0 && stats.blocked > 0, "{stats:?}");
    assert!(stats.to_down_nodes > 0 && stats.held_while_paused > 0, "{stats:?}");
}

#[test]
fn after_the_chaos_every_node_converges_to_the_owners_tables() {
    let mut sim = chaos().run(chaos_config(5), s(90)).unwrap_or_else(|e| panic!("{e}"));
    sim.check_all().unwrap_or_else(|e| panic!("{e}"));
    for reader in 0..sim.len() {
        let node = sim.node(reader).expect("every node is up at the end");
        assert_eq!(node.get("n3", "a"), Some(&b"3"[..]), "node {reader}");
        assert_eq!(node.get("n7", "b"), None, "node {reader}: the deleted key stays deleted");
        assert_eq!(node.get("n5", "c"), Some(&b"after restart"[..]), "node {reader}");
        assert_eq!(node.node("n5").map(|view| view.generation), Some(2), "node {reader}");
    }
}
