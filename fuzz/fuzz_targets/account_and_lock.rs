//! Files other processes write to shared storage: an ACME account (registration JSON and key
//! PEM, split by the first byte) and lock files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certmagic::fuzzing::lock_file(data);
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (registration, key) = rest.split_at((cut as usize).min(rest.len()));
    certmagic::fuzzing::account(registration, key);
});
