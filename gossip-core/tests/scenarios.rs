//! Scenario tests: a few nodes driven by hand on virtual time (see `common::Harness`).
//!
//! Every test drives the clock explicitly and never sleeps; every run is a pure function of
//! its seed. Each test asserts something that would be false if the behaviour it is named
//! for were broken.
//!
//! Wire messages built by hand end with `..Default::default()` so that fields added to the
//! schema later do not break these tests (hence the `needless_update` allowance).

#![allow(clippy::needless_update)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Harness, address, name};
use gossip_core::proto::PROTOCOL_VERSION;
use gossip_core::proto::v1::{self, envelope::Body};
use gossip_core::{AntiEntropyMode, Config, Dissemination, Event, Identity, Metrics, Node, Output};
use prost::Message;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

const STEP: Duration = Duration::from_millis(100);

/// Anti-entropy alone in `mode` (no rumors), so that what converges is the mode under test.
fn config(mode: AntiEntropyMode) -> Config {
    let mut config = Config::lan();
    config.mode = mode;
    config.dissemination = Dissemination::AntiEntropy;
    config
}

fn key(i: usize) -> String {
    format!("key-{i}")
}

fn value(i: usize) -> String {
    format!("value-{i}")
}

/// Every node writes `key-i = value-i`.
fn write_one_key_each(h: &mut Harness) {
    for i in 0..h.nodes.len() {
        h.nodes[i].set(key(i), value(i)).unwrap();
    }
}

/// Whether every node holds every node's `key-i = value-i`.
fn every_key_everywhere(h: &Harness) -> bool {
    (0..h.nodes.len()).all(|owner| h.all_see(owner, &key(owner), value(owner).as_bytes()))
}

/// Runs until every node holds every node's key; panics after `limit`.
fn converge(h: &mut Harness, limit: Duration, what: &str) -> Duration {
    h.run_until_true(limit, STEP, every_key_everywhere)
        .unwrap_or_else(|| panic!("{what}: did not converge within {limit:?}"))
}

/// Takes every datagram a node outside the harness wants to send.
fn datagrams(node: &mut Node<ChaCha8Rng>) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some(output) = node.poll() {
        if let Output::Transmit(transmit) = output {
            out.push(transmit.payload);
        }
    }
    out
}

fn wire_address(index: usize) -> v1::Address {
    v1::Address {
        ip: Bytes::from_static(&[127, 0, 0, 1]),
        port: u32::from(address(index).port()),
        ..Default::default()
    }
}

/// An envelope of the harness's cluster from a made-up sender at `address(index)`.
fn envelope_from(sender: &str, index: usize, body: Body) -> v1::Envelope {
    v1::Envelope {
        protocol_version: PROTOCOL_VERSION,
        cluster: Config::lan().cluster,
        sender: Some(v1::NodeIdentity {
            name: sender.to_owned(),
            generation: 1,
            address: Some(wire_address(index)),
            ..Default::default()
        }),
        body: Some(body),
        ..Default::default()
    }
}

/// A `Push` body (no rumor feedback asked).
fn push(deltas: Vec<v1::NodeDelta>) -> Body {
    Body::Push(v1::Push { deltas, ..Default::default() })
}

fn entry(key: &str, value: &[u8], version: u64) -> v1::Entry {
    v1::Entry { key: key.to_owned(), value: Bytes::copy_from_slice(value), version, ..Default::default() }
}

fn node_delta(name: &str, index: usize, from: u64, to: u64, entries: Vec<v1::Entry>) -> v1::NodeDelta {
    v1::NodeDelta {
        name: name.to_owned(),
        generation: 1,
        address: Some(wire_address(index)),
        from_version: from,
        to_version: to,
        gc_watermark: 0,
        entries,
        ..Default::default()
    }
}

/// The counters of dropped input, to check that exactly the expected one moved.
fn drops(m: &Metrics) -> [u64; 5] {
    [m.oversized_datagrams, m.decode_errors, m.version_mismatches, m.cluster_mismatches, m.malformed_messages]
}

// ----- 1. three nodes, each mode -----

fn three_nodes_converge(mode: AntiEntropyMode) {
    let mut h = Harness::new(3, config(mode), 7);
    // Let the join handshakes (always a push-pull `Syn`) finish before anyone writes, so
    // that what spreads the writes is the mode under test.
    h.run_for(Duration::from_secs(1));
    write_one_key_each(&mut h);
    let took = converge(&mut h, Duration::from_secs(30), &format!("{mode:?}, 3 nodes"));
    eprintln!("{mode:?}: 3 nodes converged in {took:?}");
    for i in 0..3 {
        assert_eq!(h.nodes[i].nodes().count(), 3, "{mode:?}: node {i} does not know every node");
    }
    h.run_for(Duration::from_secs(2));
    assert!(h.in_sync(), "{mode:?}: digests differ after convergence");
    assert!(h.max_datagram <= 1400);
}

#[test]
fn three_nodes_converge_in_push() {
    three_nodes_converge(AntiEntropyMode::Push);
}

#[test]
fn three_nodes_converge_in_pull() {
    three_nodes_converge(AntiEntropyMode::Pull);
}

#[test]
fn three_nodes_converge_in_push_pull() {
    three_nodes_converge(AntiEntropyMode::PushPull);
}

