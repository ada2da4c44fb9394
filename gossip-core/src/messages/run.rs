//! How the node sends and receives application messages: direct messages in one datagram,
//! broadcasts piggybacked on every datagram and, while some wait, sent in `Gossip` datagrams
//! to `fanout` random members every gossip interval.

use std::net::SocketAddr;

use bytes::Bytes;
use gossip_proto::v1::{self, envelope::Body};
use rand_core::Rng;

use crate::error::MessageError;
use crate::event::Event;
use crate::identity::Identity;
use crate::node::Node;

use super::Received;

impl<R: Rng> Node<R> {
    /// Sends `payload` to the live member `member` in one datagram (best effort: no
    /// acknowledgement, no retry); it gets [`Event::Message`]. Membership updates ride along
    /// as on any datagram. The payload may be at most `messages.max_payload` bytes.
    pub fn send_to(&mut self, member: &str, payload: impl Into<Bytes>) -> Result<(), MessageError> {
        let payload = payload.into();
        self.check_message("", &payload, None)?;
        let address = self
            .live_peer_address(member)
            .ok_or_else(|| MessageError::UnknownMember { name: member.to_owned() })?;
        let id = self.messages.next_message_id();
        self.send(address, Body::UserMessage(v1::UserMessage { payload, id }));
        Ok(())
    }

    /// Broadcasts `payload` under `topic` to every live member: each gets one
    /// [`Event::Broadcast`] (this node gets none). It rides piggyback on the datagrams the
    /// protocol sends and, while it spreads, on `Gossip` datagrams to `fanout` random members
    /// every gossip interval; each node passes it on in `swim.retransmit_mult x
    /// ceil(log10(n + 1))` datagrams (memberlist's count), at least `4 x fanout`. Returns its
    /// id (from 1 in each generation).
    pub fn broadcast(&mut self, topic: &str, payload: impl Into<Bytes>) -> Result<u64, MessageError> {
        self.originate_broadcast(topic, payload.into(), false)
    }

    /// As [`broadcast`](Self::broadcast), coalesced by topic (Serf's coalescing user events):
    /// a member that has already been given a later `broadcast_latest` of this node on the
    /// same topic never gets this one, and a later one replaces this one where it still waits
    /// to be passed on. For state that only matters in its latest form (a load report).
    pub fn broadcast_latest(&mut self, topic: &str, payload: impl Into<Bytes>) -> Result<u64, MessageError> {
        self.originate_broadcast(topic, payload.into(), true)
    }

    fn originate_broadcast(
        &mut self,
        topic: &str,
        payload: Bytes,
        latest: bool,
    ) -> Result<u64, MessageError> {
        self.check_topic(topic)?;
        self.check_message(topic, &payload, None)?;
        let (name, generation, now) = (&self.identity.name, self.identity.generation, self.now);
        Ok(self.messages.originate(name, generation, topic.to_owned(), payload, latest, None, now))
    }

    /// A topic within `messages.max_topic`.
    pub(crate) fn check_topic(&self, topic: &str) -> Result<(), MessageError> {
        let max = self.config.messages.max_topic;
        if topic.len() > max {
            return Err(MessageError::TopicTooLarge { len: topic.len(), max });
        }
        Ok(())
    }

    /// A message of `payload` (under `topic` and with `query`, for a broadcast) is within the
    /// limits and fits one datagram, alone, with room for the widest envelope.
    pub(crate) fn check_message(
        &self,
        topic: &str,
        payload: &Bytes,
        query: Option<&v1::Query>,
    ) -> Result<(), MessageError> {
        if self.name_check.given_up() {
            return Err(MessageError::NameGivenUp);
        }
        let max = self.config.messages.max_payload;
        if payload.len() > max {
            return Err(MessageError::PayloadTooLarge { len: payload.len(), max });
        }
        let bounds = self.config.envelope_bounds();
        let needed =
            crate::budget::broadcast_datagram_len(bounds, topic.len(), payload.len(), query.cloned())
                + self.security.overhead();
        if needed > self.config.max_datagram_size {
            return Err(MessageError::DoesNotFit {
                needed,
                max_datagram_size: self.config.max_datagram_size,
            });
        }
        Ok(())
    }

