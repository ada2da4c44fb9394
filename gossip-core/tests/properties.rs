//! Property tests through the public API only.
//!
//! - every datagram a node emits fits `max_datagram_size`, whatever its state: a node with
//!   up to 10,000 keys of any allowed size, and a node that knows 10,000 nodes;
//! - the rotating digest window offers every known node within the bound `digest.rs` states;
//! - no datagram (random bytes, bit-flipped or truncated real datagrams) makes a node panic,
//!   and a datagram counted as dropped leaves the node's state unchanged;
//! - every wire message round-trips through prost.
//!
//! Wire messages are built with `..Default::default()` even where every field is given, so
//! that a field added to the schema does not break these tests.

#![allow(clippy::needless_update)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_core::proto::PROTOCOL_VERSION;
use gossip_core::proto::v1::{self, envelope::Body};
use gossip_core::{Config, ConfigError, Dissemination, Event, Identity, Metrics, Node, Output, Transmit};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

// ----- a small hand-driven network -----

/// The base of every timestamp.
fn base_instant() -> Instant {
    // Only differences from this base matter; the runs stay deterministic.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    now
}

fn address(a: u8, b: u8, c: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, a, b, c], port))
}

/// A name of exactly `len` bytes (at least 1) that starts with `prefix`.
fn padded_name(prefix: &str, len: usize) -> String {
    let mut name = prefix.to_owned();
    while name.len() < len {
        name.push('x');
    }
    name
}

fn new_node(config: &Config, name: &str, address: SocketAddr, seed: u64, now: Instant) -> Node<ChaCha8Rng> {
    let identity = Identity::new(name, 1, address);
    Node::new(config.clone(), identity, now, ChaCha8Rng::seed_from_u64(seed)).expect("valid config")
}

/// Several nodes on one virtual clock; datagrams to an address that is not one of them are
/// dropped (after their size is checked).
struct Net {
    nodes: Vec<Node<ChaCha8Rng>>,
    addresses: Vec<SocketAddr>,
    now: Instant,
    /// Every datagram any node emitted: (sender index, datagram).
    log: Vec<(usize, Transmit)>,
}

impl Net {
    fn new(nodes: Vec<Node<ChaCha8Rng>>, now: Instant) -> Self {
        let addresses = nodes.iter().map(|node| node.identity().address).collect();
        Self { nodes, addresses, now, log: Vec::new() }
    }

    /// Drains every node, checks every datagram's size and delivers the ones addressed to a
    /// node of the net, until no datagram is left in flight.
    fn pump(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..10_000 {
            let mut in_flight = Vec::new();
            for (index, node) in self.nodes.iter_mut().enumerate() {
                let max = node.config().max_datagram_size;
                while let Some(output) = node.poll() {
                    if let Output::Transmit(transmit) = output {
                        prop_assert!(
                            transmit.payload.len() <= max,
                            "node {} sent a {}-byte datagram (max {})",
                            index,
                            transmit.payload.len(),
                            max
                        );
                        in_flight.push((index, transmit));
                    }
                }
            }
            if in_flight.is_empty() {
                return Ok(());
            }
            for (from, transmit) in in_flight {
                if let Some(to) = self.addresses.iter().position(|a| *a == transmit.to) {
                    let from_address = self.addresses[from];
                    self.nodes[to].handle_input(self.now, from_address, &transmit.payload);
                }
                self.log.push((from, transmit));
            }
        }
        Err(TestCaseError::fail("datagrams kept flowing"))
    }

    /// Advances the clock by `step`, fires the timers, and delivers what follows.
    fn round(&mut self, step: Duration) -> Result<(), TestCaseError> {
        self.now += step;
        for node in &mut self.nodes {
            node.handle_timeout(self.now);
        }
        self.pump()
    }
}

/// The largest value size (up to `max_value_size` of the preset) that `Config::validate`
/// accepts with this datagram size.
fn config_for(max_datagram_size: usize) -> Config {
    let mut config = Config::lan();
    config.max_datagram_size = max_datagram_size;
    // Every aggregate must fit one transfer, too.
    while matches!(config.validate(), Err(ConfigError::AggregatesCannotFit { .. })) {
        config.aggregation.max_aggregates -= 1;
    }
    while config.validate().is_err() && config.max_value_size > 0 {
        config.max_value_size = config.max_value_size.saturating_sub(8);
    }
    config.validate().expect("a value size that fits");
    config
}

// ----- e. every datagram fits -----

#[derive(Debug, Clone)]
struct BigTable {
    keys: usize,
    max_datagram_size: usize,
    /// Key lengths are drawn from `4..=key_len`, value lengths from `0..=value_len`.
    key_len: usize,
    value_len: usize,
    /// Every `delete_every`-th key is deleted again (a tombstone).
    delete_every: Option<usize>,
    name_len: (usize, usize),
    seed: u64,
}

