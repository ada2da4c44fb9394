//! d. a compact table behaves as the general one.

use super::*;

/// How often the runs below kept a table compact, and turned one into the general table.
#[derive(Debug, Default)]
struct Coverage {
    compact_at_end: usize,
    promoted: usize,
    compacted_again: usize,
}

/// The changes of `events` as comparable values.
fn plain(changes: &[Change]) -> Vec<(String, Vec<u8>, u64, bool)> {
    changes
        .iter()
        .map(|change| {
            (change.entry.key().to_owned(), change.entry.value().to_vec(), change.version, change.deleted)
        })
        .collect()
}

/// The same deltas, in the same order and under the same key cap, applied to a replica that
/// may be compact and to one made general from the start, their tombstones collected now and
/// then: the same results, the same events, the same entries and bookkeeping after every
/// step.
fn run_case(
    (ops, cuts, order, max_keys): &(Vec<Op>, Vec<CutSpec>, Vec<Index>, usize),
    coverage: &mut Coverage,
) -> Result<(), TestCaseError> {
    let now = t0();
    let owner = owner_after(ops, now);
    let mut deltas: Vec<v1::NodeDelta> = cuts.iter().map(|spec| spec.delta(&owner)).collect();
    // The first delta starts at 0 (the others are mostly gaps until one does).
    deltas[0] = cut_at(&owner, 0, cuts[0].take, false);
    let (mut compact, mut general) = (fresh(), fresh().general());
    let mut promoted = false;
    let first = std::iter::once(&deltas[0]);
    for (step, delta) in first.chain(order.iter().map(|index| index.get(&deltas))).enumerate() {
        let at = now + Duration::from_secs(step as u64);
        let compact_before = compact.is_compact();
        let (result, changes) = apply_capped(&mut compact, delta, at, *max_keys)?;
        let (expected, expected_changes) = apply_capped(&mut general, delta, at, *max_keys)?;
        prop_assert_eq!(result, expected, "step {}", step);
        prop_assert_eq!(plain(&changes), plain(&expected_changes), "step {}", step);
        prop_assert_eq!(full_state(&compact), full_state(&general), "step {}", step);
        promoted |= compact_before && !compact.is_compact();
        if step % 3 == 2 {
            compact.forget_recent();
            general.forget_recent();
        }
        if step % 4 == 3 {
            // Tombstones collected: a general table may become compact again.
            let was_general = !compact.is_compact();
            let later = at + GRACE;
            prop_assert_eq!(compact.collect_garbage(later), general.collect_garbage(later));
            prop_assert_eq!(full_state(&compact), full_state(&general), "step {} after collection", step);
            coverage.compacted_again += usize::from(was_general && compact.is_compact());
        }
    }
    coverage.compact_at_end += usize::from(compact.is_compact());
    coverage.promoted += usize::from(promoted);
    Ok(())
}

#[test]
fn a_compact_table_behaves_as_the_general_one() {
    // Live writes first, so that deltas of the oldest versions fit a compact table; then
    // anything, tombstones and more keys, so that later deltas turn it general.
    let writes = prop_oneof![
        (0..FREQUENT_KEYS, vec(any::<u8>(), 0..4)).prop_map(|(key, value)| Op::Write(key, value)),
        (0..KEYS.len(), vec(any::<u8>(), 0..40)).prop_map(|(key, value)| Op::Write(key, value)),
    ];
    let ops = (vec(writes, 1..8), vec(op(), 0..12)).prop_map(|(mut writes, rest)| {
        writes.extend(rest);
        writes
    });
    let case =
        (ops, vec(cut_spec(), 1..6), vec(any::<Index>(), 1..12), prop_oneof![Just(NO_CAP), 1..=KEYS.len()]);
    let mut runner = seeded_runner(2048);
    let coverage = std::cell::RefCell::new(Coverage::default());
    if let Err(error) = runner.run(&case, |case| run_case(&case, &mut coverage.borrow_mut())) {
        panic!("{error}");
    }
    let coverage = coverage.into_inner();
    assert!(coverage.compact_at_end > 300, "too few tables left compact: {coverage:?}");
    assert!(coverage.promoted > 60, "too few compact tables made general: {coverage:?}");
    assert!(coverage.compacted_again > 20, "too few general tables made compact again: {coverage:?}");
}
