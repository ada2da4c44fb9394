//! Digests: what a node says it holds (name, generation, max version, GC watermark per
//! node), how it chooses which entries fit a datagram, and how a received digest is
//! compared with the local table.
//!
//! A full digest stops fitting a 1,400-byte datagram at a few dozen nodes, so a digest is
//! a window: the recently changed nodes first (that is where news is), then, while this
//! node is out of sync, a window that rotates over the whole table; the recent part takes
//! at most half the room then. With `w` rotating entries per window, every known node is
//! offered within `ceil(n / w)` out-of-sync exchanges. A digest entry takes about
//! `name length + 25` bytes, and the rotation keeps at least half of what a 1,400-byte
//! datagram leaves beside the bucket sums (259 bytes, in the `Syn`s of tables of more than 64
//! nodes), so `w` is at least 5 with the longest names the default `max_name_size` (64)
//! allows, about 11 with 20-byte names, and twice that when nothing changed recently: at
//! 10,000 nodes every node is offered within 2,000 windows in the worst case and 450 in the
//! usual one. The window bounds how long a difference can hide; the bucket sums make the
//! usual case much shorter: the responder names every node of the buckets that differ, so a
//! node the initiator lacks is named in the first exchange with a peer that holds it.

use std::collections::BTreeSet;

use gossip_proto::v1;
use prost::Message;

use crate::budget::{Budget, field_len};
use crate::delta::DeltaPlan;
use crate::membership::{Claim, MemberState, Source, overrides};
use crate::message::ReceivedDigestEntry;
use crate::metrics::Metrics;
use crate::replica::Replica;
use crate::table::{LOCAL, NodeTable};

/// The digest entry for one node as this node holds it.
pub(crate) fn entry(name: &str, replica: &Replica) -> v1::DigestEntry {
    v1::DigestEntry {
        name: name.to_owned(),
        generation: replica.generation,
        max_version: replica.max_version,
        gc_watermark: replica.gc_watermark,
        unknown: false,
        incarnation: replica.incarnation,
        state: replica.state.to_wire() as i32,
    }
}

/// The outcome of comparing a peer's digest entries with the local table.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    /// Deltas the peer lacks.
    pub(crate) deltas: Vec<DeltaPlan>,
    /// Our entries for the nodes where the peer is ahead (or that we do not know).
    pub(crate) behind: Vec<v1::DigestEntry>,
    /// Table indexes the peer mentioned (no need to offer them again).
    pub(crate) mentioned: BTreeSet<usize>,
    /// Membership claims of the peer that override ours.
    pub(crate) claims: Vec<Claim>,
    /// Table indexes whose membership claim of ours overrides the peer's: tell it.
    pub(crate) tell: Vec<usize>,
    /// The highest `(generation, max version)` the peer offered of our own table, when it is
    /// ahead of what we hold (only we write it: see `heal.rs`).
    pub(crate) own_ahead: Option<(u64, u64)>,
    /// `(index, max version)` the peer holds of nodes whose replica a reset is rebuilding
    /// here (how far it must catch up, see `Replica::note_advertised`).
    pub(crate) advertised: Vec<(usize, u64)>,
}

/// The bounds a comparison applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// `Config::max_nodes`.
    pub(crate) max_nodes: usize,
    /// `Config::max_version_jump`.
    pub(crate) max_version_jump: u64,
}

/// Compares the peer's `entries`, passed on by `source`, with the local table. An entry
/// relayed by a third party that is more than `max_version_jump` ahead of a known table (of
/// the same generation) is dropped and counted.
pub(crate) fn compare(
    table: &NodeTable,
    entries: &[ReceivedDigestEntry],
    limits: Limits,
    source: Source<'_>,
    metrics: &mut Metrics,
) -> Comparison {
    let max_nodes = limits.max_nodes;
    let mut comparison = Comparison::default();
    let mut unknown = 0;
    for theirs in entries {
        let index = table.index_of(&theirs.name);
        if table.too_far_ahead_at(index, theirs.generation) {
            // Asking for it would only bring deltas that are refused.
            metrics.generations_refused += 1;
            continue;
        }
        let Some(index) = index else {
            if MemberState::from_wire(theirs.state).is_some_and(|state| !state.is_live()) {
                // A node we do not know that the peer holds dead or departed: it would not
                // be learned (see `Node::apply_claim`), so it is not asked for.
                continue;
            }
            if table.len() + unknown >= max_nodes {
                metrics.nodes_over_cap += 1;
                continue;
            }
            unknown += 1;
            comparison.behind.push(unknown_entry(theirs.name.to_string(), theirs.generation));
            continue;
        };
        comparison.mentioned.insert(index);
        let Some((name, ours)) = table.get(index) else { continue };
        let claims_newer = theirs.generation > ours.generation
            || (theirs.generation == ours.generation && theirs.max_version > ours.max_version);
        if index == LOCAL && claims_newer {
            // Only this node writes its own table.
            metrics.rejected_own_deltas += 1;
            let offered = (theirs.generation, theirs.max_version);
            comparison.own_ahead = Some(comparison.own_ahead.map_or(offered, |held| held.max(offered)));
            continue;
        }
        if index != LOCAL
            && theirs.generation == ours.generation
            && !source.is_first_hand(name)
            && theirs.max_version.saturating_sub(ours.max_version) > limits.max_version_jump
        {
            metrics.jumps_refused += 1;
            continue;
        }
        if theirs.generation == ours.generation && !theirs.unknown {
            compare_claims(index, name, ours, theirs, &mut comparison);
            if ours.is_shadowed() {
                comparison.advertised.push((index, theirs.max_version));
            }
        }
        if theirs.generation < ours.generation || (theirs.unknown && theirs.generation == ours.generation) {
            // The peer lacks this generation entirely: send all of it, even an empty table,
            // so that it learns the node exists.
            comparison.deltas.push(DeltaPlan { index, from: 0, reset: false, missing: ours.max_version });
        } else if theirs.generation > ours.generation {
            comparison.behind.push(unknown_entry(name.to_owned(), theirs.generation));
        } else if ours.max_version > theirs.max_version {
            let reset = theirs.max_version < ours.gc_watermark && theirs.gc_watermark < ours.gc_watermark;
            let from = if reset { 0 } else { theirs.max_version };
            comparison.deltas.push(DeltaPlan {
                index,
                from,
                reset,
                missing: ours.max_version - theirs.max_version,
            });
        } else if ours.max_version < theirs.max_version {
            comparison.behind.push(entry(name, ours));
        }
    }
    comparison
}

