//! The sealed framing: AES-256-GCM around the encoded envelope, under the keyring's primary
//! key, with a small clear header.
//!
//! ```text
//! offset  size  field
//!      0     1  marker, 0x01 (a protobuf field key for field 0, which no envelope can start
//!               with: plain and sealed datagrams are never confused)
//!      1     1  key id: the first byte of the sealing key's fingerprint
//!      2     8  session: random, drawn anew by every process (and when its counter runs out)
//!     10     4  counter: big-endian, +1 for every datagram the session seals
//!     14     n  the encoded envelope, encrypted
//!   14+n    16  the GCM tag
//! ```
//!
//! The nonce is the 12 header bytes `session || counter`. The associated data is the whole
//! clear header followed by the protocol version (4 bytes, little-endian) and the cluster
//! identifier, so a datagram of another cluster or protocol version fails authentication even
//! under an equal key. Overhead: 30 bytes (memberlist's AES-GCM: 29).
//!
//! **Why nonces never repeat under a key, without coordination.** A nonce is (session,
//! counter). A session seals at most 2^32 datagrams, then draws a new session. A session is
//! 64 bits of SHA-256 over 128 random bits from the caller's RNG, the node's generation and its
//! name: distinct nodes (names) and distinct runs of one node (generations, which grow on every
//! restart) get independent sessions even if an RNG were seeded the same way twice. Two
//! sessions collide with probability about s^2 / 2^65 for s sessions ever used under one key:
//! below 10^-9 for the 190,000 sessions of a 1,000-node cluster restarted daily for six
//! months. Rotate keys (see [`crate::keyring`]) to start afresh.
//!
//! The same (session, counter) pair is what anti-replay tracks (see [`crate::replay`]).

use gossip_proto::PROTOCOL_VERSION;
use rand_core::Rng;
use ring::aead::{Aad, NONCE_LEN, Nonce, Tag};

use crate::keyring::{InstalledKey, Keyring};

/// The first byte of every sealed datagram.
pub(crate) const SEALED_MARKER: u8 = 0x01;
/// Length of the clear header.
pub(crate) const HEADER_LEN: usize = 14;
/// Length of the GCM tag.
pub(crate) const TAG_LEN: usize = 16;
/// Bytes a sealed datagram adds to its envelope.
pub const SEAL_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Domain separation of sessions.
const SESSION_LABEL: &[u8] = b"gossip.v1 session";

/// Whether `datagram` uses the sealed framing.
pub(crate) fn is_sealed(datagram: &[u8]) -> bool {
    datagram.first() == Some(&SEALED_MARKER)
}

/// Why a sealed datagram was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Shorter than a header and a tag.
    TooShort,
    /// No installed key has the key id.
    UnknownKey,
    /// Authentication failed: forged, corrupted, of another cluster, or sealed under another
    /// key with the same id.
    Unauthentic,
}

/// An opened datagram.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) session: u64,
    pub(crate) counter: u32,
    /// The envelope's encoding.
    pub(crate) plaintext: Vec<u8>,
}

/// This node's sealing state: its session and counter, and the associated-data suffix.
#[derive(Debug)]
pub(crate) struct Sealer {
    /// Drawn at the first datagram sealed, so that a node that never seals draws nothing
    /// from its RNG for it (plain runs replay exactly as before encryption existed).
    session: Option<u64>,
    next_counter: u32,
    /// Protocol version and cluster: appended to the header to make the associated data.
    context: Vec<u8>,
    /// What a new session is derived from besides randomness.
    name: String,
    generation: u64,
}

impl Sealer {
    pub(crate) fn new(cluster: &str, name: &str, generation: u64) -> Self {
        let mut context = Vec::with_capacity(4 + cluster.len());
        context.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        context.extend_from_slice(cluster.as_bytes());
        Self { session: None, next_counter: 0, context, name: name.to_owned(), generation }
    }

