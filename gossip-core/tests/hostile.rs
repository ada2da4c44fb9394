//! Hostile peers: a peer that floods us with fake members, huge tables, claims about our own
//! node, extreme numbers, odd encodings, replays and ping-reqs. Every test checks that state
//! stays within the `Config` caps, that what is refused is counted in `metrics()`, that
//! refused input leaves the state unchanged, and that the node still serves honest peers
//! afterwards.
//!
//! The node under attack is node 0 of a small [`Harness`]; the attacker ("mallory") is not a
//! node of the harness, so whatever node 0 sends it is lost (and counted in `Harness::lost`).
//! Every test drives the clock explicitly and never sleeps.
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
use gossip_core::{Config, ConfigError, Event, MemberState, Metrics, ping_target_tag};
use prost::Message;
use prost::encoding::encoded_len_varint;

const STEP: Duration = Duration::from_millis(100);
const MTU: usize = 1400;
/// The attacker's port (outside the harness).
const MALLORY: usize = 50;
/// A million fake members.
const MILLION: usize = 1_000_000;

/// The LAN defaults with small caps, so that reaching them is quick.
fn capped() -> Config {
    let mut config = Config::lan();
    config.max_nodes = 64;
    config.max_keys_per_node = 32;
    config
}

// ----- building datagrams by hand -----

fn wire_address(port: u16) -> v1::Address {
    v1::Address { ip: Bytes::from_static(&[127, 0, 0, 1]), port: u32::from(port), ..Default::default() }
}

/// The wire identity of `name` at harness index `index` (port `10_000 + index`).
fn identity(name: &str, generation: u64, index: usize) -> v1::NodeIdentity {
    v1::NodeIdentity {
        name: name.to_owned(),
        generation,
        address: Some(wire_address(10_000 + index as u16)),
        ..Default::default()
    }
}

fn envelope(sender: Option<v1::NodeIdentity>, body: Body) -> v1::Envelope {
    v1::Envelope {
        protocol_version: PROTOCOL_VERSION,
        cluster: Config::lan().cluster,
        sender,
        body: Some(body),
        ..Default::default()
    }
}

/// An envelope from mallory (generation 1).
fn from_mallory(body: Body) -> v1::Envelope {
    envelope(Some(identity("mallory", 1, MALLORY)), body)
}

fn claim(
    name: &str,
    generation: u64,
    index: usize,
    incarnation: u32,
    state: v1::MemberState,
) -> v1::MembershipUpdate {
    v1::MembershipUpdate {
        member: Some(identity(name, generation, index)),
        incarnation,
        state: state as i32,
        from: "mallory".to_owned(),
        ..Default::default()
    }
}

fn entry(key: &str, value: &[u8], version: u64) -> v1::Entry {
    v1::Entry { key: key.to_owned(), value: Bytes::copy_from_slice(value), version, ..Default::default() }
}

fn delta(
    name: &str,
    generation: u64,
    index: usize,
    from: u64,
    to: u64,
    entries: Vec<v1::Entry>,
) -> v1::NodeDelta {
    v1::NodeDelta {
        name: name.to_owned(),
        generation,
        address: Some(wire_address(10_000 + index as u16)),
        from_version: from,
        to_version: to,
        entries,
        state: v1::MemberState::Alive as i32,
        ..Default::default()
    }
}

fn push(deltas: Vec<v1::NodeDelta>) -> Body {
    Body::Push(v1::Push { deltas, ..Default::default() })
}

/// A `Syn` whose summary differs from anyone's, so that it is read.
fn syn(digest: Vec<v1::DigestEntry>, deltas: Vec<v1::NodeDelta>) -> Body {
    Body::Syn(v1::Syn {
        summary: Some(v1::Summary { hash: 0xbad, nodes: 1, ..Default::default() }),
        digest,
        mode: v1::ExchangeMode::PushPull as i32,
        deltas,
        ..Default::default()
    })
}

fn digest_entry(name: &str, generation: u64, max_version: u64) -> v1::DigestEntry {
    v1::DigestEntry { name: name.to_owned(), generation, max_version, ..Default::default() }
}

/// The length of a length-delimited field of `len` bytes with a `key`-byte key.
fn field(key: usize, len: usize) -> usize {
    key + encoded_len_varint(len as u64) + len
}

/// Packs `items` greedily into datagrams of at most `MTU` bytes: `build` makes the envelope
/// of a batch; `key` is the byte length of the items' field key and `nested` whether they
/// sit one message deeper (in the body) than the envelope.
fn pack<T: Message>(
    items: impl IntoIterator<Item = T>,
    key: usize,
    nested: bool,
    build: impl Fn(Vec<T>) -> v1::Envelope,
) -> Vec<Vec<u8>> {
    let base = build(Vec::new()).encoded_len();
    let (mut out, mut batch, mut inner) = (Vec::new(), Vec::new(), 0);
    // Items in the body also lengthen the body's length prefix, by at most two bytes here.
    let total = |inner: usize| base + inner + if nested { 2 } else { 0 };
    for item in items {
        let len = field(key, item.encoded_len());
        if !batch.is_empty() && total(inner + len) > MTU {
            out.push(build(std::mem::take(&mut batch)).encode_to_vec());
            inner = 0;
        }
        inner += len;
        batch.push(item);
    }
    if !batch.is_empty() {
        out.push(build(batch).encode_to_vec());
    }
    for datagram in &out {
        assert!(datagram.len() <= MTU, "a test datagram of {} bytes", datagram.len());
    }
    out
}

// ----- checks -----

/// The counters of input dropped before it touched anything.
fn drops(m: &Metrics) -> [u64; 5] {
    [m.oversized_datagrams, m.decode_errors, m.version_mismatches, m.cluster_mismatches, m.malformed_messages]
}

fn state_of(h: &Harness, at: usize, of: &str) -> Option<(MemberState, u32, u64)> {
    h.nodes[at].node(of).map(|view| (view.state, view.incarnation, view.generation))
}

