//! The end-of-run check: after faults have healed and the protocol had time to settle, every
//! live node agrees with every other and with the truth (see [`check_agreement`]). It is
//! re-exported as `sim::invariants::check_agreement`, beside the checks that hold at every
//! step.

use rand_core::Rng;

use crate::membership::MemberState;
use crate::node::Node;
use crate::sim::cluster::index_of_name;
use crate::sim::invariants::{ReplicaSnapshot, ViolationKind, check_replica};
use crate::sim::{Simulation, Violation};

/// Checks that the cluster has settled into agreement: for every live node,
///
/// - every other live node is known under its current generation, Alive, at its current
///   address; every member known whose process (that generation of it) is down is held
///   Dead or Left (or forgotten);
/// - the node holds itself Alive under its current generation;
/// - its replica of every live node's table is at the owner's max version and holds exactly
///   what the owner wrote ([`check_replica`] against the [`Ledger`](crate::sim::Ledger)).
///
/// Call it after the faults have healed and the protocol had time to settle (the chaos
/// runs do, see `gossip_sim::chaos`); during faults, disagreement is expected. A paused node
/// counts as live. O(n² + total table size).
// A plain `Violation` (not boxed) keeps the signature the fuzz targets call; it is built
// once, at the end of a run.
#[allow(clippy::result_large_err)]
pub fn check_agreement(sim: &Simulation) -> Result<(), Violation> {
    let n = sim.len();
    let violation = |node: usize, kind: ViolationKind| Violation {
        at: sim.now(),
        node,
        node_name: sim.name(node).unwrap_or_default().to_owned(),
        kind,
        seed: sim.seed(),
        replay: sim.replay.clone(),
    };
    for observer in 0..n {
        let Some(node) = sim.node(observer) else { continue };
        agreement_of(sim, observer, node).map_err(|kind| violation(observer, kind))?;
    }
    Ok(())
}

/// [`check_agreement`] for one live node.
fn agreement_of<R: Rng>(sim: &Simulation, observer: usize, node: &Node<R>) -> Result<(), ViolationKind> {
    let n = sim.len();
    for member in 0..n {
        let (Some(name), Some(generation)) = (sim.name(member), sim.generation(member)) else { continue };
        if sim.node(member).is_none() {
            continue;
        }
        let Some(view) = node.node(name) else {
            return Err(ViolationKind::MemberUnknown { member: name.to_owned() });
        };
        let state_ok = view.state == MemberState::Alive;
        if view.generation != generation || !state_ok {
            if member == observer {
                return Err(ViolationKind::SelfAccused { state: view.state });
            }
            return Err(ViolationKind::MemberMismatch {
                member: name.to_owned(),
                expected_generation: generation,
                generation: view.generation,
                state: view.state,
            });
        }
        let expected = sim.address(member).unwrap_or(view.address);
        if view.address != expected {
            return Err(ViolationKind::AddressMismatch {
                member: name.to_owned(),
                expected,
                found: view.address,
            });
        }
        let Some(log) = sim.ledger().log(member, generation) else {
            return Err(ViolationKind::UnknownGeneration { owner: name.to_owned(), generation });
        };
        if view.max_version != log.max_version() {
            return Err(ViolationKind::ReplicaBehind {
                owner: name.to_owned(),
                generation,
                max_version: view.max_version,
                owner_max: log.max_version(),
            });
        }
        let entries = node.entries(name).map(Iterator::collect).unwrap_or_default();
        let snapshot = ReplicaSnapshot { owner: name, generation, max_version: view.max_version, entries };
        check_replica(log, &snapshot)?;
    }
    for view in node.nodes().skip(1) {
        let Some(member) = index_of_name(view.name, n) else { continue };
        let up = sim.node(member).is_some() && sim.generation(member) == Some(view.generation);
        if !up && view.state.is_live() {
            return Err(ViolationKind::GoneMemberLive {
                member: view.name.to_owned(),
                generation: view.generation,
                state: view.state,
            });
        }
    }
    Ok(())
}
