//! The application's side: a cloneable [`Handle`] that sends commands to the driver task over
//! a bounded channel and awaits each reply on a oneshot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::oneshot;
use gossip_core::{
    AggregateError, AggregateEstimate, EncryptionMode, KeyFingerprint, KeyringError, KeyringStatus,
    MemberState, MessageError, Metrics, NodeView, QueryFilter, QueryId, SecretKey, WriteError,
    WriteRequestId,
};

use crate::error::Error;
use crate::seeds::Background;
use crate::state::{Entry, KeyValue, Snapshot};
use crate::watch::Watch;

/// One member of the cluster as a node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Member {
    /// Its stable name.
    pub name: String,
    /// The generation it runs under (grows on every restart).
    pub generation: u64,
    /// The address it is reached at.
    pub address: SocketAddr,
    /// Alive, suspected, dead or left.
    pub state: MemberState,
    /// Its incarnation number (raised by the member to refute a suspicion).
    pub incarnation: u32,
    /// Keys of its table held here, tombstones included.
    pub keys: usize,
    /// The highest version of its table held here.
    pub max_version: u64,
}

impl From<NodeView<'_>> for Member {
    fn from(view: NodeView<'_>) -> Self {
        Self {
            name: view.name.to_owned(),
            generation: view.generation,
            address: view.address,
            state: view.state,
            incarnation: view.incarnation,
            keys: view.keys,
            max_version: view.max_version,
        }
    }
}

/// Counters kept by the driver, next to the core's own [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Datagrams the socket accepted.
    pub datagrams_sent: u64,
    /// Bytes the socket accepted.
    pub bytes_sent: u64,
    /// The largest datagram sent, in bytes.
    pub max_datagram_sent: u64,
    /// Sends that failed (for example `ConnectionRefused` after an ICMP unreachable); each is
    /// logged and the datagram dropped, never fatal.
    pub send_errors: u64,
    /// Datagrams received and handed to the core.
    pub datagrams_received: u64,
    /// Bytes received and handed to the core.
    pub bytes_received: u64,
    /// Receives that failed; each is logged, never fatal.
    pub recv_errors: u64,
    /// Datagrams dropped because the socket stayed busy and the outgoing queue was full.
    pub transmits_dropped: u64,
    /// Events dropped because the [`crate::Events`] stream was full (not read fast enough);
    /// each change of a dropped `Event::KeysChanged` counts.
    pub events_dropped: u64,
    /// Times the core's timeout was handled.
    pub timeouts: u64,
    /// Times the timer was re-armed (only when the core's deadline changed).
    pub timer_resets: u64,
}

impl DriverStats {
    /// Every counter with its field name, in declaration order (for exporters).
    pub fn counters(&self) -> [(&'static str, u64); 11] {
        [
            ("datagrams_sent", self.datagrams_sent),
            ("bytes_sent", self.bytes_sent),
            ("max_datagram_sent", self.max_datagram_sent),
            ("send_errors", self.send_errors),
            ("datagrams_received", self.datagrams_received),
            ("bytes_received", self.bytes_received),
            ("recv_errors", self.recv_errors),
            ("transmits_dropped", self.transmits_dropped),
            ("events_dropped", self.events_dropped),
            ("timeouts", self.timeouts),
            ("timer_resets", self.timer_resets),
        ]
    }
}

/// What [`Handle::metrics`] returns: the core's counters, the driver's, and the gauges an
/// exporter publishes beside them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeMetrics {
    /// The protocol's counters (decode errors, probes, rounds, ...).
    pub core: Metrics,
    /// The driver's counters (socket traffic, send errors, dropped events, ...).
    pub driver: DriverStats,
    /// Lifeguard's local-health score, 0 (healthy) up to `swim.max_health_score`: how much this
    /// node currently stretches its probe timeouts because it seems slow itself.
    pub local_health: u32,
}

