//! The scenario suite every adapter runs, written once against the small [`Harness`] trait.
//!
//! An adapter's `tests/scenarios.rs` implements [`Harness`] for its runtime and invokes
//! [`scenario_tests!`](crate::scenario_tests), which expands to one `#[test]` per scenario.
//! Every scenario runs real nodes on `127.0.0.1`, with a fast configuration
//! ([`fast_config`]), bounded waits, and an overall limit of [`SCENARIO_LIMIT`].

// A test suite: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use gossip_core::{
    Config, EncryptionMode, Event, KeyringError, MemberState, QueryFilter, RequestOutcome, SecretKey,
};

use crate::{Error, Events, Handle, KeyValue, Member, Options};

/// The longest one scenario may run before it fails.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(25);

/// The longest one step of a scenario (convergence, detection, ...) may take.
pub const STEP_LIMIT: Duration = Duration::from_secs(10);

/// How often a waiting step checks again.
const POLL: Duration = Duration::from_millis(50);

/// What the suite needs from a runtime.
pub trait Harness: 'static {
    /// Runs `future` to completion on this runtime, blocking the calling thread.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// The adapter's `start_with`.
    fn start(
        config: Config,
        name: String,
        bind: SocketAddr,
        options: Options,
    ) -> impl Future<Output = Result<(Handle, Events), Error>>;

    /// Waits for `duration`.
    fn sleep(duration: Duration) -> impl Future<Output = ()>;
}

/// Expands to one `#[test]` per scenario of [`crate::suite`] for the given [`Harness`].
#[macro_export]
macro_rules! scenario_tests {
    ($harness:ty) => {
        #[test]
        fn five_nodes_converge_on_membership_and_a_key() {
            $crate::suite::run::<$harness, _>($crate::suite::five_nodes_converge::<$harness>());
        }

        #[test]
        fn killed_node_is_reported_failed() {
            $crate::suite::run::<$harness, _>($crate::suite::killed_node_is_reported_failed::<$harness>());
        }

        #[test]
        fn node_that_leaves_is_reported_left_not_failed() {
            $crate::suite::run::<$harness, _>($crate::suite::node_that_leaves_is_reported_left::<$harness>());
        }

        #[test]
        fn restarted_node_with_a_new_generation_is_accepted() {
            $crate::suite::run::<$harness, _>($crate::suite::restarted_node_is_accepted::<$harness>());
        }

        #[test]
        fn messages_and_broadcasts_reach_their_members() {
            $crate::suite::run::<$harness, _>($crate::suite::messages_and_broadcasts::<$harness>());
        }

        #[test]
        fn a_query_is_answered_and_a_write_request_is_written_by_its_owner() {
            $crate::suite::run::<$harness, _>($crate::suite::query_and_write_request::<$harness>());
        }

        #[test]
        fn nodes_agree_on_an_aggregate() {
            $crate::suite::run::<$harness, _>($crate::suite::nodes_agree_on_an_aggregate::<$harness>());
        }

        #[test]
        fn sealed_cluster_refuses_another_key_and_survives_a_rotation() {
            $crate::suite::run::<$harness, _>($crate::suite::sealed_cluster_and_key_rotation::<$harness>());
        }

        #[test]
        fn a_join_nobody_answers_fails_naming_the_seed() {
            $crate::suite::run::<$harness, _>($crate::suite::a_join_nobody_answers_fails::<$harness>());
        }

        #[test]
        fn state_is_read_whole_and_watched_without_loss() {
            $crate::suite::run::<$harness, _>($crate::suite::state_is_read_and_watched::<$harness>());
        }

        #[test]
        fn seeds_given_by_name_are_resolved_and_joined() {
            $crate::suite::run::<$harness, _>($crate::suite::seeds_by_name::<$harness>());
        }

        #[test]
        fn malformed_datagram_is_counted_and_ignored() {
            $crate::suite::run::<$harness, _>($crate::suite::malformed_datagram_is_ignored::<$harness>());
        }
    };
}