/// Node `victim` still serves honest peers: it answers a ping and a `Syn` of a peer, an
/// honest node's new write reaches it, and the honest nodes keep it (and it keeps them)
/// alive, with no new suspicion of it.
fn still_serves_honest_peers(h: &mut Harness, tag: &str) {
    let victim = 0;
    // A ping and a Syn from a well-behaved newcomer (outside the harness) are answered.
    let newcomer = identity(&format!("newcomer-{tag}"), 1, 70);
    let ping = v1::Ping { sequence: u32::from(ping_target_tag(&name(victim))) << 16 | 7, summary: None };
    let m0 = h.nodes[victim].metrics();
    let lost = h.lost;
    h.inject(address(70), victim, &envelope(Some(newcomer.clone()), Body::Ping(ping)).encode_to_vec());
    assert_eq!(h.lost, lost + 1, "{tag}: the ping was not answered");
    h.inject(address(70), victim, &envelope(Some(newcomer), syn(Vec::new(), Vec::new())).encode_to_vec());
    assert_eq!(h.lost, lost + 2, "{tag}: the Syn was not answered");
    assert_eq!(drops(&h.nodes[victim].metrics()), drops(&m0), "{tag}: an honest datagram was refused");

    // An honest write reaches the victim; the victim's reaches the honest nodes.
    let suspected_before: Vec<usize> = h.events.iter().map(|events| suspicions_of(events, victim)).collect();
    let key = format!("after-{tag}");
    h.nodes[1].set(key.clone(), "honest").unwrap();
    h.nodes[victim].set(key.clone(), "victim").unwrap();
    h.run_until_true(Duration::from_secs(20), STEP, |h| {
        h.nodes[victim].get(&name(1), &key).is_some() && h.all_see(victim, &key, b"victim")
    })
    .unwrap_or_else(|| panic!("{tag}: writes no longer flow between the victim and honest peers"));
    h.run_for(Duration::from_secs(5));
    for (honest, suspected_before) in suspected_before.iter().enumerate().skip(1) {
        assert_eq!(
            state_of(h, honest, &name(victim)).map(|(state, ..)| state),
            Some(MemberState::Alive),
            "{tag}: node {honest} no longer sees the victim alive"
        );
        assert_eq!(
            suspicions_of(&h.events[honest], victim),
            *suspected_before,
            "{tag}: node {honest} suspected the victim"
        );
        assert_eq!(
            state_of(h, victim, &name(honest)).map(|(state, ..)| state),
            Some(MemberState::Alive),
            "{tag}: the victim no longer sees node {honest} alive"
        );
    }
}

fn suspicions_of(events: &[Event], index: usize) -> usize {
    events.iter().filter(|e| matches!(e, Event::MemberSuspected { name: n, .. } if *n == name(index))).count()
}

/// Three nodes of `config`, in sync, each with one key.
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

/// Feeds every datagram to node 0 from mallory's address.
fn flood(h: &mut Harness, datagrams: &[Vec<u8>]) {
    for datagram in datagrams {
        h.inject(address(MALLORY), 0, datagram);
    }
}

/// A member reported dead or departed that a node does not know (it forgot it, or never
/// met it) is not learned, by claim, by delta or by digest: otherwise a node that forgot a
/// member before the others learns it again from them, and the member lives on.
#[test]
fn unknown_members_reported_gone_are_not_learned() {
    let mut h = cluster(capped(), 102);
    let m0 = h.nodes[0].metrics();
    let ack = || Body::Ack(v1::Ack { sequence: 0, ..Default::default() });
    for (i, state) in [v1::MemberState::Dead, v1::MemberState::Left].into_iter().enumerate() {
        let ghost = format!("ghost-{i}");
        let by_claim =
            v1::Envelope { membership: vec![claim(&ghost, 1, 200 + i, 3, state)], ..from_mallory(ack()) };
        let gone = v1::NodeDelta {
            state: state as i32,
            ..delta(&ghost, 1, 200 + i, 0, 1, vec![entry("k", b"v", 1)])
        };
        let listed = v1::DigestEntry { state: state as i32, ..digest_entry(&ghost, 1, 1) };
        let by_syn = from_mallory(syn(vec![listed], vec![gone.clone()]));
        let by_push = from_mallory(push(vec![gone]));
        flood(&mut h, &[by_claim.encode_to_vec(), by_syn.encode_to_vec(), by_push.encode_to_vec()]);
        assert!(h.nodes[0].node(&ghost).is_none(), "{state:?}: {ghost} was learned");
    }
    let m1 = h.nodes[0].metrics();
    assert_eq!(m1.stale_claims - m0.stale_claims, 2, "each claim is counted");
    assert_eq!(m1.stale_deltas - m0.stale_deltas, 4, "each delta is counted");
    assert_eq!(drops(&m1), drops(&m0), "well-formed datagrams were refused");
    // A live claim about the same name is still taken.
    let alive = v1::Envelope {
        membership: vec![claim("ghost-0", 1, 200, 4, v1::MemberState::Alive)],
        ..from_mallory(ack())
    };
    flood(&mut h, &[alive.encode_to_vec()]);
    assert!(h.nodes[0].node("ghost-0").is_some(), "a live claim introduces the member");
}

// ----- 1. a million fake members -----

/// How the fake members are announced.
#[derive(Debug, Clone, Copy)]
enum Channel {
    /// Membership claims piggybacked on an otherwise empty datagram.
    Claims,
    /// Empty node deltas in `Push`es.
    Deltas,
    /// Entries of `Syn` digests (they ask, they do not add).
    Digests,
    /// The sender identity of each datagram.
    Senders,
}

fn fake(i: usize) -> String {
    format!("f{i}")
}

fn fake_members_stay_under_max_nodes(channel: Channel) {
    let config = capped();
    let mut h = cluster(config.clone(), 101);
    let m0 = h.nodes[0].metrics();
    let known_before = h.nodes[0].nodes().count();
    let ack = || Body::Ack(v1::Ack { sequence: 0, ..Default::default() });
    let datagrams: Vec<Vec<u8>> = match channel {
        Channel::Claims => pack(
            (0..MILLION).map(|i| claim(&fake(i), 1, 100 + i % 1000, 0, v1::MemberState::Alive)),
            2,
            false,
            |membership| v1::Envelope { membership, ..from_mallory(ack()) },
        ),
        Channel::Deltas => pack(
            (0..MILLION).map(|i| delta(&fake(i), 1, 100 + i % 1000, 0, 0, Vec::new())),
            1,
            true,
            |deltas| from_mallory(push(deltas)),
        ),
        Channel::Digests => pack((0..MILLION).map(|i| digest_entry(&fake(i), 1, 5)), 1, true, |digest| {
            from_mallory(syn(digest, Vec::new()))
        }),
        Channel::Senders => (0..MILLION)
            .map(|i| envelope(Some(identity(&fake(i), 1, 100 + i % 1000)), ack()).encode_to_vec())
            .collect(),
    };
    assert!(datagrams.len() > MILLION / 200, "{channel:?}: {} datagrams", datagrams.len());
    flood(&mut h, &datagrams);

    let m1 = h.nodes[0].metrics();
    let known = h.nodes[0].nodes().count();
    assert!(known <= config.max_nodes, "{channel:?}: {known} nodes known, cap {}", config.max_nodes);
    assert_eq!(drops(&m1), drops(&m0), "{channel:?}: well-formed datagrams were refused");
    assert!(h.max_datagram <= MTU);
    match channel {
        Channel::Digests => {
            // Digest entries only ask; they add nobody (but mallory, the sender).
            assert_eq!(known, known_before + 1, "{channel:?}");
        }
        _ => {
            assert_eq!(known, config.max_nodes, "{channel:?}: the table fills up to its cap");
            let refused = m1.nodes_over_cap - m0.nodes_over_cap;
            let admitted = (config.max_nodes - known_before) as u64;
            // Each refused fake is counted (mallory's own identity takes one seat when it
            // signs the datagrams).
            assert!(
                refused >= MILLION as u64 - admitted,
                "{channel:?}: {refused} refusals counted for {} fakes beyond the cap",
                MILLION as u64 - admitted
            );
        }
    }
    assert!(h.events[0].len() < 10 * config.max_nodes, "{channel:?}: {} events", h.events[0].len());
    still_serves_honest_peers(&mut h, &format!("{channel:?}"));
}

