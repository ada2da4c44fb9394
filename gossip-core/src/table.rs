//! The table of every node this node knows, its own included, with the digest summary kept
//! up to date on every change.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foldhash::fast::FixedState;
use indexmap::IndexMap;
use smol_str::SmolStr;

use crate::identity::Identity;
use crate::replica::{Owner, Replica};
use crate::summary::{BucketedSummary, DigestSummary};

/// Index of the local node in the table: it is inserted first and never removed.
pub(crate) const LOCAL: usize = 0;

/// What [`NodeTable::upsert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upsert {
    /// Known under this generation (the address was updated if it changed).
    Known(usize),
    /// New: inserted with an empty replica.
    Discovered(usize),
    /// Known under an older generation: the replica was replaced by an empty one.
    Restarted { index: usize, old_generation: u64, old_address: SocketAddr },
    /// Known under a newer generation: the caller's information is stale.
    Stale,
    /// Unknown, and the table already holds `max_nodes`.
    Full,
    /// The generation is more than the table's `max_generation_jump` ahead (see
    /// [`NodeTable::too_far_ahead`]): refused.
    TooFarAhead,
    /// It is the local node's name: only this node speaks for itself.
    Local,
}

/// A map keyed by node name, hashed with the table's seed.
type HashMap<K, V> = std::collections::HashMap<K, V, FixedState>;

/// All known nodes by name.
///
/// Every hash in the table (and in its replicas' key indexes) is keyed with a seed that the
/// node draws from its RNG: no OS entropy (runs stay reproducible), and names or keys from a
/// hostile peer cannot be chosen to collide.
#[derive(Debug)]
pub(crate) struct NodeTable {
    /// Names of up to 23 bytes are stored inline, in the map's own entries: a lookup then
    /// compares the name without following a pointer, which at a thousand members (most of
    /// the table out of the cache) was a cache miss per digest entry.
    nodes: IndexMap<SmolStr, Replica, FixedState>,
    /// The hash seed.
    seed: u64,
    /// The digest summary, with its per-bucket sums.
    summary: BucketedSummary,
    /// Each node's bucket (see `BucketedSummary`), by table index.
    bucket_of: Vec<u8>,
    /// The recent window as a log: `(time, index)` each time a replica's last change moved,
    /// in the order made (the node's clock never goes back, so oldest first). An entry is
    /// current while its replica's `last_changed` is still its time; the others are skipped,
    /// and dropped by `prune_recent` or once they outnumber the table. Reading the most
    /// recent from the end touches only those replicas: sorting the whole window on every
    /// `Syn` read a replica per member and was a tenth of the CPU at 1,000 nodes under load.
    recent: Vec<(Instant, usize)>,
    /// Next index of the rotating digest window.
    cursor: usize,
    /// Indexes of the replicas that hold tombstones (the only ones GC has to visit).
    with_tombstones: BTreeSet<usize>,
    /// Dead or departed members, with when this node learned it: forgotten after the
    /// retention time.
    departed: HashMap<Arc<str>, Instant>,
    /// Forgotten members and the generation they had: that generation or an older one is
    /// not let back in (until the entry itself expires), so a stale replica elsewhere cannot
    /// resurrect a member everyone has just forgotten.
    forgotten: HashMap<Arc<str>, (u64, Instant)>,
    /// How many members, this node included, are Alive or Suspect.
    live: usize,
    /// How many members were heard from directly (see `Replica::heard`).
    heard: usize,
    /// `Config::max_generation_jump` (no limit until set).
    max_generation_jump: u64,
}

