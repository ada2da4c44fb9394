//! A hostile insider (a peer with the cluster key, or anyone without encryption) sending
//! valid datagrams: one test per measured attack, each showing the attack no longer holds.
//!
//! 1. a death at incarnation `u32::MAX`: the member heals under a new generation;
//! 2. a forged restart (generation + `max_generation_jump`): superseded by a heal;
//! 3. a forged version of a member's table: a relayed jump to `u64::MAX` is refused, a
//!    small one is superseded by a heal, and the member's table is not frozen;
//! 4. a sender without an address, from the attacker's address: the member's address stays;
//! 5. acks for a crashed member from elsewhere: the crash is still reported;
//! 6. 10,000 fake members: real members are still probed every few periods.
//!
//! The attacker ("mallory") is not a node of the harness: what is sent to it is lost. Every
//! test drives the clock explicitly and never sleeps.

#![allow(clippy::needless_update)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{Harness, address, name};
use gossip_core::proto::PROTOCOL_VERSION;
use gossip_core::proto::v1::{self, envelope::Body};
use gossip_core::{Config, ConfigError, Event, MemberState, SelfHealReason, ping_target_tag};
use prost::Message;

const STEP: Duration = Duration::from_millis(100);
const MALLORY: usize = 50;

fn wire_address(port: u16) -> v1::Address {
    v1::Address { ip: Bytes::from_static(&[127, 0, 0, 1]), port: u32::from(port), ..Default::default() }
}

fn identity(name: &str, generation: u64, port: u16) -> v1::NodeIdentity {
    v1::NodeIdentity {
        name: name.to_owned(),
        generation,
        address: Some(wire_address(port)),
        ..Default::default()
    }
}

fn port(index: usize) -> u16 {
    10_000 + index as u16
}

fn envelope(sender: Option<v1::NodeIdentity>, body: Body, membership: Vec<v1::MembershipUpdate>) -> Vec<u8> {
    v1::Envelope {
        protocol_version: PROTOCOL_VERSION,
        cluster: Config::lan().cluster,
        sender,
        body: Some(body),
        membership,
        ..Default::default()
    }
    .encode_to_vec()
}

fn mallory() -> Option<v1::NodeIdentity> {
    Some(identity("mallory", 1, port(MALLORY)))
}

fn ack(sequence: u32) -> Body {
    Body::Ack(v1::Ack { sequence, ..Default::default() })
}

fn claim(
    name: &str,
    generation: u64,
    port: u16,
    incarnation: u32,
    state: v1::MemberState,
) -> v1::MembershipUpdate {
    v1::MembershipUpdate {
        member: Some(identity(name, generation, port)),
        incarnation,
        state: state as i32,
        from: "mallory".to_owned(),
        ..Default::default()
    }
}

/// A datagram from mallory carrying `updates`.
fn claims(updates: Vec<v1::MembershipUpdate>) -> Vec<u8> {
    envelope(mallory(), ack(0), updates)
}

fn delta(
    name: &str,
    generation: u64,
    port: u16,
    from: u64,
    to: u64,
    entries: Vec<v1::Entry>,
) -> v1::NodeDelta {
    v1::NodeDelta {
        name: name.to_owned(),
        generation,
        address: Some(wire_address(port)),
        from_version: from,
        to_version: to,
        entries,
        state: v1::MemberState::Alive as i32,
        ..Default::default()
    }
}

fn entry(key: &str, value: &[u8], version: u64) -> v1::Entry {
    v1::Entry { key: key.to_owned(), value: Bytes::copy_from_slice(value), version, ..Default::default() }
}

fn push(deltas: Vec<v1::NodeDelta>) -> Body {
    Body::Push(v1::Push { deltas, ..Default::default() })
}

fn syn(digest: Vec<v1::DigestEntry>) -> Body {
    Body::Syn(v1::Syn {
        summary: Some(v1::Summary { hash: 0xbad, nodes: 1, ..Default::default() }),
        digest,
        mode: v1::ExchangeMode::PushPull as i32,
        ..Default::default()
    })
}

