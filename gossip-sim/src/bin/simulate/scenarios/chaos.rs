//! The chaos scenario: `--seeds` random fault schedules over `--jobs` threads.

use gossip_sim::chaos::{Chaos, FaultCounts};
use indicatif::ProgressBar;
use serde_json::json;

use crate::args::Args;
use crate::report::{failure, round3};

/// The command that replays one chaos seed.
pub(crate) fn chaos_replay() -> String {
    "cargo run --release -p gossip-sim --bin simulate -- --scenario chaos --seed {seed}".to_owned()
}

/// Runs `--seeds` chaos seeds from `--seed`; prints each violation (what broke, the seed and
/// the command that replays it) on stderr, and fails when there was one.
pub(crate) fn chaos(args: &Args, bar: &ProgressBar) -> Result<serde_json::Value, String> {
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".to_owned());
    }
    let runner = Chaos::new().with_replay(chaos_replay());
    // Seeds are spread over `--jobs` threads; each seed is a pure function of itself, and the
    // outcomes are folded in seed order, so the report is the same for any number of jobs.
    let next = std::sync::atomic::AtomicU64::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let offset = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if offset >= args.seeds {
                        break;
                    }
                    let seed = args.seed.wrapping_add(offset);
                    let outcome = runner.run(seed).map_err(|e| failure(e, seed));
                    if let Ok(Some(violation)) = outcome.as_ref().map(|o| o.violation.as_ref()) {
                        bar.suspend(|| eprintln!("seed {seed}: {violation}"));
                    }
                    bar.inc(1);
                    outcomes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((offset, outcome));
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    outcomes.sort_by_key(|(offset, _)| *offset);
    let (mut faults, mut failing, mut nodes, mut steps) = (FaultCounts::default(), Vec::new(), 0u64, 0u64);
    let (mut settled, mut settled_max, mut settled_count) = (0.0, 0.0f64, 0u64);
    for (offset, outcome) in outcomes {
        let seed = args.seed.wrapping_add(offset);
        let outcome = outcome?;
        faults.add(&outcome.faults);
        nodes += outcome.nodes as u64;
        steps += outcome.steps;
        if let Some(after) = outcome.settled_after {
            settled += after.as_secs_f64();
            settled_max = settled_max.max(after.as_secs_f64());
            settled_count += 1;
        }
        if outcome.violation.is_some() {
            failing.push(seed);
        }
    }
    let report = json!({
        "scenario": "chaos",
        "seed": args.seed,
        "seeds": args.seeds,
        "violations": failing.len(),
        "failing_seeds": failing,
        "mean_nodes": round3(Some(nodes as f64 / args.seeds as f64)),
        "simulated_steps": steps,
        "mean_settle_seconds": round3((settled_count > 0).then(|| settled / settled_count as f64)),
        "max_settle_seconds": round3((settled_count > 0).then_some(settled_max)),
        "faults": {
            "partitions": faults.partitions,
            "one_way_cuts": faults.one_way_cuts,
            "isolations": faults.isolations,
            "crashes": faults.crashes,
            "restarts": faults.restarts,
            "pauses": faults.pauses,
            "clock_jumps": faults.clock_jumps,
            "slowdowns": faults.slowdowns,
            "writes": faults.writes,
            "deletes": faults.deletes,
            "left_down": faults.left_down,
            "aggregate_sets": faults.aggregate_sets,
        },
        "mechanisms": {
            "tombstones_collected": faults.tombstones_collected,
            "members_forgotten": faults.members_forgotten,
            "replica_resets": faults.replica_resets,
            "refutations": faults.refutations,
        },
    });
    Ok(report)
}