fn big_table() -> impl Strategy<Value = BigTable> {
    (
        prop_oneof![Just(10_000usize), 0usize..=10_000],
        prop_oneof![Just(1400usize), Just(512usize), 512usize..=2048, Just(9000usize)],
        4usize..=128,
        any::<Index>(),
        proptest::option::of(2usize..10),
        (1usize..=64, 1usize..=64),
        any::<u64>(),
    )
        .prop_map(|(keys, max_datagram_size, key_len, value_len, delete_every, name_len, seed)| {
            let value_len = value_len.index(config_for(max_datagram_size).max_value_size + 1);
            BigTable { keys, max_datagram_size, key_len, value_len, delete_every, name_len, seed }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 32, ..ProptestConfig::default() })]

    /// A node with up to 10,000 keys of random sizes within the limits, exchanging with an
    /// empty node: every datagram either of them sends fits `max_datagram_size`, and the
    /// empty node learns.
    #[test]
    fn every_datagram_fits_with_a_big_table(case in big_table()) {
        let now = base_instant();
        let mut config = config_for(case.max_datagram_size);
        config.max_keys_per_node = case.keys.max(1);
        let a = address(0, 0, 1, 7946);
        let b = address(0, 0, 2, 7946);
        let mut full = new_node(&config, &padded_name("a", case.name_len.0), a, case.seed, now);
        let empty = new_node(&config, &padded_name("b", case.name_len.1), b, case.seed ^ 1, now);

        let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
        for i in 0..case.keys {
            let mut key = format!("{i:04}");
            let key_len = 4 + rng.next_u32() as usize % (case.key_len - 3);
            while key.len() < key_len {
                key.push(char::from(b'a' + (rng.next_u32() % 26) as u8));
            }
            let mut value = vec![0u8; rng.next_u32() as usize % (case.value_len + 1)];
            rng.fill_bytes(&mut value);
            full.set(key.clone(), value).expect("within the limits");
            if case.delete_every.is_some_and(|every| i % every == 0) {
                full.delete(&key).expect("a known key");
            }
        }
        let mut net = Net::new(vec![full, empty], now);
        net.nodes[1].join([a]);
        net.pump()?;
        for _ in 0..6 {
            net.round(config.gossip_interval)?;
        }
        if case.keys > 0 {
            let learned = net.nodes[1].node(net.nodes[0].identity().name.as_str()).map_or(0, |v| v.max_version);
            prop_assert!(learned > 0, "the empty node learned nothing in 6 rounds");
        }
        prop_assert!(net.log.len() > 4, "too few datagrams to say anything: {}", net.log.len());
    }
}

/// A fake node's delta: `keys` small entries, as its owner would send them.
fn fake_delta(name: String, index: u32, keys: usize, version_base: u64) -> v1::NodeDelta {
    let entries: Vec<v1::Entry> = (0..keys)
        .map(|k| v1::Entry {
            key: format!("key-{k}"),
            value: Bytes::from(format!("value-{index}-{k}")),
            version: version_base + k as u64 + 1,
            deleted: false,
            ..Default::default()
        })
        .collect();
    v1::NodeDelta {
        name,
        generation: 1,
        address: Some(v1::Address {
            ip: Bytes::copy_from_slice(&[10, 1 + (index >> 16) as u8, (index >> 8) as u8, index as u8]),
            port: 7946,
            ..Default::default()
        }),
        from_version: version_base,
        to_version: version_base + keys as u64,
        gc_watermark: 0,
        reset: false,
        entries,
        incarnation: 0,
        state: v1::MemberState::Alive as i32,
        ..Default::default()
    }
}

/// Packs deltas into `Push` envelopes from `sender`, each at most `max` bytes.
fn push_envelopes(
    sender: &v1::NodeIdentity,
    cluster: &str,
    deltas: Vec<v1::NodeDelta>,
    max: usize,
) -> Vec<Vec<u8>> {
    let envelope = |deltas: Vec<v1::NodeDelta>| v1::Envelope {
        protocol_version: PROTOCOL_VERSION,
        cluster: cluster.to_owned(),
        sender: Some(sender.clone()),
        body: Some(Body::Push(v1::Push { deltas, want_ack: false, ..Default::default() })),
        membership: Vec::new(),
        broadcasts: Vec::new(),
        ..Default::default()
    };
    let mut datagrams = Vec::new();
    let mut batch: Vec<v1::NodeDelta> = Vec::new();
    for delta in deltas {
        batch.push(delta);
        if envelope(batch.clone()).encoded_len() > max {
            let last = batch.pop().expect("just pushed");
            assert!(!batch.is_empty(), "one fake delta does not fit a datagram");
            datagrams.push(envelope(std::mem::take(&mut batch)).encode_to_vec());
            batch.push(last);
        }
    }
    if !batch.is_empty() {
        datagrams.push(envelope(batch).encode_to_vec());
    }
    datagrams
}