/// Runs one scenario on `H`, failing it if it takes longer than [`SCENARIO_LIMIT`].
pub fn run<H: Harness, F: Future<Output = ()>>(scenario: F) {
    let finished = H::block_on(futures_lite::future::or(
        async {
            scenario.await;
            true
        },
        async {
            H::sleep(SCENARIO_LIMIT).await;
            false
        },
    ));
    assert!(finished, "the scenario did not finish within {SCENARIO_LIMIT:?}");
}

/// `Config::local()` with shorter SWIM timings, so that failures are detected in a second or
/// two, and its own cluster name.
pub fn fast_config() -> Config {
    let mut config = Config::local().with_cluster("suite");
    config.gossip_interval = Duration::from_millis(100);
    config.swim.probe_interval = Duration::from_millis(300);
    config.swim.probe_timeout = Duration::from_millis(150);
    config.swim.leave_timeout = Duration::from_secs(2);
    config.swim.join_retry_initial = Duration::from_millis(200);
    config.swim.join_timeout = Duration::from_secs(2);
    // Aggregation epochs of 1.5 s.
    config.aggregation.interval = Duration::from_millis(50);
    config.aggregation.epoch_rounds = 30;
    config
}

/// Checks `$check` (which may `.await`) every [`POLL`] until it holds, failing the scenario
/// after [`STEP_LIMIT`]; `$nodes` have their events collected meanwhile.
macro_rules! eventually {
    ($harness:ty, $nodes:expr, $what:expr, $check:expr) => {{
        let deadline = Instant::now() + STEP_LIMIT;
        loop {
            collect(&mut $nodes);
            if $check {
                // Events emitted before the state that satisfied the check are queued by now.
                collect(&mut $nodes);
                break;
            }
            assert!(Instant::now() < deadline, "timed out after {STEP_LIMIT:?} waiting until {}", $what);
            <$harness>::sleep(POLL).await;
        }
    }};
}

/// One node under test, with the events it has emitted so far.
struct TestNode {
    handle: Handle,
    events: Events,
    seen: Vec<Event>,
}

fn collect(nodes: &mut [TestNode]) {
    for node in nodes {
        while let Some(event) = node.events.try_next() {
            node.seen.push(event);
        }
    }
}