/// Push mode pushes only recent changes (see `send_push`) to random peers, but opens
/// push-pull exchanges with its seeds and the dead (the backstop): a node that was unreachable
/// for the whole recent window is repaired in push mode too. (It was not, before chaos seeds
/// showed push-mode clusters that never re-merged after a long partition.)
#[test]
fn push_and_push_pull_both_repair_a_node_that_missed_the_recent_window() {
    for (mode, expect_repair) in [(AntiEntropyMode::Push, true), (AntiEntropyMode::PushPull, true)] {
        let mut config = config(mode);
        // A fixed interval: with the idle backoff on, probes carry digest summaries and a
        // differing summary opens a push-pull exchange, which repairs in any mode.
        config.max_idle_gossip_interval = config.gossip_interval;
        let mut h = Harness::new(3, config, 8);
        // Let everyone meet first (node 2 must know node 0 for the repair to be possible).
        h.nodes[1].set("hello", "1").unwrap();
        h.nodes[2].set("hello", "2").unwrap();
        h.run_for(Duration::from_secs(2));
        h.isolate(2);
        h.nodes[0].set("old", "x").unwrap();
        // Well past the recent window (20 rounds of 200 ms).
        h.run_for(Duration::from_secs(10));
        h.heal();
        h.run_for(Duration::from_secs(10));
        assert_eq!(
            h.nodes[2].get(&name(0), "old").is_some(),
            expect_repair,
            "{mode:?}: an old write reached (or missed) a node that was away"
        );
    }
}

// ----- 2. twenty nodes, each mode -----

fn twenty_nodes_converge(config: Config, label: &str, seed: u64) {
    let mut h = Harness::new(20, config, seed);
    h.run_for(Duration::from_secs(1));
    write_one_key_each(&mut h);
    let took = converge(&mut h, Duration::from_secs(30), &format!("{label}, 20 nodes"));
    let rounds = took.as_millis() / 200;
    eprintln!("{label}: 20 nodes converged in {took:?} (~{rounds} gossip rounds of 200 ms)");
    assert!(h.in_sync(), "{label}: digest summaries differ once every key is everywhere");
    for i in 0..20 {
        assert_eq!(h.nodes[i].nodes().count(), 20, "{label}: node {i} does not know every node");
    }
    assert!(h.max_datagram <= 1400, "{label}: sent a {}-byte datagram", h.max_datagram);
    assert!(h.max_datagram > 0);
}

#[test]
fn twenty_nodes_converge_within_30_s_in_push() {
    twenty_nodes_converge(config(AntiEntropyMode::Push), "push", 21);
}

#[test]
fn twenty_nodes_converge_within_30_s_in_pull() {
    twenty_nodes_converge(config(AntiEntropyMode::Pull), "pull", 22);
}

#[test]
fn twenty_nodes_converge_within_30_s_in_push_pull() {
    twenty_nodes_converge(config(AntiEntropyMode::PushPull), "push-pull", 23);
}

/// The default configuration: rumors for speed, push-pull anti-entropy as the backstop.
#[test]
fn twenty_nodes_converge_within_30_s_with_the_default_config() {
    twenty_nodes_converge(Config::lan(), "default (rumors + push-pull)", 24);
}

// ----- 3. tombstones, GC and a stale node -----

/// Three nodes agree on node 0's `k`; node 2 is cut off; node 0 deletes `k` and, still
/// while node 2 is away, writes `after`; nodes 0 and 1 collect the tombstone; the network
/// heals and runs until node 2 has `after`. Returns the harness and the tombstone's version.
fn stale_node_returns_after_gc() -> (Harness, u64) {
    let mut config = Config::lan();
    config.tombstone_grace = Duration::from_secs(2);
    let mut h = Harness::new(3, config, 11);
    h.nodes[0].set("k", "v").unwrap();
    h.nodes[1].set("one", "1").unwrap();
    h.nodes[2].set("two", "2").unwrap();
    h.run_until_true(Duration::from_secs(10), STEP, |h| h.all_see(0, "k", b"v") && h.in_sync())
        .expect("k reaches everyone");

    h.isolate(2);
    let deleted = h.nodes[0].delete("k").unwrap().expect("k was there");
    h.run_until_true(Duration::from_secs(10), STEP, |h| {
        h.nodes[1].node(&name(0)).unwrap().max_version >= deleted
    })
    .expect("node 1 learns the tombstone");
    assert!(h.nodes[1].get(&name(0), "k").is_none());
    assert_eq!(h.nodes[2].get(&name(0), "k"), Some(&b"v"[..]), "node 2 is stale");

    // Past the grace period: nodes 0 and 1 collect the tombstone.
    h.run_for(Duration::from_secs(4));
    for i in [0, 1] {
        let view = h.nodes[i].node(&name(0)).unwrap();
        assert!(view.gc_watermark >= deleted, "node {i} did not collect the tombstone: {view:?}");
        assert!(h.nodes[i].metrics().tombstones_collected >= 1, "node {i} counted no collection");
    }
    assert_eq!(h.nodes[2].node(&name(0)).unwrap().gc_watermark, 0);

    // A write while node 2 is still away.
    h.nodes[0].set("after", "1").unwrap();
    h.run_for(Duration::from_secs(1));

    h.heal();
    h.run_until_true(Duration::from_secs(10), STEP, |h| h.all_see(0, "after", b"1"))
        .expect("node 0's write after the delete reaches everyone, node 2 included");
    h.run_for(Duration::from_secs(2));
    (h, deleted)
}

