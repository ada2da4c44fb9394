//! How the node writes keys with a time to live and deletes them when it is up.

use std::time::Duration;

use bytes::Bytes;
use rand_core::Rng;

use crate::error::WriteError;
use crate::node::Node;

impl<R: Rng> Node<R> {
    /// Writes `key = value` in this node's table, to be deleted `ttl` after the last time this
    /// node was given (the `now` of its latest input), as chitchat's `set_with_ttl` does. The
    /// delete is an ordinary versioned delete made by this node, so every peer sees the key go
    /// (a deletion in `Event::KeysChanged`). Writing the key again before then (`set`, `delete`, or
    /// `set_with_ttl` with a new TTL) replaces the TTL.
    ///
    /// Returns the version of the write. Errors as [`set`](Self::set), and
    /// [`WriteError::InvalidTtl`] for a zero TTL or one too large to add to an `Instant`.
    pub fn set_with_ttl(
        &mut self,
        key: impl Into<String>,
        value: impl Into<Bytes>,
        ttl: Duration,
    ) -> Result<u64, WriteError> {
        let deadline =
            self.now.checked_add(ttl).filter(|_| !ttl.is_zero()).ok_or(WriteError::InvalidTtl { ttl })?;
        let key = key.into();
        let version = self.set(key.clone(), value)?;
        self.expiries.insert(key, deadline, version);
        Ok(version)
    }

    /// A write without a TTL: the key no longer expires.
    pub(crate) fn keep_key(&mut self, key: &str) {
        self.expiries.remove(key);
    }

    /// Deletes the keys whose TTL is up, unless written again since.
    pub(crate) fn expire_keys(&mut self) {
        while let Some((key, version)) = self.expiries.pop_due(self.now) {
            let current = self.table.local().get(&key).map(|(_, current)| current);
            if current == Some(version) {
                // A failure here means the node gave its name up: nothing to delete for.
                let _ = self.write(key, None);
            }
        }
    }

    /// Keys of this node's table with a TTL pending.
    pub fn expiring_keys(&self) -> usize {
        self.expiries.len()
    }

    /// The highest version of this node's table.
    #[cfg(test)]
    fn local_max_version(&self) -> u64 {
        self.table.local().max_version
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::{Config, Identity};

    /// A base instant; only differences from it matter.
    #[allow(clippy::disallowed_methods)]
    fn base() -> Instant {
        Instant::now()
    }

    fn node(start: Instant) -> Node<ChaCha8Rng> {
        let identity = Identity::new("a", 1, SocketAddr::from(([127, 0, 0, 1], 7000)));
        Node::new(Config::lan(), identity, start, ChaCha8Rng::seed_from_u64(1)).unwrap()
    }

    #[test]
    fn a_key_with_a_ttl_is_deleted_by_its_owner_when_the_time_is_up() {
        let start = base();
        let mut a = node(start);
        let written = a.set_with_ttl("lease", "holder-1", Duration::from_secs(10)).unwrap();
        assert!(a.poll_timeout() <= start + Duration::from_secs(10));
        a.handle_timeout(start + Duration::from_secs(9));
        assert_eq!(a.get("a", "lease"), Some(&b"holder-1"[..]));
        a.handle_timeout(start + Duration::from_secs(10));
        assert_eq!(a.get("a", "lease"), None);
        // An ordinary versioned delete: the tombstone is the next version.
        assert_eq!(a.local_max_version(), written + 1);
        assert_eq!(a.expiring_keys(), 0);
    }

    #[test]
    fn writing_the_key_again_replaces_its_ttl() {
        let start = base();
        let mut a = node(start);
        a.set_with_ttl("kept", "1", Duration::from_secs(5)).unwrap();
        a.set("kept", "2").unwrap();
        a.set_with_ttl("renewed", "1", Duration::from_secs(5)).unwrap();
        a.handle_timeout(start + Duration::from_secs(4));
        a.set_with_ttl("renewed", "2", Duration::from_secs(5)).unwrap();
        a.handle_timeout(start + Duration::from_secs(6));
        assert_eq!(a.get("a", "kept"), Some(&b"2"[..]), "a plain set keeps the key");
        assert_eq!(a.get("a", "renewed"), Some(&b"2"[..]), "the new TTL runs from 4 s");
        a.handle_timeout(start + Duration::from_secs(9));
        assert_eq!(a.get("a", "renewed"), None);
        assert_eq!(a.expiring_keys(), 0);
    }

    #[test]
    fn a_zero_ttl_is_refused_and_changes_nothing() {
        let mut a = node(base());
        assert_eq!(
            a.set_with_ttl("k", "v", Duration::ZERO),
            Err(WriteError::InvalidTtl { ttl: Duration::ZERO })
        );
        assert_eq!(
            a.set_with_ttl("k", "v", Duration::MAX),
            Err(WriteError::InvalidTtl { ttl: Duration::MAX })
        );
        assert_eq!(a.get("a", "k"), None);
    }
}
