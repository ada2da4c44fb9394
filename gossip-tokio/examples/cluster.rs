//! A real cluster on loopback UDP: `N` nodes on `127.0.0.1`, each with its own socket and its
//! own driver task on one tokio runtime. The README's main-job command:
//!
//! ```text
//! cargo run --release -p gossip-tokio --example cluster
//! cargo run --release -p gossip-tokio --example cluster -- --nodes 100 --gossip-ms 300 --fanout 3 --probe-ms 1000 --json
//! ```
//!
//! Phases, each with a bounded timeout, progress on stderr:
//!
//! 1. **membership**: nodes 1..N join node 0; until every node sees every other alive;
//! 2. **keys**: every node writes `owner = its name`; until every node holds every key;
//! 3. **idle**: after `--settle-secs`, the traffic of a `--idle-secs` window without writes;
//!    then **load** (unless `--load-secs 0`): every node updates its `load` key every
//!    `--update-ms`; each update of a `--load-secs` window is timed until every other node
//!    has it, and the window's traffic is counted;
//! 4. **failure**: the last node is killed (shut down without a leave); until every survivor
//!    has declared it dead;
//! 5. **rejoin**: it restarts on the same address under a higher generation; until every
//!    survivor sees the new generation and it sees every survivor;
//! 6. **aggregate**: node `i` contributes `i + 1` to the push-sum aggregate `load`; until
//!    every node's running average and count (the cluster-size estimate, which no node reads
//!    from its member list) are within 0.1% of the truth;
//! 7. **messages**: node 0 broadcasts, queries every member (each answers at once) and node 1
//!    asks node 0 to write a key of node 0's table (node 0's application accepts); until
//!    every other node got the broadcast, node 0 every answer, node 1 the outcome, and every
//!    node holds the requested key.
//!
//! Then a summary table (stdout, or stderr with `--json`) and, with `--json`, exactly one JSON
//! object on stdout. The exit code is 0 only if every phase completed in time.
//!
//! The default timing is `Config::local()` (one host); `--config`, `--gossip-ms`,
//! `--probe-ms`, `--fanout` and `--suspicion-mult` change it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_lite::StreamExt;
use gossip_tokio::{
    Config, DriverStats, EncryptionMode, Event, Events, Handle, Options, QueryFilter, RequestOutcome,
    SecretKey,
};
use serde_json::json;

use crate::load::{LOAD_KEY, LoadFigures, LoadLog, LoadPlan, LoadSeen, run_load};

#[path = "cluster/load.rs"]
mod load;

/// Run a gossip cluster on 127.0.0.1 through membership, key spread, idle traffic, a crash
/// and a restart, and report how long each took.
#[derive(Debug, Parser)]
struct Args {
    /// Number of nodes (at least 2).
    #[arg(long, default_value_t = 16)]
    nodes: usize,
    /// Timing preset the other flags adjust.
    #[arg(long, value_enum, default_value_t = Preset::Local)]
    config: Preset,
    /// Anti-entropy interval, in milliseconds.
    #[arg(long)]
    gossip_ms: Option<u64>,
    /// SWIM probe interval, in milliseconds (the probe timeout is capped at half of it).
    #[arg(long)]
    probe_ms: Option<u64>,
    /// Peers contacted per anti-entropy round.
    #[arg(long)]
    fanout: Option<usize>,
    /// How long news waits before a node forwards it, in milliseconds, or "off" (news then
    /// waits for the next gossip round) [default: the preset's, 20].
    #[arg(long, value_parser = parse_forward_ms)]
    forward_ms: Option<ForwardDelay>,
    /// SWIM's suspicion multiplier: a suspect is declared dead after at least
    /// `mult x log10(n) x probe interval`.
    #[arg(long)]
    suspicion_mult: Option<u32>,
    /// Quiet time between the key phase and the idle window, in seconds: the membership and
    /// key news of the first phases finishes spreading (piggybacked claims, fresh digests),
    /// and the anti-entropy interval backs off, so the window measures steady-state idle cost.
    #[arg(long, default_value_t = 10)]
    settle_secs: u64,
    /// Length of the idle-traffic window, in seconds.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// Steady load: each node updates its `load` key this often, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    update_ms: u64,
    /// Steady load: the measured window, in seconds (one `--update-ms` of load runs before
    /// it and one after it); 0 skips the phase.
    #[arg(long, default_value_t = 10)]
    load_secs: u64,
    /// Print exactly one JSON object on stdout (the summary table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Seal every datagram (AES-256-GCM, `EncryptionMode::Require`) under one key shared by
    /// all nodes, to measure what encryption costs.
    #[arg(long)]
    encrypt: bool,
}

/// `--forward-ms`: a delay, or `None` for "off".
#[derive(Debug, Clone, Copy)]
struct ForwardDelay(Option<Duration>);

