//! Joining through seeds, leaving gracefully, and forgetting departed members.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod run;

/// Join progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct Join {
    /// Every seed ever given to `join`.
    seeds: Vec<SocketAddr>,
    /// A seed (or any member) has answered.
    joined: bool,
    /// When to try the seeds again, while not joined.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// When the join is reported failed if no seed answered by then (once per `join` call).
    deadline: Option<Instant>,
    /// What each seed that answered something unusable sent (others sent nothing).
    problems: std::collections::BTreeMap<SocketAddr, JoinProblem>,
}

impl Join {
    /// Every seed ever given to `join`.
    pub(crate) fn seeds(&self) -> &[SocketAddr] {
        &self.seeds
    }
}

/// Why a seed did not let this node join, as [`Event::JoinFailed`](crate::Event::JoinFailed) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JoinProblem {
    /// Nothing came back from it: it is down, unreachable, or refused this node's
    /// datagrams silently (another key, another cluster, encryption required there).
    NoAnswer,
    /// It sent datagrams of another cluster: its `Config::cluster` differs from this node's.
    /// (A node of another cluster drops ours without answering, so this shows only when it
    /// contacts this node on its own; otherwise the seed reads as `NoAnswer`.)
    OtherCluster,
    /// It answered with datagrams this node cannot open or will not take: sealed under a key
    /// this node lacks, sealed while encryption is off here, or plain while it is required
    /// here.
    Unreadable,
}

impl std::fmt::Display for JoinProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NoAnswer => "no answer (down, unreachable, or it drops our datagrams: check its key, cluster and encryption mode)",
            Self::OtherCluster => "it belongs to another cluster (check Config::cluster on both sides)",
            Self::Unreadable => "its datagrams cannot be read here (check the keys and the encryption mode on both sides)",
        })
    }
}

/// Leave progress.
#[derive(Debug, Clone)]
pub(crate) struct Leave {
    deadline: Instant,
    acks: usize,
    /// Acks that complete the leave: one per member pinged, at most `swim.leave_acks`.
    needed: usize,
    done: bool,
}
