//! Keys that delete themselves: [`Node::set_with_ttl`].
//!
//! A TTL is the owner's business alone. The write is an ordinary versioned write; when the
//! time is up, the owner deletes the key with an ordinary versioned delete (a tombstone that
//! spreads like any other), unless the key was written again since: a later
//! [`set`](Node::set) keeps it for good, a later `set_with_ttl` sets a new deadline, and a
//! [`delete`](Node::delete) ends it at once. Peers see nothing special, so the wire format is
//! unchanged and a peer in another language needs no support for it.
//!
//! The deadlines live in memory only, like the table itself: a restarted node starts empty.
//! There is at most one per key, so `Config::max_keys_per_node` bounds them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

mod run;

/// The keys of this node's table that expire, with the version of the write that set the
/// TTL: a key written again since is left alone.
#[derive(Debug, Default)]
pub(crate) struct Expiries {
    /// key -> (deadline, version of the write with the TTL).
    by_key: BTreeMap<String, (Instant, u64)>,
    /// The same, in deadline order.
    queue: BTreeSet<(Instant, String)>,
}

impl Expiries {
    /// The earliest deadline, if any key expires.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(deadline, _)| *deadline)
    }

    /// Keys with a TTL pending.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    fn insert(&mut self, key: String, deadline: Instant, version: u64) {
        self.remove(&key);
        self.queue.insert((deadline, key.clone()));
        self.by_key.insert(key, (deadline, version));
    }

    fn remove(&mut self, key: &str) {
        if let Some((deadline, _)) = self.by_key.remove(key) {
            self.queue.remove(&(deadline, key.to_owned()));
        }
    }

    /// Removes and returns the first key due at `now`, with the version its TTL belongs to.
    fn pop_due(&mut self, now: Instant) -> Option<(String, u64)> {
        let (deadline, _) = self.queue.first().filter(|(deadline, _)| *deadline <= now)?;
        let deadline = *deadline;
        let (_, key) = self.queue.pop_first()?;
        let (_, version) = self.by_key.remove(&key).unwrap_or((deadline, 0));
        Some((key, version))
    }
}
