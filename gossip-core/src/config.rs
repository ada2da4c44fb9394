//! Protocol configuration: presets, limits and validation.

use std::time::Duration;

use crate::error::ConfigError;
use crate::keyring::EncryptionMode;
use crate::seal::SEAL_OVERHEAD;

#[cfg(feature = "serde")]
mod forward_delay_serde;
mod messages;

pub use messages::{MessageConfig, WritePolicy};

/// The cluster identifier of [`Config::default`]. On the wire it is the empty string (an
/// envelope's `cluster` field left out); a receiver reads an empty `cluster` as this one.
pub const DEFAULT_CLUSTER: &str = "default";

/// The most relays a node may keep pending (`SwimConfig::max_pending_relays`): each takes a
/// ping sequence whose high half names the target, which leaves 65,535 per target.
pub const MAX_PENDING_RELAYS: usize = 16_384;

/// How anti-entropy exchanges state with the peers it contacts each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
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
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct Config {
    /// Cluster identifier carried by every datagram; datagrams of other clusters are dropped.
    /// [`DEFAULT_CLUSTER`] by default, which datagrams carry as the empty string.
    pub cluster: String,
    /// Largest datagram the node sends or accepts, in bytes (memberlist's 1,400 stays under
    /// common MTUs).
    pub max_datagram_size: usize,
    /// Time between two anti-entropy rounds.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub gossip_interval: Duration,
    /// Peers contacted per anti-entropy round.
    pub fanout: usize,
    /// Push, pull or push-pull anti-entropy.
    pub mode: AntiEntropyMode,
    /// While nothing changes, the anti-entropy interval doubles each round (after
    /// `recent_rounds` quiet ones) up to this; it snaps back at the first change. Pings carry
    /// the digest summary meanwhile, so a difference is still noticed within a probe period.
    /// Set it to `gossip_interval` to keep a fixed interval; probes then leave anti-entropy
    /// alone (the simulator's convergence study measures anti-entropy that way).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_idle_gossip_interval: Duration,
    /// Anti-entropy, rumors, or both.
    pub dissemination: Dissemination,
    /// When a rumor stops being hot.
    pub rumor_rule: RumorRule,
    /// The `k` of the rumor rule.
    pub rumor_k: u32,
    /// Most hot rumors kept; beyond it the most-sent one is dropped (anti-entropy still
    /// carries it).
    pub max_hot_rumors: usize,
    /// How long news waits before this node forwards it: a write, or a delta that was news,
    /// goes to `fanout` random peers this long after it arrived, with whatever other news
    /// arrived meanwhile, rather than at the next gossip round. The hops of a rumor then
    /// take this long each instead of a round each. `None` leaves news to the rounds
    /// (`"off"` in a config file).
    #[cfg_attr(feature = "serde", serde(with = "forward_delay_serde"))]
    pub rumor_forward_delay: Option<Duration>,
    /// In how many successive forwards (each `rumor_forward_delay` after the last, each to
    /// `fanout` random peers) a piece of news goes out; a round's push counts as one. With a
    /// fanout of 3, one forward misses about e^-3 = 5% of a cluster, whom the rounds must then
    /// reach; two miss about 0.25%.
    pub rumor_forwards: u32,
    /// For how many gossip rounds a node whose replica changed counts as recently changed:
    /// its digest entry leads every `Syn`, and push mode pushes its deltas.
    pub recent_rounds: u32,
    /// For how many gossip rounds after seeing a peer out of sync this node keeps adding a
    /// rotating window of its digest to the `Syn`s it sends.
    pub out_of_sync_rounds: u32,
    /// How long a tombstone (a deleted key) is kept before it is garbage-collected.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub tombstone_grace: Duration,
    /// Most nodes (including this one) whose state this node keeps.
    pub max_nodes: usize,
    /// Most keys (tombstones included) in one node's table.
    pub max_keys_per_node: usize,
    /// Longest key, in bytes.
    pub max_key_size: usize,
    /// Longest value, in bytes. The default, 928, is what lets the largest entry (with a
    /// key of `max_key_size` and the longest names and widest numbers) fit one datagram of
    /// 1,400 bytes even when sealed ([`crate::SEAL_OVERHEAD`]); `validate` checks it.
    pub max_value_size: usize,
    /// Longest node name, in bytes.
    pub max_name_size: usize,
    /// Largest step, in the unit of generations (whatever the application counts them in:
    /// seconds or milliseconds of a start time, or a restart counter), by which a node's
    /// generation may move ahead of the one this node knows for it; for a node it does not
    /// know, ahead of this node's own generation. Claims, deltas, digest entries and senders
    /// that jump further are refused and counted in
    /// [`Metrics::generations_refused`](crate::Metrics::generations_refused): a generation
    /// near `u64::MAX`, from a broken or hostile peer, would otherwise make every real
    /// restart of that node look stale for good. Cassandra refuses a jump of more than a
    /// year the same way.
    ///
    /// An unknown node is measured against our own generation because that is the one
    /// reference a peer cannot move: any other (the largest generation known, the sender's)
    /// could be ratcheted up by fake members. The cost: with time-based generations, a node
    /// that has run for longer than this without restarting refuses newcomers (and restarts
    /// of nodes that ran as long, as in Cassandra's CASSANDRA-10969). Hence the default,
    /// 315,360,000,000: ten years of milliseconds, so ten thousand years of seconds. It
    /// refuses what is garbage in either unit (a generation near `u64::MAX`, a nanosecond
    /// timestamp, a millisecond one among second-based peers) and no real restart. With
    /// second-based generations, 31,536,000 (one year) is Cassandra's bound. Every node of a
    /// cluster must count generations the same way: a node started under generation 1 (a
    /// restart counter) refuses peers whose generations are millisecond timestamps.
    ///
    /// This stops garbage, not a determined forger: steps of at most this size, one after
    /// another, still ratchet a node's generation up; only authenticated datagrams would
    /// stop that.
    pub max_generation_jump: u64,
    /// Largest step by which a membership claim relayed by a third party (a datagram whose
    /// sender is not the member itself) may raise the incarnation this node knows for a
    /// member. Claims that jump further are dropped (the rest of the datagram still applies)
    /// and counted in [`Metrics::jumps_refused`](crate::Metrics::jumps_refused): a forged
    /// claim at an incarnation near `u32::MAX` would otherwise leave the member almost no
    /// room to refute. A member raises its incarnation by one per refutation, so the default,
    /// 65,536, is far more than any real member climbs between two claims a node hears.
    /// What the member says about itself (it sent the datagram) is not bounded, nor is a
    /// member not known yet. Must not be zero.
    pub max_incarnation_jump: u32,
    /// Largest step by which a node delta or digest entry relayed by a third party may raise
    /// the max version this node holds for a node's table (of the same generation). Larger
    /// steps are dropped and counted in
    /// [`Metrics::jumps_refused`](crate::Metrics::jumps_refused): a forged version near
    /// `u64::MAX` would otherwise freeze the owner's table everywhere (its next real write
    /// would never look new). Default `1 << 32` writes. First-hand deltas (the owner sent
    /// them) and nodes not known yet are not bounded. Must not be zero.
    pub max_version_jump: u64,
    /// Whether datagrams are sealed and opened with the node's keyring (see
    /// [`EncryptionMode`] for moving a running cluster from one mode to the next). Any mode
    /// but `Off` needs a key: start the node with [`crate::Node::with_keyring`].
    pub encryption: EncryptionMode,
    /// Membership and failure detection (SWIM with Lifeguard).
    pub swim: SwimConfig,
    /// Push-sum aggregation of named numeric values.
    pub aggregation: AggregationConfig,
    /// Application messages: direct messages and broadcasts.
    pub messages: MessageConfig,
    /// Most datagrams waiting to be taken by [`crate::Node::poll`]; beyond it new ones are
    /// dropped and counted.
    pub max_pending_transmits: usize,
    /// Most events waiting to be taken by [`crate::Node::poll`]; beyond it the oldest are
    /// dropped and counted.
    pub max_pending_events: usize,
}

