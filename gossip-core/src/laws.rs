//! Property tests of the replica's merge laws.
//!
//! An owner writes and deletes keys; deltas are cut from its table the way
//! `delta::pack_one` cuts them (a contiguous run `(from, to]` in version order, cut short
//! after any entry); replicas apply them in every order, with duplicates and repetitions.
//!
//! - **merge laws**: any sequence of the same deltas, repeated to a fixpoint, gives the
//!   replica that the sorted sequence gives (order independence, idempotence), which holds
//!   exactly the owner's entries up to the reachable version; the full delta then gives the
//!   owner's state;
//! - **no hole**: after every application the replica holds exactly the owner's entries up to
//!   its `max_version`, which never decreases;
//! - **gaps**: a delta starting above the replica's `max_version` is refused and changes
//!   nothing;
//! - **garbage collection**: once the owner collected tombstones, a replica behind its
//!   watermark refuses increments, a reset rebuilds it to the owner's state, and a deleted
//!   key never comes back;
//! - **what the application sees through a reset cut short**: the key events mirror the
//!   replica's view at every step, a key's version never goes back, and a key is reported
//!   deleted only if its owner deleted it, even when the owner overwrote it above the cut
//!   (the rebuilt replica stays hidden until it has caught up with the version the cut delta
//!   says the sender holds; see the module docs of `replica.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_proto::v1;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::budget::Budget;
use crate::config::Config;
use crate::delta::{self, ReceivedDelta};
use crate::digest;
use crate::event::{Event, Events};
use crate::identity::{Identity, address_to_wire};
use crate::metrics::Metrics;
use crate::replica::{Applied, NotApplied, Replica, StoredEntry};
use crate::shared_str::SharedStr;
use crate::table::{LOCAL, NodeTable};

/// The keys the owner writes: few, so that overwrites and deletes of live keys are common.
const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];
const OWNER: &str = "owner";
const GENERATION: u64 = 7;
const GRACE: Duration = Duration::from_secs(60);
const NO_CAP: usize = usize::MAX;

/// The base of every timestamp in this module.
fn t0() -> Instant {
    // Only differences from this base matter; nothing here depends on the wall clock.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    now
}

fn owner_address() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7946))
}

// ----- the owner's op log -----

#[derive(Debug, Clone)]
enum Op {
    Write(usize, Vec<u8>),
    /// A tombstone, written even when the key is not live (the replica must cope with it).
    Delete(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..KEYS.len(), vec(any::<u8>(), 0..4)).prop_map(|(key, value)| Op::Write(key, value)),
        2 => (0..KEYS.len()).prop_map(Op::Delete),
    ]
}

fn run_ops(owner: &mut Replica, ops: &[Op], now: Instant) {
    for op in ops {
        let (key, value) = match op {
            Op::Write(key, value) => (KEYS[*key], Some(Bytes::from(value.clone()))),
            Op::Delete(key) => (KEYS[*key], None),
        };
        owner.write(key.to_owned(), value, now, now + GRACE);
    }
}

fn owner_after(ops: &[Op], now: Instant) -> Replica {
    let mut owner = Replica::new(GENERATION, owner_address());
    run_ops(&mut owner, ops, now);
    owner
}

// ----- observing a replica -----

type Snapshot = Vec<(u64, StoredEntry)>;

/// Every entry, tombstones included, in version order.
fn snapshot(replica: &Replica) -> Snapshot {
    replica.entries_after(0).map(|(version, entry)| (version, entry.clone())).collect()
}

fn up_to(snapshot: &Snapshot, max_version: u64) -> Snapshot {
    snapshot.iter().filter(|(version, _)| *version <= max_version).cloned().collect()
}

fn live(snapshot: &Snapshot) -> Snapshot {
    snapshot.iter().filter(|(_, entry)| !entry.deleted).cloned().collect()
}

/// What two replicas must agree on to count as equal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    max_version: u64,
    gc_watermark: u64,
    entries: Snapshot,
    keys: usize,
    tombstones: usize,
}

fn state(replica: &Replica) -> State {
    State {
        max_version: replica.max_version,
        gc_watermark: replica.gc_watermark,
        entries: snapshot(replica),
        keys: replica.len(),
        tombstones: replica.tombstone_count(),
    }
}

