//! Node identity: a stable name, the generation it runs under, and its address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use gossip_proto::v1;

/// Who a node is: a stable `name`, the `generation` it runs under, and where it listens.
///
/// The generation must grow on every restart (a start time in seconds or milliseconds is
/// the usual choice, as Cassandra does): a higher generation replaces all state of the
/// lower one everywhere in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Stable name, unique in the cluster.
    pub name: String,
    /// Grows on every restart of the node.
    pub generation: u64,
    /// The address other nodes send datagrams to.
    pub address: SocketAddr,
}

impl Identity {
    /// An identity from its parts.
    pub fn new(name: impl Into<String>, generation: u64, address: SocketAddr) -> Self {
        Self { name: name.into(), generation, address }
    }

    pub(crate) fn to_wire(&self) -> v1::NodeIdentity {
        v1::NodeIdentity {
            name: self.name.clone(),
            generation: self.generation,
            address: Some(address_to_wire(self.address)),
        }
    }
}

/// Encodes a socket address for the wire.
pub(crate) fn address_to_wire(address: SocketAddr) -> v1::Address {
    let ip = match address.ip() {
        IpAddr::V4(ip) => Bytes::copy_from_slice(&ip.octets()),
        IpAddr::V6(ip) => Bytes::copy_from_slice(&ip.octets()),
    };
    v1::Address { ip, port: u32::from(address.port()) }
}

/// Decodes a socket address from the wire; `None` when it is missing or malformed.
pub(crate) fn address_from_wire(address: Option<&v1::Address>) -> Option<SocketAddr> {
    let address = address?;
    let port = u16::try_from(address.port).ok()?;
    let ip = match address.ip.len() {
        4 => {
            let octets: [u8; 4] = address.ip[..].try_into().ok()?;
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        16 => {
            let octets: [u8; 16] = address.ip[..].try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_bad_ones_are_refused() {
        for text in ["10.1.2.3:7946", "[2001:db8::1]:65535", "0.0.0.0:0"] {
            let address: SocketAddr = text.parse().unwrap();
            assert_eq!(address_from_wire(Some(&address_to_wire(address))), Some(address));
        }
        let bad_ip = v1::Address { ip: Bytes::from_static(&[1, 2, 3]), port: 1 };
        assert_eq!(address_from_wire(Some(&bad_ip)), None);
        let bad_port = v1::Address { ip: Bytes::from_static(&[1, 2, 3, 4]), port: 70_000 };
        assert_eq!(address_from_wire(Some(&bad_port)), None);
        assert_eq!(address_from_wire(None), None);
    }
}
