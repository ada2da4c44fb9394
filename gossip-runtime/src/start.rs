//! Starting a node: bind the socket, build the core, spawn the driver.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use gossip_core::{Config, Identity, Keyring, Node, SecretKey};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::driver::Driver;
use crate::error::Error;
use crate::events::Events;
use crate::handle::Handle;
use crate::runtime::Runtime;

/// The UDP receive buffer a node asks for by default: 2 MiB, as memberlist does.
pub const DEFAULT_RECV_BUFFER: usize = 2 * 1024 * 1024;

/// Asks for a receive buffer of `bytes` on `socket`; returns what the OS granted.
fn grow_recv_buffer(socket: &std::net::UdpSocket, bytes: usize) -> std::io::Result<usize> {
    let socket = socket2::SockRef::from(socket);
    socket.set_recv_buffer_size(bytes)?;
    socket.recv_buffer_size()
}

/// Less common settings for starting a node; [`Options::default`] suits most uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The generation to run under; by default the wall clock in milliseconds since the Unix
    /// epoch, which grows on every restart as the protocol requires.
    pub generation: Option<u64>,
    /// A seed for the node's RNG, to replay a run; by default the RNG is seeded from OS
    /// randomness.
    pub seed: Option<u64>,
    /// The address other nodes should send to, when it differs from the bound one (required
    /// when binding `0.0.0.0` or `::`).
    pub advertise: Option<SocketAddr>,
    /// Commands that may wait for the driver before senders wait in turn (default 64).
    pub command_capacity: usize,
    /// Events that may wait in the [`Events`] stream before new ones are dropped (default
    /// 4,096; an `Event::KeysChanged` counts once here, whatever the number of its changes,
    /// each of which counts in the `Event::Lagged` that reports a loss).
    pub event_capacity: usize,
    /// The receive buffer asked of the UDP socket, in bytes (default 2 MiB, as memberlist
    /// asks): bursts (every member answering a query at once, a cluster that just healed)
    /// arrive faster than the driver reads, and the OS default (about 200 KB on Linux) drops
    /// them. The OS may grant less (Linux caps it at `net.core.rmem_max`); 0 keeps the OS
    /// default.
    pub recv_buffer: usize,
    /// The keys the node starts with, the first one primary (default none). A
    /// `Config::encryption` other than `Off` needs at least one; change the ring of a running
    /// node with [`Handle::install_key`], [`Handle::use_key`] and [`Handle::remove_key`].
    pub keys: Vec<SecretKey>,
    /// How often the seed names given to [`Handle::join_hosts`] are resolved again
    /// (default 60 s).
    pub seed_reresolve: Duration,
    /// What resolves the seed names of [`Handle::join_hosts`] (default: the system resolver).
    pub resolver: Option<SeedResolver>,
}

/// A resolver of seed names for [`Handle::join_hosts`], in place of the system's: a service
/// registry (Consul, the Kubernetes API, a file), or a fixed table in tests. It is called with
/// each name as given (`"seeds.internal:7946"`) on a thread of its own, so it may block.
#[derive(Clone)]
pub struct SeedResolver(Arc<ResolveFn>);

/// What a [`SeedResolver`] calls.
type ResolveFn = dyn Fn(&str) -> io::Result<Vec<SocketAddr>> + Send + Sync;

impl SeedResolver {
    /// A resolver calling `resolve`.
    pub fn new(resolve: impl Fn(&str) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static) -> Self {
        Self(Arc::new(resolve))
    }

    /// The addresses `host` resolves to.
    pub(crate) fn resolve(&self, host: &str) -> io::Result<Vec<SocketAddr>> {
        (self.0)(host)
    }
}

impl fmt::Debug for SeedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeedResolver(..)")
    }
}

/// Two resolvers are equal when they are the same one (clones of each other).
impl PartialEq for SeedResolver {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SeedResolver {}

impl Default for Options {
    fn default() -> Self {
        Self {
            generation: None,
            seed: None,
            advertise: None,
            command_capacity: 64,
            event_capacity: 4_096,
            recv_buffer: DEFAULT_RECV_BUFFER,
            keys: Vec::new(),
            seed_reresolve: Duration::from_secs(60),
            resolver: None,
        }
    }
}

impl Options {
    /// Runs under this generation.
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = Some(generation);
        self
    }

    /// Seeds the node's RNG with `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Resolves the seed names of [`Handle::join_hosts`] again every `every`.
    pub fn with_seed_reresolve(mut self, every: Duration) -> Self {
        self.seed_reresolve = every;
        self
    }

    /// Resolves the seed names of [`Handle::join_hosts`] with `resolver` instead of the
    /// system resolver.
    pub fn with_resolver(mut self, resolver: SeedResolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Advertises `address` to the other nodes.
    pub fn with_advertise(mut self, address: SocketAddr) -> Self {
        self.advertise = Some(address);
        self
    }

    /// Sets the capacity of the command channel.
    pub fn with_command_capacity(mut self, capacity: usize) -> Self {
        self.command_capacity = capacity;
        self
    }

    /// Asks the OS for a UDP receive buffer of `bytes` (0 keeps the OS default).
    pub fn with_recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = bytes;
        self
    }

