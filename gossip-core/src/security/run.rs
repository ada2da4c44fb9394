//! How the node's keyring and encryption mode are changed and published, and what the
//! commands of the encryption API do.

use bytes::Bytes;
use rand_core::Rng;

use crate::keyring::{
    EncryptionMode, KEYRING_KEY, KeyFingerprint, KeyStatus, KeyringError, KeyringStatus, SecretKey,
    parse_published,
};
use crate::node::Node;

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
    /// on (counted in [`Metrics::unknown_key_ids`](crate::Metrics::unknown_key_ids)).
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
                parse_published(entry.value()).enumerate().take(crate::keyring::MAX_KEYS)
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
        let current = self.table.local().get(KEYRING_KEY).map(|(entry, _)| entry.shared_value());
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