fn parse_forward_ms(text: &str) -> Result<ForwardDelay, String> {
    match text {
        "off" => Ok(ForwardDelay(None)),
        ms => ms
            .parse()
            .map(|ms| ForwardDelay(Some(Duration::from_millis(ms))))
            .map_err(|_| format!("expected milliseconds or \"off\", got {ms:?}")),
    }
}

/// The `Config` presets.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// `Config::lan()`.
    Lan,
    /// `Config::wan()`.
    Wan,
    /// `Config::local()`.
    Local,
}

/// The key every node writes.
const KEY: &str = "owner";
/// How often the main task checks progress.
const TICK: Duration = Duration::from_millis(5);
/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// What the victim looks like to one node (0: nothing noted yet).
const VICTIM_DEAD: u8 = 1;
const VICTIM_REJOINED: u8 = 2;

/// What one node's observer task has seen, read by the main task.
#[derive(Debug, Default)]
struct Watch {
    /// Other members currently alive or suspected.
    live: AtomicUsize,
    /// Other nodes whose `owner` key arrived.
    owners: AtomicUsize,
    /// `VICTIM_*`.
    victim: AtomicU8,
    /// Broadcasts on [`DEMO_TOPIC`] received.
    broadcasts: AtomicUsize,
    /// Answers to this node's query received.
    answers: AtomicUsize,
    /// Whether this node's write request was accepted.
    accepted: AtomicU8,
    /// Whether the requested key of node 0 arrived (or was written, on node 0).
    requested: AtomicU8,
}

/// The topic of the messages phase's broadcast and query.
const DEMO_TOPIC: &str = "demo";
/// The key node 1 asks node 0 to write in the messages phase.
const REQUESTED_KEY: &str = "requested/by";

/// Shared by every observer.
#[derive(Debug)]
struct Shared {
    victim: String,
    /// The generation the victim restarts under (0 until it is chosen).
    new_generation: AtomicU64,
    /// When the victim was killed, and when the first node suspected it after that.
    killed: Mutex<Option<(Instant, Option<Instant>)>>,
    /// How many times a node declared the victim dead before it was killed: false positives
    /// (it was alive, and refuted them). They do not count toward the failure phase.
    failed_before_kill: AtomicUsize,
    /// The same for any member: every member is alive until the victim is killed.
    false_deaths: AtomicUsize,
    /// The load phase's updates.
    load: Arc<LoadLog>,
}

/// Follows one node's events and keeps its [`Watch`] current; as the node's application, it
/// answers queries and accepts write requests for keys under `requested/`.
async fn observe(handle: Handle, mut events: Events, watch: Arc<Watch>, shared: Arc<Shared>) {
    let mut live = HashSet::new();
    let mut owners = HashSet::new();
    let mut load = LoadSeen::default();
    while let Some(event) = events.next().await {
        let new_generation = shared.new_generation.load(Ordering::Acquire);
        let victim = |name: &str| name == shared.victim;
        match event {
            Event::MemberDiscovered { name, generation, .. }
            | Event::MemberRestarted { name, generation, .. } => {
                if victim(&name) && new_generation != 0 && generation >= new_generation {
                    watch.victim.store(VICTIM_REJOINED, Ordering::Release);
                }
                live.insert(name);
            }
            Event::MemberRecovered { name, .. } => {
                live.insert(name);
            }
            Event::MemberSuspected { name, .. } if victim(&name) => {
                if let Some((_, first @ None)) = shared.killed.lock().expect("lock").as_mut() {
                    *first = Some(Instant::now());
                }
            }
            Event::MemberFailed { name, generation } => {
                live.remove(&name);
                // Every member is alive until the victim is killed.
                let false_death = shared.killed.lock().expect("lock").is_none();
                if false_death {
                    shared.false_deaths.fetch_add(1, Ordering::AcqRel);
                }
                if victim(&name) && (new_generation == 0 || generation < new_generation) {
                    if false_death {
                        shared.failed_before_kill.fetch_add(1, Ordering::AcqRel);
                    } else {
                        watch.victim.store(VICTIM_DEAD, Ordering::Release);
                    }
                }
            }
            Event::MemberLeft { name, .. } => {
                live.remove(&name);
            }
            Event::KeysChanged { node, changes } => {
                for change in &changes {
                    match (change.key(), change.value()) {
                        (KEY, Some(_)) => {
                            owners.insert(node.as_str().to_owned());
                        }
                        (LOAD_KEY, Some(value)) => load.arrived(&node, value, &shared.load),
                        (REQUESTED_KEY, Some(_)) => watch.requested.store(1, Ordering::Release),
                        _ => {}
                    }
                }
            }
            Event::Broadcast { topic, .. } if topic == DEMO_TOPIC => {
                watch.broadcasts.fetch_add(1, Ordering::AcqRel);
            }
            Event::Query { query, .. } => {
                // Answered at once; a failure (its time passed) leaves the answer out.
                let _ = handle.respond(query, handle.name().to_owned()).await;
            }
            Event::QueryResponse { .. } => {
                watch.answers.fetch_add(1, Ordering::AcqRel);
            }
            Event::WriteRequested { request, key, .. } => {
                if key.starts_with("requested/") {
                    if handle.accept_write(request).await.is_ok() {
                        watch.requested.store(1, Ordering::Release);
                    }
                } else {
                    let _ = handle.refuse_write(request, "only keys under requested/").await;
                }
            }
            Event::WriteAnswered { outcome: RequestOutcome::Accepted { .. }, .. } => {
                watch.accepted.store(1, Ordering::Release);
            }
            _ => {}
        }
        watch.live.store(live.len(), Ordering::Release);
        watch.owners.store(owners.len(), Ordering::Release);
    }
}

