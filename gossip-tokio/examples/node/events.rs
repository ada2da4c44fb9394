//! How the `node` program prints events: lines of text, or JSON objects (one per event, or
//! per key change).

use gossip_tokio::{Event, KeyChange, QueryId, RequestOutcome, WriteRequestId};
use serde_json::json;

/// A query as the operator names it: `ORIGIN/GENERATION/ID` (what `respond` takes).
pub fn query_id(query: &QueryId) -> String {
    format!("{}/{}/{}", query.origin, query.generation, query.id)
}

/// A write request as the operator names it: `REQUESTER/GENERATION/ID` (what `accept` and
/// `refuse` take).
pub fn request_id(request: &WriteRequestId) -> String {
    format!("{}/{}/{}", request.requester, request.generation, request.id)
}

/// An event as lines of text: one, or one per key of a `KeysChanged`.
pub fn text(event: &Event) -> Vec<String> {
    let Event::KeysChanged { node, changes } = event else { return vec![text_one(event)] };
    let line = |change: KeyChange<'_>| {
        let (key, version) = (change.key(), change.version());
        match change.value() {
            Some(value) => {
                format!("set        {node}: {key} = {} (version {version})", String::from_utf8_lossy(value))
            }
            None => format!("deleted    {node}: {key} (version {version})"),
        }
    };
    changes.iter().map(line).collect()
}

/// Any other event as a line of text.
fn text_one(event: &Event) -> String {
    match event {
        Event::MemberDiscovered { name, generation, address } => {
            format!("discovered {name} (generation {generation}) at {address}")
        }
        Event::MemberRestarted { name, old_generation, generation, address, old_address }
            if address != old_address =>
        {
            format!(
                "restarted  {name}: generation {old_generation} -> {generation}, moved {old_address} -> {address}"
            )
        }
        Event::MemberRestarted { name, old_generation, generation, address, .. } => {
            format!("restarted  {name}: generation {old_generation} -> {generation} at {address}")
        }
        Event::MemberSuspected { name, incarnation } => {
            format!("suspected  {name} (incarnation {incarnation})")
        }
        Event::MemberRecovered { name, incarnation } => {
            format!("recovered  {name} (incarnation {incarnation})")
        }
        Event::MemberFailed { name, generation } => format!("failed     {name} (generation {generation})"),
        Event::MemberLeft { name, generation } => format!("left       {name} (generation {generation})"),
        Event::MemberAddressChanged { name, old, new } => format!("moved      {name}: {old} -> {new}"),
        Event::Joined { via } => format!("joined     the cluster via {via}"),
        Event::LeaveComplete => "left       the cluster".to_owned(),
        Event::ForeignCluster { from, cluster } => {
            format!(
                "warning    datagrams of cluster {cluster:?} arrive from {from}; check --cluster / Config::cluster"
            )
        }
        Event::NameConflict { other_address, other_generation, kept: true } => format!(
            "conflict   another process under this name runs at {other_address} (generation {other_generation}); it gave the name up"
        ),
        Event::NameConflict { other_address, other_generation, kept: false } => format!(
            "conflict   a newer process under this name runs at {other_address} (generation {other_generation}); this one gave the name up"
        ),
        Event::Message { from, payload } => {
            format!("message    from {from}: {}", String::from_utf8_lossy(payload))
        }
        Event::Broadcast { origin, topic, payload } => {
            format!("broadcast  from {origin} on {topic}: {}", String::from_utf8_lossy(payload))
        }
        Event::Query { query, topic, payload } => format!(
            "query      {} on {topic}: {} (answer: respond {} TEXT)",
            query_id(query),
            String::from_utf8_lossy(payload),
            query_id(query)
        ),
        Event::QueryResponse { query, from, payload } => {
            format!("answer     to query {query} from {from}: {}", String::from_utf8_lossy(payload))
        }
        Event::QueryFinished { query, responses } => {
            format!("finished   query {query}: {responses} answer(s)")
        }
        Event::WriteRequested { request, key, value } => format!(
            "request    {} asks to {} (answer: accept {} | refuse {} REASON)",
            request_id(request),
            match value {
                Some(value) => format!("set {key} = {}", String::from_utf8_lossy(value)),
                None => format!("delete {key}"),
            },
            request_id(request),
            request_id(request)
        ),
        Event::WriteAnswered { request, owner, key, outcome } => match outcome {
            RequestOutcome::Accepted { version } => {
                format!("accepted   request {request} by {owner}: {key} (version {version})")
            }
            RequestOutcome::Refused { reason } => {
                format!("refused    request {request} by {owner}: {key}: {reason}")
            }
            _ => format!("timed out  request {request} to {owner}: {key}"),
        },
        other => format!("{other:?}"),
    }
}

