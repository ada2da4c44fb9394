//! Datagram benchmarks for the sans-IO core.
//!
//! - `handle_full_delta_datagram`: one full (~1,400-byte) datagram of deltas, captured from a
//!   real exchange (a node with 500 keys answering a fresh node), handled by a node that lacks
//!   that state, so every iteration applies every entry. The goal is 200,000 such datagrams
//!   per second on one core (5 µs each). Sub-steps (decode alone, the "already have it" path)
//!   are measured beside it to show where the time goes.
//! - `build_digest_and_delta_1000_nodes`: a node that knows 1,000 nodes (3 keys each) builds
//!   the `Syn`s of a gossip round, answers a `Syn` from a peer that knows nothing, and answers
//!   requests for deltas. The fake members never answer, so these benchmarks spread updates
//!   by anti-entropy only and switch SWIM probing off (see `members_config`): what they
//!   measure is digest and delta building, in a state that stays the same from one
//!   iteration to the next.
//!
//! Every input is handled at an explicit virtual time; the setup of each scenario prints what
//! the measured datagrams carry (sizes, digest entries, deltas) to stderr, and how many
//! allocations handling the full datagram makes.
//!
//! Run with `cargo bench -p gossip-core --bench datagram` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quicker pass).

// prost messages gain fields as the schema evolves; `..Default::default()` in every literal
// keeps this file compiling when they do.
#![allow(clippy::needless_update)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gossip_core::proto::{self, v1, v1::envelope::Body};
use gossip_core::{Config, Dissemination, Event, Identity, Node, Output, Transmit};
use prost::Message;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

type BenchNode = Node<ChaCha8Rng>;

