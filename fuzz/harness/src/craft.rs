//! Envelopes built from fuzz bytes, so that the `handle_input` target gets past the decoder
//! and the protocol checks: names, generations, addresses, versions and keys come from small
//! pools that the simulated cluster and the node under test use, so a crafted datagram
//! usually names members the node knows, continues versions it holds and answers its probes.
//! A few choices in each pool break a rule on purpose (an empty or overlong name, a bad
//! address, an unknown state, entries out of order, an oversized value), so that the checks
//! are exercised too.

use bytes::Bytes;
use gossip_core::proto::{PROTOCOL_VERSION, v1};
use gossip_core::sim::node_address;
use gossip_core::{Config, ping_target_tag};

use crate::input::Reader;

/// Keys are `k0` to `k{KEYS - 1}`.
pub const KEYS: u8 = 24;

/// A node name: mostly `n0` (the node under test) to `n7`, sometimes the longest valid name
/// or an invalid one.
pub fn name(r: &mut Reader<'_>) -> String {
    match r.u8() {
        b @ 0..=239 => format!("n{}", b % 8),
        240..=247 => "x".repeat(64),
        248..=251 => String::new(),
        _ => "y".repeat(65),
    }
}

/// An address on the wire: a simulated node's, an IPv6 one, none, or a malformed one.
pub fn address(r: &mut Reader<'_>) -> Option<v1::Address> {
    let socket = match r.below(64) {
        0 => return None,
        1 => return Some(v1::Address { ip: Bytes::from_static(&[10, 0, 0]), port: 7946 }),
        2 => "[fd00::1]:7946".parse().expect("an address"),
        b => node_address(usize::from(b % 6)),
    };
    let ip = match socket.ip() {
        std::net::IpAddr::V4(ip) => Bytes::copy_from_slice(&ip.octets()),
        std::net::IpAddr::V6(ip) => Bytes::copy_from_slice(&ip.octets()),
    };
    Some(v1::Address { ip, port: u32::from(socket.port()) })
}

/// A generation: mostly 1 (where the simulator starts nodes), sometimes 0, 2 or 3.
fn generation(r: &mut Reader<'_>) -> u64 {
    match r.below(8) {
        0 => 0,
        1 => 2,
        2 => 3,
        _ => 1,
    }
}

/// A node identity from the pools.
pub fn identity(r: &mut Reader<'_>) -> v1::NodeIdentity {
    v1::NodeIdentity { name: name(r), generation: generation(r), address: address(r) }
}

/// A member state on the wire: mostly alive, `Unspecified` (invalid) now and then.
fn state(r: &mut Reader<'_>) -> i32 {
    let state = match r.below(16) {
        0 => v1::MemberState::Unspecified,
        1..=8 => v1::MemberState::Alive,
        9..=11 => v1::MemberState::Suspect,
        12 | 13 => v1::MemberState::Dead,
        _ => v1::MemberState::Left,
    };
    state as i32
}

fn digest_entry(r: &mut Reader<'_>) -> v1::DigestEntry {
    v1::DigestEntry {
        name: name(r),
        generation: generation(r),
        max_version: u64::from(r.below(16)),
        gc_watermark: u64::from(r.below(4)),
        unknown: r.below(8) == 0,
        incarnation: u32::from(r.below(8)),
        state: state(r),
    }
}

fn digest(r: &mut Reader<'_>) -> Vec<v1::DigestEntry> {
    (0..r.below(6)).map(|_| digest_entry(r)).collect()
}

fn entry(r: &mut Reader<'_>, version: u64) -> v1::Entry {
    let key = format!("k{}", r.below(KEYS));
    let deleted = r.below(4) == 0;
    let len = match r.below(64) {
        0 => 1_000,
        _ => usize::from(r.below(32)),
    };
    let value = if deleted { Bytes::new() } else { Bytes::from(vec![b'v'; len]) };
    v1::Entry { key, value, version, deleted }
}

/// A node delta: mostly a contiguous run in version order, as an owner sends it.
pub fn delta(r: &mut Reader<'_>) -> v1::NodeDelta {
    let name = name(r);
    let generation = generation(r);
    let address = address(r);
    let incarnation = u32::from(r.below(8));
    let state = state(r);
    let reset = r.below(8) == 0;
    let from_version = match r.below(4) {
        0 if !reset => u64::from(r.below(8)),
        _ => 0,
    };
    let mut version = from_version;
    let mut entries = Vec::new();
    for _ in 0..r.below(6) {
        version = match r.below(64) {
            0 => version.saturating_sub(1),
            step => version + 1 + u64::from(step % 2),
        };
        entries.push(entry(r, version));
    }
    let to_version = version + u64::from(r.below(3));
    let gc_watermark = match r.below(8) {
        0 => to_version + u64::from(r.below(4)),
        1 => u64::from(r.below(4)),
        _ => 0,
    };
    // Drawn after the other fields: an older corpus input keeps its first delta.
    let sender_max_version = match r.below(4) {
        0 => to_version + u64::from(r.below(8)),
        1 => u64::MAX,
        _ => 0,
    };
    v1::NodeDelta {
        name,
        generation,
        address,
        from_version,
        to_version,
        gc_watermark,
        reset,
        entries,
        incarnation,
        state,
        sender_max_version,
    }
}

