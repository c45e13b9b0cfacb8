//! What every workload shares: the sizes of a run ([`Plan`]), the CA and the scratch folder
//! ([`Bench`]), the storage of certificates that several workloads read ([`Stored`]), and the
//! "ask" endpoint both engines call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic_testsupport::{Pebble, PebbleOptions, free_ports};

use crate::report::Row;
use crate::servers::{Ca, Engine, Server};
use crate::{client, procfs, store_gen};

/// Sizes of every workload.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    /// Runs of each engine per workload (alternating).
    pub rounds: usize,
    /// Runs of each engine in the on-demand workload, and new names per run and mode
    /// (sequential, concurrent).
    pub on_demand_runs: usize,
    pub on_demand_names: usize,
    pub on_demand_concurrency: usize,
    /// Names of the managed-issuance workload, and names handed over at once.
    pub issuance_names: usize,
    pub issuance_rounds: usize,
    pub issuance_concurrency: usize,
    /// Storage sizes of the cold-start workload (both engines); the first one also runs the
    /// cached-handshake workload.
    pub cold_sizes: [usize; 2],
    /// The largest storage for our memory-per-certificate figure (ours only).
    pub memory_max: usize,
    /// Full handshakes per run, over `cold_sizes[0]` names, and connections at once.
    pub cached_handshakes: usize,
    pub cached_connections: usize,
    /// Connections at once while probing that every name is served.
    pub probe_connections: usize,
    /// Stored certificates of the on-demand restart workload, and its concurrent mode.
    pub restart_sizes: [usize; 2],
    pub restart_concurrency: usize,
}

impl Plan {
    pub fn from_env() -> Plan {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut plan = Self::sized(quick);
        // BENCH_MEMORY_MAX=0 skips the largest (ours-only) storage.
        if let Some(max) = std::env::var("BENCH_MEMORY_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            plan.memory_max = max;
        }
        plan
    }

    fn sized(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                rounds: 2,
                on_demand_runs: 2,
                on_demand_names: 4,
                on_demand_concurrency: 4,
                issuance_names: 20,
                issuance_rounds: 1,
                issuance_concurrency: 10,
                cold_sizes: [200, 1_000],
                memory_max: 2_000,
                cached_handshakes: 600,
                cached_connections: 8,
                probe_connections: 4,
                restart_sizes: [100, 300],
                restart_concurrency: 8,
            }
        } else {
            Plan {
                quick,
                rounds: 2,
                on_demand_runs: 5,
                on_demand_names: 10,
                on_demand_concurrency: 10,
                issuance_names: 200,
                issuance_rounds: 2,
                issuance_concurrency: 10,
                cold_sizes: [1_000, 10_000],
                memory_max: 100_000,
                cached_handshakes: 4_000,
                cached_connections: 8,
                probe_connections: 4,
                restart_sizes: [1_000, 10_000],
                restart_concurrency: 8,
            }
        }
    }
}

/// What every workload shares.
#[derive(Debug)]
pub struct Bench {
    pub plan: Plan,
    pub ca: Ca,
    pub pebble: Pebble,
    pub issuer_key: String,
    pub scratch: tempfile::TempDir,
    pub ask: String,
    pub acme_client: Arc<rustls::ClientConfig>,
    /// Orders placed with Pebbles already stopped.
    pub orders: usize,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// Certificates in storage for a CA that is down, made on first use.
    pub stored: Option<Stored>,
    /// Our first handshake after start (ms, one per run) on an on-demand server over stored
    /// certificates (workload 6), for workload 7's comparison with the floor.
    pub ours_first_handshake: Vec<f64>,
}

impl Bench {
    pub async fn new(plan: Plan, scratch: tempfile::TempDir) -> Bench {
        let (pebble, ca) = start_ca(scratch.path());
        let issuer_key = certmagic::storage::keys::issuer_key(&ca.directory_url);
        let ask = serve_ask().await;
        let acme_client = client::client_config(&[&pebble.root_pem(0)]);
        Bench {
            plan,
            ca,
            pebble,
            issuer_key,
            scratch,
            ask,
            acme_client,
            orders: 0,
            rows: Vec::new(),
            notes: Vec::new(),
            stored: None,
            ours_first_handshake: Vec::new(),
        }
    }

    /// A fresh Pebble for a run that places orders: Pebble's in-memory store slows down as it
    /// fills, and Pebble 2.4 can deadlock (a lock-order inversion between its store and an
    /// authorization) when orders arrive concurrently; the fewer orders it holds, the rarer.
    pub fn restart_ca(&mut self) {
        self.orders += self.pebble.orders_created();
        let (pebble, ca) = start_ca(self.scratch.path());
        self.pebble = pebble;
        self.ca = ca;
        self.issuer_key = certmagic::storage::keys::issuer_key(&self.ca.directory_url);
        self.acme_client = client::client_config(&[&self.pebble.root_pem(0)]);
    }

