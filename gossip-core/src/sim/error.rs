//! What can go wrong in a simulation: a bad setup, a refused command, or a broken invariant
//! (which carries the seed and how to replay it).

use std::fmt;
use std::time::Duration;

use crate::error::{ConfigError, WriteError};
use crate::keyring::KeyringError;
use crate::sim::invariants::ViolationKind;

/// An invariant that failed during a run, with everything needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time of the failure.
    pub at: Duration,
    /// Index of the node whose state broke the invariant.
    pub node: usize,
    /// Its name.
    pub node_name: String,
    /// What broke.
    pub kind: ViolationKind,
    /// The seed of the run.
    pub seed: u64,
    /// How to replay the run.
    pub replay: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant violated at t = {:?} on node {} (index {}): {}\n  seed: {}\n  replay: {}",
            self.at, self.node_name, self.node, self.kind, self.seed, self.replay
        )
    }
}

/// An error of the simulator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The simulator's own settings cannot work (the message says which and why).
    #[error("invalid simulator setup: {0}")]
    Setup(String),
    /// The node configuration was refused.
    #[error("invalid node configuration: {0}")]
    Config(#[from] ConfigError),
    /// There is no node with this index.
    #[error("there is no node {0}; indexes start at 0")]
    NoSuchNode(usize),
    /// The node is crashed; restart it first.
    #[error("node {0} is down; restart it first")]
    NodeDown(usize),
    /// The node refused a write; its table is unchanged.
    #[error("the write was refused: {0}")]
    Write(#[from] WriteError),
    /// The node refused an application-message command (a broadcast, a query, a write
    /// request or an answer); nothing was sent.
    #[error("the message command was refused: {0}")]
    Message(#[from] crate::MessageError),
    /// The node refused a keyring command; its keyring is unchanged.
    #[error("the keyring command was refused: {0}")]
    Keyring(#[from] KeyringError),
    /// An invariant failed: the run stopped. The message has the seed and the replay command.
    #[error("{0}")]
    Invariant(Box<Violation>),
}