fn deltas(r: &mut Reader<'_>) -> Vec<v1::NodeDelta> {
    (0..r.below(4)).map(|_| delta(r)).collect()
}

/// None, the 64 a receiver reads (mostly zero, so that some buckets agree), or a count it
/// must ignore.
fn bucket_sums(r: &mut Reader<'_>) -> Vec<u32> {
    let count = match r.below(4) {
        0 | 1 => 0,
        2 => 64,
        _ => usize::from(r.below(70)),
    };
    (0..count).map(|_| if r.bool() { r.u32() } else { 0 }).collect()
}

fn summary(r: &mut Reader<'_>) -> Option<v1::Summary> {
    r.bool().then(|| v1::Summary { hash: u64::from(r.u32()), nodes: u32::from(r.below(8)) })
}

/// A message body of any kind, or none.
pub fn body(r: &mut Reader<'_>) -> Option<v1::envelope::Body> {
    use v1::envelope::Body;
    Some(match r.below(11) {
        0 => Body::Syn(v1::Syn {
            summary: summary(r),
            digest: digest(r),
            mode: i32::from(r.below(4)),
            deltas: deltas(r),
            bucket_sums: bucket_sums(r),
        }),
        1 => Body::SynAck(v1::SynAck { deltas: deltas(r), digest: digest(r) }),
        2 => Body::Ack2(v1::Ack2 { deltas: deltas(r), request: digest(r) }),
        3 => Body::Push(v1::Push {
            deltas: deltas(r),
            want_ack: r.bool(),
            summary: summary(r),
            data_summary: summary(r),
        }),
        4 => Body::DeltaReply(v1::DeltaReply { deltas: deltas(r) }),
        5 => Body::PushAck(v1::PushAck { known: digest(r), in_sync: r.bool(), data_in_sync: r.bool() }),
        6 => {
            let low = u32::from(r.u8());
            let target = name(r);
            let tag = if target.is_empty() { 0 } else { ping_target_tag(&target) };
            let summary = summary(r).map(|summary| summary.hash as u32);
            Body::Ping(v1::Ping { sequence: u32::from(tag) << 16 | low, summary })
        }
        7 => Body::PingReq(v1::PingReq {
            sequence: u32::from(r.u8()),
            target: Some(identity(r)),
            nack: r.bool(),
        }),
        8 => Body::Ack(v1::Ack { sequence: u32::from(r.u8()), summary_differs: r.u8() & 1 == 1 }),
        9 => Body::Nack(v1::Nack { sequence: u32::from(r.u8()) }),
        // Aggregation bodies share the last choice with "no body", so that inputs written
        // before they existed keep their meaning.
        _ => match r.below(8) {
            0 => Body::AggregateTransfer(aggregate_transfer(r)),
            1 => Body::AggregateAck(v1::AggregateAck { epoch: epoch(r), sequence: u64::from(r.below(8)) }),
            4 => Body::Gossip(v1::Gossip {}),
            2 => Body::QueryResponse(v1::QueryResponse {
                generation: u64::from(r.below(4)),
                id: u64::from(r.below(4)),
                payload: payload(r),
                relay_to: if r.bool() { name(r) } else { String::new() },
                responder: if r.bool() { name(r) } else { String::new() },
            }),
            3 => Body::WriteRequest(write_request(r)),
            5 => Body::UserMessage(v1::UserMessage { payload: payload(r), id: u64::from(r.below(4)) }),
            6 => Body::WriteOutcome(write_outcome(r)),
            _ => return None,
        },
    })
}

/// An aggregation epoch: mostly the first ones, sometimes the largest.
fn epoch(r: &mut Reader<'_>) -> u64 {
    match r.below(16) {
        0 => u64::MAX,
        b => u64::from(b % 4),
    }
}