#[test]
fn a_deleted_key_stays_deleted_after_gc_when_a_stale_node_comes_back() {
    let (mut h, deleted) = stale_node_returns_after_gc();
    for i in 0..3 {
        assert!(h.nodes[i].get(&name(0), "k").is_none(), "node {i} sees the deleted key again");
        let keys: Vec<String> =
            h.nodes[i].entries(&name(0)).unwrap().map(|(key, _, _)| key.to_owned()).collect();
        assert_eq!(keys, ["after"], "node {i}'s replica of node 0");
        assert!(h.nodes[i].node(&name(0)).unwrap().gc_watermark >= deleted);
    }
    assert!(h.nodes[2].metrics().replica_resets >= 1, "node 2 should have rebuilt its replica of node 0");
    assert!(h.in_sync());

    // The stale node did not push its old copy back either: other nodes' keys are intact
    // and node 0 still owns a table without `k`.
    assert!(h.all_see(1, "one", b"1") && h.all_see(2, "two", b"2"));

    // Writes keep flowing to node 2 incrementally after the reset.
    h.nodes[0].set("later", "2").unwrap();
    h.run_until_true(Duration::from_secs(10), STEP, |h| h.all_see(0, "later", b"2"))
        .expect("a write after the reset reaches everyone");
    assert!((0..3).all(|i| h.nodes[i].get(&name(0), "k").is_none()));
}

/// When a replica is rebuilt because it fell behind the GC watermark, keys it held that are
/// gone from the owner's table vanish; the application must be told (as it is when the
/// tombstone arrives in time), or it keeps believing in `k` forever.
#[test]
fn a_replica_reset_reports_the_keys_it_dropped() {
    let (h, _) = stale_node_returns_after_gc();
    assert!(h.nodes[2].get(&name(0), "k").is_none());
    let told = h.events[2].iter().any(|event| {
        matches!(event, Event::KeysChanged { node, changes } if *node == name(0)
            && changes.iter().any(|change| change.key() == "k" && change.is_deleted()))
    });
    assert!(told, "node 2 dropped node 0's `k` in a reset without telling the application");
}

// ----- 4. restart with a new generation -----

#[test]
fn a_restarted_nodes_new_generation_replaces_its_old_state_everywhere() {
    let mut h = Harness::new(3, Config::lan(), 13);
    h.nodes[0].set("a", "0").unwrap();
    h.nodes[1].set("x", "1").unwrap();
    h.nodes[1].set("y", "2").unwrap();
    h.nodes[2].set("c", "2").unwrap();
    h.run_until_true(Duration::from_secs(10), STEP, |h| h.all_see(1, "x", b"1") && h.all_see(1, "y", b"2"))
        .expect("x and y reach everyone");
    h.run_for(Duration::from_secs(1));

    h.restart(1, 2, Config::lan(), 0);
    h.nodes[1].set("z", "3").unwrap();
    let done = |h: &Harness| {
        (0..3).all(|i| {
            let node = &h.nodes[i];
            node.node(&name(1)).is_some_and(|v| v.generation == 2)
                && node.get(&name(1), "z") == Some(b"3")
                && node.get(&name(1), "x").is_none()
                && node.get(&name(1), "y").is_none()
        })
    };
    let took = h.run_until_true(Duration::from_secs(10), STEP, done);
    assert!(took.is_some(), "generation 2 of node-1 did not replace generation 1 everywhere");

    // And it stays that way: the old generation does not come back from a stale replica.
    h.run_for(Duration::from_secs(5));
    assert!(done(&h), "the old generation's state came back");
    assert!(h.in_sync());
    for i in [0, 2] {
        let entries: Vec<(String, u64)> =
            h.nodes[i].entries(&name(1)).unwrap().map(|(k, _, v)| (k.to_owned(), v)).collect();
        assert_eq!(entries, [("z".to_owned(), 1)], "node {i}'s replica of node-1");
        let restarted = h.events[i].iter().any(|event| {
            matches!(event, Event::MemberRestarted { name: n, old_generation: 1, generation: 2, .. } if *n == name(1))
        });
        assert!(restarted, "node {i} got no MemberRestarted event for node-1");
    }
    // The restarted node learned the rest of the cluster again.
    assert!(h.all_see(0, "a", b"0") && h.all_see(2, "c", b"2"));
}

// ----- 5. other clusters, other protocol versions -----

