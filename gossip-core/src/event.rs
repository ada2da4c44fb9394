//! What the node hands back to its caller through [`crate::Node::poll`].

use std::collections::VecDeque;
use std::net::SocketAddr;

mod key_changes;

pub use key_changes::{KeyChange, KeyChanges, KeyChangesIter};

use crate::shared_str::SharedStr;
use bytes::Bytes;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination address.
    pub to: SocketAddr,
    /// The encoded envelope, at most `Config::max_datagram_size` bytes.
    pub payload: Bytes,
}

/// Something the application may want to know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A member this node had never heard of joined its view.
    MemberDiscovered {
        /// Its name.
        name: String,
        /// Its generation.
        generation: u64,
        /// Its address.
        address: SocketAddr,
    },
    /// A known member came back with a higher generation (it restarted); its old state was
    /// dropped.
    MemberRestarted {
        /// Its name.
        name: String,
        /// The generation that was replaced.
        old_generation: u64,
        /// The new generation.
        generation: u64,
        /// The address of the new generation.
        address: SocketAddr,
        /// The address of the old one (another when it restarted elsewhere).
        old_address: SocketAddr,
    },
    /// A member is suspected of having failed; it may still refute.
    MemberSuspected {
        /// Its name.
        name: String,
        /// The incarnation under suspicion.
        incarnation: u32,
    },
    /// A suspected or dead member refuted: it is alive under a higher incarnation.
    MemberRecovered {
        /// Its name.
        name: String,
        /// The incarnation it refuted with.
        incarnation: u32,
    },
    /// A member was declared failed (its suspicion timed out).
    MemberFailed {
        /// Its name.
        name: String,
        /// Its generation.
        generation: u64,
    },
    /// A member left the cluster gracefully.
    MemberLeft {
        /// Its name.
        name: String,
        /// Its generation.
        generation: u64,
    },
    /// Two live processes use this node's name (two nodes started under one name). The one
    /// holding the higher generation when they meet keeps the name, normally the one started
    /// last; the other gives it up and turns inert (see
    /// [`Node::has_given_up_name`](crate::Node::has_given_up_name)). Both report it: the
    /// keeper once per other process, with `kept: true`.
    NameConflict {
        /// The address of the other process.
        other_address: SocketAddr,
        /// The other process's generation.
        other_generation: u64,
        /// Whether this node keeps the name. `false`: it gave the name up, sends nothing any
        /// more and must be started again under a unique name.
        kept: bool,
    },
    /// A member kept its name but moved to a new address.
    MemberAddressChanged {
        /// Its name.
        name: String,
        /// The address it had.
        old: SocketAddr,
        /// The address it has now.
        new: SocketAddr,
    },
    /// A member sent this node an application message ([`Node::send_to`](crate::Node::send_to)).
    Message {
        /// The sender's name.
        from: String,
        /// What it sent.
        payload: Bytes,
    },
    /// An application broadcast reached this node ([`Node::broadcast`](crate::Node::broadcast));
    /// each is delivered once. A node does not get its own broadcasts.
    Broadcast {
        /// The member that broadcast it.
        origin: String,
        /// Its topic.
        topic: String,
        /// What it carries.
        payload: Bytes,
    },
    /// A query reached this node and its filter selects it ([`Node::query`](crate::Node::query)):
    /// answer it with [`Node::respond`](crate::Node::respond) within its timeout, or not at
    /// all. Each query is delivered once; a node does not get its own.
    Query {
        /// The query, to answer with.
        query: crate::QueryId,
        /// Its topic.
        topic: String,
        /// What it asks.
        payload: Bytes,
    },
    /// An answer to one of this node's queries; at most one per member.
    QueryResponse {
        /// The query's id, as [`Node::query`](crate::Node::query) returned it.
        query: u64,
        /// The member that answered.
        from: String,
        /// Its answer.
        payload: Bytes,
    },
    /// One of this node's queries reached its timeout: no later answer is taken.
    QueryFinished {
        /// The query's id.
        query: u64,
        /// How many members answered.
        responses: usize,
    },
    /// A member asks this node to write a key of its own table (under
    /// [`WritePolicy::Ask`](crate::WritePolicy::Ask)): answer with
    /// [`Node::accept_write`](crate::Node::accept_write) or
    /// [`Node::refuse_write`](crate::Node::refuse_write) within three quarters of
    /// `messages.request_timeout` (it is refused after that).
    WriteRequested {
        /// The request, to answer with.
        request: crate::WriteRequestId,
        /// The key.
        key: String,
        /// The value asked for; `None` for a delete.
        value: Option<Bytes>,
    },
    /// One of this node's write requests ([`Node::request_write`](crate::Node::request_write))
    /// ended.
    WriteAnswered {
        /// The request's id, as `request_write` returned it.
        request: u64,
        /// The owner asked.
        owner: String,
        /// The key.
        key: String,
        /// Accepted (with the version the owner wrote), refused, or timed out.
        outcome: crate::RequestOutcome,
    },
    /// This node rejoined the cluster under a new generation, because a claim about it that
    /// it could not refute otherwise was heard (the claim may have been forged). Its table is
    /// kept; [`Node::identity`](crate::Node::identity) now carries `new_generation`.
    SelfHealed {
        /// What was claimed.
        reason: SelfHealReason,
        /// The generation given up.
        old_generation: u64,
        /// The generation this node now runs under.
        new_generation: u64,
    },
    /// Datagrams of another cluster arrive from `from` (reported once per source, for the
    /// first 64 sources; all are dropped and counted in `Metrics::cluster_mismatches`): a peer
    /// configured with another `Config::cluster`, or two clusters sharing hosts and ports.
    ForeignCluster {
        /// Where they come from.
        from: SocketAddr,
        /// The cluster they name (at most 64 bytes of it).
        cluster: String,
    },
    /// No seed answered this node's `join` within `swim.join_timeout`: each seed with what
    /// happened. The node keeps trying in the background ([`Event::Joined`] follows if a seed
    /// answers later).
    JoinFailed {
        /// Every seed given to `join`, with what it did.
        seeds: Vec<(SocketAddr, crate::lifecycle::JoinProblem)>,
    },
    /// This node's `join` succeeded: a member answered.
    Joined {
        /// The address that answered first.
        via: SocketAddr,
    },
    /// This node's graceful leave is complete (acknowledged, or timed out).
    LeaveComplete,
    /// Events were lost before this one: the queue was full (`Config::max_pending_events`,
    /// or the adapters' event stream) because they were not read fast enough. A mirror of the
    /// cluster built from events is now stale: rebuild it from the node's state (`nodes`,
    /// `entries`, or the adapters' `snapshot` and watches, which never lose the latest state).
    Lagged {
        /// How many events were lost (each key change of a [`Event::KeysChanged`] counts).
        missed: u64,
    },
    /// Keys of another node's table changed or were deleted: the entries one received
    /// delta brought (or the difference found when a rebuilt replica caught up), in order.
    /// Read them in place (`for change in &changes`: `change.key()`, `change.value()`,
    /// `None` for a deletion); [`KeyChange::entry`] gives a handle to keep. A node gets no
    /// event for its own writes: `Node::set` returns their version.
    ///
    /// It counts as many events as it holds changes against `Config::max_pending_events`.
    KeysChanged {
        /// The owner of the keys.
        node: SharedStr,
        /// What changed.
        changes: KeyChanges,
    },
    /// An aggregation epoch ended with an estimate of `name` that differs from the last one
    /// reported by more than `aggregation.change_threshold` (or is the first).
    AggregateChanged {
        /// The aggregate's name.
        name: String,
        /// The estimate at the end of the epoch.
        estimate: crate::aggregate::state::AggregateEstimate,
    },
}

