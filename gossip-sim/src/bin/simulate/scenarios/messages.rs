//! The application-message scenarios: broadcast spread and cost, query answers, write
//! requests around a one-way cut.

use std::time::Duration;

use gossip_sim::messages::{BroadcastOutcome, MessageStudy, QueryOutcome, WriteRequestOutcome};
use indicatif::ProgressBar;
use serde_json::json;

use crate::args::{Args, ScenarioKind, value_name};
use crate::report::{mean_of, percentile, round3};
use crate::scenarios::trials;

/// The broadcast figure the issue sets: `ceil(log2 n) + 4` gossip rounds.
fn broadcast_bound(nodes: usize) -> u32 {
    (nodes as f64).log2().ceil() as u32 + 4
}

pub(crate) fn messages(
    args: &Args,
    study: &MessageStudy,
    bar: &ProgressBar,
) -> Result<serde_json::Value, String> {
    let round = study.node_config.gossip_interval;
    let mut report = json!({
        "scenario": value_name(args.scenario),
        "nodes": args.nodes,
        "loss": args.loss,
        "latency_ms": args.latency_ms,
        "gossip_interval_ms": round.as_millis() as u64,
        "fanout": study.node_config.fanout,
        "trials": args.trials,
        "seed": args.seed,
    });
    let bound = broadcast_bound(args.nodes);
    match args.scenario {
        ScenarioKind::Broadcast => {
            let outcomes: Vec<BroadcastOutcome> = trials(args, bar, |seed, _| study.broadcast(seed))?;
            let mut rounds: Vec<f64> =
                outcomes.iter().map(|o| o.rounds_to_all.unwrap_or(f64::INFINITY)).collect();
            rounds.sort_by(f64::total_cmp);
            let reached: Vec<f64> = outcomes.iter().map(|o| o.reached as f64 / o.members as f64).collect();
            let bytes: Vec<f64> = outcomes.iter().map(|o| o.bytes_per_member).collect();
            let finite = |value: Option<f64>| value.filter(|v| v.is_finite());
            report["bound_rounds"] = json!(bound);
            report["trials_reaching_all"] =
                json!(outcomes.iter().filter(|o| o.rounds_to_all.is_some()).count());
            report["rounds_to_all_p50"] = round3(finite(percentile(&rounds, 0.5)));
            report["rounds_to_all_p99"] = round3(finite(percentile(&rounds, 0.99)));
            report["rounds_to_all_max"] = round3(finite(rounds.last().copied()));
            report["min_fraction_reached"] = json!(reached.iter().copied().fold(f64::INFINITY, f64::min));
            report["mean_fraction_reached"] = json!(mean_of(&reached));
            let to_999: Vec<f64> = outcomes.iter().filter_map(|o| o.rounds_to_999).collect();
            report["trials_reaching_999"] = json!(to_999.len());
            report["rounds_to_999_max"] = round3(to_999.iter().copied().reduce(f64::max));
            report["bytes_per_member"] = round3(mean_of(&bytes));
        }
        ScenarioKind::Query => {
            let timeout = args.query_timeout_ms.map_or(round * (3 * bound), Duration::from_millis);
            let outcomes: Vec<QueryOutcome> = trials(args, bar, |seed, _| study.query(seed, timeout))?;
            let fractions: Vec<f64> = outcomes.iter().map(|o| o.answers as f64 / o.asked as f64).collect();
            report["timeout_ms"] = json!(timeout.as_millis() as u64);
            report["min_fraction_answered"] = json!(fractions.iter().copied().fold(f64::INFINITY, f64::min));
            report["mean_fraction_answered"] = json!(mean_of(&fractions));
            report["finished_events_agree"] =
                json!(outcomes.iter().all(|o| o.finished_with == Some(o.answers)));
            let last: Vec<f64> = outcomes.iter().filter_map(|o| o.rounds_to_last_answer).collect();
            report["rounds_to_last_answer_max"] = round3(last.iter().copied().reduce(f64::max));
        }
        ScenarioKind::WriteRequest => {
            let outcomes: Vec<WriteRequestOutcome> = trials(args, bar, |seed, _| study.write_request(seed))?;
            let plain: Vec<f64> = outcomes.iter().filter_map(|o| o.plain_spread_seconds).collect();
            let seen: Vec<f64> = outcomes.iter().filter_map(|o| o.request_seen_seconds).collect();
            let ratios: Vec<f64> = outcomes
                .iter()
                .filter_map(|o| Some(o.request_seen_seconds? / o.plain_spread_seconds?))
                .collect();
            report["trials_accepted"] = json!(outcomes.iter().filter(|o| o.accepted).count());
            report["trials_seen"] = json!(seen.len());
            report["plain_spread_seconds_mean"] = round3(mean_of(&plain));
            report["request_seen_seconds_mean"] = round3(mean_of(&seen));
            report["request_seen_seconds_max"] = round3(seen.iter().copied().reduce(f64::max));
            report["seen_over_plain_max"] = round3(ratios.iter().copied().reduce(f64::max));
            report["relays_mean"] =
                json!(outcomes.iter().map(|o| o.relays).sum::<u64>() as f64 / outcomes.len() as f64);
        }
        _ => return Err("not a message scenario".to_owned()),
    }
    Ok(report)
}
