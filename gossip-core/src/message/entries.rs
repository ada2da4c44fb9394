//! The fast path of decoding: the entries of a received delta, parsed straight from the
//! datagram when they are laid out plainly, and located in it (no copy, no handle).

use std::ops::Range;

use bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use super::decode::DecodedDelta;
use crate::delta::ReceivedEntry;
use crate::shared_entry::EntrySpans;

/// Where the datagram being decoded lies in memory: the plain entries are located by their
/// offset in it. Addresses only: never read through.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Base {
    start: usize,
    len: usize,
}

impl Base {
    pub(super) fn of(datagram: &[u8]) -> Self {
        Self { start: datagram.as_ptr() as usize, len: datagram.len() }
    }

    /// Where `chunk` starts in the datagram, if it lies within it.
    fn offset_of(self, chunk: &[u8]) -> Option<usize> {
        let offset = (chunk.as_ptr() as usize).checked_sub(self.start)?;
        (offset.checked_add(chunk.len())? <= self.len).then_some(offset)
    }
}

/// A delta being decoded from the datagram at `base`: its entries (field 8) take the fast
/// path.
#[derive(Debug)]
pub(super) struct DeltaMerge<'a> {
    pub(super) delta: &'a mut DecodedDelta,
    pub(super) base: Base,
}

impl Message for DeltaMerge<'_> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.delta.header.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let delta = &mut *self.delta;
        if tag != 8 {
            return delta.header.merge_field(tag, wire_type, buf, ctx);
        }
        if wire_type == WireType::LengthDelimited && merge_plain_entry(&mut delta.entries, buf, self.base)? {
            return Ok(());
        }
        // Prost decodes (or refuses) what the fast path does not take.
        let mut entries = std::mem::take(&mut delta.header.entries);
        encoding::message::merge_repeated(wire_type, &mut entries, buf, ctx)?;
        for entry in entries.drain(..) {
            delta.push_own(&entry);
        }
        delta.header.entries = entries;
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.delta.header.encoded_len()
    }

    fn clear(&mut self) {
        self.delta.header.clear();
        self.delta.entries.clear();
        self.delta.own.clear();
    }
}

/// The tag-and-wire-type bytes of `Entry`'s fields and of `NodeDelta.entries`.
pub(super) const ENTRY_KEY: u8 = 1 << 3 | 2;
pub(super) const ENTRY_VALUE: u8 = 2 << 3 | 2;
pub(super) const ENTRY_VERSION: u8 = 3 << 3;
pub(super) const ENTRY_DELETED: u8 = 4 << 3;
pub(super) const DELTA_ENTRY: u8 = 8 << 3 | 2;

/// Decodes one length-delimited `Entry` (its length prefix first) from `buf` and pushes it,
/// with where its key and value lie in the datagram at `base`, if it is laid out plainly;
/// returns `false`, having consumed nothing, when it is not (or `buf` is not the datagram),
/// for prost to decode it (or refuse it), and prost's error for a key that is not UTF-8.
fn merge_plain_entry(
    entries: &mut Vec<ReceivedEntry>,
    buf: &mut impl Buf,
    base: Base,
) -> Result<bool, DecodeError> {
    let chunk = buf.chunk();
    let Some(offset) = base.offset_of(chunk) else { return Ok(false) };
    let mut at = 0;
    let Some(len) = varint(chunk, &mut at).and_then(|len| usize::try_from(len).ok()) else {
        return Ok(false);
    };
    let start = at;
    let Some(end) = start.checked_add(len).filter(|&end| end <= chunk.len()) else { return Ok(false) };
    let Some(Fields { key, value, version, deleted }) =
        canonical_fields(chunk, start, end).or_else(|| plain_fields(chunk, start, end))
    else {
        return Ok(false);
    };
    // Most keys are ASCII: a few word-wide checks, not a call.
    let key_bytes = chunk.get(key.clone()).unwrap_or_default();
    if !key_bytes.is_ascii() && std::str::from_utf8(key_bytes).is_err() {
        return Err(not_utf8());
    }
    let located = |range: Range<usize>| range.start + offset..range.end + offset;
    let Some(spans) = EntrySpans::new(located(key), located(value)) else { return Ok(false) };
    if entries.is_empty() {
        entries.reserve(following_entries(&chunk[end..]) + 1);
    }
    Buf::advance(buf, end);
    entries.push(ReceivedEntry { spans, version, deleted, own: false });
    Ok(true)
}

