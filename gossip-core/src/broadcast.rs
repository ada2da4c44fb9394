//! The piggyback queue of infection-style dissemination: membership updates (and, in a queue
//! of their own, application broadcasts) waiting to ride on outgoing datagrams,
//! least-transmitted first, each at most `retransmit_mult x ceil(log10(n + 1))` times.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use gossip_proto::v1;
use prost::Message;

use crate::budget::field_len;

/// Position in the queue: fewest transmissions first, then newest first.
type Slot = (u32, Reverse<u64>);

/// One update waiting to be piggybacked.
#[derive(Debug, Clone)]
struct Pending<M> {
    name: String,
    update: M,
    /// Its encoded size in the envelope.
    len: usize,
}

/// Updates to piggyback, at most one per key (the newest; for membership updates the key is
/// the member's name), at most `capacity`. Both queueing and taking cost O(log n) per update
/// touched, so a long queue (many members changing under loss) does not slow every datagram
/// down. `M` is the wire message; its envelope field must have a two-byte key (fields 16 to
/// 2047), as `membership` (16) and `broadcasts` (19) do.
#[derive(Debug)]
pub(crate) struct Broadcasts<M = v1::MembershipUpdate> {
    queue: BTreeMap<Slot, Pending<M>>,
    slots: BTreeMap<String, Slot>,
    next_id: u64,
    capacity: usize,
    /// Updates dropped because the queue was full.
    pub(crate) dropped: u64,
}

/// Field number of `Envelope.membership` is 16: a two-byte key.
pub(crate) fn membership_field_len(len: usize) -> usize {
    field_len(len) + 1
}

/// Stop looking for an update that fits once this many in a row did not.
const MAX_MISFITS: usize = 16;

impl<M: Message + Clone> Broadcasts<M> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { queue: BTreeMap::new(), slots: BTreeMap::new(), next_id: 0, capacity, dropped: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues `update` under the key `name`, replacing an older update of that key. When
    /// full, the most-transmitted update gives way.
    pub(crate) fn push(&mut self, name: &str, update: M) {
        if let Some(slot) = self.slots.remove(name) {
            self.queue.remove(&slot);
        } else if self.queue.len() >= self.capacity {
            let Some((_, most)) = self.queue.pop_last() else { return };
            self.slots.remove(&most.name);
            self.dropped += 1;
        }
        let slot = (0, Reverse(self.next_id));
        self.next_id += 1;
        let len = membership_field_len(update.encoded_len());
        self.slots.insert(name.to_owned(), slot);
        self.queue.insert(slot, Pending { name: name.to_owned(), update, len });
    }

    /// Takes the updates that fit `room` bytes: first the one about `first` (the buddy
    /// system), then the least-transmitted. Each taken update counts one transmission; those
    /// that reach `limit` leave the queue.
    pub(crate) fn take(&mut self, room: usize, limit: u32, first: Option<&str>) -> Vec<M> {
        self.take_unless(room, limit, first, |_| false)
    }

    /// As [`take`](Self::take), leaving in the queue (and uncounted) the updates `skip`
    /// names: those the datagram's receiver has already.
    pub(crate) fn take_unless(
        &mut self,
        room: usize,
        limit: u32,
        first: Option<&str>,
        skip: impl Fn(&M) -> bool,
    ) -> Vec<M> {
        if self.queue.is_empty() {
            return Vec::new();
        }
        let mut left = room;
        let mut chosen: Vec<Slot> = Vec::new();
        if let Some(slot) = first.and_then(|name| self.slots.get(name)) {
            if self.queue[slot].len <= left {
                left -= self.queue[slot].len;
                chosen.push(*slot);
            }
        }
        let mut misfits = 0;
        for (slot, pending) in &self.queue {
            if left < 16 || misfits >= MAX_MISFITS {
                break;
            }
            if chosen.first() == Some(slot) || skip(&pending.update) {
                continue;
            }
            if pending.len > left {
                misfits += 1;
                continue;
            }
            left -= pending.len;
            chosen.push(*slot);
        }
        let mut taken = Vec::with_capacity(chosen.len());
        for slot in chosen {
            let Some(pending) = self.queue.remove(&slot) else { continue };
            taken.push(pending.update.clone());
            let transmits = slot.0 + 1;
            if transmits < limit {
                let moved = (transmits, slot.1);
                // In place: the name is there already (a clone of it to insert again was an
                // allocation and a free per update sent, in every datagram).
                match self.slots.get_mut(&pending.name) {
                    Some(held) => *held = moved,
                    None => {
                        self.slots.insert(pending.name.clone(), moved);
                    }
                }
                self.queue.insert(moved, pending);
            } else {
                self.slots.remove(&pending.name);
            }
        }
        taken
    }
}

/// The retransmit limit for a cluster of `n` members.
pub(crate) fn retransmit_limit(mult: u32, n: usize) -> u32 {
    let log = ((n + 1) as f64).log10().ceil().max(1.0) as u32;
    mult.saturating_mul(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, incarnation: u32) -> v1::MembershipUpdate {
        v1::MembershipUpdate {
            member: Some(v1::NodeIdentity { name: name.to_owned(), generation: 1, address: None }),
            incarnation,
            state: v1::MemberState::Alive as i32,
            from: String::new(),
        }
    }

    #[test]
    fn least_transmitted_go_first_and_each_stops_at_the_limit() {
        let mut queue = Broadcasts::new(10);
        queue.push("a", update("a", 1));
        assert_eq!(queue.take(1000, 2, None).len(), 1);
        queue.push("b", update("b", 1));
        let first = queue.take(30, 2, None);
        assert_eq!(first[0].member.as_ref().unwrap().name, "b", "b was sent less often");
        queue.take(1000, 2, None);
        assert_eq!(queue.len(), 0, "both reached the limit of 2");
    }

    #[test]
    fn a_newer_update_replaces_the_old_one_and_the_buddy_goes_first() {
        let mut queue = Broadcasts::new(10);
        queue.push("a", update("a", 1));
        queue.push("b", update("b", 1));
        queue.push("a", update("a", 2));
        assert_eq!(queue.len(), 2);
        let taken = queue.take(1000, 5, Some("b"));
        assert_eq!(taken[0].member.as_ref().unwrap().name, "b");
        assert!(taken.iter().any(|u| u.incarnation == 2));
    }

    #[test]
    fn limit_grows_with_the_log_of_the_cluster() {
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 1000), 16);
    }
}
