//! Invariant checks: what must hold of every replica at every moment, whatever the network
//! did.
//!
//! 1. **Versions only grow**: for a given owner and generation, a replica's max version never
//!    decreases (and a replica never goes back to an older generation).
//! 2. **No replica is ahead of its owner**, or holds a generation the owner never ran.
//! 3. **No deleted key comes back**: once a replica's max version covers a tombstone, the key
//!    is not live there at an older version.
//! 4. **No hole** (the Scuttlebutt rule): a replica at max version `m` holds, for each key,
//!    exactly the owner's latest write at or below `m`, with its value; unless the owner
//!    wrote that key again above `m`: deltas are built from the owner's current entries, so
//!    the superseded write is no longer there to send (DESIGN.md: a replica holds "the
//!    owner's entries with version <= that number"), and the replica may hold an older write
//!    of that key, or none, until it reaches the newer one.
//! 5. **Incarnations only grow**: for a given member and generation, the incarnation a node
//!    holds never decreases.
//! 6. **Nobody accuses itself**: a node never holds itself Suspect or Dead.
//! 7. **Bounded memory**: every table and queue of a node stays within its cap
//!    ([`Footprint::over_cap`]).
//!
//! After faults have healed and the cluster had time to settle, [`check_agreement`] checks
//! that every live node agrees with every other, and with the truth: same live members under
//! their current generation, all Alive, and every live member's table exactly as its owner
//! wrote it.
//!
//! The truth is the simulator's [`Ledger`] of the writes it made. The checks are plain
//! functions over snapshots ([`check_replica`], [`VersionMemory`]), so they can be tested on
//! synthetic observations as well as on a running cluster.

use rand_core::Rng;

use crate::footprint::Footprint;
use crate::membership::MemberState;
use crate::node::Node;
use crate::sim::FixedHashMap;
use crate::sim::ledger::{Ledger, OwnerLog};
pub use crate::sim::violation::ViolationKind;

/// How often the simulator runs the invariant checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Checks {
    /// After every step, on the node that step drove (for tests; costs O(n) per step).
    #[default]
    EveryStep,
    /// On the node driven by every `every`-th step (for large runs).
    Sampled {
        /// Steps between two checks; 1 is the same as [`Checks::EveryStep`].
        every: u64,
    },
    /// Never, except when [`crate::sim::Simulation::check_all`] is called.
    Off,
}

impl Checks {
    /// Whether step number `step` (counting from 1) is checked.
    pub(crate) fn due(self, step: u64) -> bool {
        match self {
            Self::EveryStep => true,
            Self::Sampled { every } => every <= 1 || step % every == 0,
            Self::Off => false,
        }
    }
}

/// What one node holds of one owner's table, as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSnapshot<'a> {
    /// The owner's name.
    pub owner: &'a str,
    /// The owner's generation the replica holds.
    pub generation: u64,
    /// The replica's max version.
    pub max_version: u64,
    /// Its live entries as `(key, value, version)`.
    pub entries: Vec<(&'a str, &'a [u8], u64)>,
}

/// Checks one replica against the owner's log of the same generation (invariants 2 to 4).
pub fn check_replica(log: &OwnerLog, replica: &ReplicaSnapshot<'_>) -> Result<(), ViolationKind> {
    let (owner, generation) = (replica.owner.to_owned(), replica.generation);
    if replica.max_version > log.max_version() {
        return Err(ViolationKind::AheadOfOwner {
            owner,
            generation,
            max_version: replica.max_version,
            owner_max: log.max_version(),
        });
    }
    let expected = log.state_at(replica.max_version);
    let current = log.state_at(log.max_version());
    // Written again above the replica's max version: its write at or below it may be gone.
    let superseded = |key: &str| current.get(key).is_some_and(|(latest, _)| *latest > replica.max_version);
    let held: FixedHashMap<&str, (u64, &[u8])> =
        replica.entries.iter().map(|(key, value, version)| (*key, (*version, *value))).collect();
    // Deletes first: a resurrection is the most specific diagnosis.
    for (key, (tombstone_version, value)) in &expected {
        match held.get(key) {
            Some((live_version, _))
                if value.is_none() && live_version < tombstone_version && !superseded(key) =>
            {
                return Err(ViolationKind::Resurrected {
                    owner,
                    generation,
                    key: (*key).to_owned(),
                    live_version: *live_version,
                    tombstone_version: *tombstone_version,
                });
            }
            _ => {}
        }
    }
    for (key, value, version) in &replica.entries {
        let unexpected = || ViolationKind::Unexpected {
            owner: owner.clone(),
            generation,
            key: (*key).to_owned(),
            version: *version,
        };
        match expected.get(key) {
            _ if *version > replica.max_version => return Err(unexpected()),
            None => return Err(unexpected()),
            Some((want, _)) if want > version && superseded(key) => {}
            Some((want, _)) if want > version => {
                return Err(ViolationKind::Hole {
                    owner,
                    generation,
                    key: (*key).to_owned(),
                    expected_version: *want,
                    found: Some(*version),
                });
            }
            Some((want, _)) if want < version => return Err(unexpected()),
            Some((_, None)) => return Err(unexpected()),
            Some((_, Some(want))) if want != value => {
                return Err(ViolationKind::WrongValue {
                    owner,
                    generation,
                    key: (*key).to_owned(),
                    version: *version,
                });
            }
            Some(_) => {}
        }
    }
    for (key, (version, value)) in &expected {
        if value.is_some() && !held.contains_key(key) && !superseded(key) {
            return Err(ViolationKind::Hole {
                owner,
                generation,
                key: (*key).to_owned(),
                expected_version: *version,
                found: None,
            });
        }
    }
    Ok(())
}

