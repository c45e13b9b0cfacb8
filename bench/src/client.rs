//! The load generator: full TLS 1.3 handshakes (no resumption) from rustls, verified against
//! the roots that signed the served certificates.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

/// A client that trusts `roots_pem` and never resumes a session. It offers X25519 only, the
/// group both servers support (Caddy 2.6 has no post-quantum hybrid), so both do the same
/// key exchange.
pub fn client_config(roots_pem: &[&str]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in roots_pem {
        for cert in certmagic::parse_pem_chain(pem.as_bytes()).expect("root PEM") {
            roots.add(cert).expect("root");
        }
    }
    let mut config = builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// A client for readiness probes: it checks only that the server presents a certificate for
/// the name asked, not its signatures, so that probing costs the client little beside the
/// server's work.
pub fn probe_config() -> Arc<ClientConfig> {
    let mut config = builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NameOnly))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
}

/// Accepts a certificate whose names include the one asked for; verifies no signature.
#[derive(Debug)]
struct NameOnly;

impl rustls::client::danger::ServerCertVerifier for NameOnly {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| rustls::Error::General(format!("certificate: {e}")))?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(|e| rustls::Error::General(format!("name: {e}")))?;
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered; the same answer either way.
        self.verify_tls13_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls_pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One full handshake with `name` on 127.0.0.1:`port`; its duration.
pub async fn handshake(
    client: &Arc<ClientConfig>,
    port: u16,
    name: &str,
) -> Result<Duration, String> {
    let start = Instant::now();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("{name}: connect: {e}"))?;
    stream.set_nodelay(true).ok();
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let connect = tokio_rustls::TlsConnector::from(client.clone()).connect(server_name, stream);
    // Longer than any wait for an order rate limiter here; a stalled server fails the name.
    tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
        .await
        .map_err(|_| format!("{name}: no handshake within {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(start.elapsed())
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The outcome of handshakes with many names.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of every successful handshake.
    pub latencies: Vec<Duration>,
    /// Errors of the failed ones.
    pub failures: Vec<String>,
    /// Wall time of the whole batch.
    pub total: Duration,
}

/// One handshake per name, `concurrency` at a time.
pub async fn each_once(
    client: &Arc<ClientConfig>,
    port: u16,
    names: &[String],
    concurrency: usize,
) -> Outcome {
    let queue = Arc::new(Mutex::new(names.iter().cloned().collect::<VecDeque<_>>()));
    let out = Arc::new(Mutex::new(Outcome::default()));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (queue, out, client) = (queue.clone(), out.clone(), client.clone());
        workers.spawn(async move {
            loop {
                let Some(name) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                let result = handshake(&client, port, &name).await;
                let mut out = out.lock().expect("outcome");
                match result {
                    Ok(d) => out.latencies.push(d),
                    Err(e) => out.failures.push(e),
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let mut out = std::mem::take(&mut *out.lock().expect("outcome"));
    out.total = start.elapsed();
    out
}

/// Handshakes with every name until each has succeeded once (a failed name goes to the back
/// of the queue); the time at which the last one succeeded, from `since`. Gives up at
/// `deadline`.
pub async fn until_all_served(
    client: &Arc<ClientConfig>,
    port: u16,
    names: &[String],
    concurrency: usize,
    since: Instant,
    deadline: Duration,
) -> Result<Duration, String> {
    let queue = Arc::new(Mutex::new(names.iter().cloned().collect::<VecDeque<_>>()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (queue, client) = (queue.clone(), client.clone());
        workers.spawn(async move {
            let mut last = Err("no name".to_string());
            loop {
                let Some(name) = queue.lock().expect("queue").pop_front() else {
                    return last;
                };
                match handshake(&client, port, &name).await {
                    Ok(_) => last = Ok(since.elapsed()),
                    Err(e) => {
                        if since.elapsed() > deadline {
                            return Err(format!("not served after {deadline:?}: {e}"));
                        }
                        queue.lock().expect("queue").push_back(name);
                        // Not yet loaded: leave the CPU to the server for a moment.
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }
        });
    }
    let mut done = Duration::ZERO;
    while let Some(joined) = workers.join_next().await {
        match joined.map_err(|e| e.to_string())? {
            Ok(d) => done = done.max(d),
            Err(e) if e == "no name" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `total` handshakes cycling over `names` on `concurrency` connections at a time.
pub async fn cycle(
    client: &Arc<ClientConfig>,
    port: u16,
    names: &[String],
    total: usize,
    concurrency: usize,
) -> Outcome {
    let names: Vec<String> = names.iter().cycle().take(total).cloned().collect();
    each_once(client, port, &names, concurrency).await
}

/// Waits until 127.0.0.1:`port` accepts connections, trying every millisecond (workload 6
/// times a server's start in milliseconds).
pub async fn wait_for_port(port: u16, within: Duration) -> Result<(), String> {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if start.elapsed() > within {
            return Err(format!("nothing listens on port {port} after {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
