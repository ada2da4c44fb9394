//! Write requests to a table's owner: the ones this node made and waits on, the ones asked
//! of it that wait for its application, and the outcomes it gave lately (so that a request
//! sent again, as a retry or through relays, gets the same outcome and is written at most
//! once). How the node sends, relays and answers them is in `requests/run.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use gossip_proto::v1;

use crate::config::Config;

mod run;

/// A write request as its owner knows it: who asked, under which generation, and the
/// requester's id for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteRequestId {
    /// The member that asked.
    pub requester: String,
    /// Its generation when it asked.
    pub generation: u64,
    /// Its id for the request (what its [`crate::Node::request_write`] returned).
    pub id: u64,
}

/// How a write request ended, as its requester learns it ([`crate::Event::WriteAnswered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestOutcome {
    /// The owner wrote it: the version it has in the owner's table (it spreads as any write
    /// of the owner). A delete of a key the owner did not hold is accepted at the owner's
    /// current version.
    Accepted {
        /// The write's version.
        version: u64,
    },
    /// The owner refused it, saying why.
    Refused {
        /// The owner's reason.
        reason: String,
    },
    /// No outcome came within `messages.request_timeout`: the owner may or may not have
    /// written it (its answer may have been lost); its table will tell.
    TimedOut,
}

/// One of this node's requests, waiting for its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Outstanding {
    pub(crate) request: v1::WriteRequest,
    pub(crate) next_attempt: Instant,
    pub(crate) deadline: Instant,
}

/// A request asked of this node, waiting for its application.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    pub(crate) request: v1::WriteRequest,
    /// Where the outcome goes: the datagram's source (the requester, or the relay that
    /// passed the request on), and the requester itself when that was a relay.
    pub(crate) reply_to: Vec<SocketAddr>,
    pub(crate) deadline: Instant,
}

/// The write-request component's state.
#[derive(Debug)]
pub(crate) struct Requests {
    /// The id of this node's last request in its generation.
    last_id: u64,
    outstanding: BTreeMap<u64, Outstanding>,
    max_outstanding: usize,
    asked: BTreeMap<WriteRequestId, Asked>,
    max_asked: usize,
    /// Outcomes given, oldest first in `answered_order`.
    answered: BTreeMap<WriteRequestId, v1::WriteOutcome>,
    answered_order: VecDeque<WriteRequestId>,
    remembered: usize,
}

impl Requests {
    pub(crate) fn new(config: &Config) -> Self {
        let messages = &config.messages;
        Self {
            last_id: 0,
            outstanding: BTreeMap::new(),
            max_outstanding: messages.max_outstanding_requests,
            asked: BTreeMap::new(),
            max_asked: messages.max_asked_requests,
            answered: BTreeMap::new(),
            answered_order: VecDeque::new(),
            remembered: messages.remembered_requests,
        }
    }

    /// Whether one more request of this node may wait for an outcome.
    pub(crate) fn has_room(&self) -> bool {
        self.outstanding.len() < self.max_outstanding
    }

    /// The id of this node's next request.
    pub(crate) fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Waits for the outcome of `request`.
    pub(crate) fn track(&mut self, request: v1::WriteRequest, next_attempt: Instant, deadline: Instant) {
        self.outstanding.insert(request.id, Outstanding { request, next_attempt, deadline });
    }

    /// The request `id` of this node to `owner`, if it still waits: it ends now.
    pub(crate) fn resolve(&mut self, id: u64, owner: &str) -> Option<Outstanding> {
        if self.outstanding.get(&id).is_none_or(|waiting| waiting.request.owner != owner) {
            return None;
        }
        self.outstanding.remove(&id)
    }

