//! Our side of `make bench`: an HTTPS server built on this library the way an application
//! builds one — tokio-rustls, the ClientHello read first and the certificate chosen
//! asynchronously by [`Manager::accept`]. Run as its own process so that its CPU time and RSS
//! are measured apart from the load generator's.
//!
//! Usage: `bench-server SPEC.json`. Prints `policy <order rate policy>`, then `listening`, then
//! `ready <ms>` once every name of the spec is managed (loaded or obtained), and serves until
//! killed.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::{Config, FileStorage, Manager, RateLimit};
use certmagic_bench::ServerSpec;

fn main() {
    let started = Instant::now();
    // RUST_LOG=certmagic=debug: the library's log on stderr (the run's server.log).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .expect("usage: bench-server SPEC.json")
        .into();
    let spec: ServerSpec =
        serde_json::from_slice(&std::fs::read(&path).expect("read spec")).expect("parse spec");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(serve(spec, started));
}

async fn serve(spec: ServerSpec, started: Instant) {
    let mut builder = Config::builder()
        .ca(&spec.ca)
        .trusted_roots_pem(spec.ca_api_root_pem.as_bytes())
        .agreed(true)
        .alt_http_port(spec.http_port)
        .alt_tls_alpn_port(spec.tls_port)
        .listen_host("127.0.0.1")
        .storage(Arc::new(FileStorage::new(&spec.storage)));
    if let Some([events, window_ms]) = spec.rate_limit {
        builder = builder.rate_limit(RateLimit {
            events: events as usize,
            window: Duration::from_millis(window_ms),
        });
    }
    if let Some(ask) = &spec.ask {
        builder = builder.on_demand_ask(ask.clone());
    }
    let config = builder.build().expect("config");
    println!("policy {}", config.order_rate_policy());
    let manager = Arc::new(Manager::new(config).expect("manager"));
    let server_config = manager.server_config().expect("server config");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", spec.port))
        .await
        .expect("bind");
    let m = manager.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (m, config) = (m.clone(), server_config.clone());
            tokio::spawn(async move {
                if let Ok(tls) = m.accept(stream, &config).await {
                    drop(tls);
                }
            });
        }
    });
    println!("listening");
    let _ = std::io::stdout().flush();

    let names = spec.names;
    if spec.concurrency == 0 {
        if let Err(e) = manager.manage(&names).await {
            eprintln!("manage: {e}");
        }
    } else {
        // The application hands over at most `concurrency` names at a time.
        let gate = Arc::new(tokio::sync::Semaphore::new(spec.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for name in names {
            let (m, gate) = (manager.clone(), gate.clone());
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                if let Err(e) = m.manage(&[name]).await {
                    eprintln!("manage: {e}");
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
    println!("ready {}", started.elapsed().as_millis());
    let _ = std::io::stdout().flush();
    std::future::pending::<()>().await;
}
