//! The `decode` target: see `gossip_fuzz_harness::decode::decode`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gossip_fuzz_harness::decode::decode(data));
