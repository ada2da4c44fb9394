//! A small cluster on real UDP sockets: `N` nodes on `127.0.0.1`, one thread each, driven
//! by the sans-IO core over a blocking `std::net::UdpSocket`.
//!
//! Nodes 1..N join node 0; every node writes `owner = node-i`. The main thread watches
//! until every node holds every node's `owner` key, prints progress to stderr and a summary
//! to stdout, stops the threads and exits 0; it exits 1 if the cluster has not converged
//! within the timeout.
//!
//! ```text
//! cargo run --release -p gossip-core --example udp_cluster -- --nodes 5 --timeout-secs 20
//! ```
//!
//! Each thread follows the drain rule: after every input, drain `poll()` until `None`, then
//! wait for a datagram until `poll_timeout()`; when that deadline has passed, first handle
//! the datagrams already queued on the socket, then fire `handle_timeout`.

// The example is the I/O shell: it owns the clock, which the core never reads.
#![allow(clippy::disallowed_methods)]

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gossip_core::{Config, DigestSummary, Identity, Metrics, Node, Output};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// What `--help` prints.
const USAGE: &str = "Run a gossip cluster over UDP on localhost until every node knows every node's key.

Usage: udp_cluster [--nodes N] [--timeout-secs S]

Options:
  --nodes <N>           Number of nodes (at least 1) [default: 5]
  --timeout-secs <S>    Give up (exit code 1) if the cluster has not converged after this many seconds [default: 20]
  -h, --help            Print help";

/// The command line (parsed by hand: the core keeps its dev-dependencies small).
#[derive(Debug)]
struct Args {
    /// Number of nodes (at least 1).
    nodes: usize,
    /// Give up (exit code 1) if the cluster has not converged after this many seconds.
    timeout_secs: u64,
}

impl Args {
    /// Reads `--nodes N` and `--timeout-secs S` (also as `--flag=value`); `Ok(None)` for
    /// `--help`.
    fn parse(mut words: impl Iterator<Item = String>) -> Result<Option<Self>, String> {
        let mut args = Self { nodes: 5, timeout_secs: 20 };
        while let Some(word) = words.next() {
            let (flag, inline) = match word.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (word, None),
            };
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            let value = inline.or_else(|| words.next()).ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |value: &str| value.parse::<u64>().map_err(|e| format!("{flag} {value}: {e}"));
            match flag.as_str() {
                "--nodes" => args.nodes = number(&value)? as usize,
                "--timeout-secs" => args.timeout_secs = number(&value)?,
                _ => return Err(format!("unknown argument {flag}")),
            }
        }
        Ok(Some(args))
    }
}

/// The longest a node thread blocks on its socket, so it notices the stop flag quickly.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// What a node thread publishes for the main thread after each step.
#[derive(Debug, Clone, Default)]
struct Status {
    /// How many nodes' `owner` keys this node holds with the expected value.
    owners_seen: usize,
    /// The summary of its digest (equal summaries: in sync).
    summary: DigestSummary,
    /// Events handed to the application.
    events: u64,
    metrics: Metrics,
}

fn name(index: usize) -> String {
    format!("node-{index}")
}

/// Drains every output: sends the datagrams, counts the events.
fn drain(node: &mut Node<ChaCha8Rng>, socket: &UdpSocket, events: &mut u64) {
    while let Some(output) = node.poll() {
        if let Output::Transmit(transmit) = output {
            if let Err(error) = socket.send_to(&transmit.payload, transmit.to) {
                eprintln!("{}: send to {} failed: {error}", node.identity().name, transmit.to);
            }
        } else {
            *events += 1;
        }
    }
}

/// Errors from `recv_from` that say "nothing yet" rather than "broken socket".
fn is_transient(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::WouldBlock
            | ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
    )
}

