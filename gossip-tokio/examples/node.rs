//! One gossip node as a process, for clusters across processes and hosts.
//!
//! ```text
//! cargo run -p gossip-tokio --example node -- --name a --bind 127.0.0.1:7946 --set role=web
//! cargo run -p gossip-tokio --example node -- --name b --bind 127.0.0.1:7947 --join 127.0.0.1:7946
//! ```
//!
//! It prints every event as one line (`--json`: one JSON object per line) until Ctrl-C, then
//! leaves the cluster gracefully and exits.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use futures_lite::StreamExt;
use gossip_tokio::{Config, Event};
use serde_json::json;

/// Run one gossip node until Ctrl-C, printing its events.
#[derive(Debug, Parser)]
struct Args {
    /// This node's name, unique in the cluster.
    #[arg(long)]
    name: String,
    /// The address to listen on (and advertise).
    #[arg(long, default_value = "127.0.0.1:7946")]
    bind: SocketAddr,
    /// Seed addresses to join, comma-separated.
    #[arg(long, value_delimiter = ',')]
    join: Vec<SocketAddr>,
    /// A `key=value` to write in this node's table; repeatable.
    #[arg(long = "set", value_parser = parse_pair)]
    set: Vec<(String, String)>,
    /// Timing preset.
    #[arg(long, value_enum, default_value_t = Preset::Lan)]
    config: Preset,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
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

fn parse_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("expected key=value, got {text:?}"))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// One event as a line of text.
fn text(event: &Event) -> String {
    match event {
        Event::NodeDiscovered { name, generation, address } => {
            format!("discovered {name} (generation {generation}) at {address}")
        }
        Event::NodeRestarted { name, old_generation, generation } => {
            format!("restarted  {name}: generation {old_generation} -> {generation}")
        }
        Event::MemberSuspected { name, incarnation } => {
            format!("suspected  {name} (incarnation {incarnation})")
        }
        Event::MemberRecovered { name, incarnation } => {
            format!("recovered  {name} (incarnation {incarnation})")
        }
        Event::MemberFailed { name, generation } => format!("failed     {name} (generation {generation})"),
        Event::MemberLeft { name, generation } => format!("left       {name} (generation {generation})"),
        Event::AddressChanged { name, old, new } => format!("moved      {name}: {old} -> {new}"),
        Event::Joined { via } => format!("joined     the cluster via {via}"),
        Event::LeaveComplete => "left       the cluster".to_owned(),
        Event::KeyChanged { node, key, value, version } => {
            format!("set        {node}: {key} = {} (version {version})", String::from_utf8_lossy(value))
        }
        Event::KeyDeleted { node, key, version } => format!("deleted    {node}: {key} (version {version})"),
        other => format!("{other:?}"),
    }
}

/// One event as a JSON object.
fn json(event: &Event) -> serde_json::Value {
    match event {
        Event::NodeDiscovered { name, generation, address } => {
            json!({"event": "discovered", "name": name, "generation": generation, "address": address.to_string()})
        }
        Event::NodeRestarted { name, old_generation, generation } => {
            json!({"event": "restarted", "name": name, "old_generation": old_generation, "generation": generation})
        }
        Event::MemberSuspected { name, incarnation } => {
            json!({"event": "suspected", "name": name, "incarnation": incarnation})
        }
        Event::MemberRecovered { name, incarnation } => {
            json!({"event": "recovered", "name": name, "incarnation": incarnation})
        }
        Event::MemberFailed { name, generation } => {
            json!({"event": "failed", "name": name, "generation": generation})
        }
        Event::MemberLeft { name, generation } => {
            json!({"event": "left", "name": name, "generation": generation})
        }
        Event::AddressChanged { name, old, new } => {
            json!({"event": "moved", "name": name, "old": old.to_string(), "new": new.to_string()})
        }
        Event::Joined { via } => json!({"event": "joined", "via": via.to_string()}),
        Event::LeaveComplete => json!({"event": "leave_complete"}),
        Event::KeyChanged { node, key, value, version } => json!({
            "event": "key_changed", "node": node.as_str(), "key": key.as_str(),
            "value": String::from_utf8_lossy(value), "version": version,
        }),
        Event::KeyDeleted { node, key, version } => {
            json!({"event": "key_deleted", "node": node.as_str(), "key": key.as_str(), "version": version})
        }
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt().with_max_level(args.log).with_writer(std::io::stderr).init();
    let config = match args.config {
        Preset::Lan => Config::lan(),
        Preset::Wan => Config::wan(),
        Preset::Local => Config::local(),
    };
    let (node, mut events) = match gossip_tokio::start(config, args.name.clone(), args.bind).await {
        Ok(started) => started,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("{} listening on {} (generation {})", node.name(), node.local_addr(), node.generation());
    for (key, value) in &args.set {
        if let Err(error) = node.set(key.clone(), value.clone()).await {
            eprintln!("error: cannot set {key}: {error}");
            return ExitCode::FAILURE;
        }
    }
    if !args.join.is_empty() && node.join(args.join.iter().copied()).await.is_err() {
        eprintln!("error: the node stopped");
        return ExitCode::FAILURE;
    }

    let print = |event: &Event| {
        if args.json {
            println!("{}", json(event));
        } else {
            println!("{}", text(event));
        }
    };
    let interrupted = loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => print(&event),
                None => break false,
            },
            _ = tokio::signal::ctrl_c() => break true,
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
