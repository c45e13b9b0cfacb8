//! On-demand TLS against Pebble with real validation: certificates obtained during the first
//! handshake through `Manager::accept` (the ClientHello read first), behind a decision; refused
//! names never reach the CA; concurrent handshakes share one order; a failing name backs off;
//! the cache capacity evicts without failing handshakes; another process serves from storage.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use certmagic::{Config, ErrorKind, FileStorage, Manager, MemoryStorage, RateLimit, Storage};
use common::*;
use rustls_pki_types::{CertificateDer, ServerName};

/// A TLS server on loopback that picks certificates with `Manager::accept`.
struct Server {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(manager: Arc<Manager>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = manager.server_config().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (manager, config) = (manager.clone(), config.clone());
            tokio::spawn(async move {
                if let Ok(mut tls) = manager.accept(stream, &config).await {
                    let _ = tokio::io::AsyncWriteExt::write_all(&mut tls, b"hello").await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                }
            });
        }
    });
    Server { port, task }
}

/// A client handshake for `name`, trusting Pebble's root; the chain the server presented.
async fn connect(
    pebble_root: &str,
    port: u16,
    name: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let root = certmagic::parse_pem_chain(pebble_root.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), stream)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut buf).await;
    if buf != b"hello" {
        return Err(format!("unexpected answer {buf:?}"));
    }
    Ok(tls.get_ref().1.peer_certificates().unwrap().to_vec())
}

fn quiet_pebble() -> Pebble {
    // No nonce rejection: these tests count orders.
    Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        ..PebbleOptions::default()
    })
}

