//! Fuzz target: `ims::fuzzing::sms::sms_tpdu` (oracles documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ims::fuzzing::sms::sms_tpdu(data);
});
