//! Sealed datagrams: a keyed cluster works and leaks nothing, whoever lacks the key changes
//! nothing, replays are dropped, keys rotate and encryption turns on in a running cluster
//! without a false failure, and caller mistakes are typed errors.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Harness, address, name};
use gossip_core::keyring::KEYRING_KEY;
use gossip_core::proto::v1::{self, envelope::Body};
use gossip_core::{
    Config, ConfigError, EncryptionMode, Event, Identity, Keyring, KeyringError, Node, SEAL_OVERHEAD,
    SecretKey, WriteError,
};
use prost::Message;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const SECOND: Duration = Duration::from_secs(1);

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).expect("32 bytes")
}

fn sealed_config() -> Config {
    let mut config = Config::lan();
    config.encryption = EncryptionMode::Require;
    config
}

/// `n` nodes sealing with `key(1)`, joined and converged, recording every datagram.
fn sealed_cluster(n: usize, seed: u64) -> Harness {
    let mut harness = Harness::with_keyrings(n, sealed_config(), seed, |_| Keyring::new(key(1)));
    harness.recorded = Some(Vec::new());
    for i in 0..n {
        harness.nodes[i].set("secret", format!("plaintext-{i}")).expect("small");
        harness.drain(i);
    }
    let converged = harness.run_until_true(30 * SECOND, SECOND / 10, |h| {
        (0..n).all(|owner| h.all_see(owner, "secret", format!("plaintext-{owner}").as_bytes()))
    });
    assert!(converged.is_some(), "seed {seed}: a sealed cluster converges");
    harness
}

/// Seals `plain` as `docs/SECURITY.md` specifies the framing, from outside the library.
fn seal_as_documented(key: [u8; 32], cluster: &str, session: u64, counter: u32, plain: &[u8]) -> Vec<u8> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key_id = SecretKey::from_bytes(&key).expect("32 bytes").fingerprint().key_id();
    let mut header = vec![0x01, key_id];
    header.extend_from_slice(&session.to_be_bytes());
    header.extend_from_slice(&counter.to_be_bytes());
    let mut aad = header.clone();
    aad.extend_from_slice(&gossip_core::proto::PROTOCOL_VERSION.to_le_bytes());
    aad.extend_from_slice(cluster.as_bytes());
    let nonce: [u8; 12] = header[2..14].try_into().expect("12 bytes");
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32 bytes"));
    let mut body = plain.to_vec();
    let tag = cipher
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad[..]), &mut body)
        .expect("seals");
    header.extend_from_slice(&body);
    header.extend_from_slice(tag.as_ref());
    header
}

fn failures(harness: &Harness) -> usize {
    harness.events.iter().flatten().filter(|e| matches!(e, Event::MemberFailed { .. })).count()
}

/// A plain datagram as an outsider would forge it: a Dead claim about `victim`.
fn forged_death(victim: usize, incarnation: u32) -> Vec<u8> {
    let identity = |name: String, port: u16| v1::NodeIdentity {
        name,
        generation: 1,
        address: Some(v1::Address { ip: Bytes::from_static(&[127, 0, 0, 1]), port: u32::from(port) }),
    };
    v1::Envelope {
        protocol_version: gossip_core::proto::PROTOCOL_VERSION,
        cluster: Config::lan().cluster,
        sender: Some(identity("mallory".to_owned(), 9_999)),
        body: Some(Body::Ping(v1::Ping { sequence: 1, summary: None })),
        membership: vec![v1::MembershipUpdate {
            member: Some(identity(name(victim), 10_000 + victim as u16)),
            incarnation,
            state: v1::MemberState::Dead as i32,
            from: "mallory".to_owned(),
        }],
        broadcasts: Vec::new(),
    }
    .encode_to_vec()
}

#[test]
fn a_sealed_cluster_converges_and_its_datagrams_leak_nothing() {
    let harness = sealed_cluster(5, 1);
    let recorded = harness.recorded.as_ref().expect("recording");
    assert!(!recorded.is_empty());
    for (_, _, payload) in recorded {
        assert_eq!(payload[0], 0x01, "every datagram uses the sealed framing");
        assert!(payload.len() <= 1_400);
        let text = String::from_utf8_lossy(payload);
        assert!(!text.contains("plaintext-") && !text.contains("node-"), "a value or name in the clear");
    }
    // Every node publishes the one key it holds, as primary, and every node counts them all.
    let fingerprint = key(1).fingerprint();
    for node in &harness.nodes {
        let status = node.keyring_status();
        assert_eq!(status.live_members, 5);
        let key = status.key(fingerprint).expect("the key");
        assert_eq!((key.holders, key.primary_for), (5, 5), "{status:?}");
    }
    assert_eq!(failures(&harness), 0);
}

