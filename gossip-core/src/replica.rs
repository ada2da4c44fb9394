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
//!
//! While a rebuilt replica is below the reset's watermark, it takes increments only from a
//! peer that collected as much, or that holds the owner's table up to the watermark at least.
//! Another peer may still hold a key live that the owner deleted below the watermark: its
//! tombstone is collected, so nothing would ever delete the key again. A peer that holds the
//! table that far holds the tombstone in its place, or collected the key with it.
//!
//! A reset may be cut by the datagram size below the version the replica had reached. The
//! rebuilt replica is then behind what the application has already seen, so the application
//! keeps seeing the old state (the *shadow*, see [`Replica::view`]) until the rebuilt replica
//! has caught up; then the difference is reported, in events, at once. Caught up means: it
//! reached the old max version, the reset's watermark (every tombstone it lacks below it
//! was collected by the owner), and the highest version of the owner's table a peer said it
//! holds (the `sender_max_version` of a delta cut short, or a digest entry), fixed when the
//! first two were reached. The last one matters for a key the owner overwrote above the cut:
//! a replica at version `v` lacks any key whose latest write is above `v` (the Scuttlebutt
//! rule), so a shadow ended at the old max version would report such a key deleted, then
//! changed. The owner's own digest lowers a target others raised (a made-up version would
//! otherwise hold the shadow).
//!
//! Guarantee: the versions the application sees for a (node, generation) only grow, and a
//! key it held disappears only if the owner deleted it. One case is left, by design of the
//! Scuttlebutt rule: a key the owner overwrites *again* while the rebuilt replica catches up
//! to its target, above the version the replica reaches by then, or that the peers it catches
//! up from lacked themselves (their own replicas rebuilt and still catching up). The chaos
//! simulation checks every key event against the owners' writes (`sim/app_events.rs`) and
//! counts any such delete as a violation.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::delta::{ReceivedDelta, ReceivedEntry};
use crate::event::{Events, KeyChanges};
use crate::membership::MemberState;
use crate::shared_entry::{EntrySpans, SharedEntry};
use crate::shared_str::SharedStr;

mod compact;
mod store;

use compact::{CompactData, Either};
use foldhash::fast::FixedState;
#[cfg(test)]
use store::EMPTY;
use store::ReplicaData;

/// One stored entry, the latest write of a key: where its key and value (empty for a
/// tombstone) lie in one of the replica's buffers, often the datagram they arrived in (which
/// the event that reported them shares).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredEntry {
    spans: EntrySpans,
    /// Its place in `ReplicaData::buffers`.
    buffer: u32,
    deleted: bool,
}

/// An entry read where it lies: a stored one, or one about to be stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryRef<'a> {
    source: &'a Bytes,
    spans: EntrySpans,
    pub(crate) deleted: bool,
}

impl<'a> EntryRef<'a> {
    /// The entry whose key (checked UTF-8) and value lie at `spans` in `source`.
    pub(crate) fn new(source: &'a Bytes, spans: EntrySpans, deleted: bool) -> Self {
        Self { source, spans, deleted }
    }

    /// `entry`, as stored.
    pub(crate) fn of(entry: &'a SharedEntry, deleted: bool) -> Self {
        Self::new(entry.buffer(), entry.spans(), deleted)
    }

    pub(crate) fn key(&self) -> &'a str {
        // Checked when the entry was decoded or written: the fallback is never taken.
        std::str::from_utf8(self.key_bytes()).unwrap_or_default()
    }

    pub(crate) fn key_bytes(&self) -> &'a [u8] {
        self.source.get(self.spans.key()).unwrap_or_default()
    }

    /// The value (empty for a tombstone).
    pub(crate) fn value(&self) -> &'a [u8] {
        self.source.get(self.location().1.value()).unwrap_or_default()
    }

    /// The key and value as a handle of their own (a reference count on their buffer).
    pub(crate) fn shared(&self) -> SharedEntry {
        SharedEntry::from_spans(self.source, self.location().1)
    }

    /// The value as a handle of its own (a slice of the buffer: no copy).
    pub(crate) fn shared_value(&self) -> Bytes {
        self.source.slice(self.location().1.value())
    }

    /// The buffer the key and value lie in, and where (a tombstone's value empty, whatever
    /// its sender sent).
    pub(crate) fn location(&self) -> (&'a Bytes, EntrySpans) {
        (self.source, self.spans.read_as(self.deleted))
    }
}