/// What each node last showed of each owner's replica (invariant 1). Only replicas with a
/// version above zero are remembered, so memory follows the data, not n².
#[derive(Debug, Clone, Default)]
pub struct VersionMemory {
    /// `(generation, max_version)` per observer, indexed by owner (dense: simulator indices
    /// are small, and this runs for every member at every step).
    seen: Vec<Vec<Option<(u64, u64)>>>,
    /// `(generation, incarnation)` per observer and member, once above zero.
    incarnations: Vec<Vec<Option<(u64, u32)>>>,
    /// Members each observer had forgotten at its last check (its `members_forgotten`).
    forgotten: Vec<u64>,
    /// Each observer's table summary at its last check: while it is the same, no member's
    /// generation, max version, incarnation or state changed there, so the per-member checks
    /// would find what they found then (they run on every step that changes the table).
    summaries: Vec<Option<crate::summary::DigestSummary>>,
}

impl VersionMemory {
    /// An empty memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `observer` holds `owner` at `(generation, max_version)`; fails if that
    /// is behind what it showed before. Returns whether it changed since the last look.
    pub fn observe(
        &mut self,
        observer: usize,
        owner: usize,
        owner_name: &str,
        generation: u64,
        max_version: u64,
    ) -> Result<bool, ViolationKind> {
        let seen = slot(&mut self.seen, observer, owner);
        let now = (generation, max_version);
        match *seen {
            Some(was) if now < was => {
                Err(ViolationKind::VersionWentBack { owner: owner_name.to_owned(), was, now })
            }
            Some(was) if was == now => Ok(false),
            None if max_version == 0 => Ok(false),
            _ => {
                *seen = Some(now);
                Ok(true)
            }
        }
    }

    /// Records that `observer` holds `member` under `generation` at `incarnation`; fails if
    /// the incarnation went down within a generation (invariant 5). A newer generation
    /// starts again from zero.
    pub fn observe_incarnation(
        &mut self,
        observer: usize,
        member: usize,
        member_name: &str,
        generation: u64,
        incarnation: u32,
    ) -> Result<(), ViolationKind> {
        let seen = slot(&mut self.incarnations, observer, member);
        match *seen {
            Some((was_generation, was)) if was_generation == generation && incarnation < was => {
                Err(ViolationKind::IncarnationWentBack {
                    member: member_name.to_owned(),
                    generation,
                    was,
                    now: incarnation,
                })
            }
            // Generations going back are invariant 1's business.
            Some((was_generation, _)) if generation < was_generation => Ok(()),
            Some(was) if was == (generation, incarnation) => Ok(()),
            None if incarnation == 0 => Ok(()),
            _ => {
                *seen = Some((generation, incarnation));
                Ok(())
            }
        }
    }