#[test]
fn without_the_key_nothing_is_accepted_and_nothing_changes() {
    let mut harness = sealed_cluster(3, 2);
    let before = harness.snapshot(0);
    let events_before = harness.events[0].len();
    let from = address(9);
    // Plain forged claims, the same sealed under a wrong key, garbage after the marker, and
    // a datagram of a node of another cluster sealed with the very same key.
    harness.inject(from, 0, &forged_death(1, u32::MAX));
    // A sealing node outside the harness at `from`, joining node 0.
    let outsider = |config: Config, name: &str, seed: u64, keyring: Keyring| {
        let identity = Identity::new(name, 1, from);
        let mut node =
            Node::with_keyring(config, identity, harness.now, ChaCha8Rng::seed_from_u64(seed), keyring)
                .expect("valid");
        node.join([address(0)]);
        node
    };
    let mut wrong_key = outsider(sealed_config(), "mallory", 5, Keyring::new(key(2)));
    let mut other_cluster =
        outsider(sealed_config().with_cluster("other"), "mallory-2", 6, Keyring::new(key(1)));
    let mut sent = 0;
    for outsider in [&mut wrong_key, &mut other_cluster] {
        while let Some(output) = outsider.poll() {
            if let gossip_core::Output::Transmit(transmit) = output {
                harness.inject(from, 0, &transmit.payload);
                sent += 1;
            }
        }
    }
    assert!(sent >= 2);
    harness.inject(from, 0, &[0x01; 20]);
    let mut tampered = harness.recorded.as_ref().expect("recording")[0].2.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    harness.inject(from, 0, &tampered);

    assert_eq!(harness.snapshot(0), before, "an outsider changed the state");
    assert_eq!(harness.events[0].len(), events_before, "an outsider caused an event");
    let metrics = harness.nodes[0].metrics();
    assert_eq!(metrics.plain_refused, 1);
    assert!(metrics.unknown_key_ids + metrics.unauthentic_datagrams >= 4, "{metrics:?}");
    // The cluster goes on, and nobody reports a failure.
    harness.run_for(20 * SECOND);
    assert_eq!(failures(&harness), 0);
    assert!(harness.nodes[0].node("mallory").is_none() && harness.nodes[0].node("mallory-2").is_none());
}

#[test]
fn replayed_datagrams_are_dropped_and_counted() {
    let mut harness = sealed_cluster(3, 3);
    harness.run_for(5 * SECOND);
    let captured: Vec<(usize, std::net::SocketAddr, Bytes)> = harness
        .recorded
        .take()
        .expect("recording")
        .into_iter()
        .filter(|(from, to, _)| *from == 1 && *to == address(0))
        .collect();
    assert!(captured.len() >= 8, "{} datagrams captured", captured.len());
    let before = harness.snapshot(0);
    let events_before = harness.events[0].len();
    let replays_before = harness.nodes[0].metrics().replays;
    for (_, _, payload) in &captured {
        harness.inject(address(1), 0, payload);
    }
    assert_eq!(harness.nodes[0].metrics().replays - replays_before, captured.len() as u64);
    assert_eq!(harness.snapshot(0), before);
    assert_eq!(harness.events[0].len(), events_before);
}

#[test]
fn keys_rotate_across_a_running_cluster_without_a_failure() {
    let n = 6;
    let mut harness = sealed_cluster(n, 4);
    let (old, new) = (key(1).fingerprint(), key(2).fingerprint());
    for i in 0..n {
        assert_eq!(harness.nodes[i].install_key(&key(2)), Ok(new));
        harness.drain(i);
    }
    let everyone_holds = harness.run_until_true(30 * SECOND, SECOND / 10, |h| {
        h.nodes.iter().all(|node| node.keyring_status().key(new).is_some_and(|k| k.holders == n))
    });
    assert!(everyone_holds.is_some(), "every member learns that every member holds the new key");
    for i in 0..n {
        harness.nodes[i].use_key(new).expect("installed");
        harness.drain(i);
    }
    let nobody_seals_with_old = harness.run_until_true(30 * SECOND, SECOND / 10, |h| {
        h.nodes.iter().all(|node| node.keyring_status().key(old).is_some_and(|k| k.primary_for == 0))
    });
    assert!(nobody_seals_with_old.is_some());
    for i in 0..n {
        harness.nodes[i].remove_key(old).expect("not primary");
        assert_eq!(harness.nodes[i].keys(), vec![new]);
        harness.drain(i);
    }
    harness.nodes[3].set("after", "rotation").expect("small");
    harness.drain(3);
    let spread = harness.run_until_true(30 * SECOND, SECOND / 10, |h| h.all_see(3, "after", b"rotation"));
    assert!(spread.is_some(), "a write after the rotation spreads");
    harness.run_for(20 * SECOND);
    assert_eq!(failures(&harness), 0, "the rotation caused a failure");
    let unknown: u64 = harness.metrics().iter().map(|m| m.unknown_key_ids + m.unauthentic_datagrams).sum();
    assert_eq!(unknown, 0, "no datagram was sealed with a key a receiver lacked");
}