/// Why a node healed itself (see [`Event::SelfHealed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SelfHealReason {
    /// A claim of this node's current generation at incarnation `u32::MAX`: no higher
    /// incarnation is left to refute it with.
    IncarnationExhausted,
    /// A delta or digest entry of this node's table, at its current generation, with a
    /// version it never wrote.
    VersionAhead,
    /// A claim, delta or digest entry naming this node under a higher generation
    /// that peers would accept (within `Config::max_generation_jump`).
    GenerationAhead,
    /// A claim that this node left, at its current generation, while it runs: Left is final
    /// for a generation, so no incarnation refutes it.
    LeftWhileRunning,
}

/// One output of the state machine.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Output {
    /// Send this datagram.
    Transmit(Transmit),
    /// Hand this event to the application.
    Event(Event),
}

/// A queue with a fixed capacity that refuses items when full.
#[derive(Debug)]
pub(crate) struct BoundedQueue<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> BoundedQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { items: VecDeque::new(), capacity }
    }

    /// Pushes `item` unless the queue is full; returns whether it was taken.
    pub(crate) fn push_if_room(&mut self, item: T) -> bool {
        if self.items.len() >= self.capacity {
            return false;
        }
        self.items.push_back(item);
        true
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

/// The node's pending events, bounded by `Config::max_pending_events`: each counts once,
/// an [`Event::KeysChanged`] as many times as it holds changes.
#[derive(Debug)]
pub(crate) struct Events {
    queue: VecDeque<Event>,
    /// The events in `queue`, counted so.
    len: usize,
    capacity: usize,
    /// Events dropped because the queue was full.
    pub(crate) dropped: u64,
    /// Of those, the ones not yet reported by an [`Event::Lagged`].
    unreported: u64,
}

impl Events {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { queue: VecDeque::new(), len: 0, capacity: capacity.max(1), dropped: 0, unreported: 0 }
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.make_room(1);
        self.queue.push_back(event);
        self.len += 1;
    }

    /// Queues `node`'s `changes` (if any), dropping the oldest events (or changes) if they
    /// do not all fit.
    pub(crate) fn emit_keys(&mut self, node: SharedStr, mut changes: KeyChanges) {
        let count = changes.len();
        if count == 0 {
            return;
        }
        let over = count.saturating_sub(self.capacity);
        changes.skip(over);
        self.note_dropped(over);
        self.make_room(count - over);
        self.len += count - over;
        self.queue.push_back(Event::KeysChanged { node, changes });
    }

    /// The next event; after a loss, first an [`Event::Lagged`] saying how many were lost
    /// (the oldest go first, so it comes before the events that survived).
    pub(crate) fn pop(&mut self) -> Option<Event> {
        if self.unreported > 0 {
            let missed = std::mem::take(&mut self.unreported);
            return Some(Event::Lagged { missed });
        }
        let event = self.queue.pop_front()?;
        self.len -= weight(&event);
        Some(event)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Drops the oldest events (the oldest changes of a batch first) until `count` more fit.
    fn make_room(&mut self, count: usize) {
        let mut dropped = 0;
        while self.len + count > self.capacity {
            match self.queue.front_mut() {
                None => break,
                Some(Event::KeysChanged { changes, .. }) if changes.len() > 1 => changes.skip(1),
                Some(_) => {
                    self.queue.pop_front();
                }
            }
            self.len -= 1;
            dropped += 1;
        }
        self.note_dropped(dropped);
    }

    fn note_dropped(&mut self, count: usize) {
        self.dropped += count as u64;
        self.unreported += count as u64;
    }
}

/// How much an event counts against the queue's capacity.
fn weight(event: &Event) -> usize {
    match event {
        Event::KeysChanged { changes, .. } => changes.len(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left(i: u32) -> Event {
        Event::MemberLeft { name: format!("n{i}"), generation: 1 }
    }

    /// A full queue drops its oldest events, and the reader is told how many before it reads
    /// the ones that are left; a queue that never overflowed says nothing.
    #[test]
    fn a_loss_is_reported_before_the_events_that_survived() {
        let mut events = Events::new(2);
        for i in 0..5 {
            events.emit(left(i));
        }
        assert_eq!(events.pop(), Some(Event::Lagged { missed: 3 }));
        assert_eq!(events.pop(), Some(left(3)));
        assert_eq!(events.pop(), Some(left(4)));
        assert_eq!(events.pop(), None);
        assert_eq!(events.dropped, 3);
        events.emit(left(5));
        assert_eq!(events.pop(), Some(left(5)), "reported once");
    }

    /// `count` changes at versions from `first` (key `k{version}`, an empty value each),
    /// located in one buffer as a datagram's entries are.
    fn changes(first: u64, count: u64) -> KeyChanges {
        let keys: Vec<String> = (first..first + count).map(|version| format!("k{version}")).collect();
        let source = Bytes::from(keys.concat());
        let mut changes = KeyChanges::new(source.clone(), Vec::new());
        let mut at = 0;
        for (version, key) in (first..).zip(&keys) {
            let end = at + key.len();
            let spans = crate::shared_entry::EntrySpans::new(at..end, end..end).expect("small");
            assert!(changes.push(&source, spans, version, false));
            at = end;
        }
        changes
    }

    fn versions(event: Option<Event>) -> Vec<u64> {
        match event {
            Some(Event::KeysChanged { changes, .. }) => {
                changes.iter().map(|change| change.version()).collect()
            }
            other => panic!("not a batch: {other:?}"),
        }
    }

    /// A batch counts as many events as it holds changes: a full queue drops the oldest
    /// changes first (a batch loses its oldest), and a batch larger than the queue keeps its
    /// newest; every loss is reported.
    #[test]
    fn batches_count_their_changes_against_the_capacity() {
        let mut events = Events::new(4);
        events.emit_keys("n".into(), changes(1, 3));
        assert_eq!(events.len(), 3);
        events.emit(left(0));
        events.emit(left(1));
        assert_eq!(events.len(), 4, "the oldest change made room");
        assert_eq!(events.pop(), Some(Event::Lagged { missed: 1 }));
        assert_eq!(versions(events.pop()), [2, 3]);
        assert_eq!(events.pop(), Some(left(0)));
        assert_eq!(events.pop(), Some(left(1)));
        assert_eq!((events.pop(), events.len()), (None, 0));
        events.emit(left(2));
        events.emit_keys("n".into(), changes(10, 6));
        assert_eq!(events.pop(), Some(Event::Lagged { missed: 3 }));
        assert_eq!(versions(events.pop()), [12, 13, 14, 15]);
        assert_eq!(events.dropped, 4);
        events.emit_keys("n".into(), KeyChanges::default());
        assert_eq!((events.pop(), events.len()), (None, 0), "an empty batch is not queued");
    }
}
