//! Application messages: the limits on direct messages and broadcasts.

use crate::error::ConfigError;

/// Limits of the application messages ([`crate::Node::send_to`], [`crate::Node::broadcast`]).
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
        ];
        if let Some((field, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero { field });
        }
        Ok(())
    }
}
