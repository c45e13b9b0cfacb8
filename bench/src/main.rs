//! `make bench`: this library against Go CertMagic (Debian's Caddy), each as its own process,
//! on one Pebble that validates without looking (this measures the clients, not the CA), and
//! against the floor (a minimal static rustls server). Runs alternate; every figure is a median
//! over runs with its min–max and the ratio ours ÷ peer. `BENCH_QUICK=1` runs every workload
//! small (a smoke test, figures printed only). Results: `bench/results/{latest,quick}.{json,md}`.
//! Each workload is a module of `certmagic_bench::workloads`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use certmagic_bench::client;
use certmagic_bench::harness::{Bench, Plan};
use certmagic_bench::report;
use certmagic_bench::servers;
use certmagic_bench::workloads;

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
    let mut bench = Bench::new(plan, scratch).await;

    // BENCH_ONLY=on-demand,issuance,cold,restart,floor,storage picks workloads (cold: 3, 4
    // and 5; floor takes its first-handshake figure of ours from restart).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wanted = |w: &str| only.is_empty() || only.split(',').any(|o| o.trim() == w);
    if wanted("on-demand") {
        workloads::on_demand::run(&mut bench).await;
    }
    let mut policy = String::from("(issuance not run)");
    if wanted("issuance") {
        policy = workloads::issuance::run(&mut bench).await;
    }
    if wanted("cold") {
        workloads::cold_start::run(&mut bench).await;
    }
    if wanted("restart") {
        workloads::restart::run(&mut bench).await;
    }
    if wanted("floor") {
        workloads::floor::run(&mut bench).await;
    }
    if wanted("storage") {
        workloads::storage::run(&mut bench).await;
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
