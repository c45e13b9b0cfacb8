//! Issuance against a real ACME CA (Pebble) with real challenge validation over loopback.

mod common;

use std::sync::Arc;

use certmagic::{ChallengeType, FileStorage, Manager, MemoryStorage};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn obtains_with_http01_and_serves_it() {
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let config = pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
        .disable_tls_alpn_challenge(true)
        .event_handler(recorder.clone())
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    manager.manage(&["http01.example.test"]).await.unwrap();

    let cert = manager.get_certificate("http01.example.test").expect("cached");
    assert_cert_verifies(&pebble, &cert, "http01.example.test");
    let served = handshake(&pebble, manager.server_config().unwrap(), "http01.example.test").await;
    assert_eq!(served[0], cert.chain_der()[0]);
    println!("{}", pebble.log());
}
