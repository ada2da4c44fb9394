//! The simulated cluster: its nodes, how it is built and what can be read from it. The
//! commands that change it (writes, faults, partitions) are in `cluster/commands.rs`; running
//! it is in `driver.rs`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_proto::v1;
use prost::Message;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::config::Config;
use crate::event::Event;
use crate::identity::Identity;
use crate::keyring::{EncryptionMode, KEYRING_KEY, KeyFingerprint, KeyringError, SecretKey};
use crate::node::Node;
use crate::sim::FixedHashMap;
use crate::sim::app_events::AppEvents;
use crate::sim::clock::{self, ClockJump, NodeClock};
use crate::sim::config::{Bootstrap, SimConfig};
use crate::sim::invariants::{Checks, VersionMemory};
use crate::sim::ledger::Ledger;
use crate::sim::link::LinkModel;
use crate::sim::network::{CutId, Network, NodeSet};
use crate::sim::observe::{NetworkStats, Observer, TrackedWrite, Traffic, WriteId};
use crate::sim::queue::EventQueue;
use crate::sim::scenario::{Action, Scenario};
use crate::sim::trace::{Record, Trace};
use crate::sim::watch::{MemberRecord, ProcessingDelay, SentRecord};
use crate::sim::{SimError, Violation};

mod commands;

/// The port every simulated node listens on.
const PORT: u16 = 7946;

/// The name of node `index`: `n{index}`.
pub fn node_name(index: usize) -> String {
    format!("n{index}")
}

/// The address of node `index`: `10.x.y.z:7946` with `x.y.z` the index in base 256.
pub fn node_address(index: usize) -> SocketAddr {
    let [_, x, y, z] = (index as u32).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, x, y, z)), PORT)
}

/// The index of the node at `address`, if it is one of the `len` simulated addresses.
pub(crate) fn index_of_address(address: SocketAddr, len: usize) -> Option<usize> {
    let IpAddr::V4(ip) = address.ip() else { return None };
    let [ten, x, y, z] = ip.octets();
    let index = u32::from_be_bytes([0, x, y, z]) as usize;
    (ten == 10 && address.port() == PORT && index < len).then_some(index)
}

/// The node at `address`: its default address unless it moved away, or the address it moved
/// to (`moved` holds the addresses that are not defaults).
pub(crate) fn index_at(
    addresses: &[SocketAddr],
    moved: &FixedHashMap<SocketAddr, usize>,
    address: SocketAddr,
) -> Option<usize> {
    if moved.is_empty() {
        return index_of_address(address, addresses.len());
    }
    if let Some(index) = moved.get(&address) {
        return Some(*index);
    }
    index_of_address(address, addresses.len()).filter(|index| addresses[*index] == address)
}

/// The index of the node named `name` (`n0`, `n1`, ...; see [`node_name`]), if it is one of
/// the `len` simulated names.
pub fn index_of_name(name: &str, len: usize) -> Option<usize> {
    let digits = name.strip_prefix('n')?;
    if digits.starts_with('0') && digits.len() > 1 {
        return None;
    }
    digits.parse::<usize>().ok().filter(|index| *index < len)
}

/// A seed for one purpose derived from the run's seed: the xxh3 hash of `(a, b)` under
/// `seed`. The simulator derives every node's RNG and every link's randomness this way;
/// drivers built on it (the studies of `gossip-sim`) derive their own RNGs from purposes the
/// simulator does not use (`a` near `u64::MAX`), so a run stays a pure function of its seed.
pub fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut input = [0u8; 16];
    input[..8].copy_from_slice(&a.to_le_bytes());
    input[8..].copy_from_slice(&b.to_le_bytes());
    xxh3_64_with_seed(&input, seed)
}

/// What is scheduled on the event queue.
#[derive(Debug)]
pub(crate) enum Scheduled {
    Deliver {
        from: u32,
        to: u32,
        payload: Bytes,
    },
    /// A datagram that waited out a slow node's processing delay; dropped if the node
    /// restarted (or crashed) meanwhile.
    Handle {
        from: u32,
        to: u32,
        generation: u64,
        payload: Bytes,
    },
    Timer {
        node: u32,
        epoch: u64,
    },
    Action(Action),
}

