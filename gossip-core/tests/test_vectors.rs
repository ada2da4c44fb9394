//! The test vectors of `docs/test-vectors.json` (see `docs/PROTOCOL.md`), checked against the
//! implementation: every datagram decodes to its recorded fields, a fresh receiver does with
//! it what the file says, the summary hashes follow the recipe, and the sealed datagram opens
//! to its plaintext. A wire change cannot go unnoticed.
//!
//! The file is written by the ignored test `generate_test_vectors` (three real nodes on a
//! perfect network, then variations of their datagrams):
//!
//! ```text
//! cargo test -p gossip-core --test test_vectors -- --ignored generate_test_vectors
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gossip_core::proto::v1::{self, envelope::Body};
use gossip_core::{
    Config, EncryptionMode, Event, Identity, Keyring, MemberState, Node, Output, QueryFilter, SecretKey,
    WritePolicy,
};
use prost::Message;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/test-vectors.json");

/// The nodes of the recorded run: name, generation (Unix milliseconds), address, and the
/// application writes each makes at start.
const NODES: [(&str, u64, &str); 3] = [
    ("alpha", 1_700_000_000_000, "10.0.0.1:7946"),
    ("beta", 1_700_000_000_500, "10.0.0.2:7946"),
    ("gamma", 1_700_000_001_000, "10.0.0.3:7946"),
];

/// The sealing key of the sealed vector: bytes 0x00, 0x01, ..., 0x1f.
fn sealing_key() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

/// The start of every node's clock: only differences from it matter.
fn epoch() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

fn config() -> Config {
    let mut config = Config::lan();
    // Write requests get an outcome without an application to ask.
    config.messages.write_policy = WritePolicy::AcceptPrefix(String::new());
    config
}

/// A node of the run, started with its application writes and no network.
fn start(index: usize, config: Config, keyring: Keyring, base: Instant) -> Node<ChaCha8Rng> {
    let (name, generation, address) = NODES[index];
    let identity = Identity::new(name, generation, addr(address));
    let rng = ChaCha8Rng::seed_from_u64(index as u64 + 1);
    let mut node = Node::with_keyring(config, identity, base, rng, keyring).expect("a valid node");
    match name {
        "alpha" => {
            node.set("service", &b"web"[..]).expect("a write");
            node.aggregate_set("load", 1.0).expect("an aggregate");
        }
        "beta" => {
            node.aggregate_set("load", 3.0).expect("an aggregate");
        }
        _ => {
            node.set("zone", &b"eu"[..]).expect("a write");
        }
    }
    node
}

// ----- JSON forms -----

fn state_name(state: i32) -> Value {
    match v1::MemberState::try_from(state) {
        Ok(state) => json!(state.as_str_name()),
        Err(_) => json!(state),
    }
}

fn address_json(address: &Option<v1::Address>) -> Value {
    match address {
        None => Value::Null,
        Some(address) => json!({ "ip": hex(&address.ip), "port": address.port }),
    }
}

fn identity_json(identity: &Option<v1::NodeIdentity>) -> Value {
    match identity {
        None => Value::Null,
        Some(id) => json!({
            "name": id.name, "generation": id.generation, "address": address_json(&id.address),
        }),
    }
}

fn digest_json(entries: &[v1::DigestEntry]) -> Value {
    entries
        .iter()
        .map(|e| {
            json!({
                "name": e.name, "generation": e.generation, "max_version": e.max_version,
                "gc_watermark": e.gc_watermark, "unknown": e.unknown,
                "incarnation": e.incarnation, "state": state_name(e.state),
            })
        })
        .collect()
}

fn deltas_json(deltas: &[v1::NodeDelta]) -> Value {
    deltas
        .iter()
        .map(|d| {
            let entries: Vec<Value> = d
                .entries
                .iter()
                .map(|e| {
                    json!({ "key": e.key, "value": hex(&e.value), "version": e.version, "deleted": e.deleted })
                })
                .collect();
            json!({
                "name": d.name, "generation": d.generation, "address": address_json(&d.address),
                "from_version": d.from_version, "to_version": d.to_version,
                "gc_watermark": d.gc_watermark, "reset": d.reset, "entries": entries,
                "incarnation": d.incarnation, "state": state_name(d.state),
            })
        })
        .collect()
}

fn summary_json(summary: &Option<v1::Summary>) -> Value {
    match summary {
        None => Value::Null,
        Some(s) => json!({ "hash": format!("{:016x}", s.hash), "nodes": s.nodes }),
    }
}

fn body_kind(body: &Option<Body>) -> &'static str {
    match body {
        None => "none",
        Some(Body::Syn(_)) => "Syn",
        Some(Body::SynAck(_)) => "SynAck",
        Some(Body::Ack2(_)) => "Ack2",
        Some(Body::Push(_)) => "Push",
        Some(Body::DeltaReply(_)) => "DeltaReply",
        Some(Body::PushAck(_)) => "PushAck",
        Some(Body::Ping(_)) => "Ping",
        Some(Body::PingReq(_)) => "PingReq",
        Some(Body::Ack(_)) => "Ack",
        Some(Body::Nack(_)) => "Nack",
        Some(Body::AggregateTransfer(_)) => "AggregateTransfer",
        Some(Body::AggregateAck(_)) => "AggregateAck",
        Some(Body::Gossip(_)) => "Gossip",
        Some(Body::UserMessage(_)) => "UserMessage",
        Some(Body::QueryResponse(m)) if !m.relay_to.is_empty() => "QueryResponse (to a relay)",
        Some(Body::QueryResponse(m)) if !m.responder.is_empty() => "QueryResponse (from a relay)",
        Some(Body::QueryResponse(_)) => "QueryResponse",
        Some(Body::WriteRequest(_)) => "WriteRequest",
        Some(Body::WriteOutcome(_)) => "WriteOutcome",
    }
}

