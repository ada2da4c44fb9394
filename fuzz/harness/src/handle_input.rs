//! The `handle_input` target: one [`Node`] driven by the fuzz bytes through its whole API.
//!
//! The input is a configuration byte, then a sequence of steps (see [`Op`] and
//! [`crate::input`] for the byte format): advance the clock, feed a datagram from one of
//! several addresses (raw bytes; bytes that are decoded, given the right version and
//! cluster and re-encoded; or an envelope built from the bytes by [`crate::craft`]), fire
//! the timeout (at the deadline or early), or issue a command (`set`, `delete`, `join`,
//! `leave`). After each step the node's outputs are drained (a bounded number of
//! `poll` calls) and these invariants are checked:
//!
//! - every transmit fits `max_datagram_size`;
//! - the queues are bounded: no step drains more than `max_pending_transmits` datagrams and
//!   `max_pending_events` events;
//! - the tables are within the caps: at most `max_nodes` nodes, at most `max_keys_per_node`
//!   keys in any table, and every other table and queue within its cap
//!   ([`Node::footprint`]);
//! - the node never declares itself suspect, dead or failed (it may have left, when told
//!   to), never changes its own name or address, changes its own generation only by a
//!   self-heal (an `Event::SelfHealed` from the generation it had to a higher one, which
//!   `Node::identity` reports too), and its own table is at the version of the writes the
//!   harness made;
//! - for a known `(node, generation)`, the incarnation never goes down, nor the max version
//!   except through a reset (a peer behind the sender's tombstone watermark rebuilds its
//!   replica, and a reset cut short by the datagram size may end below the old version);
//!   generations never go down while a node is known;
//! - a datagram counted as dropped leaves the digest unchanged and produces no output;
//! - after `handle_timeout(now)`, the next deadline is after `now`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gossip_core::fuzzing::{FuzzSealer, fuzz_keyring};
use gossip_core::proto::{PROTOCOL_VERSION, v1};
use gossip_core::sim::node_address;
use gossip_core::{
    AntiEntropyMode, Config, Dissemination, EncryptionMode, Event, Identity, Keyring, MemberState, Metrics,
    Node, Output, RumorRule,
};
use prost::Message;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::craft;
use crate::input::{Reader, Writer};

/// At most this many steps are run per input (so one input stays fast).
pub const MAX_STEPS: usize = 256;

/// The name of the node under test (node 0 of the simulator's naming, so that datagrams
/// captured from a simulated cluster address it).
pub const NAME: &str = "n0";

/// A step of the target, by its first byte (the byte modulo [`Op::COUNT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Advance the clock by a `u16` of milliseconds.
    Advance = 0,
    /// Advance the clock to the node's deadline if it is later, then fire the timeout.
    TimeoutAtDeadline = 1,
    /// Fire the timeout now, due or not (harmless by contract).
    TimeoutNow = 2,
    /// A datagram of raw bytes: a source byte, then the bytes.
    Raw = 3,
    /// Like [`Op::Raw`]; if the bytes decode, the protocol version and cluster are set right
    /// and the envelope is re-encoded, so that mutated real datagrams get past the first
    /// checks.
    Fixed = 4,
    /// An envelope built from the following bytes ([`crate::craft::envelope`]).
    Crafted = 5,
    /// `set(k{byte % 24}, value)`: a key byte (255 means a key too long), a length byte
    /// (times 5: some values are too large).
    Set = 6,
    /// `delete(k{byte % 24})`.
    Delete = 7,
    /// `join` up to three addresses (a count byte, then a source byte each).
    Join = 8,
    /// `leave()`, when the next byte is 0 modulo 8; `aggregate_set` of a name and a number
    /// when it is 1, `aggregate_remove` when it is 2; `broadcast` (3) or `broadcast_latest`
    /// (4) of a topic and payload, `send_to` a member of the pools (5); otherwise nothing.
    Leave = 9,
}

impl Op {
    /// How many kinds of step there are.
    pub const COUNT: u8 = 10;