/// Sorts out whose membership claim wins for one node of the same generation.
fn compare_claims(
    index: usize,
    name: &str,
    ours: &Replica,
    theirs: &ReceivedDigestEntry,
    comparison: &mut Comparison,
) {
    let Some(state) = MemberState::from_wire(theirs.state) else { return };
    if overrides(ours.state, ours.incarnation, state, theirs.incarnation) {
        comparison.claims.push(Claim {
            name: name.to_owned(),
            generation: theirs.generation,
            address: ours.address,
            incarnation: theirs.incarnation,
            state,
            from: String::new(),
        });
    } else if overrides(state, theirs.incarnation, ours.state, ours.incarnation) {
        comparison.tell.push(index);
    }
}

/// Appends entries while they fit `budget`; returns how many were added.
pub(crate) fn push_entries(
    entries: impl IntoIterator<Item = v1::DigestEntry>,
    budget: &mut Budget,
    out: &mut Vec<v1::DigestEntry>,
) -> usize {
    let mut added = 0;
    for entry in entries {
        if !budget.take(field_len(entry.encoded_len())) {
            break;
        }
        out.push(entry);
        added += 1;
    }
    added
}

/// Which recently changed nodes lead a digest window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecentPart {
    /// Only nodes changed at or after this time (`None`: the whole recent window).
    pub(crate) changed_since: Option<std::time::Instant>,
    /// At most this many.
    pub(crate) max_entries: usize,
}

impl RecentPart {
    /// Every recently changed node.
    pub(crate) const ALL: Self = Self { changed_since: None, max_entries: usize::MAX };
}

/// Appends the recently changed nodes, most recent first, then (when `rotate`) the rotating
/// window over the whole table, skipping `exclude`, while entries fit `budget`.
pub(crate) fn push_window(
    table: &mut NodeTable,
    exclude: &BTreeSet<usize>,
    recent: RecentPart,
    rotate: bool,
    budget: &mut Budget,
    out: &mut Vec<v1::DigestEntry>,
) {
    let recent = table.recent_first_since(recent.changed_since, recent.max_entries);
    let mut offered: BTreeSet<usize> = BTreeSet::new();
    // While rotating, recent changes get at most half the room, or steady churn would
    // starve the rotation and void its bound.
    let mut recent_budget = if rotate { budget.share(1, 2) } else { *budget };
    let room_before = recent_budget.remaining();
    let recent = recent.into_iter().filter(|index| !exclude.contains(index));
    push_indexes(table, recent, &mut offered, &mut recent_budget, out);
    budget.settle(room_before, recent_budget.remaining());
    if !rotate {
        return;
    }
    let len = table.len();
    let start = table.cursor();
    let mut stopped_at = start;
    for offset in 0..len {
        let index = (start + offset) % len;
        stopped_at = (index + 1) % len;
        if exclude.contains(&index) || offered.contains(&index) {
            continue;
        }
        let Some((name, replica)) = table.get(index) else { continue };
        let candidate = entry(name, replica);
        if !budget.take(field_len(candidate.encoded_len())) {
            stopped_at = index;
            break;
        }
        out.push(candidate);
    }
    table.set_cursor(stopped_at);
}

/// Appends the entries of the nodes at `indexes` that `offered` does not hold yet, in order,
/// while they fit `budget`; each appended index joins `offered`.
pub(crate) fn push_indexes(
    table: &NodeTable,
    indexes: impl Iterator<Item = usize>,
    offered: &mut BTreeSet<usize>,
    budget: &mut Budget,
    out: &mut Vec<v1::DigestEntry>,
) {
    for index in indexes {
        if offered.contains(&index) {
            continue;
        }
        let Some((name, replica)) = table.get(index) else { continue };
        let candidate = entry(name, replica);
        if !budget.take(field_len(candidate.encoded_len())) {
            return;
        }
        out.push(candidate);
        offered.insert(index);
    }
}

/// A request for a whole table we do not hold (a node, or a generation of it, new to us).
fn unknown_entry(name: String, generation: u64) -> v1::DigestEntry {
    v1::DigestEntry {
        name,
        generation,
        max_version: 0,
        gc_watermark: 0,
        unknown: true,
        incarnation: 0,
        state: 0,
    }
}