#[test]
fn a_million_fake_members_in_claims_fill_at_most_max_nodes() {
    fake_members_stay_under_max_nodes(Channel::Claims);
}

#[test]
fn a_million_fake_members_in_deltas_fill_at_most_max_nodes() {
    fake_members_stay_under_max_nodes(Channel::Deltas);
}

#[test]
fn a_million_fake_members_in_digests_add_nobody() {
    fake_members_stay_under_max_nodes(Channel::Digests);
}

#[test]
fn a_million_fake_senders_fill_at_most_max_nodes() {
    fake_members_stay_under_max_nodes(Channel::Senders);
}

#[test]
fn fake_nodes_with_huge_tables_hold_at_most_max_keys_per_node() {
    let config = capped();
    let mut h = cluster(config.clone(), 103);
    let m0 = h.nodes[0].metrics();
    // Mallory's own table and three fake nodes', a million contiguous versions in all, in
    // datagrams of at most MTU bytes.
    let owners = ["mallory", "huge-1", "huge-2", "huge-3"];
    let per_owner = MILLION / owners.len();
    let mut datagrams = Vec::new();
    for (o, owner) in owners.iter().enumerate() {
        let mut version = 0u64;
        while version < per_owner as u64 {
            let entries: Vec<v1::Entry> =
                (version + 1..=version + 64).map(|v| entry(&format!("k{v}"), b"x", v)).collect();
            let to = version + 64;
            datagrams.push(
                from_mallory(push(vec![delta(owner, 1, MALLORY + o, version, to, entries)])).encode_to_vec(),
            );
            version = to;
        }
    }
    assert!(datagrams.iter().all(|d| d.len() <= MTU));
    flood(&mut h, &datagrams);
    let m1 = h.nodes[0].metrics();
    for owner in owners {
        let view = h.nodes[0].node(owner).expect("the owner is known");
        assert!(view.keys <= config.max_keys_per_node, "{owner}: {} keys", view.keys);
        assert_eq!(view.keys, config.max_keys_per_node, "{owner}: filled up to the cap");
        assert_eq!(view.max_version, config.max_keys_per_node as u64, "{owner}: stops at the cap, no hole");
    }
    assert_eq!(m1.keys_over_cap - m0.keys_over_cap, owners.len() as u64, "each full table counted once");
    // Every later datagram starts past the replica's max version: refused and counted.
    let refused = m1.stale_deltas - m0.stale_deltas;
    assert_eq!(refused, datagrams.len() as u64 - owners.len() as u64, "refused deltas counted");
    assert_eq!(drops(&m1), drops(&m0));
    still_serves_honest_peers(&mut h, "huge tables");
}

// ----- 2. our own node, extreme numbers, far generations -----

/// What a peer says about our own node that other peers would refuse too (a generation too
/// far ahead, an older one, life at an incarnation we never took, a sender using our name)
/// changes nothing but a refutation. What peers would accept and we cannot refute (a newer
/// version of our table, a newer generation within the jump, the top incarnation) makes us
/// heal instead: see `self_heal.rs`.
#[test]
fn what_peers_refuse_about_our_own_node_changes_nothing_but_a_refutation() {
    let mut h = cluster(Config::lan(), 107);
    let me = name(0);
    let own = h.snapshot(0).nodes[0].clone();
    assert_eq!(own.name, me);
    let (incarnation, generation) = (h.nodes[0].node(&me).unwrap().incarnation, own.generation);
    let max = own.max_version;
    let m0 = h.nodes[0].metrics();

    // Deltas: a generation far beyond the jump, through every body that carries deltas.
    let forged = |generation: u64, from: u64, to: u64| {
        let entries = vec![entry("key-0", b"pwned", to - 1), entry("evil", b"1", to)];
        delta(&me, generation, 0, from, to, entries)
    };
    let deltas = [forged(u64::MAX, 0, u64::MAX)];
    let bodies = |d: v1::NodeDelta| {
        vec![
            push(vec![d.clone()]),
            syn(Vec::new(), vec![d.clone()]),
            Body::SynAck(v1::SynAck { deltas: vec![d.clone()], ..Default::default() }),
            Body::Ack2(v1::Ack2 { deltas: vec![d.clone()], ..Default::default() }),
            Body::DeltaReply(v1::DeltaReply { deltas: vec![d], ..Default::default() }),
        ]
    };
    let mut sent = 0;
    for d in deltas {
        for body in bodies(d.clone()) {
            h.inject(address(MALLORY), 0, &from_mallory(body).encode_to_vec());
            sent += 1;
        }
    }
    // A digest entry claiming a generation of us far beyond the jump.
    let entry = digest_entry(&me, u64::MAX, 1);
    h.inject(address(MALLORY), 0, &from_mallory(syn(vec![entry], Vec::new())).encode_to_vec());
    sent += 1;
    // Claims: life at a higher incarnation, and at other generations; a sender using our name.
    let alive_higher = claim(&me, generation, 0, incarnation + 5, v1::MemberState::Alive);
    let other_generation = claim(&me, u64::MAX, 0, 0, v1::MemberState::Dead);
    let older_generation = claim(&me, generation - 1, 0, 0, v1::MemberState::Dead);
    for update in [alive_higher, other_generation, older_generation] {
        let ack = Body::Ack(v1::Ack { sequence: 0, ..Default::default() });
        h.inject(
            address(MALLORY),
            0,
            &v1::Envelope { membership: vec![update], ..from_mallory(ack) }.encode_to_vec(),
        );
    }
    let impostor =
        envelope(Some(identity(&me, generation, MALLORY)), push(vec![forged(generation, max, max + 2)]));
    h.inject(address(MALLORY), 0, &impostor.encode_to_vec());

    let m1 = h.nodes[0].metrics();
    assert_eq!(h.snapshot(0).nodes[0], own, "our own table changed");
    assert_eq!(h.nodes[0].node(&me).unwrap().incarnation, incarnation, "our incarnation changed");
    assert_eq!(m1.refutations, m0.refutations, "nothing there called for a refutation");
    assert_eq!(m1.self_heals, m0.self_heals, "nothing there called for a heal");
    assert!(
        m1.rejected_own_deltas >= m0.rejected_own_deltas + sent + 2,
        "rejections counted: {} -> {} for {sent} deltas and digests and 2 claims",
        m0.rejected_own_deltas,
        m1.rejected_own_deltas
    );
    assert_eq!(m1.stale_senders, m0.stale_senders + 1, "the impostor counted");
    assert_eq!(m1.stale_claims, m0.stale_claims + 1, "the claim about our older generation counted");

    // The one SWIM exception: a suspicion of us at our incarnation is refuted by raising it
    // by exactly one; a suspicion at an older incarnation changes nothing.
    let ack = || Body::Ack(v1::Ack { sequence: 0, ..Default::default() });
    let suspect = |inc| claim(&me, generation, 0, inc, v1::MemberState::Suspect);
    h.inject(
        address(MALLORY),
        0,
        &v1::Envelope { membership: vec![suspect(incarnation)], ..from_mallory(ack()) }.encode_to_vec(),
    );
    assert_eq!(h.nodes[0].node(&me).unwrap().incarnation, incarnation + 1, "refuted by one");
    h.inject(
        address(MALLORY),
        0,
        &v1::Envelope { membership: vec![suspect(incarnation)], ..from_mallory(ack()) }.encode_to_vec(),
    );
    assert_eq!(h.nodes[0].node(&me).unwrap().incarnation, incarnation + 1, "an old suspicion refuted twice");
    assert_eq!(h.nodes[0].metrics().refutations, m0.refutations + 1);
    assert_eq!(h.snapshot(0).nodes[0], own, "a refutation touched our table");
    still_serves_honest_peers(&mut h, "own node");
    let own_now = h.snapshot(0).nodes[0].clone();
    assert_eq!(own_now.generation, generation);
    assert!(own_now.max_version < 1000, "our versions stay ours: {}", own_now.max_version);
}

