//! The state machine of one node.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use gossip_proto::v1;
use rand::RngExt;
use rand_core::Rng;

use crate::aggregate::state::Aggregation;
use crate::anti_entropy::schedule::GossipSchedule;
use crate::config::Config;
use crate::conflict::NameCheck;
use crate::error::{ConfigError, WriteError};
use crate::event::{Event, Output};
use crate::health::LocalHealth;
use crate::identity::Identity;
use crate::keyring::Keyring;
use crate::lifecycle::{Join, Leave};
use crate::membership::{ClaimKind, MemberState, Source};
use crate::message::{self, DropReason, EnvelopeBuilder};
use crate::messages::Messages;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::probe::Prober;
use crate::queries::Queries;
use crate::requests::Requests;
use crate::rumor::Rumors;
use crate::security::Security;
use crate::summary::DigestSummary;
use crate::suspicion::Suspicions;
use crate::table::{LOCAL, NodeTable};
use crate::ttl::Expiries;

/// One gossip node: a deterministic state machine that performs no I/O.
///
/// # Methods
///
/// - **inputs**: [`handle_input`](Self::handle_input) for every received datagram and
///   [`handle_timeout`](Self::handle_timeout) once the deadline from
///   [`poll_timeout`](Self::poll_timeout) has passed;
/// - **outputs**: [`poll`](Self::poll), drained until `None` after every input and every
///   command, then [`poll_timeout`](Self::poll_timeout) for the next deadline;
/// - **the node's own table**: [`set`](Self::set), [`set_with_ttl`](Self::set_with_ttl),
///   [`delete`](Self::delete), [`expiring_keys`](Self::expiring_keys);
/// - **membership**: [`join`](Self::join), [`has_joined`](Self::has_joined),
///   [`leave`](Self::leave), [`has_left`](Self::has_left),
///   [`has_given_up_name`](Self::has_given_up_name);
/// - **reading the replicated state**: [`get`](Self::get),
///   [`get_versioned`](Self::get_versioned), [`entries`](Self::entries),
///   [`nodes`](Self::nodes), [`node`](Self::node), [`digest_summary`](Self::digest_summary);
/// - **aggregation** (push-sum): [`aggregate_set`](Self::aggregate_set),
///   [`aggregate_remove`](Self::aggregate_remove), [`aggregate`](Self::aggregate),
///   [`aggregate_running`](Self::aggregate_running),
///   [`aggregation_epoch`](Self::aggregation_epoch);
/// - **encryption**: [`install_key`](Self::install_key), [`use_key`](Self::use_key),
///   [`remove_key`](Self::remove_key), [`keys`](Self::keys),
///   [`set_encryption`](Self::set_encryption), [`encryption`](Self::encryption),
///   [`keyring_status`](Self::keyring_status);
/// - **observing**: [`metrics`](Self::metrics), [`local_health`](Self::local_health),
///   [`footprint`](Self::footprint),
///   [`identity`](Self::identity), [`config`](Self::config).
///
/// # Time
///
/// Time is always an argument, an [`Instant`] of the caller's clock; the node reads no
/// clock. It keeps the latest `now` any input gave it:
///
/// - a `now` earlier than the latest is taken as the latest (time never goes back inside
///   the node; a clock that steps back only delays what is due);
/// - commands (`set`, `join`, `leave`, ...) carry no time: they are stamped with the latest
///   `now` of an input, so call `handle_timeout` or `handle_input` first when the node has
///   been idle, if the stamp matters (a TTL's start, say);
/// - `handle_timeout` may be called early, late or twice: it runs what is due and nothing
///   else; a node not called for a long while (a paused process) does not catch up in a
///   burst.
///
/// Randomness comes from the `R` given to [`new`](Self::new), so a run is a pure function of
/// its inputs and the RNG's seed.
#[derive(Debug)]
pub struct Node<R> {
    pub(crate) config: Config,
    pub(crate) identity: Identity,
    pub(crate) rng: R,
    pub(crate) table: NodeTable,
    pub(crate) envelopes: EnvelopeBuilder,
    /// Datagrams, events, counters and piggyback claims on their way out.
    pub(crate) out: Outbox,
    /// Application messages and broadcasts.
    pub(crate) messages: Messages,
    /// Queries asked and received.
    pub(crate) queries: Queries,
    /// Write requests made and asked.
    pub(crate) requests: Requests,
    pub(crate) join: Join,
    pub(crate) leave: Option<Leave>,
    pub(crate) prober: Prober,
    pub(crate) health: LocalHealth,
    pub(crate) suspicions: Suspicions,
    /// Anti-entropy's rounds, backoff and in-sync shortcuts.
    pub(crate) gossip: GossipSchedule,
    /// The latest time seen by any input; commands are stamped with it.
    pub(crate) now: Instant,
    pub(crate) rumors: Rumors,
    pub(crate) aggregation: Aggregation,
    /// The keyring, sealing and anti-replay.
    pub(crate) security: Security,
    /// Sources of datagrams of another cluster already reported (at most
    /// [`FOREIGN_CLUSTERS_REPORTED`]).
    pub(crate) foreign_clusters: std::collections::BTreeSet<SocketAddr>,
    /// Whether another process runs under our name (see `conflict.rs`).
    pub(crate) name_check: NameCheck,
    /// This node's keys that delete themselves (see `ttl.rs`).
    pub(crate) expiries: Expiries,
}

