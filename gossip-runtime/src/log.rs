//! What the driver logs of each event: membership changes at INFO (suspicions at DEBUG, a
//! self-heal or a name conflict at WARN, giving the name up at ERROR), key changes at TRACE.

use gossip_core::Event;

/// Logs `event` of node `node` at the level its kind deserves.
pub(crate) fn event(node: &str, event: &Event) {
    match event {
        Event::MemberDiscovered { name, generation, address } => {
            tracing::info!(%node, member = %name, generation, %address, "member joined");
        }
        Event::MemberRestarted { name, old_generation, generation, address, old_address } => {
            tracing::info!(%node, member = %name, old_generation, generation, %address, %old_address, "member restarted");
        }
        Event::MemberSuspected { name, incarnation } => {
            tracing::debug!(%node, member = %name, incarnation, "member suspected");
        }
        Event::MemberRecovered { name, incarnation } => {
            tracing::info!(%node, member = %name, incarnation, "member recovered");
        }
        Event::MemberFailed { name, generation } => {
            tracing::info!(%node, member = %name, generation, "member failed");
        }
        Event::MemberLeft { name, generation } => {
            tracing::info!(%node, member = %name, generation, "member left");
        }
        Event::MemberAddressChanged { name, old, new } => {
            tracing::info!(%node, member = %name, %old, %new, "member moved");
        }
        Event::ForeignCluster { from, cluster } => tracing::warn!(
            %node,
            %from,
            %cluster,
            "datagrams of another cluster arrive; check that every node has the same Config::cluster"
        ),
        Event::JoinFailed { seeds } => {
            let seeds: Vec<String> =
                seeds.iter().map(|(seed, problem)| format!("{seed}: {problem}")).collect();
            tracing::warn!(%node, seeds = %seeds.join("; "), "no seed answered the join; still trying");
        }
        Event::NameConflict { other_address, other_generation, kept: true } => tracing::warn!(
            %node,
            %other_address,
            other_generation,
            "another process runs under this node's name; it gives the name up (give every node a unique name)"
        ),
        Event::NameConflict { other_address, other_generation, kept: false } => tracing::error!(
            %node,
            %other_address,
            other_generation,
            "a newer process runs under this node's name: this node gave the name up and is inert; start it under a unique name"
        ),
        Event::Joined { via } => tracing::info!(%node, %via, "joined the cluster"),
        Event::LeaveComplete => tracing::info!(%node, "left the cluster"),
        Event::SelfHealed { reason, old_generation, new_generation } => {
            tracing::warn!(
                %node,
                ?reason,
                old_generation,
                new_generation,
                "a claim about this node could not be refuted: rejoined under a new generation"
            );
        }
        other => tracing::trace!(%node, event = ?other, "event"),
    }
}
