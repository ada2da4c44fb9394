//! The membership (SWIM) scenarios: crash, healthy and slow, partition, restart.

use std::time::Duration;

use gossip_core::sim::{BodyKind, ProcessingDelay};
use gossip_sim::swim::{CrashOutcome, FalsePositives, PartitionOutcome, RestartOutcome, Slowdown, SwimStudy};
use indicatif::ProgressBar;
use serde_json::json;

use crate::args::{Args, ScenarioKind};
use crate::report::{common_fields, max_present, mean_present, merge, round3, seconds};
use crate::scenarios::trials;

pub(crate) fn crash(args: &Args, study: &SwimStudy, bar: &ProgressBar) -> Result<serde_json::Value, String> {
    let outcomes: Vec<CrashOutcome> =
        trials(args, bar, |seed, progress| study.crash(seed, args.max_wait, progress))?;
    let periods = |o: &CrashOutcome, d: Option<Duration>| d.map(|d| o.periods(d));
    let (first_probe, _) = mean_present(outcomes.iter().map(|o| periods(o, o.first_probe)));
    let (first_suspect, _) = mean_present(outcomes.iter().map(|o| periods(o, o.first_suspect)));
    let (first_dead, _) = mean_present(outcomes.iter().map(|o| seconds(o.first_dead)));
    let (all_dead, incomplete) = mean_present(outcomes.iter().map(|o| seconds(o.all_know_dead)));
    let n = outcomes.len() as f64;
    let mean = |f: &dyn Fn(&CrashOutcome) -> f64| outcomes.iter().map(f).sum::<f64>() / n;
    let per_period =
        |o: &CrashOutcome, count: u64| count as f64 / o.live as f64 / o.periods(o.window).max(1e-9);
    let per_kind = |kind: BodyKind| mean(&|o| per_period(o, o.sent.get(kind)));
    let first = &outcomes[0];
    let mut report = common_fields(args);
    merge(
        &mut report,
        json!({
            "first_probe_periods": round3(first_probe),
            "first_suspect_periods": round3(first_suspect),
            "first_dead_seconds": round3(first_dead),
            "all_know_dead_seconds": round3(all_dead),
            "probe_messages_per_member_per_period":
                round3(Some(mean(&|o| o.probe_messages_per_member_per_period()))),
            "max_first_probe_periods": round3(max_present(outcomes.iter().map(|o| periods(o, o.first_probe)))),
            "max_all_know_dead_seconds": round3(max_present(outcomes.iter().map(|o| seconds(o.all_know_dead)))),
            "incomplete_trials": incomplete,
            "pings_per_member_per_period": round3(Some(per_kind(BodyKind::Ping))),
            "ping_reqs_per_member_per_period": round3(Some(per_kind(BodyKind::PingReq))),
            "acks_per_member_per_period": round3(Some(per_kind(BodyKind::Ack))),
            "nacks_per_member_per_period": round3(Some(per_kind(BodyKind::Nack))),
            "datagrams_per_member_per_period": round3(Some(mean(&|o| per_period(o, o.sent.total())))),
            "measured_periods": round3(Some(mean(&|o| o.periods(o.window)))),
            "suspicion_timeout_seconds": round3(Some(first.suspicion_timeout.as_secs_f64())),
            "max_suspicion_timeout_seconds": round3(Some(first.max_suspicion_timeout.as_secs_f64())),
            "all_know_dead_goal_seconds": round3(Some(first.all_know_dead_goal().as_secs_f64())),
            "other_suspicions": round3(Some(mean(&|o| o.other_suspicions as f64))),
        }),
    );
    Ok(report)
}

