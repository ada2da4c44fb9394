//! Membership: every known member is Alive, Suspect, Dead or Left under an incarnation number
//! that only the member itself raises, and SWIM's precedence rules decide which claim wins.
//! Updates spread infection-style, piggybacked on every datagram (see `broadcast.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use gossip_proto::v1;
use rand_core::Rng;

use crate::event::Event;
use crate::identity::{address_from_wire, address_to_wire};
use crate::node::Node;
use crate::table::{LOCAL, Upsert};

/// A member's state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemberState {
    /// Answering probes.
    #[default]
    Alive,
    /// Missed a probe; it may still refute before its suspicion times out.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left the cluster gracefully.
    Left,
}

impl MemberState {
    pub(crate) fn to_wire(self) -> v1::MemberState {
        match self {
            Self::Alive => v1::MemberState::Alive,
            Self::Suspect => v1::MemberState::Suspect,
            Self::Dead => v1::MemberState::Dead,
            Self::Left => v1::MemberState::Left,
        }
    }

    pub(crate) fn from_wire(state: i32) -> Option<Self> {
        match v1::MemberState::try_from(state).ok()? {
            v1::MemberState::Alive => Some(Self::Alive),
            v1::MemberState::Suspect => Some(Self::Suspect),
            v1::MemberState::Dead => Some(Self::Dead),
            v1::MemberState::Left => Some(Self::Left),
            v1::MemberState::Unspecified => None,
        }
    }

    /// Whether the member takes part in probing and gossip.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Alive | Self::Suspect)
    }
}

/// Whether the claim `(new_incarnation, new)` overrides `(incarnation, current)` for the same
/// generation of a member.
///
/// - Left is final for the generation, and overrides every state of the same or a lower
///   incarnation (the leaver raises its incarnation to leave, so a Left of a lower one is
///   stale or forged: taking it would make the incarnation go back);
/// - Dead overrides Alive and Suspect of the same or a lower incarnation, and gives way only
///   to an Alive with a higher incarnation (the member refuted, e.g. after a partition);
/// - Suspect overrides Alive of the same or a lower incarnation, and Suspect of a lower one;
/// - Alive overrides Alive and Suspect of a lower incarnation.
pub(crate) fn overrides(
    current: MemberState,
    incarnation: u32,
    new: MemberState,
    new_incarnation: u32,
) -> bool {
    use MemberState::*;
    match (current, new) {
        (Left, _) => false,
        (_, Left) => new_incarnation >= incarnation,
        (Dead, Alive) => new_incarnation > incarnation,
        (Dead, _) => false,
        (_, Dead) => new_incarnation >= incarnation,
        (Alive, Suspect) => new_incarnation >= incarnation,
        (Suspect, Suspect) | (Alive, Alive) | (Suspect, Alive) => new_incarnation > incarnation,
    }
}

/// A membership update checked against the protocol's rules.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) name: String,
    pub(crate) generation: u64,
    pub(crate) address: SocketAddr,
    pub(crate) incarnation: u32,
    pub(crate) state: MemberState,
    /// Who asserted it (for counting independent suspicion confirmations).
    pub(crate) from: String,
}

impl Claim {
    pub(crate) fn from_wire(update: &v1::MembershipUpdate) -> Option<Self> {
        let member = update.member.as_ref()?;
        Some(Self {
            name: member.name.clone(),
            generation: member.generation,
            address: address_from_wire(member.address.as_ref())?,
            incarnation: update.incarnation,
            state: MemberState::from_wire(update.state)?,
            from: update.from.clone(),
        })
    }

    pub(crate) fn to_wire(&self) -> v1::MembershipUpdate {
        v1::MembershipUpdate {
            member: Some(v1::NodeIdentity {
                name: self.name.clone(),
                generation: self.generation,
                address: Some(address_to_wire(self.address)),
            }),
            incarnation: self.incarnation,
            state: self.state.to_wire() as i32,
            from: self.from.clone(),
        }
    }
}

impl<R: Rng> Node<R> {
    /// The claim this node makes about a member as it holds it now.
    pub(crate) fn claim_about(&self, index: usize) -> Option<Claim> {
        let (name, replica) = self.table.get(index)?;
        Some(Claim {
            name: name.to_owned(),
            generation: replica.generation,
            address: replica.address,
            incarnation: replica.incarnation,
            state: replica.state,
            from: self.identity.name.clone(),
        })
    }

    /// Applies a membership claim heard from the network; when it wins and `gossip` is set,
    /// it is queued for piggybacking (infection-style dissemination).
    pub(crate) fn apply_claim(&mut self, claim: Claim, gossip: bool) {
        if claim.name == self.identity.name {
            self.answer_claim_about_us(&claim);
            return;
        }
        let upsert = self.table.upsert(
            claim.name.as_str(),
            claim.generation,
            claim.address,
            false,
            self.config.max_nodes,
        );
        let index = match upsert {
            Upsert::Known(index) => index,
            Upsert::Discovered(index) | Upsert::Restarted { index, .. } => {
                self.note_upsert(&claim.name, claim.generation, claim.address, upsert);
                // A brand-new record starts Alive at incarnation 0: apply the claim on top.
                index
            }
            Upsert::Stale | Upsert::Local => {
                self.metrics.stale_claims += 1;
                return;
            }
            Upsert::TooFarAhead => {
                self.metrics.generations_refused += 1;
                return;
            }
            Upsert::Full => {
                self.metrics.nodes_over_cap += 1;
                return;
            }
        };
        let Some((_, member)) = self.table.get(index) else { return };
        let (state, incarnation, address) = (member.state, member.incarnation, member.address);
        let fresh = matches!(upsert, Upsert::Discovered(_) | Upsert::Restarted { .. });
        if !fresh && !overrides(state, incarnation, claim.state, claim.incarnation) {
            if claim.state == MemberState::Suspect
                && state == MemberState::Suspect
                && claim.incarnation == incarnation
            {
                // Another member independently suspects it too (Lifeguard's confirmations).
                if self.confirm_suspicion(&claim.name, &claim.from) && gossip {
                    self.broadcast(claim);
                }
            } else if claim.state.is_live() && !state.is_live() && gossip {
                // A stale rumor of life about a member we know is gone: correct it.
                if let Some(correction) = self.claim_about(index) {
                    self.broadcast(correction);
                }
            }
            return;
        }
        self.set_member(index, &claim, state, address);
        if gossip {
            self.broadcast(claim);
        }
    }

