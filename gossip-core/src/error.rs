//! Typed errors for caller mistakes. Network input never produces an error: it is dropped
//! and counted in [`crate::Metrics`].

/// A [`crate::Config`] that cannot work. The node was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_datagram_size` is outside the usable range.
    #[error("max_datagram_size is {size} bytes; choose between {min} and {max}")]
    DatagramSize {
        /// The configured size.
        size: usize,
        /// Smallest accepted size.
        min: usize,
        /// Largest accepted size (the largest UDP payload over IPv4).
        max: usize,
    },
    /// The cluster identifier is too long.
    #[error("the cluster identifier is {len} bytes; shorten it to at most {max}")]
    ClusterTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field that must be positive is zero.
    #[error("`{field}` is zero; it must be positive")]
    Zero {
        /// The field's name.
        field: &'static str,
    },
    /// A count is above what the protocol can serve.
    #[error("`{field}` is {value}; lower it to at most {max}")]
    TooLarge {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: usize,
        /// The largest value allowed.
        max: usize,
    },
    /// The cluster identifier is empty.
    #[error(
        "the cluster identifier is empty; name the cluster (Config::with_cluster), the same on every node"
    )]
    EmptyCluster,
    /// `max_nodes` leaves no room for a peer.
    #[error("max_nodes is {max_nodes}; a node needs room for itself and at least one peer (2 or more)")]
    TooFewNodes {
        /// The configured cap.
        max_nodes: usize,
    },
    /// Two durations are in the wrong order.
    #[error("`{longer}` ({longer_value:?}) must be at least `{shorter}` ({shorter_value:?})")]
    DurationOrder {
        /// The field that must be the longer one.
        longer: &'static str,
        /// Its value.
        longer_value: std::time::Duration,
        /// The field it must not be shorter than.
        shorter: &'static str,
        /// Its value.
        shorter_value: std::time::Duration,
    },
    /// An entry of the largest allowed key and value sizes would not fit a datagram.
    #[error(
        "an entry with a {max_key_size}-byte key and a {max_value_size}-byte value needs a \
         {needed}-byte datagram, above max_datagram_size = {max_datagram_size}; lower \
         max_key_size or max_value_size, or raise max_datagram_size"
    )]
    EntryCannotFit {
        /// Configured key limit.
        max_key_size: usize,
        /// Configured value limit.
        max_value_size: usize,
        /// Encoded size of a datagram carrying one such entry.
        needed: usize,
        /// Configured datagram limit.
        max_datagram_size: usize,
    },
    /// Encryption is on but the node was given no key.
    #[error("encryption mode {mode:?} needs a key; start the node with Node::with_keyring")]
    EncryptionWithoutKey {
        /// The configured mode.
        mode: crate::keyring::EncryptionMode,
    },
    /// The probe timeout does not leave room for indirect probes within the interval.
    #[error("swim.probe_timeout ({timeout:?}) must be shorter than swim.probe_interval ({interval:?})")]
    ProbeTimeout {
        /// The configured timeout.
        timeout: std::time::Duration,
        /// The configured interval.
        interval: std::time::Duration,
    },
    /// `aggregation.epoch_rounds` is below 2.
    #[error("aggregation.epoch_rounds is {rounds}; an epoch needs at least 2 rounds (about 50 to converge)")]
    EpochTooShort {
        /// The configured rounds.
        rounds: u32,
    },
    /// `aggregation.change_threshold` is negative or not a number.
    #[error("aggregation.change_threshold must be a finite fraction >= 0, such as 0.01")]
    ChangeThreshold,
    /// A transfer of every aggregate at the longest name would not fit a datagram.
    #[error(
        "a transfer of {max_aggregates} aggregates named with up to {max_name_size} bytes needs a \
         {needed}-byte datagram, above max_datagram_size = {max_datagram_size}; lower \
         aggregation.max_aggregates or aggregation.max_name_size"
    )]
    AggregatesCannotFit {
        /// `aggregation.max_aggregates`.
        max_aggregates: usize,
        /// `aggregation.max_name_size`.
        max_name_size: usize,
        /// Encoded size of such a datagram.
        needed: usize,
        /// Configured datagram limit.
        max_datagram_size: usize,
    },
    /// The local node's name is empty or too long.
    #[error("the node name is {len} bytes; it must be between 1 and {max} bytes")]
    InvalidName {
        /// Its length.
        len: usize,
        /// `max_name_size`.
        max: usize,
    },
}