#[test]
fn a_datagram_from_another_cluster_is_rejected_and_counted() {
    let mut h = Harness::new(3, Config::lan(), 17);
    write_one_key_each(&mut h);
    converge(&mut h, Duration::from_secs(10), "3 nodes");

    let before = h.snapshot(0);
    let m0 = h.nodes[0].metrics();
    let mut stranger =
        h.outsider(Config::lan().with_cluster("other"), Identity::new("stranger", 1, address(50)), 1);
    stranger.set("s", "1").unwrap();
    stranger.join([address(0)]);
    stranger.handle_timeout(h.now + Duration::from_secs(1));
    let sent = datagrams(&mut stranger);
    assert!(sent.len() >= 2, "the stranger should have sent its join and a round");
    for datagram in &sent {
        h.inject(address(50), 0, datagram);
    }
    let m1 = h.nodes[0].metrics();
    assert_eq!(m1.cluster_mismatches, m0.cluster_mismatches + sent.len() as u64);
    assert!(h.nodes[0].node("stranger").is_none(), "node 0 recorded a node of another cluster");
    assert_eq!(h.snapshot(0), before, "a foreign datagram changed node 0's state");
    assert!(
        h.events[0].iter().all(|e| !matches!(e, Event::MemberDiscovered { name, .. } if name == "stranger"))
    );

    // Control: the same kind of datagram in the right cluster is accepted.
    let mut neighbour = h.outsider(Config::lan(), Identity::new("neighbour", 1, address(51)), 2);
    neighbour.join([address(0)]);
    for datagram in datagrams(&mut neighbour) {
        h.inject(address(51), 0, &datagram);
    }
    assert!(h.nodes[0].node("neighbour").is_some());
    assert_eq!(h.nodes[0].metrics().cluster_mismatches, m1.cluster_mismatches);
}

#[test]
fn the_default_cluster_travels_as_the_empty_string_and_is_read_either_way() {
    let mut h = Harness::new(3, Config::lan(), 19);
    write_one_key_each(&mut h);
    converge(&mut h, Duration::from_secs(10), "3 nodes");

    // What a node of the default cluster sends leaves the field out.
    let mut newcomer = h.outsider(Config::lan(), Identity::new("newcomer", 1, address(52)), 3);
    newcomer.join([address(0)]);
    let sent = datagrams(&mut newcomer);
    assert!(!sent.is_empty());
    for datagram in &sent {
        let envelope = v1::Envelope::decode(datagram.as_ref()).expect("plain envelope");
        assert_eq!(envelope.cluster, "", "the default cluster is spelled out on the wire");
        h.inject(address(52), 0, datagram);
    }
    assert!(h.nodes[0].node("newcomer").is_some(), "an empty cluster is not read as the default one");

    // The name spelled out is the same cluster (the other tests' envelopes spell it).
    let m0 = h.nodes[0].metrics();
    let spelled = envelope_from("spelled", 53, push(Vec::new()));
    assert_eq!(spelled.cluster, gossip_core::DEFAULT_CLUSTER);
    h.inject(address(53), 0, &spelled.encode_to_vec());
    assert_eq!(h.nodes[0].metrics().cluster_mismatches, m0.cluster_mismatches);

    // A node of another cluster takes neither.
    let mut other =
        h.outsider(Config::lan().with_cluster("other"), Identity::new("other", 1, address(54)), 4);
    let before = other.metrics().cluster_mismatches;
    other.handle_input(h.now, address(52), &sent[0]);
    other.handle_input(h.now, address(53), &spelled.encode_to_vec());
    assert_eq!(other.metrics().cluster_mismatches, before + 2);
}

#[test]
fn a_datagram_of_another_protocol_version_is_rejected_and_counted() {
    let mut h = Harness::new(3, Config::lan(), 18);
    write_one_key_each(&mut h);
    converge(&mut h, Duration::from_secs(10), "3 nodes");

    let before = h.snapshot(0);
    let m0 = h.nodes[0].metrics();
    // A well-formed push of the right cluster, but protocol version 99.
    let versioned = |protocol_version: u32| {
        let mut envelope = envelope_from(
            "future",
            52,
            push(vec![node_delta("future", 52, 0, 1, vec![entry("f", b"1", 1)])]),
        );
        envelope.protocol_version = protocol_version;
        envelope.encode_to_vec()
    };
    h.inject(address(52), 0, &versioned(99));
    let m1 = h.nodes[0].metrics();
    assert_eq!(m1.version_mismatches, m0.version_mismatches + 1);
    assert!(h.nodes[0].node("future").is_none());
    assert_eq!(h.snapshot(0), before, "a datagram of another version changed node 0's state");

    // Control: the same envelope with the right version is applied.
    h.inject(address(52), 0, &versioned(PROTOCOL_VERSION));
    assert_eq!(h.nodes[0].get("future", "f"), Some(&b"1"[..]));
    assert_eq!(h.nodes[0].metrics().version_mismatches, m1.version_mismatches);

    // Version 1 travels as the field left out (0), and is read either way.
    let mut newcomer = h.outsider(Config::lan(), Identity::new("newcomer", 1, address(54)), 5);
    newcomer.join([address(0)]);
    let sent = datagrams(&mut newcomer);
    assert!(!sent.is_empty());
    for datagram in sent {
        let envelope = v1::Envelope::decode(datagram.as_ref()).expect("plain envelope");
        assert_eq!(envelope.protocol_version, 0, "version 1 is spelled out on the wire");
    }
    let mut left_out =
        envelope_from("absent", 53, push(vec![node_delta("absent", 53, 0, 1, vec![entry("a", b"1", 1)])]));
    left_out.protocol_version = 0;
    h.inject(address(53), 0, &left_out.encode_to_vec());
    assert_eq!(h.nodes[0].get("absent", "a"), Some(&b"1"[..]), "an absent version is not read as 1");
    assert_eq!(h.nodes[0].metrics().version_mismatches, m1.version_mismatches);
}

