//! Certificate metadata files (`<name>.json`, as Go CertMagic and other instances write them),
//! their ARI `renewal_info`, and a CA's renewal-information answer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(resource) = certmagic::CertificateResource::from_json(data) {
        // What was read can be written and read back.
        let again = certmagic::CertificateResource::from_json(&resource.to_json())
            .expect("re-encoded metadata");
        assert_eq!(again.sans, resource.sans);
    }
    certmagic::fuzzing::renewal_info(data);
});
