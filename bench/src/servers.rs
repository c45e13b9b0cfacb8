//! The servers under test, each a process of its own: ours (`bench-server`) and Caddy,
//! configured for the same work against the same CA, and the floor (`bench-floor`): a minimal
//! static tokio-rustls server with one certificate. All are killed on drop.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use certmagic_testsupport::caddy::Caddy;

use crate::ServerSpec;

/// Which engine a figure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Ours,
    Caddy,
    /// A minimal static tokio-rustls server (`src/bin/bench_floor.rs`).
    Floor,
}

impl Engine {
    pub fn label(self) -> &'static str {
        match self {
            Engine::Ours => "ours",
            Engine::Caddy => "caddy",
            Engine::Floor => "floor",
        }
    }
}

/// The ACME CA both servers use.
#[derive(Debug, Clone)]
pub struct Ca {
    pub directory_url: String,
    pub api_root_pem: String,
    pub api_root_file: PathBuf,
    pub http_port: u16,
    pub tls_port: u16,
}

/// What one server run is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Work {
    /// Names managed from the start (loaded from storage or obtained).
    pub names: Vec<String>,
    /// Names handed to our manager at once (0: all); Caddy hands them all to its job queue.
    pub concurrency: usize,
    /// On-demand TLS behind this ask URL.
    pub ask: Option<String>,
    /// `[events, window ms]` for ours; `None`: the library's default policy. Caddy's is fixed
    /// (10 per 10 s).
    pub rate_limit: Option<[u64; 2]>,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub engine: Engine,
    pub port: u16,
    pub started: Instant,
    pid: u32,
    ours: Option<Child>,
    _caddy: Option<Caddy>,
    /// What ours printed, with when it was read.
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    /// Wall-clock time of the spawn, to read Caddy's log timestamps against.
    spawned_at: SystemTime,
    log: Option<PathBuf>,
}

impl Server {
    /// Starts `engine` serving on `port` with `storage` for `work`; `scratch` is its own folder.
    pub fn start(
        engine: Engine,
        ca: &Ca,
        port: u16,
        storage: &Path,
        scratch: &Path,
        work: &Work,
    ) -> Server {
        std::fs::create_dir_all(scratch).expect("scratch");
        match engine {
            Engine::Ours => Self::start_ours(ca, port, storage, scratch, work),
            Engine::Caddy => Self::start_caddy(ca, port, storage, scratch, work),
            Engine::Floor => panic!("the floor serves one certificate: Server::start_floor"),
        }
    }

    /// Starts the floor serving `chain_pem` with `key_pem` (files) on `port`.
    pub fn start_floor(chain_pem: &Path, key_pem: &Path, port: u16, scratch: &Path) -> Server {
        std::fs::create_dir_all(scratch).expect("scratch");
        let log = std::fs::File::create(scratch.join("server.log")).expect("log");
        let port_arg = port.to_string();
        let args = [
            chain_pem.as_os_str(),
            key_pem.as_os_str(),
            std::ffi::OsStr::new(&port_arg),
        ];
        Self::spawn_child(Engine::Floor, "bench-floor", &args, port, log)
    }

