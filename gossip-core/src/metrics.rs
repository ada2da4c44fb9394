//! Counters of what the node did and what it dropped.

/// A snapshot of the node's counters. Every dropped input is counted here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Datagrams handed to `handle_input`.
    pub datagrams_in: u64,
    /// Bytes handed to `handle_input`.
    pub bytes_in: u64,
    /// Datagrams queued for sending.
    pub datagrams_out: u64,
    /// Bytes queued for sending.
    pub bytes_out: u64,
    /// Datagrams larger than `max_datagram_size`, dropped unread.
    pub oversized_datagrams: u64,
    /// Datagrams that did not decode as an envelope.
    pub decode_errors: u64,
    /// Envelopes of a protocol version this node does not speak.
    pub version_mismatches: u64,
    /// Envelopes from another cluster.
    pub cluster_mismatches: u64,
    /// Envelopes that decoded but broke the protocol's rules (bad sender, bad address,
    /// entries out of order, sizes above the limits); dropped whole.
    pub malformed_messages: u64,
    /// Envelopes from an older generation of a known node, or that claim to be from us.
    pub stale_senders: u64,
    /// Node deltas not applied: older generation, a gap before their first version, nothing
    /// new, or about a node this node does not know that the sender holds dead or departed.
    pub stale_deltas: u64,
    /// Node deltas, digest entries or membership claims that claimed newer state of this node
    /// than it has (a newer generation or table version, or life at a higher incarnation).
    pub rejected_own_deltas: u64,
    /// Checks that found another live process under this node's name (see
    /// [`Event::NameConflict`](crate::Event::NameConflict)), on either side.
    pub name_conflicts: u64,
    /// Pings from an older generation of a member, from another address than the current
    /// generation's, answered with an ack that carries the current claim: a process under a
    /// name now held by another is told (see `Event::NameConflict`). Not dropped, so not in
    /// `stale_senders`.
    pub displaced_answered: u64,
    /// Senders, membership claims, node deltas and digest entries refused because their
    /// generation was more than `Config::max_generation_jump` ahead of the one known for the
    /// node (of this node's own, for a node not known); a sender's whole datagram is dropped.
    pub generations_refused: u64,
    /// Node deltas applied (in part or whole).
    pub deltas_applied: u64,
    /// Entries (writes and tombstones) applied from the network.
    pub entries_applied: u64,
    /// Replicas rebuilt from scratch because they were behind a GC watermark.
    pub replica_resets: u64,
    /// Tombstones garbage-collected.
    pub tombstones_collected: u64,
    /// New nodes refused because the table held `max_nodes`.
    pub nodes_over_cap: u64,
    /// Entries refused because a table held `max_keys_per_node`.
    pub keys_over_cap: u64,
    /// Anti-entropy rounds run.
    pub gossip_rounds: u64,
    /// `Syn`s received whose summary matched ours: in sync, nothing more sent.
    pub exchanges_in_sync: u64,
    /// `Syn`s received whose summary differed from ours.
    pub exchanges_out_of_sync: u64,
    /// Anti-entropy rounds skipped because a probe had just shown a peer in sync (idle
    /// backoff on).
    pub rounds_skipped_in_sync: u64,
    /// Rumor pushes sent.
    pub rumor_pushes: u64,
    /// Pushed deltas a peer said it already knew (rumor feedback received).
    pub rumor_feedback: u64,
    /// Rumors that stopped being hot by the rumor rule.
    pub rumors_cooled: u64,
    /// Hot rumors dropped because `max_hot_rumors` were already hot.
    pub rumors_dropped: u64,
    /// Probes (direct pings) sent.
    pub probes_sent: u64,
    /// Probes that got no ack within their period.
    pub probes_failed: u64,
    /// Ping-reqs sent to relays.
    pub ping_reqs_sent: u64,
    /// Ping-reqs refused by the relay rate limits.
    pub relays_refused: u64,
    /// Pings addressed to another name (the address was reused).
    pub misdirected_pings: u64,
    /// Acks and nacks that answer nothing in flight (late, duplicated, replayed or forged),
    /// and nacks beyond the relays asked; ignored.
    pub stray_acks: u64,
    /// Times this node refuted a suspicion or death of itself.
    pub refutations: u64,
    /// Times this node rejoined under a new generation because a claim about it could not be
    /// refuted otherwise (see [`Event::SelfHealed`](crate::Event::SelfHealed)).
    pub self_heals: u64,
    /// Membership claims, node deltas and digest entries relayed by a third party that
    /// raised a known member's incarnation by more than `Config::max_incarnation_jump`, or its
    /// max version by more than `Config::max_version_jump`; dropped.
    pub jumps_refused: u64,
    /// Membership claims about an older generation of a node than the one known (this node
    /// included), about a member forgotten at that generation, or that a member this node
    /// does not know is dead or departed; ignored.
    pub stale_claims: u64,
    /// Dead claims by a third party about a member this node held Alive, taken as the start
    /// of this node's own suspicion instead of a death (the member may have been out of the
    /// claimant's reach only, as across a partition that just healed).
    pub deaths_deferred: u64,
    /// Membership updates dropped because the piggyback queue was full.
    pub broadcasts_dropped: u64,
    /// Dead or departed members forgotten after the retention time.
    pub members_forgotten: u64,
    /// Datagrams dropped because `max_pending_transmits` were already waiting.
    pub transmits_dropped: u64,
    /// Push-sum aggregation rounds run.
    pub aggregate_rounds: u64,
    /// Aggregation transfers not applied: from a stranger, of an earlier epoch, or whose
    /// cumulative weights went down.
    pub aggregate_transfers_refused: u64,
    /// Aggregate shares dropped because `aggregation.max_aggregates` names were held.
    pub aggregate_names_over_cap: u64,
    /// Peers no longer live to which an unacknowledged transfer was owed (its mass is lost
    /// for the epoch).
    pub aggregate_peers_abandoned: u64,
    /// Sealed datagrams received while encryption is off here; dropped.
    pub sealed_refused: u64,
    /// Plain datagrams received while this node requires sealed ones; dropped.
    pub plain_refused: u64,
    /// Sealed datagrams that failed authentication (forged, corrupted, of another cluster,
    /// sealed under another key with the same key id) or were too short for the framing;
    /// dropped.
    pub unauthentic_datagrams: u64,
    /// Sealed datagrams naming a key id that no installed key has; dropped.
    pub unknown_key_ids: u64,
    /// Authentic sealed datagrams received before, or too far behind their sender's latest
    /// (anti-replay); dropped.
    pub replays: u64,
    /// Events dropped (the oldest) because `max_pending_events` were already waiting.
    pub events_dropped: u64,
    /// Application messages received and delivered.
    pub messages_in: u64,
    /// Application messages dropped because their sender went over
    /// `messages.rate_per_sender`.
    pub messages_rate_limited: u64,
    /// Application messages dropped as copies of one delivered (the network duplicated it).
    pub messages_duplicate: u64,
    /// Application broadcasts delivered here (each once).
    pub broadcasts_delivered: u64,
    /// Application broadcasts received again after delivery; dropped.
    pub broadcasts_duplicate: u64,
    /// Coalesced broadcasts dropped because a later one of the same origin and topic was
    /// delivered first.
    pub broadcasts_superseded: u64,
    /// Broadcasts that gave way in the full queue (`messages.max_pending_broadcasts`) before
    /// being passed on as often as they should.
    pub broadcasts_given_way: u64,
    /// Bytes this node sent for application broadcasts: the broadcasts riding on its
    /// datagrams, and whole `Gossip` datagrams (which exist only to carry them).
    pub broadcast_bytes_out: u64,
    /// Queries of others delivered here (their filter selected this node).
    pub queries_delivered: u64,
    /// Answers to this node's queries taken (one per member and query).
    pub query_responses: u64,
    /// Answers dropped: to no query of this node still collecting, or a member's second.
    pub query_responses_dropped: u64,
    /// Write requests of others asked of this node (not counting ones sent again).
    pub write_requests_in: u64,
    /// Write requests of others this node accepted and wrote.
    pub write_requests_accepted: u64,
    /// Write requests of others this node refused (by policy, by its application, for want of
    /// room or time, or because the write was not valid).
    pub write_requests_refused: u64,
    /// Write requests and outcomes this node passed on for others, as a relay.
    pub write_relays: u64,
    /// Write requests and outcomes dropped: relayed twice, for an unknown member, an outcome
    /// for no request waiting here.
    pub write_messages_dropped: u64,
    /// This node's write requests that ended without an outcome (`messages.request_timeout`).
    pub write_requests_timed_out: u64,
}