/// The fields of an entry.
struct Fields {
    key: Range<usize>,
    value: Range<usize>,
    version: u64,
    deleted: bool,
}

/// The fields of the entry at `chunk[start..end]` when they come as an encoder following the
/// schema writes them (prost, and every protobuf library): each at most once, in field order.
/// Straight-line code whose branches go the same way entry after entry: the general loop's
/// dispatch on each field was a third of the time decoding took.
#[inline]
fn canonical_fields(chunk: &[u8], start: usize, end: usize) -> Option<Fields> {
    let mut fields = Fields { key: start..start, value: start..start, version: 0, deleted: false };
    let mut at = start;
    let next_is = |at: usize, field: u8| at < end && chunk.get(at) == Some(&field);
    if next_is(at, ENTRY_KEY) {
        fields.key = length_delimited(chunk, at + 1, end)?;
        at = fields.key.end;
    }
    if next_is(at, ENTRY_VALUE) {
        fields.value = length_delimited(chunk, at + 1, end)?;
        at = fields.value.end;
    }
    if next_is(at, ENTRY_VERSION) {
        at += 1;
        fields.version = varint(chunk, &mut at)?;
    }
    if next_is(at, ENTRY_DELETED) {
        at += 1;
        fields.deleted = varint(chunk, &mut at)? != 0;
    }
    (at == end).then_some(fields)
}

/// The fields of the entry at `chunk[start..end]`, in any order and repeated (the last one
/// counts), as long as they are the four known ones with well-formed lengths and varints.
fn plain_fields(chunk: &[u8], start: usize, end: usize) -> Option<Fields> {
    let mut fields = Fields { key: start..start, value: start..start, version: 0, deleted: false };
    let mut at = start;
    while at < end {
        let field = *chunk.get(at)?;
        match field {
            ENTRY_KEY => {
                // Prost checks every occurrence of a string, not only the one it keeps (the
                // last, checked by the caller).
                if !fields.key.is_empty() {
                    std::str::from_utf8(chunk.get(fields.key.clone())?).ok()?;
                }
                fields.key = length_delimited(chunk, at + 1, end)?;
                at = fields.key.end;
            }
            ENTRY_VALUE => {
                fields.value = length_delimited(chunk, at + 1, end)?;
                at = fields.value.end;
            }
            ENTRY_VERSION => {
                at += 1;
                fields.version = varint(chunk, &mut at)?;
            }
            ENTRY_DELETED => {
                at += 1;
                fields.deleted = varint(chunk, &mut at)? != 0;
            }
            _ => return None,
        }
    }
    (at == end).then_some(fields)
}

/// The bytes of a length-delimited field whose length prefix starts at `chunk[at]`, if they
/// end by `end`.
#[inline]
fn length_delimited(chunk: &[u8], mut at: usize, end: usize) -> Option<Range<usize>> {
    let len = usize::try_from(varint(chunk, &mut at)?).ok()?;
    let field_end = at.checked_add(len).filter(|&field_end| field_end <= end)?;
    Some(at..field_end)
}

/// Prost's own error for a string field that is not UTF-8.
fn not_utf8() -> DecodeError {
    loop {
        // `0xff` starts no UTF-8 text: the first round returns.
        let mut text = String::new();
        let field = &mut &[1, 0xff][..];
        if let Err(error) =
            encoding::string::merge(WireType::LengthDelimited, &mut text, field, DecodeContext::default())
        {
            return error;
        }
    }
}

/// How many length-delimited fields tagged as `NodeDelta.entries` follow one another at the
/// start of `bytes` (to size the entries' vector once; a guess that is never too low for a
/// plain delta and never above what `bytes` could hold).
fn following_entries(bytes: &[u8]) -> usize {
    let (mut count, mut at) = (0, 0);
    while bytes.get(at) == Some(&DELTA_ENTRY) {
        at += 1;
        match varint(bytes, &mut at).and_then(|len| usize::try_from(len).ok()) {
            Some(len) if len <= bytes.len() - at => at += len,
            _ => break,
        }
        count += 1;
    }
    count
}

/// A varint as prost reads it (at most 10 bytes, the last one at most 1), from `bytes[*at..]`;
/// advances `at` past it.
#[inline]
fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    if let Some(&byte) = bytes.get(*at).filter(|&&byte| byte < 0x80) {
        *at += 1;
        return Some(u64::from(byte));
    }
    let mut value = 0;
    for i in 0..10 {
        let byte = *bytes.get(*at + i)?;
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *at += i + 1;
            return Some(value);
        }
    }
    None
}