pub(crate) fn false_positives(
    args: &Args,
    study: &SwimStudy,
    bar: &ProgressBar,
) -> Result<serde_json::Value, String> {
    let slow = args.scenario == ScenarioKind::Slow;
    if slow && !(0.0..=1.0).contains(&args.slow_fraction) {
        return Err("--slow-fraction must be within 0..=1".to_owned());
    }
    let slowdown = Slowdown {
        fraction: args.slow_fraction,
        delay: ProcessingDelay::new(
            Duration::from_millis(args.slow_delay_ms),
            Duration::from_millis(args.slow_timer_delay_ms),
        ),
    };
    let outcomes: Vec<FalsePositives> = trials(args, bar, |seed, progress| {
        if slow {
            study.slow(seed, args.periods, slowdown, progress)
        } else {
            study.healthy(seed, args.periods, progress)
        }
    })?;
    let n = outcomes.len() as f64;
    let mean = |f: &dyn Fn(&FalsePositives) -> f64| Some(outcomes.iter().map(f).sum::<f64>() / n);
    let mut report = common_fields(args);
    merge(
        &mut report,
        json!({
            "periods": args.periods,
            "false_suspicions": round3(mean(&|o| o.healthy.suspicions as f64)),
            "false_deaths": round3(mean(&|o| o.healthy.deaths as f64)),
            "false_suspicion_reports": round3(mean(&|o| o.healthy.suspicion_reports as f64)),
            "false_death_reports": round3(mean(&|o| o.healthy.death_reports as f64)),
            "max_false_deaths": outcomes.iter().map(|o| o.healthy.deaths).max().unwrap_or(0),
            "refutations": round3(mean(&|o| o.refutations.0 as f64)),
            "probes_sent": round3(mean(&|o| o.healthy_probes.0 as f64)),
            "probes_failed": round3(mean(&|o| o.healthy_probes.1 as f64)),
            "mean_local_health": round3(mean(&|o| o.mean_health.0)),
            "probe_messages_per_member_per_period": round3(mean(&|o| o.probe_messages_per_member_per_period())),
        }),
    );
    if slow {
        merge(
            &mut report,
            json!({
                "slow_fraction": args.slow_fraction,
                "slow_members": outcomes[0].slow.len(),
                "slow_delay_ms": args.slow_delay_ms,
                "slow_timer_delay_ms": args.slow_timer_delay_ms,
                "slow_member_suspicions": round3(mean(&|o| o.slowed.suspicions as f64)),
                "slow_member_deaths": round3(mean(&|o| o.slowed.deaths as f64)),
                "slow_refutations": round3(mean(&|o| o.refutations.1 as f64)),
                "slow_probes_sent": round3(mean(&|o| o.slow_probes.0 as f64)),
                "slow_probes_failed": round3(mean(&|o| o.slow_probes.1 as f64)),
                "slow_mean_local_health": round3(mean(&|o| o.mean_health.1)),
            }),
        );
    }
    Ok(report)
}

pub(crate) fn partition(
    args: &Args,
    study: &SwimStudy,
    bar: &ProgressBar,
) -> Result<serde_json::Value, String> {
    if !(args.split_seconds.is_finite() && args.split_seconds >= 0.0) {
        return Err("--split-seconds must be a non-negative number".to_owned());
    }
    let split = Duration::from_secs_f64(args.split_seconds);
    let max_wait = Duration::from_secs(u64::from(args.max_wait));
    let outcomes: Vec<PartitionOutcome> =
        trials(args, bar, |seed, progress| study.partition(seed, split, max_wait, progress))?;
    let (heal, incomplete) = mean_present(outcomes.iter().map(|o| seconds(o.heal)));
    let n = outcomes.len() as f64;
    let mean = |f: &dyn Fn(&PartitionOutcome) -> f64| Some(outcomes.iter().map(f).sum::<f64>() / n);
    let mut report = common_fields(args);
    merge(
        &mut report,
        json!({
            "split_seconds": args.split_seconds,
            "heal_seconds": round3(heal),
            "max_heal_seconds": round3(max_present(outcomes.iter().map(|o| seconds(o.heal)))),
            "incomplete_trials": incomplete,
            "dead_at_heal": round3(mean(&|o| o.dead_at_heal as f64 / o.cross_pairs.max(1) as f64)),
            "suspect_at_heal": round3(mean(&|o| o.suspect_at_heal as f64 / o.cross_pairs.max(1) as f64)),
            "converged_members": round3(mean(&|o| o.converged as f64)),
            "false_failures_after_heal": outcomes.iter().map(|o| o.false_failures_after_heal).sum::<usize>(),
            "max_false_failures_after_heal":
                outcomes.iter().map(|o| o.false_failures_after_heal).max().unwrap_or(0),
            "false_failures_during_split":
                outcomes.iter().map(|o| o.false_failures_during_split).sum::<usize>(),
            "suspicions_after_heal": round3(mean(&|o| o.suspicions_after_heal as f64)),
        }),
    );
    Ok(report)
}

pub(crate) fn restart(
    args: &Args,
    study: &SwimStudy,
    bar: &ProgressBar,
) -> Result<serde_json::Value, String> {
    let max_wait = Duration::from_secs(u64::from(args.max_wait));
    let outcomes: Vec<RestartOutcome> =
        trials(args, bar, |seed, progress| study.restart(seed, !args.same_address, max_wait, progress))?;
    let (rejoin, incomplete) = mean_present(outcomes.iter().map(|o| seconds(o.rejoin)));
    let (knows_all, _) = mean_present(outcomes.iter().map(|o| seconds(o.knows_all)));
    let mut report = common_fields(args);
    merge(
        &mut report,
        json!({
            "new_address": !args.same_address,
            "rejoin_seconds": round3(rejoin),
            "max_rejoin_seconds": round3(max_present(outcomes.iter().map(|o| seconds(o.rejoin)))),
            "incomplete_trials": incomplete,
            "knows_all_seconds": round3(knows_all),
        }),
    );
    Ok(report)
}
