//! The invariant on what the application sees: the key events a node emits about a (node,
//! generation) never take a key's version back, and never report a delete the owner did not
//! make.
//!
//! A deletion is the owner's when the ledger holds a delete of the key above the last
//! version the observer reported for it (its tombstone, or one collected below the
//! watermark the event carries). A key its owner only overwrote is never reported deleted,
//! not even when a reset rebuilt the observer's replica below the overwrite (see
//! `replica.rs`).

use crate::event::KeyChange;
use crate::shared_str::SharedStr;
use crate::sim::invariants::ViolationKind;
use crate::sim::ledger::Ledger;
use std::collections::BTreeMap;

/// The last version each observer reported for each key of each (owner, generation).
#[derive(Debug, Default)]
pub(crate) struct AppEvents {
    /// (observer, observer's generation, owner, owner's generation, key) -> version.
    seen: BTreeMap<(u32, u64, u32, u64, SharedStr), u64>,
}

/// One key change of an [`Event::KeysChanged`], as the invariant reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyEvent {
    pub(crate) owner: SharedStr,
    pub(crate) key: SharedStr,
    pub(crate) version: u64,
    pub(crate) deleted: bool,
}

impl KeyEvent {
    /// `owner`'s `change`, as the invariant reads it.
    pub(crate) fn of(owner: &SharedStr, change: KeyChange<'_>) -> Self {
        Self {
            owner: owner.clone(),
            key: change.key().into(),
            version: change.version(),
            deleted: change.is_deleted(),
        }
    }
}

/// Who saw an event about whom.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    pub(crate) observer: usize,
    pub(crate) observer_generation: u64,
    pub(crate) owner: usize,
    pub(crate) owner_generation: u64,
}

impl AppEvents {
    /// Forgets what `observer` was told of `owner`'s tables: it discovered the owner anew (it
    /// had forgotten it), so it learns them from scratch.
    pub(crate) fn forget(&mut self, observer: usize, owner: usize) {
        self.seen.retain(|(seen_by, _, of, _, _), _| !(*seen_by == observer as u32 && *of == owner as u32));
    }

    /// Checks a key change and remembers it; the violation, if it breaks the invariant.
    pub(crate) fn check(&mut self, seen: Seen, event: &KeyEvent, ledger: &Ledger) -> Option<ViolationKind> {
        let KeyEvent { owner: owner_name, key, version, deleted } = event;
        let (version, deleted) = (*version, *deleted);
        let id = (
            seen.observer as u32,
            seen.observer_generation,
            seen.owner as u32,
            seen.owner_generation,
            key.clone(),
        );
        let last = self.seen.insert(id, version);
        if let Some(last) = last.filter(|last| version < *last) {
            return Some(ViolationKind::EventWentBack {
                owner: owner_name.to_string(),
                generation: seen.owner_generation,
                key: key.to_string(),
                was: last,
                now: version,
            });
        }
        if !deleted {
            return None;
        }
        let log = ledger.log(seen.owner, seen.owner_generation);
        let after = last.unwrap_or(0);
        let of_key = |v: u64| log.and_then(|log| log.write(v)).filter(|write| *write.key == *key);
        let max = log.map_or(0, |log| log.max_version());
        // The owner's delete since the last event (its tombstone, or one collected below the
        // watermark the event carries). A key the owner only overwrote is not deleted, even
        // above the version a rebuilt replica has reached (see `replica.rs`).
        if (after + 1..=max).any(|v| of_key(v).is_some_and(|write| write.value.is_none())) {
            return None;
        }
        // The same tombstone again: an observer that dropped the replica (it held the owner
        // dead, say) and pulled it anew hears of the delete a second time, at its version.
        if last == Some(version) && of_key(version).is_some_and(|write| write.value.is_none()) {
            return None;
        }
        Some(ViolationKind::FalseDelete {
            owner: owner_name.to_string(),
            generation: seen.owner_generation,
            key: key.to_string(),
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn changed(key: &str, version: u64) -> KeyEvent {
        KeyEvent { owner: "n1".into(), key: key.into(), version, deleted: false }
    }

    fn deleted(key: &str, version: u64) -> KeyEvent {
        KeyEvent { owner: "n1".into(), key: key.into(), version, deleted: true }
    }

    #[test]
    fn versions_back_and_deletes_the_owner_never_made_are_caught() {
        let mut ledger = Ledger::default();
        ledger.record(1, 1, "a", Some(Bytes::from_static(b"1"))); // 1
        ledger.record(1, 1, "b", Some(Bytes::from_static(b"2"))); // 2
        ledger.record(1, 1, "a", None); // 3: a deleted
        ledger.record(1, 1, "b", Some(Bytes::from_static(b"4"))); // 4: b overwritten
        let seen = Seen { observer: 0, observer_generation: 1, owner: 1, owner_generation: 1 };
        let mut app = AppEvents::default();
        assert_eq!(app.check(seen, &changed("a", 1), &ledger), None);
        assert_eq!(app.check(seen, &changed("b", 2), &ledger), None);
        // The delete of a at 3, reported as its tombstone or under a watermark above it.
        assert_eq!(app.check(seen, &deleted("a", 3), &ledger), None);
        // b was overwritten at 4, never deleted: a delete event of b is false, at any version.
        assert!(matches!(
            app.check(seen, &deleted("b", 3), &ledger),
            Some(ViolationKind::FalseDelete { .. })
        ));
        assert!(matches!(
            app.check(seen, &changed("b", 2), &ledger),
            Some(ViolationKind::EventWentBack { .. })
        ));
        // The delete of a at 3 again (the observer pulled the replica anew): a repeat, not a
        // false delete; at another version it would be one.
        assert_eq!(app.check(seen, &deleted("a", 3), &ledger), None);
        // Another observer saw b at 2; its owner never deleted b at or below 4.
        let other = Seen { observer: 2, ..seen };
        assert_eq!(app.check(other, &changed("b", 2), &ledger), None);
        assert!(matches!(
            app.check(other, &deleted("b", 4), &ledger),
            Some(ViolationKind::FalseDelete { .. })
        ));
    }
}
