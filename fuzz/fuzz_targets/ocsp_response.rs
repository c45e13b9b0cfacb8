//! OCSP responses as a responder (or anyone on the path) sends them: the ASN.1 of x509-ocsp,
//! the CertID match, the signature and time checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certmagic::fuzzing::ocsp_response(data);
});
