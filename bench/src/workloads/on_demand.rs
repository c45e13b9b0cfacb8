//! Workload 1: on-demand first handshakes of names never seen before.

use std::time::Duration;

use certmagic_testsupport::free_ports;

use crate::client::{self, Outcome};
use crate::harness::{Bench, engines_alternating, ms, push};
use crate::report::{Row, Target, percentile};
use crate::servers::{Server, Work};

/// Workload 1: the first handshake of never-seen names, decided by the ask endpoint and
/// obtained during the handshake; sequential, then `on_demand_concurrency` at a time.
pub async fn run(bench: &mut Bench) {
    let plan = bench.plan.clone();
    let w = "1 on-demand first handshake";
    let mut rows = [
        Row::new(
            w,
            "sequential p50",
            "ms",
            Target::RatioAndOursAtMost(0.25, 20.0),
        ),
        Row::new(w, "sequential p90", "ms", Target::None),
        Row::new(w, "sequential total", "s", Target::None),
        Row::new(
            w,
            &format!("concurrency {} p50", plan.on_demand_concurrency),
            "ms",
            Target::RatioAndOursAtMost(0.25, 60.0),
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
            let dir = bench.folder(&format!(
                "on-demand-{}-c{concurrency}-{round}",
                engine.label()
            ));
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
