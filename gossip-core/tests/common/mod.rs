//! A small hand-driven harness for scenario tests: several nodes on virtual time, datagrams
//! delivered after a fixed latency, links that can be cut, nodes that can be stopped and
//! restarted. (The full simulator lives in `gossip_core::sim`.)

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_core::{Config, DigestSummary, Event, Identity, Keyring, Metrics, Node, Output};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// A datagram on its way.
struct InFlight {
    from: usize,
    to: usize,
    payload: Bytes,
}

/// Several nodes on one virtual clock.
pub struct Harness {
    pub nodes: Vec<Node<ChaCha8Rng>>,
    pub events: Vec<Vec<Event>>,
    pub now: Instant,
    pub start: Instant,
    pub latency: Duration,
    /// Nodes that are stopped: they receive nothing and their timers do not fire.
    pub down: BTreeSet<usize>,
    /// Cut links (from, to).
    pub cut: BTreeSet<(usize, usize)>,
    /// Largest datagram seen.
    pub max_datagram: usize,
    /// Datagrams sent to an address that is not a node of the harness.
    pub lost: u64,
    /// When set, every datagram a node sends is recorded here as `(from, to, payload)`
    /// (replay tests).
    pub recorded: Option<Vec<(usize, SocketAddr, Bytes)>>,
    queue: BTreeMap<(Instant, u64), InFlight>,
    sequence: u64,
    seed: u64,
}

pub fn address(index: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 10_000 + index as u16))
}

pub fn name(index: usize) -> String {
    format!("node-{index}")
}

/// The harness index behind an address made by [`address`], if it is one.
pub fn index_of(address: SocketAddr) -> Option<usize> {
    address.port().checked_sub(10_000).map(usize::from)
}

/// Everything a node holds, for checking that an input changed nothing: its digest
/// summary, and for every known node its generation, max version, watermark and live entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub summary: DigestSummary,
    pub nodes: Vec<NodeSnapshot>,
}

/// One known node in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSnapshot {
    pub name: String,
    pub generation: u64,
    pub max_version: u64,
    pub gc_watermark: u64,
    /// Live entries as `(key, value, version)`, in version order.
    pub entries: Vec<(String, Bytes, u64)>,
}

impl Harness {
    /// `n` nodes with `config`; every node joins node 0.
    pub fn new(n: usize, config: Config, seed: u64) -> Self {
        Self::with_keyrings(n, config, seed, |_| Keyring::empty())
    }

