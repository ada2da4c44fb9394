//! Commands on standard input, one per line, while the node runs: the operator's (or a test
//! harness's) way to write, read and inspect without restarting.
//!
//! ```text
//! set KEY VALUE        write KEY (the value is the rest of the line)
//! expire TTL KEY VALUE write KEY, deleted after TTL ("30s", "5m") unless written again
//! delete KEY           delete KEY
//! get NODE KEY         one key of a node's table
//! entries NODE         a node's whole table
//! prefix PREFIX        every live key starting with PREFIX, across the cluster
//! members              the members with their state
//! snapshot             every member with its table (one JSON line)
//! metrics              the node's counters (one JSON line)
//! keys                 the keyring
//! send NODE TEXT       a direct message to a member
//! broadcast TOPIC TEXT a broadcast to every member
//! query TIMEOUT TOPIC TEXT
//!                      a query to every member; answers until TIMEOUT ("2s")
//! respond QUERY TEXT   answer a query (QUERY as printed: ORIGIN/GENERATION/ID)
//! request NODE KEY VALUE
//!                      ask NODE to write KEY in its table
//! request-delete NODE KEY
//!                      ask NODE to delete KEY from its table
//! accept REQUEST       accept a write request (REQUEST as printed: REQUESTER/GENERATION/ID)
//! refuse REQUEST REASON
//!                      refuse a write request
//! leave                leave the cluster and exit (as Ctrl-C)
//! help                 this list
//! ```
//!
//! Each answer is one line starting with `ok` or `error` (with `--json`, one JSON object with
//! `"reply"` set to the command). End of input (a closed stdin) is not a command: the node
//! keeps running until a signal or `leave`.

use gossip_tokio::{Handle, Member, QueryFilter, QueryId, WriteRequestId};
use serde_json::{Value, json};

/// What the loop should do after a command.
pub enum After {
    /// Keep running.
    Continue,
    /// Leave the cluster and exit.
    Leave,
}

/// The list of commands, as `help` prints it.
pub const HELP: &str = "commands: set KEY VALUE | expire TTL KEY VALUE | delete KEY | get NODE KEY | entries NODE | prefix PREFIX | members | snapshot | metrics | keys | send NODE TEXT | broadcast TOPIC TEXT | query TIMEOUT TOPIC TEXT | respond QUERY TEXT | request NODE KEY VALUE | request-delete NODE KEY | accept REQUEST | refuse REQUEST REASON | leave | help";

/// Runs one command line; returns its answer (one line) and what to do next.
pub async fn run(node: &Handle, line: &str, as_json: bool) -> (String, After) {
    let line = line.trim();
    let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let answer = match answer(node, command, rest).await {
        Ok(Reply::Leave) => return (reply(as_json, command, Ok(json!("leaving"))), After::Leave),
        Ok(Reply::Value(value)) => reply(as_json, command, Ok(value)),
        Err(message) => reply(as_json, command, Err(message)),
    };
    (answer, After::Continue)
}

enum Reply {
    Value(Value),
    Leave,
}

