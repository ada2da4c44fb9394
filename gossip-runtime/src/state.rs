//! What a node holds, as plain values: one node's entries, the entries under a key prefix
//! across the cluster, a whole snapshot (serializable with the `serde` feature).

use bytes::Bytes;
use gossip_core::Node;
use rand_core::Rng;

use crate::handle::Member;

/// One live key of a node's table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: Bytes,
    /// The owner's version of this write.
    pub version: u64,
}

/// A live key with its owner, as prefix queries and prefix watches give them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct KeyValue {
    /// The node whose table holds the key.
    pub node: String,
    /// The key.
    pub key: String,
    /// Its value.
    pub value: Bytes,
    /// The owner's version of this write.
    pub version: u64,
}

/// Everything a node holds: every member it knows (dead and departed ones included, until
/// they are forgotten) with its table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Snapshot {
    /// The members, this node first, each with its live entries in version order.
    pub members: Vec<MemberSnapshot>,
}

/// One member of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MemberSnapshot {
    /// The member as [`crate::Handle::members`] gives it.
    pub member: Member,
    /// Its live entries, in version order.
    pub entries: Vec<Entry>,
}

/// The live entries of `name`'s table, in version order; `None` for a node not known.
pub(crate) fn entries<R: Rng>(node: &Node<R>, name: &str) -> Option<Vec<Entry>> {
    let entries = node.shared_entries(name)?;
    Some(
        entries
            .map(|(entry, version)| Entry {
                key: entry.key().to_owned(),
                value: entry.shared_value(),
                version,
            })
            .collect(),
    )
}

/// The live entries whose key starts with `prefix` of every live (alive or suspected) member,
/// this node included, ordered by node then key.
pub(crate) fn with_prefix<R: Rng>(node: &Node<R>, prefix: &str) -> Vec<KeyValue> {
    let mut found: Vec<KeyValue> = node
        .nodes()
        .filter(|view| view.state.is_live())
        .flat_map(|view| {
            node.shared_entries(view.name)
                .into_iter()
                .flatten()
                .filter(|(entry, _)| entry.key().starts_with(prefix))
                .map(|(entry, version)| KeyValue {
                    node: view.name.to_owned(),
                    key: entry.key().to_owned(),
                    value: entry.shared_value(),
                    version,
                })
        })
        .collect();
    found.sort_unstable_by(|a, b| (&a.node, &a.key).cmp(&(&b.node, &b.key)));
    found
}

/// Every member with its entries.
pub(crate) fn snapshot<R: Rng>(node: &Node<R>) -> Snapshot {
    let members = node
        .nodes()
        .map(|view| MemberSnapshot {
            entries: entries(node, view.name).unwrap_or_default(),
            member: Member::from(view),
        })
        .collect();
    Snapshot { members }
}

/// The members, ordered by name (this node's table order would shift as members come and
/// go, which is not a change a watcher cares about).
pub(crate) fn members<R: Rng>(node: &Node<R>) -> Vec<Member> {
    let mut members: Vec<Member> = node.nodes().map(Member::from).collect();
    members.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    members
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;
    use gossip_core::MemberState;

    /// A snapshot serializes to plain JSON: names, states, addresses and values as an
    /// operator would read them.
    #[test]
    fn a_snapshot_serializes() {
        let member = Member {
            name: "a".to_owned(),
            generation: 7,
            address: "10.0.0.1:7946".parse().unwrap(),
            state: MemberState::Alive,
            incarnation: 2,
            keys: 1,
            max_version: 3,
        };
        let entries = vec![Entry { key: "role".to_owned(), value: Bytes::from_static(b"web"), version: 3 }];
        let snapshot = Snapshot { members: vec![MemberSnapshot { member, entries }] };
        let json = serde_json::to_value(&snapshot).unwrap();
        let first = &json["members"][0];
        assert_eq!(first["member"]["state"], "alive");
        assert_eq!(first["member"]["address"], "10.0.0.1:7946");
        assert_eq!(first["entries"][0]["key"], "role");
        assert_eq!(first["entries"][0]["version"], 3);
    }
}