#[test]
fn versions_near_u64_max_neither_panic_nor_wrap() {
    // Mallory's table is relayed by node 0 to the others, who never hear from mallory: a
    // third party's jump to the top would be refused (`max_version_jump`, see
    // `self_heal.rs`); lifted here to check that replication handles the top.
    let mut config = Config::lan();
    config.max_version_jump = u64::MAX;
    let mut h = cluster(config, 109);
    let m0 = h.nodes[0].metrics();
    let top = u64::MAX;
    // Mallory's table jumps to the top in one delta, then a tombstone and a watermark at the
    // top, a reset from the top, and digests at the top.
    let mut tombstone = entry("b", b"", top);
    tombstone.deleted = true;
    let steps = vec![
        push(vec![delta("mallory", 1, MALLORY, 0, top - 2, vec![entry("a", b"1", top - 2)])]),
        // A reset: we are behind a watermark just below the top.
        push(vec![v1::NodeDelta {
            gc_watermark: top - 1,
            reset: true,
            ..delta("mallory", 1, MALLORY, 0, top - 1, vec![entry("a", b"2", top - 1)])
        }]),
        push(vec![delta("mallory", 1, MALLORY, top - 1, top, vec![tombstone])]),
        push(vec![v1::NodeDelta { gc_watermark: top, ..delta("mallory", 1, MALLORY, top, top, Vec::new()) }]),
        syn(vec![digest_entry("mallory", 1, top), digest_entry(&name(1), 1, top)], Vec::new()),
        Body::PushAck(v1::PushAck { known: vec![digest_entry(&name(1), 1, top)], ..Default::default() }),
        Body::Ack2(v1::Ack2 { request: vec![digest_entry(&name(1), 1, 0)], ..Default::default() }),
    ];
    for body in steps {
        h.inject(address(MALLORY), 0, &from_mallory(body).encode_to_vec());
    }
    let view = h.nodes[0].node("mallory").expect("mallory is known");
    assert_eq!(view.max_version, top, "no wrap");
    assert_eq!(h.nodes[0].get("mallory", "a"), Some(&b"2"[..]));
    assert_eq!(drops(&h.nodes[0].metrics()), drops(&m0));
    // The cluster replicates it and goes on: gossip, rumors and GC all handle the top.
    h.run_until_true(Duration::from_secs(20), STEP, |h| {
        (1..3).all(|i| h.nodes[i].node("mallory").is_some_and(|v| v.max_version == top))
    })
    .expect("mallory's table at the top spreads");
    assert!((0..3).all(|i| h.nodes[i].get("mallory", "a") == Some(&b"2"[..])));
    still_serves_honest_peers(&mut h, "top versions");
}

#[test]
fn incarnations_near_u32_max_saturate_instead_of_wrapping() {
    let mut h = cluster(Config::lan(), 113);
    let me = name(0);
    let ack = || Body::Ack(v1::Ack { sequence: 0, ..Default::default() });
    let send = |h: &mut Harness, updates: Vec<v1::MembershipUpdate>| {
        h.inject(
            address(MALLORY),
            0,
            &v1::Envelope { membership: updates, ..from_mallory(ack()) }.encode_to_vec(),
        );
    };
    // A third party at the top, then suspected at the top.
    send(&mut h, vec![claim("victor", 1, 80, u32::MAX - 1, v1::MemberState::Alive)]);
    send(&mut h, vec![claim("victor", 1, 80, u32::MAX, v1::MemberState::Suspect)]);
    assert_eq!(state_of(&h, 0, "victor"), Some((MemberState::Suspect, u32::MAX, 1)));
    send(&mut h, vec![claim("victor", 1, 80, 0, v1::MemberState::Alive)]);
    assert_eq!(state_of(&h, 0, "victor"), Some((MemberState::Suspect, u32::MAX, 1)), "no wrap to 0");

    // Suspicions of us just below and at the top: refuted by saturating, never wrapping.
    let m0 = h.nodes[0].metrics();
    send(&mut h, vec![claim(&me, 1, 0, u32::MAX - 1, v1::MemberState::Suspect)]);
    assert_eq!(h.nodes[0].node(&me).unwrap().incarnation, u32::MAX);
    // At the top there is nothing left to refute with: the node heals under a new generation
    // rather than wrap (see `self_heal.rs`).
    send(&mut h, vec![claim(&me, 1, 0, u32::MAX, v1::MemberState::Dead)]);
    assert_eq!(state_of(&h, 0, &me), Some((MemberState::Alive, 0, 2)), "healed, not wrapped");
    assert_eq!(h.nodes[0].metrics().refutations, m0.refutations + 1);
    assert_eq!(h.nodes[0].metrics().self_heals, m0.self_heals + 1);
    // Leaving at the top does not wrap either (checked through the node's own view).
    send(&mut h, vec![claim(&me, 2, 0, u32::MAX - 1, v1::MemberState::Suspect)]);
    assert_eq!(state_of(&h, 0, &me), Some((MemberState::Alive, u32::MAX, 2)));
    h.run_for(Duration::from_secs(2));
    still_serves_honest_peers(&mut h, "top incarnations");
    h.nodes[0].leave();
    assert_eq!(state_of(&h, 0, &me), Some((MemberState::Left, u32::MAX, 2)));
}