fn allow_suffix(suffix: &'static str) -> Arc<dyn certmagic::DecisionHandler> {
    Arc::new(move |name: &str| {
        if name.ends_with(suffix) {
            Ok(())
        } else {
            Err(format!("{name} is not ours"))
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn first_handshake_obtains_and_denied_names_never_reach_the_ca() {
    let pebble = quiet_pebble();
    let root = pebble.root_pem(0);
    let recorder = Arc::new(Recorder::default());
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .on_demand_decision(allow_suffix(".ok.test"))
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let manager = Arc::new(Manager::new(config).unwrap());
    let server = serve(manager.clone()).await;

    let chain = connect(&root, server.port, "new.ok.test").await.unwrap();
    assert_chain_verifies(&pebble, &chain, "new.ok.test");
    assert_eq!(pebble.orders_created(), 1);
    let names = recorder.names();
    assert!(
        names.contains(&"tls_get_certificate".to_string()),
        "{names:?}"
    );
    let obtained = recorder.payloads("cert_obtained");
    assert_eq!(obtained[0]["on_demand"], true);
    assert_eq!(recorder.payloads("cert_obtaining")[0]["on_demand"], true);

    // Cached now: no new order.
    connect(&root, server.port, "new.ok.test").await.unwrap();
    assert_eq!(pebble.orders_created(), 1);

    // Refused: the handshake fails and the CA never hears of the name.
    assert!(
        connect(&root, server.port, "evil.example.test")
            .await
            .is_err()
    );
    assert_eq!(pebble.orders_created(), 1);
    let err = manager
        .certificate_for_handshake(Some("evil.example.test"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted);
    assert!(err.to_string().contains("is not ours"), "{err}");
    // A wildcard is never a server name, whatever the decision says.
    let err = manager
        .certificate_for_handshake(Some("*.ok.test"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(pebble.orders_created(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_handshakes_share_one_order() {
    let pebble = quiet_pebble();
    let root = pebble.root_pem(0);
    let decisions = Arc::new(AtomicUsize::new(0));
    let counted = decisions.clone();
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .on_demand_decision(Arc::new(move |_: &str| -> Result<(), String> {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .build()
        .unwrap();
    let manager = Arc::new(Manager::new(config).unwrap());
    let server = serve(manager.clone()).await;
    let mut handshakes = Vec::new();
    for _ in 0..20 {
        let root = root.clone();
        let port = server.port;
        handshakes.push(tokio::spawn(async move {
            connect(&root, port, "crowd.ok.test").await
        }));
    }
    let mut first = None;
    for h in handshakes {
        let chain = h.await.unwrap().unwrap();
        let leaf = first.get_or_insert_with(|| chain[0].clone());
        assert_eq!(&chain[0], leaf, "every handshake got the same certificate");
    }
    assert_eq!(pebble.orders_created(), 1, "exactly one order");
    assert_eq!(
        decisions.load(Ordering::SeqCst),
        1,
        "one decision for the shared obtain"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn capacity_ten_with_thirty_names_every_handshake_succeeds() {
    let pebble = quiet_pebble();
    let root = pebble.root_pem(0);
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..30).map(|i| format!("n{i}.cap.test")).collect();
    let config = pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
        .on_demand_allow(names.clone())
        .cache_capacity(10)
        .build()
        .unwrap();
    let manager = Arc::new(Manager::new(config).unwrap());
    let server = serve(manager.clone()).await;
    for round in 0..2 {
        for name in &names {
            let chain = connect(&root, server.port, name)
                .await
                .unwrap_or_else(|e| panic!("round {round}, {name}: {e}"));
            assert_chain_verifies(&pebble, &chain, name);
            assert!(manager.cache().len() <= 10, "{}", manager.cache().len());
        }
    }
    assert_eq!(
        pebble.orders_created(),
        30,
        "evicted names come back from storage, not the CA"
    );
    assert!(manager.cache().evictions() >= 40);
    // A name outside the allow-list is refused.
    assert!(connect(&root, server.port, "n99.cap.test").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_instance_serves_from_shared_storage_without_ordering() {
    let pebble = quiet_pebble();
    let root = pebble.root_pem(0);
    let dir = tempfile::tempdir().unwrap();
    let build = || {
        pebble_config(
            &pebble,
            Arc::new(FileStorage::new(dir.path())) as Arc<dyn Storage>,
        )
        .on_demand_decision(allow_suffix(".ok.test"))
        .build()
        .unwrap()
    };
    let first = Arc::new(Manager::new(build()).unwrap());
    let s1 = serve(first.clone()).await;
    let chain1 = connect(&root, s1.port, "shared.ok.test").await.unwrap();
    let second = Arc::new(Manager::new(build()).unwrap());
    let s2 = serve(second.clone()).await;
    let chain2 = connect(&root, s2.port, "shared.ok.test").await.unwrap();
    assert_eq!(chain1[0], chain2[0]);
    assert_eq!(pebble.orders_created(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_or_panicking_decisions_deny_and_failures_back_off() {
    let pebble = quiet_pebble();
    let root = pebble.root_pem(0);
    let panicking = AtomicBool::new(true);
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .on_demand_decision(Arc::new(move |name: &str| -> Result<(), String> {
            if name.starts_with("panic.") && panicking.load(Ordering::SeqCst) {
                panic!("decision bug");
            }
            if name.starts_with("err.") {
                return Err("database down".into());
            }
            Ok(())
        }))
        // Nobody answers HTTP-01 there, and TLS-ALPN-01 is off: every obtain fails.
        .alt_http_port(free_ports::<1>()[0])
        .disable_tls_alpn_challenge(true)
        .build()
        .unwrap();
    let manager = Arc::new(Manager::new(config).unwrap());
    for (name, why) in [
        ("panic.x.test", "panicked: decision bug"),
        ("err.x.test", "database down"),
    ] {
        let err = manager
            .certificate_for_handshake(Some(name), &[])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Aborted, "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }
    assert_eq!(pebble.orders_created(), 0);

    let err = manager
        .certificate_for_handshake(Some("fails.x.test"), &[])
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Aborted, "{err}");
    let orders = pebble.orders_created();
    assert!(orders >= 1);
    // The next handshakes fail at once, without a new order, saying when it will be tried.
    let server = serve(manager.clone()).await;
    let again = manager
        .certificate_for_handshake(Some("fails.x.test"), &[])
        .await
        .unwrap_err();
    assert!(again.to_string().contains("next attempt in"), "{again}");
    assert!(connect(&root, server.port, "fails.x.test").await.is_err());
    assert_eq!(pebble.orders_created(), orders);
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_endpoint_and_rate_limit() {
    let pebble = quiet_pebble();
    let asked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    // The client port of each ask: which connection it came on.
    let ports = Arc::new(std::sync::Mutex::new(Vec::<u16>::new()));
    let (log, port_log) = (asked.clone(), ports.clone());
    let app = axum::Router::new().route(
        "/ask",
        axum::routing::get(
            move |uri: axum::http::Uri,
                  axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                std::net::SocketAddr,
            >| {
                let (log, port_log) = (log.clone(), port_log.clone());
                async move {
                    port_log.lock().unwrap().push(peer.port());
                    let domain = uri
                        .query()
                        .and_then(|q| q.strip_prefix("domain="))
                        .unwrap_or_default()
                        .to_string();
                    log.lock().unwrap().push(domain.clone());
                    if domain.ends_with(".ok.test") {
                        axum::http::StatusCode::OK
                    } else if domain.starts_with("moved.") {
                        axum::http::StatusCode::FOUND
                    } else {
                        axum::http::StatusCode::FORBIDDEN
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ask = format!("http://{}/ask", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .on_demand_ask(ask)
        .on_demand_rate_limit(RateLimit {
            events: 1,
            window: Duration::from_secs(600),
        })
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let cert = manager
        .certificate_for_handshake(Some("asked.ok.test"), &[])
        .await
        .unwrap();
    assert_cert_verifies(&pebble, &cert, "asked.ok.test");
    for (name, why) in [("no.example.test", "403"), ("moved.example.test", "302")] {
        let err = manager
            .certificate_for_handshake(Some(name), &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
    }
    let err = manager
        .certificate_for_handshake(Some("second.ok.test"), &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rate limit"), "{err}");
    assert_eq!(pebble.orders_created(), 1);
    assert_eq!(
        *asked.lock().unwrap(),
        [
            "asked.ok.test",
            "no.example.test",
            "moved.example.test",
            "second.ok.test"
        ]
    );
    // The connection of the first ask stayed open and served the next one (the order in
    // between gave it ample time to go back to the pool).
    let ports = ports.lock().unwrap().clone();
    assert_eq!(ports[1], ports[0], "connections of the asks: {ports:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_on_demand_manager_registers_its_account_at_start() {
    let pebble = quiet_pebble();
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .on_demand_decision(allow_suffix(".ok.test"))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    // No handshake yet: the account is registered in the background.
    let start = std::time::Instant::now();
    while pebble.accounts_created() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no account registered at start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cert = manager
        .certificate_for_handshake(Some("first.ok.test"), &[])
        .await
        .unwrap();
    assert_cert_verifies(&pebble, &cert, "first.ok.test");
    assert_eq!(
        pebble.accounts_created(),
        1,
        "the first order used that account"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn due_certificates_renew_in_the_background_and_disallowed_ones_are_evicted() {
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        validity_secs: Some(3600),
        ..PebbleOptions::default()
    });
    let allowed = Arc::new(AtomicBool::new(true));
    let flag = allowed.clone();
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .on_demand_decision(Arc::new(move |_: &str| -> Result<(), String> {
            if flag.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("revoked customer".into())
            }
        }))
        // Every certificate is due at once.
        .renewal_window_ratio(0.999)
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let first = manager
        .certificate_for_handshake(Some("renew.ok.test"), &[])
        .await
        .unwrap();
    // Once due (seconds after issuance at this ratio), handshakes are served the current
    // certificate while one renewal runs in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut served_old_while_due = false;
    loop {
        let served = manager
            .certificate_for_handshake(Some("renew.ok.test"), &[])
            .await
            .unwrap();
        if served.hash() != first.hash() {
            break;
        }
        served_old_while_due |= served.needs_renewal(
            0.999,
            Duration::from_secs(600),
            std::time::SystemTime::now(),
        );
        assert!(std::time::Instant::now() < deadline, "never renewed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served_old_while_due,
        "the due certificate was served while renewing"
    );
    assert!(pebble.orders_created() >= 2);

    // No longer allowed: evicted when its next renewal comes due, and refused from then on.
    allowed.store(false, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match manager
            .certificate_for_handshake(Some("renew.ok.test"), &[])
            .await
        {
            Ok(_) => {
                assert!(std::time::Instant::now() < deadline, "never re-checked");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                assert!(e.to_string().contains("revoked customer"), "{e}");
                break;
            }
        }
    }
    assert!(
        manager.get_certificate("renew.ok.test").is_none(),
        "evicted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_certificate_is_renewed_before_the_handshake() {
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        validity_secs: Some(3),
        ..PebbleOptions::default()
    });
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .on_demand_allow(["expired.ok.test"])
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let first = manager
        .certificate_for_handshake(Some("expired.ok.test"), &[])
        .await
        .unwrap();
    let wait = first
        .not_after()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(1100)).await;
    let served = manager
        .certificate_for_handshake(Some("expired.ok.test"), &[])
        .await
        .unwrap();
    assert_ne!(
        served.hash(),
        first.hash(),
        "a fresh certificate, not the expired one"
    );
    assert_cert_verifies(&pebble, &served, "expired.ok.test");
}

#[test]
fn on_demand_needs_a_gate() {
    let err = Config::builder()
        .on_demand_rate_limit(RateLimit {
            events: 1,
            window: Duration::from_secs(1),
        })
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("on_demand_rate_limit_events"));
    let err = Config::builder().cache_capacity(0).build().unwrap_err();
    assert_eq!(err.field(), Some("cache_capacity"));
}