// ----- 6. nobody else writes our table -----

#[test]
fn a_peer_cannot_overwrite_our_own_keys() {
    let mut h = Harness::new(3, Config::lan(), 19);
    h.nodes[0].set("role", "web").unwrap();
    h.nodes[0].set("zone", "a").unwrap();
    h.run_until_true(Duration::from_secs(10), STEP, |h| {
        h.all_see(0, "role", b"web") && h.all_see(0, "zone", b"a")
    })
    .expect("node 0's keys reach everyone");

    let own = h.nodes[0].node(&name(0)).unwrap();
    let (max, generation) = (own.max_version, own.generation);
    let (_, role_version) = h.nodes[0].get_versioned(&name(0), "role").unwrap();
    let m0 = h.nodes[0].metrics();

    // Same generation, higher versions, a new value for `role` and a tombstone for `zone`.
    let mut tombstone = entry("zone", b"", max + 2);
    tombstone.deleted = true;
    let forged = node_delta(&name(0), 0, max, max + 5, vec![entry("role", b"pwned", max + 1), tombstone]);
    let same_generation = envelope_from("mallory", 53, push(vec![forged.clone()]));
    h.inject(address(53), 0, &same_generation.encode_to_vec());
    // A higher generation, from version 0.
    let mut reborn = forged.clone();
    reborn.generation = generation + 1;
    reborn.from_version = 0;
    let newer_generation = envelope_from("mallory", 53, push(vec![reborn]));
    h.inject(address(53), 0, &newer_generation.encode_to_vec());
    // The same through the reply paths of an exchange.
    let reply = envelope_from(
        "mallory",
        53,
        Body::DeltaReply(v1::DeltaReply { deltas: vec![forged.clone()], ..Default::default() }),
    );
    h.inject(address(53), 0, &reply.encode_to_vec());

    let check = |h: &Harness, what: &str| {
        let node = &h.nodes[0];
        assert_eq!(node.get_versioned(&name(0), "role"), Some((&b"web"[..], role_version)), "{what}");
        assert_eq!(node.get(&name(0), "zone"), Some(&b"a"[..]), "{what}");
        let own = node.node(&name(0)).unwrap();
        assert_eq!(own.max_version, max, "{what}");
        // A forged version or generation peers would take is superseded by a heal: a new
        // generation of node 0, its table kept (see `self_heal.rs`).
        assert!(own.generation > generation, "{what}: no heal");
        assert_eq!(own.generation, node.identity().generation, "{what}");
    };
    check(&h, "forged deltas");
    let m1 = h.nodes[0].metrics();
    // The first forgery makes node 0 heal, so the third (of the old generation) is merely stale.
    assert!(m1.self_heals >= m0.self_heals + 2, "{} -> {} heals", m0.self_heals, m1.self_heals);
    assert!(
        m1.rejected_own_deltas >= m0.rejected_own_deltas + 2,
        "{} -> {}",
        m0.rejected_own_deltas,
        m1.rejected_own_deltas
    );

    // A digest entry claiming a newer version of node 0 (in a Syn whose summary differs).
    let current = h.nodes[0].identity().generation;
    let claim =
        v1::DigestEntry { name: name(0), generation: current, max_version: max + 10, ..Default::default() };
    let syn = v1::Syn {
        summary: Some(v1::Summary { hash: 1, nodes: 1, ..Default::default() }),
        digest: vec![claim],
        mode: v1::ExchangeMode::PushPull as i32,
        ..Default::default()
    };
    h.inject(address(53), 0, &envelope_from("mallory", 53, Body::Syn(syn)).encode_to_vec());
    let m2 = h.nodes[0].metrics();
    assert!(
        m2.rejected_own_deltas > m1.rejected_own_deltas,
        "a digest claiming newer own state was not counted"
    );
    check(&h, "forged digest");

    // Nothing of it reached the others either: they hold node 0's real table under its new
    // generation.
    h.run_for(Duration::from_secs(3));
    check(&h, "after gossip");
    assert!(h.all_see(0, "role", b"web") && h.all_see(0, "zone", b"a"));
    let healed = h.nodes[0].identity().generation;
    assert!(
        (0..3).all(|i| h.nodes[i]
            .node(&name(0))
            .is_some_and(|v| v.max_version == max && v.generation == healed))
    );
}

// ----- 7. bad datagrams -----

