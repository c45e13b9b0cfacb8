//! A real `redis-server` (Debian's `redis-server`) on a free loopback port, in a temporary
//! folder, with a password and durable writes (append-only file, fsync on every write), so a
//! restart keeps everything that was stored. Optionally TLS only (`rediss://`), with a CA of
//! its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{binary, free_ports, wait_for_port, write};

/// The password every test Redis requires (`requirepass`).
pub const PASSWORD: &str = "s3cret-redis-pw";

/// A running `redis-server`; stopped on drop.
#[derive(Debug)]
pub struct Redis {
    /// The port it listens on, on 127.0.0.1 (TLS only when started with [`Redis::start_tls`]).
    pub port: u16,
    /// For TLS: the PEM of the CA that signed the server's certificate.
    pub ca_pem: Option<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts a plain-TCP Redis.
    pub fn start() -> Redis {
        Self::start_with(false)
    }

    /// Starts a Redis that speaks TLS only, with a certificate for 127.0.0.1 and localhost.
    pub fn start_tls() -> Redis {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let [port] = free_ports();
        let mut conf = format!(
            "bind 127.0.0.1\nprotected-mode no\ndir {}\nappendonly yes\nappendfsync always\nsave \"\"\nrequirepass {PASSWORD}\nlogfile \"\"\n",
            dir.path().display()
        );
        let mut ca_pem = None;
        if tls {
            let (ca, cert, key) = super::api_certificates().clone();
            write(dir.path(), "ca.pem", &ca);
            write(dir.path(), "cert.pem", &cert);
            write(dir.path(), "key.pem", &key);
            let d = dir.path().display();
            conf.push_str(&format!(
                "port 0\ntls-port {port}\ntls-cert-file {d}/cert.pem\ntls-key-file {d}/key.pem\ntls-ca-cert-file {d}/ca.pem\ntls-auth-clients no\n"
            ));
            ca_pem = Some(ca);
        } else {
            conf.push_str(&format!("port {port}\n"));
        }
        write(dir.path(), "redis.conf", &conf);
        let mut redis = Redis {
            port,
            ca_pem,
            child: None,
            dir,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("redis.log"))
            .expect("log");
        let child = Command::new(binary("redis-server"))
            .arg(self.dir.path().join("redis.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }

    /// The URL of this server, with its password (`redis://:pw@127.0.0.1:port` or `rediss://…`).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// Stops the server abruptly (SIGKILL): what it acknowledged is on disk already.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs `redis-cli` against it (plain TCP only) and returns its stdout; panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(binary("redis-cli"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["--no-auth-warning", "-a", PASSWORD])
            .args(args)
            .output()
            .expect("run redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The folder it keeps its data and log in.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
