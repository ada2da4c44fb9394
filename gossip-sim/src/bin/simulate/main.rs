//! The convergence and traffic study on the deterministic simulator.
//!
//! ```sh
//! cargo run --release -p gossip-sim --bin simulate -- \
//!     --nodes 1000 --mode push-pull --fanout 1 --trials 20 --seed 1
//! cargo run --release -p gossip-sim --bin simulate -- \
//!     --scenario steady --nodes 1000 --json
//! ```
//!
//! - `spread` (default): an in-sync cluster of N nodes idles until no node counts as
//!   recently changed, then one random node writes one key; a trial counts the gossip
//!   intervals until every live node has it. Rounds are fractional:
//!   `(time the last node learned it - time of the write) / interval`, directly comparable
//!   with the synchronous rounds of REFERENCES.md.
//! - `steady`: the same cluster with no writes; the trials measure background traffic.
//!
//! Membership and failure detection (SWIM with Lifeguard), on an in-sync cluster that first
//! settles for `--settle-periods` probe periods; nodes run `Config::lan()` (the gossip flags
//! `--mode`, `--fanout`, `--interval-ms` and `--rumor-*` apply only when given), and a
//! "period" is the probe interval:
//!
//! - `crash`: one random member crashes. Means over trials of `first_probe_periods` (to the
//!   first ping sent to it), `first_suspect_periods`, `first_dead_seconds`,
//!   `all_know_dead_seconds`, and `probe_messages_per_member_per_period` (pings, ping-reqs,
//!   acks and nacks, read from each datagram's body kind, from the crash until every member
//!   knows).
//! - `healthy`: nobody fails for `--periods` periods (use `--loss`): `false_suspicions` and
//!   `false_deaths`, each a count of distinct (member, incarnation) accused.
//! - `slow`: `--slow-fraction` of the members handle every datagram `--slow-delay-ms` late
//!   (and their timers `--slow-timer-delay-ms` late): false suspicions and deaths of the
//!   healthy members, and apart, of the slow ones.
//! - `partition`: two halves apart for `--split-seconds`: `heal_seconds`, from the heal until
//!   every member sees every other Alive; `false_failures_after_heal`, the `MemberFailed`
//!   events (summed over the trials) emitted after the heal about a live member (every live
//!   member is reachable once healed), counted until the longest suspicion timeout after
//!   convergence.
//! - `restart`: a member restarts under a new generation at a new address (`--same-address`
//!   keeps it): `rejoin_seconds`, until every member sees it Alive there.
//!
//! ```sh
//! cargo run --release -p gossip-sim --bin simulate -- \
//!     --scenario crash --nodes 100 --trials 20 --json
//! cargo run --release -p gossip-sim --bin simulate -- \
//!     --scenario slow --nodes 100 --slow-fraction 0.1 --slow-delay-ms 1500 --periods 1000 --json
//! ```
//!
//! - `chaos`: `--seeds N` random scenarios from `--seed S` (S, S+1, ...; `--seed S` alone
//!   replays one), each a pure function of its seed (`gossip_sim::chaos::Chaos`): random
//!   cluster, configuration, lossy links and faults, then calm until the cluster agrees;
//!   every invariant checked after every step. Prints `seeds`, `violations`,
//!   `failing_seeds`, `wall_seconds`, `seeds_per_second` and counts of faults and recovery
//!   mechanisms; each violation goes to stderr with its replay command, and the exit status
//!   is 1 if there was one. `--jobs N` spreads the seeds over N threads with the same report.
//!
//! ```sh
//! cargo run --release -p gossip-sim --bin simulate -- \
//!     --scenario chaos --seeds 1000 --jobs 2 --json
//! ```
//!
//! Trial `t` runs with seed `seed + t`, so any trial replays alone with
//! `--seed <seed + t> --trials 1`. Output is a table, or with `--json` exactly one JSON object
//! on stdout. `--plot FILE.svg` draws the mean informed fraction per round against the
//! logistic curve of the textbook push model and marks the theoretical round count.

use std::time::Instant;

use clap::Parser;
use serde_json::json;

use crate::args::{Args, ScenarioKind, aggregate_study, message_study, study, swim_study};
use crate::progress::progress_bar;
use crate::report::print_table;
use crate::scenarios::{
    aggregate, burst, chaos, crash, false_positives, join, load, messages, partition, restart, spread, steady,
};

mod args;
mod plot;
mod progress;
mod report;
mod scenarios;

// The simulator allocates per datagram (encode, decode, events): mimalloc makes the chaos
// scenario about a fifth faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    if let Err(message) = run(&args) {
        eprintln!("simulate: {message}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.plot.is_some() && args.scenario != ScenarioKind::Spread {
        return Err("--plot draws the spread scenario only".to_owned());
    }
    // Wall time of the study, for the report only; the simulation itself is virtual-time.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let bar = progress_bar(args);
    let report = match args.scenario {
        ScenarioKind::Spread => spread(args, &study(args)?, &bar)?,
        ScenarioKind::Steady => steady(args, &study(args)?, &bar)?,
        ScenarioKind::Burst => burst(args, &study(args)?, &bar)?,
        ScenarioKind::Load => load(args, &study(args)?, &bar)?,
        ScenarioKind::Join => join(args, &study(args)?, &bar)?,
        ScenarioKind::Crash => crash(args, &swim_study(args)?, &bar)?,
        ScenarioKind::Healthy | ScenarioKind::Slow => false_positives(args, &swim_study(args)?, &bar)?,
        ScenarioKind::Partition => partition(args, &swim_study(args)?, &bar)?,
        ScenarioKind::Restart => restart(args, &swim_study(args)?, &bar)?,
        ScenarioKind::Aggregate => aggregate(args, &aggregate_study(args)?, &bar)?,
        ScenarioKind::Chaos => chaos(args, &bar)?,
        ScenarioKind::Broadcast | ScenarioKind::Query | ScenarioKind::WriteRequest => {
            messages(args, &message_study(args)?, &bar)?
        }
    };
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let mut report = report;
    report["wall_seconds"] = json!((wall * 1000.0).round() / 1000.0);
    if args.scenario == ScenarioKind::Chaos {
        report["seeds_per_second"] =
            json!((report["seeds"].as_f64().unwrap_or(0.0) / wall.max(1e-9) * 1000.0).round() / 1000.0);
    }
    if args.json {
        println!("{report}");
    } else {
        print_table(args, &report);
    }
    match report["violations"].as_u64() {
        Some(count) if count > 0 => Err(format!("{count} chaos seed(s) broke an invariant (see above)")),
        _ => Ok(()),
    }
}
