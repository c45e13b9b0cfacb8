//! Workload 6: restart of an on-demand server whose storage already holds many certificates
//! (an instance of a fleet coming back). From process start to the first handshake, then every
//! stored name's first handshake, one after another and `restart_concurrency` at a time, each
//! mode on a freshly started server. The CA is down, so every name is decided by the ask
//! endpoint and served from storage; a handshake that needed an order fails and is counted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use certmagic_testsupport::free_ports;

use crate::client::{self, Outcome};
use crate::harness::{Bench, engines_alternating, ms, push};
use crate::report::{Row, Target, percentile};
use crate::servers::{Ca, Engine, Server, Work};

const WORKLOAD: &str = "6 on-demand restart";

pub async fn run(bench: &mut Bench) {
    let plan = bench.plan.clone();
    let c = plan.restart_concurrency;
    let mut failed = Row::new(
        WORKLOAD,
        "failed handshakes",
        "count",
        Target::OursAtMost(0.0),
    );
    let mut rows = Vec::new();
    for (size_index, n) in plan.restart_sizes.into_iter().enumerate() {
        eprintln!("==> on-demand restart with {n} stored certificates");
        let (storage, ca, names, client) = {
            let stored = bench.stored(n);
            (
                stored.folder.clone(),
                stored.ca.clone(),
                stored.names[..n].to_vec(),
                client::client_config(&[&stored.test_ca.pem]),
            )
        };
        let row = |metric: &str, unit: &str, target| {
            Row::new(WORKLOAD, &format!("{n} stored, {metric}"), unit, target)
        };
        let mut start_to_first = row("start to first handshake", "ms", Target::None);
        let mut first = row("first handshake after start", "ms", Target::None);
        let mut sequential = row(
            "every name once, one at a time",
            "s",
            Target::RatioAtMost(0.5),
        );
        let mut sequential_p50 = row("per name p50, one at a time", "ms", Target::None);
        let mut cached = row(
            "every name again (cached), one at a time",
            "s",
            Target::None,
        );
        let mut stored_cost = row(
            "cost of a stored name (p50 first pass − p50 cached pass)",
            "ms",
            Target::None,
        );
        let mut concurrent = row(
            &format!("every name once, {c} at a time"),
            "s",
            Target::RatioAtMost(0.5),
        );
        for (round, engine) in engines_alternating(plan.rounds) {
            for concurrency in [1, c] {
                let dir = bench.folder(&format!(
                    "restart-{}-{n}-c{concurrency}-{round}",
                    engine.label()
                ));
                let run = Run {
                    engine,
                    ca: &ca,
                    storage: &storage,
                    dir: &dir,
                    ask: &bench.ask,
                    client: &client,
                };
                let (first_done, rest, again) = run.restart(&names, concurrency).await;
                for f in rest.failures.iter().take(3) {
                    eprintln!("    {} failed: {f}", engine.label());
                }
                push(
                    &mut failed,
                    engine,
                    (rest.failures.len() + usize::from(first_done.is_err())) as f64,
                );
                let Ok((since_start, latency)) = first_done else {
                    for r in [
                        &mut start_to_first,
                        &mut first,
                        &mut sequential,
                        &mut concurrent,
                    ] {
                        push(r, engine, f64::NAN);
                    }
                    continue;
                };
                push(&mut start_to_first, engine, ms(since_start));
                push(&mut first, engine, ms(latency));
                if engine == Engine::Ours && size_index == 0 {
                    bench.ours_first_handshake.push(ms(latency));
                }
                // The whole pass: the first handshake and the rest.
                let total = (latency + rest.total).as_secs_f64();
                if concurrency == 1 {
                    push(&mut sequential, engine, total);
                    let lat: Vec<f64> = rest.latencies.iter().map(|d| ms(*d)).collect();
                    push(&mut sequential_p50, engine, percentile(&lat, 50.0));
                    if let Some(again) = again {
                        push(&mut cached, engine, again.total.as_secs_f64());
                        let again: Vec<f64> = again.latencies.iter().map(|d| ms(*d)).collect();
                        let cost = percentile(&lat, 50.0) - percentile(&again, 50.0);
                        push(&mut stored_cost, engine, cost);
                    }
                } else {
                    push(&mut concurrent, engine, total);
                }
                eprintln!(
                    "    {} run {}, {concurrency} at a time: first handshake {:.1} ms ({:.0} ms after start), all {n} in {total:.2} s",
                    engine.label(),
                    round + 1,
                    ms(latency),
                    ms(since_start)
                );
            }
        }
        rows.extend([
            start_to_first,
            first,
            sequential,
            sequential_p50,
            cached,
            stored_cost,
            concurrent,
        ]);
    }
    rows.push(failed);
    bench.rows.extend(rows);
    bench.notes.push(format!(
        "On-demand restart: storage holds {} certificates (generated, Caddy's layout) for a CA that is down; each engine starts on-demand (the same ask endpoint), then one handshake with each name, one at a time, and on a fresh start {c} at a time. \"First handshake after start\" is that handshake's latency once the port accepts connections.",
        plan.restart_sizes.map(|n| n.to_string()).join(" and then ")
    ));
}

/// One engine's restart over the stored certificates.
struct Run<'a> {
    engine: Engine,
    ca: &'a Ca,
    storage: &'a Path,
    dir: &'a Path,
    ask: &'a str,
    client: &'a Arc<rustls::ClientConfig>,
}

impl Run<'_> {
    /// Starts the server, then one handshake with each name (`concurrency` at a time after the
    /// first). Returns the time from start until the first handshake was done and its latency
    /// (or why it failed), and the outcome of the rest; one at a time, also the outcome of a
    /// second pass over every name (all cached then: the handshake's own cost).
    async fn restart(
        &self,
        names: &[String],
        concurrency: usize,
    ) -> (
        Result<(Duration, Duration), String>,
        Outcome,
        Option<Outcome>,
    ) {
        let [port] = free_ports();
        let server = Server::start(
            self.engine,
            self.ca,
            port,
            self.storage,
            self.dir,
            &Work {
                ask: Some(self.ask.to_string()),
                ..Work::default()
            },
        );
        if let Err(e) = client::wait_for_port(port, Duration::from_secs(60)).await {
            return (Err(e), Outcome::default(), None);
        }
        let first = client::handshake(self.client, port, &names[0])
            .await
            .map(|latency| (server.started.elapsed(), latency));
        if let Err(e) = &first {
            eprintln!(
                "    {}: the first handshake failed: {e}",
                self.engine.label()
            );
        }
        let rest = client::each_once(self.client, port, &names[1..], concurrency).await;
        let again = if concurrency == 1 {
            Some(client::each_once(self.client, port, names, 1).await)
        } else {
            None
        };
        drop(server);
        (first, rest, again)
    }
}
