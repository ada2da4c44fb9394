//! Building the envelopes this node sends.

use gossip_proto::v1::{self, envelope::Body};

use crate::config::Config;
use crate::identity::Identity;

/// Builds envelopes from this node and knows their fixed overhead.
#[derive(Debug, Clone)]
pub(crate) struct EnvelopeBuilder {
    cluster: String,
    sender: v1::NodeIdentity,
    base_len: usize,
}

impl EnvelopeBuilder {
    /// A builder for envelopes from `identity`, in the cluster of `config`.
    pub(crate) fn new(config: &Config, identity: &Identity) -> Self {
        // The default cluster goes as the empty string: nine bytes off every datagram.
        let cluster = if config.cluster == crate::config::DEFAULT_CLUSTER {
            String::new()
        } else {
            config.cluster.clone()
        };
        let mut builder = Self { cluster, sender: identity.to_wire(), base_len: 0 };
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
            protocol_version: gossip_proto::version_on_wire(gossip_proto::PROTOCOL_VERSION),
            cluster: self.cluster.clone(),
            sender,
            body: Some(body),
            membership: Vec::new(),
            broadcasts: Vec::new(),
        }
    }
}