#[test]
fn malformed_truncated_and_garbage_datagrams_are_dropped_counted_and_change_nothing() {
    let mut h = Harness::new(3, Config::lan(), 23);
    write_one_key_each(&mut h);
    converge(&mut h, Duration::from_secs(10), "3 nodes");
    h.run_for(Duration::from_secs(1));

    // A real datagram: a Push from a node of the same cluster with two keys.
    let mut probe = h.outsider(config(AntiEntropyMode::Push), Identity::new("probe", 1, address(60)), 3);
    probe.set("p", "1").unwrap();
    probe.set("q", "2").unwrap();
    // Node 0 becomes a live member, not a seed (a seed gets a digest exchange, not a push).
    let hello =
        envelope_from(&name(0), 0, Body::Ack(v1::Ack { sequence: 0, ..Default::default() })).encode_to_vec();
    probe.handle_input(h.now, address(0), &hello);
    let _hello = datagrams(&mut probe);
    probe.handle_timeout(h.now + Duration::from_secs(1));
    let real = datagrams(&mut probe).pop().expect("a push to node 0");
    assert!(matches!(v1::Envelope::decode(&real[..]).unwrap().body, Some(Body::Push(_))));

    let mut garbage = vec![0u8; 300];
    ChaCha8Rng::seed_from_u64(5).fill_bytes(&mut garbage);

    let oversized = envelope_from(
        "probe",
        60,
        push(vec![node_delta("probe", 60, 0, 2, vec![entry("p", &[1; 700], 1), entry("q", &[2; 700], 2)])]),
    )
    .encode_to_vec();
    assert!(oversized.len() > 1400);

    let out_of_order = |versions: [u64; 2]| {
        let entries = vec![entry("p", b"1", versions[0]), entry("q", b"2", versions[1])];
        let delta = node_delta("probe", 60, 0, 2, entries);
        envelope_from("probe", 60, push(vec![delta])).encode_to_vec()
    };
    // An entry above the delta's `to_version` and an empty sender name break rules too.
    let above_to = {
        let delta = node_delta("probe", 60, 0, 1, vec![entry("p", b"1", 1), entry("q", b"2", 2)]);
        envelope_from("probe", 60, push(vec![delta])).encode_to_vec()
    };
    let no_name = envelope_from("", 60, push(Vec::new())).encode_to_vec();

    // (datagram, index of the counter in `drops` that must move)
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        ("truncated by one byte", real[..real.len() - 1].to_vec(), 1),
        ("truncated to half", real[..real.len() / 2].to_vec(), 1),
        ("random garbage", garbage, 1),
        ("oversized", oversized, 0),
        ("entries out of version order", out_of_order([2, 1]), 4),
        ("entry above to_version", above_to, 4),
        ("empty sender name", no_name, 4),
    ];
    for (what, datagram, counter) in cases {
        if counter == 1 {
            assert!(v1::Envelope::decode(&datagram[..]).is_err(), "{what}: the test datagram decodes");
        }
        let before = h.snapshot(0);
        let m0 = drops(&h.nodes[0].metrics());
        h.inject(address(60), 0, &datagram);
        let m1 = drops(&h.nodes[0].metrics());
        let mut expected = m0;
        expected[counter] += 1;
        assert_eq!(
            m1, expected,
            "{what}: counters [oversized, decode, version, cluster, malformed] moved wrongly"
        );
        assert_eq!(h.snapshot(0), before, "{what}: node 0's state changed");
        assert!(h.nodes[0].node("probe").is_none(), "{what}: the sender was recorded");
    }

    // Control: the same push with its entries in order is accepted (then the real datagram,
    // whole, carries nothing new and is harmless).
    h.inject(address(60), 0, &out_of_order([1, 2]));
    assert_eq!(h.nodes[0].get("probe", "q"), Some(&b"2"[..]));
    let m = h.nodes[0].metrics();
    h.inject(address(60), 0, &real);
    assert_eq!(drops(&h.nodes[0].metrics()), drops(&m), "the real datagram, whole, was refused");

    // The cluster still works: a new key converges (probe's keys too, by relay).
    h.nodes[1].set("fresh", "new").unwrap();
    h.run_until_true(Duration::from_secs(10), STEP, |h| {
        h.all_see(1, "fresh", b"new") && (0..3).all(|i| h.nodes[i].get("probe", "p").is_some())
    })
    .expect("the cluster converges after the bad datagrams");
    assert!(h.max_datagram <= 1400);
}

// ----- 8. join -----

#[test]
fn a_node_that_knows_only_a_seed_learns_the_whole_cluster_and_the_cluster_learns_it() {
    let mut h = Harness::new(5, Config::lan(), 29);
    write_one_key_each(&mut h);
    converge(&mut h, Duration::from_secs(10), "5 nodes");
    h.run_for(Duration::from_secs(5));

    // The newcomer knows only node 3's address and writes nothing.
    let new = h.add(Config::lan(), 3);
    assert_eq!(h.nodes[new].nodes().count(), 1);
    let everyone_knows_everyone = |h: &Harness| (0..h.nodes.len()).all(|i| h.nodes[i].nodes().count() == 6);
    let took = h
        .run_until_true(Duration::from_secs(10), STEP, |h| {
            everyone_knows_everyone(h) && every_key_everywhere_but(h, new)
        })
        .expect("the newcomer and the cluster learn each other");
    eprintln!("join: 6th node known everywhere and caught up in {took:?}");

    for owner in 0..5 {
        assert!(
            h.events[new]
                .iter()
                .any(|e| matches!(e, Event::MemberDiscovered { name: n, address: a, .. } if *n == name(owner) && *a == address(owner))),
            "the newcomer got no MemberDiscovered for node {owner}"
        );
        assert!(
            h.events[owner].iter().any(
                |e| matches!(e, Event::MemberDiscovered { name: n, generation: 1, .. } if *n == name(new))
            ),
            "node {owner} got no MemberDiscovered for the newcomer"
        );
        assert_eq!(h.nodes[owner].node(&name(new)).unwrap().address, address(new));
    }
    h.run_for(Duration::from_secs(2));
    assert!(h.in_sync());
}