fn body_json(body: &Option<Body>) -> Value {
    let fields = match body {
        None => Value::Null,
        Some(Body::Syn(m)) => json!({
            "summary": summary_json(&m.summary), "digest": digest_json(&m.digest),
            "mode": v1::ExchangeMode::try_from(m.mode).map_or(json!(m.mode), |m| json!(m.as_str_name())),
            "deltas": deltas_json(&m.deltas),
            "bucket_sums": m.bucket_sums.iter().map(|sum| format!("{sum:08x}")).collect::<Vec<_>>(),
        }),
        Some(Body::SynAck(m)) => {
            json!({ "deltas": deltas_json(&m.deltas), "digest": digest_json(&m.digest) })
        }
        Some(Body::Ack2(m)) => {
            json!({ "deltas": deltas_json(&m.deltas), "request": digest_json(&m.request) })
        }
        Some(Body::Push(m)) => json!({
            "deltas": deltas_json(&m.deltas),
            "want_ack": m.want_ack,
            "summary": summary_json(&m.summary),
            "data_summary": summary_json(&m.data_summary),
        }),
        Some(Body::DeltaReply(m)) => json!({ "deltas": deltas_json(&m.deltas) }),
        Some(Body::PushAck(m)) => {
            json!({ "known": digest_json(&m.known), "in_sync": m.in_sync, "data_in_sync": m.data_in_sync })
        }
        Some(Body::Ping(m)) => {
            json!({
                "sequence": m.sequence,
                "target_tag": m.sequence >> 16,
                "summary": m.summary.map(|summary| format!("{summary:08x}")),
            })
        }
        Some(Body::PingReq(m)) => {
            json!({ "sequence": m.sequence, "target": identity_json(&m.target), "nack": m.nack })
        }
        Some(Body::Ack(m)) => json!({ "sequence": m.sequence }),
        Some(Body::Nack(m)) => json!({ "sequence": m.sequence }),
        Some(Body::AggregateTransfer(m)) => {
            let shares: Vec<Value> = m
                .shares
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name, "average_value": s.average_value,
                        "average_weight": s.average_weight, "sum_value": s.sum_value,
                        "count_value": s.count_value, "total_weight": s.total_weight,
                        "min": s.min, "max": s.max,
                    })
                })
                .collect();
            json!({ "epoch": m.epoch, "sequence": m.sequence, "shares": shares })
        }
        Some(Body::AggregateAck(m)) => json!({ "epoch": m.epoch, "sequence": m.sequence }),
        Some(Body::Gossip(_)) => json!({}),
        Some(Body::UserMessage(m)) => json!({ "payload": hex(&m.payload), "id": m.id }),
        Some(Body::QueryResponse(m)) => {
            json!({
                "generation": m.generation, "id": m.id, "payload": hex(&m.payload),
                "relay_to": m.relay_to, "responder": m.responder,
            })
        }
        Some(Body::WriteRequest(m)) => json!({
            "requester": identity_json(&m.requester), "owner": m.owner, "id": m.id, "key": m.key,
            "value": hex(&m.value), "delete": m.delete, "relayed": m.relayed,
        }),
        Some(Body::WriteOutcome(m)) => json!({
            "requester": identity_json(&m.requester), "id": m.id, "owner": m.owner,
            "owner_generation": m.owner_generation, "accepted": m.accepted, "version": m.version,
            "reason": m.reason, "relayed": m.relayed,
        }),
    };
    json!({ "kind": body_kind(body), "fields": fields })
}

fn envelope_json(envelope: &v1::Envelope) -> Value {
    let membership: Vec<Value> = envelope
        .membership
        .iter()
        .map(|u| {
            json!({
                "member": identity_json(&u.member), "incarnation": u.incarnation,
                "state": state_name(u.state), "from": u.from,
            })
        })
        .collect();
    let mut value = json!({
        "protocol_version": envelope.protocol_version,
        "cluster": envelope.cluster,
        "sender": identity_json(&envelope.sender),
        "body": body_json(&envelope.body),
        "membership": membership,
    });
    // Only in the vectors that carry broadcasts, so that the older vectors read the same.
    if !envelope.broadcasts.is_empty() {
        let broadcasts: Vec<Value> = envelope
            .broadcasts
            .iter()
            .map(|b| {
                let mut broadcast = json!({
                    "origin": b.origin, "generation": b.generation, "id": b.id,
                    "topic": b.topic, "payload": hex(&b.payload), "latest": b.latest,
                });
                if let Some(q) = &b.query {
                    broadcast["query"] = json!({
                        "reply_to": q.reply_to.as_ref().map(|a| format!("{}:{}", hex(&a.ip), a.port)),
                        "timeout_ms": q.timeout_ms, "names": q.names, "key": q.key,
                        "value": q.value.as_ref().map(|v| hex(v)),
                    });
                }
                broadcast
            })
            .collect();
        value["broadcasts"] = json!(broadcasts);
    }
    value
}

// ----- effects on a fresh receiver -----

fn wire_state(state: MemberState) -> u8 {
    match state {
        MemberState::Alive => 1,
        MemberState::Suspect => 2,
        MemberState::Dead => 3,
        MemberState::Left => 4,
    }
}