/// Everything observable, bookkeeping included: what a refused delta must not touch.
fn full_state(replica: &Replica) -> (State, Option<Instant>, u64, u64) {
    (state(replica), replica.last_changed(), replica.recent_base(), replica.generation)
}

/// The replica's indexes agree with each other: one entry per key, tombstones counted.
fn check_consistent(replica: &Replica) -> Result<(), TestCaseError> {
    let entries = snapshot(replica);
    prop_assert_eq!(replica.len(), entries.len(), "one entry per key");
    let tombstones = entries.iter().filter(|(_, entry)| entry.deleted).count();
    prop_assert_eq!(replica.tombstone_count(), tombstones);
    for (version, entry) in &entries {
        prop_assert!(*version <= replica.max_version, "entry {} above max {}", version, replica.max_version);
        prop_assert!(replica.contains_key(&entry.key));
        match replica.get(&entry.key) {
            Some((live, live_version)) => {
                prop_assert!(!entry.deleted);
                prop_assert_eq!(live_version, *version);
                prop_assert_eq!(live, entry);
            }
            None => prop_assert!(entry.deleted, "live key {} not returned by get", entry.key),
        }
    }
    Ok(())
}

// ----- cutting and applying deltas -----

fn wire_entry(version: u64, entry: &StoredEntry) -> v1::Entry {
    v1::Entry { key: entry.key.to_string(), value: entry.value.clone(), version, deleted: entry.deleted }
}

/// The delta of `owner`'s entries after `from`, cut after `take` entries when that is fewer
/// than all of them (then `to_version` is the last entry's version), as `delta::pack_one`
/// builds it.
fn cut(owner: &Replica, from: u64, take: usize, reset: bool) -> v1::NodeDelta {
    let entries: Vec<v1::Entry> =
        owner.entries_after(from).map(|(version, entry)| wire_entry(version, entry)).collect();
    let truncated = take < entries.len();
    let mut delta = v1::NodeDelta {
        name: OWNER.to_owned(),
        generation: owner.generation,
        address: Some(address_to_wire(owner.address)),
        from_version: from,
        to_version: owner.max_version,
        gc_watermark: owner.gc_watermark,
        reset,
        entries,
        ..Default::default()
    };
    if truncated {
        delta.entries.truncate(take);
        delta.to_version = delta.entries.last().map_or(from, |entry| entry.version);
        // As `delta::pack_one` does: a delta cut short says how far the sender's table goes.
        delta.sender_max_version = owner.max_version;
    }
    assert!(checked(&delta).is_some(), "the test built an invalid delta: {delta:?}");
    delta
}

/// `delta` as a node receives it once checked (`None`: the check refuses it).
fn checked(delta: &v1::NodeDelta) -> Option<ReceivedDelta> {
    ReceivedDelta::check(delta.clone().into(), &Config::lan())
}

fn full(owner: &Replica, from: u64) -> v1::NodeDelta {
    cut(owner, from, usize::MAX, false)
}

/// Where a delta starts, and after how many entries it is cut (`None`: not cut).
#[derive(Debug, Clone, Copy)]
struct CutSpec {
    from: Index,
    take: Option<Index>,
}

fn cut_spec() -> impl Strategy<Value = CutSpec> {
    (any::<Index>(), proptest::option::of(any::<Index>())).prop_map(|(from, take)| CutSpec { from, take })
}

impl CutSpec {
    /// A delta of `owner` from an arbitrary version, cut after at least one entry.
    fn delta(self, owner: &Replica) -> v1::NodeDelta {
        let from = self.from.index(owner.max_version as usize + 1) as u64;
        cut_at(owner, from, self.take, false)
    }
}

/// The delta of `owner` after `from`, cut after `1 + take` entries (`take` modulo what is
/// there), or not cut at all when `take` is `None`.
fn cut_at(owner: &Replica, from: u64, take: Option<Index>, reset: bool) -> v1::NodeDelta {
    let available = owner.entries_after(from).count();
    let take = match take {
        Some(take) if available > 0 => 1 + take.index(available),
        _ => available,
    };
    cut(owner, from, take, reset)
}

