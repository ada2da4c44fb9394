//! Received digest entries, decoded without an allocation per name.
//!
//! A `Syn` carries a digest entry per node it names, about 70 in a full datagram, and
//! prost's `v1::DigestEntry` holds each name in a `String` of its own: an allocation, a copy
//! and a free per entry, the largest part of decoding in a real 1,000-node cluster's profile.
//! [`ReceivedDigestEntry`] holds the name inline (up to 23 bytes, as the node table does)
//! and is decoded field by field exactly as prost decodes `v1::DigestEntry`.

use bytes::{Buf, BufMut};
use gossip_proto::v1;
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};
use smol_str::SmolStr;

/// A digest entry as received: `v1::DigestEntry` with its name inline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReceivedDigestEntry {
    pub(crate) name: SmolStr,
    pub(crate) generation: u64,
    pub(crate) max_version: u64,
    pub(crate) gc_watermark: u64,
    pub(crate) unknown: bool,
    pub(crate) incarnation: u32,
    /// As on the wire (see `v1::MemberState`): unknown values are kept, as prost keeps them.
    pub(crate) state: i32,
}

impl From<v1::DigestEntry> for ReceivedDigestEntry {
    fn from(entry: v1::DigestEntry) -> Self {
        Self {
            name: SmolStr::from(entry.name),
            generation: entry.generation,
            max_version: entry.max_version,
            gc_watermark: entry.gc_watermark,
            unknown: entry.unknown,
            incarnation: entry.incarnation,
            state: entry.state,
        }
    }
}

impl From<&ReceivedDigestEntry> for v1::DigestEntry {
    fn from(entry: &ReceivedDigestEntry) -> Self {
        Self {
            name: entry.name.to_string(),
            generation: entry.generation,
            max_version: entry.max_version,
            gc_watermark: entry.gc_watermark,
            unknown: entry.unknown,
            incarnation: entry.incarnation,
            state: entry.state,
        }
    }
}

impl Message for ReceivedDigestEntry {
    /// As `v1::DigestEntry` encodes (never on a hot path: received entries are not sent).
    fn encode_raw(&self, buf: &mut impl BufMut) {
        v1::DigestEntry::from(self).encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => merge_name(&mut self.name, wire_type, buf, ctx),
            2 => encoding::uint64::merge(wire_type, &mut self.generation, buf, ctx),
            3 => encoding::uint64::merge(wire_type, &mut self.max_version, buf, ctx),
            4 => encoding::uint64::merge(wire_type, &mut self.gc_watermark, buf, ctx),
            5 => encoding::bool::merge(wire_type, &mut self.unknown, buf, ctx),
            6 => encoding::uint32::merge(wire_type, &mut self.incarnation, buf, ctx),
            7 => encoding::int32::merge(wire_type, &mut self.state, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        v1::DigestEntry::from(self).encoded_len()
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Merges a `string` field into `name`: read in place when its length is one byte (names are
/// at most 64 bytes) and it lies in the buffer's current chunk as valid UTF-8; anything else
/// goes through prost's own `string::merge`, which decides (errors included).
fn merge_name(
    name: &mut SmolStr,
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    let plain = match buf.chunk().split_first() {
        Some((&len, rest)) if wire_type == WireType::LengthDelimited && len < 0x80 => {
            rest.get(..usize::from(len)).and_then(|text| std::str::from_utf8(text).ok()).map(SmolStr::new)
        }
        _ => None,
    };
    if let Some(plain) = plain {
        buf.advance(1 + plain.len());
        *name = plain;
        return Ok(());
    }
    let mut owned = String::new();
    let merged = encoding::string::merge(wire_type, &mut owned, buf, ctx);
    *name = SmolStr::from(owned);
    merged
}