#[derive(Debug, Clone)]
struct ManyNodes {
    nodes: usize,
    /// Fake node names are drawn from `12..=name_len` bytes.
    name_len: usize,
    keys: usize,
    seed: u64,
}

fn many_nodes() -> impl Strategy<Value = ManyNodes> {
    (prop_oneof![Just(10_000usize), 2_000usize..=10_000], 12usize..=64, 1usize..=3, any::<u64>())
        .prop_map(|(nodes, name_len, keys, seed)| ManyNodes { nodes, name_len, keys, seed })
}

/// The digest entry names of a datagram, when it is a `Syn` (`true`) or a `SynAck`.
fn window_names(payload: &[u8]) -> Option<(bool, Vec<String>)> {
    let envelope = v1::Envelope::decode(payload).ok()?;
    match envelope.body? {
        Body::Syn(syn) => Some((true, syn.digest.into_iter().map(|e| e.name).collect())),
        Body::SynAck(syn_ack) => Some((false, syn_ack.digest.into_iter().map(|e| e.name).collect())),
        _ => None,
    }
}

/// How many digest entries of the largest size among `names` fit a `Syn` from `identity`:
/// the `w` of the bound in `digest.rs`.
fn entries_per_syn(config: &Config, identity: &Identity, names: &[String]) -> usize {
    let longest = names.iter().map(String::len).max().unwrap_or(1);
    let entry = v1::DigestEntry {
        name: "n".repeat(longest),
        generation: 1,
        max_version: 3,
        gc_watermark: 0,
        unknown: false,
        incarnation: 1,
        state: v1::MemberState::Suspect as i32,
        ..Default::default()
    };
    let entry_len = entry.encoded_len() + 2;
    let empty_syn = v1::Envelope {
        protocol_version: PROTOCOL_VERSION,
        cluster: config.cluster.clone(),
        sender: Some(v1::NodeIdentity {
            name: identity.name.clone(),
            generation: identity.generation,
            address: Some(v1::Address {
                ip: Bytes::from_static(&[10, 0, 0, 1]),
                port: 7946,
                ..Default::default()
            }),
        }),
        body: Some(Body::Syn(v1::Syn {
            summary: Some(v1::Summary { hash: u64::MAX, nodes: u32::MAX, ..Default::default() }),
            digest: Vec::new(),
            mode: v1::ExchangeMode::PushPull as i32,
            // An out-of-sync Syn of a table of more than 64 nodes carries its bucket sums.
            bucket_sums: if names.len() > 64 { vec![u32::MAX; 64] } else { Vec::new() },
            ..Default::default()
        })),
        membership: Vec::new(),
        broadcasts: Vec::new(),
        ..Default::default()
    };
    // Three bytes of slack for the body's length prefix growing.
    (config.max_datagram_size - empty_syn.encoded_len() - 3) / entry_len
}

/// `big` (net index 0) learns many fake nodes from a feeder's pushes; `small` (index 1)
/// keeps room for itself and `big` only, so that it gossips with `big` every round and keeps
/// it out of sync. Counts `big`'s `Syn`s and what their digest windows offered.
struct WindowScenario {
    net: Net,
    names: Vec<String>,
    feeder: v1::NodeIdentity,
    feeder_address: SocketAddr,
    /// Digest entries of the largest size that fit one `Syn`.
    w: usize,
    seen: BTreeSet<String>,
    syns: usize,
    logged: usize,
}

impl WindowScenario {
    fn new(config: &Config, names: Vec<String>, keys: usize, seed: u64) -> Result<Self, TestCaseError> {
        let now = base_instant();
        let a = address(0, 0, 1, 7946);
        let big = new_node(config, "node-a", a, seed, now);
        let mut small_config = config.clone();
        small_config.max_nodes = 2;
        let small = new_node(&small_config, "node-b", address(0, 0, 2, 7946), seed ^ 1, now);
        let feeder = v1::NodeIdentity {
            name: "feeder".to_owned(),
            generation: 1,
            address: Some(v1::Address {
                ip: Bytes::from_static(&[10, 255, 255, 255]),
                port: 7946,
                ..Default::default()
            }),
        };
        let w = entries_per_syn(config, big.identity(), &names);
        let mut scenario = Self {
            net: Net::new(vec![big, small], now),
            names,
            feeder,
            feeder_address: address(255, 255, 255, 7946),
            w,
            seen: BTreeSet::new(),
            syns: 0,
            logged: 0,
        };
        let deltas: Vec<v1::NodeDelta> = (scenario.names.iter().enumerate())
            .map(|(i, name)| fake_delta(name.clone(), i as u32, keys, 0))
            .collect();
        scenario.feed(deltas);
        scenario.net.pump()?;
        let big = &scenario.net.nodes[0];
        prop_assert_eq!(big.metrics().malformed_messages, 0);
        for name in &scenario.names {
            prop_assert!(big.node(name).is_some(), "{} was not learned", name);
        }
        scenario.net.nodes[1].join([a]);
        scenario.net.pump()?;
        Ok(scenario)
    }

