//! DNS-01 against real DNS servers: BIND9 accepting TSIG-signed RFC 2136 updates, PowerDNS
//! through its HTTP API, and a user hook calling `nsupdate`, with Pebble resolving every name
//! (and validating every TXT record) through the same server.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certmagic::dns::providers::exec::{Exec, ExecConfig};
use certmagic::dns::providers::powerdns::{PowerDns, PowerDnsConfig};
use certmagic::dns::providers::rfc2136::{Rfc2136, Rfc2136Config};
use certmagic::{DnsChallenge, DnsProvider, DnsRecord, ErrorKind, Manager, MemoryStorage};
use certmagic_testsupport::dns::{Bind, TSIG_KEY_NAME};
use common::*;

const ZONE: &str = "bind.test";
const DELEGATE_ZONE: &str = "delegate.test";

fn start_bind() -> Bind {
    Bind::start(&[
        (
            ZONE,
            "_acme-challenge.cname IN CNAME _acme-challenge.cname.delegate.test.\n",
        ),
        (DELEGATE_ZONE, ""),
    ])
}

fn pebble_with_dns(port: u16) -> Pebble {
    Pebble::start(PebbleOptions {
        dns_server: Some(port),
        ..PebbleOptions::default()
    })
}

fn rfc2136(bind: &Bind) -> Arc<dyn DnsProvider> {
    Arc::new(rfc2136_via(bind.port, &bind.tsig_secret))
}

/// Updates sent to 127.0.0.1:`port`, signed as the test key with `secret`.
fn rfc2136_via(port: u16, secret: &str) -> Rfc2136 {
    Rfc2136::new(Rfc2136Config {
        server: format!("127.0.0.1:{port}"),
        key_name: Some(TSIG_KEY_NAME.into()),
        key_algorithm: Some("hmac-sha256".into()),
        key_secret: Some(secret.into()),
    })
    .unwrap()
}

fn dns_challenge(provider: Arc<dyn DnsProvider>, dns_port: u16) -> DnsChallenge {
    DnsChallenge::new(provider)
        .resolvers([format!("127.0.0.1:{dns_port}")])
        .poll_interval(Duration::from_millis(200))
        .propagation_timeout(Some(Duration::from_secs(20)))
}

/// Counts the calls reaching a provider (and can skip the real work).
#[derive(Debug)]
struct Counting {
    inner: Option<Arc<dyn DnsProvider>>,
    appended: AtomicUsize,
    deleted: Mutex<Vec<DnsRecord>>,
}

impl Counting {
    fn new(inner: Option<Arc<dyn DnsProvider>>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            appended: AtomicUsize::new(0),
            deleted: Mutex::default(),
        })
    }
}