/// The base of the benchmarks' virtual clock; only differences from it matter.
fn epoch() -> Instant {
    // The benchmark plays the I/O shell: it owns the clock.
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn address(i: u32) -> SocketAddr {
    let [_, b, c, d] = i.to_be_bytes();
    SocketAddr::from(([10, b, c, d], 7946))
}

fn node(config: &Config, name: &str, at: SocketAddr, now: Instant, seed: u64) -> BenchNode {
    let identity = Identity::new(name, 1, at);
    Node::new(config.clone(), identity, now, ChaCha8Rng::seed_from_u64(seed)).expect("valid config")
}

/// Drains every output; returns the datagrams (events are dropped, as an application that
/// ignores them would).
fn drain(node: &mut BenchNode) -> Vec<Transmit> {
    let mut transmits = Vec::new();
    while let Some(output) = node.poll() {
        if let Output::Transmit(transmit) = output {
            transmits.push(transmit);
        }
    }
    transmits
}

fn wire_address(at: SocketAddr) -> v1::Address {
    let ip = match at {
        SocketAddr::V4(v4) => Bytes::copy_from_slice(&v4.ip().octets()),
        SocketAddr::V6(v6) => Bytes::copy_from_slice(&v6.ip().octets()),
    };
    v1::Address { ip, port: u32::from(at.port()), ..Default::default() }
}

/// An envelope from `name` at `at` (generation 1).
fn envelope_message(config: &Config, name: &str, at: SocketAddr, body: Body) -> v1::Envelope {
    v1::Envelope {
        protocol_version: proto::PROTOCOL_VERSION,
        cluster: config.cluster.clone(),
        sender: Some(v1::NodeIdentity {
            name: name.to_owned(),
            generation: 1,
            address: Some(wire_address(at)),
            ..Default::default()
        }),
        body: Some(body),
        ..Default::default()
    }
}

/// An encoded envelope from `name` at `at` (generation 1), checked to fit a datagram.
fn envelope(config: &Config, name: &str, at: SocketAddr, body: Body) -> Vec<u8> {
    let bytes = envelope_message(config, name, at, body).encode_to_vec();
    assert!(bytes.len() <= config.max_datagram_size, "crafted a {}-byte datagram", bytes.len());
    bytes
}

fn deltas_of(datagram: &[u8]) -> Option<Vec<v1::NodeDelta>> {
    let envelope = v1::Envelope::decode(datagram).ok()?;
    let deltas = match envelope.body? {
        Body::SynAck(m) => m.deltas,
        Body::Ack2(m) => m.deltas,
        Body::Push(m) => m.deltas,
        Body::DeltaReply(m) => m.deltas,
        _ => return None,
    };
    (!deltas.is_empty()).then_some(deltas)
}

fn entry_count(deltas: &[v1::NodeDelta]) -> usize {
    deltas.iter().map(|d| d.entries.len()).sum()
}

// ----- handle_full_delta_datagram -----

const A: &str = "node-a";
const B: &str = "node-b";
const C: &str = "node-c";

/// A full datagram of deltas, captured from a real exchange, and what a receiver needs to
/// know beforehand.
struct Capture {
    config: Config,
    start: Instant,
    a_address: SocketAddr,
    /// The first datagram A sent (a `SynAck` with A's digest, no deltas): handling it makes
    /// a receiver know A at version 0, as any node does one message before the deltas.
    introduction: Vec<u8>,
    /// The largest datagram A sent that carries deltas.
    full: Vec<u8>,
    /// The same two datagrams from another node, C, at its own address: a receiver that
    /// handled them (and drained their events) is warm, as a node that has run for a while.
    warm_up: [(SocketAddr, Vec<u8>); 2],
}

/// Node A holds 500 keys with 20-byte values; fresh node B joins A; the datagrams between
/// them are delivered by hand (1 ms apart) until the exchange ends. The same for node C, the
/// warm-up's sender.
fn capture_full_datagram() -> Capture {
    let config = Config::lan();
    let start = epoch();
    let a_address = address(1);
    let (introduction, full) = capture_from(&config, start, A, a_address);
    let c_address = address(4);
    let (c_introduction, c_full) = capture_from(&config, start, C, c_address);
    let warm_up = [(c_address, c_introduction), (c_address, c_full)];
    Capture { config, start, a_address, introduction, full, warm_up }
}

/// The bare ping that introduces `sender` and the largest datagram with deltas it sent to a
/// fresh node that joined it.
fn capture_from(config: &Config, start: Instant, sender: &str, a_address: SocketAddr) -> (Vec<u8>, Vec<u8>) {
    let config = config.clone();
    let b_address = address(2);
    let mut a = node(&config, sender, a_address, start, 1);
    let mut b = node(&config, B, b_address, start, 2);
    for i in 0..500 {
        a.set(format!("key-{i:03}"), format!("value-{i:014}")).expect("fits");
    }
    let _ = drain(&mut a);
    b.join([a_address]);
    let mut in_flight: Vec<(bool, Transmit)> = drain(&mut b).into_iter().map(|t| (false, t)).collect();
    let mut from_a: Vec<Vec<u8>> = Vec::new();
    let mut now = start;
    while !in_flight.is_empty() {
        now += Duration::from_millis(1);
        for (sent_by_a, transmit) in std::mem::take(&mut in_flight) {
            let (to, from) = if sent_by_a { (&mut b, a_address) } else { (&mut a, b_address) };
            if sent_by_a {
                from_a.push(transmit.payload.to_vec());
            }
            to.handle_input(now, from, &transmit.payload);
            in_flight.extend(drain(to).into_iter().map(|t| (!sent_by_a, t)));
        }
    }
    // A introduces itself with a bare ping (A's first real datagrams already carry deltas).
    let ping =
        v1::Ping { sequence: u32::from(gossip_core::ping_target_tag("node-r")) << 16 | 1, summary: None };
    let introduction = envelope(&config, sender, a_address, Body::Ping(ping));
    let full = from_a
        .iter()
        .filter(|d| deltas_of(d).is_some())
        .max_by_key(|d| d.len())
        .expect("A sent deltas")
        .clone();
    let deltas = deltas_of(&full).expect("deltas");
    assert!(b.get(sender, "key-000").is_some(), "B applied the deltas");
    eprintln!(
        "captured: {} datagrams from A; the largest with deltas is {} bytes, {} delta(s), {} entries",
        from_a.len(),
        full.len(),
        deltas.len(),
        entry_count(&deltas),
    );
    assert!(full.len() > 1300, "the captured datagram is not full: {} bytes", full.len());
    (introduction, full)
}

impl Capture {
    /// A fresh receiver that knows A (at version 0) but none of its keys.
    fn receiver(&self, seed: u64) -> BenchNode {
        let mut receiver = self.fresh_receiver(seed);
        receiver.handle_input(self.start, self.a_address, &self.introduction);
        let _ = drain(&mut receiver);
        assert!(receiver.node(A).is_some_and(|view| view.max_version == 0));
        receiver
    }

    /// A receiver that knows A (at version 0) but none of its keys, and has handled a full
    /// datagram from C before (its events drained): its queues have grown as a running
    /// node's have.
    fn warm_receiver(&self, seed: u64) -> BenchNode {
        let mut receiver = self.fresh_receiver(seed);
        for (from, datagram) in &self.warm_up {
            receiver.handle_input(self.start, *from, datagram);
        }
        let _ = drain(&mut receiver);
        receiver.handle_input(self.start, self.a_address, &self.introduction);
        let _ = drain(&mut receiver);
        assert!(receiver.node(C).is_some_and(|view| view.max_version > 0), "C's deltas applied");
        assert!(receiver.node(A).is_some_and(|view| view.max_version == 0));
        receiver
    }

    /// A fresh receiver that has never heard of A.
    fn fresh_receiver(&self, seed: u64) -> BenchNode {
        node(&self.config, "node-r", address(3), self.start, seed)
    }

    fn at(&self) -> Instant {
        self.start + Duration::from_millis(100)
    }
}

fn handle_full_delta_datagram(c: &mut Criterion) {
    let capture = capture_full_datagram();
    let full = capture.full.clone();
    let full_bytes = Bytes::from(full.clone());
    let (from, at) = (capture.a_address, capture.at());
    let entries = entry_count(&deltas_of(&full).expect("deltas")) as u64;

    // Every iteration must apply the entries: check that it does.
    let mut probe = capture.receiver(9);
    probe.handle_input(at, from, &full);
    let metrics = probe.metrics();
    assert_eq!(metrics.entries_applied, entries, "the benchmarked input applies every entry");
    let mut counted = capture.receiver(9);
    let handled = allocation_counter::measure(|| counted.handle_input(at, from, &full));
    let drained = allocation_counter::measure(|| drop(drain(&mut counted)));
    eprintln!(
        "a full datagram of {entries} entries: {} allocations ({} bytes) to handle it, {} more to drain its events",
        handled.count_total, handled.bytes_total, drained.count_total
    );
    let mut pinged = capture.fresh_receiver(9);
    pinged.handle_input(capture.start, capture.a_address, &capture.introduction);
    let _ = drain(&mut pinged);
    let handled = allocation_counter::measure(|| pinged.handle_input(at, from, &capture.introduction));
    eprintln!(
        "a bare ping from a known sender: {} allocations ({} bytes), its ack included",
        handled.count_total, handled.bytes_total
    );
    let mut warm = capture.warm_receiver(9);
    let handled = allocation_counter::measure(|| warm.handle_input(at, from, &full));
    assert_eq!(warm.metrics().entries_applied, 2 * entries, "the warm receiver applies every entry");
    eprintln!(
        "the same on a warm receiver: {} allocations ({} bytes)",
        handled.count_total, handled.bytes_total
    );

    let mut group = c.benchmark_group("handle_full_delta_datagram");
    group.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: full.len() as u64 });

    // Each routine borrows its receiver where the setup left it (`iter_batched_ref`): a
    // routine taking it by value moves the whole `Node` (4.5 KB) out of the batch and back
    // into criterion's outputs on every iteration, inside the timed region, which no driver
    // does (about 0.3 µs of the 5 µs measured that way).
    //
    // The figure the goal is about: a receiver that knows the sender, lacks the state.
    group.bench_function("known_sender", |bench| {
        bench.iter_batched_ref(
            || capture.receiver(9),
            |receiver| receiver.handle_input(at, from, black_box(&full)),
            BatchSize::SmallInput,
        );
    });
    // The same on a receiver that has handled traffic before (another sender's full
    // datagram, its events drained): the event queue and the table have room already, as in
    // a node that has run for a while, so what is left is this datagram's own work.
    group.bench_function("known_sender_warm", |bench| {
        bench.iter_batched_ref(
            || capture.warm_receiver(9),
            |receiver| receiver.handle_input(at, from, black_box(&full)),
            BatchSize::SmallInput,
        );
    });
    // The same, also draining `poll` as the drain rule asks, and reading every key change
    // of the events in place (key, value, version), as an application that filters them
    // does.
    group.bench_function("known_sender_and_drain", |bench| {
        bench.iter_batched_ref(
            || capture.receiver(9),
            |receiver| {
                receiver.handle_input(at, from, black_box(&full));
                while let Some(output) = receiver.poll() {
                    if let Output::Event(Event::KeysChanged { changes, .. }) = &output {
                        for change in changes {
                            black_box((change.key(), change.value(), change.version()));
                        }
                    }
                    let _ = black_box(output);
                }
            },
            BatchSize::SmallInput,
        );
    });
    // The same, taking a handle to keep of every changed entry, as an application that
    // mirrors the tables does.
    group.bench_function("known_sender_and_keep", |bench| {
        bench.iter_batched_ref(
            || capture.receiver(9),
            |receiver| {
                receiver.handle_input(at, from, black_box(&full));
                let mut kept = Vec::with_capacity(64);
                while let Some(output) = receiver.poll() {
                    if let Output::Event(Event::KeysChanged { changes, .. }) = &output {
                        kept.extend(changes.iter().map(|change| change.entry()));
                    }
                }
                kept
            },
            BatchSize::SmallInput,
        );
    });
    // First contact: the sender is discovered by this datagram too.
    group.bench_function("new_sender", |bench| {
        bench.iter_batched_ref(
            || capture.fresh_receiver(9),
            |receiver| receiver.handle_input(at, from, black_box(&full)),
            BatchSize::SmallInput,
        );
    });
    // What the setup of the batched benchmarks costs, to check it is not what is measured.
    group.bench_function("setup_only", |bench| {
        bench.iter(|| capture.receiver(9));
    });
    // Sub-steps: decoding alone (prost into owned `String`s and copied `Bytes`).
    group.bench_function("decode_only", |bench| {
        bench.iter(|| v1::Envelope::decode(black_box(&full[..])).expect("decodes"));
    });
    // Decoding from `Bytes`: prost then slices the `bytes` fields instead of copying them.
    group.bench_function("decode_from_bytes", |bench| {
        bench.iter(|| v1::Envelope::decode(black_box(full_bytes.clone())).expect("decodes"));
    });
    // Decoding and dropping the envelope, the floor of any path through `handle_input`.
    group.bench_function("decode_and_drop", |bench| {
        bench.iter(|| drop(v1::Envelope::decode(black_box(&full[..])).expect("decodes")));
    });
    // The "already have it" path: the same datagram again, every delta stale.
    group.bench_function("already_applied", |bench| {
        let mut receiver = capture.receiver(9);
        receiver.handle_input(at, from, &full);
        let _ = drain(&mut receiver);
        bench.iter(|| receiver.handle_input(at, from, black_box(&full)));
        assert_eq!(receiver.metrics().entries_applied, entries, "nothing applied twice");
    });
    group.finish();
}

