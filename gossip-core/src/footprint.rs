//! What a node holds in memory, counted against the caps of its [`Config`](crate::Config):
//! the simulator checks it after every step, so a table or queue that can outgrow its cap
//! shows up as a failing seed.

use rand_core::Rng;

use crate::node::Node;

/// The sizes of a node's tables and queues at one moment (see [`Node::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Footprint {
    /// Known members, this node included (cap: `max_nodes`).
    pub members: usize,
    /// Members forgotten after their retention and still kept out (cap: `max_nodes`).
    pub forgotten: usize,
    /// Keys (tombstones included) of the largest table held (cap: `max_keys_per_node`).
    pub largest_table: usize,
    /// Datagrams waiting for [`Node::poll`] (cap: `max_pending_transmits`).
    pub transmits: usize,
    /// Events waiting for [`Node::poll`] (cap: `max_pending_events`).
    pub events: usize,
    /// Membership updates waiting to be piggybacked (cap: `swim.max_broadcasts`).
    pub broadcasts: usize,
    /// Hot rumors (cap: `max_hot_rumors`).
    pub rumors: usize,
    /// Running suspicions (cap: `max_nodes`).
    pub suspicions: usize,
    /// Ping-req relays in flight (cap: `swim.max_pending_relays`).
    pub relays: usize,
    /// Aggregates held this epoch (cap: `aggregation.max_aggregates`).
    pub aggregates: usize,
    /// Peers with transfers to or from this node this epoch, the larger side (cap:
    /// `max_nodes`).
    pub aggregation_peers: usize,
    /// Sending sessions whose anti-replay windows are kept (cap: `max_nodes`).
    pub replay_sessions: usize,
    /// Application broadcasts waiting to be passed on (cap: `messages.max_pending_broadcasts`).
    pub pending_broadcasts: usize,
    /// Application broadcasts remembered as delivered (cap: `messages.remembered_broadcasts`).
    pub remembered_broadcasts: usize,
    /// This node's queries collecting answers (cap: `messages.max_outstanding_queries`).
    pub outstanding_queries: usize,
    /// Queries of others that may still be answered here (cap:
    /// `messages.max_received_queries`).
    pub received_queries: usize,
    /// Answers this node gave, waiting for their random delay before going through a relay
    /// (cap: `messages.max_received_queries` x `messages.query_relays`).
    pub delayed_answers: usize,
    /// This node's write requests waiting for an outcome (cap:
    /// `messages.max_outstanding_requests`).
    pub outstanding_requests: usize,
    /// Write requests of others waiting for this node's application (cap:
    /// `messages.max_asked_requests`).
    pub asked_requests: usize,
    /// Outcomes of write requests remembered (cap: `messages.remembered_requests`).
    pub remembered_requests: usize,
}

impl Footprint {
    /// The first size above its cap in `config`, as `(what, size, cap)`.
    pub fn over_cap(&self, config: &crate::Config) -> Option<(&'static str, usize, usize)> {
        [
            ("members", self.members, config.max_nodes),
            ("forgotten members", self.forgotten, config.max_nodes),
            ("keys in one table", self.largest_table, config.max_keys_per_node),
            ("pending transmits", self.transmits, config.max_pending_transmits),
            ("pending events", self.events, config.max_pending_events),
            ("piggyback broadcasts", self.broadcasts, config.swim.max_broadcasts),
            ("hot rumors", self.rumors, config.max_hot_rumors),
            ("suspicions", self.suspicions, config.max_nodes),
            ("pending relays", self.relays, config.swim.max_pending_relays),
            ("aggregates", self.aggregates, config.aggregation.max_aggregates),
            ("aggregation peers", self.aggregation_peers, config.max_nodes),
            ("replay sessions", self.replay_sessions, config.max_nodes),
            ("pending broadcasts", self.pending_broadcasts, config.messages.max_pending_broadcasts),
            ("remembered broadcasts", self.remembered_broadcasts, config.messages.remembered_broadcasts),
            ("outstanding queries", self.outstanding_queries, config.messages.max_outstanding_queries),
            ("received queries", self.received_queries, config.messages.max_received_queries),
            (
                "delayed answers",
                self.delayed_answers,
                config.messages.max_received_queries.saturating_mul(config.messages.query_relays),
            ),
            ("outstanding requests", self.outstanding_requests, config.messages.max_outstanding_requests),
            ("asked requests", self.asked_requests, config.messages.max_asked_requests),
            ("remembered requests", self.remembered_requests, config.messages.remembered_requests),
        ]
        .into_iter()
        .find(|(_, size, cap)| size > cap)
    }
}

impl<R: Rng> Node<R> {
    /// The sizes of this node's tables and queues, to compare with its caps (O(members)).
    pub fn footprint(&self) -> Footprint {
        Footprint {
            members: self.table.len(),
            forgotten: self.table.forgotten_count(),
            largest_table: self.table.iter().map(|(_, replica)| replica.len()).max().unwrap_or(0),
            transmits: self.out.transmits.len(),
            events: self.out.events.len(),
            broadcasts: self.out.claims.len(),
            rumors: self.rumors.len(),
            suspicions: self.suspicions.len(),
            relays: self.prober.pending_relays(),
            aggregates: self.aggregation.held_count(),
            aggregation_peers: self.aggregation.peer_count(),
            replay_sessions: self.security.sessions(),
            pending_broadcasts: self.messages.pending(),
            remembered_broadcasts: self.messages.remembered(),
            outstanding_queries: self.queries.outstanding(),
            received_queries: self.queries.received(),
            delayed_answers: self.queries.delayed_relayed(),
            outstanding_requests: self.requests.outstanding(),
            asked_requests: self.requests.asked(),
            remembered_requests: self.requests.remembered(),
        }
    }
}
