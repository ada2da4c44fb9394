//! The `ops` target: see `gossip_fuzz_harness::ops::ops`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gossip_fuzz_harness::ops::ops(data));
