//! The push-sum aggregation scenario: convergence, or churn with `--crash-fraction`.

use gossip_sim::aggregate::{AggregateStudy, ChurnOutcome, ConvergenceOutcome};
use indicatif::ProgressBar;
use serde_json::json;

use crate::args::Args;
use crate::report::{max_present, mean_present, merge, round3, sci};
use crate::scenarios::trials;

pub(crate) fn aggregate(
    args: &Args,
    study: &AggregateStudy,
    bar: &ProgressBar,
) -> Result<serde_json::Value, String> {
    let config = &study.node_config.aggregation;
    let mut report = json!({
        "scenario": "aggregate",
        "nodes": args.nodes,
        "loss": args.loss,
        "latency_ms": args.latency_ms,
        "interval_ms": config.interval.as_millis() as u64,
        "epoch_rounds": config.epoch_rounds,
        "trials": args.trials,
        "seed": args.seed,
    });
    if args.crash_fraction > 0.0 {
        let outcomes: Vec<ChurnOutcome> =
            trials(args, bar, |seed, progress| study.churn(seed, args.crash_fraction, progress))?;
        let (recovery, unrecovered) = mean_present(outcomes.iter().map(|o| o.recovered_after_rounds));
        merge(
            &mut report,
            json!({
                "crash_fraction": args.crash_fraction,
                "crashed": outcomes[0].crashed,
                "crash_round": outcomes[0].crash_round,
                "unrecovered_trials": unrecovered,
                "recovery_rounds": round3(recovery),
                "max_recovery_rounds": round3(max_present(outcomes.iter().map(|o| o.recovered_after_rounds))),
                "next_epoch_max_average_error": sci(max_present(outcomes.iter().map(|o| o.average_error))),
                "next_epoch_max_count_error": sci(max_present(outcomes.iter().map(|o| o.count_error))),
                "crash_epoch_max_average_error":
                    sci(max_present(outcomes.iter().map(|o| o.crash_epoch_average_error))),
            }),
        );
        return Ok(report);
    }
    let outcomes: Vec<ConvergenceOutcome> =
        trials(args, bar, |seed, progress| study.convergence(seed, args.measure_rounds, progress))?;
    let (to_1e3, missing_1e3) = mean_present(outcomes.iter().map(|o| o.rounds_to_1e3));
    let (to_1e6, missing_1e6) = mean_present(outcomes.iter().map(|o| o.rounds_to_1e6));
    let n = outcomes.len() as f64;
    merge(
        &mut report,
        json!({
            "measured_rounds": args.measure_rounds,
            "rounds_to_1e3": round3(to_1e3),
            "rounds_to_1e6": round3(to_1e6),
            "max_rounds_to_1e6": round3(max_present(outcomes.iter().map(|o| o.rounds_to_1e6))),
            "trials_without_1e3": missing_1e3,
            "trials_without_1e6": missing_1e6,
            "final_max_relative_error": sci(max_present(outcomes.iter().map(|o| o.final_max_relative_error))),
            "count_estimate_error": sci(max_present(outcomes.iter().map(|o| o.count_estimate_error))),
            "sum_estimate_error": sci(max_present(outcomes.iter().map(|o| o.sum_estimate_error))),
            "datagrams_per_node_per_round":
                round3(Some(outcomes.iter().map(|o| o.datagrams_per_node_per_round).sum::<f64>() / n)),
        }),
    );
    Ok(report)
}
