//! The start every study shares: an in-sync cluster ([`Bootstrap::InSync`]: every node knows
//! every other as Alive and all tables are equal, without a datagram).

use gossip_core::Config;
use gossip_core::sim::{Bootstrap, Checks, LinkModel, SimConfig, SimError, Simulation};

/// What a study's cluster is made of.
pub(crate) struct InSync<'a> {
    /// Number of nodes.
    pub(crate) nodes: usize,
    /// The run's seed.
    pub(crate) seed: u64,
    /// The configuration of every node.
    pub(crate) node_config: &'a Config,
    /// Every link.
    pub(crate) link: LinkModel,
    /// How often invariants are checked.
    pub(crate) checks: Checks,
    /// The replay command printed with a violation (`{seed}` is replaced).
    pub(crate) replay: Option<&'a str>,
    /// Whether the simulation keeps a log of membership changes.
    pub(crate) membership_log: bool,
}

/// Builds the in-sync cluster a study starts from, at time zero.
pub(crate) fn start_in_sync(setup: InSync<'_>) -> Result<Simulation, SimError> {
    start_in_sync_with(setup, |config| config)
}

/// As [`start_in_sync`], with more simulator settings made by `more` (recorded events, say).
pub(crate) fn start_in_sync_with(
    setup: InSync<'_>,
    more: impl FnOnce(SimConfig) -> SimConfig,
) -> Result<Simulation, SimError> {
    start_with(setup, Bootstrap::InSync, more)
}

/// The same cluster started another way (every node joining seeds, say).
pub(crate) fn start_with(
    setup: InSync<'_>,
    bootstrap: Bootstrap,
    more: impl FnOnce(SimConfig) -> SimConfig,
) -> Result<Simulation, SimError> {
    let mut config = SimConfig::new(setup.nodes, setup.seed)
        .with_node_config(setup.node_config.clone())
        .with_link(setup.link)
        .with_bootstrap(bootstrap)
        .with_checks(setup.checks);
    if let Some(replay) = setup.replay {
        config = config.with_replay(replay);
    }
    if setup.membership_log {
        config = config.with_membership_log();
    }
    Simulation::new(more(config))
}
