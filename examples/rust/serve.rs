//! One instance of a fleet: serves "hello" over HTTPS for the names given, certificates from an
//! ACME CA kept in a storage every instance shares (a `redis://` or `postgres://` URL, or a
//! folder). Start it on several machines with the same storage and each certificate is
//! obtained once, by whichever instance gets the name's lock first; the CA's validation may
//! reach any instance (challenges are in the storage too).
//!
//! ```text
//! cargo run --example serve -- <ca-directory-url> <ca-roots.pem | -> <http-port> <https-port> <storage> <name>...
//! ```
//!
//! Prints `OBTAINED <name>` for each certificate this instance obtained and `READY` once every
//! name has one; serves until stdin closes. `-` for the roots trusts the system's.

use std::io::{BufRead, Write};
use std::time::Duration;

use certmagic::{Config, Event, Manager, ServeOptions};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CERTMAGIC_LOG")
                .unwrap_or_else(|_| "certmagic=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        eprintln!(
            "usage: serve <ca-directory-url> <ca-roots.pem | -> <http-port> <https-port> <storage> <name>..."
        );
        std::process::exit(2);
    }
    let (http_port, https_port): (u16, u16) = (args[2].parse()?, args[3].parse()?);
    let names: Vec<&str> = args[5..].iter().map(String::as_str).collect();
    let mut config = Config::builder()
        .ca(&args[0])
        .agreed(true)
        .alt_http_port(http_port)
        .alt_tls_alpn_port(https_port)
        .listen_host("127.0.0.1")
        .storage_location(&args[4])
        .event_handler(std::sync::Arc::new(|event: &Event| {
            if let Event::CertObtained { identifier, .. } = event {
                say(&format!("OBTAINED {identifier}"));
            }
            Ok::<(), std::convert::Infallible>(())
        }));
    if args[1] != "-" {
        config = config.trusted_roots_pem(std::fs::read(&args[1])?);
    }
    let manager = Manager::new(config.build()?)?;

    // READY once every name has its certificate (obtained here or loaded from the storage).
    let watcher = {
        let (manager, names) = (manager.clone(), args[5..].to_vec());
        tokio::spawn(async move {
            while !names.iter().all(|n| manager.get_certificate(n).is_some()) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            say("READY");
        })
    };
    // Closing stdin stops the instance (and releases its storage locks).
    {
        let manager = manager.clone();
        std::thread::spawn(move || {
            for _ in std::io::stdin().lock().lines() {}
            manager.shutdown_sync().ok();
        });
    }
    let hello = service_fn(|_req| async {
        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
            "hello from certmagic-rs (rust)\n",
        ))))
    });
    let options = ServeOptions {
        http_port,
        https_port,
        listen: "127.0.0.1".parse()?,
        redirect_http: true,
    };
    let served = certmagic::serve(&manager, &names, hello, options).await;
    watcher.abort();
    served?;
    Ok(())
}