impl PartialEq for EntryRef<'_> {
    /// By key, value and deletion (where they are held does not matter).
    fn eq(&self, other: &Self) -> bool {
        (self.key_bytes(), self.value(), self.deleted) == (other.key_bytes(), other.value(), other.deleted)
    }
}

impl Eq for EntryRef<'_> {}

/// The owner of a replica, as [`Replica::apply`] needs it: the name its events carry, and
/// the seed of the key index's hash. The seed comes from the node's RNG, so a hostile peer
/// cannot choose keys that collide in the index; a bare name (tests) gets seed 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub(crate) name: &'a str,
    pub(crate) seed: u64,
}

impl<'a> From<&'a str> for Owner<'a> {
    fn from(name: &'a str) -> Self {
        Self { name, seed: 0 }
    }
}

/// Why a delta was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotApplied {
    /// It brings nothing we do not hold already.
    AlreadyKnown,
    /// It starts above our max version (a hole would open), or we are behind the sender's
    /// watermark and it is not a reset (we might keep a key whose tombstone is gone), or a
    /// reset left us below our own watermark and the sender holds less than it.
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
/// the simulator): the entries and the recent-change bookkeeping live behind a box allocated
/// on the first change, so a replica of an empty table costs 80 bytes. A few live entries
/// are kept compact, in one buffer of their own (`compact`); any other table is the general
/// one (`data`). At most one of the two is there.
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
    /// Whether this node heard from the member directly under this generation: a datagram
    /// whose sender is the member came from its address, or our probe of it was acked from
    /// there. Probing and gossip favour such members over ones only heard of (which may be
    /// made up by a hostile peer). A bool rather than a time: it fits the replica's padding.
    pub(crate) heard: bool,
    data: Option<Box<ReplicaData>>,
    compact: Option<Box<CompactData>>,
    /// Tests: never made compact (the general table a law compares a compact one with).
    #[cfg(test)]
    general_only: bool,
}

/// How far a rebuilt replica must catch up before its shadow ends (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
struct CatchUp {
    /// The highest version of the owner's table peers said they hold since the reset.
    advertised: u64,
    /// The target, fixed when the rebuilt replica first reached the shadow's version and the
    /// reset's watermark: the highest version then known to exist.
    target: Option<u64>,
}

impl Replica {
    pub(crate) fn new(generation: u64, address: SocketAddr) -> Self {
        Self {
            generation,
            max_version: 0,
            gc_watermark: 0,
            address,
            incarnation: 0,
            state: MemberState::Alive,
            heard: false,
            data: None,
            compact: None,
            #[cfg(test)]
            general_only: false,
        }
    }

    /// The general table (an empty one when the table is compact or empty).
    #[cfg(test)]
    fn data(&self) -> &ReplicaData {
        self.data.as_deref().unwrap_or(&EMPTY)
    }

    /// The general table, made from the compact one (or empty) if need be.
    fn data_mut(&mut self) -> &mut ReplicaData {
        let compact = &mut self.compact;
        self.data.get_or_insert_with(|| {
            Box::new(compact.take().map_or_else(ReplicaData::default, |compact| {
                ReplicaData::from_compact(&compact, FixedState::default())
            }))
        })
    }

    /// This replica with the general table from the start (tests compare it with a compact one).
    #[cfg(test)]
    pub(crate) fn general(mut self) -> Self {
        self.data_mut();
        self.general_only = true;
        self
    }

    /// Whether the table is kept compact.
    #[cfg(test)]
    pub(crate) fn is_compact(&self) -> bool {
        self.compact.is_some()
    }

    /// Turns a compact table into the general one, hashing its keys with `seed`.
    fn promote(&mut self, seed: u64) {
        if let Some(compact) = self.compact.take() {
            self.data = Some(Box::new(ReplicaData::from_compact(&compact, FixedState::with_seed(seed))));
        }
    }

    /// The recent-change bookkeeping (`last_changed`, `recent_base`), made (compact) if the
    /// table has none.
    fn recency_mut(&mut self) -> (&mut Option<Instant>, &mut u64) {
        match (&mut self.data, &mut self.compact) {
            (Some(data), _) => (&mut data.last_changed, &mut data.recent_base),
            (None, compact) => {
                let compact = compact.get_or_insert_with(Box::default);
                (&mut compact.last_changed, &mut compact.recent_base)
            }
        }
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
        match (&self.data, &self.compact) {
            (Some(data), _) => data.last_changed,
            (None, compact) => compact.as_ref().and_then(|compact| compact.last_changed),
        }
    }