/// Three nodes in sync, each with one key.
fn cluster(config: Config, seed: u64) -> Harness {
    let mut h = Harness::new(3, config, seed);
    for i in 0..3 {
        h.nodes[i].set(format!("key-{i}"), format!("value-{i}")).unwrap();
    }
    h.run_until_true(Duration::from_secs(20), STEP, |h| {
        (0..3).all(|i| h.all_see(i, &format!("key-{i}"), format!("value-{i}").as_bytes()))
    })
    .expect("the cluster converges");
    h
}

fn heals(h: &Harness, at: usize) -> Vec<(SelfHealReason, u64, u64)> {
    h.events[at]
        .iter()
        .filter_map(|event| match event {
            Event::SelfHealed { reason, old_generation, new_generation } => {
                Some((*reason, *old_generation, *new_generation))
            }
            _ => None,
        })
        .collect()
}

/// Every node sees node 0 Alive under its current generation with its keys, and a write node
/// 0 makes now reaches everyone: its table is not frozen anywhere.
fn node_0_is_whole_everywhere(h: &mut Harness, tag: &str) {
    let generation = h.nodes[0].identity().generation;
    assert_eq!(h.nodes[0].node(&name(0)).map(|v| v.generation), Some(generation), "{tag}: own view");
    let key = format!("after-{tag}");
    h.nodes[0].set(key.clone(), "fresh").unwrap();
    h.run_until_true(Duration::from_secs(30), STEP, |h| {
        (1..3).all(|i| {
            h.nodes[i]
                .node(&name(0))
                .is_some_and(|v| v.generation == generation && v.state == MemberState::Alive)
        }) && h.all_see(0, "key-0", b"value-0")
            && h.all_see(0, &key, b"fresh")
    })
    .unwrap_or_else(|| {
        let views: Vec<_> =
            (0..3).map(|i| h.nodes[i].node(&name(0)).map(|v| (v.generation, v.state))).collect();
        panic!("{tag}: peers do not hold node 0's real table under generation {generation}: {views:?}")
    });
}

// ----- 1. a death at the top incarnation -----

#[test]
fn a_death_at_the_top_incarnation_is_healed_under_a_new_generation() {
    let mut h = cluster(Config::lan(), 201);
    let dead = vec![claim(&name(0), 1, port(0), u32::MAX, v1::MemberState::Dead)];
    // From mallory, it raises node 0's incarnation by far more than `max_incarnation_jump`:
    // refused.
    for peer in 1..3 {
        let m0 = h.nodes[peer].metrics();
        h.inject(address(MALLORY), peer, &claims(dead.clone()));
        assert_eq!(h.nodes[peer].node(&name(0)).map(|v| v.state), Some(MemberState::Alive));
        assert_eq!(h.nodes[peer].metrics().jumps_refused, m0.jumps_refused + 1);
    }
    // Spoofed as node 0 itself (its name and source address): first-hand, so taken. Only the
    // peers hear it: node 0 learns it through their gossip.
    let spoofed = envelope(Some(identity(&name(0), 1, port(0))), ack(0), dead);
    for peer in 1..3 {
        h.inject(address(0), peer, &spoofed);
        assert_eq!(h.nodes[peer].node(&name(0)).map(|v| v.state), Some(MemberState::Dead));
    }
    h.run_until_true(Duration::from_secs(20), STEP, |h| !heals(h, 0).is_empty()).expect("node 0 heals");
    assert_eq!(heals(&h, 0), [(SelfHealReason::IncarnationExhausted, 1, 2)]);
    assert_eq!(h.nodes[0].identity().generation, 2);
    assert_eq!(h.nodes[0].metrics().self_heals, 1);
    node_0_is_whole_everywhere(&mut h, "top incarnation");
}

// ----- 2. a forged restart -----