    /// Pushes `deltas` to `big`, in as many datagrams as they need.
    fn feed(&mut self, deltas: Vec<v1::NodeDelta>) {
        let config = self.net.nodes[0].config().clone();
        for datagram in push_envelopes(&self.feeder, &config.cluster, deltas, config.max_datagram_size) {
            self.net.nodes[0].handle_input(self.net.now, self.feeder_address, &datagram);
        }
    }

    /// One gossip round, then a look at `big`'s digest windows.
    fn round(&mut self) -> Result<(), TestCaseError> {
        let interval = self.net.nodes[0].config().gossip_interval;
        self.net.round(interval)?;
        for (from, transmit) in &self.net.log[self.logged..] {
            if *from == 0 {
                if let Some((is_syn, names)) = window_names(&transmit.payload) {
                    self.syns += usize::from(is_syn);
                    self.seen.extend(names);
                }
            }
        }
        self.logged = self.net.log.len();
        Ok(())
    }

    /// Starts counting afresh.
    fn reset_count(&mut self) {
        self.seen.clear();
        self.syns = 0;
    }

    /// The nodes to be offered: every fed node and the feeder. (`node-a` and `node-b` are
    /// left out: `node-b` mentions both in every `Syn`, so `big`'s `SynAck`s skip them.)
    fn unseen(&self) -> usize {
        self.names.iter().chain([&self.feeder.name]).filter(|name| !self.seen.contains(*name)).count()
    }

    /// The bound `ceil(n / w)`, `n` counting every node `big` knows.
    fn bound(&self) -> usize {
        self.net.nodes[0].nodes().count().div_ceil(self.w)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 8, ..ProptestConfig::default() })]

    /// A node that knows 10,000 nodes with a few keys each exchanges with another node:
    /// every datagram fits, and once its recent changes have aged out of the recent window,
    /// every known node appears in the digest windows of its `Syn`s within `ceil(n / w)`
    /// out-of-sync `Syn`s, `w` being how many of the largest digest entries fit one `Syn`
    /// (the bound `digest.rs` states).
    #[test]
    fn every_datagram_fits_and_the_window_covers_10_000_nodes(case in many_nodes()) {
        let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
        let names: Vec<String> = (0..case.nodes)
            .map(|i| {
                let len = 12 + rng.next_u32() as usize % (case.name_len - 11);
                padded_name(&format!("fake-{i:05}-"), len)
            })
            .collect();
        let mut scenario = WindowScenario::new(&Config::lan(), names, case.keys, case.seed)?;
        // Every fed node counts as recently changed for `recent_rounds`, and recent changes
        // lead every digest: wait for them to age out.
        for _ in 0..=Config::lan().recent_rounds {
            scenario.round()?;
        }
        scenario.reset_count();
        let bound = scenario.bound();
        while scenario.unseen() > 0 && scenario.syns <= bound {
            scenario.round()?;
        }
        prop_assert!(
            scenario.unseen() == 0,
            "{} of {} nodes not offered in {} out-of-sync Syns (bound ceil(n / w) = {}, w = {})",
            scenario.unseen(),
            scenario.names.len() + 1,
            scenario.syns,
            bound,
            scenario.w
        );
    }
}

