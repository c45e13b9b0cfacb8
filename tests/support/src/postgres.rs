//! A real PostgreSQL server (Debian's `postgresql`) in a cluster created for the test in a
//! temporary folder (`initdb`, then `postgres` in the foreground) on a free loopback port, with
//! password authentication. PostgreSQL refuses to run as root: when the tests are root (CI),
//! the cluster belongs to the `postgres` system user the package creates and every server
//! command runs as that user through `setpriv`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_ports, wait_for_port, write};

/// The role and password of every test cluster.
pub const USER: &str = "certmagic";
/// The password of [`USER`].
pub const PASSWORD: &str = "s3cret-pg-pw";
/// The database created for the tests.
pub const DATABASE: &str = "certmagic";

/// A running PostgreSQL; stopped on drop.
#[derive(Debug)]
pub struct Postgres {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Postgres {
    /// Creates a cluster and starts it; the database [`DATABASE`] exists.
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let [port] = free_ports();
        write(dir.path(), "pwfile", PASSWORD);
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster folder to postgres");
        }
        let out = as_server_user(&pg_bin("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", dir.path().join("pwfile").display()))
            .output()
            .expect("run initdb (apt-get install postgresql)");
        assert!(out.status.success(), "initdb: {out:?}");
        let mut pg = Postgres {
            port,
            child: None,
            dir,
        };
        pg.spawn();
        pg.psql("postgres", &format!("CREATE DATABASE {DATABASE}"));
        pg
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .expect("log");
        let child = as_server_user(&pg_bin("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        wait_for_port(self.port, "postgres");
        // The port opens before sessions are accepted ("the database system is starting up",
        // seen on a loaded machine): wait for pg_isready to say it accepts them.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(pg_bin("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not accept sessions within 60 s (log: {})",
                self.dir.path().join("postgres.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `postgres://certmagic:…@127.0.0.1:port/certmagic`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// Runs one SQL command with `psql` in `database`; returns its unaligned, tuples-only
    /// output. Panics on failure.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(pg_bin("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server (fast shutdown: clients are disconnected, committed data kept).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The folder of the cluster and its log.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program` as the `postgres` user when the tests are root: `setpriv` executes it in its own
/// process, so the child's pid is the server's (signals reach it).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL server program: Debian keeps them in `/usr/lib/postgresql/<major>/bin`.
fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| PathBuf::from(name))
}
