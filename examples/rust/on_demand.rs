//! On-demand TLS with a tokio-rustls server: the ClientHello is read first
//! (`Manager::accept`), so the first handshake for an allowed name obtains its certificate
//! without blocking a thread, behind a decision. Runs against a local Pebble and checks
//! itself with `curl`:
//!
//! `cargo run -p certmagic --example on_demand`

use std::process::Command;
use std::sync::Arc;

use certmagic::{Config, Manager, MemoryStorage};
use certmagic_testsupport::{Pebble, PebbleOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter("certmagic=info")
        .init();
    let pebble = Pebble::start(PebbleOptions::default());
    let root = std::env::temp_dir().join(format!("on-demand-root-{}.pem", std::process::id()));
    std::fs::write(&root, pebble.root_pem(0))?;

    let config = Config::builder()
        .ca(&pebble.directory_url)
        .trusted_roots_pem(pebble.api_ca_pem.as_bytes())
        .agreed(true)
        .alt_http_port(pebble.http_port)
        .alt_tls_alpn_port(pebble.tls_port)
        .listen_host("127.0.0.1")
        .storage(Arc::new(MemoryStorage::new()))
        // Only our customers' names: anything else is refused before the CA hears of it.
        .on_demand_decision(Arc::new(|name: &str| {
            if name.ends_with(".customers.example.test") {
                Ok(())
            } else {
                Err(format!("{name} is not a customer"))
            }
        }))
        .build()?;
    let manager = Manager::new(config)?;
    let tls_config = manager.server_config()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = manager.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (manager, tls_config) = (server.clone(), tls_config.clone());
            tokio::spawn(async move {
                match manager.accept(stream, &tls_config).await {
                    Ok(mut tls) => {
                        let mut buf = [0u8; 1024];
                        let _ = tls.read(&mut buf).await;
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\non demand\n")
                            .await;
                        let _ = tls.shutdown().await;
                    }
                    Err(e) => eprintln!("handshake refused: {e}"),
                }
            });
        }
    });

    let curl = |name: &str| {
        Command::new("curl")
            .args(["-sS", "--http1.1", "--max-time", "60", "--cacert"])
            .arg(&root)
            .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
            .arg(format!("https://{name}:{port}/"))
            .output()
    };
    let ok = curl("shop.customers.example.test")?;
    print!(
        "shop.customers.example.test -> {}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let refused = curl("evil.example.test")?;
    println!(
        "evil.example.test -> refused ({})",
        String::from_utf8_lossy(&refused.stderr).trim()
    );
    let _ = std::fs::remove_file(&root);
    if !ok.status.success() || refused.status.success() {
        return Err("on-demand example did not behave".into());
    }
    Ok(())
}
