//! A small table of live entries stored in one buffer of its own.
//!
//! Most replicas hold a few keys (a node's load, its role), and a node holds one replica per
//! member: 10,000 nodes know 10^8 replicas in the simulator. Stored as the general table
//! ([`ReplicaData`](super::store::ReplicaData): a log, the buffers it holds, an index, the
//! bookkeeping of tombstones and resets), a replica of one key cost about 400 bytes, the
//! datagram its entry arrived in, kept alive for a few bytes of it, the largest part.
//!
//! A compact table copies its entries into one exact-sized buffer, each behind a 16-byte
//! header (its version, then its key's and its value's lengths), and builds the buffer again
//! on every change: a few allocations and copies of at most [`MAX_BYTES`] bytes. It takes
//! live entries only, at most [`MAX_KEYS`] of them; a tombstone, a reset, a larger table or the
//! owner's own writes turn it into the general table, which holds its buffer as it is. A
//! general table becomes compact again when its tombstones are collected, if it can.

use std::time::Instant;

use bytes::Bytes;

use super::EntryRef;
use crate::shared_entry::EntrySpans;

/// Most keys a compact table holds (the general table scans its log up to as many).
pub(super) const MAX_KEYS: usize = super::store::SCAN_UP_TO;

/// Most bytes of a compact table's buffer, headers included: larger values would be copied at
/// length on every change of the table, where the general table holds their datagram as is.
pub(super) const MAX_BYTES: usize = 512;

/// The header of each entry: version (8 bytes), key length and value length (4 each), little
/// endian.
const HEADER: usize = 16;

/// A small table of live entries and its recent-change bookkeeping.
#[derive(Debug, Clone, Default)]
pub(super) struct CompactData {
    /// The entries in version order, each key once.
    pub(super) bytes: Bytes,
    /// How many entries `bytes` holds.
    pub(super) len: u32,
    /// As `ReplicaData::last_changed`.
    pub(super) last_changed: Option<Instant>,
    /// As `ReplicaData::recent_base`.
    pub(super) recent_base: u64,
}

/// An entry about to be stored: its version, key and value.
pub(super) type News<'a> = (u64, &'a [u8], &'a [u8]);

impl CompactData {
    /// The entries, in version order.
    pub(super) fn iter(&self) -> Iter<'_> {
        Iter { bytes: &self.bytes, at: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    /// The entry of `key`, with its version.
    pub(super) fn lookup(&self, key: &[u8]) -> Option<(EntryRef<'_>, u64)> {
        self.iter().find(|(_, entry)| entry.key_bytes() == key).map(|(version, entry)| (entry, version))
    }

    /// Replaces the entries with the held ones `news` does not overwrite, followed by `news`
    /// (in version order, every version above the held ones; a key twice keeps its last).
    /// Returns false, leaving the table as it was, if the result would hold more than
    /// `limit` (at most [`MAX_KEYS`]) entries or [`MAX_BYTES`] bytes.
    pub(super) fn store<'a>(&mut self, news: impl Iterator<Item = News<'a>> + Clone, limit: usize) -> bool {
        let limit = limit.min(MAX_KEYS);
        if news.clone().nth(limit).is_some() {
            return false;
        }
        let overwritten =
            |key: &[u8], after: usize| news.clone().skip(after).any(|(_, other, _)| other == key);
        let kept = || self.iter().filter(|(_, entry)| !overwritten(entry.key_bytes(), 0));
        let added = || {
            news.clone()
                .enumerate()
                .filter(|(at, (_, key, _))| !overwritten(key, at + 1))
                .map(|(_, news)| news)
        };
        let size = |key: &[u8], value: &[u8]| HEADER + key.len() + value.len();
        let count = kept().count() + added().count();
        let bytes = kept().map(|(_, entry)| size(entry.key_bytes(), entry.value())).sum::<usize>()
            + added().map(|(_, key, value)| size(key, value)).sum::<usize>();
        if count > limit || bytes > MAX_BYTES {
            return false;
        }
        let mut buffer = Vec::with_capacity(bytes);
        let mut put = |version: u64, key: &[u8], value: &[u8]| {
            buffer.extend_from_slice(&version.to_le_bytes());
            // Both below MAX_BYTES.
            buffer.extend_from_slice(&(key.len() as u32).to_le_bytes());
            buffer.extend_from_slice(&(value.len() as u32).to_le_bytes());
            buffer.extend_from_slice(key);
            buffer.extend_from_slice(value);
        };
        kept().for_each(|(version, entry)| put(version, entry.key_bytes(), entry.value()));
        added().for_each(|(version, key, value)| put(version, key, value));
        self.bytes = Bytes::from(buffer);
        // At most MAX_KEYS.
        self.len = count as u32;
        true
    }

    /// Drops every entry (the recent-change bookkeeping stays).
    pub(super) fn clear(&mut self) {
        self.bytes = Bytes::new();
        self.len = 0;
    }
}

/// The entries of a compact table, in version order.
#[derive(Debug, Clone)]
pub(super) struct Iter<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Iter<'_> {
    /// No entries.
    pub(super) fn empty() -> Iter<'static> {
        static NONE: Bytes = Bytes::new();
        Iter { bytes: &NONE, at: 0 }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (u64, EntryRef<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.bytes.get(self.at..self.at + HEADER)?;
        let (version, lengths) = header.split_at(8);
        let (key_len, value_len) = lengths.split_at(4);
        let version = u64::from_le_bytes(version.try_into().ok()?);
        let key_len = u32::from_le_bytes(key_len.try_into().ok()?) as usize;
        let value_len = u32::from_le_bytes(value_len.try_into().ok()?) as usize;
        let key = self.at + HEADER..self.at + HEADER + key_len;
        let value = key.end..key.end + value_len;
        self.at = value.end;
        Some((version, EntryRef::new(self.bytes, EntrySpans::new(key, value)?, false)))
    }
}

/// One of two iterators of the same items: a general table's entries or a compact one's.
#[derive(Debug, Clone)]
pub(super) enum Either<L, R> {
    Left(L),
    Right(R),
}

impl<L: Iterator, R: Iterator<Item = L::Item>> Iterator for Either<L, R> {
    type Item = L::Item;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Either::Left(left) => left.next(),
            Either::Right(right) => right.next(),
        }
    }
}
