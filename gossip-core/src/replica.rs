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
use crate::membership::MemberState;

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
    /// It brings nothing we do not hold already.
    AlreadyKnown,
    /// It starts above our max version (a hole would open), or we are behind the sender's
    /// watermark and it is not a reset (we might keep a key whose tombstone is gone).
    Gap,
}

/// What applying a delta did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Applied {
    /// The replica's max version before and after: the run `(from, to]` is news here.
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) entries: usize,
    pub(crate) reset: bool,
    /// Entries refused because the table was full.
    pub(crate) over_cap: usize,
}

/// A node's table.
///
/// Kept small because a node holds one per known node (10,000 nodes know 10^8 replicas in
/// the simulator): the maps and the recent-change bookkeeping live behind one box that is
/// allocated on the first change, so a replica of an empty table costs 72 bytes.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    pub(crate) generation: u64,
    /// Every owner version up to this one is reflected here.
    pub(crate) max_version: u64,
    /// Tombstones up to this version may have been collected.
    pub(crate) gc_watermark: u64,
    pub(crate) address: SocketAddr,
    /// SWIM: the member's incarnation, raised only by the member itself.
    pub(crate) incarnation: u32,
    /// SWIM: Alive, Suspect, Dead or Left.
    pub(crate) state: MemberState,
    data: Option<Box<ReplicaData>>,
}

/// The parts of a replica that only a table with entries or recent changes needs.
#[derive(Debug, Clone, Default)]
struct ReplicaData {
    /// Key -> version of its latest entry.
    keys: HashMap<String, u64>,
    /// Version -> entry, for sending deltas in version order.
    entries: BTreeMap<u64, StoredEntry>,
    /// Tombstone version -> when it may be collected.
    tombstones: BTreeMap<u64, Instant>,
    /// When this replica last changed (for the recent-first digest order).
    last_changed: Option<Instant>,
    /// The max version before the current run of recent changes began (push mode sends
    /// deltas from here).
    recent_base: u64,
    /// Whether the table's recent list holds this replica.
    in_recent: bool,
}

static EMPTY: std::sync::LazyLock<ReplicaData> = std::sync::LazyLock::new(ReplicaData::default);

impl Replica {
    pub(crate) fn new(generation: u64, address: SocketAddr) -> Self {
        Self {
            generation,
            max_version: 0,
            gc_watermark: 0,
            address,
            incarnation: 0,
            state: MemberState::Alive,
            data: None,
        }
    }

    fn data(&self) -> &ReplicaData {
        self.data.as_deref().unwrap_or(&EMPTY)
    }

    fn data_mut(&mut self) -> &mut ReplicaData {
        self.data.get_or_insert_with(Box::default)
    }

    /// What the digest summary covers of this node.
    pub(crate) fn summary_key(&self) -> crate::summary::SummaryKey {
        crate::summary::SummaryKey {
            generation: self.generation,
            max_version: self.max_version,
            incarnation: self.incarnation,
            state: self.state,
        }
    }

    /// When this replica last changed, while that counts as recent.
    pub(crate) fn last_changed(&self) -> Option<Instant> {
        self.data().last_changed
    }

    /// The max version before the current run of recent changes.
    pub(crate) fn recent_base(&self) -> u64 {
        self.data.as_ref().map_or(self.max_version, |data| data.recent_base)
    }

    /// Whether the table's recent list holds this replica.
    pub(crate) fn in_recent(&self) -> bool {
        self.data().in_recent
    }

    pub(crate) fn set_in_recent(&mut self, in_recent: bool) {
        if in_recent || self.data.is_some() {
            self.data_mut().in_recent = in_recent;
        }
    }

    /// Number of keys held, tombstones included.
    pub(crate) fn len(&self) -> usize {
        self.data().keys.len()
    }

    /// The live entry of `key` with its version (tombstones are not returned).
    pub(crate) fn get(&self, key: &str) -> Option<(&StoredEntry, u64)> {
        let data = self.data();
        let version = *data.keys.get(key)?;
        let entry = data.entries.get(&version)?;
        (!entry.deleted).then_some((entry, version))
    }

