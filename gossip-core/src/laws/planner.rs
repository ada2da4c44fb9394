//! The same laws through the real planner and packer (`delta::plan`, `Budget`).

use super::*;

#[derive(Debug, Clone)]
struct SyncCase {
    before: Vec<Op>,
    after: Vec<Op>,
    synced: Option<Index>,
    /// Bytes per datagram for the deltas, small enough to force cuts.
    room: usize,
    collect: bool,
    seed: u64,
}

fn sync_case() -> impl Strategy<Value = SyncCase> {
    (
        vec(op(), 1..16),
        vec(op(), 0..16),
        proptest::option::of(any::<Index>()),
        90usize..400,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(before, after, synced, room, collect, seed)| SyncCase {
            before,
            after,
            synced,
            room,
            collect,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// A stale replica that repeatedly sends its digest entry and applies what
    /// `digest::compare` plans and `delta::pack` packs in small datagrams reaches exactly the
    /// owner's live state, with no hole on the way and no deleted key coming back, whether
    /// or not the owner collected its tombstones.
    #[test]
    fn digest_and_pack_bring_a_stale_replica_to_the_owner(case in sync_case()) {
        let now = t0();
        let identity = Identity::new(OWNER, GENERATION, owner_address());
        let mut table = NodeTable::new(&identity);
        let write_all = |table: &mut NodeTable, ops: &[Op]| {
            table.modify(LOCAL, |_, owner| run_ops(owner, ops, now));
        };
        write_all(&mut table, &case.before);
        let mut replica = fresh();
        let first = cut_at(table.local(), 0, case.synced, false);
        let _ = apply(&mut replica, &first, now)?;
        write_all(&mut table, &case.after);
        if case.collect {
            table.collect_garbage(now + GRACE + Duration::from_secs(1));
        }
        let owner_entries = snapshot(table.local());
        let owner_max = table.local().max_version;

        let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
        let mut metrics = Metrics::default();
        let mut rounds = 0;
        let mut before = replica.max_version;
        let mut resets = 0;
        while replica.max_version < owner_max {
            rounds += 1;
            prop_assert!(rounds <= 64, "no convergence");
            let ours = digest::entry(OWNER, &replica);
            let limits = digest::Limits { max_nodes: 16, max_version_jump: u64::MAX };
            let source = crate::membership::Source::Sender("peer");
            let mut comparison = digest::compare(&table, &[ours.into()], limits, source, &mut metrics);
            prop_assert_eq!(comparison.deltas.len(), 1, "the owner is ahead, so it plans one delta");
            let mut budget = Budget::new(case.room, 0);
            let plans = delta::by_need(std::mem::take(&mut comparison.deltas), &mut rng);
            let (deltas, _) = delta::pack(&table, plans, &mut budget);
            prop_assert_eq!(deltas.len(), 1, "room for one entry at least");
            let applied = apply(&mut replica, &deltas[0], now)?;
            prop_assert!(applied.is_ok(), "a planned delta was refused: {:?} {:?}", deltas[0], applied);
            // A reset cut by the datagram may leave the rebuilt replica below the version it had
            // reached (its shadow keeps the application's view): progress counts from there.
            // Its watermark is then the owner's, so no second reset is planned.
            let reset = applied.as_ref().is_ok_and(|applied| applied.reset);
            resets += usize::from(reset);
            prop_assert!(resets <= 1, "a second reset");
            prop_assert!(reset || replica.max_version > before, "no progress");
            before = replica.max_version;
        }
        prop_assert_eq!(live(&snapshot(&replica)), live(&owner_entries));
        if rounds > 0 {
            // Caught up by deltas: tombstones too, and the watermark.
            prop_assert_eq!(state(&replica), state(table.local()));
        }
        for key in KEYS {
            prop_assert_eq!(replica.get(key).is_some(), table.local().get(key).is_some(), "key {} came back", key);
        }
        prop_assert_eq!(metrics, Metrics::default());
    }
}
