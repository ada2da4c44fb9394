//! Checking received envelopes against the protocol's rules before anything is applied, and
//! building the envelopes this node sends.

use std::net::SocketAddr;

use gossip_proto::v1::{self, envelope::Body};

use crate::config::Config;
use crate::delta::{valid_name, validate};
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
    envelope: &v1::Envelope,
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
        None if matches!(body, Body::Ack(_) | Body::Nack(_)) => None,
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
        Body::Ping(ping) => ping.target.len() <= config.max_name_size,
        Body::PingReq(request) => request.target.as_ref().is_some_and(|target| {
            valid_name(&target.name, config) && address_from_wire(target.address.as_ref()).is_some()
        }),
        _ => true,
    };
    if !deltas_ok || !digest_ok || !membership_ok || !probe_ok {
        return Err(Drop::Malformed);
    }
    Ok(sender)
}

/// The deltas a body carries.
pub(crate) fn deltas(body: &Body) -> &[v1::NodeDelta] {
    match body {
        Body::SynAck(m) => &m.deltas,
        Body::Ack2(m) => &m.deltas,
        Body::Push(m) => &m.deltas,
        Body::DeltaReply(m) => &m.deltas,
        Body::Syn(_) | Body::PushAck(_) | Body::Ping(_) | Body::PingReq(_) | Body::Ack(_) | Body::Nack(_) => {
            &[]
        }
    }
}

/// The digest entries a body carries.
pub(crate) fn digest(body: &Body) -> &[v1::DigestEntry] {
    match body {
        Body::Syn(m) => &m.digest,
        Body::SynAck(m) => &m.digest,
        Body::Ack2(m) => &m.request,
        Body::PushAck(m) => &m.known,
        Body::Push(_)
        | Body::DeltaReply(_)
        | Body::Ping(_)
        | Body::PingReq(_)
        | Body::Ack(_)
        | Body::Nack(_) => &[],
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
