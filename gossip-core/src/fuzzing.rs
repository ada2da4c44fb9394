//! Hooks for the fuzz targets (feature `fuzzing`). Not part of the API: hidden from the docs,
//! and free to change with the internals they expose.

use bytes::Bytes;
use gossip_proto::v1;
use prost::Message;

use rand_core::Rng;

use crate::keyring::{Keyring, SecretKey};
use crate::message::{self, DecodedEnvelope};
use crate::seal::{HEADER_LEN, Sealer};

/// The key of the fuzz targets' sealed mode.
pub const FUZZ_KEY: [u8; 32] = [0x42; 32];

/// The fuzz targets' keyring: [`FUZZ_KEY`] alone.
pub fn fuzz_keyring() -> Keyring {
    Keyring::new(SecretKey::from_array(FUZZ_KEY))
}

/// Seals encoded envelopes as a peer holding [`FUZZ_KEY`] would, so that fuzz inputs reach
/// the decoder behind authentication.
#[derive(Debug)]
pub struct FuzzSealer {
    sealer: Sealer,
    keyring: Keyring,
}

impl FuzzSealer {
    /// A peer named `name` of `cluster`.
    pub fn new(cluster: &str, name: &str) -> Self {
        Self { sealer: Sealer::new(cluster, name, 1), keyring: fuzz_keyring() }
    }

    /// `encoded`, sealed (a new counter each time).
    pub fn seal<R: Rng>(&mut self, rng: &mut R, encoded: &[u8]) -> Vec<u8> {
        let mut buffer = vec![0; HEADER_LEN];
        buffer.extend_from_slice(encoded);
        if let Some(key) = self.keyring.primary() {
            self.sealer.seal(rng, key, &mut buffer);
        }
        buffer
    }
}

/// Decodes `datagram` with both decoders, prost's generated `v1::Envelope::decode` and the
/// node's own zero-copy decoder, and compares the results.
///
/// Returns prost's envelope when both decode it to the same value, `Ok(None)` when both
/// refuse it, and a description of the difference when they disagree (a bug in the
/// zero-copy decoder, whose contract is to give exactly what prost gives).
pub fn decode_both(datagram: &[u8]) -> Result<Option<v1::Envelope>, String> {
    let theirs = v1::Envelope::decode(datagram);
    let ours = message::decode(&Bytes::copy_from_slice(datagram));
    match (theirs, ours) {
        (Ok(theirs), Ok(ours)) => {
            // Compared by the keys and values of their entries, wherever they lie.
            let converted = DecodedEnvelope::from(theirs.clone()).copied(&[]);
            let ours = ours.copied(datagram);
            // Aggregation shares carry floats: a NaN is not equal to itself, but prints the
            // same, as every other value prints exactly.
            if converted == ours || format!("{converted:?}") == format!("{ours:?}") {
                Ok(Some(theirs))
            } else {
                Err(format!("the decoders disagree:\n  prost: {converted:?}\n  ours:  {ours:?}"))
            }
        }
        (Err(_), Err(_)) => Ok(None),
        (Ok(theirs), Err(error)) => Err(format!("only prost decodes it ({theirs:?}); ours says {error}")),
        (Err(error), Ok(ours)) => Err(format!("only ours decodes it ({ours:?}); prost says {error}")),
    }
}
