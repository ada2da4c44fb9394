//! Run a [`gossip_core`] node on tokio over UDP.
//!
//! [`start`] binds a `tokio::net::UdpSocket`, spawns the node's driver task on the current
//! tokio runtime and returns a cloneable [`Handle`] and an [`Events`] stream:
//!
//! ```no_run
//! use futures_lite::StreamExt;
//! use gossip_tokio::{Config, Event};
//!
//! # async fn demo() -> Result<(), gossip_tokio::Error> {
//! let (node, mut events) = gossip_tokio::start(Config::lan(), "node-a", "127.0.0.1:0".parse().unwrap()).await?;
//! println!("listening on {}", node.local_addr());
//! node.join(["127.0.0.1:7946".parse().unwrap()]).await?;
//! node.set("role", "web").await?;
//! while let Some(event) = events.next().await {
//!     if let Event::MemberDiscovered { name, .. } = event {
//!         println!("{name} joined; its role: {:?}", node.get(&name, "role").await?);
//!     }
//! }
//! node.leave().await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The driver loop itself is [`gossip_runtime`]'s, shared with the smol and async-std
//! adapters; this crate supplies only tokio's socket, timer and spawn ([`TokioRuntime`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::ReadBuf;

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
/// free port: see [`Handle::local_addr`]), on the current tokio runtime.
///
/// # Panics
///
/// When called outside a tokio runtime.
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
    gossip_runtime::start_on(&TokioRuntime::current(), config, name, bind, options)
}

/// tokio as a [`gossip_runtime::Runtime`].
#[derive(Debug, Clone)]
pub struct TokioRuntime(tokio::runtime::Handle);

impl TokioRuntime {
    /// The runtime this is called from.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn current() -> Self {
        Self(tokio::runtime::Handle::current())
    }

    /// A given runtime.
    pub fn new(handle: tokio::runtime::Handle) -> Self {
        Self(handle)
    }
}

impl gossip_runtime::Runtime for TokioRuntime {
    type Socket = TokioSocket;
    type Timer = TokioTimer;

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<TokioSocket> {
        let _guard = self.0.enter();
        tokio::net::UdpSocket::from_std(socket).map(TokioSocket)
    }

    fn new_timer(&self, deadline: Instant) -> TokioTimer {
        let _guard = self.0.enter();
        TokioTimer(Box::pin(tokio::time::sleep_until(deadline.into())))
    }

    fn spawn(&self, future: gossip_runtime::BoxFuture) {
        // Outside tokio's cooperative budget: a budget-forced `Pending` from the socket would
        // look like an empty socket and let a due timeout overtake queued datagrams. The
        // driver yields by its own budget instead.
        drop(self.0.spawn(tokio::task::unconstrained(future)));
    }
}

/// A `tokio::net::UdpSocket` as a [`gossip_runtime::UdpSocket`].
#[derive(Debug)]
pub struct TokioSocket(tokio::net::UdpSocket);

impl gossip_runtime::UdpSocket for TokioSocket {
    fn poll_send_to(&self, cx: &mut Context<'_>, buf: &[u8], target: SocketAddr) -> Poll<io::Result<usize>> {
        self.0.poll_send_to(cx, buf, target)
    }

    fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut buf = ReadBuf::new(buf);
        self.0.poll_recv_from(cx, &mut buf).map_ok(|from| (buf.filled().len(), from))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A `tokio::time::Sleep` as a [`gossip_runtime::Timer`].
#[derive(Debug)]
pub struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl gossip_runtime::Timer for TokioTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
