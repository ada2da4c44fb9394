//! The command line: its flags (clap), and the node configuration, link, checks and studies
//! they describe.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use gossip_core::sim::{Checks, LinkModel};
use gossip_core::{AntiEntropyMode, Config, Dissemination, RumorRule};
use gossip_sim::aggregate::AggregateStudy;
use gossip_sim::messages::MessageStudy;
use gossip_sim::swim::SwimStudy;
use gossip_sim::trial::Study;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    Push,
    Pull,
    PushPull,
    Rumor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Rule {
    Counter,
    Coin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScenarioKind {
    /// One write spreads through an in-sync cluster: rounds until every node has it.
    Spread,
    /// An idle in-sync cluster: background traffic.
    Steady,
    /// Every node writes one key at once: rounds until every node holds every key, then
    /// the traffic of the 10 s from 1 s after the writes (the peers' quiet window).
    Burst,
    /// Every node updates one key every --update-ms, each at its own phase: rounds for an
    /// update to reach every node, and the traffic of the measured window.
    Load,
    /// Every node joins node 0 at once: time until every node sees every other as live,
    /// and the traffic until then.
    Join,
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
    /// One member broadcasts: rounds until every member has it, and the bytes it adds.
    Broadcast,
    /// One member queries every member (each answers at once): answers within the timeout.
    Query,
    /// A write request to an owner the asker cannot reach directly (a one-way cut): time
    /// until the asker sees the write, against a plain write's spread.
    WriteRequest,
}

impl ScenarioKind {
    /// Whether this is a membership (SWIM) scenario.
    pub(crate) fn is_swim(self) -> bool {
        self.runs_preset()
            && !matches!(self, Self::Aggregate | Self::Chaos | Self::Burst | Self::Load | Self::Join)
            && !self.is_messages()
    }

    /// Whether this is an application-message scenario.
    pub(crate) fn is_messages(self) -> bool {
        matches!(self, Self::Broadcast | Self::Query | Self::WriteRequest)
    }

    /// Whether the nodes run the preset as it is (the gossip flags apply only when given).
    pub(crate) fn runs_preset(self) -> bool {
        !matches!(self, Self::Spread | Self::Steady)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CheckPolicy {
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
pub(crate) struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    pub(crate) nodes: usize,
    /// Dissemination: anti-entropy in push, pull or push-pull mode, or rumor mongering
    /// [default: push-pull; membership scenarios: Config::lan()'s].
    #[arg(long, value_enum)]
    pub(crate) mode: Option<Mode>,
    /// Peers contacted per round [default: 1; membership scenarios: Config::lan()'s 3].
    #[arg(long)]
    pub(crate) fanout: Option<usize>,
    /// Probability that a datagram is lost (independently).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) loss: f64,
    /// One-way latency of every link, in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) latency_ms: f64,
    /// Keep the default idle backoff of the anti-entropy interval (and the probe-triggered
    /// exchanges that come with it) instead of a fixed interval (spread and steady; the
    /// membership scenarios always keep it, as `Config::lan()` does).
    #[arg(long)]
    pub(crate) idle_backoff: bool,
    /// Gossip interval, in milliseconds (the unit of a round) [default: 1000; membership
    /// scenarios: Config::lan()'s 200].
    #[arg(long)]
    pub(crate) interval_ms: Option<u64>,
    /// Number of trials.
    #[arg(long, default_value_t = 10)]
    pub(crate) trials: u64,
    /// Seed of the first trial; trial t uses seed + t.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Chaos scenario: threads to spread the seeds over (the report is the same for any
    /// number).
    #[arg(long, default_value_t = 1)]
    pub(crate) jobs: usize,
    /// Chaos scenario: number of seeds to run (seed, seed + 1, ...); 1 replays --seed.
    #[arg(long, default_value_t = 1)]
    pub(crate) seeds: u64,
    /// The k of the rumor feedback rule (rumor mode) [default: 3].
    #[arg(long)]
    pub(crate) rumor_k: Option<u32>,
    /// How long news waits before a node forwards it, in milliseconds; "off" leaves news to
    /// the gossip rounds [default: Config::lan()'s 20].
    #[arg(long, value_parser = parse_forward_ms)]
    pub(crate) forward_ms: Option<ForwardDelay>,
    /// In how many successive forwards news goes out [default: Config::lan()'s 2].
    #[arg(long)]
    pub(crate) forwards: Option<u32>,
    /// The rumor feedback rule (rumor mode) [default: counter].
    #[arg(long, value_enum)]
    pub(crate) rumor_rule: Option<Rule>,
    /// In rumor mode, keep push-pull anti-entropy running as the backstop.
    #[arg(long)]
    pub(crate) with_anti_entropy: bool,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = ScenarioKind::Spread)]
    pub(crate) scenario: ScenarioKind,
    /// Rounds to measure in the steady scenario.
    #[arg(long, default_value_t = 20)]
    pub(crate) rounds: u32,
    /// Give up on a spread trial after this many rounds.
    #[arg(long, default_value_t = 200)]
    pub(crate) max_rounds: u32,
    /// Burst: the quiet window starts this long after the writes (the peers' harnesses: 1 s).
    #[arg(long, default_value_t = 1000)]
    pub(crate) quiet_after_ms: u64,
    /// Burst: the quiet window's length (the peers' harnesses: 10 s).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) quiet_ms: u64,
    /// Load: each node updates its key this often (Cassandra's load reports: 5 s).
    #[arg(long, default_value_t = 5000)]
    pub(crate) update_ms: u64,
    /// Load: the measured window's length (one --update-ms of load runs before it and after
    /// it).
    #[arg(long, default_value_t = 30_000)]
    pub(crate) load_ms: u64,
    /// How often invariants are checked.
    #[arg(long, value_enum, default_value_t = CheckPolicy::Sampled)]
    pub(crate) checks: CheckPolicy,
    /// Membership scenarios: probe periods to run (healthy, slow).
    #[arg(long, default_value_t = 1000)]
    pub(crate) periods: u32,
    /// Membership scenarios: probe periods the in-sync cluster runs before the fault.
    #[arg(long, default_value_t = 10)]
    pub(crate) settle_periods: u32,
    /// Membership scenarios: give up waiting after this many probe periods (crash) or
    /// seconds (partition and restart, after the heal or the restart).
    #[arg(long, default_value_t = 300)]
    pub(crate) max_wait: u32,
    /// Turn Lifeguard off (local health, dynamic suspicion, nacks, buddy system).
    #[arg(long)]
    pub(crate) no_lifeguard: bool,
    /// The preset the nodes start from.
    #[arg(long, value_enum, default_value_t = Preset::Lan)]
    pub(crate) config: Preset,
    /// SWIM probe interval, in milliseconds [default: the preset's].
    #[arg(long)]
    pub(crate) probe_ms: Option<u64>,
    /// SWIM suspicion multiplier [default: the preset's].
    #[arg(long)]
    pub(crate) suspicion_mult: Option<u32>,
    /// SWIM probe timeout, in milliseconds [default: the preset's].
    #[arg(long)]
    pub(crate) probe_timeout_ms: Option<u64>,
    /// Lifeguard: the longest suspicion timeout, as a multiple of the shortest [default:
    /// the preset's].
    #[arg(long)]
    pub(crate) suspicion_max_mult: Option<u32>,
    /// Lifeguard: confirmations that bring a suspicion down to the shortest timeout
    /// [default: the preset's].
    #[arg(long)]
    pub(crate) suspicion_confirmations: Option<u32>,
    /// Slow scenario: the fraction of members that are slow.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) slow_fraction: f64,
    /// Slow scenario: how late a slow member handles each datagram, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    pub(crate) slow_delay_ms: u64,
    /// Slow scenario: how late a slow member's timers fire, in milliseconds (equal to
    /// --slow-delay-ms, the node's whole life is shifted and it accuses nobody falsely).
    #[arg(long, default_value_t = 0)]
    pub(crate) slow_timer_delay_ms: u64,
    /// Partition scenario: how long the halves are apart, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) split_seconds: f64,
    /// Restart scenario: the member comes back at its old address.
    #[arg(long)]
    pub(crate) same_address: bool,
    /// Query scenario: the query's timeout in milliseconds [default: 3 x (ceil(log2 n) + 4)
    /// gossip rounds].
    #[arg(long)]
    pub(crate) query_timeout_ms: Option<u64>,
    /// Aggregate scenario: rounds to measure.
    #[arg(long, default_value_t = 80)]
    pub(crate) measure_rounds: u32,
    /// Aggregate scenario: the fraction of nodes that crash half-way through the first
    /// epoch (0: no churn trial; the first epoch's count leader always crashes).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) crash_fraction: f64,
    /// Aggregation rounds per epoch [default: the preset's].
    #[arg(long)]
    pub(crate) epoch_rounds: Option<u32>,
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Draw the mean informed fraction per round to this SVG file (spread only).
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
}

/// A `Config` preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Preset {
    Lan,
    Wan,
    Local,
}

