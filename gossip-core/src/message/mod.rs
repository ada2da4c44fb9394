//! The way a datagram takes in, and the envelopes this node sends.
//!
//! A received datagram is [decoded](decode) (prost's merge, with the entries of deltas taken
//! zero-copy), then [checked](check) against the protocol's rules: the check parses what it
//! validates, once, and yields an [`Envelope`] that the handlers consume. [`EnvelopeBuilder`]
//! builds what this node sends.

mod build;
mod check;
mod decode;
mod digest_entry;
mod entries;
#[cfg(test)]
mod tests;

pub(crate) use build::EnvelopeBuilder;
pub(crate) use check::{Ack2, Body, DropReason, Envelope, PingReq, Push, Syn, SynAck, check};
#[cfg(feature = "fuzzing")]
pub(crate) use decode::DecodedEnvelope;
#[cfg(test)]
pub(crate) use decode::decode_delta;
pub(crate) use decode::{DecodedDelta, decode};
pub(crate) use digest_entry::ReceivedDigestEntry;