/// One node's event loop, until `stop` is set.
fn run_node(
    index: usize,
    n: usize,
    socket: UdpSocket,
    seed: SocketAddr,
    status: Arc<Mutex<Status>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let address = socket.local_addr()?;
    let generation = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_secs());
    let identity = Identity::new(name(index), generation, address);
    let rng = ChaCha8Rng::seed_from_u64(generation ^ index as u64);
    let mut node = Node::new(Config::local(), identity, Instant::now(), rng).expect("valid config");
    let mut events = 0;

    if index != 0 {
        node.join([seed]);
    }
    node.set("owner", name(index)).expect("a small value");
    drain(&mut node, &socket, &mut events);

    let expected: Vec<String> = (0..n).map(name).collect();
    let publish = |node: &Node<ChaCha8Rng>, events: u64| {
        let owners_seen = expected
            .iter()
            .filter(|owner| node.get(owner, "owner").is_some_and(|value| value[..] == *owner.as_bytes()))
            .count();
        let mut status = status.lock().expect("status lock");
        status.owners_seen = owners_seen;
        status.summary = node.digest_summary();
        status.events = events;
        status.metrics = node.metrics();
    };
    publish(&node, events);

    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        match node.poll_timeout() {
            deadline if deadline <= now => {
                // Datagrams already waiting go first: a queued answer must not be overtaken
                // by the timer.
                socket.set_nonblocking(true)?;
                loop {
                    match socket.recv_from(&mut buf) {
                        Ok((len, from)) => {
                            node.handle_input(Instant::now(), from, &buf[..len]);
                            drain(&mut node, &socket, &mut events);
                        }
                        Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                        Err(error) if is_transient(&error) => {}
                        Err(error) => return Err(error),
                    }
                }
                socket.set_nonblocking(false)?;
                node.handle_timeout(Instant::now());
                drain(&mut node, &socket, &mut events);
            }
            deadline => {
                let wait = deadline.saturating_duration_since(now).min(MAX_WAIT);
                // A zero read timeout is an error: wait at least a millisecond.
                socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
                match socket.recv_from(&mut buf) {
                    Ok((len, from)) => {
                        node.handle_input(Instant::now(), from, &buf[..len]);
                        drain(&mut node, &socket, &mut events);
                    }
                    Err(error) if is_transient(&error) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        publish(&node, events);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("udp_cluster: {message}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if args.nodes == 0 {
        eprintln!("--nodes must be at least 1");
        return ExitCode::FAILURE;
    }
    let n = args.nodes;
    let timeout = Duration::from_secs(args.timeout_secs);

    let sockets: Vec<UdpSocket> = match (0..n).map(|_| UdpSocket::bind("127.0.0.1:0")).collect() {
        Ok(sockets) => sockets,
        Err(error) => {
            eprintln!("cannot bind a UDP socket on 127.0.0.1: {error}");
            return ExitCode::FAILURE;
        }
    };
    let seed = sockets[0].local_addr().expect("bound socket");
    eprintln!("starting {n} nodes; node-0 listens on {seed}");

    let stop = Arc::new(AtomicBool::new(false));
    let statuses: Vec<Arc<Mutex<Status>>> = (0..n).map(|_| Arc::default()).collect();
    let start = Instant::now();
    let threads: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(index, socket)| {
            let (status, stop) = (Arc::clone(&statuses[index]), Arc::clone(&stop));
            thread::Builder::new()
                .name(name(index))
                .spawn(move || run_node(index, n, socket, seed, status, stop))
                .expect("spawn a node thread")
        })
        .collect();

    // Watch until every node holds every node's key.
    let mut last_progress = None;
    let converged_after = loop {
        let snapshot: Vec<Status> = statuses.iter().map(|s| s.lock().expect("status lock").clone()).collect();
        let seen: usize = snapshot.iter().map(|s| s.owners_seen).sum();
        let complete = snapshot.iter().filter(|s| s.owners_seen == n).count();
        let elapsed = start.elapsed();
        if last_progress != Some(seen) {
            eprintln!(
                "[{:>7.1} ms] {complete}/{n} nodes complete, {seen}/{} keys seen",
                elapsed.as_secs_f64() * 1e3,
                n * n
            );
            last_progress = Some(seen);
        }
        if complete == n {
            break Some(elapsed);
        }
        if elapsed >= timeout || threads.iter().any(|t| t.is_finished()) {
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };

    stop.store(true, Ordering::Relaxed);
    let mut failed_threads = 0;
    for (index, thread) in threads.into_iter().enumerate() {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                eprintln!("{}: socket error: {error}", name(index));
                failed_threads += 1;
            }
            Err(_) => {
                eprintln!("{}: thread panicked", name(index));
                failed_threads += 1;
            }
        }
    }
    let snapshot: Vec<Status> = statuses.iter().map(|s| s.lock().expect("status lock").clone()).collect();

    let Some(took) = converged_after else {
        let seen: usize = snapshot.iter().map(|s| s.owners_seen).sum();
        eprintln!(
            "error: not converged after {:.1} s: {seen} of {} keys seen{}",
            start.elapsed().as_secs_f64(),
            n * n,
            if failed_threads > 0 {
                format!(" ({failed_threads} node thread(s) failed)")
            } else {
                String::new()
            }
        );
        return ExitCode::FAILURE;
    };

    let datagrams: u64 = snapshot.iter().map(|s| s.metrics.datagrams_out).sum();
    let bytes: u64 = snapshot.iter().map(|s| s.metrics.bytes_out).sum();
    let in_sync = snapshot.windows(2).all(|pair| pair[0].summary == pair[1].summary);
    println!("converged: {n} nodes, every node holds all {n} `owner` keys");
    println!("time to converge: {:.1} ms", took.as_secs_f64() * 1e3);
    println!(
        "sent: {datagrams} datagrams, {bytes} bytes in total ({:.1} datagrams, {:.0} bytes per node)",
        datagrams as f64 / n as f64,
        bytes as f64 / n as f64
    );
    println!("digest summaries equal at stop: {in_sync}");
    let mut out: Vec<u64> = snapshot.iter().map(|s| s.metrics.datagrams_out).collect();
    out.sort_unstable();
    println!("datagrams sent per node: min {}, median {}, max {}", out[0], out[n / 2], out[n - 1]);
    // Per-node lines for small clusters only.
    for (index, status) in snapshot.iter().enumerate().take_while(|_| n <= 10) {
        let m = &status.metrics;
        println!(
            "  {}: out {} datagrams / {} bytes, in {} datagrams / {} bytes, {} entries applied, {} events",
            name(index),
            m.datagrams_out,
            m.bytes_out,
            m.datagrams_in,
            m.bytes_in,
            m.entries_applied,
            status.events
        );
    }
    if failed_threads > 0 {
        eprintln!("error: {failed_threads} node thread(s) failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