    /// Whether `key` is held (live or tombstone).
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.data().keys.contains_key(key)
    }

    /// Live entries, in version order.
    pub(crate) fn live_entries(&self) -> impl Iterator<Item = (u64, &StoredEntry)> {
        self.data().entries.iter().filter(|(_, e)| !e.deleted).map(|(v, e)| (*v, e))
    }

    /// Entries (tombstones included) with a version above `version`, in version order.
    pub(crate) fn entries_after(&self, version: u64) -> impl Iterator<Item = (u64, &StoredEntry)> {
        self.data().entries.range(version.saturating_add(1)..).map(|(v, e)| (*v, e))
    }

    /// Number of tombstones held.
    pub(crate) fn tombstone_count(&self) -> usize {
        self.data.as_ref().map_or(0, |data| data.tombstones.len())
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
        let mut dropped_live = Vec::new();
        if delta.reset && behind_watermark {
            // We may hold keys whose tombstones the sender collected: start again, and tell
            // the application about the keys that turn out to be gone.
            dropped_live = self.live_entries().map(|(_, entry)| entry.key.clone()).collect();
            self.clear();
            self.gc_watermark = delta.gc_watermark;
            applied.reset = true;
        } else if delta.to_version <= self.max_version {
            return Err(Refusal::AlreadyKnown);
        } else if behind_watermark || delta.from_version > self.max_version {
            return Err(Refusal::Gap);
        }
        let base = self.max_version;
        let mut reached = delta.to_version;
        for entry in delta.entries.iter().filter(|e| e.version > base) {
            if !self.contains_key(&entry.key) && self.len() >= max_keys {
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
            applied.from = base;
            applied.to = self.max_version;
            return if applied.over_cap > 0 { Ok(applied) } else { Err(Refusal::AlreadyKnown) };
        }
        self.max_version = reached.max(self.max_version);
        if self.max_version >= delta.gc_watermark && delta.gc_watermark > self.gc_watermark {
            // We hold every version up to the sender's watermark: collect what it collected.
            self.collect_up_to(delta.gc_watermark);
        }
        for key in dropped_live {
            if !self.contains_key(&key) {
                events.emit(Event::KeyDeleted { node: owner.to_owned(), key, version: delta.gc_watermark });
            }
        }
        self.touch(now, base);
        applied.from = base;
        applied.to = self.max_version;
        Ok(applied)
    }

    /// Collects the tombstones whose grace period has passed; returns how many.
    pub(crate) fn collect_garbage(&mut self, now: Instant) -> usize {
        let Some(data) = self.data.as_ref() else { return 0 };
        let due: Vec<u64> =
            data.tombstones.iter().filter(|(_, deadline)| **deadline <= now).map(|(v, _)| *v).collect();
        for version in &due {
            self.remove_version(*version);
            self.gc_watermark = self.gc_watermark.max(*version);
        }
        due.len()
    }

    fn collect_up_to(&mut self, watermark: u64) {
        let due: Vec<u64> = self
            .data
            .as_ref()
            .map(|data| data.tombstones.range(..=watermark).map(|(v, _)| *v).collect())
            .unwrap_or_default();
        for version in due {
            self.remove_version(version);
        }
        self.gc_watermark = watermark;
    }

    fn insert(&mut self, entry: StoredEntry, version: u64, grace_deadline: Instant) {
        let data = self.data_mut();
        if let Some(old) = data.keys.insert(entry.key.clone(), version) {
            data.entries.remove(&old);
            data.tombstones.remove(&old);
        }
        if entry.deleted {
            data.tombstones.insert(version, grace_deadline);
        }
        data.entries.insert(version, entry);
    }

    fn remove_version(&mut self, version: u64) {
        let data = self.data_mut();
        data.tombstones.remove(&version);
        if let Some(entry) = data.entries.remove(&version) {
            data.keys.remove(&entry.key);
        }
    }

    fn clear(&mut self) {
        if let Some(data) = self.data.as_mut() {
            data.keys.clear();
            data.entries.clear();
            data.tombstones.clear();
        }
        self.max_version = 0;
    }

    fn touch(&mut self, now: Instant, base: u64) {
        let data = self.data_mut();
        if data.last_changed.is_none() {
            data.recent_base = base;
        }
        data.last_changed = Some(now);
    }

    /// Ends the current run of recent changes (called when it is older than the window).
    pub(crate) fn forget_recent(&mut self) {
        let max_version = self.max_version;
        if let Some(data) = self.data.as_mut() {
            data.last_changed = None;
            data.recent_base = max_version;
            data.in_recent = false;
        }
    }
}
