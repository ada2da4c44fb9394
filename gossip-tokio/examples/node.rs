//! One gossip node as a process, for clusters across processes and hosts.
//!
//! ```text
//! cargo run -p gossip-tokio --example node -- --name a --bind 127.0.0.1:7946 --set role=web
//! cargo run -p gossip-tokio --example node -- --name b --bind 127.0.0.1:7947 --join 127.0.0.1:7946
//! ```
//!
//! It prints every event as one line, after the time it was printed (`--json`: one JSON
//! object per line, the time as `"time"`), until Ctrl-C or SIGTERM, then leaves the cluster
//! gracefully and exits. When a newer process under the same name makes it give the name up
//! (a `conflict` line), it exits with status 3.
//!
//! While it runs it takes commands on standard input, one per line (`set KEY VALUE`,
//! `delete KEY`, `get NODE KEY`, `entries NODE`, `prefix PREFIX`, `members`, `snapshot`,
//! `metrics`, `keys`, `send NODE TEXT`, `broadcast TOPIC TEXT`, `query TIMEOUT TOPIC TEXT`,
//! `respond QUERY TEXT`, `request NODE KEY VALUE`, `request-delete NODE KEY`, `accept REQUEST`,
//! `refuse REQUEST REASON`, `leave`, `help`), and answers each with one line (see
//! `node/control.rs`). Messages, broadcasts, queries, answers and write requests arrive as
//! event lines; `--accept-writes PREFIX` answers write requests without asking.
//!
//! `--config-file PATH` reads the whole configuration from a TOML file (every field is
//! optional; see `docs/config-example.toml`); a field that cannot work stops the program at
//! start, naming it. `--advertise ADDR` is the address the others send to, when it is not
//! the bound one (behind NAT, or bound to 0.0.0.0).
//!
//! # Encryption
//!
//! `--key-file PATH` seals every datagram with AES-256-GCM under the keys of a file that holds
//! one key per line, each the base64 of 32 random bytes (what `openssl rand -base64 32`
//! prints); blank lines and lines starting with `#` are skipped, and the first key is the
//! primary (the one this node seals with; every key in the file opens datagrams):
//!
//! ```text
//! # /etc/gossip/keys: the same file on every node (chmod 600); an example, make your own
//! 3q2+7wAAbXlrZXlmb3JnZW9zc2lwY2x1c3Rlci4uLi4=
//! ```
//!
//! ```text
//! openssl rand -base64 32 > keys && chmod 600 keys
//! cargo run -p gossip-tokio --example node -- --name a --bind 127.0.0.1:7946 --key-file keys
//! cargo run -p gossip-tokio --example node -- --name b --bind 127.0.0.1:7947 --key-file keys --join 127.0.0.1:7946
//! ```
//!
//! With a key file the node requires sealed datagrams (`--encryption require`, the default
//! then); `--encryption off|accept|send|require` picks another step, to turn encryption on in
//! a running cluster one node at a time (restart every node with `accept`, then every node
//! with `send`, then every node with `require`). Without a key file encryption is off, and
//! asking for any other mode is an error. A key file that is missing or has a bad line stops
//! the program at start, naming the line.
//!
//! ## Rotating the key of a running cluster
//!
//! On SIGHUP the node re-reads its key file and makes its keyring match it (installs every
//! key of the file, makes the first line's key primary, removes the keys no longer in the
//! file), then prints one line with its keys and, for each key, how many live members hold
//! it and seal with it:
//!
//! ```text
//! keyring: 5c1e2a90 (primary) a7f3b0c4; cluster: 5c1e2a90 held by 3/3, primary for 3/3; a7f3b0c4 held by 3/3, primary for 0/3
//! ```
//!
//! A bad file changes nothing (the error is printed and the node keeps its keys). To rotate:
//!
//! 1. **Install**: on every node, add the new key as the *second* line of the key file and
//!    `kill -HUP <pid>`. Wait until the printed line (send SIGHUP again to refresh it) shows
//!    the new key held by every live member (`held by 3/3`).
//! 2. **Use**: on every node, move the new key to the *first* line and send SIGHUP. Wait
//!    until the new key is `primary for 3/3`.
//! 3. **Remove**: on every node, delete the old key's line and send SIGHUP.
//!
//! A node that has not installed the new key cannot open what the others seal with it, so
//! never move to step 2 before step 1 is done everywhere, nor to step 3 before step 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use futures_lite::StreamExt;
use gossip_tokio::{Config, Event, Options};
use serde_json::json;