/// Which drop counter a datagram moved, if any.
fn drop_reason(before: &gossip_core::Metrics, after: &gossip_core::Metrics) -> Value {
    let reasons = [
        ("oversized", after.oversized_datagrams - before.oversized_datagrams),
        ("undecodable", after.decode_errors - before.decode_errors),
        ("protocol_version", after.version_mismatches - before.version_mismatches),
        ("cluster", after.cluster_mismatches - before.cluster_mismatches),
        ("malformed", after.malformed_messages - before.malformed_messages),
        ("stale_sender", after.stale_senders - before.stale_senders),
        ("generation_too_far_ahead", after.generations_refused - before.generations_refused),
        ("sealed_while_off", after.sealed_refused - before.sealed_refused),
        ("plain_required", after.plain_refused - before.plain_refused),
        ("unknown_key_id", after.unknown_key_ids - before.unknown_key_ids),
        ("unauthentic", after.unauthentic_datagrams - before.unauthentic_datagrams),
        ("replay", after.replays - before.replays),
    ];
    reasons.iter().find(|(_, n)| *n > 0).map_or(Value::Null, |(name, _)| json!(name))
}

/// The receiver's view of every other member, with their live entries.
fn members_json(node: &Node<ChaCha8Rng>) -> Value {
    let own = node.identity().name.clone();
    node.nodes()
        .filter(|view| view.name != own)
        .map(|view| {
            let entries: BTreeMap<String, String> = node
                .entries(view.name)
                .map(|entries| {
                    entries.map(|(k, v, version)| (k.to_owned(), format!("{}@{version}", hex(v)))).collect()
                })
                .unwrap_or_default();
            json!({
                "name": view.name, "generation": view.generation, "address": view.address.to_string(),
                "state": state_name(i32::from(wire_state(view.state))), "incarnation": view.incarnation,
                "max_version": view.max_version, "entries": entries,
            })
        })
        .collect()
}

fn reply_json(to: SocketAddr, payload: &[u8], sealed: bool) -> Value {
    if sealed {
        return json!({ "to": to.to_string(), "kind": "sealed" });
    }
    let envelope = v1::Envelope::decode(payload).expect("a reply decodes");
    let detail = match &envelope.body {
        Some(Body::Ack(m)) => json!({ "sequence": m.sequence }),
        Some(Body::Nack(m)) => json!({ "sequence": m.sequence }),
        Some(Body::Ping(m)) => json!({ "target_tag": m.sequence >> 16 }),
        Some(Body::AggregateAck(m)) => json!({ "epoch": m.epoch, "sequence": m.sequence }),
        Some(Body::PushAck(m)) => {
            json!({ "known": m.known.iter().map(|e| e.name.clone()).collect::<Vec<_>>() })
        }
        Some(Body::SynAck(m)) => json!({
            "deltas": m.deltas.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            "digest": m.digest.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        }),
        _ => Value::Null,
    };
    json!({ "to": to.to_string(), "kind": body_kind(&envelope.body), "detail": detail })
}

/// What a fresh receiver (the recipient's identity, started with its own writes only) does
/// with a datagram from `from`.
fn effects(receiver: usize, keyring: Option<[u8; 32]>, from: SocketAddr, datagram: &[u8]) -> Value {
    let base = epoch();
    let mut config = config();
    let ring = match keyring {
        Some(key) => {
            config.encryption = EncryptionMode::Require;
            Keyring::new(SecretKey::from_array(key))
        }
        None => Keyring::empty(),
    };
    let mut node = start(receiver, config, ring, base);
    while node.poll().is_some() {}
    let before = node.metrics();
    node.handle_input(base, from, datagram);
    let after = node.metrics();
    let mut replies = Vec::new();
    while let Some(output) = node.poll() {
        if let Output::Transmit(t) = output {
            replies.push(reply_json(t.to, &t.payload, keyring.is_some()));
        }
    }
    json!({
        "receiver": node.identity().name,
        "drop": drop_reason(&before, &after),
        "members": members_json(&node),
        "replies": replies,
    })
}

// ----- the summary recipe, written again from docs/PROTOCOL.md -----

fn recipe_entry(name: &str, generation: u64, max_version: u64, incarnation: u32, state: u8) -> u64 {
    use xxhash_rust::xxh3::xxh3_64_with_seed;
    let mut bytes = [0u8; 21];
    bytes[..8].copy_from_slice(&xxh3_64_with_seed(name.as_bytes(), generation).to_le_bytes());
    bytes[8..16].copy_from_slice(&max_version.to_le_bytes());
    bytes[16..20].copy_from_slice(&incarnation.to_le_bytes());
    bytes[20] = state;
    xxh3_64_with_seed(&bytes, 0x9e37_79b9_7f4a_7c15)
}

/// The bucket sums of a digest (docs/PROTOCOL.md, 14.1), as `Syn.bucket_sums` carries them.
fn recipe_bucket_sums(nodes: &[Value]) -> Vec<String> {
    let mut sums = [0u64; 64];
    for n in nodes {
        let (name, generation) =
            (n["name"].as_str().expect("a name"), n["generation"].as_u64().expect("a generation"));
        let bucket = (xxhash_rust::xxh3::xxh3_64_with_seed(name.as_bytes(), generation) >> 58) as usize;
        let entry = recipe_entry(
            name,
            generation,
            n["max_version"].as_u64().expect("a version"),
            n["incarnation"].as_u64().expect("an incarnation") as u32,
            state_number(n["state"].as_str().expect("a state")),
        );
        sums[bucket] = sums[bucket].wrapping_add(entry);
    }
    sums.iter().map(|sum| format!("{:08x}", *sum as u32)).collect()
}

