//! The load generator: full TLS 1.3 handshakes (no resumption) from rustls, verified against
//! the roots that signed the served certificates.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

/// A client that trusts `roots_pem` and never resumes a session.
pub fn client_config(roots_pem: &[&str]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in roots_pem {
        for cert in certmagic::parse_pem_chain(pem.as_bytes()).expect("root PEM") {
            roots.add(cert).expect("root");
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
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
    tokio_rustls::TlsConnector::from(client.clone())
        .connect(server_name, stream)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(start.elapsed())
}

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

/// Waits until 127.0.0.1:`port` accepts connections.
pub async fn wait_for_port(port: u16, within: Duration) -> Result<(), String> {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if start.elapsed() > within {
            return Err(format!("nothing listens on port {port} after {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
