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
    pub(crate) fn add(&mut self, name: &str, key: SummaryKey) {
        self.hash = self.hash.wrapping_add(entry_hash(name, key));
        self.nodes = self.nodes.wrapping_add(1);
    }

    /// Removes one node's digest entry (the exact values that were added).
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
fn entry_hash(name: &str, key: SummaryKey) -> u64 {
    let name_hash = xxh3_64_with_seed(name.as_bytes(), key.generation);
    let mut versioned = [0u8; 21];
    versioned[..8].copy_from_slice(&name_hash.to_le_bytes());
    versioned[8..16].copy_from_slice(&key.max_version.to_le_bytes());
    versioned[16..20].copy_from_slice(&key.incarnation.to_le_bytes());
    versioned[20] = wire_state(key.state);
    xxh3_64_with_seed(&versioned, ENTRY_SEED)
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
}
