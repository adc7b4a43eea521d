//! Fuzz target: `ims::fuzzing::diameter::diameter_cx` (oracles documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ims::fuzzing::diameter::diameter_cx(data);
});