fn every_key_everywhere_but(h: &Harness, skip: usize) -> bool {
    (0..h.nodes.len())
        .filter(|o| *o != skip)
        .all(|owner| h.all_see(owner, &key(owner), value(owner).as_bytes()))
}

/// Nodes that have written nothing yet must still find each other: membership is not only
/// for nodes with data. Here five nodes join node 0 and nobody writes.
#[test]
fn nodes_that_have_written_nothing_still_learn_of_each_other() {
    let mut h = Harness::new(5, Config::lan(), 30);
    let took = h.run_until_true(Duration::from_secs(20), STEP, |h| {
        (0..5).all(|i| h.nodes[i].nodes().count() == 5) && h.in_sync()
    });
    let known: Vec<usize> = (0..5).map(|i| h.nodes[i].nodes().count()).collect();
    let out_of_sync: u64 = h.metrics().iter().map(|m| m.exchanges_out_of_sync).sum();
    assert!(
        took.is_some(),
        "after 20 s, nodes known per node: {known:?} (expected 5 each); \
         {out_of_sync} out-of-sync exchanges so far, and they never stop"
    );
}

// ----- 9. idle cost -----

/// Bytes per node per second and in-sync / out-of-sync exchange counts over `window`.
fn idle_traffic(h: &mut Harness, window: Duration) -> (f64, u64, u64) {
    let sum = |f: fn(&Metrics) -> u64, m: &[Metrics]| m.iter().map(f).sum::<u64>();
    let before = h.metrics();
    h.run_for(window);
    let after = h.metrics();
    let bytes = sum(|m| m.bytes_out, &after) - sum(|m| m.bytes_out, &before);
    let in_sync = sum(|m| m.exchanges_in_sync, &after) - sum(|m| m.exchanges_in_sync, &before);
    let out_of_sync = sum(|m| m.exchanges_out_of_sync, &after) - sum(|m| m.exchanges_out_of_sync, &before);
    (bytes as f64 / h.nodes.len() as f64 / window.as_secs_f64(), in_sync, out_of_sync)
}

#[test]
fn an_idle_cluster_at_a_fixed_interval_sends_one_small_datagram_per_peer_per_round() {
    let mut config = Config::lan();
    config.max_idle_gossip_interval = config.gossip_interval;
    let (interval, fanout, recent_rounds) = (config.gossip_interval, config.fanout, config.recent_rounds);
    let mut h = Harness::new(20, config, 31);
    write_one_key_each(&mut h);
    converge(&mut h, Duration::from_secs(30), "20 nodes");
    // Let the recent window pass with no writes.
    h.run_for(interval * (recent_rounds + 5));
    assert!(h.in_sync());
    let (per_second, in_sync, out_of_sync) = idle_traffic(&mut h, interval * 50);
    let per_round = per_second * interval.as_secs_f64();
    eprintln!("idle, fixed interval: {per_round:.1} B per node per round ({per_second:.0} B/s)");
    // Probes included; the target is 150 bytes x fanout per node per round.
    assert!(per_round < (150 * fanout) as f64, "{per_round:.1} bytes per node per round");
    assert!(in_sync > 0 && out_of_sync * 20 <= in_sync, "in sync {in_sync}, out of sync {out_of_sync}");
}

#[test]
fn an_idle_cluster_stretches_its_gossip_interval_and_snaps_back_on_a_write() {
    let config = Config::lan();
    let interval = config.gossip_interval;
    let mut h = Harness::new(20, config, 32);
    write_one_key_each(&mut h);
    converge(&mut h, Duration::from_secs(30), "20 nodes");
    h.run_for(Duration::from_secs(60));
    let (per_second, _, _) = idle_traffic(&mut h, Duration::from_secs(60));
    eprintln!("idle with backoff: {per_second:.0} B/s per node");
    // One probe and one ack per second dominate: about memberlist's cost.
    assert!(per_second < 130.0, "{per_second:.0} B/s per node");
    let rounds_before: u64 = h.metrics().iter().map(|m| m.gossip_rounds).sum();
    h.run_for(Duration::from_secs(10));
    let idle_rounds: u64 = h.metrics().iter().map(|m| m.gossip_rounds).sum::<u64>() - rounds_before;
    assert!(idle_rounds < 20 * 10, "{idle_rounds} rounds in 10 s: the interval did not stretch");
    // A write is noticed at once by the writer and within a probe period by the others.
    h.nodes[7].set("late", "news").unwrap();
    h.drain(7);
    let took = h
        .run_until_true(Duration::from_secs(10), STEP, |h| {
            (0..20).all(|i| h.nodes[i].get(&name(7), "late").is_some())
        })
        .expect("the write did not spread");
    assert!(took < interval * 20, "a write after a long idle spell took {took:?}");
}

