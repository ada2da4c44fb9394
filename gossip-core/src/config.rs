//! Protocol configuration: presets, limits and validation.

use std::time::Duration;

use crate::error::ConfigError;

/// How anti-entropy exchanges state with the peers it contacts each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AntiEntropyMode {
    /// The initiator sends its recent deltas without learning the peer's digest (one datagram).
    Push,
    /// The initiator sends its digest; the peer answers with what the initiator lacks.
    Pull,
    /// Digest, then deltas plus the peer's own request, then the deltas the peer lacks
    /// (Cassandra's SYN / ACK / ACK2).
    PushPull,
}

/// Which mechanisms spread key-value updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dissemination {
    /// Periodic anti-entropy exchanges only.
    AntiEntropy,
    /// Rumor mongering only: fast, but a rumor can die out before reaching everyone.
    Rumors,
    /// Rumors for speed, anti-entropy as the backstop that reaches everyone.
    Both,
}

/// When a hot rumor stops being spread (Demers et al., feedback variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RumorRule {
    /// After `rumor_k` contacts that already knew it.
    Counter,
    /// With probability 1 / `rumor_k` on each contact that already knew it.
    Coin,
}

/// The protocol's tunables and resource limits.
///
/// Start from a preset ([`Config::lan`], [`Config::wan`], [`Config::local`]), change fields,
/// then let [`crate::Node::new`] check them with [`Config::validate`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Cluster identifier carried by every datagram; datagrams of other clusters are dropped.
    pub cluster: String,
    /// Largest datagram the node sends or accepts, in bytes (memberlist's 1,400 stays under
    /// common MTUs).
    pub max_datagram_size: usize,
    /// Time between two anti-entropy rounds.
    pub gossip_interval: Duration,
    /// Peers contacted per anti-entropy round.
    pub fanout: usize,
    /// Push, pull or push-pull anti-entropy.
    pub mode: AntiEntropyMode,
    /// Anti-entropy, rumors, or both.
    pub dissemination: Dissemination,
    /// When a rumor stops being hot.
    pub rumor_rule: RumorRule,
    /// The `k` of the rumor rule.
    pub rumor_k: u32,
    /// Most hot rumors kept; beyond it the most-sent one is dropped (anti-entropy still
    /// carries it).
    pub max_hot_rumors: usize,
    /// For how many gossip rounds a node whose replica changed counts as recently changed:
    /// its digest entry leads every `Syn`, and push mode pushes its deltas.
    pub recent_rounds: u32,
    /// For how many gossip rounds after seeing a peer out of sync this node keeps adding a
    /// rotating window of its digest to the `Syn`s it sends.
    pub out_of_sync_rounds: u32,
    /// How long a tombstone (a deleted key) is kept before it is garbage-collected.
    pub tombstone_grace: Duration,
    /// Most nodes (including this one) whose state this node keeps.
    pub max_nodes: usize,
    /// Most keys (tombstones included) in one node's table.
    pub max_keys_per_node: usize,
    /// Longest key, in bytes.
    pub max_key_size: usize,
    /// Longest value, in bytes.
    pub max_value_size: usize,
    /// Longest node name, in bytes.
    pub max_name_size: usize,
    /// Most datagrams waiting to be taken by [`crate::Node::poll`]; beyond it new ones are
    /// dropped and counted.
    pub max_pending_transmits: usize,
    /// Most events waiting to be taken by [`crate::Node::poll`]; beyond it the oldest are
    /// dropped and counted.
    pub max_pending_events: usize,
}

impl Config {
    /// Defaults for a local-area network (memberlist's LAN figures where they apply).
    pub fn lan() -> Self {
        Self {
            cluster: "default".to_owned(),
            max_datagram_size: 1400,
            gossip_interval: Duration::from_millis(200),
            fanout: 3,
            mode: AntiEntropyMode::PushPull,
            dissemination: Dissemination::Both,
            rumor_rule: RumorRule::Counter,
            rumor_k: 3,
            max_hot_rumors: 1_024,
            recent_rounds: 20,
            out_of_sync_rounds: 10,
            tombstone_grace: Duration::from_secs(3600),
            max_nodes: 16_384,
            max_keys_per_node: 4_096,
            max_key_size: 128,
            max_value_size: 960,
            max_name_size: 64,
            max_pending_transmits: 1_024,
            max_pending_events: 4_096,
        }
    }

    /// Defaults for a wide-area network: slower rounds, one more peer per round.
    pub fn wan() -> Self {
        Self { gossip_interval: Duration::from_millis(500), fanout: 4, ..Self::lan() }
    }

    /// Defaults for one host or a fast, reliable network: faster rounds, shorter grace.
    pub fn local() -> Self {
        Self {
            gossip_interval: Duration::from_millis(100),
            fanout: 3,
            tombstone_grace: Duration::from_secs(600),
            ..Self::lan()
        }
    }

    /// Sets the cluster identifier.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = cluster.into();
        self
    }

    /// Checks that the configuration can work; says which field is wrong and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        const MIN_DATAGRAM: usize = 512;
        const MAX_DATAGRAM: usize = 65_507;
        if !(MIN_DATAGRAM..=MAX_DATAGRAM).contains(&self.max_datagram_size) {
            return Err(ConfigError::DatagramSize {
                size: self.max_datagram_size,
                min: MIN_DATAGRAM,
                max: MAX_DATAGRAM,
            });
        }
        if self.cluster.len() > 64 {
            return Err(ConfigError::ClusterTooLong { len: self.cluster.len(), max: 64 });
        }
        if self.gossip_interval.is_zero() {
            return Err(ConfigError::Zero { field: "gossip_interval" });
        }
        let counts = [
            ("fanout", self.fanout),
            ("recent_rounds", self.recent_rounds as usize),
            ("rumor_k", self.rumor_k as usize),
            ("max_hot_rumors", self.max_hot_rumors),
            ("max_nodes", self.max_nodes),
            ("max_keys_per_node", self.max_keys_per_node),
            ("max_key_size", self.max_key_size),
            ("max_name_size", self.max_name_size),
            ("max_pending_transmits", self.max_pending_transmits),
            ("max_pending_events", self.max_pending_events),
        ];
        if let Some((field, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero { field });
        }
        // A single entry of the largest allowed size must fit one datagram, or a node could
        // accept a write it can never replicate (chitchat's blocked-replication bug).
        let largest = crate::budget::single_entry_datagram_len(self, self.max_key_size, self.max_value_size);
        if largest > self.max_datagram_size {
            return Err(ConfigError::EntryCannotFit {
                max_key_size: self.max_key_size,
                max_value_size: self.max_value_size,
                needed: largest,
                max_datagram_size: self.max_datagram_size,
            });
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::lan()
    }
}
