//! Decoding a received datagram: exactly prost's merge of a `v1::Envelope`, with the entries
//! of deltas taken zero-copy (see `entries.rs`).

use bytes::{Buf, BufMut, Bytes};
use gossip_proto::v1::{self, envelope::Body};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use super::digest_entry::ReceivedDigestEntry;
use super::entries::{Base, DeltaMerge};
use crate::delta::ReceivedEntry;
use crate::shared_entry::EntrySpans;

/// A decoded envelope, not checked yet: `v1::Envelope`, with the deltas of its body in their
/// received form ([`DecodedDelta`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DecodedEnvelope {
    pub(crate) protocol_version: u32,
    pub(crate) cluster: String,
    pub(crate) sender: Option<v1::NodeIdentity>,
    pub(crate) body: Option<DecodedBody>,
    pub(crate) membership: Vec<v1::MembershipUpdate>,
    pub(crate) broadcasts: Vec<v1::UserBroadcast>,
}

/// A decoded body (see `v1::envelope::Body`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DecodedBody {
    Syn(WithDeltas<v1::Syn>),
    SynAck(WithDeltas<v1::SynAck>),
    Ack2(WithDeltas<v1::Ack2>),
    Push(WithDeltas<v1::Push>),
    DeltaReply(WithDeltas<v1::DeltaReply>),
    PushAck(v1::PushAck),
    Ping(v1::Ping),
    PingReq(v1::PingReq),
    Ack(v1::Ack),
    Nack(v1::Nack),
    AggregateTransfer(v1::AggregateTransfer),
    AggregateAck(v1::AggregateAck),
    Gossip,
    UserMessage(v1::UserMessage),
    QueryResponse(v1::QueryResponse),
    WriteRequest(v1::WriteRequest),
    WriteOutcome(v1::WriteOutcome),
}

/// A body message with a `repeated NodeDelta` field: the deltas, decoded apart, in `deltas`,
/// and its digest entries, if it has a field of them, in `digest`; every other field in
/// `rest` (whose own deltas and digest entries stay empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WithDeltas<M> {
    pub(crate) rest: M,
    pub(crate) deltas: Vec<DecodedDelta>,
    pub(crate) digest: Vec<ReceivedDigestEntry>,
}

/// A decoded `NodeDelta`, not checked yet: the message without its entries, and the entries
/// with where their keys and values lie in the datagram.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DecodedDelta {
    /// Everything but the entries (`header.entries` is empty).
    pub(crate) header: v1::NodeDelta,
    pub(crate) entries: Vec<ReceivedEntry>,
    /// The keys and values of the entries prost decoded (not laid out plainly), side by
    /// side: those entries lie here (`own`), not in the datagram.
    pub(crate) own: Vec<u8>,
}

impl DecodedDelta {
    /// Adds an entry that prost decoded: its key and value are copied into `own`.
    pub(crate) fn push_own(&mut self, entry: &v1::Entry) {
        let key_start = self.own.len();
        self.own.extend_from_slice(entry.key.as_bytes());
        let value_start = self.own.len();
        self.own.extend_from_slice(&entry.value);
        // Within a datagram: never 4 GiB.
        let spans = EntrySpans::new(key_start..value_start, value_start..self.own.len()).unwrap_or_default();
        self.entries.push(ReceivedEntry { spans, version: entry.version, deleted: entry.deleted, own: true });
    }

    /// The same delta with every entry's key and value copied into `own`, in order, from
    /// `datagram` (the buffer it was decoded from) or `own`: two decodings of the same bytes
    /// then compare equal whichever way each took.
    #[cfg(any(test, feature = "fuzzing"))]
    fn copied(self, datagram: &[u8]) -> Self {
        let mut copied = Self { header: self.header, ..Self::default() };
        for entry in &self.entries {
            let source = if entry.own { &self.own[..] } else { datagram };
            let key = source.get(entry.spans.key()).unwrap_or_default();
            let value = source.get(entry.spans.value()).unwrap_or_default();
            copied.push_own(&v1::Entry {
                key: String::from_utf8_lossy(key).into_owned(),
                value: Bytes::copy_from_slice(value),
                version: entry.version,
                deleted: entry.deleted,
            });
        }
        copied
    }
}

