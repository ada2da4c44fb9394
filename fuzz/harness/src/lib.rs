//! The bodies of the gossip fuzz targets, and what runs them without libFuzzer.
//!
//! Each target is a plain function from bytes that panics on a violation:
//!
//! - [`decode::decode`]: arbitrary bytes into both envelope decoders (prost's and the
//!   node's zero-copy one); they never panic, agree, and round-trip;
//! - [`handle_input::handle_input`]: one node driven through its whole API by the bytes,
//!   with its invariants checked after every step;
//! - [`ops::ops`]: an [`arbitrary::Arbitrary`] sequence of faults and writes on a small
//!   simulated cluster, then a calm period, after which the live nodes must agree.
//!
//! The cargo-fuzz package in `fuzz/` (nightly, libFuzzer) wraps each function in a
//! `fuzz_target!`. This crate is a member of the main workspace, so that on stable
//! `cargo test --workspace --all-features` runs every target over its committed corpus
//! (`fuzz/corpus/<target>/`) and over a few thousand seeded random inputs ([`runner`]),
//! and the lints never build libFuzzer. [`corpus`] captures real datagrams from a small
//! cluster to seed the corpus (regenerate with
//! `cargo test -p gossip-fuzz-harness --test corpus -- --ignored generate`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod corpus;
pub mod craft;
pub mod decode;
pub mod handle_input;
pub mod input;
pub mod ops;
pub mod runner;
