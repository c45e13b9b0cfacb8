//! Storage locks under cancellation and load: the account-registration lock is released when
//! registration is abandoned (a slow CA, an on-demand obtain timing out), and blocking lock
//! callbacks (C, Python) cannot take every thread the lock holders need.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use certmagic::storage::foreign::{Blocking, BlockingStorage};
use certmagic::{Config, Error, ErrorKind, FileStorage, KeyInfo, Manager, Storage};
use common::*;

/// A TCP proxy in front of Pebble's ACME port that, while `stalled`, accepts connections and
/// forwards nothing: a CA that does not answer.
struct StallingProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn stalling_proxy(target: u16) -> StallingProxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let flag = flag.clone();
            tokio::spawn(async move {
                if flag.load(Ordering::SeqCst) {
                    // Hold the connection open, answering nothing, until the client gives up.
                    let mut sink = [0u8; 1024];
                    while let Ok(n) = tokio::io::AsyncReadExt::read(&mut inbound, &mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                    return;
                }
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    StallingProxy {
        port,
        stalled,
        task,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_account_registration_releases_its_lock() {
    let pebble = Pebble::start(PebbleOptions::default());
    let acme_port: u16 = pebble
        .directory_url
        .trim_start_matches("https://127.0.0.1:")
        .trim_end_matches("/dir")
        .parse()
        .unwrap();
    let proxy = stalling_proxy(acme_port).await;
    proxy.stalled.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
        .ca(format!("https://127.0.0.1:{}/dir", proxy.port))
        .on_demand_allow(["slow.example.test"])
        .on_demand_obtain_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();

    // The CA does not answer: the on-demand obtain gives up while registering the account.
    let err = manager
        .certificate_for_handshake(Some("slow.example.test"), &[b"h2"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");

    // The CA is back: the next obtain registers and succeeds within seconds (the account lock
    // was released, not left held and refreshed for ever).
    proxy.stalled.store(false, Ordering::SeqCst);
    let cert = tokio::time::timeout(Duration::from_secs(30), manager.obtain("next.example.test"))
        .await
        .expect("the account lock is free again")
        .unwrap();
    assert_cert_verifies(&pebble, &cert, "next.example.test");
    let locks: Vec<_> = std::fs::read_dir(dir.path().join("locks"))
        .map(|d| d.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(locks.is_empty(), "no lock left behind: {locks:?}");
}

/// A storage whose methods block, as a C or Python one does: values in memory, and locks a
/// `lock` call waits for on a condition variable.
#[derive(Debug, Default)]
struct BlockingMemory {
    values: Mutex<HashMap<String, Vec<u8>>>,
    held: Mutex<HashSet<String>>,
    released: Condvar,
}

impl BlockingStorage for BlockingMemory {
    fn store(&self, key: &str, value: &[u8]) -> certmagic::Result<()> {
        self.values
            .lock()
            .unwrap()
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }
    fn load(&self, key: &str) -> certmagic::Result<Vec<u8>> {
        self.values
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::NotFound, key.to_string()))
    }
    fn delete(&self, key: &str) -> certmagic::Result<()> {
        self.values
            .lock()
            .unwrap()
            .retain(|k, _| k != key && !k.starts_with(&format!("{key}/")));
        Ok(())
    }
    fn exists(&self, key: &str) -> certmagic::Result<bool> {
        Ok(self.values.lock().unwrap().contains_key(key))
    }
    fn list(&self, prefix: &str, _: bool) -> certmagic::Result<Vec<String>> {
        Ok(self
            .values
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn stat(&self, key: &str) -> certmagic::Result<KeyInfo> {
        Err(Error::new(ErrorKind::NotFound, key.to_string()))
    }
    fn lock(&self, name: &str) -> certmagic::Result<()> {
        let mut held = self.held.lock().unwrap();
        while held.contains(name) {
            held = self.released.wait(held).unwrap();
        }
        held.insert(name.to_string());
        Ok(())
    }
    fn unlock(&self, name: &str) -> certmagic::Result<()> {
        self.held.lock().unwrap().remove(name);
        self.released.notify_all();
        Ok(())
    }
}

#[test]
fn two_instances_with_a_thousand_names_on_blocking_locks_both_finish() {
    const NAMES: usize = 1000;
    let storage = Arc::new(Blocking::new(BlockingMemory::default()));
    let issuer = Arc::new(LocalIssuer::new(Duration::from_secs(90 * 24 * 3600)));
    let names: Vec<String> = (0..NAMES).map(|i| format!("n{i}.locks.test")).collect();
    let instance = || {
        let config = Config::builder()
            .storage(storage.clone() as Arc<dyn Storage>)
            .build()
            .unwrap();
        Manager::with_issuer(config, issuer.clone()).unwrap()
    };
    let (a, b) = (instance(), instance());
    let started = std::time::Instant::now();
    let runs: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|m| {
            let names = names.clone();
            std::thread::spawn(move || m.manage_sync(&names))
        })
        .collect();
    // A watchdog instead of a hang: both must finish well within this.
    let deadline = started + Duration::from_secs(120);
    for run in runs {
        while !run.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the instances did not finish (lock callbacks starved the holders)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        run.join().unwrap().unwrap();
    }
    for name in &names {
        assert!(a.get_certificate(name).is_some() && b.get_certificate(name).is_some());
    }
    assert_eq!(
        issuer.count(),
        NAMES,
        "one certificate per name for both instances"
    );
    assert!(
        storage.inner().held.lock().unwrap().is_empty(),
        "every lock released"
    );
}
