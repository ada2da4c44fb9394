//! The deterministic simulator (feature `sim`): many [`Node`](crate::Node)s in one process
//! on a virtual clock, exchanging their real encoded datagrams through a simulated network.
//!
//! - **Deterministic.** Time is virtual (a discrete-event queue ordered by time, then by
//!   insertion), and every random choice derives from one seed: each node's RNG, loss,
//!   latency, duplication. A run is a pure function of its [`SimConfig`] and its
//!   [`Scenario`]; [`Simulation::trace_hash`] hashes every datagram delivered and every event
//!   emitted, with its time, so two runs compare with one number.
//! - **Real bytes.** Every datagram a node emits is delivered, as encoded, to the receiver's
//!   `handle_input`; the wire format is exercised on every step.
//! - **Faults.** Per-link [`LinkModel`]s (fixed, uniform or exponential [`Latency`]; i.i.d.
//!   or bursty [`Loss`] by [`GilbertElliott`]; duplication; reordering from jitter), symmetric
//!   and one-way partitions, crashes and restarts (next generation, empty table, rejoin via
//!   seeds, optionally at a new address), paused nodes (inputs wait, timers fire late), slow
//!   nodes ([`ProcessingDelay`]: datagrams handled late, timers firing late) and per-node
//!   [`ClockJump`]s.
//! - **Observation.** When each node first learned each write ([`TrackedWrite`]), datagrams
//!   and bytes per node ([`Simulation::sent_by`], [`NetworkStats`], by [`BodyKind`]), a log
//!   of membership changes ([`MemberRecord`]) and of datagrams sent to chosen nodes
//!   ([`SentRecord`]), and [invariant
//!   checks](invariants) after every step, on a sample of steps, or on demand. A violation
//!   stops the run with an error that names the seed and how to replay it.
//! - **Scale.** [`Bootstrap::InSync`] builds a cluster where every node knows every other
//!   without a datagram, in parallel; 10,000 nodes fit in memory and a spread trial at that
//!   size runs in under a minute in release builds. The simulator does O(1) work per event
//!   (O(n) per invariant check of one node, so sample them on large runs; O(n) per member
//!   reported failed or left, when the membership log is on).
//!
//! The studies built on this engine (convergence and traffic trials, SWIM trials, push-sum
//! aggregation trials, and chaos: random fault schedules followed by a calm phase that must
//! end in agreement) live in the `gossip-sim` crate, with the `simulate` command:
//! `cargo run --release -p gossip-sim --bin simulate -- --help`.
//!
//! ```
//! use std::time::Duration;
//! use gossip_core::sim::{Action, LinkModel, Scenario, SimConfig};
//!
//! let s = Duration::from_secs;
//! let config = SimConfig::new(8, 7).with_link(LinkModel::default().with_loss(0.1));
//! let scenario = Scenario::new()
//!     .at(s(1), Action::set(2, "role", "db"))
//!     .at(s(2), Action::Partition { a: vec![0, 1], b: (2..8).collect(), heal_after: Some(s(5)) })
//!     .at(s(3), Action::Restart(5))
//!     .at(s(4), Action::delete(2, "role"));
//! let sim = scenario.run(config.clone(), s(30)).unwrap();
//! let again = scenario.run(config, s(30)).unwrap();
//! assert_eq!(sim.trace_hash(), again.trace_hash());
//! assert!(sim.node(0).unwrap().get("n2", "role").is_none(), "the delete reached node 0");
//! ```
//!
//! Nodes are named `n0`, `n1`, ... and listen at `10.x.y.z:7946` (until
//! [`Simulation::restart_at`] moves one); node `i` runs under
//! generation 1 until its first restart. Write through the simulator ([`Simulation::set`],
//! [`Simulation::delete`], [`Action::Set`]): its [`Ledger`] of writes is the truth the
//! invariant checks compare replicas against.

/// The hash map of the simulator: lookups only, hashed with a fixed seed (no OS entropy, so
/// nothing about a run depends on the process; see `clippy.toml`).
type FixedHashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

mod aggregate;
mod agreement;
mod app_events;
mod clock;
mod cluster;
mod config;
mod driver;
mod error;
pub mod invariants;
mod kind;
mod ledger;
mod link;
mod network;
mod observe;
mod queue;
mod scenario;
mod trace;
mod violation;
mod watch;

pub use clock::ClockJump;
pub use cluster::{Simulation, derive_seed, index_of_name, node_address, node_name};
pub use config::{Bootstrap, SimConfig, min_suspicion_timeout, seed_from_env};
pub use error::{SimError, Violation};
pub use invariants::{Checks, ReplicaSnapshot, VersionMemory, ViolationKind};
pub use kind::{BodyKind, KindCounts, body_kind};
pub use ledger::{ExpectedTable, Ledger, LoggedWrite, OwnerLog};
pub use link::{GilbertElliott, Latency, LinkModel, Loss};
pub use network::CutId;
pub use observe::{NetworkStats, TrackedWrite, Traffic, WriteId};
pub use scenario::{Action, Scenario};
pub use watch::{MemberChange, MemberRecord, ProcessingDelay, SentRecord};
