//! The application-message studies on small clusters, with invariants checked at every step:
//! a broadcast reaches every member within `ceil(log2 n) + 4` rounds, a query to every member
//! collects every answer, and a write request goes around a one-way cut and comes back as a
//! write the asker sees (and the ledger of writes stays in step with the owner's table).

use std::time::Duration;

use gossip_core::Config;
use gossip_core::sim::{Checks, LinkModel, seed_from_env};
use gossip_sim::messages::MessageStudy;

fn study(nodes: usize) -> MessageStudy {
    MessageStudy::new(nodes, Config::lan()).with_checks(Checks::EveryStep).with_window_rounds(20)
}

#[test]
fn a_broadcast_reaches_every_member_in_time_and_costs_bytes() {
    for seed in 1..=3 {
        let seed = seed_from_env(seed);
        let outcome = study(40).broadcast(seed).expect("runs");
        let bound = (40f64).log2().ceil() + 4.0;
        assert_eq!(outcome.reached, 39, "seed {seed}");
        assert!(outcome.rounds_to_all.is_some_and(|rounds| rounds <= bound), "seed {seed}: {outcome:?}");
        // At least one copy per member; at most the retransmit limit (12 at n = 40) of
        // datagrams of at most 100 bytes each.
        assert!((16.0..1_200.0).contains(&outcome.bytes_per_member), "seed {seed}: {outcome:?}");
    }
}

#[test]
fn a_query_to_every_member_collects_every_answer() {
    for seed in 1..=3 {
        let seed = seed_from_env(seed);
        let outcome = study(30).query(seed, Duration::from_secs(3)).expect("runs");
        assert_eq!(outcome.answers, outcome.asked, "seed {seed}: {outcome:?}");
        assert_eq!(outcome.finished_with, Some(outcome.answers), "seed {seed}");
    }
}

#[test]
fn a_write_request_goes_around_a_one_way_cut() {
    for seed in 1..=3 {
        let seed = seed_from_env(seed);
        let lossy = study(20).with_link(LinkModel::fixed(Duration::from_millis(1)).with_loss(0.05));
        let outcome = lossy.write_request(seed).expect("runs");
        assert!(outcome.accepted, "seed {seed}: {outcome:?}");
        assert!(outcome.relays > 0, "seed {seed}: the asker cannot reach the owner directly");
        let (seen, plain) = (outcome.request_seen_seconds, outcome.plain_spread_seconds);
        assert!(seen.zip(plain).is_some_and(|(seen, plain)| seen <= 3.0 * plain), "seed {seed}: {outcome:?}");
    }
}
