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
//! Trial `t` runs with seed `seed + t`, so any trial replays alone with
//! `--seed <seed + t> --trials 1`. Output is a table, or with `--json` exactly one JSON object
//! on stdout. `--plot FILE.svg` draws the mean informed fraction per round against the
//! logistic curve of the textbook push model and marks the theoretical round count.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use gossip_core::sim::{Checks, LinkModel, Progress, SimError, SpreadOutcome, Study};
use gossip_core::{AntiEntropyMode, Config, Dissemination, RumorRule};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use serde_json::json;

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
    Spread,
    Steady,
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

/// Convergence and traffic study of the gossip protocol on the deterministic simulator.
#[derive(Debug, Clone, Parser)]
#[command(version)]
struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Dissemination: anti-entropy in push, pull or push-pull mode, or rumor mongering.
    #[arg(long, value_enum, default_value_t = Mode::PushPull)]
    mode: Mode,
    /// Peers contacted per round.
    #[arg(long, default_value_t = 1)]
    fanout: usize,
    /// Probability that a datagram is lost (independently).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// One-way latency of every link, in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    latency_ms: f64,
    /// Keep the default idle backoff of the anti-entropy interval (and the probe-triggered
    /// exchanges that come with it) instead of a fixed interval.
    #[arg(long)]
    idle_backoff: bool,
    /// Gossip interval, in milliseconds (the unit of a round).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Number of trials.
    #[arg(long, default_value_t = 10)]
    trials: u64,
    /// Seed of the first trial; trial t uses seed + t.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The k of the rumor feedback rule (rumor mode).
    #[arg(long, default_value_t = 3)]
    rumor_k: u32,
    /// The rumor feedback rule (rumor mode).
    #[arg(long, value_enum, default_value_t = Rule::Counter)]
    rumor_rule: Rule,
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
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Draw the mean informed fraction per round to this SVG file (spread only).
    #[arg(long)]
    plot: Option<PathBuf>,
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
    let mut config = Config::lan();
    config.gossip_interval = Duration::from_millis(args.interval_ms);
    config.fanout = args.fanout;
    if !args.idle_backoff {
        // Measure anti-entropy itself: a fixed interval, and probes that leave it alone (with
        // the backoff on, a probe whose digest summary differs opens an exchange).
        config.max_idle_gossip_interval = config.gossip_interval;
    }
    config.rumor_k = args.rumor_k;
    config.rumor_rule = match args.rumor_rule {
        Rule::Counter => RumorRule::Counter,
        Rule::Coin => RumorRule::Coin,
    };
    (config.mode, config.dissemination) = match args.mode {
        Mode::Push => (AntiEntropyMode::Push, Dissemination::AntiEntropy),
        Mode::Pull => (AntiEntropyMode::Pull, Dissemination::AntiEntropy),
        Mode::PushPull => (AntiEntropyMode::PushPull, Dissemination::AntiEntropy),
        Mode::Rumor if args.with_anti_entropy => (AntiEntropyMode::PushPull, Dissemination::Both),
        Mode::Rumor => (AntiEntropyMode::PushPull, Dissemination::Rumors),
    };
    if args.with_anti_entropy && args.mode != Mode::Rumor {
        return Err("--with-anti-entropy only applies to --mode rumor".to_owned());
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn study(args: &Args) -> Result<Study, String> {
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
    let replay = replay_command(args);
    Ok(Study::new(args.nodes, node_config(args)?).with_link(link).with_checks(checks).with_replay(replay))
}

/// The command that replays one trial (`{seed}` is filled in by the simulator).
fn replay_command(args: &Args) -> String {
    let mut command = format!(
        "cargo run --release -p gossip-core --features sim --example simulate -- --scenario {} --nodes {} \
         --mode {} --fanout {} --loss {} --latency-ms {} --interval-ms {} --checks {} --trials 1 --seed {{seed}}",
        value_name(args.scenario),
        args.nodes,
        value_name(args.mode),
        args.fanout,
        args.loss,
        args.latency_ms,
        args.interval_ms,
        // Checking every step finds the first bad step, but costs O(n) per step.
        if args.nodes <= 1000 { "every" } else { "sampled" },
    );
    if args.mode == Mode::Rumor {
        command += &format!(" --rumor-k {} --rumor-rule {}", args.rumor_k, value_name(args.rumor_rule));
        if args.with_anti_entropy {
            command += " --with-anti-entropy";
        }
    }
    command
}

fn value_name(value: impl ValueEnum) -> String {
    value.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}

fn progress_bar(args: &Args) -> ProgressBar {
    let bar = ProgressBar::new(args.trials);
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
        _ => String::new(),
    }
}

fn run(args: &Args) -> Result<(), String> {
    let study = study(args)?;
    // Wall time of the study, for the report only; the simulation itself is virtual-time.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let bar = progress_bar(args);
    let report = match args.scenario {
        ScenarioKind::Spread => spread(args, &study, &bar)?,
        ScenarioKind::Steady => steady(args, &study, &bar)?,
    };
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let mut report = report;
    report["wall_seconds"] = json!((wall * 1000.0).round() / 1000.0);
    if args.json {
        println!("{report}");
    } else {
        print_table(args, &report);
    }
    Ok(())
}

fn common_fields(args: &Args) -> serde_json::Value {
    json!({
        "scenario": value_name(args.scenario),
        "nodes": args.nodes,
        "mode": value_name(args.mode),
        "fanout": args.fanout,
        "loss": args.loss,
        "latency_ms": args.latency_ms,
        "interval_ms": args.interval_ms,
        "trials": args.trials,
        "seed": args.seed,
    })
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
    if args.plot.is_some() {
        return Err("--plot draws the spread scenario only".to_owned());
    }
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
    let b = args.fanout as f64;
    let q = b * (1.0 - args.loss);
    match args.mode {
        Mode::Push if q > 0.0 => {
            let value = n.ln() / (1.0 + q).ln() + n.ln() / q;
            Some((value, "push: log_{1+q} n + ln n / q".to_owned()))
        }
        Mode::PushPull => Some((n.log(3.0) + n.ln().log2(), "push-pull: log3 n + log2 ln n".to_owned())),
        Mode::Pull if args.fanout == 1 && args.loss == 0.0 && (100.0..=100_000.0).contains(&n) => {
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
    println!(
        "simulate {}: {} nodes, {}, fanout {}, loss {}, latency {} ms, interval {} ms, {} trial(s), seed {}",
        value_name(args.scenario),
        args.nodes,
        value_name(args.mode),
        args.fanout,
        args.loss,
        args.latency_ms,
        args.interval_ms,
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
    let (n, b) = (args.nodes as f64, args.fanout as f64);
    let logistic: Vec<(f64, f64)> = measured.iter().map(|(t, _)| (*t, logistic_fraction(n, b, *t))).collect();

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "{} nodes, {}, fanout {}, loss {}: informed fraction per round ({} trials)",
        args.nodes,
        value_name(args.mode),
        args.fanout,
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