#[test]
fn a_generation_far_ahead_is_refused_and_counted() {
    let config = Config::lan();
    let jump = config.max_generation_jump;
    let mut h = cluster(config.clone(), 127);
    let honest = name(1);
    let before = h.snapshot(0);
    let m0 = h.nodes[0].metrics();
    let ack = || Body::Ack(v1::Ack { sequence: 0, ..Default::default() });
    let too_far = [1 + jump + 1, u64::MAX];

    // About a known node: a claim, a delta, a digest entry, and the node itself as sender.
    for generation in too_far {
        let update = claim(&honest, generation, 1, 0, v1::MemberState::Dead);
        h.inject(
            address(MALLORY),
            0,
            &v1::Envelope { membership: vec![update], ..from_mallory(ack()) }.encode_to_vec(),
        );
        let d = delta(&honest, generation, 1, 0, 1, vec![entry("evil", b"1", 1)]);
        h.inject(address(MALLORY), 0, &from_mallory(push(vec![d])).encode_to_vec());
        h.inject(
            address(MALLORY),
            0,
            &from_mallory(syn(vec![digest_entry(&honest, generation, 1)], Vec::new())).encode_to_vec(),
        );
        // Dropped whole: the delta it carries about another node is not applied either.
        let innocent = delta("innocent", 1, 84, 0, 1, vec![entry("k", b"1", 1)]);
        let as_sender = envelope(Some(identity(&honest, generation, 1)), push(vec![innocent]));
        h.inject(address(1), 0, &as_sender.encode_to_vec());
        assert!(h.nodes[0].node("innocent").is_none(), "a refused sender's datagram was applied");
    }
    // About unknown nodes: measured against our own generation (1).
    for generation in too_far {
        let update = claim("stranger", generation, 81, 0, v1::MemberState::Alive);
        h.inject(
            address(MALLORY),
            0,
            &v1::Envelope { membership: vec![update], ..from_mallory(ack()) }.encode_to_vec(),
        );
        let d = delta("stranger-2", generation, 82, 0, 1, vec![entry("k", b"1", 1)]);
        h.inject(address(MALLORY), 0, &from_mallory(push(vec![d])).encode_to_vec());
        let as_sender = envelope(Some(identity("stranger-3", generation, 83)), push(Vec::new()));
        h.inject(address(83), 0, &as_sender.encode_to_vec());
    }
    let m1 = h.nodes[0].metrics();
    assert_eq!(m1.generations_refused - m0.generations_refused, 2 * 4 + 2 * 3, "every refusal counted");
    for stranger in ["stranger", "stranger-2", "stranger-3"] {
        assert!(h.nodes[0].node(stranger).is_none(), "{stranger} was let in");
    }
    let mut after = h.snapshot(0);
    // Mallory (the sender) is new; nothing else changed.
    after.nodes.retain(|node| node.name != "mallory");
    assert_eq!(after.nodes, before.nodes, "a refused generation changed the state");
    assert_eq!(state_of(&h, 0, &honest).map(|(s, _, g)| (s, g)), Some((MemberState::Alive, 1)));

    // Exactly the limit is a restart, accepted (for a known node and an unknown one).
    let restart = claim(&honest, 1 + jump, 1, 0, v1::MemberState::Alive);
    let newcomer = claim("stranger", 1 + jump, 81, 0, v1::MemberState::Alive);
    h.inject(
        address(MALLORY),
        0,
        &v1::Envelope { membership: vec![restart, newcomer], ..from_mallory(ack()) }.encode_to_vec(),
    );
    assert_eq!(h.nodes[0].node(&honest).map(|v| v.generation), Some(1 + jump));
    assert_eq!(h.nodes[0].node("stranger").map(|v| v.generation), Some(1 + jump));
    assert_eq!(h.nodes[0].metrics().generations_refused, m1.generations_refused);
}

#[test]
fn a_zero_max_generation_jump_is_a_typed_config_error() {
    let mut config = Config::lan();
    config.max_generation_jump = 0;
    let error = config.validate().unwrap_err();
    assert_eq!(error, ConfigError::Zero { field: "max_generation_jump" });
    assert!(error.to_string().contains("max_generation_jump"), "{error}");
}

// ----- 3. odd encodings -----

fn put_varint(out: &mut Vec<u8>, value: u64) {
    prost::encoding::encode_varint(value, out);
}

/// A field key of the given number and wire type.
fn key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, u64::from(number) << 3 | u64::from(wire_type));
}

fn len_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    key(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Unknown fields of every wire type, with the highest field number among them.
fn unknown_fields() -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, 100, 0);
    put_varint(&mut out, u64::MAX);
    key(&mut out, 536_870_911, 2);
    put_varint(&mut out, 3);
    out.extend_from_slice(b"abc");
    key(&mut out, 101, 1);
    out.extend_from_slice(&[9; 8]);
    key(&mut out, 102, 5);
    out.extend_from_slice(&[9; 4]);
    key(&mut out, 103, 3);
    key(&mut out, 104, 0);
    put_varint(&mut out, 1);
    key(&mut out, 103, 4);
    out
}

#[test]
fn oversized_truncated_nested_and_repeated_datagrams_are_handled_and_counted() {
    let mut h = cluster(capped(), 131);
    let d = delta("mallory", 1, MALLORY, 0, 2, vec![entry("a", b"1", 1), entry("b", b"2", 2)]);
    let honest = from_mallory(push(vec![d.clone()])).encode_to_vec();

    // Oversized: a whole UDP datagram of valid-looking protobuf.
    let mut huge = honest.clone();
    while huge.len() < 65_507 {
        len_field(&mut huge, 100, &[0; 1000]);
    }
    // Deep nesting: unknown groups nested 600 deep (a stack-overflow attempt).
    let mut groups = Vec::new();
    for _ in 0..600 {
        key(&mut groups, 3, 3);
    }
    for _ in 0..600 {
        key(&mut groups, 3, 4);
    }
    let mut nested = honest.clone();
    len_field(&mut nested, 7, &groups);
    assert!(nested.len() <= MTU);
    // Hundreds of empty membership updates (each breaks a rule: no member).
    let mut empties = honest.clone();
    while empties.len() + 3 <= MTU {
        len_field(&mut empties, 16, &[]);
    }
    // Hundreds of empty deltas: each breaks a rule (no name).
    let mut empty_deltas = from_mallory(push(Vec::new())).encode_to_vec();
    let mut body = Vec::new();
    while body.len() + 2 + empty_deltas.len() + 3 <= MTU {
        len_field(&mut body, 1, &[]);
    }
    len_field(&mut empty_deltas, 7, &body);
    assert!(empty_deltas.len() <= MTU && empties.len() <= MTU);

    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        ("oversized", huge, 0),
        ("nested 600 deep", nested, 1),
        ("empty membership updates", empties, 4),
        ("empty deltas", empty_deltas, 4),
    ];
    for (what, datagram, counter) in cases {
        let before = h.snapshot(0);
        let m0 = drops(&h.nodes[0].metrics());
        h.inject(address(MALLORY), 0, &datagram);
        let mut expected = m0;
        expected[counter] += 1;
        assert_eq!(drops(&h.nodes[0].metrics()), expected, "{what}: counted wrongly");
        assert_eq!(h.snapshot(0), before, "{what}: the state changed");
    }

    // Every truncation of the honest datagram: no panic, and a prefix that does not decode
    // changes nothing.
    for cut in 0..honest.len() {
        let prefix = &honest[..cut];
        let before = h.snapshot(0);
        let m0 = h.nodes[0].metrics();
        h.inject(address(MALLORY), 0, prefix);
        let m1 = h.nodes[0].metrics();
        if v1::Envelope::decode(prefix).is_err() {
            assert_eq!(m1.decode_errors, m0.decode_errors + 1, "cut at {cut}");
            assert_eq!(h.snapshot(0), before, "cut at {cut}: the state changed");
        } else {
            assert_eq!(drops(&m1).iter().sum::<u64>(), drops(&m0).iter().sum::<u64>() + 1, "cut at {cut}");
        }
    }
    assert!(h.nodes[0].node("mallory").is_none(), "a truncated datagram let mallory in");

    // Unknown fields everywhere (envelope, body, delta, entry) are ignored: the datagram is
    // applied as without them.
    let mut entry_a = entry("a", b"1", 1).encode_to_vec();
    entry_a.extend_from_slice(&unknown_fields());
    let mut delta_bytes = v1::NodeDelta { entries: Vec::new(), ..d.clone() }.encode_to_vec();
    len_field(&mut delta_bytes, 8, &entry_a);
    len_field(&mut delta_bytes, 8, &entry("b", b"2", 2).encode_to_vec());
    delta_bytes.extend_from_slice(&unknown_fields());
    let mut push_bytes = Vec::new();
    len_field(&mut push_bytes, 1, &delta_bytes);
    push_bytes.extend_from_slice(&unknown_fields());
    let mut with_unknown = v1::Envelope { body: None, ..from_mallory(push(Vec::new())) }.encode_to_vec();
    with_unknown.extend_from_slice(&unknown_fields());
    len_field(&mut with_unknown, 7, &push_bytes);
    with_unknown.extend_from_slice(&unknown_fields());
    let m0 = h.nodes[0].metrics();
    h.inject(address(MALLORY), 0, &with_unknown);
    assert_eq!(drops(&h.nodes[0].metrics()), drops(&m0), "unknown fields made the datagram fail");
    assert_eq!(h.nodes[0].get("mallory", "b"), Some(&b"2"[..]));

    // Non-repeated fields repeated: the last one wins, as protobuf says. A sender given
    // twice (the second one named "trudy"), then a cluster given twice (the second one
    // wrong), then a body given twice (a delta-less Ping last).
    let mut twice = from_mallory(push(Vec::new())).encode_to_vec();
    len_field(&mut twice, 3, &identity("trudy", 1, 51).encode_to_vec());
    let m0 = h.nodes[0].metrics();
    h.inject(address(51), 0, &twice);
    assert!(h.nodes[0].node("trudy").is_some(), "the last sender wins");
    let mut wrong_cluster = from_mallory(push(Vec::new())).encode_to_vec();
    len_field(&mut wrong_cluster, 2, b"elsewhere");
    h.inject(address(MALLORY), 0, &wrong_cluster);
    assert_eq!(h.nodes[0].metrics().cluster_mismatches, m0.cluster_mismatches + 1, "the last cluster wins");
    let mut ping_last =
        from_mallory(push(vec![delta("zed", 1, 52, 0, 1, vec![entry("z", b"1", 1)])])).encode_to_vec();
    let ping = v1::Ping { sequence: u32::from(ping_target_tag(&name(0))) << 16 | 9, summary: None };
    len_field(&mut ping_last, 10, &ping.encode_to_vec());
    let lost = h.lost;
    h.inject(address(MALLORY), 0, &ping_last);
    assert!(h.nodes[0].node("zed").is_none(), "the replaced body's delta was applied");
    assert_eq!(h.lost, lost + 1, "the last body (a ping) was answered");

    still_serves_honest_peers(&mut h, "odd encodings");
}

