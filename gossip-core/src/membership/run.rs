//! How the node applies membership claims: refutations, suspicions, deaths (deferred when
//! a third party claims them), departures.

use std::net::SocketAddr;
use std::sync::Arc;

use rand_core::Rng;

use crate::event::Event;
use crate::node::Node;
use crate::table::{LOCAL, Upsert};

use super::*;

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

    /// Applies a membership claim heard from the network, passed on by `source` (see
    /// [`ClaimKind`]). A relayed claim that raises a known member's incarnation by more than
    /// `max_incarnation_jump` is dropped.
    pub(crate) fn apply_claim(&mut self, mut claim: Claim, source: Source<'_>, kind: ClaimKind) {
        let gossip = kind == ClaimKind::News;
        if claim.name == self.identity.name {
            self.answer_claim_about_us(&claim);
            return;
        }
        if !claim.state.is_live() && self.table.index_of(&claim.name).is_none() {
            // The death or departure of a member we do not know (memberlist's rule): learning
            // it would only bring back, for another retention time, a member the others are
            // forgetting, and a node that forgot it before them would learn it again.
            self.out.metrics.stale_claims += 1;
            return;
        }
        let upsert =
            self.table.upsert(claim.name.as_str(), claim.generation, claim.address, self.config.max_nodes);
        let index = match upsert {
            Upsert::Known(index) => index,
            Upsert::Discovered(index) | Upsert::Restarted { index, .. } => {
                self.note_upsert(&claim.name, claim.generation, claim.address, upsert);
                // A brand-new record starts Alive at incarnation 0: apply the claim on top.
                index
            }
            Upsert::Stale | Upsert::Local => {
                self.out.metrics.stale_claims += 1;
                return;
            }
            Upsert::TooFarAhead => {
                self.out.metrics.generations_refused += 1;
                return;
            }
            Upsert::Full => {
                self.out.metrics.nodes_over_cap += 1;
                return;
            }
        };
        let Some((_, member)) = self.table.get(index) else { return };
        let (state, incarnation, address) = (member.state, member.incarnation, member.address);
        let fresh = kind == ClaimKind::FirstState
            || matches!(upsert, Upsert::Discovered(_) | Upsert::Restarted { .. });
        if !fresh
            && !source.is_first_hand(&claim.name)
            && claim.incarnation.saturating_sub(incarnation) > self.config.max_incarnation_jump
        {
            self.out.metrics.jumps_refused += 1;
            return;
        }
        if !fresh && !overrides(state, incarnation, claim.state, claim.incarnation) {
            if claim.state == MemberState::Suspect
                && state == MemberState::Suspect
                && claim.incarnation == incarnation
            {
                // Another member independently suspects it too (Lifeguard's confirmations).
                if self.confirm_suspicion(&claim.name, &claim.from) && gossip {
                    self.queue_claim(claim);
                }
            } else if claim.state.is_live() && !state.is_live() && gossip {
                // A stale rumor of life about a member we know is gone: correct it.
                if let Some(correction) = self.claim_about(index) {
                    self.queue_claim(correction);
                }
            }
            return;
        }
        if claim.state == MemberState::Dead
            && !fresh
            && state.is_live()
            && !source.is_first_hand(&claim.name)
            && self.defer_death(index, &claim, state)
        {
            return;
        }
        self.set_member(index, &claim, state, address);
        if gossip {
            // Pass on the address we hold, which the claim may not have moved (see
            // `set_member`).
            if let Some((_, member)) = self.table.get(index) {
                claim.address = member.address;
            }
            self.queue_claim(claim);
        }
    }

    /// A third party says a member we hold live is Dead. We take it at once only about a
    /// member we already suspect ourselves (SWIM's usual path: the suspicion spread before
    /// the death, so a member that really crashed is declared dead here by the first Dead
    /// claim). About a member we hold Alive, the claim may be old news from members that
    /// could not reach it (the other side of a partition that just healed): it starts a
    /// *deferred* suspicion instead, held by this node alone (the member stays Alive in our
    /// table, our digest and our events, so the claim does not spread through us as a
    /// suspicion that others would then let the death override), with the claim's author
    /// as its first accuser, and moves the member (if heard from directly) to the front of
    /// our probe order. Our ping carries the accusation (the buddy system), so a live member
    /// refutes it at once, and its ack ends the deferral; when the probe fails, or the
    /// suspicion times out, we declare the death ourselves. Further Dead claims meanwhile
    /// are absorbed without confirming it. Returns whether the claim was deferred (`false`: apply it).
    fn defer_death(&mut self, index: usize, claim: &Claim, state: MemberState) -> bool {
        let deferred = self.suspicions.get(&claim.name).and_then(|s| s.deferred_incarnation());
        if deferred == Some(claim.incarnation) {
            // Not a confirmation: after a heal every member of the other side repeats the
            // same old news, which would shrink the suspicion to its minimum before the
            // member's refutation could cross a large cluster (66 false failures at n =
            // 1,000 after a 120 s split). Our own failed probe, or a suspicion someone
            // else reached by probing, confirms it.
            return true;
        }
        if state != MemberState::Alive {
            return false;
        }
        self.out.metrics.deaths_deferred += 1;
        self.stop_suspicion(&claim.name);
        self.start_suspicion(&claim.name, claim.incarnation, &claim.from);
        if let Some(suspicion) = self.suspicions.get_mut(&claim.name) {
            suspicion.defer();
        }
        // A member never heard from directly may be made up (see `probe.rs`): it is not
        // probed out of turn.
        if self.table.get(index).is_some_and(|(_, member)| member.heard) {
            self.prober.probe_soon(Arc::from(claim.name.as_str()));
        }
        true
    }

    /// Records a member's new state and tells the application. The claim's address is taken
    /// only when the claim raises the incarnation: the member itself raised it, and only it
    /// speaks for its address (a claim of the same incarnation, say a suspicion relayed by a
    /// peer, never moves it).
    pub(crate) fn set_member(
        &mut self,
        index: usize,
        claim: &Claim,
        old: MemberState,
        old_address: SocketAddr,
    ) {
        let now = self.now;
        self.note_activity();
        let moved = self
            .table
            .modify(index, |_, member| {
                let moves = claim.incarnation > member.incarnation && claim.address != member.address;
                member.state = claim.state;
                member.incarnation = claim.incarnation;
                if moves {
                    member.address = claim.address;
                }
                moves
            })
            .unwrap_or(false);
        let name = claim.name.clone();
        if moved && claim.state.is_live() {
            self.out.events.emit(Event::MemberAddressChanged {
                name: name.clone(),
                old: old_address,
                new: claim.address,
            });
        }
        match claim.state {
            MemberState::Suspect => {
                self.start_suspicion(&name, claim.incarnation, &claim.from);
                if old != MemberState::Suspect {
                    self.out.events.emit(Event::MemberSuspected { name, incarnation: claim.incarnation });
                }
            }
            MemberState::Alive => {
                self.stop_suspicion(&name);
                self.table.clear_departed(&name);
                if matches!(old, MemberState::Suspect | MemberState::Dead) {
                    self.out.events.emit(Event::MemberRecovered { name, incarnation: claim.incarnation });
                }
            }
            MemberState::Dead => {
                self.stop_suspicion(&name);
                self.table.mark_departed(Arc::from(name.as_str()), claim.generation, now);
                if old != MemberState::Dead {
                    self.out.events.emit(Event::MemberFailed { name, generation: claim.generation });
                }
            }
            MemberState::Left => {
                self.stop_suspicion(&name);
                self.table.mark_departed(Arc::from(name.as_str()), claim.generation, now);
                if old != MemberState::Left {
                    self.out.events.emit(Event::MemberLeft { name, generation: claim.generation });
                }
            }
        }
    }

    /// Someone says something about us: refute a suspicion or a death by raising our
    /// incarnation, unless we are leaving; a claim we cannot refute that way (at incarnation
    /// `u32::MAX`, or under a higher generation peers would take) makes us rejoin under a new
    /// generation (see `heal.rs`).
    fn answer_claim_about_us(&mut self, claim: &Claim) {
        if claim.generation != self.identity.generation {
            if claim.generation > self.identity.generation {
                self.out.metrics.rejected_own_deltas += 1;
                let live = matches!(claim.state, MemberState::Alive | MemberState::Suspect);
                let jump = claim.generation - self.identity.generation;
                if live && claim.address != self.identity.address && jump <= self.config.max_generation_jump {
                    // Maybe a second process under our name: see `conflict.rs`.
                    self.check_name_holder(claim.address, claim.generation);
                } else {
                    self.heal_generation_ahead(claim.generation);
                }
            } else {
                self.out.metrics.stale_claims += 1;
            }
            return;
        }
        let ours = self.table.local();
        if ours.state == MemberState::Left || claim.incarnation < ours.incarnation {
            return;
        }
        if claim.state == MemberState::Left && !self.leaving() {
            // Left is final for a generation: peers that took it never take our refutation.
            self.heal(crate::event::SelfHealReason::LeftWhileRunning, self.identity.generation);
            return;
        }
        let accusing = matches!(claim.state, MemberState::Suspect | MemberState::Dead);
        // Only we speak for our address: life at our address under someone else's word
        // needs no answer, at another address it is refuted like an accusation.
        let forged_address = claim.address != ours.address;
        if !accusing && !forged_address {
            if claim.incarnation > ours.incarnation {
                // Life at an incarnation we never took: nothing to refute (a suspicion at it
                // later is), but counted; at the top, no suspicion could be refuted any more.
                self.out.metrics.rejected_own_deltas += 1;
                if claim.incarnation == u32::MAX {
                    self.heal(crate::event::SelfHealReason::IncarnationExhausted, self.identity.generation);
                }
            }
            return;
        }
        let Some(incarnation) = claim.incarnation.checked_add(1) else {
            // Nothing above it: only a new generation supersedes it.
            self.heal(crate::event::SelfHealReason::IncarnationExhausted, self.identity.generation);
            return;
        };
        self.table.modify(LOCAL, |_, member| member.incarnation = incarnation);
        self.out.metrics.refutations += 1;
        if accusing {
            self.health_refuted();
        }
        if let Some(alive) = self.claim_about(LOCAL) {
            self.queue_claim(alive);
        }
    }
}
