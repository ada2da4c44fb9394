//! The convergence and traffic study on the deterministic simulator.
//!
//! ```sh
//! cargo run --release -p gossip-core --features sim --example simulate -- \
//!     --nodes 1000 --mode push-pull --fanout 1 --trials 20 --seed 1
//! cargo run --release -p gossip-core --features sim --example simulate -- \
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
//! cargo run --release -p gossip-core --features sim --example simulate -- \
//!     --scenario crash --nodes 100 --trials 20 --json
//! cargo run --release -p gossip-core --features sim --example simulate -- \
//!     --scenario slow --nodes 100 --slow-fraction 0.1 --slow-delay-ms 1500 --periods 1000 --json
//! ```
//!
//! - `chaos`: `--seeds N` random scenarios from `--seed S` (S, S+1, ...; `--seed S` alone
//!   replays one), each a pure function of its seed (`gossip_core::sim::Chaos`): random
//!   cluster, configuration, lossy links and faults, then calm until the cluster agrees;
//!   every invariant checked after every step. Prints `seeds`, `violations`,
//!   `failing_seeds`, `wall_seconds`, `seeds_per_second` and counts of faults and recovery
//!   mechanisms; each violation goes to stderr with its replay command, and the exit status
//!   is 1 if there was one. `--jobs N` spreads the seeds over N threads with the same report.
//!
//! ```sh
//! cargo run --release -p gossip-core --features sim --example simulate -- \
//!     --scenario chaos --seeds 1000 --jobs 2 --json
//! ```
//!
//! Trial `t` runs with seed `seed + t`, so any trial replays alone with
//! `--seed <seed + t> --trials 1`. Output is a table, or with `--json` exactly one JSON object
//! on stdout. `--plot FILE.svg` draws the mean informed fraction per round against the
//! logistic curve of the textbook push model and marks the theoretical round count.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use gossip_core::sim::{
    AggregateStudy, BodyKind, Chaos, Checks, ChurnOutcome, ConvergenceOutcome, CrashOutcome, FalsePositives,
    FaultCounts, LinkModel, PartitionOutcome, ProcessingDelay, Progress, RestartOutcome, SimError, Slowdown,
    SpreadOutcome, Study, SwimStudy,
};
use gossip_core::{AntiEntropyMode, Config, Dissemination, RumorRule};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use serde_json::json;

