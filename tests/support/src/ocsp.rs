//! A real OCSP responder for tests: `openssl ocsp` answering for one CA (Pebble's intermediate,
//! whose key Pebble's management API hands out, or a CA of the test's own), from an OpenSSL
//! index file the test writes. OpenSSL 3.0 reads its index only at start, so a status change
//! restarts the responder on the same port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use crate::free_ports;

/// A certificate's line in the responder's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `V`: valid.
    Good,
    /// `R` with an OpenSSL reason name (`keyCompromise`, `superseded`, `unspecified`, …).
    Revoked(&'static str),
}

/// `openssl ocsp` as a server on 127.0.0.1; stopped on drop.
#[derive(Debug)]
pub struct OcspResponder {
    dir: tempfile::TempDir,
    port: u16,
    next_update_minutes: Option<u32>,
    entries: Vec<(String, Status)>,
    child: Option<Child>,
    /// Requests answered by earlier runs (a restart starts a new log).
    earlier_requests: usize,
}

impl OcspResponder {
    /// A free port for a responder, known before the CA whose certificates name it starts.
    pub fn pick_port() -> u16 {
        let [port] = free_ports();
        port
    }

    /// Starts a responder on `port` signing with `signer` (the CA itself, or a certificate it
    /// issued for OCSP signing) for certificates issued by `ca`. Responses carry a nextUpdate
    /// `next_update_minutes` after thisUpdate, or none (then clients ask every time).
    pub fn start(
        port: u16,
        ca_pem: &str,
        signer_pem: &str,
        signer_key_pem: &str,
        next_update_minutes: Option<u32>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, pem) in [
            ("ca.pem", ca_pem),
            ("signer.pem", signer_pem),
            ("signer.key", signer_key_pem),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write responder file");
        }
        let mut responder = Self {
            dir,
            port,
            next_update_minutes,
            entries: Vec::new(),
            child: None,
            earlier_requests: 0,
        };
        responder.restart();
        responder
    }

    /// A responder on `port` for the certificates of `pebble` (its intermediate signs).
    pub fn for_pebble(pebble: &crate::Pebble, port: u16, next_update_minutes: Option<u32>) -> Self {
        let intermediate = pebble.intermediate_pem(0);
        Self::start(
            port,
            &intermediate,
            &intermediate,
            &pebble.intermediate_key_pem(0),
            next_update_minutes,
        )
    }

    /// The URL certificates name (Pebble's `ocspResponderURL`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Sets the status of the certificate with this serial (hex, any case, leading zeros or
    /// not) and restarts the responder so that it answers with it.
    pub fn set(&mut self, serial_hex: &str, status: Status) {
        let serial = index_serial(serial_hex);
        self.entries.retain(|(s, _)| *s != serial);
        self.entries.push((serial, status));
        self.restart();
    }

    /// Stops answering (connections are refused) until [`OcspResponder::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.earlier_requests += count_requests(&self.log_path());
        }
    }

    /// Starts answering again.
    pub fn resume(&mut self) {
        self.restart();
    }

    /// How many OCSP requests the responder has received so far (all runs).
    pub fn requests(&self) -> usize {
        let current = if self.child.is_some() {
            count_requests(&self.log_path())
        } else {
            0
        };
        self.earlier_requests + current
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("responder.log")
    }

    fn restart(&mut self) {
        self.stop();
        let index: String = self
            .entries
            .iter()
            .map(|(serial, status)| match status {
                // Expiry far ahead; the subject is not used for lookups.
                Status::Good => format!("V\t491231235959Z\t\t{serial}\tunknown\t/CN=test\n"),
                Status::Revoked(reason) => format!(
                    "R\t491231235959Z\t{}Z,{reason}\t{serial}\tunknown\t/CN=test\n",
                    revocation_time()
                ),
            })
            .collect();
        let dir = self.dir.path();
        std::fs::write(dir.join("index.txt"), index).expect("write index");
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let mut cmd = Command::new("openssl");
        cmd.arg("ocsp")
            .args(["-port", &self.port.to_string()])
            .arg("-index")
            .arg(dir.join("index.txt"))
            .arg("-CA")
            .arg(dir.join("ca.pem"))
            .arg("-rsigner")
            .arg(dir.join("signer.pem"))
            .arg("-rkey")
            .arg(dir.join("signer.key"))
            // Keep serving after a request it cannot parse.
            .arg("-ignore_err");
        if let Some(minutes) = self.next_update_minutes {
            cmd.args(["-nmin", &minutes.to_string()]);
        }
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start openssl ocsp (apt-get install openssl)");
        self.child = Some(child);
        // Not by connecting: an empty connection hangs OpenSSL 3.0's responder for good.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .contains("waiting for OCSP client connections")
        {
            assert!(
                Instant::now() < deadline,
                "openssl ocsp did not start on port {}: {}",
                self.port,
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The responder's folder (its CA, signer and index files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// OpenSSL looks serials up as `BN_bn2hex` prints them: upper case, whole bytes, no leading
/// zero bytes.
fn index_serial(hex: &str) -> String {
    let digits = hex.trim().trim_start_matches("0x").trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    padded.to_ascii_uppercase()
}

/// One minute ago as `YYMMDDHHMMSS` (UTC), OpenSSL's index time format without the `Z`.
fn revocation_time() -> String {
    let out = Command::new("date")
        .args(["-u", "-d", "1 minute ago", "+%y%m%d%H%M%S"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn count_requests(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Received request"))
        .count()
}