#[test]
fn a_forged_restart_within_the_generation_jump_is_superseded() {
    let config = Config::lan();
    let forged = 1 + config.max_generation_jump;
    let mut h = cluster(config, 203);
    let restart = claims(vec![claim(&name(0), forged, port(0), 0, v1::MemberState::Alive)]);
    for peer in 1..3 {
        h.inject(address(MALLORY), peer, &restart);
        assert_eq!(h.nodes[peer].node(&name(0)).map(|v| (v.generation, v.keys)), Some((forged, 0)), "wiped");
    }
    h.run_until_true(Duration::from_secs(20), STEP, |h| !heals(h, 0).is_empty()).expect("node 0 heals");
    assert_eq!(heals(&h, 0), [(SelfHealReason::GenerationAhead, 1, forged + 1)]);
    assert_eq!(h.nodes[0].identity().generation, forged + 1);
    node_0_is_whole_everywhere(&mut h, "forged restart");
}

/// A generation beyond the jump is refused by peers as by the node itself: counted, no heal.
#[test]
fn a_generation_of_us_beyond_the_jump_is_counted_not_healed() {
    let config = Config::lan();
    let mut h = cluster(config.clone(), 205);
    let m0 = h.nodes[0].metrics();
    let far = 2 + config.max_generation_jump;
    h.inject(address(MALLORY), 0, &claims(vec![claim(&name(0), far, port(0), 0, v1::MemberState::Dead)]));
    let m1 = h.nodes[0].metrics();
    assert_eq!(m1.self_heals, m0.self_heals);
    assert_eq!(m1.rejected_own_deltas, m0.rejected_own_deltas + 1);
    assert_eq!(h.nodes[0].identity().generation, 1);
}

// ----- 3. a forged version of a table -----

#[test]
fn a_relayed_version_jump_is_refused_and_a_small_forgery_is_healed() {
    let mut h = cluster(Config::lan(), 207);
    let max = h.nodes[1].node(&name(0)).unwrap().max_version;
    // At the top: a third party's jump beyond `max_version_jump`, refused by every peer.
    let frozen = delta(&name(0), 1, port(0), max, u64::MAX, vec![entry("key-0", b"pwned", u64::MAX)]);
    let top = envelope(mallory(), push(vec![frozen]), Vec::new());
    let digest = envelope(
        mallory(),
        syn(vec![v1::DigestEntry {
            name: name(0),
            generation: 1,
            max_version: u64::MAX,
            ..Default::default()
        }]),
        Vec::new(),
    );
    for peer in 1..3 {
        let m0 = h.nodes[peer].metrics();
        h.inject(address(MALLORY), peer, &top);
        h.inject(address(MALLORY), peer, &digest);
        assert_eq!(h.nodes[peer].metrics().jumps_refused, m0.jumps_refused + 2);
        assert_eq!(h.nodes[peer].node(&name(0)).map(|v| v.max_version), Some(max));
        assert_eq!(h.nodes[peer].get(&name(0), "key-0"), Some(&b"value-0"[..]));
    }
    // Just above: accepted by the peers (it is within the bound), so node 0 heals when it
    // hears of it, and the peers take its real table under the new generation.
    let small = delta(&name(0), 1, port(0), max, max + 1, vec![entry("key-0", b"pwned", max + 1)]);
    let small = envelope(mallory(), push(vec![small]), Vec::new());
    for peer in 1..3 {
        h.inject(address(MALLORY), peer, &small);
        assert_eq!(h.nodes[peer].get(&name(0), "key-0"), Some(&b"pwned"[..]));
    }
    h.run_until_true(Duration::from_secs(20), STEP, |h| !heals(h, 0).is_empty()).expect("node 0 heals");
    assert_eq!(heals(&h, 0)[0], (SelfHealReason::VersionAhead, 1, 2));
    node_0_is_whole_everywhere(&mut h, "forged version");
}

