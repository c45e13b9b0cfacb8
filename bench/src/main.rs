//! `make bench`: this library against Go CertMagic (Debian's Caddy), each as its own process,
//! on one Pebble that validates without looking (this measures the clients, not the CA).
//! Runs alternate ours/Caddy; every figure is a median over runs with its min–max and the ratio
//! ours ÷ Caddy. `BENCH_QUICK=1` runs every workload small (a smoke test, figures printed only).
//! Results: `bench/results/{latest,quick}.{json,md}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic_bench::client::{self, Outcome};
use certmagic_bench::report::{self, Row, Target, percentile};
use certmagic_bench::servers::{self, Ca, Engine, Server, Work};
use certmagic_bench::{procfs, store_gen};
use certmagic_testsupport::{Pebble, PebbleOptions, free_ports};

/// Sizes of every workload.
#[derive(Debug, Clone)]
struct Plan {
    quick: bool,
    /// Runs of each engine per workload (alternating).
    rounds: usize,
    /// Runs of each engine in the on-demand workload, and new names per run and mode
    /// (sequential, concurrent).
    on_demand_runs: usize,
    on_demand_names: usize,
    on_demand_concurrency: usize,
    /// Names of the managed-issuance workload, and names handed over at once.
    issuance_names: usize,
    issuance_rounds: usize,
    issuance_concurrency: usize,
    /// Storage sizes of the cold-start workload (both engines); the first one also runs the
    /// cached-handshake workload.
    cold_sizes: [usize; 2],
    /// The largest storage for our memory-per-certificate figure (ours only).
    memory_max: usize,
    /// Full handshakes per run, over `cold_sizes[0]` names, and connections at once.
    cached_handshakes: usize,
    cached_connections: usize,
    /// Connections at once while probing that every name is served.
    probe_connections: usize,
}

impl Plan {
    fn from_env() -> Plan {
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
            }
        }
    }
}

/// What every workload shares.
struct Bench {
    plan: Plan,
    ca: Ca,
    pebble: Pebble,
    issuer_key: String,
    scratch: tempfile::TempDir,
    ask: String,
    acme_client: Arc<rustls::ClientConfig>,
    /// Orders placed with Pebbles already stopped.
    orders: usize,
    rows: Vec<Row>,
    notes: Vec<String>,
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => runtime.block_on(async {
            tokio::spawn(stop_children_on_signal());
            run().await
        }),
        // For profiling a running server: `certmagic-bench load SPEC.json COUNT`.
        ["load", spec, count] => runtime.block_on(load(spec, count.parse().expect("count"))),
        _ => eprintln!("usage: certmagic-bench [load SPEC.json COUNT]"),
    }
}

/// The scratch folder, removed on interruption too.
static SCRATCH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Interrupted (Ctrl-C, or killed politely): kills every server this process started (all are
/// its children: the servers, Pebble, its DNS) before exiting, as the normal path does on drop.
async fn stop_children_on_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let _ = std::process::Command::new("pkill")
        .args(["-KILL", "-P", &std::process::id().to_string()])
        .status();
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
    eprintln!("==> interrupted; servers stopped");
    std::process::exit(130);
}

/// Full handshakes with the names of a `bench-server` spec, on its port.
async fn load(spec: &str, count: usize) {
    let spec: certmagic_bench::ServerSpec =
        serde_json::from_slice(&std::fs::read(spec).expect("read spec")).expect("spec");
    let out = client::cycle(&client::probe_config(), spec.port, &spec.names, count, 8).await;
    println!(
        "{} handshakes in {:.2} s, {} failed",
        out.latencies.len(),
        out.total.as_secs_f64(),
        out.failures.len()
    );
}

