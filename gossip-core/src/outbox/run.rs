//! What a node sends: every datagram is built here, with membership claims piggybacked in
//! the room its body leaves, sealed when encryption is on, and queued within
//! `max_pending_transmits`; claims wait in the broadcast queue until then.

use std::net::SocketAddr;

use gossip_proto::v1::{self, envelope::Body};
use prost::Message;
use prost::encoding::message::encoded_len_repeated;
use rand_core::Rng;

use crate::event::Transmit;
use crate::membership::Claim;
use crate::node::Node;

/// The field numbers of `Envelope.membership` and `Envelope.broadcasts` in proto/gossip.proto.
const MEMBERSHIP_FIELD: u32 = 16;
const BROADCASTS_FIELD: u32 = 19;

impl<R: Rng> Node<R> {
    /// Queues a membership claim for piggybacking.
    pub(crate) fn queue_claim(&mut self, claim: Claim) {
        let before = self.out.claims.dropped;
        self.out.claims.push(&claim.name, claim.to_wire());
        self.out.metrics.broadcasts_dropped += self.out.claims.dropped - before;
    }

    /// The largest envelope that fits a datagram once framed (sealing takes its overhead).
    pub(crate) fn datagram_limit(&self) -> usize {
        self.config.max_datagram_size.saturating_sub(self.security.overhead())
    }

    /// Encodes and queues a datagram, with membership updates filling the room left.
    pub(crate) fn send(&mut self, to: SocketAddr, body: Body) {
        self.send_with_priority(to, body, None);
    }

    /// As [`send`](Self::send), with the update about member `first` piggybacked first.
    pub(crate) fn send_with_priority(&mut self, to: SocketAddr, body: Body, first: Option<&str>) {
        self.send_with_claims(to, body, first, Vec::new());
    }

    /// As [`send_with_priority`](Self::send_with_priority), with `claims` (for which the
    /// caller reserved room) ahead of the piggyback queue.
    pub(crate) fn send_with_claims(
        &mut self,
        to: SocketAddr,
        body: Body,
        first: Option<&str>,
        claims: Vec<v1::MembershipUpdate>,
    ) {
        let mut envelope = self.envelopes.envelope(body);
        envelope.membership = claims;
        let datagram_limit = self.datagram_limit();
        // The envelope's length is walked once; what is appended after adds its own length
        // (a repeated field's elements are encoded one after the other).
        let base = envelope.encoded_len();
        let limit = crate::broadcast::retransmit_limit(self.config.swim.retransmit_mult, self.table.len());
        let piggyback = self.out.claims.take(datagram_limit.saturating_sub(base), limit, first);
        let without_broadcasts = base + encoded_len_repeated(MEMBERSHIP_FIELD, &piggyback);
        envelope.membership.extend(piggyback);
        envelope.broadcasts = self.take_broadcasts(datagram_limit.saturating_sub(without_broadcasts), to);
        let broadcasts_len = encoded_len_repeated(BROADCASTS_FIELD, &envelope.broadcasts);
        let encoded_len = without_broadcasts + broadcasts_len;
        let payload = self.security.frame(&mut self.rng, &envelope, encoded_len);
        if matches!(envelope.body, Some(Body::Gossip(_))) {
            // A `Gossip` datagram exists only to carry broadcasts: all of it is their cost.
            self.out.metrics.broadcast_bytes_out += payload.len() as u64;
        } else {
            self.out.metrics.broadcast_bytes_out += broadcasts_len as u64;
        }
        if payload.len() > self.config.max_datagram_size
            || payload.len() > datagram_limit + self.security.overhead()
        {
            // The packers count exact sizes, so this is a bug; never send it.
            debug_assert!(false, "built a {}-byte datagram", payload.len());
            self.out.metrics.transmits_dropped += 1;
            return;
        }
        let len = payload.len() as u64;
        if self.out.transmits.push_if_room(Transmit { to, payload: payload.into() }) {
            self.out.metrics.datagrams_out += 1;
            self.out.metrics.bytes_out += len;
        } else {
            self.out.metrics.transmits_dropped += 1;
        }
    }
}