/// A number for an aggregate: mostly small, sometimes at or beyond the limits, negative or
/// not a number.
pub fn number(r: &mut Reader<'_>) -> f64 {
    match r.below(32) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => -1.0,
        3 => 1e100,
        4 => 1e111,
        5 => f64::MAX,
        b => f64::from(r.u16()) / f64::from(b),
    }
}

/// An aggregate name: mostly `a0` to `a3`, sometimes too long or empty.
pub fn aggregate_name(r: &mut Reader<'_>) -> String {
    match r.below(32) {
        0 => String::new(),
        1 => "z".repeat(65),
        b => format!("a{}", b % 4),
    }
}

fn aggregate_transfer(r: &mut Reader<'_>) -> v1::AggregateTransfer {
    let shares = (0..r.below(4))
        .map(|_| v1::AggregateShare {
            name: aggregate_name(r),
            average_value: number(r),
            average_weight: number(r),
            sum_value: number(r),
            count_value: number(r),
            total_weight: number(r),
            min: r.bool().then(|| number(r)),
            max: r.bool().then(|| number(r)),
        })
        .collect();
    v1::AggregateTransfer { epoch: epoch(r), sequence: u64::from(r.below(8)), shares }
}

/// An application payload: mostly short, sometimes at or beyond the default limit.
fn payload(r: &mut Reader<'_>) -> bytes::Bytes {
    match r.below(16) {
        0 => vec![7; 1_025].into(),
        1 => vec![7; 1_024].into(),
        b => vec![b; usize::from(b)].into(),
    }
}

/// An application broadcast from an origin of the pools: ids mostly small (0 breaks the
/// rules), topics sometimes too long, coalesced sometimes.
fn user_broadcast(r: &mut Reader<'_>) -> v1::UserBroadcast {
    v1::UserBroadcast {
        origin: name(r),
        generation: u64::from(r.below(4)),
        id: u64::from(r.below(4)),
        topic: if r.below(16) == 0 { "t".repeat(65) } else { format!("t{}", r.below(3)) },
        payload: payload(r),
        latest: r.bool(),
        query: (r.below(4) == 0).then(|| query(r)),
    }
}

/// A query header: sometimes without an address or timeout, a filter of pool names or a
/// key of the pools.
fn query(r: &mut Reader<'_>) -> v1::Query {
    v1::Query {
        reply_to: address(r),
        timeout_ms: u32::from(r.below(4)) * 500,
        names: (0..r.below(3)).map(|_| name(r)).collect(),
        key: if r.bool() { format!("k{}", r.below(4)) } else { String::new() },
        value: r.bool().then(|| payload(r)),
    }
}

/// A write request between members of the pools: ids mostly small (0 breaks the rules).
fn write_request(r: &mut Reader<'_>) -> v1::WriteRequest {
    v1::WriteRequest {
        requester: Some(identity(r)),
        owner: name(r),
        id: u64::from(r.below(4)),
        key: format!("k{}", r.below(4)),
        value: payload(r),
        delete: r.bool(),
        relayed: r.bool(),
    }
}

/// A write outcome between members of the pools.
fn write_outcome(r: &mut Reader<'_>) -> v1::WriteOutcome {
    v1::WriteOutcome {
        requester: Some(identity(r)),
        id: u64::from(r.below(4)),
        owner: name(r),
        owner_generation: u64::from(r.below(4)),
        accepted: r.bool(),
        version: u64::from(r.below(8)),
        reason: if r.below(16) == 0 { "r".repeat(65) } else { String::new() },
        relayed: r.bool(),
    }
}

fn membership_update(r: &mut Reader<'_>) -> v1::MembershipUpdate {
    v1::MembershipUpdate {
        member: Some(identity(r)),
        incarnation: u32::from(r.below(8)),
        state: state(r),
        from: name(r),
    }
}

/// A whole envelope for a node configured with `config`: mostly the right protocol version
/// and cluster, a sender from the pools, a body, and up to three membership updates.
pub fn envelope(r: &mut Reader<'_>, config: &Config) -> v1::Envelope {
    let protocol_version = if r.below(32) == 0 { PROTOCOL_VERSION + 1 } else { PROTOCOL_VERSION };
    let cluster = if r.below(32) == 0 { "other".to_owned() } else { config.cluster.clone() };
    let sender = (r.below(16) != 0).then(|| identity(r));
    let body = body(r);
    let membership = (0..r.below(4)).map(|_| membership_update(r)).collect();
    // After everything else, so that inputs written before broadcasts existed keep their
    // meaning (a reader past its end gives zeros: no broadcast).
    let broadcasts = (0..r.below(3)).map(|_| user_broadcast(r)).collect();
    v1::Envelope { protocol_version, cluster, sender, body, membership, broadcasts }
}