impl Config {
    /// Whether the idle backoff is on: only then do probes and in-sync answers touch the
    /// anti-entropy schedule (see `max_idle_gossip_interval`).
    pub(crate) fn idle_backoff(&self) -> bool {
        self.max_idle_gossip_interval > self.gossip_interval
    }

    /// Defaults for a local-area network (memberlist's LAN figures where they apply).
    pub fn lan() -> Self {
        Self {
            cluster: DEFAULT_CLUSTER.to_owned(),
            max_datagram_size: 1400,
            gossip_interval: Duration::from_millis(200),
            fanout: 3,
            mode: AntiEntropyMode::PushPull,
            max_idle_gossip_interval: Duration::from_secs(30),
            dissemination: Dissemination::Both,
            rumor_rule: RumorRule::Counter,
            rumor_k: 3,
            max_hot_rumors: 1_024,
            rumor_forward_delay: Some(Duration::from_millis(20)),
            rumor_forwards: 2,
            recent_rounds: 20,
            out_of_sync_rounds: 10,
            tombstone_grace: Duration::from_secs(3600),
            max_nodes: 16_384,
            max_keys_per_node: 4_096,
            max_key_size: 128,
            max_value_size: 928,
            max_name_size: 64,
            max_generation_jump: 315_360_000_000,
            max_incarnation_jump: 65_536,
            max_version_jump: 1 << 32,
            max_pending_transmits: 1_024,
            max_pending_events: 4_096,
            encryption: EncryptionMode::Off,
            swim: SwimConfig::lan(),
            aggregation: AggregationConfig::lan(),
            messages: MessageConfig::default(),
        }
    }

