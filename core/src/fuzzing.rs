//! Entry points for the fuzz targets (`fuzz/`), compiled only in fuzz builds (`--cfg fuzzing`,
//! which cargo-fuzz sets): the parsers of untrusted input that are not public API. Each one
//! must return, never panic, whatever the bytes.

use std::sync::OnceLock;

use crate::storage::Storage;

/// A lock file's contents (Go CertMagic's JSON, or anything a shared folder may hold).
pub fn lock_file(bytes: &[u8]) {
    if let Ok(meta) = crate::storage::file_lock::parse(bytes) {
        // Re-encoding what was read must be readable again.
        let again = crate::storage::file_lock::parse(&meta.encode()).expect("re-encoded lock");
        assert_eq!(again.created, meta.created);
    }
}

/// An ACME account as storage holds it: the registration JSON and the key PEM.
pub fn account(registration: &[u8], key_pem: &[u8]) {
    let storage = crate::storage::memory::MemoryStorage::new();
    let at = crate::account::AccountKeys::new("ca.test-dir", "");
    runtime().block_on(async {
        storage
            .store(&at.reg, registration)
            .await
            .expect("memory store");
        storage.store(&at.key, key_pem).await.expect("memory store");
        let _ = crate::account::load(&storage, &at).await;
    });
}

/// A CA's renewal-information answer (RFC 9773) and a stored `renewal_info` object: what
/// was read is written and read back the same.
pub fn renewal_info(bytes: &[u8]) {
    use crate::ari::RenewalInfo;
    if let Ok(info) = RenewalInfo::from_response("aki.serial", bytes, None, None) {
        assert_eq!(RenewalInfo::from_json(&info.to_json()), Some(info));
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(info) = RenewalInfo::from_json(&v)
    {
        assert_eq!(RenewalInfo::from_json(&info.to_json()), Some(info));
    }
}

/// A DNS message as a server answers it (UDP or TCP payload): read as an answer to a query,
/// and as the answer to a TSIG-signed update (which must never verify: the key is secret).
pub fn dns_message(bytes: &[u8]) {
    use crate::dns::wire::{self, SignedAnswer, TsigAlgorithm, TxtChange};
    let _ = wire::parse(bytes);
    let Ok(decoded) = wire::decode(bytes) else {
        return;
    };
    let signer = TsigAlgorithm::HmacSha256
        .signer("fuzz.", b"a secret the input cannot know".to_vec())
        .expect("signer");
    let change = TxtChange::Add {
        name: "_acme-challenge.example.com.".into(),
        value: "v".into(),
        ttl: 60,
    };
    let (_, verifier) =
        wire::update(7, "example.com.", &[change], Some(&signer), 1_700_000_000).expect("update");
    let mut verifier = verifier.expect("verifier");
    assert_ne!(
        wire::check_signed_answer(bytes, &decoded, &mut verifier),
        SignedAnswer::Verified
    );
}

/// An OCSP response as a responder (or anyone on the path) sends it, checked against a fixed
/// certificate and its issuer (made once with rcgen).
pub fn ocsp_response(bytes: &[u8]) {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (leaf_der, issuer_der) = ocsp_certificates();
    let (_, leaf) = X509Certificate::from_der(leaf_der).expect("leaf");
    let (_, issuer) = X509Certificate::from_der(issuer_der).expect("issuer");
    if let Ok(r) =
        crate::ocsp::OcspResponse::verify(bytes, &leaf, &issuer, std::time::SystemTime::now())
    {
        // Whatever verified: its refresh time lies within its own validity.
        if let (Some(at), Some(next)) = (r.refresh_at(), r.next_update()) {
            assert!(at >= r.this_update() && at <= next);
        }
    }
}

fn ocsp_certificates() -> &'static (Vec<u8>, Vec<u8>) {
    static PAIR: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    PAIR.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["fuzz.test".to_string()])
            .expect("params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf");
        (leaf.der().to_vec(), ca.der().to_vec())
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("fuzz runtime")
    })
}
