//! A name whose stored certificate is unusable recovers: torn or empty files and a key that
//! belongs to another certificate (what a crash between the writes of a renewal leaves) are
//! reported and replaced by a new certificate, through `manage`, on demand and after a process
//! is killed at random points while it renews.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::storage::keys;
use certmagic::{ErrorKind, FileStorage, KeyInfo, Manager, MemoryStorage, Storage, async_trait};
use common::*;

fn read(dir: &std::path::Path, key: &str) -> Vec<u8> {
    std::fs::read(dir.join(key)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_stored_certificates_are_replaced() {
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let storage = || Arc::new(FileStorage::new(dir.path())) as Arc<dyn Storage>;
    let names = [
        "fine.example.test",
        "empty.example.test",
        "swapped.example.test",
        "other.example.test",
        "torn.example.test",
    ];
    let first = Manager::new(pebble_config(&pebble, storage()).build().unwrap()).unwrap();
    first.manage(&names[..4]).await.unwrap();
    first.shutdown().await.unwrap();
    let ik = first.issuer_key().to_string();
    drop(first);
    let files = |n: &str| (keys::site_cert(&ik, n), keys::site_private_key(&ik, n));

    // An empty chain; a key of another certificate; garbage in all three files.
    std::fs::write(dir.path().join(files("empty.example.test").0), b"").unwrap();
    let other_key = read(dir.path(), &files("other.example.test").1);
    std::fs::write(dir.path().join(files("swapped.example.test").1), &other_key).unwrap();
    let torn = "torn.example.test";
    std::fs::create_dir_all(dir.path().join(keys::site_prefix(&ik, torn))).unwrap();
    std::fs::write(
        dir.path().join(files(torn).0),
        b"-----BEGIN CERTIFICATE-----\ngarb",
    )
    .unwrap();
    std::fs::write(dir.path().join(files(torn).1), b"").unwrap();
    std::fs::write(
        dir.path().join(keys::site_meta(&ik, torn)),
        b"{\"sans\":[\"to",
    )
    .unwrap();
    let orders_before = pebble.orders_created();

    let recorder = Arc::new(Recorder::default());
    let second = Manager::new(
        pebble_config(&pebble, storage())
            .event_handler(recorder.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    second.manage(&names).await.unwrap();
    let reported: Vec<serde_json::Value> = recorder.payloads("stored_cert_corrupt");
    let mut identifiers: Vec<&str> = reported
        .iter()
        .map(|p| p["identifier"].as_str().unwrap())
        .collect();
    identifiers.sort();
    assert_eq!(
        identifiers,
        [
            "empty.example.test",
            "swapped.example.test",
            "torn.example.test"
        ]
    );
    for p in &reported {
        let n = p["identifier"].as_str().unwrap();
        assert_eq!(p["certificate_path"], files(n).0, "{p}");
        assert_eq!(p["private_key_path"], files(n).1, "{p}");
        assert!(!p["error"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        pebble.orders_created(),
        orders_before + 3,
        "one new order each"
    );
    for n in names {
        let cert = second.get_certificate(n).unwrap();
        assert_cert_verifies(&pebble, &cert, n);
        let served = handshake(&pebble, second.server_config().unwrap(), n).await;
        assert_eq!(served[0].as_ref(), cert.chain_der()[0].as_ref(), "{n}");
    }
    second.shutdown().await.unwrap();
    drop(second);

    // The files were replaced: a third start loads every name without an order.
    let third = Manager::new(pebble_config(&pebble, storage()).build().unwrap()).unwrap();
    third.manage(&names).await.unwrap();
    assert_eq!(pebble.orders_created(), orders_before + 3);
    let stored = certmagic::parse_pem_chain(&read(dir.path(), &files("swapped.example.test").0));
    assert!(
        stored.unwrap()
            == third
                .get_certificate("swapped.example.test")
                .unwrap()
                .chain_der(),
        "the files hold the new certificate"
    );
}

/// A certificate's three files as a crash can leave them: `chain`, an empty key, metadata
/// without names.
async fn store_files(storage: &dyn Storage, ik: &str, name: &str, chain: &[u8]) {
    for (key, value) in [
        (keys::site_cert(ik, name), chain),
        (keys::site_private_key(ik, name), b"".as_slice()),
        (keys::site_meta(ik, name), b"{}".as_slice()),
    ] {
        storage.store(&key, value).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_on_demand_name_with_unusable_files_gets_a_new_certificate() {
    let pebble = Pebble::start(PebbleOptions::default());
    let storage = Arc::new(MemoryStorage::new());
    let name = "od.example.test";
    let recorder = Arc::new(Recorder::default());
    let manager = Manager::new(
        pebble_config(&pebble, storage.clone())
            .on_demand_allow([name])
            .event_handler(recorder.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let ik = manager.issuer_key().to_string();
    store_files(storage.as_ref(), &ik, name, b"").await;
    let cert = manager
        .certificate_for_handshake(Some(name), &[b"h2"])
        .await
        .unwrap();
    assert_cert_verifies(&pebble, &cert, name);
    assert_eq!(recorder.payloads("stored_cert_corrupt").len(), 1);
    let stored = storage.load(&keys::site_cert(&ik, name)).await.unwrap();
    assert!(
        certmagic::parse_pem_chain(&stored).unwrap() == cert.chain_der(),
        "the new certificate replaced the files"
    );
}

/// Certificate files on disk; locks in this process only. The crash test kills the process that
/// holds a lock on purpose, and is about the files: it would otherwise wait for each killed
/// holder's lock file to go stale (10 s).
#[derive(Debug)]
struct FilesWithLocalLocks {
    files: FileStorage,
    locks: MemoryStorage,
}

#[async_trait]
impl Storage for FilesWithLocalLocks {
    async fn store(&self, key: &str, value: &[u8]) -> certmagic::Result<()> {
        self.files.store(key, value).await
    }
    async fn load(&self, key: &str) -> certmagic::Result<Vec<u8>> {
        self.files.load(key).await
    }
    async fn delete(&self, key: &str) -> certmagic::Result<()> {
        self.files.delete(key).await
    }
    async fn exists(&self, key: &str) -> certmagic::Result<bool> {
        self.files.exists(key).await
    }
    async fn list(&self, prefix: &str, recursive: bool) -> certmagic::Result<Vec<String>> {
        self.files.list(prefix, recursive).await
    }
    async fn stat(&self, key: &str) -> certmagic::Result<KeyInfo> {
        self.files.stat(key).await
    }
    async fn lock(&self, name: &str) -> certmagic::Result<()> {
        self.locks.lock(name).await
    }
    async fn unlock(&self, name: &str) -> certmagic::Result<()> {
        self.locks.unlock(name).await
    }
}

const CRASH_NAME: &str = "crash.example.test";

/// The process the crash test kills: manages the name, then renews it again and again.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by kill_while_renewing_never_leaves_an_unservable_name"]
async fn crash_child() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} (set by the parent)"));
    let storage = Arc::new(FilesWithLocalLocks {
        files: FileStorage::new(env("CM_CRASH_DIR")),
        locks: MemoryStorage::new(),
    });
    let manager = Manager::new(
        certmagic::Config::builder()
            .ca(env("CM_CRASH_CA"))
            .trusted_roots_pem(std::fs::read(env("CM_CRASH_ROOTS")).unwrap())
            .agreed(true)
            .alt_http_port(env("CM_CRASH_HTTP").parse::<u16>().unwrap())
            .alt_tls_alpn_port(env("CM_CRASH_TLS").parse::<u16>().unwrap())
            .listen_host("127.0.0.1")
            .rate_limit(certmagic::RateLimit {
                events: 0,
                window: Duration::ZERO,
            })
            .storage(storage)
            .build()
            .unwrap(),
    )
    .unwrap();
    manager.manage(&[CRASH_NAME]).await.unwrap();
    println!("CRASH-CHILD-READY");
    loop {
        manager.renew(CRASH_NAME).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_while_renewing_never_leaves_an_unservable_name() {
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let roots = pebble.scratch_dir().join("api-ca.pem");
    let storage = || {
        Arc::new(FilesWithLocalLocks {
            files: FileStorage::new(dir.path()),
            locks: MemoryStorage::new(),
        }) as Arc<dyn Storage>
    };
    let trials = 50;
    let (mut obtained_anew, started) = (0, Instant::now());
    for trial in 0..trials {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--ignored", "--nocapture"])
            .env("CM_CRASH_DIR", dir.path())
            .env("CM_CRASH_CA", &pebble.directory_url)
            .env("CM_CRASH_ROOTS", &roots)
            .env("CM_CRASH_HTTP", pebble.http_port.to_string())
            .env("CM_CRASH_TLS", pebble.tls_port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.contains("CRASH-CHILD-READY"))
        });
        assert!(
            tokio::time::timeout(Duration::from_secs(60), ready)
                .await
                .unwrap()
                .unwrap(),
            "trial {trial}: the child did not start"
        );
        // Somewhere in a renewal (each takes a few hundred milliseconds here).
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..600))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let orders = pebble.orders_created();
        let manager = Manager::new(pebble_config(&pebble, storage()).build().unwrap()).unwrap();
        tokio::time::timeout(Duration::from_secs(60), manager.manage(&[CRASH_NAME]))
            .await
            .unwrap_or_else(|_| panic!("trial {trial}: the next start hangs"))
            .unwrap_or_else(|e| panic!("trial {trial}: the next start fails: {e}"));
        let cert = manager.get_certificate(CRASH_NAME).unwrap();
        assert_cert_verifies(&pebble, &cert, CRASH_NAME);
        let served = handshake(&pebble, manager.server_config().unwrap(), CRASH_NAME).await;
        assert_eq!(served[0].as_ref(), cert.chain_der()[0].as_ref());
        if pebble.orders_created() > orders {
            obtained_anew += 1;
        }
        manager.shutdown().await.unwrap();
    }
    println!(
        "{trials} kills while renewing: every next start served the name ({obtained_anew} replaced unusable files) in {:?}",
        started.elapsed()
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("locks")).map_or(0, |d| d.count()),
        0,
        "no lock file on disk (locks are in memory here)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn renew_of_a_name_with_unusable_files_obtains_anew() {
    let pebble = Pebble::start(PebbleOptions::default());
    let storage = Arc::new(MemoryStorage::new());
    let manager = Manager::new(pebble_config(&pebble, storage.clone()).build().unwrap()).unwrap();
    let name = "renew-torn.example.test";
    let ik = manager.issuer_key().to_string();
    store_files(storage.as_ref(), &ik, name, b"not pem").await;
    let cert = manager.renew(name).await.unwrap();
    assert_cert_verifies(&pebble, &cert, name);
    let err = manager.renew("missing.example.test").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}