/// Like the property above, under churn: a few fed nodes change every round, as in any
/// large cluster where nodes write now and then. Recently changed nodes lead every digest;
/// the rotating window must still advance.
#[test]
fn the_window_still_rotates_under_churn() {
    let nodes: usize = 2_000;
    let churn_per_round = 4;
    let names: Vec<String> = (0..nodes).map(|i| format!("fake-{i:05}")).collect();
    // Anti-entropy only: the rotating window is its mechanism (and this keeps the test
    // clear of rumor pushes).
    let mut config = Config::lan();
    config.dissemination = Dissemination::AntiEntropy;
    let mut scenario = WindowScenario::new(&config, names, 1, 7).unwrap();
    let mut versions = vec![1u64; nodes];
    let mut next = 0;
    let mut churn = |scenario: &mut WindowScenario| {
        let changed: Vec<v1::NodeDelta> = (0..churn_per_round)
            .map(|_| {
                next = (next + 997) % nodes;
                let delta = fake_delta(scenario.names[next].clone(), next as u32, 1, versions[next]);
                versions[next] += 1;
                delta
            })
            .collect();
        scenario.feed(changed);
    };
    for _ in 0..=Config::lan().recent_rounds {
        churn(&mut scenario);
        scenario.round().unwrap();
    }
    scenario.reset_count();
    let bound = scenario.bound();
    while scenario.unseen() > 0 && scenario.syns <= 2 * bound {
        churn(&mut scenario);
        scenario.round().unwrap();
    }
    assert!(
        scenario.unseen() == 0,
        "with {churn_per_round} changed nodes per round, {} of {} nodes were not offered in {} \
         out-of-sync Syns (bound without churn: {bound}, w = {}): recent changes crowd out the \
         rotating window",
        scenario.unseen(),
        nodes + 1,
        scenario.syns,
        scenario.w
    );
}

// ----- f. bad datagrams -----

/// A live entry as the public API shows it: key, value, version.
type Entry = (String, Bytes, u64);

/// Everything observable of a node's state, for checking that a dropped datagram changed
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    summary: String,
    nodes: Vec<String>,
    entries: Vec<(String, Vec<Entry>)>,
}

