//! The runtime-neutral half of the gossip adapters: one driver loop that binds a
//! [`gossip_core::Node`] to a UDP socket and a timer, a cloneable [`Handle`] for the
//! application, and the [`Events`] stream.
//!
//! Applications use an adapter crate (`gossip-tokio`, `gossip-smol`, `gossip-async-std`),
//! which re-exports everything here and adds a `start` function. This crate is for writing
//! such an adapter: implement the three small traits of [`Runtime`] (a UDP socket, a timer,
//! a way to spawn a task), as quinn does, and call [`start_on`].
//!
//! # The driver
//!
//! The driver task owns the node, the socket and the timer, and follows the core's drain
//! rule: after every datagram, timeout and command it drains `poll()` completely, sends the
//! datagrams and forwards the events, then re-arms the timer to `poll_timeout()` (only if that
//! deadline changed). Datagrams already queued on the socket are handled before a due
//! timeout, so that an ack that has already arrived cannot turn into a false suspicion. Send
//! and receive errors are counted ([`DriverStats`]) and logged with `tracing`, never fatal.
//!
//! Handles talk to the driver over a bounded channel; each command carries a oneshot for
//! its reply. [`Handle::shutdown`] ends the driver task, closes the socket and ends the
//! event stream; the node also shuts down when every clone of its handle is dropped.
//!
//! # Metrics
//!
//! [`Handle::metrics`] returns every counter and the local-health score on request. With the
//! `metrics` feature (also on each adapter crate) the driver publishes them itself through
//! the [`metrics`](https://docs.rs/metrics) facade, once a second, to whatever recorder the
//! application installed: counters `gossip_<field>_total` (every [`Metrics`] field) and
//! `gossip_driver_<field>_total` (every [`DriverStats`] field), gauges
//! `gossip_members{state}`, `gossip_keys` and `gossip_local_health`, each series labelled
//! `node="<name>"`. Without a recorder installed this costs nothing but the registration.
//!
//! # Time and randomness
//!
//! The core reads neither; this crate supplies both. It stamps every input with
//! [`std::time::Instant::now`], seeds each node's `ChaCha8Rng` from OS randomness (or from
//! [`Options::seed`]), and takes the default generation from the wall clock
//! ([`generation_from_clock`]).

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::unreachable))]
#![deny(missing_docs)]

#[cfg(feature = "async-io")]
mod async_io;
mod driver;
mod error;
mod events;
#[cfg(feature = "metrics")]
mod export;
mod handle;
mod log;
mod runtime;
mod seeds;
mod start;
mod state;
#[cfg(feature = "test-suite")]
pub mod suite;
mod watch;

#[cfg(feature = "async-io")]
pub use crate::async_io::{AsyncIoSocket, AsyncIoTimer};
pub use error::Error;
pub use events::Events;
pub use handle::{DriverStats, Handle, Member, NodeMetrics};
pub use runtime::{BoxFuture, Runtime, Timer, UdpSocket};
pub use start::{DEFAULT_RECV_BUFFER, Options, SeedResolver, generation_from_clock, start_on};
pub use state::{Entry, KeyValue, MemberSnapshot, Snapshot};
pub use watch::Watch;

pub use bytes::Bytes;
pub use gossip_core::{
    AggregateError, AggregateEstimate, Config, ConfigError, EncryptionMode, Event, JoinProblem, KeyChange,
    KeyChanges, KeyChangesIter, KeyFingerprint, KeyStatus, Keyring, KeyringError, KeyringStatus, MemberState,
    MessageError, Metrics, QueryFilter, QueryId, RequestOutcome, SecretKey, SharedEntry, SharedStr,
    WriteError, WritePolicy, WriteRequestId,
};
