//! The `ops` target: an [`Arbitrary`] sequence of operations on a small simulated cluster
//! (writes, deletes, crashes, restarts, partitions, heals, time passing, broadcasts, queries
//! every node answers, write requests every owner accepts) after a
//! [`WARM_UP`] in which it forms, then a calm
//! period: every partition healed, no more faults, [`CALM`] of virtual time. After it every
//! live node must agree on the membership and on every live node's table
//! ([`check_agreement`]).
//!
//! The simulator checks its own invariants after every step meanwhile (versions only grow,
//! no replica ahead of its owner, no deleted key coming back, no hole; see
//! [`gossip_core::sim::invariants`]); a violation fails the input with the run's seed.

use std::time::Duration;

use arbitrary::Arbitrary;
use gossip_core::sim::invariants::check_agreement;
use gossip_core::sim::{LinkModel, SimConfig, SimError, Simulation};
use gossip_core::{Config, QueryFilter, WritePolicy};

/// At most this many operations are run per input.
pub const MAX_OPS: usize = 48;

/// How long the cluster runs before the operations start: every node joins node 0 at time
/// zero, and a node whose only seed dies before it met anyone else can never find the rest
/// (no protocol can), so faults start once the cluster has formed.
pub const WARM_UP: Duration = Duration::from_secs(5);

/// How long the cluster is left alone at the end before agreement is checked.
pub const CALM: Duration = Duration::from_secs(120);

/// The longest single [`ClusterOp::Advance`].
pub const MAX_ADVANCE_MS: u16 = 8_000;

/// A fuzz input of the `ops` target.
#[derive(Debug, Clone, Arbitrary)]
pub struct OpsInput {
    /// The simulation's seed.
    pub seed: u8,
    /// Cluster size: `3 + nodes % 3` (3 to 5).
    pub nodes: u8,
    /// Whether links lose 5% of datagrams (until the calm period, which has no loss).
    pub lossy: bool,
    /// What happens, in order.
    pub ops: Vec<ClusterOp>,
}

/// One operation on the cluster. Node numbers are taken modulo the cluster size; an
/// operation on a node that is down is skipped.
#[derive(Debug, Clone, Arbitrary)]
pub enum ClusterOp {
    /// The node writes `k{key % 8} = v{value}`.
    Set {
        /// The writer.
        node: u8,
        /// The key.
        key: u8,
        /// The value.
        value: u8,
    },
    /// The node deletes `k{key % 8}`.
    Delete {
        /// The writer.
        node: u8,
        /// The key.
        key: u8,
    },
    /// The node crashes.
    Crash {
        /// The node.
        node: u8,
    },
    /// The node restarts under its next generation (crashing first if it is up).
    Restart {
        /// The node.
        node: u8,
    },
    /// The nodes whose bit is set in `side` are cut off from the others, both ways.
    Partition {
        /// A bit mask of one side.
        side: u8,
    },
    /// Every partition heals.
    Heal,
    /// Virtual time passes: `millis % MAX_ADVANCE_MS` milliseconds.
    Advance {
        /// How long.
        millis: u16,
    },
    /// The node broadcasts (coalesced by topic when `latest`).
    Broadcast {
        /// The origin.
        node: u8,
        /// Coalesced.
        latest: bool,
    },
    /// The node queries every member for `millis % MAX_ADVANCE_MS + 1` milliseconds.
    Query {
        /// The asker.
        node: u8,
        /// Its timeout.
        millis: u16,
    },
    /// The node asks `owner` to write `k{key % 8}` (to delete it when `delete`).
    RequestWrite {
        /// The requester.
        node: u8,
        /// The owner asked.
        owner: u8,
        /// The key.
        key: u8,
        /// A delete rather than a write.
        delete: bool,
    },
}

/// Runs the `ops` target on one input; panics on a violation.
pub fn ops(data: &[u8]) {
    let Ok(input) = OpsInput::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    if let Err(error) = run(&input) {
        panic!("{error}\ninput: {input:?}");
    }
}

/// Plays `input` on a simulated cluster, calms it, and checks agreement.
pub fn run(input: &OpsInput) -> Result<Simulation, String> {
    let n = 3 + usize::from(input.nodes % 3);
    let mut node_config = Config::local();
    // Every owner accepts every write request: accepted requests are writes the ledger follows.
    node_config.messages.write_policy = WritePolicy::AcceptPrefix(String::new());
    let mut config =
        SimConfig::new(n, u64::from(input.seed)).with_node_config(node_config).with_answered_queries();
    // A restarted node joins every other, so that it is not stranded when one seed is down.
    config.restart_seeds = (0..n).collect();
    if input.lossy {
        config.link = LinkModel::default().with_loss(0.05);
    }
    let mut sim = Simulation::new(config).map_err(|e| e.to_string())?;
    sim.run_for(WARM_UP).map_err(|e| e.to_string())?;
    let node = |i: u8| usize::from(i) % n;
    for op in input.ops.iter().take(MAX_OPS) {
        let result = match *op {
            ClusterOp::Set { node: i, key, value } => {
                sim.set(node(i), &format!("k{}", key % 8), format!("v{value}")).map(|_| ())
            }
            ClusterOp::Delete { node: i, key } => sim.delete(node(i), &format!("k{}", key % 8)).map(|_| ()),
            ClusterOp::Crash { node: i } => sim.crash(node(i)),
            ClusterOp::Restart { node: i } => sim.restart(node(i)),
            ClusterOp::Partition { side } => {
                let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| (side >> i) & 1 == 1);
                sim.partition(a, b);
                Ok(())
            }
            ClusterOp::Heal => {
                sim.heal_all();
                Ok(())
            }
            ClusterOp::Advance { millis } => {
                sim.run_for(Duration::from_millis(u64::from(millis % MAX_ADVANCE_MS)))
            }
            ClusterOp::Broadcast { node: i, latest } => sim
                .command(node(i), |node| {
                    if latest {
                        node.broadcast_latest("t", &b"b"[..])
                    } else {
                        node.broadcast("t", &b"b"[..])
                    }
                })
                .map(|_| ()),
            ClusterOp::Query { node: i, millis } => {
                let timeout = Duration::from_millis(u64::from(millis % MAX_ADVANCE_MS) + 1);
                sim.command(node(i), |node| node.query("q", &b"?"[..], QueryFilter::All, timeout)).map(|_| ())
            }
            ClusterOp::RequestWrite { node: i, owner, key, delete } => {
                let (owner, key) = (gossip_core::sim::node_name(node(owner)), format!("k{}", key % 8));
                sim.command(node(i), |node| {
                    if delete {
                        node.request_delete(&owner, key)
                    } else {
                        node.request_write(&owner, key, &b"r"[..])
                    }
                })
                .map(|_| ())
            }
        };
        match result {
            // A command refused (an unknown or dead owner, a full table of requests) changes
            // nothing: as a node that is down.
            Ok(()) | Err(SimError::NodeDown(_) | SimError::Message(_)) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    sim.heal_all();
    sim.set_default_link(LinkModel::default()).map_err(|e| e.to_string())?;
    sim.run_for(CALM).map_err(|e| e.to_string())?;
    sim.check_all().map_err(|e| e.to_string())?;
    check_agreement(&sim).map_err(|violation| violation.to_string())?;
    Ok(sim)
}
