//! Fuzz target: `ims::fuzzing::sip_builder` (oracle documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ims::fuzzing::sip_builder(data);
});