    /// The max version before the current run of recent changes.
    pub(crate) fn recent_base(&self) -> u64 {
        match (&self.data, &self.compact) {
            (Some(data), _) => data.recent_base,
            (None, Some(compact)) => compact.recent_base,
            (None, None) => self.max_version,
        }
    }

    /// Number of keys held, tombstones included.
    pub(crate) fn len(&self) -> usize {
        match (&self.data, &self.compact) {
            (Some(data), _) => data.len(),
            (None, compact) => compact.as_ref().map_or(0, |compact| compact.len()),
        }
    }

    /// The entry of `key` (live or tombstone) with its version.
    fn lookup(&self, key: &str) -> Option<(EntryRef<'_>, u64)> {
        let key = key.as_bytes();
        let Some(data) = self.data.as_deref() else {
            return self.compact.as_ref()?.lookup(key);
        };
        let slot = data.log.get(data.find(data.hash(key), key)?)?;
        Some((data.read(slot.entry?), slot.version))
    }

    /// What the application sees of this replica: itself, or while a reset cut short rebuilds
    /// it below the version it had reached, the replica as it was before the reset.
    pub(crate) fn view(&self) -> &Replica {
        self.data.as_ref().and_then(|data| data.shadow.as_deref()).unwrap_or(self)
    }

    /// Whether a reset in progress hides the rebuilt replica from the application.
    pub(crate) fn is_shadowed(&self) -> bool {
        self.data.as_ref().is_some_and(|data| data.shadow.is_some())
    }

    /// A copy of this replica's entries and versions, without its shadow.
    fn snapshot(&self) -> Replica {
        let data = self.data.as_ref().map(|data| {
            let ReplicaData {
                log, buffers, unused_buffers, index, indexed, holes, hasher, tombstones, ..
            } = &**data;
            Box::new(ReplicaData {
                log: log.clone(),
                buffers: buffers.clone(),
                unused_buffers: *unused_buffers,
                index: index.clone(),
                indexed: *indexed,
                holes: *holes,
                hasher: hasher.clone(),
                tombstones: tombstones.clone(),
                ..ReplicaData::default()
            })
        });
        Replica { data, ..Replica::new(self.generation, self.address) }
            .with_versions(self.max_version, self.gc_watermark)
    }

    fn with_versions(mut self, max_version: u64, gc_watermark: u64) -> Self {
        self.max_version = max_version;
        self.gc_watermark = gc_watermark;
        self
    }

    /// Ends the shadow once the rebuilt replica has reached both the version it hides and the
    /// watermark of the reset (so every tombstone it lacks was collected by the owner): reports
    /// every difference between what the application saw and what holds now.
    fn settle_shadow(&mut self, owner: &str, events: &mut Events) {
        let (max_version, gc_watermark) = (self.max_version, self.gc_watermark);
        let Some(data) = self.data.as_deref_mut() else { return };
        let Some(shadow) = data.shadow.as_ref() else { return };
        let base = shadow.max_version.max(gc_watermark);
        if max_version < base {
            return;
        }
        let target = *data.catch_up.target.get_or_insert(data.catch_up.advertised.max(base));
        if max_version < target {
            return;
        }
        data.catch_up = CatchUp::default();
        let Some(shadow) = data.shadow.take() else { return };
        let (node, mut changes) = (SharedStr::from(owner), KeyChanges::default());
        for (_, seen) in shadow.live_entries() {
            if self.get(seen.key()).is_none() {
                // Deleted by the owner: its tombstone, or above the collected watermark.
                let version = self.lookup(seen.key()).map_or(self.gc_watermark, |(_, version)| version);
                let (source, spans) = seen.location();
                add_change(events, &node, &mut changes, source, spans.without_value(), version, true);
            }
        }
        for (version, stored) in self.live_entries() {
            if shadow.get(stored.key()).is_none_or(|(_, seen)| seen != version) {
                let (source, spans) = stored.location();
                add_change(events, &node, &mut changes, source, spans, version, false);
            }
        }
        events.emit_keys(node, changes);
    }

    /// A peer holds this replica's owner (same generation) up to `version`; `first_hand` when
    /// the peer is the owner itself. While a reset rebuilds the replica, this is how it
    /// learns how far it must catch up (see the module docs). The owner's own word is the
    /// truth: it lowers a target others raised (a hostile peer's made-up version would
    /// otherwise hold the shadow until the owner wrote that far).
    pub(crate) fn note_advertised(
        &mut self,
        owner: &str,
        version: u64,
        first_hand: bool,
        events: &mut Events,
    ) {
        let Some(data) = self.data.as_deref_mut().filter(|data| data.shadow.is_some()) else { return };
        let catch_up = &mut data.catch_up;
        if first_hand {
            catch_up.advertised = version;
            catch_up.target = catch_up.target.map(|target| target.min(version));
        } else {
            catch_up.advertised = catch_up.advertised.max(version);
        }
        self.settle_shadow(owner, events);
    }