    /// A direct message from `sender`: delivered unless it is a copy of one delivered, or the
    /// sender is over its rate.
    pub(crate) fn on_user_message(&mut self, sender: &Identity, message: v1::UserMessage) {
        if !self.messages.first_copy(sender, message.id) {
            self.out.metrics.messages_duplicate += 1;
            return;
        }
        let payload = message.payload;
        if !self.messages.allow_message(&sender.name, self.now) {
            self.out.metrics.messages_rate_limited += 1;
            return;
        }
        self.out.metrics.messages_in += 1;
        self.out.events.emit(Event::Message { from: sender.name.clone(), payload });
    }

    /// Piggybacked broadcasts (checked): each new one delivered once and passed on.
    pub(crate) fn on_broadcasts(&mut self, broadcasts: Vec<v1::UserBroadcast>) {
        for broadcast in broadcasts {
            match self.messages.receive(&broadcast, &self.identity.name, self.now) {
                Received::Duplicate => self.out.metrics.broadcasts_duplicate += 1,
                Received::Superseded => self.out.metrics.broadcasts_superseded += 1,
                Received::Deliver if broadcast.query.is_some() => {
                    self.out.metrics.broadcasts_delivered += 1;
                    self.deliver_query(broadcast);
                }
                Received::Deliver => {
                    self.out.metrics.broadcasts_delivered += 1;
                    let v1::UserBroadcast { origin, topic, payload, .. } = broadcast;
                    self.out.events.emit(Event::Broadcast { origin, topic, payload });
                }
            }
        }
    }

    /// While broadcasts wait to be passed on: a `Gossip` datagram to `fanout` random live
    /// members every gossip interval (the piggyback fills it), so that they spread at the
    /// base rate however quiet the cluster is.
    pub(crate) fn drive_broadcasts(&mut self) {
        if self.messages.deadline().is_none_or(|due| self.now < due) {
            return;
        }
        self.messages.round_sent(self.now, self.config.gossip_interval);
        for peer in self.random_live_members(self.config.fanout, &[]) {
            self.send(peer, Body::Gossip(v1::Gossip {}));
        }
    }

    /// The broadcasts that fit `room` bytes of a datagram being built for `to`, but for
    /// those made by `to`: the origin has its own broadcast, and a copy sent back to it is
    /// one the rest of the cluster does not get (every answer to a query went back to the
    /// asker with a copy of the query, and at 1,000 nodes some members got none).
    pub(crate) fn take_broadcasts(&mut self, room: usize, to: SocketAddr) -> Vec<v1::UserBroadcast> {
        if self.messages.pending() == 0 {
            return Vec::new();
        }
        // Each holder passes a broadcast on `retransmit_mult x ceil(log10(n + 1))` times, as
        // memberlist does, but at least in four rounds of `Gossip` datagrams (`fanout` each).
        // A member is missed with a chance of about e^-L for L copies per holder: in a small
        // cluster with a low multiplier the first count is 2 and a broadcast would often die
        // out; 4 x 3 = 12 copies miss one of 30 members about once in 5,000 broadcasts.
        let fanout = u32::try_from(self.config.fanout).unwrap_or(u32::MAX);
        let limit = crate::broadcast::retransmit_limit(self.config.swim.retransmit_mult, self.table.len())
            .max(fanout.saturating_mul(4));
        let before = self.messages.given_way();
        let table = &self.table;
        let made_by_receiver = |broadcast: &v1::UserBroadcast| {
            table.by_name(&broadcast.origin).is_some_and(|origin| origin.address == to)
        };
        let taken = self.messages.take(room, limit, made_by_receiver);
        self.out.metrics.broadcasts_given_way += self.messages.given_way() - before;
        taken
    }
}