    fn from_byte(byte: u8) -> Self {
        match byte % Self::COUNT {
            0 => Self::Advance,
            1 => Self::TimeoutAtDeadline,
            2 => Self::TimeoutNow,
            3 => Self::Raw,
            4 => Self::Fixed,
            5 => Self::Crafted,
            6 => Self::Set,
            7 => Self::Delete,
            8 => Self::Join,
            _ => Self::Leave,
        }
    }
}

/// Where datagrams come from and joins go to: the five simulated peers `n1` to `n5`, the
/// node's own address, an IPv6 address and an address outside the simulator's range.
pub fn source(byte: u8) -> SocketAddr {
    match byte % 8 {
        i @ 0..=4 => node_address(usize::from(i) + 1),
        5 => node_address(0),
        6 => "[fd00::7]:7946".parse().expect("an address"),
        _ => "192.168.1.1:1234".parse().expect("an address"),
    }
}

/// The source byte of the simulated node `index` (1 to 5).
pub fn source_of(index: usize) -> u8 {
    debug_assert!((1..=5).contains(&index));
    (index - 1) as u8
}

/// The configuration the node under test runs with: the LAN preset with small caps (so that
/// the fuzzer reaches them), short grace and retention periods (so that garbage collection
/// and forgetting happen within a few steps), and the mode bits of `byte`.
pub fn config(byte: u8) -> Config {
    let mut config = Config::lan();
    config.mode = match byte % 3 {
        0 => AntiEntropyMode::PushPull,
        1 => AntiEntropyMode::Pull,
        _ => AntiEntropyMode::Push,
    };
    config.dissemination = match (byte / 3) % 3 {
        0 => Dissemination::Both,
        1 => Dissemination::AntiEntropy,
        _ => Dissemination::Rumors,
    };
    config.rumor_rule = if (byte / 9) % 2 == 0 { RumorRule::Counter } else { RumorRule::Coin };
    if (byte / 18) % 2 == 1 {
        config.max_idle_gossip_interval = config.gossip_interval;
    }
    config.swim.lifeguard = (byte / 36) % 2 == 0;
    config.max_nodes = 6;
    config.max_keys_per_node = 12;
    config.max_hot_rumors = 8;
    config.max_pending_transmits = 32;
    config.max_pending_events = 64;
    config.swim.max_broadcasts = 16;
    config.swim.max_pending_relays = 4;
    config.swim.max_relays_per_requester = 2;
    config.tombstone_grace = Duration::from_secs(2);
    config.swim.dead_retention = Duration::from_secs(20);
    if sealed(byte) {
        config.encryption = EncryptionMode::Require;
    }
    config.validate().expect("a valid fuzz configuration");
    config
}

/// Whether the node under test requires sealed datagrams under
/// [`FUZZ_KEY`](gossip_core::fuzzing::FUZZ_KEY): then fixed-up and crafted envelopes are
/// sealed by a peer holding the key before they are delivered (raw bytes stay raw, and
/// exercise the refusals of the framing).
pub fn sealed(byte: u8) -> bool {
    (byte / 72) % 2 == 1
}

/// Runs the `handle_input` target on one input; panics on a violation.
pub fn handle_input(data: &[u8]) {
    let _ = run(data);
}

/// As [`handle_input`], returning the node's counters at the end.
pub fn run(data: &[u8]) -> Metrics {
    let mut r = Reader::new(data);
    let mut harness = Harness::new(r.u8());
    for _ in 0..MAX_STEPS {
        if r.is_empty() {
            break;
        }
        harness.step(&mut r);
    }
    harness.node.metrics()
}

/// What the harness remembers of a known node, to check that it only moves forward.
#[derive(Debug, Clone, Copy)]
struct Seen {
    generation: u64,
    max_version: u64,
    incarnation: u32,
}

struct Harness {
    node: Node<ChaCha8Rng>,
    /// Seals fixed-up and crafted envelopes in the sealed mode.
    sealer: Option<FuzzSealer>,
    sealer_rng: ChaCha8Rng,
    config: Config,
    base: Instant,
    now: Instant,
    /// The version of the node's own table after the harness's writes.
    own_version: u64,
    /// The node's own generation: 1, then what each self-heal reported.
    own_generation: u64,
    left: bool,
    seen: HashMap<String, Seen>,
    step: usize,
}

