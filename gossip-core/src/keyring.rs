//! The keyring: the secret keys a node seals and opens datagrams with, and which one seals.
//!
//! Every installed key opens datagrams; the **primary** key seals what the node sends. Keys
//! are named by a [`KeyFingerprint`] (a hash of the key, safe to show and log), and every
//! sealed datagram names its key by the fingerprint's first byte, so a receiver opens it with
//! that one key instead of trying every key of its ring. Two keys whose fingerprints share
//! their first byte cannot be installed together ([`KeyringError::KeyIdCollision`]).
//!
//! Rotating a key across a live cluster (Serf's `keys -install / -use / -remove`):
//!
//! 1. [`install`](crate::Node::install_key) the new key on every member, and wait until
//!    [`keyring_status`](crate::Node::keyring_status) shows every live member holding it;
//! 2. [`use_key`](crate::Node::use_key) it on every member, and wait until no live member
//!    seals with the old one any more;
//! 3. [`remove_key`](crate::Node::remove_key) the old key everywhere.
//!
//! Each node publishes the fingerprints it holds, primary first, under the reserved key
//! [`KEYRING_KEY`] of its own table, so every member can count the holders of each key.

use std::fmt;

use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};

/// Length of a key: 32 bytes (AES-256-GCM).
pub const KEY_LEN: usize = 32;

/// Most keys a ring holds.
pub const MAX_KEYS: usize = 16;

/// The key of a node's own table under which it publishes its keyring's fingerprints
/// (primary first, separated by spaces). Keys starting with `gossip.` are reserved.
pub const KEYRING_KEY: &str = "gossip.keyring";

/// The prefix of the keys the library writes in a node's table itself.
pub const RESERVED_PREFIX: &str = "gossip.";

/// How a node uses its keyring: the four steps of turning encryption on (or off) in a
/// running cluster one node at a time, as memberlist's `GossipVerifyIncoming` /
/// `GossipVerifyOutgoing` do.
///
/// To turn encryption on without a moment where two members cannot talk: move every node to
/// [`Accept`](Self::Accept), then every node to [`Send`](Self::Send), then every node to
/// [`Require`](Self::Require). Turn it off in the reverse order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum EncryptionMode {
    /// Send plain datagrams; drop sealed ones.
    #[default]
    Off,
    /// Send plain datagrams; open sealed ones as well.
    Accept,
    /// Seal every datagram; still accept plain ones.
    Send,
    /// Seal every datagram; drop plain ones.
    Require,
}

impl EncryptionMode {
    /// Whether datagrams this node sends are sealed.
    pub fn seals(self) -> bool {
        matches!(self, Self::Send | Self::Require)
    }

    /// Whether sealed datagrams are opened (otherwise dropped).
    pub fn opens(self) -> bool {
        !matches!(self, Self::Off)
    }

    /// Whether plain datagrams are accepted.
    pub fn accepts_plain(self) -> bool {
        !matches!(self, Self::Require)
    }
}

/// A 32-byte secret key. Its `Debug` output shows the fingerprint, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A key from its 32 bytes (for example the base64-decoded output of
    /// `openssl rand -base64 32`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyringError> {
        let key: [u8; KEY_LEN] =
            bytes.try_into().map_err(|_| KeyringError::KeyLength { len: bytes.len() })?;
        Ok(Self(key))
    }

    /// A key from an array (which has the right length by its type).
    pub fn from_array(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's fingerprint: the first four bytes of SHA-256 over a label and the key.
    pub fn fingerprint(&self) -> KeyFingerprint {
        let mut input = Vec::with_capacity(FINGERPRINT_LABEL.len() + KEY_LEN);
        input.extend_from_slice(FINGERPRINT_LABEL);
        input.extend_from_slice(&self.0);
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        let mut first = [0; 4];
        first.copy_from_slice(&digest.as_ref()[..4]);
        KeyFingerprint(u32::from_be_bytes(first))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.fingerprint())
    }
}

/// Domain separation of fingerprints from any other use of the key.
const FINGERPRINT_LABEL: &[u8] = b"gossip.v1 key fingerprint";

/// A key's public name: 32 bits of a hash of the key, shown as 8 hex digits. Its first byte
/// is the key id carried in the clear header of every datagram sealed with the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyFingerprint(pub u32);

impl KeyFingerprint {
    /// The one-byte key id of the sealed framing.
    pub fn key_id(self) -> u8 {
        self.0.to_be_bytes()[0]
    }