    /// The live entry of `key` with its version (tombstones are not returned).
    pub(crate) fn get(&self, key: &str) -> Option<(EntryRef<'_>, u64)> {
        self.lookup(key).filter(|(entry, _)| !entry.deleted)
    }

    /// Whether `key` is held (live or tombstone).
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    /// Live entries, in version order.
    pub(crate) fn live_entries(&self) -> impl Iterator<Item = (u64, EntryRef<'_>)> {
        match &self.data {
            Some(data) => Either::Left(data.log.iter().filter_map(|slot| {
                Some((slot.version, data.read(slot.entry.filter(|entry| !entry.deleted)?)))
            })),
            // A compact table holds live entries only.
            None => Either::Right(self.compact_entries()),
        }
    }

    /// Entries (tombstones included) with a version above `version`, in version order.
    pub(crate) fn entries_after(&self, version: u64) -> impl Iterator<Item = (u64, EntryRef<'_>)> {
        match &self.data {
            Some(data) => {
                let start = data.log.partition_point(|slot| slot.version <= version);
                Either::Left(
                    data.log[start..].iter().filter_map(|slot| Some((slot.version, data.read(slot.entry?)))),
                )
            }
            None => Either::Right(self.compact_entries().skip_while(move |(held, _)| *held <= version)),
        }
    }

