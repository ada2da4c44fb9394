//! Trust at the node's edge: opening what arrives and sealing what leaves under the keyring
//! (see [`crate::seal`]), dropping replays (see [`crate::replay`]), and the keyring commands.

use std::time::Instant;

use bytes::Bytes;
use gossip_proto::v1;
use prost::Message;
use rand_core::Rng;

use crate::config::Config;
use crate::identity::Identity;
use crate::keyring::{EncryptionMode, Keyring};
use crate::metrics::Metrics;
use crate::replay::ReplayGuard;
use crate::seal::{HEADER_LEN, OpenError, SEAL_OVERHEAD, Sealer, is_sealed};

mod run;

/// The keyring, the mode, this node's sealing state and the replay windows.
#[derive(Debug)]
pub(crate) struct Security {
    keyring: Keyring,
    mode: EncryptionMode,
    sealer: Sealer,
    replay: ReplayGuard,
}

/// Why a datagram was dropped before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnsealRefusal {
    /// Sealed, but encryption is off here.
    SealedWhileOff,
    /// Plain, but this node requires sealed datagrams.
    PlainRequired,
    /// Could not be opened.
    Open(OpenError),
    /// Opened, but its (session, counter) was seen before or is too old.
    Replay,
}

impl UnsealRefusal {
    /// Counts the refusal.
    pub(crate) fn count(self, metrics: &mut Metrics) {
        match self {
            Self::SealedWhileOff => metrics.sealed_refused += 1,
            Self::PlainRequired => metrics.plain_refused += 1,
            Self::Open(OpenError::UnknownKey) => metrics.unknown_key_ids += 1,
            Self::Open(OpenError::TooShort | OpenError::Unauthentic) => metrics.unauthentic_datagrams += 1,
            Self::Replay => metrics.replays += 1,
        }
    }
}

impl Security {
    pub(crate) fn new(config: &Config, identity: &Identity, keyring: Keyring) -> Self {
        Self {
            keyring,
            mode: config.encryption,
            sealer: Sealer::new(&config.cluster, &identity.name, identity.generation),
            replay: ReplayGuard::new(config.max_nodes),
        }
    }

    /// Bytes that framing adds to every datagram sent now.
    pub(crate) fn overhead(&self) -> usize {
        if self.mode.seals() { SEAL_OVERHEAD } else { 0 }
    }

    /// The encoded envelope of a received datagram: the datagram itself when plain, its
    /// opened contents when sealed.
    pub(crate) fn unseal(&mut self, now: Instant, datagram: &[u8]) -> Result<Bytes, UnsealRefusal> {
        if !is_sealed(datagram) {
            return if self.mode.accepts_plain() {
                Ok(Bytes::copy_from_slice(datagram))
            } else {
                Err(UnsealRefusal::PlainRequired)
            };
        }
        if !self.mode.opens() {
            return Err(UnsealRefusal::SealedWhileOff);
        }
        let opened = self.sealer.open(&self.keyring, datagram).map_err(UnsealRefusal::Open)?;
        if !self.replay.accept(opened.session, u64::from(opened.counter), now) {
            return Err(UnsealRefusal::Replay);
        }
        Ok(Bytes::from(opened.plaintext))
    }

    /// Encodes `envelope`, whose encoded length the caller counted as `encoded_len` (the
    /// envelope is not walked again for it), sealed under the primary key when the mode says
    /// so.
    pub(crate) fn frame<R: Rng>(
        &mut self,
        rng: &mut R,
        envelope: &v1::Envelope,
        encoded_len: usize,
    ) -> Vec<u8> {
        debug_assert_eq!(encoded_len, envelope.encoded_len(), "the length counted is the encoded one");
        let key = if self.mode.seals() { self.keyring.primary() } else { None };
        let (header, overhead) = if key.is_some() { (HEADER_LEN, SEAL_OVERHEAD) } else { (0, 0) };
        let mut buffer = Vec::with_capacity(encoded_len + overhead);
        buffer.resize(header, 0);
        envelope.encode_raw(&mut buffer);
        if let Some(key) = key {
            self.sealer.seal(rng, key, &mut buffer);
        }
        buffer
    }

    /// After a new generation of this node (a self-heal).
    pub(crate) fn set_generation(&mut self, generation: u64) {
        self.sealer.set_generation(generation);
    }

    /// Sessions whose replay windows are kept.
    pub(crate) fn sessions(&self) -> usize {
        self.replay.len()
    }
}
