//! Cache benchmarks, figures printed:
//! - SNI lookup with 100,000 cached certificates: exact hit, wildcard hit, miss (target < 200 ns);
//! - memory per cached P-256 certificate at 100,000, intermediates shared (target < 3 KiB);
//! - loading 10,000 certificates from FileStorage into the cache (target < 2 s).
//!
//! `BENCH_CERTS` overrides the 100,000 (e.g. for a quick run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::storage::keys;
use certmagic::{Cache, Certificate, Config, FileStorage, Manager, MemoryStorage};
use criterion::{Criterion, criterion_group, criterion_main};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Generated {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// `n` leaf certificates for `name(i)`, P-256, from one intermediate (as a real CA's would be).
fn generate(n: usize, name: impl Fn(usize) -> String + Sync) -> Vec<Generated> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bench intermediate");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let ca_der = ca.der().clone();
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let chunks: Vec<Vec<(usize, Generated)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ca, ca_der, name) = (&ca, &ca_der, &name);
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let key = KeyPair::generate().unwrap();
                            let params = CertificateParams::new(vec![name(i)]).unwrap();
                            let leaf = params.signed_by(&key, ca).unwrap();
                            let g = Generated {
                                chain: vec![leaf.der().clone(), ca_der.clone()],
                                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                                    key.serialize_der(),
                                )),
                            };
                            (i, g)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<(usize, Generated)> = chunks.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, g)| g).collect()
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn cert_count() -> usize {
    std::env::var("BENCH_CERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn lookups(c: &mut Criterion) {
    let n = cert_count();
    let t = Instant::now();
    let exact = generate(n, |i| format!("host{i}.bench.test"));
    let wildcards = generate(1000, |i| format!("*.w{i}.bench.test"));
    println!("generated {} certificates in {:.1?}", n + 1000, t.elapsed());

    // Memory: RSS growth while building and caching the snapshots, per certificate.
    let cache = Cache::new();
    let before = rss_bytes();
    for g in exact {
        cache.insert(Certificate::from_der(g.chain, g.key).unwrap());
    }
    let after = rss_bytes();
    let per_cert = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "memory: {:.0} bytes ({:.2} KiB) of RSS per cached P-256 certificate at {n} (target < 3 KiB)",
        per_cert,
        per_cert / 1024.0
    );
    for g in wildcards {
        cache.insert(Certificate::from_der(g.chain, g.key).unwrap());
    }

    let names: Vec<String> = (0..1024)
        .map(|i| format!("host{}.bench.test", (i * 7919) % n))
        .collect();
    let wild: Vec<String> = (0..1024)
        .map(|i| format!("x{i}.w{}.bench.test", i % 1000))
        .collect();
    let misses: Vec<String> = (0..1024).map(|i| format!("nohost{i}.bench.test")).collect();
    let mut group = c.benchmark_group(format!("sni_lookup_{n}_certs"));
    for (label, set) in [
        ("exact_hit", &names),
        ("wildcard_hit", &wild),
        ("miss", &misses),
    ] {
        let expect_hit = label != "miss";
        let mut i = 0usize;
        group.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                let hit = cache.get(black_box(&set[i]));
                debug_assert_eq!(hit.is_some(), expect_hit);
                black_box(hit)
            })
        });
    }
    group.finish();
}

fn load_from_storage(c: &mut Criterion) {
    const N: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let issuer = "127.0.0.1:14000-dir";
    let generated = generate(N, |i| format!("load{i}.bench.test"));
    for (i, g) in generated.iter().enumerate() {
        let name = format!("load{i}.bench.test");
        let site = dir.path().join(keys::site_prefix(issuer, &name));
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(
            dir.path().join(keys::site_cert(issuer, &name)),
            certmagic::encode_chain_pem(&g.chain),
        )
        .unwrap();
        let key = pem::encode(&pem::Pem::new("PRIVATE KEY", g.key.secret_der().to_vec()));
        std::fs::write(dir.path().join(keys::site_private_key(issuer, &name)), key).unwrap();
        std::fs::write(
            dir.path().join(keys::site_meta(issuer, &name)),
            format!("{{\"sans\":[\"{name}\"]}}"),
        )
        .unwrap();
    }
    let names: Vec<String> = (0..N).map(|i| format!("load{i}.bench.test")).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("file_storage");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("load_10000_into_cache", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let config = Config::builder()
                    .ca("https://127.0.0.1:14000/dir")
                    .storage(Arc::new(FileStorage::new(dir.path())))
                    .build()
                    .unwrap();
                let manager = Manager::new(config).unwrap();
                let start = Instant::now();
                rt.block_on(manager.manage(&names)).unwrap();
                total += start.elapsed();
                assert_eq!(manager.cache().len(), N);
            }
            total
        })
    });
    group.finish();
    let _ = MemoryStorage::new();
}

criterion_group!(benches, lookups, load_from_storage);
criterion_main!(benches);