/// The data summary's hash of a digest (docs/PROTOCOL.md, 14.2).
fn recipe_data_hash(nodes: &[Value]) -> u64 {
    use xxhash_rust::xxh3::xxh3_64_with_seed;
    let mut hash = 0u64;
    for n in nodes {
        let (name, generation) =
            (n["name"].as_str().expect("a name"), n["generation"].as_u64().expect("a generation"));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&xxh3_64_with_seed(name.as_bytes(), generation).to_le_bytes());
        bytes[8..].copy_from_slice(&n["max_version"].as_u64().expect("a version").to_le_bytes());
        hash = hash.wrapping_add(xxh3_64_with_seed(&bytes, 0xf39c_c060_5ced_c834));
    }
    hash
}

/// A ping's target tag, written again from docs/PROTOCOL.md (7.1).
fn recipe_tag(name: &str) -> u16 {
    let top = (xxhash_rust::xxh3::xxh3_64_with_seed(name.as_bytes(), 0) >> 48) as u16;
    if top == 0 { 1 } else { top }
}

fn state_number(name: &str) -> u8 {
    match name {
        "MEMBER_STATE_ALIVE" => 1,
        "MEMBER_STATE_SUSPECT" => 2,
        "MEMBER_STATE_DEAD" => 3,
        "MEMBER_STATE_LEFT" => 4,
        other => panic!("state {other}"),
    }
}

fn recipe(nodes: &[Value]) -> (u64, u32) {
    let mut hash = 0u64;
    for n in nodes {
        let state = state_number(n["state"].as_str().expect("a state"));
        hash = hash.wrapping_add(recipe_entry(
            n["name"].as_str().expect("a name"),
            n["generation"].as_u64().expect("a generation"),
            n["max_version"].as_u64().expect("a version"),
            n["incarnation"].as_u64().expect("an incarnation") as u32,
            state,
        ));
    }
    (hash, nodes.len() as u32)
}

/// A node's digest as summary input: every node it knows, itself included.
fn summary_input(node: &Node<ChaCha8Rng>) -> Vec<Value> {
    node.nodes()
        .map(|v| {
            json!({
                "name": v.name, "generation": v.generation, "max_version": v.max_version,
                "incarnation": v.incarnation, "state": state_name(i32::from(wire_state(v.state))),
            })
        })
        .collect()
}

// ----- the recorded run -----

struct Captured {
    label: String,
    from: usize,
    to: usize,
    at_ms: u64,
    payload: Vec<u8>,
}

struct Run {
    nodes: Vec<Node<ChaCha8Rng>>,
    base: Instant,
    captured: Vec<Captured>,
    /// Datagrams to or from this node are lost.
    cut: Option<usize>,
}

impl Run {
    fn index_of(&self, address: SocketAddr) -> Option<usize> {
        NODES.iter().position(|(_, _, a)| addr(a) == address)
    }

    fn capture(&mut self, from: usize, to: usize, now: Instant, payload: &[u8]) {
        let Ok(envelope) = v1::Envelope::decode(payload) else { return };
        let mut label = body_kind(&envelope.body).to_owned();
        match &envelope.body {
            Some(Body::Ping(ping)) if ping.sequence >> 16 == 0 => {
                label = "Ping (leave, anyone answers)".into()
            }
            Some(Body::Push(push)) if push.want_ack => label = "Push (want_ack)".into(),
            Some(Body::Syn(_))
                if from == 0 && to == 1 && self.captured.iter().all(|c| c.label != "Syn (join)") =>
            {
                label = "Syn (join)".into()
            }
            _ => {}
        }
        if envelope.membership.iter().any(|u| u.state == v1::MemberState::Suspect as i32)
            && !self.captured.iter().any(|c| c.label == "membership: Suspect claim")
        {
            self.captured.push(Captured {
                label: "membership: Suspect claim".into(),
                from,
                to,
                at_ms: (now - self.base).as_millis() as u64,
                payload: payload.to_vec(),
            });
        }
        for (wanted, query) in [("broadcasts: a broadcast", false), ("broadcasts: a query", true)] {
            if envelope.broadcasts.iter().any(|b| b.query.is_some() == query)
                && !self.captured.iter().any(|c| c.label == wanted)
            {
                self.captured.push(Captured {
                    label: wanted.into(),
                    from,
                    to,
                    at_ms: (now - self.base).as_millis() as u64,
                    payload: payload.to_vec(),
                });
            }
        }
        if envelope.membership.iter().any(|u| u.state == v1::MemberState::Left as i32)
            && !self.captured.iter().any(|c| c.label == "membership: Left claim")
        {
            self.captured.push(Captured {
                label: "membership: Left claim".into(),
                from,
                to,
                at_ms: (now - self.base).as_millis() as u64,
                payload: payload.to_vec(),
            });
        }
        if self.captured.iter().all(|c| c.label != label) {
            let at_ms = (now - self.base).as_millis() as u64;
            self.captured.push(Captured { label, from, to, at_ms, payload: payload.to_vec() });
        }
    }

    fn step(&mut self, now: Instant) {
        for node in &mut self.nodes {
            if node.poll_timeout() <= now {
                node.handle_timeout(now);
            }
        }
        let mut queue = VecDeque::new();
        for _ in 0..1_000 {
            for (i, node) in self.nodes.iter_mut().enumerate() {
                while let Some(output) = node.poll() {
                    match output {
                        Output::Transmit(t) => queue.push_back((i, t)),
                        // The application answers every query at once.
                        Output::Event(Event::Query { query, .. }) => {
                            node.respond(&query, &b"here"[..]).expect("answered in time");
                        }
                        Output::Event(_) => {}
                    }
                }
            }
            let Some((from, transmit)) = queue.pop_front() else { return };
            let Some(to) = self.index_of(transmit.to) else { continue };
            self.capture(from, to, now, &transmit.payload);
            if self.cut == Some(from) || self.cut == Some(to) {
                continue;
            }
            self.nodes[to].handle_input(now, addr(NODES[from].2), &transmit.payload);
        }
    }
}

