//! Fuzz target: `ims::fuzzing::nf::nf_xml` (oracles documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ims::fuzzing::nf::nf_xml(data);
});
