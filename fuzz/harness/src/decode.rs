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

/// Equal, counting a NaN equal to a NaN (aggregation shares carry floats; every other value
/// prints exactly, so equal prints mean equal values).
fn same(a: &v1::Envelope, b: &v1::Envelope) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
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
            body: Some(v1::envelope::Body::Ack(v1::Ack { sequence: 3 })),
            ..Default::default()
        };
        decode(&envelope.encode_to_vec());
    }
}
