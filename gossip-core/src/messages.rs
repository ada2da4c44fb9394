//! Application messages: the broadcasts waiting to be passed on, the broadcasts already
//! delivered (so that each is delivered once), and the rate of direct messages per sender.
//! How the node sends and receives them is in `messages/run.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_proto::v1;

use crate::broadcast::Broadcasts;
use crate::config::Config;

mod run;

/// Direct message ids remembered per sender, to deliver a duplicated datagram once.
const RECENT_MESSAGES: usize = 64;

/// A broadcast's identity: origin, generation, id.
type BroadcastId = (String, u64, u64);

/// What became of a received broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// New: deliver it (it is queued to be passed on).
    Deliver,
    /// Delivered before, or this node's own.
    Duplicate,
    /// Coalesced, and a later one of its origin and topic was delivered first.
    Superseded,
}

/// The messaging component's state.
#[derive(Debug)]
pub(crate) struct Messages {
    /// Broadcasts waiting to ride on datagrams, keyed by identity (coalesced ones by origin,
    /// generation and topic, so that a later one replaces an earlier one still waiting).
    pending: Broadcasts<v1::UserBroadcast>,
    /// The id of this node's last broadcast in its generation.
    last_id: u64,
    /// Broadcasts delivered or made here, for `remembered` of them, oldest first.
    seen: BTreeSet<BroadcastId>,
    seen_order: VecDeque<BroadcastId>,
    remembered: usize,
    /// For coalesced broadcasts: the highest id delivered per origin, generation and topic.
    latest: BTreeMap<(String, u64, String), u64>,
    /// The id of this node's last direct message in its generation.
    last_message_id: u64,
    /// The last [`RECENT_MESSAGES`] message ids delivered per sender (name, generation), at
    /// most `max_senders` senders.
    recent_messages: BTreeMap<(String, u64), VecDeque<u64>>,
    /// Direct messages allowed per sender (token buckets), at most `max_senders`.
    buckets: BTreeMap<String, Bucket>,
    max_senders: usize,
    rate: f64,
    burst: f64,
    /// When the next round of `Gossip` datagrams is due, while broadcasts wait.
    next_round: Instant,
}