/// One running node.
struct Member {
    handle: Handle,
    watch: Arc<Watch>,
}

fn name(index: usize) -> String {
    format!("node-{index:03}")
}

fn config(args: &Args) -> Config {
    // The preset's own cluster name: every datagram carries it, so a longer one costs bytes.
    let mut config = match args.config {
        Preset::Lan => Config::lan(),
        Preset::Wan => Config::wan(),
        Preset::Local => Config::local(),
    };
    if let Some(ms) = args.gossip_ms {
        config.gossip_interval = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = args.probe_ms {
        config.swim.probe_interval = Duration::from_millis(ms.max(2));
        config.swim.probe_timeout = config.swim.probe_timeout.min(config.swim.probe_interval / 2);
    }
    if let Some(fanout) = args.fanout {
        config.fanout = fanout;
    }
    if let Some(ForwardDelay(delay)) = args.forward_ms {
        config.rumor_forward_delay = delay;
    }
    if let Some(mult) = args.suspicion_mult {
        config.swim.suspicion_mult = mult;
    }
    if args.encrypt {
        config.encryption = EncryptionMode::Require;
    }
    config
}

async fn start(
    index: usize,
    config: &Config,
    bind: SocketAddr,
    options: Options,
    shared: &Arc<Shared>,
) -> Result<Member, String> {
    let (handle, events) = gossip_tokio::start_with(config.clone(), name(index), bind, options)
        .await
        .map_err(|error| format!("{} could not start: {error}", name(index)))?;
    let watch = Arc::new(Watch::default());
    tokio::spawn(observe(handle.clone(), events, watch.clone(), shared.clone()));
    Ok(Member { handle, watch })
}

/// Waits until `done` holds, printing `progress` now and then; `Err` after `limit`.
async fn phase(
    label: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    progress: impl Fn() -> String,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut printed = start;
    eprintln!("[{label}] started (limit {:.0} s)", limit.as_secs_f64());
    loop {
        if done() {
            let took = start.elapsed();
            eprintln!("[{label}] done in {:.0} ms: {}", ms(took), progress());
            return Ok(took);
        }
        if start.elapsed() >= limit {
            return Err(format!(
                "{label} did not complete within {:.0} s: {}",
                limit.as_secs_f64(),
                progress()
            ));
        }
        if printed.elapsed() >= PROGRESS_EVERY {
            printed = Instant::now();
            eprintln!("[{label}] {:>6.1} s: {}", start.elapsed().as_secs_f64(), progress());
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Runs `command` on every member's handle, each as its own task, and waits for them all;
/// their results in the members' order (`None` for a task that panicked). One after the
/// other, each call would wait for the runtime's pass over a thousand busy tasks.
async fn at_once<T, F, Fut>(members: &[Member], command: F) -> Vec<Option<T>>
where
    F: Fn(Handle) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = members.iter().map(|member| tokio::spawn(command(member.handle.clone()))).collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.ok());
    }
    results
}

/// Runs every command as its own task, so that none waits for another; the first error wins.
async fn concurrently<F>(commands: impl Iterator<Item = F>) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), gossip_tokio::Error>> + Send + 'static,
{
    let tasks: Vec<_> = commands.map(tokio::spawn).collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e4).round() / 10.0
}

async fn traffic(members: &[Member]) -> DriverStats {
    counters(members).await.0
}

/// The core counters the idle breakdown shows: gossip rounds, probes, rumor pushes, exchanges
/// found in sync and out of sync, probes that failed and refutations (a quiet cluster has
/// next to none of the last two).
const CORE_COUNTERS: [&str; 7] = [
    "gossip rounds",
    "probes",
    "rumor pushes",
    "syns in sync",
    "syns out of sync",
    "failed probes",
    "refutations",
];