    /// Spawns `binary` (built beside this one) with `args`, serving on `port`: what it prints
    /// on stdout is kept with when it was read, its stderr goes to `log`.
    fn spawn_child(
        engine: Engine,
        binary: &str,
        args: &[&std::ffi::OsStr],
        port: u16,
        log: std::fs::File,
    ) -> Server {
        let (started, spawned_at) = (Instant::now(), SystemTime::now());
        let mut child = Command::new(sibling_binary(binary))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().expect("lines").push((Instant::now(), line));
            }
        });
        Server {
            engine,
            port,
            started,
            pid: child.id(),
            ours: Some(child),
            _caddy: None,
            lines,
            spawned_at,
            log: None,
        }
    }

    fn start_ours(ca: &Ca, port: u16, storage: &Path, scratch: &Path, work: &Work) -> Server {
        let spec = ServerSpec {
            ca: ca.directory_url.clone(),
            ca_api_root_pem: ca.api_root_pem.clone(),
            storage: storage.to_path_buf(),
            port,
            http_port: ca.http_port,
            tls_port: ca.tls_port,
            rate_limit: work.rate_limit,
            ask: work.ask.clone(),
            names: work.names.clone(),
            concurrency: work.concurrency,
        };
        let spec_path = scratch.join("spec.json");
        std::fs::write(&spec_path, serde_json::to_vec(&spec).expect("spec")).expect("spec");
        let log = std::fs::File::create(scratch.join("server.log")).expect("log");
        Self::spawn_child(
            Engine::Ours,
            "bench-server",
            &[spec_path.as_os_str()],
            port,
            log,
        )
    }

    fn start_caddy(ca: &Ca, port: u16, storage: &Path, scratch: &Path, work: &Work) -> Server {
        let [http_port] = certmagic_testsupport::free_ports();
        let issuer = serde_json::json!({
            "module": "acme",
            "ca": ca.directory_url,
            "trusted_roots_pem_files": [ca.api_root_file],
            "challenges": {
                "bind_host": "127.0.0.1",
                "http": {"alternate_port": ca.http_port},
                "tls-alpn": {"alternate_port": ca.tls_port}
            }
        });
        let mut tls = serde_json::json!({
            "automation": {"policies": [{"issuers": [issuer]}]}
        });
        if let Some(ask) = &work.ask {
            tls["automation"]["on_demand"] = serde_json::json!({ "ask": ask });
            tls["automation"]["policies"][0]["on_demand"] = true.into();
        }
        if !work.names.is_empty() {
            tls["certificates"] = serde_json::json!({ "automate": work.names });
        }
        let config = serde_json::json!({
            "admin": {"disabled": true},
            // Certificates entering the cache are logged (debug) so that start-up can be timed.
            "logging": {"logs": {
                "default": {"level": "WARN", "exclude": ["tls.cache"]},
                "cache": {"level": "DEBUG", "include": ["tls.cache"]}
            }},
            "storage": {"module": "file_system", "root": storage},
            "apps": {
                "http": {"http_port": http_port, "https_port": port, "servers": {"s": {
                    "listen": [format!("127.0.0.1:{port}")],
                    "automatic_https": {"disable_redirects": true},
                    "tls_connection_policies": [{}],
                    "routes": [{"handle": [{"handler": "static_response", "body": "caddy"}]}]
                }}},
                "tls": tls
            }
        });
        let (started, spawned_at) = (Instant::now(), SystemTime::now());
        let caddy = Caddy::start(&config, scratch);
        Server {
            engine: Engine::Caddy,
            port,
            started,
            pid: caddy.pid(),
            ours: None,
            _caddy: Some(caddy),
            lines: Default::default(),
            spawned_at,
            log: Some(scratch.join("caddy.log")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The first line ours printed that starts with `prefix`, waiting up to `within`.
    pub async fn wait_line(&self, prefix: &str, within: Duration) -> Option<String> {
        self.wait_line_at(prefix, within).await.map(|(_, l)| l)
    }

    async fn wait_line_at(&self, prefix: &str, within: Duration) -> Option<(Instant, String)> {
        let start = Instant::now();
        loop {
            if let Some((at, l)) = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .find(|(_, l)| l.starts_with(prefix))
            {
                return Some((*at, l[prefix.len()..].trim().to_string()));
            }
            if start.elapsed() > within || self.engine == Engine::Caddy {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Time from spawn until the server held a certificate for each of `count` names in
    /// memory, by its own account: ours prints `ready` once `manage` returned; Caddy logs
    /// "added certificate to cache" for each (the last one's timestamp counts).
    pub async fn wait_loaded(&self, count: usize, within: Duration) -> Option<Duration> {
        let Some(log) = &self.log else {
            return self
                .wait_line_at("ready", within)
                .await
                .map(|(at, _)| at.duration_since(self.started));
        };
        let start = Instant::now();
        loop {
            let text = tokio::fs::read_to_string(log).await.unwrap_or_default();
            let stamps: Vec<f64> = text
                .lines()
                .filter(|l| l.contains("\"added certificate to cache\""))
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["ts"].as_f64())
                .collect();
            if stamps.len() >= count {
                let last = stamps.iter().copied().fold(0.0, f64::max);
                let spawned = self
                    .spawned_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64();
                return Some(Duration::from_secs_f64((last - spawned).max(0.0)));
            }
            if start.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.ours {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A binary built beside this one (`target/<profile>/`).
fn sibling_binary(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    me.with_file_name(name)
}

/// `caddy version`, first word.
pub fn caddy_version() -> String {
    Command::new("caddy")
        .arg("version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into())
}