async fn answer(node: &Handle, command: &str, rest: &str) -> Result<Reply, String> {
    let value = match command {
        "set" => {
            let (key, value) = rest.split_once(char::is_whitespace).ok_or("usage: set KEY VALUE")?;
            let version = node.set(key, value.trim().to_owned()).await.map_err(|e| e.to_string())?;
            json!({ "key": key, "version": version })
        }
        "expire" => {
            const USAGE: &str = "usage: expire TTL KEY VALUE (TTL as 30s, 5m)";
            let (ttl, rest) = rest.split_once(char::is_whitespace).ok_or(USAGE)?;
            let ttl = humantime::parse_duration(ttl).map_err(|e| format!("{USAGE}: {e}"))?;
            let (key, value) = rest.trim_start().split_once(char::is_whitespace).ok_or(USAGE)?;
            let version =
                node.set_with_ttl(key, value.trim().to_owned(), ttl).await.map_err(|e| e.to_string())?;
            json!({ "key": key, "version": version, "ttl": humantime::format_duration(ttl).to_string() })
        }
        "delete" => {
            let key = one(rest, "usage: delete KEY")?;
            let version = node.delete(key).await.map_err(|e| e.to_string())?;
            json!({ "key": key, "version": version })
        }
        "get" => {
            let (owner, key) = rest.split_once(char::is_whitespace).ok_or("usage: get NODE KEY")?;
            let found = node.get_versioned(owner, key.trim()).await.map_err(|e| e.to_string())?;
            match found {
                Some((value, version)) => {
                    json!({ "node": owner, "key": key.trim(), "value": String::from_utf8_lossy(&value), "version": version })
                }
                None => json!(null),
            }
        }
        "entries" => {
            let owner = one(rest, "usage: entries NODE")?;
            let entries = node.entries(owner).await.map_err(|e| e.to_string())?;
            let entries = entries.ok_or_else(|| format!("no node named {owner:?} is known"))?;
            Value::Array(
                entries
                    .iter()
                    .map(|e| json!({ "key": e.key, "value": String::from_utf8_lossy(&e.value), "version": e.version }))
                    .collect(),
            )
        }
        "prefix" => {
            let found = node.entries_with_prefix(rest).await.map_err(|e| e.to_string())?;
            Value::Array(
                found
                    .iter()
                    .map(|kv| {
                        json!({ "node": kv.node, "key": kv.key, "value": String::from_utf8_lossy(&kv.value), "version": kv.version })
                    })
                    .collect(),
            )
        }
        "members" => {
            let members = node.members().await.map_err(|e| e.to_string())?;
            Value::Array(members.iter().map(member).collect())
        }
        "snapshot" => {
            let snapshot = node.snapshot().await.map_err(|e| e.to_string())?;
            Value::Array(
                snapshot
                    .members
                    .iter()
                    .map(|m| {
                        let mut value = member(&m.member);
                        value["entries"] = m
                            .entries
                            .iter()
                            .map(|e| json!({ "key": e.key, "value": String::from_utf8_lossy(&e.value), "version": e.version }))
                            .collect();
                        value
                    })
                    .collect(),
            )
        }
        "metrics" => {
            let metrics = node.metrics().await.map_err(|e| e.to_string())?;
            json!({ "core": format!("{:?}", metrics.core), "driver": format!("{:?}", metrics.driver) })
        }
        "keys" => {
            let keys = node.keys().await.map_err(|e| e.to_string())?;
            Value::Array(keys.iter().map(|key| json!(key.to_string())).collect())
        }
        "send" => {
            let (to, text) = rest.split_once(char::is_whitespace).ok_or("usage: send NODE TEXT")?;
            node.send_to(to, text.trim().to_owned()).await.map_err(|e| e.to_string())?;
            json!({ "to": to })
        }
        "broadcast" => {
            let (topic, text) = rest.split_once(char::is_whitespace).ok_or("usage: broadcast TOPIC TEXT")?;
            let id = node.broadcast(topic, text.trim().to_owned()).await.map_err(|e| e.to_string())?;
            json!({ "topic": topic, "id": id })
        }
        "query" => {
            const USAGE: &str = "usage: query TIMEOUT TOPIC TEXT (TIMEOUT as 2s)";
            let (timeout, rest) = rest.split_once(char::is_whitespace).ok_or(USAGE)?;
            let timeout = humantime::parse_duration(timeout).map_err(|e| format!("{USAGE}: {e}"))?;
            let (topic, text) =
                rest.trim_start().split_once(char::is_whitespace).unwrap_or((rest.trim(), ""));
            let id = node
                .query(topic, text.trim().to_owned(), QueryFilter::All, timeout)
                .await
                .map_err(|e| e.to_string())?;
            json!({ "topic": topic, "query": id })
        }
        "respond" => {
            const USAGE: &str = "usage: respond ORIGIN/GENERATION/ID TEXT";
            let (query, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let (origin, generation, id) = triple(query).ok_or(USAGE)?;
            let query = QueryId { origin, generation, id };
            node.respond(query, text.trim().to_owned()).await.map_err(|e| e.to_string())?;
            json!("answered")
        }
        "request" => {
            const USAGE: &str = "usage: request NODE KEY VALUE";
            let (owner, rest) = rest.split_once(char::is_whitespace).ok_or(USAGE)?;
            let (key, value) = rest.trim_start().split_once(char::is_whitespace).ok_or(USAGE)?;
            let id =
                node.request_write(owner, key, value.trim().to_owned()).await.map_err(|e| e.to_string())?;
            json!({ "owner": owner, "key": key, "request": id })
        }
        "request-delete" => {
            let (owner, key) =
                rest.split_once(char::is_whitespace).ok_or("usage: request-delete NODE KEY")?;
            let id = node.request_delete(owner, key.trim()).await.map_err(|e| e.to_string())?;
            json!({ "owner": owner, "key": key.trim(), "request": id })
        }
        "accept" => {
            let (requester, generation, id) = triple(one(rest, "usage: accept REQUESTER/GENERATION/ID")?)
                .ok_or("usage: accept REQUESTER/GENERATION/ID")?;
            let request = WriteRequestId { requester, generation, id };
            let version = node.accept_write(request).await.map_err(|e| e.to_string())?;
            json!({ "version": version })
        }
        "refuse" => {
            const USAGE: &str = "usage: refuse REQUESTER/GENERATION/ID REASON";
            let (request, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let (requester, generation, id) = triple(request).ok_or(USAGE)?;
            let request = WriteRequestId { requester, generation, id };
            node.refuse_write(request, reason.trim()).await.map_err(|e| e.to_string())?;
            json!("refused")
        }
        "leave" => return Ok(Reply::Leave),
        "help" | "" => json!(HELP),
        other => return Err(format!("unknown command {other:?}; {HELP}")),
    };
    Ok(Reply::Value(value))
}

/// The single word of `rest`, or `usage`.
/// `NAME/GENERATION/ID`, as the events print queries and write requests.
fn triple(text: &str) -> Option<(String, u64, u64)> {
    let (rest, id) = text.rsplit_once('/')?;
    let (name, generation) = rest.rsplit_once('/')?;
    Some((name.to_owned(), generation.parse().ok()?, id.parse().ok()?))
}

fn one<'a>(rest: &'a str, usage: &str) -> Result<&'a str, String> {
    match rest.split_whitespace().collect::<Vec<_>>()[..] {
        [word] => Ok(word),
        _ => Err(usage.to_owned()),
    }
}

