//! The maintenance loop renews every managed certificate when it is due, including those the
//! cache evicted (cache capacity).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use certmagic::{Config, Manager, MemoryStorage};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn evicted_managed_certificates_are_renewed_too() {
    const NAMES: usize = 30;
    // Certificates valid 12 s: due when a third (4 s) is left.
    let issuer = Arc::new(LocalIssuer::new(Duration::from_secs(12)));
    let config = Config::builder()
        .storage(Arc::new(MemoryStorage::new()))
        .cache_capacity(10)
        .renew_check_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let manager = Manager::with_issuer(config, issuer.clone()).unwrap();
    let names: Vec<String> = (0..NAMES).map(|i| format!("n{i}.evicted.test")).collect();
    manager.manage(&names).await.unwrap();
    assert!(manager.cache().len() <= 10);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: Vec<&String> = names.iter().filter(|n| issuer.count_for(n) < 2).collect();
        if waiting.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {NAMES} names were never renewed: {waiting:?}",
            waiting.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(manager.cache().len() <= 10, "the capacity holds");
    manager.shutdown().await.unwrap();
}
