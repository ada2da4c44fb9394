//! Checking received envelopes against the protocol's rules before anything is applied, and
//! building the envelopes this node sends.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes};
use gossip_proto::v1::{self, envelope::Body};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::config::Config;
use crate::delta::{InDelta, InEntry, valid_name, validate};
use crate::event::SharedStr;
use crate::identity::{Identity, address_from_wire};
use crate::membership::Claim;

/// Why an envelope was dropped before it touched any state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drop {
    /// Another protocol version.
    Version,
    /// Another cluster.
    Cluster,
    /// Broke a rule of the protocol or a limit of the config.
    Malformed,
}

/// Checks the whole envelope (sender, every delta, every digest entry, every membership
/// claim) so that a bad datagram is dropped whole and leaves the state unchanged. Returns the
/// sender, whose address defaults to the datagram's source; acks and nacks may be anonymous.
pub(crate) fn check(
    envelope: &InEnvelope,
    config: &Config,
    from: SocketAddr,
) -> Result<Option<Identity>, Drop> {
    if envelope.protocol_version != gossip_proto::PROTOCOL_VERSION {
        return Err(Drop::Version);
    }
    if envelope.cluster != config.cluster {
        return Err(Drop::Cluster);
    }
    let body = envelope.body.as_ref().ok_or(Drop::Malformed)?;
    let sender = match envelope.sender.as_ref() {
        None if matches!(body, InBody::Ack(_) | InBody::Nack(_)) => None,
        None => return Err(Drop::Malformed),
        Some(sender) => {
            if !valid_name(&sender.name, config) {
                return Err(Drop::Malformed);
            }
            let address = match sender.address.as_ref() {
                None => from,
                Some(address) => address_from_wire(Some(address)).ok_or(Drop::Malformed)?,
            };
            Some(Identity::new(sender.name.clone(), sender.generation, address))
        }
    };
    let deltas_ok = deltas(body).iter().all(|delta| validate(delta, config).is_some());
    let digest_ok = digest(body).iter().all(|entry| valid_name(&entry.name, config));
    let membership_ok = envelope
        .membership
        .iter()
        .all(|update| Claim::from_wire(update).is_some_and(|claim| valid_name(&claim.name, config)));
    let probe_ok = match body {
        InBody::Ping(ping) => ping.target.len() <= config.max_name_size,
        InBody::PingReq(request) => request.target.as_ref().is_some_and(|target| {
            valid_name(&target.name, config) && address_from_wire(target.address.as_ref()).is_some()
        }),
        InBody::AggregateTransfer(transfer) => {
            crate::aggregate::valid_transfer(transfer, &config.aggregation)
        }
        _ => true,
    };
    if !deltas_ok || !digest_ok || !membership_ok || !probe_ok {
        return Err(Drop::Malformed);
    }
    Ok(sender)
}

/// The deltas a body carries.
pub(crate) fn deltas(body: &InBody) -> &[InDelta] {
    match body {
        InBody::Syn(m) => &m.deltas,
        InBody::SynAck(m) => &m.deltas,
        InBody::Ack2(m) => &m.deltas,
        InBody::Push(m) => &m.deltas,
        InBody::DeltaReply(m) => &m.deltas,
        InBody::PushAck(_)
        | InBody::Ping(_)
        | InBody::PingReq(_)
        | InBody::Ack(_)
        | InBody::Nack(_)
        | InBody::AggregateTransfer(_)
        | InBody::AggregateAck(_) => &[],
    }
}

/// The digest entries a body carries.
pub(crate) fn digest(body: &InBody) -> &[v1::DigestEntry] {
    match body {
        InBody::Syn(m) => &m.digest,
        InBody::SynAck(m) => &m.digest,
        InBody::Ack2(m) => &m.request,
        InBody::PushAck(m) => &m.known,
        InBody::Push(_)
        | InBody::DeltaReply(_)
        | InBody::Ping(_)
        | InBody::PingReq(_)
        | InBody::Ack(_)
        | InBody::Nack(_)
        | InBody::AggregateTransfer(_)
        | InBody::AggregateAck(_) => &[],
    }
}

/// Builds envelopes from this node and knows their fixed overhead.
#[derive(Debug, Clone)]
pub(crate) struct EnvelopeBuilder {
    cluster: String,
    sender: v1::NodeIdentity,
    base_len: usize,
}

