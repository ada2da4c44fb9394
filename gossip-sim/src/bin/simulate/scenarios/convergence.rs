//! The convergence and traffic scenarios: spread, steady, burst, load and join.

use std::time::Duration;

use gossip_core::sim::BodyKind;
use gossip_sim::join::JoinOutcome;
use gossip_sim::load::{LoadOutcome, LoadPlan};
use gossip_sim::trial::{BurstOutcome, QuietWindow, SpreadOutcome, Study};
use indicatif::ProgressBar;
use serde_json::json;

use crate::args::{Args, Mode, mode};
use crate::plot::plot;
use crate::progress::describe;
use crate::report::{common_fields, failure, mean_of, merge, percentile, round3, round6};
use crate::scenarios::trials;

pub(crate) fn spread(args: &Args, study: &Study, bar: &ProgressBar) -> Result<serde_json::Value, String> {
    let mut outcomes = Vec::new();
    for trial in 0..args.trials {
        let seed = args.seed.wrapping_add(trial);
        let outcome = study
            .spread(seed, args.max_rounds, |p| bar.set_message(describe(p)))
            .map_err(|e| failure(e, seed))?;
        bar.inc(1);
        outcomes.push(outcome);
    }
    let mut rounds: Vec<f64> = outcomes.iter().filter_map(|o| o.rounds).collect();
    rounds.sort_by(f64::total_cmp);
    let n = outcomes.len() as f64;
    let mean = |f: &dyn Fn(&SpreadOutcome) -> f64| outcomes.iter().map(f).sum::<f64>() / n;
    let messages = mean(&|o| o.traffic.datagrams as f64 / o.nodes as f64);
    let bytes = mean(&|o| o.traffic.bytes as f64 / o.nodes as f64);
    let bytes_per_round = mean(&|o| {
        let window = o.measured.as_secs_f64() / o.interval.as_secs_f64();
        o.traffic.bytes as f64 / o.nodes as f64 / window.max(1e-9)
    });
    let theory = theory_rounds(args);
    let mut report = common_fields(args);
    merge(&mut report, rounds_summary(&rounds));
    let fields = json!({
        "incomplete_trials": outcomes.len() - rounds.len(),
        "theory_rounds": round3(theory.as_ref().map(|(value, _)| *value)),
        "residue": round6(Some(mean(&|o| o.residue))),
        "messages_per_node": round3(Some(messages)),
        "bytes_per_node": round3(Some(bytes)),
        "bytes_per_node_per_round": round3(Some(bytes_per_round)),
        "rumor_pushes_per_node": round3(Some(mean(&|o| o.rumor_pushes as f64 / o.nodes as f64))),
    });
    merge(&mut report, fields);
    if let Some(path) = &args.plot {
        plot(path, args, &outcomes, theory).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
    }
    Ok(report)
}

pub(crate) fn steady(args: &Args, study: &Study, bar: &ProgressBar) -> Result<serde_json::Value, String> {
    let mut outcomes = Vec::new();
    for trial in 0..args.trials {
        let seed = args.seed.wrapping_add(trial);
        let outcome = study
            .steady(seed, args.rounds, |p| bar.set_message(describe(p)))
            .map_err(|e| failure(e, seed))?;
        bar.inc(1);
        outcomes.push(outcome);
    }
    let n = outcomes.len() as f64;
    let per_round = outcomes.iter().map(|o| o.bytes_per_node_per_round()).sum::<f64>() / n;
    let messages_per_round = outcomes.iter().map(|o| o.messages_per_node_per_round()).sum::<f64>() / n;
    let rounds = f64::from(args.rounds);
    let mut report = common_fields(args);
    merge(
        &mut report,
        json!({
            "mean_rounds": null,
            "p50_rounds": null,
            "p99_rounds": null,
            "max_rounds": null,
            "residue": 0.0,
            "measured_rounds": args.rounds,
            "messages_per_node": round3(Some(messages_per_round * rounds)),
            "bytes_per_node": round3(Some(per_round * rounds)),
            "messages_per_node_per_round": round3(Some(messages_per_round)),
            "bytes_per_node_per_round": round3(Some(per_round)),
        }),
    );
    Ok(report)
}

