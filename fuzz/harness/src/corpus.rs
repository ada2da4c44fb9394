//! The seed corpus: real datagrams captured from a small cluster, written as inputs of each
//! target.
//!
//! [`capture`] runs six real [`Node`]s (`n0` to `n5`, the addresses of the simulator's
//! naming) on a virtual clock through a script (joins, writes, deletes, a leave, a crash,
//! a restart under a new generation, tombstones collected) and records every datagram.
//! [`generate`] turns the captures into seed files:
//!
//! - `decode`: a spread of captured datagrams of every body kind;
//! - `handle_input`: the conversation `n0` had (the datagrams it received, with the time
//!   between them and its timeouts), and single datagrams of each kind after a join;
//! - `ops`: seeded random operation sequences that contain every kind of operation.
//!
//! Generated files are named `gen-*`; other files in the corpus folders (minimized inputs
//! found by the fuzzer, regressions) are left alone. Regenerate with
//! `cargo test -p gossip-fuzz-harness --test corpus -- --ignored generate`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use gossip_core::sim::{BodyKind, body_kind, node_address};
use gossip_core::{Event, Identity, Node, Output, QueryFilter};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::handle_input::{self, InputWriter};
use crate::ops::{ClusterOp, OpsInput};
use crate::runner::{self, Target};

/// Nodes in the capture cluster.
pub const NODES: usize = 6;

/// A datagram sent in the capture cluster.
#[derive(Debug, Clone)]
pub struct Captured {
    /// When, since the start.
    pub at: Duration,
    /// The sender's index.
    pub from: usize,
    /// The receiver's index (`None`: an address outside the cluster, or a crashed node).
    pub to: Option<usize>,
    /// The datagram.
    pub payload: Bytes,
}

/// Runs the capture cluster, every node configured by
/// [`handle_input::config`]`(config_byte)`, and returns every datagram sent, in order.
pub fn capture(config_byte: u8) -> Vec<Captured> {
    let mut config = handle_input::config(config_byte);
    // Captured plain: the sealed mode's inputs seal them as they feed them.
    config.encryption = gossip_core::EncryptionMode::Off;
    // Only differences from this base matter; the run stays deterministic.
    #[allow(clippy::disallowed_methods)]
    let base = Instant::now();
    let start = |index: usize, generation: u64| {
        let identity = Identity::new(format!("n{index}"), generation, node_address(index));
        let seed = (u64::from(config_byte) << 16) | ((index as u64) << 8) | generation;
        Node::new(config.clone(), identity, base, ChaCha8Rng::seed_from_u64(seed))
            .expect("a valid configuration")
    };
    let mut nodes: Vec<Option<Node<ChaCha8Rng>>> = (0..NODES).map(|i| Some(start(i, 1))).collect();
    let mut log = Vec::new();
    let tick = Duration::from_millis(50);
    let end = Duration::from_secs(30);
    let mut at = Duration::ZERO;
    while at <= end {
        let now = base + at;
        script(&mut nodes, at, now, &start);
        for node in nodes.iter_mut().flatten() {
            if node.poll_timeout() <= now {
                node.handle_timeout(now);
            }
        }
        // Deliver until quiet: the cluster's links take no time.
        for _ in 0..64 {
            let mut in_flight = Vec::new();
            for (from, node) in nodes.iter_mut().enumerate() {
                let Some(node) = node else { continue };
                while let Some(output) = node.poll() {
                    match output {
                        Output::Transmit(transmit) => {
                            let to = (0..NODES).find(|i| node_address(*i) == transmit.to);
                            in_flight.push(Captured { at, from, to, payload: transmit.payload });
                        }
                        // The application answers every query and accepts every request.
                        Output::Event(Event::Query { query, .. }) => {
                            let _ = node.respond(&query, &b"here"[..]);
                        }
                        Output::Event(Event::WriteRequested { request, .. }) => {
                            let _ = node.accept_write(&request);
                        }
                        Output::Event(_) => {}
                    }
                }
            }
            if in_flight.is_empty() {
                break;
            }
            for datagram in in_flight {
                if let Some(node) = datagram.to.and_then(|to| nodes[to].as_mut()) {
                    node.handle_input(now, node_address(datagram.from), &datagram.payload);
                }
                log.push(datagram);
            }
        }
        at += tick;
    }
    log
}