fn record_run() -> (Vec<Captured>, Vec<Node<ChaCha8Rng>>) {
    let base = epoch();
    let nodes = (0..3).map(|i| start(i, config(), Keyring::empty(), base)).collect();
    let mut run = Run { nodes, base, captured: Vec::new(), cut: None };
    run.nodes[0].join([addr(NODES[1].2)]);
    run.nodes[2].join([addr(NODES[1].2)]);
    let tick = Duration::from_millis(10);
    for ms in (0..12_000).step_by(10) {
        if ms == 5_000 {
            // gamma is cut off: probes of it fail, relays nack, it is suspected.
            run.cut = Some(2);
        }
        if ms == 9_000 {
            run.cut = None;
        }
        if ms == 10_000 {
            // A pull that asks for alpha's table from scratch: beta answers with a
            // `DeltaReply` (push-pull exchanges seldom need one).
            let gamma = run.nodes[2].identity().clone();
            let request = v1::Envelope {
                protocol_version: 1,
                cluster: "default".into(),
                sender: Some(v1::NodeIdentity {
                    name: gamma.name.clone(),
                    generation: gamma.generation,
                    address: Some(v1::Address { ip: vec![10, 0, 0, 3].into(), port: 7946 }),
                }),
                body: Some(Body::Ack2(v1::Ack2 {
                    deltas: Vec::new(),
                    request: vec![v1::DigestEntry {
                        name: "alpha".into(),
                        generation: NODES[0].1,
                        unknown: true,
                        ..Default::default()
                    }],
                })),
                membership: Vec::new(),
                broadcasts: Vec::new(),
            };
            run.nodes[1].handle_input(base + tick * (ms / 10), addr(NODES[2].2), &request.encode_to_vec());
        }
        if ms == 10_300 {
            // Application messages: a direct message, a broadcast, a query of gamma by name
            // (answered at once), a write request to beta (accepted by its policy).
            run.nodes[0].send_to("gamma", &b"hello"[..]).expect("a live member");
            run.nodes[1].broadcast("deploy", &b"v2"[..]).expect("a broadcast");
            let filter = QueryFilter::Names(vec!["gamma".into()]);
            run.nodes[0].query("health", &b"ok?"[..], filter, Duration::from_secs(1)).expect("a query");
            run.nodes[2].request_write("beta", "color", &b"blue"[..]).expect("a request");
        }
        if ms == 11_000 {
            run.nodes[0].leave();
        }
        run.step(base + tick * (ms / 10));
    }
    (run.captured, run.nodes)
}

fn mutate(payload: &[u8], change: impl FnOnce(&mut v1::Envelope)) -> Vec<u8> {
    let mut envelope = v1::Envelope::decode(payload).expect("decodes");
    change(&mut envelope);
    envelope.encode_to_vec()
}

/// Datagrams that break a rule: variations of the join `Syn` (alpha to beta), each with
/// what it shows.
fn variations(join_syn: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let delta = |value_len: usize, versions: &[u64]| v1::NodeDelta {
        name: "alpha".into(),
        generation: NODES[0].1,
        address: Some(v1::Address { ip: vec![10, 0, 0, 1].into(), port: 7946 }),
        from_version: 0,
        to_version: versions.iter().copied().max().unwrap_or(0),
        entries: versions
            .iter()
            .map(|&version| v1::Entry {
                key: format!("k{version}"),
                value: vec![7; value_len].into(),
                version,
                deleted: false,
            })
            .collect(),
        incarnation: 0,
        state: v1::MemberState::Alive as i32,
        ..Default::default()
    };
    let push = |d: v1::NodeDelta| Some(Body::Push(v1::Push { deltas: vec![d], ..Default::default() }));
    vec![
        ("another cluster", mutate(join_syn, |e| e.cluster = "other".into())),
        ("another protocol version", mutate(join_syn, |e| e.protocol_version = 2)),
        ("no sender on a Syn", mutate(join_syn, |e| e.sender = None)),
        (
            "a sender named as the receiver",
            mutate(join_syn, |e| {
                if let Some(s) = e.sender.as_mut() {
                    s.name = "beta".into()
                }
                e.membership.clear();
            }),
        ),
        (
            "an empty sender name",
            mutate(join_syn, |e| {
                if let Some(s) = e.sender.as_mut() {
                    s.name = String::new()
                }
            }),
        ),
        (
            "a 65-byte sender name",
            mutate(join_syn, |e| {
                if let Some(s) = e.sender.as_mut() {
                    s.name = "a".repeat(65)
                }
            }),
        ),
        (
            "a sender address of 3 bytes",
            mutate(join_syn, |e| {
                if let Some(s) = e.sender.as_mut() {
                    s.address = Some(v1::Address { ip: vec![1, 2, 3].into(), port: 1 })
                }
            }),
        ),
        (
            "a sender generation more than max_generation_jump above the receiver's",
            mutate(join_syn, |e| {
                if let Some(s) = e.sender.as_mut() {
                    s.generation = NODES[1].1 + 315_360_000_001
                }
                e.membership.clear();
            }),
        ),
        (
            "a membership update with state 0",
            mutate(join_syn, |e| {
                if let Some(u) = e.membership.first_mut() {
                    u.state = 0
                }
            }),
        ),
        (
            "a membership update without an address",
            mutate(join_syn, |e| {
                if let Some(u) = e.membership.first_mut() {
                    if let Some(m) = u.member.as_mut() {
                        m.address = None
                    }
                }
            }),
        ),
        (
            "a digest entry with an empty name",
            mutate(join_syn, |e| {
                if let Some(Body::Syn(syn)) = e.body.as_mut() {
                    syn.digest.push(v1::DigestEntry::default())
                }
            }),
        ),
        (
            "a delta without an address",
            mutate(join_syn, |e| {
                let mut d = delta(4, &[1, 2]);
                d.address = None;
                e.body = push(d);
            }),
        ),
        ("delta entries out of version order", mutate(join_syn, |e| e.body = push(delta(4, &[2, 1])))),
        ("a 929-byte value (max_value_size is 928)", mutate(join_syn, |e| e.body = push(delta(929, &[1])))),
        (
            "a well-formed Push (the reference for the two above)",
            mutate(join_syn, |e| e.body = push(delta(4, &[1, 2]))),
        ),
        (
            "a 1,401-byte datagram",
            mutate(join_syn, |e| {
                if let Some(Body::Syn(syn)) = e.body.as_mut() {
                    let mut i = 0;
                    while syn.encoded_len() < 1_500 {
                        syn.digest.push(v1::DigestEntry {
                            name: format!("filler-{i:04}"),
                            generation: 1,
                            ..Default::default()
                        });
                        i += 1;
                    }
                }
            }),
        ),
        (
            "a Ping without a sender",
            mutate(join_syn, |e| {
                e.sender = None;
                e.membership.clear();
                e.body = Some(Body::Ping(v1::Ping { sequence: 7, summary: None }));
            }),
        ),
        (
            "an Ack without a sender (allowed; stray here)",
            mutate(join_syn, |e| {
                e.sender = None;
                e.membership.clear();
                e.body = Some(Body::Ack(v1::Ack { sequence: 7, ..Default::default() }));
            }),
        ),
        ("no body", mutate(join_syn, |e| e.body = None)),
        ("not protobuf", vec![0xff, 0xff, 0xff]),
    ]
}

