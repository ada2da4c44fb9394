//! One node's table as this node holds it: the owner's own table, or a replica of another
//! node's.
//!
//! Invariant (the Scuttlebutt rule): a replica holds exactly the owner's entries whose
//! version is at most `max_version`, one entry per key (the latest), tombstones included
//! until they are collected. Deltas are applied only as a contiguous run starting at or
//! below `max_version`, so a replica never has a hole.
//!
//! Tombstones are collected `tombstone_grace` after this node learned them, and the highest
//! collected version becomes the replica's `gc_watermark`. A peer whose replica is below our
//! watermark may hold a key whose tombstone we no longer have, so it must rebuild its replica
//! from scratch (a reset) instead of applying increments.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use gossip_proto::v1;

use crate::event::{Event, Events};

/// One stored entry: the latest write of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEntry {
    pub(crate) key: String,
    /// Empty for a tombstone.
    pub(crate) value: Bytes,
    pub(crate) deleted: bool,
}

/// Why a delta was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It starts above our max version, or it is unsafe for us (we are behind the sender's
    /// watermark and it is not a reset), or it brings nothing new.
    Stale,
}

/// What applying a delta did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Applied {
    pub(crate) entries: usize,
    pub(crate) reset: bool,
    /// Entries refused because the table was full.
    pub(crate) over_cap: usize,
}

/// A node's table.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    pub(crate) generation: u64,
    pub(crate) address: SocketAddr,
    /// Every owner version up to this one is reflected here.
    pub(crate) max_version: u64,
    /// Tombstones up to this version may have been collected.
    pub(crate) gc_watermark: u64,
    /// Key -> version of its latest entry.
    keys: HashMap<String, u64>,
    /// Version -> entry, for sending deltas in version order.
    entries: BTreeMap<u64, StoredEntry>,
    /// Tombstone version -> when it may be collected.
    tombstones: BTreeMap<u64, Instant>,
    /// When this replica last changed (for the recent-first digest order).
    pub(crate) last_changed: Option<Instant>,
    /// The max version before the current run of recent changes began (push mode sends
    /// deltas from here).
    pub(crate) recent_base: u64,
    /// Whether the table's recent list holds this replica.
    pub(crate) in_recent: bool,
}

impl Replica {
    pub(crate) fn new(generation: u64, address: SocketAddr) -> Self {
        Self {
            generation,
            address,
            max_version: 0,
            gc_watermark: 0,
            keys: HashMap::new(),
            entries: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            last_changed: None,
            recent_base: 0,
            in_recent: false,
        }
    }

    /// Number of keys held, tombstones included.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The live entry of `key` with its version (tombstones are not returned).
    pub(crate) fn get(&self, key: &str) -> Option<(&StoredEntry, u64)> {
        let version = *self.keys.get(key)?;
        let entry = self.entries.get(&version)?;
        (!entry.deleted).then_some((entry, version))
    }

    /// Whether `key` is held (live or tombstone).
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// Live entries, in version order.
    pub(crate) fn live_entries(&self) -> impl Iterator<Item = (u64, &StoredEntry)> {
        self.entries.iter().filter(|(_, e)| !e.deleted).map(|(v, e)| (*v, e))
    }

    /// Entries (tombstones included) with a version above `version`, in version order.
    pub(crate) fn entries_after(&self, version: u64) -> impl Iterator<Item = (u64, &StoredEntry)> {
        self.entries.range(version.saturating_add(1)..).map(|(v, e)| (*v, e))
    }

    /// Number of tombstones held.
    pub(crate) fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// The owner writes: a new value, or a tombstone when `value` is `None`. Returns the
    /// version of the write.
    pub(crate) fn write(
        &mut self,
        key: String,
        value: Option<Bytes>,
        now: Instant,
        grace_deadline: Instant,
    ) -> u64 {
        let version = self.max_version + 1;
        let (value, deleted) = match value {
            Some(value) => (value, false),
            None => (Bytes::new(), true),
        };
        self.insert(StoredEntry { key, value, deleted }, version, grace_deadline);
        self.max_version = version;
        self.touch(now, version - 1);
        version
    }

