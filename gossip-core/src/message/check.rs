//! The drop rules: checking a decoded envelope against the protocol's rules and the config's
//! limits before anything is applied, and parsing it, once, into the typed [`Envelope`] that
//! the handlers consume.

use std::net::SocketAddr;

use bytes::Bytes;
use gossip_proto::v1;

use super::decode::{DecodedBody, DecodedDelta, DecodedEnvelope};
use super::digest_entry::ReceivedDigestEntry;
use crate::config::Config;
use crate::delta::{ReceivedDelta, valid_name};
use crate::identity::{Identity, address_from_wire};
use crate::membership::Claim;

/// Why an envelope was dropped before it touched any state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Another protocol version.
    Version,
    /// Another cluster, named as the envelope names it.
    Cluster(String),
    /// Broke a rule of the protocol or a limit of the config.
    Malformed,
}

/// A received envelope that passed every check: what it says, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// `None` only for acks and nacks, which may be anonymous.
    pub(crate) sender: Option<Sender>,
    /// The piggybacked membership claims.
    pub(crate) membership: Vec<Claim>,
    /// The piggybacked application broadcasts, each checked (origin name, id, sizes).
    pub(crate) broadcasts: Vec<v1::UserBroadcast>,
    pub(crate) body: Body,
}

/// The sender of a received envelope.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    /// Its address is the one it states, else the datagram's source.
    pub(crate) identity: Identity,
    /// Whether it stated an address (a ping's sender does not).
    pub(crate) stated_address: bool,
}

/// A checked body (see `v1::envelope::Body`): deltas and the target of a `PingReq` parsed,
/// every name and limit checked.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Syn(Syn),
    SynAck(SynAck),
    Ack2(Ack2),
    Push(Push),
    DeltaReply(Vec<ReceivedDelta>),
    PushAck(v1::PushAck),
    Ping(v1::Ping),
    PingReq(PingReq),
    Ack(v1::Ack),
    Nack(v1::Nack),
    AggregateTransfer(v1::AggregateTransfer),
    AggregateAck(v1::AggregateAck),
    /// Nothing but what rides piggyback.
    Gossip,
    /// An application message (its payload within `messages.max_payload`).
    UserMessage(v1::UserMessage),
    /// An answer to a query, its payload within `messages.max_payload`.
    QueryResponse(v1::QueryResponse),
    /// A write request with a valid requester (name, address), owner, id, key and value.
    WriteRequest(v1::WriteRequest),
    /// A write outcome with a valid requester (name, address), owner, id and reason.
    WriteOutcome(v1::WriteOutcome),
}

/// A checked `Syn`.
#[derive(Debug, Clone)]
pub(crate) struct Syn {
    pub(crate) summary: Option<v1::Summary>,
    pub(crate) digest: Vec<ReceivedDigestEntry>,
    /// As prost's getter reads it: an unknown value is the default.
    pub(crate) mode: v1::ExchangeMode,
    pub(crate) deltas: Vec<ReceivedDelta>,
    /// The initiator's bucket sums, if any (any count: the receiver ignores a wrong one).
    pub(crate) bucket_sums: Vec<u32>,
}

/// A checked `SynAck`.
#[derive(Debug, Clone)]
pub(crate) struct SynAck {
    pub(crate) deltas: Vec<ReceivedDelta>,
    pub(crate) digest: Vec<ReceivedDigestEntry>,
}

/// A checked `Ack2`.
#[derive(Debug, Clone)]
pub(crate) struct Ack2 {
    pub(crate) deltas: Vec<ReceivedDelta>,
    pub(crate) request: Vec<ReceivedDigestEntry>,
}

/// A checked `Push`.
#[derive(Debug, Clone)]
pub(crate) struct Push {
    pub(crate) deltas: Vec<ReceivedDelta>,
    pub(crate) want_ack: bool,
    /// The sender's digest summary, when it sent one.
    pub(crate) summary: Option<crate::summary::DigestSummary>,
    /// The sender's data summary, when it sent one.
    pub(crate) data_summary: Option<crate::summary::DigestSummary>,
}

