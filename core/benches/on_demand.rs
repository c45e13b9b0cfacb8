//! On-demand TLS side by side with Go CertMagic (Debian's Caddy), on one Pebble (validation
//! on, no validation sleep, no nonce rejection): the first handshake for a never-seen name
//! (decided by the same "ask" endpoint, obtained during the handshake) and a handshake for a
//! cached name. Engines alternate A/B/A/B on fresh names; both limit orders to 10 per 10 s.
//! Prints one table of medians (min–max) and the ratio ours/Caddy (< 1: we are faster).
//!
//! `BENCH_ON_DEMAND_NAMES` (default 8 per round) and `BENCH_CACHED` (default 200).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::{Config, FileStorage, Manager, RateLimit};
use certmagic_testsupport::caddy::Caddy;
use certmagic_testsupport::{Pebble, PebbleOptions, free_ports};
use rustls_pki_types::ServerName;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One full TLS handshake with `name` on 127.0.0.1:`port`, verified against `roots`.
async fn handshake(
    client: &Arc<rustls::ClientConfig>,
    port: u16,
    name: &str,
) -> Result<Duration, String> {
    let start = Instant::now();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(client.clone());
    connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), stream)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(start.elapsed())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(what: &str, ours: &mut [Duration], caddy: &mut [Duration]) {
    let (o, c) = (median(ours), median(caddy));
    println!(
        "| {what} | {:.2} ({:.2}–{:.2}) | {:.2} ({:.2}–{:.2}) | {:.2} |",
        ms(o),
        ms(ours[0]),
        ms(ours[ours.len() - 1]),
        ms(c),
        ms(caddy[0]),
        ms(caddy[caddy.len() - 1]),
        o.as_secs_f64() / c.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let names_per_round = env_usize("BENCH_ON_DEMAND_NAMES", 8);
    let cached_rounds = env_usize("BENCH_CACHED", 200);
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        ..PebbleOptions::default()
    });
    let scratch = tempfile::tempdir().unwrap();

    // The same gate for both: an ask endpoint that allows every name.
    let ask_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ask = format!("http://{}/ask", ask_listener.local_addr().unwrap());
    let app = axum::Router::new().route("/ask", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(ask_listener, app).await });

    // Ours: Manager::accept (ClientHello read first, certificate resolved asynchronously).
    let config = Config::builder()
        .ca(&pebble.directory_url)
        .trusted_roots_pem(pebble.api_ca_pem.as_bytes())
        .agreed(true)
        .alt_http_port(pebble.http_port)
        .alt_tls_alpn_port(pebble.tls_port)
        .listen_host("127.0.0.1")
        .rate_limit(RateLimit::default())
        .storage(Arc::new(FileStorage::new(scratch.path().join("ours"))))
        .on_demand_ask(ask.clone())
        .build()
        .unwrap();
    let manager = Arc::new(Manager::new(config).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let our_port = listener.local_addr().unwrap().port();
    let server_config = manager.server_config().unwrap();
    let m = manager.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (m, config) = (m.clone(), server_config.clone());
            tokio::spawn(async move {
                if let Ok(tls) = m.accept(stream, &config).await {
                    drop(tls);
                }
            });
        }
    });

    // Caddy: on-demand TLS behind the same ask endpoint, same CA, its own storage folder.
    let api_ca = scratch.path().join("pebble-api-ca.pem");
    std::fs::write(&api_ca, &pebble.api_ca_pem).unwrap();
    let [caddy_http, caddy_port] = free_ports();
    let caddy_config = serde_json::json!({
        "admin": {"disabled": true},
        "logging": {"logs": {"default": {"level": "ERROR"}}},
        "storage": {"module": "file_system", "root": scratch.path().join("caddy")},
        "apps": {
            "http": {"http_port": caddy_http, "https_port": caddy_port, "servers": {"s": {
                "listen": [format!("127.0.0.1:{caddy_port}")],
                "automatic_https": {"disable_redirects": true},
                "tls_connection_policies": [{}],
                "routes": [{"handle": [{"handler": "static_response", "body": "caddy"}]}]
            }}},
            "tls": {"automation": {
                "on_demand": {"ask": ask},
                "policies": [{
                    "on_demand": true,
                    "issuers": [{
                        "module": "acme",
                        "ca": pebble.directory_url,
                        "trusted_roots_pem_files": [api_ca],
                        "challenges": {
                            "bind_host": "127.0.0.1",
                            "http": {"alternate_port": pebble.http_port},
                            "tls-alpn": {"alternate_port": pebble.tls_port}
                        }
                    }]
                }]
            }}
        }
    });
    let _caddy = Caddy::start(&caddy_config, scratch.path());
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", caddy_port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "caddy did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let root = certmagic::parse_pem_chain(pebble.root_pem(0).as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    let client = Arc::new(client);

    let (mut ours_first, mut caddy_first) = (Vec::new(), Vec::new());
    let (mut ours_cached, mut caddy_cached) = (Vec::new(), Vec::new());
    let mut failures = 0;
    for round in 0..2 {
        for (engine, port) in [("ours", our_port), ("caddy", caddy_port)] {
            for i in 0..names_per_round {
                let name = format!("{engine}-{round}-{i}.bench.test");
                match handshake(&client, port, &name).await {
                    Ok(d) if engine == "ours" => ours_first.push(d),
                    Ok(d) => caddy_first.push(d),
                    Err(e) => {
                        failures += 1;
                        eprintln!("{engine} first handshake failed: {e}");
                    }
                }
            }
            // Past the 10-orders-per-10-s window before the next engine orders.
            tokio::time::sleep(Duration::from_secs(10)).await;
            let name = format!("{engine}-{round}-0.bench.test");
            for _ in 0..cached_rounds {
                match handshake(&client, port, &name).await {
                    Ok(d) if engine == "ours" => ours_cached.push(d),
                    Ok(d) => caddy_cached.push(d),
                    Err(e) => {
                        failures += 1;
                        eprintln!("{engine} cached handshake failed: {e}");
                    }
                }
            }
        }
    }
    println!();
    println!(
        "On-demand TLS, ours vs Caddy {} on one Pebble ({} new names and {} cached handshakes per engine, A/B/A/B)",
        caddy_version(),
        ours_first.len(),
        ours_cached.len()
    );
    println!();
    println!("| handshake (ms) | ours median (min–max) | Caddy median (min–max) | ours/Caddy |");
    println!("|---|---|---|---|");
    if ours_first.is_empty()
        || caddy_first.is_empty()
        || ours_cached.is_empty()
        || caddy_cached.is_empty()
    {
        println!("(not enough successful handshakes to compare; {failures} failures)");
        return;
    }
    row(
        "first, new name (decided, obtained)",
        &mut ours_first,
        &mut caddy_first,
    );
    row("cached name", &mut ours_cached, &mut caddy_cached);
    println!();
    println!(
        "failed handshakes: {failures}; orders placed: {}",
        pebble.orders_created()
    );
    manager.shutdown().await.ok();
}

fn caddy_version() -> String {
    Command::new("caddy")
        .arg("version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}
