//! Where a cached certificate's memory goes: Rust heap (counted by a global allocator) against
//! RSS growth, per certificate, while a manager loads the names of a `bench-server` spec from
//! their storage (first 1,000, then the rest). Usage (after `BENCH_KEEP=1 make bench`):
//! `cargo run --release -p certmagic-bench --example heap -- <folder>/cold-ours-10000-0/spec.json`.
//! The difference is the C heap (aws-lc keys), allocator overhead and fragmentation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, counting the bytes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let path = std::env::args().nth(1).expect("usage: heap SPEC.json");
    let spec: certmagic_bench::ServerSpec =
        serde_json::from_slice(&std::fs::read(path).expect("read spec")).expect("spec");
    assert!(
        spec.names.len() > 1000,
        "the spec needs more than 1,000 names"
    );
    let rss = || certmagic_bench::procfs::rss_kib(std::process::id()) as f64 * 1024.0;
    let heap = || LIVE.load(Ordering::Relaxed) as f64;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = certmagic::Config::builder()
            .ca(&spec.ca)
            .agreed(true)
            .storage(Arc::new(certmagic::FileStorage::new(&spec.storage)))
            .build()
            .expect("config");
        let manager = certmagic::Manager::new(config).expect("manager");
        manager.manage(&spec.names[..1000]).await.expect("manage");
        let (heap0, rss0) = (heap(), rss());
        manager.manage(&spec.names).await.expect("manage");
        let n = (spec.names.len() - 1000) as f64;
        println!(
            "per certificate: Rust heap {:.0} B, RSS {:.0} B",
            (heap() - heap0) / n,
            (rss() - rss0) / n
        );
    });
}