/// The heal itself, triggered by one digest entry: the event, the metric, the identity, and
/// what peers see afterwards.
#[test]
fn a_digest_entry_ahead_of_our_table_makes_us_heal_and_peers_follow() {
    let mut h = cluster(Config::lan(), 209);
    let max = h.nodes[0].node(&name(0)).unwrap().max_version;
    let entry = v1::DigestEntry { name: name(0), generation: 1, max_version: max + 1, ..Default::default() };
    h.inject(address(MALLORY), 0, &envelope(mallory(), syn(vec![entry]), Vec::new()));
    assert_eq!(heals(&h, 0), [(SelfHealReason::VersionAhead, 1, 2)]);
    assert_eq!(h.nodes[0].metrics().self_heals, 1);
    assert_eq!(h.nodes[0].identity().generation, 2);
    let own = h.nodes[0].node(&name(0)).unwrap();
    assert_eq!(
        (own.generation, own.incarnation, own.state, own.max_version),
        (2, 0, MemberState::Alive, max)
    );
    assert_eq!(h.nodes[0].get(&name(0), "key-0"), Some(&b"value-0"[..]), "table kept");
    node_0_is_whole_everywhere(&mut h, "digest");
    for peer in 1..3 {
        assert!(
            h.events[peer]
                .iter()
                .any(|e| matches!(e, Event::MemberRestarted { name: n, generation: 2, .. } if *n == name(0))),
            "node {peer} saw the new generation"
        );
    }
}

// ----- third-party bounds -----

#[test]
fn relayed_incarnation_jumps_are_refused_first_hand_ones_are_not() {
    let config = Config::lan();
    let jump = config.max_incarnation_jump;
    let mut h = cluster(config, 211);
    let m0 = h.nodes[0].metrics();
    // Mallory says node 1 is dead far above its incarnation: refused.
    h.inject(
        address(MALLORY),
        0,
        &claims(vec![claim(&name(1), 1, port(1), jump + 1, v1::MemberState::Dead)]),
    );
    assert_eq!(h.nodes[0].node(&name(1)).map(|v| (v.state, v.incarnation)), Some((MemberState::Alive, 0)));
    assert_eq!(h.nodes[0].metrics().jumps_refused, m0.jumps_refused + 1);
    // Within the jump it is taken (and node 1 will refute).
    h.inject(address(MALLORY), 0, &claims(vec![claim(&name(1), 1, port(1), jump, v1::MemberState::Suspect)]));
    assert_eq!(
        h.nodes[0].node(&name(1)).map(|v| (v.state, v.incarnation)),
        Some((MemberState::Suspect, jump))
    );
    // Node 1 speaking for itself, from its address, is not bounded.
    let own = claim(&name(1), 1, port(1), 3 * jump, v1::MemberState::Alive);
    h.inject(address(1), 0, &envelope(Some(identity(&name(1), 1, port(1))), ack(0), vec![own.clone()]));
    assert_eq!(
        h.nodes[0].node(&name(1)).map(|v| (v.state, v.incarnation)),
        Some((MemberState::Alive, 3 * jump))
    );
    // The same with node 1's name from mallory's address is relayed: bounded.
    let forged = claim(&name(1), 1, port(1), 5 * jump, v1::MemberState::Dead);
    let m1 = h.nodes[0].metrics();
    h.inject(address(MALLORY), 0, &envelope(Some(identity(&name(1), 1, port(1))), ack(0), vec![forged]));
    assert_eq!(h.nodes[0].node(&name(1)).map(|v| v.state), Some(MemberState::Alive));
    assert_eq!(h.nodes[0].metrics().jumps_refused, m1.jumps_refused + 1);
}

#[test]
fn zero_jump_bounds_are_typed_config_errors() {
    let mut config = Config::lan();
    config.max_incarnation_jump = 0;
    assert_eq!(config.validate().unwrap_err(), ConfigError::Zero { field: "max_incarnation_jump" });
    let mut config = Config::lan();
    config.max_version_jump = 0;
    assert_eq!(config.validate().unwrap_err(), ConfigError::Zero { field: "max_version_jump" });
}

// ----- 4. addresses -----