impl Metrics {
    /// Every counter with its field name, in declaration order: what an exporter publishes
    /// (the `node` program serves them in the Prometheus text format).
    pub fn counters(&self) -> [(&'static str, u64); 70] {
        [
            ("datagrams_in", self.datagrams_in),
            ("bytes_in", self.bytes_in),
            ("datagrams_out", self.datagrams_out),
            ("bytes_out", self.bytes_out),
            ("oversized_datagrams", self.oversized_datagrams),
            ("decode_errors", self.decode_errors),
            ("version_mismatches", self.version_mismatches),
            ("cluster_mismatches", self.cluster_mismatches),
            ("malformed_messages", self.malformed_messages),
            ("stale_senders", self.stale_senders),
            ("stale_deltas", self.stale_deltas),
            ("rejected_own_deltas", self.rejected_own_deltas),
            ("name_conflicts", self.name_conflicts),
            ("displaced_answered", self.displaced_answered),
            ("generations_refused", self.generations_refused),
            ("deltas_applied", self.deltas_applied),
            ("entries_applied", self.entries_applied),
            ("replica_resets", self.replica_resets),
            ("tombstones_collected", self.tombstones_collected),
            ("nodes_over_cap", self.nodes_over_cap),
            ("keys_over_cap", self.keys_over_cap),
            ("gossip_rounds", self.gossip_rounds),
            ("exchanges_in_sync", self.exchanges_in_sync),
            ("exchanges_out_of_sync", self.exchanges_out_of_sync),
            ("rounds_skipped_in_sync", self.rounds_skipped_in_sync),
            ("rumor_pushes", self.rumor_pushes),
            ("rumor_feedback", self.rumor_feedback),
            ("rumors_cooled", self.rumors_cooled),
            ("rumors_dropped", self.rumors_dropped),
            ("probes_sent", self.probes_sent),
            ("probes_failed", self.probes_failed),
            ("ping_reqs_sent", self.ping_reqs_sent),
            ("relays_refused", self.relays_refused),
            ("misdirected_pings", self.misdirected_pings),
            ("stray_acks", self.stray_acks),
            ("refutations", self.refutations),
            ("self_heals", self.self_heals),
            ("jumps_refused", self.jumps_refused),
            ("stale_claims", self.stale_claims),
            ("deaths_deferred", self.deaths_deferred),
            ("broadcasts_dropped", self.broadcasts_dropped),
            ("members_forgotten", self.members_forgotten),
            ("transmits_dropped", self.transmits_dropped),
            ("aggregate_rounds", self.aggregate_rounds),
            ("aggregate_transfers_refused", self.aggregate_transfers_refused),
            ("aggregate_names_over_cap", self.aggregate_names_over_cap),
            ("aggregate_peers_abandoned", self.aggregate_peers_abandoned),
            ("sealed_refused", self.sealed_refused),
            ("plain_refused", self.plain_refused),
            ("unauthentic_datagrams", self.unauthentic_datagrams),
            ("unknown_key_ids", self.unknown_key_ids),
            ("replays", self.replays),
            ("events_dropped", self.events_dropped),
            ("messages_in", self.messages_in),
            ("messages_rate_limited", self.messages_rate_limited),
            ("messages_duplicate", self.messages_duplicate),
            ("broadcasts_delivered", self.broadcasts_delivered),
            ("broadcasts_duplicate", self.broadcasts_duplicate),
            ("broadcasts_superseded", self.broadcasts_superseded),
            ("broadcasts_given_way", self.broadcasts_given_way),
            ("broadcast_bytes_out", self.broadcast_bytes_out),
            ("queries_delivered", self.queries_delivered),
            ("query_responses", self.query_responses),
            ("query_responses_dropped", self.query_responses_dropped),
            ("write_requests_in", self.write_requests_in),
            ("write_requests_accepted", self.write_requests_accepted),
            ("write_requests_refused", self.write_requests_refused),
            ("write_relays", self.write_relays),
            ("write_messages_dropped", self.write_messages_dropped),
            ("write_requests_timed_out", self.write_requests_timed_out),
        ]
    }

    /// Datagrams dropped whole before they could change anything: oversized, undecodable,
    /// of another protocol version or cluster, malformed, from a stale sender, or refused by
    /// the sealed framing (sealed while off, plain while required, unauthentic, unknown key
    /// id, replayed).
    pub fn dropped_whole(&self) -> u64 {
        self.oversized_datagrams
            + self.decode_errors
            + self.version_mismatches
            + self.cluster_mismatches
            + self.malformed_messages
            + self.stale_senders
            + self.sealed_refused
            + self.plain_refused
            + self.unauthentic_datagrams
            + self.unknown_key_ids
            + self.replays
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `counters` lists every field: a counter added to the struct and not to the list fails
    /// here (the Debug output names every field).
    #[test]
    fn counters_list_every_field() {
        let debug = format!("{:?}", Metrics::default());
        let fields = debug.matches(": ").count();
        assert_eq!(Metrics::default().counters().len(), fields, "{debug}");
        for (name, _) in Metrics::default().counters() {
            assert!(debug.contains(&format!("{name}: ")), "{name}");
        }
    }
}