impl NodeTable {
    /// A table that knows only the local node, hashing with seed 0 (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn new(local: &Identity) -> Self {
        Self::with_seed(local, 0)
    }

    /// A table that knows only the local node, hashing with `seed`.
    pub(crate) fn with_seed(local: &Identity, seed: u64) -> Self {
        let hasher = FixedState::with_seed(seed);
        let mut table = Self {
            nodes: IndexMap::with_hasher(hasher.clone()),
            seed,
            summary: BucketedSummary::default(),
            bucket_of: Vec::new(),
            recent: Vec::new(),
            cursor: 0,
            with_tombstones: BTreeSet::new(),
            departed: HashMap::with_hasher(hasher.clone()),
            forgotten: HashMap::with_hasher(hasher),
            live: 1,
            heard: 0,
            max_generation_jump: u64::MAX,
        };
        let local_replica = Replica::new(local.generation, local.address);
        table.bucket_of.push(table.summary.add(&local.name, local_replica.summary_key()));
        table.nodes.insert(SmolStr::new(local.name.as_str()), local_replica);
        table
    }

    /// Sets the largest generation jump [`upsert`](Self::upsert) accepts.
    pub(crate) fn with_max_generation_jump(mut self, jump: u64) -> Self {
        self.max_generation_jump = jump;
        self
    }

    /// Whether `generation` is more than `max_generation_jump` ahead of the generation known
    /// for `name`, or of the local node's for a name not known (see
    /// `Config::max_generation_jump` for why). Never for the local node's own name: that
    /// is refused as such.
    pub(crate) fn too_far_ahead(&self, name: &str, generation: u64) -> bool {
        self.too_far_ahead_at(self.nodes.get_index_of(name), generation)
    }

    /// [`too_far_ahead`](Self::too_far_ahead) for a name already looked up: its index, or
    /// `None` when it is not known.
    pub(crate) fn too_far_ahead_at(&self, index: Option<usize>, generation: u64) -> bool {
        let reference = match index {
            Some(LOCAL) => return false,
            Some(index) => self.nodes.get_index(index).map_or(0, |(_, replica)| replica.generation),
            None => self.nodes[LOCAL].generation,
        };
        generation.checked_sub(reference).is_some_and(|jump| jump > self.max_generation_jump)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn reserve_exact(&mut self, additional: usize) {
        self.nodes.reserve_exact(additional);
    }

    pub(crate) fn summary(&self) -> DigestSummary {
        self.summary.summary()
    }

    /// The data summary a rumor push carries: the summary without membership states.
    pub(crate) fn data_summary(&self) -> DigestSummary {
        self.summary.data_summary()
    }

    /// The bucket sums a `Syn` carries (see `BucketedSummary`).
    pub(crate) fn bucket_sums(&self) -> Vec<u32> {
        self.summary.bucket_sums()
    }

    /// The buckets whose sums differ from a peer's `bucket_sums`, as a bit mask; `None` when
    /// the peer sent none (or not [`BUCKETS`](crate::summary::BUCKETS) of them).
    pub(crate) fn differing_buckets(&self, bucket_sums: &[u32]) -> Option<u64> {
        self.summary.differing(bucket_sums)
    }

    /// The indexes of the nodes in the buckets of `mask`, starting at `start` and wrapping
    /// around the table.
    pub(crate) fn in_buckets(&self, mask: u64, start: usize) -> impl Iterator<Item = usize> + '_ {
        let len = self.bucket_of.len();
        (0..len)
            .map(move |offset| (start + offset) % len)
            .filter(move |&index| mask & 1 << self.bucket_of[index] != 0)
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.get_index_of(name)
    }

    /// The name at `index` as the table keeps it (cheap to clone: inline up to 23 bytes).
    pub(crate) fn name_at(&self, index: usize) -> Option<&SmolStr> {
        self.nodes.get_index(index).map(|(name, _)| name)
    }

    pub(crate) fn get(&self, index: usize) -> Option<(&str, &Replica)> {
        self.nodes.get_index(index).map(|(name, replica)| (&**name, replica))
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&Replica> {
        self.nodes.get(name)
    }

    pub(crate) fn local(&self) -> &Replica {
        &self.nodes[LOCAL]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Replica)> {
        self.nodes.iter().map(|(name, replica)| (&**name, replica))
    }

    /// Runs `change` on a replica, then brings the summary and the recent list up to date.
    pub(crate) fn modify<T>(
        &mut self,
        index: usize,
        change: impl FnOnce(Owner<'_>, &mut Replica) -> T,
    ) -> Option<T> {
        let (name, replica) = self.nodes.get_index_mut(index)?;
        let before = replica.summary_key();
        let changed_before = replica.last_changed();
        let heard_before = replica.heard;
        let result = change(Owner { name, seed: self.seed }, replica);
        let after = replica.summary_key();
        self.heard = self.heard + usize::from(replica.heard) - usize::from(heard_before);
        if before != after {
            self.summary.remove(name, before);
            self.bucket_of[index] = self.summary.add(name, after);
            self.live = self.live + usize::from(after.state.is_live()) - usize::from(before.state.is_live());
        }
        if replica.tombstone_count() > 0 {
            self.with_tombstones.insert(index);
        }
        if let Some(at) = replica.last_changed().filter(|at| Some(*at) != changed_before) {
            self.recent.push((at, index));
            if self.recent.len() > 2 * self.nodes.len() + 64 {
                self.drop_stale_recent();
            }
        }
        Some(result)
    }

    /// Finds or inserts the node `name` as known under `generation` at `address`.
    ///
    /// `address` is taken only for a node new to us or a new generation of a known one: the
    /// address of a known generation changes only through a membership claim that wins with
    /// a higher incarnation (see `Node::set_member`), never because a datagram came from, or
    /// a peer named, another address.
    pub(crate) fn upsert(
        &mut self,
        name: impl AsRef<str>,
        generation: u64,
        address: SocketAddr,
        max_nodes: usize,
    ) -> Upsert {
        let index = self.nodes.get_index_of(name.as_ref());
        if self.too_far_ahead_at(index, generation) {
            return Upsert::TooFarAhead;
        }
        match index {
            Some(LOCAL) => Upsert::Local,
            Some(index) => {
                let (known, old_address) = (self.nodes[index].generation, self.nodes[index].address);
                if generation < known {
                    return Upsert::Stale;
                }
                if generation > known {
                    self.modify(index, |_, replica| *replica = Replica::new(generation, address));
                    // The new generation starts alive: a departure of the old one ends here,
                    // or the running member would be forgotten after the retention time.
                    self.departed.remove(name.as_ref());
                    return Upsert::Restarted { index, old_generation: known, old_address };
                }
                Upsert::Known(index)
            }
            None if self
                .forgotten
                .get(name.as_ref())
                .is_some_and(|(forgotten, _)| generation <= *forgotten) =>
            {
                Upsert::Stale
            }
            None if self.nodes.len() >= max_nodes => Upsert::Full,
            None => {
                let name = SmolStr::new(name.as_ref());
                let replica = Replica::new(generation, address);
                self.bucket_of.push(self.summary.add(&name, replica.summary_key()));
                let (index, _) = self.nodes.insert_full(name, replica);
                self.live += 1;
                Upsert::Discovered(index)
            }
        }
    }

    /// How many members, this node included, are Alive or Suspect.
    pub(crate) fn live_count(&self) -> usize {
        self.live
    }

    /// How many members (never this node) were heard from directly.
    pub(crate) fn heard_count(&self) -> usize {
        self.heard
    }

    /// Marks the member at `index` as heard from directly (see `Replica::heard`).
    pub(crate) fn mark_heard(&mut self, index: usize) {
        if index != LOCAL && self.nodes.get_index(index).is_some_and(|(_, replica)| !replica.heard) {
            self.modify(index, |_, replica| replica.heard = true);
        }
    }

    /// Names of the members that are Alive or Suspect, this node's included.
    pub(crate) fn live_names(&self) -> impl Iterator<Item = SmolStr> + '_ {
        self.nodes.iter().filter(|(_, member)| member.state.is_live()).map(|(name, _)| name.clone())
    }

    /// Records that a member is dead or gone (the retention clock starts once).
    pub(crate) fn mark_departed(&mut self, name: Arc<str>, _generation: u64, now: Instant) {
        self.departed.entry(name).or_insert(now);
    }

    /// A departed member came back.
    pub(crate) fn clear_departed(&mut self, name: &str) {
        self.departed.remove(name);
    }

    /// How many forgotten members are still kept out.
    pub(crate) fn forgotten_count(&self) -> usize {
        self.forgotten.len()
    }

    /// How many members are dead or gone but not yet forgotten.
    pub(crate) fn departed_count(&self) -> usize {
        self.departed.len()
    }

    /// The names of the dead or gone members not yet forgotten.
    pub(crate) fn departed_names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.departed.keys()
    }

    /// Removes the members departed for at least `retention`, along with their tables.
    /// Returns, for each removal in order, the index removed and the index whose member moved
    /// into its place.
    pub(crate) fn forget_departed(
        &mut self,
        now: Instant,
        retention: Duration,
    ) -> Vec<(usize, Option<usize>)> {
        self.forgotten.retain(|_, (_, until)| *until > now);
        let due: Vec<Arc<str>> = self
            .departed
            .iter()
            .filter(|(_, since)| **since + retention <= now)
            .map(|(name, _)| name.clone())
            .collect();
        let mut removals = Vec::new();
        for name in due {
            self.departed.remove(&name);
            let Some(index) = self.nodes.get_index_of(&*name).filter(|&i| i != LOCAL) else { continue };
            let generation = self.nodes[index].generation;
            removals.push((index, self.remove(index)));
            self.forgotten.insert(name, (generation, now + retention));
        }
        removals
    }

    /// Removes the member at `index` (never the local one); the last member moves into its
    /// place, and the index returned is where it came from.
    fn remove(&mut self, index: usize) -> Option<usize> {
        let last = self.nodes.len() - 1;
        let (name, replica) = self.nodes.swap_remove_index(index)?;
        self.summary.remove(&name, replica.summary_key());
        self.bucket_of.swap_remove(index);
        self.live -= usize::from(replica.state.is_live());
        self.heard -= usize::from(replica.heard);
        let moved = (index != last).then_some(last);
        let reindex = |i: usize| if Some(i) == moved { index } else { i };
        self.recent.retain(|&(_, i)| i != index);
        self.recent.iter_mut().for_each(|(_, i)| *i = reindex(*i));
        self.with_tombstones =
            self.with_tombstones.iter().filter(|&&i| i != index).map(|&i| reindex(i)).collect();
        self.cursor = if self.nodes.is_empty() { 0 } else { self.cursor % self.nodes.len() };
        moved
    }

    /// Ends the recent runs of the replicas whose last change is older than `window`, and
    /// drops their entries (and stale ones) from the recent log.
    pub(crate) fn prune_recent(&mut self, now: Instant, window: Duration) {
        let nodes = &mut self.nodes;
        self.recent.retain(|&(at, index)| {
            let Some((_, replica)) = nodes.get_index_mut(index) else { return false };
            if replica.last_changed() != Some(at) {
                return false;
            }
            let recent = at + window > now;
            if !recent {
                replica.forget_recent();
            }
            recent
        });
    }

    /// Keeps only the current entries of the recent log.
    fn drop_stale_recent(&mut self) {
        let nodes = &self.nodes;
        self.recent
            .retain(|&(at, index)| nodes.get_index(index).is_some_and(|(_, r)| r.last_changed() == Some(at)));
    }

    /// The recently changed replicas, most recent first: those changed at or after `since`
    /// (all when `None`), at most `max`.
    ///
    /// Read from the end of the recent log, so only the replicas returned (and the stale
    /// entries among them) are touched. Equal times go in an order of this table's own seed,
    /// so that nodes that changed together are not offered in the same order by every peer
    /// (by index, every node offered the same ones first: a burst at n = 200 left 85 B/s in
    /// the quiet window instead of 70).
    pub(crate) fn recent_first_since(&self, since: Option<Instant>, max: usize) -> Vec<usize> {
        if max == 0 {
            return Vec::new();
        }
        let ties = FixedState::with_seed(self.seed);
        let mut picked: Vec<(std::cmp::Reverse<Instant>, u64, usize)> = Vec::new();
        // The time of the `max`-th pick: the ones changed at that same time still compete.
        let mut last_time = None;
        for &(at, index) in self.recent.iter().rev() {
            if since.is_some_and(|since| at < since) || last_time.is_some_and(|last| at < last) {
                break;
            }
            let current = self.nodes.get_index(index).is_some_and(|(_, r)| r.last_changed() == Some(at));
            if !current {
                continue;
            }
            picked.push((std::cmp::Reverse(at), ties.hash_one(index), index));
            if picked.len() == max {
                last_time = Some(at);
            }
        }
        picked.sort_unstable();
        picked.truncate(max);
        picked.into_iter().map(|(_, _, index)| index).collect()
    }

    /// Where the rotating digest window starts next time.
    pub(crate) fn cursor(&self) -> usize {
        self.cursor % self.nodes.len()
    }

    /// Moves the rotating digest window's start.
    pub(crate) fn set_cursor(&mut self, cursor: usize) {
        self.cursor = cursor % self.nodes.len();
    }

    /// Garbage-collects due tombstones in every table; returns how many were collected.
    pub(crate) fn collect_garbage(&mut self, now: Instant) -> usize {
        let mut collected = 0;
        let candidates: Vec<usize> = self.with_tombstones.iter().copied().collect();
        for index in candidates {
            collected += self.modify(index, |_, replica| replica.collect_garbage(now)).unwrap_or(0);
            if self.nodes.get_index(index).is_none_or(|(_, replica)| replica.tombstone_count() == 0) {
                self.with_tombstones.remove(&index);
            }
        }
        collected
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A dead member that comes back under a new generation is no longer departed, however it
    /// is first heard of again (its own datagram, without the claim of life, included): it
    /// must not be forgotten while it runs.
    #[test]
    fn a_restart_ends_the_departure() {
        // Only differences from this base matter.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let address = SocketAddr::from(([10, 0, 0, 1], 7946));
        let mut table = NodeTable::new(&Identity::new("me", 1, address));
        assert!(matches!(table.upsert("x", 1, address, 8), Upsert::Discovered(_)));
        table.mark_departed(Arc::from("x"), 1, now);
        assert!(matches!(table.upsert("x", 2, address, 8), Upsert::Restarted { .. }));
        let retention = Duration::from_secs(600);
        assert!(table.forget_departed(now + retention, retention).is_empty(), "a running member forgotten");
        assert!(table.index_of("x").is_some());
        assert_eq!(table.departed_count(), 0);
    }

    /// Reading the recent log from its end gives what sorting every replica by its last
    /// change would: the most recent first, ties in the table's seeded order, none older
    /// than `since`, at most `max`, through changes at equal times, prunes and compaction.
    #[test]
    fn the_recent_log_reads_as_a_sort_of_every_replica() {
        use rand::RngExt;
        use rand_chacha::ChaCha8Rng;
        use rand_core::SeedableRng;

        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let address = SocketAddr::from(([10, 0, 0, 1], 7946));
        let mut table = NodeTable::new(&Identity::new("me", 1, address));
        for i in 0..40 {
            table.upsert(format!("n{i}"), 1, address, 64);
        }
        let oracle = |table: &NodeTable, since: Option<Instant>, max: usize| -> Vec<usize> {
            let ties = FixedState::with_seed(table.seed);
            let mut all: Vec<(std::cmp::Reverse<Instant>, u64, usize)> = (0..table.len())
                .filter_map(|index| {
                    let at = table.nodes[index].last_changed()?;
                    since
                        .is_none_or(|since| at >= since)
                        .then(|| (std::cmp::Reverse(at), ties.hash_one(index), index))
                })
                .collect();
            all.sort_unstable();
            all.into_iter().take(max).map(|(_, _, index)| index).collect()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut now = start;
        for step in 0..3_000 {
            now += Duration::from_millis(rng.random_range(0..3));
            let index = rng.random_range(0..table.len());
            table.modify(index, |_, replica| replica.touch_all(now));
            if rng.random_ratio(1, 20) {
                table.prune_recent(now, Duration::from_millis(40));
            }
            assert!(table.recent.len() <= 2 * table.len() + 65, "step {step}: the log grows unbounded");
            for (since, max) in [
                (None, usize::MAX),
                (None, 5),
                (now.checked_sub(Duration::from_millis(10)), 8),
                (Some(now), 3),
            ] {
                assert_eq!(table.recent_first_since(since, max), oracle(&table, since, max), "step {step}");
            }
        }
    }
}