/// A checked `PingReq`.
#[derive(Debug, Clone)]
pub(crate) struct PingReq {
    pub(crate) sequence: u32,
    /// The member to probe: its name and address.
    pub(crate) target: String,
    pub(crate) address: SocketAddr,
    pub(crate) nack: bool,
}

/// Checks the whole envelope (sender, every delta, every digest entry, every membership
/// claim) so that a bad datagram is dropped whole and leaves the state unchanged, and parses
/// it on the way. The sender's address defaults to the datagram's source `from`.
///
/// The rules apply in this order: version, cluster, then everything else (all `Malformed`).
pub(crate) fn check(
    envelope: DecodedEnvelope,
    config: &Config,
    from: SocketAddr,
    datagram: &Bytes,
) -> Result<Envelope, DropReason> {
    if gossip_proto::version_from_wire(envelope.protocol_version) != gossip_proto::PROTOCOL_VERSION {
        return Err(DropReason::Version);
    }
    // An empty cluster is the default one, spelled out or not.
    let cluster =
        if envelope.cluster.is_empty() { crate::config::DEFAULT_CLUSTER } else { envelope.cluster.as_str() };
    if cluster != config.cluster {
        return Err(DropReason::Cluster(cluster.to_owned()));
    }
    let body = envelope.body.ok_or(DropReason::Malformed)?;
    let sender = match envelope.sender {
        None if matches!(body, DecodedBody::Ack(_) | DecodedBody::Nack(_)) => None,
        None => return Err(DropReason::Malformed),
        Some(sender) => Some(check_sender(sender, config, from).ok_or(DropReason::Malformed)?),
    };
    let body = check_body(body, config, datagram).ok_or(DropReason::Malformed)?;
    let membership = envelope
        .membership
        .into_iter()
        .map(|update| Claim::from_wire(update).filter(|claim| valid_name(&claim.name, config)))
        .collect::<Option<Vec<Claim>>>()
        .ok_or(DropReason::Malformed)?;
    let broadcasts = envelope.broadcasts;
    if !broadcasts.iter().all(|broadcast| valid_broadcast(broadcast, config)) {
        return Err(DropReason::Malformed);
    }
    Ok(Envelope { sender, membership, broadcasts, body })
}

fn check_sender(sender: v1::NodeIdentity, config: &Config, from: SocketAddr) -> Option<Sender> {
    if !valid_name(&sender.name, config) {
        return None;
    }
    let stated_address = sender.address.is_some();
    let address = match sender.address.as_ref() {
        None => from,
        Some(address) => address_from_wire(Some(address))?,
    };
    Some(Sender { identity: Identity::new(sender.name, sender.generation, address), stated_address })
}

/// Whether every name of a digest is valid (received or prost's entries alike).
fn valid_names<'a>(mut names: impl Iterator<Item = &'a str>, config: &Config) -> bool {
    names.all(|name| valid_name(name, config))
}