    /// Parses the 8 hex digits of [`Display`](fmt::Display).
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 8 {
            return None;
        }
        u32::from_str_radix(text, 16).ok().map(Self)
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A caller's mistake with keys. The keyring is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// A key is not 32 bytes long.
    #[error("a key must be 32 bytes, this one is {len}; generate one with `openssl rand -base64 32`")]
    KeyLength {
        /// The length given.
        len: usize,
    },
    /// No installed key has this fingerprint.
    #[error("no installed key has fingerprint {0}; list the installed keys with `keys()`")]
    UnknownKey(KeyFingerprint),
    /// The primary key cannot be removed.
    #[error("key {0} is the primary key; make another key primary with `use_key` first")]
    RemovingPrimary(KeyFingerprint),
    /// Another installed key has the same key id (first byte of the fingerprint).
    #[error(
        "key {new} has the same key id as installed key {installed}; generate another key \
         (1 chance in 256 per installed key)"
    )]
    KeyIdCollision {
        /// The key being installed.
        new: KeyFingerprint,
        /// The installed key it collides with.
        installed: KeyFingerprint,
    },
    /// The ring is full.
    #[error("the keyring holds {max} keys already; remove one first")]
    TooManyKeys {
        /// The limit.
        max: usize,
    },
    /// Encryption cannot be turned on without a key.
    #[error("encryption mode {mode:?} needs a primary key; install one first")]
    NoPrimaryKey {
        /// The mode asked for.
        mode: EncryptionMode,
    },
}

/// One installed key, ready to seal and open.
pub(crate) struct InstalledKey {
    pub(crate) fingerprint: KeyFingerprint,
    pub(crate) cipher: LessSafeKey,
}

impl fmt::Debug for InstalledKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstalledKey({})", self.fingerprint)
    }
}

/// The keys a node holds; the first is the primary.
///
/// Build one with [`Keyring::new`] and [`Keyring::with`] to start a node with keys
/// ([`crate::Node::with_keyring`]); change a running node's ring with its commands.
#[derive(Debug, Default)]
pub struct Keyring {
    /// The primary key first.
    keys: Vec<InstalledKey>,
}

impl Keyring {
    /// A ring holding `primary` only.
    pub fn new(primary: SecretKey) -> Self {
        let mut ring = Self::default();
        // A single key can neither collide nor overflow the ring.
        let _ = ring.install(&primary);
        ring
    }

    /// An empty ring (encryption must then stay off).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds `key` (not as the primary).
    pub fn with(mut self, key: &SecretKey) -> Result<Self, KeyringError> {
        self.install(key)?;
        Ok(self)
    }

    /// Installs a key; installing a key already there changes nothing. The first key
    /// installed in an empty ring becomes the primary.
    pub(crate) fn install(&mut self, key: &SecretKey) -> Result<KeyFingerprint, KeyringError> {
        let fingerprint = key.fingerprint();
        if let Some(installed) = self.keys.iter().find(|k| k.fingerprint.key_id() == fingerprint.key_id()) {
            return if installed.fingerprint == fingerprint {
                Ok(fingerprint)
            } else {
                Err(KeyringError::KeyIdCollision { new: fingerprint, installed: installed.fingerprint })
            };
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyringError::TooManyKeys { max: MAX_KEYS });
        }
        // AES-256-GCM takes any 32-byte key, so this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_bytes())
            .map_err(|_| KeyringError::KeyLength { len: KEY_LEN })?;
        self.keys.push(InstalledKey { fingerprint, cipher: LessSafeKey::new(unbound) });
        Ok(fingerprint)
    }

    /// Makes an installed key the primary.
    pub(crate) fn use_key(&mut self, fingerprint: KeyFingerprint) -> Result<(), KeyringError> {
        let index = self.position(fingerprint)?;
        let key = self.keys.remove(index);
        self.keys.insert(0, key);
        Ok(())
    }

    /// Removes a key that is not the primary.
    pub(crate) fn remove(&mut self, fingerprint: KeyFingerprint) -> Result<(), KeyringError> {
        match self.position(fingerprint)? {
            0 => Err(KeyringError::RemovingPrimary(fingerprint)),
            index => {
                self.keys.remove(index);
                Ok(())
            }
        }
    }

    fn position(&self, fingerprint: KeyFingerprint) -> Result<usize, KeyringError> {
        self.keys
            .iter()
            .position(|k| k.fingerprint == fingerprint)
            .ok_or(KeyringError::UnknownKey(fingerprint))
    }

    /// The primary key.
    pub(crate) fn primary(&self) -> Option<&InstalledKey> {
        self.keys.first()
    }

    /// The key whose key id is `key_id`.
    pub(crate) fn by_key_id(&self, key_id: u8) -> Option<&InstalledKey> {
        self.keys.iter().find(|k| k.fingerprint.key_id() == key_id)
    }

    /// The fingerprints, primary first.
    pub fn fingerprints(&self) -> impl Iterator<Item = KeyFingerprint> + '_ {
        self.keys.iter().map(|k| k.fingerprint)
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// What the node publishes under [`KEYRING_KEY`]: the fingerprints, primary first.
    pub(crate) fn published(&self) -> String {
        self.fingerprints().map(|f| f.to_string()).collect::<Vec<_>>().join(" ")
    }
}

