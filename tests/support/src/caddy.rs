//! Debian's Caddy (Go CertMagic inside) as a peer for interop tests and benchmarks: started
//! from a JSON config with its data, config and home folders in a scratch folder (nothing
//! reaches the user's home), logging to a file there; stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `caddy run`.
#[derive(Debug)]
pub struct Caddy {
    child: Child,
    log: PathBuf,
}

impl Caddy {
    /// Writes `config` to `scratch/caddy.json` and runs Caddy on it.
    pub fn start(config: &serde_json::Value, scratch: &Path) -> Caddy {
        let config_path = scratch.join("caddy.json");
        std::fs::write(&config_path, config.to_string()).expect("write caddy.json");
        let log = scratch.join("caddy.log");
        let file = std::fs::File::create(&log).expect("caddy log");
        let child = Command::new("caddy")
            .args(["run", "--config"])
            .arg(&config_path)
            .env("XDG_DATA_HOME", scratch.join("data"))
            .env("XDG_CONFIG_HOME", scratch.join("config"))
            .env("HOME", scratch)
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start caddy (apt-get install caddy)");
        Caddy { child, log }
    }

    /// Its process id (for CPU time and memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Caddy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