#[test]
fn a_datagram_packed_with_thousands_of_tiny_claims_stays_within_the_caps() {
    let config = capped();
    let mut h = cluster(config.clone(), 137);
    let m0 = h.nodes[0].metrics();
    // The smallest valid claims: one-character names from many datagrams, each as full as
    // the size limit allows.
    let names: Vec<String> = (0..5000).map(|i| format!("{:x}", i)).collect();
    let datagrams = pack(
        names.iter().map(|n| v1::MembershipUpdate {
            member: Some(identity(n, 1, 100)),
            state: v1::MemberState::Suspect as i32,
            ..Default::default()
        }),
        2,
        false,
        |membership| v1::Envelope { membership, ..from_mallory(Body::Ack(v1::Ack::default())) },
    );
    assert!(datagrams.len() < 150, "{} datagrams", datagrams.len());
    flood(&mut h, &datagrams);
    let m1 = h.nodes[0].metrics();
    assert!(h.nodes[0].nodes().count() <= config.max_nodes);
    assert_eq!(drops(&m1), drops(&m0));
    assert!(m1.nodes_over_cap - m0.nodes_over_cap >= 5000 - config.max_nodes as u64);
    still_serves_honest_peers(&mut h, "tiny claims");
}

// ----- 4. replays and stray answers -----

#[test]
fn stray_acks_and_nacks_are_counted_and_change_nothing() {
    let mut h = cluster(Config::lan(), 151);
    let before = h.snapshot(0);
    let members: Vec<_> = (1..3).map(|i| state_of(&h, 0, &name(i))).collect();
    let m0 = h.nodes[0].metrics();
    // Anonymous acks and nacks (they carry no sender) for sequences nobody used.
    for i in 0..1000u32 {
        let ack = envelope(None, Body::Ack(v1::Ack { sequence: u32::MAX - i, ..Default::default() }));
        h.inject(address(MALLORY), 0, &ack.encode_to_vec());
        let nack = envelope(None, Body::Nack(v1::Nack { sequence: u32::MAX - i, ..Default::default() }));
        h.inject(address(MALLORY), 0, &nack.encode_to_vec());
    }
    let m1 = h.nodes[0].metrics();
    assert_eq!(m1.stray_acks - m0.stray_acks, 2000, "stray answers counted");
    assert_eq!(drops(&m1), drops(&m0));
    assert_eq!(h.snapshot(0), before);
    assert_eq!((1..3).map(|i| state_of(&h, 0, &name(i))).collect::<Vec<_>>(), members);
    assert!(h.nodes[0].node("mallory").is_none(), "an anonymous answer recorded a member");
    still_serves_honest_peers(&mut h, "stray answers");
}

#[test]
fn replayed_old_datagrams_change_nothing_once_newer_state_is_held() {
    let mut h = cluster(Config::lan(), 139);
    h.recorded = Some(Vec::new());
    // Old state: writes, a delete, a restart of node 2 under generation 1 still.
    h.nodes[1].set("k", "old").unwrap();
    h.nodes[1].set("gone", "soon").unwrap();
    h.nodes[2].set("k", "old-2").unwrap();
    h.run_for(Duration::from_secs(5));
    h.nodes[1].delete("gone").unwrap();
    h.run_for(Duration::from_secs(5));
    let old: Vec<Bytes> = h
        .recorded
        .take()
        .unwrap()
        .into_iter()
        .filter(|(_, to, _)| *to == address(0))
        .map(|(.., d)| d)
        .collect();
    assert!(old.len() > 20, "{} old datagrams", old.len());

    // Newer state: overwrites, a new key, node 2 restarted under generation 2.
    h.nodes[1].set("k", "new").unwrap();
    h.nodes[1].set("gone", "back").unwrap();
    h.restart(2, 2, Config::lan(), 0);
    h.nodes[2].set("k", "new-2").unwrap();
    h.run_until_true(Duration::from_secs(20), STEP, |h| {
        h.all_see(1, "k", b"new") && h.all_see(2, "k", b"new-2") && h.all_see(1, "gone", b"back")
    })
    .expect("the new state spreads");
    h.run_for(Duration::from_secs(2));

    let before = h.snapshot(0);
    let members: Vec<_> = (1..3).map(|i| state_of(&h, 0, &name(i))).collect();
    let m0 = h.nodes[0].metrics();
    for datagram in &old {
        // Each from the address it came from (node 1 or node 2's old generation).
        let from = v1::Envelope::decode(&datagram[..])
            .ok()
            .and_then(|e| e.sender)
            .and_then(|s| s.name.strip_prefix("node-").and_then(|i| i.parse::<usize>().ok()))
            .unwrap_or(1);
        h.inject(address(from), 0, datagram);
    }
    let m1 = h.nodes[0].metrics();
    assert_eq!(h.snapshot(0), before, "a replay changed node 0's tables");
    assert_eq!(
        (1..3).map(|i| state_of(&h, 0, &name(i))).collect::<Vec<_>>(),
        members,
        "a replay changed membership"
    );
    assert_eq!(m1.entries_applied, m0.entries_applied, "a replay applied entries");
    assert!(m1.stale_senders > m0.stale_senders, "node 2's old generation was not refused");
    assert!(m1.stray_acks > m0.stray_acks, "replayed acks were not counted");
    assert_eq!(drops(&m1), drops(&m0));
    // A claim about node 2's old generation, relayed by a third party: counted, ignored.
    let old_claim = claim(&name(2), 1, 2, 9, v1::MemberState::Dead);
    let ack = Body::Ack(v1::Ack { sequence: 0, ..Default::default() });
    h.inject(
        address(MALLORY),
        0,
        &v1::Envelope { membership: vec![old_claim], ..from_mallory(ack) }.encode_to_vec(),
    );
    assert_eq!(h.nodes[0].metrics().stale_claims, m1.stale_claims + 1, "the stale claim was not counted");
    assert_eq!(state_of(&h, 0, &name(2)), members[1], "the stale claim changed node 2");
    still_serves_honest_peers(&mut h, "replays");
}

