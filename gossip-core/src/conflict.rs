//! Two live processes under one name: detected, reported on both sides, settled without a
//! false failure.
//!
//! A name is unique in a cluster, and a higher generation replaces a lower one: that is how
//! a restart works. Start a second process under a name in use (a copied configuration, a
//! forgotten old instance) and the cluster takes it for a restart of the first. The first
//! then speaks as a stale generation: its datagrams are dropped, its probes go unanswered,
//! and without the rules below it would heal past the newcomer (the two then outbid each
//! other's generation forever) or report failures of members that are alive.
//!
//! The rules:
//!
//! - **The newer generation keeps the name**, since the cluster already took it for a
//!   restart: no member sees a second change.
//! - **A member answers a stale sender's ping from another address** than the one it holds
//!   for that name, with an ack that carries the current claim about the name first. The
//!   older process is told at once, and its probes do not fail. (A stale sender at the
//!   current address is the past of a restarted process and gets nothing.)
//! - **A node that hears of a newer generation of its name at another address checks
//!   first** instead of healing: it pings that address, naming itself as the target. If the
//!   ping is acked from there within `swim.probe_interval` (only a process that takes our
//!   name for its own acks such a ping: any other drops it as misdirected), the node gives
//!   the name up: it reports [`Event::NameConflict`] with `kept: false` and
//!   becomes inert (see [`Node::has_given_up_name`]): it sends nothing more and reports
//!   nothing more, least of all failures. If nothing answers, the claim was forged or its
//!   process is gone, and the node heals as before (`heal.rs`).
//! - **The newer process reports the conflict when the check reaches it**: a ping from an
//!   older generation of its own name, from another address, is answered (so the check
//!   succeeds) and reported once per process with `kept: true`.
//!
//! A newer generation heard of without an address (a digest entry or a delta of our table)
//! waits `2 x swim.probe_interval` for a claim that says where it lives (the next ack of a
//! probe brings one when it is a live process) and heals if none comes. If two processes
//! still outbid each other that way, the next one to hear of the other's claim checks it,
//! and the check ends it. Either way exactly one process keeps the name, both are told, and
//! nobody reports a failure; the rule to tell users is "the process that holds the higher
//! generation when the two meet keeps the name, which is normally the one started last".
//!
//! Without encryption a forger that receives datagrams at the address it names can answer
//! the check and so take a name over; a blind forger cannot (the ping's sequence is drawn
//! from the node's RNG). With encryption only key holders can do either.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod run;

/// How far ahead an inert node's `poll_timeout` lies: nothing is ever due.
pub(crate) const INERT_DEADLINE: Duration = Duration::from_secs(3600);

/// At most this many older processes are reported (`kept: true`); more are only counted.
const CONFLICTS_REPORTED: usize = 16;

/// The state of the name check.
#[derive(Debug, Default)]
pub(crate) struct NameCheck {
    /// The check under way, if any.
    pending: Option<PendingCheck>,
    /// The process we gave our name up to: set once, for good.
    given_up_to: Option<(SocketAddr, u64)>,
    /// Older processes under our name already reported.
    reported: BTreeSet<(SocketAddr, u64)>,
}

/// A newer generation of our name heard of: waiting for its address, or for the answer to
/// the ping sent there.
#[derive(Debug)]
struct PendingCheck {
    /// Where it was claimed, and the sequence of the ping sent there; `None` while only
    /// heard of without an address.
    pinged: Option<(SocketAddr, u32)>,
    /// The highest generation of our name seen meanwhile: what we heal past if nobody answers.
    generation: u64,
    deadline: Instant,
}

impl NameCheck {
    /// When the check under way gives up waiting, if one is.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|pending| pending.deadline)
    }

    /// Whether this node gave its name up.
    pub(crate) fn given_up(&self) -> bool {
        self.given_up_to.is_some()
    }

    /// Ends the check under way: the node healed, so its outcome no longer matters.
    pub(crate) fn cancel(&mut self) {
        self.pending = None;
    }
}