    /// Sets the capacity of the event stream.
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Adds `key` to the keys the node starts with: the first key added is the primary (it
    /// seals what the node sends), every key opens what arrives.
    pub fn with_key(mut self, key: SecretKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds these keys, in order, to the keys the node starts with (see
    /// [`with_key`](Self::with_key)).
    pub fn with_keys(mut self, keys: impl IntoIterator<Item = SecretKey>) -> Self {
        self.keys.extend(keys);
        self
    }
}

/// The default generation: milliseconds since the Unix epoch, now (see
/// [`gossip_core::generation_at`]).
pub fn generation_from_clock() -> u64 {
    gossip_core::generation_at(SystemTime::now())
}

/// Starts a node on `runtime`: binds a UDP socket to `bind`, builds the core node named `name`
/// from `config` with the keyring of [`Options::keys`], and spawns its driver task. Returns the
/// node's handle and its event stream.
///
/// Fails with [`Error::Keyring`] when two of the keys cannot be installed together, and with
/// [`Error::Config`] when `config.encryption` is not `Off` and no key was given; nothing is
/// started then.
///
/// The adapter crates call this with their runtime; applications call the adapter's `start`.
/// Must be called where the runtime can register sockets (inside it, for tokio).
pub fn start_on<R: Runtime + Clone>(
    runtime: &R,
    config: Config,
    name: impl Into<String>,
    bind: SocketAddr,
    options: Options,
) -> Result<(Handle, Events), Error> {
    let keyring = keyring(&options.keys)?;
    let socket = std::net::UdpSocket::bind(bind).map_err(|source| Error::Bind { address: bind, source })?;
    socket.set_nonblocking(true).map_err(Error::Socket)?;
    if options.recv_buffer > 0 {
        // Best effort, as memberlist's: a smaller buffer only means more drops under bursts.
        match grow_recv_buffer(&socket, options.recv_buffer) {
            Ok(granted) => tracing::debug!(asked = options.recv_buffer, granted, "UDP receive buffer"),
            Err(error) => {
                tracing::warn!(%error, "cannot size the UDP receive buffer; keeping the OS default")
            }
        }
    }
    let bound = socket.local_addr().map_err(Error::Socket)?;
    let address = match options.advertise {
        Some(address) => address,
        None if bound.ip().is_unspecified() => return Err(Error::UnspecifiedAddress { bound }),
        None => bound,
    };
    let generation = options.generation.unwrap_or_else(generation_from_clock);
    let rng = match options.seed {
        Some(seed) => ChaCha8Rng::seed_from_u64(seed),
        None => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(Error::Random)?;
            ChaCha8Rng::from_seed(seed)
        }
    };
    let name = name.into();
    let now = Instant::now();
    let node =
        Node::with_keyring(config, Identity::new(name.clone(), generation, address), now, rng, keyring)?;
    let socket = runtime.wrap_udp_socket(socket).map_err(Error::Socket)?;
    let (command_tx, command_rx) = async_channel::bounded(options.command_capacity.max(1));
    let (event_tx, event_rx) = async_channel::bounded(options.event_capacity.max(1));
    let deadline = node.poll_timeout();
    let timer = runtime.new_timer(deadline);
    tracing::debug!(node = %name, generation, %bound, %address, "starting");
    // Events the full stream dropped and no `Event::Lagged` has reported yet: the driver adds,
    // whichever of the driver and the stream reports them first takes them.
    let lost = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let driver = Driver::<R>::new(node, socket, timer, deadline, command_rx, event_tx, lost.clone());
    runtime.spawn(Box::pin(driver));
    let background = Arc::new(crate::seeds::Resolving::new(runtime.clone(), options.resolver));
    let handle = Handle::new(command_tx, name, generation, bound, background, options.seed_reresolve);
    Ok((handle, Events::new(event_rx, lost)))
}

/// The ring of `keys`, the first one primary.
fn keyring(keys: &[SecretKey]) -> Result<Keyring, Error> {
    let Some((primary, others)) = keys.split_first() else { return Ok(Keyring::empty()) };
    let mut ring = Keyring::new(primary.clone());
    for key in others {
        ring = ring.with(key)?;
    }
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_receive_buffer_grows_beyond_the_os_default() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket on loopback");
        let default = socket2::SockRef::from(&socket).recv_buffer_size().expect("the default size");
        let granted = grow_recv_buffer(&socket, default * 4).expect("a larger buffer");
        // Linux grants min(asked, net.core.rmem_max), doubled for its bookkeeping: more than
        // the default unless rmem_max is below it.
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        if rmem_max > default / 2 {
            assert!(granted > default, "asked {}, granted {granted}, default {default}", default * 4);
        }
    }
}
