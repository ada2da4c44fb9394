//! The one place where what a peer says about a node's table and identity is merged into
//! ours: registering a sender, the bookkeeping and events of every upsert (discovered,
//! restarted, refused), and applying received deltas (each node's independently, under the
//! replica's laws: see `laws/`).

use std::net::SocketAddr;
use std::sync::Arc;

use rand_core::Rng;

use crate::delta::ReceivedDelta;
use crate::event::Event;
use crate::identity::Identity;
use crate::membership::{Claim, ClaimKind, Source};
use crate::node::Node;
use crate::replica::NotApplied;
use crate::table::Upsert;

impl<R: Rng> Node<R> {
    /// Registers the sender of a datagram that came from `from`. A new member (or a new
    /// generation) is placed at the address it states, or at `from` when it states none (a
    /// ping); a known member's address does not move (see `NodeTable::upsert`). The member
    /// counts as heard from when the datagram came from the address we hold for it.
    pub(crate) fn observe_sender(&mut self, sender: &Identity, from: SocketAddr, stated_address: bool) {
        let address = if stated_address { sender.address } else { from };
        let upsert =
            self.table.upsert(sender.name.as_str(), sender.generation, address, self.config.max_nodes);
        self.note_upsert(&sender.name, sender.generation, address, upsert);
        if let Upsert::Known(index) | Upsert::Discovered(index) | Upsert::Restarted { index, .. } = upsert {
            if self.table.get(index).is_some_and(|(_, member)| member.address == from) {
                self.table.mark_heard(index);
            }
        }
    }

    /// Emits the event an upsert calls for; `false` when the information was refused.
    pub(crate) fn note_upsert(
        &mut self,
        name: &str,
        generation: u64,
        address: SocketAddr,
        upsert: Upsert,
    ) -> bool {
        match upsert {
            Upsert::Known(_) => true,
            Upsert::Discovered(index) => {
                if let Some(name) = self.table.name_at(index) {
                    self.prober.insert(name.clone(), &mut self.rng);
                }
                self.out.events.emit(Event::MemberDiscovered { name: name.to_owned(), generation, address });
                true
            }
            Upsert::Restarted { index, old_generation, old_address } => {
                self.rumors.forget(index);
                // A suspicion of the old generation says nothing of the new one (a deferred
                // one would otherwise declare it dead, see `Node::defer_death`).
                self.stop_suspicion(name);
                self.out.events.emit(Event::MemberRestarted {
                    name: name.to_owned(),
                    old_generation,
                    generation,
                    address,
                    old_address,
                });
                true
            }
            // An unknown sender beyond the cap is still answered; it is just not recorded.
            Upsert::Full => {
                self.out.metrics.nodes_over_cap += 1;
                true
            }
            Upsert::TooFarAhead => {
                self.out.metrics.generations_refused += 1;
                false
            }
            Upsert::Stale | Upsert::Local => false,
        }
    }