#[test]
fn encryption_turns_on_one_node_at_a_time_without_a_failure() {
    let n = 6;
    let mut harness = Harness::with_keyrings(n, Config::lan(), 5, |_| Keyring::new(key(1)));
    harness.run_for(10 * SECOND);
    for mode in [EncryptionMode::Accept, EncryptionMode::Send, EncryptionMode::Require] {
        for i in 0..n {
            harness.nodes[i].set_encryption(mode).expect("has a key");
            harness.run_for(3 * SECOND);
        }
    }
    harness.recorded = Some(Vec::new());
    harness.nodes[2].set("k", "v").expect("small");
    harness.drain(2);
    assert!(harness.run_until_true(30 * SECOND, SECOND / 10, |h| h.all_see(2, "k", b"v")).is_some());
    assert!(harness.recorded.as_ref().expect("recording").iter().all(|(_, _, p)| p[0] == 0x01));
    assert_eq!(failures(&harness), 0);
    let suspicions =
        harness.events.iter().flatten().filter(|e| matches!(e, Event::MemberSuspected { .. })).count();
    assert_eq!(suspicions, 0, "a step of the rolling enable cut a member off");
}

/// The order matters: a node that requires sealed datagrams while the others still send
/// plain ones is cut off (this is what the `Accept` and `Send` steps prevent).
#[test]
fn requiring_before_the_others_send_sealed_cuts_a_node_off() {
    let mut harness = Harness::with_keyrings(4, Config::lan(), 6, |_| Keyring::new(key(1)));
    harness.run_for(10 * SECOND);
    harness.nodes[1].set_encryption(EncryptionMode::Require).expect("has a key");
    harness.run_for(30 * SECOND);
    assert!(harness.nodes[1].metrics().plain_refused > 0);
    assert!(harness.nodes[0].metrics().sealed_refused > 0);
    assert!(failures(&harness) > 0);
}

#[test]
fn sealed_datagrams_fit_the_limit_with_the_largest_entries() {
    let config = sealed_config();
    let mut harness = Harness::with_keyrings(3, config.clone(), 7, |_| Keyring::new(key(1)));
    let value = vec![b'x'; config.max_value_size];
    let big_key = "k".repeat(config.max_key_size);
    for round in 0..20u8 {
        let mut value = value.clone();
        value[0] = round;
        harness.nodes[1]
            .set(format!("{big_key}{round}").chars().take(config.max_key_size).collect::<String>(), value)
            .expect("fits");
        harness.drain(1);
    }
    harness.run_for(30 * SECOND);
    assert!(harness.max_datagram <= config.max_datagram_size, "{}", harness.max_datagram);
    assert!(
        harness.max_datagram > config.max_datagram_size - SEAL_OVERHEAD - 100,
        "full datagrams were sent"
    );
    assert_eq!(
        harness.nodes[0].node(&name(1)).map(|v| v.max_version),
        harness.nodes[1].node(&name(1)).map(|v| v.max_version)
    );
}

#[test]
fn caller_mistakes_are_typed_errors() {
    assert!(matches!(SecretKey::from_bytes(&[0; 16]), Err(KeyringError::KeyLength { len: 16 })));
    #[allow(clippy::disallowed_methods)]
    let now = std::time::Instant::now();
    let identity = Identity::new("a", 1, address(0));
    let refused = Node::new(sealed_config(), identity.clone(), now, ChaCha8Rng::seed_from_u64(1));
    assert!(matches!(refused, Err(ConfigError::EncryptionWithoutKey { .. })));
    let mut node = Node::new(Config::lan(), identity, now, ChaCha8Rng::seed_from_u64(1)).expect("valid");
    assert!(matches!(node.set_encryption(EncryptionMode::Send), Err(KeyringError::NoPrimaryKey { .. })));
    let fingerprint = node.install_key(&key(1)).expect("first key");
    assert_eq!(node.remove_key(fingerprint), Err(KeyringError::RemovingPrimary(fingerprint)));
    assert!(matches!(node.set(KEYRING_KEY, "forged"), Err(WriteError::ReservedKey { .. })));
    assert!(matches!(node.delete(KEYRING_KEY), Err(WriteError::ReservedKey { .. })));
    assert_eq!(node.get("a", KEYRING_KEY).map(|v| v.to_vec()), Some(fingerprint.to_string().into_bytes()));
    let error = KeyringError::RemovingPrimary(fingerprint).to_string();
    assert!(error.contains("use_key"), "the message says what to do: {error}");
}