/// What happens to the capture cluster at `at`.
fn script(
    nodes: &mut [Option<Node<ChaCha8Rng>>],
    at: Duration,
    now: Instant,
    start: &impl Fn(usize, u64) -> Node<ChaCha8Rng>,
) {
    let ms = at.as_millis();
    fn node(nodes: &mut [Option<Node<ChaCha8Rng>>], i: usize) -> &mut Node<ChaCha8Rng> {
        nodes[i].as_mut().expect("up")
    }
    match ms {
        0 => {
            for i in 1..NODES {
                node(nodes, i).join([node_address(0)]);
            }
        }
        1_000 => {
            for i in 0..4 {
                let key = format!("k{i}");
                node(nodes, 1).set(key.clone(), format!("one-{i}")).expect("small");
                node(nodes, 2).set(key, vec![b'2'; 40 * i]).expect("small");
            }
            node(nodes, 3).set("big", vec![b'3'; 700]).expect("fits");
            for i in 0..4 {
                node(nodes, i).aggregate_set("a0", i as f64 * 1.5).expect("a valid contribution");
            }
            node(nodes, 5).aggregate_set("a1", -3.0).expect("a valid contribution");
        }
        3_000 => {
            node(nodes, 1).delete("k1").expect("known");
            node(nodes, 0).set("k0", "zero").expect("small");
            node(nodes, 2).set("k9", "late").expect("small");
        }
        6_000 => node(nodes, 4).leave(),
        7_000 => {
            // Application messages: a direct message, a broadcast, a query of every member
            // (answered, see `capture`), write requests both ways (accepted there).
            node(nodes, 1).send_to("n0", &b"hello"[..]).expect("a live member");
            node(nodes, 2).broadcast("t", &b"news"[..]).expect("a broadcast");
            node(nodes, 3).query("q", &b"?"[..], QueryFilter::All, Duration::from_secs(2)).expect("a query");
            node(nodes, 1).request_write("n0", "asked", &b"v"[..]).expect("a request");
            node(nodes, 0).request_write("n2", "asked", &b"v"[..]).expect("a request");
        }
        8_000 => nodes[5] = None,
        15_000 => {
            let mut restarted = start(5, 2);
            restarted.handle_timeout(now);
            restarted.join([node_address(0), node_address(1)]);
            nodes[5] = Some(restarted);
        }
        20_000 => {
            node(nodes, 2).delete("k2").expect("known");
            node(nodes, 5).set("k0", "again").expect("small");
        }
        _ => {}
    }
}

/// The configuration bytes the corpus is captured under (see [`handle_input::config`]):
/// each anti-entropy mode, each dissemination choice, the fixed interval, Lifeguard off, and
/// the sealed mode (push-pull and pull; its datagrams are fed as [`Op::Fixed`](handle_input::Op::Fixed) steps, which
/// seal them).
pub const CONFIGS: [u8; 8] = [0, 1, 2, 3, 6, 18 + 36, 72, 73];

/// Writes the generated seed files of every target into `fuzz/corpus/`; returns how many
/// files each target got.
pub fn generate() -> Vec<(&'static str, usize)> {
    let captures: Vec<(u8, Vec<Captured>)> = CONFIGS.iter().map(|&c| (c, capture(c))).collect();
    let decode = decode_seeds(&captures);
    let handle_input = handle_input_seeds(&captures);
    let ops = ops_seeds();
    [(runner::DECODE, decode), (runner::HANDLE_INPUT, handle_input), (runner::OPS, ops)]
        .into_iter()
        .map(|(target, files)| (target.name, write(&target, &files)))
        .collect()
}

