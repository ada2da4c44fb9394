//! Typed errors of the adapters.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use gossip_core::{AggregateError, ConfigError, JoinProblem, KeyringError, MessageError, WriteError};

/// What went wrong when starting or talking to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket could not be bound (address in use, no permission, no such interface).
    /// Nothing was started.
    #[error("could not bind a UDP socket to {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The operating system's answer.
        #[source]
        source: io::Error,
    },
    /// The socket was bound to an unspecified address (`0.0.0.0` or `::`) and no address to
    /// advertise was given. Nothing was started.
    #[error(
        "bound to {bound}, which other nodes cannot send to; set `Options::advertise` to an \
         address they can reach"
    )]
    UnspecifiedAddress {
        /// The address the socket is bound to.
        bound: SocketAddr,
    },
    /// The socket could not be set up for the runtime. Nothing was started.
    #[error("could not set up the UDP socket: {0}")]
    Socket(#[source] io::Error),
    /// The operating system gave no randomness to seed the node's RNG. Nothing was started.
    #[error("could not read OS randomness to seed the node: {0}")]
    Random(#[source] getrandom::Error),
    /// The configuration or the node name was refused by the core. Nothing was started.
    #[error("invalid node configuration: {0}")]
    Config(#[from] ConfigError),
    /// A `set` or `delete` was refused; the node's table is unchanged.
    #[error("write refused: {0}")]
    Write(#[from] WriteError),
    /// A direct message or broadcast was refused; nothing was sent.
    #[error("message refused: {0}")]
    Message(#[from] MessageError),
    /// An `aggregate_set` was refused; nothing changed.
    #[error("aggregate refused: {0}")]
    Aggregate(#[from] AggregateError),
    /// A keyring command was refused, or the keys given to start with cannot be installed
    /// together (then nothing was started); the keyring is unchanged.
    #[error("keyring: {0}")]
    Keyring(#[from] KeyringError),
    /// The node has shut down (its driver task ended); the command was not carried out.
    #[error("the node has shut down")]
    Closed,
    /// A graceful leave did not complete in time. The leave was announced and goes on
    /// spreading until [`crate::Handle::shutdown`].
    #[error("the leave was not acknowledged within {0:?}")]
    LeaveTimedOut(Duration),
    /// No seed name given to [`crate::Handle::join_hosts`] resolved: each with why. Nothing
    /// was joined.
    #[error("no seed name resolved: {}", describe_hosts(.0))]
    Resolve(Vec<(String, String)>),
    /// The node already has as many watches as it keeps (1,024); drop some first.
    #[error("too many watches ({0}); drop watches no longer read")]
    TooManyWatches(usize),
    /// No seed answered `join` within `Config::swim.join_timeout`. The node keeps trying in
    /// the background.
    #[error("no seed answered the join: {}", describe_seeds(.0))]
    JoinFailed(Vec<(SocketAddr, JoinProblem)>),
}

fn describe_seeds(seeds: &[(SocketAddr, JoinProblem)]) -> String {
    seeds.iter().map(|(seed, problem)| format!("{seed}: {problem}")).collect::<Vec<_>>().join("; ")
}

fn describe_hosts(hosts: &[(String, String)]) -> String {
    hosts.iter().map(|(host, why)| format!("{host}: {why}")).collect::<Vec<_>>().join("; ")
}
