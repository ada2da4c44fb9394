//! Trust at the node's edge: opening what arrives and sealing what leaves under the keyring
//! (see [`crate::seal`]), dropping replays (see [`crate::replay`]), and the keyring commands.

use std::time::Instant;

use bytes::Bytes;
use gossip_proto::v1;
use prost::Message;
use rand_core::Rng;

use crate::config::Config;
use crate::identity::Identity;
use crate::keyring::{
    EncryptionMode, KEYRING_KEY, KeyFingerprint, KeyStatus, Keyring, KeyringError, KeyringStatus, SecretKey,
    parse_published,
};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::replay::ReplayGuard;
use crate::seal::{HEADER_LEN, OpenError, SEAL_OVERHEAD, Sealer, is_sealed};

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

    /// Encodes `envelope`, sealed under the primary key when the mode says so.
    pub(crate) fn frame<R: Rng>(&mut self, rng: &mut R, envelope: &v1::Envelope) -> Vec<u8> {
        let key = if self.mode.seals() { self.keyring.primary() } else { None };
        let Some(key) = key else { return envelope.encode_to_vec() };
        let mut buffer = Vec::with_capacity(envelope.encoded_len() + SEAL_OVERHEAD);
        buffer.resize(HEADER_LEN, 0);
        envelope.encode_raw(&mut buffer);
        self.sealer.seal(rng, key, &mut buffer);
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

/// The keyring commands and getters.
impl<R: Rng> Node<R> {
    /// Installs `key` in the keyring (not as the primary, unless the ring was empty); it opens
    /// datagrams from now on. Installing a key already there changes nothing.
    pub fn install_key(&mut self, key: &SecretKey) -> Result<KeyFingerprint, KeyringError> {
        let fingerprint = self.security.keyring.install(key)?;
        self.publish_keyring();
        Ok(fingerprint)
    }

    /// Makes an installed key the primary: every datagram is sealed with it from now on.
    pub fn use_key(&mut self, fingerprint: KeyFingerprint) -> Result<(), KeyringError> {
        self.security.keyring.use_key(fingerprint)?;
        self.publish_keyring();
        Ok(())
    }

    /// Removes a key that is not the primary: datagrams sealed with it are dropped from now
    /// on (counted in [`Metrics::unknown_key_ids`]).
    pub fn remove_key(&mut self, fingerprint: KeyFingerprint) -> Result<(), KeyringError> {
        self.security.keyring.remove(fingerprint)?;
        self.publish_keyring();
        Ok(())
    }

    /// The installed keys' fingerprints, the primary first.
    pub fn keys(&self) -> Vec<KeyFingerprint> {
        self.security.keyring.fingerprints().collect()
    }

    /// Moves to another step of turning encryption on or off (see [`EncryptionMode`]).
    /// Any mode but `Off` needs a key.
    pub fn set_encryption(&mut self, mode: EncryptionMode) -> Result<(), KeyringError> {
        if mode != EncryptionMode::Off && self.security.keyring.is_empty() {
            return Err(KeyringError::NoPrimaryKey { mode });
        }
        self.security.mode = mode;
        self.config.encryption = mode;
        Ok(())
    }

    /// The encryption mode in force.
    pub fn encryption(&self) -> EncryptionMode {
        self.security.mode
    }

    /// Which keys the live members hold and seal with, as they publish it (see
    /// [`crate::keyring`] for the rotation procedure it serves).
    pub fn keyring_status(&self) -> KeyringStatus {
        let mut keys: Vec<KeyStatus> = Vec::new();
        let primary = self.security.keyring.fingerprints().next();
        for fingerprint in self.security.keyring.fingerprints() {
            keys.push(KeyStatus {
                fingerprint,
                installed_here: true,
                primary_here: Some(fingerprint) == primary,
                holders: 0,
                primary_for: 0,
            });
        }
        let (mut live_members, mut unknown) = (0, 0);
        for (_, replica) in self.table.iter().filter(|(_, replica)| replica.state.is_live()) {
            live_members += 1;
            let Some((entry, _)) = replica.get(KEYRING_KEY) else {
                unknown += 1;
                continue;
            };
            for (position, fingerprint) in
                parse_published(&entry.value).enumerate().take(crate::keyring::MAX_KEYS)
            {
                let status = match keys.iter_mut().position(|k| k.fingerprint == fingerprint) {
                    Some(at) => &mut keys[at],
                    None => {
                        keys.push(KeyStatus {
                            fingerprint,
                            installed_here: false,
                            primary_here: false,
                            holders: 0,
                            primary_for: 0,
                        });
                        let last = keys.len() - 1;
                        &mut keys[last]
                    }
                };
                status.holders += 1;
                status.primary_for += usize::from(position == 0);
            }
        }
        KeyringStatus { live_members, unknown, keys }
    }

    /// Publishes the ring's fingerprints in this node's own table when they changed.
    pub(crate) fn publish_keyring(&mut self) {
        let published = self.security.keyring.published();
        let current = self.table.local().get(KEYRING_KEY).map(|(entry, _)| entry.value.clone());
        if published.is_empty() {
            if current.is_some() {
                let _ = self.write(KEYRING_KEY.to_owned(), None);
            }
        } else if current.as_deref() != Some(published.as_bytes()) {
            // The fingerprints of at most MAX_KEYS keys fit any valid config's value limit.
            let _ = self.write(KEYRING_KEY.to_owned(), Some(Bytes::from(published)));
        }
    }
}