/// Every attack a hostile peer made on the plain protocol, sent by a peer without the key
/// (plain, or sealed under another key): refused and counted, no event, no state change.
#[test]
fn every_measured_attack_without_the_key_is_refused_whole() {
    let mut harness = sealed_cluster(3, 8);
    let from = address(9);
    let wire = |name: String, generation: u64, port: u16, with_address: bool| v1::NodeIdentity {
        name,
        generation,
        address: with_address
            .then(|| v1::Address { ip: Bytes::from_static(&[127, 0, 0, 1]), port: u32::from(port) }),
    };
    let envelope = |sender: v1::NodeIdentity, body: Body, membership: Vec<v1::MembershipUpdate>| {
        v1::Envelope {
            protocol_version: gossip_core::proto::PROTOCOL_VERSION,
            cluster: Config::lan().cluster,
            sender: Some(sender),
            body: Some(body),
            membership,
            broadcasts: Vec::new(),
        }
        .encode_to_vec()
    };
    let claim =
        |victim: usize, generation: u64, incarnation: u32, state: v1::MemberState| v1::MembershipUpdate {
            member: Some(wire(name(victim), generation, 10_000 + victim as u16, true)),
            incarnation,
            state: state as i32,
            from: "mallory".to_owned(),
        };
    let ping = || Body::Ping(v1::Ping { sequence: 1, summary: None });
    let mallory = || wire("mallory".to_owned(), 1, 9_999, true);
    let max = harness.nodes[0].node(&name(1)).expect("known").max_version;
    let overwrite = |version: u64| {
        Body::Push(v1::Push {
            deltas: vec![v1::NodeDelta {
                name: name(1),
                generation: 1,
                address: Some(v1::Address { ip: Bytes::from_static(&[127, 0, 0, 1]), port: 10_001 }),
                from_version: max,
                to_version: version,
                entries: vec![v1::Entry {
                    key: "secret".to_owned(),
                    value: Bytes::from_static(b"pwned"),
                    version,
                    deleted: false,
                }],
                ..Default::default()
            }],
            want_ack: false,
            summary: None,
            data_summary: None,
        })
    };
    let fakes: Vec<v1::MembershipUpdate> =
        (100..140).map(|i| claim(i, 1, 0, v1::MemberState::Alive)).collect();
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        (
            "dead at the top incarnation",
            envelope(mallory(), ping(), vec![claim(1, 1, u32::MAX, v1::MemberState::Dead)]),
        ),
        (
            "left at the current incarnation",
            envelope(mallory(), ping(), vec![claim(1, 1, 0, v1::MemberState::Left)]),
        ),
        (
            "the next allowed generation",
            envelope(
                mallory(),
                ping(),
                vec![claim(1, 1 + Config::lan().max_generation_jump, 0, v1::MemberState::Alive)],
            ),
        ),
        ("a key at max + 1", envelope(mallory(), overwrite(max + 1), Vec::new())),
        ("a key at u64::MAX", envelope(mallory(), overwrite(u64::MAX), Vec::new())),
        ("a member without an address", envelope(wire(name(1), 1, 0, false), ping(), Vec::new())),
        (
            "acks for every sequence",
            envelope(mallory(), Body::Ack(v1::Ack { sequence: 1, ..Default::default() }), Vec::new()),
        ),
        ("fake members", envelope(mallory(), ping(), fakes)),
    ];
    let mut counter = 0;
    let mut wrong_key = |plain: &[u8]| {
        counter += 1;
        seal_as_documented([2; 32], &Config::lan().cluster, 0x5eed, counter, plain)
    };
    for (what, plain) in attacks {
        let before = harness.snapshot(0);
        let events = harness.events[0].len();
        let dropped = harness.nodes[0].metrics().dropped_whole();
        harness.inject(from, 0, &plain);
        harness.inject(from, 0, &wrong_key(&plain));
        assert_eq!(harness.snapshot(0), before, "{what}: the state changed");
        assert_eq!(harness.events[0].len(), events, "{what}: an event");
        assert_eq!(harness.nodes[0].metrics().dropped_whole(), dropped + 2, "{what}: not counted");
    }
    // The framing as documented, under the cluster's key, is accepted: a new member's ping
    // makes it known, once; the same datagram again is a replay.
    let hello = envelope(wire("newcomer".to_owned(), 1, 9_998, true), ping(), Vec::new());
    let sealed = seal_as_documented([1; 32], &Config::lan().cluster, 0xfeed, 0, &hello);
    let dropped = harness.nodes[0].metrics().dropped_whole();
    harness.inject(from, 0, &sealed);
    assert_eq!(harness.nodes[0].metrics().dropped_whole(), dropped);
    assert!(harness.nodes[0].node("newcomer").is_some(), "the documented framing is the real one");
    harness.inject(from, 0, &sealed);
    assert_eq!(harness.nodes[0].metrics().replays, 1);
}