fn observe(node: &Node<ChaCha8Rng>) -> Observed {
    let names: Vec<String> = node.nodes().map(|view| view.name.to_owned()).collect();
    Observed {
        summary: format!("{:?}", node.digest_summary()),
        nodes: node.nodes().map(|view| format!("{view:?}")).collect(),
        entries: names
            .iter()
            .map(|name| {
                let entries = node
                    .entries(name)
                    .map(|entries| {
                        entries
                            .map(|(key, value, version)| {
                                (key.to_owned(), bytes::Bytes::copy_from_slice(value), version)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (name.clone(), entries)
            })
            .collect(),
    }
}

/// Whether the node has nothing to give but, perhaps, the one report a dropped datagram may
/// cause: another cluster's datagrams arriving from a new source.
fn no_output_but_a_foreign_cluster_report(node: &mut Node<ChaCha8Rng>) -> bool {
    std::iter::from_fn(|| node.poll())
        .all(|output| matches!(output, Output::Event(Event::ForeignCluster { .. })))
}

/// How many datagrams were dropped whole, by every reason that promises no state change.
fn dropped(metrics: &Metrics) -> u64 {
    metrics.dropped_whole()
}

/// Two nodes with a few keys each, after a few exchanges, and the datagrams they sent; a
/// third node that heard from nobody.
fn two_nodes(seed: u64) -> Result<Net, TestCaseError> {
    let now = base_instant();
    let config = Config::lan();
    let mut a = new_node(&config, "node-a", address(0, 0, 1, 7946), seed, now);
    let mut b = new_node(&config, "node-b", address(0, 0, 2, 7946), seed ^ 1, now);
    for i in 0..6 {
        a.set(format!("a-{i}"), format!("value {i}")).expect("small");
        b.set(format!("b-{i}"), vec![i as u8; 40 * i]).expect("small");
    }
    a.delete("a-2").expect("known");
    let fresh = new_node(&config, "node-c", address(0, 0, 3, 7946), seed ^ 2, now);
    let a_address = a.identity().address;
    let mut net = Net::new(vec![a, b, fresh], now);
    net.nodes[1].join([a_address]);
    net.pump()?;
    for round in 0..8 {
        if round == 4 {
            net.nodes[0].set("late", "news").expect("small");
        }
        net.round(Duration::from_millis(200))?;
    }
    Ok(net)
}

#[derive(Debug, Clone)]
enum Mutation {
    Random(Vec<u8>),
    /// Flip bits of a captured datagram: (byte position, bit).
    Flip(Index, Vec<(Index, u8)>),
    /// Cut a captured datagram short.
    Truncate(Index, Index),
    /// Overwrite a run of a captured datagram with random bytes.
    Splice(Index, Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        vec(any::<u8>(), 0..64).prop_map(Mutation::Random),
        vec(any::<u8>(), 1300..1500).prop_map(Mutation::Random),
        (any::<Index>(), vec((any::<Index>(), 0u8..8), 1..4)).prop_map(|(d, flips)| Mutation::Flip(d, flips)),
        (any::<Index>(), any::<Index>()).prop_map(|(d, at)| Mutation::Truncate(d, at)),
        (any::<Index>(), any::<Index>(), vec(any::<u8>(), 1..8))
            .prop_map(|(d, at, bytes)| Mutation::Splice(d, at, bytes)),
    ]
}

impl Mutation {
    fn apply(&self, captured: &[Bytes]) -> Vec<u8> {
        match self {
            Mutation::Random(bytes) => bytes.clone(),
            Mutation::Flip(d, flips) => {
                let mut bytes = d.get(captured).to_vec();
                for (at, bit) in flips {
                    let at = at.index(bytes.len());
                    bytes[at] ^= 1 << bit;
                }
                bytes
            }
            Mutation::Truncate(d, at) => {
                let bytes = d.get(captured);
                bytes[..at.index(bytes.len())].to_vec()
            }
            Mutation::Splice(d, at, patch) => {
                let mut bytes = d.get(captured).to_vec();
                let at = at.index(bytes.len());
                for (i, byte) in patch.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = *byte;
                    }
                }
                bytes
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes and damaged real datagrams, fed to a node mid-exchange, never make it
    /// panic; when one is counted as dropped, the node's state is unchanged and it emits
    /// nothing.
    #[test]
    fn bad_datagrams_are_dropped_whole(
        seed in 0u64..4,
        receiver in 1usize..3,
        mutations in vec(mutation(), 1..24),
    ) {
        let mut net = two_nodes(seed)?;
        // What `a` sent to `b`, from every stage of the exchange.
        let captured: Vec<Bytes> = net.log.iter().filter(|(from, _)| *from == 0).map(|(_, t)| t.payload.clone()).collect();
        prop_assert!(captured.len() >= 4, "only {} datagrams captured", captured.len());
        let from = net.addresses[0];
        let now = net.now;
        let node = &mut net.nodes[receiver];
        while node.poll().is_some() {}
        for mutation in &mutations {
            let datagram = mutation.apply(&captured);
            let (before, metrics_before) = (observe(node), node.metrics());
            node.handle_input(now, from, &datagram);
            let metrics = node.metrics();
            prop_assert_eq!(metrics.datagrams_in, metrics_before.datagrams_in + 1);
            if dropped(&metrics) > dropped(&metrics_before) {
                prop_assert_eq!(dropped(&metrics), dropped(&metrics_before) + 1, "counted twice");
                prop_assert_eq!(observe(node), before, "a dropped datagram changed the state");
                prop_assert!(no_output_but_a_foreign_cluster_report(node), "a dropped datagram produced output");
            }
            while let Some(output) = node.poll() {
                if let Output::Transmit(transmit) = output {
                    prop_assert!(transmit.payload.len() <= node.config().max_datagram_size);
                }
            }
        }
    }

    /// Well-formed envelopes that break one rule of the protocol are dropped whole and
    /// counted, and change nothing, even when the rest of the envelope would be news to the
    /// receiver (the third node has heard from nobody).
    #[test]
    fn envelopes_that_break_a_rule_are_dropped_whole(
        seed in 0u64..4,
        receiver in 1usize..3,
        pick in any::<Index>(),
        rule in proptest::sample::select(Rule::ALL.to_vec()),
    ) {
        let mut net = two_nodes(seed)?;
        let candidates: Vec<v1::Envelope> = net
            .log
            .iter()
            .filter(|(from, _)| *from == 0)
            .filter_map(|(_, transmit)| v1::Envelope::decode(&transmit.payload[..]).ok())
            .filter_map(|mut envelope| rule.r#break(&mut envelope).then_some(envelope))
            .collect();
        prop_assert!(!candidates.is_empty(), "no captured datagram to break {:?} in", rule);
        let envelope = pick.get(&candidates);
        let from = net.addresses[0];
        let now = net.now;
        let node = &mut net.nodes[receiver];
        while node.poll().is_some() {}
        let (before, metrics_before) = (observe(node), node.metrics());
        node.handle_input(now, from, &envelope.encode_to_vec());
        prop_assert_eq!(dropped(&node.metrics()), dropped(&metrics_before) + 1, "{:?} not counted", rule);
        prop_assert_eq!(observe(node), before, "{:?} changed the state", rule);
        prop_assert!(no_output_but_a_foreign_cluster_report(node));
    }
}

/// One rule of the protocol that an envelope can break.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Version,
    Cluster,
    NoSender,
    NoBody,
    SenderAddress,
    SenderNameTooLong,
    EmptyDigestName,
    BadMembershipUpdate,
    /// In the last node delta, so that a receiver checking delta by delta would already
    /// have applied the others.
    EntriesOutOfOrder,
    FromAboveTo,
    ResetNotFromZero,
    KeyTooLong,
    ValueTooLong,
    BadDeltaAddress,
}

impl Rule {
    const ALL: [Rule; 14] = [
        Rule::Version,
        Rule::Cluster,
        Rule::NoSender,
        Rule::NoBody,
        Rule::SenderAddress,
        Rule::SenderNameTooLong,
        Rule::EmptyDigestName,
        Rule::BadMembershipUpdate,
        Rule::EntriesOutOfOrder,
        Rule::FromAboveTo,
        Rule::ResetNotFromZero,
        Rule::KeyTooLong,
        Rule::ValueTooLong,
        Rule::BadDeltaAddress,
    ];

    /// Breaks the rule in `envelope`; `false` when this envelope has nothing to break it in.
    /// Only envelopes with a full sender are used (acks and pings may leave parts of it out).
    fn r#break(self, envelope: &mut v1::Envelope) -> bool {
        let config = Config::lan();
        let full_sender = envelope.sender.as_ref().is_some_and(|sender| sender.address.is_some());
        if !full_sender {
            return false;
        }
        let body = envelope.body.as_mut().expect("a real datagram has a body");
        match self {
            Rule::Version => envelope.protocol_version = PROTOCOL_VERSION + 1,
            Rule::Cluster => envelope.cluster.push('!'),
            Rule::NoSender => envelope.sender = None,
            Rule::NoBody => envelope.body = None,
            Rule::SenderAddress => {
                let sender = envelope.sender.as_mut().expect("checked");
                sender.address =
                    Some(v1::Address { ip: Bytes::from_static(&[1, 2, 3]), port: 1, ..Default::default() });
            }
            Rule::SenderNameTooLong => {
                envelope.sender.as_mut().expect("checked").name = "n".repeat(config.max_name_size + 1);
            }
            Rule::EmptyDigestName => match digest_of(body).and_then(|digest| digest.last_mut()) {
                Some(entry) => entry.name.clear(),
                None => return false,
            },
            Rule::BadMembershipUpdate => envelope.membership.push(v1::MembershipUpdate::default()),
            Rule::EntriesOutOfOrder
            | Rule::FromAboveTo
            | Rule::ResetNotFromZero
            | Rule::KeyTooLong
            | Rule::ValueTooLong
            | Rule::BadDeltaAddress => {
                let Some(delta) = deltas_of(body).and_then(|deltas| deltas.last_mut()) else { return false };
                match self {
                    Rule::EntriesOutOfOrder if delta.entries.len() >= 2 => delta.entries.swap(0, 1),
                    Rule::FromAboveTo => delta.from_version = delta.to_version + 1,
                    Rule::ResetNotFromZero => {
                        delta.reset = true;
                        delta.from_version = delta.from_version.max(1);
                        delta.to_version = delta.to_version.max(delta.from_version);
                    }
                    Rule::KeyTooLong if !delta.entries.is_empty() => {
                        delta.entries[0].key = "k".repeat(config.max_key_size + 1);
                    }
                    Rule::ValueTooLong if !delta.entries.is_empty() => {
                        delta.entries[0].value = Bytes::from(vec![0; config.max_value_size + 1]);
                    }
                    Rule::BadDeltaAddress => delta.address = None,
                    _ => return false,
                }
            }
        }
        true
    }
}

fn deltas_of(body: &mut Body) -> Option<&mut Vec<v1::NodeDelta>> {
    match body {
        Body::SynAck(m) => Some(&mut m.deltas),
        Body::Ack2(m) => Some(&mut m.deltas),
        Body::Push(m) => Some(&mut m.deltas),
        Body::DeltaReply(m) => Some(&mut m.deltas),
        _ => None,
    }
}

fn digest_of(body: &mut Body) -> Option<&mut Vec<v1::DigestEntry>> {
    match body {
        Body::Syn(m) => Some(&mut m.digest),
        Body::SynAck(m) => Some(&mut m.digest),
        Body::Ack2(m) => Some(&mut m.request),
        Body::PushAck(m) => Some(&mut m.known),
        _ => None,
    }
}

// ----- g. every message round-trips -----

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9-]{1,24}", any::<String>()]
}

fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

fn small_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 0u64..300, any::<u64>()]
}

