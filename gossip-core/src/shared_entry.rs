//! [`SharedEntry`]: a key and its value in one cheap-to-clone handle.

use std::fmt;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::shared_str::SharedStr;

/// A key and its value, held as one reference-counted handle on the buffer they lie in:
/// usually the datagram they arrived in, where the key, the value and the few bytes of
/// framing between them lie side by side.
///
/// It is what [`KeyChange::entry`](crate::KeyChange::entry) and
/// [`Node::get_entry`](crate::Node::get_entry) give to keep a key and its value without
/// copying them: one reference count (an atomic operation), not two for a string and a byte
/// buffer of their own. A node itself stores no handle per entry: each buffer once per table.
///
/// The key is checked UTF-8 when the handle is made; [`key`](Self::key) checks it again on
/// each call (a few nanoseconds for a short key), as the crate uses no `unsafe` code.
#[derive(Clone, Default)]
pub struct SharedEntry {
    bytes: Bytes,
    key: Span,
    value: Span,
}

/// Where an entry's key and value lie in a buffer: 16 bytes instead of a handle's 48, and no
/// reference count. The decoder, the stored entries and the key events hold these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EntrySpans {
    key: Span,
    value: Span,
}

impl EntrySpans {
    /// The spans of `key` and `value` (`None` past 4 GiB).
    pub(crate) fn new(key: Range<usize>, value: Range<usize>) -> Option<Self> {
        Some(Self { key: Span::of(key)?, value: Span::of(value)? })
    }

    /// An empty value at the end of the key (what a tombstone keeps).
    pub(crate) fn without_value(self) -> Self {
        let end = self.key.end;
        Self { key: self.key, value: Span { start: end, end } }
    }

    /// The spans as read: a deletion's value is empty, whatever its sender sent (the value
    /// span is kept as received, and emptied only here).
    pub(crate) fn read_as(self, deleted: bool) -> Self {
        if deleted { self.without_value() } else { self }
    }

    /// The key's range in the buffer.
    pub(crate) fn key(self) -> Range<usize> {
        self.key.range()
    }

    /// The value's range in the buffer.
    pub(crate) fn value(self) -> Range<usize> {
        self.value.range()
    }
}

/// A range of `SharedEntry::bytes`, in 8 bytes rather than a `Range<usize>`'s 16.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn of(range: Range<usize>) -> Option<Self> {
        Some(Self { start: u32::try_from(range.start).ok()?, end: u32::try_from(range.end).ok()? })
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

impl SharedEntry {
    /// A handle over `key` and `value` copied side by side into one new buffer (empty if
    /// they are 4 GiB or more together, which no config allows).
    pub fn new(key: &str, value: &[u8]) -> Self {
        let mut buffer = BytesMut::with_capacity(key.len() + value.len());
        buffer.put_slice(key.as_bytes());
        buffer.put_slice(value);
        let key_end = key.len();
        Self::from_parts(buffer.freeze(), 0..key_end, key_end..key_end + value.len()).unwrap_or_default()
    }

    /// A handle over `bytes`, whose `key` range must be UTF-8 and whose ranges must lie
    /// within it; `None` otherwise (or when `bytes` is over 4 GiB).
    pub(crate) fn from_parts(bytes: Bytes, key: Range<usize>, value: Range<usize>) -> Option<Self> {
        std::str::from_utf8(bytes.get(key.clone())?).ok()?;
        bytes.get(value.clone())?;
        Some(Self { key: Span::of(key)?, value: Span::of(value)?, bytes })
    }

    /// The key.
    pub fn key(&self) -> &str {
        // Checked when the handle was made: the fallback is never taken.
        std::str::from_utf8(self.key_bytes()).unwrap_or_default()
    }

    /// The key's bytes (UTF-8), without checking them again.
    pub fn key_bytes(&self) -> &[u8] {
        self.bytes.get(self.key.range()).unwrap_or_default()
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        self.bytes.get(self.value.range()).unwrap_or_default()
    }

    /// The key as a handle of its own (a slice of the same buffer: no copy).
    pub fn shared_key(&self) -> SharedStr {
        SharedStr::from_utf8(self.bytes.slice(self.key.range())).unwrap_or_default()
    }

    /// The value as a handle of its own (a slice of the same buffer: no copy).
    pub fn shared_value(&self) -> Bytes {
        self.bytes.slice(self.value.range())
    }

    /// The buffer the key and value lie in.
    pub(crate) fn buffer(&self) -> &Bytes {
        &self.bytes
    }

    /// Where the key and value lie in [`buffer`](Self::buffer).
    pub(crate) fn spans(&self) -> EntrySpans {
        EntrySpans { key: self.key, value: self.value }
    }

    /// The entry whose key and value lie at `spans` in `source`, as a handle on `source` (an
    /// empty entry if `spans` do not lie within it). The caller checked the key's UTF-8 (the
    /// decoder does).
    pub(crate) fn from_spans(source: &Bytes, spans: EntrySpans) -> Self {
        if source.get(spans.key.range()).is_none() || source.get(spans.value.range()).is_none() {
            return Self::default();
        }
        Self { bytes: source.clone(), key: spans.key, value: spans.value }
    }
}

/// Whether `a` and `b` are the same bytes of the same buffer (addresses compared only).
pub(crate) fn same_buffer(a: &Bytes, b: &Bytes) -> bool {
    a.as_ptr() == b.as_ptr() && a.len() == b.len()
}

impl PartialEq for SharedEntry {
    /// By key and value (where they are held does not matter).
    fn eq(&self, other: &Self) -> bool {
        self.key_bytes() == other.key_bytes() && self.value() == other.value()
    }
}

impl Eq for SharedEntry {}

impl fmt::Debug for SharedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedEntry")
            .field("key", &self.key())
            .field("value", &Bytes::copy_from_slice(self.value()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_handle_gives_back_its_key_and_value() {
        let entry = SharedEntry::new("color", b"blue");
        assert_eq!((entry.key(), entry.value()), ("color", &b"blue"[..]));
        assert_eq!(entry.shared_key(), "color");
        assert_eq!(entry.shared_value(), Bytes::from_static(b"blue"));
        assert_eq!(entry, SharedEntry::new("color", b"blue"));
        assert_ne!(entry, SharedEntry::new("color", b"red"));
        let tombstone = SharedEntry::from_spans(entry.buffer(), entry.spans().without_value());
        assert_eq!((tombstone.key(), tombstone.value()), ("color", &b""[..]));
    }

    #[test]
    fn parts_of_a_shared_buffer_are_checked() {
        // Framing between the key and the value, as in a datagram.
        let buffer = Bytes::from_static(b"\x0a\x03key\x12\x05value");
        let entry = SharedEntry::from_parts(buffer.clone(), 2..5, 7..12).expect("valid");
        assert_eq!((entry.key(), entry.value()), ("key", &b"value"[..]));
        assert!(SharedEntry::from_parts(buffer.clone(), 2..13, 7..12).is_none(), "out of bounds");
        assert!(SharedEntry::from_parts(Bytes::from_static(b"\xff\x01"), 0..1, 1..2).is_none(), "not UTF-8");
    }
}