    /// The requests whose time is up at `now`: they end, timed out.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Outstanding> {
        let due: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, waiting)| waiting.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        due.into_iter().filter_map(|id| self.outstanding.remove(&id)).collect()
    }

    /// The requests due to be sent again at `now`; the next attempt of each is one `retry`
    /// later.
    pub(crate) fn retries(&mut self, now: Instant, retry: std::time::Duration) -> Vec<v1::WriteRequest> {
        self.outstanding
            .values_mut()
            .filter(|waiting| waiting.next_attempt <= now)
            .map(|waiting| {
                waiting.next_attempt = now + retry;
                waiting.request.clone()
            })
            .collect()
    }

    /// The outcome given to `id`, if remembered.
    pub(crate) fn answered(&self, id: &WriteRequestId) -> Option<&v1::WriteOutcome> {
        self.answered.get(id)
    }

    /// Whether `id` waits for this node's application.
    pub(crate) fn is_asked(&self, id: &WriteRequestId) -> bool {
        self.asked.contains_key(id)
    }

    /// Whether one more request may wait for this node's application.
    pub(crate) fn can_ask(&self) -> bool {
        self.asked.len() < self.max_asked
    }

    /// A request now waits for this node's application.
    pub(crate) fn ask(&mut self, id: WriteRequestId, asked: Asked) {
        self.asked.insert(id, asked);
    }

    /// The request `id` waiting for this node's application, taken to be answered.
    pub(crate) fn take_asked(&mut self, id: &WriteRequestId) -> Option<Asked> {
        self.asked.remove(id)
    }

    /// The requests that waited for this node's application past their time.
    pub(crate) fn expire_asked(&mut self, now: Instant) -> Vec<(WriteRequestId, Asked)> {
        let due: Vec<WriteRequestId> =
            self.asked.iter().filter(|(_, asked)| asked.deadline <= now).map(|(id, _)| id.clone()).collect();
        due.into_iter().filter_map(|id| self.asked.remove(&id).map(|asked| (id, asked))).collect()
    }

    /// Remembers the outcome given to `id`.
    pub(crate) fn remember(&mut self, id: WriteRequestId, outcome: v1::WriteOutcome) {
        if self.answered.insert(id.clone(), outcome).is_none() {
            self.answered_order.push_back(id);
        }
        while self.answered_order.len() > self.remembered {
            if let Some(old) = self.answered_order.pop_front() {
                self.answered.remove(&old);
            }
        }
    }

    /// The next deadline: a retry, a request's end, or an asked request's end.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let waiting = self.outstanding.values().map(|waiting| waiting.next_attempt.min(waiting.deadline));
        waiting.chain(self.asked.values().map(|asked| asked.deadline)).min()
    }

    /// Requests of this node waiting for an outcome.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Requests of others waiting for this node's application.
    pub(crate) fn asked(&self) -> usize {
        self.asked.len()
    }

    /// Outcomes remembered.
    pub(crate) fn remembered(&self) -> usize {
        self.answered.len()
    }
}

impl WriteRequestId {
    /// The identity of a received request (its requester already checked).
    pub(crate) fn of(request: &v1::WriteRequest) -> Option<Self> {
        let requester = request.requester.as_ref()?;
        Some(Self { requester: requester.name.clone(), generation: requester.generation, id: request.id })
    }
}

/// The value a request asks for: `None` for a delete.
pub(crate) fn requested_value(request: &v1::WriteRequest) -> Option<Bytes> {
    (!request.delete).then(|| request.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(id: u64, owner: &str) -> v1::WriteRequest {
        v1::WriteRequest { id, owner: owner.to_owned(), ..Default::default() }
    }

    #[test]
    fn requests_end_once_and_outcomes_are_bounded() {
        #[allow(clippy::disallowed_methods)] // A base instant; only differences matter.
        let now = Instant::now();
        let mut config = Config::lan();
        config.messages.remembered_requests = 2;
        config.messages.max_outstanding_requests = 2;
        let mut requests = Requests::new(&config);
        let retry = Duration::from_millis(300);
        requests.track(request(1, "a"), now + retry, now + Duration::from_secs(5));
        requests.track(request(2, "b"), now + retry, now + Duration::from_secs(1));
        assert!(!requests.has_room());
        assert!(requests.resolve(1, "b").is_none(), "only the owner asked ends it");
        assert!(requests.retries(now, retry).is_empty());
        assert_eq!(requests.retries(now + retry, retry).len(), 2);
        assert!(requests.retries(now + retry, retry).is_empty(), "the next attempt moved on");
        let expired = requests.expire(now + Duration::from_secs(1));
        assert_eq!(expired.iter().map(|waiting| waiting.request.id).collect::<Vec<_>>(), [2]);
        assert!(requests.resolve(1, "a").is_some());
        assert!(requests.resolve(1, "a").is_none(), "an outcome ends a request once");
        for id in 1..=3 {
            let key = WriteRequestId { requester: "r".into(), generation: 1, id };
            requests.remember(key, v1::WriteOutcome { id, ..Default::default() });
        }
        assert_eq!(requests.remembered(), 2);
        assert!(requests.answered(&WriteRequestId { requester: "r".into(), generation: 1, id: 1 }).is_none());
    }
}
