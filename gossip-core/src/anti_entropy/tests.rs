//! The bucket sums of a `Syn`: the responder names every node of the buckets that differ.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use gossip_proto::v1::{self, envelope::Body};
use prost::Message;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::config::Config;
use crate::identity::Identity;
use crate::{Output, Transmit};

const MEMBERS: usize = 200;

fn address(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 7946))
}

fn member(i: usize) -> String {
    format!("member-{i:03}")
}

/// A node that knows the other of the pair and every member but `lacking`.
fn node(
    name: &str,
    at: usize,
    other: (&str, usize),
    lacking: &BTreeSet<usize>,
    now: Instant,
) -> Node<ChaCha8Rng> {
    let identity = Identity::new(name, 1, address(at));
    let mut node = Node::new(Config::lan(), identity, now, ChaCha8Rng::seed_from_u64(at as u64)).unwrap();
    node.table.upsert(other.0, 1, address(other.1), usize::MAX);
    for i in (0..MEMBERS).filter(|i| !lacking.contains(i)) {
        node.table.upsert(member(i), 1, address(1000 + i), usize::MAX);
    }
    node
}

/// The one datagram `node` sent, decoded.
fn sent(node: &mut Node<ChaCha8Rng>) -> (Vec<u8>, Body) {
    let mut sent = Vec::new();
    while let Some(output) = node.poll() {
        if let Output::Transmit(Transmit { payload, .. }) = output {
            sent.push(payload.to_vec());
        }
    }
    assert_eq!(sent.len(), 1, "one datagram");
    let payload = sent.remove(0);
    let body = v1::Envelope::decode(&payload[..]).unwrap().body.unwrap();
    (payload, body)
}

/// An out-of-sync initiator that lacks six members deep in the responder's table (far past
/// its first rotating window) sends its bucket sums; the responder's `SynAck` names every one
/// of the six, and the exchange that follows teaches them to the initiator.
#[test]
fn the_responder_names_every_node_of_the_buckets_that_differ() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let lacking: BTreeSet<usize> = (150..156).collect();
    let mut initiator = node("initiator", 1, ("responder", 2), &lacking, now);
    let mut responder = node("responder", 2, ("initiator", 1), &BTreeSet::new(), now);
    assert_ne!(initiator.table.summary(), responder.table.summary());

    initiator.now = now;
    initiator.mark_out_of_sync();
    initiator.send_syn(address(2));
    let (syn, body) = sent(&mut initiator);
    let Body::Syn(syn_message) = body else { panic!("a Syn") };
    assert_eq!(syn_message.bucket_sums.len(), crate::summary::BUCKETS, "an out-of-sync Syn carries them");
    assert_eq!(syn_message.bucket_sums, initiator.table.bucket_sums());

    responder.handle_input(now, address(1), &syn);
    let (syn_ack, body) = sent(&mut responder);
    let Body::SynAck(syn_ack_message) = body else { panic!("a SynAck") };
    let offered: BTreeSet<&str> = syn_ack_message.digest.iter().map(|entry| entry.name.as_str()).collect();
    for i in &lacking {
        assert!(offered.contains(member(*i).as_str()), "{} is not offered: {offered:?}", member(*i));
    }

    // The rest of the exchange: the initiator asks, the responder sends.
    initiator.handle_input(now, address(2), &syn_ack);
    let (ack2, _) = sent(&mut initiator);
    responder.handle_input(now, address(1), &ack2);
    let (reply, _) = sent(&mut responder);
    initiator.handle_input(now, address(2), &reply);
    for i in &lacking {
        assert!(initiator.table.index_of(&member(*i)).is_some(), "{} was not learned", member(*i));
    }
    assert_eq!(initiator.table.summary(), responder.table.summary());
}

/// When both know the same number of nodes and only a state differs (an incarnation, here),
/// the responder does not list the differing bucket: what it lacks, the initiator learns
/// from windows and piggybacked claims as before.
#[test]
fn bucket_sums_are_answered_only_when_the_node_counts_differ() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut initiator = node("initiator", 1, ("responder", 2), &BTreeSet::new(), now);
    let mut responder = node("responder", 2, ("initiator", 1), &BTreeSet::new(), now);
    let changed = responder.table.index_of(&member(150)).unwrap();
    responder.table.modify(changed, |_, replica| replica.incarnation = 5);
    assert_ne!(initiator.table.summary(), responder.table.summary());
    assert_eq!(initiator.table.summary().nodes, responder.table.summary().nodes);

    initiator.now = now;
    initiator.mark_out_of_sync();
    initiator.send_syn(address(2));
    let (syn, _) = sent(&mut initiator);
    responder.handle_input(now, address(1), &syn);
    let (_, body) = sent(&mut responder);
    let Body::SynAck(syn_ack) = body else { panic!("a SynAck") };
    assert!(
        syn_ack.digest.iter().all(|entry| entry.name != member(150)),
        "the differing bucket was listed although the counts are equal"
    );
}

/// In sync, or with a table no larger than a window, a `Syn` carries no bucket sums (they
/// would cost 259 bytes for nothing).
#[test]
fn bucket_sums_ride_only_on_out_of_sync_syns_of_large_tables() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut initiator = node("initiator", 1, ("responder", 2), &BTreeSet::new(), now);
    initiator.now = now;
    initiator.send_syn(address(2));
    let (_, body) = sent(&mut initiator);
    let Body::Syn(syn) = body else { panic!("a Syn") };
    assert!(syn.bucket_sums.is_empty(), "in sync: none");

    let identity = Identity::new("small", 1, address(3));
    let mut small = Node::new(Config::lan(), identity, now, ChaCha8Rng::seed_from_u64(3)).unwrap();
    for i in 0..crate::summary::BUCKETS - 1 {
        small.table.upsert(member(i), 1, address(1000 + i), usize::MAX);
    }
    small.now = now;
    small.mark_out_of_sync();
    small.send_syn(address(2));
    let (_, body) = sent(&mut small);
    let Body::Syn(syn) = body else { panic!("a Syn") };
    assert!(syn.bucket_sums.is_empty(), "64 nodes: none");
}