    /// Records a member's new state and tells the application.
    pub(crate) fn set_member(
        &mut self,
        index: usize,
        claim: &Claim,
        old: MemberState,
        old_address: SocketAddr,
    ) {
        let now = self.now;
        self.note_activity();
        self.table.modify(index, |_, member| {
            member.state = claim.state;
            member.incarnation = claim.incarnation;
            member.address = claim.address;
        });
        let name = claim.name.clone();
        if claim.address != old_address && claim.state.is_live() {
            self.events.emit(Event::AddressChanged {
                name: name.clone(),
                old: old_address,
                new: claim.address,
            });
        }
        match claim.state {
            MemberState::Suspect => {
                self.start_suspicion(&name, claim.incarnation, &claim.from);
                if old != MemberState::Suspect {
                    self.events.emit(Event::MemberSuspected { name, incarnation: claim.incarnation });
                }
            }
            MemberState::Alive => {
                self.stop_suspicion(&name);
                self.table.clear_departed(&name);
                if matches!(old, MemberState::Suspect | MemberState::Dead) {
                    self.events.emit(Event::MemberRecovered { name, incarnation: claim.incarnation });
                }
            }
            MemberState::Dead => {
                self.stop_suspicion(&name);
                self.table.mark_departed(Arc::from(name.as_str()), claim.generation, now);
                if old != MemberState::Dead {
                    self.events.emit(Event::MemberFailed { name, generation: claim.generation });
                }
            }
            MemberState::Left => {
                self.stop_suspicion(&name);
                self.table.mark_departed(Arc::from(name.as_str()), claim.generation, now);
                if old != MemberState::Left {
                    self.events.emit(Event::MemberLeft { name, generation: claim.generation });
                }
            }
        }
    }

    /// Someone says something about us: refute a suspicion or a death by raising our
    /// incarnation, unless we are leaving.
    fn answer_claim_about_us(&mut self, claim: &Claim) {
        if claim.generation != self.identity.generation {
            if claim.generation > self.identity.generation {
                self.metrics.rejected_own_deltas += 1;
            } else {
                self.metrics.stale_claims += 1;
            }
            return;
        }
        let ours = self.table.local();
        let accusing = matches!(claim.state, MemberState::Suspect | MemberState::Dead)
            || (claim.state == MemberState::Left && ours.state != MemberState::Left);
        if !accusing || ours.state == MemberState::Left || claim.incarnation < ours.incarnation {
            if !accusing && claim.incarnation > ours.incarnation {
                // Life at an incarnation we never took: nothing to refute (a suspicion at it
                // later is), but counted.
                self.metrics.rejected_own_deltas += 1;
            }
            return;
        }
        let incarnation = claim.incarnation.saturating_add(1);
        self.table.modify(LOCAL, |_, member| member.incarnation = incarnation);
        self.metrics.refutations += 1;
        self.health_refuted();
        if let Some(alive) = self.claim_about(LOCAL) {
            self.broadcast(alive);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MemberState::*;
    use super::*;

    #[test]
    fn alive_needs_a_higher_incarnation_to_override_suspect() {
        assert!(!overrides(Suspect, 3, Alive, 3));
        assert!(overrides(Suspect, 3, Alive, 4));
        assert!(!overrides(Alive, 3, Alive, 3));
    }

    #[test]
    fn suspect_overrides_alive_of_the_same_incarnation_only() {
        assert!(overrides(Alive, 3, Suspect, 3));
        assert!(!overrides(Alive, 4, Suspect, 3));
        assert!(!overrides(Suspect, 3, Suspect, 3));
        assert!(overrides(Suspect, 3, Suspect, 4));
    }

    #[test]
    fn dead_overrides_both_and_yields_only_to_a_refutation() {
        assert!(overrides(Alive, 3, Dead, 3));
        assert!(overrides(Suspect, 3, Dead, 3));
        assert!(!overrides(Alive, 4, Dead, 3));
        assert!(!overrides(Dead, 3, Suspect, 9));
        assert!(!overrides(Dead, 3, Alive, 3));
        assert!(overrides(Dead, 3, Alive, 4));
    }

    #[test]
    fn left_is_final_for_the_generation() {
        for state in [Alive, Suspect, Dead] {
            assert!(overrides(state, 9, Left, 9));
            assert!(overrides(state, 9, Left, 10));
            assert!(!overrides(Left, 0, state, 100));
        }
        assert!(!overrides(Left, 0, Left, 1));
    }

    #[test]
    fn a_left_of_a_lower_incarnation_is_stale() {
        // Found by the `handle_input` fuzz target: taking it made the incarnation go back.
        for state in [Alive, Suspect, Dead] {
            assert!(!overrides(state, 9, Left, 8));
        }
    }
}
