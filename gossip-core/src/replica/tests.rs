//! Unit tests of `replica`.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::time::Duration;

use foldhash::fast::FixedState;

use proptest::collection::vec;
use proptest::prelude::*;

use super::store::{MIN_HOLES_TO_COMPACT, SCAN_UP_TO};
use super::*;
use crate::shared_entry::EntrySpans;

fn address() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7946))
}

/// The base of the timestamps here; only differences from it matter.
fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    now
}

/// What the replica must hold: key -> (version, value, deleted), tombstones included.
type Model = BTreeMap<String, (u64, Option<Vec<u8>>)>;

fn check(replica: &Replica, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(replica.len(), model.len());
    let mut expected: Vec<(u64, &str, Option<&[u8]>)> =
        model.iter().map(|(key, (version, value))| (*version, key.as_str(), value.as_deref())).collect();
    expected.sort_unstable();
    let held: Vec<(u64, &str, Option<&[u8]>)> = replica
        .entries_after(0)
        .map(|(version, entry)| (version, entry.key(), (!entry.deleted).then_some(entry.value())))
        .collect();
    prop_assert_eq!(&held, &expected);
    for from in [0, 1, replica.max_version / 2, replica.max_version] {
        let after: Vec<u64> = replica.entries_after(from).map(|(version, _)| version).collect();
        let wanted: Vec<u64> = expected.iter().map(|(version, ..)| *version).filter(|v| *v > from).collect();
        prop_assert_eq!(after, wanted);
    }
    let live: Vec<u64> = replica.live_entries().map(|(version, _)| version).collect();
    let wanted: Vec<u64> =
        expected.iter().filter(|(_, _, value)| value.is_some()).map(|(version, ..)| *version).collect();
    prop_assert_eq!(live, wanted);
    for key in (0..10).map(|k| format!("k{k}")) {
        let got = replica.get(&key).map(|(entry, version)| (version, entry.value().to_vec()));
        let want = model.get(&key).and_then(|(version, value)| Some((*version, value.clone()?)));
        prop_assert_eq!(got, want);
        prop_assert_eq!(replica.contains_key(&key), model.contains_key(&key));
    }
    let data = replica.data();
    prop_assert!(data.holes <= data.log.len());
    prop_assert!(
        data.holes < MIN_HOLES_TO_COMPACT || data.holes <= data.log.len() / 2,
        "holes are compacted away"
    );
    Ok(())
}

proptest! {
    /// The owner's writes, deletes and tombstone collection, against a plain map: the log,
    /// its holes, its compaction and the index always agree with it.
    #[test]
    fn log_and_index_agree_with_a_map(ops in vec((0..10u8, any::<Option<u8>>(), 0..4u8), 1..300)) {
        let start = t0();
        let grace = Duration::from_secs(5);
        let mut replica = Replica::new(1, address());
        let mut model = Model::new();
        for (step, (key, value, collect)) in ops.into_iter().enumerate() {
            let now = start + Duration::from_secs(step as u64);
            let key = format!("k{key}");
            let value = value.map(|v| vec![v; usize::from(v % 4)]);
            let version = replica.write(key.clone(), value.clone().map(Bytes::from), now, now + grace);
            model.insert(key, (version, value));
            if collect == 0 {
                replica.collect_garbage(now);
                // The write of step `s` has version `s + 1` and is due at step `s + 5`.
                model.retain(|_, (version, value)| value.is_some() || *version + 4 > step as u64);
            }
            check(&replica, &model)?;
        }
    }
}

#[test]
fn an_entry_below_the_held_versions_keeps_the_log_sorted() {
    let now = t0();
    let mut data = ReplicaData::default();
    for (version, key) in [(5, "a"), (9, "b"), (7, "c"), (3, "b"), (7, "d")] {
        let entry = SharedEntry::new(key, b"");
        let hash = data.hash(key.as_bytes());
        data.insert(hash, EntryRef::of(&entry, false), version, now);
    }
    let versions: Vec<(u64, &str)> =
        data.log.iter().filter_map(|slot| Some((slot.version, data.read(slot.entry?).key()))).collect();
    // `b` keeps its latest write only (3, the last one inserted); `d` took version 7.
    assert_eq!(versions, [(3, "b"), (5, "a"), (7, "d")]);
    assert_eq!(data.len(), 3);
    for (at, slot) in data.log.iter().enumerate() {
        if let Some(stored) = slot.entry {
            let key = data.read(stored).key_bytes();
            assert_eq!(data.find(data.hash(key), key), Some(at));
        }
    }
}