async fn run() {
    let plan = Plan::from_env();
    let started = Instant::now();
    eprintln!(
        "==> make bench{}: ours vs Caddy {}",
        if plan.quick { " (quick)" } else { "" },
        servers::caddy_version()
    );
    let scratch = tempfile::Builder::new()
        .prefix("certmagic-bench")
        .tempdir()
        .expect("scratch");
    let _ = SCRATCH.set(scratch.path().to_path_buf());
    let (pebble, ca) = start_ca(scratch.path());
    let issuer_key = certmagic::storage::keys::issuer_key(&ca.directory_url);
    let ask = serve_ask().await;
    let acme_client = client::client_config(&[&pebble.root_pem(0)]);
    let mut bench = Bench {
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
    };

    // BENCH_ONLY=on-demand,issuance,cold,storage picks workloads (cold: 3, 4 and 5).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wanted = |w: &str| only.is_empty() || only.split(',').any(|o| o.trim() == w);
    if wanted("on-demand") {
        on_demand(&mut bench).await;
    }
    let mut policy = String::from("(issuance not run)");
    if wanted("issuance") {
        policy = issuance(&mut bench).await;
    }
    if wanted("cold") {
        cold_start(&mut bench).await;
    }
    if wanted("storage") {
        storages(&mut bench).await;
    }
    if std::env::var_os("BENCH_KEEP").is_some() {
        let kept = bench.scratch.keep();
        eprintln!(
            "==> kept the servers' folders and logs in {}",
            kept.display()
        );
        bench.scratch = tempfile::tempdir().expect("scratch");
    }

    let quick = bench.plan.quick;
    let header = serde_json::json!({
        "date": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "quick": quick,
        "caddy": servers::caddy_version(),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "ca": "Pebble (PEBBLE_VA_ALWAYS_VALID=1, PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0)",
        "order_rate_policy": {"ours": policy, "caddy": "10 orders per 10 s per account (CertMagic's fixed default)"},
        "notes": bench.notes,
        "seconds": started.elapsed().as_secs(),
    });
    let preamble = format!(
        "certmagic-rs vs Caddy {} (Go CertMagic) on Pebble, {} CPUs, {}{}; {} s in all.\n\n\
         Order rate policy: ours `{policy}`; Caddy: 10 orders per 10 s per account.\n\n{}",
        servers::caddy_version(),
        header["cpus"],
        header["date"].as_str().unwrap_or(""),
        if quick {
            ", quick run (BENCH_QUICK=1): small sizes, figures indicative only"
        } else {
            ""
        },
        started.elapsed().as_secs(),
        bench
            .notes
            .iter()
            .map(|n| format!("- {n}\n"))
            .collect::<String>()
    );
    println!();
    println!("{preamble}");
    println!("{}", report::markdown(&bench.rows));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let stem = if quick { "quick" } else { "latest" };
    report::write(&out, stem, &header, &preamble, &bench.rows);
    eprintln!("==> wrote {}/{stem}.{{json,md}}", out.display());
}

