//! A storage folder of many certificates in Caddy's layout, issued fast by a local test CA
//! (ECDSA P-256 leaves valid 90 days, no OCSP responder), so both servers load the same files.

use std::path::Path;

use certmagic::CertificateResource;
use certmagic::storage::keys;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};

/// The local CA that signs the generated certificates.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM: the client's trust anchor.
    pub pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "certmagic-rs bench CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).expect("CA").pem();
        TestCa {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A new ECDSA P-256 leaf for `names`, valid 90 days from an hour ago: its chain (leaf,
    /// then this CA) and its key, PEM.
    pub fn issue(&self, names: &[String]) -> (String, String) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = CertificateParams::new(names.to_vec()).expect("params");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(90);
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (format!("{}{}", cert.pem(), self.pem), key.serialize_pem())
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes certificate, key and metadata of every name under `root` for `issuer_key`, on all
/// cores.
pub fn generate(root: &Path, issuer_key: &str, ca: &TestCa, ca_url: &str, names: &[String]) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = names.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in names.chunks(chunk) {
            s.spawn(move || {
                for name in part {
                    write_one(root, issuer_key, ca, ca_url, name);
                }
            });
        }
    });
}

fn write_one(root: &Path, issuer_key: &str, ca: &TestCa, ca_url: &str, name: &str) {
    let (chain, key) = ca.issue(&[name.to_string()]);
    let folder = root.join(keys::site_prefix(issuer_key, name));
    std::fs::create_dir_all(&folder).expect("mkdir");
    let meta = CertificateResource {
        sans: vec![name.to_string()],
        issuer_data: Some(serde_json::json!({ "url": "", "ca": ca_url })),
    };
    for (file, bytes) in [
        (keys::site_cert(issuer_key, name), chain.into_bytes()),
        (keys::site_private_key(issuer_key, name), key.into_bytes()),
        (keys::site_meta(issuer_key, name), meta.to_json()),
    ] {
        std::fs::write(root.join(file), bytes).expect("write");
    }
}

/// How many `.crt` files the storage folder holds for `issuer_key` (obtained certificates).
pub fn count_certificates(root: &Path, issuer_key: &str) -> usize {
    let Ok(sites) = std::fs::read_dir(root.join(keys::certs_prefix(issuer_key))) else {
        return 0;
    };
    sites
        .filter_map(|e| e.ok())
        .filter(|site| {
            let name = site.file_name();
            let name = name.to_string_lossy();
            site.path().join(format!("{name}.crt")).is_file()
        })
        .count()
}