    /// Makes this node know `name` (empty table, max version 0) without any datagram, sharing
    /// the name's allocation: the simulator builds large in-sync clusters with it.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn insert_known_node(&mut self, name: Arc<str>, generation: u64, address: SocketAddr) {
        let upsert = self.table.upsert(name, generation, address, self.config.max_nodes);
        match upsert {
            // The simulator's in-sync start stands for a cluster that has run a while: every
            // member has been heard from.
            Upsert::Discovered(index) | Upsert::Known(index) => self.table.mark_heard(index),
            Upsert::Full => self.out.metrics.nodes_over_cap += 1,
            _ => {}
        }
    }

    /// Reserves room for `additional` more known nodes, exactly (no doubling slack): call it
    /// before many [`insert_known_node`](Self::insert_known_node) calls.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn reserve_nodes(&mut self, additional: usize) {
        self.table.reserve_exact(additional);
    }

    /// Applies checked deltas passed on by `source`, each node's independently; what was
    /// news becomes a hot rumor. A delta relayed by a third party that raises a known
    /// table's max version by more than `max_version_jump` is dropped. Returns the table
    /// indexes of the nodes whose deltas brought nothing new.
    pub(crate) fn apply_deltas(&mut self, deltas: Vec<ReceivedDelta>, source: Source<'_>) -> Vec<usize> {
        let mut already_known = Vec::new();
        for node_delta in deltas {
            let address = node_delta.address;
            let gone = node_delta.state.is_some_and(|state| !state.is_live());
            if gone && self.table.index_of(&node_delta.name).is_none() {
                // A node we do not know that the sender holds dead or departed: not learned
                // (see `apply_claim`), its table neither.
                self.out.metrics.stale_deltas += 1;
                continue;
            }
            let upsert = self.table.upsert(
                node_delta.name.as_str(),
                node_delta.generation,
                address,
                self.config.max_nodes,
            );
            let index = match upsert {
                Upsert::Local => {
                    let ours = self.table.local();
                    let newer = node_delta.generation > ours.generation
                        || (node_delta.generation == ours.generation
                            && node_delta.to_version > ours.max_version);
                    if newer {
                        self.out.metrics.rejected_own_deltas += 1;
                        self.heal_if_ahead_of_us(node_delta.generation, node_delta.to_version);
                    } else {
                        self.out.metrics.stale_deltas += 1;
                        // Its claim about us still gets its answer (a refutation, say).
                        let current = node_delta.generation == self.identity.generation;
                        if let Some(state) = node_delta.state.filter(|_| current) {
                            let claim = Claim {
                                name: node_delta.name,
                                generation: node_delta.generation,
                                address,
                                incarnation: node_delta.incarnation,
                                state,
                                from: String::new(),
                            };
                            // About us: answered, never passed on, whatever its kind.
                            self.apply_claim(claim, source, ClaimKind::News);
                        }
                    }
                    continue;
                }
                Upsert::Stale => {
                    self.out.metrics.stale_deltas += 1;
                    continue;
                }
                Upsert::Full => {
                    self.out.metrics.nodes_over_cap += 1;
                    continue;
                }
                Upsert::TooFarAhead => {
                    self.out.metrics.generations_refused += 1;
                    continue;
                }
                Upsert::Known(index) => {
                    let known = self.table.get(index).map_or(0, |(_, member)| member.max_version);
                    if !source.is_first_hand(&node_delta.name)
                        && node_delta.to_version.saturating_sub(known) > self.config.max_version_jump
                    {
                        self.out.metrics.jumps_refused += 1;
                        continue;
                    }
                    index
                }
                Upsert::Discovered(index) | Upsert::Restarted { index, .. } => index,
            };
            self.note_upsert(&node_delta.name, node_delta.generation, address, upsert);
            if let Some(state) = node_delta.state {
                let claim = Claim {
                    name: node_delta.name.clone(),
                    generation: node_delta.generation,
                    address: self.table.get(index).map_or(address, |(_, member)| member.address),
                    incarnation: node_delta.incarnation,
                    state,
                    from: String::new(),
                };
                let kind =
                    if matches!(upsert, Upsert::Known(_)) { ClaimKind::News } else { ClaimKind::FirstState };
                self.apply_claim(claim, source, kind);
            }
            let generation = node_delta.generation;
            let (now, deadline) = (self.now, self.now + self.config.tombstone_grace);
            let max_keys = self.config.max_keys_per_node;
            let events = &mut self.out.events;
            let result = self.table.modify(index, |owner, replica| {
                replica.apply(owner, node_delta, now, deadline, max_keys, events)
            });
            match result {
                Some(Ok(applied)) => {
                    self.out.metrics.deltas_applied += 1;
                    self.out.metrics.entries_applied += applied.entries as u64;
                    self.out.metrics.replica_resets += u64::from(applied.reset);
                    self.out.metrics.keys_over_cap += applied.over_cap as u64;
                    if applied.to > applied.from || applied.reset {
                        self.heat_rumor(index, generation, applied.from, applied.to);
                        self.note_activity();
                    }
                }
                Some(Err(NotApplied::AlreadyKnown)) => {
                    self.out.metrics.stale_deltas += 1;
                    already_known.push(index);
                }
                Some(Err(NotApplied::Gap)) | None => self.out.metrics.stale_deltas += 1,
            }
        }
        already_known
    }
}