/// One node's place in the cluster: its process (if up) and what the simulator keeps for it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) node: Option<Node<ChaCha8Rng>>,
    pub(crate) clock: NodeClock,
    pub(crate) paused: bool,
    /// Datagrams that arrived while paused: (sender, payload).
    pub(crate) inbox: VecDeque<(usize, Bytes)>,
    /// Only the timer event with this epoch is current.
    pub(crate) epoch: u64,
    /// When the current timer event fires.
    pub(crate) armed: Option<Duration>,
    /// How late the node handles its datagrams and timers.
    pub(crate) delay: ProcessingDelay,
    /// When the last delayed datagram is handled (they are handled in arrival order).
    pub(crate) last_handle: Duration,
}

impl Slot {
    /// A running node on `clock`, not paused, with no timer armed yet.
    fn running(node: Node<ChaCha8Rng>, clock: NodeClock) -> Self {
        Self {
            node: Some(node),
            clock,
            paused: false,
            inbox: VecDeque::new(),
            epoch: 0,
            armed: None,
            delay: ProcessingDelay::NONE,
            last_handle: Duration::ZERO,
        }
    }
}

/// Many [`Node`]s in one process on a virtual clock, exchanging their real encoded datagrams
/// through a simulated network.
///
/// Build it from a [`SimConfig`], schedule [`Action`]s or call the commands, then run it
/// with [`run_until`](Self::run_until) or [`step`](Self::step). Everything random derives from
/// the seed, so a run is reproducible: compare [`trace_hash`](Self::trace_hash)es.
///
/// ```
/// use std::time::Duration;
/// use gossip_core::sim::{SimConfig, Simulation};
///
/// let mut sim = Simulation::new(SimConfig::new(5, 42)).unwrap();
/// let write = sim.set(3, "color", "blue").unwrap();
/// sim.run_for(Duration::from_secs(5)).unwrap();
/// assert!(sim.write(write).unwrap().all_informed_at.is_some());
/// assert_eq!(sim.node(0).unwrap().get("n3", "color"), Some(&b"blue"[..]));
/// ```
#[derive(Debug)]
pub struct Simulation {
    pub(crate) seed: u64,
    pub(crate) base: Instant,
    pub(crate) now: Duration,
    pub(crate) node_config: Config,
    pub(crate) checks: Checks,
    pub(crate) restart_seeds: Vec<usize>,
    pub(crate) paused_buffer: usize,
    pub(crate) replay: String,
    pub(crate) slots: Vec<Slot>,
    pub(crate) names: Vec<Arc<str>>,
    /// Current address of each node.
    pub(crate) addresses: Vec<SocketAddr>,
    /// The nodes that moved to an address other than their default one, by that address.
    pub(crate) moved: FixedHashMap<SocketAddr, usize>,
    /// Current generation of each node.
    pub(crate) generations: Vec<u64>,
    /// Whether each node ever restarted (then replicas may hold other generations of it).
    pub(crate) restarted: Vec<bool>,
    pub(crate) queue: EventQueue<Scheduled>,
    pub(crate) network: Network,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) ledger: Ledger,
    pub(crate) observer: Observer,
    pub(crate) memory: VersionMemory,
    pub(crate) trace: Trace,
    pub(crate) events: Option<Vec<(Duration, usize, Event)>>,
    pub(crate) membership: Option<Vec<MemberRecord>>,
    pub(crate) steps: u64,
    pub(crate) failure: Option<Box<Violation>>,
    pub(crate) skipped_actions: u64,
    /// What each node told its application, checked step by step (with every-step checks).
    pub(crate) app_events: Option<AppEvents>,
    /// Every node answers the queries it gets (see [`SimConfig::answer_queries`]).
    pub(crate) answer_queries: bool,
    /// Nodes may write their tables on their own, accepting write requests by policy: the
    /// ledger is brought in step after every datagram.
    pub(crate) own_writes: bool,
}

