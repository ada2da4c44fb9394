//! The storage of a replica's entries: a log in version order with holes, a hash index by
//! key, the buffers the keys and values lie in, the tombstones' collection times, and the
//! bookkeeping of recent changes and resets.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::time::Instant;

use bytes::Bytes;
use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::compact::CompactData;
use super::{CatchUp, EntryRef, Replica, StoredEntry};
use crate::shared_entry::same_buffer;

/// The parts of a replica that only a table with entries or recent changes needs.
#[derive(Debug, Clone, Default)]
pub(super) struct ReplicaData {
    /// The entries in version order, each key once (its latest write). An entry that is
    /// replaced or collected leaves a hole that keeps its version, so the log stays sorted
    /// and new versions (always above every held one) are appended; holes are compacted
    /// away once they outnumber the entries.
    pub(super) log: Vec<Slot>,
    /// The buffers the entries' keys and values lie in (datagrams, mostly), each held once
    /// for all the entries it holds rather than by a reference count per entry: an atomic
    /// operation per entry received was a tenth of the time a full datagram took.
    pub(super) buffers: Vec<Held>,
    /// Places of `buffers` that no entry uses any more (their bytes dropped); compacted away
    /// once they outnumber the ones in use.
    pub(super) unused_buffers: u32,
    /// Key -> position in `log` of its entry, hashed with `hasher`, while `indexed`.
    pub(super) index: HashTable<usize>,
    /// Whether `index` holds every key. Not while the table holds at most [`SCAN_UP_TO`]
    /// keys (and none is on the way): those are found by scanning `log`, and the index is not
    /// allocated.
    pub(super) indexed: bool,
    /// Holes in `log`.
    pub(super) holes: usize,
    /// Keyed by the owner's seed (see [`Owner`]); it may change only while the table is empty.
    pub(super) hasher: FixedState,
    /// Tombstone version -> when it may be collected.
    pub(super) tombstones: BTreeMap<u64, Instant>,
    /// When this replica last changed (for the recent-first digest order).
    pub(super) last_changed: Option<Instant>,
    /// The max version before the current run of recent changes began (push mode sends
    /// deltas from here).
    pub(super) recent_base: u64,
    /// While a reset cut short rebuilds this replica below the version it had reached: the
    /// replica as it was, which the application keeps seeing (see [`Replica::view`]).
    pub(super) shadow: Option<Box<Replica>>,
    /// While shadowed: the version the rebuilt replica must reach before the shadow ends.
    pub(super) catch_up: CatchUp,
}

/// One place of the log: an entry, or the hole it left.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) version: u64,
    pub(super) entry: Option<StoredEntry>,
}

/// A buffer entries lie in, and how many of the log's entries do.
#[derive(Debug, Clone, Default)]
pub(super) struct Held {
    pub(super) bytes: Bytes,
    pub(super) users: u32,
}

/// Below this many holes the log is not compacted.
pub(super) const MIN_HOLES_TO_COMPACT: usize = 16;

/// A table of at most this many keys has no index: its log is scanned. Most replicas hold a
/// few keys (a node's load, its role), and a node holds one replica per member, so an index
/// each (its allocation and the log's amortized growth) was most of a replica's memory:
/// 10,000 nodes know 10^8 replicas in the simulator.
pub(super) const SCAN_UP_TO: usize = 8;

impl ReplicaData {
    /// The hash of a key's bytes (every caller hashes bytes, never the `str`: the two differ).
    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Number of keys held, tombstones included.
    pub(super) fn len(&self) -> usize {
        self.log.len() - self.holes
    }

    /// The general table holding `compact`'s entries where they lie (its buffer held once),
    /// hashing with `hasher`.
    pub(super) fn from_compact(compact: &CompactData, hasher: FixedState) -> Self {
        let mut data = Self {
            hasher,
            last_changed: compact.last_changed,
            recent_base: compact.recent_base,
            ..Self::default()
        };
        // At most MAX_KEYS entries: no index.
        data.log.reserve_exact(compact.len());
        data.log.extend(compact.iter().map(|(version, entry)| Slot {
            version,
            entry: Some(StoredEntry { spans: entry.spans, buffer: 0, deleted: false }),
        }));
        if !data.log.is_empty() {
            data.buffers.reserve_exact(1);
            data.buffers.push(Held { bytes: compact.bytes.clone(), users: compact.len });
        }
        data
    }

