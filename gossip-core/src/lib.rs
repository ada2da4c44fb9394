//! A gossip protocol as a deterministic, sans-IO state machine.
//!
//! This crate reads no clock and no OS randomness, and opens no socket: time is an argument
//! of every input, randomness comes from a [`rand_core::Rng`] the caller supplies, and
//! datagrams come in and go out as values. The same code therefore runs under tokio,
//! async-std, smol, a hand-written event loop or a deterministic simulator, and a run is a
//! pure function of its inputs and its seed.
//!
//! Each [`Node`] owns a table `key -> (value, version)` that only it writes, and keeps a
//! replica of every other node's table. Anti-entropy ([`AntiEntropyMode`]: push, pull or
//! push-pull) reconciles replicas with random peers every `gossip_interval`, in datagrams of
//! at most [`Config::max_datagram_size`] bytes. Deletes are versioned tombstones, collected
//! after a grace period behind a watermark so that a deleted key never comes back.
//!
//! Membership and failure detection follow SWIM with Lifeguard's refinements ([`SwimConfig`]),
//! and every node can read cluster-wide aggregates of named numbers (average, sum, count,
//! minimum, maximum) computed by push-sum ([`Node::aggregate_set`], [`Node::aggregate`]).
//!
//! # The drain rule
//!
//! After **every** input ([`Node::handle_input`], [`Node::handle_timeout`]) and every
//! command ([`Node::set`], [`Node::delete`], [`Node::join`]), drain [`Node::poll`] until it
//! returns `None`, sending each [`Transmit`] and handling each [`Event`]; then re-arm your
//! timer to [`Node::poll_timeout`]. Process datagrams that are already waiting before a
//! timeout that is due.
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use std::time::{Duration, Instant, SystemTime};
//!
//! use gossip_core::{Config, Identity, Node, Output, generation_at};
//! use rand_chacha::ChaCha8Rng;
//! use rand_core::SeedableRng;
//!
//! # fn main() -> std::io::Result<()> {
//! let socket = UdpSocket::bind("127.0.0.1:7946")?;
//! // Unix milliseconds: every node of a cluster must count generations the same way.
//! let generation = generation_at(SystemTime::now());
//! let identity = Identity::new("node-a", generation, socket.local_addr()?);
//! let rng = ChaCha8Rng::seed_from_u64(generation);
//! let mut node = Node::new(Config::lan(), identity, Instant::now(), rng).expect("valid config");
//!
//! node.join(["127.0.0.1:7947".parse().unwrap()]);
//! node.set("role", "web").expect("small enough");
//!
//! let mut buf = vec![0u8; 65_536];
//! loop {
//!     // Drain: send every datagram, handle every event.
//!     while let Some(output) = node.poll() {
//!         match output {
//!             Output::Transmit(t) => {
//!                 socket.send_to(&t.payload, t.to)?;
//!             }
//!             Output::Event(event) => println!("{event:?}"),
//!         }
//!     }
//!     // Wait for a datagram until the deadline, and handle it.
//!     let wait = node.poll_timeout().saturating_duration_since(Instant::now());
//!     socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
//!     match socket.recv_from(&mut buf) {
//!         Ok((len, from)) => node.handle_input(Instant::now(), from, &buf[..len]),
//!         Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
//!         Err(e) => return Err(e),
//!     }
//!     // Then the timer, whenever it is due, whether a datagram came or not: a socket that
//!     // never goes quiet must not starve the probes, and a datagram that was already waiting
//!     // (an ack) is handled before the deadline it answers.
//!     let now = Instant::now();
//!     if node.poll_timeout() <= now {
//!         node.handle_timeout(now);
//!     }
//! }
//! # }
//! ```
//!
//! # Bad input
//!
//! No datagram can make the node panic. Oversized, truncated, undecodable, wrong-cluster,
//! wrong-version and rule-breaking datagrams are dropped whole, counted in [`Metrics`], and
//! leave the state unchanged. Caller mistakes are typed errors: [`ConfigError`],
//! [`WriteError`], [`AggregateError`].
//!
//! # Limits
//!
//! Every table and queue has a cap in [`Config`] (`max_nodes`, `max_keys_per_node`,
//! `max_key_size`, `max_value_size`, `max_pending_transmits`, `max_pending_events`), and
//! every datagram is packed by exact encoded size to fit `max_datagram_size`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable))]
#![deny(missing_docs)]

mod aggregate;
mod anti_entropy;
mod broadcast;
mod budget;
mod config;
mod conflict;
mod delta;
mod digest;
mod error;
mod event;
mod footprint;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod heal;
mod health;
mod identity;
pub mod keyring;
#[cfg(test)]
mod laws;
mod lifecycle;
mod membership;
mod merge;
mod message;
mod messages;
mod metrics;
mod node;
mod outbox;
mod peers;
mod probe;
mod queries;
mod replay;
mod replica;
mod requests;
mod rumor;
mod seal;
mod security;
mod shared_entry;
mod shared_str;
#[cfg(feature = "sim")]
pub mod sim;
mod summary;
mod suspicion;
mod table;
mod timers;
mod ttl;

/// The `rand_core` (0.10) whose `Rng` a [`Node`] takes: an RNG of another `rand_core`
/// version (rand 0.9's, say) does not implement it. Seed one with
/// `rand_chacha::ChaCha8Rng::seed_from_u64` (rand_chacha 0.10), or implement
/// `rand_core::TryRng` for your own.
pub use rand_core;

pub use aggregate::AggregateEstimate;
pub use config::{
    AggregationConfig, AntiEntropyMode, Config, DEFAULT_CLUSTER, Dissemination, MAX_PENDING_RELAYS,
    MessageConfig, RumorRule, SwimConfig, WritePolicy,
};
pub use error::{AggregateError, ConfigError, MessageError, WriteError};
pub use event::{Event, KeyChange, KeyChanges, KeyChangesIter, Output, SelfHealReason, Transmit};
pub use footprint::Footprint;
pub use identity::{Identity, generation_at};
pub use keyring::{
    EncryptionMode, KeyFingerprint, KeyStatus, Keyring, KeyringError, KeyringStatus, SecretKey,
};
pub use lifecycle::JoinProblem;
pub use membership::MemberState;
pub use metrics::Metrics;
pub use node::{Node, NodeView};
pub use probe::ping_target_tag;
pub use queries::{QueryFilter, QueryId};
pub use requests::{RequestOutcome, WriteRequestId};
pub use seal::SEAL_OVERHEAD;
pub use shared_entry::SharedEntry;
pub use shared_str::SharedStr;
pub use summary::DigestSummary;

/// The wire format (the prost types of `proto/gossip.proto`), re-exported for tools that
/// build or inspect datagrams: test harnesses, fuzzers, packet dissectors.
///
/// **Not a stable API.** The protocol is specified by the schema and `docs/PROTOCOL.md`, not
/// by these Rust types: fields are added to messages between minor versions of this crate
/// (prost then adds struct fields, so build them with `..Default::default()`), and the types
/// follow prost's major versions. An application never needs them: `Node` takes and gives
/// plain bytes. It stays a plain re-export rather than a feature so that the hostile-peer
/// tests and the fuzz targets build against exactly what the node decodes.
pub use gossip_proto as proto;