    /// Applies a validated delta (see [`crate::delta::validate`]); the caller has checked
    /// the generation.
    pub(crate) fn apply(
        &mut self,
        owner: &str,
        delta: &v1::NodeDelta,
        now: Instant,
        grace_deadline: Instant,
        max_keys: usize,
        events: &mut Events,
    ) -> Result<Applied, Refusal> {
        let mut applied = Applied::default();
        let behind_watermark =
            self.max_version < delta.gc_watermark && self.gc_watermark < delta.gc_watermark;
        if delta.reset && behind_watermark {
            // We may hold keys whose tombstones the sender collected: start again.
            self.clear();
            self.gc_watermark = delta.gc_watermark;
            applied.reset = true;
        } else if behind_watermark
            || delta.from_version > self.max_version
            || delta.to_version <= self.max_version
        {
            return Err(Refusal::Stale);
        }
        let base = self.max_version;
        let mut reached = delta.to_version;
        for entry in delta.entries.iter().filter(|e| e.version > base) {
            if !self.keys.contains_key(&entry.key) && self.keys.len() >= max_keys {
                // The table is full: stop before this entry so no hole is left.
                applied.over_cap = 1;
                reached = entry.version - 1;
                break;
            }
            let stored = StoredEntry {
                key: entry.key.clone(),
                value: if entry.deleted { Bytes::new() } else { entry.value.clone() },
                deleted: entry.deleted,
            };
            events.emit(if entry.deleted {
                Event::KeyDeleted { node: owner.to_owned(), key: entry.key.clone(), version: entry.version }
            } else {
                Event::KeyChanged {
                    node: owner.to_owned(),
                    key: entry.key.clone(),
                    value: entry.value.clone(),
                    version: entry.version,
                }
            });
            self.insert(stored, entry.version, grace_deadline);
            applied.entries += 1;
        }
        if reached <= base && !applied.reset {
            return if applied.over_cap > 0 { Ok(applied) } else { Err(Refusal::Stale) };
        }
        self.max_version = reached.max(self.max_version);
        if self.max_version >= delta.gc_watermark && delta.gc_watermark > self.gc_watermark {
            // We hold every version up to the sender's watermark: collect what it collected.
            self.collect_up_to(delta.gc_watermark);
        }
        self.touch(now, base);
        Ok(applied)
    }

    /// Collects the tombstones whose grace period has passed; returns how many.
    pub(crate) fn collect_garbage(&mut self, now: Instant) -> usize {
        let due: Vec<u64> =
            self.tombstones.iter().filter(|(_, deadline)| **deadline <= now).map(|(v, _)| *v).collect();
        for version in &due {
            self.remove_version(*version);
            self.gc_watermark = self.gc_watermark.max(*version);
        }
        due.len()
    }

    fn collect_up_to(&mut self, watermark: u64) {
        let due: Vec<u64> = self.tombstones.range(..=watermark).map(|(v, _)| *v).collect();
        for version in due {
            self.remove_version(version);
        }
        self.gc_watermark = watermark;
    }

    fn insert(&mut self, entry: StoredEntry, version: u64, grace_deadline: Instant) {
        if let Some(old) = self.keys.insert(entry.key.clone(), version) {
            self.entries.remove(&old);
            self.tombstones.remove(&old);
        }
        if entry.deleted {
            self.tombstones.insert(version, grace_deadline);
        }
        self.entries.insert(version, entry);
    }

    fn remove_version(&mut self, version: u64) {
        self.tombstones.remove(&version);
        if let Some(entry) = self.entries.remove(&version) {
            self.keys.remove(&entry.key);
        }
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.entries.clear();
        self.tombstones.clear();
        self.max_version = 0;
    }

    fn touch(&mut self, now: Instant, base: u64) {
        if self.last_changed.is_none() {
            self.recent_base = base;
        }
        self.last_changed = Some(now);
    }

    /// Ends the current run of recent changes (called when it is older than the window).
    pub(crate) fn forget_recent(&mut self) {
        self.last_changed = None;
        self.recent_base = self.max_version;
    }
}