#[certmagic::async_trait]
impl DnsProvider for Counting {
    async fn append_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.appended.fetch_add(1, Ordering::SeqCst);
        match &self.inner {
            Some(p) => p.append_records(zone, records).await,
            None => Ok(records.to_vec()),
        }
    }
    async fn delete_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.deleted.lock().unwrap().extend(records.iter().cloned());
        match &self.inner {
            Some(p) => p.delete_records(zone, records).await,
            None => Ok(records.to_vec()),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc2136_wildcard_and_apex_at_once_through_bind() {
    let bind = start_bind();
    let pebble = pebble_with_dns(bind.port);
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .dns_challenge(dns_challenge(rfc2136(&bind), bind.port))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    // Both validate through TXT records at _acme-challenge.bind.test, in flight together.
    let (wild, apex) = tokio::join!(manager.obtain("*.bind.test"), manager.obtain(ZONE));
    let wild = wild.unwrap();
    apex.unwrap();

    assert_cert_verifies(&pebble, &manager.get_certificate(ZONE).unwrap(), ZONE);
    assert!(wild.names().any(|n| n == "*.bind.test"));
    assert_chain_verifies(&pebble, wild.chain_der(), "a.bind.test");
    for name in ["a.bind.test", "b.bind.test"] {
        let served = manager
            .get_certificate(name)
            .expect("served by the wildcard");
        assert_eq!(served.chain_der()[0], wild.chain_der()[0], "{name}");
        let chain = handshake(&pebble, manager.server_config().unwrap(), name).await;
        assert_eq!(chain[0], wild.chain_der()[0]);
    }
    assert!(
        manager
            .get_certificate("a.b.bind.test")
            .is_none_or(|c| c.chain_der()[0] != wild.chain_der()[0]),
        "a wildcard covers one label only"
    );
    assert!(
        bind.txt("_acme-challenge.bind.test").is_empty(),
        "challenge records are removed: {:?}",
        bind.txt("_acme-challenge.bind.test")
    );
    let log = bind.log();
    assert!(
        log.matches("adding an RR at '_acme-challenge.bind.test' TXT")
            .count()
            >= 2,
        "both values were added through signed updates:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cname_of_acme_challenge_is_followed_into_another_zone() {
    let bind = start_bind();
    let pebble = pebble_with_dns(bind.port);
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .dns_challenge(dns_challenge(rfc2136(&bind), bind.port))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let cert = manager.obtain("cname.bind.test").await.unwrap();
    assert_cert_verifies(&pebble, &cert, "cname.bind.test");
    let log = bind.log();
    assert!(
        log.contains("updating zone 'delegate.test/IN': adding an RR at '_acme-challenge.cname.delegate.test' TXT"),
        "the record was put at the CNAME's target:\n{log}"
    );
    assert!(bind.txt("_acme-challenge.cname.delegate.test").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn http01_and_tls_alpn01_validate_through_bind_too() {
    let bind = start_bind();
    let pebble = pebble_with_dns(bind.port);
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let cert = manager.obtain("web.bind.test").await.unwrap();
    assert_cert_verifies(&pebble, &cert, "web.bind.test");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_hook_calling_nsupdate() {
    let bind = start_bind();
    let pebble = pebble_with_dns(bind.port);
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("hook.sh");
    let calls = dir.path().join("calls");
    std::fs::write(
        &hook,
        format!(
            r#"#!/bin/sh
set -e
echo "$1 $2" >> {calls}
case "$1" in
  present) change="update add $2 $CERTMAGIC_DNS_TTL TXT \"$3\"" ;;
  cleanup) change="update delete $2 TXT \"$3\"" ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac
printf 'server 127.0.0.1 {port}\nzone %s\n%s\nsend\n' "$CERTMAGIC_DNS_ZONE" "$change" \
  | nsupdate -y "hmac-sha256:{key}:{secret}"
"#,
            calls = calls.display(),
            port = bind.port,
            key = TSIG_KEY_NAME,
            secret = bind.tsig_secret
        ),
    )
    .unwrap();
    let exec = Exec::new(ExecConfig {
        command: "sh".into(),
        args: vec![hook.display().to_string()],
        timeout_secs: Some(30),
    })
    .unwrap();
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .dns_challenge(dns_challenge(Arc::new(exec), bind.port))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let cert = manager.obtain("hook.bind.test").await.unwrap();
    assert_cert_verifies(&pebble, &cert, "hook.bind.test");
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "present _acme-challenge.hook.bind.test.\ncleanup _acme-challenge.hook.bind.test.\n"
    );
    assert!(bind.txt("_acme-challenge.hook.bind.test").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn powerdns_api_obtains_wildcard_and_apex() {
    let pdns = certmagic_testsupport::dns::PowerDns::start("pdns.test");
    let pebble = pebble_with_dns(pdns.port);
    let provider = PowerDns::new(PowerDnsConfig {
        url: pdns.api_url.clone(),
        api_key: pdns.api_key.as_str().into(),
        server_id: None,
    })
    .unwrap();
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .dns_challenge(dns_challenge(Arc::new(provider), pdns.port))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let (wild, apex) = tokio::join!(manager.obtain("*.pdns.test"), manager.obtain("pdns.test"));
    assert_chain_verifies(&pebble, wild.unwrap().chain_der(), "x.pdns.test");
    assert_cert_verifies(&pebble, &apex.unwrap(), "pdns.test");
    assert!(pdns.txt("_acme-challenge.pdns.test").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn propagation_timeout_names_the_record_and_cleans_up() {
    let bind = start_bind();
    let pebble = pebble_with_dns(bind.port);
    // A provider that says yes but never publishes anything.
    let provider = Counting::new(None);
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .dns_challenge(
            dns_challenge(provider.clone(), bind.port)
                .propagation_timeout(Some(Duration::from_secs(1))),
        )
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let err = manager.obtain("late.bind.test").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("TXT record `_acme-challenge.late.bind.test.`"),
        "{err}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(provider.deleted.lock().unwrap().len(), 1, "cleaned up");
}

#[tokio::test(flavor = "multi_thread")]
async fn order_cancelled_by_shutdown_still_removes_its_record() {
    let bind = start_bind();
    let pebble = pebble_with_dns(bind.port);
    let provider = Counting::new(Some(rfc2136(&bind)));
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .dns_challenge(
            dns_challenge(provider.clone(), bind.port)
                // Waits long enough for the test to cancel it.
                .propagation_delay(Duration::from_secs(30)),
        )
        .build()
        .unwrap();
    let manager = Arc::new(Manager::new(config).unwrap());
    let m = manager.clone();
    let task = tokio::spawn(async move { m.obtain("cancel.bind.test").await });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while bind.txt("_acme-challenge.cancel.bind.test").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "record never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    manager.shutdown().await.unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !bind.txt("_acme-challenge.cancel.bind.test").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "record left behind after cancellation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(provider.deleted.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_tsig_key_is_a_clear_error() {
    let bind = start_bind();
    let pebble = pebble_with_dns(bind.port);
    let provider = Rfc2136::new(Rfc2136Config {
        server: format!("127.0.0.1:{}", bind.port),
        key_name: Some(TSIG_KEY_NAME.into()),
        key_algorithm: None,
        key_secret: Some("d3Jvbmcgc2VjcmV0IGZvciB0ZXN0cw==".into()),
    })
    .unwrap();
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .dns_challenge(dns_challenge(Arc::new(provider), bind.port))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let err = manager.obtain("badkey.bind.test").await.unwrap_err();
    assert!(err.to_string().contains("NOTAUTH"), "{err}");
    assert!(
        err.to_string()
            .contains("_acme-challenge.badkey.bind.test."),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wildcard_without_a_dns_provider_is_refused_clearly() {
    let pebble = Pebble::start(PebbleOptions::default());
    let config = pebble_config(&pebble, Arc::new(MemoryStorage::new()))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let err = manager.obtain("*.example.test").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidName);
    assert!(err.to_string().contains("DNS-01"), "{err}");
    assert!(err.to_string().contains("dns_challenge"), "{err}");
    assert_eq!(pebble.orders_created(), 0, "no order is placed");
}

/// An update signed with a secret BIND does not know: BIND answers NOTAUTH with the TSIG error
/// BADSIG (and no MAC, RFC 8945 5.2), the update is refused and nothing is added.
#[tokio::test(flavor = "multi_thread")]
async fn update_with_a_bad_tsig_signature_is_refused_and_changes_nothing() {
    let bind = start_bind();
    let provider = rfc2136_via(bind.port, "d3Jvbmcgc2VjcmV0IGZvciB0ZXN0cw==");
    let record = DnsRecord::txt(
        "_acme-challenge.badsig",
        "never-added",
        Duration::from_secs(5),
    );
    let err = provider
        .append_records(ZONE, std::slice::from_ref(&record))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Challenge, "{err}");
    let message = err.to_string();
    assert!(message.contains("NOTAUTH"), "{message}");
    assert!(message.contains("BADSIG"), "{message}");
    assert!(
        bind.txt("_acme-challenge.badsig.bind.test").is_empty(),
        "the refused update changed the zone"
    );
    // The right key adds it, through the same code (so the check above could have failed).
    let good = rfc2136(&bind);
    good.append_records(ZONE, std::slice::from_ref(&record))
        .await
        .unwrap();
    assert_eq!(
        bind.txt("_acme-challenge.badsig.bind.test"),
        vec!["never-added".to_string()]
    );
}

/// A relay on loopback between the provider and BIND flips one bit of the MAC in BIND's signed
/// answers: the answer is not believed (it says NOERROR, but anyone on the path could have
/// written it), and an untouched answer through the same relay is.
#[tokio::test(flavor = "multi_thread")]
async fn answer_whose_tsig_does_not_verify_is_not_believed() {
    let bind = start_bind();
    let relay = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay_port = relay.local_addr().unwrap().port();
    let tamper = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let upstream = format!("127.0.0.1:{}", bind.port);
    let flag = tamper.clone();
    let relaying = tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, from) = relay.recv_from(&mut buf).await.unwrap();
            let to_bind = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            to_bind.send_to(&buf[..n], &upstream).await.unwrap();
            let mut answer = vec![0u8; 65535];
            let m = to_bind.recv(&mut answer).await.unwrap();
            answer.truncate(m);
            if flag.load(Ordering::SeqCst) {
                // The TSIG record ends the answer: MAC, original id, error, other length (0).
                let last_mac_byte = m - 7;
                answer[last_mac_byte] ^= 1;
            }
            relay.send_to(&answer, from).await.unwrap();
        }
    });
    let provider = rfc2136_via(relay_port, &bind.tsig_secret);
    let record = DnsRecord::txt("_acme-challenge.tampered", "v1", Duration::from_secs(5));
    let err = provider
        .append_records(ZONE, std::slice::from_ref(&record))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Challenge, "{err}");
    assert!(
        err.to_string()
            .contains("does not carry a valid TSIG signature"),
        "{err}"
    );
    // BIND did apply it (the update itself was genuine); what failed was trust in the answer.
    assert_eq!(
        bind.txt("_acme-challenge.tampered.bind.test"),
        vec!["v1".to_string()]
    );
    tamper.store(false, Ordering::SeqCst);
    provider
        .delete_records(ZONE, std::slice::from_ref(&record))
        .await
        .unwrap();
    assert!(bind.txt("_acme-challenge.tampered.bind.test").is_empty());
    relaying.abort();
}
