//! Workload 2: managed issuance of many names given at start.

use std::time::{Duration, Instant};

use certmagic_testsupport::free_ports;

use crate::harness::{Bench, engines_alternating, push};
use crate::report::{Row, Target};
use crate::servers::{Engine, Server, Work};
use crate::store_gen;

/// Workload 2: names given up front; time until storage holds a certificate for each, with
/// each engine's default order rate policy. Returns our policy's description.
pub async fn run(bench: &mut Bench) -> String {
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
    let dir = bench.folder(&format!("issuance-{}-{round}-{attempt}", engine.label()));
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