/// Datagrams of another cluster are dropped and counted, and reported to the application
/// once per source, so a misconfigured peer does not go unnoticed.
#[test]
fn another_cluster_is_reported_once_per_source() {
    let mut harness = Harness::new(2, Config::lan(), 31);
    harness.run_for(Duration::from_secs(2));
    let mut stranger = harness.outsider(
        Config::lan().with_cluster("staging"),
        gossip_core::Identity::new("stranger", 1, common::address(7)),
        5,
    );
    stranger.join([common::address(0)]);
    let mut datagrams = Vec::new();
    while let Some(output) = stranger.poll() {
        if let gossip_core::Output::Transmit(transmit) = output {
            datagrams.push(transmit.payload);
        }
    }
    assert!(!datagrams.is_empty());
    for _ in 0..3 {
        harness.inject(common::address(7), 0, &datagrams[0]);
    }
    harness.inject(common::address(8), 0, &datagrams[0]);
    let reports: Vec<_> = harness.events[0]
        .iter()
        .filter_map(|event| match event {
            Event::ForeignCluster { from, cluster } => Some((*from, cluster.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        reports,
        vec![(common::address(7), "staging".to_owned()), (common::address(8), "staging".to_owned())]
    );
    assert_eq!(harness.nodes[0].metrics().cluster_mismatches, 4);
    assert!(harness.nodes[0].node("stranger").is_none());
}

/// A join that no seed answers is reported failed after `swim.join_timeout`, naming what each
/// seed did: silence, another cluster, or datagrams that cannot be read here. A seed that
/// answers ends the join with `Joined`.
#[test]
fn a_join_no_seed_answers_fails_with_what_each_seed_did() {
    use gossip_core::{EncryptionMode, JoinProblem, Keyring, SecretKey};
    let mut harness = Harness::new(3, Config::lan(), 41);
    harness.run_for(Duration::from_secs(2));
    // Node 1 answers for another cluster; node 2 seals under a key the joiner lacks.
    harness.nodes[1] =
        harness.outsider(Config::lan().with_cluster("other"), Identity::new(name(1), 2, address(1)), 7);
    let mut sending = Config::lan();
    sending.encryption = EncryptionMode::Send;
    let key = SecretKey::from_bytes(&[3; 32]).expect("32 bytes");
    harness.nodes[2] = Node::with_keyring(
        sending,
        Identity::new(name(2), 2, address(2)),
        harness.now,
        ChaCha8Rng::seed_from_u64(8),
        Keyring::new(key),
    )
    .expect("valid");
    let joiner = harness.add(Config::lan(), 0);
    harness.nodes[joiner].join([address(1), address(2), address(9)]);
    harness.drain(joiner);
    harness.run_for(Config::lan().swim.join_timeout + Duration::from_secs(1));
    let failed: Vec<_> = harness.events[joiner]
        .iter()
        .filter_map(|event| if let Event::JoinFailed { seeds } = event { Some(seeds.clone()) } else { None })
        .collect();
    // Node 0 (a real member) was given to `add` as its seed: it answered, so the join holds.
    assert!(harness.nodes[joiner].has_joined());
    assert!(failed.is_empty(), "a seed answered: {failed:?}");

    // A lone node whose seeds never answer usable datagrams.
    let lone = harness.add(Config::lan(), 9);
    harness.nodes[lone].join([address(1), address(2)]);
    harness.drain(lone);
    // The other cluster's node does not answer datagrams of this one (it drops them), but
    // it contacts the lone node on its own: then the lone node can tell why.
    harness.nodes[1].join([address(lone)]);
    harness.drain(1);
    harness.run_for(Config::lan().swim.join_timeout + Duration::from_secs(1));
    let failed: Vec<_> = harness.events[lone]
        .iter()
        .filter_map(|event| if let Event::JoinFailed { seeds } = event { Some(seeds.clone()) } else { None })
        .collect();
    assert!(!harness.nodes[lone].has_joined());
    assert_eq!(
        failed,
        vec![vec![
            (address(9), JoinProblem::NoAnswer),
            (address(1), JoinProblem::OtherCluster),
            (address(2), JoinProblem::Unreadable),
        ]],
        "one report, every seed with what it did"
    );
}

/// A key written with a TTL spreads, then its owner deletes it when the time is up and every
/// peer sees it go, as an ordinary delete.
#[test]
fn a_key_with_a_ttl_spreads_then_goes_everywhere_when_the_time_is_up() {
    let mut h = Harness::new(4, Config::lan(), 41);
    h.run_for(Duration::from_secs(5));
    let version = h.nodes[1].set_with_ttl("lease", "holder", Duration::from_secs(20)).unwrap();
    h.run_until_true(Duration::from_secs(10), STEP, |h| h.all_see(1, "lease", b"holder"))
        .expect("the key spreads");
    h.run_for(Duration::from_secs(5));
    assert!(h.all_see(1, "lease", b"holder"), "gone before its time");
    h.run_until_true(Duration::from_secs(30), STEP, |h| {
        (0..4).all(|i| h.nodes[i].get(&name(1), "lease").is_none())
    })
    .expect("the key goes everywhere");
    for peer in [0, 2, 3] {
        let deleted = h.events[peer].iter().any(|event| {
            matches!(event, Event::KeysChanged { node, changes } if **node == name(1)
            && changes.iter().any(|change| {
                change.key() == "lease" && change.is_deleted() && change.version() == version + 1
            }))
        });
        assert!(deleted, "node {peer} was not told of the delete");
    }
}
