//! The invariant on what the application sees: the key events a node emits about a (node,
//! generation) never take a key's version back, and never report a delete the owner did not
//! make.
//!
//! A `KeyDeleted` is the owner's when the ledger holds a delete of the key above the last
//! version the observer reported for it and at most the event's version (its tombstone, or
//! one collected below the watermark the event carries), or a write of the key above the
//! event's version: the one case the replica documents, a key overwritten above the version
//! a rebuilt replica had reached (see `replica.rs`), whose new value follows.

use crate::event::{Event, SharedStr};
use crate::sim::invariants::ViolationKind;
use crate::sim::ledger::Ledger;
use std::collections::HashMap;

/// The last version each observer reported for each key of each (owner, generation).
#[derive(Debug, Default)]
pub(crate) struct AppEvents {
    /// (observer, observer's generation, owner, owner's generation, key) -> version.
    seen: HashMap<(u32, u64, u32, u64, SharedStr), u64>,
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
    /// Checks a key event and remembers it; the violation, if it breaks the invariant.
    pub(crate) fn check(&mut self, seen: Seen, event: &Event, ledger: &Ledger) -> Option<ViolationKind> {
        let (key, version, deleted, owner_name) = match event {
            Event::KeyChanged { key, version, node, .. } => (key, *version, false, node),
            Event::KeyDeleted { key, version, node } => (key, *version, true, node),
            _ => return None,
        };
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
        let owners = log.is_some_and(|log| {
            let after = last.unwrap_or(0);
            // A delete at or below the event's version, or any write of the key above it.
            (after + 1..=log.max_version()).any(|v| {
                log.write(v).is_some_and(|write| {
                    *write.key == **key && (write.value.is_none() || v > version)
                })
            })
        });
        (!owners).then(|| ViolationKind::FalseDelete {
            owner: owner_name.to_string(),
            generation: seen.owner_generation,
            key: key.to_string(),
            version,
        })
    }
}