/// Applies `delta` and checks what `apply` reports against what it did; returns the result
/// and the events it emitted.
fn apply_capped(
    replica: &mut Replica,
    delta: &v1::NodeDelta,
    now: Instant,
    max_keys: usize,
) -> Result<(Result<Applied, NotApplied>, Vec<Event>), TestCaseError> {
    let before = replica.max_version;
    let (seen_before, shadowed_before) = (replica.view().max_version, replica.is_shadowed());
    let mut events = Events::new(usize::MAX);
    let Some(received) = checked(delta) else {
        return Err(TestCaseError::fail(format!("the test built an invalid delta: {delta:?}")));
    };
    let result = replica.apply(OWNER, received, now, now + GRACE, max_keys, &mut events);
    let events: Vec<Event> = std::iter::from_fn(|| events.pop()).collect();
    match result {
        Ok(applied) => {
            if applied.reset || shadowed_before {
                // A reset, and whatever applies while it is in progress, is reported as the
                // difference the application sees once the rebuilt replica has caught up.
            } else {
                prop_assert_eq!(events.len(), applied.entries, "one event per applied entry");
            }
            if applied.over_cap > 0 && replica.max_version == before {
                // A full table refused the first new entry: nothing moved, and `apply`
                // returns early with `from = to = 0` (not the max version, as documented;
                // harmless, since the caller only heats a rumor when `to > from`).
                prop_assert_eq!(applied.entries, 0);
            } else {
                // The run that is news here: after a reset, everything from 0.
                let from = if applied.reset { 0 } else { before };
                prop_assert_eq!((applied.from, applied.to), (from, replica.max_version));
            }
        }
        Err(refusal) => {
            prop_assert!(events.is_empty());
            // A refusal says why, and rumor feedback relies on `AlreadyKnown` being exact.
            let expected =
                if delta.to_version <= before { NotApplied::AlreadyKnown } else { NotApplied::Gap };
            prop_assert_eq!(refusal, expected, "{:?} refused at max {}", delta, before);
        }
    }
    // What the application sees never goes back, however a reset was cut.
    prop_assert!(replica.view().max_version >= seen_before, "the application's version went back");
    check_consistent(replica)?;
    Ok((result, events))
}

fn apply(
    replica: &mut Replica,
    delta: &v1::NodeDelta,
    now: Instant,
) -> Result<Result<Applied, NotApplied>, TestCaseError> {
    Ok(apply_capped(replica, delta, now, NO_CAP)?.0)
}

/// What an application knows of a node's table from the events alone.
type View = BTreeMap<SharedStr, (Bytes, u64)>;

fn update_view(view: &mut View, events: Vec<Event>) -> Result<(), TestCaseError> {
    for event in events {
        match event {
            Event::KeyChanged { node, key, value, version } => {
                prop_assert_eq!(node.as_str(), OWNER);
                view.insert(key, (value, version));
            }
            Event::KeyDeleted { node, key, .. } => {
                prop_assert_eq!(node.as_str(), OWNER);
                view.remove(&key);
            }
            other => prop_assert!(false, "unexpected event {:?}", other),
        }
    }
    Ok(())
}

/// The live entries, as a view.
fn live_view(replica: &Replica) -> View {
    replica
        .live_entries()
        .map(|(version, entry)| (entry.key.clone(), (entry.value.clone(), version)))
        .collect()
}

/// Applies `sequence` in passes until a pass changes nothing; returns the number of passes.
fn apply_to_fixpoint(
    replica: &mut Replica,
    sequence: &[&v1::NodeDelta],
    now: Instant,
) -> Result<usize, TestCaseError> {
    // Each pass that changes something raises max_version to a new delta's `to`.
    for pass in 1..=sequence.len() + 2 {
        let before = state(replica);
        for delta in sequence {
            let _ = apply(replica, delta, now)?;
        }
        if state(replica) == before {
            return Ok(pass);
        }
    }
    Err(TestCaseError::fail("no fixpoint"))
}

/// The highest version reachable from 0 by chaining the deltas: the specification of the
/// merged replica's `max_version`.
fn reachable(deltas: &[&v1::NodeDelta]) -> u64 {
    let mut reached = 0;
    loop {
        let next = deltas
            .iter()
            .filter(|delta| delta.from_version <= reached && delta.to_version > reached)
            .map(|delta| delta.to_version)
            .max();
        match next {
            Some(next) => reached = next,
            None => return reached,
        }
    }
}

fn fresh() -> Replica {
    Replica::new(GENERATION, owner_address())
}

