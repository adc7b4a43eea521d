//! Fuzz target: `ims::fuzzing::digest_header::digest_header` (oracles documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ims::fuzzing::digest_header::digest_header(data);
});