/// A [`crate::Node::set`] or [`crate::Node::delete`] that was refused. The table is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The key is longer than `Config::max_key_size`.
    #[error("the key is {len} bytes; the limit is max_key_size = {max}")]
    KeyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value is longer than `Config::max_value_size`.
    #[error("the value is {len} bytes; the limit is max_value_size = {max}")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The table already holds `Config::max_keys_per_node` keys.
    #[error("the table holds {max} keys, the max_keys_per_node limit; delete keys first")]
    TooManyKeys {
        /// The limit.
        max: usize,
    },
    /// Keys starting with `gossip.` are written by the library itself (the keyring's
    /// fingerprints, for one).
    #[error("the key {key:?} starts with the reserved prefix \"gossip.\"; choose another key")]
    ReservedKey {
        /// The key.
        key: String,
    },
    /// This node gave its name up to a newer process under the same name (see
    /// [`crate::Event::NameConflict`]); nobody would see the write.
    #[error(
        "this node gave its name up to another process started under the same name; start it again under a unique name"
    )]
    NameGivenUp,
    /// [`crate::Node::set_with_ttl`] with a zero TTL, or one too large to add to an `Instant`.
    #[error("the TTL {ttl:?} is zero or too large; give a positive TTL of at most a few years")]
    InvalidTtl {
        /// The TTL given.
        ttl: std::time::Duration,
    },
}

/// A [`crate::Node::aggregate_set`] that was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// The value is infinite or not a number.
    #[error("the value {value} is not finite; aggregates take finite numbers")]
    NotFinite {
        /// The value given.
        value: f64,
    },
    /// The value is beyond the range aggregates take, so that sums cannot overflow.
    #[error("the value {value} is beyond ±{max}; scale it down")]
    OutOfRange {
        /// The value given.
        value: f64,
        /// The largest magnitude accepted.
        max: f64,
    },
    /// The name is empty or longer than `aggregation.max_name_size`.
    #[error("the aggregate name is {len} bytes; it must be between 1 and {max} bytes")]
    InvalidName {
        /// Its length.
        len: usize,
        /// `aggregation.max_name_size`.
        max: usize,
    },
    /// This node already takes part in `aggregation.max_aggregates` aggregates.
    #[error("this node takes part in {max} aggregates, the aggregation.max_aggregates limit")]
    TooManyAggregates {
        /// The limit.
        max: usize,
    },
}

/// A [`crate::Node::send_to`] or [`crate::Node::broadcast`] that was refused; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The payload is longer than `Config::messages.max_payload`.
    #[error("the payload is {len} bytes; the limit is messages.max_payload = {max}")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The topic is longer than `Config::messages.max_topic`.
    #[error("the topic is {len} bytes; the limit is messages.max_topic = {max}")]
    TopicTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message, with its topic and the envelope around it, would not fit one datagram
    /// of `max_datagram_size` bytes.
    #[error(
        "the message needs a {needed}-byte datagram; max_datagram_size is {max_datagram_size}: send a smaller payload or topic"
    )]
    DoesNotFit {
        /// The datagram it needs.
        needed: usize,
        /// The configured limit.
        max_datagram_size: usize,
    },
    /// No live member of that name is known here (never heard of, failed, left, or this
    /// node itself).
    #[error("no live member named {name:?} is known here; check Node::nodes for the members")]
    UnknownMember {
        /// The name given.
        name: String,
    },
    /// This node gave its name up to a newer process under the same name (see
    /// [`crate::Event::NameConflict`]).
    #[error(
        "this node gave its name up to another process started under the same name; start it again under a unique name"
    )]
    NameGivenUp,
    /// `messages.max_outstanding_queries` of this node's queries are collecting answers.
    #[error(
        "{max} queries are collecting answers (messages.max_outstanding_queries); wait for one to finish"
    )]
    TooManyQueries {
        /// The limit.
        max: usize,
    },
    /// A query timeout that is zero or above `messages.max_query_timeout`.
    #[error("a query timeout of {timeout:?} is outside 1 ms to messages.max_query_timeout = {max:?}")]
    InvalidTimeout {
        /// The timeout given.
        timeout: std::time::Duration,
        /// The limit.
        max: std::time::Duration,
    },
    /// A query filter of more than 64 names, or one with a name that is not valid.
    #[error("a query filter holds at most 64 valid member names")]
    InvalidFilter,
    /// No query of that id can be answered here: never received, already answered, or its
    /// timeout passed.
    #[error("no query {query:?} waits for an answer here (already answered, or its timeout passed)")]
    UnknownQuery {
        /// The query given.
        query: crate::QueryId,
    },
    /// `messages.max_outstanding_requests` of this node's write requests wait for an outcome.
    #[error(
        "{max} write requests wait for an outcome (messages.max_outstanding_requests); wait for one to end"
    )]
    TooManyRequests {
        /// The limit.
        max: usize,
    },
    /// No write request of that id waits for this node's answer (already answered, or its
    /// time to answer passed).
    #[error("no write request {request:?} waits for an answer here (already answered, or timed out)")]
    UnknownRequest {
        /// The request given.
        request: crate::WriteRequestId,
    },
    /// The write the request asks for is not valid (the same rules as the owner's own
    /// writes: key and value sizes, reserved keys).
    #[error(transparent)]
    Write(#[from] WriteError),
}
