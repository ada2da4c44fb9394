//! Seeds by name are resolved again while the node runs: when the seed behind a name is
//! replaced (a new pod at a new address), the node joins the new one, which knew nobody.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gossip_runtime::suite::fast_config;
use gossip_tokio::{Options, SeedResolver};

/// Longest the test waits for the join (real sockets, so a bound, not a sleep).
const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_replaced_behind_its_name_is_joined() {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let (first_seed, _first_events) =
        gossip_tokio::start(fast_config(), "seed-1", loopback).await.expect("seed-1 starts");

    // The name answers with whatever seed runs now.
    let behind_name = Arc::new(Mutex::new(vec![first_seed.local_addr()]));
    let answers = behind_name.clone();
    let resolver = SeedResolver::new(move |host| match host {
        "seeds.test:7946" => Ok(answers.lock().expect("not poisoned").clone()),
        other => Err(std::io::Error::other(format!("unknown host {other}"))),
    });
    let options = Options::default().with_resolver(resolver).with_seed_reresolve(Duration::from_millis(200));
    let (node, _node_events) =
        gossip_tokio::start_with(fast_config(), "app", loopback, options).await.expect("app starts");
    node.join_hosts(["seeds.test:7946"]).await.expect("app joins through the name");
    assert!(first_seed.members().await.expect("seed-1 runs").iter().any(|m| m.name == "app"));

    // The seed is replaced: a new process at a new address, knowing nobody.
    first_seed.shutdown().await;
    let (second_seed, _second_events) =
        gossip_tokio::start(fast_config(), "seed-2", loopback).await.expect("seed-2 starts");
    *behind_name.lock().expect("not poisoned") = vec![second_seed.local_addr()];

    let give_up = Instant::now() + LIMIT;
    loop {
        let members = second_seed.members().await.expect("seed-2 runs");
        if members.iter().any(|m| m.name == "app") {
            break;
        }
        assert!(Instant::now() < give_up, "app never joined the new seed: {members:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An unknown name is an error naming it, not a silent success.
    let error = node.join_hosts(["nowhere.test:1"]).await.expect_err("nothing resolves");
    assert!(error.to_string().contains("nowhere.test:1"), "{error}");
    node.shutdown().await;
    second_seed.shutdown().await;
}
