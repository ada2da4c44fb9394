//! The ledger: every write the simulator made on each node's behalf, per (node, generation),
//! in version order. It is the truth the invariant checks compare replicas against; it stays
//! valid after the owner crashed or restarted.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::sim::FixedHashMap;

/// One write of an owner: a value, or a tombstone when `value` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedWrite {
    /// The key written.
    pub key: Arc<str>,
    /// The value, or `None` for a delete.
    pub value: Option<Bytes>,
}

/// The writes of one node under one generation; the write of version `v` is at index `v - 1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerLog {
    writes: Vec<LoggedWrite>,
}

/// The owner's table as a replica at some max version must hold it: for each key, its latest
/// write at or below that version.
pub type ExpectedTable<'a> = BTreeMap<&'a str, (u64, Option<&'a Bytes>)>;

impl OwnerLog {
    /// An empty log (the owner has written nothing yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a write; returns its version.
    pub fn record(&mut self, key: impl Into<Arc<str>>, value: Option<Bytes>) -> u64 {
        self.writes.push(LoggedWrite { key: key.into(), value });
        self.writes.len() as u64
    }

    /// The owner's max version: the number of writes.
    pub fn max_version(&self) -> u64 {
        self.writes.len() as u64
    }

    /// The write of `version`.
    pub fn write(&self, version: u64) -> Option<&LoggedWrite> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.writes.get(index)
    }

    /// What a replica with this max version must hold (see [`ExpectedTable`]).
    pub fn state_at(&self, max_version: u64) -> ExpectedTable<'_> {
        let upto = usize::try_from(max_version).unwrap_or(usize::MAX).min(self.writes.len());
        let mut state = BTreeMap::new();
        for (index, write) in self.writes[..upto].iter().enumerate() {
            state.insert(&*write.key, (index as u64 + 1, write.value.as_ref()));
        }
        state
    }
}

/// The logs of every (node index, generation) the simulator ran.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    logs: FixedHashMap<(usize, u64), OwnerLog>,
}

impl Ledger {
    /// Registers a node generation with an empty log (called when a node starts).
    pub(crate) fn start(&mut self, node: usize, generation: u64) {
        self.logs.entry((node, generation)).or_default();
    }

    /// The log of `node` under `generation`, if that generation ever ran.
    pub fn log(&self, node: usize, generation: u64) -> Option<&OwnerLog> {
        self.logs.get(&(node, generation))
    }

    /// Records a write by `node` under `generation`; returns its version.
    pub(crate) fn record(&mut self, node: usize, generation: u64, key: &str, value: Option<Bytes>) -> u64 {
        self.logs.entry((node, generation)).or_default().record(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_at_keeps_the_latest_write_of_each_key_up_to_the_version() {
        let mut log = OwnerLog::new();
        let v = |s: &'static str| Some(Bytes::from_static(s.as_bytes()));
        assert_eq!(log.record("a", v("1")), 1);
        assert_eq!(log.record("b", v("2")), 2);
        assert_eq!(log.record("a", None), 3);
        assert_eq!(log.record("a", v("4")), 4);
        let at2 = log.state_at(2);
        assert_eq!(at2.len(), 2);
        assert_eq!(at2["a"].0, 1);
        assert_eq!(log.state_at(3)["a"], (3, None));
        assert_eq!(log.state_at(99)["a"].0, 4);
        assert_eq!(log.write(2).map(|w| &*w.key), Some("b"));
        assert!(log.write(0).is_none() && log.write(5).is_none());
    }
}