/// Every node writes one key at once: the rounds until every node holds every key (against
/// the bound `2 x ceil(log2 n)`), then the traffic of the quiet window (by default the
/// peers': 10 s from 1 s after the writes).
pub(crate) fn burst(args: &Args, study: &Study, bar: &ProgressBar) -> Result<serde_json::Value, String> {
    let quiet = QuietWindow {
        after: Duration::from_millis(args.quiet_after_ms),
        length: Duration::from_millis(args.quiet_ms),
    };
    let outcomes = trials(args, bar, |seed, progress| study.burst(seed, args.max_rounds, quiet, progress))?;
    let mut rounds: Vec<f64> = outcomes.iter().filter_map(|o| o.rounds).collect();
    rounds.sort_by(f64::total_cmp);
    let n = outcomes.len().max(1) as f64;
    let mean = |f: &dyn Fn(&BurstOutcome) -> f64| outcomes.iter().map(f).sum::<f64>() / n;
    let mut bytes: Vec<f64> = outcomes.iter().map(BurstOutcome::quiet_bytes_per_node_per_second).collect();
    bytes.sort_by(f64::total_cmp);
    let per_node_second = |count: &dyn Fn(&BurstOutcome) -> u64| {
        mean(&|o| count(o) as f64 / (o.nodes.max(1) as f64 * o.quiet.as_secs_f64().max(1e-9)))
    };
    let bound = 2.0 * (args.nodes.max(2) as f64).log2().ceil();
    let by_kind = kinds_per_node_second(&|kind| mean(&|o| o.quiet_kind_per_node_per_second(kind)));
    let mut report = common_fields(args);
    merge(&mut report, rounds_summary(&rounds));
    merge(
        &mut report,
        json!({
            "bound_rounds": bound,
            "incomplete_trials": outcomes.len() - rounds.len(),
            "quiet_window_seconds": quiet.length.as_secs_f64(),
            "quiet_after_seconds": quiet.after.as_secs_f64(),
            "quiet_bytes_per_node_per_second": round3(percentile(&bytes, 0.50)),
            "quiet_bytes_per_node_per_second_max": round3(bytes.last().copied()),
            "quiet_datagrams_per_node_per_second": round3(Some(mean(&BurstOutcome::quiet_datagrams_per_node_per_second))),
            "quiet_rounds_run_per_node_per_second": round3(Some(per_node_second(&|o| {
                o.quiet_counters.gossip_rounds - o.quiet_counters.rounds_skipped_in_sync
            }))),
            "quiet_syns_in_sync_per_node_per_second": round3(Some(per_node_second(&|o| o.quiet_counters.exchanges_in_sync))),
            "quiet_syns_out_of_sync_per_node_per_second": round3(Some(per_node_second(&|o| o.quiet_counters.exchanges_out_of_sync))),
            "quiet_datagrams_by_kind_per_node_per_second": by_kind,
            "quiet_probes_per_node_per_second": round3(Some(per_node_second(&|o| o.quiet_counters.probes_sent))),
        }),
    );
    Ok(report)
}

/// Every node joins node 0 at once: seconds (and rounds) until every node sees every other
/// as live, and the bytes sent until then.
pub(crate) fn join(args: &Args, study: &Study, bar: &ProgressBar) -> Result<serde_json::Value, String> {
    let outcomes = trials(args, bar, |seed, progress| study.join(seed, args.max_rounds, progress))?;
    let sorted = |f: &dyn Fn(&JoinOutcome) -> Option<f64>| {
        let mut values: Vec<f64> = outcomes.iter().filter_map(f).collect();
        values.sort_by(f64::total_cmp);
        values
    };
    let seconds = sorted(&|o| o.all_seconds);
    let half = sorted(&|o| o.half_seconds);
    let n = outcomes.len().max(1) as f64;
    let bytes = outcomes.iter().map(|o| o.traffic.bytes as f64 / o.nodes.max(1) as f64).sum::<f64>() / n;
    let mut report = common_fields(args);
    merge(&mut report, rounds_summary(&sorted(&|o| o.all_rounds)));
    merge(
        &mut report,
        json!({
            "incomplete_trials": outcomes.len() - seconds.len(),
            "p50_seconds": round3(percentile(&seconds, 0.50)),
            "max_seconds": round3(seconds.last().copied()),
            "half_complete_seconds_p50": round3(percentile(&half, 0.50)),
            "bytes_per_node": round3(Some(bytes)),
        }),
    );
    Ok(report)
}