    /// A stored entry, read where it lies.
    pub(super) fn read(&self, stored: StoredEntry) -> EntryRef<'_> {
        EntryRef { source: buffer_of(&self.buffers, stored), spans: stored.spans, deleted: stored.deleted }
    }

    /// The position of `key`'s entry in the log.
    pub(super) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let (log, buffers) = (&self.log, &self.buffers);
        if !self.indexed {
            return (0..log.len()).find(|&at| slot_has_key(log, buffers, at, key));
        }
        self.index.find(hash, |&at| slot_has_key(log, buffers, at, key)).copied()
    }

    /// Makes room for `additional` more entries: exactly that many in a log that has none yet
    /// (most tables stay that small), and in the index, built now if they take the table past
    /// the scan.
    pub(super) fn reserve(&mut self, additional: usize) {
        if self.log.capacity() == 0 {
            self.log.reserve_exact(additional);
        } else {
            self.log.reserve(additional);
        }
        if self.indexed {
            let (log, buffers, hasher) = (&self.log, &self.buffers, &self.hasher);
            self.index.reserve(additional, |&at| slot_hash(hasher, log, buffers, at));
        } else if self.len() + additional > SCAN_UP_TO {
            self.build_index();
        }
    }

    /// The position of the entry with this exact version.
    pub(super) fn position_of(&self, version: u64) -> Option<usize> {
        self.log.binary_search_by_key(&version, |slot| slot.version).ok()
    }

    /// Makes `seed` the hash seed if the table holds no key yet.
    pub(super) fn seed(&mut self, seed: u64) {
        if self.len() == 0 {
            self.hasher = FixedState::with_seed(seed);
        }
    }

    /// Stores `entry` as the latest write of its key (`hash` is the key's hash): the previous
    /// one, if any, becomes a hole.
    #[inline]
    pub(super) fn insert(&mut self, hash: u64, entry: EntryRef<'_>, version: u64, grace_deadline: Instant) {
        let at = self.log.len();
        if self.log.last().is_some_and(|last| last.version >= version) {
            // Not an append (only callers that skip `ReceivedDelta::check` get here): keep the log
            // sorted the slow way.
            self.insert_unordered(entry, version, grace_deadline);
            return;
        }
        let key = entry.key_bytes();
        let (log, buffers, hasher) = (&self.log, &self.buffers, &self.hasher);
        let replaced = if !self.indexed {
            self.find(hash, key)
        } else {
            match self.index.find_mut(hash, |&at| slot_has_key(log, buffers, at, key)) {
                Some(position) => Some(std::mem::replace(position, at)),
                None => {
                    self.index.insert_unique(hash, at, |&at| slot_hash(hasher, log, buffers, at));
                    None
                }
            }
        };
        if entry.deleted {
            self.tombstones.insert(version, grace_deadline);
        }
        let stored = self.hold(entry);
        self.log.push(Slot { version, entry: Some(stored) });
        if let Some(old) = replaced {
            self.punch(old);
        }
        if !self.indexed && self.len() > SCAN_UP_TO {
            self.build_index();
        }
    }

    /// Inserts an entry whose version is not above every held one.
    pub(super) fn insert_unordered(&mut self, entry: EntryRef<'_>, version: u64, grace_deadline: Instant) {
        let key = entry.key_bytes();
        let hash = self.hash(key);
        if let Some(old) = self.find(hash, key) {
            self.remove_at(old);
        }
        if let Some(at) = self.position_of(version) {
            // A version held by another key: the owner never writes two keys at one
            // version, so the older claim goes.
            self.remove_at(at);
        }
        self.compact();
        if entry.deleted {
            self.tombstones.insert(version, grace_deadline);
        }
        let stored = self.hold(entry);
        let at = self.log.partition_point(|slot| slot.version < version);
        self.log.insert(at, Slot { version, entry: Some(stored) });
        self.reindex();
    }

    /// Counts one more entry in `entry`'s buffer, held from now on (the last one held, when
    /// it is the same: the entries of a delta lie in one datagram).
    #[inline]
    fn hold(&mut self, entry: EntryRef<'_>) -> StoredEntry {
        let same = |held: &Held| held.users > 0 && same_buffer(&held.bytes, entry.source);
        let buffer = match self.buffers.last_mut() {
            Some(held) if same(held) => {
                held.users += 1;
                self.buffers.len() - 1
            }
            _ => {
                if self.buffers.capacity() == 0 {
                    // Most tables hold the entries of one datagram: room for it alone (an
                    // empty vector's first push makes room for four).
                    self.buffers.reserve_exact(1);
                }
                self.buffers.push(Held { bytes: entry.source.clone(), users: 1 });
                self.buffers.len() - 1
            }
        };
        // A table holds at most `max_keys_per_node` entries, far below 2^32 buffers.
        StoredEntry {
            spans: entry.spans,
            buffer: u32::try_from(buffer).unwrap_or(u32::MAX),
            deleted: entry.deleted,
        }
    }

    /// Counts one entry fewer in `buffer`; drops the buffer when none is left.
    fn release(&mut self, buffer: u32) {
        let Some(held) = self.buffers.get_mut(buffer as usize) else { return };
        held.users = held.users.saturating_sub(1);
        if held.users > 0 {
            return;
        }
        held.bytes = Bytes::new();
        self.unused_buffers += 1;
        let unused = self.unused_buffers as usize;
        if unused >= MIN_HOLES_TO_COMPACT && unused > self.buffers.len() / 2 {
            self.compact_buffers();
        }
    }

    /// Drops the unused places of `buffers`, renumbering the entries' buffers.
    fn compact_buffers(&mut self) {
        let mut renumbered = Vec::with_capacity(self.buffers.len());
        let mut next = 0u32;
        for held in &self.buffers {
            renumbered.push(next);
            next += u32::from(held.users > 0);
        }
        self.buffers.retain(|held| held.users > 0);
        for stored in self.log.iter_mut().filter_map(|slot| slot.entry.as_mut()) {
            stored.buffer = renumbered.get(stored.buffer as usize).copied().unwrap_or(u32::MAX);
        }
        self.unused_buffers = 0;
    }

    /// Turns the entry at `at` into a hole (the index no longer points at it).
    pub(super) fn punch(&mut self, at: usize) {
        let mut released = None;
        if let Some(slot) = self.log.get_mut(at) {
            if let Some(stored) = slot.entry.take() {
                self.holes += 1;
                self.tombstones.remove(&slot.version);
                released = Some(stored.buffer);
            }
        }
        if let Some(buffer) = released {
            self.release(buffer);
        }
        if self.holes >= MIN_HOLES_TO_COMPACT && self.holes > self.log.len() / 2 {
            self.compact();
            self.reindex();
        }
    }

    /// Removes the entry at `at` from the index and the log (leaving a hole).
    pub(super) fn remove_at(&mut self, at: usize) {
        let Some(stored) = self.log.get(at).and_then(|slot| slot.entry) else { return };
        if self.indexed {
            let hash = self.hash(self.read(stored).key_bytes());
            if let Ok(found) = self.index.find_entry(hash, |&position| position == at) {
                found.remove();
            }
        }
        self.punch(at);
    }

    /// Drops the holes (positions change: call `reindex` after).
    pub(super) fn compact(&mut self) {
        if self.holes > 0 {
            self.log.retain(|slot| slot.entry.is_some());
            self.holes = 0;
        }
    }

    /// Rebuilds the index from the log, or drops it if the scan serves the table now.
    pub(super) fn reindex(&mut self) {
        if self.len() > SCAN_UP_TO {
            self.build_index();
        } else {
            self.index = HashTable::new();
            self.indexed = false;
        }
    }

    /// Indexes every key of the log, with room for as many as the log has room for (a delta
    /// that takes the table past the scan reserved its entries there).
    fn build_index(&mut self) {
        let Self { log, buffers, index, hasher, .. } = self;
        index.clear();
        index.reserve(log.capacity(), |_| 0);
        for (at, slot) in log.iter().enumerate() {
            if let Some(stored) = slot.entry {
                index.insert_unique(hasher.hash_one(key_of(buffers, stored)), at, |&at| {
                    slot_hash(hasher, log, buffers, at)
                });
            }
        }
        self.indexed = true;
    }

    pub(super) fn clear(&mut self) {
        self.log.clear();
        self.buffers.clear();
        self.unused_buffers = 0;
        self.index = HashTable::new();
        self.indexed = false;
        self.holes = 0;
        self.tombstones.clear();
    }
}

/// The buffer `stored` lies in.
fn buffer_of(buffers: &[Held], stored: StoredEntry) -> &Bytes {
    static EMPTY_BUFFER: Bytes = Bytes::new();
    buffers.get(stored.buffer as usize).map_or(&EMPTY_BUFFER, |held| &held.bytes)
}

fn key_of(buffers: &[Held], stored: StoredEntry) -> &[u8] {
    buffer_of(buffers, stored).get(stored.spans.key()).unwrap_or_default()
}

fn slot_has_key(log: &[Slot], buffers: &[Held], at: usize, key: &[u8]) -> bool {
    log.get(at).and_then(|slot| slot.entry).is_some_and(|stored| key_of(buffers, stored) == key)
}

pub(super) fn slot_hash(hasher: &FixedState, log: &[Slot], buffers: &[Held], at: usize) -> u64 {
    log.get(at).and_then(|slot| slot.entry).map_or(0, |stored| hasher.hash_one(key_of(buffers, stored)))
}

#[cfg(test)]
pub(super) static EMPTY: std::sync::LazyLock<ReplicaData> = std::sync::LazyLock::new(ReplicaData::default);
