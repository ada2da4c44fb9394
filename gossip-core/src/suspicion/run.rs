//! How the node starts, confirms and expires suspicions.

use std::time::Instant;

use rand_core::Rng;

use crate::membership::MemberState;
use crate::node::Node;

use super::*;

impl<R: Rng> Node<R> {
    /// Starts (or, for the same incarnation, confirms) a suspicion of `name`.
    pub(crate) fn start_suspicion(&mut self, name: &str, incarnation: u32, from: &str) {
        if let Some(running) = self.suspicions.get_mut(name) {
            if running.incarnation == incarnation {
                running.confirm(from);
                return;
            }
        }
        let swim = &self.config.swim;
        let n = self.table.len();
        let min = min_timeout(swim.suspicion_mult, n, swim.probe_interval);
        let (max, expected) = if swim.lifeguard {
            // Fewer confirmations in small clusters (memberlist's rule).
            let expected = swim.suspicion_confirmations.min(n.saturating_sub(2) as u32);
            (min * swim.suspicion_max_timeout_mult, expected)
        } else {
            (min, 0)
        };
        self.suspicions
            .insert(name.to_owned(), Suspicion::new(incarnation, from, self.now, min, max, expected));
    }

    /// Counts an independent confirmation; `true` if it was new (worth re-gossiping).
    pub(crate) fn confirm_suspicion(&mut self, name: &str, from: &str) -> bool {
        self.config.swim.lifeguard && self.suspicions.get_mut(name).is_some_and(|s| s.confirm(from))
    }

    pub(crate) fn stop_suspicion(&mut self, name: &str) {
        self.suspicions.remove(name);
    }

    /// Declares dead the suspects whose timeout has passed (and the members under a
    /// deferred suspicion whose timeout has passed, see `Node::defer_death`).
    pub(crate) fn expire_suspicions(&mut self) {
        let now = self.now;
        let due: Vec<(String, u32, bool)> = self
            .suspicions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(name, s)| (name.clone(), s.incarnation, s.deferred))
            .collect();
        for (name, incarnation, deferred) in due {
            self.suspicions.remove(&name);
            let Some(index) = self.table.index_of(&name) else { continue };
            if deferred {
                self.declare_deferred_death(index, incarnation);
                continue;
            }
            let Some(mut claim) = self.claim_about(index) else { continue };
            if claim.state != MemberState::Suspect || claim.incarnation != incarnation {
                continue;
            }
            claim.state = MemberState::Dead;
            let address = claim.address;
            self.set_member(index, &claim, MemberState::Suspect, address);
            self.queue_claim(claim);
        }
    }

    /// Declares Dead, at `incarnation`, a member under a deferred suspicion (its timeout
    /// passed, or our own probe failed too): the third party's claim is now our own.
    pub(crate) fn declare_deferred_death(&mut self, index: usize, incarnation: u32) {
        let Some(mut claim) = self.claim_about(index) else { return };
        self.suspicions.remove(&claim.name);
        if !claim.state.is_live() || claim.incarnation > incarnation {
            return;
        }
        let old = claim.state;
        claim.state = MemberState::Dead;
        claim.incarnation = incarnation;
        let address = claim.address;
        self.set_member(index, &claim, old, address);
        self.queue_claim(claim);
    }

    /// The accusation a deferred suspicion of `name` stands for, at its incarnation (sent
    /// with our ping of it, so a live member refutes it).
    pub(crate) fn deferred_incarnation(&self, name: &str) -> Option<u32> {
        self.suspicions.get(name).filter(|s| s.deferred).map(|s| s.incarnation)
    }

    /// The earliest suspicion deadline.
    pub(crate) fn next_suspicion_deadline(&self) -> Option<Instant> {
        self.suspicions.values().map(|s| s.deadline).min()
    }
}