/// Every node updates one key every `--update-ms`: the rounds each update of the measured
/// window took to reach every node (against the goal of 3 at the p99), and the traffic of
/// that window.
pub(crate) fn load(args: &Args, study: &Study, bar: &ProgressBar) -> Result<serde_json::Value, String> {
    let period = Duration::from_millis(args.update_ms);
    let plan =
        LoadPlan { period, warmup: period, measure: Duration::from_millis(args.load_ms), tail: period };
    let outcomes = trials(args, bar, |seed, progress| study.load(seed, plan, progress))?;
    let mut rounds: Vec<f64> = outcomes.iter().flat_map(|o| o.update_rounds.iter().copied()).collect();
    rounds.sort_by(f64::total_cmp);
    let n = outcomes.len().max(1) as f64;
    let mean = |f: &dyn Fn(&LoadOutcome) -> f64| outcomes.iter().map(f).sum::<f64>() / n;
    let by_kind = kinds_per_node_second(&|kind| mean(&|o| o.kind_per_node_per_second(kind)));
    let mut report = common_fields(args);
    merge(&mut report, rounds_summary(&rounds));
    merge(
        &mut report,
        json!({
            "goal_p99_rounds": 3.0,
            "update_ms": args.update_ms,
            "measured_seconds": plan.measure.as_secs_f64(),
            "updates_measured": rounds.len(),
            "updates_incomplete": outcomes.iter().map(|o| o.incomplete).sum::<usize>(),
            "bytes_per_node_per_second": round3(Some(mean(&LoadOutcome::bytes_per_node_per_second))),
            "datagrams_per_node_per_second": round3(Some(mean(&LoadOutcome::datagrams_per_node_per_second))),
            "datagrams_by_kind_per_node_per_second": by_kind,
        }),
    );
    Ok(report)
}

/// The mean, p50, p99 and max of sorted round counts.
fn rounds_summary(rounds: &[f64]) -> serde_json::Value {
    json!({
        "mean_rounds": round3(mean_of(rounds)),
        "p50_rounds": round3(percentile(rounds, 0.50)),
        "p99_rounds": round3(percentile(rounds, 0.99)),
        "max_rounds": round3(rounds.last().copied()),
    })
}

/// The nonzero per-kind rates, keyed by the kind's name.
fn kinds_per_node_second(rate: &dyn Fn(BodyKind) -> f64) -> serde_json::Map<String, serde_json::Value> {
    BodyKind::ALL
        .iter()
        .map(|kind| (*kind, rate(*kind)))
        .filter(|(_, rate)| *rate > 0.0)
        .map(|(kind, rate)| (format!("{kind:?}"), json!(round3(Some(rate)))))
        .collect()
}

/// The theoretical round count of REFERENCES.md for this setting, with its formula.
///
/// - push: `log_{1+q} n + ln n / q` with `q = b (1 - p)` (Frieze & Grimmett, Pittel);
/// - push-pull: `log3 n + log2 ln n` (Karp et al.; stated for fanout 1 without loss);
/// - pull: REFERENCES.md gives no closed form, so the sim means of its table (9.8, 13.7,
///   17.5, 21.0 at n = 10², 10³, 10⁴, 10⁵), interpolated in log n, are used for fanout 1
///   without loss; otherwise `log2 n + ln n` as an approximation;
/// - rumor: none.
pub(crate) fn theory_rounds(args: &Args) -> Option<(f64, String)> {
    let n = args.nodes.max(2) as f64;
    let b = args.fanout.unwrap_or(1) as f64;
    let q = b * (1.0 - args.loss);
    match mode(args) {
        Mode::Push if q > 0.0 => {
            let value = n.ln() / (1.0 + q).ln() + n.ln() / q;
            Some((value, "push: log_{1+q} n + ln n / q".to_owned()))
        }
        Mode::PushPull => Some((n.log(3.0) + n.ln().log2(), "push-pull: log3 n + log2 ln n".to_owned())),
        Mode::Pull
            if args.fanout.unwrap_or(1) == 1 && args.loss == 0.0 && (100.0..=100_000.0).contains(&n) =>
        {
            let table = [(2.0, 9.8), (3.0, 13.7), (4.0, 17.5), (5.0, 21.0)];
            let x = n.log10();
            let i = table.iter().rposition(|(at, _)| *at <= x).unwrap_or(0).min(table.len() - 2);
            let ((x0, y0), (x1, y1)) = (table[i], table[i + 1]);
            Some((y0 + (y1 - y0) * (x - x0) / (x1 - x0), "pull: sim mean of REFERENCES.md".to_owned()))
        }
        Mode::Pull => Some((n.log2() + n.ln(), "pull: log2 n + ln n (approximation)".to_owned())),
        _ => None,
    }
}