// ----- build_digest_and_delta_1000_nodes -----

const NODES: u32 = 1000;
const KEYS_PER_NODE: u32 = 3;
/// Gossip rounds run before measuring, so that the membership news of 1,000 discoveries has
/// been piggybacked its allotted number of times and every iteration does the same work.
const SETTLE_ROUNDS: u32 = 2_000;
/// A duration no benchmark reaches, to keep a state (out of sync, recently changed) true.
const FOREVER_ROUNDS: u32 = 100_000_000;

/// LAN defaults, except that updates spread by anti-entropy only and SWIM never probes: the
/// fake members never answer, so their rumors would stay hot and unanswered probes would
/// declare them dead as virtual time passes. What is measured is anti-entropy.
fn members_config() -> Config {
    let mut config = Config::lan();
    config.dissemination = Dissemination::AntiEntropy;
    config.swim.probe_interval = Duration::from_secs(1_000_000_000);
    config
}

fn member_name(i: u32) -> String {
    format!("member-{i:04}")
}

/// An observer that learned 1,000 nodes (3 keys each) from each node's own `Push`, 1 ms
/// apart.
fn observer_of_1000(config: &Config, start: Instant) -> BenchNode {
    let mut observer = node(config, "observer", address(0), start, 42);
    let mut now = start;
    for i in 1..=NODES {
        let (name, at) = (member_name(i), address(i));
        let entries = (1..=KEYS_PER_NODE)
            .map(|k| v1::Entry {
                key: format!("key-{k}"),
                value: Bytes::from(format!("value-{i:04}-{k}")),
                version: u64::from(k),
                deleted: false,
                ..Default::default()
            })
            .collect();
        let delta = v1::NodeDelta {
            name: name.clone(),
            generation: 1,
            address: Some(wire_address(at)),
            from_version: 0,
            to_version: u64::from(KEYS_PER_NODE),
            gc_watermark: 0,
            reset: false,
            entries,
            ..Default::default()
        };
        let datagram =
            envelope(config, &name, at, Body::Push(v1::Push { deltas: vec![delta], ..Default::default() }));
        now += Duration::from_millis(1);
        observer.handle_input(now, at, &datagram);
        let _ = drain(&mut observer);
    }
    assert_eq!(observer.nodes().count(), NODES as usize + 1);
    assert_eq!(observer.metrics().entries_applied, u64::from(NODES * KEYS_PER_NODE));
    observer
}

