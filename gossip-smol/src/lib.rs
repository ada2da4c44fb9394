//! Run a [`gossip_core`] node on smol over UDP.
//!
//! [`start`] binds an `async_io::Async<UdpSocket>`, spawns the node's driver task on smol's
//! global executor and returns a cloneable [`Handle`] and an [`Events`] stream:
//!
//! ```no_run
//! use gossip_smol::Config;
//!
//! smol::block_on(async {
//!     let (node, _events) = gossip_smol::start(Config::lan(), "node-a", "127.0.0.1:0".parse().unwrap()).await?;
//!     node.join(["127.0.0.1:7946".parse().unwrap()]).await?;
//!     node.set("role", "web").await?;
//!     node.leave().await?;
//!     node.shutdown().await;
//!     Ok::<_, gossip_smol::Error>(())
//! })?;
//! # Ok::<_, gossip_smol::Error>(())
//! ```
//!
//! The driver loop is [`gossip_runtime`]'s, shared with the tokio and async-std adapters; the
//! socket and timer are `gossip_runtime`'s `async-io` binding, shared with async-std; this crate
//! supplies only smol's spawn ([`SmolRuntime`]).

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
/// free port: see [`Handle::local_addr`]); its driver runs on smol's global executor.
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
    gossip_runtime::start_on(&SmolRuntime, config, name, bind, options)
}

/// smol as a [`gossip_runtime::Runtime`]: `async-io`'s socket and timer, smol's spawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl gossip_runtime::Runtime for SmolRuntime {
    type Socket = AsyncIoSocket;
    type Timer = AsyncIoTimer;

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<AsyncIoSocket> {
        AsyncIoSocket::new(socket)
    }

    fn new_timer(&self, deadline: Instant) -> AsyncIoTimer {
        AsyncIoTimer::at(deadline)
    }

    fn spawn(&self, future: gossip_runtime::BoxFuture) {
        smol::spawn(future).detach();
    }
}