fn member(member: &Member) -> Value {
    json!({
        "name": member.name,
        "generation": member.generation,
        "address": member.address.to_string(),
        "state": format!("{:?}", member.state).to_lowercase(),
        "incarnation": member.incarnation,
        "keys": member.keys,
        "max_version": member.max_version,
    })
}

/// One answer line.
fn reply(as_json: bool, command: &str, result: Result<Value, String>) -> String {
    match (as_json, result) {
        (true, Ok(value)) => json!({ "reply": command, "ok": value }).to_string(),
        (true, Err(message)) => json!({ "reply": command, "error": message }).to_string(),
        (false, Ok(Value::String(text))) => format!("ok {text}"),
        (false, Ok(value)) => format!("ok {value}"),
        (false, Err(message)) => format!("error {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_one_line_each() {
        assert_eq!(
            reply(false, "set", Ok(json!({"key": "k", "version": 3}))),
            r#"ok {"key":"k","version":3}"#
        );
        assert_eq!(reply(false, "help", Ok(json!("x"))), "ok x");
        assert_eq!(reply(true, "get", Err("no".into())), r#"{"error":"no","reply":"get"}"#);
        assert_eq!(one("a", "usage").unwrap(), "a");
        assert!(one("a b", "usage").is_err() && one("", "usage").is_err());
    }

    #[test]
    fn queries_and_requests_are_named_as_the_events_print_them() {
        assert_eq!(triple("node-a/17/3"), Some(("node-a".to_owned(), 17, 3)));
        assert_eq!(triple("a/b/c/1/2"), Some(("a/b/c".to_owned(), 1, 2)), "a name may hold slashes");
        assert_eq!(triple("node-a/3"), None);
        assert_eq!(triple("node-a/x/3"), None);
    }
}