// ----- a. merge laws; b. no hole; c. gaps -----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Any order, duplication and repetition of the same deltas gives the same replica as
    /// the sorted order: exactly the owner's entries up to the reachable version. The full
    /// delta then gives exactly the owner's state.
    #[test]
    fn merge_is_order_independent_and_idempotent(
        ops in vec(op(), 0..24),
        cuts in vec(cut_spec(), 1..8),
        order in vec(any::<Index>(), 0..24),
    ) {
        let now = t0();
        let owner = owner_after(&ops, now);
        let owner_entries = snapshot(&owner);
        let deltas: Vec<v1::NodeDelta> = cuts.iter().map(|spec| spec.delta(&owner)).collect();
        let sequence: Vec<&v1::NodeDelta> = order.iter().map(|index| index.get(&deltas)).collect();

        let mut shuffled = fresh();
        apply_to_fixpoint(&mut shuffled, &sequence, now)?;
        let mut sorted_sequence = sequence.clone();
        sorted_sequence.sort_by_key(|delta| (delta.from_version, delta.to_version, delta.entries.len()));
        let mut sorted = fresh();
        let passes = apply_to_fixpoint(&mut sorted, &sorted_sequence, now)?;
        prop_assert!(passes <= 2, "the sorted order needs one pass (and one to see no change)");

        prop_assert_eq!(state(&shuffled), state(&sorted));
        let reached = reachable(&sequence);
        prop_assert_eq!(shuffled.max_version, reached);
        prop_assert_eq!(snapshot(&shuffled), up_to(&owner_entries, reached));

        // Idempotence: at the fixpoint every delta of the set is refused and changes nothing.
        let before = full_state(&shuffled);
        for delta in &sequence {
            prop_assert!(apply(&mut shuffled, delta, now)?.is_err());
        }
        prop_assert_eq!(full_state(&shuffled), before);

        // The full delta from 0 completes any of them to exactly the owner's table.
        let _ = apply(&mut shuffled, &full(&owner, 0), now)?;
        prop_assert_eq!(state(&shuffled), state(&owner));
    }

    /// After every single application the replica holds exactly the owner's entries up to
    /// its max version (no hole), and its max version never decreases. A refusal changes
    /// nothing. This holds with a key cap too: a full table stops a delta before its first
    /// new key.
    #[test]
    fn every_application_leaves_no_hole(
        ops in vec(op(), 0..24),
        cuts in vec(cut_spec(), 1..8),
        order in vec(any::<Index>(), 1..24),
        max_keys in prop_oneof![Just(NO_CAP), 1..=KEYS.len()],
    ) {
        let now = t0();
        let owner = owner_after(&ops, now);
        let owner_entries = snapshot(&owner);
        let deltas: Vec<v1::NodeDelta> = cuts.iter().map(|spec| spec.delta(&owner)).collect();
        let mut replica = fresh();
        let mut view = View::new();
        for index in &order {
            let delta = index.get(&deltas);
            let before = full_state(&replica);
            let (result, events) = apply_capped(&mut replica, delta, now, max_keys)?;
            update_view(&mut view, events)?;
            prop_assert_eq!(&view, &live_view(&replica), "the events tell another story");
            prop_assert!(replica.max_version >= before.0.max_version, "max_version went down");
            prop_assert!(replica.len() <= max_keys);
            prop_assert_eq!(snapshot(&replica), up_to(&owner_entries, replica.max_version), "a hole");
            if result.is_err() {
                prop_assert_eq!(full_state(&replica), before, "a refused delta changed the replica");
            }
        }
    }

    /// A delta that starts above the replica's max version (a gap) is refused and leaves the
    /// replica unchanged; so is one that brings nothing above it.
    #[test]
    fn a_gap_is_refused(
        ops in vec(op(), 2..24),
        synced in any::<Index>(),
        gap in any::<Index>(),
        take in proptest::option::of(any::<Index>()),
        stale in cut_spec(),
    ) {
        let now = t0();
        // The replica synced fully with the owner after a strict prefix of its log.
        let prefix = synced.index(ops.len() - 1) + 1;
        let earlier = owner_after(&ops[..prefix], now);
        let mut replica = fresh();
        let _ = apply(&mut replica, &full(&earlier, 0), now)?;
        let owner = owner_after(&ops, now);
        prop_assert!(replica.max_version < owner.max_version);

        let from =
            replica.max_version + 1 + gap.index((owner.max_version - replica.max_version) as usize) as u64;
        let delta = cut_at(&owner, from, take, false);
        prop_assert!(delta.from_version > replica.max_version);

        let before = full_state(&replica);
        prop_assert_eq!(apply(&mut replica, &delta, now)?, Err(NotApplied::Gap));
        prop_assert_eq!(full_state(&replica), before.clone());

        // A delta of the replica's own past brings nothing and is refused as well.
        let old = stale.delta(&earlier);
        prop_assert_eq!(apply(&mut replica, &old, now)?, Err(NotApplied::AlreadyKnown));
        prop_assert_eq!(full_state(&replica), before);
    }
}

