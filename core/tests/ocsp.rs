//! OCSP stapling against a real responder: `openssl ocsp` signing with the key of Pebble's
//! intermediate (from its management API), for certificates Pebble issues with the responder's
//! URL in their AIA (validation on). Checked from the outside too: `openssl ocsp` verifies the
//! stapled response against Pebble's root, and `openssl s_client -status` sees it in a
//! handshake.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::storage::keys;
use certmagic::{
    Certificate, Config, ConfigBuilder, ErrorKind, FileStorage, Manager, OcspStatus, Storage,
};
use certmagic_testsupport::ocsp::{OcspResponder, Status};
use common::{Pebble, PebbleOptions, Recorder};

/// Pebble whose certificates name a responder, and that responder (answering for Pebble's
/// intermediate, with a nextUpdate `next_update_minutes` after thisUpdate, or none).
fn pebble_with_responder(next_update_minutes: Option<u32>) -> (Pebble, OcspResponder) {
    let port = OcspResponder::pick_port();
    let pebble = pebble_naming(&format!("http://127.0.0.1:{port}/"));
    let responder = OcspResponder::for_pebble(&pebble, port, next_update_minutes);
    (pebble, responder)
}

/// Pebble writing `url` as the OCSP responder of every certificate.
fn pebble_naming(url: &str) -> Pebble {
    Pebble::start(PebbleOptions {
        ocsp_responder_url: Some(url.to_string()),
        ..PebbleOptions::default()
    })
}

/// Polls `f` until it gives a value (every 50 ms, at most `limit`).
async fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Once the responder says good for `name`'s certificate (which it did not know when it was
/// issued), the certificate the manager serves with that response stapled.
async fn staple_good(
    manager: &Manager,
    responder: &mut OcspResponder,
    name: &str,
) -> Arc<Certificate> {
    let serial = manager.get_certificate(name).unwrap().serial_hex();
    responder.set(&serial, Status::Good);
    wait_for("a good staple", Duration::from_secs(30), || {
        manager
            .get_certificate(name)
            .filter(|c| c.ocsp_staple().is_some())
    })
    .await
}

fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn issuer_key(pebble: &Pebble) -> String {
    keys::issuer_key(&pebble.directory_url)
}

/// `openssl ocsp -respin`: the response verifies against Pebble's root and says `status` for
/// the certificate's serial.
fn assert_openssl_accepts(pebble: &Pebble, cert: &Certificate, der: &[u8], status: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (resp, issuer, root) = (
        dir.path().join("resp.der"),
        dir.path().join("issuer.pem"),
        dir.path().join("root.pem"),
    );
    std::fs::write(&resp, der).unwrap();
    std::fs::write(&issuer, pebble.intermediate_pem(0)).unwrap();
    std::fs::write(&root, pebble.root_pem(0)).unwrap();
    let out = std::process::Command::new("openssl")
        .arg("ocsp")
        .arg("-respin")
        .arg(&resp)
        .arg("-issuer")
        .arg(&issuer)
        .arg("-verify_other")
        .arg(&issuer)
        .arg("-CAfile")
        .arg(&root)
        .args(["-serial", &format!("0x{}", cert.serial_hex())])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains(&format!(": {status}")), "{text}");
}

/// A handshake by `openssl s_client -status` against `manager`'s rustls server; returns what
/// s_client printed.
async fn s_client_status(pebble: &Pebble, manager: &Manager, name: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(manager.server_config().unwrap());
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        if let Ok(mut tls) = acceptor.accept(stream).await {
            tokio::io::AsyncWriteExt::shutdown(&mut tls).await.ok();
        }
    });
    let text = s_client_status_at(port, name, &pebble.root_pem(0)).await;
    server.await.unwrap();
    text
}

