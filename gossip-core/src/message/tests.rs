//! The decoder against prost's, and the check of what it decodes.

use std::net::SocketAddr;

use bytes::Bytes;
use gossip_proto::v1;
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;
use prost::encoding;

use super::check::{Body, DropReason, check};
use super::decode::{DecodedBody, DecodedEnvelope, decode};
use super::entries::{DELTA_ENTRY, ENTRY_DELETED, ENTRY_KEY, ENTRY_VALUE, ENTRY_VERSION};
use crate::config::Config;

/// One field of a hand-laid `Entry`, plain or odd.
#[derive(Debug, Clone)]
enum RawField {
    Key(String),
    KeyBytes(Vec<u8>),
    Value(Vec<u8>),
    Version(u64),
    Deleted(u64),
    /// A varint field with `padding` redundant continuation bytes, or a 10-byte varint
    /// whose last byte is `last` (valid only when 0 or 1).
    OddVarint {
        tag: u8,
        value: u64,
        padding: u8,
    },
    TenByteVarint {
        tag: u8,
        last: u8,
    },
    /// A key written as a two-byte varint (`0x8a 0x00` for the key field).
    LongKeyTag(Vec<u8>),
    Unknown {
        tag: u32,
        wire_type: u8,
        payload: Vec<u8>,
    },
    /// A known field with the wrong wire type.
    WrongWireType(u8),
}

fn put_varint(out: &mut Vec<u8>, value: u64) {
    encoding::encode_varint(value, out);
}

fn put_len(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    out.push(key);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn lay(fields: &[RawField]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        match field {
            RawField::Key(key) => put_len(&mut out, ENTRY_KEY, key.as_bytes()),
            RawField::KeyBytes(key) => put_len(&mut out, ENTRY_KEY, key),
            RawField::Value(value) => put_len(&mut out, ENTRY_VALUE, value),
            RawField::Version(version) => {
                out.push(ENTRY_VERSION);
                put_varint(&mut out, *version);
            }
            RawField::Deleted(deleted) => {
                out.push(ENTRY_DELETED);
                put_varint(&mut out, *deleted);
            }
            RawField::OddVarint { tag, value, padding } => {
                out.push(if tag % 2 == 0 { ENTRY_VERSION } else { ENTRY_DELETED });
                let mut bytes = Vec::new();
                put_varint(&mut bytes, *value);
                let last = bytes.pop().unwrap_or(0);
                out.extend_from_slice(&bytes);
                let pad = usize::from(*padding).min(10 - bytes.len() - 1);
                out.push(last | if pad > 0 { 0x80 } else { 0 });
                for i in 0..pad {
                    out.push(if i + 1 < pad { 0x80 } else { 0 });
                }
            }
            RawField::TenByteVarint { tag, last } => {
                out.push(if tag % 2 == 0 { ENTRY_VERSION } else { ENTRY_DELETED });
                out.extend_from_slice(&[0xff; 9]);
                out.push(*last);
            }
            RawField::LongKeyTag(key) => {
                out.extend_from_slice(&[ENTRY_KEY | 0x80, 0]);
                put_varint(&mut out, key.len() as u64);
                out.extend_from_slice(key);
            }
            RawField::Unknown { tag, wire_type, payload } => {
                put_varint(&mut out, u64::from(*tag) << 3 | u64::from(*wire_type % 8));
                match wire_type % 8 {
                    0 => put_varint(&mut out, payload.len() as u64),
                    1 => out.extend_from_slice(&[7; 8]),
                    2 => {
                        put_varint(&mut out, payload.len() as u64);
                        out.extend_from_slice(payload);
                    }
                    3 => {
                        put_varint(&mut out, u64::from(*tag) << 3 | 4);
                    }
                    5 => out.extend_from_slice(&[7; 4]),
                    _ => out.extend_from_slice(payload),
                }
            }
            RawField::WrongWireType(tag) => {
                let tag = 1 + tag % 4;
                let wire_type = if tag <= 2 { 0 } else { 2 };
                out.push(tag << 3 | wire_type);
                out.push(1);
                out.push(b'x');
            }
        }
    }
    out
}