    /// The compact table's entries (none if there is no compact table).
    fn compact_entries(&self) -> compact::Iter<'_> {
        self.compact.as_deref().map_or_else(|| compact::Iter::empty(), CompactData::iter)
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
        let deleted = value.is_none();
        let entry = SharedEntry::new(&key, value.as_deref().unwrap_or_default());
        let data = self.data_mut();
        let hash = data.hash(entry.key_bytes());
        data.insert(hash, EntryRef::of(&entry, deleted), version, grace_deadline);
        self.max_version = version;
        self.touch(now, version - 1);
        version
    }

    /// Applies a checked delta (see [`ReceivedDelta::check`]); the caller has checked the
    /// generation. The news moves into the replica.
    pub(crate) fn apply<'o>(
        &mut self,
        owner: impl Into<Owner<'o>>,
        delta: ReceivedDelta,
        now: Instant,
        grace_deadline: Instant,
        max_keys: usize,
        events: &mut Events,
    ) -> Result<Applied, NotApplied> {
        let owner = owner.into();
        if self.data.is_none() {
            if let Some(result) = self.apply_compact(owner, &delta, now, max_keys, events) {
                return result;
            }
            self.promote(owner.seed);
        }
        let mut applied = Applied::default();
        if self.admit(&delta)? {
            // We may hold keys whose tombstones the sender collected: start again. The
            // application keeps seeing the replica as it was (a reset in progress already
            // saved it) until the rebuilt one reaches it; the difference is reported then.
            if !self.is_shadowed() {
                let shadow = Box::new(self.snapshot());
                let data = self.data_mut();
                data.shadow = Some(shadow);
                data.catch_up = CatchUp::default();
            }
            self.clear();
            self.gc_watermark = delta.gc_watermark;
            applied.reset = true;
        }
        if let Some(data) = self.data.as_deref_mut().filter(|data| data.shadow.is_some()) {
            // How far the sender's replica goes: the rebuilt one catches up that far first.
            data.catch_up.advertised = data.catch_up.advertised.max(delta.sender_max_version);
        }
        let base = self.max_version;
        let mut reached = delta.to_version;
        // Under a shadow, the application hears of the changes when the shadow settles.
        let silent = self.is_shadowed();
        // The entries' event: one handle on their datagram (see `KeyChanges`).
        let mut changes = None;
        if delta.entries.last().is_some_and(|last| last.version > base) {
            let data = self.data_mut();
            data.seed(owner.seed);
            data.reserve(delta.entries.len());
            if !silent {
                let batch = KeyChanges::new(delta.datagram.clone(), Vec::with_capacity(delta.entries.len()));
                changes = Some((SharedStr::from(owner.name), batch));
            }
        }
        for entry in delta.entries.iter().filter(|entry| entry.version > base) {
            let source = delta.source(entry);
            let ReceivedEntry { version, deleted, .. } = *entry;
            // A tombstone has no value: one a sender sent anyway stays where it lies, unread
            // (`EntryRef::value`). Setting its span empty here cost a stall per entry: the
            // spans were then written as four integers and read back as one.
            let spans = entry.spans;
            let key = source.get(spans.key()).unwrap_or_default();
            let data = self.data_mut();
            let hash = data.hash(key);
            if data.len() >= max_keys && data.find(hash, key).is_none() {
                // The table is full: stop before this entry so no hole is left.
                applied.over_cap = 1;
                reached = version - 1;
                break;
            }
            if let Some((node, batch)) = changes.as_mut() {
                add_change(events, node, batch, source, spans, version, deleted);
            }
            data.insert(hash, EntryRef::new(source, spans, deleted), version, grace_deadline);
            applied.entries += 1;
        }
        if let Some((node, batch)) = changes {
            events.emit_keys(node, batch);
        }
        if reached <= base && !applied.reset {
            applied.from = base;
            applied.to = self.max_version;
            return if applied.over_cap > 0 { Ok(applied) } else { Err(NotApplied::AlreadyKnown) };
        }
        self.max_version = reached.max(self.max_version);
        if self.max_version >= delta.gc_watermark && delta.gc_watermark > self.gc_watermark {
            // We hold every version up to the sender's watermark: collect what it collected.
            self.collect_up_to(delta.gc_watermark);
        }
        self.settle_shadow(owner.name, events);
        self.touch(now, base);
        applied.from = base;
        applied.to = self.max_version;
        Ok(applied)
    }

    /// Whether `delta` may be applied: `Ok(true)` when it resets the replica.
    fn admit(&self, delta: &ReceivedDelta) -> Result<bool, NotApplied> {
        let behind_watermark =
            self.max_version < delta.gc_watermark && self.gc_watermark < delta.gc_watermark;
        // The other way round: a reset left this replica below its own watermark, and the
        // sender collected less and holds less than that watermark, so a key it holds live
        // may have been deleted, and the tombstone collected, below it (see the module docs).
        let stale_sender = self.max_version < self.gc_watermark
            && delta.gc_watermark < self.gc_watermark
            && delta.to_version.max(delta.sender_max_version) < self.gc_watermark;
        if delta.reset && behind_watermark {
            Ok(true)
        } else if delta.to_version <= self.max_version {
            Err(NotApplied::AlreadyKnown)
        } else if behind_watermark || stale_sender || delta.from_version > self.max_version {
            Err(NotApplied::Gap)
        } else {
            Ok(false)
        }
    }

    /// [`apply`](Self::apply) to a compact table (or an empty one, made compact), when the
    /// result is one: no reset, only live entries, in version order, few and small enough
    /// (see `compact`). `None`, the replica unchanged, when it is not.
    fn apply_compact(
        &mut self,
        owner: Owner<'_>,
        delta: &ReceivedDelta,
        now: Instant,
        max_keys: usize,
        events: &mut Events,
    ) -> Option<Result<Applied, NotApplied>> {
        let reset = match self.admit(delta) {
            Ok(reset) => reset,
            Err(refused) => return Some(Err(refused)),
        };
        let base = self.max_version;
        let limit = max_keys.min(compact::MAX_KEYS);
        let fresh = || delta.entries.iter().filter(move |entry| entry.version > base);
        // The count first: a delta of many entries (a whole table) is not scanned further.
        if reset || fresh().nth(limit).is_some() {
            return None;
        }
        let ordered = fresh().zip(fresh().skip(1)).all(|(entry, next)| entry.version < next.version);
        if !ordered || fresh().any(|entry| entry.deleted) {
            return None;
        }
        let news = fresh().map(|entry| {
            let source = delta.source(entry);
            let (key, value) = (entry.spans.key(), entry.spans.value());
            (entry.version, source.get(key).unwrap_or_default(), source.get(value).unwrap_or_default())
        });
        let entries = news.clone().count();
        if entries > 0 {
            let made = self.compact.is_none();
            let compact = self.compact.get_or_insert_with(Box::default);
            if !compact.store(news, limit) {
                if made {
                    // Made for this delta: the general table takes over from nothing.
                    self.compact = None;
                }
                return None;
            }
            report_changes(events, owner.name, delta, fresh(), entries);
        }
        self.max_version = delta.to_version;
        if self.max_version >= delta.gc_watermark && delta.gc_watermark > self.gc_watermark {
            // Nothing to collect: a compact table holds no tombstone.
            self.gc_watermark = delta.gc_watermark;
        }
        self.touch(now, base);
        Some(Ok(Applied { from: base, to: self.max_version, entries, reset: false, over_cap: 0 }))
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
        if !due.is_empty() {
            self.compact_again();
        }
        due.len()
    }

    /// Makes a general table compact again once it can be: its tombstones collected, no
    /// reset in progress, its live entries few and small enough (see `compact`). A table that
    /// saw one deletion would otherwise keep the general table's memory for good.
    fn compact_again(&mut self) {
        #[cfg(test)]
        if self.general_only {
            return;
        }
        let Some(data) = self.data.as_deref() else { return };
        if !data.tombstones.is_empty() || data.shadow.is_some() || data.len() > compact::MAX_KEYS {
            return;
        }
        let mut compact = CompactData {
            last_changed: data.last_changed,
            recent_base: data.recent_base,
            ..CompactData::default()
        };
        // No tombstone is left: every entry of the log is live.
        let live = data.log.iter().filter_map(|slot| {
            let entry = data.read(slot.entry?);
            Some((slot.version, entry.key_bytes(), entry.value()))
        });
        if compact.store(live, compact::MAX_KEYS) {
            self.data = None;
            self.compact = Some(Box::new(compact));
        }
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

    fn remove_version(&mut self, version: u64) {
        let Some(data) = self.data.as_deref_mut() else { return };
        data.tombstones.remove(&version);
        if let Some(at) = data.position_of(version) {
            data.remove_at(at);
        }
    }

    fn clear(&mut self) {
        if let Some(data) = self.data.as_mut() {
            data.clear();
        }
        if let Some(compact) = self.compact.as_mut() {
            compact.clear();
        }
        self.max_version = 0;
    }

    fn touch(&mut self, now: Instant, base: u64) {
        let (last_changed, recent_base) = self.recency_mut();
        if last_changed.is_none() {
            *recent_base = base;
        }
        *last_changed = Some(now);
    }

    /// Makes the whole table a recent change, as of `now` (the owner rejoined under a new
    /// generation: all of it is news to its peers).
    pub(crate) fn touch_all(&mut self, now: Instant) {
        let (last_changed, recent_base) = self.recency_mut();
        *last_changed = Some(now);
        *recent_base = 0;
    }

    /// Ends the current run of recent changes (called when it is older than the window).
    pub(crate) fn forget_recent(&mut self) {
        let max_version = self.max_version;
        if self.data.is_some() || self.compact.is_some() {
            let (last_changed, recent_base) = self.recency_mut();
            *last_changed = None;
            *recent_base = max_version;
        }
    }
}

