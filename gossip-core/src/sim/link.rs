//! The model of one directed link: how long a datagram takes, whether it is lost, whether
//! it arrives twice. Reordering comes from jitter: two datagrams on the same link whose
//! latencies are drawn independently can overtake each other.

use std::time::Duration;

use rand::RngExt;
use rand_core::Rng;

use crate::sim::SimError;

/// How long a datagram spends on a link.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Latency {
    /// Always the same.
    Fixed(Duration),
    /// Drawn uniformly from `min..=max` for each datagram.
    Uniform {
        /// Shortest latency.
        min: Duration,
        /// Longest latency.
        max: Duration,
    },
    /// `min` plus an exponentially distributed extra delay of mean `mean_extra` (a queueing
    /// delay with a long tail).
    Exponential {
        /// The propagation delay every datagram pays.
        min: Duration,
        /// The mean of the extra delay.
        mean_extra: Duration,
    },
}

impl Latency {
    /// Draws the latency of one datagram.
    pub(crate) fn sample<R: Rng>(&self, rng: &mut R) -> Duration {
        match *self {
            Self::Fixed(latency) => latency,
            Self::Uniform { min, max } => {
                let span = max.saturating_sub(min).as_nanos() as u64;
                min + Duration::from_nanos(if span == 0 { 0 } else { rng.random_range(0..=span) })
            }
            Self::Exponential { min, mean_extra } => {
                let u: f64 = rng.random();
                min + mean_extra.mul_f64(-(1.0 - u).ln())
            }
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        match *self {
            Self::Uniform { min, max } if min > max => {
                Err(SimError::Setup(format!("uniform latency: min {min:?} is above max {max:?}")))
            }
            _ => Ok(()),
        }
    }
}

/// Bursty loss by the Gilbert-Elliott model: a link is in a good or a bad state, switches
/// state with the given probabilities before each datagram, and loses datagrams with the
/// loss probability of its current state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability of going from good to bad, per datagram.
    pub enter_bad: f64,
    /// Probability of going from bad to good, per datagram (1 / mean burst length).
    pub leave_bad: f64,
    /// Loss probability in the good state.
    pub loss_good: f64,
    /// Loss probability in the bad state.
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// Bursts of `mean_burst` datagrams that lose everything, with an overall loss rate of
    /// `mean_loss` (the simple Gilbert model: no loss in the good state).
    pub fn bursts(mean_loss: f64, mean_burst: f64) -> Self {
        let leave_bad = 1.0 / mean_burst.max(1.0);
        let mean_loss = mean_loss.clamp(0.0, 0.999_999);
        // Stationary share of the bad state: enter / (enter + leave) = mean_loss.
        let enter_bad = (leave_bad * mean_loss / (1.0 - mean_loss)).min(1.0);
        Self { enter_bad, leave_bad, loss_good: 0.0, loss_bad: 1.0 }
    }

    /// The long-run loss rate.
    pub fn mean_loss(&self) -> f64 {
        let total = self.enter_bad + self.leave_bad;
        if total == 0.0 {
            return self.loss_good;
        }
        let bad = self.enter_bad / total;
        bad * self.loss_bad + (1.0 - bad) * self.loss_good
    }

    /// Advances the link's state by one datagram and says whether that datagram is lost.
    pub(crate) fn lose<R: Rng>(&self, bad: &mut bool, rng: &mut R) -> bool {
        let switch = if *bad { self.leave_bad } else { self.enter_bad };
        if rng.random::<f64>() < switch {
            *bad = !*bad;
        }
        let loss = if *bad { self.loss_bad } else { self.loss_good };
        rng.random::<f64>() < loss
    }
}

/// Which datagrams a link loses.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Loss {
    /// None.
    None,
    /// Each datagram independently with this probability.
    Independent(f64),
    /// In bursts, by the Gilbert-Elliott model (each directed link has its own state).
    Bursty(GilbertElliott),
}