/// An event as JSON objects: one, or one per key of a `KeysChanged`.
pub fn json(event: &Event) -> Vec<serde_json::Value> {
    let Event::KeysChanged { node, changes } = event else { return vec![json_one(event)] };
    let object = |change: KeyChange<'_>| {
        let (key, version) = (change.key(), change.version());
        match change.value() {
            Some(value) => json!({
                "event": "key_changed", "node": node.as_str(), "key": key,
                "value": String::from_utf8_lossy(value), "version": version,
            }),
            None => json!({"event": "key_deleted", "node": node.as_str(), "key": key, "version": version}),
        }
    };
    changes.iter().map(object).collect()
}

/// Any other event as a JSON object.
fn json_one(event: &Event) -> serde_json::Value {
    match event {
        Event::MemberDiscovered { name, generation, address } => {
            json!({"event": "discovered", "name": name, "generation": generation, "address": address.to_string()})
        }
        Event::MemberRestarted { name, old_generation, generation, address, old_address } => json!({
            "event": "restarted",
            "name": name,
            "old_generation": old_generation,
            "generation": generation,
            "address": address.to_string(),
            "old_address": old_address.to_string(),
        }),
        Event::MemberSuspected { name, incarnation } => {
            json!({"event": "suspected", "name": name, "incarnation": incarnation})
        }
        Event::MemberRecovered { name, incarnation } => {
            json!({"event": "recovered", "name": name, "incarnation": incarnation})
        }
        Event::MemberFailed { name, generation } => {
            json!({"event": "failed", "name": name, "generation": generation})
        }
        Event::MemberLeft { name, generation } => {
            json!({"event": "left", "name": name, "generation": generation})
        }
        Event::MemberAddressChanged { name, old, new } => {
            json!({"event": "moved", "name": name, "old": old.to_string(), "new": new.to_string()})
        }
        Event::Joined { via } => json!({"event": "joined", "via": via.to_string()}),
        Event::LeaveComplete => json!({"event": "leave_complete"}),
        Event::ForeignCluster { from, cluster } => {
            json!({"event": "foreign_cluster", "from": from.to_string(), "cluster": cluster})
        }
        Event::NameConflict { other_address, other_generation, kept } => json!({
            "event": "name_conflict", "other_address": other_address.to_string(),
            "other_generation": other_generation, "kept": kept
        }),
        Event::Message { from, payload } => {
            json!({"event": "message", "from": from, "payload": String::from_utf8_lossy(payload)})
        }
        Event::Broadcast { origin, topic, payload } => json!({
            "event": "broadcast", "origin": origin, "topic": topic, "payload": String::from_utf8_lossy(payload)
        }),
        Event::Query { query, topic, payload } => json!({
            "event": "query", "query": query_id(query), "topic": topic, "payload": String::from_utf8_lossy(payload)
        }),
        Event::QueryResponse { query, from, payload } => json!({
            "event": "query_response", "query": query, "from": from, "payload": String::from_utf8_lossy(payload)
        }),
        Event::QueryFinished { query, responses } => {
            json!({"event": "query_finished", "query": query, "responses": responses})
        }
        Event::WriteRequested { request, key, value } => json!({
            "event": "write_requested", "request": request_id(request), "key": key,
            "value": value.as_ref().map(|value| String::from_utf8_lossy(value).into_owned()),
        }),
        Event::WriteAnswered { request, owner, key, outcome } => {
            let (outcome, version, reason) = match outcome {
                RequestOutcome::Accepted { version } => ("accepted", Some(*version), None),
                RequestOutcome::Refused { reason } => ("refused", None, Some(reason.clone())),
                _ => ("timed_out", None, None),
            };
            json!({
                "event": "write_answered", "request": request, "owner": owner, "key": key,
                "outcome": outcome, "version": version, "reason": reason,
            })
        }
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}