fn name(index: usize) -> String {
    format!("node-{index}")
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start_node<H: Harness>(index: usize, bind: SocketAddr, options: Options) -> TestNode {
    let (handle, events) =
        H::start(fast_config(), name(index), bind, options).await.expect("the node starts on 127.0.0.1");
    assert_ne!(handle.local_addr().port(), 0, "the bound port is reported");
    TestNode { handle, events, seen: Vec::new() }
}

/// Starts `n` nodes on 127.0.0.1; every node but the first joins the first.
async fn start_cluster<H: Harness>(n: usize) -> Vec<TestNode> {
    let mut nodes = Vec::with_capacity(n);
    for index in 0..n {
        nodes.push(start_node::<H>(index, localhost(), Options::default()).await);
    }
    let seed = nodes[0].handle.local_addr();
    for node in &nodes[1..] {
        node.handle.join([seed]).await.expect("the node runs");
    }
    nodes
}

async fn members(handle: &Handle) -> Vec<Member> {
    handle.members().await.expect("the node runs")
}

/// Whether `handle` sees a member `name` for which `check` holds.
async fn sees(handle: &Handle, name: &str, check: impl Fn(&Member) -> bool) -> bool {
    members(handle).await.iter().any(|member| member.name == name && check(member))
}

/// Whether each of `nodes` sees every other one alive.
async fn all_alive(nodes: &[TestNode]) -> bool {
    for node in nodes {
        for other in nodes {
            let other = other.handle.name();
            if other != node.handle.name()
                && !sees(&node.handle, other, |m| m.state == MemberState::Alive).await
            {
                return false;
            }
        }
    }
    true
}

async fn shutdown_all(nodes: &[TestNode]) {
    for node in nodes {
        node.handle.shutdown().await;
        assert!(node.handle.is_closed(), "the driver task ended");
    }
}

/// Five nodes converge on membership, then on a key one of them writes, then on its deletion.
pub async fn five_nodes_converge<H: Harness>() {
    let mut nodes = start_cluster::<H>(5).await;
    eventually!(H, nodes, "every node sees the four others alive", all_alive(&nodes).await);

    let writer = nodes[2].handle.clone();
    writer.set("color", "blue").await.expect("a small write is accepted");
    eventually!(H, nodes, "every node holds node-2's color", {
        let mut all = true;
        for node in &nodes {
            all &= node.handle.get("node-2", "color").await.expect("runs").as_deref() == Some(&b"blue"[..]);
        }
        all
    });
    for node in nodes.iter().filter(|node| node.handle.name() != "node-2") {
        assert!(
            node.seen.iter().any(|event| matches!(event, Event::KeysChanged { node, changes } if node.as_str() == "node-2" && changes.iter().any(|change| change.key() == "color"))),
            "{} reported the key change",
            node.handle.name()
        );
    }

    assert!(writer.delete("color").await.expect("runs").is_some());
    eventually!(H, nodes, "the deletion reaches every node", {
        let mut all = true;
        for node in &nodes {
            all &= node.handle.get("node-2", "color").await.expect("runs").is_none();
        }
        all
    });
    shutdown_all(&nodes).await;
    assert!(matches!(writer.set("color", "red").await, Err(Error::Closed)), "a stopped node says so");
}

/// A broadcast reaches each of four other nodes once (not its sender); a direct message
/// reaches its member; a message to nobody is a typed error.
pub async fn messages_and_broadcasts<H: Harness>() {
    let mut nodes = start_cluster::<H>(5).await;
    eventually!(H, nodes, "every node sees the four others alive", all_alive(&nodes).await);
    nodes[1].handle.broadcast("deploy", "v2").await.expect("a small broadcast");
    nodes[3].handle.send_to("node-0", "hi").await.expect("a live member");
    let broadcasts = |node: &TestNode| {
        node.seen.iter().filter(|event| matches!(event, Event::Broadcast { origin, topic, payload } if origin == "node-1" && topic == "deploy" && payload.as_ref() == b"v2")).count()
    };
    eventually!(H, nodes, "every other node got the broadcast and node-0 the message", {
        let got_message = nodes[0].seen.iter().any(|event| matches!(event, Event::Message { from, payload } if from == "node-3" && payload.as_ref() == b"hi"));
        got_message
            && nodes.iter().filter(|node| node.handle.name() != "node-1").all(|node| broadcasts(node) == 1)
    });
    assert_eq!(broadcasts(&nodes[1]), 0, "the sender does not get its own broadcast");
    assert!(
        matches!(nodes[0].handle.send_to("nobody", "x").await, Err(Error::Message(_))),
        "a message to an unknown member is refused"
    );
    shutdown_all(&nodes).await;
}

/// A query to one member by name is answered; a write request to an owner is accepted by its
/// application, written, and the requester learns the version and then sees the value.
pub async fn query_and_write_request<H: Harness>() {
    let mut nodes = start_cluster::<H>(4).await;
    eventually!(H, nodes, "every node sees the three others alive", all_alive(&nodes).await);
    let filter = QueryFilter::Names(vec!["node-2".to_owned()]);
    let id = nodes[0].handle.query("ping", "?", filter, Duration::from_secs(5)).await.expect("a query");
    let query = |node: &TestNode| {
        node.seen.iter().find_map(|event| match event {
            Event::Query { query, .. } => Some(query.clone()),
            _ => None,
        })
    };
    eventually!(H, nodes, "node-2 got the query", query(&nodes[2]).is_some());
    assert!(query(&nodes[1]).is_none() && query(&nodes[3]).is_none(), "only node-2 is asked");
    let asked = query(&nodes[2]).expect("got it");
    nodes[2].handle.respond(asked, "pong").await.expect("within the timeout");
    eventually!(H, nodes, "node-0 got the answer", {
        nodes[0].seen.iter().any(|event| matches!(event, Event::QueryResponse { query, from, payload } if *query == id && from == "node-2" && payload.as_ref() == b"pong"))
    });

    let id = nodes[1].handle.request_write("node-3", "color", "blue").await.expect("a request");
    let request = |node: &TestNode| {
        node.seen.iter().find_map(|event| match event {
            Event::WriteRequested { request, .. } => Some(request.clone()),
            _ => None,
        })
    };
    eventually!(H, nodes, "node-3 is asked", request(&nodes[3]).is_some());
    let version = nodes[3].handle.accept_write(request(&nodes[3]).expect("asked")).await.expect("accepted");
    eventually!(H, nodes, "node-1 learns the outcome and sees the value", {
        let told = nodes[1].seen.iter().any(|event| matches!(event, Event::WriteAnswered { request, outcome: RequestOutcome::Accepted { version: v }, .. } if *request == id && *v == version));
        told && nodes[1].handle.get("node-3", "color").await.expect("runs").as_deref() == Some(&b"blue"[..])
    });
    shutdown_all(&nodes).await;
}

/// Four nodes contribute 1, 2, 3 and 4 to an aggregate: once an epoch ends, every node reads
/// the average, sum, count, minimum and maximum.
pub async fn nodes_agree_on_an_aggregate<H: Harness>() {
    let mut nodes = start_cluster::<H>(4).await;
    eventually!(H, nodes, "every node sees the three others alive", all_alive(&nodes).await);
    for (index, node) in nodes.iter().enumerate() {
        node.handle.aggregate_set("load", index as f64 + 1.0).await.expect("a finite value is accepted");
    }
    let close = |x: Option<f64>, truth: f64| x.is_some_and(|x| (x - truth).abs() < 1e-3 * truth);
    eventually!(H, nodes, "every node has the aggregate of a whole epoch", {
        let mut all = true;
        for node in &nodes {
            let estimate = node.handle.aggregate("load").await.expect("runs");
            all &= estimate.is_some_and(|e| {
                close(e.average, 2.5) && close(e.sum, 10.0) && close(e.count, 4.0) && e.max == Some(4.0)
            });
        }
        all
    });
    assert!(
        matches!(nodes[0].handle.aggregate_set("load", f64::NAN).await, Err(Error::Aggregate(_))),
        "a value that is not finite is refused"
    );
    shutdown_all(&nodes).await;
}

/// A node shut down without leaving is declared failed by every other node.
pub async fn killed_node_is_reported_failed<H: Harness>() {
    let mut nodes = start_cluster::<H>(5).await;
    eventually!(H, nodes, "every node sees the four others alive", all_alive(&nodes).await);

    let victim = nodes.pop().expect("five nodes");
    victim.handle.shutdown().await;
    assert!(victim.handle.is_closed());
    eventually!(H, nodes, "every survivor sees node-4 dead", {
        let mut all = true;
        for node in &nodes {
            all &= sees(&node.handle, "node-4", |m| m.state == MemberState::Dead).await;
        }
        all
    });
    for node in &nodes {
        assert!(
            node.seen
                .iter()
                .any(|event| matches!(event, Event::MemberFailed { name, .. } if name == "node-4")),
            "{} reported node-4 failed",
            node.handle.name()
        );
    }
    shutdown_all(&nodes).await;
}

/// A node that leaves gracefully is reported left, and never failed.
pub async fn node_that_leaves_is_reported_left<H: Harness>() {
    let mut nodes = start_cluster::<H>(5).await;
    eventually!(H, nodes, "every node sees the four others alive", all_alive(&nodes).await);

    let leaver = nodes.pop().expect("five nodes");
    leaver.handle.leave().await.expect("the leave completes");
    leaver.handle.shutdown().await;
    eventually!(H, nodes, "every survivor sees node-4 left", {
        let mut all = true;
        for node in &nodes {
            all &= sees(&node.handle, "node-4", |m| m.state == MemberState::Left).await;
        }
        all
    });
    // Longer than the suspicion timeout of `fast_config`: a missed leave would show by now.
    H::sleep(Duration::from_secs(2)).await;
    collect(&mut nodes);
    for node in &nodes {
        assert!(sees(&node.handle, "node-4", |m| m.state == MemberState::Left).await, "still left");
        assert!(
            node.seen.iter().any(|event| matches!(event, Event::MemberLeft { name, .. } if name == "node-4")),
            "{} reported node-4 left",
            node.handle.name()
        );
        assert!(
            !node
                .seen
                .iter()
                .any(|event| matches!(event, Event::MemberFailed { name, .. } if name == "node-4")),
            "{} reported node-4 failed although it left",
            node.handle.name()
        );
    }
    shutdown_all(&nodes).await;
}

/// A node restarted on the same address under a higher generation is accepted: every other
/// node drops the old generation and sees the new one alive.
pub async fn restarted_node_is_accepted<H: Harness>() {
    let mut nodes = start_cluster::<H>(5).await;
    eventually!(H, nodes, "every node sees the four others alive", all_alive(&nodes).await);

    let old = nodes.pop().expect("five nodes");
    let (address, generation) = (old.handle.local_addr(), old.handle.generation());
    old.handle.shutdown().await;
    let restarted = start_node::<H>(4, address, Options::default().with_generation(generation + 1)).await;
    assert_eq!(restarted.handle.local_addr(), address, "the same address is reused");
    restarted.handle.join([nodes[0].handle.local_addr()]).await.expect("runs");
    nodes.push(restarted);

    eventually!(H, nodes, "every node sees node-4's new generation alive", {
        let mut all = all_alive(&nodes).await;
        for node in &nodes[..4] {
            all &= sees(&node.handle, "node-4", |m| m.generation == generation + 1).await;
        }
        all
    });
    for node in &nodes[..4] {
        assert!(
            node.seen.iter().any(|event| matches!(
                event,
                Event::MemberRestarted { name, generation: new, .. } if name == "node-4" && *new == generation + 1
            )),
            "{} reported node-4's restart",
            node.handle.name()
        );
    }
    shutdown_all(&nodes).await;
}

/// A datagram that is not an envelope, sent from a raw socket, is counted and dropped, and
/// the node keeps working.
pub async fn malformed_datagram_is_ignored<H: Harness>() {
    let mut nodes = start_cluster::<H>(3).await;
    eventually!(H, nodes, "every node sees the two others alive", all_alive(&nodes).await);

    let target = nodes[0].handle.clone();
    let before = target.metrics().await.expect("runs");
    let raw = UdpSocket::bind(localhost()).expect("a raw socket on 127.0.0.1");
    raw.send_to(&[0xff; 64], target.local_addr()).expect("sent");
    eventually!(H, nodes, "the bad datagram is counted", {
        let after = target.metrics().await.expect("runs");
        after.core.decode_errors > before.core.decode_errors
    });

    nodes[1].handle.set("after", "still working").await.expect("accepted");
    eventually!(H, nodes, "node-0 still learns node-1's writes", {
        target.get("node-1", "after").await.expect("runs").as_deref() == Some(&b"still working"[..])
    });
    assert!(all_alive(&nodes).await, "membership is intact");
    shutdown_all(&nodes).await;
}

/// A join to an address where nothing answers fails after `join_timeout` with the seed and
/// `NoAnswer`; a join to a live node succeeds once it answered.
pub async fn a_join_nobody_answers_fails<H: Harness>() {
    let nodes = start_cluster::<H>(2).await;
    // A port that was just free on 127.0.0.1: nothing answers there.
    let silent = UdpSocket::bind(localhost()).expect("a socket").local_addr().expect("an address");
    let lone = start_node::<H>(2, localhost(), Options::default()).await;
    let began = Instant::now();
    match lone.handle.join([silent]).await {
        Err(crate::Error::JoinFailed(seeds)) => {
            assert_eq!(seeds, vec![(silent, gossip_core::JoinProblem::NoAnswer)]);
            let message = crate::Error::JoinFailed(seeds).to_string();
            assert!(message.contains(&silent.to_string()) && message.contains("no answer"), "{message}");
        }
        other => panic!("a join nobody answers must fail, got {other:?}"),
    }
    // Commands are stamped with the time of the node's latest input or timer (at most a
    // probe interval ago here), so the timeout may end that much early.
    let waited = began.elapsed();
    assert!(
        waited + fast_config().swim.probe_interval >= fast_config().swim.join_timeout,
        "waited {waited:?}"
    );
    // Still trying in the background: a live seed given now answers, and the join resolves.
    lone.handle.join([nodes[0].handle.local_addr()]).await.expect("a live seed answers");
    shutdown_all(&nodes).await;
    lone.handle.shutdown().await;
}

/// A test key: 32 bytes of `byte`.
fn test_key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).expect("32 bytes")
}

