//! Observation: traffic counters, and for each write the simulator made, when each node
//! first learned it (from the changes of its `KeysChanged` events).
//!
//! A node that learns a later version of the same key (the earlier one was overwritten
//! before it arrived) counts as having learned the earlier one too, at that moment.

use std::sync::Arc;
use std::time::Duration;

use crate::sim::FixedHashMap;
use crate::sim::kind::{BodyKind, KindCounts};
use crate::sim::network::NodeSet;
use crate::sim::watch::SentRecord;

/// A count of datagrams and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams.
    pub datagrams: u64,
    /// Bytes of payload.
    pub bytes: u64,
}

impl Traffic {
    pub(crate) fn add(&mut self, bytes: usize) {
        self.datagrams += 1;
        self.bytes += bytes as u64;
    }
}

/// What happened to the datagrams of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkStats {
    /// Datagrams the nodes sent.
    pub sent: Traffic,
    /// Datagrams handed to a node (duplicates included).
    pub delivered: Traffic,
    /// Lost on a link.
    pub lost: u64,
    /// Extra copies the links made.
    pub duplicated: u64,
    /// Dropped by a partition.
    pub blocked: u64,
    /// Arrived at a crashed node.
    pub to_down_nodes: u64,
    /// Sent to an address no simulated node has.
    pub undeliverable: u64,
    /// Arrived at a paused node and waited for it to resume.
    pub held_while_paused: u64,
    /// Arrived at a paused node whose receive buffer was full.
    pub dropped_while_paused: u64,
    /// Arrived at a slow node and waited out its processing delay.
    pub held_by_slow_nodes: u64,
    /// Datagrams the nodes sent, by the kind of message they carry.
    pub sent_kinds: KindCounts,
}

/// Names a write the simulator made (see [`crate::sim::Simulation::set`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(pub(crate) usize);

/// A write the simulator made, and who has learned it.
#[derive(Debug, Clone)]
pub struct TrackedWrite {
    /// The writer's index.
    pub owner: usize,
    /// The writer's generation.
    pub generation: u64,
    /// The key.
    pub key: Arc<str>,
    /// The version of the write.
    pub version: u64,
    /// Whether it is a delete (a tombstone).
    pub deleted: bool,
    /// When it was written.
    pub written_at: Duration,
    /// Live nodes that have learned it, the writer included.
    pub informed: usize,
    /// When every live node first had it.
    pub all_informed_at: Option<Duration>,
    learned: Vec<Option<Duration>>,
}

impl TrackedWrite {
    /// When node `node` first learned this write (for the writer: when it wrote it). Reset
    /// when the node crashes.
    pub fn learned_at(&self, node: usize) -> Option<Duration> {
        self.learned.get(node).copied().flatten()
    }

    /// Every `(node, time)` at which a node currently live learned this write.
    pub fn learned(&self) -> impl Iterator<Item = (usize, Duration)> + '_ {
        self.learned.iter().enumerate().filter_map(|(node, at)| at.map(|at| (node, at)))
    }
}

/// Counters and write tracking for a run.
#[derive(Debug, Default)]
pub(crate) struct Observer {
    pub(crate) stats: NetworkStats,
    /// Traffic sent by each node.
    pub(crate) sent_by: Vec<Traffic>,
    writes: Vec<TrackedWrite>,
    /// (owner, generation) -> key -> writes of that key, in version order.
    by_key: FixedHashMap<(usize, u64), FixedHashMap<Arc<str>, Vec<usize>>>,
    /// Nodes currently up.
    live: usize,
    /// Nodes whose inbound datagrams are logged in `watch_log`.
    watched: NodeSet,
    watch_log: Vec<SentRecord>,
}

impl Observer {
    pub(crate) fn new(nodes: usize) -> Self {
        Self { sent_by: vec![Traffic::default(); nodes], live: nodes, ..Self::default() }
    }

    pub(crate) fn add_node(&mut self) {
        self.sent_by.push(Traffic::default());
        self.live += 1;
    }

    pub(crate) fn sent(&mut self, node: usize, bytes: usize, kind: BodyKind) {
        self.stats.sent.add(bytes);
        self.stats.sent_kinds.add(kind);
        self.sent_by[node].add(bytes);
    }