/// The driver's traffic and the [`CORE_COUNTERS`], summed over `members`.
async fn counters(members: &[Member]) -> (DriverStats, [u64; CORE_COUNTERS.len()]) {
    let (mut total, mut core) = (DriverStats::default(), [0; CORE_COUNTERS.len()]);
    // Every node at once: asked one after the other, 1,000 busy nodes took a minute, and the
    // snapshots of the first and last nodes were that far apart.
    for read in at_once(members, |handle| async move { handle.metrics().await }).await {
        if let Some(Ok(metrics)) = read {
            add(&mut total, &metrics.driver);
            let m = &metrics.core;
            let values = [
                m.gossip_rounds,
                m.probes_sent,
                m.rumor_pushes,
                m.exchanges_in_sync,
                m.exchanges_out_of_sync,
                m.probes_failed,
                m.refutations,
            ];
            for (sum, value) in core.iter_mut().zip(values) {
                *sum += value;
            }
        }
    }
    (total, core)
}

fn add(total: &mut DriverStats, stats: &DriverStats) {
    total.datagrams_sent += stats.datagrams_sent;
    total.bytes_sent += stats.bytes_sent;
    total.max_datagram_sent = total.max_datagram_sent.max(stats.max_datagram_sent);
    total.send_errors += stats.send_errors;
    total.events_dropped += stats.events_dropped;
}

/// The figures of one run; `None` for a phase that did not complete.
#[derive(Debug, Default)]
struct Report {
    nodes: usize,
    gossip_ms: f64,
    membership: Option<Duration>,
    keys: Option<Duration>,
    idle_bytes: Option<f64>,
    idle_datagrams: Option<f64>,
    load: Option<LoadFigures>,
    first_suspect: Option<Duration>,
    /// Times a node declared the victim dead while it was still alive (false positives).
    victim_failed_before_kill: usize,
    /// Times a node declared any member dead before the kill (all were alive).
    false_deaths: usize,
    failure: Option<Duration>,
    rejoin: Option<Duration>,
    aggregate: Option<Duration>,
    /// The messages phase: broadcast, query and write request all done.
    messages: Option<Duration>,
    aggregate_interval_ms: f64,
    /// The mean of the nodes' count estimates when the aggregate phase ended.
    size_estimate: Option<f64>,
    traffic: DriverStats,
    /// Whether every datagram was sealed.
    encrypted: bool,
}

impl Report {
    fn rounds(&self) -> Option<f64> {
        self.keys.map(|keys| (ms(keys) / self.gossip_ms * 100.0).round() / 100.0)
    }

    fn json(&self) -> serde_json::Value {
        let round = |value: Option<f64>| value.map(|v| (v * 10.0).round() / 10.0);
        json!({
            "nodes": self.nodes,
            "encrypted": self.encrypted,
            "membership_converged_ms": self.membership.map(ms),
            "keys_converged_ms": self.keys.map(ms),
            "keys_converged_rounds": self.rounds(),
            "idle_bytes_per_node_per_sec": round(self.idle_bytes),
            "idle_datagrams_per_node_per_sec": self.idle_datagrams.map(|v| (v * 100.0).round() / 100.0),
            "load_updates": self.load.as_ref().map(|l| l.times.len()),
            "load_incomplete": self.load.as_ref().map(|l| l.incomplete),
            "load_p50_ms": self.load.as_ref().and_then(|l| l.quantile(0.5)).map(ms),
            "load_p99_ms": self.load.as_ref().and_then(|l| l.quantile(0.99)).map(ms),
            "load_p99_rounds": self.load.as_ref().and_then(|l| l.quantile(0.99)).map(|d| (ms(d) / self.gossip_ms * 100.0).round() / 100.0),
            "load_bytes_per_node_per_sec": round(self.load.as_ref().map(|l| l.bytes)),
            "load_datagrams_per_node_per_sec": self.load.as_ref().map(|l| (l.datagrams * 100.0).round() / 100.0),
            "first_suspect_ms": self.first_suspect.map(ms),
            "victim_failed_before_kill": self.victim_failed_before_kill,
            "false_deaths_before_kill": self.false_deaths,
            "failure_detected_ms": self.failure.map(ms),
            "rejoined_ms": self.rejoin.map(ms),
            "aggregate_converged_ms": self.aggregate.map(ms),
            "aggregate_converged_rounds": self.aggregate.map(|d| (ms(d) / self.aggregate_interval_ms * 100.0).round() / 100.0),
            "cluster_size_estimate": self.size_estimate.map(|v| (v * 1000.0).round() / 1000.0),
            "messages_done_ms": self.messages.map(ms),
            "datagrams_sent": self.traffic.datagrams_sent,
            "bytes_sent": self.traffic.bytes_sent,
            "max_datagram_bytes": self.traffic.max_datagram_sent,
            "events_dropped": self.traffic.events_dropped,
        })
    }

