//! Node identity: a stable name, the generation it runs under, and its address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use gossip_proto::v1;

/// Who a node is: a stable `name`, the `generation` it runs under, and where it listens.
///
/// The generation must grow on every restart: use [`generation_at`] (the start time in Unix
/// milliseconds, which every node of a cluster must agree on as a unit). A higher generation
/// replaces all state of the lower one everywhere in the cluster.
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

/// The generation of a process started at `start`: its Unix time in milliseconds, the unit
/// every node of a cluster must use (a node refuses an unknown peer whose generation is more
/// than `Config::max_generation_jump` above its own, so nodes counting in seconds and nodes
/// counting in milliseconds refuse each other). The core reads no clock: pass
/// `SystemTime::now()` at start-up. A time before 1970 gives 1.
pub fn generation_at(start: std::time::SystemTime) -> u64 {
    start
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX).max(1))
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
    fn generations_are_unix_milliseconds() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_404_759_036);
        assert_eq!(generation_at(at), 1_796_404_759_036);
        assert_eq!(generation_at(std::time::UNIX_EPOCH - std::time::Duration::from_secs(1)), 1);
    }

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
