//! ClientHello peeking (the bytes a TLS client sends first, before any handshake).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(certmagic::ClientHelloPeek::Hello { server_name, alpn }) =
        certmagic::peek_client_hello(data)
    {
        assert!(server_name.map_or(0, |n| n.len()) <= data.len());
        assert!(alpn.iter().map(Vec::len).sum::<usize>() <= data.len());
    }
});