#[path = "node/control.rs"]
mod control;
#[path = "node/events.rs"]
mod events;
#[path = "node/keys.rs"]
mod keys;
#[path = "node/metrics.rs"]
mod metrics;

/// Run one gossip node until Ctrl-C, printing its events.
#[derive(Debug, Parser)]
struct Args {
    /// This node's name, unique in the cluster.
    #[arg(long)]
    name: String,
    /// The address to listen on (and advertise).
    #[arg(long, default_value = "127.0.0.1:7946")]
    bind: SocketAddr,
    /// Seeds to join, comma-separated: addresses or `host:port` names (resolved at start,
    /// then every minute, so that a seed replaced behind its name is found).
    #[arg(long, value_delimiter = ',')]
    join: Vec<String>,
    /// A `key=value` to write in this node's table; repeatable.
    #[arg(long = "set", value_parser = parse_pair)]
    set: Vec<(String, String)>,
    /// The address other nodes should send to, when it differs from `--bind` (required
    /// when binding 0.0.0.0 or ::).
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// Timing preset (ignored with `--config-file`).
    #[arg(long, value_enum, default_value_t = Preset::Lan)]
    config: Preset,
    /// A TOML file with the whole configuration (see docs/config-example.toml); fields left
    /// out take `Config::lan()`'s values. Checked at start: a bad field stops the program.
    #[arg(long, conflicts_with = "config")]
    config_file: Option<PathBuf>,
    /// The cluster identifier every datagram carries (default: the config file's, or
    /// "default"); datagrams of other clusters are dropped (and reported once per source).
    #[arg(long)]
    cluster: Option<String>,
    /// Accept every write request of other members for a key starting with this prefix
    /// ("" for every key) and refuse the rest, instead of printing each for `accept` or
    /// `refuse` (the default).
    #[arg(long)]
    accept_writes: Option<String>,
    /// A file of keys to seal datagrams with: one per line, the base64 of 32 bytes
    /// (`openssl rand -base64 32`), the first one primary. Re-read on SIGHUP.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// The encryption step: `require` by default with a key file, `off` without.
    #[arg(long, value_enum)]
    encryption: Option<keys::Mode>,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
    /// Serve the node's counters and gauges in the Prometheus text format over HTTP on this
    /// address (for example 127.0.0.1:9100); off by default.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Log level of the library's own messages on stderr (error, warn, info, debug, trace).
    #[arg(long, default_value = "warn")]
    log: tracing::Level,
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

/// The next command line; `None` at the end of input (or a read error). Never ready once
/// stdin has ended.
async fn next_line(
    stdin: &mut Option<tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>>,
) -> Option<String> {
    match stdin {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// Reads and checks a TOML configuration file.
fn load_config(path: &std::path::Path) -> Result<Config, String> {
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let config: Config = toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    config.validate().map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(config)
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("expected key=value, got {text:?}"))?;
    Ok((key.to_owned(), value.to_owned()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt().with_max_level(args.log).with_writer(std::io::stderr).init();
    let mut config = match &args.config_file {
        Some(path) => match load_config(path) {
            Ok(config) => config,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        },
        None => match args.config {
            Preset::Lan => Config::lan(),
            Preset::Wan => Config::wan(),
            Preset::Local => Config::local(),
        },
    };
    if let Some(cluster) = &args.cluster {
        config = config.with_cluster(cluster.clone());
    }
    if let Some(prefix) = &args.accept_writes {
        config.messages.write_policy = gossip_tokio::WritePolicy::AcceptPrefix(prefix.clone());
    }
    config.encryption = match keys::encryption(args.encryption, args.key_file.is_some()) {
        Ok(mode) => mode,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut options = Options::default();
    if let Some(address) = args.advertise {
        options = options.with_advertise(address);
    }
    if let Some(path) = &args.key_file {
        match keys::read(path) {
            Ok(keys) => options = options.with_keys(keys),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut hangups = match Hangups::new(args.key_file.is_some()) {
        Ok(hangups) => hangups,
        Err(error) => {
            eprintln!("error: cannot watch for SIGHUP: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (node, mut events) =
        match gossip_tokio::start_with(config, args.name.clone(), args.bind, options).await {
            Ok(started) => started,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
    eprintln!("{} listening on {} (generation {})", node.name(), node.local_addr(), node.generation());
    if args.key_file.is_some() {
        let keys = node.keys().await.unwrap_or_default();
        let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
        let mode = node.encryption().await.map(|mode| format!("{mode:?}")).unwrap_or_default();
        eprintln!(
            "encryption {mode}, keys {} (the first seals); SIGHUP re-reads the key file",
            keys.join(" ")
        );
    }
    if let Some(address) = args.metrics {
        if let Err(error) = metrics::serve(node.clone(), address).await {
            eprintln!("error: cannot serve metrics on {address}: {error}");
            node.shutdown().await;
            return ExitCode::FAILURE;
        }
        eprintln!("metrics on http://{address}/metrics");
    }
    for (key, value) in &args.set {
        if let Err(error) = node.set(key.clone(), value.clone()).await {
            eprintln!("error: cannot set {key}: {error}");
            return ExitCode::FAILURE;
        }
    }
    if !args.join.is_empty() {
        if let Err(error) = node.join_hosts(args.join.iter().cloned()).await {
            eprintln!("error: {error}");
            node.shutdown().await;
            return ExitCode::FAILURE;
        }
    }

    // Each line starts with the wall-clock time (RFC 3339, UTC, milliseconds); a JSON line
    // carries it as "time".
    let print = |event: &Event| {
        let time = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        if args.json {
            for mut line in events::json(event) {
                line["time"] = json!(time.to_string());
                println!("{line}");
            }
        } else {
            for line in events::text(event) {
                println!("{time} {line}");
            }
        }
    };
    // Installed once, before the loop: a signal that lands while an event is being printed
    // (or stdout is full) waits for the next pass instead of being lost.
    let mut stop = match Stop::install() {
        Ok(stop) => stop,
        Err(error) => {
            eprintln!("error: cannot watch for Ctrl-C and SIGTERM: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdin = Some(tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin())));
    let interrupted = loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => {
                    print(&event);
                    if matches!(event, Event::NameConflict { kept: false, .. }) {
                        eprintln!("error: another process took this node's name; start this one under a unique --name");
                        node.shutdown().await;
                        return ExitCode::from(3);
                    }
                }
                None => break false,
            },
            () = stop.next() => break true,
            line = next_line(&mut stdin) => match line {
                Some(line) => {
                    let (answer, after) = control::run(&node, &line, args.json).await;
                    println!("{answer}");
                    if matches!(after, control::After::Leave) {
                        break true;
                    }
                }
                // End of input: no more commands, the node runs on.
                None => stdin = None,
            },
            () = hangups.next() => {
                let Some(path) = &args.key_file else { continue };
                match keys::reload(&node, path).await {
                    Ok(line) if args.json => println!("{}", json!({"event": "keyring", "status": line})),
                    Ok(line) => println!("{line}"),
                    Err(error) => eprintln!("error: {error}"),
                }
            }
        }
    };
    if !interrupted {
        eprintln!("error: the node stopped unexpectedly");
        return ExitCode::FAILURE;
    }
    eprintln!("leaving...");
    let left = node.leave().await;
    while let Some(event) = events.try_next() {
        print(&event);
    }
    node.shutdown().await;
    match left {
        Ok(()) => {
            eprintln!("left the cluster");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM (what systemd, Docker and Kubernetes send): both leave the
/// cluster gracefully.
struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP, watched only when there is a key file to re-read (otherwise SIGHUP keeps its
/// default action and ends the program).
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    #[cfg(unix)]
    fn new(watch: bool) -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { signal: if watch { Some(signal(SignalKind::hangup())?) } else { None } })
    }

    #[cfg(not(unix))]
    fn new(_watch: bool) -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// The next SIGHUP; never, when not watched.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("gossip-node-config-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_documented_config_file_loads() {
        let path = file("example", include_str!("../../docs/config-example.toml"));
        let config = load_config(&path).unwrap();
        assert_eq!(config.cluster, "payments-prod");
    }

    #[test]
    fn a_bad_config_file_is_refused_naming_the_file_and_the_field() {
        let typo = file("typo", "gossip_intervall = \"1s\"\n");
        let message = load_config(&typo).unwrap_err();
        assert!(
            message.contains(&typo.display().to_string()) && message.contains("gossip_intervall"),
            "{message}"
        );
        let invalid = file("invalid", "[swim]\nprobe_timeout = \"2s\"\n");
        let message = load_config(&invalid).unwrap_err();
        assert!(message.contains("probe_timeout"), "{message}");
        let missing = load_config(std::path::Path::new("/nonexistent/gossip.toml")).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