/// A sender's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Messages {
    pub(crate) fn new(config: &Config, now: Instant) -> Self {
        let messages = &config.messages;
        Self {
            pending: Broadcasts::new(messages.max_pending_broadcasts),
            last_id: 0,
            seen: BTreeSet::new(),
            seen_order: VecDeque::new(),
            remembered: messages.remembered_broadcasts,
            latest: BTreeMap::new(),
            last_message_id: 0,
            recent_messages: BTreeMap::new(),
            buckets: BTreeMap::new(),
            max_senders: config.max_nodes,
            rate: f64::from(messages.rate_per_sender),
            burst: f64::from(messages.burst_per_sender),
            next_round: now,
        }
    }

    /// A broadcast (a query, with `query`) of this node (`origin` under `generation`), queued
    /// to be spread; its id.
    #[allow(clippy::too_many_arguments)] // The fields of the broadcast, and the time.
    pub(crate) fn originate(
        &mut self,
        origin: &str,
        generation: u64,
        topic: String,
        payload: Bytes,
        latest: bool,
        query: Option<v1::Query>,
        now: Instant,
    ) -> u64 {
        self.last_id += 1;
        let broadcast = v1::UserBroadcast {
            origin: origin.to_owned(),
            generation,
            id: self.last_id,
            topic,
            payload,
            latest,
            query,
        };
        self.remember(&broadcast);
        self.queue(broadcast, now);
        self.last_id
    }

    /// Sorts a received broadcast (already checked) out; a new one is queued to be passed
    /// on. `own` is this node's name: its own broadcasts coming back are duplicates.
    pub(crate) fn receive(&mut self, broadcast: &v1::UserBroadcast, own: &str, now: Instant) -> Received {
        let id = (broadcast.origin.clone(), broadcast.generation, broadcast.id);
        if broadcast.origin == own || self.seen.contains(&id) {
            return Received::Duplicate;
        }
        let topic = (broadcast.origin.clone(), broadcast.generation, broadcast.topic.clone());
        if broadcast.latest && self.latest.get(&topic).is_some_and(|delivered| *delivered > broadcast.id) {
            self.remember(broadcast);
            return Received::Superseded;
        }
        self.remember(broadcast);
        self.queue(broadcast.clone(), now);
        Received::Deliver
    }

    fn remember(&mut self, broadcast: &v1::UserBroadcast) {
        let id = (broadcast.origin.clone(), broadcast.generation, broadcast.id);
        if broadcast.latest {
            let topic = (broadcast.origin.clone(), broadcast.generation, broadcast.topic.clone());
            let delivered = self.latest.entry(topic).or_insert(0);
            *delivered = (*delivered).max(broadcast.id);
            if self.latest.len() > self.remembered {
                self.latest.pop_first();
            }
        }
        if self.seen.insert(id.clone()) {
            self.seen_order.push_back(id);
        }
        while self.seen_order.len() > self.remembered {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    fn queue(&mut self, broadcast: v1::UserBroadcast, now: Instant) {
        let key = if broadcast.latest {
            format!("{}\u{0}{}\u{0}t{}", broadcast.origin, broadcast.generation, broadcast.topic)
        } else {
            format!("{}\u{0}{}\u{0}{}", broadcast.origin, broadcast.generation, broadcast.id)
        };
        if self.pending.is_empty() {
            // Nothing was spreading: the next round goes out at once.
            self.next_round = self.next_round.min(now);
        }
        self.pending.push(&key, broadcast);
    }

    /// The broadcasts that fit `room` bytes, each counted as one more transmission (at most
    /// `limit` each).
    pub(crate) fn take(
        &mut self,
        room: usize,
        limit: u32,
        skip: impl Fn(&v1::UserBroadcast) -> bool,
    ) -> Vec<v1::UserBroadcast> {
        self.pending.take_unless(room, limit, None, skip)
    }

    /// Broadcasts that gave way in the full queue so far.
    pub(crate) fn given_way(&self) -> u64 {
        self.pending.dropped
    }

    /// Broadcasts waiting to be passed on.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Broadcasts remembered as delivered.
    pub(crate) fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// When the next round of `Gossip` datagrams is due; `None` while nothing waits.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        (!self.pending.is_empty()).then_some(self.next_round)
    }

    /// A round went out at `now`; the next is due one `interval` later.
    pub(crate) fn round_sent(&mut self, now: Instant, interval: Duration) {
        self.next_round = now + interval;
    }

    /// The id of this node's next direct message.
    pub(crate) fn next_message_id(&mut self) -> u64 {
        self.last_message_id += 1;
        self.last_message_id
    }

    /// Whether message `id` of `sender` is the first copy among the sender's last
    /// [`RECENT_MESSAGES`] (0, not numbered: always). A set of recent ids rather than a
    /// sliding window: a forged id far ahead must not make the sender's real ones look old.
    pub(crate) fn first_copy(&mut self, sender: &crate::identity::Identity, id: u64) -> bool {
        if id == 0 {
            return true;
        }
        let key = (sender.name.clone(), sender.generation);
        if !self.recent_messages.contains_key(&key) && self.recent_messages.len() >= self.max_senders {
            self.recent_messages.pop_first();
        }
        let recent = self.recent_messages.entry(key).or_default();
        if recent.contains(&id) {
            return false;
        }
        if recent.len() >= RECENT_MESSAGES {
            recent.pop_front();
        }
        recent.push_back(id);
        true
    }

    /// Whether `sender` may deliver one more direct message at `now` (its token bucket).
    pub(crate) fn allow_message(&mut self, sender: &str, now: Instant) -> bool {
        if !self.buckets.contains_key(sender) && self.buckets.len() >= self.max_senders {
            self.buckets.pop_first();
        }
        let bucket = self.buckets.entry(sender.to_owned()).or_insert(Bucket { tokens: self.burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broadcast(origin: &str, id: u64, topic: &str, latest: bool) -> v1::UserBroadcast {
        v1::UserBroadcast {
            origin: origin.to_owned(),
            generation: 1,
            id,
            topic: topic.to_owned(),
            payload: Bytes::new(),
            latest,
            query: None,
        }
    }

    #[test]
    fn each_broadcast_is_delivered_once_and_coalesced_ones_never_go_back() {
        #[allow(clippy::disallowed_methods)] // A base instant; only differences matter.
        let now = Instant::now();
        let mut messages = Messages::new(&Config::lan(), now);
        let load = |id| broadcast("a", id, "load", true);
        assert_eq!(messages.receive(&load(2), "me", now), Received::Deliver);
        assert_eq!(messages.receive(&load(2), "me", now), Received::Duplicate);
        assert_eq!(messages.receive(&load(1), "me", now), Received::Superseded, "older than delivered");
        assert_eq!(messages.receive(&load(3), "me", now), Received::Deliver);
        // Not coalesced: every id is delivered, whatever the order.
        assert_eq!(messages.receive(&broadcast("a", 5, "load", false), "me", now), Received::Deliver);
        assert_eq!(messages.receive(&broadcast("a", 4, "load", false), "me", now), Received::Deliver);
        // Our own never.
        assert_eq!(messages.receive(&broadcast("me", 1, "x", false), "me", now), Received::Duplicate);
        // A later coalesced one replaces the earlier one still waiting: one slot for "load".
        assert_eq!(messages.pending(), 3);
    }

    #[test]
    fn remembered_broadcasts_are_bounded() {
        #[allow(clippy::disallowed_methods)] // A base instant; only differences matter.
        let now = Instant::now();
        let mut config = Config::lan();
        config.messages.remembered_broadcasts = 4;
        let mut messages = Messages::new(&config, now);
        for id in 1..=10 {
            messages.receive(&broadcast("a", id, "t", false), "me", now);
        }
        assert_eq!(messages.remembered(), 4);
    }
}
