//! DNS messages as a server (or anyone on the path) answers them: compression loops, short
//! records, long names.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certmagic::fuzzing::dns_message(data);
});
