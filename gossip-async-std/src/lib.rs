//! Run a [`gossip_core`] node on async-std over UDP.
//!
//! **async-std is discontinued upstream in favour of smol.** This adapter is therefore built
//! on the same `async-io` code as `gossip-smol`: the socket is an `async_io::Async<UdpSocket>`
//! and the timer an `async_io::Timer` (the reactor async-std itself runs on), through
//! `gossip_runtime`'s `async-io` binding. Only the spawn is async-std's
//! (`async_std::task::spawn`). New code should prefer `gossip-smol`; this crate keeps existing
//! async-std applications working.
//!
//! ```no_run
//! use gossip_async_std::Config;
//!
//! async_std::task::block_on(async {
//!     let (node, _events) =
//!         gossip_async_std::start(Config::lan(), "node-a", "127.0.0.1:0".parse().unwrap()).await?;
//!     node.join(["127.0.0.1:7946".parse().unwrap()]).await?;
//!     node.set("role", "web").await?;
//!     node.leave().await?;
//!     node.shutdown().await;
//!     Ok::<_, gossip_async_std::Error>(())
//! })?;
//! # Ok::<_, gossip_async_std::Error>(())
//! ```
//!
//! The driver loop is [`gossip_runtime`]'s, shared with the tokio and smol adapters.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use gossip_runtime::{AsyncIoSocket, AsyncIoTimer};

pub use gossip_core::{
    AggregateError, AggregateEstimate, Config, ConfigError, EncryptionMode, Event, JoinProblem, KeyChange,
    KeyChanges, KeyChangesIter, KeyFingerprint, KeyStatus, Keyring, KeyringError, KeyringStatus, MemberState,
    MessageError, Metrics, QueryFilter, QueryId, RequestOutcome, SecretKey, SharedEntry, SharedStr,
    WriteError, WritePolicy, WriteRequestId,
};
pub use gossip_runtime::{
    Bytes, DriverStats, Entry, Error, Events, Handle, KeyValue, Member, MemberSnapshot, NodeMetrics, Options,
    SeedResolver, Snapshot, Watch, generation_from_clock,
};

/// Starts a node named `name` with `config` on a UDP socket bound to `bind` (port 0 picks a
/// free port: see [`Handle::local_addr`]); its driver runs as an async-std task.
pub async fn start(
    config: Config,
    name: impl Into<String>,
    bind: SocketAddr,
) -> Result<(Handle, Events), Error> {
    start_with(config, name, bind, Options::default()).await
}

/// As [`start`], with [`Options`] (a fixed generation or seed, an advertised address,
/// channel sizes, the keys to start with: [`Options::with_key`]).
pub async fn start_with(
    config: Config,
    name: impl Into<String>,
    bind: SocketAddr,
    options: Options,
) -> Result<(Handle, Events), Error> {
    gossip_runtime::start_on(&AsyncStdRuntime, config, name, bind, options)
}

/// async-std as a [`gossip_runtime::Runtime`]: `async-io`'s socket and timer (as smol),
/// async-std's spawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

impl gossip_runtime::Runtime for AsyncStdRuntime {
    type Socket = AsyncIoSocket;
    type Timer = AsyncIoTimer;

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<AsyncIoSocket> {
        AsyncIoSocket::new(socket)
    }

    fn new_timer(&self, deadline: Instant) -> AsyncIoTimer {
        AsyncIoTimer::at(deadline)
    }

    fn spawn(&self, future: gossip_runtime::BoxFuture) {
        drop(async_std::task::spawn(future));
    }
}
