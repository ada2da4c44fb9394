//! What a datagram carries, read from its encoded envelope without decoding it: the field
//! number of the envelope's `body` (a protobuf `oneof`). Counting datagrams by kind is how the
//! simulator measures probe load (pings, ping-reqs, acks and nacks) exactly.

/// The kind of message a datagram carries (the `body` of its envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum BodyKind {
    /// Anti-entropy: opens an exchange.
    Syn,
    /// Anti-entropy: the answer to a `Syn`.
    SynAck,
    /// Anti-entropy: the answer to a `SynAck`.
    Ack2,
    /// Deltas pushed without a request.
    Push,
    /// Deltas asked for in an `Ack2`.
    DeltaReply,
    /// Rumor feedback.
    PushAck,
    /// SWIM: a probe (direct, relayed or announcing a leave).
    Ping,
    /// SWIM: a request to probe another member.
    PingReq,
    /// SWIM: the answer to a ping.
    Ack,
    /// SWIM: a relay's report that its target did not answer in time (Lifeguard).
    Nack,
    /// Aggregation: a push-sum transfer.
    AggregateTransfer,
    /// Aggregation: the acknowledgement of transfers.
    AggregateAck,
    /// Only piggybacked updates (application broadcasts spreading).
    Gossip,
    /// An application message to one member.
    UserMessage,
    /// An answer to a query.
    QueryResponse,
    /// A write request (or its relayed copy).
    WriteRequest,
    /// A write request's outcome (or its relayed copy).
    WriteOutcome,
    /// No body, or one this simulator does not know.
    Other,
}

impl BodyKind {
    /// Every kind, in the order of [`KindCounts`].
    pub const ALL: [Self; 18] = [
        Self::Syn,
        Self::SynAck,
        Self::Ack2,
        Self::Push,
        Self::DeltaReply,
        Self::PushAck,
        Self::Ping,
        Self::PingReq,
        Self::Ack,
        Self::Nack,
        Self::AggregateTransfer,
        Self::AggregateAck,
        Self::Gossip,
        Self::UserMessage,
        Self::QueryResponse,
        Self::WriteRequest,
        Self::WriteOutcome,
        Self::Other,
    ];

    /// The failure detector's messages: pings, ping-reqs, acks and nacks.
    pub fn is_probe(self) -> bool {
        matches!(self, Self::Ping | Self::PingReq | Self::Ack | Self::Nack)
    }

    /// A short lowercase name (`"ping_req"`, `"syn_ack"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Syn => "syn",
            Self::SynAck => "syn_ack",
            Self::Ack2 => "ack2",
            Self::Push => "push",
            Self::DeltaReply => "delta_reply",
            Self::PushAck => "push_ack",
            Self::Ping => "ping",
            Self::PingReq => "ping_req",
            Self::Ack => "ack",
            Self::Nack => "nack",
            Self::AggregateTransfer => "aggregate_transfer",
            Self::AggregateAck => "aggregate_ack",
            Self::Gossip => "gossip",
            Self::UserMessage => "user_message",
            Self::QueryResponse => "query_response",
            Self::WriteRequest => "write_request",
            Self::WriteOutcome => "write_outcome",
            Self::Other => "other",
        }
    }

    fn from_field(field: u64) -> Option<Self> {
        // The field numbers of `Envelope.body` in proto/gossip.proto.
        Some(match field {
            4 => Self::Syn,
            5 => Self::SynAck,
            6 => Self::Ack2,
            7 => Self::Push,
            8 => Self::DeltaReply,
            9 => Self::PushAck,
            10 => Self::Ping,
            11 => Self::PingReq,
            12 => Self::Ack,
            13 => Self::Nack,
            14 => Self::AggregateTransfer,
            15 => Self::AggregateAck,
            17 => Self::Gossip,
            18 => Self::UserMessage,
            20 => Self::QueryResponse,
            21 => Self::WriteRequest,
            22 => Self::WriteOutcome,
            _ => return None,
        })
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// The kind of the datagram `payload` (an encoded `Envelope`): the last `body` field of the
/// top-level message, as protobuf's `oneof` rule reads it. Scans field headers only (the
/// sender's encoder puts the body before the piggybacked membership updates, so the scan
/// usually stops early); anything that does not parse is [`BodyKind::Other`].
pub fn body_kind(payload: &[u8]) -> BodyKind {
    let mut at = 0;
    let mut kind = BodyKind::Other;
    while at < payload.len() {
        let Some(key) = varint(payload, &mut at) else { return BodyKind::Other };
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                if varint(payload, &mut at).is_none() {
                    return BodyKind::Other;
                }
            }
            1 => at += 8,
            2 => {
                let Some(len) = varint(payload, &mut at) else { return BodyKind::Other };
                let end = usize::try_from(len).ok().and_then(|len| at.checked_add(len));
                let Some(end) = end.filter(|end| *end <= payload.len()) else { return BodyKind::Other };
                if let Some(found) = BodyKind::from_field(field) {
                    kind = found;
                }
                if field == 16 {
                    // Membership updates follow the body: nothing more to learn.
                    return kind;
                }
                at = end;
            }
            5 => at += 4,
            _ => return BodyKind::Other,
        }
    }
    if at > payload.len() { BodyKind::Other } else { kind }
}

fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Datagrams counted by [`BodyKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts {
    counts: [u64; BodyKind::ALL.len()],
}

impl KindCounts {
    /// Datagrams of `kind`.
    pub fn get(&self, kind: BodyKind) -> u64 {
        self.counts[kind.slot()]
    }

    /// Counts one datagram of `kind`.
    pub(crate) fn add(&mut self, kind: BodyKind) {
        self.counts[kind.slot()] += 1;
    }

    /// The failure detector's datagrams: pings, ping-reqs, acks and nacks.
    pub fn probe_messages(&self) -> u64 {
        BodyKind::ALL.iter().filter(|kind| kind.is_probe()).map(|kind| self.get(*kind)).sum()
    }

    /// Every datagram counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The counts accumulated since `earlier` (a snapshot of the same counter).
    pub fn since(&self, earlier: &Self) -> Self {
        let mut counts = self.counts;
        for (count, before) in counts.iter_mut().zip(earlier.counts) {
            *count = count.saturating_sub(before);
        }
        Self { counts }
    }

    /// `(kind, count)` for every kind.
    pub fn iter(&self) -> impl Iterator<Item = (BodyKind, u64)> + '_ {
        BodyKind::ALL.iter().map(|kind| (*kind, self.get(*kind)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossip_proto::v1::{self, envelope::Body};
    use prost::Message;

    fn envelope(body: Option<Body>, updates: usize) -> Vec<u8> {
        let update = v1::MembershipUpdate {
            member: Some(v1::NodeIdentity { name: "n7".to_owned(), generation: 3, address: None }),
            incarnation: 2,
            state: v1::MemberState::Suspect as i32,
            from: "n1".to_owned(),
        };
        v1::Envelope {
            protocol_version: 1,
            cluster: "default".to_owned(),
            sender: Some(v1::NodeIdentity { name: "n1".to_owned(), generation: 1, address: None }),
            body,
            membership: vec![update; updates],
            broadcasts: Vec::new(),
        }
        .encode_to_vec()
    }

    #[test]
    fn reads_the_body_kind_of_every_message() {
        let bodies = [
            (Body::Syn(v1::Syn::default()), BodyKind::Syn),
            (Body::SynAck(v1::SynAck::default()), BodyKind::SynAck),
            (Body::Ack2(v1::Ack2::default()), BodyKind::Ack2),
            (Body::Push(v1::Push::default()), BodyKind::Push),
            (Body::DeltaReply(v1::DeltaReply::default()), BodyKind::DeltaReply),
            (Body::PushAck(v1::PushAck::default()), BodyKind::PushAck),
            (Body::Ping(v1::Ping { sequence: 300, summary: None }), BodyKind::Ping),
            (Body::PingReq(v1::PingReq { sequence: 1, target: None, nack: true }), BodyKind::PingReq),
            (Body::Ack(v1::Ack { sequence: 1 << 30, summary_differs: false }), BodyKind::Ack),
            (Body::Nack(v1::Nack { sequence: 0 }), BodyKind::Nack),
            (Body::AggregateTransfer(v1::AggregateTransfer::default()), BodyKind::AggregateTransfer),
            (Body::AggregateAck(v1::AggregateAck { epoch: 3, sequence: 1 }), BodyKind::AggregateAck),
        ];
        for (body, kind) in bodies {
            assert_eq!(body_kind(&envelope(Some(body.clone()), 0)), kind);
            assert_eq!(body_kind(&envelope(Some(body), 5)), kind, "with piggybacked updates");
        }
        assert_eq!(body_kind(&envelope(None, 2)), BodyKind::Other);
        assert_eq!(body_kind(&[0xff, 0xff]), BodyKind::Other);
        let mut cut = envelope(Some(Body::Ack(v1::Ack { sequence: 9, summary_differs: false })), 0);
        cut.truncate(cut.len() - 1);
        assert_eq!(body_kind(&cut), BodyKind::Other, "a truncated body does not count");
    }

    #[test]
    fn counts_add_up_and_subtract() {
        let mut counts = KindCounts::default();
        for kind in [BodyKind::Ping, BodyKind::Ack, BodyKind::Syn, BodyKind::Nack, BodyKind::PingReq] {
            counts.add(kind);
        }
        let before = counts;
        counts.add(BodyKind::Ping);
        assert_eq!(counts.probe_messages(), 5);
        assert_eq!(counts.total(), 6);
        assert_eq!(counts.since(&before).get(BodyKind::Ping), 1);
        assert_eq!(counts.since(&before).total(), 1);
    }
}
