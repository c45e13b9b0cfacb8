//! Name parsing and canonicalisation: never a panic; a canonical name is its own canonical form,
//! is a name a certificate can have, and every accepted name is short enough for DNS.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(subject) = certmagic::Subject::parse(text) {
        let canonical = subject.as_string();
        assert!(canonical.len() <= 253 + 2, "{canonical:?}");
        let again = certmagic::Subject::parse(&canonical).expect("a canonical name parses");
        assert_eq!(again.as_string(), canonical);
    }
    if let Ok(name) = certmagic::canonical_server_name(text) {
        assert_eq!(
            certmagic::canonical_server_name(&name).ok().as_deref(),
            Some(name.as_str()),
            "canonical form is stable"
        );
        assert!(!name.contains('*') && !name.contains('/') && !name.contains(".."));
        assert_eq!(name, name.to_ascii_lowercase());
    }
});
