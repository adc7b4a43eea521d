//! Fuzz target: `ims::fuzzing::diameter_peer::diameter_peer` (oracles documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ims::fuzzing::diameter_peer::diameter_peer(data);
});
