//! `make demo`: a local ACME CA (Pebble), a real certificate obtained with HTTP-01 validation,
//! an axum app served over HTTPS with it, and `curl` trusting only the CA's root to prove it.
//!
//! Set `DEMO_KEEP_RUNNING=1` to keep serving after the check (Ctrl-C to stop).

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use certmagic::{Config, FileStorage, Manager, ServeOptions};
use certmagic_testsupport::{Pebble, PebbleOptions};
use hyper_util::service::TowerToHyperService;

const NAME: &str = "demo.example.test";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter("certmagic=info")
        .init();
    let state = std::path::Path::new(".demo");
    std::fs::create_dir_all(state)?;

    println!("==> starting Pebble (a local ACME CA) and its DNS server on 127.0.0.1");
    let pebble = Pebble::start(PebbleOptions::default());
    let root = state.join("pebble-root.pem");
    std::fs::write(&root, pebble.root_pem(0))?;

    // Pebble validates HTTP-01 on its httpPort and TLS-ALPN-01 on its tlsPort, so the app listens
    // there. Storage is a fresh folder each run (Pebble's CA is new at every start).
    let storage = state.join("storage");
    let _ = std::fs::remove_dir_all(&storage);
    let config = Config::builder()
        .ca(&pebble.directory_url)
        .trusted_roots_pem(pebble.api_ca_pem.as_bytes())
        .email("demo@example.test")
        .agreed(true)
        .alt_http_port(pebble.http_port)
        .alt_tls_alpn_port(pebble.tls_port)
        .storage(Arc::new(FileStorage::new(&storage)))
        .build()?;
    let manager = Manager::new(config)?;
    let app = Router::new().route(
        "/",
        get(|| async { "Hello over automatic HTTPS from certmagic-rs!\n" }),
    );
    let options = ServeOptions {
        http_port: pebble.http_port,
        https_port: pebble.tls_port,
        listen: "127.0.0.1".parse()?,
        redirect_http: true,
    };
    println!(
        "==> serving https://{NAME}:{} (obtaining its certificate first)",
        options.https_port
    );
    let server = {
        let manager = manager.clone();
        let options = options.clone();
        tokio::spawn(async move {
            certmagic::serve(&manager, &[NAME], TowerToHyperService::new(app), options).await
        })
    };
    while manager.get_certificate(NAME).is_none() {
        if server.is_finished() {
            server.await??;
            return Err("server stopped".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cert = manager.get_certificate(NAME).expect("just checked");
    println!(
        "==> certificate obtained: serial {}, stored in {}",
        cert.serial_hex(),
        storage.display()
    );

    let url = format!("https://{NAME}:{}/", options.https_port);
    let resolve = format!("{NAME}:{}:127.0.0.1", options.https_port);
    println!(
        "==> curl --cacert {} --resolve {resolve} {url}",
        root.display()
    );
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&root)
        .args(["--resolve", &resolve, &url])
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        return Err("curl could not verify the certificate".into());
    }
    println!("==> curl verified the certificate against Pebble's root: automatic HTTPS works");

    if std::env::var_os("DEMO_KEEP_RUNNING").is_some() {
        println!("==> still serving; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    manager.shutdown().await?;
    let _ = server.await;
    Ok(())
}