    fn table(&self) -> String {
        let time = |value: Option<Duration>| value.map_or("-".to_owned(), |d| format!("{:.0} ms", ms(d)));
        let rows = [
            ("nodes", self.nodes.to_string()),
            ("membership converged", time(self.membership)),
            (
                "keys converged",
                match (self.keys, self.rounds()) {
                    (Some(keys), Some(rounds)) => format!("{:.0} ms = {rounds} gossip rounds", ms(keys)),
                    _ => "-".to_owned(),
                },
            ),
            ("idle bytes / node / s", self.idle_bytes.map_or("-".to_owned(), |v| format!("{v:.1}"))),
            ("idle datagrams / node / s", self.idle_datagrams.map_or("-".to_owned(), |v| format!("{v:.2}"))),
            (
                "load: update spread p99",
                self.load.as_ref().and_then(|l| l.quantile(0.99)).map_or("-".to_owned(), |d| {
                    format!("{:.0} ms = {:.2} gossip rounds", ms(d), ms(d) / self.gossip_ms)
                }),
            ),
            (
                "load bytes / node / s",
                self.load.as_ref().map_or("-".to_owned(), |l| format!("{:.1}", l.bytes)),
            ),
            (
                "false deaths before kill",
                format!("{} ({} of the victim)", self.false_deaths, self.victim_failed_before_kill),
            ),
            ("first suspicion", time(self.first_suspect)),
            ("failure detected (all)", time(self.failure)),
            ("rejoined", time(self.rejoin)),
            ("aggregate within 0.1%", time(self.aggregate)),
            ("cluster size estimate", self.size_estimate.map_or("-".to_owned(), |v| format!("{v:.3}"))),
            ("messages done", time(self.messages)),
            ("datagrams sent", self.traffic.datagrams_sent.to_string()),
            ("bytes sent", self.traffic.bytes_sent.to_string()),
            ("largest datagram", format!("{} bytes", self.traffic.max_datagram_sent)),
            ("send errors", self.traffic.send_errors.to_string()),
            ("events dropped (a full event stream)", self.traffic.events_dropped.to_string()),
        ];
        let mut table = String::from(
            "figure                     | value\n---------------------------+------------------------\n",
        );
        for (figure, value) in rows {
            table.push_str(&format!("{figure:<26} | {value}\n"));
        }
        table
    }
}

