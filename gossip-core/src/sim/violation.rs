//! What a broken invariant says: each kind of violation with the facts that show it, and how
//! it reads in a report (see `invariants.rs` for the checks themselves).

use std::fmt;
use std::net::SocketAddr;

use crate::membership::MemberState;

/// A broken invariant, with the facts that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A replica's max version (or generation) went down.
    VersionWentBack {
        /// The owner.
        owner: String,
        /// Generation and max version seen before.
        was: (u64, u64),
        /// Generation and max version seen now.
        now: (u64, u64),
    },
    /// A replica holds a generation of the owner that never ran.
    UnknownGeneration {
        /// The owner.
        owner: String,
        /// The generation held.
        generation: u64,
    },
    /// A replica's max version is above the owner's own.
    AheadOfOwner {
        /// The owner.
        owner: String,
        /// The generation.
        generation: u64,
        /// The replica's max version.
        max_version: u64,
        /// The owner's max version.
        owner_max: u64,
    },
    /// A deleted key is live again in a replica that has seen the delete.
    Resurrected {
        /// The owner.
        owner: String,
        /// The generation.
        generation: u64,
        /// The key.
        key: String,
        /// The version it is live at.
        live_version: u64,
        /// The version of the owner's tombstone.
        tombstone_version: u64,
    },
    /// A replica lacks the owner's latest write of a key at or below its max version.
    Hole {
        /// The owner.
        owner: String,
        /// The generation.
        generation: u64,
        /// The key.
        key: String,
        /// The version the replica must hold.
        expected_version: u64,
        /// The version it holds, if any.
        found: Option<u64>,
    },
    /// The application was told of a key at a lower version than it was told before.
    EventWentBack {
        /// The owner.
        owner: String,
        /// The generation.
        generation: u64,
        /// The key.
        key: String,
        /// The version reported before.
        was: u64,
        /// The version reported now.
        now: u64,
    },
    /// The application was told a key was deleted that its owner did not delete.
    FalseDelete {
        /// The owner.
        owner: String,
        /// The generation.
        generation: u64,
        /// The key.
        key: String,
        /// The version of the event.
        version: u64,
    },
    /// A replica holds an entry the owner's table never had at that version.
    Unexpected {
        /// The owner.
        owner: String,
        /// The generation.
        generation: u64,
        /// The key.
        key: String,
        /// The version held.
        version: u64,
    },
    /// A replica holds the right version of a key with another value.
    WrongValue {
        /// The owner.
        owner: String,
        /// The generation.
        generation: u64,
        /// The key.
        key: String,
        /// The version.
        version: u64,
    },
    /// After `handle_timeout`, the node asked to be woken at or before the time it was
    /// called: it would spin forever.
    TimerStuck {
        /// The deadline it returned, as virtual time.
        deadline: std::time::Duration,
    },
    /// The incarnation a node holds for a member (of one generation) went down.
    IncarnationWentBack {
        /// The member.
        member: String,
        /// Its generation.
        generation: u64,
        /// The incarnation held before.
        was: u32,
        /// The incarnation held now.
        now: u32,
    },
    /// A node holds itself Suspect or Dead: it declared itself failed.
    SelfAccused {
        /// The state it holds itself in.
        state: MemberState,
    },
    /// A table or queue of the node outgrew its cap.
    OverCap {
        /// Which one.
        what: &'static str,
        /// Its size.
        size: usize,
        /// Its cap.
        cap: usize,
    },
    /// After the cluster settled, a node does not know a live member.
    MemberUnknown {
        /// The member.
        member: String,
    },
    /// After the cluster settled, a node holds a live member under another generation, or
    /// not Alive.
    MemberMismatch {
        /// The member.
        member: String,
        /// The generation it runs.
        expected_generation: u64,
        /// The generation held.
        generation: u64,
        /// The state held.
        state: MemberState,
    },
    /// After the cluster settled, a node holds a live member at an address it left.
    AddressMismatch {
        /// The member.
        member: String,
        /// Where it listens.
        expected: SocketAddr,
        /// The address held.
        found: SocketAddr,
    },
    /// After the cluster settled, a node holds as Alive or Suspect a member whose process
    /// (that generation of it) is down.
    GoneMemberLive {
        /// The member.
        member: String,
        /// The generation held.
        generation: u64,
        /// The state held.
        state: MemberState,
    },
    /// After the cluster settled, a node's replica of a live member's table lacks writes.
    ReplicaBehind {
        /// The owner.
        owner: String,
        /// Its generation.
        generation: u64,
        /// The replica's max version.
        max_version: u64,
        /// The owner's max version.
        owner_max: u64,
    },
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VersionWentBack { owner, was, now } => write!(
                f,
                "the replica of {owner} went back from generation {} version {} to generation {} version {}",
                was.0, was.1, now.0, now.1
            ),
            Self::UnknownGeneration { owner, generation } => {
                write!(f, "the replica of {owner} holds generation {generation}, which never ran")
            }
            Self::AheadOfOwner { owner, generation, max_version, owner_max } => write!(
                f,
                "the replica of {owner} (generation {generation}) is at version {max_version}, \
                 but the owner only wrote up to {owner_max}"
            ),
            Self::Resurrected { owner, generation, key, live_version, tombstone_version } => write!(
                f,
                "deleted key {key:?} of {owner} (generation {generation}) is live again at version \
                 {live_version}, though the replica covers its tombstone at version {tombstone_version}"
            ),
            Self::Hole { owner, generation, key, expected_version, found } => write!(
                f,
                "hole in the replica of {owner} (generation {generation}): key {key:?} must be at \
                 version {expected_version}, found {}",
                found.map_or_else(|| "nothing".to_owned(), |v| format!("version {v}"))
            ),
            Self::EventWentBack { owner, generation, key, was, now } => write!(
                f,
                "the application was told of key {key:?} of {owner} (generation {generation}) at \
                 version {now} after version {was}"
            ),
            Self::FalseDelete { owner, generation, key, version } => write!(
                f,
                "the application was told key {key:?} of {owner} (generation {generation}) was \
                 deleted (version {version}), which its owner never did"
            ),
            Self::Unexpected { owner, generation, key, version } => write!(
                f,
                "the replica of {owner} (generation {generation}) holds key {key:?} at version \
                 {version}, which the owner's table never had there"
            ),
            Self::WrongValue { owner, generation, key, version } => write!(
                f,
                "the replica of {owner} (generation {generation}) holds key {key:?} at version \
                 {version} with a value the owner never wrote"
            ),
            Self::TimerStuck { deadline } => write!(
                f,
                "after handle_timeout the node asked to be woken at {deadline:?}, which is not in the future"
            ),
            Self::IncarnationWentBack { member, generation, was, now } => write!(
                f,
                "the incarnation of {member} (generation {generation}) went back from {was} to {now}"
            ),
            Self::SelfAccused { state } => write!(f, "the node holds itself {state:?}"),
            Self::OverCap { what, size, cap } => write!(f, "{what}: {size}, above the cap of {cap}"),
            Self::MemberUnknown { member } => {
                write!(f, "after the cluster settled, live member {member} is unknown here")
            }
            Self::MemberMismatch { member, expected_generation, generation, state } => write!(
                f,
                "after the cluster settled, live member {member} (generation {expected_generation}, \
                 Alive) is held as {state:?} under generation {generation}"
            ),
            Self::AddressMismatch { member, expected, found } => write!(
                f,
                "after the cluster settled, live member {member} listens at {expected} but is held at {found}"
            ),
            Self::GoneMemberLive { member, generation, state } => write!(
                f,
                "after the cluster settled, {member} (generation {generation}) is held {state:?}, \
                 but that process is down"
            ),
            Self::ReplicaBehind { owner, generation, max_version, owner_max } => write!(
                f,
                "after the cluster settled, the replica of {owner} (generation {generation}) is at \
                 version {max_version}, but the owner wrote up to {owner_max}"
            ),
        }
    }
}