/// A body message that carries deltas, and the numbers of its `repeated NodeDelta` field and
/// of its `repeated DigestEntry` field (0, which no field has, when it has none).
pub(crate) trait CarriesDeltas: Message + Default {
    const DELTAS: u32;
    const DIGEST: u32;

    /// The deltas field (for the conversion from prost's decoding).
    fn deltas_mut(&mut self) -> &mut Vec<v1::NodeDelta>;

    /// The digest entries field, if any (for the conversion from prost's decoding).
    fn digest_mut(&mut self) -> Option<&mut Vec<v1::DigestEntry>>;
}

macro_rules! carries_deltas {
    ($($message:ident: $tag:literal, $digest:literal $(($field:ident))?),*) => {$(
        impl CarriesDeltas for v1::$message {
            const DELTAS: u32 = $tag;
            const DIGEST: u32 = $digest;

            fn deltas_mut(&mut self) -> &mut Vec<v1::NodeDelta> {
                &mut self.deltas
            }

            fn digest_mut(&mut self) -> Option<&mut Vec<v1::DigestEntry>> {
                None $(.or(Some(&mut self.$field)))?
            }
        }
    )*};
}

carries_deltas!(
    Syn: 4, 2 (digest),
    SynAck: 1, 2 (digest),
    Ack2: 1, 2 (request),
    Push: 1, 0,
    DeltaReply: 1, 0
);

impl From<v1::NodeDelta> for DecodedDelta {
    fn from(mut header: v1::NodeDelta) -> Self {
        let entries = std::mem::take(&mut header.entries);
        let mut delta = Self { header, ..Self::default() };
        for entry in &entries {
            delta.push_own(entry);
        }
        delta
    }
}

impl<M: CarriesDeltas> From<M> for WithDeltas<M> {
    fn from(mut rest: M) -> Self {
        let deltas = std::mem::take(rest.deltas_mut()).into_iter().map(DecodedDelta::from).collect();
        let digest = rest.digest_mut().map(std::mem::take).unwrap_or_default();
        Self { rest, deltas, digest: digest.into_iter().map(ReceivedDigestEntry::from).collect() }
    }
}

impl From<Body> for DecodedBody {
    fn from(body: Body) -> Self {
        match body {
            Body::Syn(m) => Self::Syn(m.into()),
            Body::SynAck(m) => Self::SynAck(m.into()),
            Body::Ack2(m) => Self::Ack2(m.into()),
            Body::Push(m) => Self::Push(m.into()),
            Body::DeltaReply(m) => Self::DeltaReply(m.into()),
            Body::PushAck(m) => Self::PushAck(m),
            Body::Ping(m) => Self::Ping(m),
            Body::PingReq(m) => Self::PingReq(m),
            Body::Ack(m) => Self::Ack(m),
            Body::Nack(m) => Self::Nack(m),
            Body::AggregateTransfer(m) => Self::AggregateTransfer(m),
            Body::AggregateAck(m) => Self::AggregateAck(m),
            Body::Gossip(_) => Self::Gossip,
            Body::UserMessage(m) => Self::UserMessage(m),
            Body::QueryResponse(m) => Self::QueryResponse(m),
            Body::WriteRequest(m) => Self::WriteRequest(m),
            Body::WriteOutcome(m) => Self::WriteOutcome(m),
        }
    }
}

/// What prost's own decoding gives, in the decoded form (the reference the fast path is
/// tested and fuzzed against).
impl From<v1::Envelope> for DecodedEnvelope {
    fn from(envelope: v1::Envelope) -> Self {
        Self {
            protocol_version: envelope.protocol_version,
            cluster: envelope.cluster,
            sender: envelope.sender,
            body: envelope.body.map(DecodedBody::from),
            membership: envelope.membership,
            broadcasts: envelope.broadcasts,
        }
    }
}

