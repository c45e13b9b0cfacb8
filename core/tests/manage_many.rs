//! `manage` with more names than it loads at a time: every stored certificate is loaded (no
//! order is placed: the CA address answers nothing), a name given twice counts once, and every
//! name serves a handshake.

use std::sync::Arc;

use certmagic::storage::keys;
use certmagic::{CertificateResource, Config, Manager, MemoryStorage, Storage};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

#[tokio::test(flavor = "multi_thread")]
async fn manage_loads_hundreds_of_stored_names_without_ordering() {
    // Port 9 (discard) on loopback: any ACME request would fail the test.
    let ca_url = "https://127.0.0.1:9/directory";
    let issuer_key = keys::issuer_key(ca_url);
    let storage = Arc::new(MemoryStorage::new());

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let ca = Issuer::new(ca_params, ca_key);

    let names: Vec<String> = (0..300).map(|i| format!("site{i}.many.test")).collect();
    for name in &names {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.clone()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let meta = CertificateResource {
            sans: vec![name.clone()],
            issuer_data: None,
        };
        let chain = format!("{}{ca_pem}", cert.pem());
        for (k, v) in [
            (keys::site_cert(&issuer_key, name), chain.into_bytes()),
            (
                keys::site_private_key(&issuer_key, name),
                key.serialize_pem().into_bytes(),
            ),
            (keys::site_meta(&issuer_key, name), meta.to_json()),
        ] {
            storage.store(&k, &v).await.unwrap();
        }
    }

    let config = Config::builder()
        .ca(ca_url)
        .agreed(true)
        .storage(storage)
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let mut asked = names.clone();
    asked.push(names[7].to_uppercase());
    manager.manage(&asked).await.unwrap();
    assert_eq!(manager.cache().len(), names.len());
    for name in &names {
        let cert = manager
            .certificate_for_handshake(Some(name), &[b"h2"])
            .await
            .unwrap();
        assert!(cert.names().any(|n| n == name), "{name}");
        assert!(cert.is_managed());
    }
    manager.shutdown().await.unwrap();
}