impl Harness {
    fn new(config_byte: u8) -> Self {
        let config = config(config_byte);
        // Only differences from this base matter; the run stays deterministic.
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        let identity = Identity::new(NAME, 1, node_address(0));
        let rng = ChaCha8Rng::seed_from_u64(u64::from(config_byte));
        let keyring = if sealed(config_byte) { fuzz_keyring() } else { Keyring::empty() };
        let node =
            Node::with_keyring(config.clone(), identity, base, rng, keyring).expect("a valid configuration");
        // The node's own table starts with the fingerprints it publishes, when it has keys.
        let own_version = node.node(NAME).map_or(0, |view| view.max_version);
        let sealer = sealed(config_byte).then(|| FuzzSealer::new(&config.cluster, "fuzz-peer"));
        let mut harness = Self {
            node,
            sealer,
            sealer_rng: ChaCha8Rng::seed_from_u64(!u64::from(config_byte)),
            config,
            base,
            now: base,
            own_version,
            own_generation: 1,
            left: false,
            seen: HashMap::new(),
            step: 0,
        };
        harness.drain(false);
        harness
    }

    /// An encoded envelope as a peer would send it: sealed in the sealed mode.
    fn frame(&mut self, encoded: Vec<u8>) -> Vec<u8> {
        match self.sealer.as_mut() {
            Some(sealer) => sealer.seal(&mut self.sealer_rng, &encoded),
            None => encoded,
        }
    }

    fn step(&mut self, r: &mut Reader<'_>) {
        self.step += 1;
        let op = Op::from_byte(r.u8());
        let before = (self.node.metrics(), self.node.digest_summary(), self.node.nodes().count());
        let mut datagram = false;
        let mut timeout = false;
        match op {
            Op::Advance => self.now += Duration::from_millis(u64::from(r.u16())),
            Op::TimeoutAtDeadline => {
                self.now = self.now.max(self.node.poll_timeout());
                self.node.handle_timeout(self.now);
                timeout = true;
            }
            Op::TimeoutNow => {
                self.node.handle_timeout(self.now);
                timeout = true;
            }
            Op::Raw => {
                let from = source(r.u8());
                self.node.handle_input(self.now, from, r.bytes());
                datagram = true;
            }
            Op::Fixed => {
                let from = source(r.u8());
                let bytes = r.bytes();
                match v1::Envelope::decode(bytes) {
                    Ok(mut envelope) => {
                        envelope.protocol_version = PROTOCOL_VERSION;
                        envelope.cluster.clone_from(&self.config.cluster);
                        let framed = self.frame(envelope.encode_to_vec());
                        self.node.handle_input(self.now, from, &framed);
                    }
                    Err(_) => self.node.handle_input(self.now, from, bytes),
                }
                datagram = true;
            }
            Op::Crafted => {
                let from = source(r.u8());
                let envelope = craft::envelope(r, &self.config);
                let framed = self.frame(envelope.encode_to_vec());
                self.node.handle_input(self.now, from, &framed);
                datagram = true;
            }
            Op::Set => {
                let key = match r.u8() {
                    255 => "k".repeat(self.config.max_key_size + 1),
                    byte => format!("k{}", byte % craft::KEYS),
                };
                let value = vec![b'w'; usize::from(r.u8()) * 5];
                if self.node.set(key, value).is_ok() {
                    self.own_version += 1;
                }
            }
            Op::Delete => {
                let key = format!("k{}", r.u8() % craft::KEYS);
                if let Ok(Some(_)) = self.node.delete(&key) {
                    self.own_version += 1;
                }
            }
            Op::Join => {
                let seeds: Vec<SocketAddr> = (0..r.below(4)).map(|_| source(r.u8())).collect();
                self.node.join(seeds);
            }
            Op::Leave => match r.below(8) {
                0 => {
                    self.node.leave();
                    self.left = true;
                }
                1 => {
                    let (name, value) = (craft::aggregate_name(r), craft::number(r));
                    let accepted = self.node.aggregate_set(&name, value).is_ok();
                    let valid = value.is_finite() && value.abs() <= 1e100 && (1..=64).contains(&name.len());
                    self.check(accepted || !valid || self.node.footprint().aggregates >= 8, || {
                        format!("aggregate_set({name:?}, {value}) was refused")
                    });
                }
                2 => {
                    self.node.aggregate_remove(&craft::aggregate_name(r));
                }
                3 | 4 => {
                    let topic = format!("t{}", r.below(3));
                    let payload = vec![b'b'; usize::from(r.u8()) * 5];
                    let fits = payload.len() <= self.config.messages.max_payload;
                    let sent = if r.below(2) == 0 {
                        self.node.broadcast(&topic, payload)
                    } else {
                        self.node.broadcast_latest(&topic, payload)
                    };
                    self.check(sent.is_ok() == fits || self.node.has_given_up_name(), || {
                        format!("a broadcast was refused or accepted wrongly: {sent:?}")
                    });
                }
                5 => {
                    let _ = self.node.send_to(&craft::name(r), vec![b'm'; usize::from(r.u8())]);
                }
                _ => {}
            },
        }
        let outputs = self.drain(true);
        if datagram && dropped(&self.node.metrics()) > dropped(&before.0) {
            self.check(outputs == 0, || "a dropped datagram produced output".to_owned());
            self.check(self.node.digest_summary() == before.1, || {
                "a dropped datagram changed the digest".to_owned()
            });
            self.check(self.node.nodes().count() == before.2, || {
                "a dropped datagram changed the table".to_owned()
            });
        }
        if timeout {
            let deadline = self.node.poll_timeout();
            self.check(deadline > self.now, || {
                format!("after handle_timeout at {:?} the deadline is {:?}", self.now - self.base, deadline)
            });
        }
        self.check_tables(before.0.replica_resets);
    }