/// Fires the node's next timer (with probes off, the next gossip round); returns what it sent.
fn one_round(node: &mut BenchNode) -> Vec<Transmit> {
    let deadline = node.poll_timeout();
    node.handle_timeout(deadline);
    drain(node)
}

/// Runs `rounds` timers, dropping what they send (nobody answers).
fn settle(node: &mut BenchNode, rounds: u32) {
    for _ in 0..rounds {
        let _ = one_round(node);
    }
}

/// The time of the node's latest timer (after [`settle`]), for inputs.
fn now_of(node: &BenchNode, config: &Config) -> Instant {
    node.poll_timeout() - config.gossip_interval
}

const PEER: &str = "peer";

fn peer_address() -> SocketAddr {
    address(60_000)
}

/// A push-pull `Syn` with the summary of a peer that knows only itself (it differs from
/// everyone's).
fn syn_body(digest: Vec<v1::DigestEntry>) -> Body {
    Body::Syn(v1::Syn {
        summary: Some(v1::Summary { hash: 0x5eed, nodes: 1, ..Default::default() }),
        digest,
        mode: v1::ExchangeMode::PushPull as i32,
        ..Default::default()
    })
}

/// An `Ack2` that only requests.
fn request_body(request: Vec<v1::DigestEntry>) -> Body {
    Body::Ack2(v1::Ack2 { request, ..Default::default() })
}

