//! The fast path of decoding: the entries of a received delta, parsed straight from the
//! datagram when they are laid out plainly, their keys and values sliced from it.

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use super::decode::DecodedDelta;
use crate::delta::ReceivedEntry;
use crate::shared_entry::SharedEntry;

/// A delta being decoded: its entries (field 8) take the fast path.
#[derive(Debug)]
pub(super) struct DeltaMerge<'a>(pub(super) &'a mut DecodedDelta);

impl Message for DeltaMerge<'_> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.0.header.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let DecodedDelta { header, entries } = &mut *self.0;
        if tag != 8 {
            return header.merge_field(tag, wire_type, buf, ctx);
        }
        if wire_type == WireType::LengthDelimited && merge_plain_entry(entries, buf)? {
            return Ok(());
        }
        // Prost decodes (or refuses) what the fast path does not take.
        encoding::message::merge_repeated(wire_type, &mut header.entries, buf, ctx)?;
        entries.extend(header.entries.drain(..).map(ReceivedEntry::from));
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.0.header.encoded_len()
    }

    fn clear(&mut self) {
        self.0.header.clear();
        self.0.entries.clear();
    }
}

/// The tag-and-wire-type bytes of `Entry`'s fields and of `NodeDelta.entries`.
pub(super) const ENTRY_KEY: u8 = 1 << 3 | 2;
pub(super) const ENTRY_VALUE: u8 = 2 << 3 | 2;
pub(super) const ENTRY_VERSION: u8 = 3 << 3;
pub(super) const ENTRY_DELETED: u8 = 4 << 3;
pub(super) const DELTA_ENTRY: u8 = 8 << 3 | 2;

/// Decodes one length-delimited `Entry` (its length prefix first) from `buf` and pushes it,
/// if it is laid out plainly; returns `false`, having consumed nothing, when it is not, for
/// prost to decode it (or refuse it), and prost's error for a key that is not UTF-8.
fn merge_plain_entry(entries: &mut Vec<ReceivedEntry>, buf: &mut impl Buf) -> Result<bool, DecodeError> {
    let chunk = buf.chunk();
    let mut at = 0;
    let Some(len) = varint(chunk, &mut at).and_then(|len| usize::try_from(len).ok()) else {
        return Ok(false);
    };
    let start = at;
    let Some(end) = start.checked_add(len).filter(|&end| end <= chunk.len()) else { return Ok(false) };
    let (mut key, mut value) = (start..start, start..start);
    let (mut version, mut deleted) = (0, false);
    while at < end {
        let field = chunk[at];
        at += 1;
        match field {
            ENTRY_KEY | ENTRY_VALUE => {
                let Some(len) = varint(chunk, &mut at).and_then(|len| usize::try_from(len).ok()) else {
                    return Ok(false);
                };
                let Some(field_end) = at.checked_add(len).filter(|&field_end| field_end <= end) else {
                    return Ok(false);
                };
                if field == ENTRY_KEY {
                    // Prost checks every occurrence of a string, not only the one it keeps
                    // (the last, checked below).
                    if !key.is_empty() && std::str::from_utf8(&chunk[key.clone()]).is_err() {
                        return Ok(false);
                    }
                    key = at..field_end;
                } else {
                    value = at..field_end;
                }
                at = field_end;
            }
            ENTRY_VERSION => match varint(chunk, &mut at) {
                Some(v) => version = v,
                None => return Ok(false),
            },
            ENTRY_DELETED => match varint(chunk, &mut at) {
                Some(v) => deleted = v != 0,
                None => return Ok(false),
            },
            _ => return Ok(false),
        }
    }
    if at != end {
        return Ok(false);
    }
    if entries.is_empty() {
        entries.reserve(following_entries(&chunk[end..]) + 1);
    }
    // One slice from the first byte of the key or value to the last byte of the other (the
    // framing between them comes along): one reference count for the entry, not two.
    let span = match (key.is_empty(), value.is_empty()) {
        (false, false) => key.start.min(value.start)..key.end.max(value.end),
        (false, true) => key.clone(),
        (true, false) => value.clone(),
        (true, true) => start..start,
    };
    Buf::advance(buf, span.start);
    let bytes = if span.is_empty() { Bytes::new() } else { Buf::copy_to_bytes(buf, span.len()) };
    Buf::advance(buf, end - span.end);
    let local = |range: std::ops::Range<usize>| match range.is_empty() {
        true => 0..0,
        false => range.start - span.start..range.end - span.start,
    };
    // The ranges lie within the slice: only a key that is not UTF-8 is refused here.
    let Some(entry) = SharedEntry::from_parts(bytes, local(key), local(value)) else {
        return Err(not_utf8());
    };
    entries.push(ReceivedEntry { entry, version, deleted });
    Ok(true)
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
