//! Studies on the deterministic simulator of [`gossip_core::sim`], and the `simulate` command
//! that runs them.
//!
//! The simulation engine (virtual network and clock, faults, invariant checks) lives in
//! `gossip-core` behind its `sim` feature, so that anyone can drive the core in a simulation.
//! This crate holds the ready-made trials built on it, each a pure function of its seed:
//!
//! - [`trial`]: convergence and traffic ([`Study::spread`](trial::Study::spread),
//!   [`Study::steady`](trial::Study::steady), [`Study::burst`](trial::Study::burst));
//! - [`join`]: membership formation ([`Study::join`](trial::Study::join): every node joins
//!   one seed at once; time until every node sees every other);
//! - [`load`]: a steady write load ([`Study::load`](trial::Study::load): every node
//!   updates a key every few seconds; update spread and traffic);
//! - [`swim`]: membership and failure detection ([`SwimStudy`](swim::SwimStudy): crash,
//!   false positives under loss or slow members, partition, restart);
//! - [`aggregate`]: push-sum aggregation ([`AggregateStudy`](aggregate::AggregateStudy):
//!   convergence, churn);
//! - [`messages`]: application messages ([`MessageStudy`](messages::MessageStudy):
//!   broadcast spread and cost, query answers, write requests around a broken link);
//! - [`chaos`]: random fault schedules followed by a calm phase that must end in agreement
//!   ([`Chaos`](chaos::Chaos)).
//!
//! Every study starts from the same in-sync cluster (every node knows every other, all
//! tables equal, without a datagram) and reports its progress as a [`Progress`].
//!
//! The command line (feature `cli`, on by default):
//! `cargo run --release -p gossip-sim --bin simulate -- --help`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod aggregate;
pub mod chaos;
pub mod join;
pub mod load;
pub mod messages;
mod progress;
mod setup;
pub mod swim;
pub mod trial;

pub use progress::Progress;