fn address_wire() -> impl Strategy<Value = v1::Address> {
    (prop_oneof![vec(any::<u8>(), 4), vec(any::<u8>(), 16), vec(any::<u8>(), 0..20)], any::<u32>())
        .prop_map(|(ip, port)| v1::Address { ip: Bytes::from(ip), port, ..Default::default() })
}

fn identity_wire() -> impl Strategy<Value = v1::NodeIdentity> {
    (text(), small_u64(), proptest::option::of(address_wire())).prop_map(|(name, generation, address)| {
        v1::NodeIdentity { name, generation, address, ..Default::default() }
    })
}

fn digest_entry() -> impl Strategy<Value = v1::DigestEntry> {
    (text(), small_u64(), small_u64(), small_u64(), any::<bool>(), any::<u32>(), any::<i32>()).prop_map(
        |(name, generation, max_version, gc_watermark, unknown, incarnation, state)| v1::DigestEntry {
            name,
            generation,
            max_version,
            gc_watermark,
            unknown,
            incarnation,
            state,
            ..Default::default()
        },
    )
}

fn entry() -> impl Strategy<Value = v1::Entry> {
    (text(), bytes(), small_u64(), any::<bool>()).prop_map(|(key, value, version, deleted)| v1::Entry {
        key,
        value,
        version,
        deleted,
        ..Default::default()
    })
}