/// Reads a published keyring value: the fingerprints, primary first. Anything unreadable is
/// skipped (it comes from the network).
pub(crate) fn parse_published(value: &[u8]) -> impl Iterator<Item = KeyFingerprint> + '_ {
    value
        .split(|&b| b == b' ')
        .filter_map(|word| std::str::from_utf8(word).ok().and_then(KeyFingerprint::parse))
}

/// One key as seen across the cluster, from [`crate::Node::keyring_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// The key.
    pub fingerprint: KeyFingerprint,
    /// Whether this node holds it.
    pub installed_here: bool,
    /// Whether it is this node's primary key.
    pub primary_here: bool,
    /// Live members (this node included) that publish holding it.
    pub holders: usize,
    /// Live members (this node included) that publish it as their primary: the ones that
    /// seal with it.
    pub primary_for: usize,
}

/// The cluster's view of the keys, from [`crate::Node::keyring_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyringStatus {
    /// Live members, this node included.
    pub live_members: usize,
    /// Live members that publish no keyring (encryption never set up there, or not heard
    /// yet).
    pub unknown: usize,
    /// Every key held here or published by a live member, by fingerprint.
    pub keys: Vec<KeyStatus>,
}

impl KeyringStatus {
    /// The status of one key.
    pub fn key(&self, fingerprint: KeyFingerprint) -> Option<&KeyStatus> {
        self.keys.iter().find(|k| k.fingerprint == fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; KEY_LEN]).expect("32 bytes")
    }

    #[test]
    fn keys_of_the_wrong_length_are_refused() {
        assert_eq!(SecretKey::from_bytes(&[0; 16]), Err(KeyringError::KeyLength { len: 16 }));
        assert_eq!(SecretKey::from_bytes(&[0; 33]), Err(KeyringError::KeyLength { len: 33 }));
    }

    #[test]
    fn debug_shows_the_fingerprint_not_the_key() {
        let shown = format!("{:?}", key(0xab));
        assert!(!shown.contains("171"), "{shown}");
        assert!(shown.contains(&key(0xab).fingerprint().to_string()));
    }

    #[test]
    fn the_primary_cannot_be_removed_and_use_moves_it() {
        let (a, b) = (key(1), key(2));
        let mut ring = Keyring::new(a.clone()).with(&b).expect("no collision");
        assert_eq!(ring.remove(a.fingerprint()), Err(KeyringError::RemovingPrimary(a.fingerprint())));
        ring.use_key(b.fingerprint()).expect("installed");
        assert_eq!(ring.primary().map(|k| k.fingerprint), Some(b.fingerprint()));
        ring.remove(a.fingerprint()).expect("not primary any more");
        assert_eq!(ring.fingerprints().collect::<Vec<_>>(), vec![b.fingerprint()]);
        assert_eq!(ring.use_key(a.fingerprint()), Err(KeyringError::UnknownKey(a.fingerprint())));
    }

    #[test]
    fn colliding_key_ids_are_refused_and_reinstalling_is_harmless() {
        let first = key(0);
        let mut ring = Keyring::new(first.clone());
        assert_eq!(ring.install(&first), Ok(first.fingerprint()));
        let collider = (1..10_000u32)
            .map(|i| {
                let mut bytes = [0; KEY_LEN];
                bytes[..4].copy_from_slice(&i.to_le_bytes());
                SecretKey::from_bytes(&bytes).expect("32 bytes")
            })
            .find(|k| k.fingerprint().key_id() == first.fingerprint().key_id())
            .expect("one in 256 keys collides; fixed inputs");
        assert!(matches!(ring.install(&collider), Err(KeyringError::KeyIdCollision { .. })));
        assert_eq!(ring.fingerprints().count(), 1);
    }

    #[test]
    fn published_fingerprints_round_trip_and_garbage_is_skipped() {
        let ring = Keyring::new(key(1)).with(&key(2)).expect("no collision");
        let published = ring.published();
        let parsed: Vec<_> = parse_published(published.as_bytes()).collect();
        assert_eq!(parsed, ring.fingerprints().collect::<Vec<_>>());
        assert_eq!(parse_published(b"zz \xff 1234").count(), 0);
    }
}
