//! Deltas: checking the ones that arrive, and packing the ones to send into the datagram
//! budget (most useful first, each a contiguous run in version order).

use std::cmp::Reverse;
use std::net::SocketAddr;

use bytes::Bytes;
use gossip_proto::v1;
use prost::Message;
use prost::encoding::encoded_len_varint;
use rand_core::Rng;

use crate::budget::{Budget, field_len};
use crate::config::Config;
use crate::identity::{address_from_wire, address_to_wire};
use crate::membership::MemberState;
use crate::message::DecodedDelta;
use crate::replica::{EntryRef, Replica};
use crate::shared_entry::EntrySpans;
use crate::table::NodeTable;

/// A received delta that passed the checks ([`ReceivedDelta::check`]): the address and the
/// member's state parsed, and the entries, with where their keys and values lie in the
/// datagram (see [`crate::message::decode`]), so that storing them and reporting them costs
/// no copy. Applying it ([`crate::replica::Replica::apply`]) moves the entries into the
/// replica.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReceivedDelta {
    pub(crate) name: String,
    pub(crate) generation: u64,
    pub(crate) address: SocketAddr,
    pub(crate) from_version: u64,
    pub(crate) to_version: u64,
    pub(crate) gc_watermark: u64,
    pub(crate) reset: bool,
    pub(crate) incarnation: u32,
    /// `None` for an unspecified or unknown state: the delta then makes no claim.
    pub(crate) state: Option<MemberState>,
    /// Set when the sender cut the delta short: how far its replica goes.
    pub(crate) sender_max_version: u64,
    /// In strictly increasing version order, within `(from_version, to_version]`.
    pub(crate) entries: Vec<ReceivedEntry>,
    /// The datagram the entries lie in (empty when none does): the replica and their key
    /// event share it (see `KeyChanges`).
    pub(crate) datagram: Bytes,
    /// The keys and values of the entries that were not laid out plainly (prost decoded
    /// them), copied side by side.
    pub(crate) own: Bytes,
}

/// A received `Entry`: where its key and value lie, in 32 bytes and no reference count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReceivedEntry {
    /// Where the key (checked UTF-8) and the value lie: in the datagram, or in the delta's
    /// own buffer when `own`.
    pub(crate) spans: EntrySpans,
    pub(crate) version: u64,
    pub(crate) deleted: bool,
    pub(crate) own: bool,
}

impl ReceivedDelta {
    /// The buffer `entry`'s key and value lie in.
    pub(crate) fn source(&self, entry: &ReceivedEntry) -> &Bytes {
        if entry.own { &self.own } else { &self.datagram }
    }
}

impl ReceivedDelta {
    /// Checks a decoded delta against the protocol's rules and the config's limits; `None`
    /// when it breaks one (the whole datagram is then dropped).
    /// `datagram` is the buffer the delta was decoded from.
    pub(crate) fn check(delta: DecodedDelta, config: &Config, datagram: &Bytes) -> Option<Self> {
        let DecodedDelta { header, entries, own } = delta;
        if !valid_name(&header.name, config) || header.from_version > header.to_version {
            return None;
        }
        if header.reset && header.from_version != 0 {
            return None;
        }
        let mut previous = header.from_version;
        let mut in_datagram = false;
        for entry in &entries {
            in_datagram |= !entry.own;
            let in_order = entry.version > previous && entry.version <= header.to_version;
            let (key, value) = (entry.spans.key(), entry.spans.value());
            if !in_order || key.len() > config.max_key_size || value.len() > config.max_value_size {
                return None;
            }
            previous = entry.version;
        }
        let address = address_from_wire(header.address.as_ref())?;
        Some(Self {
            state: MemberState::from_wire(header.state),
            name: header.name,
            generation: header.generation,
            address,
            from_version: header.from_version,
            to_version: header.to_version,
            gc_watermark: header.gc_watermark,
            reset: header.reset,
            incarnation: header.incarnation,
            sender_max_version: header.sender_max_version,
            datagram: if in_datagram { datagram.clone() } else { Bytes::new() },
            own: Bytes::from(own),
            entries,
        })
    }
}

/// Whether a node name from the network is acceptable.
pub(crate) fn valid_name(name: &str, config: &Config) -> bool {
    !name.is_empty() && name.len() <= config.max_name_size
}

