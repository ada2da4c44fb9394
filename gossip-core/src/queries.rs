//! Queries (Serf's): the ones this node asked, collecting answers until their timeout, and
//! the ones of others it delivered and may still answer. A query spreads as an application
//! broadcast; how the node asks, answers and collects is in `queries/run.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::config::Config;

mod run;

pub(crate) use run::MAX_FILTER_NAMES;

/// A query as the members it reaches know it: who asked, under which generation, and the
/// asker's id for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId {
    /// The member that asked.
    pub origin: String,
    /// Its generation when it asked.
    pub generation: u64,
    /// Its id for the query (what its [`crate::Node::query`] returned).
    pub id: u64,
}

/// Which members a query asks. Every member passes a query on; only the ones it selects
/// deliver it ([`crate::Event::Query`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueryFilter {
    /// Every live member.
    #[default]
    All,
    /// The members of these names (at most 64).
    Names(Vec<String>),
    /// The members whose own table holds `key` live, with exactly `value` when given.
    Key {
        /// The key.
        key: String,
        /// The value it must hold, if any.
        value: Option<Bytes>,
    },
}

/// One of this node's queries, collecting answers.
#[derive(Debug, Clone)]
struct Asked {
    deadline: Instant,
    responders: BTreeSet<String>,
}

/// A query of another member, delivered here, that this node may still answer.
#[derive(Debug, Clone, Copy)]
struct Received {
    reply_to: SocketAddr,
    deadline: Instant,
}

/// The query component's state.
#[derive(Debug)]
pub(crate) struct Queries {
    asked: BTreeMap<u64, Asked>,
    max_asked: usize,
    received: BTreeMap<QueryId, Received>,
    /// Received queries, oldest first (the first to go when `max_received` is reached).
    received_order: VecDeque<QueryId>,
    max_received: usize,
    /// Members that may answer one query: bounds its responders.
    max_responders: usize,
    /// Answers this node gave, waiting to be sent through a relay: (when, a number that
    /// keeps equal times apart) -> (the relay, the answer to pass on).
    delayed: BTreeMap<(Instant, u64), (SocketAddr, gossip_proto::v1::QueryResponse)>,
    delayed_count: u64,
    /// Most answers waiting for a relay; one more goes at once.
    max_delayed: usize,
}