// ----- 5. ping-req floods -----

#[test]
fn a_flood_of_ping_reqs_is_relayed_within_the_limits_and_our_probes_go_on() {
    let config = Config::lan();
    let swim = config.swim.clone();
    let mut h = cluster(config, 149);
    let ping_req = |target: usize| {
        let request = v1::PingReq {
            sequence: target as u32,
            target: Some(identity(&format!("t{target}"), 1, target)),
            nack: true,
        };
        from_mallory(Body::PingReq(request)).encode_to_vec()
    };
    let probes_before = h.nodes[0].metrics().probes_sent;
    let honest_suspicions = |h: &Harness| -> usize {
        h.events.iter().map(|events| (0..3).map(|i| suspicions_of(events, i)).sum::<usize>()).sum()
    };
    let suspicions_before = honest_suspicions(&h);

    // 10,000 ping-reqs from one requester, for 10,000 targets outside the harness.
    let m0 = h.nodes[0].metrics();
    let lost = h.lost;
    for target in 0..10_000 {
        h.inject(address(MALLORY), 0, &ping_req(1000 + target));
    }
    let relayed = h.lost - lost;
    let m1 = h.nodes[0].metrics();
    assert_eq!(relayed, swim.max_relays_per_requester as u64, "relays for one requester");
    assert_eq!(m1.relays_refused - m0.relays_refused, 10_000 - relayed, "the excess counted");

    // From 2,000 source addresses (spoofed): at most max_pending_relays in all.
    let lost = h.lost;
    for requester in 0..2000 {
        let request =
            v1::PingReq { sequence: 1, target: Some(identity("t", 1, 3000 + requester)), nack: true };
        h.inject(address(5000 + requester), 0, &from_mallory(Body::PingReq(request)).encode_to_vec());
    }
    let relayed = h.lost - lost;
    let m2 = h.nodes[0].metrics();
    assert!(
        relayed <= swim.max_pending_relays as u64,
        "{relayed} relays in flight, cap {}",
        swim.max_pending_relays
    );
    assert_eq!(m2.relays_refused - m1.relays_refused, 2000 - relayed, "the excess counted");

    // A sustained flood from one requester for 10 s: relays free up only as they expire
    // (0.8 of a probe timeout), so at most max_relays_per_requester per expiry.
    let lost = h.lost;
    let started = h.now;
    let mut sent = 0;
    while h.now < started + Duration::from_secs(10) {
        for _ in 0..100 {
            h.inject(address(MALLORY), 0, &ping_req(20_000 + sent));
            sent += 1;
        }
        h.run_for(Duration::from_millis(50));
    }
    let relayed_or_nacked = h.lost - lost;
    // Each relay costs one ping out and one nack back; expiries happen at most once per
    // 0.8 x probe_timeout (400 ms): 25 windows in 10 s, and the spoofed relays of above.
    let windows = 10_000 / (swim.probe_timeout.as_millis() as u64 * 8 / 10) + 2;
    let bound = windows * 2 * swim.max_relays_per_requester as u64 + 2 * swim.max_pending_relays as u64;
    assert!(relayed_or_nacked <= bound, "{relayed_or_nacked} datagrams to mallory's targets, bound {bound}");
    let m3 = h.nodes[0].metrics();
    assert!(
        m3.relays_refused - m2.relays_refused >= sent as u64 - windows * swim.max_relays_per_requester as u64
    );

    // Our own probing went on, and nobody honest was suspected.
    assert!(h.nodes[0].metrics().probes_sent >= probes_before + 5, "node 0 stopped probing");
    assert_eq!(honest_suspicions(&h), suspicions_before, "an honest node was suspected");
    still_serves_honest_peers(&mut h, "ping-req flood");
}

// ----- aggregation -----

fn share(name: &str, weight: f64) -> v1::AggregateShare {
    v1::AggregateShare {
        name: name.to_owned(),
        average_value: 1e6 * weight,
        average_weight: weight,
        sum_value: 1e6 * weight,
        count_value: weight,
        total_weight: 0.0,
        min: Some(-1e9),
        max: Some(1e9),
        ..Default::default()
    }
}

fn transfer(epoch: u64, sequence: u64, shares: Vec<v1::AggregateShare>) -> Body {
    Body::AggregateTransfer(v1::AggregateTransfer { epoch, sequence, shares, ..Default::default() })
}