#[test]
fn small_tables_are_scanned_and_larger_ones_indexed() {
    let mut data = ReplicaData::default();
    let put = |data: &mut ReplicaData, version: u64, key: &str| {
        let hash = data.hash(key.as_bytes());
        data.insert(hash, EntryRef::of(&SharedEntry::new(key, b"v"), false), version, t0());
    };
    let keys: Vec<String> = (0..3 * SCAN_UP_TO).map(|i| format!("key-{i}")).collect();
    let mut version = 0;
    for key in keys.iter().take(SCAN_UP_TO) {
        version += 1;
        put(&mut data, version, key);
    }
    // Overwritten in place of an index: still one entry per key.
    version += 1;
    put(&mut data, version, &keys[0]);
    assert_eq!((data.len(), data.index.len(), data.index.capacity()), (SCAN_UP_TO, 0, 0), "no index");
    for key in keys.iter().skip(SCAN_UP_TO) {
        version += 1;
        put(&mut data, version, key);
    }
    assert_eq!((data.len(), data.index.len()), (keys.len(), keys.len()), "indexed past the scan");
    for key in &keys {
        let at = data.find(data.hash(key.as_bytes()), key.as_bytes()).expect("held");
        assert_eq!(data.log[at].entry.map(|stored| data.read(stored).key()), Some(key.as_str()));
    }
    assert_eq!(data.find(data.hash(b"missing"), b"missing"), None);
}

#[test]
fn a_snapshot_of_an_indexed_table_keeps_its_index() {
    // The shadow of a reset is such a snapshot; without its index every lookup in it (one per
    // key when the shadow settles) would scan the whole log.
    let now = t0();
    let mut replica = Replica::new(1, "10.0.0.1:7946".parse().expect("an address"));
    for i in 0..=SCAN_UP_TO {
        replica.write(format!("key-{i}"), Some(Bytes::from_static(b"v")), now, now);
    }
    let snapshot = replica.snapshot();
    let data = snapshot.data.as_deref().expect("entries");
    assert!(data.indexed, "the snapshot is indexed as the table is");
    assert_eq!(data.index.len(), SCAN_UP_TO + 1);
    assert!(snapshot.get("key-0").is_some() && snapshot.get(&format!("key-{SCAN_UP_TO}")).is_some());
}

#[test]
fn the_seed_changes_only_while_the_table_is_empty() {
    let mut data = ReplicaData::default();
    data.seed(7);
    let hash = data.hash(b"key");
    data.insert(hash, EntryRef::of(&SharedEntry::new("key", b""), false), 1, t0());
    data.seed(8);
    assert_eq!(data.hash(b"key"), hash, "a seed change would lose the indexed keys");
    assert_eq!(data.find(hash, b"key"), Some(0));
    assert_ne!(FixedState::with_seed(7).hash_one("key"), FixedState::with_seed(8).hash_one("key"));
}

/// The entries of one datagram hold it once; it is dropped with the last of them, and the
/// places of dropped buffers are reclaimed, the entries renumbered to theirs.
#[test]
fn a_buffer_is_held_once_and_dropped_with_its_last_entry() {
    let mut data = ReplicaData::default();
    let datagram = Bytes::from((0..40).map(|i| format!("k{i:02}v{i:02}")).collect::<String>());
    let held = |data: &ReplicaData| {
        data.buffers.iter().filter(|held| held.bytes.as_ptr() == datagram.as_ptr()).count()
    };
    for i in 0..40 {
        let spans = EntrySpans::new(i * 6..i * 6 + 3, i * 6 + 3..i * 6 + 6).expect("small");
        let entry = EntryRef::new(&datagram, spans, false);
        let hash = data.hash(entry.key_bytes());
        data.insert(hash, entry, i as u64 + 1, t0());
    }
    assert_eq!((data.buffers.len(), data.buffers[0].users), (1, 40), "one buffer for the datagram's entries");
    for i in 0..40 {
        let entry = SharedEntry::new(&format!("k{i:02}"), b"new");
        let hash = data.hash(entry.key_bytes());
        data.insert(hash, EntryRef::of(&entry, false), 41 + i as u64, t0());
        assert_eq!(held(&data), usize::from(i < 39), "held while an entry lies in it ({i} overwritten)");
        let unused = data.unused_buffers as usize;
        assert!(unused < MIN_HOLES_TO_COMPACT.max(data.buffers.len() / 2 + 1), "reclaimed");
    }
    for i in 0..40 {
        let key = format!("k{i:02}");
        let at = data.find(data.hash(key.as_bytes()), key.as_bytes()).expect("held");
        let stored = data.log[at].entry.expect("an entry");
        assert_eq!((data.read(stored).key(), data.read(stored).value()), (key.as_str(), &b"new"[..]));
    }
    let used: u32 = data.buffers.iter().map(|held| held.users).sum();
    assert_eq!(used, 40, "every entry counted once");
}

