//! What a node hands back to its caller, collected in one place: the datagrams to send, the
//! events for the application, the counters, and the membership claims waiting to be
//! piggybacked on the next datagrams. Every queue has its cap in `Config`. How datagrams are
//! built and queued is in `outbox/run.rs`.

use crate::broadcast::Broadcasts;
use crate::config::Config;
use crate::event::{BoundedQueue, Events, Transmit};
use crate::metrics::Metrics;

mod run;

/// The node's outputs and counters.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// Datagrams waiting for `Node::poll` (cap `max_pending_transmits`).
    pub(crate) transmits: BoundedQueue<Transmit>,
    /// Events waiting for `Node::poll` (cap `max_pending_events`).
    pub(crate) events: Events,
    /// Membership claims waiting to ride on datagrams (cap `swim.max_broadcasts`).
    pub(crate) claims: Broadcasts,
    /// Every counter of [`Metrics`].
    pub(crate) metrics: Metrics,
}

impl Outbox {
    /// Empty queues sized by `config`, counters at zero.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            transmits: BoundedQueue::new(config.max_pending_transmits),
            events: Events::new(config.max_pending_events),
            claims: Broadcasts::new(config.swim.max_broadcasts),
            metrics: Metrics::default(),
        }
    }
}
