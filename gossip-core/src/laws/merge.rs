//! a. merge laws (order independence, idempotence); b. no hole; c. gaps.

use super::*;

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