fn node_delta() -> impl Strategy<Value = v1::NodeDelta> {
    (
        (text(), small_u64(), proptest::option::of(address_wire())),
        (small_u64(), small_u64(), small_u64(), any::<bool>()),
        vec(entry(), 0..5),
        (any::<u32>(), any::<i32>()),
    )
        .prop_map(
            |(
                (name, generation, address),
                (from_version, to_version, gc_watermark, reset),
                entries,
                (incarnation, state),
            )| v1::NodeDelta {
                name,
                generation,
                address,
                from_version,
                to_version,
                gc_watermark,
                reset,
                entries,
                incarnation,
                state,
                ..Default::default()
            },
        )
}

fn body() -> impl Strategy<Value = Body> {
    let deltas = || vec(node_delta(), 0..4);
    let digest = || vec(digest_entry(), 0..6);
    prop_oneof![
        (
            proptest::option::of((any::<u64>(), any::<u32>())),
            digest(),
            any::<i32>(),
            // None, the 64 a receiver reads, or a count it must ignore.
            prop_oneof![Just(Vec::new()), vec(any::<u32>(), 64), vec(any::<u32>(), 0..70)],
        )
            .prop_map(|(summary, digest, mode, bucket_sums)| Body::Syn(v1::Syn {
                summary: summary.map(|(hash, nodes)| v1::Summary { hash, nodes, ..Default::default() }),
                digest,
                mode,
                bucket_sums,
                ..Default::default()
            })),
        (deltas(), digest()).prop_map(|(deltas, digest)| Body::SynAck(v1::SynAck {
            deltas,
            digest,
            ..Default::default()
        })),
        (deltas(), digest()).prop_map(|(deltas, request)| Body::Ack2(v1::Ack2 { deltas, request })),
        (deltas(), any::<bool>()).prop_map(|(deltas, want_ack)| Body::Push(v1::Push {
            deltas,
            want_ack,
            ..Default::default()
        })),
        deltas().prop_map(|deltas| Body::DeltaReply(v1::DeltaReply { deltas, ..Default::default() })),
        (digest(), any::<bool>(), any::<bool>()).prop_map(|(known, in_sync, data_in_sync)| {
            Body::PushAck(v1::PushAck { known, in_sync, data_in_sync })
        }),
        (any::<u32>(), proptest::option::of(any::<u32>()))
            .prop_map(|(sequence, summary)| Body::Ping(v1::Ping { sequence, summary })),
        (any::<u32>(), proptest::option::of(identity_wire()), any::<bool>()).prop_map(
            |(sequence, target, nack)| Body::PingReq(v1::PingReq {
                sequence,
                target,
                nack,
                ..Default::default()
            })
        ),
        any::<u32>().prop_map(|sequence| Body::Ack(v1::Ack { sequence, ..Default::default() })),
        any::<u32>().prop_map(|sequence| Body::Nack(v1::Nack { sequence, ..Default::default() })),
    ]
}

fn membership_update() -> impl Strategy<Value = v1::MembershipUpdate> {
    (proptest::option::of(identity_wire()), any::<u32>(), any::<i32>(), text()).prop_map(
        |(member, incarnation, state, from)| v1::MembershipUpdate {
            member,
            incarnation,
            state,
            from,
            ..Default::default()
        },
    )
}

fn envelope() -> impl Strategy<Value = v1::Envelope> {
    (
        any::<u32>(),
        text(),
        proptest::option::of(identity_wire()),
        proptest::option::of(body()),
        vec(membership_update(), 0..4),
    )
        .prop_map(|(protocol_version, cluster, sender, body, membership)| v1::Envelope {
            protocol_version,
            cluster,
            sender,
            body,
            membership,
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Every envelope, of every body kind, encodes to exactly `encoded_len` bytes and
    /// decodes to itself.
    #[test]
    fn every_message_round_trips(envelope in envelope()) {
        let encoded = envelope.encode_to_vec();
        prop_assert_eq!(encoded.len(), envelope.encoded_len());
        let decoded = v1::Envelope::decode(&encoded[..]).expect("decodes");
        prop_assert_eq!(&decoded, &envelope);
        prop_assert_eq!(decoded.encode_to_vec(), encoded);
    }
}