    /// Drains the node's outputs, checking each transmit's size and the queue bounds;
    /// returns how many outputs there were.
    fn drain(&mut self, check_self: bool) -> usize {
        let (max_transmits, max_events) = (self.config.max_pending_transmits, self.config.max_pending_events);
        let (mut transmits, mut events) = (0, 0);
        for _ in 0..=max_transmits + max_events {
            match self.node.poll() {
                Some(Output::Transmit(transmit)) => {
                    transmits += 1;
                    let len = transmit.payload.len();
                    self.check(len <= self.config.max_datagram_size, || {
                        format!("a {len}-byte datagram to {}", transmit.to)
                    });
                }
                // The one output a dropped datagram may have: the report of another cluster.
                Some(Output::Event(Event::ForeignCluster { .. })) => {}
                Some(Output::Event(event)) => {
                    events += 1;
                    if let Event::SelfHealed { old_generation, new_generation, .. } = event {
                        self.check(
                            old_generation == self.own_generation && new_generation > old_generation,
                            || {
                                format!(
                                    "a heal from {old_generation} to {new_generation}, at {}",
                                    self.own_generation
                                )
                            },
                        );
                        self.own_generation = new_generation;
                    }
                    if check_self {
                        self.check_event(&event);
                    }
                }
                None => break,
            }
        }
        let drained = self.node.poll().is_none();
        self.check(transmits <= max_transmits && events <= max_events && drained, || {
            format!("{transmits} datagrams and {events} events (or more) queued in one step")
        });
        transmits + events
    }

    fn check_event(&self, event: &Event) {
        let about_us = match event {
            Event::MemberSuspected { name, .. } | Event::MemberFailed { name, .. } => name == NAME,
            Event::MemberDiscovered { name, .. } | Event::MemberRestarted { name, .. } => name == NAME,
            _ => false,
        };
        self.check(!about_us, || format!("the node reported about itself: {event:?}"));
    }