#[test]
#[ignore = "writes docs/test-vectors.json"]
fn generate_test_vectors() {
    let (captured, nodes) = record_run();
    let wanted = [
        "Syn (join)",
        "SynAck",
        "Ack2",
        "Push (want_ack)",
        "PushAck",
        "DeltaReply",
        "Ping",
        "PingReq",
        "Ack",
        "Nack",
        "AggregateTransfer",
        "AggregateAck",
        "Ping (leave, anyone answers)",
        "membership: Suspect claim",
        "membership: Left claim",
        "UserMessage",
        "Gossip",
        "broadcasts: a broadcast",
        "broadcasts: a query",
        "QueryResponse",
        "QueryResponse (to a relay)",
        "QueryResponse (from a relay)",
        "WriteRequest",
        "WriteOutcome",
    ];
    let mut datagrams = Vec::new();
    for label in wanted {
        let Some(c) = captured.iter().find(|c| c.label == label) else { panic!("no {label} in the run") };
        let envelope = v1::Envelope::decode(&c.payload[..]).expect("decodes");
        datagrams.push(json!({
            "label": label,
            "from": NODES[c.from].2, "to": NODES[c.to].2, "at_ms": c.at_ms,
            "hex": hex(&c.payload),
            "decoded": envelope_json(&envelope),
            "expect": effects(c.to, None, addr(NODES[c.from].2), &c.payload),
        }));
    }
    let join = &captured.iter().find(|c| c.label == "Syn (join)").expect("a join").payload;
    for (label, payload) in variations(join) {
        datagrams.push(json!({
            "label": label, "from": NODES[0].2, "to": NODES[1].2, "at_ms": 0,
            "hex": hex(&payload),
            "decoded": v1::Envelope::decode(&payload[..]).map_or(Value::Null, |e| envelope_json(&e)),
            "expect": effects(1, None, addr(NODES[0].2), &payload),
        }));
    }

    let mut summaries = vec![
        json!({ "label": "one node, nothing written", "nodes": [
            { "name": "n1", "generation": 1, "max_version": 0, "incarnation": 0, "state": "MEMBER_STATE_ALIVE" },
        ]}),
        json!({ "label": "two nodes, one suspect", "nodes": [
            { "name": "n1", "generation": 1_700_000_000_000u64, "max_version": 5, "incarnation": 0, "state": "MEMBER_STATE_ALIVE" },
            { "name": "n2", "generation": 1_700_000_000_001u64, "max_version": 7, "incarnation": 3, "state": "MEMBER_STATE_SUSPECT" },
        ]}),
        json!({ "label": "dead and left members count until forgotten", "nodes": [
            { "name": "a", "generation": 10, "max_version": 1, "incarnation": 1, "state": "MEMBER_STATE_ALIVE" },
            { "name": "b", "generation": 11, "max_version": 0, "incarnation": 0, "state": "MEMBER_STATE_DEAD" },
            { "name": "c", "generation": 12, "max_version": u64::MAX, "incarnation": u32::MAX, "state": "MEMBER_STATE_LEFT" },
        ]}),
    ];
    for node in &nodes {
        let s = node.digest_summary();
        summaries.push(json!({
            "label": format!("the digest of {} at the end of the recorded run", node.identity().name),
            "nodes": summary_input(node),
            "from_node": {
                "hash": format!("{:016x}", s.hash),
                "nodes": s.nodes,
                "data_hash": format!("{:016x}", node.data_summary().hash),
            },
        }));
    }
    for s in &mut summaries {
        let (hash, count) = recipe(s["nodes"].as_array().expect("nodes"));
        s["hash"] = json!(format!("{hash:016x}"));
        s["count"] = json!(count);
        s["bucket_sums"] = json!(recipe_bucket_sums(s["nodes"].as_array().expect("nodes")));
        s["data_hash"] = json!(format!("{:016x}", recipe_data_hash(s["nodes"].as_array().expect("nodes"))));
    }

    let tags: Vec<Value> = NODES
        .iter()
        .map(|(name, _, _)| *name)
        .chain(["node-042", "a", "\u{e9}t\u{e9}"])
        .map(|name| json!({ "name": name, "tag": recipe_tag(name) }))
        .collect();

    let sealed = sealed_vector();
    let file = json!({
        "about": "Test vectors of the gossip.v1 wire protocol; see docs/PROTOCOL.md, section 'Test vectors'. Generated by gossip-core/tests/test_vectors.rs (generate_test_vectors); checked by the same file.",
        "nodes": NODES.iter().map(|(n, g, a)| json!({ "name": n, "generation": g, "address": a })).collect::<Vec<_>>(),
        "receiver_setup": "Each 'expect' is what a fresh receiver does: the recipient's identity (see 'nodes'), Config::lan() defaults (cluster \"default\") except that every write request is accepted (messages.write_policy accepts every key), an empty membership, and only its own start-up writes: alpha set service=web (version 1) and contributes load=1.0; beta contributes load=3.0; gamma set zone=eu (version 1). 'members' lists what it then knows of others (entries as hex(value)@version); 'replies' the datagrams it sends at once.",
        "datagrams": datagrams,
        "summaries": summaries,
        "ping_target_tags": tags,
        "sealed": sealed,
    });
    let text = serde_json::to_string_pretty(&file).expect("json") + "\n";
    std::fs::write(FILE, text).expect("writes the file");
}