impl Queries {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            asked: BTreeMap::new(),
            max_asked: config.messages.max_outstanding_queries,
            received: BTreeMap::new(),
            received_order: VecDeque::new(),
            max_received: config.messages.max_received_queries,
            max_responders: config.max_nodes,
            delayed: BTreeMap::new(),
            delayed_count: 0,
            max_delayed: config.messages.max_received_queries.saturating_mul(config.messages.query_relays),
        }
    }

    /// Whether one more query of this node may collect answers.
    pub(crate) fn has_room(&self) -> bool {
        self.asked.len() < self.max_asked
    }

    /// This node asked query `id`; it collects answers until `deadline`.
    pub(crate) fn ask(&mut self, id: u64, deadline: Instant) {
        self.asked.insert(id, Asked { deadline, responders: BTreeSet::new() });
    }

    /// An answer of `from` to this node's query `id`: whether it is taken (the query still
    /// collects, and `from` had not answered it).
    pub(crate) fn take_answer(&mut self, id: u64, from: &str) -> bool {
        let Some(asked) = self.asked.get_mut(&id) else { return false };
        if asked.responders.len() >= self.max_responders || asked.responders.contains(from) {
            return false;
        }
        asked.responders.insert(from.to_owned())
    }

    /// A query of another member was delivered here: it may be answered, to `reply_to`,
    /// until `deadline`.
    pub(crate) fn receive(&mut self, query: QueryId, reply_to: SocketAddr, deadline: Instant) {
        if self.received.insert(query.clone(), Received { reply_to, deadline }).is_none() {
            self.received_order.push_back(query);
        }
        while self.received_order.len() > self.max_received {
            if let Some(old) = self.received_order.pop_front() {
                self.received.remove(&old);
            }
        }
    }

    /// Where the answer to `query` goes and the query's deadline, if it may be answered at
    /// `now`: it is answered now (once).
    pub(crate) fn answer(&mut self, query: &QueryId, now: Instant) -> Option<(SocketAddr, Instant)> {
        let received = self.received.remove(query)?;
        self.received_order.retain(|held| held != query);
        (now < received.deadline).then_some((received.reply_to, received.deadline))
    }

    /// Ends this node's queries whose timeout is up at `now` (id and answers taken), and
    /// forgets the received ones past theirs.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(u64, usize)> {
        let due: Vec<u64> =
            self.asked.iter().filter(|(_, asked)| asked.deadline <= now).map(|(id, _)| *id).collect();
        let finished = due
            .into_iter()
            .filter_map(|id| self.asked.remove(&id).map(|asked| (id, asked.responders.len())))
            .collect();
        let before = self.received.len();
        self.received.retain(|_, received| received.deadline > now);
        if self.received.len() != before {
            let received = &self.received;
            self.received_order.retain(|query| received.contains_key(query));
        }
        finished
    }

    /// The next query timeout, asked or received.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let asked = self.asked.values().map(|asked| asked.deadline);
        let delayed = self.delayed.keys().next().map(|&(due, _)| due);
        asked.chain(self.received.values().map(|received| received.deadline)).chain(delayed).min()
    }

    /// Holds `response` to send through `relay` at `due`; gives it back when the queue is
    /// full (to send at once).
    pub(crate) fn delay_relayed(
        &mut self,
        due: Instant,
        relay: SocketAddr,
        response: gossip_proto::v1::QueryResponse,
    ) -> Option<(SocketAddr, gossip_proto::v1::QueryResponse)> {
        if self.delayed.len() >= self.max_delayed {
            return Some((relay, response));
        }
        self.delayed_count += 1;
        self.delayed.insert((due, self.delayed_count), (relay, response));
        None
    }

    /// The held answers due at `now`, to send through their relays.
    pub(crate) fn take_due_relayed(
        &mut self,
        now: Instant,
    ) -> Vec<(SocketAddr, gossip_proto::v1::QueryResponse)> {
        let mut due = Vec::new();
        while let Some(entry) = self.delayed.first_entry().filter(|entry| entry.key().0 <= now) {
            due.push(entry.remove());
        }
        due
    }

    /// Answers waiting for a relay.
    pub(crate) fn delayed_relayed(&self) -> usize {
        self.delayed.len()
    }

    /// This node's queries collecting answers.
    pub(crate) fn outstanding(&self) -> usize {
        self.asked.len()
    }

    /// Queries of others that may still be answered here.
    pub(crate) fn received(&self) -> usize {
        self.received.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers_are_taken_once_per_member_until_the_timeout() {
        #[allow(clippy::disallowed_methods)] // A base instant; only differences matter.
        let now = Instant::now();
        let mut config = Config::lan();
        config.messages.max_received_queries = 2;
        let mut queries = Queries::new(&config);
        queries.ask(1, now + Duration::from_secs(1));
        assert!(queries.take_answer(1, "a"));
        assert!(!queries.take_answer(1, "a"), "a member answers once");
        assert!(!queries.take_answer(2, "a"), "no such query");
        assert_eq!(queries.expire(now + Duration::from_secs(1)), [(1, 1)]);
        assert!(!queries.take_answer(1, "b"), "finished");

        let address = "10.0.0.1:7946".parse().unwrap();
        let query = |id| QueryId { origin: "o".into(), generation: 1, id };
        for id in 1..=3 {
            queries.receive(query(id), address, now + Duration::from_secs(1));
        }
        assert_eq!(queries.received(), 2, "bounded: the oldest went");
        assert_eq!(queries.answer(&query(1), now), None);
        assert_eq!(queries.answer(&query(2), now), Some((address, now + Duration::from_secs(1))));
        assert_eq!(queries.answer(&query(2), now), None, "answered once");
        assert_eq!(queries.answer(&query(3), now + Duration::from_secs(1)), None, "too late");
    }

    #[test]
    fn delayed_answers_leave_in_time_order_and_the_queue_is_bounded() {
        #[allow(clippy::disallowed_methods)] // A base instant; only differences matter.
        let now = Instant::now();
        let mut config = Config::lan();
        (config.messages.max_received_queries, config.messages.query_relays) = (1, 2);
        let mut queries = Queries::new(&config);
        let relay = |port| SocketAddr::from(([10, 0, 0, 1], port));
        let answer = |id| gossip_proto::v1::QueryResponse { id, ..Default::default() };
        let at = |ms| now + Duration::from_millis(ms);
        assert!(queries.delay_relayed(at(30), relay(1), answer(1)).is_none());
        assert!(queries.delay_relayed(at(10), relay(2), answer(2)).is_none());
        let refused = queries.delay_relayed(at(20), relay(3), answer(3));
        assert_eq!(refused.map(|(to, answer)| (to, answer.id)), Some((relay(3), 3)), "full: sent at once");
        assert_eq!(queries.deadline(), Some(at(10)));
        assert!(queries.take_due_relayed(at(9)).is_empty());
        let due: Vec<u64> =
            queries.take_due_relayed(at(30)).into_iter().map(|(_, answer)| answer.id).collect();
        assert_eq!(due, [2, 1], "in time order");
        assert_eq!((queries.delayed_relayed(), queries.deadline()), (0, None));
    }
}
