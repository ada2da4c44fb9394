//! The digest summary: an incrementally maintained hash of the whole digest, so that two
//! nodes in sync find it out from one small datagram.

use gossip_proto::v1;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::membership::MemberState;

/// A summary of every (name, generation, max version, incarnation, membership state) a node
/// knows: itself included, and dead and departed members until they are forgotten.
///
/// It is the wrapping sum of one hash per node, so a change to one node's entry updates it
/// in constant time: subtract the old entry's hash, add the new one's. Garbage-collection
/// watermarks are left out on purpose: replicas collect tombstones on their own schedule,
/// and that must not make idle nodes look out of sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DigestSummary {
    /// Wrapping sum of the per-node hashes.
    pub hash: u64,
    /// Number of nodes covered.
    pub nodes: u32,
}

impl DigestSummary {
    /// Adds one node's digest entry.
    #[cfg(test)]
    pub(crate) fn add(&mut self, name: &str, key: SummaryKey) {
        self.hash = self.hash.wrapping_add(entry_hash(name, key));
        self.nodes = self.nodes.wrapping_add(1);
    }

    /// Removes one node's digest entry (the exact values that were added).
    #[cfg(test)]
    pub(crate) fn remove(&mut self, name: &str, key: SummaryKey) {
        self.hash = self.hash.wrapping_sub(entry_hash(name, key));
        self.nodes = self.nodes.wrapping_sub(1);
    }

    pub(crate) fn to_wire(self) -> v1::Summary {
        v1::Summary { hash: self.hash, nodes: self.nodes }
    }

    /// What a ping carries of the summary: the low 32 bits of the hash, enough to tell
    /// two nodes in sync in one small datagram. A difference goes unnoticed by probes with
    /// probability 2^-32, and then until either side's summary changes again.
    pub(crate) fn ping_check(self) -> u32 {
        self.hash as u32
    }

    pub(crate) fn from_wire(summary: Option<&v1::Summary>) -> Option<Self> {
        summary.map(|s| Self { hash: s.hash, nodes: s.nodes })
    }
}

/// Number of buckets the nodes of a table are spread over for [`BucketSums`].
pub(crate) const BUCKETS: usize = 64;

/// The summary, and the same per-node hashes summed per bucket. Two nodes whose summaries
/// differ find out from the bucket sums which sixty-fourths of their tables differ, so that a
/// missing node is named in the next exchange rather than when a rotating digest window
/// happens to reach it (specified in docs/PROTOCOL.md, "Bucket sums").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BucketedSummary {
    total: DigestSummary,
    sums: [u64; BUCKETS],
    /// The data summary: the same sum of [`data_hash`]es (membership states left out).
    data: DigestSummary,
}

impl Default for BucketedSummary {
    fn default() -> Self {
        Self { total: DigestSummary::default(), sums: [0; BUCKETS], data: DigestSummary::default() }
    }
}

impl BucketedSummary {
    /// The whole summary.
    pub(crate) fn summary(&self) -> DigestSummary {
        self.total
    }

    /// The data summary: what the nodes hold, whatever their membership states.
    pub(crate) fn data_summary(&self) -> DigestSummary {
        self.data
    }

    /// Adds one node's entry; returns its bucket.
    pub(crate) fn add(&mut self, name: &str, key: SummaryKey) -> u8 {
        let name_hash = name_hash(name, key.generation);
        let (bucket, hash) = bucket_and_hash_of(name_hash, key);
        self.total.hash = self.total.hash.wrapping_add(hash);
        self.total.nodes = self.total.nodes.wrapping_add(1);
        let sum = &mut self.sums[usize::from(bucket)];
        *sum = sum.wrapping_add(hash);
        self.data.hash = self.data.hash.wrapping_add(data_hash(name_hash, key.max_version));
        self.data.nodes = self.data.nodes.wrapping_add(1);
        bucket
    }

