//! PEM chains and private keys under every label (the first byte picks which parser; the rest
//! is split into a chain and a key): errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let _ = certmagic::parse_pem_chain(rest);
        }
        1 => {
            let _ = certmagic::decode_private_key_pem(rest);
        }
        _ => {
            let cut = rest.first().map_or(0, |b| *b as usize).min(rest.len());
            let (chain, key) = rest.split_at(cut);
            let _ = certmagic::Certificate::from_pem(chain, key);
        }
    }
});
