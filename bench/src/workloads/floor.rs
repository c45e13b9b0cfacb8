//! Workload 7: ours against the floor, a minimal static tokio-rustls server with one
//! certificate (`bench-floor`), in the same harness: server CPU per cached full handshake (ours
//! managing the stored certificates of workload 6, the floor serving one wildcard certificate
//! for the same names), and the first handshake after start (ours: the on-demand restart of
//! workload 6, which must run first).

use certmagic_testsupport::free_ports;

use crate::client;
use crate::harness::{Bench, cached_handshakes, ms, push};
use crate::report::{Row, Target};
use crate::servers::{Engine, Server, Work};

const WORKLOAD: &str = "7 the floor";

pub async fn run(bench: &mut Bench) {
    let plan = bench.plan.clone();
    let n = plan.cold_sizes[0];
    eprintln!("==> ours and the floor, {n} names");
    let (storage, ca, names, client, wildcard) = {
        let stored = bench.stored(n);
        (
            stored.folder.clone(),
            stored.ca.clone(),
            stored.names[..n].to_vec(),
            client::client_config(&[&stored.test_ca.pem]),
            stored.test_ca.issue(&["*.restart.test".to_string()]),
        )
    };
    let floor_dir = bench.folder("floor");
    std::fs::create_dir_all(&floor_dir).expect("floor folder");
    let (chain_file, key_file) = (floor_dir.join("chain.pem"), floor_dir.join("key.pem"));
    std::fs::write(&chain_file, &wildcard.0).expect("write chain");
    std::fs::write(&key_file, &wildcard.1).expect("write key");

    let mut cpu = Row::new(
        WORKLOAD,
        "server CPU per cached handshake",
        "ms",
        Target::RatioAtMost(1.15),
    )
    .against_floor();
    let mut rate = Row::new(WORKLOAD, "handshakes per second", "1/s", Target::None).against_floor();
    let mut first = Row::new(
        WORKLOAD,
        "first handshake after start",
        "ms",
        Target::OursAtMostPeerPlus(10.0),
    )
    .against_floor();
    first.ours = bench.ours_first_handshake.clone();
    let mut failed = Row::new(
        WORKLOAD,
        "failed handshakes",
        "count",
        Target::OursAtMost(0.0),
    )
    .against_floor();
    for round in 0..plan.rounds {
        for engine in [Engine::Ours, Engine::Floor] {
            let [port] = free_ports();
            let dir = bench.folder(&format!("floor-{}-{round}", engine.label()));
            let server = match engine {
                Engine::Floor => Server::start_floor(&chain_file, &key_file, port, &dir),
                _ => {
                    let work = Work {
                        names: names.clone(),
                        ..Work::default()
                    };
                    let server = Server::start(engine, &ca, port, &storage, &dir, &work);
                    server
                        .wait_line("ready", std::time::Duration::from_secs(120))
                        .await
                        .expect("ours ready");
                    server
                }
            };
            client::wait_for_port(port, std::time::Duration::from_secs(60))
                .await
                .expect("server up");
            let mut failures = 0;
            if engine == Engine::Floor {
                match client::handshake(&client, port, &names[0]).await {
                    Ok(d) => push(&mut first, engine, ms(d)),
                    Err(e) => {
                        eprintln!("    floor: the first handshake failed: {e}");
                        failures += 1;
                    }
                }
            }
            let label = format!("{} run {}", engine.label(), round + 1);
            let run = cached_handshakes(&plan, &client, &server, &names, &label).await;
            push(&mut cpu, engine, run.cpu_ms);
            push(&mut rate, engine, run.per_second);
            push(&mut failed, engine, (failures + run.failures) as f64);
        }
    }
    bench.rows.extend([cpu, rate, first, failed]);
    bench.notes.push(format!(
        "The floor: `bench-floor`, tokio and tokio-rustls serving one wildcard certificate with the same cryptographic choices as ours (aws-lc-rs, the server picks TLS_AES_128_GCM_SHA256); {} full handshakes over {n} names on {} connections against ours managing {n} stored certificates, alternating. Ours' first handshake after start is workload 6's (on-demand, {} stored).",
        plan.cached_handshakes, plan.cached_connections, plan.restart_sizes[0]
    ));
}
