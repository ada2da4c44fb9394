//! Packing by exact encoded size: every datagram the node builds fits
//! `Config::max_datagram_size`.

use gossip_proto::{PROTOCOL_VERSION, v1};
use prost::Message;

use crate::config::Config;

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
pub(crate) fn single_entry_datagram_len(config: &Config, key_len: usize, value_len: usize) -> usize {
    let long_name = "n".repeat(config.max_name_size);
    let address = v1::Address { ip: vec![0xff; 16].into(), port: u32::from(u16::MAX) };
    let delta = v1::NodeDelta {
        name: long_name.clone(),
        generation: u64::MAX,
        address: Some(address.clone()),
        from_version: u64::MAX,
        to_version: u64::MAX,
        gc_watermark: u64::MAX,
        reset: true,
        incarnation: u32::MAX,
        state: v1::MemberState::Left as i32,
        entries: vec![v1::Entry {
            key: "k".repeat(key_len),
            value: vec![0xff; value_len].into(),
            version: u64::MAX,
            deleted: true,
        }],
    };
    let envelope = v1::Envelope {
        protocol_version: PROTOCOL_VERSION,
        cluster: config.cluster.clone(),
        sender: Some(v1::NodeIdentity { name: long_name, generation: u64::MAX, address: Some(address) }),
        body: Some(v1::envelope::Body::Push(v1::Push { deltas: vec![delta], want_ack: true })),
        membership: Vec::new(),
    };
    envelope.encoded_len()
}