/// A delta that names a key twice (only a hostile peer sends one) leaves the later write, in
/// a compact table as in the general one.
#[test]
fn a_key_twice_in_a_delta_keeps_its_later_write() {
    use gossip_proto::v1;
    let entry = |key: &str, value: &'static [u8], version| v1::Entry {
        key: key.to_owned(),
        value: Bytes::from_static(value),
        version,
        deleted: false,
    };
    let delta = v1::NodeDelta {
        name: "owner".to_owned(),
        generation: 1,
        from_version: 0,
        to_version: 4,
        entries: vec![entry("a", b"1", 1), entry("b", b"2", 2), entry("a", b"3", 3), entry("a", b"4", 4)],
        address: Some(crate::identity::address_to_wire(address())),
        ..Default::default()
    };
    for (mut replica, compact) in
        [(Replica::new(1, address()), true), (Replica::new(1, address()).general(), false)]
    {
        let config = crate::Config::lan();
        let received =
            ReceivedDelta::check(delta.clone().into(), &config, &Bytes::new()).expect("a valid delta");
        let mut events = Events::new(16);
        let applied = replica.apply("owner", received, t0(), t0(), usize::MAX, &mut events).expect("applied");
        assert_eq!((applied.entries, replica.is_compact()), (4, compact));
        let held: Vec<(u64, &str, &[u8])> =
            replica.live_entries().map(|(version, entry)| (version, entry.key(), entry.value())).collect();
        assert_eq!(held, [(2, "b", &b"2"[..]), (4, "a", &b"4"[..])]);
    }
}

/// A table with recent changes but no entry (deltas that brought versions but no entry:
/// the owner's deletions, collected) keeps its bookkeeping when a delta too large for a
/// compact table arrives (too many entries, or too many bytes), as the general table does.
#[test]
fn a_recent_table_keeps_its_bookkeeping_when_it_turns_general() {
    use gossip_proto::v1;
    let delta = |from: u64, count: usize, value_len: usize| {
        let entries: Vec<v1::Entry> = (from + 1..=from + count as u64)
            .map(|version| v1::Entry {
                key: format!("k{version}"),
                value: Bytes::from(vec![b'v'; value_len]),
                version,
                deleted: false,
            })
            .collect();
        v1::NodeDelta {
            name: "owner".to_owned(),
            generation: 1,
            from_version: from,
            to_version: from + (count as u64).max(5),
            entries,
            address: Some(crate::identity::address_to_wire(address())),
            ..Default::default()
        }
    };
    let config = crate::Config::lan();
    let start = t0();
    for (count, value_len) in [(SCAN_UP_TO + 1, 1), (2, 300)] {
        let mut seen = Vec::new();
        for mut replica in [Replica::new(1, address()), Replica::new(1, address()).general()] {
            for (step, delta) in [delta(0, 0, 0), delta(5, count, value_len)].into_iter().enumerate() {
                let now = start + Duration::from_secs(step as u64);
                let received =
                    ReceivedDelta::check(delta.into(), &config, &Bytes::new()).expect("a valid delta");
                replica
                    .apply("owner", received, now, now, usize::MAX, &mut Events::new(16))
                    .expect("applied");
            }
            assert!(!replica.is_compact());
            seen.push((replica.len(), replica.recent_base(), replica.last_changed()));
        }
        assert_eq!(seen[0], seen[1], "{count} entries of {value_len} bytes");
        assert_eq!(seen[0].1, 0, "recent since version 0");
    }
}
