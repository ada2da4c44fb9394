//! Application messages: the limits on direct messages, broadcasts, queries and write
//! requests, and how a node answers write requests.

use std::time::Duration;

use crate::error::ConfigError;

/// Limits of the application messages ([`crate::Node::send_to`], [`crate::Node::broadcast`],
/// [`crate::Node::query`], [`crate::Node::request_write`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct MessageConfig {
    /// Largest payload of a direct message or a broadcast, in bytes. A message must also fit
    /// one datagram with its topic and the envelope (about 1,100 bytes of payload at the
    /// default `max_datagram_size`, sealed); one that does not is refused at the call
    /// ([`crate::MessageError::DoesNotFit`]).
    pub max_payload: usize,
    /// Longest topic of a broadcast, in bytes.
    pub max_topic: usize,
    /// Most broadcasts waiting to be passed on (this node's and others'); beyond it the most
    /// transmitted gives way, counted in `broadcasts_dropped`.
    pub max_pending_broadcasts: usize,
    /// How many broadcasts (origin, generation, id) a node remembers having delivered, so
    /// that it delivers each once; the oldest are forgotten first. Keep it well above the
    /// number of broadcasts the cluster makes while one spreads.
    pub remembered_broadcasts: usize,
    /// Direct messages accepted from one sender per second, on average (a token bucket of
    /// `burst_per_sender`); the rest are dropped and counted in `messages_rate_limited`.
    pub rate_per_sender: u32,
    /// Direct messages one sender may send at once before the rate applies.
    pub burst_per_sender: u32,
    /// This node's queries collecting answers at once; one more is refused at the call
    /// ([`crate::MessageError::TooManyQueries`]).
    pub max_outstanding_queries: usize,
    /// Queries of others this node delivered and may still answer (for their timeout); the
    /// oldest is forgotten first.
    pub max_received_queries: usize,
    /// Random members each answer to a query also goes through, besides straight to the
    /// asker (Serf's relay factor): an answer then arrives when one path loses it. 0 sends
    /// answers straight only.
    pub query_relays: usize,
    /// Longest random delay before an answer's copies through relays are sent (the straight
    /// copy goes at once). Spread over this time, at most half the query's remaining timeout,
    /// the copies that cover a lost answer do not arrive in the same burst as every other
    /// member's answer: an asker whose receive buffer overflowed under that burst gets them
    /// later. Zero sends them with the straight copy.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub query_relay_delay: Duration,
    /// Longest timeout of a query, asked or received.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_query_timeout: Duration,
    /// How this node answers the write requests of others.
    pub write_policy: WritePolicy,
    /// This node's write requests waiting for an outcome at once; one more is refused at the
    /// call ([`crate::MessageError::TooManyRequests`]).
    pub max_outstanding_requests: usize,
    /// Write requests of others waiting for this node's application
    /// ([`WritePolicy::Ask`]); beyond it, a new one is refused at once.
    pub max_asked_requests: usize,
    /// Outcomes this node remembers having given, so that a request sent again gets the same
    /// outcome and is written at most once; the oldest are forgotten first.
    pub remembered_requests: usize,
    /// How long a write request waits for its outcome before it ends as timed out. The
    /// owner's application has three quarters of it to answer one (it is refused after that),
    /// so that the refusal still reaches the requester in time: the same on every node.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub request_timeout: Duration,
    /// A request without an outcome is sent again this often, straight to the owner and
    /// through `swim.indirect_checks` random members (a path around a broken link).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub request_retry: Duration,
}

/// How a node answers the requests of other members to write its table
/// ([`crate::Node::request_write`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum WritePolicy {
    /// The application decides each: [`crate::Event::WriteRequested`], answered with
    /// [`crate::Node::accept_write`] or [`crate::Node::refuse_write`] within
    /// three quarters of `request_timeout` (refused after it).
    #[default]
    Ask,
    /// Every request is accepted when its key starts with this prefix (`""`: every key), and
    /// refused otherwise, without asking the application.
    AcceptPrefix(String),
    /// Every request is refused.
    Refuse,
}

impl Default for MessageConfig {
    fn default() -> Self {
        Self {
            max_payload: 1_024,
            max_topic: 64,
            max_pending_broadcasts: 256,
            remembered_broadcasts: 8_192,
            rate_per_sender: 100,
            burst_per_sender: 100,
            max_outstanding_queries: 64,
            max_received_queries: 256,
            query_relays: 2,
            query_relay_delay: Duration::from_secs(2),
            max_query_timeout: Duration::from_secs(60),
            write_policy: WritePolicy::Ask,
            max_outstanding_requests: 256,
            max_asked_requests: 256,
            remembered_requests: 4_096,
            request_timeout: Duration::from_secs(5),
            request_retry: Duration::from_millis(300),
        }
    }
}

impl MessageConfig {
    /// Checks that no limit is zero.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let counts = [
            ("messages.max_pending_broadcasts", self.max_pending_broadcasts),
            ("messages.remembered_broadcasts", self.remembered_broadcasts),
            ("messages.rate_per_sender", self.rate_per_sender as usize),
            ("messages.burst_per_sender", self.burst_per_sender as usize),
            ("messages.max_outstanding_queries", self.max_outstanding_queries),
            ("messages.max_received_queries", self.max_received_queries),
            ("messages.max_outstanding_requests", self.max_outstanding_requests),
            ("messages.max_asked_requests", self.max_asked_requests),
            ("messages.remembered_requests", self.remembered_requests),
        ];
        if let Some((field, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero { field });
        }
        let durations = [
            ("messages.max_query_timeout", self.max_query_timeout),
            ("messages.request_timeout", self.request_timeout),
            ("messages.request_retry", self.request_retry),
        ];
        if let Some((field, _)) = durations.iter().find(|(_, value)| value.is_zero()) {
            return Err(ConfigError::Zero { field });
        }
        Ok(())
    }
}