/// A `Syn` from the peer.
fn fresh_syn(config: &Config, digest: Vec<v1::DigestEntry>) -> Vec<u8> {
    envelope(config, PEER, peer_address(), syn_body(digest))
}

/// Digest entries at version 0 for as many members as fit the datagram.
fn names_at_zero(config: &Config, request: bool) -> Vec<v1::DigestEntry> {
    let mut entries = Vec::new();
    for i in 1..=NODES {
        entries.push(v1::DigestEntry {
            name: member_name(i),
            generation: 1,
            max_version: 0,
            gc_watermark: 0,
            ..Default::default()
        });
        let body = if request { request_body(entries.clone()) } else { syn_body(entries.clone()) };
        if envelope_message(config, PEER, peer_address(), body).encoded_len() > config.max_datagram_size {
            entries.pop();
            break;
        }
    }
    entries
}

/// One line per datagram: its kind, size, digest entries, deltas and piggybacked updates.
fn describe(transmits: &[Transmit]) -> String {
    let lines: Vec<String> = transmits
        .iter()
        .map(|transmit| {
            let envelope = v1::Envelope::decode(&transmit.payload[..]).expect("decodes");
            let (kind, digest, deltas) = match envelope.body {
                Some(Body::Syn(m)) => ("Syn", m.digest.len(), Vec::new()),
                Some(Body::SynAck(m)) => ("SynAck", m.digest.len(), m.deltas),
                Some(Body::Ack2(m)) => ("Ack2", m.request.len(), m.deltas),
                Some(Body::Push(m)) => ("Push", 0, m.deltas),
                Some(Body::DeltaReply(m)) => ("DeltaReply", 0, m.deltas),
                _ => ("other", 0, Vec::new()),
            };
            format!(
                "{kind} {} bytes: {digest} digest entries, {} deltas ({} entries), {} membership updates",
                transmit.payload.len(),
                deltas.len(),
                entry_count(&deltas),
                envelope.membership.len()
            )
        })
        .collect();
    if lines.is_empty() { "nothing sent".to_owned() } else { lines.join("; ") }
}

