//! SWIM membership driven by hand: failure detection, leave, restart, refutation.

mod common;

use std::time::Duration;

use common::{Harness, name};
use gossip_core::{Config, Event, MemberState};

fn state_of(h: &Harness, viewer: usize, member: usize) -> Option<MemberState> {
    h.nodes[viewer].node(&name(member)).map(|view| view.state)
}

fn all_see(h: &Harness, member: usize, state: MemberState) -> bool {
    (0..h.nodes.len())
        .filter(|i| *i != member && !h.down.contains(i))
        .all(|i| state_of(h, i, member) == Some(state))
}

fn converged_cluster(n: usize, config: Config, seed: u64) -> Harness {
    let mut h = Harness::new(n, config, seed);
    let took = h.run_until_true(Duration::from_secs(30), Duration::from_millis(100), |h| {
        (0..n).all(|i| h.nodes[i].nodes().filter(|v| v.state == MemberState::Alive).count() == n)
    });
    assert!(took.is_some(), "membership did not converge");
    h
}

#[test]
fn a_crashed_member_is_suspected_then_declared_failed_by_everyone() {
    let mut h = converged_cluster(8, Config::local(), 11);
    h.down.insert(5);
    let took = h.run_until_true(Duration::from_secs(60), Duration::from_millis(100), |h| {
        all_see(h, 5, MemberState::Dead)
    });
    let took = took.expect("the crash was never detected by everyone");
    // Suspicion (3 x log10(8) -> 3 periods at least, up to 6x that) plus dissemination.
    assert!(took < Duration::from_secs(25), "took {took:?}");
    for i in (0..8).filter(|i| *i != 5) {
        assert!(
            h.events[i].iter().any(|e| matches!(e, Event::MemberFailed { name, .. } if name == "node-5")),
            "node {i} never reported node-5 failed"
        );
    }
}

#[test]
fn a_healthy_cluster_declares_no_one_dead() {
    let mut h = converged_cluster(8, Config::local(), 12);
    h.run_for(Duration::from_secs(120));
    for i in 0..8 {
        for view in h.nodes[i].nodes() {
            assert_eq!(view.state, MemberState::Alive, "node {i} sees {} as {:?}", view.name, view.state);
        }
        assert!(!h.events[i].iter().any(|e| matches!(e, Event::MemberSuspected { .. })));
    }
}

#[test]
fn a_member_that_leaves_is_reported_left_not_failed() {
    let mut h = converged_cluster(6, Config::local(), 13);
    h.nodes[2].leave();
    h.drain(2);
    let took =
        h.run_until_true(Duration::from_secs(20), Duration::from_millis(50), |h| h.nodes[2].has_left());
    assert!(took.is_some(), "the leave never completed");
    h.down.insert(2);
    h.run_until_true(Duration::from_secs(20), Duration::from_millis(100), |h| {
        all_see(h, 2, MemberState::Left)
    })
    .expect("not everyone saw the leave");
    h.run_for(Duration::from_secs(30));
    for i in (0..6).filter(|i| *i != 2) {
        assert!(h.events[i].iter().any(|e| matches!(e, Event::MemberLeft { name, .. } if name == "node-2")));
        assert!(
            !h.events[i].iter().any(|e| matches!(e, Event::MemberFailed { name, .. } if name == "node-2"))
        );
    }
}

#[test]
fn an_isolated_member_refutes_after_the_partition_heals() {
    let mut config = Config::local();
    config.swim.dead_retention = Duration::from_secs(600);
    let mut h = converged_cluster(6, config, 14);
    h.isolate(4);
    h.run_until_true(Duration::from_secs(60), Duration::from_millis(100), |h| {
        all_see(h, 4, MemberState::Dead)
    })
    .expect("the isolated member was never declared dead");
    h.heal();
    let healed = h.run_until_true(Duration::from_secs(60), Duration::from_millis(100), |h| {
        (0..6).all(|i| h.nodes[i].nodes().all(|v| v.state == MemberState::Alive))
    });
    assert!(healed.is_some(), "the partition never healed");
    assert!(h.nodes[4].metrics().refutations >= 1);
    assert!(h.nodes[4].node("node-4").unwrap().incarnation >= 1);
}

#[test]
fn a_restarted_member_with_a_new_generation_replaces_its_old_self() {
    let mut h = converged_cluster(5, Config::local(), 15);
    h.down.insert(3);
    h.run_for(Duration::from_secs(1));
    h.restart(3, 2, Config::local(), 0);
    let took = h.run_until_true(Duration::from_secs(20), Duration::from_millis(100), |h| {
        (0..5).all(|i| {
            h.nodes[i].node("node-3").is_some_and(|v| v.generation == 2 && v.state == MemberState::Alive)
        })
    });
    assert!(took.is_some(), "the new generation did not replace the old one everywhere");
}

#[test]
fn a_suspected_member_refutes_before_its_suspicion_times_out() {
    let mut h = converged_cluster(6, Config::local(), 16);
    // Node 3 stops receiving (its outgoing datagrams still flow) until someone suspects it.
    for other in 0..6 {
        h.cut.insert((other, 3));
    }
    h.run_until_true(Duration::from_secs(30), Duration::from_millis(50), |h| {
        (0..6).any(|i| state_of(h, i, 3) == Some(MemberState::Suspect))
    })
    .expect("nobody suspected the deaf member");
    h.heal();
    let took = h
        .run_until_true(Duration::from_secs(30), Duration::from_millis(50), |h| {
            all_see(h, 3, MemberState::Alive)
        })
        .expect("the suspicion was never refuted");
    // Lifeguard's suspicion starts at 6 x 3 s; the refutation must come long before.
    assert!(took < Duration::from_secs(6), "refuted after {took:?}");
    assert!(h.nodes[3].metrics().refutations >= 1);
    for i in 0..6 {
        assert!(
            !h.events[i].iter().any(|e| matches!(e, Event::MemberFailed { name, .. } if name == "node-3"))
        );
    }
}