/// One node's delta that a peer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeltaPlan {
    /// The node, by table index.
    pub(crate) index: usize,
    /// The peer's max version: the delta starts after it.
    pub(crate) from: u64,
    /// The peer is behind our watermark and must rebuild its replica.
    pub(crate) reset: bool,
    /// How many versions the peer misses.
    pub(crate) missing: u64,
}

/// Orders plans for a peer whose digest we know: nodes it does not know first, then those
/// with the most missing versions, ties broken at random.
pub(crate) fn by_need<R: Rng>(plans: Vec<DeltaPlan>, rng: &mut R) -> Vec<DeltaPlan> {
    let mut keyed: Vec<(bool, Reverse<u64>, u32, DeltaPlan)> =
        plans.into_iter().map(|plan| (plan.from != 0, Reverse(plan.missing), rng.next_u32(), plan)).collect();
    keyed.sort_unstable_by_key(|(known, missing, tiebreak, _)| (*known, *missing, *tiebreak));
    keyed.into_iter().map(|(_, _, _, plan)| plan).collect()
}

/// Packs as many of `plans`, in their order, as fit `budget`. A node whose run does not fit
/// whole is cut after its last entry that fits (the receiver applies the prefix). Returns the
/// deltas and the table indexes of the nodes they cover.
pub(crate) fn pack(
    table: &NodeTable,
    plans: impl IntoIterator<Item = DeltaPlan>,
    budget: &mut Budget,
) -> (Vec<v1::NodeDelta>, Vec<usize>) {
    let mut deltas = Vec::new();
    let mut indexes = Vec::new();
    let mut refused_in_a_row = 0;
    for plan in plans {
        if budget.remaining() < MIN_USEFUL_DELTA || refused_in_a_row == MAX_REFUSALS_IN_A_ROW {
            break;
        }
        match pack_one(table, plan, budget) {
            Some(delta) => {
                deltas.push(delta);
                indexes.push(plan.index);
                refused_in_a_row = 0;
            }
            None => refused_in_a_row += 1,
        }
    }
    (deltas, indexes)
}

/// Below this many free bytes no delta with an entry fits; stop trying.
pub(crate) const MIN_USEFUL_DELTA: usize = 24;
/// After this many plans in a row found no room, the datagram counts as full. A table's
/// deltas are mostly of a size, and trying each of hundreds of remaining plans (a node's hot
/// rumors under load, a digest comparison at 500 nodes) took a tenth of the CPU of the
/// 500-node cluster example under write load.
const MAX_REFUSALS_IN_A_ROW: usize = 8;

fn pack_one(table: &NodeTable, plan: DeltaPlan, budget: &mut Budget) -> Option<v1::NodeDelta> {
    let (name, replica) = table.get(plan.index)?;
    // Whether anything fits, before building (and allocating) anything: once a datagram is
    // nearly full, every remaining plan of a large table is tried and refused here.
    let room = budget.remaining();
    let header = header_len(name, replica, &plan);
    if field_len(header) > room {
        return None;
    }
    if let Some((version, entry)) = replica.entries_after(plan.from).next() {
        let first = stored_entry_len(version, &entry);
        if field_len(header + first) > room {
            // Cut to no entry at all: not worth a delta.
            return None;
        }
    }
    let mut delta = delta_header(name, replica, &plan);
    let mut len = header;
    debug_assert_eq!(len, delta.encoded_len(), "header_len counts as prost does");
    let mut truncated = false;
    let mut lengths = Vec::new();
    for (version, entry) in replica.entries_after(plan.from) {
        let entry_len = stored_entry_len(version, &entry);
        if field_len(len + entry_len) > room {
            truncated = true;
            break;
        }
        len += entry_len;
        lengths.push(entry_len);
        delta.entries.push(v1::Entry {
            key: entry.key().to_owned(),
            value: entry.shared_value(),
            version,
            deleted: entry.deleted,
        });
    }
    if truncated {
        // Cut short: the sender's max version goes too (how far a rebuilt replica must catch
        // up), in place of the last entries if need be.
        let extra = 1 + encoded_len_varint(replica.max_version);
        while field_len(len + extra) > room {
            delta.entries.pop()?;
            len -= lengths.pop()?;
        }
        len += extra;
        delta.sender_max_version = replica.max_version;
        // The receiver's max version becomes the last version sent: a prefix, no hole.
        delta.to_version = delta.entries.last()?.version;
    }
    budget.take(field_len(len)).then_some(delta)
}