/// Runs every phase, filling `report`; `Err` with the reason at the first phase that fails.
async fn run(args: &Args, report: &mut Report, members: &mut Vec<Member>) -> Result<(), String> {
    let n = args.nodes;
    let config = config(args);
    report.gossip_ms = config.gossip_interval.as_secs_f64() * 1e3;
    let scale = Duration::from_millis(40) * n as u32;
    let mut options = Options::default().with_event_capacity(4_096.max(8 * n));
    if args.encrypt {
        // A fixed key: this is a measurement on loopback, not a deployment.
        let key = SecretKey::from_bytes(&[0x5a; 32]).map_err(|e| e.to_string())?;
        options = options.with_key(key);
    }
    let shared = Arc::new(Shared {
        victim: name(n - 1),
        new_generation: AtomicU64::new(0),
        killed: Mutex::new(None),
        failed_before_kill: AtomicUsize::new(0),
        false_deaths: AtomicUsize::new(0),
        load: Arc::default(),
    });
    let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
    eprintln!(
        "{n} nodes on 127.0.0.1: gossip every {:?} to {} peers, probe every {:?} (timeout {:?}), \
         suspicion multiplier {}, news forwarded after {:?}",
        config.gossip_interval,
        config.fanout,
        config.swim.probe_interval,
        config.swim.probe_timeout,
        config.swim.suspicion_mult,
        config.rumor_forward_delay
    );
    for index in 0..n {
        members.push(start(index, &config, localhost, options.clone(), &shared).await?);
    }
    let seed = members[0].handle.local_addr();

    // 1. Membership: every join at once, timed from just before they are issued.
    let joins = Instant::now();
    concurrently(members[1..].iter().map(|m| {
        let handle = m.handle.clone();
        async move { handle.join([seed]).await }
    }))
    .await?;
    let complete =
        |members: &[Member], f: &dyn Fn(&Watch) -> bool| members.iter().filter(|m| f(&m.watch)).count();
    let all_live = |w: &Watch| w.live.load(Ordering::Acquire) >= n - 1;
    phase(
        "membership",
        Duration::from_secs(10) + scale,
        || complete(members, &all_live) == n,
        || format!("{}/{n} nodes see all {} others", complete(members, &all_live), n - 1),
    )
    .await?;
    report.membership = Some(joins.elapsed());
    eprintln!("[membership] false deaths so far: {}", shared.false_deaths.load(Ordering::Acquire));

    // 2. Keys: every write at once, timed from just before they are issued.
    let all_keys = |w: &Watch| w.owners.load(Ordering::Acquire) >= n - 1;
    let writes = Instant::now();
    concurrently(members.iter().map(|m| {
        let handle = m.handle.clone();
        async move { handle.set(KEY, handle.name().to_owned()).await.map(drop) }
    }))
    .await?;
    phase(
        "keys",
        Duration::from_secs(10) + scale,
        || complete(members, &all_keys) == n,
        || format!("{}/{n} nodes hold all {} keys", complete(members, &all_keys), n - 1),
    )
    .await?;
    report.keys = Some(writes.elapsed());
    eprintln!("[keys] false deaths so far: {}", shared.false_deaths.load(Ordering::Acquire));

    // 3. Idle traffic.
    eprintln!("[idle] settling {} s, then measuring {} s without writes", args.settle_secs, args.idle_secs);
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let (before, core_before) = counters(members).await;
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let (after, core_after) = counters(members).await;
    let per_node_second = |v: u64| v as f64 / n as f64 / window.elapsed().as_secs_f64();
    report.idle_bytes = Some(per_node_second(after.bytes_sent - before.bytes_sent));
    report.idle_datagrams = Some(per_node_second(after.datagrams_sent - before.datagrams_sent));
    let breakdown: Vec<String> = CORE_COUNTERS
        .iter()
        .zip(core_after.iter().zip(core_before))
        .map(|(label, (after, before))| format!("{:.2} {label}", per_node_second(after - before)))
        .collect();
    eprintln!(
        "[idle] {:.1} bytes and {:.2} datagrams per node per second ({})",
        report.idle_bytes.unwrap_or_default(),
        report.idle_datagrams.unwrap_or_default(),
        breakdown.join(", ")
    );

    // 3b. Steady load.
    if args.load_secs > 0 {
        let plan = LoadPlan {
            period: Duration::from_millis(args.update_ms),
            measure: Duration::from_secs(args.load_secs),
        };
        eprintln!(
            "[load] every node updates `{LOAD_KEY}` every {} ms; measuring {} s after {} ms of load",
            args.update_ms, args.load_secs, args.update_ms
        );
        let handles = members.iter().map(|m| m.handle.clone()).collect();
        let sent = || async {
            let total = traffic(members).await;
            (total.bytes_sent, total.datagrams_sent)
        };
        let figures = run_load(handles, plan, &shared.load, sent).await?;
        eprintln!(
            "[load] {} updates: p50 {:.0} ms, p99 {:.0} ms, {} incomplete; {:.1} bytes and {:.2} datagrams per node per second",
            figures.times.len(),
            figures.quantile(0.5).map_or(f64::NAN, ms),
            figures.quantile(0.99).map_or(f64::NAN, ms),
            figures.incomplete,
            figures.bytes,
            figures.datagrams
        );
        let incomplete = figures.incomplete;
        report.load = Some(figures);
        if incomplete > 0 {
            return Err(format!("load: {incomplete} updates did not reach every node within one period"));
        }
    }

    // 4. Failure.
    let victim = members.pop().expect("at least two nodes");
    let (victim_address, old_generation) = (victim.handle.local_addr(), victim.handle.generation());
    if let Ok(metrics) = victim.handle.metrics().await {
        add(&mut report.traffic, &metrics.driver);
    }
    let survivors = n - 1;
    let swim = &config.swim;
    let log_n = (n as f64).log10().max(1.0);
    let suspicion_max = swim
        .probe_interval
        .mul_f64(f64::from(swim.suspicion_mult) * log_n * f64::from(swim.suspicion_max_timeout_mult));
    let killed = Instant::now();
    *shared.killed.lock().expect("lock") = Some((killed, None));
    victim.handle.shutdown().await;
    report.victim_failed_before_kill = shared.failed_before_kill.load(Ordering::Acquire);
    report.false_deaths = shared.false_deaths.load(Ordering::Acquire);
    eprintln!(
        "[failure] killed {} (no leave); before that, every member alive, nodes declared one dead {} times \
         ({} of them this one): not counted here",
        victim.handle.name(),
        report.false_deaths,
        report.victim_failed_before_kill
    );
    let dead = |w: &Watch| w.victim.load(Ordering::Acquire) == VICTIM_DEAD;
    report.failure = Some(
        phase(
            "failure",
            suspicion_max + swim.probe_interval * 10 + Duration::from_secs(10),
            || complete(members, &dead) == survivors,
            || {
                let first = shared.killed.lock().expect("lock").and_then(|(_, first)| first);
                format!(
                    "{}/{survivors} survivors declared it dead; first suspicion {}",
                    complete(members, &dead),
                    first.map_or("not yet".to_owned(), |f| format!("after {:.0} ms", ms(f - killed)))
                )
            },
        )
        .await?,
    );
    report.first_suspect =
        shared.killed.lock().expect("lock").and_then(|(killed, first)| first.map(|first| first - killed));

    // 5. Rejoin.
    let new_generation = gossip_tokio::generation_from_clock().max(old_generation + 1);
    shared.new_generation.store(new_generation, Ordering::Release);
    let restarted =
        start(n - 1, &config, victim_address, options.with_generation(new_generation), &shared).await?;
    restarted.handle.join([seed]).await.map_err(|e| e.to_string())?;
    eprintln!(
        "[rejoin] restarted {} on {victim_address} under generation {new_generation}",
        restarted.handle.name()
    );
    members.push(restarted);
    let rejoined = |w: &Watch| w.victim.load(Ordering::Acquire) == VICTIM_REJOINED;
    report.rejoin = Some(
        phase(
            "rejoin",
            Duration::from_secs(10) + scale,
            || complete(&members[..survivors], &rejoined) == survivors && all_live(&members[survivors].watch),
            || {
                format!(
                    "{}/{survivors} survivors see the new generation; it sees {}/{survivors}",
                    complete(&members[..survivors], &rejoined),
                    members[survivors].watch.live.load(Ordering::Acquire)
                )
            },
        )
        .await?,
    );

    // 6. Aggregate: every contribution at once, timed from just before they are issued.
    report.aggregate_interval_ms = config.aggregation.interval.as_secs_f64() * 1e3;
    let started = Instant::now();
    concurrently(members.iter().enumerate().map(|(index, m)| {
        let handle = m.handle.clone();
        async move { handle.aggregate_set("load", index as f64 + 1.0).await }
    }))
    .await?;
    let close = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new(Mutex::new(Vec::new()));
    let poller = tokio::spawn(poll_aggregates(
        members.iter().map(|m| m.handle.clone()).collect(),
        close.clone(),
        counts.clone(),
    ));
    let outcome = phase(
        "aggregate",
        Duration::from_secs(20) + scale,
        || close.load(Ordering::Acquire) == n,
        || {
            format!(
                "{}/{n} nodes within 0.1% of the average {} and the count {n}",
                close.load(Ordering::Acquire),
                (n as f64 + 1.0) / 2.0
            )
        },
    )
    .await;
    poller.abort();
    let counts = counts.lock().expect("lock").clone();
    report.size_estimate = (!counts.is_empty()).then(|| counts.iter().sum::<f64>() / counts.len() as f64);
    if outcome.is_err() {
        explain_aggregate(members).await;
    }
    outcome?;
    report.aggregate = Some(started.elapsed());

    // 7. Messages: a broadcast, a query of every member, a write request, all at once.
    let started = Instant::now();
    let (first, second) = (members[0].handle.clone(), members[1].handle.clone());
    first.broadcast(DEMO_TOPIC, "hello").await.map_err(|e| e.to_string())?;
    first
        .query(DEMO_TOPIC, "who is there?", QueryFilter::All, Duration::from_secs(20) + scale)
        .await
        .map_err(|e| e.to_string())?;
    second
        .request_write(first.name(), REQUESTED_KEY, second.name().to_owned())
        .await
        .map_err(|e| e.to_string())?;
    let got = |members: &[Member], f: &dyn Fn(&Watch) -> bool| members.iter().filter(|m| f(&m.watch)).count();
    let broadcast = |w: &Watch| w.broadcasts.load(Ordering::Acquire) >= 1;
    let requested = |w: &Watch| w.requested.load(Ordering::Acquire) == 1;
    let answers = || members[0].watch.answers.load(Ordering::Acquire);
    let accepted = || members[1].watch.accepted.load(Ordering::Acquire) == 1;
    let outcome = phase(
        "messages",
        Duration::from_secs(20) + scale,
        || {
            got(&members[1..], &broadcast) == n - 1
                && answers() == n - 1
                && accepted()
                && got(members, &requested) == n
        },
        || {
            format!(
                "{}/{} got the broadcast, {}/{} answers, request {}, {}/{n} hold the requested key",
                got(&members[1..], &broadcast),
                n - 1,
                answers(),
                n - 1,
                if accepted() { "accepted" } else { "waiting" },
                got(members, &requested)
            )
        },
    )
    .await;
    if outcome.is_err() {
        explain_missed_broadcast(members).await;
    }
    outcome?;
    report.messages = Some(started.elapsed());
    Ok(())
}

