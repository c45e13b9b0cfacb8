//! Interop with the real Go CertMagic: Debian's Caddy, on the same Pebble and the same storage
//! folder, serves the certificate this library obtained without ordering a new one (its
//! metadata carrying the ARI `renewal_info` this library wrote), and this library loads the one
//! Caddy obtained (with an Ed25519 key in Caddy's own PEM label). Both reach Pebble through the
//! ARI proxy, so the CA speaks RFC 9773.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::{FileStorage, Manager};
use certmagic_testsupport::ari::AriProxy;
use certmagic_testsupport::caddy::Caddy;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn caddy_serves_our_certificate_and_we_load_caddys() {
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        ..Default::default()
    });
    let proxy = AriProxy::start(&pebble);
    let storage_dir = tempfile::tempdir().unwrap();
    let ours = "ours.example.test";
    let theirs = "theirs.example.test";

    // 1. This library obtains a certificate into the folder.
    let manager = Manager::new(
        pebble_config(&pebble, Arc::new(FileStorage::new(storage_dir.path())))
            .ca(&proxy.directory_url)
            .build()
            .unwrap(),
    )
    .unwrap();
    manager.manage(&[ours]).await.unwrap();
    let our_serial = manager.get_certificate(ours).unwrap().serial_hex();
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(storage_dir.path().join(format!(
            "certificates/{}/{ours}/{ours}.json",
            manager.issuer_key().replace(':', "-")
        )))
        .unwrap(),
    )
    .unwrap();
    assert!(
        meta["issuer_data"]["renewal_info"]["_selectedTime"].is_string(),
        "{meta}"
    );
    manager.shutdown().await.unwrap();
    drop(manager);
    assert_eq!(pebble.orders_created(), 1);

    // 2. Caddy on the same folder and CA, managing both names.
    let scratch = tempfile::tempdir().unwrap();
    let api_ca = scratch.path().join("pebble-api-ca.pem");
    std::fs::write(&api_ca, &pebble.api_ca_pem).unwrap();
    let [http_port, https_port] = free_ports();
    let config = serde_json::json!({
        "admin": {"disabled": true},
        "storage": {"module": "file_system", "root": storage_dir.path()},
        "apps": {
            "http": {
                "http_port": http_port,
                "https_port": https_port,
                "servers": {"s": {
                    "listen": [format!("127.0.0.1:{https_port}")],
                    "routes": [{"handle": [{"handler": "static_response", "body": "caddy"}]}]
                }}
            },
            "tls": {"certificates": {"automate": [ours, theirs]}, "automation": {"policies": [{
                "subjects": [ours, theirs],
                "key_type": "ed25519",
                "issuers": [{
                    "module": "acme",
                    "ca": proxy.directory_url,
                    "email": "tests@certmagic-rs.test",
                    "trusted_roots_pem_files": [api_ca],
                    "challenges": {
                        "bind_host": "127.0.0.1",
                        "http": {"alternate_port": pebble.http_port},
                        "tls-alpn": {"alternate_port": pebble.tls_port}
                    }
                }]
            }]}}
        }
    });
    let caddy = Caddy::start(&config, scratch.path());

    // 3. Caddy serves our certificate (same serial) and obtains only the other one.
    let caddy_log = || caddy.log();
    let served_ours = wait_for_serial(&pebble, https_port, ours, &caddy_log).await;
    assert_eq!(
        served_ours, our_serial,
        "Caddy serves the certificate this library stored"
    );
    let served_theirs = wait_for_serial(&pebble, https_port, theirs, &caddy_log).await;
    assert_eq!(
        pebble.orders_created(),
        2,
        "Caddy ordered only the name it did not find in storage:\n{}",
        caddy_log()
    );
    drop(caddy);

    // 4. This library loads Caddy's certificate (Ed25519 key, `ED25519 PRIVATE KEY` label), no order.
    let manager = Manager::new(
        pebble_config(&pebble, Arc::new(FileStorage::new(storage_dir.path())))
            .ca(&proxy.directory_url)
            .build()
            .unwrap(),
    )
    .unwrap();
    manager.manage(&[theirs]).await.unwrap();
    let cert = manager.get_certificate(theirs).unwrap();
    assert_eq!(cert.serial_hex(), served_theirs);
    assert_cert_verifies(&pebble, &cert, theirs);
    let issuer = manager.issuer_key().replace(':', "-");
    let key = std::fs::read_to_string(
        storage_dir
            .path()
            .join(format!("certificates/{issuer}/{theirs}/{theirs}.key")),
    )
    .unwrap();
    assert!(
        key.starts_with("-----BEGIN ED25519 PRIVATE KEY-----"),
        "Caddy's label: {key}"
    );
    let served = handshake(&pebble, manager.server_config().unwrap(), theirs).await;
    assert_eq!(served[0], cert.chain_der()[0]);
    assert_eq!(pebble.orders_created(), 2);
}

/// The serial Caddy serves for `name`, once it serves a certificate that verifies.
async fn wait_for_serial(
    pebble: &Pebble,
    port: u16,
    name: &str,
    caddy_log: &dyn Fn() -> String,
) -> String {
    let root = certmagic::parse_pem_chain(pebble.root_pem(0).as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root[0].clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let sni = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
            if let Ok(tls) = connector.connect(sni, stream).await {
                let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
                let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).unwrap();
                let hex: String = parsed
                    .raw_serial()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                return hex.trim_start_matches('0').to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "Caddy never served {name}:\n{}",
            caddy_log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