impl DecodedEnvelope {
    /// The same envelope with the keys and values of every delta's entries copied into the
    /// delta's own buffer (see [`DecodedDelta::copied`]): what the fast decoder gives for
    /// `datagram` then equals what prost's decoding gives, converted.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn copied(mut self, datagram: &[u8]) -> Self {
        fn copy<M>(with: &mut WithDeltas<M>, datagram: &[u8]) {
            with.deltas =
                std::mem::take(&mut with.deltas).into_iter().map(|delta| delta.copied(datagram)).collect();
        }
        match &mut self.body {
            Some(DecodedBody::Syn(with)) => copy(with, datagram),
            Some(DecodedBody::SynAck(with)) => copy(with, datagram),
            Some(DecodedBody::Ack2(with)) => copy(with, datagram),
            Some(DecodedBody::Push(with)) => copy(with, datagram),
            Some(DecodedBody::DeltaReply(with)) => copy(with, datagram),
            _ => {}
        }
        self
    }
}

/// Decodes a received datagram.
///
/// The result is exactly what prost's `v1::Envelope::decode` gives for the same bytes
/// (converted to [`DecodedEnvelope`]), and an error exactly when it gives one, once both are
/// [`copied`](DecodedEnvelope::copied); only the hot part is done by hand. Every `Entry` of
/// every delta is parsed straight from the buffer when it is laid out plainly (the four known
/// fields, one-byte field keys, well-formed varints): the entry is then where its key and
/// value lie in `datagram`, and costs no allocation and no reference count. Any other entry
/// (unknown fields, odd encodings, a truncated entry) goes to prost's own decoder, which
/// decides (its key and value are copied into the delta's own buffer). Prost also drives
/// everything around the entries, so limits and errors are its own.
///
/// Whoever stores the entries keeps `datagram` alive as long as any key or value from it
/// lives: at most one datagram (`max_datagram_size`) per held entry. `datagram` itself is read
/// in place (see [`SharedCursor`]): it stays whole for the caller.
pub(crate) fn decode(datagram: &Bytes) -> Result<DecodedEnvelope, DecodeError> {
    let mut scratch = EnvelopeScratch { base: Base::of(datagram), ..EnvelopeScratch::default() };
    Message::merge(&mut scratch, SharedCursor { bytes: datagram, at: 0 })?;
    let EnvelopeScratch { envelope, with_deltas, .. } = scratch;
    Ok(DecodedEnvelope {
        protocol_version: envelope.protocol_version,
        cluster: envelope.cluster,
        sender: envelope.sender,
        body: with_deltas.or_else(|| envelope.body.map(DecodedBody::from)),
        membership: envelope.membership,
        broadcasts: envelope.broadcasts,
    })
}

/// An envelope being decoded. The body (a oneof) is either in `envelope` or, for the kinds
/// that carry deltas, in `with_deltas` (only those kinds), never in both.
#[derive(Debug, Default)]
struct EnvelopeScratch {
    envelope: v1::Envelope,
    with_deltas: Option<DecodedBody>,
    /// The datagram, which plain entries are located in.
    base: Base,
}

/// Merges a body with deltas into the oneof as prost's generated `Body::merge` does: into
/// the body there if it is of the same kind, else into a new one that replaces it.
fn merge_body<M: CarriesDeltas>(
    scratch: &mut EnvelopeScratch,
    wrap: fn(WithDeltas<M>) -> DecodedBody,
    unwrap: fn(&mut DecodedBody) -> Option<&mut WithDeltas<M>>,
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    let base = scratch.base;
    if let Some(existing) = scratch.with_deltas.as_mut().and_then(unwrap) {
        return encoding::message::merge(wire_type, &mut DeltasMerge { with: existing, base }, buf, ctx);
    }
    let mut owned = WithDeltas::default();
    encoding::message::merge(wire_type, &mut DeltasMerge { with: &mut owned, base }, buf, ctx)?;
    scratch.with_deltas = Some(wrap(owned));
    scratch.envelope.body = None;
    Ok(())
}