/// `openssl s_client -status` against 127.0.0.1:`port` for `name`, verifying against
/// `root_pem`; returns what it printed (it must succeed).
async fn s_client_status_at(port: u16, name: &str, root_pem: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, root_pem).unwrap();
    let name = name.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("openssl")
            .arg("s_client")
            .args(["-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", &name, "-status", "-verify_return_error"])
            .arg("-CAfile")
            .arg(&root)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "s_client failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_response_is_stapled_stored_served_and_shared() {
    let (pebble, mut responder) = pebble_with_responder(Some(60));
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(dir.path()));
    let name = "ocsp-good.example.test";
    let config = common::pebble_config(&pebble, storage.clone())
        .ocsp_check_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    manager.manage(&[name]).await.unwrap();

    // The responder has not heard of the new certificate: it answers unknown, nothing is
    // stapled and nothing stored.
    let cert = manager.get_certificate(name).unwrap();
    assert_eq!(
        cert.ocsp_response().map(|r| r.status()),
        Some(OcspStatus::Unknown)
    );
    assert!(cert.ocsp_staple().is_none());
    let crt = storage
        .load(&keys::site_cert(&issuer_key(&pebble), name))
        .await
        .unwrap();
    let staple_key = format!("ocsp/{name}-{:x}", fnv32a(&crt));
    assert_eq!(
        storage.load(&staple_key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Once it knows the certificate, maintenance asks again (an unknown answer is never
    // fresh) and staples the good answer.
    responder.set(&cert.serial_hex(), Status::Good);
    let stapled = wait_for("a stapled response", Duration::from_secs(30), || {
        manager
            .get_certificate(name)
            .filter(|c| c.ocsp_staple().is_some())
    })
    .await;
    assert_eq!(stapled.hash(), cert.hash(), "the same certificate, stapled");
    let response = stapled.ocsp_response().unwrap();
    assert_eq!(response.status(), OcspStatus::Good);
    assert_eq!(stapled.ocsp_staple(), Some(response.der()));
    assert_openssl_accepts(&pebble, &stapled, response.der(), "good");
    // Stored where Go CertMagic keeps it, byte for byte.
    assert_eq!(storage.load(&staple_key).await.unwrap(), response.der());

    // Served in handshakes.
    let seen = s_client_status(&pebble, &manager, name).await;
    assert!(seen.contains("OCSP Response Status: successful"), "{seen}");
    assert!(seen.contains("Cert Status: good"), "{seen}");
    manager.shutdown().await.unwrap();

    // Another instance on the same storage staples the stored response while it is fresh,
    // without asking the responder (which is down now).
    let asked = responder.requests();
    responder.stop();
    let config = common::pebble_config(&pebble, storage.clone())
        .build()
        .unwrap();
    let second = Manager::new(config).unwrap();
    second.manage(&[name]).await.unwrap();
    let loaded = second.get_certificate(name).unwrap();
    assert_eq!(loaded.ocsp_staple(), Some(response.der()));
    assert_eq!(responder.requests(), asked);
    assert_eq!(pebble.certificates_issued(), 1);
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_revoked_for_key_compromise_is_replaced_with_a_new_key() {
    // No nextUpdate: every maintenance pass asks the responder.
    let (pebble, mut responder) = pebble_with_responder(None);
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(dir.path()));
    let recorder = Arc::new(Recorder::default());
    let name = "ocsp-revoked.example.test";
    let config = common::pebble_config(&pebble, storage.clone())
        .ocsp_check_interval(Duration::from_millis(200))
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    manager.manage(&[name]).await.unwrap();
    let first = staple_good(&manager, &mut responder, name).await;
    let key_path = keys::site_private_key(&issuer_key(&pebble), name);
    let old_key = storage.load(&key_path).await.unwrap();

    responder.set(&first.serial_hex(), Status::Revoked("keyCompromise"));
    let replaced = wait_for("a replacement certificate", Duration::from_secs(60), || {
        manager
            .get_certificate(name)
            .filter(|c| c.serial_hex() != first.serial_hex())
    })
    .await;
    common::assert_cert_verifies(&pebble, &replaced, name);
    assert_ne!(
        replaced.key_der().secret_der(),
        first.key_der().secret_der()
    );
    assert_eq!(pebble.certificates_issued(), 2);

    // The compromised key was moved aside, and the stored key is the new one.
    assert_eq!(
        storage
            .load(&format!("{key_path}.compromised"))
            .await
            .unwrap(),
        old_key
    );
    let new_key = storage.load(&key_path).await.unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(
        certmagic::decode_private_key_pem(&new_key)
            .unwrap()
            .secret_der(),
        replaced.key_der().secret_der()
    );

    // One event, with CertMagic's payload.
    let revoked = recorder.payloads("cert_ocsp_revoked");
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["subjects"], serde_json::json!([name]));
    assert_eq!(revoked[0]["reason"], 1);
    assert_eq!(revoked[0]["certificate"], first.chain_pem());
    assert!(
        revoked[0]["revoked_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{revoked:?}"
    );
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn responder_overrides_and_stapling_off() {
    // Certificates name a responder nobody runs; the real one listens elsewhere.
    let named = format!("http://127.0.0.1:{}/", OcspResponder::pick_port());
    let pebble = pebble_naming(&named);
    let responder = OcspResponder::for_pebble(&pebble, OcspResponder::pick_port(), Some(60));
    let manager_with = |settings: &dyn Fn(ConfigBuilder) -> ConfigBuilder| {
        let storage: Arc<dyn Storage> = Arc::new(certmagic::MemoryStorage::new());
        let config = settings(common::pebble_config(&pebble, storage))
            .build()
            .unwrap();
        Manager::new(config).unwrap()
    };

    // Overridden to the real responder: it is asked (and knows nothing of the certificate).
    let redirected = manager_with(&|b| b.ocsp_responder_override(&named, responder.url()));
    redirected
        .manage(&["ocsp-redirected.example.test"])
        .await
        .unwrap();
    let cert = redirected
        .get_certificate("ocsp-redirected.example.test")
        .unwrap();
    assert_eq!(
        cert.ocsp_response().map(|r| r.status()),
        Some(OcspStatus::Unknown)
    );
    let asked = responder.requests();
    assert!(asked >= 1);
    redirected.shutdown().await.unwrap();

    // Overridden to nothing, or stapling off: no request, no response.
    let off: [&dyn Fn(ConfigBuilder) -> ConfigBuilder; 2] =
        [&|b| b.ocsp_responder_override(&named, ""), &|b| {
            b.disable_ocsp_stapling(true)
        }];
    for settings in off {
        let manager =
            manager_with(&|b| settings(b).ocsp_check_interval(Duration::from_millis(100)));
        manager.manage(&["ocsp-off.example.test"]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let cert = manager.get_certificate("ocsp-off.example.test").unwrap();
        assert!(cert.ocsp_response().is_none());
        manager.shutdown().await.unwrap();
    }
    assert_eq!(responder.requests(), asked);

    // Must-Staple needs stapling.
    let refused = Config::builder()
        .must_staple(true)
        .disable_ocsp_stapling(true)
        .build()
        .unwrap_err();
    assert_eq!(
        refused.config_field(),
        Some(certmagic::ConfigField::MustStaple)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_responder_down_the_staple_is_served_until_it_expires() {
    // Responses valid for one minute (OpenSSL's shortest): refreshed from 30 s on.
    let (pebble, mut responder) = pebble_with_responder(Some(1));
    let storage: Arc<dyn Storage> = Arc::new(certmagic::MemoryStorage::new());
    let name = "ocsp-down.example.test";
    let config = common::pebble_config(&pebble, storage)
        .ocsp_check_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    manager.manage(&[name]).await.unwrap();
    let stapled = staple_good(&manager, &mut responder, name).await;
    let response = stapled.ocsp_response().unwrap().clone();
    responder.stop();

    // Past the midpoint, refreshing fails: the staple it has is still served.
    let midpoint = response.refresh_at().unwrap();
    let next_update = response.next_update().unwrap();
    let past_midpoint = midpoint + Duration::from_secs(3);
    assert!(past_midpoint + Duration::from_secs(10) < next_update);
    if let Ok(wait) = past_midpoint.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let served = manager.get_certificate(name).unwrap();
    assert_eq!(served.ocsp_staple(), Some(response.der()));

    // Once it expires, none.
    let unstapled = wait_for("the expired staple to go", Duration::from_secs(60), || {
        manager
            .get_certificate(name)
            .filter(|c| c.ocsp_staple().is_none())
    })
    .await;
    assert!(std::time::SystemTime::now() >= next_update);
    assert_eq!(
        unstapled.hash(),
        stapled.hash(),
        "the same certificate, still served"
    );
    assert_eq!(pebble.certificates_issued(), 1);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn caddy_staples_the_response_this_library_stored() {
    let (pebble, mut responder) = pebble_with_responder(Some(60));
    let storage_dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(storage_dir.path()));
    let name = "ocsp-caddy.example.test";
    let config = common::pebble_config(&pebble, storage.clone())
        .ocsp_check_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    manager.manage(&[name]).await.unwrap();
    let stapled = staple_good(&manager, &mut responder, name).await;
    let serial = stapled.serial_hex();
    let ours = stapled.ocsp_staple().unwrap().to_vec();
    manager.shutdown().await.unwrap();
    let crt = storage
        .load(&keys::site_cert(&issuer_key(&pebble), name))
        .await
        .unwrap();
    let staple_file = storage_dir
        .path()
        .join(format!("ocsp/{name}-{:x}", fnv32a(&crt)));
    assert_eq!(std::fs::read(&staple_file).unwrap(), ours);

    // Caddy on the same folder, with the CA and the responder gone: the staple it serves can
    // only come from the file this library wrote.
    let (directory_url, root_pem, api_ca_pem) = (
        pebble.directory_url.clone(),
        pebble.root_pem(0),
        pebble.api_ca_pem.clone(),
    );
    drop(responder);
    drop(pebble);
    let scratch = tempfile::tempdir().unwrap();
    let api_ca = scratch.path().join("pebble-api-ca.pem");
    std::fs::write(&api_ca, api_ca_pem).unwrap();
    let [http_port, https_port] = common::free_ports();
    let caddy_config = serde_json::json!({
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
            "tls": {"certificates": {"automate": [name]}, "automation": {"policies": [{
                "subjects": [name],
                "issuers": [{
                    "module": "acme",
                    "ca": directory_url,
                    "email": "tests@certmagic-rs.test",
                    "trusted_roots_pem_files": [api_ca],
                }]
            }]}}
        }
    });
    let caddy = certmagic_testsupport::caddy::Caddy::start(&caddy_config, scratch.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", https_port))
            .await
            .is_ok()
        {
            let seen = s_client_status_at(https_port, name, &root_pem).await;
            if seen.contains("Cert Status: good") {
                break seen;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Caddy never stapled the stored response:\n{}",
            caddy.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(seen.contains("OCSP Response Status: successful"), "{seen}");
    // OpenSSL prints whole bytes: a serial of an odd number of digits gets a leading zero.
    let whole_bytes = if serial.len() % 2 == 1 {
        format!("0{serial}")
    } else {
        serial.clone()
    };
    assert!(
        seen.contains(&format!("Serial Number: {}", whole_bytes.to_uppercase())),
        "{seen}"
    );
    // Caddy used the file as it was.
    assert_eq!(std::fs::read(&staple_file).unwrap(), ours);
    drop(caddy);
}
