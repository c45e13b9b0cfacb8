//! Helpers shared by the integration tests: a config pointed at a test Pebble, chain
//! verification against Pebble's root, and a real TLS handshake.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use certmagic::{Certificate, Config, ConfigBuilder, Event, EventHandler, RateLimit, Storage};
#[allow(unused_imports)]
pub use certmagic_testsupport::{Pebble, PebbleOptions, free_ports};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("CERTMAGIC_LOG")
                    .unwrap_or_else(|_| "certmagic=info".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

/// A config for `pebble`: its CA trusted, solvers on the ports Pebble validates, on loopback.
pub fn pebble_config(pebble: &Pebble, storage: Arc<dyn Storage>) -> ConfigBuilder {
    init_tracing();
    Config::builder()
        .ca(&pebble.directory_url)
        .trusted_roots_pem(pebble.api_ca_pem.as_bytes())
        .email("tests@certmagic-rs.test")
        .agreed(true)
        .alt_http_port(pebble.http_port)
        .alt_tls_alpn_port(pebble.tls_port)
        .listen_host("127.0.0.1")
        .rate_limit(RateLimit {
            events: 0,
            window: Duration::ZERO,
        })
        .storage(storage)
}

/// Verifies `chain` (leaf first) for `name` against Pebble's issuing root `i`.
pub fn assert_chain_verifies(pebble: &Pebble, chain: &[CertificateDer<'static>], name: &str) {
    let root_pem = pebble.root_pem(0);
    let root = certmagic::parse_pem_chain(root_pem.as_bytes()).expect("root PEM");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &server_name, &[], UnixTime::now())
        .unwrap_or_else(|e| panic!("chain for {name} does not verify against Pebble's root: {e}"));
}

pub fn assert_cert_verifies(pebble: &Pebble, cert: &Certificate, name: &str) {
    assert!(
        cert.names().any(|n| n == name),
        "{name} not in {:?}",
        cert.names().collect::<Vec<_>>()
    );
    assert_chain_verifies(pebble, cert.chain_der(), name);
}

/// Records every event; can refuse `cert_obtaining`.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<(String, serde_json::Value)>>,
    pub refuse_obtaining: std::sync::atomic::AtomicBool,
}

impl Recorder {
    pub fn names(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
    pub fn payloads(&self, name: &str) -> Vec<serde_json::Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

impl EventHandler for Recorder {
    fn handle(&self, event: &Event) -> Result<(), certmagic::HandlerError> {
        self.events
            .lock()
            .unwrap()
            .push((event.name().to_string(), event.payload()));
        if event.name() == "cert_obtaining"
            && self
                .refuse_obtaining
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err("refused by test".into());
        }
        Ok(())
    }
}

/// Completes a TLS handshake with `server_config` for `name`, trusting Pebble's root; returns the
/// chain the server presented.
pub async fn handshake(
    pebble: &Pebble,
    server_config: Arc<rustls::ServerConfig>,
    name: &str,
) -> Vec<CertificateDer<'static>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
        let mut tls = acceptor.accept(stream).await.expect("server handshake");
        tokio::io::AsyncWriteExt::write_all(&mut tls, b"hello")
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::shutdown(&mut tls).await.ok();
    });
    let root = certmagic::parse_pem_chain(pebble.root_pem(0).as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), stream)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake for {name} failed: {e}"));
    let mut buf = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut buf)
        .await
        .ok();
    assert_eq!(buf, b"hello");
    server.await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap().to_vec()
}

/// A certificate authority of the test's own (rcgen), issuing for any name without ACME: for
/// tests of what happens around issuance (locks, maintenance) at sizes no ACME server handles
/// in a test's time. Counts what it issued.
#[derive(Debug)]
pub struct LocalIssuer {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
    validity: Duration,
    pub issued: std::sync::atomic::AtomicUsize,
    per_name: Mutex<std::collections::HashMap<String, usize>>,
}

impl LocalIssuer {
    pub fn new(validity: Duration) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "certmagic-rs test CA");
        let ca = params.self_signed(&key).unwrap();
        Self {
            ca_pem: ca.pem(),
            issuer: rcgen::Issuer::new(params, key),
            validity,
            issued: Default::default(),
            per_name: Default::default(),
        }
    }

    pub fn count(&self) -> usize {
        self.issued.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Certificates issued for `name`.
    pub fn count_for(&self, name: &str) -> usize {
        self.per_name
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

/// The public key of a CSR (P-256, the default key type).
struct CsrKey(Vec<u8>);

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

#[certmagic::async_trait]
impl certmagic::Issuer for LocalIssuer {
    fn issuer_key(&self) -> &str {
        "local-test-ca"
    }

    async fn issue(
        &self,
        subject: &certmagic::Subject,
        csr_der: &[u8],
    ) -> certmagic::Result<certmagic::IssuedCertificate> {
        use x509_parser::prelude::FromDer;
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(csr_der)
                .map_err(|e| {
                    certmagic::Error::new(certmagic::ErrorKind::Certificate, e.to_string())
                })?;
        let key = CsrKey(
            csr.certification_request_info
                .subject_pki
                .subject_public_key
                .data
                .to_vec(),
        );
        let mut params = rcgen::CertificateParams::new(vec![subject.as_string()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(1);
        params.not_after = now + self.validity;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        self.issued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self
            .per_name
            .lock()
            .unwrap()
            .entry(subject.as_string())
            .or_default() += 1;
        Ok(certmagic::IssuedCertificate {
            chain_pem: format!("{}{}", cert.pem(), self.ca_pem),
            metadata: serde_json::json!({}),
        })
    }

    async fn revoke(
        &self,
        _: &rustls_pki_types::CertificateDer<'static>,
        _: certmagic::RevocationReason,
    ) -> certmagic::Result<()> {
        Ok(())
    }
}