fn check_body(body: DecodedBody, config: &Config, datagram: &Bytes) -> Option<Body> {
    let deltas = |deltas: Vec<DecodedDelta>| {
        deltas
            .into_iter()
            .map(|delta| ReceivedDelta::check(delta, config, datagram))
            .collect::<Option<Vec<_>>>()
    };
    Some(match body {
        DecodedBody::Syn(m) => {
            let mode = m.rest.mode();
            let v1::Syn { summary, bucket_sums, .. } = m.rest;
            if !valid_names(m.digest.iter().map(|entry| entry.name.as_str()), config) {
                return None;
            }
            Body::Syn(Syn { summary, digest: m.digest, mode, deltas: deltas(m.deltas)?, bucket_sums })
        }
        DecodedBody::SynAck(m) => {
            if !valid_names(m.digest.iter().map(|entry| entry.name.as_str()), config) {
                return None;
            }
            Body::SynAck(SynAck { deltas: deltas(m.deltas)?, digest: m.digest })
        }
        DecodedBody::Ack2(m) => {
            if !valid_names(m.digest.iter().map(|entry| entry.name.as_str()), config) {
                return None;
            }
            Body::Ack2(Ack2 { deltas: deltas(m.deltas)?, request: m.digest })
        }
        DecodedBody::Push(m) => Body::Push(Push {
            deltas: deltas(m.deltas)?,
            want_ack: m.rest.want_ack,
            summary: crate::summary::DigestSummary::from_wire(m.rest.summary.as_ref()),
            data_summary: crate::summary::DigestSummary::from_wire(m.rest.data_summary.as_ref()),
        }),
        DecodedBody::DeltaReply(m) => Body::DeltaReply(deltas(m.deltas)?),
        DecodedBody::PushAck(ack) => {
            if !valid_names(ack.known.iter().map(|entry| entry.name.as_str()), config) {
                return None;
            }
            Body::PushAck(ack)
        }
        DecodedBody::Ping(ping) => Body::Ping(ping),
        DecodedBody::PingReq(request) => {
            let target = request.target?;
            if !valid_name(&target.name, config) {
                return None;
            }
            let address = address_from_wire(target.address.as_ref())?;
            Body::PingReq(PingReq {
                sequence: request.sequence,
                target: target.name,
                address,
                nack: request.nack,
            })
        }
        DecodedBody::Ack(ack) => Body::Ack(ack),
        DecodedBody::Nack(nack) => Body::Nack(nack),
        DecodedBody::AggregateTransfer(transfer) => {
            if !crate::aggregate::valid_transfer(&transfer, &config.aggregation) {
                return None;
            }
            Body::AggregateTransfer(transfer)
        }
        DecodedBody::AggregateAck(ack) => Body::AggregateAck(ack),
        DecodedBody::Gossip => Body::Gossip,
        DecodedBody::UserMessage(message) => {
            if message.payload.len() > config.messages.max_payload {
                return None;
            }
            Body::UserMessage(message)
        }
        DecodedBody::QueryResponse(response) => {
            let named = |name: &str| name.is_empty() || valid_name(name, config);
            let valid = response.payload.len() <= config.messages.max_payload
                && response.id != 0
                && named(&response.relay_to)
                && named(&response.responder)
                && (response.relay_to.is_empty() || response.responder.is_empty());
            if !valid {
                return None;
            }
            Body::QueryResponse(response)
        }
        DecodedBody::WriteRequest(request) => {
            let valid = valid_party(request.requester.as_ref(), config)
                && valid_name(&request.owner, config)
                && request.id != 0
                && request.key.len() <= config.max_key_size
                && request.value.len() <= config.max_value_size;
            if !valid {
                return None;
            }
            Body::WriteRequest(request)
        }
        DecodedBody::WriteOutcome(outcome) => {
            let valid = valid_party(outcome.requester.as_ref(), config)
                && valid_name(&outcome.owner, config)
                && outcome.id != 0
                && outcome.reason.len() <= config.messages.max_topic;
            if !valid {
                return None;
            }
            Body::WriteOutcome(outcome)
        }
    })
}

/// The requester of a write request or outcome: a valid name and an address.
fn valid_party(party: Option<&v1::NodeIdentity>, config: &Config) -> bool {
    party.is_some_and(|party| {
        valid_name(&party.name, config) && address_from_wire(party.address.as_ref()).is_some()
    })
}

/// An application broadcast within the rules: a valid origin name, an id from 1, a topic and
/// a payload within `messages`' limits.
fn valid_broadcast(broadcast: &v1::UserBroadcast, config: &Config) -> bool {
    valid_name(&broadcast.origin, config)
        && broadcast.id != 0
        && broadcast.topic.len() <= config.messages.max_topic
        && broadcast.payload.len() <= config.messages.max_payload
        && broadcast.query.as_ref().is_none_or(|query| valid_query(query, config))
}

/// A query header within the rules: an address to answer to, a timeout, at most 64 valid
/// names, a key and value within the table's limits.
fn valid_query(query: &v1::Query, config: &Config) -> bool {
    address_from_wire(query.reply_to.as_ref()).is_some()
        && query.timeout_ms != 0
        && query.names.len() <= crate::queries::MAX_FILTER_NAMES
        && query.names.iter().all(|name| valid_name(name, config))
        && query.key.len() <= config.max_key_size
        && query.value.as_ref().is_none_or(|value| value.len() <= config.max_value_size)
}
