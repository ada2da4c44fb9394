//! Scenarios: actions scheduled at given virtual times (writes, faults, partitions, clock
//! jumps). A run is a pure function of its [`SimConfig`] and its scenario.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::sim::clock::ClockJump;
use crate::sim::config::SimConfig;
use crate::sim::link::LinkModel;
use crate::sim::network::CutId;
use crate::sim::watch::ProcessingDelay;
use crate::sim::{SimError, Simulation};

/// Something that happens to the cluster at a scheduled time.
///
/// Actions on a node that is down (a write, a pause) are skipped and counted in
/// [`Simulation::skipped_actions`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Node `node` writes `key = value`.
    Set {
        /// The writer.
        node: usize,
        /// The key.
        key: String,
        /// The value.
        value: Bytes,
    },
    /// Node `node` deletes `key`.
    Delete {
        /// The writer.
        node: usize,
        /// The key.
        key: String,
    },
    /// Node `node` contributes `value` to the aggregate `name`.
    AggregateSet {
        /// The contributor.
        node: usize,
        /// The aggregate.
        name: String,
        /// Its value.
        value: f64,
    },
    /// The node's process dies: its state is gone, datagrams to it are dropped.
    Crash(usize),
    /// The node starts again under the next generation with an empty table and joins the
    /// restart seeds (a running node is crashed first).
    Restart(usize),
    /// As [`Action::Restart`], at a new address (see [`Simulation::restart_at`]).
    RestartAt {
        /// The node.
        node: usize,
        /// Where it listens from now on.
        address: SocketAddr,
    },
    /// The node handles its datagrams and timers late from now on (see
    /// [`Simulation::set_processing_delay`]).
    SetProcessingDelay {
        /// The node.
        node: usize,
        /// How late.
        delay: ProcessingDelay,
    },
    /// The node's process stops being scheduled: datagrams to it wait in its buffer and its
    /// timers do not fire.
    Pause(usize),
    /// The paused node runs again: it handles the buffered datagrams, then its late timers.
    Resume(usize),
    /// The node's clock jumps.
    ClockJump {
        /// The node.
        node: usize,
        /// The jump.
        jump: ClockJump,
    },
    /// Nodes of `a` and nodes of `b` cannot reach each other (both directions).
    Partition {
        /// One side.
        a: Vec<usize>,
        /// The other side.
        b: Vec<usize>,
        /// Heal after this long; `None` until [`Action::HealAll`].
        heal_after: Option<Duration>,
    },
    /// Datagrams from nodes of `from` to nodes of `to` are dropped; the other direction works.
    CutOneWay {
        /// Senders whose datagrams are dropped.
        from: Vec<usize>,
        /// Receivers that do not get them.
        to: Vec<usize>,
        /// Heal after this long; `None` until [`Action::HealAll`].
        heal_after: Option<Duration>,
    },
    /// Heals one cut.
    Heal(CutId),
    /// Heals every partition and cut.
    HealAll,
    /// Changes the model of the directed link `from -> to`.
    SetLink {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// The new model.
        link: LinkModel,
    },
    /// Changes the model of every link without its own.
    SetDefaultLink(LinkModel),
}

impl Action {
    /// A write of `key = value` by `node`.
    pub fn set(node: usize, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self::Set { node, key: key.into(), value: value.into() }
    }

    /// A delete of `key` by `node`.
    pub fn delete(node: usize, key: impl Into<String>) -> Self {
        Self::Delete { node, key: key.into() }
    }
}

/// Actions at virtual times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scenario {
    actions: Vec<(Duration, Action)>,
}

impl Scenario {
    /// An empty scenario.
    pub fn new() -> Self {
        Self::default()
    }

    /// This scenario with `action` at `at`.
    pub fn at(mut self, at: Duration, action: Action) -> Self {
        self.push(at, action);
        self
    }

    /// Adds `action` at `at`.
    pub fn push(&mut self, at: Duration, action: Action) {
        self.actions.push((at, action));
    }

    /// The actions, in the order given (actions at the same time run in that order).
    pub fn actions(&self) -> &[(Duration, Action)] {
        &self.actions
    }

    /// The time of the last action.
    pub fn end(&self) -> Duration {
        self.actions.iter().map(|(at, _)| *at).max().unwrap_or_default()
    }

    /// Builds a simulation from `config`, plays this scenario on it until `until`, and
    /// returns it for inspection (its trace hash, its writes, its nodes).
    pub fn run(&self, config: SimConfig, until: Duration) -> Result<Simulation, SimError> {
        let mut sim = Simulation::new(config)?;
        sim.load(self);
        sim.run_until(until)?;
        Ok(sim)
    }
}