/// A `Syn` sealed by alpha under [`sealing_key`], with the header's parts.
fn sealed_vector() -> Value {
    let base = epoch();
    let key = SecretKey::from_array(sealing_key());
    let mut config = config();
    config.encryption = EncryptionMode::Require;
    let mut alpha = start(0, config, Keyring::new(key.clone()), base);
    while alpha.poll().is_some() {}
    alpha.join([addr(NODES[1].2)]);
    let Some(Output::Transmit(t)) = alpha.poll() else { panic!("a datagram") };
    let datagram = t.payload.to_vec();
    let header = &datagram[..14];
    let plaintext = open(&sealing_key(), &datagram, "default").expect("opens");
    let mut aad = header.to_vec();
    aad.extend_from_slice(&1u32.to_le_bytes());
    aad.extend_from_slice(b"default");
    json!({
        "key": hex(&sealing_key()),
        "fingerprint": key.fingerprint().to_string(),
        "key_id": format!("{:02x}", key.fingerprint().key_id()),
        "cluster": "default",
        "protocol_version": 1,
        "datagram": hex(&datagram),
        "header": { "marker": "01", "key_id": hex(&header[1..2]), "session": hex(&header[2..10]), "counter": hex(&header[10..14]) },
        "nonce": hex(&header[2..14]),
        "aad": hex(&aad),
        "ciphertext": hex(&datagram[14..datagram.len() - 16]),
        "tag": hex(&datagram[datagram.len() - 16..]),
        "plaintext": hex(&plaintext),
        "decoded": envelope_json(&v1::Envelope::decode(&plaintext[..]).expect("decodes")),
        "expect": effects(1, Some(sealing_key()), addr(NODES[0].2), &datagram),
    })
}

/// Opens a sealed datagram as docs/PROTOCOL.md says, with `ring` directly.
fn open(key: &[u8; 32], datagram: &[u8], cluster: &str) -> Option<Vec<u8>> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    if datagram.len() < 30 || datagram[0] != 0x01 {
        return None;
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut aad = datagram[..14].to_vec();
    aad.extend_from_slice(&1u32.to_le_bytes());
    aad.extend_from_slice(cluster.as_bytes());
    let nonce = Nonce::try_assume_unique_for_key(&datagram[2..14]).ok()?;
    let mut in_out = datagram[14..].to_vec();
    let plain = key.open_in_place(nonce, Aad::from(&aad[..]), &mut in_out).ok()?;
    Some(plain.to_vec())
}