#[test]
fn a_sender_without_an_address_does_not_redirect_a_member() {
    let mut h = cluster(Config::lan(), 213);
    let m0 = h.nodes[0].metrics();
    // Node 1's name, no address, from mallory's address (a ping carries no address).
    let sender = v1::NodeIdentity { name: name(1), generation: 1, address: None, ..Default::default() };
    let ping =
        Body::Ping(v1::Ping { sequence: u32::from(ping_target_tag(&name(0))) << 16 | 9, summary: None });
    h.inject(address(MALLORY), 0, &envelope(Some(sender), ping, Vec::new()));
    assert_eq!(h.nodes[0].node(&name(1)).map(|v| v.address), Some(address(1)));
    // A third-party suspicion at the same incarnation with mallory's address: the state is
    // taken, the address is not.
    let inc = h.nodes[0].node(&name(1)).unwrap().incarnation;
    h.inject(
        address(MALLORY),
        0,
        &claims(vec![claim(&name(1), 1, port(MALLORY), inc, v1::MemberState::Suspect)]),
    );
    assert_eq!(h.nodes[0].node(&name(1)).map(|v| v.address), Some(address(1)));
    // Node 1 refutes and is never found failed: its probes still go to it.
    h.run_for(Duration::from_secs(30));
    assert_eq!(
        h.nodes[0].node(&name(1)).map(|v| (v.state, v.address)),
        Some((MemberState::Alive, address(1)))
    );
    assert!(
        !h.events[0].iter().any(|e| matches!(e, Event::MemberFailed { name: n, .. } if *n == name(1))),
        "node 1 was found failed"
    );
    assert!(!h.events[0].iter().any(|e| matches!(e, Event::MemberAddressChanged { .. })));
    assert!(h.nodes[0].metrics().probes_sent > m0.probes_sent);
}

#[test]
fn a_claim_of_us_at_another_address_is_refuted() {
    let mut h = cluster(Config::lan(), 215);
    let inc = h.nodes[0].node(&name(0)).unwrap().incarnation;
    h.inject(
        address(MALLORY),
        0,
        &claims(vec![claim(&name(0), 1, port(MALLORY), inc, v1::MemberState::Alive)]),
    );
    assert_eq!(h.nodes[0].node(&name(0)).map(|v| v.incarnation), Some(inc + 1), "refuted");
    // Peers that took the forged address get ours back through the refutation.
    for peer in 1..3 {
        h.inject(
            address(MALLORY),
            peer,
            &claims(vec![claim(&name(0), 1, port(MALLORY), inc, v1::MemberState::Alive)]),
        );
        assert_eq!(
            h.nodes[peer].node(&name(0)).map(|v| v.address),
            Some(address(0)),
            "same incarnation: kept"
        );
    }
    h.run_for(Duration::from_secs(5));
    for peer in 1..3 {
        assert_eq!(
            h.nodes[peer].node(&name(0)).map(|v| (v.address, v.incarnation)),
            Some((address(0), inc + 1))
        );
    }
}

// ----- 5. acks for a crashed member -----

/// Pings sent so far to `to` in the recorded traffic, by sender, from `seen` on.
fn pings_to(h: &Harness, to: SocketAddr, seen: &mut usize) -> Vec<(usize, u32)> {
    let recorded = h.recorded.as_ref().unwrap();
    let mut out = Vec::new();
    for (from, dest, payload) in &recorded[*seen..] {
        if *dest != to {
            continue;
        }
        if let Ok(v1::Envelope { body: Some(Body::Ping(ping)), .. }) = v1::Envelope::decode(&payload[..]) {
            out.push((*from, ping.sequence));
        }
    }
    *seen = recorded.len();
    out
}

#[test]
fn acks_for_a_crashed_member_from_elsewhere_do_not_hide_the_crash() {
    let mut h = cluster(Config::lan(), 217);
    h.recorded = Some(Vec::new());
    h.down.insert(2);
    let mut seen = 0;
    let started = h.now;
    let failed = |h: &Harness| {
        h.events[0].iter().any(|e| matches!(e, Event::MemberFailed { name: n, .. } if *n == name(2)))
    };
    while !failed(&h) && h.now < started + Duration::from_secs(120) {
        h.run_for(STEP);
        // Mallory sees every ping to the crashed node (an on-path sniffer) and answers it from
        // its own address, and sprays the sequence numbers a counter would use.
        for (pinger, sequence) in pings_to(&h, address(2), &mut seen) {
            h.inject(address(MALLORY), pinger, &envelope(None, ack(sequence), Vec::new()));
        }
        for sequence in 1..=20 {
            h.inject(address(MALLORY), 0, &envelope(None, ack(sequence), Vec::new()));
        }
    }
    assert!(failed(&h), "the crash of node 2 was never reported");
    assert!(h.nodes[0].metrics().stray_acks > 100, "the forged acks were counted as stray");
}

