//! Storage locks that are leases, for the database storages (Redis, PostgreSQL): a record with
//! an expiry that its holder pushes forward while it holds the lock, so that the lock of a
//! process that died frees itself. A backend says how to take, extend and release one record;
//! this module does the rest the same way for every backend:
//!
//! - waiting is a poll every [`POLL_INTERVAL`] with ±25 % jitter (so a fleet that waits for
//!   the same lock does not ask in step), cut short when a lock of this process is released;
//! - a held lease is extended every [`REFRESH_INTERVAL`] by a task of its own, and one failed
//!   extension (the database restarting) is retried at the next tick: the lease lasts
//!   [`LEASE_TTL`], three ticks;
//! - a lease is released (or extended) only while the record still holds this holder's token,
//!   so a lock that expired and was taken by another process is never released by the first.
//!
//! A `lock` cancelled after the backend took the record but before it was noted here leaves a
//! record nobody extends: it expires after [`LEASE_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::Result;

/// How long a lease lasts past its last extension. Longer than redislock's 5 s as Caddy's Redis
/// storage uses it: a loaded machine that misses one extension by a second keeps its lock.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often a held lease is extended.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(3);
/// How often a waiter asks again (before jitter).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One backend's records of leases.
#[async_trait]
pub(crate) trait LeaseBackend: Send + Sync + 'static {
    /// Takes lease `name` for [`LEASE_TTL`] unless someone holds an unexpired one; the token
    /// that identifies this holding.
    async fn try_acquire(&self, name: &str) -> Result<Option<String>>;
    /// Extends the lease by [`LEASE_TTL`] if `token` still holds it; the token from now on, or
    /// `None` if the lease was lost.
    async fn extend(&self, name: &str, token: &str) -> Result<Option<String>>;
    /// Removes the lease if `token` still holds it; whether it did.
    async fn release(&self, name: &str, token: &str) -> Result<bool>;
}

struct Held {
    /// Held by the refresher while it extends (an extension may change the token), and by
    /// `unlock` while it stops the refresher and releases.
    token: Arc<tokio::sync::Mutex<String>>,
    refresher: JoinHandle<()>,
}

/// The leases this process holds through one storage value.
pub(crate) struct Leases<B: LeaseBackend> {
    backend: Arc<B>,
    held: Mutex<HashMap<String, Held>>,
    released: Notify,
}

impl<B: LeaseBackend> Leases<B> {
    pub fn new(backend: Arc<B>) -> Self {
        Self {
            backend,
            held: Mutex::new(HashMap::new()),
            released: Notify::new(),
        }
    }

    /// Waits until lease `name` is ours.
    pub async fn lock(&self, name: &str) -> Result<()> {
        loop {
            let released = self.released.notified();
            if let Some(token) = self.backend.try_acquire(name).await? {
                self.keep(name, token);
                tracing::debug!(lock = name, "lock acquired");
                return Ok(());
            }
            let jitter = rand::rng().random_range(0.75..1.25);
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL.mul_f64(jitter)) => {}
                _ = released => {}
            }
        }
    }

    fn keep(&self, name: &str, token: String) {
        let token = Arc::new(tokio::sync::Mutex::new(token));
        let refresher = tokio::spawn(refresh(
            self.backend.clone(),
            name.to_string(),
            token.clone(),
        ));
        let previous = self
            .held_map()
            .insert(name.to_string(), Held { token, refresher });
        if let Some(p) = previous {
            p.refresher.abort();
        }
    }

    /// Releases lease `name` if this storage value holds it.
    pub async fn unlock(&self, name: &str) -> Result<()> {
        let held = self.held_map().remove(name);
        let Some(held) = held else {
            tracing::warn!(
                lock = name,
                "unlock of a lock this storage does not hold; left alone"
            );
            return Ok(());
        };
        let result = {
            // Waits for an extension in flight, so the token is the record's.
            let token = held.token.lock().await;
            held.refresher.abort();
            self.backend.release(name, &token).await
        };
        self.released.notify_waiters();
        match result {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(
                    lock = name,
                    "lock expired and was taken by another holder before it was released"
                );
                Ok(())
            }
            Err(e) => Err(e.context(format!("unlock `{name}`"))),
        }
    }

    /// Releases every lease held through this storage value.
    pub async fn release_all(&self) -> Result<()> {
        let names: Vec<String> = self.held_map().keys().cloned().collect();
        let mut first_err = None;
        for name in names {
            if let Err(e) = self.unlock(&name).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn held_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<B: LeaseBackend> Drop for Leases<B> {
    fn drop(&mut self) {
        // Leases must not outlive the storage value that took them: released in the
        // background when a runtime is at hand, else they expire.
        let held: Vec<(String, Held)> = self.held_map().drain().collect();
        let runtime = tokio::runtime::Handle::try_current().ok();
        for (name, h) in held {
            h.refresher.abort();
            if let Some(rt) = &runtime {
                let backend = self.backend.clone();
                rt.spawn(async move {
                    let token = h.token.lock().await.clone();
                    let _ = backend.release(&name, &token).await;
                });
            }
        }
    }
}

async fn refresh<B: LeaseBackend>(
    backend: Arc<B>,
    name: String,
    token: Arc<tokio::sync::Mutex<String>>,
) {
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + REFRESH_INTERVAL,
        REFRESH_INTERVAL,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut current = token.lock().await;
        match backend.extend(&name, &current).await {
            Ok(Some(next)) => *current = next,
            Ok(None) => {
                tracing::warn!(lock = %name, "lock expired while held (another holder may run)");
                return;
            }
            Err(e) => tracing::warn!(lock = %name, error = %e, "extending lock; retrying"),
        }
    }
}
