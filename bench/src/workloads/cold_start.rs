//! Workloads 3, 4 and 5: cold start of a server over many stored certificates, memory per
//! certificate, and server CPU per cached full handshake.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic_testsupport::free_ports;

use crate::harness::{Bench, cached_handshakes, engines_alternating, push};
use crate::report::{Row, Target};
use crate::servers::{Engine, Server, Work};
use crate::{client, procfs, store_gen};

/// Workloads 3, 4 and 5: a storage folder of generated certificates, shared by both engines;
/// time from process start until every name is served, RSS then, RSS growth per certificate,
/// and server CPU per full handshake over the smaller folder.
pub async fn run(bench: &mut Bench) {
    let plan = bench.plan.clone();
    let ca = store_gen::TestCa::new();
    let client = client::client_config(&[&ca.pem]);
    let probe = client::probe_config();
    let storage = bench.folder("generated");
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
    // (engine, size, RSS once loaded, RSS once every name was answered), KiB.
    let mut rss_at: Vec<(Engine, usize, f64, f64)> = Vec::new();

    for (i, size) in sizes.into_iter().enumerate() {
        eprintln!("==> cold start with {size} certificates");
        generate(size);
        let names = &all[..size];
        for (round, engine) in engines_alternating(plan.rounds) {
            let Probed {
                loaded,
                served,
                rss_loaded,
                rss,
                server,
            } = start_and_probe(bench, &probe, &storage, engine, round, names).await;
            push(&mut loaded_rows[i], engine, loaded);
            push(&mut served_rows[i], engine, served);
            push(&mut rss_rows[i], engine, rss / 1024.0);
            rss_at.push((engine, size, rss_loaded, rss));
            if i == 0 {
                let run = cached_handshakes(&plan, &client, &server, names, engine.label()).await;
                push(&mut cpu, engine, run.cpu_ms);
                push(&mut rate, engine, run.per_second);
                push(&mut failed, engine, run.failures as f64);
            }
            drop(server);
        }
    }

    // Workload 4: RSS growth per certificate between the two sizes, per run pair.
    let per_cert = |engine: Engine, from: usize, to: usize| -> Vec<f64> {
        let at = |size| {
            rss_at
                .iter()
                .filter(move |(e, s, _, _)| *e == engine && *s == size)
                .map(|(_, _, _, r)| *r)
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
    mem.peer = per_cert(Engine::Caddy, small, large);
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
        let Probed {
            loaded,
            served,
            rss_loaded,
            rss,
            server,
        } = start_and_probe(bench, &probe, &storage, Engine::Ours, 0, &all[..max]).await;
        drop(server);
        let ours_small = || {
            rss_at
                .iter()
                .filter(|(e, s, _, _)| *e == Engine::Ours && *s == small)
        };
        let mut row = Row::new(
            w4,
            &format!("RSS growth {small}→{max} (ours only)"),
            "KiB",
            Target::OursAtMost(1.6),
        );
        row.ours = ours_small()
            .map(|(_, _, _, b)| (rss - b) / (max - small) as f64)
            .collect();
        memory_rows.push(row);
        // Keys are parsed at their first signature: what loading alone holds.
        let mut row = Row::new(
            w4,
            &format!("RSS growth {small}→{max}, loaded, before any handshake (ours only)"),
            "KiB",
            Target::None,
        );
        row.ours = ours_small()
            .map(|(_, _, b, _)| (rss_loaded - b) / (max - small) as f64)
            .collect();
        memory_rows.push(row);
        for (metric, unit, value, target) in [
            (
                format!("{max} certificates, all in memory (ours only)"),
                "s",
                loaded,
                Target::OursAtMost(2.0),
            ),
            (
                format!("{max} certificates, then each answered once (ours only)"),
                "s",
                served,
                Target::None,
            ),
            (
                format!("RSS with {max} (ours only)"),
                "MiB",
                rss / 1024.0,
                Target::None,
            ),
        ] {
            let mut r = Row::new(w3, &metric, unit, target);
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

/// What [`start_and_probe`] saw; the server keeps running.
struct Probed {
    /// Seconds from process start until it held every certificate in memory (by its own
    /// account, see [`Server::wait_loaded`]).
    loaded: f64,
    /// Seconds until a probe then had one handshake with every name.
    served: f64,
    /// RSS (KiB) once loaded, before the probe.
    rss_loaded: f64,
    /// RSS (KiB) after the probe.
    rss: f64,
    server: Server,
}

/// Starts `engine` on the generated folder managing `names`, then has a probe answered once
/// by every name.
async fn start_and_probe(
    bench: &Bench,
    client: &Arc<rustls::ClientConfig>,
    storage: &Path,
    engine: Engine,
    round: usize,
    names: &[String],
) -> Probed {
    let dir = bench.folder(&format!("cold-{}-{}-{round}", engine.label(), names.len()));
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
    let rss_loaded = procfs::rss_kib(server.pid()) as f64;
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
    Probed {
        loaded: loaded.as_secs_f64(),
        served: served.as_secs_f64(),
        rss_loaded,
        rss,
        server,
    }
}
