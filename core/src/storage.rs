//! The storage contract. Implementations live in [`file`](mod@file), [`memory`](mod@memory),
//! and, for fleets, `redis` and `postgres` (cargo features `storage-redis`,
//! `storage-postgres`; [`location::open`] picks one from a folder or URL); bindings add their
//! own (C callbacks, Python and Node objects) by implementing [`Storage`].
//!
//! # Contract
//! - Keys are `/`-separated, without leading or trailing slash; [`keys`] builds every key the
//!   library uses, in Go CertMagic's layout.
//! - `store` replaces a value atomically: a concurrent `load` sees the old or the new bytes,
//!   never a mix or a truncated file.
//! - `load`, `stat` and `list` of a missing key fail with [`ErrorKind::NotFound`];
//!   `delete` of a missing key succeeds; `delete` of a "directory" removes its subtree.
//! - `lock(name)` blocks until the named lock is held by the caller, across every process and
//!   machine that shares the storage; `unlock(name)` releases it, and only if the caller still
//!   holds it. Locks of a process that vanished must expire (FileStorage: 10 s after the last
//!   refresh; Redis and PostgreSQL: 10 s after the last extension, see `lease.rs`).
//! - Every method is safe to call concurrently from many tasks. Dropping a returned future
//!   cancels the operation.
//!
//! [`ErrorKind::NotFound`]: crate::ErrorKind::NotFound

pub mod file;
pub(crate) mod file_lock;
mod file_mode;
pub mod foreign;
pub mod keys;
#[cfg(any(feature = "storage-redis", feature = "storage-postgres"))]
mod lease;
pub mod location;
pub mod memory;
#[cfg(feature = "storage-postgres")]
pub mod postgres;
#[cfg(feature = "storage-redis")]
pub mod redis;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::runtime::Handle;

use crate::error::Result;

/// What [`Storage::stat`] says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key, as asked.
    pub key: String,
    /// Last modification time.
    pub modified: SystemTime,
    /// Size in bytes (0 for a directory).
    pub size: u64,
    /// True for a value, false for a "directory" holding other keys.
    pub is_terminal: bool,
}

/// A key-value store shared by every instance that manages the same certificates.
///
/// See the [module documentation](self) for the contract every implementation keeps.
#[async_trait]
pub trait Storage: Send + Sync + Debug + 'static {
    /// Stores `value` at `key`, atomically replacing any previous value.
    async fn store(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Loads the value at `key`; [`NotFound`](crate::ErrorKind::NotFound) if absent.
    async fn load(&self, key: &str) -> Result<Vec<u8>>;
    /// Loads several keys (a certificate's chain, key and metadata), one result per key in
    /// order. The default loads them concurrently with [`Storage::load`]; a storage that can
    /// fetch them in one round trip (one blocking hop for files) overrides it.
    async fn load_many(&self, keys: &[&str]) -> Vec<Result<Vec<u8>>> {
        join_all(keys.iter().map(|k| self.load(k)).collect()).await
    }
    /// Deletes `key` and everything under it; succeeds if absent.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Whether `key` exists (as a value or as a prefix of other keys).
    async fn exists(&self, key: &str) -> Result<bool>;
    /// The keys under `prefix`: its direct children (values and "directories"), or every key
    /// below it if `recursive`. Sorted.
    async fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>>;
    /// Information about `key`.
    async fn stat(&self, key: &str) -> Result<KeyInfo>;
    /// Acquires the named lock, waiting as long as it takes (cancel by dropping the future;
    /// the engine does so past the lock deadline of
    /// [`CallbackDeadlines`](crate::CallbackDeadlines), when one is set).
    async fn lock(&self, name: &str) -> Result<()>;
    /// Releases the named lock.
    async fn unlock(&self, name: &str) -> Result<()>;
    /// Releases every lock this process holds through this storage (called at shutdown).
    async fn release_own_locks(&self) -> Result<()> {
        Ok(())
    }
}

/// A held storage lock; released explicitly, or in the background if the holder is dropped
/// (a cancelled obtain must not keep the name locked).
pub(crate) struct LockGuard {
    storage: Arc<dyn Storage>,
    name: String,
    runtime: Handle,
    held: bool,
}

impl LockGuard {
    pub(crate) async fn acquire(
        storage: Arc<dyn Storage>,
        name: String,
        runtime: &Handle,
    ) -> Result<Self> {
        storage
            .lock(&name)
            .await
            .map_err(|e| e.context(format!("lock `{name}`")))?;
        Ok(Self {
            storage,
            name,
            runtime: runtime.clone(),
            held: true,
        })
    }

    pub(crate) async fn release(mut self) {
        self.held = false;
        if let Err(e) = self.storage.unlock(&self.name).await {
            tracing::warn!(lock = %self.name, error = %e, "releasing lock");
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.held {
            let (storage, name) = (self.storage.clone(), std::mem::take(&mut self.name));
            self.runtime.spawn(async move {
                let _ = storage.unlock(&name).await;
            });
        }
    }
}

/// Runs every future to completion concurrently; their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