    /// Tells the memory how many members `observer` has forgotten so far (its
    /// `Metrics::members_forgotten`). When the count grew, what it showed of members it no
    /// longer holds is dropped: forgetting a departed member (after `swim.dead_retention`)
    /// deletes everything about it by design, and a later rediscovery starts afresh.
    pub fn note_forgotten(&mut self, observer: usize, forgotten: u64, held: impl Iterator<Item = usize>) {
        if self.forgotten.len() <= observer {
            self.forgotten.resize(observer + 1, 0);
        }
        if std::mem::replace(&mut self.forgotten[observer], forgotten) == forgotten {
            return;
        }
        let mut kept = Vec::new();
        for member in held {
            if kept.len() <= member {
                kept.resize(member + 1, false);
            }
            kept[member] = true;
        }
        let is_held = |member: usize| kept.get(member).copied().unwrap_or(false);
        if let Some(seen) = self.seen.get_mut(observer) {
            seen.iter_mut().enumerate().filter(|(member, _)| !is_held(*member)).for_each(|(_, s)| *s = None);
        }
        if let Some(seen) = self.incarnations.get_mut(observer) {
            seen.iter_mut().enumerate().filter(|(member, _)| !is_held(*member)).for_each(|(_, s)| *s = None);
        }
    }

    /// Forgets what `observer` showed (it crashed or restarted with an empty table).
    pub fn forget(&mut self, observer: usize) {
        if let Some(seen) = self.seen.get_mut(observer) {
            seen.clear();
        }
        if let Some(seen) = self.incarnations.get_mut(observer) {
            seen.clear();
        }
        if let Some(count) = self.forgotten.get_mut(observer) {
            *count = 0;
        }
        if let Some(summary) = self.summaries.get_mut(observer) {
            *summary = None;
        }
    }

    /// Records `observer`'s table summary; returns whether it is the one of the last check.
    fn same_summary(&mut self, observer: usize, summary: crate::summary::DigestSummary) -> bool {
        if self.summaries.len() <= observer {
            self.summaries.resize(observer + 1, None);
        }
        self.summaries[observer].replace(summary) == Some(summary)
    }
}

/// The entry of `table` for (`observer`, `member`), grown on first use.
fn slot<T>(table: &mut Vec<Vec<Option<T>>>, observer: usize, member: usize) -> &mut Option<T> {
    if table.len() <= observer {
        table.resize_with(observer + 1, Vec::new);
    }
    let row = &mut table[observer];
    if row.len() <= member {
        row.resize_with(member + 1, || None);
    }
    &mut row[member]
}

/// Runs the checks on one live node.
///
/// `owner_of` maps a node name to its simulator index (names the simulator did not make are
/// skipped). With `full`, every replica is compared with the ledger, not only the ones whose
/// version changed since the last check.
pub(crate) fn check_node<R: Rng>(
    observer: usize,
    node: &Node<R>,
    ledger: &Ledger,
    memory: &mut VersionMemory,
    owner_of: impl Fn(&str) -> Option<usize>,
    full: bool,
) -> Result<(), ViolationKind> {
    check_footprint(node.footprint(), node.config())?;
    if memory.same_summary(observer, node.table.summary()) && !full {
        // Nothing the member checks read has changed (a shadow ending without a new
        // version is seen at the next change; the key events are checked one by one).
        return Ok(());
    }
    let held = node.nodes().filter_map(|view| owner_of(view.name));
    memory.note_forgotten(observer, node.metrics().members_forgotten, held);
    for view in node.nodes() {
        let Some(owner) = owner_of(view.name) else { continue };
        if owner == observer && matches!(view.state, MemberState::Suspect | MemberState::Dead) {
            return Err(ViolationKind::SelfAccused { state: view.state });
        }
        memory.observe_incarnation(observer, owner, view.name, view.generation, view.incarnation)?;
        let changed = memory.observe(observer, owner, view.name, view.generation, view.max_version)?;
        if !(changed || full) || (view.max_version == 0 && view.keys == 0) {
            continue;
        }
        let Some(log) = ledger.log(owner, view.generation) else {
            return Err(ViolationKind::UnknownGeneration {
                owner: view.name.to_owned(),
                generation: view.generation,
            });
        };
        let entries = node.entries(view.name).map(Iterator::collect).unwrap_or_default();
        let snapshot = ReplicaSnapshot {
            owner: view.name,
            generation: view.generation,
            max_version: view.max_version,
            entries,
        };
        check_replica(log, &snapshot)?;
    }
    Ok(())
}

/// Checks a node's footprint against its caps (invariant 7).
pub fn check_footprint(footprint: Footprint, config: &crate::Config) -> Result<(), ViolationKind> {
    match footprint.over_cap(config) {
        Some((what, size, cap)) => Err(ViolationKind::OverCap { what, size, cap }),
        None => Ok(()),
    }
}

pub use crate::sim::agreement::check_agreement;

#[cfg(test)]
mod tests;
