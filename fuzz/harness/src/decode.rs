//! The `decode` target: arbitrary bytes into both envelope decoders.
//!
//! - decoding never panics, with prost's generated decoder or with the node's zero-copy one;
//! - the two decoders agree: both refuse the bytes, or both decode them to the same value
//!   (the zero-copy decoder's contract, see `gossip_core::fuzzing::decode_both`);
//! - an envelope that decodes re-encodes to exactly `encoded_len` bytes, which decode (with
//!   both decoders again) to the same envelope, and encode to the same bytes (the encoding
//!   of a decoded envelope is a fixed point).

use gossip_core::fuzzing::decode_both;
use gossip_core::proto::v1;
use prost::Message;

/// Runs the `decode` target on one input; panics on a violation.
pub fn decode(data: &[u8]) {
    let envelope = match decode_both(data) {
        Ok(Some(envelope)) => envelope,
        Ok(None) => return,
        Err(difference) => panic!("decoding the input: {difference}"),
    };
    let encoded = envelope.encode_to_vec();
    assert_eq!(encoded.len(), envelope.encoded_len(), "encoded_len is not the encoded length");
    let again = match decode_both(&encoded) {
        Ok(Some(again)) => again,
        Ok(None) => panic!("the re-encoded envelope does not decode: {envelope:?}"),
        Err(difference) => panic!("decoding the re-encoded envelope: {difference}"),
    };
    assert!(same(&again, &envelope), "the re-encoded envelope decodes to another value: {again:?}");
    assert_eq!(again.encode_to_vec(), encoded, "encoding is not a fixed point");
    // The plain prost path, as an adapter or another tool would use it.
    let plain = v1::Envelope::decode(&encoded[..]).expect("decoded just above");
    assert!(same(&plain, &envelope), "prost decodes another value: {plain:?}");
}

/// Equal, counting a NaN equal to a NaN and -0.0 equal to 0.0 (aggregation shares carry
/// floats; a proto3 double field of -0.0 on the wire is re-encoded as absent, so it decodes
/// again as 0.0). Every other value prints exactly, so equal prints mean equal values.
fn same(a: &v1::Envelope, b: &v1::Envelope) -> bool {
    a == b || format!("{:?}", unsigned_zeros(a)) == format!("{:?}", unsigned_zeros(b))
}

/// `envelope` with every float that is zero made +0.0.
fn unsigned_zeros(envelope: &v1::Envelope) -> v1::Envelope {
    let mut envelope = envelope.clone();
    if let Some(v1::envelope::Body::AggregateTransfer(transfer)) = envelope.body.as_mut() {
        for share in &mut transfer.shares {
            for value in [
                &mut share.average_value,
                &mut share.average_weight,
                &mut share.sum_value,
                &mut share.count_value,
                &mut share.total_weight,
            ] {
                *value = unsigned_zero(*value);
            }
            share.min = share.min.map(unsigned_zero);
            share.max = share.max.map(unsigned_zero);
        }
    }
    envelope
}

/// +0.0 for either zero, `value` otherwise.
fn unsigned_zero(value: f64) -> f64 {
    if value == 0.0 { 0.0 } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_and_a_real_envelope_pass() {
        decode(&[]);
        decode(&[0xff; 16]);
        let envelope = v1::Envelope {
            protocol_version: 1,
            cluster: "default".to_owned(),
            body: Some(v1::envelope::Body::Ack(v1::Ack { sequence: 3, ..Default::default() })),
            ..Default::default()
        };
        decode(&envelope.encode_to_vec());
    }

    /// Found by the fuzzer (30-minute run, December 2026): an aggregation share with a
    /// `total_weight` of -0.0 on the wire and a NaN in another share. Re-encoded, the -0.0 is
    /// left out (proto3's default) and decodes as 0.0: the same number, yet the NaN made the
    /// plain comparison fail and the printed one told the zeros apart.
    #[test]
    fn a_negative_zero_beside_a_nan_is_the_same_envelope() {
        let input = [
            0xfd, 0x3a, 0x3a, 0xec, 0x08, 0x01, 0x12, 0x07, b'd', b'e', b'f', b'a', b'u', b'l', b't', 0x1a,
            0x11, 0x0a, 0x02, b'n', b'6', 0x10, 0x05, 0x1a, 0x09, 0x0a, 0x04, 0x2a, 0x00, 0x04, 0x04, 0x10,
            0x8a, 0x3e, 0x72, 0x32, 0x10, 0x01, 0x1a, 0x16, 0x0a, 0x02, b'a', b'0', 0x31, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x80, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x40, 0x1a, 0x16,
            0x0a, 0x02, b'a', b'1', 0x39, 0x00, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x08, 0xc0, 0x31, 0x00, 0x00,
            0x00, 0x00, 0xfe, 0xff, 0xff, 0xff,
        ];
        decode(&input);
    }
}