/// Everything the simulator needs to know about a directed link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkModel {
    /// How long a datagram takes.
    pub latency: Latency,
    /// Which datagrams are lost.
    pub loss: Loss,
    /// Probability that a datagram that is not lost arrives twice (the copy takes its own
    /// latency, so it may arrive first).
    pub duplicate: f64,
}

impl LinkModel {
    /// A perfect link with a fixed latency.
    pub fn fixed(latency: Duration) -> Self {
        Self { latency: Latency::Fixed(latency), loss: Loss::None, duplicate: 0.0 }
    }

    /// This link with another latency model.
    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// This link losing each datagram independently with probability `p`.
    pub fn with_loss(mut self, p: f64) -> Self {
        self.loss = if p > 0.0 { Loss::Independent(p) } else { Loss::None };
        self
    }

    /// This link losing datagrams in bursts.
    pub fn with_bursty_loss(mut self, model: GilbertElliott) -> Self {
        self.loss = Loss::Bursty(model);
        self
    }

    /// This link duplicating each delivered datagram with probability `p`.
    pub fn with_duplication(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Checks that latencies are ordered and probabilities are within `0..=1`.
    pub fn validate(&self) -> Result<(), SimError> {
        self.latency.validate()?;
        let mut probabilities = vec![("duplicate", self.duplicate)];
        match self.loss {
            Loss::None => {}
            Loss::Independent(p) => probabilities.push(("loss", p)),
            Loss::Bursty(ge) => probabilities.extend([
                ("enter_bad", ge.enter_bad),
                ("leave_bad", ge.leave_bad),
                ("loss_good", ge.loss_good),
                ("loss_bad", ge.loss_bad),
            ]),
        }
        match probabilities.iter().find(|(_, p)| !(0.0..=1.0).contains(p)) {
            Some((name, p)) => Err(SimError::Setup(format!("link {name} probability {p} is outside 0..=1"))),
            None => Ok(()),
        }
    }
}

impl Default for LinkModel {
    /// A perfect link with a 1 ms latency.
    fn default() -> Self {
        Self::fixed(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    #[test]
    fn latencies_stay_in_their_ranges() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let ms = Duration::from_millis;
        let uniform = Latency::Uniform { min: ms(2), max: ms(9) };
        let exponential = Latency::Exponential { min: ms(1), mean_extra: ms(4) };
        let mut total = Duration::ZERO;
        for _ in 0..10_000 {
            let u = uniform.sample(&mut rng);
            assert!((ms(2)..=ms(9)).contains(&u));
            let e = exponential.sample(&mut rng);
            assert!(e >= ms(1));
            total += e;
        }
        let mean = total / 10_000;
        assert!(mean > ms(4) && mean < ms(6), "exponential mean {mean:?}");
    }

    #[test]
    fn gilbert_elliott_reaches_its_mean_loss_in_bursts() {
        let model = GilbertElliott::bursts(0.2, 5.0);
        assert!((model.mean_loss() - 0.2).abs() < 1e-9);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut bad = false;
        let lost: Vec<bool> = (0..100_000).map(|_| model.lose(&mut bad, &mut rng)).collect();
        let rate = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((rate - 0.2).abs() < 0.02, "loss rate {rate}");
        let bursts = lost.windows(2).filter(|w| w[1] && !w[0]).count() as f64;
        let mean_burst = lost.iter().filter(|l| **l).count() as f64 / bursts;
        assert!((mean_burst - 5.0).abs() < 0.5, "mean burst {mean_burst}");
    }

    #[test]
    fn bad_probabilities_are_refused() {
        assert!(LinkModel::default().with_loss(1.5).validate().is_err());
        assert!(LinkModel::default().with_duplication(-0.1).validate().is_err());
        let ms = Duration::from_millis;
        let backwards = LinkModel::default().with_latency(Latency::Uniform { min: ms(5), max: ms(1) });
        assert!(backwards.validate().is_err());
        assert!(LinkModel::default().with_loss(0.3).validate().is_ok());
    }
}