    /// After a new generation: sessions are derived from it from now on.
    pub(crate) fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
        self.session = None;
    }

    fn new_session<R: Rng>(&mut self, rng: &mut R) -> u64 {
        let mut random = [0u8; 16];
        rng.fill_bytes(&mut random);
        let mut input = Vec::with_capacity(SESSION_LABEL.len() + 16 + 8 + self.name.len());
        input.extend_from_slice(SESSION_LABEL);
        input.extend_from_slice(&random);
        input.extend_from_slice(&self.generation.to_le_bytes());
        input.extend_from_slice(self.name.as_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        let mut session = [0u8; 8];
        session.copy_from_slice(&digest.as_ref()[..8]);
        let session = u64::from_be_bytes(session);
        self.session = Some(session);
        self.next_counter = 0;
        session
    }

    /// Seals `buffer` in place: its first [`HEADER_LEN`] bytes are room for the header, the
    /// rest is the encoded envelope; the tag is appended.
    pub(crate) fn seal<R: Rng>(&mut self, rng: &mut R, key: &InstalledKey, buffer: &mut Vec<u8>) {
        let session = match self.session {
            Some(session) => session,
            None => self.new_session(rng),
        };
        let counter = self.next_counter;
        match self.next_counter.checked_add(1) {
            Some(next) => self.next_counter = next,
            // 2^32 datagrams sealed: the next one starts a new session.
            None => self.session = None,
        }
        let mut header = [0u8; HEADER_LEN];
        header[0] = SEALED_MARKER;
        header[1] = key.fingerprint.key_id();
        header[2..10].copy_from_slice(&session.to_be_bytes());
        header[10..14].copy_from_slice(&counter.to_be_bytes());
        buffer[..HEADER_LEN].copy_from_slice(&header);
        let aad = associated_data(&header, &self.context);
        let nonce = nonce_of(&header);
        match key.cipher.seal_in_place_separate_tag(nonce, Aad::from(&aad[..]), &mut buffer[HEADER_LEN..]) {
            Ok(tag) => buffer.extend_from_slice(tag.as_ref()),
            // ring refuses only inputs beyond GCM's 64 GB limit; a datagram never is.
            Err(_) => buffer.clear(),
        }
    }

    /// Opens a sealed datagram with the key its header names.
    pub(crate) fn open(&self, keyring: &Keyring, datagram: &[u8]) -> Result<Opened, OpenError> {
        if datagram.len() < HEADER_LEN + TAG_LEN {
            return Err(OpenError::TooShort);
        }
        let (header, rest) = datagram.split_at(HEADER_LEN);
        let key = keyring.by_key_id(header[1]).ok_or(OpenError::UnknownKey)?;
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError::TooShort)?;
        let mut plaintext = ciphertext.to_vec();
        let aad = associated_data(header, &self.context);
        key.cipher
            .open_in_place_separate_tag(
                nonce_of(header),
                Aad::from(&aad[..]),
                Tag::from(tag),
                &mut plaintext,
                0..,
            )
            .map_err(|_| OpenError::Unauthentic)?;
        let session = u64::from_be_bytes(header[2..10].try_into().map_err(|_| OpenError::TooShort)?);
        let counter = u32::from_be_bytes(header[10..14].try_into().map_err(|_| OpenError::TooShort)?);
        Ok(Opened { session, counter, plaintext })
    }
}

fn nonce_of(header: &[u8]) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&header[2..HEADER_LEN]);
    Nonce::assume_unique_for_key(nonce)
}

fn associated_data(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::keyring::{KEY_LEN, SecretKey};

    fn ring(byte: u8) -> Keyring {
        Keyring::new(SecretKey::from_bytes(&[byte; KEY_LEN]).expect("32 bytes"))
    }

    fn sealed(sealer: &mut Sealer, rng: &mut ChaCha8Rng, keyring: &Keyring, plaintext: &[u8]) -> Vec<u8> {
        let mut buffer = vec![0; HEADER_LEN];
        buffer.extend_from_slice(plaintext);
        sealer.seal(rng, keyring.primary().expect("a key"), &mut buffer);
        buffer
    }

    #[test]
    fn a_sealed_datagram_opens_once_with_the_right_key_and_context_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let keyring = ring(7);
        let mut sealer = Sealer::new("prod", "a", 1);
        let datagram = sealed(&mut sealer, &mut rng, &keyring, b"hello");
        assert_eq!(datagram.len(), 5 + SEAL_OVERHEAD);
        assert!(is_sealed(&datagram));
        let receiver = Sealer::new("prod", "b", 1);
        let opened = receiver.open(&keyring, &datagram).expect("opens");
        assert_eq!(opened.plaintext, b"hello");
        assert_eq!(opened.counter, 0);
        // Another key with another id; the same id under another key; another cluster.
        assert!(receiver.open(&ring(8), &datagram).is_err(), "another key");
        let other_cluster = Sealer::new("staging", "b", 1);
        assert_eq!(other_cluster.open(&keyring, &datagram).err(), Some(OpenError::Unauthentic));
        // Every single bit flip is caught.
        for at in 0..datagram.len() {
            let mut flipped = datagram.clone();
            flipped[at] ^= 0x10;
            assert!(receiver.open(&keyring, &flipped).is_err(), "flip at {at} went through");
        }
        assert_eq!(receiver.open(&keyring, &datagram[..29]).err(), Some(OpenError::TooShort));
    }

    #[test]
    fn counters_grow_and_sessions_differ_between_nodes_and_generations() {
        let keyring = ring(7);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut a = Sealer::new("c", "a", 1);
        let mut b = Sealer::new("c", "b", 1);
        let mut a2 = Sealer::new("c", "a", 2);
        let session = |s: &mut Sealer| s.new_session(&mut ChaCha8Rng::seed_from_u64(9));
        assert_ne!(session(&mut a), session(&mut b), "same RNG seed, other name");
        assert_ne!(session(&mut a), session(&mut a2), "same RNG seed, other generation");
        let first = sealed(&mut a, &mut rng, &keyring, b"x");
        let second = sealed(&mut a, &mut rng, &keyring, b"x");
        assert_ne!(first, second);
        assert_eq!(b.open(&keyring, &second).expect("opens").counter, 1);
        a.next_counter = u32::MAX;
        let last = sealed(&mut a, &mut rng, &keyring, b"x");
        assert_eq!(b.open(&keyring, &last).expect("opens").counter, u32::MAX);
        assert_eq!(a.session, None, "a new session after 2^32 datagrams");
        let next = sealed(&mut a, &mut rng, &keyring, b"x");
        assert_eq!(b.open(&keyring, &next).expect("opens").counter, 0);
        assert_ne!(next[2..10], last[2..10], "another session");
    }
}