// ----- 6. ten thousand fake members -----

#[test]
fn ten_thousand_fake_members_do_not_blind_probing() {
    let mut h = cluster(Config::lan(), 219);
    let fakes: Vec<v1::MembershipUpdate> = (0..10_000)
        .map(|i| claim(&format!("fake-{i}"), 1, 20_000 + (i % 40_000) as u16, 0, v1::MemberState::Alive))
        .collect();
    for batch in fakes.chunks(30) {
        h.inject(address(MALLORY), 0, &claims(batch.to_vec()));
    }
    assert!(h.nodes[0].nodes().count() > 10_000, "the fakes are taken (within max_nodes)");
    h.recorded = Some(Vec::new());
    let probes_before = h.nodes[0].metrics().probes_sent;
    let run = Duration::from_secs(60);
    h.run_for(run);
    // Node 0's pings (its probes, and the pings it relays for nodes 1 and 2, which also
    // learned the fakes) to each real member and to mallory.
    let probes = h.nodes[0].metrics().probes_sent - probes_before;
    let mut pings: BTreeMap<usize, u64> = BTreeMap::new();
    for (from, to, payload) in h.recorded.take().unwrap() {
        let Ok(v1::Envelope { body: Some(Body::Ping(ping)), .. }) = v1::Envelope::decode(&payload[..]) else {
            continue;
        };
        if let Some(index) = common::index_of(to).filter(|i| (*i < 3 || *i == MALLORY) && from == 0) {
            if ping.sequence >> 16 != 0 {
                *pings.entry(index).or_default() += 1;
            }
        }
    }
    // Members heard from: nodes 1 and 2, and mallory (it speaks from its address). They get
    // every other probe, so each is probed about once per 2 x 3 periods: 10 times in 60 s
    // (before, about once in 10,000 periods). Lifeguard's health must not stretch the period
    // either: the fakes' silence says nothing about ours.
    assert!(probes >= 55, "{probes} probes in {run:?}: local health {}", h.nodes[0].local_health());
    for index in 1..3 {
        let got = pings.get(&index).copied().unwrap_or(0);
        assert!(got >= 7, "node {index} was probed {got} times in {probes} periods among 10,000 fakes");
    }
    let heard: u64 = pings.values().sum();
    let unheard = probes.saturating_sub(heard);
    assert!(unheard <= probes / 2 + 1, "{unheard} of {probes} probes went to members never heard from");
    // Random gossip peers: node 1 and 2 still hear from node 0 (its new write reaches them).
    h.nodes[0].set("after-fakes", "1").unwrap();
    h.run_until_true(Duration::from_secs(10), STEP, |h| h.all_see(0, "after-fakes", b"1"))
        .expect("node 0's write reaches the real members");
}

// ----- a forged leave -----

/// Left is final for a generation: a member declared Left while it runs cannot refute it by
/// incarnation, so it heals under a new generation and is a member again everywhere.
#[test]
fn a_forged_leave_is_superseded_by_a_new_generation() {
    let mut h = cluster(Config::lan(), 221);
    let incarnation = h.nodes[1].node(&name(0)).unwrap().incarnation;
    let left = claims(vec![claim(&name(0), 1, port(0), incarnation, v1::MemberState::Left)]);
    for peer in 1..3 {
        h.inject(address(MALLORY), peer, &left);
        assert_eq!(h.nodes[peer].node(&name(0)).map(|v| v.state), Some(MemberState::Left), "taken");
    }
    h.run_until_true(Duration::from_secs(20), STEP, |h| !heals(h, 0).is_empty()).expect("node 0 heals");
    assert_eq!(heals(&h, 0), [(SelfHealReason::LeftWhileRunning, 1, 2)]);
    node_0_is_whole_everywhere(&mut h, "forged leave");
    // A real leave is not healed.
    h.nodes[1].leave();
    h.drain(1);
    h.run_for(Duration::from_secs(10));
    assert!(heals(&h, 1).is_empty(), "a node that leaves does not come back");
}
