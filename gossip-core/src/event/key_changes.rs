//! [`KeyChanges`]: the changed and deleted keys of one node's table that one received delta
//! brought, as one event.
//!
//! A full datagram applies dozens of entries. An event of its own for each cost a reference
//! count on the datagram (an atomic operation, and another to drop it) and a 112-byte event
//! written, moved and read per entry: a third of the time a node spent on such a datagram,
//! events drained. A `KeyChanges` holds one handle on the datagram for all of its entries
//! and 32 bytes per entry (where its key and value lie); the application reads them in
//! place, and takes a handle of its own ([`KeyChange::entry`]) only for those it keeps.

use std::fmt;

use bytes::Bytes;

use crate::shared_entry::{EntrySpans, SharedEntry, same_buffer};

/// Keys of one node's table that changed or were deleted, in the order they were applied
/// (increasing versions, except that the end of a replica's rebuild lists the deletions it
/// found first): what [`Event::KeysChanged`](crate::Event::KeysChanged) carries.
///
/// Iterate it (`for change in &changes`) to read each [`KeyChange`] in place: its key and
/// value borrow the datagram they arrived in, which the batch keeps alive.
#[derive(Clone, Default)]
pub struct KeyChanges {
    source: Bytes,
    items: Vec<KeyItem>,
    /// The first change not dropped (see `skip`).
    start: usize,
}

/// Where one change's key and value lie in the batch's buffer, and its version. A deletion's
/// value span is not read (its sender may have sent a value anyway).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyItem {
    spans: EntrySpans,
    version: u64,
    deleted: bool,
}

/// One changed or deleted key, read in place (see [`KeyChanges`]).
#[derive(Clone, Copy)]
pub struct KeyChange<'a> {
    source: &'a Bytes,
    item: KeyItem,
}

impl KeyChanges {
    /// An empty batch for entries that lie in `source`, filling `items` (an empty vector with
    /// room for them).
    pub(crate) fn new(source: Bytes, items: Vec<KeyItem>) -> Self {
        Self { source, items, start: 0 }
    }

    /// Adds the change whose key and value lie at `spans` in `source`, at `version` (a
    /// deletion when `deleted`); `false`, adding nothing, when `source` is another buffer than
    /// the batch's (an empty batch takes it on instead).
    #[inline]
    pub(crate) fn push(&mut self, source: &Bytes, spans: EntrySpans, version: u64, deleted: bool) -> bool {
        if !same_buffer(&self.source, source) {
            if !self.items.is_empty() {
                return false;
            }
            self.source = source.clone();
        }
        self.items.push(KeyItem { spans, version, deleted });
        true
    }

    /// Drops the oldest `count` changes (a full event queue makes room so).
    pub(crate) fn skip(&mut self, count: usize) {
        self.start = self.start.saturating_add(count).min(self.items.len());
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.items.len() - self.start
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The changes, in order.
    pub fn iter(&self) -> KeyChangesIter<'_> {
        KeyChangesIter {
            source: &self.source,
            items: self.items.get(self.start..).unwrap_or_default().iter(),
        }
    }
}

impl<'a> IntoIterator for &'a KeyChanges {
    type Item = KeyChange<'a>;
    type IntoIter = KeyChangesIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The changes of a [`KeyChanges`], in order ([`KeyChanges::iter`]).
#[derive(Clone)]
pub struct KeyChangesIter<'a> {
    source: &'a Bytes,
    items: std::slice::Iter<'a, KeyItem>,
}

impl<'a> Iterator for KeyChangesIter<'a> {
    type Item = KeyChange<'a>;

    fn next(&mut self) -> Option<KeyChange<'a>> {
        self.items.next().map(|&item| KeyChange { source: self.source, item })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl ExactSizeIterator for KeyChangesIter<'_> {}

impl DoubleEndedIterator for KeyChangesIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.items.next_back().map(|&item| KeyChange { source: self.source, item })
    }
}

impl fmt::Debug for KeyChangesIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyChangesIter").field("left", &self.items.len()).finish()
    }
}