impl Message for EnvelopeScratch {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.envelope.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            4 => merge_body(
                self,
                DecodedBody::Syn,
                |b| if let DecodedBody::Syn(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            5 => merge_body(
                self,
                DecodedBody::SynAck,
                |b| if let DecodedBody::SynAck(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            6 => merge_body(
                self,
                DecodedBody::Ack2,
                |b| if let DecodedBody::Ack2(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            7 => merge_body(
                self,
                DecodedBody::Push,
                |b| if let DecodedBody::Push(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            8 => merge_body(
                self,
                DecodedBody::DeltaReply,
                |b| if let DecodedBody::DeltaReply(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            // Every other field of the `body` oneof (keep in step with proto/gossip.proto).
            9..=15 | 17 | 18 | 20..=22 => {
                // Another kind of body replaces one with deltas.
                self.envelope.merge_field(tag, wire_type, buf, ctx)?;
                self.with_deltas = None;
                Ok(())
            }
            _ => self.envelope.merge_field(tag, wire_type, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        self.envelope.encoded_len()
    }

    fn clear(&mut self) {
        self.envelope.clear();
        self.with_deltas = None;
    }
}

/// A body with deltas being decoded from the datagram at `base`.
#[derive(Debug)]
struct DeltasMerge<'a, M> {
    with: &'a mut WithDeltas<M>,
    base: Base,
}

impl<M: CarriesDeltas> Message for DeltasMerge<'_, M> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.with.rest.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag == M::DIGEST {
            // As prost's `merge_repeated`, the name read in place.
            encoding::check_wire_type(WireType::LengthDelimited, wire_type)?;
            let mut entry = ReceivedDigestEntry::default();
            encoding::message::merge(wire_type, &mut entry, buf, ctx)?;
            self.with.digest.push(entry);
            return Ok(());
        }
        if tag != M::DELTAS {
            return self.with.rest.merge_field(tag, wire_type, buf, ctx);
        }
        // As prost's `merge_repeated`.
        encoding::check_wire_type(WireType::LengthDelimited, wire_type)?;
        let mut delta = DecodedDelta::default();
        encoding::message::merge(
            wire_type,
            &mut DeltaMerge { delta: &mut delta, base: self.base },
            buf,
            ctx,
        )?;
        self.with.deltas.push(delta);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.with.rest.encoded_len()
    }

    fn clear(&mut self) {
        self.with.rest.clear();
        self.with.deltas.clear();
        self.with.digest.clear();
    }
}

/// Decodes one encoded `NodeDelta` as a datagram's are (its plain entries located in
/// `bytes`), for tests that apply deltas without an envelope around them.
#[cfg(test)]
pub(crate) fn decode_delta(bytes: &Bytes) -> Result<DecodedDelta, DecodeError> {
    let mut delta = DecodedDelta::default();
    Message::merge(
        &mut DeltaMerge { delta: &mut delta, base: Base::of(bytes) },
        SharedCursor { bytes, at: 0 },
    )?;
    Ok(delta)
}

/// Reads a shared buffer in place: what it slices off (`copy_to_bytes`, prost's `bytes`
/// fields) shares the buffer, which stays whole for its owner (the replicas and the deltas'
/// key events keep it) without a second handle to take and drop per datagram.
struct SharedCursor<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Buf for SharedCursor<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn chunk(&self) -> &[u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }

    fn advance(&mut self, count: usize) {
        // Prost checks what remains before it advances; past the end is never reached.
        self.at = self.at.saturating_add(count).min(self.bytes.len());
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        let end = self.at.saturating_add(len).min(self.bytes.len());
        let slice = self.bytes.slice(self.at..end);
        self.at = end;
        slice
    }
}