/// Aggregation transfers that break the rules (numbers that are not finite, negative or
/// weights, too many or repeated names, an earlier epoch) are dropped and
/// counted, and leave the estimate alone; an epoch far ahead moves the node on without
/// breaking it, and the honest aggregate of the next epoch is right again.
#[test]
fn hostile_aggregation_transfers_are_dropped_counted_and_leave_the_estimate_alone() {
    let mut h = cluster(capped(), 11);
    for i in 0..3 {
        h.nodes[i].aggregate_set("load", i as f64).unwrap();
    }
    h.run_for(Duration::from_secs(5));
    let running = |h: &Harness| h.nodes[0].aggregate_running("load");
    let before = running(&h);
    let m0 = h.nodes[0].metrics();
    let epoch = h.nodes[0].aggregation_epoch();
    // Node 1's identity, forged from mallory's address: the sender check passes.
    let as_node_1 = |body: Body| envelope(Some(identity(&name(1), 1, 1)), body).encode_to_vec();
    let too_many: Vec<v1::AggregateShare> = (0..9).map(|i| share(&format!("a{i}"), 1.0)).collect();
    let malformed = [
        transfer(epoch, 1_000, vec![share("load", f64::NAN)]),
        transfer(epoch, 1_000, vec![share("load", f64::INFINITY)]),
        transfer(epoch, 1_000, vec![share("load", 1e200)]),
        transfer(epoch, 1_000, vec![share("load", -1.0)]),
        transfer(epoch, 1_000, vec![share("load", 1.0), share("load", 1.0)]),
        transfer(epoch, 1_000, vec![share("", 1.0)]),
        transfer(epoch, 1_000, vec![share(&"x".repeat(65), 1.0)]),
        transfer(epoch, 1_000, too_many),
        transfer(epoch, 0, vec![share("load", 1.0)]),
    ];
    for body in &malformed {
        h.inject(address(MALLORY), 0, &as_node_1(body.clone()));
    }
    let m1 = h.nodes[0].metrics();
    assert_eq!(m1.malformed_messages, m0.malformed_messages + malformed.len() as u64);
    assert_eq!(running(&h), before, "a refused transfer changed the estimate");

    // Epochs compare in serial-number order (modulo 2^64): `u64::MAX` is just behind a
    // small epoch, so a transfer of it is refused and counted as stale.
    let refused = h.nodes[0].metrics().aggregate_transfers_refused;
    h.inject(address(MALLORY), 0, &as_node_1(transfer(u64::MAX, 1, vec![share("load", 1.0)])));
    assert_eq!(h.nodes[0].aggregation_epoch(), epoch);
    assert_eq!(h.nodes[0].metrics().aggregate_transfers_refused, refused + 1);
    // Exactly half the space away is neither ahead nor behind: refused too, not mixed in.
    h.inject(
        address(MALLORY),
        0,
        &as_node_1(transfer(epoch.wrapping_add(1 << 63), 1, vec![share("load", 1.0)])),
    );
    assert_eq!(h.nodes[0].aggregation_epoch(), epoch);
    assert_eq!(h.nodes[0].metrics().aggregate_transfers_refused, refused + 2);
    assert_eq!(running(&h), before, "a refused transfer changed the estimate");
    // An epoch ahead moves a node on (the protocol cannot tell it from a real one): four
    // forged hops of at most 2^62 take every node to `u64::MAX` (each told by another
    // node's identity), where a saturating epoch would stay for good.
    let hops =
        [epoch.wrapping_add(1 << 62), epoch.wrapping_add(1 << 63), epoch.wrapping_add(3 << 62), u64::MAX];
    for forged in hops {
        for node in 0..3 {
            let other = (node + 1) % 3;
            let datagram = envelope(
                Some(identity(&name(other), 1, other)),
                transfer(forged, 1, vec![share("load", 1.0)]),
            );
            h.inject(address(MALLORY), node, &datagram.encode_to_vec());
            assert_eq!(h.nodes[node].aggregation_epoch(), forged, "moved to the epoch ahead");
        }
    }
    // A transfer of an earlier epoch is refused and counted (the honest `epoch` is no longer
    // one: past `u64::MAX`, small epochs are ahead again).
    h.inject(address(MALLORY), 0, &as_node_1(transfer(u64::MAX - 1, 2_000, vec![share("load", 1.0)])));
    assert_eq!(h.nodes[0].metrics().aggregate_transfers_refused, refused + 3);
    h.run_for(Duration::from_secs(3 * 100));
    // Every node followed, and the epochs went on past `u64::MAX` at 0, 1, 2, ... (they wrap
    // rather than stop there, so later epochs are always new ones).
    assert!(h.nodes.iter().all(|node| node.aggregation_epoch() < 1_000), "the epochs wrapped and spread");
    // The forged mass went with the epoch it was sent in; the epochs since are honest.
    let estimate = h.nodes[0].aggregate("load").expect("an epoch ended");
    assert!(estimate.average.is_some_and(|a| (a - 1.0).abs() < 1e-6), "{estimate:?}");
    assert!(estimate.count.is_some_and(|c| (c - 3.0).abs() < 1e-6), "{estimate:?}");
    still_serves_honest_peers(&mut h, "aggregation");
}

/// Forged answers and outcomes are dropped and counted: an outcome for a request that waits
/// at node 0, sent by mallory as if it were the owner; outcomes and answers for nothing that
/// waits; a flood of write requests is rate-limited, writes only what the burst allows, and
/// the node still serves honest peers.
#[test]
fn forged_outcomes_and_answers_are_dropped_and_floods_of_requests_are_limited() {
    let mut config = capped();
    config.messages.write_policy = gossip_core::WritePolicy::AcceptPrefix(String::new());
    config.messages.burst_per_sender = 5;
    config.messages.rate_per_sender = 1;
    let mut h = cluster(config, 31);
    let id = h.nodes[0].request_write(&name(1), "k", &b"v"[..]).expect("a request");
    h.nodes[0].query("q", &b""[..], gossip_core::QueryFilter::All, Duration::from_secs(30)).expect("a query");
    let me = identity(&name(0), 1, 0);
    let forged_outcome = |id: u64, owner: &str, relayed: bool| {
        from_mallory(Body::WriteOutcome(v1::WriteOutcome {
            requester: Some(me.clone()),
            id,
            owner: owner.to_owned(),
            owner_generation: 1,
            accepted: true,
            version: 99,
            relayed,
            ..Default::default()
        }))
        .encode_to_vec()
    };
    let answer = |generation: u64, id: u64| {
        from_mallory(Body::QueryResponse(v1::QueryResponse { generation, id, ..Default::default() }))
            .encode_to_vec()
    };
    let before = h.nodes[0].metrics();
    let events_before = h.events[0].len();
    // Mallory is not the owner and says it is not relaying: refused. For no request: refused.
    // Answers to another generation, or to no query: refused.
    flood(
        &mut h,
        &[
            forged_outcome(id, &name(1), false),
            forged_outcome(id + 7, &name(1), true),
            answer(2, 1),
            answer(1, 9),
        ],
    );
    let after = h.nodes[0].metrics();
    assert_eq!(after.write_messages_dropped - before.write_messages_dropped, 2);
    assert_eq!(after.query_responses_dropped - before.query_responses_dropped, 2);
    assert!(
        !h.events[0][events_before..]
            .iter()
            .any(|e| matches!(e, Event::WriteAnswered { .. } | Event::QueryResponse { .. })),
        "a forgery reached the application"
    );

    // A flood of write requests for node 0's own table, from mallory.
    let requests: Vec<Vec<u8>> = (1..=100)
        .map(|i| {
            from_mallory(Body::WriteRequest(v1::WriteRequest {
                requester: Some(identity("mallory", 1, MALLORY)),
                owner: name(0),
                id: i,
                key: format!("flood-{}", i % 8),
                value: Bytes::from_static(b"x"),
                ..Default::default()
            }))
            .encode_to_vec()
        })
        .collect();
    let version_before = h.nodes[0].node(&name(0)).expect("itself").max_version;
    flood(&mut h, &requests);
    let after = h.nodes[0].metrics();
    assert_eq!(after.write_requests_accepted, 5, "the burst only");
    assert!(after.messages_rate_limited >= 95);
    assert_eq!(h.nodes[0].node(&name(0)).expect("itself").max_version, version_before + 5);
    still_serves_honest_peers(&mut h, "write-request flood");
}
