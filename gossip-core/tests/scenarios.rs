//! Scenario tests: a few nodes driven by hand with explicit time.

mod common;

use std::time::Duration;

use common::{Harness, name};
use gossip_core::{AntiEntropyMode, Config};

fn config(mode: AntiEntropyMode) -> Config {
    let mut config = Config::lan();
    config.mode = mode;
    config
}

fn converges_in(mode: AntiEntropyMode) {
    let mut h = Harness::new(3, config(mode), 7);
    for i in 0..3 {
        h.nodes[i].set(format!("key-{i}"), format!("value-{i}")).unwrap();
    }
    let took = h.run_until_true(Duration::from_secs(30), Duration::from_millis(100), |h| {
        (0..3).all(|reader| {
            (0..3).all(|owner| {
                h.nodes[reader].get(&name(owner), &format!("key-{owner}")).map(|v| &v[..])
                    == Some(format!("value-{owner}").as_bytes())
            })
        })
    });
    assert!(took.is_some(), "{mode:?}: three nodes did not converge within 30 s");
    h.run_for(Duration::from_secs(2));
    assert!(h.in_sync(), "{mode:?}: digests differ after convergence");
    assert!(h.max_datagram <= 1400);
}

#[test]
fn three_nodes_converge_in_push_pull() {
    converges_in(AntiEntropyMode::PushPull);
}

#[test]
fn three_nodes_converge_in_pull() {
    converges_in(AntiEntropyMode::Pull);
}
