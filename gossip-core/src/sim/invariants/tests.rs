//! Unit tests of `invariants`.

use bytes::Bytes;

use super::*;

fn value(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

/// a=1 @1, b=2 @2, delete a @3, c=4 @4.
fn log() -> OwnerLog {
    let mut log = OwnerLog::new();
    log.record("a", Some(value("1")));
    log.record("b", Some(value("2")));
    log.record("a", None);
    log.record("c", Some(value("4")));
    log
}

fn snapshot<'a>(max_version: u64, entries: &[(&'a str, &'a Bytes, u64)]) -> ReplicaSnapshot<'a> {
    let entries = entries.iter().map(|(key, value, version)| (*key, &value[..], *version)).collect();
    ReplicaSnapshot { owner: "n1", generation: 1, max_version, entries }
}

#[test]
fn correct_replicas_pass_at_every_version() {
    let (one, two, four) = (value("1"), value("2"), value("4"));
    let log = log();
    assert_eq!(check_replica(&log, &snapshot(0, &[])), Ok(()));
    assert_eq!(check_replica(&log, &snapshot(1, &[("a", &one, 1)])), Ok(()));
    assert_eq!(check_replica(&log, &snapshot(2, &[("a", &one, 1), ("b", &two, 2)])), Ok(()));
    assert_eq!(check_replica(&log, &snapshot(3, &[("b", &two, 2)])), Ok(()));
    assert_eq!(check_replica(&log, &snapshot(4, &[("b", &two, 2), ("c", &four, 4)])), Ok(()));
}

#[test]
fn each_broken_replica_is_caught() {
    let (one, two, four, bad) = (value("1"), value("2"), value("4"), value("x"));
    let log = log();
    let check = |max, entries: &[(&str, &Bytes, u64)]| check_replica(&log, &snapshot(max, entries));
    assert!(matches!(check(5, &[]), Err(ViolationKind::AheadOfOwner { owner_max: 4, .. })));
    assert!(matches!(
        check(3, &[("a", &one, 1), ("b", &two, 2)]),
        Err(ViolationKind::Resurrected { live_version: 1, tombstone_version: 3, .. })
    ));
    assert!(matches!(
        check(2, &[("a", &one, 1)]),
        Err(ViolationKind::Hole { expected_version: 2, found: None, .. })
    ));
    assert!(matches!(
        check(4, &[("b", &two, 2)]),
        Err(ViolationKind::Hole { expected_version: 4, found: None, .. })
    ));
    assert!(matches!(
        check(2, &[("a", &one, 1), ("b", &two, 2), ("z", &four, 2)]),
        Err(ViolationKind::Unexpected { .. })
    ));
    assert!(matches!(check(1, &[("a", &one, 1), ("b", &two, 2)]), Err(ViolationKind::Unexpected { .. })));
    assert!(matches!(check(1, &[("a", &bad, 1)]), Err(ViolationKind::WrongValue { .. })));
}

#[test]
fn a_write_superseded_above_the_max_version_may_be_missing() {
    let (one, two, four) = (value("1"), value("2"), value("4"));
    let log = log();
    // a=1 @1 was deleted @3: a replica at 2 that got only b (built after the delete) is
    // what the owner's current entries up to 2 are.
    assert_eq!(check_replica(&log, &snapshot(2, &[("b", &two, 2)])), Ok(()));
    let mut log = log;
    log.record("a", Some(value("5")));
    // The tombstone of a @3 was overwritten @5: a replica at 4 may still hold a @1.
    let held = [("a", &one, 1), ("b", &two, 2), ("c", &four, 4)];
    assert_eq!(check_replica(&log, &snapshot(4, &held)), Ok(()));
    assert!(matches!(
        check_replica(&log, &snapshot(5, &[("a", &one, 1), ("b", &two, 2)])),
        Err(ViolationKind::Hole { expected_version: 5, .. })
    ));
}

#[test]
fn versions_going_back_are_caught() {
    let mut memory = VersionMemory::new();
    assert_eq!(memory.observe(0, 1, "n1", 1, 0), Ok(false), "nothing to remember yet");
    assert_eq!(memory.observe(0, 1, "n1", 1, 3), Ok(true));
    assert_eq!(memory.observe(0, 1, "n1", 1, 3), Ok(false));
    assert!(matches!(
        memory.observe(0, 1, "n1", 1, 2),
        Err(ViolationKind::VersionWentBack { was: (1, 3), now: (1, 2), .. })
    ));
    assert_eq!(memory.observe(0, 1, "n1", 2, 0), Ok(true), "a new generation starts again");
    assert!(memory.observe(0, 1, "n1", 1, 9).is_err(), "an older generation is going back");
    memory.forget(0);
    assert_eq!(memory.observe(0, 1, "n1", 1, 1), Ok(true), "a restarted observer starts afresh");
}

#[test]
fn sampling_picks_every_nth_step() {
    assert!(Checks::EveryStep.due(7));
    assert!(!Checks::Off.due(7));
    let sampled = Checks::Sampled { every: 3 };
    assert_eq!((1..=9).filter(|s| sampled.due(*s)).count(), 3);
}