/// Starts node `index` on 127.0.0.1 in [`EncryptionMode::Require`] with `key` as its only key.
async fn start_sealed<H: Harness>(index: usize, key: &SecretKey) -> TestNode {
    let mut config = fast_config();
    config.encryption = EncryptionMode::Require;
    let options = Options::default().with_key(key.clone());
    let (handle, events) =
        H::start(config, name(index), localhost(), options).await.expect("a sealed node starts on 127.0.0.1");
    TestNode { handle, events, seen: Vec::new() }
}

/// Sealed datagrams a node dropped because no key of its ring opens them.
async fn refused_sealed(handle: &Handle) -> u64 {
    let metrics = handle.metrics().await.expect("the node runs").core;
    metrics.unknown_key_ids + metrics.unauthentic_datagrams
}

/// Whether every one of `nodes` holds `node`'s `key` with `value`.
async fn all_hold(nodes: &[TestNode], node: &str, key: &str, value: &[u8]) -> bool {
    for holder in nodes {
        if holder.handle.get(node, key).await.expect("the node runs").as_deref() != Some(value) {
            return false;
        }
    }
    true
}

/// Three nodes sealing with one key (mode `Require`) converge on membership and a key; a
/// fourth node sealing with another key is never admitted (the others count its datagrams as
/// unopenable, and nobody lists it); then a rotation through the handles (install the new
/// key everywhere, use it everywhere, remove the old one everywhere) keeps the three
/// converged, and a key written after it reaches every node.
pub async fn sealed_cluster_and_key_rotation<H: Harness>() {
    let (old, foreign, new) = (test_key(1), test_key(2), test_key(3));
    let (old_fp, new_fp) = (old.fingerprint(), new.fingerprint());
    assert_ne!(old_fp.key_id(), new_fp.key_id(), "the test keys can share one ring");

    let mut nodes = Vec::new();
    for index in 0..3 {
        nodes.push(start_sealed::<H>(index, &old).await);
    }
    let addresses: Vec<SocketAddr> = nodes.iter().map(|node| node.handle.local_addr()).collect();
    for node in &nodes[1..] {
        node.handle.join([addresses[0]]).await.expect("the node runs");
    }
    eventually!(H, nodes, "every sealed node sees the two others alive", all_alive(&nodes).await);
    for node in &nodes {
        assert_eq!(node.handle.encryption().await.expect("runs"), EncryptionMode::Require);
        assert_eq!(node.handle.keys().await.expect("runs"), vec![old_fp]);
    }
    nodes[0].handle.set("color", "green").await.expect("a small write is accepted");
    eventually!(
        H,
        nodes,
        "every node holds node-0's color",
        all_hold(&nodes, "node-0", "color", b"green").await
    );
    eventually!(H, nodes, "every node sees all three holding and sealing with the key", {
        let mut all = true;
        for node in &nodes {
            let status = node.handle.keyring_status().await.expect("runs");
            all &= status.live_members == 3
                && status.unknown == 0
                && status.key(old_fp).is_some_and(|k| k.holders == 3 && k.primary_for == 3);
        }
        all
    });
    assert!(
        matches!(nodes[0].handle.set("gossip.keyring", "x").await, Err(Error::Write(_))),
        "the library's own key is reserved"
    );

    // A node with another key knocks on every door.
    let mut before = Vec::new();
    for node in &nodes {
        before.push(refused_sealed(&node.handle).await);
    }
    let intruder = start_sealed::<H>(3, &foreign).await;
    // Nobody answers it: its join fails (after `join_timeout`), naming every seed.
    match intruder.handle.join(addresses.iter().copied()).await {
        Err(crate::Error::JoinFailed(seeds)) => {
            assert_eq!(seeds.iter().map(|(seed, _)| *seed).collect::<Vec<_>>(), addresses);
        }
        other => panic!("the intruder's join must fail, got {other:?}"),
    }
    eventually!(H, nodes, "every node refuses the intruder's datagrams", {
        let mut all = true;
        for (node, before) in nodes.iter().zip(&before) {
            all &= refused_sealed(&node.handle).await > *before;
        }
        all
    });
    // Several join retries and gossip rounds later, still nobody has let it in.
    H::sleep(Duration::from_secs(1)).await;
    for node in &nodes {
        assert!(!sees(&node.handle, "node-3", |_| true).await, "{} lists the intruder", node.handle.name());
    }
    assert_eq!(members(&intruder.handle).await.len(), 1, "the intruder knows only itself");

    // Rotation, step 1: install the new key everywhere and wait until all hold it.
    for node in &nodes {
        assert_eq!(node.handle.install_key(&new).await.expect("installed"), new_fp);
    }
    eventually!(H, nodes, "every node sees all three holding the new key", {
        let mut all = true;
        for node in &nodes {
            let status = node.handle.keyring_status().await.expect("runs");
            all &= status.key(new_fp).is_some_and(|k| k.holders == 3 && k.installed_here && !k.primary_here);
        }
        all
    });
    assert!(
        matches!(
            nodes[0].handle.remove_key(old_fp).await,
            Err(Error::Keyring(KeyringError::RemovingPrimary(fp))) if fp == old_fp
        ),
        "the primary key cannot be removed"
    );
    // Step 2: seal with it everywhere.
    for node in &nodes {
        node.handle.use_key(new_fp).await.expect("installed");
    }
    eventually!(H, nodes, "every node sees all three sealing with the new key", {
        let mut all = true;
        for node in &nodes {
            let status = node.handle.keyring_status().await.expect("runs");
            all &= status.key(new_fp).is_some_and(|k| k.primary_for == 3 && k.primary_here);
        }
        all
    });
    // Step 3: remove the old key everywhere.
    for node in &nodes {
        node.handle.remove_key(old_fp).await.expect("no longer the primary");
        assert_eq!(node.handle.keys().await.expect("runs"), vec![new_fp]);
    }
    nodes[1].handle.set("after", "rotation").await.expect("accepted");
    eventually!(H, nodes, "a key written after the rotation reaches every node", {
        all_hold(&nodes, "node-1", "after", b"rotation").await
    });
    eventually!(H, nodes, "every node sees only the new key held, by all three", {
        let mut all = true;
        for node in &nodes {
            let status = node.handle.keyring_status().await.expect("runs");
            all &= status.key(old_fp).is_none()
                && status.key(new_fp).is_some_and(|k| k.holders == 3 && k.primary_for == 3);
        }
        all
    });
    assert!(all_alive(&nodes).await, "membership survived the rotation");
    for node in &nodes {
        assert!(!sees(&node.handle, "node-3", |_| true).await, "{} lists the intruder", node.handle.name());
    }
    shutdown_all(&nodes).await;
    intruder.handle.shutdown().await;
}

