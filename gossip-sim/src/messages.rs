//! Application messages on the simulator: how fast and how far a broadcast spreads and what
//! it costs, how many answers a query to every member collects in time, and how long a write
//! request takes to come back as a write the asker sees when the asker cannot reach the
//! owner directly.
//!
//! Every trial starts from an in-sync cluster, lets it run for [`WARM_UP_ROUNDS`] gossip
//! rounds, and is a pure function of its seed.

use std::time::Duration;

use bytes::Bytes;
use gossip_core::sim::{Checks, LinkModel, SimError, Simulation, derive_seed, node_name};
use gossip_core::{Config, Event, QueryFilter, RequestOutcome, WritePolicy};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::setup::{InSync, start_in_sync_with};

/// Gossip rounds the cluster runs before a trial's message.
pub const WARM_UP_ROUNDS: u32 = 40;

/// A study of application messages on an in-sync cluster.
#[derive(Debug, Clone)]
pub struct MessageStudy {
    /// Number of nodes.
    pub nodes: usize,
    /// The configuration of every node (`gossip_interval` is the unit of a round).
    pub node_config: Config,
    /// Every link.
    pub link: LinkModel,
    /// How often invariants are checked.
    pub checks: Checks,
    /// Rounds a trial watches its message for.
    pub window_rounds: u32,
}

/// What one broadcast trial measured (see [`MessageStudy::broadcast`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BroadcastOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Members other than the origin (all live).
    pub members: usize,
    /// Members that got the broadcast within the window.
    pub reached: usize,
    /// Gossip rounds from the broadcast until the last member got it; `None` if one never did.
    pub rounds_to_all: Option<f64>,
    /// Rounds until 99.9% of the members had it.
    pub rounds_to_999: Option<f64>,
    /// Bytes sent for the broadcast (its copies riding on datagrams, and whole `Gossip`
    /// datagrams), per member.
    pub bytes_per_member: f64,
}

/// What one query trial measured (see [`MessageStudy::query`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueryOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Members asked (every member but the asker).
    pub asked: usize,
    /// Answers the asker took before the timeout.
    pub answers: usize,
    /// What its `QueryFinished` said.
    pub finished_with: Option<usize>,
    /// Rounds until the last answer came.
    pub rounds_to_last_answer: Option<f64>,
}

/// What one write-request trial measured (see [`MessageStudy::write_request`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WriteRequestOutcome {
    /// The trial's seed.
    pub seed: u64,
    /// Seconds until the owner's own write reached every node (no cut).
    pub plain_spread_seconds: Option<f64>,
    /// Seconds from the request until the asker saw the write, with its datagrams to the
    /// owner cut.
    pub request_seen_seconds: Option<f64>,
    /// Whether the asker was told the request was accepted.
    pub accepted: bool,
    /// Write-request datagrams relayed by other members.
    pub relays: u64,
}

impl MessageStudy {
    /// A study of `nodes` nodes configured with `node_config`, watching each message for 30
    /// rounds.
    pub fn new(nodes: usize, node_config: Config) -> Self {
        Self { nodes, node_config, link: LinkModel::default(), checks: Checks::Off, window_rounds: 30 }
    }

    /// Every link of this model.
    pub fn with_link(mut self, link: LinkModel) -> Self {
        self.link = link;
        self
    }