fn vectors() -> Value {
    let text = std::fs::read_to_string(FILE).expect("docs/test-vectors.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn node_index(address: &str) -> usize {
    NODES.iter().position(|(_, _, a)| *a == address).expect("a node of the run")
}

#[test]
fn datagrams_decode_to_their_recorded_fields() {
    let file = vectors();
    let datagrams = file["datagrams"].as_array().expect("datagrams");
    assert!(datagrams.len() >= 30);
    for d in datagrams {
        let bytes = unhex(d["hex"].as_str().expect("hex"));
        let decoded = v1::Envelope::decode(&bytes[..]).map_or(Value::Null, |e| envelope_json(&e));
        assert_eq!(decoded, d["decoded"], "{}", d["label"]);
        // Re-encoding the decoded envelope gives the same bytes: prost writes fields in number
        // order, as every datagram of the run was written.
        if let Ok(envelope) = v1::Envelope::decode(&bytes[..]) {
            if bytes.len() <= 1_400 && d["expect"]["drop"].is_null() {
                assert_eq!(envelope.encode_to_vec(), bytes, "{}", d["label"]);
            }
        }
    }
}

#[test]
fn a_fresh_receiver_does_what_each_vector_expects() {
    let file = vectors();
    for d in file["datagrams"].as_array().expect("datagrams") {
        let bytes = unhex(d["hex"].as_str().expect("hex"));
        let to = node_index(d["to"].as_str().expect("to"));
        let from = addr(d["from"].as_str().expect("from"));
        assert_eq!(effects(to, None, from, &bytes), d["expect"], "{}", d["label"]);
    }
}

#[test]
fn the_recorded_run_is_reproduced_exactly() {
    let file = vectors();
    let (captured, _) = record_run();
    for d in
        file["datagrams"].as_array().expect("datagrams").iter().filter(|d| d["at_ms"].as_u64() != Some(0))
    {
        let label = d["label"].as_str().expect("label");
        let c = captured.iter().find(|c| c.label == label).expect("captured again");
        assert_eq!(hex(&c.payload), d["hex"].as_str().expect("hex"), "{label}: the wire or the node changed");
    }
}

#[test]
fn summary_hashes_follow_the_recipe() {
    let file = vectors();
    for s in file["summaries"].as_array().expect("summaries") {
        let (hash, nodes) = recipe(s["nodes"].as_array().expect("nodes"));
        assert_eq!(format!("{hash:016x}"), s["hash"].as_str().expect("hash"), "{}", s["label"]);
        assert_eq!(u64::from(nodes), s["count"].as_u64().expect("count"));
        let buckets = recipe_bucket_sums(s["nodes"].as_array().expect("nodes"));
        assert_eq!(json!(buckets), s["bucket_sums"], "{}: the bucket sums", s["label"]);
        let data_hash = format!("{:016x}", recipe_data_hash(s["nodes"].as_array().expect("nodes")));
        assert_eq!(data_hash, s["data_hash"].as_str().expect("data_hash"), "{}: the data hash", s["label"]);
        if !s["from_node"].is_null() {
            assert_eq!(s["from_node"]["hash"], s["hash"], "{}", s["label"]);
            assert_eq!(s["from_node"]["data_hash"], s["data_hash"], "{}", s["label"]);
        }
    }
    // And every node of a fresh run agrees with the recipe over what it knows.
    let (_, nodes) = record_run();
    for node in &nodes {
        let (hash, count) = recipe(&summary_input(node));
        let s = node.digest_summary();
        assert_eq!((s.hash, s.nodes), (hash, count), "{}", node.identity().name);
        let data = node.data_summary();
        assert_eq!((data.hash, data.nodes), (recipe_data_hash(&summary_input(node)), count));
    }
}

#[test]
fn ping_target_tags_follow_the_recipe() {
    let file = vectors();
    let tags = file["ping_target_tags"].as_array().expect("ping_target_tags");
    assert!(!tags.is_empty());
    for t in tags {
        let name = t["name"].as_str().expect("name");
        let tag = t["tag"].as_u64().expect("tag");
        assert_eq!(u64::from(recipe_tag(name)), tag, "{name}: the recipe");
        assert_eq!(u64::from(gossip_core::ping_target_tag(name)), tag, "{name}: the node");
    }
    // Every probe of the recorded run names its target by its tag.
    let mut pings = 0;
    for d in file["datagrams"].as_array().expect("datagrams") {
        if d["label"].as_str() == Some("Ping") {
            let to = d["to"].as_str().expect("to");
            let target = NODES.iter().find(|(_, _, a)| *a == to).expect("a node").0;
            let tag = d["decoded"]["body"]["fields"]["target_tag"].as_u64().expect("a tag");
            assert_eq!(tag, u64::from(recipe_tag(target)), "a ping to {target}");
            pings += 1;
        }
    }
    assert!(pings > 0, "no ping among the vectors");
}

#[test]
fn the_sealed_vector_opens_to_its_plaintext() {
    let file = vectors();
    let sealed = &file["sealed"];
    let key: [u8; 32] = unhex(sealed["key"].as_str().expect("key")).try_into().expect("32 bytes");
    assert_eq!(
        SecretKey::from_array(key).fingerprint().to_string(),
        sealed["fingerprint"].as_str().expect("fp")
    );
    let datagram = unhex(sealed["datagram"].as_str().expect("datagram"));
    let plaintext = open(&key, &datagram, "default").expect("opens");
    assert_eq!(hex(&plaintext), sealed["plaintext"].as_str().expect("plaintext"));
    let envelope = v1::Envelope::decode(&plaintext[..]).expect("decodes");
    assert_eq!(envelope_json(&envelope), sealed["decoded"]);
    assert!(open(&key, &datagram, "other").is_none(), "the cluster is authenticated");
    let from = addr(NODES[0].2);
    assert_eq!(effects(1, Some(key), from, &datagram), sealed["expect"]);

    // Under another key, with encryption off, and a second time: dropped.
    assert_eq!(effects(1, Some([9; 32]), from, &datagram)["drop"], json!("unknown_key_id"));
    assert_eq!(effects(1, None, from, &datagram)["drop"], json!("sealed_while_off"));
    let mut config = config();
    config.encryption = EncryptionMode::Require;
    let base = epoch();
    let mut beta = start(1, config, Keyring::new(SecretKey::from_array(key)), base);
    beta.handle_input(base, from, &datagram);
    let before = beta.metrics();
    beta.handle_input(base, from, &datagram);
    assert_eq!(drop_reason(&before, &beta.metrics()), json!("replay"));
}
