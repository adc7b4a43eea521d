//! Fuzz target: `ims::fuzzing::txn::txn` (oracles documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ims::fuzzing::txn::txn(data);
});