// ----- d. garbage collection and resets -----

/// What the GC property saw, to check that both of its branches ran.
#[derive(Debug, Default)]
struct Coverage {
    behind: usize,
    not_behind: usize,
    resurrections_prevented: usize,
}

#[derive(Debug, Clone)]
struct GcCase {
    before: Vec<Op>,
    after: Vec<Op>,
    /// Where the stale replica's last sync cut the owner's table.
    synced: Option<Index>,
    /// The first reset delta may be cut short too.
    reset_take: Option<Index>,
    /// A non-reset delta the stale replica must refuse.
    increment: CutSpec,
}

fn gc_case() -> impl Strategy<Value = GcCase> {
    (
        vec(op(), 1..16),
        vec(op(), 0..16),
        proptest::option::of(any::<Index>()),
        proptest::option::of(any::<Index>()),
        cut_spec(),
    )
        .prop_map(|(before, after, synced, reset_take, increment)| GcCase {
            before,
            after,
            synced,
            reset_take,
            increment,
        })
}

fn run_gc_case(case: &GcCase, coverage: &mut Coverage) -> Result<(), TestCaseError> {
    let now = t0();
    let collect_at = now + GRACE + Duration::from_secs(1);

    // The stale replica synced (maybe only in part) with the owner as it was after `before`.
    let mut owner = owner_after(&case.before, now);
    let mut replica = fresh();
    let first = cut_at(&owner, 0, case.synced, false);
    let _ = apply(&mut replica, &first, now)?;
    let stale_keys: Vec<&str> = KEYS.iter().copied().filter(|key| replica.get(key).is_some()).collect();

    // The owner goes on, then collects every tombstone.
    run_ops(&mut owner, &case.after, now);
    let collected = owner.collect_garbage(collect_at);
    prop_assert_eq!(owner.tombstone_count(), 0);
    prop_assert_eq!(collected > 0, owner.gc_watermark > 0);
    let watermark = owner.gc_watermark;
    let owner_state = state(&owner);
    let owner_entries = snapshot(&owner);
    for key in &stale_keys {
        if owner.get(key).is_none() {
            coverage.resurrections_prevented += 1;
        }
    }

    let behind = replica.max_version < watermark && replica.gc_watermark < watermark;
    if behind {
        coverage.behind += 1;
        // Increments are refused, whatever their start and cut.
        let before = full_state(&replica);
        let from_max = cut(&owner, replica.max_version, usize::MAX, false);
        prop_assert_eq!(apply(&mut replica, &from_max, now)?, Err(NotApplied::Gap));
        let from_any = case.increment.delta(&owner);
        if from_any.from_version <= replica.max_version {
            prop_assert!(apply(&mut replica, &from_any, now)?.is_err());
        }
        prop_assert_eq!(full_state(&replica), before);

        // A reset rebuilds it, possibly over several cut deltas.
        let reset = cut_at(&owner, 0, case.reset_take, true);
        let applied = apply(&mut replica, &reset, now)?;
        prop_assert!(applied.is_ok_and(|applied| applied.reset), "reset refused: {:?}", applied);
        prop_assert_eq!(replica.gc_watermark, watermark);
        prop_assert_eq!(snapshot(&replica), up_to(&owner_entries, replica.max_version));
        while replica.max_version < owner.max_version {
            let next = cut(&owner, replica.max_version, 1, false);
            prop_assert!(apply(&mut replica, &next, now)?.is_ok());
            prop_assert_eq!(snapshot(&replica), up_to(&owner_entries, replica.max_version));
        }
        prop_assert_eq!(state(&replica), owner_state);
    } else {
        coverage.not_behind += 1;
        // Increments are safe: the replica holds every version the owner collected.
        let increment = cut(&owner, replica.max_version, usize::MAX, false);
        let _ = apply(&mut replica, &increment, now)?;
        prop_assert_eq!(replica.max_version, owner.max_version);
        prop_assert_eq!(live(&snapshot(&replica)), live(&owner_entries));
        // The replica's own collection then brings it to the owner's exact state.
        replica.collect_garbage(collect_at);
        prop_assert_eq!(state(&replica), owner_state);
    }
    for key in KEYS {
        prop_assert_eq!(replica.get(key).is_some(), owner.get(key).is_some(), "key {} came back", key);
    }
    Ok(())
}

