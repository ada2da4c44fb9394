//! Lifeguard's local health: a score from 0 to `max_health_score` that rises when this node
//! shows signs of being the slow one (missed nacks, failed probes, having to refute) and
//! falls with every successful probe. Probe timeouts and intervals scale by `score + 1`, so
//! a starved node slows its own accusations instead of suspecting healthy members.

use std::time::Duration;

mod run;

/// The local-health score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LocalHealth {
    score: u32,
}

impl LocalHealth {
    pub(crate) fn score(self) -> u32 {
        self.score
    }

    /// Moves the score by `delta`, within `0..=max`.
    pub(crate) fn adjust(&mut self, delta: i32, max: u32) {
        self.score = self.score.saturating_add_signed(delta).min(max);
    }

    /// `duration` scaled by `score + 1`.
    pub(crate) fn scale(self, duration: Duration) -> Duration {
        duration * (self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_stays_within_bounds_and_scales_durations() {
        let mut health = LocalHealth::default();
        health.adjust(-1, 8);
        assert_eq!(health.score(), 0);
        health.adjust(5, 8);
        health.adjust(5, 8);
        assert_eq!(health.score(), 8);
        assert_eq!(health.scale(Duration::from_millis(500)), Duration::from_millis(4500));
        health.adjust(-3, 8);
        assert_eq!(health.score(), 5);
    }
}
