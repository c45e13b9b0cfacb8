//! Two processes managing the same name on one storage: one order only, the other loads it.
//! The test re-runs its own binary as the two child processes.

mod common;

use std::process::Command;
use std::sync::Arc;

use certmagic::{FileStorage, Manager};
use common::*;

/// Runs in a child process (see below); does nothing when run as a normal test.
#[test]
fn child_process_entry() {
    let Ok(spec) = std::env::var("CERTMAGIC_TEST_CHILD") else { return };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    init_tracing();
    let config = certmagic::Config::builder()
        .ca(spec["directory_url"].as_str().unwrap())
        .trusted_roots_pem(spec["api_ca_pem"].as_str().unwrap().as_bytes())
        .agreed(true)
        .alt_http_port(spec["http_port"].as_u64().unwrap() as u16)
        .alt_tls_alpn_port(spec["tls_port"].as_u64().unwrap() as u16)
        .listen_host("127.0.0.1")
        .storage(Arc::new(FileStorage::new(spec["storage"].as_str().unwrap())))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let name = spec["name"].as_str().unwrap();
    manager.manage_sync(&[name]).unwrap();
    let cert = manager.get_certificate(name).unwrap();
    println!("SERIAL={}", cert.serial_hex());
    manager.shutdown_sync().unwrap();
}

#[test]
fn two_processes_one_order() {
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let name = "shared.example.test";
    let mut spec = pebble.describe();
    spec["storage"] = dir.path().to_str().unwrap().into();
    spec["name"] = name.into();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_process_entry", "--nocapture", "--test-threads=1"])
                .env("CERTMAGIC_TEST_CHILD", spec.to_string())
                .output_async()
        })
        .collect();
    let serials: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            stdout.lines().find_map(|l| l.strip_prefix("SERIAL=")).expect("serial printed").to_string()
        })
        .collect();
    assert_eq!(serials[0], serials[1], "both processes serve the same certificate");
    assert_eq!(pebble.orders_created(), 1, "one order in all:\n{}", pebble.log());
    // What the processes left in storage is a certificate that verifies, and no lock.
    let storage = Arc::new(FileStorage::new(dir.path()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let manager = Manager::new(pebble_config(&pebble, storage).build().unwrap()).unwrap();
    rt.block_on(manager.manage(&[name])).unwrap();
    let cert = manager.get_certificate(name).unwrap();
    assert_eq!(cert.serial_hex(), serials[0]);
    assert_cert_verifies(&pebble, &cert, name);
    assert!(std::fs::read_dir(dir.path().join("locks")).unwrap().next().is_none(), "no lock left behind");
}

trait SpawnOutput {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnOutput for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}