/// Up to 5 datagrams of each body kind from each capture, spread over the run.
fn decode_seeds(captures: &[(u8, Vec<Captured>)]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (_, log) in captures {
        let mut by_kind: BTreeMap<String, Vec<&Captured>> = BTreeMap::new();
        for datagram in log {
            by_kind.entry(format!("{:?}", body_kind(&datagram.payload))).or_default().push(datagram);
        }
        for datagrams in by_kind.values() {
            seeds.extend(spread(datagrams, 5).into_iter().map(|d| d.payload.to_vec()));
        }
    }
    seeds
}

/// Per capture: `n0`'s conversation in the first seconds (up to 24 datagrams), and each
/// kind of datagram it received after a join, alone.
fn handle_input_seeds(captures: &[(u8, Vec<Captured>)]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (config_byte, log) in captures {
        let to_us: Vec<&Captured> =
            log.iter().filter(|d| d.to == Some(0) && (1..=5).contains(&d.from)).collect();
        for window in [Duration::ZERO, Duration::from_secs(6), Duration::from_secs(15)] {
            let mut input = InputWriter::new(*config_byte);
            let mut clock = window;
            for datagram in to_us.iter().filter(|d| d.at >= window).take(24) {
                let gap = (datagram.at - clock).as_millis().min(u128::from(u16::MAX)) as u16;
                if gap > 0 {
                    input.advance(gap).timeout();
                    clock = datagram.at;
                }
                if handle_input::sealed(*config_byte) {
                    input.fixed(datagram.from, &datagram.payload);
                } else {
                    input.datagram(datagram.from, &datagram.payload);
                }
            }
            seeds.push(input.finish());
        }
        let mut kinds = HashSet::new();
        for datagram in &to_us {
            let kind: BodyKind = body_kind(&datagram.payload);
            if kinds.insert(format!("{kind:?}")) {
                let mut input = InputWriter::new(*config_byte);
                input.join(datagram.from);
                if handle_input::sealed(*config_byte) {
                    input.fixed(datagram.from, &datagram.payload);
                } else {
                    input.datagram(datagram.from, &datagram.payload);
                }
                let input = input.timeout().set(1, 4).advance(1_000).timeout().finish();
                seeds.push(input);
            }
        }
    }
    seeds
}

/// Seeded random operation sequences in which crashes or restarts, partitions, heals and
/// writes all appear.
fn ops_seeds() -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(runner::DEFAULT_SEED);
    let mut seeds = Vec::new();
    while seeds.len() < 16 {
        let mut data = vec![0; 48 + (rng.next_u32() % 160) as usize];
        rng.fill_bytes(&mut data);
        let Ok(input) = OpsInput::arbitrary_take_rest(Unstructured::new(&data)) else { continue };
        let ops = &input.ops[..input.ops.len().min(crate::ops::MAX_OPS)];
        let has = |f: fn(&ClusterOp) -> bool| ops.iter().any(f);
        if has(|op| matches!(op, ClusterOp::Crash { .. } | ClusterOp::Restart { .. }))
            && has(|op| matches!(op, ClusterOp::Partition { .. }))
            && has(|op| matches!(op, ClusterOp::Set { .. }))
            && has(|op| matches!(op, ClusterOp::Advance { .. }))
        {
            seeds.push(data);
        }
    }
    seeds
}

/// `count` items spread evenly over `items`.
fn spread<T: Copy>(items: &[T], count: usize) -> Vec<T> {
    if items.len() <= count {
        return items.to_vec();
    }
    (0..count).map(|i| items[i * items.len() / count]).collect()
}

/// Replaces the generated files of `target`'s corpus with `files`; returns how many
/// distinct files were written.
fn write(target: &Target, files: &[Vec<u8>]) -> usize {
    let dir = runner::corpus_dir(target);
    std::fs::create_dir_all(&dir).expect("the corpus folder");
    for entry in std::fs::read_dir(&dir).expect("the corpus folder").flatten() {
        if entry.file_name().to_string_lossy().starts_with("gen-") {
            std::fs::remove_file(entry.path()).expect("an old generated file");
        }
    }
    let mut written = HashSet::new();
    for data in files {
        let name = format!("gen-{:016x}", fnv(data));
        if written.insert(name.clone()) {
            std::fs::write(Path::new(&dir).join(name), data).expect("a corpus file");
        }
    }
    written.len()
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}