/// The bytes a stored entry takes in a delta's `entries`, field key and length included (its
/// key's bytes counted as they are: no second UTF-8 check on the way out).
fn stored_entry_len(version: u64, entry: &EntryRef<'_>) -> usize {
    field_len(entry_encoded_len(entry.key_bytes().len(), entry.value().len(), version, entry.deleted))
}

/// The `NodeDelta` of `plan` before its entries and `sender_max_version`.
fn delta_header(name: &str, replica: &Replica, plan: &DeltaPlan) -> v1::NodeDelta {
    v1::NodeDelta {
        name: name.to_owned(),
        generation: replica.generation,
        address: Some(address_to_wire(replica.address)),
        from_version: plan.from,
        to_version: replica.max_version,
        gc_watermark: replica.gc_watermark,
        reset: plan.reset,
        entries: Vec::new(),
        incarnation: replica.incarnation,
        state: replica.state.to_wire() as i32,
        sender_max_version: 0,
    }
}

/// The encoded length of [`delta_header`]'s `NodeDelta`, counted as prost does (fields at
/// their default value take no byte) without building it.
fn header_len(name: &str, replica: &Replica, plan: &DeltaPlan) -> usize {
    let varint_field = |value: u64| if value == 0 { 0 } else { 1 + encoded_len_varint(value) };
    let bytes_field = |len: usize| if len == 0 { 0 } else { 1 + encoded_len_varint(len as u64) + len };
    let ip_len = if replica.address.is_ipv4() { 4 } else { 16 };
    let address = bytes_field(ip_len) + varint_field(u64::from(replica.address.port()));
    let state = replica.state.to_wire() as i32;
    bytes_field(name.len())
        + varint_field(replica.generation)
        + 1
        + encoded_len_varint(address as u64)
        + address
        + varint_field(plan.from)
        + varint_field(replica.max_version)
        + varint_field(replica.gc_watermark)
        + if plan.reset { 2 } else { 0 }
        + varint_field(u64::from(replica.incarnation))
        + varint_field(i64::from(state) as u64)
}

/// The encoded length of an `Entry` without building it.
fn entry_encoded_len(key_len: usize, value_len: usize, version: u64, deleted: bool) -> usize {
    let bytes_field = |len: usize| if len == 0 { 0 } else { 1 + encoded_len_varint(len as u64) + len };
    let version_len = if version == 0 { 0 } else { 1 + encoded_len_varint(version) };
    bytes_field(key_len) + bytes_field(value_len) + version_len + if deleted { 2 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `header_len` counts what prost would encode, for addresses of both families, a port
    /// of 0, fields at 0 and at their largest values, every state, and a reset.
    #[test]
    fn header_length_formula_matches_prost() {
        use crate::membership::MemberState;
        let addresses: [SocketAddr; 3] = [
            "10.0.0.1:7946".parse().unwrap(),
            "[fd00::1]:65535".parse().unwrap(),
            "10.0.0.2:0".parse().unwrap(),
        ];
        let states = [MemberState::Alive, MemberState::Suspect, MemberState::Dead, MemberState::Left];
        for (i, address) in addresses.into_iter().enumerate() {
            for (j, state) in states.into_iter().enumerate() {
                let big = i + j > 3;
                let mut replica = Replica::new(if big { u64::MAX } else { i as u64 }, address);
                replica.max_version = if big { u64::MAX } else { j as u64 };
                replica.gc_watermark = if big { 1 << 40 } else { 0 };
                replica.incarnation = if big { u32::MAX } else { j as u32 };
                replica.state = state;
                let plan = DeltaPlan { index: 0, from: (i * 300) as u64, reset: j % 2 == 1, missing: 0 };
                let name = "n".repeat(1 + 40 * i);
                let delta = delta_header(&name, &replica, &plan);
                assert_eq!(header_len(&name, &replica, &plan), delta.encoded_len(), "{delta:?}");
            }
        }
    }

    #[test]
    fn entry_length_formula_matches_prost() {
        for (key, value, version, deleted) in [
            ("", 0, 0, false),
            ("k", 1, 1, true),
            ("key", 300, u64::MAX, false),
            (&"x".repeat(200)[..], 0, 128, true),
        ] {
            let entry = v1::Entry { key: key.to_owned(), value: vec![7; value].into(), version, deleted };
            assert_eq!(entry_encoded_len(key.len(), value, version, deleted), entry.encoded_len());
        }
    }
}
