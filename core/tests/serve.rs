//! The one-liner: a hyper service over HTTPS with HTTP→HTTPS redirects, the certificate obtained
//! through the server's own ports (HTTP-01 on the plain port, TLS-ALPN-01 on the TLS port).

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certmagic::{ChallengeType, Manager, MemoryStorage, ServeOptions};
use common::*;
use http_body_util::Full;
use hyper::service::service_fn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve_and_fetch(challenge: ChallengeType, name: &'static str) {
    let pebble = Pebble::start(PebbleOptions::default());
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .challenge_preference([challenge])
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let options = ServeOptions {
        http_port: pebble.http_port,
        https_port: pebble.tls_port,
        listen: "127.0.0.1".parse().unwrap(),
        redirect_http: true,
    };
    let app = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(format!(
            "hello {}",
            req.uri().path()
        )))))
    });
    let server = {
        let (m, o) = (manager.clone(), options.clone());
        tokio::spawn(async move { certmagic::serve(&m, &[name], app, o).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while manager.get_certificate(name).is_none() {
        assert!(!server.is_finished(), "serve ended early");
        assert!(std::time::Instant::now() < deadline, "no certificate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_cert_verifies(&pebble, &manager.get_certificate(name).unwrap(), name);

    // HTTPS, verified against Pebble's root.
    let root = certmagic::parse_pem_chain(pebble.root_pem(0).as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root[0].clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", options.https_port))
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(
            rustls_pki_types::ServerName::try_from(name).unwrap(),
            stream,
        )
        .await
        .unwrap();
    tls.write_all(
        format!("GET /path HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut rsp = String::new();
    tls.read_to_string(&mut rsp).await.ok();
    assert!(rsp.starts_with("HTTP/1.1 200"), "{rsp}");
    assert!(rsp.ends_with("hello /path"), "{rsp}");

    // Plain HTTP redirects to HTTPS, keeping path and query.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", options.http_port))
        .await
        .unwrap();
    plain
        .write_all(
            format!(
                "GET /a?b=c HTTP/1.1\r\nHost: {name}:{}\r\n\r\n",
                options.http_port
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = plain.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 308"), "{head}");
    assert!(
        head.contains(&format!(
            "location: https://{name}:{}/a?b=c",
            options.https_port
        )),
        "{head}"
    );

    manager.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_with_http01_through_its_own_plain_port() {
    serve_and_fetch(ChallengeType::Http01, "serve-http.example.test").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_with_tls_alpn01_through_its_own_tls_port() {
    serve_and_fetch(ChallengeType::TlsAlpn01, "serve-alpn.example.test").await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_sends_no_client_hello_is_dropped_after_ten_seconds() {
    let manager = Manager::new(
        certmagic::Config::builder()
            .storage(Arc::new(MemoryStorage::new()))
            .build()
            .unwrap(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let config = manager.server_config().unwrap();
    let started = tokio::time::Instant::now();
    let err = manager.accept(stream, &config).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_challenge_in_storage_is_answered_only_for_its_own_identifier() {
    use certmagic::storage::keys;
    use certmagic::{Storage, solvers::ChallengeInfo};
    let storage = Arc::new(MemoryStorage::new());
    let manager = Manager::new(
        certmagic::Config::builder()
            .storage(storage.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let ik = manager.issuer_key().to_string();
    let challenge = |id_type: &str, value: &str| {
        serde_json::json!({
            "type": "http-01", "url": "https://ca.test/chall/1", "status": "pending",
            "token": "tok_1", "keyAuthorization": "tok_1.thumb",
            "identifier": {"type": id_type, "value": value},
        })
    };
    // An IP address and a DNS name whose storage keys are one and the same ("2001-db8--1").
    let info: ChallengeInfo = serde_json::from_value(challenge("ip", "2001:db8::1")).unwrap();
    storage
        .store(
            &keys::challenge_token(&ik, "2001:db8::1"),
            &serde_json::to_vec(&info).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        keys::challenge_token(&ik, "2001:db8::1"),
        keys::challenge_token(&ik, "2001-db8--1")
    );
    let path = "/.well-known/acme-challenge/tok_1";
    for host in ["[2001:db8::1]", "[2001:DB8:0::1]:80"] {
        assert_eq!(
            manager.handle_http_challenge(host, path).await.as_deref(),
            Some("tok_1.thumb"),
            "{host}"
        );
    }
    for host in ["2001-db8--1", "2001-db8--1:80", "other.test", ""] {
        assert_eq!(
            manager.handle_http_challenge(host, path).await,
            None,
            "{host}"
        );
    }
    // A DNS identifier: any spelling of the name, no other name.
    let info: ChallengeInfo = serde_json::from_value(challenge("dns", "a.example.test")).unwrap();
    storage
        .store(
            &keys::challenge_token(&ik, "a.example.test"),
            &serde_json::to_vec(&info).unwrap(),
        )
        .await
        .unwrap();
    assert!(
        manager
            .handle_http_challenge("A.Example.Test.:80", path)
            .await
            .is_some()
    );
    assert!(
        manager
            .handle_http_challenge("b.example.test", path)
            .await
            .is_none()
    );
}