/// `--forward-ms`: a delay, or `None` for "off".
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForwardDelay(Option<Duration>);

fn parse_forward_ms(text: &str) -> Result<ForwardDelay, String> {
    if text == "off" {
        return Ok(ForwardDelay(None));
    }
    let ms: u64 = text.parse().map_err(|_| format!("expected milliseconds or \"off\", got {text:?}"))?;
    Ok(ForwardDelay(Some(Duration::from_millis(ms))))
}

/// The node configuration the flags describe.
pub(crate) fn node_config(args: &Args) -> Result<Config, String> {
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
    if let Some(ForwardDelay(delay)) = args.forward_ms {
        config.rumor_forward_delay = delay;
    }
    if let Some(times) = args.forwards {
        config.rumor_forwards = times;
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
pub(crate) fn mode(args: &Args) -> Mode {
    args.mode.unwrap_or(Mode::PushPull)
}

pub(crate) fn link_and_checks(args: &Args) -> Result<(LinkModel, Checks), String> {
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

pub(crate) fn study(args: &Args) -> Result<Study, String> {
    let (link, checks) = link_and_checks(args)?;
    let replay = replay_command(args);
    Ok(Study::new(args.nodes, node_config(args)?).with_link(link).with_checks(checks).with_replay(replay))
}

pub(crate) fn swim_study(args: &Args) -> Result<SwimStudy, String> {
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

pub(crate) fn message_study(args: &Args) -> Result<MessageStudy, String> {
    let (link, checks) = link_and_checks(args)?;
    if args.nodes < 3 {
        return Err("the message scenarios need --nodes 3 or more".to_owned());
    }
    Ok(MessageStudy::new(args.nodes, node_config(args)?).with_link(link).with_checks(checks))
}

pub(crate) fn aggregate_study(args: &Args) -> Result<AggregateStudy, String> {
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
pub(crate) fn replay_command(args: &Args) -> String {
    let mut command = format!(
        "cargo run --release -p gossip-sim --bin simulate -- --scenario {} --nodes {} \
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
    if let Some(ForwardDelay(delay)) = args.forward_ms {
        match delay {
            Some(delay) => command += &format!(" --forward-ms {}", delay.as_millis()),
            None => command += " --forward-ms off",
        }
    }
    if let Some(times) = args.forwards {
        command += &format!(" --forwards {times}");
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

pub(crate) fn value_name(value: impl ValueEnum) -> String {
    value.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}
