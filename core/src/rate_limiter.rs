//! A sliding-window limit on new orders per (CA, account), shared by every manager in the
//! process that uses the same CA and account (Go CertMagic: 10 orders per 10 s).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// At most `limit.events` acquisitions in any `limit.window`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    recent: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// The limiter shared by every user of `key` in this process.
    pub fn shared(key: &str, limit: RateLimit) -> Arc<Self> {
        type Limiters = Mutex<HashMap<(String, usize, Duration), Arc<RateLimiter>>>;
        static ALL: OnceLock<Limiters> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        all.entry((key.to_string(), limit.events, limit.window))
            .or_insert_with(|| {
                Arc::new(Self {
                    limit,
                    recent: Default::default(),
                })
            })
            .clone()
    }

    /// Waits until one more event fits in the window, then records it.
    pub async fn acquire(&self) {
        if self.limit.events == 0 {
            return;
        }
        // Holding the async mutex while sleeping queues waiters in order.
        let mut recent = self.recent.lock().await;
        loop {
            let now = Instant::now();
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.limit.window)
            {
                recent.pop_front();
            }
            if recent.len() < self.limit.events {
                recent.push_back(now);
                return;
            }
            let oldest = *recent.front().unwrap_or(&now);
            let wait = self.limit.window.saturating_sub(now.duration_since(oldest));
            tracing::debug!(wait = ?wait, "order rate limit reached; waiting");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limits_events_per_window() {
        let rl = RateLimiter::shared(
            "test-ca|a",
            RateLimit {
                events: 3,
                window: Duration::from_secs(10),
            },
        );
        let start = Instant::now();
        for _ in 0..3 {
            rl.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        rl.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(10));
        let off = RateLimiter::shared(
            "test-ca|b",
            RateLimit {
                events: 0,
                window: Duration::ZERO,
            },
        );
        for _ in 0..100 {
            off.acquire().await;
        }
    }
}
