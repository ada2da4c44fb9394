//! The scenarios: each runs its trials (seed, seed + 1, ...) and returns its JSON report.

use gossip_core::sim::SimError;
use gossip_sim::Progress;
use indicatif::ProgressBar;

use crate::args::Args;
use crate::progress::describe;
use crate::report::failure;

mod aggregate;
mod chaos;
mod convergence;
mod membership;
mod messages;

pub(crate) use aggregate::aggregate;
pub(crate) use chaos::chaos;
pub(crate) use convergence::{burst, join, load, spread, steady};
pub(crate) use membership::{crash, false_positives, partition, restart};
pub(crate) use messages::messages;

/// Runs `trial` for every seed of the study, with the progress bar.
pub(crate) fn trials<T>(
    args: &Args,
    bar: &ProgressBar,
    mut trial: impl FnMut(u64, &mut dyn FnMut(Progress)) -> Result<T, SimError>,
) -> Result<Vec<T>, String> {
    let mut outcomes = Vec::new();
    for offset in 0..args.trials {
        let seed = args.seed.wrapping_add(offset);
        let outcome = trial(seed, &mut |p| bar.set_message(describe(p))).map_err(|e| failure(e, seed))?;
        bar.inc(1);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