    /// Defaults for a wide-area network: slower rounds, one more peer per round, and
    /// memberlist's WAN failure detection ([`SwimConfig::wan`]: probe every 5 s, 3 s timeout).
    pub fn wan() -> Self {
        Self {
            gossip_interval: Duration::from_millis(500),
            fanout: 4,
            swim: SwimConfig::wan(),
            ..Self::lan()
        }
    }

    /// Defaults for one host or a fast, reliable network: faster rounds, shorter grace.
    pub fn local() -> Self {
        Self {
            gossip_interval: Duration::from_millis(100),
            fanout: 3,
            tombstone_grace: Duration::from_secs(600),
            swim: SwimConfig::local(),
            aggregation: AggregationConfig::local(),
            ..Self::lan()
        }
    }

    /// Sets the cluster identifier.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = cluster.into();
        self
    }

    /// The bounds of every envelope under this config, for sizing datagrams.
    pub(crate) fn envelope_bounds(&self) -> crate::budget::EnvelopeBounds<'_> {
        crate::budget::EnvelopeBounds { cluster: &self.cluster, max_name_size: self.max_name_size }
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
        if self.cluster.is_empty() {
            return Err(ConfigError::EmptyCluster);
        }
        let durations = [
            ("gossip_interval", self.gossip_interval),
            ("tombstone_grace", self.tombstone_grace),
            ("aggregation.interval", self.aggregation.interval),
            ("swim.probe_interval", self.swim.probe_interval),
            ("swim.probe_timeout", self.swim.probe_timeout),
            ("swim.join_timeout", self.swim.join_timeout),
            ("swim.dead_retention", self.swim.dead_retention),
            ("swim.join_retry_initial", self.swim.join_retry_initial),
        ];
        if let Some((field, _)) = durations.iter().find(|(_, value)| value.is_zero()) {
            return Err(ConfigError::Zero { field });
        }
        let ordered = [
            (
                ("max_idle_gossip_interval", self.max_idle_gossip_interval),
                ("gossip_interval", self.gossip_interval),
            ),
            (
                ("swim.join_retry_max", self.swim.join_retry_max),
                ("swim.join_retry_initial", self.swim.join_retry_initial),
            ),
        ];
        for ((longer, longer_value), (shorter, shorter_value)) in ordered {
            if longer_value < shorter_value {
                return Err(ConfigError::DurationOrder { longer, longer_value, shorter, shorter_value });
            }
        }
        if self.swim.probe_timeout >= self.swim.probe_interval {
            return Err(ConfigError::ProbeTimeout {
                timeout: self.swim.probe_timeout,
                interval: self.swim.probe_interval,
            });
        }
        let counts = [
            ("fanout", self.fanout),
            ("recent_rounds", self.recent_rounds as usize),
            ("rumor_k", self.rumor_k as usize),
            ("max_hot_rumors", self.max_hot_rumors),
            ("rumor_forwards", self.rumor_forwards as usize),
            ("max_nodes", self.max_nodes),
            ("max_keys_per_node", self.max_keys_per_node),
            ("max_key_size", self.max_key_size),
            ("max_name_size", self.max_name_size),
            ("max_pending_transmits", self.max_pending_transmits),
            ("max_pending_events", self.max_pending_events),
            ("swim.suspicion_mult", self.swim.suspicion_mult as usize),
            ("swim.suspicion_max_timeout_mult", self.swim.suspicion_max_timeout_mult as usize),
            ("swim.retransmit_mult", self.swim.retransmit_mult as usize),
            ("swim.max_broadcasts", self.swim.max_broadcasts),
            ("swim.max_pending_relays", self.swim.max_pending_relays),
            ("swim.max_relays_per_requester", self.swim.max_relays_per_requester),
            ("aggregation.max_aggregates", self.aggregation.max_aggregates),
            ("aggregation.max_name_size", self.aggregation.max_name_size),
        ];
        if let Some((field, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero { field });
        }
        // Every relayed ping takes a sequence of its target's tag, of which there are 65,535.
        if self.swim.max_pending_relays > MAX_PENDING_RELAYS {
            return Err(ConfigError::TooLarge {
                field: "swim.max_pending_relays",
                value: self.swim.max_pending_relays,
                max: MAX_PENDING_RELAYS,
            });
        }
        if self.max_nodes < 2 {
            return Err(ConfigError::TooFewNodes { max_nodes: self.max_nodes });
        }
        if self.max_generation_jump == 0 {
            // Every restart would be refused.
            return Err(ConfigError::Zero { field: "max_generation_jump" });
        }
        if self.max_incarnation_jump == 0 {
            // Every refutation relayed by a peer would be refused.
            return Err(ConfigError::Zero { field: "max_incarnation_jump" });
        }
        if self.max_version_jump == 0 {
            // Every relayed write would be refused.
            return Err(ConfigError::Zero { field: "max_version_jump" });
        }
        self.aggregation.validate(self)?;
        self.messages.validate()?;
        // A single entry of the largest allowed size must fit one datagram, or a node could
        // accept a write it can never replicate (chitchat's blocked-replication bug).
        let largest = crate::budget::single_entry_datagram_len(
            self.envelope_bounds(),
            self.max_key_size,
            self.max_value_size,
        );
        // Sealing may be turned on at run time: count its overhead always.
        if largest + SEAL_OVERHEAD > self.max_datagram_size {
            return Err(ConfigError::EntryCannotFit {
                max_key_size: self.max_key_size,
                max_value_size: self.max_value_size,
                needed: largest + SEAL_OVERHEAD,
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

/// SWIM failure detection with Lifeguard's refinements (memberlist's figures by default).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct SwimConfig {
    /// Time between two probes (scaled up by the local-health score under Lifeguard).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub probe_interval: Duration,
    /// How long a direct ping may take before indirect probes go out.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub probe_timeout: Duration,
    /// Members asked to probe an unresponsive member on this node's behalf.
    pub indirect_checks: usize,
    /// The suspicion timeout is at least `suspicion_mult x log10(n) x probe_interval`.
    pub suspicion_mult: u32,
    /// The suspicion timeout starts at this multiple of the minimum and shrinks toward it as
    /// other members confirm the suspicion (Lifeguard).
    pub suspicion_max_timeout_mult: u32,
    /// Independent confirmations (other members' failed probes, their own suspicions or Dead
    /// claims) that bring a suspicion's timeout down to the minimum (Lifeguard's `K`; fewer
    /// in clusters of fewer than `K + 2`). memberlist uses `suspicion_mult - 2`.
    pub suspicion_confirmations: u32,
    /// Each membership update is piggybacked at most `retransmit_mult x ceil(log10(n + 1))`
    /// times.
    pub retransmit_mult: u32,
    /// Lifeguard on (local health, dynamic suspicion, nacks, buddy system) or off.
    pub lifeguard: bool,
    /// Highest local-health score; timeouts and intervals scale by `score + 1`.
    pub max_health_score: u32,
    /// How long a dead or departed member is still gossiped before it is forgotten along with
    /// its key-value state.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub dead_retention: Duration,
    /// How long `leave` keeps gossiping before it reports done.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub leave_timeout: Duration,
    /// Acknowledgements of the leave after which it reports done early.
    pub leave_acks: usize,
    /// First retry delay of `join` while no seed has answered; doubles up to
    /// `join_retry_max`.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub join_retry_initial: Duration,
    /// Longest delay between two join attempts.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub join_retry_max: Duration,
    /// How long `join` waits for a seed to answer before it reports
    /// [`Event::JoinFailed`](crate::Event::JoinFailed) (and keeps trying).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub join_timeout: Duration,
    /// Gossip to a dead or unreachable member at least once every this many base gossip
    /// intervals (however stretched the idle interval is), so a healed partition re-merges.
    pub dead_gossip_every_rounds: u32,
    /// Most membership updates waiting to be piggybacked.
    pub max_broadcasts: usize,
    /// Most ping-req relays in flight at once (at most [`MAX_PENDING_RELAYS`]).
    pub max_pending_relays: usize,
    /// Most ping-req relays in flight for one requester.
    pub max_relays_per_requester: usize,
}

impl SwimConfig {
    /// memberlist's LAN defaults for probing (one probe per second, 3 indirect checks),
    /// with a faster failure detector at the same cost, chosen by the simulator's figures
    /// (docs/FIGURES.md, "Failure detection"): every survivor knows of a crash after 4.3 s
    /// on average at 200 members (memberlist: about 11.7 s), with no false death at 10% loss.
    ///
    /// - `probe_timeout` 200 ms (memberlist: 500 ms): indirect probes go out sooner, and a
    ///   probe whose relays all nack fails at once, so the first suspicion comes after 1.1
    ///   to 1.5 periods instead of 1.7 to 2.2;
    /// - `suspicion_mult` 1 (memberlist: 4): the shortest suspicion is `log10(n)` periods,
    ///   reached with `suspicion_confirmations` 1 independent confirmation (a second member
    ///   whose probe failed); a suspicion nobody confirms (a lost datagram, one slow
    ///   accuser) still runs `suspicion_max_timeout_mult` 6 times as long, and the suspect
    ///   is pinged with the accusation by its accuser's next probe, so it refutes in time.
    ///
    /// The cost: a member whose receive path lags by a second or more cannot refute a
    /// confirmed suspicion within `log10(n)` periods and is declared dead (then refutes);
    /// raise `suspicion_mult` to 2 to tolerate a 1.5 s lag, at about 1.5 to 2.5 s more
    /// to detect a crash.
    pub fn lan() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(200),
            indirect_checks: 3,
            suspicion_mult: 1,
            suspicion_max_timeout_mult: 6,
            suspicion_confirmations: 1,
            retransmit_mult: 4,
            lifeguard: true,
            max_health_score: 8,
            dead_retention: Duration::from_secs(600),
            leave_timeout: Duration::from_secs(5),
            leave_acks: 3,
            join_retry_initial: Duration::from_millis(500),
            join_retry_max: Duration::from_secs(30),
            join_timeout: Duration::from_secs(10),
            dead_gossip_every_rounds: 10,
            max_broadcasts: 4_096,
            max_pending_relays: 256,
            max_relays_per_requester: 8,
        }
    }

    /// memberlist's WAN defaults.
    pub fn wan() -> Self {
        Self {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            suspicion_confirmations: 4,
            ..Self::lan()
        }
    }

    /// For one host or a fast, reliable network: probes every 500 ms (memberlist's local preset
    /// probes every second), a 200 ms timeout, one indirect check, LAN's short suspicion.
    pub fn local() -> Self {
        Self {
            // Twice LAN's probe rate with LAN's suspicion: crashes are seen about twice as fast,
            // for twice the probe traffic.
            probe_interval: Duration::from_millis(500),
            probe_timeout: Duration::from_millis(200),
            indirect_checks: 1,
            suspicion_mult: 1,
            suspicion_confirmations: 1,
            retransmit_mult: 2,
            ..Self::lan()
        }
    }
}

