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
//! leave                leave the cluster and exit (as Ctrl-C)
//! help                 this list
//! ```
//!
//! Each answer is one line starting with `ok` or `error` (with `--json`, one JSON object with
//! `"reply"` set to the command). End of input (a closed stdin) is not a command: the node
//! keeps running until a signal or `leave`.

use gossip_tokio::{Handle, Member};
use serde_json::{Value, json};

/// What the loop should do after a command.
pub enum After {
    /// Keep running.
    Continue,
    /// Leave the cluster and exit.
    Leave,
}

/// The list of commands, as `help` prints it.
pub const HELP: &str = "commands: set KEY VALUE | expire TTL KEY VALUE | delete KEY | get NODE KEY | entries NODE | prefix PREFIX | members | snapshot | metrics | keys | leave | help";

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
        "leave" => return Ok(Reply::Leave),
        "help" | "" => json!(HELP),
        other => return Err(format!("unknown command {other:?}; {HELP}")),
    };
    Ok(Reply::Value(value))
}

/// The single word of `rest`, or `usage`.
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
}
