//! Fuzz target: `ims::fuzzing::msrp::msrp_session_rx` (oracles documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ims::fuzzing::msrp::msrp_session_rx(data);
});