impl Default for SwimConfig {
    /// [`SwimConfig::lan`].
    fn default() -> Self {
        Self::lan()
    }
}

/// Push-sum aggregation: how often shares of mass move, how long an epoch lasts, and the
/// limits on names.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct AggregationConfig {
    /// Time between two push-sum rounds (each sends half of this node's mass to one random
    /// member). Rounds run only while this node holds an aggregate.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub interval: Duration,
    /// Rounds per epoch. Each epoch restarts the computation from every node's own values, so
    /// estimates follow churn; the estimate of an epoch is read once it ends. In the
    /// simulator every node's average is within 1e-6 after about 37 rounds at 1,000 nodes
    /// and 41 at 10,000; the count and sum need a few more.
    pub epoch_rounds: u32,
    /// Most named aggregates a node takes part in; shares of further names are dropped and
    /// counted.
    pub max_aggregates: usize,
    /// Longest aggregate name, in bytes.
    pub max_name_size: usize,
    /// Peers owed a resend (an unacknowledged transfer) served per round, oldest first.
    pub max_resends_per_round: usize,
    /// An [`crate::Event::AggregateChanged`] is emitted when an epoch's estimate differs
    /// from the last one reported by more than this fraction (0.01 = 1%).
    pub change_threshold: f64,
}