// The simulator allocates per datagram (encode, decode, events): mimalloc makes the chaos
// scenario about a fifth faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Push,
    Pull,
    PushPull,
    Rumor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Rule {
    Counter,
    Coin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScenarioKind {
    /// One write spreads through an in-sync cluster: rounds until every node has it.
    Spread,
    /// An idle in-sync cluster: background traffic.
    Steady,
    /// One member crashes: first probe, first suspicion, death, everyone knows; probe load.
    Crash,
    /// Nobody fails (use --loss): false suspicions and false deaths.
    Healthy,
    /// A fraction of members handle every datagram late: false accusations of the others.
    Slow,
    /// Two halves apart for --split-seconds: time from the heal until all see all Alive.
    Partition,
    /// A member restarts (at a new address): time until all see the new generation Alive.
    Restart,
    /// Push-sum aggregation: rounds until every node's average is within 1e-3 and 1e-6 of
    /// the truth (with --crash-fraction: crashes mid-epoch, and the next epoch's errors).
    Aggregate,
    /// Random faults from each seed, then calm: invariants and agreement (see --seeds).
    Chaos,
}

impl ScenarioKind {
    /// Whether this is a membership (SWIM) scenario.
    fn is_swim(self) -> bool {
        self.runs_preset() && !matches!(self, Self::Aggregate | Self::Chaos)
    }

    /// Whether the nodes run the preset as it is (the gossip flags apply only when given).
    fn runs_preset(self) -> bool {
        !matches!(self, Self::Spread | Self::Steady)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CheckPolicy {
    /// After every step (slow beyond a few hundred nodes).
    Every,
    /// On one step in N (N = the number of nodes).
    Sampled,
    /// Never.
    Off,
}

/// Convergence, traffic and membership (SWIM) studies of the gossip protocol on the
/// deterministic simulator.
#[derive(Debug, Clone, Parser)]
#[command(version)]
struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Dissemination: anti-entropy in push, pull or push-pull mode, or rumor mongering
    /// [default: push-pull; membership scenarios: Config::lan()'s].
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Peers contacted per round [default: 1; membership scenarios: Config::lan()'s 3].
    #[arg(long)]
    fanout: Option<usize>,
    /// Probability that a datagram is lost (independently).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// One-way latency of every link, in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    latency_ms: f64,
    /// Keep the default idle backoff of the anti-entropy interval (and the probe-triggered
    /// exchanges that come with it) instead of a fixed interval (spread and steady; the
    /// membership scenarios always keep it, as `Config::lan()` does).
    #[arg(long)]
    idle_backoff: bool,
    /// Gossip interval, in milliseconds (the unit of a round) [default: 1000; membership
    /// scenarios: Config::lan()'s 200].
    #[arg(long)]
    interval_ms: Option<u64>,
    /// Number of trials.
    #[arg(long, default_value_t = 10)]
    trials: u64,
    /// Seed of the first trial; trial t uses seed + t.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Chaos scenario: threads to spread the seeds over (the report is the same for any
    /// number).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Chaos scenario: number of seeds to run (seed, seed + 1, ...); 1 replays --seed.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The k of the rumor feedback rule (rumor mode) [default: 3].
    #[arg(long)]
    rumor_k: Option<u32>,
    /// The rumor feedback rule (rumor mode) [default: counter].
    #[arg(long, value_enum)]
    rumor_rule: Option<Rule>,
    /// In rumor mode, keep push-pull anti-entropy running as the backstop.
    #[arg(long)]
    with_anti_entropy: bool,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = ScenarioKind::Spread)]
    scenario: ScenarioKind,
    /// Rounds to measure in the steady scenario.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// Give up on a spread trial after this many rounds.
    #[arg(long, default_value_t = 200)]
    max_rounds: u32,
    /// How often invariants are checked.
    #[arg(long, value_enum, default_value_t = CheckPolicy::Sampled)]
    checks: CheckPolicy,
    /// Membership scenarios: probe periods to run (healthy, slow).
    #[arg(long, default_value_t = 1000)]
    periods: u32,
    /// Membership scenarios: probe periods the in-sync cluster runs before the fault.
    #[arg(long, default_value_t = 10)]
    settle_periods: u32,
    /// Membership scenarios: give up waiting after this many probe periods (crash) or
    /// seconds (partition and restart, after the heal or the restart).
    #[arg(long, default_value_t = 300)]
    max_wait: u32,
    /// Turn Lifeguard off (local health, dynamic suspicion, nacks, buddy system).
    #[arg(long)]
    no_lifeguard: bool,
    /// The preset the nodes start from.
    #[arg(long, value_enum, default_value_t = Preset::Lan)]
    config: Preset,
    /// SWIM probe interval, in milliseconds [default: the preset's].
    #[arg(long)]
    probe_ms: Option<u64>,
    /// SWIM suspicion multiplier [default: the preset's].
    #[arg(long)]
    suspicion_mult: Option<u32>,
    /// SWIM probe timeout, in milliseconds [default: the preset's].
    #[arg(long)]
    probe_timeout_ms: Option<u64>,
    /// Lifeguard: the longest suspicion timeout, as a multiple of the shortest [default:
    /// the preset's].
    #[arg(long)]
    suspicion_max_mult: Option<u32>,
    /// Lifeguard: confirmations that bring a suspicion down to the shortest timeout
    /// [default: the preset's].
    #[arg(long)]
    suspicion_confirmations: Option<u32>,
    /// Slow scenario: the fraction of members that are slow.
    #[arg(long, default_value_t = 0.1)]
    slow_fraction: f64,
    /// Slow scenario: how late a slow member handles each datagram, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    slow_delay_ms: u64,
    /// Slow scenario: how late a slow member's timers fire, in milliseconds (equal to
    /// --slow-delay-ms, the node's whole life is shifted and it accuses nobody falsely).
    #[arg(long, default_value_t = 0)]
    slow_timer_delay_ms: u64,
    /// Partition scenario: how long the halves are apart, in seconds.
    #[arg(long, default_value_t = 60.0)]
    split_seconds: f64,
    /// Restart scenario: the member comes back at its old address.
    #[arg(long)]
    same_address: bool,
    /// Aggregate scenario: rounds to measure.
    #[arg(long, default_value_t = 80)]
    measure_rounds: u32,
    /// Aggregate scenario: the fraction of nodes that crash half-way through the first
    /// epoch (0: no churn trial; the first epoch's count leader always crashes).
    #[arg(long, default_value_t = 0.0)]
    crash_fraction: f64,
    /// Aggregation rounds per epoch [default: the preset's].
    #[arg(long)]
    epoch_rounds: Option<u32>,
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Draw the mean informed fraction per round to this SVG file (spread only).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// A `Config` preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Preset {
    Lan,
    Wan,
    Local,
}

fn main() {
    let args = Args::parse();
    if let Err(message) = run(&args) {
        eprintln!("simulate: {message}");
        std::process::exit(1);
    }
}

/// The node configuration the flags describe.
fn node_config(args: &Args) -> Result<Config, String> {
    let mut config = match args.config {
        Preset::Lan => Config::lan(),
        Preset::Wan => Config::wan(),
        Preset::Local => Config::local(),
    };
    config.swim.lifeguard = !args.no_lifeguard;
    if let Some(mult) = args.suspicion_mult {
        config.swim.suspicion_mult = mult;
    }
    if let Some(probe) = args.probe_ms {
        config.swim.probe_interval = Duration::from_millis(probe);
        config.swim.probe_timeout = config.swim.probe_timeout.min(config.swim.probe_interval / 2);
    }
    if let Some(timeout) = args.probe_timeout_ms {
        config.swim.probe_timeout = Duration::from_millis(timeout);
    }
    if let Some(mult) = args.suspicion_max_mult {
        config.swim.suspicion_max_timeout_mult = mult;
    }
    if let Some(k) = args.suspicion_confirmations {
        config.swim.suspicion_confirmations = k;
    }
    let swim = args.scenario.runs_preset();
    if let Some(rounds) = args.epoch_rounds {
        config.aggregation.epoch_rounds = rounds;
    }
    // The spread and steady studies measure anti-entropy alone at a 1 s interval, fanout 1;
    // the membership scenarios run Config::lan() unless a flag says otherwise.
    if let Some(interval) = args.interval_ms.or((!swim).then_some(1000)) {
        config.gossip_interval = Duration::from_millis(interval);
    }
    if let Some(fanout) = args.fanout.or((!swim).then_some(1)) {
        config.fanout = fanout;
    }
    if !swim && !args.idle_backoff {
        // Measure anti-entropy itself: a fixed interval, and probes that leave it alone (with
        // the backoff on, a probe whose digest summary differs opens an exchange).
        config.max_idle_gossip_interval = config.gossip_interval;
    }
    if let Some(k) = args.rumor_k {
        config.rumor_k = k;
    }
    if let Some(rule) = args.rumor_rule {
        config.rumor_rule = match rule {
            Rule::Counter => RumorRule::Counter,
            Rule::Coin => RumorRule::Coin,
        };
    }
    let mode = args.mode.or((!swim).then_some(Mode::PushPull));
    if let Some(mode) = mode {
        (config.mode, config.dissemination) = match mode {
            Mode::Push => (AntiEntropyMode::Push, Dissemination::AntiEntropy),
            Mode::Pull => (AntiEntropyMode::Pull, Dissemination::AntiEntropy),
            Mode::PushPull => (AntiEntropyMode::PushPull, Dissemination::AntiEntropy),
            Mode::Rumor if args.with_anti_entropy => (AntiEntropyMode::PushPull, Dissemination::Both),
            Mode::Rumor => (AntiEntropyMode::PushPull, Dissemination::Rumors),
        };
    }
    if args.with_anti_entropy && mode != Some(Mode::Rumor) {
        return Err("--with-anti-entropy only applies to --mode rumor".to_owned());
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// The mode the spread and steady studies run.
fn mode(args: &Args) -> Mode {
    args.mode.unwrap_or(Mode::PushPull)
}

fn link_and_checks(args: &Args) -> Result<(LinkModel, Checks), String> {
    if args.nodes == 0 || args.trials == 0 {
        return Err("--nodes and --trials must be at least 1".to_owned());
    }
    if !(0.0..=1.0).contains(&args.loss) || args.latency_ms.is_nan() || args.latency_ms < 0.0 {
        return Err("--loss must be within 0..=1 and --latency-ms non-negative".to_owned());
    }
    let link = LinkModel::fixed(Duration::from_secs_f64(args.latency_ms / 1000.0)).with_loss(args.loss);
    let checks = match args.checks {
        CheckPolicy::Every => Checks::EveryStep,
        CheckPolicy::Sampled => Checks::Sampled { every: args.nodes as u64 },
        CheckPolicy::Off => Checks::Off,
    };
    Ok((link, checks))
}

fn study(args: &Args) -> Result<Study, String> {
    let (link, checks) = link_and_checks(args)?;
    let replay = replay_command(args);
    Ok(Study::new(args.nodes, node_config(args)?).with_link(link).with_checks(checks).with_replay(replay))
}

fn swim_study(args: &Args) -> Result<SwimStudy, String> {
    let (link, checks) = link_and_checks(args)?;
    if args.nodes < 2 {
        return Err("membership scenarios need --nodes 2 or more".to_owned());
    }
    Ok(SwimStudy::new(args.nodes, node_config(args)?)
        .with_link(link)
        .with_checks(checks)
        .with_settle_periods(args.settle_periods)
        .with_replay(replay_command(args)))
}

fn aggregate_study(args: &Args) -> Result<AggregateStudy, String> {
    let (link, checks) = link_and_checks(args)?;
    if args.nodes < 2 {
        return Err("the aggregate scenario needs --nodes 2 or more".to_owned());
    }
    if !(0.0..1.0).contains(&args.crash_fraction) {
        return Err("--crash-fraction must be within 0..1".to_owned());
    }
    Ok(AggregateStudy::new(args.nodes, node_config(args)?)
        .with_link(link)
        .with_checks(checks)
        .with_replay(replay_command(args)))
}

/// The command that replays one trial (`{seed}` is filled in by the simulator).
fn replay_command(args: &Args) -> String {
    let mut command = format!(
        "cargo run --release -p gossip-core --features sim --example simulate -- --scenario {} --nodes {} \
         --loss {} --latency-ms {} --checks {} --trials 1 --seed {{seed}}",
        value_name(args.scenario),
        args.nodes,
        args.loss,
        args.latency_ms,
        // Checking every step finds the first bad step, but costs O(n) per step.
        if args.nodes <= 1000 { "every" } else { "sampled" },
    );
    if let Some(mode) = args.mode {
        command += &format!(" --mode {}", value_name(mode));
    }
    if let Some(fanout) = args.fanout {
        command += &format!(" --fanout {fanout}");
    }
    if let Some(interval) = args.interval_ms {
        command += &format!(" --interval-ms {interval}");
    }
    if let Some(k) = args.rumor_k {
        command += &format!(" --rumor-k {k}");
    }
    if let Some(rule) = args.rumor_rule {
        command += &format!(" --rumor-rule {}", value_name(rule));
    }
    if args.with_anti_entropy {
        command += " --with-anti-entropy";
    }
    if args.idle_backoff {
        command += " --idle-backoff";
    }
    if args.scenario.is_swim() {
        command += &format!(" --settle-periods {} --max-wait {}", args.settle_periods, args.max_wait);
        if args.no_lifeguard {
            command += " --no-lifeguard";
        }
        match args.scenario {
            ScenarioKind::Healthy => command += &format!(" --periods {}", args.periods),
            ScenarioKind::Slow => {
                command += &format!(
                    " --periods {} --slow-fraction {} --slow-delay-ms {} --slow-timer-delay-ms {}",
                    args.periods, args.slow_fraction, args.slow_delay_ms, args.slow_timer_delay_ms
                );
            }
            ScenarioKind::Partition => command += &format!(" --split-seconds {}", args.split_seconds),
            ScenarioKind::Restart if args.same_address => command += " --same-address",
            _ => {}
        }
    }
    if args.scenario == ScenarioKind::Aggregate {
        command +=
            &format!(" --measure-rounds {} --crash-fraction {}", args.measure_rounds, args.crash_fraction);
        if let Some(rounds) = args.epoch_rounds {
            command += &format!(" --epoch-rounds {rounds}");
        }
    }
    command
}

fn value_name(value: impl ValueEnum) -> String {
    value.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}

fn progress_bar(args: &Args) -> ProgressBar {
    let total = if args.scenario == ScenarioKind::Chaos { args.seeds } else { args.trials };
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] trial {pos}/{len} {bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn describe(progress: Progress) -> String {
    match progress {
        Progress::Idle { round, of } => format!("idling {round}/{of}"),
        Progress::Spreading { round, informed, live } => format!("round {round}: {informed}/{live} informed"),
        Progress::Measuring { round, of } => format!("measuring {round}/{of}"),
        Progress::Settling { period, of } => format!("settling {period}/{of}"),
        Progress::Running { period, of } => format!("period {period}/{of}"),
        Progress::Waiting { seconds, done, of } => format!("{seconds} s: {done}/{of} members"),
        _ => String::new(),
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
        ScenarioKind::Crash => crash(args, &swim_study(args)?, &bar)?,
        ScenarioKind::Healthy | ScenarioKind::Slow => false_positives(args, &swim_study(args)?, &bar)?,
        ScenarioKind::Partition => partition(args, &swim_study(args)?, &bar)?,
        ScenarioKind::Restart => restart(args, &swim_study(args)?, &bar)?,
        ScenarioKind::Aggregate => aggregate(args, &aggregate_study(args)?, &bar)?,
        ScenarioKind::Chaos => chaos(args, &bar)?,
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

fn common_fields(args: &Args) -> serde_json::Value {
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

/// Runs `trial` for every seed of the study, with the progress bar.
fn trials<T>(
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

/// The mean of the values present, and how many were missing.
fn mean_present(values: impl Iterator<Item = Option<f64>>) -> (Option<f64>, usize) {
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

fn max_present(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.flatten().reduce(f64::max)
}

fn seconds(duration: Option<Duration>) -> Option<f64> {
    duration.map(|d| d.as_secs_f64())
}

fn crash(args: &Args, study: &SwimStudy, bar: &ProgressBar) -> Result<serde_json::Value, String> {
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

fn false_positives(args: &Args, study: &SwimStudy, bar: &ProgressBar) -> Result<serde_json::Value, String> {
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

fn partition(args: &Args, study: &SwimStudy, bar: &ProgressBar) -> Result<serde_json::Value, String> {
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

fn restart(args: &Args, study: &SwimStudy, bar: &ProgressBar) -> Result<serde_json::Value, String> {
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

fn spread(args: &Args, study: &Study, bar: &ProgressBar) -> Result<serde_json::Value, String> {
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
    let fields = json!({
        "mean_rounds": round3(mean_of(&rounds)),
        "p50_rounds": round3(percentile(&rounds, 0.50)),
        "p99_rounds": round3(percentile(&rounds, 0.99)),
        "max_rounds": round3(rounds.last().copied()),
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

fn steady(args: &Args, study: &Study, bar: &ProgressBar) -> Result<serde_json::Value, String> {
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

fn aggregate(args: &Args, study: &AggregateStudy, bar: &ProgressBar) -> Result<serde_json::Value, String> {
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

/// A small error, kept to three significant digits.
fn sci(value: Option<f64>) -> serde_json::Value {
    value.map_or(serde_json::Value::Null, |v| {
        let rounded: f64 = format!("{v:.3e}").parse().unwrap_or(v);
        json!(rounded)
    })
}

fn failure(error: SimError, seed: u64) -> String {
    match error {
        SimError::Invariant(violation) => format!("trial with seed {seed} failed:\n{violation}"),
        other => format!("trial with seed {seed}: {other}"),
    }
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn mean_of(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn round3(value: Option<f64>) -> serde_json::Value {
    value.map_or(serde_json::Value::Null, |v| json!((v * 1000.0).round() / 1000.0))
}

fn round6(value: Option<f64>) -> serde_json::Value {
    value.map_or(serde_json::Value::Null, |v| json!((v * 1e6).round() / 1e6))
}

/// The theoretical round count of REFERENCES.md for this setting, with its formula.
///
/// - push: `log_{1+q} n + ln n / q` with `q = b (1 - p)` (Frieze & Grimmett, Pittel);
/// - push-pull: `log3 n + log2 ln n` (Karp et al.; stated for fanout 1 without loss);
/// - pull: REFERENCES.md gives no closed form, so the sim means of its table (9.8, 13.7,
///   17.5, 21.0 at n = 10², 10³, 10⁴, 10⁵), interpolated in log n, are used for fanout 1
///   without loss; otherwise `log2 n + ln n` as an approximation;
/// - rumor: none.
fn theory_rounds(args: &Args) -> Option<(f64, String)> {
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

fn print_table(args: &Args, report: &serde_json::Value) {
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

/// The seed's logistic curve as a fraction: `y(t) / n` with `y(t) = (n+1) / (1 + n e^{-β (n+1) t})`
/// and `β = b / n`.
fn logistic_fraction(n: f64, b: f64, t: f64) -> f64 {
    let beta = b / n;
    (n + 1.0) / (1.0 + n * (-beta * (n + 1.0) * t).exp()) / n
}

fn plot(
    path: &Path,
    args: &Args,
    outcomes: &[SpreadOutcome],
    theory: Option<(f64, String)>,
) -> Result<(), Box<dyn std::error::Error>> {
    const STEPS_PER_ROUND: usize = 10;
    let slowest = outcomes.iter().map(|o| o.rounds.unwrap_or(f64::from(args.max_rounds))).fold(0.0, f64::max);
    let horizon = slowest.max(theory.as_ref().map_or(0.0, |(t, _)| *t)).ceil() + 1.0;
    let points = (horizon as usize) * STEPS_PER_ROUND;
    let measured: Vec<(f64, f64)> = (0..=points)
        .map(|step| {
            let t = step as f64 / STEPS_PER_ROUND as f64;
            let mean =
                outcomes.iter().map(|o| o.informed_fraction_at(t)).sum::<f64>() / outcomes.len() as f64;
            (t, mean)
        })
        .collect();
    let (n, b) = (args.nodes as f64, args.fanout.unwrap_or(1) as f64);
    let logistic: Vec<(f64, f64)> = measured.iter().map(|(t, _)| (*t, logistic_fraction(n, b, *t))).collect();

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "{} nodes, {}, fanout {}, loss {}: informed fraction per round ({} trials)",
        args.nodes,
        value_name(mode(args)),
        args.fanout.unwrap_or(1),
        args.loss,
        outcomes.len()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..horizon, 0.0..1.05)?;
    chart.configure_mesh().x_desc("rounds (gossip intervals)").y_desc("fraction informed").draw()?;
    chart
        .draw_series(LineSeries::new(measured, BLUE.stroke_width(2)))?
        .label("simulated (mean over trials)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(logistic, RED.stroke_width(2)))?
        .label("logistic y(t)/n, beta = b/n")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    if let Some((rounds, formula)) = theory {
        chart
            .draw_series(LineSeries::new([(rounds, 0.0), (rounds, 1.05)], BLACK.stroke_width(1)))?
            .label(format!("theory {formula} = {rounds:.1}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The command that replays one chaos seed.
fn chaos_replay() -> String {
    "cargo run --release -p gossip-core --features sim --example simulate -- --scenario chaos --seed {seed}"
        .to_owned()
}

/// Runs `--seeds` chaos seeds from `--seed`; prints each violation (what broke, the seed and
/// the command that replays it) on stderr, and fails when there was one.
fn chaos(args: &Args, bar: &ProgressBar) -> Result<serde_json::Value, String> {
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