/// After a messages phase that did not complete: for each member (but the origin) whose
/// observer saw no broadcast, whether its node delivered one (the event was then lost on the
/// way to the observer) and what its driver counted.
async fn explain_missed_broadcast(members: &[Member]) {
    let drops = socket_drops();
    let mut all: Vec<u64> = drops.values().copied().collect();
    all.sort_unstable();
    eprintln!(
        "[messages] kernel drops per socket: median {:?}, max {:?}",
        all.get(all.len() / 2),
        all.last()
    );
    for (index, member) in members.iter().enumerate().skip(1) {
        if member.watch.broadcasts.load(Ordering::Acquire) >= 1 {
            continue;
        }
        let Ok(metrics) = member.handle.metrics().await else { continue };
        let name = member.handle.name();
        let drops =
            drops.get(&member.handle.local_addr().port()).map_or("unknown".to_owned(), u64::to_string);
        let seen_by_origin = members[0].handle.members().await.ok().and_then(|all| {
            all.into_iter()
                .find(|m| m.name == name)
                .map(|m| format!("{:?} at incarnation {}", m.state, m.incarnation))
        });
        eprintln!(
            "[messages] {name} (index {index}, generation {}) saw no broadcast: its node delivered {}, \
             {} duplicates; {} datagrams received, {} events dropped, {} transmits dropped, \
             {} receive errors, {drops} dropped by the kernel (its socket's buffer was full); it sees \
             {} others live; the origin holds it {}",
            member.handle.generation(),
            metrics.core.broadcasts_delivered,
            metrics.core.broadcasts_duplicate,
            metrics.driver.datagrams_received,
            metrics.driver.events_dropped,
            metrics.driver.transmits_dropped,
            metrics.driver.recv_errors,
            member.watch.live.load(Ordering::Acquire),
            seen_by_origin.as_deref().unwrap_or("not at all"),
        );
    }
}