impl Default for AggregationConfig {
    /// [`AggregationConfig::lan`].
    fn default() -> Self {
        Self::lan()
    }
}

impl AggregationConfig {
    /// One round per second, 100-round epochs (an estimate at most 200 s old).
    pub fn lan() -> Self {
        Self {
            interval: Duration::from_secs(1),
            epoch_rounds: 100,
            max_aggregates: 8,
            max_name_size: 64,
            max_resends_per_round: 4,
            change_threshold: 0.01,
        }
    }

    /// Five rounds per second.
    pub fn local() -> Self {
        Self { interval: Duration::from_millis(200), ..Self::lan() }
    }

    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        if self.epoch_rounds < 2 {
            return Err(ConfigError::EpochTooShort { rounds: self.epoch_rounds });
        }
        if !(self.change_threshold.is_finite() && self.change_threshold >= 0.0) {
            return Err(ConfigError::ChangeThreshold);
        }
        let needed = crate::budget::full_transfer_datagram_len(
            config.envelope_bounds(),
            self.max_aggregates,
            self.max_name_size,
        ) + SEAL_OVERHEAD;
        if needed > config.max_datagram_size {
            return Err(ConfigError::AggregatesCannotFit {
                max_aggregates: self.max_aggregates,
                max_name_size: self.max_name_size,
                needed,
                max_datagram_size: config.max_datagram_size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
