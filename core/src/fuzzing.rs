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

/// A DNS message as a server answers it (UDP or TCP payload).
pub fn dns_message(bytes: &[u8]) {
    let _ = crate::dns::wire::parse(bytes);
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("fuzz runtime")
    })
}
