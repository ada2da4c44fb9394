//! How the node feeds Lifeguard's local-health score from its probes and refutations.

use rand_core::Rng;

use crate::node::Node;

impl<R: Rng> Node<R> {
    fn adjust_health(&mut self, delta: i32) {
        if self.config.swim.lifeguard {
            self.health.adjust(delta, self.config.swim.max_health_score);
        }
    }

    /// A probe was answered.
    pub(crate) fn health_probe_succeeded(&mut self) {
        self.adjust_health(-1);
    }

    /// A probe failed: one point, or one per missing nack when relays were asked.
    pub(crate) fn health_probe_failed(&mut self, nacks_expected: u32, nacks: u32) {
        let delta = if nacks_expected > 0 { nacks_expected.saturating_sub(nacks) } else { 1 };
        self.adjust_health(i32::try_from(delta).unwrap_or(i32::MAX));
    }

    /// We had to refute a suspicion of ourselves.
    pub(crate) fn health_refuted(&mut self) {
        self.adjust_health(1);
    }
}