fn build_digest_and_delta_1000_nodes(c: &mut Criterion) {
    let start = epoch();
    let idle_config = members_config();
    // Out of sync for as long as the benchmark runs: `Syn`s carry a rotating window.
    let mut rotating_config = members_config();
    rotating_config.out_of_sync_rounds = FOREVER_ROUNDS;
    // Also every node "recently changed", as right after learning them all.
    let mut recent_config = rotating_config.clone();
    recent_config.recent_rounds = FOREVER_ROUNDS;

    // The memory an observer holds for 1,000 members of 3 keys each (its allocations still
    // live once it learned them all: tables, indexes, the datagrams its entries are slices of).
    let mut kept = None;
    let held = allocation_counter::measure(|| kept = Some(observer_of_1000(&idle_config, start)));
    eprintln!(
        "an observer of {NODES} nodes with {KEYS_PER_NODE} keys each holds {} bytes ({} per member)",
        held.bytes_current,
        held.bytes_current / i64::from(NODES)
    );
    drop(kept);

    let mut group = c.benchmark_group("build_digest_and_delta_1000_nodes");
    group.throughput(Throughput::Elements(1));

    // (a) Building the `Syn`s of one gossip round (`fanout` = 3 of them).
    for (label, config) in [
        ("round_idle", &idle_config),
        ("round_rotating_window", &rotating_config),
        ("round_all_recent", &recent_config),
    ] {
        let mut observer = observer_of_1000(config, start);
        if label != "round_idle" {
            // A peer out of sync makes this node add the rotating window to its `Syn`s.
            let at = observer.poll_timeout();
            observer.handle_input(at, peer_address(), &fresh_syn(config, Vec::new()));
            let _ = drain(&mut observer);
        }
        settle(&mut observer, SETTLE_ROUNDS);
        eprintln!("{label}: {}", describe(&one_round(&mut observer)));
        group.bench_function(label, |bench| bench.iter(|| one_round(&mut observer)));
    }

    // (b) Answering a peer that knows nothing.
    let mut idle = observer_of_1000(&idle_config, start);
    settle(&mut idle, SETTLE_ROUNDS);
    let idle_now = now_of(&idle, &idle_config);
    let mut recent = observer_of_1000(&recent_config, start);
    settle(&mut recent, SETTLE_ROUNDS);
    let recent_now = now_of(&recent, &recent_config);

    // A `Syn` with an empty digest: the answer is a `SynAck` with a digest window.
    let empty = fresh_syn(&idle_config, Vec::new());
    // A `Syn` naming as many members as fit, all at version 0 (the peer learned the names
    // from a digest window): the answer carries deltas and a digest window.
    let names = fresh_syn(&idle_config, names_at_zero(&idle_config, false));
    // An `Ack2` requesting as many members as fit: the answer is a full `DeltaReply`.
    let request =
        envelope(&idle_config, PEER, peer_address(), request_body(names_at_zero(&idle_config, true)));
    let mut observers = [(idle, idle_now), (recent, recent_now)];
    for (label, which, input) in [
        ("answer_syn_empty_digest", 0, &empty),
        ("answer_syn_empty_digest_all_recent", 1, &empty),
        ("answer_syn_names_at_zero", 0, &names),
        ("answer_ack2_request", 0, &request),
    ] {
        let (observer, now) = &mut observers[which];
        let now = *now;
        // The first answers also carry the news that the peer joined; let it run out.
        for _ in 0..100 {
            observer.handle_input(now, peer_address(), input);
            let _ = drain(observer);
        }
        observer.handle_input(now, peer_address(), input);
        eprintln!("{label} ({} bytes in): {}", input.len(), describe(&drain(observer)));
        group.bench_function(label, |bench| {
            bench.iter(|| {
                observer.handle_input(now, peer_address(), black_box(input));
                drain(observer)
            })
        });
    }
    group.finish();

    // How long learning 1,000 nodes takes: 1,000 `Push`es of 3 entries into a fresh node
    // (building and encoding the datagrams included).
    let mut group = c.benchmark_group("learn_1000_nodes");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(NODES)));
    group.bench_function("push_from_each", |bench| bench.iter(|| observer_of_1000(&idle_config, start)));
    group.finish();
}

criterion_group!(benches, handle_full_delta_datagram, build_digest_and_delta_1000_nodes);
criterion_main!(benches);