/// A command for the driver, with the oneshot its reply goes back on.
#[derive(Debug)]
pub(crate) enum Command {
    Set {
        key: String,
        value: Bytes,
        reply: oneshot::Sender<Result<u64, WriteError>>,
    },
    SetWithTtl {
        key: String,
        value: Bytes,
        ttl: Duration,
        reply: oneshot::Sender<Result<u64, WriteError>>,
    },
    Delete {
        key: String,
        reply: oneshot::Sender<Result<Option<u64>, WriteError>>,
    },
    SendTo {
        member: String,
        payload: Bytes,
        reply: oneshot::Sender<Result<(), MessageError>>,
    },
    Broadcast {
        topic: String,
        payload: Bytes,
        latest: bool,
        reply: oneshot::Sender<Result<u64, MessageError>>,
    },
    Query {
        topic: String,
        payload: Bytes,
        filter: QueryFilter,
        timeout: Duration,
        reply: oneshot::Sender<Result<u64, MessageError>>,
    },
    Respond {
        query: QueryId,
        payload: Bytes,
        reply: oneshot::Sender<Result<(), MessageError>>,
    },
    RequestWrite {
        owner: String,
        key: String,
        value: Option<Bytes>,
        reply: oneshot::Sender<Result<u64, MessageError>>,
    },
    AnswerWrite {
        request: WriteRequestId,
        refusal: Option<String>,
        reply: oneshot::Sender<Result<Option<u64>, MessageError>>,
    },
    Get {
        node: String,
        key: String,
        reply: oneshot::Sender<Option<(Bytes, u64)>>,
    },
    Members {
        reply: oneshot::Sender<Vec<Member>>,
    },
    Entries {
        node: String,
        reply: oneshot::Sender<Option<Vec<Entry>>>,
    },
    WithPrefix {
        prefix: String,
        reply: oneshot::Sender<Vec<KeyValue>>,
    },
    Snapshot {
        reply: oneshot::Sender<Snapshot>,
    },
    WatchMembers {
        reply: oneshot::Sender<Result<Watch<Vec<Member>>, Error>>,
    },
    WatchPrefix {
        prefix: String,
        reply: oneshot::Sender<Result<Watch<Vec<KeyValue>>, Error>>,
    },
    AggregateSet {
        name: String,
        value: f64,
        reply: oneshot::Sender<Result<(), AggregateError>>,
    },
    Aggregate {
        name: String,
        running: bool,
        reply: oneshot::Sender<Option<AggregateEstimate>>,
    },
    Join {
        seeds: Vec<SocketAddr>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Metrics {
        reply: oneshot::Sender<NodeMetrics>,
    },
    InstallKey {
        key: SecretKey,
        reply: oneshot::Sender<Result<KeyFingerprint, KeyringError>>,
    },
    UseKey {
        fingerprint: KeyFingerprint,
        reply: oneshot::Sender<Result<(), KeyringError>>,
    },
    RemoveKey {
        fingerprint: KeyFingerprint,
        reply: oneshot::Sender<Result<(), KeyringError>>,
    },
    Keys {
        reply: oneshot::Sender<Vec<KeyFingerprint>>,
    },
    SetEncryption {
        mode: EncryptionMode,
        reply: oneshot::Sender<Result<(), KeyringError>>,
    },
    Encryption {
        reply: oneshot::Sender<EncryptionMode>,
    },
    KeyringStatus {
        reply: oneshot::Sender<KeyringStatus>,
    },
    Leave {
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What does not change over a node's life, shared by every clone of its handle.
#[derive(Debug)]
struct Fixed {
    name: String,
    generation: u64,
    local_addr: SocketAddr,
    /// The runtime, for seeds by name (see [`Handle::join_hosts`]).
    background: Arc<dyn Background>,
    /// How often seed names are resolved again.
    reresolve_every: Duration,
}

/// A handle that does not keep the node running (for background tasks of the node's own).
#[derive(Debug, Clone)]
pub(crate) struct WeakHandle {
    commands: async_channel::WeakSender<Command>,
    fixed: Arc<Fixed>,
}

impl WeakHandle {
    /// The handle, while some other handle keeps the node running.
    pub(crate) fn upgrade(&self) -> Option<Handle> {
        Some(Handle { commands: self.commands.upgrade()?, fixed: self.fixed.clone() })
    }
}

/// A cloneable handle to a running node.
///
/// Every method sends a command to the node's driver task over a bounded channel (so a burst
/// of commands waits for room rather than growing memory) and awaits the reply. Once the node
/// has shut down, every method but [`shutdown`](Self::shutdown) returns [`Error::Closed`].
///
/// The node runs until [`shutdown`](Self::shutdown) is called or every clone of its handle is
/// dropped; the [`crate::Events`] stream alone does not keep it running.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: async_channel::Sender<Command>,
    fixed: Arc<Fixed>,
}

impl Handle {
    pub(crate) fn new(
        commands: async_channel::Sender<Command>,
        name: String,
        generation: u64,
        local_addr: SocketAddr,
        background: Arc<dyn Background>,
        reresolve_every: Duration,
    ) -> Self {
        let fixed = Fixed { name, generation, local_addr, background, reresolve_every };
        Self { commands, fixed: Arc::new(fixed) }
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.fixed.name
    }

    /// The generation this node runs under.
    pub fn generation(&self) -> u64 {
        self.fixed.generation
    }

    /// The address the socket is bound to (the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.fixed.local_addr
    }

    /// Whether the driver task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    async fn request<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)
    }

