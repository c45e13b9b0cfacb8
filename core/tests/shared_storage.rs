//! Instances in separate processes sharing one storage: two processes managing the same name
//! place one order, and a challenge presented by one is answered by the other (distributed
//! solving). The tests re-run their own binary as the child processes.

mod common;

use std::process::Command;
use std::sync::Arc;

use certmagic::{FileStorage, Manager};
use common::*;

/// Runs in a child process (see below); does nothing when run as a normal test.
#[test]
fn child_process_entry() {
    let Ok(spec) = std::env::var("CERTMAGIC_TEST_CHILD") else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    init_tracing();
    let mut builder = certmagic::Config::builder();
    if spec["mode"] == "on_demand" {
        builder = builder.on_demand_allow([spec["name"].as_str().unwrap()]);
    }
    let config = builder
        .ca(spec["directory_url"].as_str().unwrap())
        .trusted_roots_pem(spec["api_ca_pem"].as_str().unwrap().as_bytes())
        .agreed(true)
        .alt_http_port(spec["http_port"].as_u64().unwrap() as u16)
        .alt_tls_alpn_port(spec["tls_port"].as_u64().unwrap() as u16)
        .listen_host("127.0.0.1")
        .storage(Arc::new(FileStorage::new(
            spec["storage"].as_str().unwrap(),
        )))
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let name = spec["name"].as_str().unwrap();
    if spec["mode"] == "serve" {
        return serve_until_stdin_closes(manager, name, &spec);
    }
    if spec["mode"] == "on_demand" {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cert = rt
            .block_on(manager.certificate_for_handshake(Some(name), &[]))
            .unwrap();
        println!("SERIAL={}", cert.serial_hex());
        return;
    }
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
                .args([
                    "--exact",
                    "child_process_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CERTMAGIC_TEST_CHILD", spec.to_string())
                .output_async()
        })
        .collect();
    let serials: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "child failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("SERIAL="))
                .expect("serial printed")
                .to_string()
        })
        .collect();
    assert_eq!(
        serials[0], serials[1],
        "both processes serve the same certificate"
    );
    assert_eq!(
        pebble.orders_created(),
        1,
        "one order in all:\n{}",
        pebble.log()
    );
    // What the processes left in storage is a certificate that verifies, and no lock.
    let storage = Arc::new(FileStorage::new(dir.path()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let manager = Manager::new(pebble_config(&pebble, storage).build().unwrap()).unwrap();
    rt.block_on(manager.manage(&[name])).unwrap();
    let cert = manager.get_certificate(name).unwrap();
    assert_eq!(cert.serial_hex(), serials[0]);
    assert_cert_verifies(&pebble, &cert, name);
    assert!(
        std::fs::read_dir(dir.path().join("locks"))
            .unwrap()
            .next()
            .is_none(),
        "no lock left behind"
    );
}

#[test]
fn another_process_serves_an_on_demand_certificate_from_storage() {
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        ..PebbleOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let name = "on-demand-shared.example.test";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let manager = Manager::new(
        pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .on_demand_allow([name])
            .build()
            .unwrap(),
    )
    .unwrap();
    let ours = rt
        .block_on(manager.certificate_for_handshake(Some(name), &[]))
        .unwrap();
    let mut spec = pebble.describe();
    spec["storage"] = dir.path().to_str().unwrap().into();
    spec["name"] = name.into();
    spec["mode"] = "on_demand".into();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CERTMAGIC_TEST_CHILD", spec.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = stdout
        .lines()
        .find_map(|l| l.split_once("SERIAL=").map(|(_, serial)| serial.trim()))
        .unwrap_or_else(|| {
            panic!(
                "no serial: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(
        theirs,
        ours.serial_hex(),
        "the other process served the stored certificate"
    );
    assert_eq!(pebble.orders_created(), 1, "no new order");
}

/// Child mode "serve": the one-liner on Pebble's challenge ports, until the parent closes stdin.
fn serve_until_stdin_closes(manager: Manager, name: &str, spec: &serde_json::Value) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let options = certmagic::ServeOptions {
        http_port: spec["http_port"].as_u64().unwrap() as u16,
        https_port: spec["tls_port"].as_u64().unwrap() as u16,
        listen: "127.0.0.1".parse().unwrap(),
        redirect_http: true,
    };
    let app = hyper::service::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
            bytes::Bytes::from("b"),
        )))
    });
    let m = manager.clone();
    let name = name.to_string();
    let server =
        rt.spawn(async move { certmagic::serve(&m, &[name.as_str()], app, options).await });
    rt.block_on(async {
        while manager.cache().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    println!("READY");
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
    manager.shutdown_sync().unwrap();
    rt.block_on(server).unwrap().unwrap();
}

/// A challenge presented by this process is answered by another process's server, which finds
/// it in the shared storage (both HTTP-01 and TLS-ALPN-01).
#[tokio::test(flavor = "multi_thread")]
async fn another_process_answers_our_challenges_from_storage() {
    use std::io::BufRead;
    let pebble = Pebble::start(PebbleOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let mut spec = pebble.describe();
    spec["storage"] = dir.path().to_str().unwrap().into();
    spec["name"] = "b-serves.example.test".into();
    spec["mode"] = "serve".into();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CERTMAGIC_TEST_CHILD", spec.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // Reads the child's output to the end, so it never writes into a closed pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line == "READY" {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the serving process did not get ready");

    // This process holds no challenge port: the other process's server has them.
    for (challenge, name) in [
        (certmagic::ChallengeType::Http01, "a-http.example.test"),
        (certmagic::ChallengeType::TlsAlpn01, "a-alpn.example.test"),
    ] {
        let config = pebble_config(&pebble, Arc::new(FileStorage::new(dir.path())))
            .challenge_preference([challenge])
            .build()
            .unwrap();
        let manager = Manager::new(config).unwrap();
        manager
            .manage(&[name])
            .await
            .unwrap_or_else(|e| panic!("{challenge}: {e}"));
        assert_cert_verifies(&pebble, &manager.get_certificate(name).unwrap(), name);
        manager.shutdown().await.unwrap();
    }
    assert_eq!(
        pebble.orders_created(),
        3,
        "one order each, no fallback needed"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

trait SpawnOutput {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnOutput for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