    /// Removes one node's entry (the exact values that were added).
    pub(crate) fn remove(&mut self, name: &str, key: SummaryKey) {
        let name_hash = name_hash(name, key.generation);
        let (bucket, hash) = bucket_and_hash_of(name_hash, key);
        self.total.hash = self.total.hash.wrapping_sub(hash);
        self.total.nodes = self.total.nodes.wrapping_sub(1);
        let sum = &mut self.sums[usize::from(bucket)];
        *sum = sum.wrapping_sub(hash);
        self.data.hash = self.data.hash.wrapping_sub(data_hash(name_hash, key.max_version));
        self.data.nodes = self.data.nodes.wrapping_sub(1);
    }

    /// What a `Syn` carries: the low 32 bits of each bucket's sum.
    pub(crate) fn bucket_sums(&self) -> Vec<u32> {
        self.sums.iter().map(|&sum| sum as u32).collect()
    }

    /// The buckets whose sums differ from a peer's, as a bit mask (bit `b` for bucket `b`);
    /// `None` unless the peer sent exactly [`BUCKETS`] sums.
    pub(crate) fn differing(&self, theirs: &[u32]) -> Option<u64> {
        if theirs.len() != BUCKETS {
            return None;
        }
        let differs = self.sums.iter().zip(theirs).map(|(&ours, &theirs)| ours as u32 != theirs);
        Some(
            differs
                .enumerate()
                .filter(|(_, differs)| *differs)
                .fold(0, |mask, (bucket, _)| mask | 1 << bucket),
        )
    }
}

/// What the summary covers of one node, besides its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SummaryKey {
    pub(crate) generation: u64,
    pub(crate) max_version: u64,
    pub(crate) incarnation: u32,
    pub(crate) state: MemberState,
}

/// The seed of the second hash (the 64-bit golden ratio).
const ENTRY_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// One node's hash (specified in docs/PROTOCOL.md, "Digest summary"): XXH3-64 of the name
/// seeded with the generation, then XXH3-64 seeded with [`ENTRY_SEED`] of the 21 bytes
/// `name_hash (u64 LE) || max_version (u64 LE) || incarnation (u32 LE) || state`, where
/// `state` is the wire value of `v1::MemberState` (Alive 1, Suspect 2, Dead 3, Left 4).
#[cfg(test)]
fn entry_hash(name: &str, key: SummaryKey) -> u64 {
    bucket_and_hash(name, key).1
}

/// A node's bucket (the top six bits of its `name_hash`) and its [`entry_hash`].
#[cfg(test)]
fn bucket_and_hash(name: &str, key: SummaryKey) -> (u8, u64) {
    bucket_and_hash_of(name_hash(name, key.generation), key)
}

/// XXH3-64 of the name, seeded with the generation.
fn name_hash(name: &str, generation: u64) -> u64 {
    xxh3_64_with_seed(name.as_bytes(), generation)
}

/// The seed of the data hash (the golden ratio's next 64 bits).
const DATA_SEED: u64 = 0xf39c_c060_5ced_c834;

/// One node's data hash (specified in docs/PROTOCOL.md, "Digest summary"): XXH3-64 seeded
/// with [`DATA_SEED`] of the 16 bytes `name_hash (u64 LE) || max_version (u64 LE)`.
fn data_hash(name_hash: u64, max_version: u64) -> u64 {
    let mut versioned = [0u8; 16];
    versioned[..8].copy_from_slice(&name_hash.to_le_bytes());
    versioned[8..].copy_from_slice(&max_version.to_le_bytes());
    xxh3_64_with_seed(&versioned, DATA_SEED)
}

/// [`bucket_and_hash`] from the node's `name_hash`.
fn bucket_and_hash_of(name_hash: u64, key: SummaryKey) -> (u8, u64) {
    let mut versioned = [0u8; 21];
    versioned[..8].copy_from_slice(&name_hash.to_le_bytes());
    versioned[8..16].copy_from_slice(&key.max_version.to_le_bytes());
    versioned[16..20].copy_from_slice(&key.incarnation.to_le_bytes());
    versioned[20] = wire_state(key.state);
    ((name_hash >> 58) as u8, xxh3_64_with_seed(&versioned, ENTRY_SEED))
}