impl Simulation {
    /// Builds the cluster at virtual time zero.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        config.link.validate()?;
        if config.nodes > 1 << 24 {
            return Err(SimError::Setup(format!(
                "{} nodes: the simulator addresses at most 2^24",
                config.nodes
            )));
        }
        let n = config.nodes;
        let mut sim = Self {
            seed: config.seed,
            base: config.base.unwrap_or_else(clock::default_base),
            now: Duration::ZERO,
            node_config: config.node_config.clone(),
            checks: config.checks,
            restart_seeds: config.restart_seeds.clone(),
            paused_buffer: config.paused_buffer,
            replay: config.replay_text(),
            slots: Vec::with_capacity(n),
            names: (0..n).map(|i| Arc::from(node_name(i))).collect(),
            addresses: (0..n).map(node_address).collect(),
            moved: FixedHashMap::default(),
            generations: vec![1; n],
            restarted: vec![false; n],
            queue: EventQueue::new(),
            network: Network::new(config.link),
            rng: ChaCha8Rng::seed_from_u64(derive_seed(config.seed, u64::MAX, 0)),
            ledger: Ledger::default(),
            observer: Observer::new(n),
            memory: VersionMemory::new(),
            trace: Trace::new(config.seed),
            events: config.record_events.then(Vec::new),
            answer_queries: config.answer_queries,
            own_writes: matches!(
                config.node_config.messages.write_policy,
                crate::WritePolicy::AcceptPrefix(_)
            ),
            membership: config.record_membership.then(Vec::new),
            steps: 0,
            failure: None,
            skipped_actions: 0,
            app_events: (config.checks == Checks::EveryStep).then(AppEvents::default),
        };
        for index in 0..n {
            let node = sim.start_node(index, 1)?;
            sim.slots.push(Slot::running(node, NodeClock::default()));
        }
        match &config.bootstrap {
            Bootstrap::InSync => sim.introduce_everyone(config.build_threads),
            Bootstrap::Join(seeds) => {
                for index in 0..n {
                    let seeds: Vec<SocketAddr> =
                        seeds.iter().filter(|s| **s != index && **s < n).map(|s| sim.addresses[*s]).collect();
                    if let Some(node) = sim.slots[index].node.as_mut() {
                        node.join(seeds);
                    }
                }
            }
            Bootstrap::Alone => {}
        }
        for index in 0..n {
            sim.drain(index);
        }
        Ok(sim)
    }

    /// A new process for node `index` under `generation`, at the current virtual time.
    fn start_node(&mut self, index: usize, generation: u64) -> Result<Node<ChaCha8Rng>, SimError> {
        let rng = ChaCha8Rng::seed_from_u64(derive_seed(self.seed, index as u64, generation));
        let identity = Identity::new(self.names[index].to_string(), generation, self.addresses[index]);
        let local = match self.slots.get_mut(index) {
            Some(slot) => slot.clock.local(self.base, self.now),
            None => self.base + self.now,
        };
        let node = Node::new(self.node_config.clone(), identity, local, rng)?;
        self.ledger.start(index, generation);
        Ok(node)
    }

    /// Makes every node know every other (generation 1, empty table), in parallel.
    fn introduce_everyone(&mut self, threads: usize) {
        let n = self.slots.len();
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |t| t.get()),
            t => t,
        };
        let chunk = n.div_ceil(threads.max(1)).max(1);
        let names = &self.names;
        std::thread::scope(|scope| {
            for (part, slots) in self.slots.chunks_mut(chunk).enumerate() {
                scope.spawn(move || {
                    for (offset, slot) in slots.iter_mut().enumerate() {
                        let index = part * chunk + offset;
                        let Some(node) = slot.node.as_mut() else { continue };
                        node.reserve_nodes(n.saturating_sub(1));
                        for (other, name) in names.iter().enumerate() {
                            if other != index {
                                node.insert_known_node(name.clone(), 1, node_address(other));
                            }
                        }
                    }
                });
            }
        });
    }

    // ----- getters -----

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time since the start of the run.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The `Instant` virtual time zero maps to.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// Number of node slots (live or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Number of nodes up (paused ones included).
    pub fn live_nodes(&self) -> usize {
        self.slots.iter().filter(|slot| slot.node.is_some()).count()
    }

    /// Node `index`, unless it is down.
    pub fn node(&self, index: usize) -> Option<&Node<ChaCha8Rng>> {
        self.slots.get(index)?.node.as_ref()
    }

    /// The name of node `index`.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(|name| &**name)
    }

    /// The current address of node `index` (its [`node_address`] unless it moved).
    pub fn address(&self, index: usize) -> Option<SocketAddr> {
        self.addresses.get(index).copied()
    }

    /// The node listening at `address` now, if any.
    pub fn index_at(&self, address: SocketAddr) -> Option<usize> {
        index_at(&self.addresses, &self.moved, address)
    }

    /// How late node `index` handles its datagrams and timers.
    pub fn processing_delay(&self, index: usize) -> Option<ProcessingDelay> {
        self.slots.get(index).map(|slot| slot.delay)
    }

    /// The current generation of node `index`.
    pub fn generation(&self, index: usize) -> Option<u64> {
        self.generations.get(index).copied()
    }

    /// Whether node `index` is paused.
    pub fn is_paused(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(|slot| slot.paused)
    }

    /// What happened to the datagrams so far.
    pub fn stats(&self) -> NetworkStats {
        self.observer.stats
    }

    /// What node `index` has sent so far (all its generations).
    pub fn sent_by(&self, index: usize) -> Traffic {
        self.observer.sent_by.get(index).copied().unwrap_or_default()
    }

    /// A write the simulator made, with who learned it when.
    pub fn write(&self, id: WriteId) -> Option<&TrackedWrite> {
        self.observer.write(id)
    }

    /// Every write the simulator made, in order (a [`WriteId`] indexes it).
    pub fn writes(&self) -> &[TrackedWrite] {
        self.observer.writes()
    }

    /// When node `node` first learned the write of `key` by `owner` at `version` (under the
    /// owner's current generation), if it has.
    pub fn learned_at(&self, node: usize, owner: usize, key: &str, version: u64) -> Option<Duration> {
        let generation = self.generation(owner)?;
        self.observer
            .writes()
            .iter()
            .find(|w| {
                w.owner == owner && w.generation == generation && &*w.key == key && w.version == version
            })?
            .learned_at(node)
    }

    /// The writes the simulator made, per node and generation: the truth replicas are
    /// checked against.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Every event of every node, as `(time, node, event)`, if the config asked for it.
    pub fn events(&self) -> Option<&[(Duration, usize, Event)]> {
        self.events.as_deref()
    }

    /// Takes the membership changes logged since the last call, in order, if the config
    /// asked for the log ([`SimConfig::with_membership_log`]). Taking them keeps the log
    /// short on long runs.
    pub fn take_membership_log(&mut self) -> Vec<MemberRecord> {
        self.membership.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Starts logging every datagram sent to node `index` (by anyone, whether it arrives or
    /// not), with its kind: see [`take_sends_log`](Self::take_sends_log).
    pub fn watch_sends_to(&mut self, index: usize) {
        self.observer.watch(index);
    }

    /// Takes the datagrams sent to watched nodes since the last call, in order.
    pub fn take_sends_log(&mut self) -> Vec<SentRecord> {
        self.observer.take_watched()
    }

    /// The hash of everything delivered and emitted so far, with its time. Equal for two
    /// runs of the same scenario with the same seed.
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    /// Records in the trace (datagrams, events, losses, timers, actions).
    pub fn trace_len(&self) -> u64 {
        self.trace.records()
    }

    /// Steps run so far (queue items and commands).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Scheduled actions skipped because their node was down.
    pub fn skipped_actions(&self) -> u64 {
        self.skipped_actions
    }

    /// Items waiting on the event queue.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The violation that stopped the run, if any.
    pub fn failure(&self) -> Option<&Violation> {
        self.failure.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_map_back_to_indexes() {
        for index in [0, 1, 255, 256, 9_999, (1 << 24) - 1] {
            assert_eq!(index_of_address(node_address(index), 1 << 24), Some(index));
            assert_eq!(index_of_name(&node_name(index), 1 << 24), Some(index));
        }
        assert_eq!(index_of_address(node_address(10), 10), None);
        assert_eq!(index_of_address("10.0.0.1:80".parse().unwrap(), 10), None);
        assert_eq!(index_of_name("n01", 10), None);
        assert_eq!(index_of_name("x1", 10), None);
    }
}
