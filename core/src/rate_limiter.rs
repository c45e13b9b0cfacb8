//! Limits on new orders per (CA, account), shared by every manager in the process that uses the
//! same CA and account: the policy chosen for a CA, and the limiter that enforces it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

// Tokio's clock (the system clock unless a test pauses it), so the tests run in virtual time.
use tokio::time::Instant;

use crate::config::{LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, RateLimit};

/// The limits on new orders a configuration runs with: the caller's
/// ([`ConfigBuilder::rate_limit`](crate::ConfigBuilder::rate_limit)), or the ones chosen for
/// its CA by [`OrderRatePolicy::for_ca`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRatePolicy {
    /// Where the limits come from.
    pub source: String,
    /// Sliding windows; an order waits until every one of them has room.
    pub limits: Vec<RateLimit>,
}

/// Let's Encrypt's published "new orders per account" limit: 300 per 3 hours (a token bucket
/// refilling one every 36 s; a sliding window of the same size never exceeds it).
const LETS_ENCRYPT_NEW_ORDERS: RateLimit = RateLimit {
    events: 300,
    window: Duration::from_secs(3 * 3600),
};

/// For a CA without published limits: Let's Encrypt's account limit (the strictest a public
/// ACME CA documents that we know of) and at most 10 orders a second, so that a small private
/// CA is never flooded.
const UNKNOWN_CA_BURST: RateLimit = RateLimit {
    events: 10,
    window: Duration::from_secs(1),
};

impl OrderRatePolicy {
    /// The published limits of a CA we know, else a conservative default (see the README).
    pub fn for_ca(directory_url: &str) -> OrderRatePolicy {
        if directory_url == LETS_ENCRYPT_PRODUCTION || directory_url == LETS_ENCRYPT_STAGING {
            // Staging's limits are higher than production's; production's are safe for both.
            return OrderRatePolicy {
                source: "Let's Encrypt's published limit".into(),
                limits: vec![LETS_ENCRYPT_NEW_ORDERS],
            };
        }
        OrderRatePolicy {
            source: "default for a CA without published limits".into(),
            limits: vec![LETS_ENCRYPT_NEW_ORDERS, UNKNOWN_CA_BURST],
        }
    }

    /// Exactly the caller's limit.
    pub fn configured(limit: RateLimit) -> OrderRatePolicy {
        OrderRatePolicy {
            source: "configured".into(),
            limits: if limit.events == 0 {
                Vec::new()
            } else {
                vec![limit]
            },
        }
    }
}

impl fmt::Display for OrderRatePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.source)?;
        if self.limits.is_empty() {
            return f.write_str("no limit");
        }
        for (i, l) in self.limits.iter().enumerate() {
            let sep = if i == 0 { "" } else { " and " };
            write!(f, "{sep}{} orders per {}", l.events, span(l.window))?;
        }
        f.write_str(" per account")
    }
}

fn span(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        format!("{} ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// Enforces an [`OrderRatePolicy`]: an acquisition waits until every window has room.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: Vec<RateLimit>,
    /// Times of past acquisitions, oldest first, kept as long as the longest window.
    recent: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// The limiter shared by every user of `key` with the same limits in this process.
    pub fn shared(key: &str, policy: &OrderRatePolicy) -> Arc<Self> {
        type Limiters = Mutex<HashMap<(String, Vec<RateLimit>), Arc<RateLimiter>>>;
        static ALL: OnceLock<Limiters> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        all.entry((key.to_string(), policy.limits.clone()))
            .or_insert_with(|| {
                Arc::new(Self {
                    limits: policy.limits.clone(),
                    recent: Default::default(),
                })
            })
            .clone()
    }

    /// Waits until one more event fits in every window, then records it.
    pub async fn acquire(&self) {
        let Some(longest) = self.limits.iter().map(|l| l.window).max() else {
            return;
        };
        // Holding the async mutex while sleeping queues waiters in order.
        let mut recent = self.recent.lock().await;
        loop {
            let now = Instant::now();
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= longest)
            {
                recent.pop_front();
            }
            let wait = self
                .limits
                .iter()
                .filter_map(|l| wait_for_room(&recent, l, now))
                .max();
            let Some(wait) = wait else {
                recent.push_back(now);
                return;
            };
            tracing::debug!(wait = ?wait, "order rate limit reached; waiting");
            tokio::time::sleep(wait).await;
        }
    }
}

/// How long until `limit` has room for one more event, if it has none now.
fn wait_for_room(recent: &VecDeque<Instant>, limit: &RateLimit, now: Instant) -> Option<Duration> {
    let in_window = recent
        .iter()
        .rev()
        .take_while(|t| now.duration_since(**t) < limit.window)
        .count();
    if in_window < limit.events {
        return None;
    }
    // Room comes when the oldest of the last `events` events leaves the window.
    let oldest = recent[recent.len() - limit.events];
    Some(limit.window.saturating_sub(now.duration_since(oldest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limits: &[(usize, u64)]) -> OrderRatePolicy {
        OrderRatePolicy {
            source: "test".into(),
            limits: limits
                .iter()
                .map(|(events, secs)| RateLimit {
                    events: *events,
                    window: Duration::from_secs(*secs),
                })
                .collect(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn limits_events_per_window() {
        let rl = RateLimiter::shared("test-ca|a", &policy(&[(3, 10)]));
        let start = Instant::now();
        for _ in 0..3 {
            rl.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        rl.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(10));
        let off = RateLimiter::shared(
            "test-ca|b",
            &OrderRatePolicy::configured(RateLimit {
                events: 0,
                window: Duration::ZERO,
            }),
        );
        for _ in 0..100 {
            off.acquire().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_window_must_have_room() {
        // 2 per second, 5 per minute: 5 acquisitions take 2 s, the 6th waits for the minute.
        let rl = RateLimiter::shared("test-ca|c", &policy(&[(2, 1), (5, 60)]));
        let start = Instant::now();
        for _ in 0..5 {
            rl.acquire().await;
        }
        let five = start.elapsed();
        assert!(
            five >= Duration::from_secs(2) && five < Duration::from_secs(3),
            "{five:?}"
        );
        rl.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(60));
    }

    #[test]
    fn policy_by_ca() {
        let le = OrderRatePolicy::for_ca(LETS_ENCRYPT_PRODUCTION);
        assert_eq!(le.limits, vec![LETS_ENCRYPT_NEW_ORDERS]);
        assert_eq!(
            le.to_string(),
            "Let's Encrypt's published limit: 300 orders per 3 h per account"
        );
        let other = OrderRatePolicy::for_ca("https://ca.internal/acme/directory");
        assert_eq!(
            other.to_string(),
            "default for a CA without published limits: 300 orders per 3 h and 10 orders per 1 s per account"
        );
        let off = OrderRatePolicy::configured(RateLimit {
            events: 0,
            window: Duration::ZERO,
        });
        assert_eq!(off.to_string(), "configured: no limit");
    }
}
