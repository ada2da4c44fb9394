//! Two live processes under one name: the newer keeps it, the older gives it up and turns
//! inert, both say so, and nobody reports a failure that did not happen (see the core's
//! `conflict.rs` for the rule). Driven on explicit virtual time.

#![allow(clippy::needless_update)] // wire structs may gain fields

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Harness, address, name};
use gossip_core::{Config, Event, MemberState, WriteError};

const STEP: Duration = Duration::from_millis(100);

/// The conflicts node `at` reported, as `(other address, other generation, kept)`.
fn conflicts(h: &Harness, at: usize) -> Vec<(SocketAddr, u64, bool)> {
    h.events[at]
        .iter()
        .filter_map(|event| match event {
            Event::NameConflict { other_address, other_generation, kept } => {
                Some((*other_address, *other_generation, *kept))
            }
            _ => None,
        })
        .collect()
}

/// Every failure or self-heal node `at` reported from event `from` on.
fn false_alarms(h: &Harness, at: usize, from: usize) -> Vec<Event> {
    h.events[at][from..]
        .iter()
        .filter(|event| matches!(event, Event::MemberFailed { .. } | Event::SelfHealed { .. }))
        .cloned()
        .collect()
}

/// Four nodes in sync.
fn cluster(seed: u64) -> Harness {
    let mut h = Harness::new(4, Config::lan(), seed);
    h.run_until_true(Duration::from_secs(20), STEP, |h| {
        h.in_sync() && h.nodes.iter().all(|n| n.nodes().count() == 4)
    })
    .expect("the cluster converges");
    h
}

#[test]
fn a_second_process_under_a_name_in_use_keeps_it_and_the_first_gives_it_up_quietly() {
    for seed in [1, 2, 3, 4, 5] {
        let mut h = cluster(seed);
        let marks: Vec<usize> = h.events.iter().map(Vec::len).collect();
        // Node 1's name, started again elsewhere while node 1 still runs.
        let newer = h.add_named(Config::lan(), &name(1), 2, 0);
        h.run_until_true(Duration::from_secs(30), STEP, |h| h.nodes[1].has_given_up_name()).unwrap_or_else(
            || {
                panic!(
                    "seed {seed}: the older process never gave its name up: {:?}",
                    &h.events[1][marks[1]..]
                )
            },
        );
        h.run_for(Duration::from_secs(30));

        assert_eq!(conflicts(&h, 1), [(address(newer), 2, false)], "seed {seed}: the older is told");
        assert_eq!(conflicts(&h, newer), [(address(1), 1, true)], "seed {seed}: the newer is told");
        for peer in [0, 2, 3] {
            let view = h.nodes[peer].node(&name(1)).map(|v| (v.generation, v.state, v.address));
            assert_eq!(
                view,
                Some((2, MemberState::Alive, address(newer))),
                "seed {seed}: node {peer}'s view"
            );
            assert!(conflicts(&h, peer).is_empty(), "seed {seed}: node {peer} is not involved");
        }
        for at in [0, 1, 2, 3] {
            assert_eq!(false_alarms(&h, at, marks[at]), [], "seed {seed}: node {at} raised a false alarm");
        }
        assert_eq!(false_alarms(&h, newer, 0), [], "seed {seed}: the newer raised a false alarm");

        // The older is inert: it sends nothing, refuses writes, and a leave finishes at once.
        let sent = h.nodes[1].metrics().datagrams_out;
        h.run_for(Duration::from_secs(10));
        assert_eq!(h.nodes[1].metrics().datagrams_out, sent, "seed {seed}: the older still sends");
        assert_eq!(h.nodes[1].set("key", "value"), Err(WriteError::NameGivenUp));
        h.nodes[1].leave();
        assert!(h.nodes[1].has_left());
    }
}

#[test]
fn a_claim_of_a_newer_generation_elsewhere_that_nobody_answers_is_healed_after_the_check() {
    let mut h = cluster(7);
    // A process under node 1's name joins through node 0, then dies before node 1 hears of
    // it: the check finds nobody at its address, so node 1 takes its name back.
    let ghost = h.add_named(Config::lan(), &name(1), 5, 0);
    h.run_until_true(Duration::from_secs(5), Duration::from_millis(10), |h| {
        h.nodes[0].node(&name(1)).is_some_and(|v| v.generation == 5)
    })
    .expect("node 0 takes the newer generation");
    h.down.insert(ghost);
    h.run_until_true(Duration::from_secs(30), STEP, |h| h.nodes[1].identity().generation > 5)
        .expect("node 1 heals past the ghost");
    assert_eq!(h.nodes[1].identity().generation, 6);
    assert!(!h.nodes[1].has_given_up_name());
    assert!(conflicts(&h, 1).is_empty(), "nobody answered: no conflict");
    h.run_until_true(Duration::from_secs(30), STEP, |h| {
        [0, 2, 3].iter().all(|&peer| {
            h.nodes[peer].node(&name(1)).map(|v| (v.generation, v.state, v.address))
                == Some((6, MemberState::Alive, address(1)))
        })
    })
    .expect("every peer holds node 1 at its own address again");
}

/// A forged claim placing node 1's name, under a newer generation, at another member's
/// address: the check reaches that member, which does not answer for a name not its own, so
/// node 1 heals instead of giving its name up.
#[test]
fn a_forged_newer_generation_at_another_members_address_does_not_take_the_name() {
    use bytes::Bytes;
    use gossip_core::proto::PROTOCOL_VERSION;
    use gossip_core::proto::v1::{self, envelope::Body};
    use prost::Message;

    let mut h = cluster(11);
    let wire = |index: usize| v1::Address {
        ip: Bytes::from_static(&[127, 0, 0, 1]),
        port: u32::from(address(index).port()),
        ..Default::default()
    };
    let identity = |name: &str, generation: u64, at: usize| v1::NodeIdentity {
        name: name.to_owned(),
        generation,
        address: Some(wire(at)),
        ..Default::default()
    };
    let forged = v1::Envelope {
        protocol_version: PROTOCOL_VERSION,
        cluster: Config::lan().cluster,
        sender: Some(identity("mallory", 1, 50)),
        body: Some(Body::Ack(v1::Ack { sequence: 0, ..Default::default() })),
        membership: vec![v1::MembershipUpdate {
            member: Some(identity(&name(1), 5, 3)),
            incarnation: 0,
            state: v1::MemberState::Alive as i32,
            from: "mallory".to_owned(),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec();
    for peer in [0, 2, 3] {
        h.inject(address(50), peer, &forged);
    }
    h.run_until_true(Duration::from_secs(30), STEP, |h| h.nodes[1].identity().generation > 5)
        .expect("node 1 heals past the forgery");
    assert!(!h.nodes[1].has_given_up_name(), "a forged claim took the name");
    assert!((0..4).all(|i| conflicts(&h, i).is_empty()), "no process but node 1 runs under its name");
}