/// Most sources of another cluster's datagrams reported by [`Event::ForeignCluster`]; later
/// ones are only counted.
pub(crate) const FOREIGN_CLUSTERS_REPORTED: usize = 64;

/// A read-only view of one known node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeView<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its generation.
    pub generation: u64,
    /// Its address.
    pub address: SocketAddr,
    /// The highest version of its table held here.
    pub max_version: u64,
    /// Tombstones up to this version may have been collected here.
    pub gc_watermark: u64,
    /// Keys held, tombstones included.
    pub keys: usize,
    /// Its membership state.
    pub state: MemberState,
    /// Its incarnation.
    pub incarnation: u32,
}

impl<'a> NodeView<'a> {
    fn of(name: &'a str, member: &'a crate::replica::Replica) -> Self {
        // Table versions as the application sees them (a reset in progress is hidden); the
        // membership fields as they are.
        let replica = member.view();
        Self {
            name,
            generation: member.generation,
            address: member.address,
            max_version: replica.max_version,
            gc_watermark: replica.gc_watermark,
            keys: replica.len(),
            state: member.state,
            incarnation: member.incarnation,
        }
    }
}

impl<R: Rng> Node<R> {
    /// Creates a node that knows only itself; its first gossip round comes at a random
    /// point within one `gossip_interval` after `now`. Its keyring is empty, so
    /// `config.encryption` must be [`EncryptionMode::Off`](crate::EncryptionMode::Off): use
    /// [`with_keyring`](Self::with_keyring) to start with keys.
    pub fn new(config: Config, identity: Identity, now: Instant, rng: R) -> Result<Self, ConfigError> {
        Self::with_keyring(config, identity, now, rng, Keyring::empty())
    }

    /// As [`new`](Self::new), with the keys of `keyring` installed (its first key the
    /// primary) and `config.encryption` in force from the first datagram.
    pub fn with_keyring(
        config: Config,
        identity: Identity,
        now: Instant,
        mut rng: R,
        keyring: Keyring,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if config.encryption != crate::EncryptionMode::Off && keyring.is_empty() {
            return Err(ConfigError::EncryptionWithoutKey { mode: config.encryption });
        }
        if identity.name.is_empty() || identity.name.len() > config.max_name_size {
            return Err(ConfigError::InvalidName { len: identity.name.len(), max: config.max_name_size });
        }
        let phase = config.gossip_interval.mul_f64(rng.random::<f64>());
        let probe_phase = config.swim.probe_interval.mul_f64(rng.random::<f64>());
        let security = Security::new(&config, &identity, keyring);
        let mut node = Self {
            security,
            foreign_clusters: std::collections::BTreeSet::new(),
            name_check: NameCheck::default(),
            expiries: Expiries::default(),
            table: NodeTable::with_seed(&identity, rng.next_u64())
                .with_max_generation_jump(config.max_generation_jump),
            envelopes: EnvelopeBuilder::new(&config, &identity),
            out: Outbox::new(&config),
            messages: Messages::new(&config, now),
            queries: Queries::new(&config),
            requests: Requests::new(&config),
            join: Join::default(),
            leave: None,
            prober: Prober::new(now + probe_phase),
            health: LocalHealth::default(),
            suspicions: Suspicions::new(),
            gossip: GossipSchedule::new(now + phase),
            now,
            rumors: Rumors::new(config.max_hot_rumors),
            aggregation: Aggregation::new(config.aggregation.clone(), config.max_nodes, now),
            config,
            identity,
            rng,
        };
        // Announce ourselves: the first datagrams carry our Alive claim.
        if let Some(alive) = node.claim_about(LOCAL) {
            node.queue_claim(alive);
        }
        node.publish_keyring();
        Ok(node)
    }

