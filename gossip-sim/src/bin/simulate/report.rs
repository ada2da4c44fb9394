//! The report: common JSON fields, the statistics over trials, and the table printed without
//! `--json`.

use std::time::Duration;

use gossip_core::Config;
use gossip_core::sim::SimError;
use serde_json::json;

use crate::args::{Args, ScenarioKind, mode, node_config, value_name};

pub(crate) fn common_fields(args: &Args) -> serde_json::Value {
    if args.scenario.is_swim() {
        let config = node_config(args).unwrap_or_else(|_| Config::lan());
        return json!({
            "scenario": value_name(args.scenario),
            "nodes": args.nodes,
            "loss": args.loss,
            "latency_ms": args.latency_ms,
            "lifeguard": config.swim.lifeguard,
            "probe_interval_ms": config.swim.probe_interval.as_millis() as u64,
            "probe_timeout_ms": config.swim.probe_timeout.as_millis() as u64,
            "suspicion_mult": config.swim.suspicion_mult,
            "suspicion_max_timeout_mult": config.swim.suspicion_max_timeout_mult,
            "suspicion_confirmations": config.swim.suspicion_confirmations,
            "gossip_interval_ms": config.gossip_interval.as_millis() as u64,
            "settle_periods": args.settle_periods,
            "trials": args.trials,
            "seed": args.seed,
        });
    }
    json!({
        "scenario": value_name(args.scenario),
        "nodes": args.nodes,
        "mode": value_name(mode(args)),
        "fanout": args.fanout.unwrap_or(1),
        "loss": args.loss,
        "latency_ms": args.latency_ms,
        "interval_ms": args.interval_ms.unwrap_or(1000),
        "trials": args.trials,
        "seed": args.seed,
    })
}

/// The mean of the values present, and how many were missing.
pub(crate) fn mean_present(values: impl Iterator<Item = Option<f64>>) -> (Option<f64>, usize) {
    let (mut sum, mut count, mut missing) = (0.0, 0usize, 0usize);
    for value in values {
        match value {
            Some(v) => {
                sum += v;
                count += 1;
            }
            None => missing += 1,
        }
    }
    ((count > 0).then(|| sum / count as f64), missing)
}

pub(crate) fn max_present(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.flatten().reduce(f64::max)
}

pub(crate) fn seconds(duration: Option<Duration>) -> Option<f64> {
    duration.map(|d| d.as_secs_f64())
}

/// A small error, kept to three significant digits.
pub(crate) fn sci(value: Option<f64>) -> serde_json::Value {
    value.map_or(serde_json::Value::Null, |v| {
        let rounded: f64 = format!("{v:.3e}").parse().unwrap_or(v);
        json!(rounded)
    })
}

pub(crate) fn failure(error: SimError, seed: u64) -> String {
    match error {
        SimError::Invariant(violation) => format!("trial with seed {seed} failed:\n{violation}"),
        other => format!("trial with seed {seed}: {other}"),
    }
}

pub(crate) fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

pub(crate) fn mean_of(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub(crate) fn round3(value: Option<f64>) -> serde_json::Value {
    value.map_or(serde_json::Value::Null, |v| json!((v * 1000.0).round() / 1000.0))
}

pub(crate) fn round6(value: Option<f64>) -> serde_json::Value {
    value.map_or(serde_json::Value::Null, |v| json!((v * 1e6).round() / 1e6))
}

pub(crate) fn print_table(args: &Args, report: &serde_json::Value) {
    let field = |name: &str| match &report[name] {
        serde_json::Value::Null => "-".to_owned(),
        value => value.to_string(),
    };
    if args.scenario == ScenarioKind::Chaos {
        println!("simulate chaos: {} seed(s) from seed {}", args.seeds, args.seed);
        if let Some(fields) = report.as_object() {
            for (name, value) in fields {
                println!("  {name:<24} {value}");
            }
        }
        return;
    }
    if args.scenario.runs_preset() {
        println!(
            "simulate {}: {} nodes, loss {}, latency {} ms, {} trial(s), seed {}",
            value_name(args.scenario),
            args.nodes,
            args.loss,
            args.latency_ms,
            args.trials,
            args.seed,
        );
        if let Some(fields) = report.as_object() {
            for (name, value) in fields {
                println!("  {name:<40} {value:>12}");
            }
        }
        return;
    }
    println!(
        "simulate {}: {} nodes, {}, fanout {}, loss {}, latency {} ms, interval {} ms, {} trial(s), seed {}",
        value_name(args.scenario),
        args.nodes,
        value_name(mode(args)),
        args.fanout.unwrap_or(1),
        args.loss,
        args.latency_ms,
        args.interval_ms.unwrap_or(1000),
        args.trials,
        args.seed,
    );
    let rows: &[(&str, &str)] = match args.scenario {
        ScenarioKind::Spread => &[
            ("mean rounds", "mean_rounds"),
            ("p50 rounds", "p50_rounds"),
            ("p99 rounds", "p99_rounds"),
            ("max rounds", "max_rounds"),
            ("theory (REFERENCES.md)", "theory_rounds"),
            ("incomplete trials", "incomplete_trials"),
            ("residue", "residue"),
            ("datagrams per node", "messages_per_node"),
            ("rumor pushes per node", "rumor_pushes_per_node"),
            ("bytes per node", "bytes_per_node"),
            ("bytes per node per round", "bytes_per_node_per_round"),
            ("wall seconds", "wall_seconds"),
        ],
        ScenarioKind::Steady => &[
            ("rounds measured", "measured_rounds"),
            ("datagrams per node per round", "messages_per_node_per_round"),
            ("bytes per node per round", "bytes_per_node_per_round"),
            ("bytes per node", "bytes_per_node"),
            ("wall seconds", "wall_seconds"),
        ],
        _ => &[],
    };
    for (label, name) in rows {
        println!("  {label:<30} {:>12}", field(name));
    }
}