/// Tombstones collected at the owner make a replica behind the watermark refuse increments;
/// a reset rebuilds it to exactly the owner's state, and no deleted key comes back.
#[test]
fn collected_tombstones_force_a_reset_and_deleted_keys_stay_deleted() {
    let mut runner = TestRunner::new(RunnerConfig::with_cases(2048));
    let coverage = std::cell::RefCell::new(Coverage::default());
    let result = runner.run(&gc_case(), |case| run_gc_case(&case, &mut coverage.borrow_mut()));
    if let Err(error) = result {
        panic!("{error}");
    }
    let coverage = coverage.into_inner();
    assert!(coverage.behind > 50, "too few cases behind the watermark: {coverage:?}");
    assert!(coverage.not_behind > 50, "too few cases ahead of the watermark: {coverage:?}");
    assert!(coverage.resurrections_prevented > 20, "too few deleted stale keys: {coverage:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// An application that mirrors a replica from its events alone ends with the replica's
    /// live entries, also when the replica was rebuilt by a reset: a key that the reset
    /// removed (its tombstone was collected) must be reported deleted.
    #[test]
    fn events_mirror_the_replica_through_resets(case in gc_case()) {
        let now = t0();
        let mut owner = owner_after(&case.before, now);
        let mut replica = fresh();
        let mut view = View::new();
        let (_, events) = apply_capped(&mut replica, &cut_at(&owner, 0, case.synced, false), now, NO_CAP)?;
        update_view(&mut view, events)?;
        prop_assert_eq!(&view, &live_view(&replica));
        run_ops(&mut owner, &case.after, now);
        owner.collect_garbage(now + GRACE + Duration::from_secs(1));
        let behind = replica.max_version < owner.gc_watermark;
        let delta = if behind {
            cut(&owner, 0, usize::MAX, true)
        } else {
            cut(&owner, replica.max_version, usize::MAX, false)
        };
        let (_, events) = apply_capped(&mut replica, &delta, now, NO_CAP)?;
        update_view(&mut view, events)?;
        prop_assert_eq!(live_view(&replica), live_view(&owner));
        prop_assert_eq!(&view, &live_view(&replica), "the application still sees keys the reset removed");
    }

    /// A reset cut short (saying how far the sender's table goes), then increments one entry
    /// at a time, as lossy datagrams bring them: the application, mirroring
    /// the replica from its events, sees at every step exactly the replica's view; the
    /// versions it sees of each key only grow; every key it is told is deleted was deleted by
    /// the owner (a key overwritten above the version the rebuilt replica has reached is not
    /// deleted: before the catch-up target, the shadow ended there and reported it so); and at
    /// the end it holds the owner's state.
    #[test]
    fn the_application_sees_no_flicker_through_cut_resets(case in gc_case()) {
        let now = t0();
        let mut owner = owner_after(&case.before, now);
        let mut replica = fresh();
        let mut view = View::new();
        let (_, events) = apply_capped(&mut replica, &cut_at(&owner, 0, case.synced, false), now, NO_CAP)?;
        update_view(&mut view, events)?;
        run_ops(&mut owner, &case.after, now);
        owner.collect_garbage(now + GRACE + Duration::from_secs(1));
        let deleted_by_owner: Vec<usize> = case.before.iter().chain(&case.after)
            .filter_map(|op| if let Op::Delete(key) = op { Some(*key) } else { None })
            .collect();
        let mut steps = vec![cut_at(&owner, 0, case.reset_take, true)];
        let mut guard = 0;
        loop {
            for delta in std::mem::take(&mut steps) {
                let (_, events) = apply_capped(&mut replica, &delta, now, NO_CAP)?;
                for event in &events {
                    match event {
                        Event::KeyChanged { key, version, .. } => {
                            let seen = view.get(key).map(|(_, v)| *v);
                            prop_assert!(seen.is_none_or(|seen| seen < *version), "{} went from {:?} to {}", key, seen, version);
                        }
                        Event::KeyDeleted { key, .. } => {
                            let index = KEYS.iter().position(|k| *k == key.as_str());
                            prop_assert!(
                                index.is_some_and(|i| deleted_by_owner.contains(&i)),
                                "{} deleted, the owner never did", key
                            );
                        }
                        _ => {}
                    }
                }
                update_view(&mut view, events)?;
                prop_assert_eq!(&view, &live_view(replica.view()));
            }
            if replica.max_version >= owner.max_version {
                break;
            }
            steps.push(cut(&owner, replica.max_version, 1, false));
            guard += 1;
            prop_assert!(guard < 1_000);
        }
        prop_assert!(!replica.is_shadowed());
        prop_assert_eq!(&view, &live_view(&owner));
    }
}

// ----- the same through the real planner and packer -----

#[derive(Debug, Clone)]
struct SyncCase {
    before: Vec<Op>,
    after: Vec<Op>,
    synced: Option<Index>,
    /// Bytes per datagram for the deltas, small enough to force cuts.
    room: usize,
    collect: bool,
    seed: u64,
}

fn sync_case() -> impl Strategy<Value = SyncCase> {
    (
        vec(op(), 1..16),
        vec(op(), 0..16),
        proptest::option::of(any::<Index>()),
        90usize..400,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(before, after, synced, room, collect, seed)| SyncCase {
            before,
            after,
            synced,
            room,
            collect,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// A stale replica that repeatedly sends its digest entry and applies what
    /// `digest::compare` plans and `delta::pack` packs in small datagrams reaches exactly the
    /// owner's live state, with no hole on the way and no deleted key coming back, whether
    /// or not the owner collected its tombstones.
    #[test]
    fn digest_and_pack_bring_a_stale_replica_to_the_owner(case in sync_case()) {
        let now = t0();
        let identity = Identity::new(OWNER, GENERATION, owner_address());
        let mut table = NodeTable::new(&identity);
        let write_all = |table: &mut NodeTable, ops: &[Op]| {
            table.modify(LOCAL, |_, owner| run_ops(owner, ops, now));
        };
        write_all(&mut table, &case.before);
        let mut replica = fresh();
        let first = cut_at(table.local(), 0, case.synced, false);
        let _ = apply(&mut replica, &first, now)?;
        write_all(&mut table, &case.after);
        if case.collect {
            table.collect_garbage(now + GRACE + Duration::from_secs(1));
        }
        let owner_entries = snapshot(table.local());
        let owner_max = table.local().max_version;

        let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
        let mut metrics = Metrics::default();
        let mut rounds = 0;
        let mut before = replica.max_version;
        while replica.max_version < owner_max {
            rounds += 1;
            prop_assert!(rounds <= 64, "no convergence");
            let ours = digest::entry(OWNER, &replica);
            let limits = digest::Limits { max_nodes: 16, max_version_jump: u64::MAX };
            let source = crate::membership::Source::Sender("peer");
            let mut comparison = digest::compare(&table, &[ours], limits, source, &mut metrics);
            prop_assert_eq!(comparison.deltas.len(), 1, "the owner is ahead, so it plans one delta");
            let mut budget = Budget::new(case.room, 0);
            let plans = delta::by_need(std::mem::take(&mut comparison.deltas), &mut rng);
            let (deltas, _) = delta::pack(&table, plans, &mut budget);
            prop_assert_eq!(deltas.len(), 1, "room for one entry at least");
            let applied = apply(&mut replica, &deltas[0], now)?;
            prop_assert!(applied.is_ok(), "a planned delta was refused: {:?} {:?}", deltas[0], applied);
            prop_assert!(replica.max_version > before, "no progress");
            before = replica.max_version;
        }
        prop_assert_eq!(live(&snapshot(&replica)), live(&owner_entries));
        if rounds > 0 {
            // Caught up by deltas: tombstones too, and the watermark.
            prop_assert_eq!(state(&replica), state(table.local()));
        }
        for key in KEYS {
            prop_assert_eq!(replica.get(key).is_some(), table.local().get(key).is_some(), "key {} came back", key);
        }
        prop_assert_eq!(metrics, Metrics::default());
    }
}