impl EnvelopeBuilder {
    pub(crate) fn new(config: &Config, identity: &Identity) -> Self {
        let mut builder = Self { cluster: config.cluster.clone(), sender: identity.to_wire(), base_len: 0 };
        builder.base_len =
            prost::Message::encoded_len(&builder.envelope(Body::DeltaReply(v1::DeltaReply::default())));
        builder
    }

    /// Encoded size of an envelope whose body is empty.
    pub(crate) fn base_len(&self) -> usize {
        self.base_len
    }

    /// An envelope for `body`: acks and nacks go without a sender, pings without the
    /// sender's address (see the schema).
    pub(crate) fn envelope(&self, body: Body) -> v1::Envelope {
        let sender = match body {
            Body::Ack(_) | Body::Nack(_) => None,
            Body::Ping(_) => Some(v1::NodeIdentity { address: None, ..self.sender.clone() }),
            _ => Some(self.sender.clone()),
        };
        v1::Envelope {
            protocol_version: gossip_proto::PROTOCOL_VERSION,
            cluster: self.cluster.clone(),
            sender,
            body: Some(body),
            membership: Vec::new(),
        }
    }
}

// ----- decoding -----

/// A received envelope: `v1::Envelope`, with the bodies that carry deltas in their received
/// form ([`InDelta`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InEnvelope {
    pub(crate) protocol_version: u32,
    pub(crate) cluster: String,
    pub(crate) sender: Option<v1::NodeIdentity>,
    pub(crate) body: Option<InBody>,
    pub(crate) membership: Vec<v1::MembershipUpdate>,
}

/// A received body (see `v1::envelope::Body`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InBody {
    Syn(InSyn),
    SynAck(InSynAck),
    Ack2(InAck2),
    Push(InPush),
    DeltaReply(InDeltaReply),
    PushAck(v1::PushAck),
    Ping(v1::Ping),
    PingReq(v1::PingReq),
    Ack(v1::Ack),
    Nack(v1::Nack),
    AggregateTransfer(v1::AggregateTransfer),
    AggregateAck(v1::AggregateAck),
}

/// A received `Syn`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InSyn {
    pub(crate) summary: Option<v1::Summary>,
    pub(crate) digest: Vec<v1::DigestEntry>,
    /// The raw `ExchangeMode` (see [`InSyn::mode`]).
    pub(crate) mode: i32,
    pub(crate) deltas: Vec<InDelta>,
}

impl InSyn {
    /// The exchange mode, as prost's getter reads it: an unknown value is the default.
    pub(crate) fn mode(&self) -> v1::ExchangeMode {
        v1::ExchangeMode::try_from(self.mode).unwrap_or_default()
    }
}

/// A received `SynAck`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InSynAck {
    pub(crate) deltas: Vec<InDelta>,
    pub(crate) digest: Vec<v1::DigestEntry>,
}

/// A received `Ack2`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InAck2 {
    pub(crate) deltas: Vec<InDelta>,
    pub(crate) request: Vec<v1::DigestEntry>,
}

/// A received `Push`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InPush {
    pub(crate) deltas: Vec<InDelta>,
    pub(crate) want_ack: bool,
}

/// A received `DeltaReply`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InDeltaReply {
    pub(crate) deltas: Vec<InDelta>,
}

impl From<Body> for InBody {
    fn from(body: Body) -> Self {
        let deltas = |deltas: Vec<v1::NodeDelta>| deltas.into_iter().map(InDelta::from).collect();
        match body {
            Body::Syn(m) => Self::Syn(InSyn {
                summary: m.summary,
                digest: m.digest,
                mode: m.mode,
                deltas: deltas(m.deltas),
            }),
            Body::SynAck(m) => Self::SynAck(InSynAck { deltas: deltas(m.deltas), digest: m.digest }),
            Body::Ack2(m) => Self::Ack2(InAck2 { deltas: deltas(m.deltas), request: m.request }),
            Body::Push(m) => Self::Push(InPush { deltas: deltas(m.deltas), want_ack: m.want_ack }),
            Body::DeltaReply(m) => Self::DeltaReply(InDeltaReply { deltas: deltas(m.deltas) }),
            Body::PushAck(m) => Self::PushAck(m),
            Body::Ping(m) => Self::Ping(m),
            Body::PingReq(m) => Self::PingReq(m),
            Body::Ack(m) => Self::Ack(m),
            Body::Nack(m) => Self::Nack(m),
            Body::AggregateTransfer(m) => Self::AggregateTransfer(m),
            Body::AggregateAck(m) => Self::AggregateAck(m),
        }
    }
}