    // ----- getters -----

    /// This node's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The live value of `key` in `node`'s table, as held here.
    pub fn get(&self, node: &str, key: &str) -> Option<&[u8]> {
        self.get_versioned(node, key).map(|(value, _)| value)
    }

    /// The live value of `key` in `node`'s table with the owner's version of it.
    pub fn get_versioned(&self, node: &str, key: &str) -> Option<(&[u8], u64)> {
        let (stored, version) = self.table.by_name(node)?.view().get(key)?;
        Some((stored.value(), version))
    }

    /// The live entry of `key` in `node`'s table with the owner's version of it, as a handle
    /// on the buffer it lies in (a reference count, no copy): keep it, or its
    /// [`shared_value`](crate::SharedEntry::shared_value), to hold the value without copying it.
    /// To read a value in place, [`get`](Self::get) takes no reference count.
    pub fn get_entry(&self, node: &str, key: &str) -> Option<(crate::SharedEntry, u64)> {
        let (stored, version) = self.table.by_name(node)?.view().get(key)?;
        Some((stored.shared(), version))
    }

    /// Every known node, this one first.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'_>> {
        self.table.iter().map(|(name, replica)| NodeView::of(name, replica))
    }

    /// One known node.
    pub fn node(&self, name: &str) -> Option<NodeView<'_>> {
        let (name, replica) = self.table.get(self.table.index_of(name)?)?;
        Some(NodeView::of(name, replica))
    }

    /// The live entries of `node`'s table as `(key, value, version)`, in version order.
    pub fn entries(&self, node: &str) -> Option<impl Iterator<Item = (&str, &[u8], u64)>> {
        let replica = self.table.by_name(node)?.view();
        Some(replica.live_entries().map(|(version, stored)| (stored.key(), stored.value(), version)))
    }

    /// The live entries of `node`'s table as handles with their versions, in version order:
    /// each a reference count on the buffer it lies in, no copy ([`entries`](Self::entries)
    /// reads them in place without one).
    pub fn shared_entries(&self, node: &str) -> Option<impl Iterator<Item = (crate::SharedEntry, u64)>> {
        let replica = self.table.by_name(node)?.view();
        Some(replica.live_entries().map(|(version, stored)| (stored.shared(), version)))
    }

    /// The summary of the local digest; two nodes with the same summary are in sync.
    pub fn digest_summary(&self) -> DigestSummary {
        self.table.summary()
    }

    /// The summary of what the local digest holds, membership states left out (what a rumor
    /// push carries as `data_summary`): two nodes with the same one hold the same versions.
    pub fn data_summary(&self) -> DigestSummary {
        self.table.data_summary()
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> Metrics {
        Metrics { events_dropped: self.out.events.dropped, ..self.out.metrics.clone() }
    }

    /// Lifeguard's local-health score, 0 (healthy) to `swim.max_health_score`: probe
    /// timeouts and intervals are scaled by `score + 1`.
    pub fn local_health(&self) -> u32 {
        self.health.score()
    }

    // ----- commands -----

    /// Writes `key = value` in this node's table; returns the version of the write.
    ///
    /// On error the table is unchanged. This node gets no event for its own writes.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Result<u64, WriteError> {
        let (key, value) = (key.into(), value.into());
        if self.name_check.given_up() {
            return Err(WriteError::NameGivenUp);
        }
        if key.starts_with(crate::keyring::RESERVED_PREFIX) {
            return Err(WriteError::ReservedKey { key });
        }
        if value.len() > self.config.max_value_size {
            return Err(WriteError::ValueTooLarge { len: value.len(), max: self.config.max_value_size });
        }
        self.keep_key(&key);
        self.write(key, Some(value))
    }

    /// Deletes `key` from this node's table by writing a tombstone; returns its version, or
    /// `None` when the key was not there.
    pub fn delete(&mut self, key: &str) -> Result<Option<u64>, WriteError> {
        if self.name_check.given_up() {
            return Err(WriteError::NameGivenUp);
        }
        if key.starts_with(crate::keyring::RESERVED_PREFIX) {
            return Err(WriteError::ReservedKey { key: key.to_owned() });
        }
        self.keep_key(key);
        if self.table.local().get(key).is_none() {
            return Ok(None);
        }
        self.write(key.to_owned(), None).map(Some)
    }

    pub(crate) fn write(&mut self, key: String, value: Option<Bytes>) -> Result<u64, WriteError> {
        if self.name_check.given_up() {
            return Err(WriteError::NameGivenUp);
        }
        if key.len() > self.config.max_key_size {
            return Err(WriteError::KeyTooLarge { len: key.len(), max: self.config.max_key_size });
        }
        let local = self.table.local();
        if !local.contains_key(&key) && local.len() >= self.config.max_keys_per_node {
            return Err(WriteError::TooManyKeys { max: self.config.max_keys_per_node });
        }
        let (now, deadline) = (self.now, self.now + self.config.tombstone_grace);
        let version = self
            .table
            .modify(LOCAL, |_, replica| replica.write(key, value, now, deadline))
            .unwrap_or_default();
        self.heat_rumor(LOCAL, self.identity.generation, version - 1, version);
        self.note_activity();
        Ok(version)
    }

    // ----- inputs -----

    /// Handles a datagram received from `from` at `now`. Bad datagrams are dropped, counted
    /// in [`metrics`](Self::metrics), and leave the state unchanged.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.advance(now);
        self.out.metrics.datagrams_in += 1;
        self.out.metrics.bytes_in += datagram.len() as u64;
        if self.name_check.given_up() {
            return;
        }
        if datagram.len() > self.config.max_datagram_size {
            self.out.metrics.oversized_datagrams += 1;
            return;
        }
        // One copy into `Bytes` (the opened plaintext, when sealed): the `bytes` fields
        // decoded from it are slices of it.
        let encoded = match self.security.unseal(now, datagram) {
            Ok(encoded) => encoded,
            Err(refusal) => {
                self.note_join_problem(from, crate::lifecycle::JoinProblem::Unreadable);
                return refusal.count(&mut self.out.metrics);
            }
        };
        let Ok(decoded) = message::decode(&encoded) else {
            self.out.metrics.decode_errors += 1;
            return;
        };
        let envelope = match message::check(decoded, &self.config, from, &encoded) {
            Ok(envelope) => envelope,
            Err(DropReason::Version) => return self.out.metrics.version_mismatches += 1,
            Err(DropReason::Cluster(cluster)) => {
                self.out.metrics.cluster_mismatches += 1;
                self.note_join_problem(from, crate::lifecycle::JoinProblem::OtherCluster);
                return self.report_foreign_cluster(from, &cluster);
            }
            Err(DropReason::Malformed) => return self.out.metrics.malformed_messages += 1,
        };
        let message::Envelope { sender, membership, broadcasts, body } = envelope;
        let stated_address = sender.as_ref().is_some_and(|sender| sender.stated_address);
        let sender = sender.map(|sender| sender.identity);
        if let Some(sender) = sender.as_ref().filter(|sender| {
            sender.name == self.identity.name && sender.generation != self.identity.generation
        }) {
            // Another process under our name: a conflict's check, or dropped as stale.
            return self.on_own_name(from, sender, body);
        }
        if let Some(sender) = sender.as_ref().filter(|sender| self.is_stale_sender(sender)) {
            // Dropped, changing nothing; but a ping from a displaced process elsewhere gets an
            // ack that tells it who holds its name now.
            let answered = match &body {
                message::Body::Ping(ping) => self.answer_displaced(from, sender, ping),
                _ => false,
            };
            if !answered {
                self.out.metrics.stale_senders += 1;
            }
            return;
        }
        if sender.as_ref().is_some_and(|sender| self.table.too_far_ahead(&sender.name, sender.generation)) {
            self.out.metrics.generations_refused += 1;
            return;
        }
        // A sender without an address (a ping's) is placed at the datagram's source only if
        // it is new to us: its word never moves a known member's address.
        let source = self.source_of(sender.as_ref(), from);
        // Claims first: a newcomer's own Alive claim then discovers it, and is re-gossiped.
        for claim in membership {
            self.apply_claim(claim, source, ClaimKind::News);
        }
        if let Some(sender) = &sender {
            self.observe_sender(sender, from, stated_address);
        }
        if !broadcasts.is_empty() {
            self.on_broadcasts(broadcasts);
        }
        self.note_contact(from);
        match body {
            message::Body::Ping(ping) => self.on_ping(from, ping),
            message::Body::PingReq(request) => self.on_ping_req(from, request),
            message::Body::Ack(ack) => self.on_ack(from, ack),
            message::Body::Nack(nack) => self.on_nack(from, nack),
            message::Body::Syn(syn) => self.on_syn(from, source, syn),
            message::Body::SynAck(syn_ack) => self.on_syn_ack(from, source, syn_ack),
            message::Body::Ack2(ack2) => self.on_ack2(from, source, ack2),
            message::Body::Push(push) => self.on_push(from, source, push),
            message::Body::PushAck(ack) => self.on_push_ack(from, ack),
            message::Body::DeltaReply(deltas) => {
                self.apply_deltas(deltas, source);
            }
            message::Body::AggregateTransfer(transfer) => {
                if let Some(sender) = &sender {
                    self.on_aggregate_transfer(from, sender, transfer);
                }
            }
            message::Body::AggregateAck(ack) => {
                if let Some(sender) = &sender {
                    self.on_aggregate_ack(sender, ack);
                }
            }
            message::Body::Gossip => {}
            message::Body::UserMessage(message) => {
                if let Some(sender) = &sender {
                    self.on_user_message(sender, message);
                }
            }
            message::Body::QueryResponse(response) => {
                if let Some(sender) = &sender {
                    self.on_query_response(sender, response);
                }
            }
            message::Body::WriteRequest(request) => {
                if let Some(sender) = &sender {
                    self.on_write_request(from, sender, request);
                }
            }
            message::Body::WriteOutcome(outcome) => {
                if let Some(sender) = &sender {
                    self.on_write_outcome(sender, outcome);
                }
            }
        }
    }

    /// Runs what is due at `now`. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if self.name_check.given_up() {
            return;
        }
        self.run_timers(now);
    }

    // ----- outputs -----

    /// The next thing to do: a datagram to send or an event. Drain it until `None` after
    /// every input and command.
    #[must_use]
    pub fn poll(&mut self) -> Option<Output> {
        if let Some(transmit) = self.out.transmits.pop() {
            return Some(Output::Transmit(transmit));
        }
        self.out.events.pop().map(Output::Event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called. There is always
    /// a deadline (the next gossip round at the latest); it may lie in the past when the
    /// node was not called for a while, and then `handle_timeout` is due at once.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        if self.name_check.given_up() {
            // Inert: nothing is ever due, but a deadline keeps a driver's loop simple.
            return self.now + crate::conflict::INERT_DEADLINE;
        }
        // The gossip round is always armed, so the table always has an entry.
        self.earliest_deadline().unwrap_or(self.now)
    }

    // ----- internals shared by the protocol modules -----

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Tells the application, once per source, that datagrams of another cluster arrive (a
    /// misconfigured peer, or two clusters sharing hosts and ports).
    fn report_foreign_cluster(&mut self, from: SocketAddr, cluster: &str) {
        if self.foreign_clusters.len() >= FOREIGN_CLUSTERS_REPORTED || !self.foreign_clusters.insert(from) {
            return;
        }
        let mut end = cluster.len().min(64);
        while !cluster.is_char_boundary(end) {
            end -= 1;
        }
        self.out.events.emit(Event::ForeignCluster { from, cluster: cluster[..end].to_owned() });
    }

    /// Whether a datagram comes from ourselves or from an older generation of its sender.
    fn is_stale_sender(&self, sender: &Identity) -> bool {
        match self.table.index_of(&sender.name) {
            Some(LOCAL) => true,
            Some(index) => {
                self.table.get(index).is_some_and(|(_, known)| sender.generation < known.generation)
            }
            None => false,
        }
    }

    /// Who passes on what a datagram from `from` says: its sender, if it speaks from the
    /// address we hold for it (or is new to us).
    fn source_of<'a>(&self, sender: Option<&'a Identity>, from: SocketAddr) -> Source<'a> {
        let Some(sender) = sender else { return Source::Relayed };
        let elsewhere = self
            .table
            .by_name(&sender.name)
            .is_some_and(|known| known.generation == sender.generation && known.address != from);
        if elsewhere { Source::Relayed } else { Source::Sender(sender.name.as_str()) }
    }

    /// The wire identity of the member at `index`.
    pub(crate) fn identity_of(&self, index: usize) -> Option<v1::NodeIdentity> {
        let (name, member) = self.table.get(index)?;
        Some(Identity::new(name, member.generation, member.address).to_wire())
    }
}
