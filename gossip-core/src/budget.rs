//! Packing by exact encoded size: every datagram the node builds fits
//! `Config::max_datagram_size`.

use gossip_proto::{PROTOCOL_VERSION, v1};
use prost::Message;

/// What bounds the fixed part of any envelope: the cluster id every datagram carries and the
/// longest node name allowed. (Plain values, so that this module does not depend on
/// `Config`, which validates itself with it.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnvelopeBounds<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) max_name_size: usize,
}

/// Extra bytes the body's length prefix may take once the body grows from empty to full
/// (a varint length of up to 65,535 takes at most 3 bytes; the empty body's takes 1).
const BODY_PREFIX_GROWTH: usize = 2;

/// What a repeated message field costs for one element of `len` bytes (field numbers below
/// 16 take a one-byte key).
pub(crate) fn field_len(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

/// Bytes left in one datagram for the elements of the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    remaining: usize,
}

impl Budget {
    /// The room left in a datagram of `max` bytes whose envelope with an empty body encodes
    /// to `base` bytes.
    pub(crate) fn new(max: usize, base: usize) -> Self {
        Self { remaining: max.saturating_sub(base + BODY_PREFIX_GROWTH) }
    }

    /// Bytes still free.
    pub(crate) fn remaining(&self) -> usize {
        self.remaining
    }

    /// Takes `len` bytes if they are free.
    pub(crate) fn take(&mut self, len: usize) -> bool {
        if len <= self.remaining {
            self.remaining -= len;
            true
        } else {
            false
        }
    }

    /// A budget limited to `share` of what is left (for keeping room for a later part).
    pub(crate) fn share(&self, numerator: usize, denominator: usize) -> Self {
        Self { remaining: self.remaining * numerator / denominator }
    }

    /// Gives back the unused part of a budget made by [`Budget::share`].
    pub(crate) fn settle(&mut self, share_before: usize, share_after: usize) {
        self.remaining -= share_before - share_after;
    }
}

/// The encoded size of the largest datagram that carries one entry with a key and a value
/// of these sizes, with the longest names and numbers the config allows.
pub(crate) fn single_entry_datagram_len(
    bounds: EnvelopeBounds<'_>,
    key_len: usize,
    value_len: usize,
) -> usize {
    let delta = v1::NodeDelta {
        name: "n".repeat(bounds.max_name_size),
        generation: u64::MAX,
        address: Some(widest_address()),
        from_version: u64::MAX,
        to_version: u64::MAX,
        gc_watermark: u64::MAX,
        reset: true,
        incarnation: u32::MAX,
        state: v1::MemberState::Left as i32,
        sender_max_version: u64::MAX,
        entries: vec![v1::Entry {
            key: "k".repeat(key_len),
            value: vec![0xff; value_len].into(),
            version: u64::MAX,
            deleted: true,
        }],
    };
    widest_envelope(
        bounds,
        v1::envelope::Body::Push(v1::Push {
            deltas: vec![delta],
            want_ack: true,
            summary: None,
            data_summary: None,
        }),
    )
    .encoded_len()
}

/// The encoded size of the largest aggregation transfer: `max_aggregates` aggregates, each
/// with a name of `max_name_size` bytes and every field set.
pub(crate) fn full_transfer_datagram_len(
    bounds: EnvelopeBounds<'_>,
    max_aggregates: usize,
    max_name_size: usize,
) -> usize {
    let share = v1::AggregateShare {
        name: "a".repeat(max_name_size),
        average_value: f64::MAX,
        average_weight: f64::MAX,
        sum_value: f64::MAX,
        count_value: f64::MAX,
        total_weight: f64::MAX,
        min: Some(f64::MIN),
        max: Some(f64::MAX),
    };
    let transfer =
        v1::AggregateTransfer { epoch: u64::MAX, sequence: u64::MAX, shares: vec![share; max_aggregates] };
    widest_envelope(bounds, v1::envelope::Body::AggregateTransfer(transfer)).encoded_len()
}

/// The encoded size of a `Gossip` datagram carrying one application broadcast of the longest
/// origin name, a topic of `topic` bytes, a payload of `payload` bytes and `query` (for a
/// query), from the widest sender: an application message of that size fits any datagram
/// this one fits.
pub(crate) fn broadcast_datagram_len(
    bounds: EnvelopeBounds<'_>,
    topic: usize,
    payload: usize,
    query: Option<v1::Query>,
) -> usize {
    let mut envelope = widest_envelope(bounds, v1::envelope::Body::Gossip(v1::Gossip {}));
    envelope.broadcasts.push(v1::UserBroadcast {
        origin: "n".repeat(bounds.max_name_size),
        generation: u64::MAX,
        id: u64::MAX,
        topic: "t".repeat(topic),
        payload: vec![0xff; payload].into(),
        latest: true,
        query,
    });
    envelope.encoded_len()
}

fn widest_address() -> v1::Address {
    v1::Address { ip: vec![0xff; 16].into(), port: u32::from(u16::MAX) }
}

/// An envelope around `body` from a sender with the longest name and numbers allowed.
fn widest_envelope(bounds: EnvelopeBounds<'_>, body: v1::envelope::Body) -> v1::Envelope {
    v1::Envelope {
        protocol_version: PROTOCOL_VERSION,
        cluster: bounds.cluster.to_owned(),
        sender: Some(v1::NodeIdentity {
            name: "n".repeat(bounds.max_name_size),
            generation: u64::MAX,
            address: Some(widest_address()),
        }),
        body: Some(body),
        membership: Vec::new(),
        broadcasts: Vec::new(),
    }
}