    /// Checking invariants this often.
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
    }

    /// Watching each message for this many rounds.
    pub fn with_window_rounds(mut self, rounds: u32) -> Self {
        self.window_rounds = rounds.max(1);
        self
    }

    fn round(&self) -> Duration {
        self.node_config.gossip_interval
    }

    fn start(&self, seed: u64, config: &Config, answer_queries: bool) -> Result<Simulation, SimError> {
        if self.nodes < 3 {
            return Err(SimError::Setup("a message trial needs at least three nodes".to_owned()));
        }
        let mut sim = start_in_sync_with(
            InSync {
                nodes: self.nodes,
                seed,
                node_config: config,
                link: self.link,
                checks: self.checks,
                replay: None,
                membership_log: false,
            },
            |config| {
                let config = config.with_recorded_events();
                if answer_queries { config.with_answered_queries() } else { config }
            },
        )?;
        sim.run_until(self.round() * WARM_UP_ROUNDS)?;
        Ok(sim)
    }

    /// A random member (from the seed): the origin or asker of the trial's message.
    fn pick(&self, seed: u64, stream: u64) -> usize {
        ChaCha8Rng::seed_from_u64(derive_seed(seed, u64::MAX - 6, stream)).random_range(0..self.nodes)
    }

    /// One member broadcasts a small payload; how many members get it, when, and the bytes
    /// sent for it (`Metrics::broadcast_bytes_out` over every node).
    pub fn broadcast(&self, seed: u64) -> Result<BroadcastOutcome, SimError> {
        let window = self.round() * self.window_rounds;
        let origin = self.pick(seed, 0);
        let mut sim = self.start(seed, &self.node_config, false)?;
        let at = sim.now();
        sim.command(origin, |node| node.broadcast("study", Bytes::from_static(b"payload of 16 B")))?;
        sim.run_until(at + window)?;
        let mut got: Vec<Duration> = delivered(&sim, at, |event| matches!(event, Event::Broadcast { .. }));
        got.sort();
        let members = self.nodes - 1;
        let rounds = |time: Duration| (time - at).as_secs_f64() / self.round().as_secs_f64();
        let needed_999 = (members as f64 * 0.999).ceil() as usize;
        let bytes: u64 = (0..sim.len())
            .filter_map(|index| sim.node(index))
            .map(|node| node.metrics().broadcast_bytes_out)
            .sum();
        Ok(BroadcastOutcome {
            seed,
            members,
            reached: got.len(),
            rounds_to_all: (got.len() == members).then(|| got.last().map_or(0.0, |last| rounds(*last))),
            rounds_to_999: got.get(needed_999.saturating_sub(1)).map(|time| rounds(*time)),
            bytes_per_member: bytes as f64 / members as f64,
        })
    }

    /// One member asks every member, with `timeout`; every member answers at once. How many
    /// answers come back in time.
    pub fn query(&self, seed: u64, timeout: Duration) -> Result<QueryOutcome, SimError> {
        let mut sim = self.start(seed, &self.node_config, true)?;
        let asker = self.pick(seed, 1);
        let at = sim.now();
        let id = sim.command(asker, |node| node.query("study", Bytes::new(), QueryFilter::All, timeout))?;
        sim.run_until(at + timeout + self.round())?;
        let events = sim.events().unwrap_or_default();
        let mut answers = 0;
        let mut last = None;
        let mut finished_with = None;
        for (time, index, event) in events.iter().filter(|(time, index, _)| *time >= at && *index == asker) {
            let _ = index;
            match event {
                Event::QueryResponse { query, .. } if *query == id => {
                    answers += 1;
                    last = Some(*time);
                }
                Event::QueryFinished { query, responses } if *query == id => finished_with = Some(*responses),
                _ => {}
            }
        }
        let rounds = |time: Duration| (time - at).as_secs_f64() / self.round().as_secs_f64();
        Ok(QueryOutcome {
            seed,
            asked: self.nodes - 1,
            answers,
            finished_with,
            rounds_to_last_answer: last.map(rounds),
        })
    }

    /// The owner writes a key (its spread to every node is the yardstick); then the asker's
    /// datagrams to the owner are cut, and the asker requests a write of another key (the
    /// owner accepts every request). How long until the asker sees that write.
    pub fn write_request(&self, seed: u64) -> Result<WriteRequestOutcome, SimError> {
        let mut config = self.node_config.clone();
        config.messages.write_policy = WritePolicy::AcceptPrefix(String::new());
        let mut sim = self.start(seed, &config, false)?;
        let owner = self.pick(seed, 2);
        let asker = (owner + 1 + self.pick(seed, 3) % (self.nodes - 1)) % self.nodes;
        let window = self.round() * self.window_rounds;

        let at = sim.now();
        let plain = sim.set(owner, "plain", Bytes::from_static(b"v"))?;
        sim.run_until(at + window)?;
        let plain_spread = sim
            .write(plain)
            .and_then(|write| {
                let learned: Vec<Duration> = write.learned().map(|(_, time)| time).collect();
                (learned.len() + 1 >= self.nodes).then(|| learned.into_iter().max()).flatten()
            })
            .map(|time| (time - at).as_secs_f64());

        sim.cut_one_way([asker], [owner]);
        let relays_before: u64 = relays(&sim);
        let at = sim.now();
        let owner_name = node_name(owner);
        sim.command(asker, |node| node.request_write(&owner_name, "asked", Bytes::from_static(b"v")))?;
        sim.run_until(at + window)?;
        let events = sim.events().unwrap_or_default();
        let accepted_version = events
            .iter()
            .filter(|(time, index, _)| *time >= at && *index == asker)
            .find_map(|(_, _, event)| match event {
                Event::WriteAnswered { outcome: RequestOutcome::Accepted { version }, .. } => Some(*version),
                _ => None,
            });
        let seen = accepted_version
            .and_then(|version| sim.learned_at(asker, owner, "asked", version))
            .map(|time| (time - at).as_secs_f64());
        Ok(WriteRequestOutcome {
            seed,
            plain_spread_seconds: plain_spread,
            request_seen_seconds: seen,
            accepted: accepted_version.is_some(),
            relays: relays(&sim) - relays_before,
        })
    }
}

/// When each node first had an event `matches` from time `from` on.
fn delivered(sim: &Simulation, from: Duration, matches: impl Fn(&Event) -> bool) -> Vec<Duration> {
    let mut first = vec![None; sim.len()];
    for (time, index, event) in sim.events().unwrap_or_default() {
        if *time >= from && matches(event) && first[*index].is_none() {
            first[*index] = Some(*time);
        }
    }
    first.into_iter().flatten().collect()
}

/// Write requests and outcomes relayed so far, over every node.
fn relays(sim: &Simulation) -> u64 {
    (0..sim.len()).filter_map(|index| sim.node(index)).map(|node| node.metrics().write_relays).sum()
}
