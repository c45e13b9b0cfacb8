//! Several issuers per configuration, and the local CA: a CA that is down is followed by the
//! next within the same attempt (events say which failed and which issued), the next renewal
//! tries the first again; the local CA issues without ACME under a root kept in storage, and
//! renews at two thirds of the lifetime.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::{
    AcmeIssuerSpec, ErrorKind, FileStorage, IssuerSpec, LocalIssuerSpec, Manager, MemoryStorage,
    Storage,
};
use common::*;
use rustls::client::danger::ServerCertVerifier;

/// The roots of a PEM bundle, as a rustls root store.
fn roots_of(pem: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in certmagic::parse_pem_chain(pem.as_bytes()).unwrap() {
        roots.add(c).unwrap();
    }
    roots
}

/// A TLS handshake for `name` with `server_config`, trusting only `root_pem`; the chain served.
async fn handshake_trusting(
    root_pem: &str,
    server_config: Arc<rustls::ServerConfig>,
    name: &str,
) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = tokio_rustls::TlsAcceptor::from(server_config)
            .accept(stream)
            .await;
    });
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots_of(root_pem))
        .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(
            rustls_pki_types::ServerName::try_from(name.to_string()).unwrap(),
            stream,
        )
        .await
        .unwrap_or_else(|e| panic!("TLS handshake for {name} failed: {e}"));
    let chain = tls.get_ref().1.peer_certificates().unwrap().to_vec();
    drop(tls);
    server.await.unwrap();
    chain
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_that_is_down_is_followed_by_the_next_and_tried_first_again_at_renewal() {
    let second = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        ..PebbleOptions::default()
    });
    // The first CA's URL is known before it runs (nothing listens there yet).
    let [first_port] = free_ports();
    let first_url = format!("https://127.0.0.1:{first_port}/dir");
    let recorder = Arc::new(Recorder::default());
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let config = pebble_config(&second, storage.clone())
        .issuer(IssuerSpec::Acme(AcmeIssuerSpec {
            ca: Some(first_url.clone()),
            ..AcmeIssuerSpec::default()
        }))
        .issuer(IssuerSpec::acme())
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let keys: Vec<String> = manager.issuer_keys().map(str::to_string).collect();
    assert_eq!(keys.len(), 2);
    let name = "fallback.example.test";
    let cert = manager.obtain(name).await.unwrap();
    assert_cert_verifies(&second, &cert, name);
    assert_eq!(cert.issuer_key(), Some(keys[1].as_str()));
    let obtained = &recorder.payloads("cert_obtained")[0];
    assert_eq!(obtained["issuer"], keys[1]);
    assert_eq!(obtained["failed_issuers"][0]["issuer"], keys[0]);
    assert!(
        obtained["failed_issuers"][0]["error"]
            .as_str()
            .unwrap()
            .contains("Connect"),
        "{obtained}"
    );
    assert!(
        storage
            .exists(&format!(
                "certificates/{}/{name}/{name}.crt",
                keys[1].replace(':', "-")
            ))
            .await
            .unwrap()
    );

    // The first CA comes up (validating on the same solver ports): the next renewal uses it.
    let first = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        acme_port: Some(first_port),
        challenge_ports: Some((second.http_port, second.tls_port)),
        ..PebbleOptions::default()
    });
    assert_eq!(first.directory_url, first_url);
    // Not-before times have whole seconds: the renewal is then the newer one below.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let renewed = manager.renew(name).await.unwrap();
    assert_cert_verifies(&first, &renewed, name);
    assert_eq!(renewed.issuer_key(), Some(keys[0].as_str()));
    let obtained = recorder.payloads("cert_obtained");
    assert_eq!(obtained[1]["issuer"], keys[0]);
    assert!(
        obtained[1].get("failed_issuers").is_none(),
        "{}",
        obtained[1]
    );
    assert_eq!((first.orders_created(), second.orders_created()), (1, 1));

    // Both folders now hold a certificate: loading keeps the newest (the first CA's).
    let other = Manager::new(
        pebble_config(&second, storage.clone())
            .issuers([
                IssuerSpec::acme(),
                IssuerSpec::Acme(AcmeIssuerSpec {
                    ca: Some(first_url.clone()),
                    ..AcmeIssuerSpec::default()
                }),
            ])
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(other.load_stored(&[name]).await.unwrap(), 1);
    assert_eq!(
        other.get_certificate(name).unwrap().chain_der(),
        renewed.chain_der()
    );
    manager.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_issuer_failing_names_them_all() {
    let [a, b] = free_ports();
    let recorder = Arc::new(Recorder::default());
    let config = certmagic::Config::builder()
        .agreed(true)
        .storage(Arc::new(MemoryStorage::new()))
        .event_handler(recorder.clone())
        .issuers([a, b].map(|port| {
            IssuerSpec::Acme(AcmeIssuerSpec {
                ca: Some(format!("https://127.0.0.1:{port}/dir")),
                ..AcmeIssuerSpec::default()
            })
        }))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let e = manager.obtain("down.example.test").await.unwrap_err();
    assert!(e.to_string().contains(&b.to_string()), "{e}");
    let failed = &recorder.payloads("cert_failed")[0];
    assert_eq!(
        failed["issuers"],
        serde_json::json!([format!("127.0.0.1:{a}-dir"), format!("127.0.0.1:{b}-dir")])
    );
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_ca_serves_localhost_and_renews_at_two_thirds() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let lifetime = Duration::from_secs(30);
    let config = certmagic::Config::builder()
        .storage(Arc::new(FileStorage::new(dir.path())))
        .issuers([IssuerSpec::Local(LocalIssuerSpec { lifetime })])
        .renew_check_interval(Duration::from_millis(500))
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let root = manager.local_root_pem().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pki/authorities/local/root.crt")).unwrap(),
        root
    );
    let started = Instant::now();
    manager
        .manage(&["localhost", "127.0.0.1", "*.svc.internal"])
        .await
        .unwrap();
    let first = manager.get_certificate("localhost").unwrap();
    assert_eq!(first.issuer_key(), Some("local"));
    for name in ["localhost", "db.svc.internal"] {
        let served = handshake_trusting(&root, manager.server_config().unwrap(), name).await;
        assert_eq!(served.len(), 2, "leaf and intermediate for {name}");
    }
    // Clients send no SNI for an IP address: check that chain against the root directly.
    let ip = manager.get_certificate("127.0.0.1").unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots_of(&root)),
        provider,
    )
    .build()
    .unwrap()
    .verify_server_cert(
        &ip.chain_der()[0],
        &ip.chain_der()[1..],
        &rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap(),
        &[],
        rustls_pki_types::UnixTime::now(),
    )
    .unwrap();
    let site = dir.path().join("certificates/local/localhost");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("localhost.json")).unwrap()).unwrap();
    assert_eq!(meta["sans"], serde_json::json!(["localhost"]));
    assert!(meta["issuer_data"].is_null(), "{meta}");

    // Renewed once two thirds of the lifetime have passed, not before.
    let renewed = loop {
        let now = manager.get_certificate("localhost").unwrap();
        if now.chain_der() != first.chain_der() {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < lifetime,
            "not renewed within the lifetime"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lived = first
        .not_after()
        .duration_since(first.not_before())
        .unwrap();
    assert!(
        renewed >= lived * 2 / 3 - Duration::from_secs(2),
        "renewed after {renewed:?} of a {lived:?} lifetime"
    );
    let renewals: Vec<_> = recorder
        .payloads("cert_obtained")
        .into_iter()
        .filter(|p| p["renewal"] == true && p["identifier"] == "localhost")
        .collect();
    assert_eq!(renewals[0]["issuer"], "local");
    manager.shutdown().await.unwrap();

    // A second instance on the same storage issues under the same root.
    let other = Manager::new(
        certmagic::Config::builder()
            .storage(Arc::new(FileStorage::new(dir.path())))
            .issuers([IssuerSpec::local()])
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(other.local_root_pem().await.unwrap(), root);
    other.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_ca_as_the_last_fallback() {
    let [down] = free_ports();
    let config = certmagic::Config::builder()
        .agreed(true)
        .storage(Arc::new(MemoryStorage::new()))
        .ca(format!("https://127.0.0.1:{down}/dir"))
        .issuers([IssuerSpec::acme(), IssuerSpec::local()])
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let cert = manager.obtain("intranet.internal").await.unwrap();
    assert_eq!(cert.issuer_key(), Some("local"));
    let root = manager.local_root_pem().await.unwrap();
    handshake_trusting(&root, manager.server_config().unwrap(), "intranet.internal").await;
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_settings_are_checked() {
    let refused = |b: certmagic::ConfigBuilder| b.build().unwrap_err();
    let e = refused(
        certmagic::Config::builder().issuers([IssuerSpec::Acme(AcmeIssuerSpec {
            ca: Some("http://insecure.test/dir".into()),
            ..AcmeIssuerSpec::default()
        })]),
    );
    assert_eq!(e.config_field(), Some(certmagic::ConfigField::Issuers));
    assert!(
        e.message().ends_with(
            "issuer 1 (acme): ca: `http://insecure.test/dir` is not an https:// ACME directory URL"
        ),
        "{e}"
    );
    let e = refused(
        certmagic::Config::builder().issuers([IssuerSpec::Local(LocalIssuerSpec {
            lifetime: Duration::from_secs(1),
        })]),
    );
    assert!(
        e.message()
            .contains("issuer 1 (local): lifetime_secs: 1s is shorter than 10s"),
        "{e}"
    );
    let e = refused(
        certmagic::Config::builder()
            .issuers([IssuerSpec::local()])
            .must_staple(true),
    );
    assert_eq!(e.config_field(), Some(certmagic::ConfigField::MustStaple));
    // Only the local CA: no challenge is needed, so both may be disabled.
    certmagic::Config::builder()
        .storage(Arc::new(MemoryStorage::new()))
        .issuers([IssuerSpec::local()])
        .disable_http_challenge(true)
        .disable_tls_alpn_challenge(true)
        .build()
        .unwrap();
    let m = Manager::new(
        certmagic::Config::builder()
            .storage(Arc::new(MemoryStorage::new()))
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m.local_root_pem().await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    m.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_one_liner_serves_localhost_from_the_local_ca_to_curl() {
    use bytes::Bytes;
    use http_body_util::Full;
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::new(
        certmagic::Config::builder()
            .storage(Arc::new(FileStorage::new(dir.path().join("storage"))))
            .issuers([IssuerSpec::local()])
            .build()
            .unwrap(),
    )
    .unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, manager.local_root_pem().await.unwrap()).unwrap();
    let [http_port, https_port] = free_ports();
    let options = certmagic::ServeOptions {
        http_port,
        https_port,
        listen: "127.0.0.1".parse().unwrap(),
        redirect_http: true,
    };
    let app = hyper::service::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(
            "hello from rust",
        ))))
    });
    let server = {
        let m = manager.clone();
        tokio::spawn(async move { certmagic::serve(&m, &["localhost"], app, options).await })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while manager.get_certificate("localhost").is_none() {
        assert!(!server.is_finished(), "serve ended early");
        assert!(Instant::now() < deadline, "no certificate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert"])
        .arg(&root)
        .args(["--resolve", &format!("localhost:{https_port}:127.0.0.1")])
        .arg(format!("https://localhost:{https_port}/"))
        .output()
        .await
        .expect("curl");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"hello from rust");
    server.abort();
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn zerossl_eab_credentials_come_from_the_account_email() {
    use certmagic::ZeroSslIssuerSpec;
    use certmagic_testsupport::zerossl::{ACCESS_KEY, ZeroSslApi};
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start(PebbleOptions {
        eab_keys: vec![("zerossl-kid".into(), key.into())],
        nonce_reject_percent: 0,
        ..PebbleOptions::default()
    });
    let api = ZeroSslApi::start("zerossl-kid", key);
    // ZeroSSL's own CA in production; Pebble (EAB required) here.
    let zerossl = |extra: ZeroSslIssuerSpec| {
        IssuerSpec::ZeroSsl(ZeroSslIssuerSpec {
            ca: Some(pebble.directory_url.clone()),
            api_url: Some(api.url.clone()),
            ..extra
        })
    };
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let manager = Manager::new(
        pebble_config(&pebble, storage.clone())
            .issuers([zerossl(ZeroSslIssuerSpec::default())])
            .build()
            .unwrap(),
    )
    .unwrap();
    let cert = manager.obtain("zerossl.example.test").await.unwrap();
    assert_cert_verifies(&pebble, &cert, "zerossl.example.test");
    assert_eq!(api.requests(), ["tests@certmagic-rs.test"]);
    // The account is stored: the next certificate needs no new credentials.
    manager.obtain("zerossl-2.example.test").await.unwrap();
    assert_eq!(api.requests().len(), 1);
    manager.shutdown().await.unwrap();

    // An API key is used instead of the email when given.
    let with_key = Manager::new(
        pebble_config(&pebble, Arc::new(MemoryStorage::new()))
            .issuers([zerossl(ZeroSslIssuerSpec {
                api_key: Some(ACCESS_KEY.into()),
                ..ZeroSslIssuerSpec::default()
            })])
            .build()
            .unwrap(),
    )
    .unwrap();
    with_key.obtain("zerossl-key.example.test").await.unwrap();
    assert_eq!(api.requests()[1], format!("key:{ACCESS_KEY}"));
    with_key.shutdown().await.unwrap();

    // A refused email is a clear error, with ZeroSSL's reason; no order is placed.
    let orders = pebble.orders_created();
    let refused = Manager::new(
        pebble_config(&pebble, Arc::new(MemoryStorage::new()))
            .issuers([zerossl(ZeroSslIssuerSpec {
                email: Some("refused@certmagic-rs.test".into()),
                ..ZeroSslIssuerSpec::default()
            })])
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = refused.obtain("zerossl-no.example.test").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Acme, "{e}");
    assert!(
        e.to_string().contains("ZeroSSL gave no EAB credentials for `refused@certmagic-rs.test`: invalid_email_address (code 2900"),
        "{e}"
    );
    assert_eq!(pebble.orders_created(), orders);
    refused.shutdown().await.unwrap();

    // Without an email or key there is nothing to ask for: refused when the config is built.
    let e = certmagic::Config::builder()
        .issuers([IssuerSpec::from_json(r#"{"type": "zerossl"}"#).unwrap()])
        .build()
        .unwrap_err();
    assert_eq!(e.config_field(), Some(certmagic::ConfigField::Issuers));
    assert!(
        e.message()
            .contains("issuer 1 (zerossl): ZeroSSL gives EAB credentials for an account email"),
        "{e}"
    );
    assert!(
        !format!(
            "{:?}",
            IssuerSpec::from_json(r#"{"type": "zerossl", "api_key": "secret-key"}"#).unwrap()
        )
        .contains("secret-key")
    );
}
