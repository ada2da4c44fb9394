//! The trace hash: a running xxh3 of everything that happened, with its time, so that two
//! runs can be compared with one number. Two runs of the same scenario with the same seed
//! must give the same hash.

use std::time::Duration;

use xxhash_rust::xxh3::Xxh3;

use crate::event::Event;

/// What kind of record is hashed (keeps records of different kinds from colliding).
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(crate) enum Record {
    Delivered = 1,
    Event = 2,
    Lost = 3,
    Blocked = 4,
    Action = 5,
    Timer = 6,
}

/// The running hash of a run.
#[derive(Clone)]
pub(crate) struct Trace {
    hasher: Xxh3,
    records: u64,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").field("hash", &self.hash()).field("records", &self.records).finish()
    }
}

impl Trace {
    pub(crate) fn new(seed: u64) -> Self {
        Self { hasher: Xxh3::with_seed(seed), records: 0 }
    }

    /// The hash of everything recorded so far.
    pub(crate) fn hash(&self) -> u64 {
        self.hasher.digest()
    }

    /// Records hashed so far.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Hashes a record header: kind, time and up to two node indexes.
    pub(crate) fn record(&mut self, kind: Record, now: Duration, a: usize, b: usize) {
        self.records += 1;
        let mut header = [0u8; 1 + 16 + 8 + 8];
        header[0] = kind as u8;
        header[1..17].copy_from_slice(&now.as_nanos().to_le_bytes());
        header[17..25].copy_from_slice(&(a as u64).to_le_bytes());
        header[25..33].copy_from_slice(&(b as u64).to_le_bytes());
        self.hasher.update(&header);
    }

    /// Hashes a datagram delivered from `from` to `to`.
    pub(crate) fn delivered(&mut self, now: Duration, from: usize, to: usize, payload: &[u8]) {
        self.record(Record::Delivered, now, from, to);
        self.bytes(payload);
    }

    /// Hashes an event that node `node` emitted: each key change as an event of its own
    /// (the trace of a run is the same whether key events come one by one or in batches).
    pub(crate) fn event(&mut self, now: Duration, node: usize, event: &Event) {
        let Event::KeysChanged { node: owner, changes } = event else {
            self.record(Record::Event, now, node, 0);
            return self.bytes(format!("{event:?}").as_bytes());
        };
        for change in changes {
            self.record(Record::Event, now, node, 0);
            self.bytes(owner.as_bytes());
            self.bytes(change.key_bytes());
            if let Some(value) = change.value() {
                self.bytes(value);
            }
            self.bytes(&change.version().to_le_bytes());
        }
    }

    /// Hashes length-prefixed bytes.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.hasher.update(&(bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_content_time_and_order() {
        let ms = Duration::from_millis;
        let run = |records: &[(u64, &[u8])]| {
            let mut trace = Trace::new(1);
            for (at, payload) in records {
                trace.delivered(ms(*at), 0, 1, payload);
            }
            trace.hash()
        };
        let base = run(&[(1, b"a"), (2, b"b")]);
        assert_eq!(base, run(&[(1, b"a"), (2, b"b")]));
        assert_ne!(base, run(&[(2, b"b"), (1, b"a")]));
        assert_ne!(base, run(&[(1, b"a"), (3, b"b")]));
        assert_ne!(base, run(&[(1, b"a"), (2, b"c")]));
        assert_ne!(run(&[(1, b"ab")]), run(&[(1, b"a"), (1, b"b")]));
    }
}