    /// Writes `key = value` in this node's table and returns the version of the write. The
    /// write spreads to every member by rumor and anti-entropy.
    pub async fn set(&self, key: impl Into<String>, value: impl Into<Bytes>) -> Result<u64, Error> {
        let (key, value) = (key.into(), value.into());
        Ok(self.request(|reply| Command::Set { key, value, reply }).await??)
    }

    /// Writes `key = value` in this node's table, deleted by this node `ttl` later unless
    /// written again before (see [`gossip_core::Node::set_with_ttl`]); returns the version of
    /// the write.
    pub async fn set_with_ttl(
        &self,
        key: impl Into<String>,
        value: impl Into<Bytes>,
        ttl: Duration,
    ) -> Result<u64, Error> {
        let (key, value) = (key.into(), value.into());
        Ok(self.request(|reply| Command::SetWithTtl { key, value, ttl, reply }).await??)
    }

    /// Sends `payload` to the live member `member` in one datagram (best effort); it gets
    /// `Event::Message` (see [`gossip_core::Node::send_to`]).
    pub async fn send_to(&self, member: impl Into<String>, payload: impl Into<Bytes>) -> Result<(), Error> {
        let (member, payload) = (member.into(), payload.into());
        Ok(self.request(|reply| Command::SendTo { member, payload, reply }).await??)
    }

    /// Broadcasts `payload` under `topic`: every other live member gets one
    /// `Event::Broadcast` (see [`gossip_core::Node::broadcast`]); returns its id.
    pub async fn broadcast(&self, topic: impl Into<String>, payload: impl Into<Bytes>) -> Result<u64, Error> {
        let (topic, payload) = (topic.into(), payload.into());
        Ok(self.request(|reply| Command::Broadcast { topic, payload, latest: false, reply }).await??)
    }