/// The state's number on the wire (1 to 4), as other implementations see it.
fn wire_state(state: MemberState) -> u8 {
    match state.to_wire() {
        v1::MemberState::Unspecified => 0,
        v1::MemberState::Alive => 1,
        v1::MemberState::Suspect => 2,
        v1::MemberState::Dead => 3,
        v1::MemberState::Left => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(generation: u64, max_version: u64) -> SummaryKey {
        SummaryKey { generation, max_version, incarnation: 0, state: MemberState::Alive }
    }

    #[test]
    fn summary_is_order_independent_and_reversible() {
        let mut a = DigestSummary::default();
        a.add("n1", key(1, 5));
        a.add("n2", key(1, 7));
        let mut b = DigestSummary::default();
        b.add("n2", key(1, 7));
        b.add("n1", key(1, 5));
        assert_eq!(a, b);

        b.remove("n2", key(1, 7));
        b.add("n2", key(1, 8));
        assert_ne!(a, b, "a new max version must change the summary");
        b.remove("n2", key(1, 8));
        b.add("n2", key(1, 7));
        assert_eq!(a, b);

        let mut c = DigestSummary::default();
        c.add("n1", key(2, 5));
        c.add("n2", key(1, 7));
        assert_ne!(a, c, "a new generation must change the summary");

        let mut d = b;
        d.remove("n1", key(1, 5));
        d.add("n1", SummaryKey { state: MemberState::Suspect, ..key(1, 5) });
        assert_ne!(a, d, "a new membership state must change the summary");
    }

    #[test]
    fn the_state_is_hashed_as_its_wire_value() {
        for (state, wire) in [
            (MemberState::Alive, 1u8),
            (MemberState::Suspect, 2),
            (MemberState::Dead, 3),
            (MemberState::Left, 4),
        ] {
            assert_eq!(wire_state(state), wire);
            assert_eq!(i32::from(wire), state.to_wire() as i32);
            let key = SummaryKey { generation: 7, max_version: 3, incarnation: 2, state };
            let mut bytes = [0u8; 21];
            bytes[..8].copy_from_slice(&xxh3_64_with_seed(b"n1", 7).to_le_bytes());
            bytes[8..16].copy_from_slice(&3u64.to_le_bytes());
            bytes[16..20].copy_from_slice(&2u32.to_le_bytes());
            bytes[20] = wire;
            assert_eq!(entry_hash("n1", key), xxh3_64_with_seed(&bytes, 0x9e37_79b9_7f4a_7c15));
        }
    }

    /// The bucket sums follow the recipe (a node's bucket is the top six bits of its name
    /// hash), add up to the summary, and a difference shows in the right bucket only.
    #[test]
    fn bucket_sums_split_the_summary_by_the_top_bits_of_the_name_hash() {
        let nodes: Vec<(String, SummaryKey)> =
            (0..300).map(|i| (format!("node-{i}"), key(i % 3 + 1, i))).collect();
        let mut bucketed = BucketedSummary::default();
        let mut plain = DigestSummary::default();
        let mut recipe = [0u64; BUCKETS];
        for (name, key) in &nodes {
            let bucket = bucketed.add(name, *key);
            plain.add(name, *key);
            assert_eq!(u64::from(bucket), xxh3_64_with_seed(name.as_bytes(), key.generation) >> 58);
            recipe[usize::from(bucket)] = recipe[usize::from(bucket)].wrapping_add(entry_hash(name, *key));
        }
        assert_eq!(bucketed.summary(), plain);
        let wire: Vec<u32> = recipe.iter().map(|&sum| sum as u32).collect();
        assert_eq!(bucketed.bucket_sums(), wire);
        assert_eq!(bucketed.differing(&wire), Some(0));
        assert_eq!(bucketed.differing(&wire[1..]), None, "63 sums are ignored");

        let (name, old) = &nodes[7];
        bucketed.remove(name, *old);
        let bucket = bucketed.add(name, key(old.generation, old.max_version + 1));
        assert_eq!(bucketed.differing(&wire), Some(1 << bucket), "only the changed node's bucket differs");
    }
}