    fn check_tables(&mut self, resets_before: u64) {
        let reset = self.node.metrics().replica_resets > resets_before;
        let count = self.node.nodes().count();
        self.check(count <= self.config.max_nodes, || format!("{count} nodes known"));
        let footprint = self.node.footprint();
        self.check(footprint.over_cap(&self.config).is_none(), || format!("over a cap: {footprint:?}"));
        let mut present = Vec::with_capacity(count);
        for view in self.node.nodes() {
            self.check(view.keys <= self.config.max_keys_per_node, || {
                format!("{} keys in the table of {}", view.keys, view.name)
            });
            if view.name == NAME {
                let allowed = if self.left {
                    matches!(view.state, MemberState::Alive | MemberState::Left)
                } else {
                    view.state == MemberState::Alive
                };
                self.check(allowed, || format!("the node holds itself {:?}", view.state));
                let identity = self.node.identity();
                let generation = self.own_generation;
                self.check(
                    view.generation == generation
                        && identity.generation == generation
                        && view.address == node_address(0)
                        && identity.address == node_address(0),
                    || format!("the node's own identity changed without a heal to it: {view:?}"),
                );
                self.check(view.max_version == self.own_version, || {
                    format!(
                        "own table at version {}, the harness wrote {}",
                        view.max_version, self.own_version
                    )
                });
            }
            let now = Seen {
                generation: view.generation,
                max_version: view.max_version,
                incarnation: view.incarnation,
            };
            if let Some(was) = self.seen.get(view.name) {
                self.check(now.generation >= was.generation, || {
                    format!(
                        "{}: generation went back from {} to {}",
                        view.name, was.generation, now.generation
                    )
                });
                if now.generation == was.generation {
                    self.check(now.incarnation >= was.incarnation, || {
                        format!(
                            "{}: incarnation went back from {} to {}",
                            view.name, was.incarnation, now.incarnation
                        )
                    });
                    self.check(reset || now.max_version >= was.max_version, || {
                        format!(
                            "{}: max version went back from {} to {}",
                            view.name, was.max_version, now.max_version
                        )
                    });
                }
            }
            present.push((view.name.to_owned(), now));
        }
        // A forgotten node may come back at any generation: only known nodes are tracked.
        self.seen = present.into_iter().collect();
    }

    fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            panic!("step {}, at {:?}: {}", self.step, self.now - self.base, what());
        }
    }
}

/// Datagrams dropped whole, by every reason that promises no state change.
fn dropped(metrics: &Metrics) -> u64 {
    metrics.dropped_whole()
}

/// Writes inputs of this target (for the corpus generator and regression tests).
#[derive(Debug, Clone)]
pub struct InputWriter {
    writer: Writer,
}

impl InputWriter {
    /// An input whose configuration byte is `config_byte` (see [`config`]).
    pub fn new(config_byte: u8) -> Self {
        let mut writer = Writer::new();
        writer.u8(config_byte);
        Self { writer }
    }

    /// Advances the clock by `millis`.
    pub fn advance(&mut self, millis: u16) -> &mut Self {
        self.writer.u8(Op::Advance as u8).u16(millis);
        self
    }

    /// Fires the timeout at the node's deadline.
    pub fn timeout(&mut self) -> &mut Self {
        self.writer.u8(Op::TimeoutAtDeadline as u8);
        self
    }

    /// Feeds `datagram` from simulated node `from` (1 to 5) as raw bytes.
    pub fn datagram(&mut self, from: usize, datagram: &[u8]) -> &mut Self {
        self.writer.u8(Op::Raw as u8).u8(source_of(from)).bytes(datagram);
        self
    }

    /// Feeds `datagram` from simulated node `from` (1 to 5) fixed up (and sealed, in the
    /// sealed mode) as [`Op::Fixed`] does.
    pub fn fixed(&mut self, from: usize, datagram: &[u8]) -> &mut Self {
        self.writer.u8(Op::Fixed as u8).u8(source_of(from)).bytes(datagram);
        self
    }

    /// `set(k{key}, value of len * 5 bytes)`.
    pub fn set(&mut self, key: u8, len: u8) -> &mut Self {
        self.writer.u8(Op::Set as u8).u8(key).u8(len);
        self
    }

    /// `join` the simulated node `seed` (1 to 5).
    pub fn join(&mut self, seed: usize) -> &mut Self {
        self.writer.u8(Op::Join as u8).u8(1).u8(source_of(seed));
        self
    }

    /// The input.
    pub fn finish(&self) -> Vec<u8> {
        self.writer.finish()
    }
}
