//! The HTTP-01 path matcher: a token is found only under the challenge prefix and holds only
//! base64url characters (nothing that could walk a path or a storage key).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(token) = certmagic::solvers::http01::token_of(path) {
        assert!(path.starts_with(certmagic::solvers::http01::CHALLENGE_PATH_PREFIX));
        assert!(!token.is_empty());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
});
