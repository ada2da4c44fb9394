//! The simulated cluster: its nodes, how it is built, what can be read from it, and the
//! commands that change it (writes, faults, partitions). Running it is in `driver.rs`.

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
/// assert_eq!(sim.node(0).unwrap().get("n3", "color").map(|v| &v[..]), Some(&b"blue"[..]));
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
            membership: config.record_membership.then(Vec::new),
            steps: 0,
            failure: None,
            skipped_actions: 0,
            app_events: (config.checks == Checks::EveryStep).then(AppEvents::default),
        };
        for index in 0..n {
            let node = sim.start_node(index, 1)?;
            sim.slots.push(Slot {
                node: Some(node),
                clock: NodeClock::default(),
                paused: false,
                inbox: VecDeque::new(),
                epoch: 0,
                armed: None,
                delay: ProcessingDelay::NONE,
                last_handle: Duration::ZERO,
            });
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

    // ----- commands (take effect now) -----

    /// Schedules `action` at virtual time `at` (at once if `at` has passed).
    pub fn schedule(&mut self, at: Duration, action: Action) {
        self.queue.push(at.max(self.now), Scheduled::Action(action));
    }

    /// Schedules every action of `scenario`.
    pub fn load(&mut self, scenario: &Scenario) {
        for (at, action) in scenario.actions() {
            self.schedule(*at, action.clone());
        }
    }

    /// Node `index` writes `key = value` now.
    pub fn set(&mut self, index: usize, key: &str, value: impl Into<Bytes>) -> Result<WriteId, SimError> {
        let value = value.into();
        let node = self.live_node(index)?;
        let version = node.set(key, value.clone())?;
        let id = self.record_write(index, key, Some(value), version);
        self.after_command(index)?;
        Ok(id)
    }

    /// Node `index` deletes `key` now; `None` when it did not hold the key.
    pub fn delete(&mut self, index: usize, key: &str) -> Result<Option<WriteId>, SimError> {
        let node = self.live_node(index)?;
        let Some(version) = node.delete(key)? else { return Ok(None) };
        let id = self.record_write(index, key, None, version);
        self.after_command(index)?;
        Ok(Some(id))
    }

    /// Node `index` installs `key` in its keyring now (see [`Node::install_key`]). A node
    /// restarted later starts with an empty keyring and encryption off.
    pub fn install_key(&mut self, index: usize, key: &SecretKey) -> Result<KeyFingerprint, SimError> {
        self.keyring_command(index, |node| node.install_key(key))
    }

    /// Node `index` makes an installed key its primary now (see [`Node::use_key`]).
    pub fn use_key(&mut self, index: usize, fingerprint: KeyFingerprint) -> Result<(), SimError> {
        self.keyring_command(index, |node| node.use_key(fingerprint))
    }

    /// Node `index` removes a key now (see [`Node::remove_key`]).
    pub fn remove_key(&mut self, index: usize, fingerprint: KeyFingerprint) -> Result<(), SimError> {
        self.keyring_command(index, |node| node.remove_key(fingerprint))
    }

    /// Node `index` moves to another encryption mode now (see [`Node::set_encryption`]).
    pub fn set_encryption(&mut self, index: usize, mode: EncryptionMode) -> Result<(), SimError> {
        self.keyring_command(index, |node| node.set_encryption(mode))
    }

    /// Runs a keyring command on a node and logs the write by which the node publishes its
    /// keyring, so that the ledger stays in step with the node's table.
    fn keyring_command<T>(
        &mut self,
        index: usize,
        command: impl FnOnce(&mut Node<ChaCha8Rng>) -> Result<T, KeyringError>,
    ) -> Result<T, SimError> {
        let node = self.live_node(index)?;
        let before = node.node(node.identity().name.as_str()).map_or(0, |view| view.max_version);
        let result = command(node)?;
        let name = node.identity().name.clone();
        let after = node.node(&name).map_or(0, |view| view.max_version);
        if after > before {
            let value = node.get(&name, KEYRING_KEY).cloned();
            self.record_write(index, KEYRING_KEY, value, after);
        }
        self.after_command(index)?;
        Ok(result)
    }

    /// Node `index` crashes now: its process and state are gone.
    pub fn crash(&mut self, index: usize) -> Result<(), SimError> {
        let slot = self.slots.get_mut(index).ok_or(SimError::NoSuchNode(index))?;
        if slot.node.take().is_none() {
            return Err(SimError::NodeDown(index));
        }
        slot.inbox.clear();
        slot.paused = false;
        slot.epoch += 1;
        slot.armed = None;
        self.memory.forget(index);
        self.observer.node_down(index, self.now);
        self.trace.record(Record::Action, self.now, index, 1);
        Ok(())
    }

    /// Node `index` starts again now under its next generation, with an empty table, and
    /// joins the restart seeds. A node that is up is crashed first.
    pub fn restart(&mut self, index: usize) -> Result<(), SimError> {
        if index >= self.slots.len() {
            return Err(SimError::NoSuchNode(index));
        }
        if self.slots[index].node.is_some() {
            self.crash(index)?;
        }
        self.start_again(index)
    }

    /// As [`restart`](Self::restart), at a new address: the node keeps its name but listens
    /// at `address` from now on, and datagrams to its old address go nowhere. `address`
    /// must not be another node's, nor of the form of a default [`node_address`] other than
    /// the node's own (to move back).
    pub fn restart_at(&mut self, index: usize, address: SocketAddr) -> Result<(), SimError> {
        if index >= self.slots.len() {
            return Err(SimError::NoSuchNode(index));
        }
        let default = node_address(index);
        let taken = self.index_at(address).is_some_and(|other| other != index)
            || index_of_address(address, 1 << 24).is_some_and(|other| other != index);
        if taken {
            return Err(SimError::Setup(format!("node {index} cannot move to {address}: it is taken")));
        }
        if self.slots[index].node.is_some() {
            self.crash(index)?;
        }
        let old = std::mem::replace(&mut self.addresses[index], address);
        self.moved.remove(&old);
        if address != default {
            self.moved.insert(address, index);
        }
        self.trace.record(Record::Action, self.now, index, 11);
        self.start_again(index)
    }

    /// Starts crashed node `index` under its next generation and joins the restart seeds.
    fn start_again(&mut self, index: usize) -> Result<(), SimError> {
        let generation = self.generations[index] + 1;
        let mut node = self.start_node(index, generation)?;
        self.generations[index] = generation;
        self.restarted[index] = true;
        let seeds: Vec<usize> = if self.restart_seeds.is_empty() {
            vec![usize::from(index == 0)]
        } else {
            self.restart_seeds.clone()
        };
        let n = self.slots.len();
        let addresses = &self.addresses;
        node.join(seeds.into_iter().filter(|s| *s != index && *s < n).map(|s| addresses[s]));
        self.slots[index].node = Some(node);
        self.observer.node_up();
        self.trace.record(Record::Action, self.now, index, 2);
        self.drain(index);
        Ok(())
    }

    /// Pauses node `index`: datagrams to it wait, its timers do not fire.
    pub fn pause(&mut self, index: usize) -> Result<(), SimError> {
        self.live_node(index)?;
        let slot = &mut self.slots[index];
        slot.paused = true;
        slot.epoch += 1;
        slot.armed = None;
        self.trace.record(Record::Action, self.now, index, 3);
        Ok(())
    }

    /// Resumes node `index`: it handles what arrived meanwhile, then its overdue timers.
    pub fn resume(&mut self, index: usize) -> Result<(), SimError> {
        self.live_node(index)?;
        self.slots[index].paused = false;
        self.trace.record(Record::Action, self.now, index, 4);
        while let Some((from, payload)) = self.slots[index].inbox.pop_front() {
            self.handle(index, from, &payload);
        }
        self.drain(index);
        self.after_command(index)
    }

    /// Node `index`'s clock jumps now.
    pub fn jump_clock(&mut self, index: usize, jump: ClockJump) -> Result<(), SimError> {
        self.live_node(index)?;
        let slot = &mut self.slots[index];
        slot.clock.jump(jump);
        slot.armed = None;
        self.trace.record(Record::Action, self.now, index, 5);
        self.drain(index);
        Ok(())
    }

    /// From now on node `index` handles its datagrams and timers late (a slow, CPU-starved
    /// process; see [`ProcessingDelay`]). Datagrams already waiting keep their time; a
    /// restart keeps the delay (it is the machine that is slow).
    pub fn set_processing_delay(&mut self, index: usize, delay: ProcessingDelay) -> Result<(), SimError> {
        let slot = self.slots.get_mut(index).ok_or(SimError::NoSuchNode(index))?;
        slot.delay = delay;
        slot.armed = None;
        self.trace.record(Record::Action, self.now, index, 12);
        self.trace.bytes(&delay.datagrams.as_nanos().to_le_bytes());
        self.trace.bytes(&delay.timers.as_nanos().to_le_bytes());
        self.drain(index);
        Ok(())
    }

    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    pub fn partition(
        &mut self,
        a: impl IntoIterator<Item = usize>,
        b: impl IntoIterator<Item = usize>,
    ) -> CutId {
        let (a, b): (NodeSet, NodeSet) = (a.into_iter().collect(), b.into_iter().collect());
        let id = self.network.partition(a, b);
        self.trace.record(Record::Action, self.now, id.0 as usize, 6);
        id
    }

    /// Cuts the links from nodes of `from` to nodes of `to`; the other direction still works.
    pub fn cut_one_way(
        &mut self,
        from: impl IntoIterator<Item = usize>,
        to: impl IntoIterator<Item = usize>,
    ) -> CutId {
        let id = self.network.cut(from.into_iter().collect(), to.into_iter().collect());
        self.trace.record(Record::Action, self.now, id.0 as usize, 7);
        id
    }

    /// Heals one cut or partition; returns whether it was still there.
    pub fn heal(&mut self, id: CutId) -> bool {
        self.trace.record(Record::Action, self.now, id.0 as usize, 8);
        self.network.heal(id)
    }

    /// Heals every cut and partition.
    pub fn heal_all(&mut self) {
        self.trace.record(Record::Action, self.now, 0, 9);
        self.network.heal_all();
    }

    /// Sets the model of the directed link `from -> to`.
    pub fn set_link(&mut self, from: usize, to: usize, link: LinkModel) -> Result<(), SimError> {
        link.validate()?;
        self.network.set_link(from, to, link);
        Ok(())
    }

    /// Sets the model of every link that has none of its own.
    pub fn set_default_link(&mut self, link: LinkModel) -> Result<(), SimError> {
        link.validate()?;
        self.network.set_default(link);
        Ok(())
    }

    /// Adds a node (next index, generation 1, empty table) that joins `seeds` now; returns
    /// its index.
    pub fn add_node(&mut self, seeds: impl IntoIterator<Item = usize>) -> Result<usize, SimError> {
        let index = self.slots.len();
        self.names.push(Arc::from(node_name(index)));
        self.addresses.push(node_address(index));
        self.generations.push(1);
        self.restarted.push(false);
        let clock = NodeClock::default();
        let mut node = match self.start_node(index, 1) {
            Ok(node) => node,
            Err(e) => {
                self.names.pop();
                self.addresses.pop();
                self.generations.pop();
                self.restarted.pop();
                return Err(e);
            }
        };
        let addresses = &self.addresses;
        node.join(seeds.into_iter().filter(|s| *s < index).map(|s| addresses[s]));
        self.slots.push(Slot {
            node: Some(node),
            clock,
            paused: false,
            inbox: VecDeque::new(),
            epoch: 0,
            armed: None,
            delay: ProcessingDelay::NONE,
            last_handle: Duration::ZERO,
        });
        self.observer.add_node();
        self.drain(index);
        Ok(index)
    }

    /// Hands `datagram` to node `to` now, as if it came from `from`: for testing how nodes
    /// treat hostile or hand-crafted input (see [`forge`](Self::forge)).
    pub fn inject(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) -> Result<(), SimError> {
        let local = {
            let slot = self.slots.get_mut(to).ok_or(SimError::NoSuchNode(to))?;
            slot.clock.local(self.base, self.now)
        };
        let node = self.live_node(to)?;
        node.handle_input(local, from, datagram);
        self.trace.delivered(self.now, usize::MAX, to, datagram);
        self.drain(to);
        self.after_command(to)
    }

    /// Encodes an envelope carrying `body` as node `from` would send it (its current
    /// identity, the cluster's name): a datagram to [`inject`](Self::inject).
    pub fn forge(&self, from: usize, body: v1::envelope::Body) -> Bytes {
        let address = self.address(from).unwrap_or_else(|| node_address(from));
        let ip = match address.ip() {
            IpAddr::V4(ip) => Bytes::copy_from_slice(&ip.octets()),
            IpAddr::V6(ip) => Bytes::copy_from_slice(&ip.octets()),
        };
        let envelope = v1::Envelope {
            protocol_version: gossip_proto::PROTOCOL_VERSION,
            cluster: self.node_config.cluster.clone(),
            sender: Some(v1::NodeIdentity {
                name: self.name(from).map_or_else(|| node_name(from), str::to_owned),
                generation: self.generation(from).unwrap_or(1),
                address: Some(v1::Address { ip, port: u32::from(address.port()) }),
            }),
            body: Some(body),
            membership: Vec::new(),
        };
        envelope.encode_to_vec().into()
    }

    // ----- internals of the commands -----

    /// The node at `index`, if it exists and is up.
    fn live_node(&mut self, index: usize) -> Result<&mut Node<ChaCha8Rng>, SimError> {
        self.slots
            .get_mut(index)
            .ok_or(SimError::NoSuchNode(index))?
            .node
            .as_mut()
            .ok_or(SimError::NodeDown(index))
    }

    fn record_write(&mut self, index: usize, key: &str, value: Option<Bytes>, version: u64) -> WriteId {
        let generation = self.generations[index];
        let deleted = value.is_none();
        let logged = self.ledger.record(index, generation, key, value);
        debug_assert_eq!(logged, version, "the ledger is out of step with node {index}");
        self.trace.record(Record::Action, self.now, index, 10);
        self.trace.bytes(key.as_bytes());
        self.observer.track(index, generation, Arc::from(key), version, deleted, self.now)
    }

    /// Counts a command as a step and checks the node it touched.
    fn after_command(&mut self, index: usize) -> Result<(), SimError> {
        self.steps += 1;
        self.check_if_due(index)
    }

    /// Runs a scheduled action; returns the node it touched, if one.
    pub(crate) fn apply(&mut self, action: Action) -> Result<Option<usize>, SimError> {
        let result = match action {
            Action::Set { node, key, value } => self.set(node, &key, value).map(|_| ()),
            Action::Delete { node, key } => self.delete(node, &key).map(|_| ()),
            Action::AggregateSet { node, name, value } => self.aggregate_set(node, &name, value),
            Action::Crash(node) => self.crash(node),
            Action::Restart(node) => self.restart(node),
            Action::RestartAt { node, address } => self.restart_at(node, address),
            Action::SetProcessingDelay { node, delay } => self.set_processing_delay(node, delay),
            Action::Pause(node) => self.pause(node),
            Action::Resume(node) => self.resume(node),
            Action::ClockJump { node, jump } => self.jump_clock(node, jump),
            Action::Partition { a, b, heal_after } => {
                let id = self.partition(a, b);
                self.heal_later(id, heal_after);
                Ok(())
            }
            Action::CutOneWay { from, to, heal_after } => {
                let id = self.cut_one_way(from, to);
                self.heal_later(id, heal_after);
                Ok(())
            }
            Action::Heal(id) => {
                self.heal(id);
                Ok(())
            }
            Action::HealAll => {
                self.heal_all();
                Ok(())
            }
            Action::SetLink { from, to, link } => self.set_link(from, to, link),
            Action::SetDefaultLink(link) => self.set_default_link(link),
        };
        match result {
            Ok(()) => Ok(None),
            Err(SimError::NodeDown(_) | SimError::NoSuchNode(_) | SimError::Write(_)) => {
                self.skipped_actions += 1;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn heal_later(&mut self, id: CutId, after: Option<Duration>) {
        if let Some(after) = after {
            self.schedule(self.now + after, Action::Heal(id));
        }
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