/// Reports the entries of `delta` in `fresh` as changes of `owner`'s table, in one event
/// per buffer they lie in.
fn report_changes<'a>(
    events: &mut Events,
    owner: &str,
    delta: &'a ReceivedDelta,
    fresh: impl Iterator<Item = &'a ReceivedEntry>,
    count: usize,
) {
    let node = SharedStr::from(owner);
    let mut changes = KeyChanges::new(delta.datagram.clone(), Vec::with_capacity(count));
    for entry in fresh {
        add_change(
            events,
            &node,
            &mut changes,
            delta.source(entry),
            entry.spans,
            entry.version,
            entry.deleted,
        );
    }
    events.emit_keys(node, changes);
}

/// Adds the change whose key and value lie at `spans` in `source` to `changes`; when that is
/// another buffer than theirs (a stored entry from another datagram, or one decoded into the
/// delta's own buffer), queues the changes so far and goes on with a batch on `source`.
///
/// Inlined, as `ReplicaData::insert`: passed through memory, the entry's spans were read back
/// right after being written, a stall per entry.
#[inline]
fn add_change(
    events: &mut Events,
    node: &SharedStr,
    changes: &mut KeyChanges,
    source: &Bytes,
    spans: EntrySpans,
    version: u64,
    deleted: bool,
) {
    if !changes.push(source, spans, version, deleted) {
        start_batch(events, node, changes, source);
        changes.push(source, spans, version, deleted);
    }
}

/// Queues `changes` and leaves an empty batch on `source` in their place.
#[cold]
fn start_batch(events: &mut Events, node: &SharedStr, changes: &mut KeyChanges, source: &Bytes) {
    let full = std::mem::replace(changes, KeyChanges::new(source.clone(), Vec::with_capacity(1)));
    events.emit_keys(node.clone(), full);
}

#[cfg(test)]
mod tests;