/// The datagrams the kernel dropped, per local port on 127.0.0.1, because the socket's
/// receive buffer was full (the last column of Linux's `/proc/net/udp`; empty elsewhere).
fn socket_drops() -> HashMap<u16, u64> {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let parse = |line: &str| {
        let mut fields = line.split_whitespace();
        let port = fields.nth(1)?.strip_prefix("0100007F:")?;
        Some((u16::from_str_radix(port, 16).ok()?, fields.last()?.parse().ok()?))
    };
    table.lines().skip(1).filter_map(parse).collect()
}

/// After an aggregate phase that did not complete: the spread of the nodes' running
/// estimates, and the nodes that do not see node 0 (the smallest name, which alone brings the
/// count's weight) as live, with what they hold of it.
async fn explain_aggregate(members: &[Member]) {
    let first = members[0].handle.name().to_owned();
    let (mut epochs, mut counts, mut averages, mut blind) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for member in members {
        if let Ok(Some(estimate)) = member.handle.aggregate_running("load").await {
            epochs.push(estimate.epoch);
            counts.extend(estimate.count);
            averages.extend(estimate.average);
        }
        if let Ok(all) = member.handle.members().await {
            let view = all.iter().find(|m| m.name == first);
            if !view.is_some_and(|m| m.state.is_live()) {
                blind.push(format!(
                    "{} holds {first} {}",
                    member.handle.name(),
                    view.map_or("not at all".to_owned(), |m| format!(
                        "{:?} at incarnation {}",
                        m.state, m.incarnation
                    ))
                ));
            }
        }
    }
    let spread = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values.get(((values.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(f64::NAN);
        format!("min {:.2}, median {:.2}, max {:.2}", at(0.0), at(0.5), at(1.0))
    };
    epochs.sort_unstable();
    eprintln!(
        "[aggregate] epochs {:?} to {:?}; counts {}; averages {}; {} nodes do not see {first} live: {:?}",
        epochs.first(),
        epochs.last(),
        spread(&mut counts),
        spread(&mut averages),
        blind.len(),
        blind.iter().take(5).collect::<Vec<_>>()
    );
}

/// Every 20 ms, counts the nodes whose running average of `load` and count are within 0.1% of
/// the truth (contributions 1..=n), and keeps their count estimates.
async fn poll_aggregates(handles: Vec<Handle>, close: Arc<AtomicUsize>, counts: Arc<Mutex<Vec<f64>>>) {
    let n = handles.len() as f64;
    let within = |value: Option<f64>, truth: f64| value.is_some_and(|v| (v - truth).abs() <= 1e-3 * truth);
    loop {
        let mut done = 0;
        let mut seen = Vec::with_capacity(handles.len());
        for handle in &handles {
            if let Ok(Some(estimate)) = handle.aggregate_running("load").await {
                seen.extend(estimate.count);
                done += usize::from(within(estimate.average, (n + 1.0) / 2.0) && within(estimate.count, n));
            }
        }
        *counts.lock().expect("lock") = seen;
        close.store(done, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.nodes < 2 {
        eprintln!("error: --nodes must be at least 2");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start tokio: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report { nodes: args.nodes, encrypted: args.encrypt, ..Report::default() };
    let outcome = runtime.block_on(async {
        let mut members = Vec::new();
        let outcome = run(&args, &mut report, &mut members).await;
        let total = traffic(&members).await;
        add(&mut report.traffic, &total);
        at_once(&members, |handle| async move { handle.shutdown().await }).await;
        outcome
    });
    if args.json {
        eprint!("{}", report.table());
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("error: {reason}");
            ExitCode::FAILURE
        }
    }
}