fn raw_field() -> impl Strategy<Value = RawField> {
    prop_oneof![
        4 => "[a-z0-9é]{0,12}".prop_map(RawField::Key),
        1 => vec(any::<u8>(), 0..6).prop_map(RawField::KeyBytes),
        4 => vec(any::<u8>(), 0..24).prop_map(RawField::Value),
        4 => any::<u64>().prop_map(RawField::Version),
        2 => (0..3u64).prop_map(RawField::Deleted),
        1 => (any::<u8>(), any::<u64>(), 0..4u8)
            .prop_map(|(tag, value, padding)| RawField::OddVarint { tag, value, padding }),
        1 => (any::<u8>(), 0..4u8).prop_map(|(tag, last)| RawField::TenByteVarint { tag, last }),
        1 => vec(any::<u8>(), 0..4).prop_map(RawField::LongKeyTag),
        1 => (5..40u32, any::<u8>(), vec(any::<u8>(), 0..4))
            .prop_map(|(tag, wire_type, payload)| RawField::Unknown { tag, wire_type, payload }),
        1 => any::<u8>().prop_map(RawField::WrongWireType),
    ]
}

/// Plain entries, mostly, with an odd field now and then.
fn entry_fields() -> impl Strategy<Value = Vec<RawField>> {
    prop_oneof![
        3 => ("[a-z]{0,10}", vec(any::<u8>(), 0..20), any::<u64>(), any::<bool>()).prop_map(
            |(key, value, version, deleted)| vec![
                RawField::Key(key),
                RawField::Value(value),
                RawField::Version(version),
                RawField::Deleted(u64::from(deleted)),
            ]
        ),
        1 => vec(raw_field(), 0..6),
    ]
}

fn delta_bytes(entries: &[Vec<RawField>], name: &str, trailer: bool) -> Vec<u8> {
    let head = v1::NodeDelta {
        name: name.to_owned(),
        generation: 3,
        address: Some(v1::Address { ip: vec![10, 0, 0, 1].into(), port: 7946 }),
        from_version: 0,
        to_version: 9,
        ..Default::default()
    };
    let mut out = head.encode_to_vec();
    for entry in entries {
        put_len(&mut out, DELTA_ENTRY, &lay(entry));
    }
    if trailer {
        // Fields after the entries, and one more `name` (the last one wins).
        out.push(9 << 3);
        put_varint(&mut out, 4);
        put_len(&mut out, 1 << 3 | 2, b"later");
    }
    out
}

/// An envelope whose body (field `body_tag`) carries `deltas` in its deltas field (4 in a
/// `Syn`, 1 elsewhere); `extra_body` adds other fields of the body (for a `Syn`: a
/// summary, a digest entry and the mode, around the deltas).
fn envelope_bytes(body_tag: u8, deltas: &[Vec<u8>], extra_body: bool) -> Vec<u8> {
    let syn = body_tag == 4;
    let mut body = Vec::new();
    if syn && extra_body {
        let summary = v1::Summary { hash: 0x5eed, nodes: 3 };
        put_len(&mut body, 1 << 3 | 2, &summary.encode_to_vec());
    }
    for (i, delta) in deltas.iter().enumerate() {
        put_len(&mut body, if syn { 4 << 3 | 2 } else { 1 << 3 | 2 }, delta);
        if syn && extra_body && i == 0 {
            // Fields of the rest interleaved with the deltas.
            let entry = v1::DigestEntry { name: "n0".to_owned(), max_version: 9, ..Default::default() };
            put_len(&mut body, 2 << 3 | 2, &entry.encode_to_vec());
        }
    }
    if extra_body {
        // A `Syn`'s mode; `want_ack` of a `Push`; a wrong wire type elsewhere.
        body.push(if syn { 3 << 3 } else { 2 << 3 });
        body.push(1);
    }
    let head = v1::Envelope {
        protocol_version: 1,
        cluster: "default".to_owned(),
        sender: Some(v1::NodeIdentity { name: "node-a".to_owned(), generation: 1, address: None }),
        ..Default::default()
    };
    let mut out = head.encode_to_vec();
    put_len(&mut out, body_tag << 3 | 2, &body);
    out
}

