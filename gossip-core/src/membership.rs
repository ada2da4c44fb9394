//! Membership: every known member is Alive, Suspect, Dead or Left under an incarnation number
//! that only the member itself raises, and SWIM's precedence rules decide which claim wins.
//! Updates spread infection-style, piggybacked on every datagram (see `broadcast.rs`).

use std::net::SocketAddr;

use gossip_proto::v1;

use crate::identity::{address_from_wire, address_to_wire};

mod run;

/// A member's state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum MemberState {
    /// Answering probes.
    #[default]
    Alive,
    /// Missed a probe; it may still refute before its suspicion times out.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left the cluster gracefully.
    Left,
}

impl MemberState {
    pub(crate) fn to_wire(self) -> v1::MemberState {
        match self {
            Self::Alive => v1::MemberState::Alive,
            Self::Suspect => v1::MemberState::Suspect,
            Self::Dead => v1::MemberState::Dead,
            Self::Left => v1::MemberState::Left,
        }
    }

    pub(crate) fn from_wire(state: i32) -> Option<Self> {
        match v1::MemberState::try_from(state).ok()? {
            v1::MemberState::Alive => Some(Self::Alive),
            v1::MemberState::Suspect => Some(Self::Suspect),
            v1::MemberState::Dead => Some(Self::Dead),
            v1::MemberState::Left => Some(Self::Left),
            v1::MemberState::Unspecified => None,
        }
    }

    /// Whether the member takes part in probing and gossip.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Alive | Self::Suspect)
    }
}

/// Whether the claim `(new_incarnation, new)` overrides `(incarnation, current)` for the same
/// generation of a member.
///
/// - Left is final for the generation, and overrides every state of the same or a lower
///   incarnation (the leaver raises its incarnation to leave, so a Left of a lower one is
///   stale or forged: taking it would make the incarnation go back);
/// - Dead overrides Alive and Suspect of the same or a lower incarnation, and gives way only
///   to an Alive with a higher incarnation (the member refuted, e.g. after a partition);
/// - Suspect overrides Alive of the same or a lower incarnation, and Suspect of a lower one;
/// - Alive overrides Alive and Suspect of a lower incarnation.
pub(crate) fn overrides(
    current: MemberState,
    incarnation: u32,
    new: MemberState,
    new_incarnation: u32,
) -> bool {
    use MemberState::*;
    match (current, new) {
        (Left, _) => false,
        (_, Left) => new_incarnation >= incarnation,
        (Dead, Alive) => new_incarnation > incarnation,
        (Dead, _) => false,
        (_, Dead) => new_incarnation >= incarnation,
        (Alive, Suspect) => new_incarnation >= incarnation,
        (Suspect, Suspect) | (Alive, Alive) | (Suspect, Alive) => new_incarnation > incarnation,
    }
}

/// Who passed on a claim, delta or digest entry. What a member says about itself is
/// first-hand; anything else is relayed, and bounded by `Config::max_incarnation_jump` and
/// `Config::max_version_jump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source<'a> {
    /// The datagram's sender, by name, speaking from the address we hold for it (or new to
    /// us: then there is nothing to bound its word about itself by).
    Sender(&'a str),
    /// A datagram without a sender, or whose sender's name we hold at another address (its
    /// name proves nothing: anyone may put it in a datagram).
    Relayed,
}

impl<'a> Source<'a> {
    /// Whether the information about `member` comes from the member itself.
    pub(crate) fn is_first_hand(self, member: &str) -> bool {
        matches!(self, Self::Sender(sender) if sender == member)
    }
}

/// A membership update checked against the protocol's rules.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) name: String,
    pub(crate) generation: u64,
    pub(crate) address: SocketAddr,
    pub(crate) incarnation: u32,
    pub(crate) state: MemberState,
    /// Who asserted it (for counting independent suspicion confirmations).
    pub(crate) from: String,
}

impl Claim {
    /// Parses a received update (the check of a datagram does, once); `None` when it names
    /// no member, no valid address or no state.
    pub(crate) fn from_wire(update: v1::MembershipUpdate) -> Option<Self> {
        let member = update.member?;
        Some(Self {
            address: address_from_wire(member.address.as_ref())?,
            state: MemberState::from_wire(update.state)?,
            name: member.name,
            generation: member.generation,
            incarnation: update.incarnation,
            from: update.from,
        })
    }

    pub(crate) fn to_wire(&self) -> v1::MembershipUpdate {
        v1::MembershipUpdate {
            member: Some(v1::NodeIdentity {
                name: self.name.clone(),
                generation: self.generation,
                address: Some(address_to_wire(self.address)),
            }),
            incarnation: self.incarnation,
            state: self.state.to_wire() as i32,
            from: self.from.clone(),
        }
    }
}

/// What a received claim is to the member's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimKind {
    /// News about a member: bounded by `max_incarnation_jump` when relayed, weighed against
    /// the state we hold, and, when it wins, queued for piggybacking (infection-style
    /// dissemination).
    News,
    /// The first state of a record that the delta carrying the claim created or replaced by
    /// a new generation just before: taken as it is, quietly (a member first learned
    /// through anti-entropy takes the sender's view).
    FirstState,
}

#[cfg(test)]
mod tests {
    use super::MemberState::*;
    use super::*;

    #[test]
    fn alive_needs_a_higher_incarnation_to_override_suspect() {
        assert!(!overrides(Suspect, 3, Alive, 3));
        assert!(overrides(Suspect, 3, Alive, 4));
        assert!(!overrides(Alive, 3, Alive, 3));
    }

    #[test]
    fn suspect_overrides_alive_of_the_same_incarnation_only() {
        assert!(overrides(Alive, 3, Suspect, 3));
        assert!(!overrides(Alive, 4, Suspect, 3));
        assert!(!overrides(Suspect, 3, Suspect, 3));
        assert!(overrides(Suspect, 3, Suspect, 4));
    }

    #[test]
    fn dead_overrides_both_and_yields_only_to_a_refutation() {
        assert!(overrides(Alive, 3, Dead, 3));
        assert!(overrides(Suspect, 3, Dead, 3));
        assert!(!overrides(Alive, 4, Dead, 3));
        assert!(!overrides(Dead, 3, Suspect, 9));
        assert!(!overrides(Dead, 3, Alive, 3));
        assert!(overrides(Dead, 3, Alive, 4));
    }

    #[test]
    fn left_is_final_for_the_generation() {
        for state in [Alive, Suspect, Dead] {
            assert!(overrides(state, 9, Left, 9));
            assert!(overrides(state, 9, Left, 10));
            assert!(!overrides(Left, 0, state, 100));
        }
        assert!(!overrides(Left, 0, Left, 1));
    }

    #[test]
    fn a_left_of_a_lower_incarnation_is_stale() {
        // Found by the `handle_input` fuzz target: taking it made the incarnation go back.
        for state in [Alive, Suspect, Dead] {
            assert!(!overrides(state, 9, Left, 8));
        }
    }
}
