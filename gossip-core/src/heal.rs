//! Self-healing: a node never lets a claim about itself stand that it cannot refute.
//!
//! SWIM lets a member refute a suspicion or a death by raising its incarnation, and only the
//! owner writes its table. Four claims escape that, whether a broken or a hostile peer made
//! them up:
//!
//! - a claim of our generation at incarnation `u32::MAX`: there is no higher one to refute
//!   it with ([`SelfHealReason::IncarnationExhausted`]);
//! - a delta or digest entry of our table, at our generation, with a version we never wrote:
//!   peers that took it hold entries we cannot overwrite, and ignore our next real writes
//!   ([`SelfHealReason::VersionAhead`]);
//! - a claim, delta or digest entry naming us under a higher generation that peers
//!   accept (within `Config::max_generation_jump` of ours): they believe we restarted and
//!   take our real datagrams for stale ([`SelfHealReason::GenerationAhead`]). Beyond the
//!   jump, peers refuse it as we do; it is only counted;
//! - a claim that we left, at our generation, while we run: Left is final for a generation,
//!   so peers that took it never take a refutation ([`SelfHealReason::LeftWhileRunning`]).
//!
//! The node then rejoins under a new generation, `max(ours, seen) + 1`, at incarnation 0 and
//! Alive, keeping its table: peers replace the replica they hold (forged or not) and pull the
//! table anew. Every place keyed on our generation moves with it: the identity, the local
//! replica (and so the digest summary), the sender identity of every envelope, the sealing
//! session (drawn anew from the new generation), and the hot rumors of our table.
//!
//! The limits of this without authenticated datagrams: a forger can make a node heal again
//! and again (each time its peers pull its table again), and a generation seen at exactly
//! `ours + max_generation_jump` can only be superseded by one that peers which never heard the
//! forgery refuse, until the forgery (gossiped by those that took it) reaches them.

use rand_core::Rng;

use crate::event::{Event, SelfHealReason};
use crate::membership::MemberState;
use crate::message::EnvelopeBuilder;
use crate::node::Node;
use crate::table::LOCAL;

impl<R: Rng> Node<R> {
    /// Someone named us under `generation`, higher than ours: heal if peers would take it.
    pub(crate) fn heal_generation_ahead(&mut self, generation: u64) {
        let ours = self.identity.generation;
        let Some(jump) = generation.checked_sub(ours).filter(|jump| *jump > 0) else { return };
        if jump <= self.config.max_generation_jump {
            self.heal(SelfHealReason::GenerationAhead, generation);
        }
    }

    /// Someone holds, or offers, our table at `generation` up to `max_version`: heal if it
    /// is a version we never wrote; a higher generation peers would take is checked first for
    /// a second process under our name, and healed past if none answers.
    pub(crate) fn heal_if_ahead_of_us(&mut self, generation: u64, max_version: u64) {
        let ours = self.table.local();
        if generation == ours.generation && max_version > ours.max_version {
            self.heal(SelfHealReason::VersionAhead, generation);
        } else if generation
            .checked_sub(ours.generation)
            .is_some_and(|jump| jump > 0 && jump <= self.config.max_generation_jump)
        {
            // Maybe a second process under our name, of which we do not know the address yet
            // (see `conflict.rs`): wait for a claim before healing.
            self.await_name_holder(generation);
        }
    }

    /// Rejoins under the generation `max(ours, seen) + 1`: incarnation 0, Alive, the table
    /// kept; announces it and reports it. Nothing happens while leaving (a node that leaves
    /// does not come back), nor at generation `u64::MAX`.
    pub(crate) fn heal(&mut self, reason: SelfHealReason, seen: u64) {
        if self.leaving() || self.name_check.given_up() {
            return;
        }
        let old_generation = self.identity.generation;
        let Some(generation) = old_generation.max(seen).checked_add(1) else { return };
        self.name_check.cancel();
        self.identity.generation = generation;
        self.envelopes = EnvelopeBuilder::new(&self.config, &self.identity);
        self.security.set_generation(generation);
        let now = self.now;
        let max_version = self
            .table
            .modify(LOCAL, |_, me| {
                me.generation = generation;
                me.incarnation = 0;
                me.state = MemberState::Alive;
                me.touch_all(now);
                me.max_version
            })
            .unwrap_or_default();
        // Our whole table is news under the new generation.
        self.rumors.forget(LOCAL);
        if max_version > 0 {
            self.heat_rumor(LOCAL, generation, 0, max_version);
        }
        self.out.metrics.self_heals += 1;
        self.out.events.emit(Event::SelfHealed { reason, old_generation, new_generation: generation });
        self.note_activity();
        if let Some(alive) = self.claim_about(LOCAL) {
            self.queue_claim(alive);
        }
    }
}