fn same_as_prost(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ours = decode(&Bytes::copy_from_slice(bytes));
    let theirs = v1::Envelope::decode(bytes).map(DecodedEnvelope::from);
    match (ours, theirs) {
        (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours.copied(bytes), theirs.copied(&[])),
        (Err(_), Err(_)) => {}
        (ours, theirs) => prop_assert!(false, "ours {:?}, prost's {:?}", ours.is_ok(), theirs.is_ok()),
    }
    Ok(())
}

proptest! {
    #[test]
    fn decodes_as_prost_does(
        deltas in vec((vec(entry_fields(), 0..8), any::<bool>()), 0..4),
        body_tag in 4..=15u8,
        extra_body in any::<bool>(),
        second in prop::option::of(4..=15u8),
        cut in any::<prop::sample::Index>(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let deltas: Vec<Vec<u8>> = deltas
            .iter()
            .enumerate()
            .map(|(i, (entries, trailer))| delta_bytes(entries, &format!("n{i}"), *trailer))
            .collect();
        let mut bytes = envelope_bytes(body_tag, &deltas, extra_body);
        if let Some(second) = second {
            // The same body field twice merges; another kind (of any body field, those
            // without deltas included) replaces.
            let again = envelope_bytes(second, if second == body_tag { &deltas } else { &[] }, false);
            bytes.extend_from_slice(&again);
        }
        same_as_prost(&bytes)?;
        same_as_prost(&bytes[..cut.index(bytes.len() + 1)])?;
        let mut flipped = bytes.clone();
        for (at, byte) in &flips {
            if !flipped.is_empty() {
                let at = at.index(flipped.len());
                flipped[at] = *byte;
            }
        }
        same_as_prost(&flipped)?;
    }

    #[test]
    fn decodes_noise_as_prost_does(bytes in vec(any::<u8>(), 0..64)) {
        same_as_prost(&bytes)?;
    }
}

#[test]
fn a_key_that_is_not_utf8_fails_the_datagram_wherever_it_is() {
    let bad = RawField::KeyBytes(vec![b'k', 0xff]);
    let good = RawField::Key("k".to_owned());
    for fields in [vec![bad.clone()], vec![bad.clone(), good.clone()], vec![good, bad]] {
        let bytes = envelope_bytes(8, &[delta_bytes(&[fields], "n0", false)], false);
        assert!(v1::Envelope::decode(&bytes[..]).is_err());
        assert!(decode(&Bytes::from(bytes)).is_err());
    }
}

#[test]
fn a_syn_carries_its_deltas_zero_copy_and_a_bad_one_fails_the_check() {
    let entries: Vec<Vec<RawField>> = (0..3)
        .map(|i| {
            vec![
                RawField::Key(format!("key-{i}")),
                RawField::Value(vec![i; 8]),
                RawField::Version(u64::from(i) + 1),
            ]
        })
        .collect();
    let bytes = Bytes::from(envelope_bytes(4, &[delta_bytes(&entries, "n0", false)], true));
    let envelope = decode(&bytes).expect("decodes");
    let theirs = v1::Envelope::decode(&bytes[..]).map(DecodedEnvelope::from).expect("prost decodes");
    assert_eq!(envelope.clone().copied(&bytes), theirs.copied(&[]));
    let Some(DecodedBody::Syn(syn)) = &envelope.body else { panic!("a syn") };
    assert_eq!(syn.rest.mode(), v1::ExchangeMode::Pull);
    assert_eq!(syn.rest.summary, Some(v1::Summary { hash: 0x5eed, nodes: 3 }));
    assert_eq!((syn.digest.len(), syn.rest.digest.len()), (1, 0), "digest entries decoded apart");
    assert_eq!(syn.deltas.len(), 1);
    assert_eq!(located(&bytes, &syn.deltas[0].entries), expected(3), "located in the datagram");

    let config = Config::lan();
    let from: SocketAddr = "10.0.0.2:7946".parse().expect("an address");
    let checked = check(envelope, &config, from, &bytes).expect("a valid syn");
    assert_eq!(checked_datagram(&checked), Some(bytes.clone()), "the deltas keep their datagram");
    let Body::Syn(syn) = checked.body else { panic!("a syn") };
    assert_eq!(syn.mode, v1::ExchangeMode::Pull);
    assert_eq!(syn.deltas.len(), 1, "the check passes a Syn's deltas on");
    assert_eq!(syn.deltas[0].address, "10.0.0.1:7946".parse().expect("an address"));
    assert_eq!(located(&bytes, &syn.deltas[0].entries), expected(3), "still located in the datagram");
    // Entries out of version order: the whole datagram is dropped.
    let mut bad = entries.clone();
    bad.swap(0, 2);
    let bytes =
        envelope_bytes(4, &[delta_bytes(&entries, "n0", false), delta_bytes(&bad, "n1", false)], true);
    let bytes = Bytes::from(bytes);
    let envelope = decode(&bytes).expect("decodes");
    assert!(matches!(check(envelope, &config, from, &bytes), Err(DropReason::Malformed)));
}

#[test]
fn plain_entries_take_the_fast_path_and_share_the_buffer() {
    let entries: Vec<Vec<RawField>> = (0..5)
        .map(|i| {
            vec![
                RawField::Key(format!("key-{i}")),
                RawField::Value(vec![i; 8]),
                RawField::Version(u64::from(i) + 1),
            ]
        })
        .collect();
    let bytes = Bytes::from(envelope_bytes(8, &[delta_bytes(&entries, "n0", false)], false));
    let envelope = decode(&bytes).expect("decodes");
    let Some(DecodedBody::DeltaReply(reply)) = envelope.body else { panic!("a delta reply") };
    let entries = &reply.deltas[0].entries;
    assert_eq!(entries.capacity(), 5, "sized once");
    assert_eq!(located(&bytes, entries), expected(5), "located in the datagram");
    assert!(reply.deltas[0].own.is_empty(), "nothing copied");
}

/// The keys and values of `entries` read where they lie in `datagram` (none in a buffer of
/// its own).
fn located<'a>(datagram: &'a [u8], entries: &[crate::delta::ReceivedEntry]) -> Vec<(&'a [u8], &'a [u8])> {
    entries
        .iter()
        .map(|entry| {
            assert!(!entry.own, "not copied");
            let read = |range| datagram.get(range).expect("within the datagram");
            (read(entry.spans.key()), read(entry.spans.value()))
        })
        .collect()
}