    pub fn folder(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// A storage folder holding at least `n` certificates (`site<i>.restart.test`, made by a
    /// local test CA) under the issuer key of a CA that is down: a server that tried to order
    /// would fail the handshake, so every handshake is served from storage.
    pub fn stored(&mut self, n: usize) -> &Stored {
        let stored = self.stored.get_or_insert_with(|| {
            let [down] = free_ports();
            let directory_url = format!("https://127.0.0.1:{down}/dir");
            Stored {
                folder: self.scratch.path().join("stored"),
                issuer_key: certmagic::storage::keys::issuer_key(&directory_url),
                ca: Ca {
                    directory_url,
                    ..self.ca.clone()
                },
                test_ca: store_gen::TestCa::new(),
                names: Vec::new(),
            }
        });
        if stored.names.len() < n {
            let t = Instant::now();
            let more: Vec<String> = (stored.names.len()..n)
                .map(|i| format!("site{i}.restart.test"))
                .collect();
            store_gen::generate(
                &stored.folder,
                &stored.issuer_key,
                &stored.test_ca,
                &stored.ca.directory_url,
                &more,
            );
            eprintln!(
                "    generated {} certificates in {:.1} s",
                more.len(),
                t.elapsed().as_secs_f64()
            );
            stored.names.extend(more);
        }
        stored
    }
}

/// Certificates in storage for a CA that is down (see [`Bench::stored`]).
#[derive(Debug)]
pub struct Stored {
    pub folder: PathBuf,
    pub issuer_key: String,
    /// The CA the servers are given: down (nothing listens on its port).
    pub ca: Ca,
    /// The CA that signed the stored certificates: the client's trust anchor.
    pub test_ca: store_gen::TestCa,
    pub names: Vec<String>,
}

/// Pebble (validating without looking, no nonce rejection) and how both servers reach it.
pub fn start_ca(scratch: &Path) -> (Pebble, Ca) {
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject_percent: 0,
        always_valid: true,
        ..PebbleOptions::default()
    });
    let api_root_file = scratch.join("pebble-api-root.pem");
    std::fs::write(&api_root_file, &pebble.api_ca_pem).expect("write root");
    let ca = Ca {
        directory_url: pebble.directory_url.clone(),
        api_root_pem: pebble.api_ca_pem.clone(),
        api_root_file,
        http_port: pebble.http_port,
        tls_port: pebble.tls_port,
    };
    (pebble, ca)
}

/// An "ask" endpoint that allows every name, shared by both engines. It keeps connections
/// alive, as an application's HTTP server does, so each engine may reuse its connections.
pub async fn serve_ask() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind ask");
    let url = format!("http://{}/ask", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            stream.set_nodelay(true).ok();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                loop {
                    // One answer per request head (GET: no body).
                    while let Some(end) = buf[..read].windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.copy_within(end + 4..read, 0);
                        read -= end + 4;
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    if read == buf.len() {
                        return;
                    }
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
            });
        }
    });
    url
}

/// A run of full handshakes cycling over `names` (`plan.cached_handshakes` of them on
/// `plan.cached_connections`), all certificates cached.
#[derive(Debug)]
pub struct CachedRun {
    /// The server's CPU milliseconds (user + system, from /proc) per successful handshake.
    pub cpu_ms: f64,
    pub per_second: f64,
    pub failures: usize,
}

/// Runs [`CachedRun`] against `server` and prints its figures under `label`.
pub async fn cached_handshakes(
    plan: &Plan,
    client: &Arc<rustls::ClientConfig>,
    server: &Server,
    names: &[String],
    label: &str,
) -> CachedRun {
    let before = procfs::cpu_ms(server.pid());
    let out = client::cycle(
        client,
        server.port,
        names,
        plan.cached_handshakes,
        plan.cached_connections,
    )
    .await;
    let used = procfs::cpu_ms(server.pid()) - before;
    let ok = out.latencies.len().max(1) as f64;
    let run = CachedRun {
        cpu_ms: used / ok,
        per_second: ok / out.total.as_secs_f64(),
        failures: out.failures.len(),
    };
    eprintln!(
        "    {label}: {:.3} ms CPU per handshake, {:.0} handshakes/s",
        run.cpu_ms, run.per_second
    );
    run
}

/// Each round's engines: ours, then Caddy.
pub fn engines_alternating(rounds: usize) -> impl Iterator<Item = (usize, Engine)> {
    (0..rounds).flat_map(|r| [(r, Engine::Ours), (r, Engine::Caddy)])
}

/// Adds a sample to `engine`'s side of `row` (Caddy and the floor are the peer side).
pub fn push(row: &mut Row, engine: Engine, value: f64) {
    match engine {
        Engine::Ours => row.ours.push(value),
        Engine::Caddy | Engine::Floor => row.peer.push(value),
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
