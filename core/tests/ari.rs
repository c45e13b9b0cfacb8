//! ACME Renewal Information against Pebble behind a proxy that speaks RFC 9773 (Debian's Pebble
//! 2.4 does not): the window is fetched at issuance and stored as CertMagic stores it, refreshed
//! on the `Retry-After` schedule; a window in the past renews with `replaces`, one in the future
//! does not; `alreadyReplaced` is ordered again without `replaces`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::{FileStorage, Manager};
use certmagic_testsupport::ari::{AriProxy, Window};
use common::*;

fn metadata(dir: &std::path::Path, issuer: &str, name: &str) -> serde_json::Value {
    let path = dir.join(format!(
        "certificates/{}/{name}/{name}.json",
        issuer.replace(':', "-")
    ));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_past_window_renews_with_replaces_and_a_future_one_does_not() {
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        ..PebbleOptions::default()
    });
    let proxy = AriProxy::start(&pebble);
    // Asked again every second, so a changed window is seen within a few maintenance passes.
    proxy.set_retry_after(1);
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let manager = Manager::new(
        pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .ca(&proxy.directory_url)
            .renew_check_interval(Duration::from_millis(300))
            .event_handler(recorder.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let (now_name, later_name) = ("ari-now.example.test", "ari-later.example.test");
    manager.manage(&[now_name, later_name]).await.unwrap();
    let first = manager.get_certificate(now_name).unwrap();
    let later = manager.get_certificate(later_name).unwrap();
    let first_id = certmagic::certificate_id(first.chain_der()[0].as_ref()).unwrap();
    let later_id = certmagic::certificate_id(later.chain_der()[0].as_ref()).unwrap();

    // Fetched at issuance and stored in CertMagic's shape, field for field.
    let meta = metadata(dir.path(), manager.issuer_key(), now_name);
    let ri = &meta["issuer_data"]["renewal_info"];
    let keys: Vec<&str> = ri.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "suggestedWindow",
            "explanationURL",
            "_uniqueIdentifier",
            "_retryAfter",
            "_selectedTime"
        ],
        "{meta}"
    );
    assert_eq!(ri["_uniqueIdentifier"], first_id);
    let window = certmagic::RenewalInfo::from_json(ri).unwrap();
    let (start, end) = window.window.unwrap();
    let selected = window.selected_time.unwrap();
    assert!(selected > start && selected < end, "{ri}");
    assert_eq!(first.renewal_info().unwrap().selected_time, Some(selected));

    // The CA says "renew now" for one certificate: it is renewed, saying what it replaces.
    proxy.set_window(&first_id, Window::past());
    let deadline = Instant::now() + Duration::from_secs(60);
    let renewed = loop {
        let c = manager.get_certificate(now_name).unwrap();
        if c.chain_der() != first.chain_der() {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "not renewed after the window passed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_cert_verifies(&pebble, &renewed, now_name);
    assert_eq!(proxy.replaces(), vec![first_id.clone()]);
    let renewed_id = certmagic::certificate_id(renewed.chain_der()[0].as_ref()).unwrap();
    assert_eq!(
        metadata(dir.path(), manager.issuer_key(), now_name)["issuer_data"]["renewal_info"]["_uniqueIdentifier"],
        renewed_id
    );

    // The other one's window, a month away, was refreshed too and did not renew it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy
        .renewal_info_requests()
        .iter()
        .filter(|r| **r == later_id)
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            proxy.renewal_info_requests()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        manager.get_certificate(later_name).unwrap().chain_der(),
        later.chain_der()
    );
    assert_eq!(pebble.certificates_issued(), 3);
    let renewals: Vec<_> = recorder
        .payloads("cert_obtained")
        .into_iter()
        .filter(|p| p["renewal"] == true)
        .collect();
    assert_eq!(renewals.len(), 1);
    assert_eq!(renewals[0]["identifier"], now_name);
    manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn already_replaced_orders_again_without_replaces() {
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        ..PebbleOptions::default()
    });
    let proxy = AriProxy::start(&pebble);
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::new(
        pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .ca(&proxy.directory_url)
            .build()
            .unwrap(),
    )
    .unwrap();
    let name = "ari-replaced.example.test";
    let first = manager.obtain(name).await.unwrap();
    let id = certmagic::certificate_id(first.chain_der()[0].as_ref()).unwrap();
    proxy.refuse_replacing(&id);
    let renewed = manager.renew(name).await.unwrap();
    assert_cert_verifies(&pebble, &renewed, name);
    assert_ne!(renewed.chain_der(), first.chain_der());
    assert_eq!(
        proxy.replaces(),
        vec![id],
        "asked once with replaces, then without"
    );
    assert_eq!(pebble.certificates_issued(), 2);

    // A manager that reads the stored window (a restart) keeps the selected time.
    let stored = metadata(dir.path(), manager.issuer_key(), name);
    manager.shutdown().await.unwrap();
    let again = Manager::new(
        pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .ca(&proxy.directory_url)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again.load_stored(&[name]).await.unwrap(), 1);
    let loaded = again.get_certificate(name).unwrap();
    assert_eq!(
        loaded.renewal_info().unwrap().to_json(),
        stored["issuer_data"]["renewal_info"]
    );
    again.shutdown().await.unwrap();
}
