//! With the `metrics` feature, a running node publishes its counters and gauges to the
//! recorder the application installed: two nodes on loopback, checked through
//! `metrics-util`'s debugging recorder.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gossip_runtime::suite::fast_config;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

/// Longest the test waits for the published values (real sockets, so a bound, not a sleep).
const LIMIT: Duration = Duration::from_secs(15);

/// The value of every series of node `node`, by name and (for `gossip_members`) state.
fn published(snapshotter: &Snapshotter, node: &str) -> HashMap<(MetricKind, String, String), f64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key: CompositeKey = key;
        let labels: Vec<_> =
            key.key().labels().map(|label| (label.key().to_owned(), label.value().to_owned())).collect();
        if !labels.iter().any(|(name, value)| name == "node" && value == node) {
            continue;
        }
        let state = labels.iter().find(|(name, _)| name == "state").map(|(_, value)| value.clone());
        let value = match value {
            DebugValue::Counter(count) => count as f64,
            DebugValue::Gauge(gauge) => gauge.into_inner(),
            DebugValue::Histogram(_) => continue,
        };
        out.insert((key.kind(), key.key().name().to_owned(), state.unwrap_or_default()), value);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_publishes_counters_and_gauges() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test binary");

    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let (a, _a_events) = gossip_tokio::start(fast_config(), "a", loopback).await.expect("a starts");
    let (b, _b_events) = gossip_tokio::start(fast_config(), "b", loopback).await.expect("b starts");
    b.set("role", "cache").await.expect("b writes");
    b.join([a.local_addr()]).await.expect("b joins a");

    let gauge = |name: &str, state: &str| (MetricKind::Gauge, name.to_owned(), state.to_owned());
    let counter = |name: &str| (MetricKind::Counter, name.to_owned(), String::new());
    let give_up = Instant::now() + LIMIT;
    loop {
        let seen = published(&snapshotter, "a");
        let alive = seen.get(&gauge("gossip_members", "alive")).copied().unwrap_or(0.0);
        let keys = seen.get(&gauge("gossip_keys", "")).copied().unwrap_or(0.0);
        let received = seen.get(&counter("gossip_datagrams_in_total")).copied().unwrap_or(0.0);
        let driver_received =
            seen.get(&counter("gossip_driver_datagrams_received_total")).copied().unwrap_or(0.0);
        if alive == 2.0 && keys >= 1.0 && received > 0.0 && driver_received > 0.0 {
            // Every core and driver counter is registered, and local health is a gauge.
            let metrics = a.metrics().await.expect("a runs");
            for (field, _) in metrics.core.counters() {
                assert!(seen.contains_key(&counter(&format!("gossip_{field}_total"))), "{field} missing");
            }
            for (field, _) in metrics.driver.counters() {
                assert!(
                    seen.contains_key(&counter(&format!("gossip_driver_{field}_total"))),
                    "{field} missing"
                );
            }
            assert!(seen.contains_key(&gauge("gossip_local_health", "")), "local health missing");
            assert_eq!(seen.get(&gauge("gossip_members", "dead")), Some(&0.0));
            // The published counters never run ahead of the node's own.
            assert!(received <= metrics.core.datagrams_in as f64);
            break;
        }
        assert!(Instant::now() < give_up, "not published within {LIMIT:?}: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each node publishes under its own label.
    assert!(!published(&snapshotter, "b").is_empty(), "b published nothing");
    a.shutdown().await;
    b.shutdown().await;
}