    /// Starts logging the datagrams sent to `node`.
    pub(crate) fn watch(&mut self, node: usize) {
        self.watched.insert(node);
    }

    /// Logs a datagram to `to` if it is watched.
    pub(crate) fn sent_to(&mut self, at: Duration, from: usize, to: usize, kind: BodyKind) {
        if self.watched.contains(to) {
            self.watch_log.push(SentRecord { at, from, to, kind });
        }
    }

    /// Takes the log of datagrams sent to watched nodes.
    pub(crate) fn take_watched(&mut self) -> Vec<SentRecord> {
        std::mem::take(&mut self.watch_log)
    }

    pub(crate) fn write(&self, id: WriteId) -> Option<&TrackedWrite> {
        self.writes.get(id.0)
    }

    pub(crate) fn writes(&self) -> &[TrackedWrite] {
        &self.writes
    }

    /// Starts tracking a write; its owner knows it now.
    pub(crate) fn track(
        &mut self,
        owner: usize,
        generation: u64,
        key: Arc<str>,
        version: u64,
        deleted: bool,
        now: Duration,
    ) -> WriteId {
        let id = self.writes.len();
        let mut learned = vec![None; self.sent_by.len()];
        learned[owner] = Some(now);
        let all = (self.live <= 1).then_some(now);
        let write = TrackedWrite {
            owner,
            generation,
            key: key.clone(),
            version,
            deleted,
            written_at: now,
            informed: 1,
            all_informed_at: all,
            learned,
        };
        self.writes.push(write);
        self.by_key.entry((owner, generation)).or_default().entry(key).or_default().push(id);
        WriteId(id)
    }

    /// Node `node` learned `key` of `owner` at `version` (a change or deletion reported).
    pub(crate) fn learned(
        &mut self,
        node: usize,
        owner: usize,
        generation: u64,
        key: &str,
        version: u64,
        now: Duration,
    ) {
        let Some(ids) = self.by_key.get(&(owner, generation)).and_then(|keys| keys.get(key)) else {
            return;
        };
        for &id in ids {
            let write = &mut self.writes[id];
            if write.version > version {
                break;
            }
            if write.learned.len() <= node {
                write.learned.resize(node + 1, None);
            }
            if write.learned[node].is_none() {
                write.learned[node] = Some(now);
                write.informed += 1;
                if write.informed >= self.live && write.all_informed_at.is_none() {
                    write.all_informed_at = Some(now);
                }
            }
        }
    }

    /// Node `node` crashed: it knows nothing any more and no longer counts.
    pub(crate) fn node_down(&mut self, node: usize, now: Duration) {
        self.live -= 1;
        let live = self.live;
        for write in &mut self.writes {
            if write.learned.get_mut(node).and_then(Option::take).is_some() {
                write.informed -= 1;
            }
            if write.informed >= live && write.all_informed_at.is_none() {
                write.all_informed_at = Some(now);
            }
        }
    }

    /// Node `node` came back with an empty table.
    pub(crate) fn node_up(&mut self) {
        self.live += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_complete_when_every_live_node_learned_it() {
        let s = Duration::from_secs;
        let mut observer = Observer::new(3);
        let first = observer.track(0, 1, "k".into(), 1, false, s(1));
        let second = observer.track(0, 1, "k".into(), 2, false, s(2));
        observer.learned(1, 0, 1, "k", 1, s(3));
        observer.learned(1, 0, 1, "other", 1, s(3));
        observer.learned(1, 0, 2, "k", 1, s(3));
        assert_eq!(observer.write(first).unwrap().informed, 2);
        assert_eq!(observer.write(second).unwrap().informed, 1);
        observer.learned(2, 0, 1, "k", 2, s(4));
        let first_write = observer.write(first).unwrap();
        assert_eq!(first_write.learned_at(2), Some(s(4)), "a later version covers the earlier one");
        assert_eq!(first_write.all_informed_at, Some(s(4)));
        assert_eq!(observer.write(second).unwrap().all_informed_at, None);
        observer.node_down(1, s(5));
        let second_write = observer.write(second).unwrap();
        assert_eq!(second_write.all_informed_at, Some(s(5)), "the live nodes all have it");
        assert_eq!(observer.write(first).unwrap().learned().count(), 2);
    }
}
