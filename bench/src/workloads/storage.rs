//! Workload 8, ours only: the storages side by side, FileStorage beside Redis and PostgreSQL
//! (real servers on loopback, started here): the latency of one load, one store and one
//! lock + unlock (medians over calls made one after another), and a cold start from each (a
//! manager taking every stored certificate into memory; the CA is never asked). Caddy has no
//! figure here: Debian's Caddy has no Redis or PostgreSQL storage module.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use certmagic::storage::location;
use certmagic::{Config, Manager, Storage};
use certmagic_testsupport::postgres::Postgres;
use certmagic_testsupport::redis::Redis;

use crate::harness::Bench;
use crate::report::{Row, Target, median};
use crate::store_gen;

const WORKLOAD: &str = "8 storage";

/// Every file under `root` copied into `storage` (keys are the relative paths), 64 at a time.
async fn copy_folder(root: &Path, storage: &Arc<dyn Storage>) {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("read generated storage")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                files.push((rel.to_string_lossy().into_owned(), path));
            }
        }
    }
    for batch in files.chunks(64) {
        let stores = batch.iter().map(|(key, path)| {
            let (storage, key) = (storage.clone(), key.clone());
            let value = std::fs::read(path).expect("read generated file");
            async move {
                storage
                    .store(&key, &value)
                    .await
                    .expect("copy into storage")
            }
        });
        let handles: Vec<_> = stores.map(tokio::spawn).collect();
        for h in handles {
            h.await.expect("store task");
        }
    }
}

/// Microseconds of each of `ops` calls of `call`, one after another.
async fn latency<F, Fut>(ops: usize, mut call: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(ops);
    for i in 0..ops {
        let t = Instant::now();
        call(i).await;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    median(&samples).unwrap_or(f64::NAN)
}

/// Runs the workload over a generated storage of `cold_sizes[1]` certificates.
pub async fn run(bench: &mut Bench) {
    let n = bench.plan.cold_sizes[1];
    let names: Vec<String> = (0..n).map(|i| format!("site{i}.storage.test")).collect();
    let generated = bench.folder("storages");
    let ca = store_gen::TestCa::new();
    store_gen::generate(
        &generated,
        &bench.issuer_key,
        &ca,
        &bench.ca.directory_url,
        &names,
    );
    eprintln!("==> 8 storage: FileStorage, Redis, PostgreSQL ({n} certificates)");
    let ops = if bench.plan.quick { 200 } else { 2_000 };
    let rows = side_by_side(
        &generated,
        &bench.ca.directory_url,
        &bench.ca.api_root_pem,
        &names,
        ops,
    )
    .await;
    bench.rows.extend(rows);
}

/// The figures of every storage over the certificates in `generated` (Caddy's layout, for
/// `names`).
async fn side_by_side(
    generated: &Path,
    ca_url: &str,
    ca_api_root_pem: &str,
    names: &[String],
    ops: usize,
) -> Vec<Row> {
    let redis = Redis::start();
    let postgres = Postgres::start();
    let backends: [(&str, String); 3] = [
        ("FileStorage", generated.display().to_string()),
        ("Redis", redis.url()),
        ("PostgreSQL", postgres.url()),
    ];
    let n = names.len();
    let mut rows = Vec::new();
    let row = |metric: String, unit: &str, value: f64| {
        let mut r = Row::new(WORKLOAD, &metric, unit, Target::None);
        r.ours = vec![value];
        r
    };
    for (label, location) in backends {
        let storage = location::open(&location).expect("open storage");
        if label != "FileStorage" {
            let t = Instant::now();
            copy_folder(generated, &storage).await;
            eprintln!(
                "    {label}: {n} certificates copied in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        let value = vec![b'x'; 2048];
        let store = latency(ops, |i| {
            let (s, v) = (storage.clone(), &value);
            async move { s.store(&format!("bench/value{i}"), v).await.expect("store") }
        })
        .await;
        let load = latency(ops, |i| {
            let s = storage.clone();
            async move {
                s.load(&format!("bench/value{i}")).await.expect("load");
            }
        })
        .await;
        let lock = latency(ops, |i| {
            let s = storage.clone();
            async move {
                let name = format!("bench_lock_{i}");
                s.lock(&name).await.expect("lock");
                s.unlock(&name).await.expect("unlock");
            }
        })
        .await;
        storage.delete("bench").await.expect("delete");

        let config = Config::builder()
            .ca(ca_url)
            .trusted_roots_pem(ca_api_root_pem.as_bytes())
            .agreed(true)
            .storage(storage.clone())
            .build()
            .expect("config");
        let t = Instant::now();
        let manager = Manager::new(config).expect("manager");
        manager.manage(names).await.expect("cold start");
        let cold = t.elapsed().as_secs_f64();
        assert_eq!(
            manager.cache().len(),
            n,
            "{label}: every certificate in memory"
        );
        manager.shutdown().await.expect("shutdown");
        rows.push(row(format!("{label}: load one value (2 KiB)"), "µs", load));
        rows.push(row(
            format!("{label}: store one value (2 KiB)"),
            "µs",
            store,
        ));
        rows.push(row(format!("{label}: lock + unlock"), "µs", lock));
        rows.push(row(
            format!("{label}: cold start of {n} certificates, all in memory"),
            "s",
            cold,
        ));
    }
    rows
}