/// Three nodes register services under `svc/`: the prefix query and a prefix watch list them
/// across the cluster, a snapshot holds every member with its table, a watch that is never
/// read while many updates happen still gives the latest state, and an event stream too
/// small for the updates says how many events it lost (`Event::Lagged`).
pub async fn state_is_read_and_watched<H: Harness>() {
    let mut nodes = start_cluster::<H>(3).await;
    eventually!(H, nodes, "every node sees the two others alive", all_alive(&nodes).await);
    let observer = nodes[0].handle.clone();
    let mut services = observer.watch_prefix("svc/").await.expect("the node runs");
    let mut membership = observer.watch_members().await.expect("the node runs");
    assert_eq!(membership.get().len(), 3, "the watch starts with the current members");
    for (index, node) in nodes.iter().enumerate() {
        node.handle.set(format!("svc/{index}"), format!("10.0.0.{index}:80")).await.expect("runs");
        node.handle.set("other", "x").await.expect("runs");
    }
    let wanted = |list: &[KeyValue]| {
        list.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>() == ["svc/0", "svc/1", "svc/2"]
    };
    eventually!(H, nodes, "the prefix query lists the three services", {
        wanted(&observer.entries_with_prefix("svc/").await.expect("runs"))
    });
    // The watch has the latest state, however late it is read.
    let mut latest = services.get();
    while !wanted(&latest) {
        latest = services.changed().await.expect("the node runs");
    }
    assert!(
        latest.iter().all(|kv| kv.key.starts_with("svc/") && kv.node == format!("node-{}", &kv.key[4..]))
    );
    // Many updates of one service while nobody reads the watch: the watch skips to the last.
    for round in 0..50 {
        nodes[1].handle.set("svc/1", format!("10.0.0.1:{round}")).await.expect("runs");
    }
    let last = b"10.0.0.1:49";
    eventually!(H, nodes, "the last update reaches the observer", {
        observer.get("node-1", "svc/1").await.expect("runs").as_deref() == Some(&last[..])
    });
    let mut seen = services.get();
    while !seen.iter().any(|kv| kv.key == "svc/1" && kv.value[..] == last[..]) {
        seen = services.changed().await.expect("the node runs");
    }
    // A snapshot: every member, each with its whole table.
    let snapshot = observer.snapshot().await.expect("runs");
    assert_eq!(snapshot.members.len(), 3);
    for member in &snapshot.members {
        let keys: Vec<&str> = member.entries.iter().map(|entry| entry.key.as_str()).collect();
        assert!(keys.contains(&"other"), "{}: {keys:?}", member.member.name);
    }
    assert_eq!(observer.entries("node-2").await.expect("runs").map(|e| e.len()), Some(2));
    assert_eq!(observer.entries("nobody").await.expect("runs"), None);
    // A member leaving changes the membership watch.
    nodes[2].handle.leave().await.expect("the leave completes");
    let mut members = membership.changed().await.expect("runs");
    while !members.iter().any(|m| m.name == "node-2" && m.state == MemberState::Left) {
        members = membership.changed().await.expect("runs");
    }
    // A stream of 4 events, not read, against about 20 key events: the loss is reported.
    let options = Options::default().with_event_capacity(4);
    let mut small = start_node::<H>(9, localhost(), options).await;
    small.handle.join([observer.local_addr()]).await.expect("the join succeeds");
    eventually!(H, nodes, "the small node holds the services", {
        small.handle.entries_with_prefix("svc/").await.expect("runs").len() >= 2
    });
    let mut lagged = 0;
    while let Some(event) = small.events.try_next() {
        if let Event::Lagged { missed } = event {
            lagged += missed;
        }
    }
    let dropped = small.handle.metrics().await.expect("runs").driver.events_dropped;
    assert!(dropped > 0, "the small stream overflowed");
    assert!(lagged > 0 && lagged <= dropped, "Lagged reported {lagged} of {dropped} lost events");
    small.handle.shutdown().await;
    shutdown_all(&nodes).await;
    // A stopped node's watch gives the values it had not returned yet, then says so.
    let mut last_values = 0;
    while services.changed().await.is_ok() {
        last_values += 1;
        assert!(last_values < 10, "a watch of a stopped node ends");
    }
}

/// A seed given as `localhost:PORT` is resolved by the adapter and joined; names that do not
/// resolve fail the join with each name and why.
pub async fn seeds_by_name<H: Harness>() {
    let mut nodes = vec![start_node::<H>(0, localhost(), Options::default()).await];
    let joiner = start_node::<H>(1, localhost(), Options::default()).await;
    let port = nodes[0].handle.local_addr().port();
    joiner.handle.join_hosts([format!("localhost:{port}")]).await.expect("the seed answers");
    nodes.push(joiner);
    eventually!(H, nodes, "both nodes see each other alive", all_alive(&nodes).await);
    let error = nodes[1].handle.join_hosts(["no-such-host.invalid:7946", "missing-port"]).await.unwrap_err();
    let Error::Resolve(failed) = &error else { panic!("{error}") };
    assert_eq!(failed.len(), 2, "{error}");
    assert!(error.to_string().contains("missing-port"), "{error}");
    shutdown_all(&nodes).await;
}