impl<'a> KeyChange<'a> {
    /// The key.
    pub fn key(&self) -> &'a str {
        // Checked UTF-8 when it was decoded; checked again (no `unsafe` in this crate).
        std::str::from_utf8(self.key_bytes()).unwrap_or_default()
    }

    /// The key's bytes (UTF-8), without checking them again.
    pub fn key_bytes(&self) -> &'a [u8] {
        self.source.get(self.item.spans.key()).unwrap_or_default()
    }

    /// The new value; `None` when the key was deleted.
    pub fn value(&self) -> Option<&'a [u8]> {
        match self.item.deleted {
            true => None,
            false => Some(self.source.get(self.item.spans.value()).unwrap_or_default()),
        }
    }

    /// The owner's version of this write (or of the deletion's tombstone).
    pub fn version(&self) -> u64 {
        self.item.version
    }

    /// Whether the key was deleted.
    pub fn is_deleted(&self) -> bool {
        self.item.deleted
    }

    /// The key and its new value as a handle of their own, to keep (a reference count on the
    /// datagram, no copy); a deleted key's value is empty.
    pub fn entry(&self) -> SharedEntry {
        SharedEntry::from_spans(self.source, self.item.spans.read_as(self.item.deleted))
    }
}

impl PartialEq for KeyChanges {
    /// Change by change: key, value, version and deletion (where they are held does not
    /// matter).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl PartialEq for KeyChange<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.key_bytes(), self.value(), self.version())
            == (other.key_bytes(), other.value(), other.version())
    }
}

impl fmt::Debug for KeyChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for KeyChange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut change = f.debug_struct("KeyChange");
        change.field("key", &self.key()).field("version", &self.version());
        match self.value() {
            Some(value) => change.field("value", &Bytes::copy_from_slice(value)),
            None => change.field("deleted", &true),
        };
        change.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two plain entries side by side, as in a datagram, and where they lie.
    fn datagram() -> (Bytes, EntrySpans, EntrySpans) {
        let source = Bytes::from_static(b"\x0a\x03one\x12\x01a\x0a\x03two\x12\x01b");
        let one = EntrySpans::new(2..5, 7..8).expect("small");
        let two = EntrySpans::new(10..13, 15..16).expect("small");
        (source, one, two)
    }

    fn read(changes: &KeyChanges) -> Vec<(&str, Option<&[u8]>, u64)> {
        changes.iter().map(|change| (change.key(), change.value(), change.version())).collect()
    }

    /// Entries of the buffer are read back in order, in place, deletions without a value; an
    /// owned handle gives the same key and value.
    #[test]
    fn changes_read_back_the_entries_that_were_pushed() {
        let (source, one, two) = datagram();
        let mut changes = KeyChanges::new(source.clone(), Vec::new());
        assert!(changes.push(&source, one, 1, false));
        assert!(changes.push(&source, two.without_value(), 2, true));
        assert_eq!(read(&changes), [("one", Some(&b"a"[..]), 1), ("two", None, 2)]);
        let first = changes.iter().next().expect("one change");
        assert_eq!(first.entry(), SharedEntry::new("one", b"a"));
        assert!(!first.is_deleted());
        assert_eq!(changes.iter().len(), 2);
        assert_eq!((&changes).into_iter().count(), 2);
    }

    /// An entry of another buffer is refused once the batch holds changes (the caller starts
    /// a batch of its own for it); an empty batch takes the other buffer on.
    #[test]
    fn an_entry_from_another_buffer_goes_in_a_batch_of_its_own() {
        let (source, one, _) = datagram();
        let elsewhere = SharedEntry::new("two", b"b");
        let mut changes = KeyChanges::new(source.clone(), Vec::new());
        assert!(changes.push(&source, one, 1, false));
        assert!(!changes.push(elsewhere.buffer(), elsewhere.spans(), 2, false));
        assert_eq!(read(&changes), [("one", Some(&b"a"[..]), 1)]);
        let mut fresh = KeyChanges::new(source, Vec::new());
        assert!(fresh.push(elsewhere.buffer(), elsewhere.spans(), 2, false));
        assert_eq!(read(&fresh), [("two", Some(&b"b"[..]), 2)]);
    }

    /// Skipping drops the oldest changes. Equality is by content, wherever it is held.
    #[test]
    fn skipping_drops_the_oldest_and_equality_is_by_content() {
        let (source, one, two) = datagram();
        let mut changes = KeyChanges::new(source.clone(), Vec::new());
        assert!(changes.push(&source, one, 1, false) && changes.push(&source, two, 2, false));
        changes.skip(1);
        assert_eq!(read(&changes), [("two", Some(&b"b"[..]), 2)]);
        let alone = |version| {
            let entry = SharedEntry::new("two", b"b");
            let mut batch = KeyChanges::default();
            assert!(batch.push(entry.buffer(), entry.spans(), version, false));
            batch
        };
        assert_eq!(changes, alone(2));
        assert_ne!(changes, alone(3), "another version");
        changes.skip(5);
        assert!(changes.is_empty());
    }
}