impl From<v1::Envelope> for InEnvelope {
    fn from(envelope: v1::Envelope) -> Self {
        Self {
            protocol_version: envelope.protocol_version,
            cluster: envelope.cluster,
            sender: envelope.sender,
            body: envelope.body.map(InBody::from),
            membership: envelope.membership,
        }
    }
}

/// Decodes a received datagram.
///
/// The result is exactly what prost's `v1::Envelope::decode` gives for the same bytes
/// (converted to [`InEnvelope`]), and an error exactly when it gives one; only the hot part is
/// done by hand. Every `Entry` of every delta is parsed straight from the buffer when it is
/// laid out plainly (the four known fields, one-byte field keys, well-formed varints): its
/// key and value are then slices of `datagram`, and the entry costs no allocation. Any other
/// entry (unknown fields, odd encodings, a truncated entry) goes to prost's own decoder, which
/// decides. Prost also drives everything around the entries, so limits and errors are its own.
///
/// The slices keep `datagram` alive as long as any stored key or value from it lives: at
/// most one datagram (`max_datagram_size`) per held entry.
pub(crate) fn decode(datagram: Bytes) -> Result<InEnvelope, DecodeError> {
    let mut envelope = EnvelopeIn::default();
    Message::merge(&mut envelope, datagram)?;
    let EnvelopeIn { envelope, with_deltas } = envelope;
    let body = match with_deltas {
        Some(body) => Some(body.into()),
        None => envelope.body.map(InBody::from),
    };
    Ok(InEnvelope {
        protocol_version: envelope.protocol_version,
        cluster: envelope.cluster,
        sender: envelope.sender,
        body,
        membership: envelope.membership,
    })
}

/// An envelope being decoded. The body (a oneof) is either in `envelope` or, for the kinds
/// that carry deltas, in `with_deltas`, never in both.
#[derive(Debug, Default)]
struct EnvelopeIn {
    envelope: v1::Envelope,
    with_deltas: Option<BodyIn>,
}

/// A body with deltas being decoded.
#[derive(Debug)]
enum BodyIn {
    Syn(Partial<v1::Syn>),
    SynAck(Partial<v1::SynAck>),
    Ack2(Partial<v1::Ack2>),
    Push(Partial<v1::Push>),
    DeltaReply(Partial<v1::DeltaReply>),
}

/// A message with a `repeated NodeDelta deltas` field: the deltas go to `deltas`, every other
/// field to `rest`.
#[derive(Debug, Default)]
struct Partial<M> {
    rest: M,
    deltas: Vec<DeltaIn>,
}

/// A body message that carries deltas, and the number of its `repeated NodeDelta` field.
trait WithDeltas: Message + Default {
    const DELTAS: u32;
}

impl WithDeltas for v1::Syn {
    const DELTAS: u32 = 4;
}

impl WithDeltas for v1::SynAck {
    const DELTAS: u32 = 1;
}

impl WithDeltas for v1::Ack2 {
    const DELTAS: u32 = 1;
}

impl WithDeltas for v1::Push {
    const DELTAS: u32 = 1;
}

impl WithDeltas for v1::DeltaReply {
    const DELTAS: u32 = 1;
}

/// A delta being decoded: the message without its entries, and the entries.
#[derive(Debug, Default)]
struct DeltaIn {
    header: v1::NodeDelta,
    entries: Vec<InEntry>,
}

fn received(deltas: Vec<DeltaIn>) -> Vec<InDelta> {
    deltas
        .into_iter()
        .map(|DeltaIn { header, entries }| InDelta { header, entries: entries.into() })
        .collect()
}

impl From<BodyIn> for InBody {
    fn from(body: BodyIn) -> Self {
        match body {
            BodyIn::Syn(m) => Self::Syn(InSyn {
                summary: m.rest.summary,
                digest: m.rest.digest,
                mode: m.rest.mode,
                deltas: received(m.deltas),
            }),
            BodyIn::SynAck(m) => Self::SynAck(InSynAck { deltas: received(m.deltas), digest: m.rest.digest }),
            BodyIn::Ack2(m) => Self::Ack2(InAck2 { deltas: received(m.deltas), request: m.rest.request }),
            BodyIn::Push(m) => Self::Push(InPush { deltas: received(m.deltas), want_ack: m.rest.want_ack }),
            BodyIn::DeltaReply(m) => Self::DeltaReply(InDeltaReply { deltas: received(m.deltas) }),
        }
    }
}

