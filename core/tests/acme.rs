//! Issuance against a real ACME CA (Pebble, validation on) with real HTTP-01 and TLS-ALPN-01
//! validation over loopback. Every issued chain is verified against Pebble's root.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use certmagic::{
    ChainPreference, ChallengeType, ErrorKind, FileStorage, KeyType, Manager, MemoryStorage,
    RetrySchedule, RevocationReason, Storage,
};
use common::*;
use tokio::io::AsyncWriteExt;

const ISSUER_DIR_PREFIX: &str = "certificates/127.0.0.1-";

#[tokio::test(flavor = "multi_thread")]
async fn http01_obtains_stores_in_caddy_layout_and_serves() {
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let config = pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
        .disable_tls_alpn_challenge(true)
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let name = "http01.example.test";
    manager.manage(&[name]).await.unwrap();

    let cert = manager.get_certificate(name).expect("cached");
    assert_cert_verifies(&pebble, &cert, name);
    let served = handshake(&pebble, manager.server_config().unwrap(), name).await;
    assert_eq!(
        served[0],
        cert.chain_der()[0],
        "the handshake serves the obtained certificate"
    );

    // Go CertMagic's layout, permissions and file contents.
    let issuer = manager.issuer_key().replace(':', "-");
    assert!(format!("certificates/{issuer}").starts_with(ISSUER_DIR_PREFIX));
    let site = dir.path().join(format!("certificates/{issuer}/{name}"));
    let crt = std::fs::read(site.join(format!("{name}.crt"))).unwrap();
    assert_eq!(
        certmagic::parse_pem_chain(&crt).unwrap(),
        cert.chain_der().to_vec()
    );
    let key = std::fs::read_to_string(site.join(format!("{name}.key"))).unwrap();
    assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join(format!("{name}.json"))).unwrap()).unwrap();
    assert_eq!(meta["sans"], serde_json::json!([name]));
    assert_eq!(meta["issuer_data"]["ca"], pebble.directory_url);
    assert!(
        meta["issuer_data"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    assert!(
        meta["issuer_data"]["account"]
            .as_str()
            .unwrap()
            .contains("/my-account/")
    );
    for f in ["crt", "key", "json"] {
        let mode = std::fs::metadata(site.join(format!("{name}.{f}")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    assert_eq!(
        std::fs::metadata(&site).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let account = dir
        .path()
        .join(format!("acme/{issuer}/users/tests@certmagic-rs.test"));
    assert!(account.join("tests.json").exists() && account.join("tests.key").exists());
    assert!(
        !dir.path()
            .join(format!("acme/{issuer}/challenge_tokens/{name}.json"))
            .exists(),
        "challenge cleaned up"
    );
    assert!(
        !dir.path()
            .join(format!("locks/issue_cert_{name}.lock"))
            .exists(),
        "lock released"
    );

    // Events with CertMagic's payload keys.
    assert_eq!(
        recorder.names(),
        vec!["cert_obtaining", "cached_managed_cert", "cert_obtained"]
    );
    let obtained = &recorder.payloads("cert_obtained")[0];
    assert_eq!(obtained["identifier"], name);
    assert_eq!(obtained["renewal"], false);
    assert_eq!(
        obtained["certificate_path"],
        format!("certificates/{issuer}/{name}/{name}.crt")
    );
    assert!(
        obtained["csr_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
    );
    assert_eq!(pebble.orders_created(), 1);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_alpn01_obtains_for_dns_name_and_ip_address() {
    let pebble = Pebble::start(PebbleOptions::default());
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .disable_http_challenge(true)
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    manager.manage(&["alpn.example.test"]).await.unwrap();
    assert_cert_verifies(
        &pebble,
        &manager.get_certificate("alpn.example.test").unwrap(),
        "alpn.example.test",
    );
    assert!(
        !pebble.log().contains("validate w/ HTTP"),
        "validated over TLS-ALPN-01 only"
    );

    // An IP address certificate (RFC 8738): the CA sends the reverse-DNS name as SNI.
    manager.manage(&["127.0.0.1"]).await.unwrap();
    let ip_cert = manager.get_certificate("127.0.0.1").unwrap();
    assert_cert_verifies(&pebble, &ip_cert, "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn falls_back_to_the_next_challenge_when_one_fails() {
    let pebble = Pebble::start(PebbleOptions::default());
    // A real server on the port Pebble validates HTTP-01 on, answering the wrong content.
    let wrong = tokio::net::TcpListener::bind(("127.0.0.1", pebble.http_port))
        .await
        .unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = wrong.accept().await.unwrap();
            h.fetch_add(1, Ordering::SeqCst);
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nwrong",
                )
                .await;
        }
    });
    let [our_http_port] = free_ports();
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .alt_http_port(our_http_port)
        .challenge_preference([ChallengeType::Http01, ChallengeType::TlsAlpn01])
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    manager.manage(&["fallback.example.test"]).await.unwrap();
    assert_cert_verifies(
        &pebble,
        &manager.get_certificate("fallback.example.test").unwrap(),
        "fallback.example.test",
    );
    assert!(
        hits.load(Ordering::SeqCst) >= 1,
        "Pebble tried HTTP-01 first and got the wrong answer"
    );
    // The second order could only succeed over TLS-ALPN-01: HTTP-01 still gets the wrong answer.
    assert_eq!(pebble.orders_created(), 2, "one order per challenge type");

    // With the only challenge type failing, the error names it and keeps the CA's problem.
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .alt_http_port(our_http_port)
        .disable_tls_alpn_challenge(true)
        .build()
        .unwrap();
    let err = Manager::new(config)
        .unwrap()
        .manage(&["fails.example.test"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Challenge);
    assert!(err.message().contains("http-01"), "{err}");
    let problem = err.problem().expect("CA problem kept");
    assert!(
        problem
            .problem_type
            .as_deref()
            .unwrap_or("")
            .starts_with("urn:ietf:params:acme:error:"),
        "{problem:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn renews_inside_the_window_and_another_instance_reloads_instead_of_renewing() {
    let pebble = Pebble::start(PebbleOptions {
        validity_secs: Some(40),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let build = |recorder: Arc<Recorder>| {
        let config = pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .renewal_window_ratio(0.5)
            .renew_check_interval(Duration::from_millis(500))
            .event_handler(recorder)
            .build()
            .unwrap();
        Manager::new(config).unwrap()
    };
    let (ra, rb) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let a = build(ra.clone());
    let name = "renew.example.test";
    a.manage(&[name]).await.unwrap();
    let first = a.get_certificate(name).unwrap();
    // A second instance on the same storage loads the certificate without an order.
    let b = build(rb.clone());
    b.manage(&[name]).await.unwrap();
    assert_eq!(b.get_certificate(name).unwrap().hash(), first.hash());
    assert_eq!(pebble.orders_created(), 1);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ca, cb) = (
            a.get_certificate(name).unwrap(),
            b.get_certificate(name).unwrap(),
        );
        if ca.hash() != first.hash() && cb.hash() == ca.hash() {
            assert_cert_verifies(&pebble, &ca, name);
            break;
        }
        assert!(Instant::now() < deadline, "no renewal within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One instance renewed, the other reloaded what it stored: two orders in all.
    assert_eq!(
        pebble.orders_created(),
        2,
        "the second instance must reload, not renew again"
    );
    let renewals: Vec<_> = ra
        .payloads("cert_obtained")
        .into_iter()
        .chain(rb.payloads("cert_obtained"))
        .filter(|p| p["renewal"] == true)
        .collect();
    assert_eq!(renewals.len(), 1, "exactly one renewal");
    assert!(renewals[0]["remaining"].as_f64().unwrap() < 40.0);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn revokes_and_removes_files() {
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FileStorage::new(dir.path()));
    let manager = Manager::new(pebble_config(&pebble, storage.clone()).build().unwrap()).unwrap();
    let name = "revoke.example.test";
    let cert = manager.obtain(name).await.unwrap();
    let serial = cert.serial_hex();
    assert_eq!(pebble.cert_status(&serial)["Status"], "Valid");
    manager
        .revoke(name, RevocationReason::Superseded)
        .await
        .unwrap();
    let status = pebble.cert_status(&serial);
    assert_eq!(status["Status"], "Revoked");
    assert_eq!(status["Reason"], 4);
    let site = certmagic::storage::keys::site_prefix(manager.issuer_key(), name);
    assert!(!storage.exists(&site).await.unwrap(), "files removed");
    assert!(
        manager.get_certificate(name).is_none(),
        "evicted from the cache"
    );
    let again = manager
        .revoke(name, RevocationReason::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn account_and_certificates_are_reused_across_restarts() {
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .build()
            .unwrap()
    };
    let first = Manager::new(config()).unwrap();
    first.manage(&["one.example.test"]).await.unwrap();
    let serial = first
        .get_certificate("one.example.test")
        .unwrap()
        .serial_hex();
    first.shutdown().await.unwrap();
    drop(first);

    let recorder = Arc::new(Recorder::default());
    let second = Manager::new(
        pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .event_handler(recorder.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    second.manage(&["one.example.test"]).await.unwrap();
    assert_eq!(
        second
            .get_certificate("one.example.test")
            .unwrap()
            .serial_hex(),
        serial,
        "loaded, not re-obtained"
    );
    assert_eq!(pebble.orders_created(), 1);
    assert_eq!(recorder.names(), vec!["cached_managed_cert"]);

    second.manage(&["two.example.test"]).await.unwrap();
    // Accounts created, not registration requests: Pebble rejects some nonces (5 %), and a
    // registration sent again after a bad nonce is still one account.
    assert_eq!(
        pebble.accounts_created(),
        1,
        "one account registration in all"
    );
    let meta = |n: &str| -> serde_json::Value {
        let issuer = second.issuer_key().replace(':', "-");
        serde_json::from_slice(
            &std::fs::read(
                dir.path()
                    .join(format!("certificates/{issuer}/{n}/{n}.json")),
            )
            .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        meta("one.example.test")["issuer_data"]["account"],
        meta("two.example.test")["issuer_data"]["account"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_nonces_are_retried() {
    // Half of all good nonces rejected: without retries around each step, an order would
    // almost never get through.
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 50,
        ..Default::default()
    });
    let manager = Manager::new(
        pebble_config(&pebble, Arc::new(MemoryStorage::new()))
            .build()
            .unwrap(),
    )
    .unwrap();
    for name in ["nonce1.example.test", "nonce2.example.test"] {
        manager.manage(&[name]).await.unwrap();
        assert_cert_verifies(&pebble, &manager.get_certificate(name).unwrap(), name);
    }
    assert!(
        pebble.log().contains("badNonce") || pebble.log().matches("HEAD /nonce-plz").count() > 2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn manage_background_retries_until_the_ca_comes_up() {
    let pebble = Pebble::start(PebbleOptions::default());
    // The CA is reached through a door that stays shut for the first seconds.
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let door_port = door.local_addr().unwrap().port();
    let pebble_addr = pebble
        .directory_url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let open = Arc::new(AtomicBool::new(false));
    let o = open.clone();
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = door.accept().await.unwrap();
            if !o.load(Ordering::SeqCst) {
                continue; // dropped: connection reset, as a CA that is down
            }
            let addr = pebble_addr.clone();
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(addr).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let recorder = Arc::new(Recorder::default());
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .ca(format!("https://127.0.0.1:{door_port}/dir"))
        .retry_schedule(RetrySchedule::new(
            vec![Duration::from_millis(300)],
            Duration::from_secs(120),
        ))
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    manager.manage_background(&["later.example.test"]).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(manager.get_certificate("later.example.test").is_none());
    open.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while manager.get_certificate("later.example.test").is_none() {
        assert!(
            Instant::now() < deadline,
            "not obtained after the CA came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_cert_verifies(
        &pebble,
        &manager.get_certificate("later.example.test").unwrap(),
        "later.example.test",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusing_cert_obtaining_cancels_before_any_order() {
    let pebble = Pebble::start(PebbleOptions::default());
    let recorder = Arc::new(Recorder::default());
    recorder.refuse_obtaining.store(true, Ordering::SeqCst);
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let err = Manager::new(config)
        .unwrap()
        .manage(&["refused.example.test"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted);
    assert!(err.message().contains("refused by test"));
    assert_eq!(pebble.orders_created(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn picks_the_preferred_chain() {
    let pebble = Pebble::start(PebbleOptions {
        alternate_roots: 1,
        ..Default::default()
    });
    let alt_root = certmagic::parse_pem_chain(pebble.root_pem(1).as_bytes()).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(alt_root[0].as_ref()).unwrap();
    let alt_cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .preferred_chain(ChainPreference {
            root_common_names: vec![alt_cn.clone()],
            ..Default::default()
        })
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let cert = manager.obtain("chain.example.test").await.unwrap();
    let top = cert.chain_der().last().unwrap();
    let (_, top) = x509_parser::parse_x509_certificate(top.as_ref()).unwrap();
    assert_eq!(
        top.issuer()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        alt_cn,
        "alternate chain chosen"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn external_account_binding() {
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start(PebbleOptions {
        eab_keys: vec![("kid-1".into(), key.into())],
        ..Default::default()
    });
    let without = Manager::new(
        pebble_config(&pebble, Arc::new(MemoryStorage::new()))
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = without.manage(&["eab.example.test"]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Acme);
    assert!(
        err.problem().unwrap().is("externalAccountRequired"),
        "{err}"
    );
    let with = Manager::new(
        pebble_config(&pebble, Arc::new(MemoryStorage::new()))
            .eab("kid-1", key)
            .build()
            .unwrap(),
    )
    .unwrap();
    with.manage(&["eab.example.test"]).await.unwrap();
    assert_cert_verifies(
        &pebble,
        &with.get_certificate("eab.example.test").unwrap(),
        "eab.example.test",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_types() {
    let pebble = Pebble::start(PebbleOptions::default());
    for (kt, label) in [
        (KeyType::EcdsaP384, "EC PRIVATE KEY"),
        (KeyType::Rsa2048, "RSA PRIVATE KEY"),
        (KeyType::Ed25519, "ED25519 PRIVATE KEY"),
    ] {
        let storage = Arc::new(MemoryStorage::new());
        let manager = Manager::new(
            pebble_config(&pebble, storage.clone())
                .key_type(kt)
                .build()
                .unwrap(),
        )
        .unwrap();
        let name = format!("{kt}.example.test");
        let cert = manager
            .obtain(&name)
            .await
            .unwrap_or_else(|e| panic!("{kt}: {e}"));
        assert_cert_verifies(&pebble, &cert, &name);
        let key = storage
            .load(&certmagic::storage::keys::site_private_key(
                manager.issuer_key(),
                &name,
            ))
            .await
            .unwrap();
        assert!(
            String::from_utf8(key)
                .unwrap()
                .starts_with(&format!("-----BEGIN {label}-----")),
            "{kt}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_clearly() {
    let pebble = Pebble::start(PebbleOptions::default());
    let manager = Manager::new(
        pebble_config(&pebble, Arc::new(MemoryStorage::new()))
            .build()
            .unwrap(),
    )
    .unwrap();
    for bad in ["", "bad name.test", "*.wild.example.test", "-", "a..b"] {
        let err = manager.manage(&[bad]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{bad:?}: {err}");
    }
    let err = manager.add_certificate(b"not pem", b"not pem").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Certificate);
    manager.shutdown().await.unwrap();
    assert_eq!(
        manager
            .manage(&["after.example.test"])
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::ShutDown
    );
    assert_eq!(pebble.orders_created(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_renewal_and_private_key_reuse() {
    let pebble = Pebble::start(PebbleOptions::default());
    for reuse in [false, true] {
        let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
            .reuse_private_keys(reuse)
            .build()
            .unwrap();
        let manager = Manager::new(config).unwrap();
        let name = format!("reuse-{reuse}.example.test");
        let first = manager.obtain(&name).await.unwrap();
        let second = manager.renew(&name).await.unwrap();
        assert_ne!(
            first.serial_hex(),
            second.serial_hex(),
            "forced renewal gets a new certificate"
        );
        assert_cert_verifies(&pebble, &second, &name);
        assert_eq!(
            first.key_der().secret_der() == second.key_der().secret_der(),
            reuse,
            "reuse={reuse}"
        );
        assert!(std::sync::Arc::ptr_eq(
            &manager.get_certificate(&name).unwrap(),
            &second
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unmanaged_certificates_are_served_and_never_renewed() {
    let pebble = Pebble::start(PebbleOptions::default());
    // A certificate obtained elsewhere (here: another manager), added by PEM.
    let elsewhere = Manager::new(
        pebble_config(&pebble, Arc::new(MemoryStorage::new()))
            .build()
            .unwrap(),
    )
    .unwrap();
    let cert = elsewhere.obtain("unmanaged.example.test").await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .renewal_window_ratio(0.999)
        .renew_check_interval(Duration::from_millis(200))
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let added = manager
        .add_certificate(cert.chain_pem().as_bytes(), cert.key_pem().as_bytes())
        .unwrap();
    assert!(!added.is_managed());
    let served = handshake(
        &pebble,
        manager.server_config().unwrap(),
        "unmanaged.example.test",
    )
    .await;
    assert_eq!(served[0], cert.chain_der()[0]);
    // The event is sent in the background: wait for it (however loaded the machine), then give
    // four maintenance passes (200 ms apart) the chance to renew what they must not.
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorder.names().is_empty() {
        assert!(Instant::now() < deadline, "no cached_unmanaged_cert event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        pebble.orders_created(),
        1,
        "never renewed, though inside the renewal window"
    );
    assert_eq!(recorder.names(), vec!["cached_unmanaged_cert"]);
    // A key that does not belong to the chain is refused.
    let other = elsewhere.obtain("other.example.test").await.unwrap();
    let err = manager
        .add_certificate(cert.chain_pem().as_bytes(), other.key_pem().as_bytes())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Certificate);
    assert!(err.message().contains("does not match"), "{err}");
}

/// `load_stored` caches what storage holds without ordering anything: a certificate already due
/// for renewal too (still valid: serving it beats serving nothing until it is renewed), and
/// nothing for a name storage lacks.
#[tokio::test(flavor = "multi_thread")]
async fn load_stored_caches_stored_certificates_even_due_ones_and_orders_nothing() {
    let pebble = Pebble::start(PebbleOptions {
        validity_secs: Some(120),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let build = || {
        let config = pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .build()
            .unwrap();
        Manager::new(config).unwrap()
    };
    let (stored, never) = ("stored.example.test", "never-stored.example.test");
    let a = build();
    a.obtain(stored).await.unwrap();
    a.shutdown().await.unwrap();
    drop(a);

    let b = build();
    assert!(b.get_certificate(stored).is_none());
    assert_eq!(b.load_stored(&[stored, never]).await.unwrap(), 1);
    let cert = b.get_certificate(stored).unwrap();
    // Two minutes of validity against the default 1/3 window and 10-minute checks: due.
    assert!(cert.needs_renewal(1.0 / 3.0, Duration::from_secs(600), SystemTime::now()));
    assert!(b.get_certificate(never).is_none());
    b.shutdown().await.unwrap();
    assert_eq!(pebble.orders_created(), 1);
}