    /// As [`new`](Self::new), node `i` starting with `keyring(i)`.
    pub fn with_keyrings(n: usize, config: Config, seed: u64, keyring: impl Fn(usize) -> Keyring) -> Self {
        // Only differences from this base matter; the run stays deterministic.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let nodes = (0..n)
            .map(|i| {
                let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(i as u64));
                let identity = Identity::new(name(i), 1, address(i));
                Node::with_keyring(config.clone(), identity, start, rng, keyring(i)).unwrap()
            })
            .collect();
        let mut harness = Self {
            nodes,
            events: vec![Vec::new(); n],
            now: start,
            start,
            latency: Duration::from_millis(1),
            down: BTreeSet::new(),
            cut: BTreeSet::new(),
            max_datagram: 0,
            lost: 0,
            recorded: None,
            queue: BTreeMap::new(),
            sequence: 0,
            seed,
        };
        for i in 1..n {
            harness.nodes[i].join([address(0)]);
            harness.drain(i);
        }
        harness
    }

    /// Drains a node's outputs into the network and the event log.
    pub fn drain(&mut self, index: usize) {
        while let Some(output) = self.nodes[index].poll() {
            match output {
                Output::Transmit(transmit) => {
                    self.max_datagram = self.max_datagram.max(transmit.payload.len());
                    if let Some(recorded) = self.recorded.as_mut() {
                        recorded.push((index, transmit.to, transmit.payload.clone()));
                    }
                    // Datagrams to addresses outside the harness (a fake peer a test made up)
                    // are lost, as they would be on a real network.
                    let Some(to) = index_of(transmit.to).filter(|to| *to < self.nodes.len()) else {
                        self.lost += 1;
                        continue;
                    };
                    if self.cut.contains(&(index, to)) {
                        continue;
                    }
                    self.sequence += 1;
                    self.queue.insert(
                        (self.now + self.latency, self.sequence),
                        InFlight { from: index, to, payload: transmit.payload },
                    );
                }
                Output::Event(event) => self.events[index].push(event),
            }
        }
    }

    /// Runs the cluster until `deadline` (virtual time).
    pub fn run_until(&mut self, deadline: Instant) {
        loop {
            let next_delivery = self.queue.keys().next().map(|(at, _)| *at);
            let next_timer = (0..self.nodes.len())
                .filter(|i| !self.down.contains(i))
                .map(|i| (self.nodes[i].poll_timeout(), i))
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > deadline {
                break;
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let (_, datagram) = self.queue.pop_first().unwrap();
                if self.down.contains(&datagram.to) || self.cut.contains(&(datagram.from, datagram.to)) {
                    continue;
                }
                self.nodes[datagram.to].handle_input(self.now, address(datagram.from), &datagram.payload);
                self.drain(datagram.to);
            } else if let Some((_, i)) = next_timer {
                self.nodes[i].handle_timeout(self.now);
                self.drain(i);
            }
        }
        self.now = self.now.max(deadline);
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let deadline = self.now + duration;
        self.run_until(deadline);
    }

    /// Runs until `done` holds (checked every `step`) or `limit` passes; returns the time it took.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        step: Duration,
        mut done: impl FnMut(&Harness) -> bool,
    ) -> Option<Duration> {
        let began = self.now;
        while self.now < began + limit {
            if done(self) {
                return Some(self.now - began);
            }
            self.run_for(step);
        }
        done(self).then(|| self.now - began)
    }

    /// Whether every live node has the same digest summary.
    pub fn in_sync(&self) -> bool {
        let mut live = (0..self.nodes.len()).filter(|i| !self.down.contains(i));
        let Some(first) = live.next() else { return true };
        let summary = self.nodes[first].digest_summary();
        live.all(|i| self.nodes[i].digest_summary() == summary)
    }

    /// Cuts every link to and from `index`.
    pub fn isolate(&mut self, index: usize) {
        for other in 0..self.nodes.len() {
            self.cut.insert((index, other));
            self.cut.insert((other, index));
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Replaces node `index` with a fresh process under `generation` (empty table), which
    /// joins node `seed`.
    pub fn restart(&mut self, index: usize, generation: u64, config: Config, seed: usize) {
        let rng = ChaCha8Rng::seed_from_u64(self.seed ^ generation.rotate_left(17) ^ index as u64);
        let identity = Identity::new(name(index), generation, address(index));
        self.nodes[index] = Node::new(config, identity, self.now, rng).unwrap();
        self.down.remove(&index);
        self.nodes[index].join([address(seed)]);
        self.drain(index);
    }

    /// Adds a fresh node (generation 1) that knows nothing but the address of node `seed`,
    /// and has it join; returns its index.
    pub fn add(&mut self, config: Config, seed: usize) -> usize {
        let index = self.nodes.len();
        let rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(1000).wrapping_add(index as u64));
        let identity = Identity::new(name(index), 1, address(index));
        self.nodes.push(Node::new(config, identity, self.now, rng).unwrap());
        self.events.push(Vec::new());
        self.nodes[index].join([address(seed)]);
        self.drain(index);
        index
    }

    /// As [`add`](Self::add), under `name` and `generation` (another process started under
    /// a name in use, for one); returns its index.
    pub fn add_named(&mut self, config: Config, name: &str, generation: u64, seed: usize) -> usize {
        let index = self.nodes.len();
        let rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(1000).wrapping_add(index as u64));
        let identity = Identity::new(name, generation, address(index));
        self.nodes.push(Node::new(config, identity, self.now, rng).unwrap());
        self.events.push(Vec::new());
        self.nodes[index].join([address(seed)]);
        self.drain(index);
        index
    }

    /// Hands a raw datagram to node `to` as if it came from `from`.
    pub fn inject(&mut self, from: SocketAddr, to: usize, datagram: &[u8]) {
        let now = self.now;
        self.nodes[to].handle_input(now, from, datagram);
        self.drain(to);
    }

    /// A snapshot of node `index`'s state (see [`Snapshot`]).
    pub fn snapshot(&self, index: usize) -> Snapshot {
        let node = &self.nodes[index];
        let nodes = node
            .nodes()
            .map(|view| {
                let entries = node
                    .entries(view.name)
                    .expect("listed node")
                    .map(|(key, value, version)| {
                        (key.to_owned(), bytes::Bytes::copy_from_slice(value), version)
                    })
                    .collect();
                NodeSnapshot {
                    name: view.name.to_owned(),
                    generation: view.generation,
                    max_version: view.max_version,
                    gc_watermark: view.gc_watermark,
                    entries,
                }
            })
            .collect();
        Snapshot { summary: node.digest_summary(), nodes }
    }

    /// Whether every live node holds `owner`'s `key` with `value`.
    pub fn all_see(&self, owner: usize, key: &str, value: &[u8]) -> bool {
        (0..self.nodes.len())
            .filter(|i| !self.down.contains(i))
            .all(|i| self.nodes[i].get(&name(owner), key) == Some(value))
    }

    /// The metrics of every node.
    pub fn metrics(&self) -> Vec<Metrics> {
        self.nodes.iter().map(Node::metrics).collect()
    }

    /// A node outside the harness (its own identity and config), created at the harness's now.
    pub fn outsider(&self, config: Config, identity: Identity, seed: u64) -> Node<ChaCha8Rng> {
        Node::new(config, identity, self.now, ChaCha8Rng::seed_from_u64(seed)).unwrap()
    }
}
