//! The `handle_input` target: see `gossip_fuzz_harness::handle_input::handle_input`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gossip_fuzz_harness::handle_input::handle_input(data));
