//! Application messages: a broadcast reaches every other member exactly once (the sender
//! gets none), also in a quiet cluster where only the broadcast's own `Gossip` datagrams carry
//! it; a direct message reaches its member; and the mistakes a caller can make are typed
//! errors.

mod common;

use std::time::Duration;

use common::{Harness, name};
use gossip_core::{Config, Event, MessageError};

fn broadcasts(events: &[Event]) -> Vec<(String, String, Vec<u8>)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Broadcast { origin, topic, payload } => {
                Some((origin.clone(), topic.clone(), payload.to_vec()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_broadcast_reaches_every_other_member_once() {
    for seed in 1..=5 {
        let n = 12;
        let mut h = Harness::new(n, Config::lan(), seed);
        h.run_for(Duration::from_secs(10));
        assert!(h.in_sync(), "seed {seed}: the cluster did not form");
        for events in &mut h.events {
            events.clear();
        }
        let id = h.nodes[3].broadcast("deploy", &b"v42"[..]).expect("a small broadcast");
        assert_eq!(id, 1);
        h.drain(3);
        h.run_for(Duration::from_secs(5));
        for (index, events) in h.events.iter().enumerate() {
            let got = broadcasts(events);
            if index == 3 {
                assert!(got.is_empty(), "seed {seed}: the sender got its own broadcast");
            } else {
                assert_eq!(
                    got,
                    vec![(name(3), "deploy".to_owned(), b"v42".to_vec())],
                    "seed {seed}: node {index}"
                );
            }
        }
        let delivered: u64 = h.metrics().iter().map(|m| m.broadcasts_delivered).sum();
        assert_eq!(delivered, n as u64 - 1, "seed {seed}");
        let footprint = h.nodes[0].footprint();
        assert_eq!(footprint.pending_broadcasts, 0, "seed {seed}: passed on a bounded number of times");
    }
}

/// A copy of a broadcast sent back to its origin is one the rest of the cluster does not get:
/// none is, while other members get copies.
#[test]
fn no_copy_of_a_broadcast_goes_back_to_its_origin() {
    use gossip_core::proto::v1;
    use prost::Message;
    for seed in 1..=3 {
        let mut h = Harness::new(12, Config::lan(), seed);
        h.run_for(Duration::from_secs(10));
        h.recorded = Some(Vec::new());
        h.nodes[3].broadcast("deploy", &b"v42"[..]).expect("a small broadcast");
        h.drain(3);
        h.run_for(Duration::from_secs(5));
        let (mut to_origin, mut to_others) = (0, 0);
        for (_, to, payload) in h.recorded.take().expect("recorded") {
            let envelope = v1::Envelope::decode(&payload[..]).expect("plain datagrams");
            let copies = envelope.broadcasts.iter().filter(|b| b.origin == name(3)).count();
            if to == common::address(3) {
                to_origin += copies;
            } else {
                to_others += copies;
            }
        }
        assert_eq!(to_origin, 0, "seed {seed}: copies went back to the origin");
        assert!(to_others >= 11, "seed {seed}: only {to_others} copies went out");
    }
}

#[test]
fn a_direct_message_reaches_its_member_only() {
    let mut h = Harness::new(4, Config::lan(), 7);
    h.run_for(Duration::from_secs(10));
    h.nodes[1].send_to(&name(2), &b"hello"[..]).expect("a live member");
    h.drain(1);
    h.run_for(Duration::from_secs(1));
    let messages = |index: usize| -> Vec<(String, Vec<u8>)> {
        h.events[index]
            .iter()
            .filter_map(|event| match event {
                Event::Message { from, payload } => Some((from.clone(), payload.to_vec())),
                _ => None,
            })
            .collect()
    };
    assert_eq!(messages(2), vec![(name(1), b"hello".to_vec())]);
    assert!(messages(0).is_empty() && messages(3).is_empty());
}

#[test]
fn caller_mistakes_are_typed_errors() {
    let mut h = Harness::new(2, Config::lan(), 3);
    h.run_for(Duration::from_secs(5));
    let node = &mut h.nodes[0];
    assert_eq!(
        node.send_to("nobody", &b"x"[..]),
        Err(MessageError::UnknownMember { name: "nobody".to_owned() })
    );
    assert_eq!(node.send_to(&name(0), &b"x"[..]), Err(MessageError::UnknownMember { name: name(0) }));
    assert_eq!(
        node.broadcast("t", vec![0; 1_025]),
        Err(MessageError::PayloadTooLarge { len: 1_025, max: 1_024 })
    );
    assert_eq!(
        node.broadcast(&"t".repeat(65), &b"x"[..]),
        Err(MessageError::TopicTooLarge { len: 65, max: 64 })
    );
    // Within the payload limit but not within a small datagram.
    let mut small = Config::lan();
    small.max_datagram_size = 600;
    small.aggregation.max_aggregates = 2;
    small.max_value_size = 100;
    let mut h = Harness::new(1, small, 3);
    assert!(matches!(h.nodes[0].broadcast("t", vec![0; 1_000]), Err(MessageError::DoesNotFit { .. })));
}

#[test]
fn a_sender_over_its_rate_is_dropped_and_counted() {
    let mut config = Config::lan();
    config.messages.rate_per_sender = 1;
    config.messages.burst_per_sender = 3;
    let mut h = Harness::new(2, config, 9);
    h.run_for(Duration::from_secs(5));
    for _ in 0..10 {
        h.nodes[1].send_to(&name(0), &b"spam"[..]).expect("sent");
    }
    h.drain(1);
    h.run_for(Duration::from_millis(100));
    let metrics = &h.metrics()[0];
    assert_eq!(metrics.messages_in, 3);
    assert_eq!(metrics.messages_rate_limited, 7);
}

#[test]
fn a_message_the_network_duplicates_is_delivered_once() {
    let mut h = Harness::new(3, Config::lan(), 11);
    h.run_for(Duration::from_secs(5));
    h.recorded = Some(Vec::new());
    h.nodes[1].send_to(&name(2), &b"once"[..]).expect("a live member");
    h.drain(1);
    let sent: Vec<_> = h.recorded.take().unwrap_or_default();
    let (_, _, datagram) =
        sent.iter().find(|(from, to, _)| *from == 1 && *to == common::address(2)).expect("sent");
    let datagram = datagram.clone();
    h.inject(common::address(1), 2, &datagram);
    h.inject(common::address(1), 2, &datagram);
    h.run_for(Duration::from_secs(1)); // The original arrives too.
    let got = h.events[2]
        .iter()
        .filter(|event| matches!(event, Event::Message { payload, .. } if payload.as_ref() == b"once"))
        .count();
    assert_eq!(got, 1, "delivered once (the datagram arrived three times)");
    assert_eq!(h.metrics()[2].messages_duplicate, 2);
}