/// What `located` reads of the tests' first `count` plain entries.
fn expected(count: u8) -> Vec<(&'static [u8], &'static [u8])> {
    (0..count)
        .map(|i| {
            let key: &'static [u8] = format!("key-{i}").into_bytes().leak();
            let value: &'static [u8] = vec![i; 8].leak();
            (key, value)
        })
        .collect()
}

/// The datagram the first delta of a checked `Syn` keeps for its key events.
fn checked_datagram(envelope: &super::Envelope) -> Option<Bytes> {
    let Body::Syn(syn) = &envelope.body else { return None };
    syn.deltas.first().map(|delta| delta.datagram.clone())
}

/// Digest entries are decoded as prost decodes them, names read in place or through prost
/// (a length of two bytes, an odd encoding), and a name that is not UTF-8 fails the datagram.
#[test]
fn digest_names_decode_as_prost_decodes_them() {
    let entry = |name: &str| v1::DigestEntry {
        name: name.to_owned(),
        generation: 3,
        max_version: 9,
        ..Default::default()
    };
    let long = "n".repeat(200);
    let syn = v1::Syn { digest: vec![entry("n1"), entry(&long), entry("")], ..Default::default() };
    let envelope = v1::Envelope { body: Some(v1::envelope::Body::Syn(syn)), ..Default::default() };
    let bytes = Bytes::from(envelope.encode_to_vec());
    let ours = decode(&bytes).expect("decodes");
    let Some(DecodedBody::Syn(decoded)) = &ours.body else { panic!("a syn") };
    let names: Vec<&str> = decoded.digest.iter().map(|entry| entry.name.as_str()).collect();
    assert_eq!(names, ["n1", long.as_str(), ""]);
    assert_eq!(decoded.digest[0].max_version, 9);
    assert_eq!(ours.copied(&bytes), DecodedEnvelope::from(envelope).copied(&[]));

    // The same datagram with the first name's bytes made invalid UTF-8.
    let mut bad = bytes.to_vec();
    let at = bad.windows(2).position(|pair| pair == b"n1").expect("the name is there");
    bad[at] = 0xff;
    assert!(v1::Envelope::decode(&bad[..]).is_err());
    assert!(decode(&Bytes::from(bad)).is_err());
}
