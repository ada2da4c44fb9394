//! A starting point for smol users: three nodes in one process on 127.0.0.1 join, share a key
//! each, watch one of them leave, and shut down.
//!
//! ```text
//! cargo run -p gossip-smol --example smol_demo
//! ```

use std::time::{Duration, Instant};

use gossip_smol::{Config, Event};

fn main() -> Result<(), gossip_smol::Error> {
    smol::block_on(async {
        let mut nodes = Vec::new();
        for index in 0..3 {
            let (node, events) =
                gossip_smol::start(Config::local(), format!("node-{index}"), "127.0.0.1:0".parse().unwrap())
                    .await?;
            node.set("greeting", format!("hello from node-{index}")).await?;
            nodes.push((node, events));
        }
        let seed = nodes[0].0.local_addr();
        for (node, _) in &nodes[1..] {
            node.join([seed]).await?;
        }

        // Wait (at most 10 s) until node-0 holds the other two greetings.
        let (first, first_events) = &mut nodes[0];
        let deadline = Instant::now() + Duration::from_secs(10);
        while first.get("node-1", "greeting").await?.is_none()
            || first.get("node-2", "greeting").await?.is_none()
        {
            if Instant::now() > deadline {
                eprintln!("the cluster did not converge within 10 s");
                std::process::exit(1);
            }
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        while let Some(event) = first_events.try_next() {
            if let Event::KeysChanged { node, changes } = event {
                for value in changes.iter().filter_map(|change| change.value()) {
                    println!("node-0 learned from {node}: {}", String::from_utf8_lossy(value));
                }
            }
        }

        // node-2 leaves gracefully; node-0 sees it as left, not failed.
        nodes[2].0.leave().await?;
        nodes[2].0.shutdown().await;
        smol::Timer::after(Duration::from_millis(300)).await;
        for member in nodes[0].0.members().await? {
            println!(
                "{} (generation {}) at {}: {:?}",
                member.name, member.generation, member.address, member.state
            );
        }
        for (node, _) in &nodes {
            node.shutdown().await;
        }
        Ok(())
    })
}