/// Pebble (validating without looking, no nonce rejection) and how both servers reach it.
fn start_ca(scratch: &Path) -> (Pebble, Ca) {
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

impl Bench {
    /// A fresh Pebble for a run that places orders: Pebble's in-memory store slows down as it
    /// fills, and Pebble 2.4 can deadlock (a lock-order inversion between its store and an
    /// authorization) when orders arrive concurrently; the fewer orders it holds, the rarer.
    fn restart_ca(&mut self) {
        self.orders += self.pebble.orders_created();
        let (pebble, ca) = start_ca(self.scratch.path());
        self.pebble = pebble;
        self.ca = ca;
        self.issuer_key = certmagic::storage::keys::issuer_key(&self.ca.directory_url);
        self.acme_client = client::client_config(&[&self.pebble.root_pem(0)]);
    }
}

/// An "ask" endpoint that allows every name, shared by both engines.
async fn serve_ask() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind ask");
    let url = format!("http://{}/ask", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    url
}

fn engines_alternating(rounds: usize) -> impl Iterator<Item = (usize, Engine)> {
    (0..rounds).flat_map(|r| [(r, Engine::Ours), (r, Engine::Caddy)])
}

fn push(row: &mut Row, engine: Engine, value: f64) {
    match engine {
        Engine::Ours => row.ours.push(value),
        Engine::Caddy => row.caddy.push(value),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Workload 6 (`certmagic_bench::storages`): FileStorage, Redis and PostgreSQL side by side.
async fn storages(bench: &mut Bench) {
    let n = bench.plan.cold_sizes[1];
    let names: Vec<String> = (0..n).map(|i| format!("site{i}.storage.test")).collect();
    let generated = folder(bench, "storages");
    let ca = store_gen::TestCa::new();
    store_gen::generate(
        &generated,
        &bench.issuer_key,
        &ca,
        &bench.ca.directory_url,
        &names,
    );
    eprintln!("==> 6 storage: FileStorage, Redis, PostgreSQL ({n} certificates)");
    let ops = if bench.plan.quick { 200 } else { 2_000 };
    let rows = certmagic_bench::storages::run(
        &generated,
        &bench.ca.directory_url,
        &bench.ca.api_root_pem,
        &names,
        ops,
    )
    .await;
    bench.rows.extend(rows);
}

fn folder(bench: &Bench, name: &str) -> PathBuf {
    bench.scratch.path().join(name)
}

/// Workload 1: the first handshake of never-seen names, decided by the ask endpoint and
/// obtained during the handshake; sequential, then `on_demand_concurrency` at a time.
async fn on_demand(bench: &mut Bench) {
    let plan = bench.plan.clone();
    let w = "1 on-demand first handshake";
    let mut rows = [
        Row::new(w, "sequential p50", "ms", Target::RatioAtMost(0.25)),
        Row::new(w, "sequential p90", "ms", Target::None),
        Row::new(w, "sequential total", "s", Target::None),
        Row::new(
            w,
            &format!("concurrency {} p50", plan.on_demand_concurrency),
            "ms",
            Target::RatioAtMost(0.25),
        ),
        Row::new(
            w,
            &format!("concurrency {} p90", plan.on_demand_concurrency),
            "ms",
            Target::None,
        ),
        Row::new(
            w,
            &format!("concurrency {} total", plan.on_demand_concurrency),
            "s",
            Target::None,
        ),
        Row::new(w, "failed handshakes", "count", Target::OursAtMost(0.0)),
    ];
    // Each run is a fresh server and CA with no more new names than the 10-orders-per-10-s
    // limit lets through at once, so that the figures are first-handshake latency, not the
    // limiter's queue.
    for (round, engine) in engines_alternating(plan.on_demand_runs) {
        eprintln!("==> on-demand: {} run {}", engine.label(), round + 1);
        let mut failures = 0;
        for (mode, concurrency) in [(0, 1), (3, plan.on_demand_concurrency)] {
            bench.restart_ca();
            let dir = folder(
                bench,
                &format!("on-demand-{}-c{concurrency}-{round}", engine.label()),
            );
            let [port] = free_ports();
            let server = Server::start(
                engine,
                &bench.ca,
                port,
                &dir.join("storage"),
                &dir,
                &Work {
                    ask: Some(bench.ask.clone()),
                    rate_limit: Some([10, 10_000]),
                    ..Work::default()
                },
            );
            client::wait_for_port(port, Duration::from_secs(30))
                .await
                .expect("server up");
            let names: Vec<String> = (0..plan.on_demand_names)
                .map(|i| {
                    format!(
                        "n{i}-c{concurrency}-r{round}.{}.on-demand.test",
                        engine.label()
                    )
                })
                .collect();
            let out: Outcome =
                client::each_once(&bench.acme_client, port, &names, concurrency).await;
            for f in &out.failures {
                eprintln!("    {} failed: {f}", engine.label());
            }
            failures += out.failures.len();
            let lat: Vec<f64> = out.latencies.iter().map(|d| ms(*d)).collect();
            push(&mut rows[mode], engine, percentile(&lat, 50.0));
            push(&mut rows[mode + 1], engine, percentile(&lat, 90.0));
            push(&mut rows[mode + 2], engine, out.total.as_secs_f64());
            drop(server);
        }
        push(&mut rows[6], engine, failures as f64);
    }
    bench.notes.push(format!(
        "On-demand: {} runs per engine, each of {} new names one after another and {} at concurrency {}, on a fresh server and Pebble; both engines limit orders to 10 per 10 s (Caddy's fixed default), which a run never exceeds. p50 and p90 are per run; failed handshakes are counted per run (both modes).",
        plan.on_demand_runs, plan.on_demand_names, plan.on_demand_names, plan.on_demand_concurrency
    ));
    bench.rows.extend(rows);
}

/// Workload 2: names given up front; time until storage holds a certificate for each, with
/// each engine's default order rate policy. Returns our policy's description.
async fn issuance(bench: &mut Bench) -> String {
    let plan = bench.plan.clone();
    let n = plan.issuance_names;
    let mut row = Row::new(
        "2 managed issuance",
        &format!("{n} names, all obtained"),
        "s",
        Target::RatioAtMost(0.5),
    );
    let mut policy = String::from("(not reported)");
    for (round, engine) in engines_alternating(plan.issuance_rounds) {
        for attempt in 1..=3 {
            eprintln!(
                "==> issuance of {n} names: {} run {}",
                engine.label(),
                round + 1
            );
            bench.restart_ca();
            match issue_all(bench, engine, round, attempt, &mut policy).await {
                Ok(secs) => {
                    push(&mut row, engine, secs);
                    break;
                }
                Err(e) if attempt < 3 => {
                    eprintln!("    {e}; once more on a fresh Pebble");
                    bench.notes.push(format!(
                        "Managed issuance, {} run {}: {e}; run again on a fresh Pebble.",
                        engine.label(),
                        round + 1
                    ));
                }
                Err(e) => {
                    eprintln!("    {e}");
                    bench.notes.push(format!(
                        "Managed issuance, {} run {}: {e}.",
                        engine.label(),
                        round + 1
                    ));
                    push(&mut row, engine, f64::NAN);
                }
            }
        }
    }
    bench.notes.push(format!(
        "Managed issuance: {n} names handed over at once ({} at a time to our manager), {} runs per engine, each on a fresh Pebble; {} orders placed in all so far.",
        plan.issuance_concurrency,
        plan.issuance_rounds,
        bench.orders + bench.pebble.orders_created()
    ));
    bench.rows.push(row);
    policy
}

/// No new certificate for this long means the CA stalled: two windows of Caddy's order limiter.
const STALLED: Duration = Duration::from_secs(20);

/// One engine obtaining every name of the issuance workload; the seconds until storage held all.
/// Fails when nothing new is obtained for [`STALLED`] (the CA stopped answering) or past the
/// deadline.
async fn issue_all(
    bench: &Bench,
    engine: Engine,
    round: usize,
    attempt: usize,
    policy: &mut String,
) -> Result<f64, String> {
    let n = bench.plan.issuance_names;
    let dir = folder(
        bench,
        &format!("issuance-{}-{round}-{attempt}", engine.label()),
    );
    let storage = dir.join("storage");
    let names: Vec<String> = (0..n)
        .map(|i| format!("n{i}-r{round}-a{attempt}.{}.issuance.test", engine.label()))
        .collect();
    let [port] = free_ports();
    let server = Server::start(
        engine,
        &bench.ca,
        port,
        &storage,
        &dir,
        &Work {
            names,
            concurrency: bench.plan.issuance_concurrency,
            ..Work::default()
        },
    );
    if let Some(p) = server.wait_line("policy ", Duration::from_secs(30)).await {
        *policy = p;
    }
    let deadline = Duration::from_secs(if bench.plan.quick { 120 } else { 900 });
    let (mut last, mut progress) = (0, Instant::now());
    loop {
        let have = store_gen::count_certificates(&storage, &bench.issuer_key);
        if have >= n {
            return Ok(server.started.elapsed().as_secs_f64());
        }
        if have != last {
            if have / 50 != last / 50 {
                eprintln!("    {have}/{n}");
            }
            (last, progress) = (have, Instant::now());
        }
        if progress.elapsed() > STALLED || server.started.elapsed() > deadline {
            return Err(format!(
                "{} obtained {have} of {n}, then nothing for {:.0} s (the CA stopped answering)",
                engine.label(),
                progress.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Workloads 3, 4 and 5: a storage folder of generated certificates, shared by both engines;
/// time from process start until every name is served, RSS then, RSS growth per certificate,
/// and server CPU per full handshake over the smaller folder.
async fn cold_start(bench: &mut Bench) {
    let plan = bench.plan.clone();
    let ca = store_gen::TestCa::new();
    let client = client::client_config(&[&ca.pem]);
    let probe = client::probe_config();
    let storage = folder(bench, "generated");
    let [small, large] = plan.cold_sizes;
    let all: Vec<String> = (0..plan.memory_max.max(large))
        .map(|i| format!("site{i}.cold.test"))
        .collect();
    let mut generated = 0;
    let mut generate = |upto: usize| {
        if upto > generated {
            let t = Instant::now();
            store_gen::generate(
                &storage,
                &bench.issuer_key,
                &ca,
                &bench.ca.directory_url,
                &all[generated..upto],
            );
            eprintln!(
                "    generated {} certificates in {:.1} s",
                upto - generated,
                t.elapsed().as_secs_f64()
            );
            generated = upto;
        }
    };

    let w3 = "3 cold start";
    let w5 = "5 cached handshakes";
    let sizes = [small, large];
    // Per size: all in memory (the target), then each answered once, then RSS.
    let mut loaded_rows = sizes.map(|n| {
        Row::new(
            w3,
            &format!("{n} certificates, all in memory"),
            "s",
            Target::RatioAtMost(0.33),
        )
    });
    let mut served_rows = sizes.map(|n| {
        Row::new(
            w3,
            &format!("{n} certificates, then each answered once"),
            "s",
            Target::None,
        )
    });
    let mut rss_rows = sizes.map(|n| Row::new(w3, &format!("RSS with {n}"), "MiB", Target::None));
    let mut cpu = Row::new(
        w5,
        "server CPU per handshake",
        "ms",
        Target::RatioAtMost(0.5),
    );
    let mut rate = Row::new(w5, "handshakes per second", "1/s", Target::None);
    let mut failed = Row::new(w5, "failed handshakes", "count", Target::OursAtMost(0.0));
    let mut rss_at: Vec<(Engine, usize, f64)> = Vec::new();

    for (i, size) in sizes.into_iter().enumerate() {
        eprintln!("==> cold start with {size} certificates");
        generate(size);
        let names = &all[..size];
        for (round, engine) in engines_alternating(plan.rounds) {
            let (loaded, served, rss, server) =
                start_and_probe(bench, &probe, &storage, engine, round, names).await;
            push(&mut loaded_rows[i], engine, loaded);
            push(&mut served_rows[i], engine, served);
            push(&mut rss_rows[i], engine, rss / 1024.0);
            rss_at.push((engine, size, rss));
            if i == 0 {
                let before = procfs::cpu_ms(server.pid());
                let out = client::cycle(
                    &client,
                    server.port,
                    names,
                    plan.cached_handshakes,
                    plan.cached_connections,
                )
                .await;
                let used = procfs::cpu_ms(server.pid()) - before;
                let ok = out.latencies.len().max(1) as f64;
                push(&mut cpu, engine, used / ok);
                push(&mut rate, engine, ok / out.total.as_secs_f64());
                push(&mut failed, engine, out.failures.len() as f64);
                eprintln!(
                    "    {}: {:.3} ms CPU per handshake, {:.0} handshakes/s",
                    engine.label(),
                    used / ok,
                    ok / out.total.as_secs_f64()
                );
            }
            drop(server);
        }
    }

    // Workload 4: RSS growth per certificate between the two sizes, per run pair.
    let per_cert = |engine: Engine, from: usize, to: usize| -> Vec<f64> {
        let at = |size| {
            rss_at
                .iter()
                .filter(move |(e, s, _)| *e == engine && *s == size)
                .map(|(_, _, r)| *r)
        };
        at(from)
            .zip(at(to))
            .map(|(a, b)| (b - a) / (to - from) as f64)
            .collect()
    };
    let w4 = "4 memory per certificate";
    let mut mem = Row::new(
        w4,
        &format!("RSS growth {small}→{large}"),
        "KiB",
        Target::RatioAndOursAtMost(0.33, 3.0),
    );
    mem.ours = per_cert(Engine::Ours, small, large);
    mem.caddy = per_cert(Engine::Caddy, small, large);
    let mut memory_rows = vec![mem];
    let mut cold_rows: Vec<Row> = loaded_rows
        .into_iter()
        .chain(served_rows)
        .chain(rss_rows)
        .collect();
    if plan.memory_max > large {
        let max = plan.memory_max;
        eprintln!("==> memory with {max} certificates (ours)");
        generate(max);
        let (loaded, served, rss, server) =
            start_and_probe(bench, &probe, &storage, Engine::Ours, 0, &all[..max]).await;
        drop(server);
        let mut row = Row::new(
            w4,
            &format!("RSS growth {small}→{max} (ours only)"),
            "KiB",
            Target::OursAtMost(3.0),
        );
        let base: Vec<f64> = rss_at
            .iter()
            .filter(|(e, s, _)| *e == Engine::Ours && *s == small)
            .map(|(_, _, r)| *r)
            .collect();
        row.ours = base
            .iter()
            .map(|b| (rss - b) / (max - small) as f64)
            .collect();
        memory_rows.push(row);
        for (metric, unit, value) in [
            (
                format!("{max} certificates, all in memory (ours only)"),
                "s",
                loaded,
            ),
            (
                format!("{max} certificates, then each answered once (ours only)"),
                "s",
                served,
            ),
            (format!("RSS with {max} (ours only)"), "MiB", rss / 1024.0),
        ] {
            let mut r = Row::new(w3, &metric, unit, Target::None);
            r.ours.push(value);
            cold_rows.push(r);
        }
    }
    bench.rows.extend(cold_rows);
    bench.rows.extend(memory_rows);
    bench.rows.extend([cpu, rate, failed]);
    bench.notes.push(format!(
        "Cold start: generated ECDSA P-256 certificates in Caddy's layout, one folder read by both engines. \"All in memory\": from process start until the server holds every certificate, by its own account (ours: `manage` returned; Caddy: the last \"added certificate to cache\" in its debug log of the tls.cache logger); then a probe has one TLS 1.3 handshake with every name ({} connections), which must succeed, and \"then each answered once\" is when it has (that figure mostly measures handshake throughput, see workload 5). Cached handshakes: {} full handshakes (no resumption) over {small} names on {} connections; CPU is the server process's user+system time from /proc.",
        plan.probe_connections, plan.cached_handshakes, plan.cached_connections
    ));
}

/// Starts `engine` on the generated folder managing `names`. Returns the seconds from process
/// start until it held every certificate in memory (by its own account, see
/// [`Server::wait_loaded`]), the seconds until a probe then had one handshake with every name,
/// and the RSS (KiB) then. The server keeps running.
async fn start_and_probe(
    bench: &Bench,
    client: &Arc<rustls::ClientConfig>,
    storage: &Path,
    engine: Engine,
    round: usize,
    names: &[String],
) -> (f64, f64, f64, Server) {
    let dir = folder(
        bench,
        &format!("cold-{}-{}-{round}", engine.label(), names.len()),
    );
    let [port] = free_ports();
    let server = Server::start(
        engine,
        &bench.ca,
        port,
        storage,
        &dir,
        &Work {
            names: names.to_vec(),
            ..Work::default()
        },
    );
    let loaded = server
        .wait_loaded(names.len(), Duration::from_secs(600))
        .await
        .expect("every certificate loaded");
    client::wait_for_port(port, Duration::from_secs(120))
        .await
        .expect("server up");
    let served = client::until_all_served(
        client,
        port,
        names,
        bench.plan.probe_connections,
        server.started,
        Duration::from_secs(600),
    )
    .await
    .expect("every name served");
    let rss = procfs::rss_kib(server.pid()) as f64;
    eprintln!(
        "    {} run {}: {} names loaded after {:.2} s, each answered after {:.2} s, RSS {:.1} MiB",
        engine.label(),
        round + 1,
        names.len(),
        loaded.as_secs_f64(),
        served.as_secs_f64(),
        rss / 1024.0
    );
    (loaded.as_secs_f64(), served.as_secs_f64(), rss, server)
}
