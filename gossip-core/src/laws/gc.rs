//! d. garbage collection and resets, and what the application sees through a reset cut
//! short.

use super::*;

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
    let mut runner = seeded_runner(2048);
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

/// The property below: how often a peer that never collected offered the rebuilding
/// replica a key the owner had deleted and collected since.
#[derive(Debug, Default)]
struct StaleCoverage {
    offered: usize,
}

/// A reset cut short leaves the replica below the owner's watermark. A third peer synced
/// before the owner's later writes and collected nothing: its increments may hold a key live
/// that the owner deleted, and whose tombstone is gone. The rebuilt replica must not take
/// them: after catching up from the owner, it holds the owner's live keys, no other, and the
/// application (mirroring it from events) agrees.
fn run_stale_peer_case(case: &GcCase, coverage: &mut StaleCoverage) -> Result<(), TestCaseError> {
    let now = t0();
    let mut owner = owner_after(&case.before, now);
    let mut peer = fresh();
    let _ = apply(&mut peer, &full(&owner, 0), now)?;
    let (mut replica, mut view) = (fresh(), View::new());
    let (_, events) = apply_capped(&mut replica, &cut_at(&owner, 0, case.synced, false), now, NO_CAP)?;
    update_view(&mut view, events)?;
    run_ops(&mut owner, &case.after, now);
    owner.collect_garbage(now + GRACE + Duration::from_secs(1));
    if replica.max_version >= owner.gc_watermark {
        return Ok(());
    }
    let (_, events) = apply_capped(&mut replica, &cut_at(&owner, 0, case.reset_take, true), now, NO_CAP)?;
    update_view(&mut view, events)?;
    if peer.max_version > replica.max_version && replica.max_version < replica.gc_watermark {
        let offers_deleted = peer
            .entries_after(replica.max_version)
            .any(|(_, entry)| !entry.deleted && owner.get(entry.key()).is_none());
        coverage.offered += usize::from(offers_deleted);
        let increment = full(&peer, replica.max_version);
        let (_, events) = apply_capped(&mut replica, &increment, now, NO_CAP)?;
        update_view(&mut view, events)?;
    }
    let mut guard = 0;
    while replica.max_version < owner.max_version {
        let next = cut(&owner, replica.max_version, 1, false);
        let (_, events) = apply_capped(&mut replica, &next, now, NO_CAP)?;
        update_view(&mut view, events)?;
        guard += 1;
        prop_assert!(guard < 1_000);
    }
    for key in KEYS {
        prop_assert_eq!(replica.get(key).is_some(), owner.get(key).is_some(), "key {} came back", key);
    }
    prop_assert_eq!(&view, &live_view(&owner));
    Ok(())
}

#[test]
fn a_rebuilt_replica_takes_no_deleted_key_from_a_peer_that_collected_less() {
    let mut runner = seeded_runner(2048);
    let coverage = std::cell::RefCell::new(StaleCoverage::default());
    let result = runner.run(&gc_case(), |case| run_stale_peer_case(&case, &mut coverage.borrow_mut()));
    if let Err(error) = result {
        panic!("{error}");
    }
    let coverage = coverage.into_inner();
    assert!(coverage.offered > 20, "too few stale peers offering a deleted key: {coverage:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// An application that mirrors a replica from its events alone ends with the replica's
    /// live entries, also when the replica was rebuilt by a reset: a key that the reset
    /// removed (its tombstone was collected) must be reported deleted.
    #[test]
    fn events_mirror_the_replica_through_resets(case in gc_case()) {
        let now = t0();
        let (owner, mut replica, mut view) = synced_then_collected(&case, now)?;
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
        let (owner, mut replica, mut view) = synced_then_collected(&case, now)?;
        let deleted_by_owner: Vec<usize> = case.before.iter().chain(&case.after)
            .filter_map(|op| if let Op::Delete(key) = op { Some(*key) } else { None })
            .collect();
        let mut steps = vec![cut_at(&owner, 0, case.reset_take, true)];
        let mut guard = 0;
        loop {
            for delta in std::mem::take(&mut steps) {
                let (_, events) = apply_capped(&mut replica, &delta, now, NO_CAP)?;
                for change in &events {
                    let key = change.entry.key();
                    if change.deleted {
                        let index = KEYS.iter().position(|k| *k == key);
                        prop_assert!(
                            index.is_some_and(|i| deleted_by_owner.contains(&i)),
                            "{} deleted, the owner never did", key
                        );
                    } else {
                        let seen = view.get(key).map(|(_, v)| *v);
                        prop_assert!(seen.is_none_or(|seen| seen < change.version), "{} went from {:?} to {}", key, seen, change.version);
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

/// A replica synced from the owner's `before` writes (cut where `case.synced` says), mirrored
/// by an application view, and the owner after its `after` writes with its tombstones
/// collected: the start of the reset properties.
fn synced_then_collected(case: &GcCase, now: Instant) -> Result<(Replica, Replica, View), TestCaseError> {
    let mut owner = owner_after(&case.before, now);
    let mut replica = fresh();
    let mut view = View::new();
    let (_, events) = apply_capped(&mut replica, &cut_at(&owner, 0, case.synced, false), now, NO_CAP)?;
    update_view(&mut view, events)?;
    prop_assert_eq!(&view, &live_view(&replica));
    run_ops(&mut owner, &case.after, now);
    owner.collect_garbage(now + GRACE + Duration::from_secs(1));
    Ok((owner, replica, view))
}
