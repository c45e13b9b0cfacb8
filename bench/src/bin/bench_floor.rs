//! The floor of `make bench`: a minimal static HTTPS server, tokio and tokio-rustls with one
//! certificate and nothing else, measured in the same harness as ours so that our figures read
//! as engine overhead over what TLS itself costs. It makes the same cryptographic choices as our
//! server (aws-lc-rs, TLS 1.3 suites in Go's order chosen by the server), so that the difference
//! is the engine, not the cipher.
//!
//! Usage: `bench-floor CHAIN.pem KEY.pem PORT`. Prints `listening` and serves until killed.

use std::io::Write;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [chain, key, port] = &args[..] else {
        eprintln!("usage: bench-floor CHAIN.pem KEY.pem PORT");
        std::process::exit(2);
    };
    let chain =
        certmagic::parse_pem_chain(&std::fs::read(chain).expect("read chain")).expect("chain");
    let key =
        certmagic::decode_private_key_pem(&std::fs::read(key).expect("read key")).expect("key");
    let port: u16 = port.parse().expect("port");
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let rank = |s: rustls::CipherSuite| match s {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 1,
        _ => 2,
    };
    provider.cipher_suites.sort_by_key(|s| rank(s.suite()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate");
    config.ignore_client_order = true;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        println!("listening");
        let _ = std::io::stdout().flush();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    drop(tls);
                }
            });
        }
    });
}