/// Merges a body with deltas into the oneof as prost's generated `Body::merge` does: into
/// the body there if it is of the same kind, else into a new one that replaces it.
fn merge_body<M: WithDeltas>(
    envelope: &mut EnvelopeIn,
    wrap: fn(Partial<M>) -> BodyIn,
    unwrap: fn(&mut BodyIn) -> Option<&mut Partial<M>>,
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    if let Some(existing) = envelope.with_deltas.as_mut().and_then(unwrap) {
        return encoding::message::merge(wire_type, existing, buf, ctx);
    }
    let mut owned = Partial::default();
    encoding::message::merge(wire_type, &mut owned, buf, ctx)?;
    envelope.with_deltas = Some(wrap(owned));
    envelope.envelope.body = None;
    Ok(())
}

impl Message for EnvelopeIn {
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
                BodyIn::Syn,
                |b| if let BodyIn::Syn(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            5 => merge_body(
                self,
                BodyIn::SynAck,
                |b| if let BodyIn::SynAck(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            6 => merge_body(
                self,
                BodyIn::Ack2,
                |b| if let BodyIn::Ack2(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            7 => merge_body(
                self,
                BodyIn::Push,
                |b| if let BodyIn::Push(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            8 => merge_body(
                self,
                BodyIn::DeltaReply,
                |b| if let BodyIn::DeltaReply(m) = b { Some(m) } else { None },
                wire_type,
                buf,
                ctx,
            ),
            // Every other field of the `body` oneof (keep in step with proto/gossip.proto).
            9..=15 => {
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

impl<M: WithDeltas> Message for Partial<M> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.rest.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag != M::DELTAS {
            return self.rest.merge_field(tag, wire_type, buf, ctx);
        }
        // As prost's `merge_repeated`.
        encoding::check_wire_type(WireType::LengthDelimited, wire_type)?;
        let mut delta = DeltaIn::default();
        encoding::message::merge(wire_type, &mut NodeDeltaIn(&mut delta), buf, ctx)?;
        self.deltas.push(delta);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.rest.encoded_len()
    }

    fn clear(&mut self) {
        self.rest.clear();
        self.deltas.clear();
    }
}

/// A delta being decoded: its entries (field 8) take the fast path.
#[derive(Debug)]
struct NodeDeltaIn<'a>(&'a mut DeltaIn);

impl Message for NodeDeltaIn<'_> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.0.header.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let DeltaIn { header, entries } = &mut *self.0;
        if tag != 8 {
            return header.merge_field(tag, wire_type, buf, ctx);
        }
        if wire_type == WireType::LengthDelimited && merge_plain_entry(entries, buf)? {
            return Ok(());
        }
        // Prost decodes (or refuses) what the fast path does not take.
        encoding::message::merge_repeated(wire_type, &mut header.entries, buf, ctx)?;
        entries.extend(header.entries.drain(..).map(InEntry::from));
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.0.header.encoded_len()
    }

    fn clear(&mut self) {
        self.0.header.clear();
        self.0.entries.clear();
    }
}

/// The tag-and-wire-type bytes of `Entry`'s fields and of `NodeDelta.entries`.
const ENTRY_KEY: u8 = 1 << 3 | 2;
const ENTRY_VALUE: u8 = 2 << 3 | 2;
const ENTRY_VERSION: u8 = 3 << 3;
const ENTRY_DELETED: u8 = 4 << 3;
const DELTA_ENTRY: u8 = 8 << 3 | 2;

/// Decodes one length-delimited `Entry` (its length prefix first) from `buf` and pushes it,
/// if it is laid out plainly; returns `false`, having consumed nothing, when it is not, for
/// prost to decode it (or refuse it), and prost's error for a key that is not UTF-8.
fn merge_plain_entry(entries: &mut Vec<InEntry>, buf: &mut impl Buf) -> Result<bool, DecodeError> {
    let chunk = buf.chunk();
    let mut at = 0;
    let Some(len) = varint(chunk, &mut at).and_then(|len| usize::try_from(len).ok()) else {
        return Ok(false);
    };
    let start = at;
    let Some(end) = start.checked_add(len).filter(|&end| end <= chunk.len()) else { return Ok(false) };
    let (mut key, mut value) = (start..start, start..start);
    let (mut version, mut deleted) = (0, false);
    while at < end {
        let field = chunk[at];
        at += 1;
        match field {
            ENTRY_KEY | ENTRY_VALUE => {
                let Some(len) = varint(chunk, &mut at).and_then(|len| usize::try_from(len).ok()) else {
                    return Ok(false);
                };
                let Some(field_end) = at.checked_add(len).filter(|&field_end| field_end <= end) else {
                    return Ok(false);
                };
                if field == ENTRY_KEY {
                    // Prost checks every occurrence of a string, not only the one it keeps
                    // (the last, checked below).
                    if !key.is_empty() && std::str::from_utf8(&chunk[key.clone()]).is_err() {
                        return Ok(false);
                    }
                    key = at..field_end;
                } else {
                    value = at..field_end;
                }
                at = field_end;
            }
            ENTRY_VERSION => match varint(chunk, &mut at) {
                Some(v) => version = v,
                None => return Ok(false),
            },
            ENTRY_DELETED => match varint(chunk, &mut at) {
                Some(v) => deleted = v != 0,
                None => return Ok(false),
            },
            _ => return Ok(false),
        }
    }
    if at != end {
        return Ok(false);
    }
    if entries.is_empty() {
        entries.reserve(following_entries(&chunk[end..]) + 1);
    }
    // Take the two slices in buffer order, then skip to the end of the entry.
    let mut taken = 0;
    let mut take = |range: &std::ops::Range<usize>, buf: &mut _| {
        if range.is_empty() {
            return Bytes::new();
        }
        Buf::advance(buf, range.start - taken);
        taken = range.end;
        Buf::copy_to_bytes(buf, range.len())
    };
    let (key, value) = if key.start <= value.start {
        let key = take(&key, buf);
        (key, take(&value, buf))
    } else {
        let value = take(&value, buf);
        (take(&key, buf), value)
    };
    buf.advance(end - taken);
    let Some(key) = SharedStr::from_utf8(key) else { return Err(not_utf8()) };
    entries.push(InEntry { key, value, version, deleted });
    Ok(true)
}

/// Prost's own error for a string field that is not UTF-8.
fn not_utf8() -> DecodeError {
    loop {
        // `0xff` starts no UTF-8 text: the first round returns.
        let mut text = String::new();
        let field = &mut &[1, 0xff][..];
        if let Err(error) =
            encoding::string::merge(WireType::LengthDelimited, &mut text, field, DecodeContext::default())
        {
            return error;
        }
    }
}

/// How many length-delimited fields tagged as `NodeDelta.entries` follow one another at the
/// start of `bytes` (to size the entries' vector once; a guess that is never too low for a
/// plain delta and never above what `bytes` could hold).
fn following_entries(bytes: &[u8]) -> usize {
    let (mut count, mut at) = (0, 0);
    while bytes.get(at) == Some(&DELTA_ENTRY) {
        at += 1;
        match varint(bytes, &mut at).and_then(|len| usize::try_from(len).ok()) {
            Some(len) if len <= bytes.len() - at => at += len,
            _ => break,
        }
        count += 1;
    }
    count
}

/// A varint as prost reads it (at most 10 bytes, the last one at most 1), from `bytes[*at..]`;
/// advances `at` past it.
#[inline]
fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    if let Some(&byte) = bytes.get(*at).filter(|&&byte| byte < 0x80) {
        *at += 1;
        return Some(u64::from(byte));
    }
    let mut value = 0;
    for i in 0..10 {
        let byte = *bytes.get(*at + i)?;
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *at += i + 1;
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// One field of a hand-laid `Entry`, plain or odd.
    #[derive(Debug, Clone)]
    enum RawField {
        Key(String),
        KeyBytes(Vec<u8>),
        Value(Vec<u8>),
        Version(u64),
        Deleted(u64),
        /// A varint field with `padding` redundant continuation bytes, or a 10-byte varint
        /// whose last byte is `last` (valid only when 0 or 1).
        OddVarint {
            tag: u8,
            value: u64,
            padding: u8,
        },
        TenByteVarint {
            tag: u8,
            last: u8,
        },
        /// A key written as a two-byte varint (`0x8a 0x00` for the key field).
        LongKeyTag(Vec<u8>),
        Unknown {
            tag: u32,
            wire_type: u8,
            payload: Vec<u8>,
        },
        /// A known field with the wrong wire type.
        WrongWireType(u8),
    }

    fn put_varint(out: &mut Vec<u8>, value: u64) {
        encoding::encode_varint(value, out);
    }

    fn put_len(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
        out.push(key);
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    fn lay(fields: &[RawField]) -> Vec<u8> {
        let mut out = Vec::new();
        for field in fields {
            match field {
                RawField::Key(key) => put_len(&mut out, ENTRY_KEY, key.as_bytes()),
                RawField::KeyBytes(key) => put_len(&mut out, ENTRY_KEY, key),
                RawField::Value(value) => put_len(&mut out, ENTRY_VALUE, value),
                RawField::Version(version) => {
                    out.push(ENTRY_VERSION);
                    put_varint(&mut out, *version);
                }
                RawField::Deleted(deleted) => {
                    out.push(ENTRY_DELETED);
                    put_varint(&mut out, *deleted);
                }
                RawField::OddVarint { tag, value, padding } => {
                    out.push(if tag % 2 == 0 { ENTRY_VERSION } else { ENTRY_DELETED });
                    let mut bytes = Vec::new();
                    put_varint(&mut bytes, *value);
                    let last = bytes.pop().unwrap_or(0);
                    out.extend_from_slice(&bytes);
                    let pad = usize::from(*padding).min(10 - bytes.len() - 1);
                    out.push(last | if pad > 0 { 0x80 } else { 0 });
                    for i in 0..pad {
                        out.push(if i + 1 < pad { 0x80 } else { 0 });
                    }
                }
                RawField::TenByteVarint { tag, last } => {
                    out.push(if tag % 2 == 0 { ENTRY_VERSION } else { ENTRY_DELETED });
                    out.extend_from_slice(&[0xff; 9]);
                    out.push(*last);
                }
                RawField::LongKeyTag(key) => {
                    out.extend_from_slice(&[ENTRY_KEY | 0x80, 0]);
                    put_varint(&mut out, key.len() as u64);
                    out.extend_from_slice(key);
                }
                RawField::Unknown { tag, wire_type, payload } => {
                    put_varint(&mut out, u64::from(*tag) << 3 | u64::from(*wire_type % 8));
                    match wire_type % 8 {
                        0 => put_varint(&mut out, payload.len() as u64),
                        1 => out.extend_from_slice(&[7; 8]),
                        2 => {
                            put_varint(&mut out, payload.len() as u64);
                            out.extend_from_slice(payload);
                        }
                        3 => {
                            put_varint(&mut out, u64::from(*tag) << 3 | 4);
                        }
                        5 => out.extend_from_slice(&[7; 4]),
                        _ => out.extend_from_slice(payload),
                    }
                }
                RawField::WrongWireType(tag) => {
                    let tag = 1 + tag % 4;
                    let wire_type = if tag <= 2 { 0 } else { 2 };
                    out.push(tag << 3 | wire_type);
                    out.push(1);
                    out.push(b'x');
                }
            }
        }
        out
    }

    fn raw_field() -> impl Strategy<Value = RawField> {
        prop_oneof![
            4 => "[a-z0-9é]{0,12}".prop_map(RawField::Key),
            1 => vec(any::<u8>(), 0..6).prop_map(RawField::KeyBytes),
            4 => vec(any::<u8>(), 0..24).prop_map(RawField::Value),
            4 => any::<u64>().prop_map(RawField::Version),
            2 => (0..3u64).prop_map(RawField::Deleted),
            1 => (any::<u8>(), any::<u64>(), 0..4u8)
                .prop_map(|(tag, value, padding)| RawField::OddVarint { tag, value, padding }),
            1 => (any::<u8>(), 0..4u8).prop_map(|(tag, last)| RawField::TenByteVarint { tag, last }),
            1 => vec(any::<u8>(), 0..4).prop_map(RawField::LongKeyTag),
            1 => (5..40u32, any::<u8>(), vec(any::<u8>(), 0..4))
                .prop_map(|(tag, wire_type, payload)| RawField::Unknown { tag, wire_type, payload }),
            1 => any::<u8>().prop_map(RawField::WrongWireType),
        ]
    }

    /// Plain entries, mostly, with an odd field now and then.
    fn entry_fields() -> impl Strategy<Value = Vec<RawField>> {
        prop_oneof![
            3 => ("[a-z]{0,10}", vec(any::<u8>(), 0..20), any::<u64>(), any::<bool>()).prop_map(
                |(key, value, version, deleted)| vec![
                    RawField::Key(key),
                    RawField::Value(value),
                    RawField::Version(version),
                    RawField::Deleted(u64::from(deleted)),
                ]
            ),
            1 => vec(raw_field(), 0..6),
        ]
    }

    fn delta_bytes(entries: &[Vec<RawField>], name: &str, trailer: bool) -> Vec<u8> {
        let head = v1::NodeDelta {
            name: name.to_owned(),
            generation: 3,
            address: Some(v1::Address { ip: vec![10, 0, 0, 1].into(), port: 7946 }),
            from_version: 0,
            to_version: 9,
            ..Default::default()
        };
        let mut out = head.encode_to_vec();
        for entry in entries {
            put_len(&mut out, DELTA_ENTRY, &lay(entry));
        }
        if trailer {
            // Fields after the entries, and one more `name` (the last one wins).
            out.push(9 << 3);
            put_varint(&mut out, 4);
            put_len(&mut out, 1 << 3 | 2, b"later");
        }
        out
    }

    /// An envelope whose body (field `body_tag`) carries `deltas` in its deltas field (4 in a
    /// `Syn`, 1 elsewhere); `extra_body` adds other fields of the body (for a `Syn`: a
    /// summary, a digest entry and the mode, around the deltas).
    fn envelope_bytes(body_tag: u8, deltas: &[Vec<u8>], extra_body: bool) -> Vec<u8> {
        let syn = body_tag == 4;
        let mut body = Vec::new();
        if syn && extra_body {
            let summary = v1::Summary { hash: 0x5eed, nodes: 3 };
            put_len(&mut body, 1 << 3 | 2, &summary.encode_to_vec());
        }
        for (i, delta) in deltas.iter().enumerate() {
            put_len(&mut body, if syn { 4 << 3 | 2 } else { 1 << 3 | 2 }, delta);
            if syn && extra_body && i == 0 {
                // Fields of the rest interleaved with the deltas.
                let entry = v1::DigestEntry { name: "n0".to_owned(), max_version: 9, ..Default::default() };
                put_len(&mut body, 2 << 3 | 2, &entry.encode_to_vec());
            }
        }
        if extra_body {
            // A `Syn`'s mode; `want_ack` of a `Push`; a wrong wire type elsewhere.
            body.push(if syn { 3 << 3 } else { 2 << 3 });
            body.push(1);
        }
        let head = v1::Envelope {
            protocol_version: 1,
            cluster: "default".to_owned(),
            sender: Some(v1::NodeIdentity { name: "node-a".to_owned(), generation: 1, address: None }),
            ..Default::default()
        };
        let mut out = head.encode_to_vec();
        put_len(&mut out, body_tag << 3 | 2, &body);
        out
    }

    fn same_as_prost(bytes: &[u8]) -> Result<(), TestCaseError> {
        let ours = decode(Bytes::copy_from_slice(bytes));
        let theirs = v1::Envelope::decode(bytes).map(InEnvelope::from);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs),
            (Err(_), Err(_)) => {}
            (ours, theirs) => prop_assert!(false, "ours {:?}, prost's {:?}", ours.is_ok(), theirs.is_ok()),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn decodes_as_prost_does(
            deltas in vec((vec(entry_fields(), 0..8), any::<bool>()), 0..4),
            body_tag in 4..=15u8,
            extra_body in any::<bool>(),
            second in prop::option::of(4..=15u8),
            cut in any::<prop::sample::Index>(),
            flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        ) {
            let deltas: Vec<Vec<u8>> = deltas
                .iter()
                .enumerate()
                .map(|(i, (entries, trailer))| delta_bytes(entries, &format!("n{i}"), *trailer))
                .collect();
            let mut bytes = envelope_bytes(body_tag, &deltas, extra_body);
            if let Some(second) = second {
                // The same body field twice merges; another kind (of any body field, those
                // without deltas included) replaces.
                let again = envelope_bytes(second, if second == body_tag { &deltas } else { &[] }, false);
                bytes.extend_from_slice(&again);
            }
            same_as_prost(&bytes)?;
            same_as_prost(&bytes[..cut.index(bytes.len() + 1)])?;
            let mut flipped = bytes.clone();
            for (at, byte) in &flips {
                if !flipped.is_empty() {
                    let at = at.index(flipped.len());
                    flipped[at] = *byte;
                }
            }
            same_as_prost(&flipped)?;
        }

        #[test]
        fn decodes_noise_as_prost_does(bytes in vec(any::<u8>(), 0..64)) {
            same_as_prost(&bytes)?;
        }
    }

    #[test]
    fn a_key_that_is_not_utf8_fails_the_datagram_wherever_it_is() {
        let bad = RawField::KeyBytes(vec![b'k', 0xff]);
        let good = RawField::Key("k".to_owned());
        for fields in [vec![bad.clone()], vec![bad.clone(), good.clone()], vec![good, bad]] {
            let bytes = envelope_bytes(8, &[delta_bytes(&[fields], "n0", false)], false);
            assert!(v1::Envelope::decode(&bytes[..]).is_err());
            assert!(decode(Bytes::from(bytes)).is_err());
        }
    }

    #[test]
    fn a_syn_carries_its_deltas_zero_copy_and_a_bad_one_fails_the_check() {
        let entries: Vec<Vec<RawField>> = (0..3)
            .map(|i| {
                vec![
                    RawField::Key(format!("key-{i}")),
                    RawField::Value(vec![i; 8]),
                    RawField::Version(u64::from(i) + 1),
                ]
            })
            .collect();
        let bytes = Bytes::from(envelope_bytes(4, &[delta_bytes(&entries, "n0", false)], true));
        let envelope = decode(bytes.clone()).expect("decodes");
        assert_eq!(envelope, v1::Envelope::decode(&bytes[..]).map(InEnvelope::from).expect("prost decodes"));
        let Some(InBody::Syn(syn)) = &envelope.body else { panic!("a syn") };
        assert_eq!(syn.mode(), v1::ExchangeMode::Pull);
        assert_eq!(syn.summary, Some(v1::Summary { hash: 0x5eed, nodes: 3 }));
        assert_eq!(syn.digest.len(), 1);
        assert_eq!(syn.deltas.len(), 1);
        {
            let entries = syn.deltas[0].entries.borrow();
            assert_eq!(entries.len(), 3);
            let range = bytes.as_ptr_range();
            assert!(entries.iter().all(|entry| range.contains(&entry.value.as_ptr())), "values are slices");
            assert!(entries.iter().all(|entry| range.contains(&entry.key.as_ptr())), "keys are slices");
        }
        let body = envelope.body.as_ref().expect("a body");
        assert_eq!(deltas(body).len(), 1, "the check sees a Syn's deltas");

        let config = Config::lan();
        let from: SocketAddr = "10.0.0.2:7946".parse().expect("an address");
        assert!(check(&envelope, &config, from).is_ok());
        // Entries out of version order: the whole datagram is dropped.
        let mut bad = entries.clone();
        bad.swap(0, 2);
        let bytes =
            envelope_bytes(4, &[delta_bytes(&entries, "n0", false), delta_bytes(&bad, "n1", false)], true);
        let envelope = decode(Bytes::from(bytes)).expect("decodes");
        assert!(matches!(check(&envelope, &config, from), Err(Drop::Malformed)));
    }

    #[test]
    fn plain_entries_take_the_fast_path_and_share_the_buffer() {
        let entries: Vec<Vec<RawField>> = (0..5)
            .map(|i| {
                vec![
                    RawField::Key(format!("key-{i}")),
                    RawField::Value(vec![i; 8]),
                    RawField::Version(u64::from(i) + 1),
                ]
            })
            .collect();
        let bytes = Bytes::from(envelope_bytes(8, &[delta_bytes(&entries, "n0", false)], false));
        let envelope = decode(bytes.clone()).expect("decodes");
        let Some(InBody::DeltaReply(reply)) = envelope.body else { panic!("a delta reply") };
        let entries = reply.deltas[0].entries.borrow();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries.capacity(), 5, "sized once");
        let range = bytes.as_ptr_range();
        assert!(entries.iter().all(|entry| range.contains(&entry.value.as_ptr())), "values are slices");
        assert!(entries.iter().all(|entry| range.contains(&entry.key.as_ptr())), "keys are slices");
    }
}