    /// As [`broadcast`](Self::broadcast), coalesced by topic (see
    /// [`gossip_core::Node::broadcast_latest`]): for state that only matters in its latest form.
    pub async fn broadcast_latest(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Result<u64, Error> {
        let (topic, payload) = (topic.into(), payload.into());
        Ok(self.request(|reply| Command::Broadcast { topic, payload, latest: true, reply }).await??)
    }

    /// Asks the members `filter` selects (see [`gossip_core::Node::query`]): each gets
    /// `Event::Query` and may answer with [`respond`](Self::respond); the answers come as
    /// `Event::QueryResponse` until `timeout`, then `Event::QueryFinished`. Returns its id.
    pub async fn query(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        filter: QueryFilter,
        timeout: Duration,
    ) -> Result<u64, Error> {
        let (topic, payload) = (topic.into(), payload.into());
        Ok(self.request(|reply| Command::Query { topic, payload, filter, timeout, reply }).await??)
    }

    /// Answers a query this node got (`Event::Query`), once, within its timeout.
    pub async fn respond(&self, query: QueryId, payload: impl Into<Bytes>) -> Result<(), Error> {
        let payload = payload.into();
        Ok(self.request(|reply| Command::Respond { query, payload, reply }).await??)
    }

    /// Asks `owner` to write `key = value` in its table (see
    /// [`gossip_core::Node::request_write`]); `Event::WriteAnswered` tells the outcome.
    /// Returns the request's id.
    pub async fn request_write(
        &self,
        owner: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Result<u64, Error> {
        let (owner, key, value) = (owner.into(), key.into(), Some(value.into()));
        Ok(self.request(|reply| Command::RequestWrite { owner, key, value, reply }).await??)
    }

    /// As [`request_write`](Self::request_write), for a delete of `key`.
    pub async fn request_delete(
        &self,
        owner: impl Into<String>,
        key: impl Into<String>,
    ) -> Result<u64, Error> {
        let (owner, key) = (owner.into(), key.into());
        Ok(self.request(|reply| Command::RequestWrite { owner, key, value: None, reply }).await??)
    }

    /// Accepts a write request this node was asked (`Event::WriteRequested`): writes it and
    /// returns the version (see [`gossip_core::Node::accept_write`]).
    pub async fn accept_write(&self, request: WriteRequestId) -> Result<u64, Error> {
        let answer = self.request(|reply| Command::AnswerWrite { request, refusal: None, reply }).await??;
        Ok(answer.unwrap_or_default())
    }

    /// Refuses a write request this node was asked (`Event::WriteRequested`), telling the
    /// requester `reason`.
    pub async fn refuse_write(
        &self,
        request: WriteRequestId,
        reason: impl Into<String>,
    ) -> Result<(), Error> {
        let refusal = Some(reason.into());
        self.request(|reply| Command::AnswerWrite { request, refusal, reply }).await??;
        Ok(())
    }

    /// Deletes `key` from this node's table (a versioned tombstone); returns its version, or
    /// `None` when the key was not there.
    pub async fn delete(&self, key: impl Into<String>) -> Result<Option<u64>, Error> {
        let key = key.into();
        Ok(self.request(|reply| Command::Delete { key, reply }).await??)
    }

    /// The value of `key` in `node`'s table as this node holds it (any node's, this one's
    /// included).
    pub async fn get(&self, node: impl Into<String>, key: impl Into<String>) -> Result<Option<Bytes>, Error> {
        Ok(self.get_versioned(node, key).await?.map(|(value, _)| value))
    }

    /// As [`get`](Self::get), with the owner's version of the value.
    pub async fn get_versioned(
        &self,
        node: impl Into<String>,
        key: impl Into<String>,
    ) -> Result<Option<(Bytes, u64)>, Error> {
        let (node, key) = (node.into(), key.into());
        self.request(|reply| Command::Get { node, key, reply }).await
    }

    /// Every member this node knows, itself first, whatever its state (dead and departed
    /// members stay listed until they are forgotten).
    pub async fn members(&self) -> Result<Vec<Member>, Error> {
        self.request(|reply| Command::Members { reply }).await
    }

    /// The live entries of `node`'s table as this node holds it, in version order; `None`
    /// for a node it does not know.
    pub async fn entries(&self, node: impl Into<String>) -> Result<Option<Vec<Entry>>, Error> {
        let node = node.into();
        self.request(|reply| Command::Entries { node, reply }).await
    }

    /// Every live entry whose key starts with `prefix`, of every live (alive or suspected)
    /// member, this node included, ordered by node then key. An empty prefix gives every key.
    pub async fn entries_with_prefix(&self, prefix: impl Into<String>) -> Result<Vec<KeyValue>, Error> {
        let prefix = prefix.into();
        self.request(|reply| Command::WithPrefix { prefix, reply }).await
    }

    /// Everything this node holds at one moment: every member (dead and departed ones until
    /// they are forgotten) with its live entries. The way to (re)build a mirror of the
    /// cluster, for example after [`gossip_core::Event::Lagged`]. Serializable with the
    /// `serde` feature.
    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        self.request(|reply| Command::Snapshot { reply }).await
    }

    /// A [`Watch`] of the membership: every member as [`members`](Self::members) lists them
    /// (ordered by name), updated whenever a member is discovered, changes state, incarnation,
    /// address or table version, or is forgotten. It never loses the latest state, however
    /// slowly it is read. At most 1,024 watches per node ([`Error::TooManyWatches`]); a
    /// dropped watch frees its place.
    pub async fn watch_members(&self) -> Result<Watch<Vec<Member>>, Error> {
        self.request(|reply| Command::WatchMembers { reply }).await?
    }

    /// A [`Watch`] of every live entry under `prefix` across the cluster, as
    /// [`entries_with_prefix`](Self::entries_with_prefix) gives them: a service registry
    /// that cannot go stale. Same limits as [`watch_members`](Self::watch_members).
    pub async fn watch_prefix(&self, prefix: impl Into<String>) -> Result<Watch<Vec<KeyValue>>, Error> {
        let prefix = prefix.into();
        self.request(|reply| Command::WatchPrefix { prefix, reply }).await?
    }

    /// Joins through seeds given by name (`"seed-1.internal:7946"`) or address
    /// (`"10.0.0.5:7946"`), as memberlist's `Join` and chitchat's seeds take them. The names are
    /// resolved by the adapter (the system resolver, on a thread of its own), every address
    /// found is joined as [`join`](Self::join) does, and from then on the names are resolved
    /// again every `Options::seed_reresolve` (60 s by default): an address that is new and not
    /// a member's (a seed replaced behind its name) is joined. Fails with
    /// [`Error::Resolve`] when no name resolves (each named with why), or as `join` fails.
    pub async fn join_hosts(&self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Result<(), Error> {
        let hosts: Vec<String> = hosts.into_iter().map(Into::into).collect();
        let background = self.fixed.background.clone();
        let (found, failed) = crate::seeds::resolve_all(&*background, &hosts).await;
        if found.is_empty() {
            return Err(Error::Resolve(failed));
        }
        for (host, why) in &failed {
            tracing::warn!(node = self.name(), %host, %why, "seed did not resolve; trying again later");
        }
        let weak = WeakHandle { commands: self.commands.downgrade(), fixed: self.fixed.clone() };
        let every = self.fixed.reresolve_every;
        let again = crate::seeds::keep_resolving(weak, background.clone(), hosts, found.clone(), every);
        background.spawn(Box::pin(again));
        self.join(found).await
    }

    /// Contributes `value` to the cluster-wide aggregate `name` (push-sum): every member can
    /// read its average, sum, count, minimum and maximum with [`aggregate`](Self::aggregate).
    pub async fn aggregate_set(&self, name: impl Into<String>, value: f64) -> Result<(), Error> {
        let name = name.into();
        Ok(self.request(|reply| Command::AggregateSet { name, value, reply }).await??)
    }

    /// The estimate of the aggregate `name` from the last finished epoch (see
    /// [`gossip_core::Node::aggregate`]).
    pub async fn aggregate(&self, name: impl Into<String>) -> Result<Option<AggregateEstimate>, Error> {
        let name = name.into();
        self.request(|reply| Command::Aggregate { name, running: false, reply }).await
    }

    /// The estimate of `name` being computed in the current epoch (see
    /// [`gossip_core::Node::aggregate_running`]).
    pub async fn aggregate_running(
        &self,
        name: impl Into<String>,
    ) -> Result<Option<AggregateEstimate>, Error> {
        let name = name.into();
        self.request(|reply| Command::Aggregate { name, running: true, reply }).await
    }

    /// Contacts these seed addresses and resolves once one answers (at once if the node has
    /// joined already, or when `seeds` is empty and it never was asked to join: the first node
    /// of a cluster). If none answered within `Config::swim.join_timeout`, it fails with
    /// [`Error::JoinFailed`], naming each seed and what it did; the node keeps trying in the
    /// background either way ([`gossip_core::Event::Joined`] follows on the event stream if a
    /// seed answers later).
    pub async fn join(&self, seeds: impl IntoIterator<Item = SocketAddr>) -> Result<(), Error> {
        let seeds = seeds.into_iter().collect();
        self.request(|reply| Command::Join { seeds, reply }).await?
    }

    /// The core's and the driver's counters.
    pub async fn metrics(&self) -> Result<NodeMetrics, Error> {
        self.request(|reply| Command::Metrics { reply }).await
    }

    /// Installs `key` in the node's keyring (not as the primary, unless the ring was empty):
    /// datagrams sealed with it are opened from now on. Installing a key already there
    /// changes nothing. Returns the key's fingerprint.
    ///
    /// The first of the three steps of a key rotation (see [`gossip_core::keyring`]): install
    /// the new key on every member, and wait until [`keyring_status`](Self::keyring_status)
    /// shows every live member holding it.
    pub async fn install_key(&self, key: &SecretKey) -> Result<KeyFingerprint, Error> {
        let key = key.clone();
        Ok(self.request(|reply| Command::InstallKey { key, reply }).await??)
    }

    /// Makes an installed key the primary: every datagram is sealed with it from now on.
    pub async fn use_key(&self, fingerprint: KeyFingerprint) -> Result<(), Error> {
        Ok(self.request(|reply| Command::UseKey { fingerprint, reply }).await??)
    }

    /// Removes an installed key that is not the primary: datagrams sealed with it are dropped
    /// from now on (counted in [`Metrics::unknown_key_ids`]).
    pub async fn remove_key(&self, fingerprint: KeyFingerprint) -> Result<(), Error> {
        Ok(self.request(|reply| Command::RemoveKey { fingerprint, reply }).await??)
    }

    /// The installed keys' fingerprints, the primary first.
    pub async fn keys(&self) -> Result<Vec<KeyFingerprint>, Error> {
        self.request(|reply| Command::Keys { reply }).await
    }

    /// Moves to another step of turning encryption on or off (see [`EncryptionMode`]); any
    /// mode but `Off` needs a key.
    pub async fn set_encryption(&self, mode: EncryptionMode) -> Result<(), Error> {
        Ok(self.request(|reply| Command::SetEncryption { mode, reply }).await??)
    }

    /// The encryption mode in force.
    pub async fn encryption(&self) -> Result<EncryptionMode, Error> {
        self.request(|reply| Command::Encryption { reply }).await
    }

    /// Which keys the live members hold and seal with, as they publish it: how many hold each
    /// key out of [`KeyringStatus::live_members`].
    pub async fn keyring_status(&self) -> Result<KeyringStatus, Error> {
        self.request(|reply| Command::KeyringStatus { reply }).await
    }

    /// Leaves the cluster gracefully: gossips the departure and waits until enough members
    /// acknowledged it or the core's `swim.leave_timeout` passed. The node keeps running (and
    /// answering) until [`shutdown`](Self::shutdown); call that next.
    ///
    /// Returns [`Error::LeaveTimedOut`] if the core has not reported the leave complete one
    /// second after its own `leave_timeout` (which should not happen).
    pub async fn leave(&self) -> Result<(), Error> {
        self.request(|reply| Command::Leave { reply }).await?
    }

    /// Stops the node without a leave (to the others this is a crash): the driver task ends,
    /// the socket is closed and the event stream ends. Returns once that is done. Calling it
    /// again, or after the node stopped, is harmless.
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = answer.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `DriverStats::counters` lists every field (the Debug output names each one).
    #[test]
    fn driver_counters_list_every_field() {
        let debug = format!("{:?}", DriverStats::default());
        assert_eq!(DriverStats::default().counters().len(), debug.matches(": ").count(), "{debug}");
    }
}
