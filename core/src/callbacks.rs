//! The one deadline policy for code the engine calls back into (a storage, a DNS provider, the
//! on-demand decision, event handlers), the same whether that code is Rust, C, Python or
//! JavaScript: each kind of call may take at most its [`CallbackDeadlines`] entry, then the
//! engine goes on with a [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) error naming the call
//! (the callback itself cannot be stopped: a C or Python function runs on to its end on its
//! thread, a JavaScript promise settles into nothing, and a lock granted late is given back).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::dns::{DnsProvider, DnsRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{KeyInfo, Storage};

/// How long each kind of callback may take (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackDeadlines {
    /// One storage call other than `lock` (default 60 s).
    pub storage: Option<Duration>,
    /// Waiting for a storage lock (default none: a lock is legitimately held for a whole
    /// order, which may take as long as the order timeout).
    pub lock: Option<Duration>,
    /// One DNS provider call (default 2 minutes).
    pub dns: Option<Duration>,
    /// The on-demand decision for one name (default 60 s).
    pub decision: Option<Duration>,
    /// One event handler call (default 60 s); past it, an event that may cancel its operation
    /// cancels it.
    pub events: Option<Duration>,
}

impl Default for CallbackDeadlines {
    fn default() -> Self {
        Self {
            storage: Some(Duration::from_secs(60)),
            lock: None,
            dns: Some(Duration::from_secs(120)),
            decision: Some(Duration::from_secs(60)),
            events: Some(Duration::from_secs(60)),
        }
    }
}

/// `fut`, or a timeout error naming `what` once `deadline` has passed.
pub(crate) async fn with_deadline<T>(
    deadline: Option<Duration>,
    what: impl FnOnce() -> String,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match deadline {
        None => fut.await,
        Some(limit) => tokio::time::timeout(limit, fut)
            .await
            .unwrap_or_else(|_| Err(timed_out(&what(), limit))),
    }
}

pub(crate) fn timed_out(what: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("{what} did not return within {limit:?} (the callback deadline)"),
    )
}

/// A storage whose calls keep to the deadlines.
pub(crate) struct DeadlinedStorage {
    inner: Arc<dyn Storage>,
    deadlines: CallbackDeadlines,
}

impl DeadlinedStorage {
    /// `storage` under `deadlines`, or `storage` itself when no storage deadline is set.
    pub(crate) fn wrap(
        storage: Arc<dyn Storage>,
        deadlines: CallbackDeadlines,
    ) -> Arc<dyn Storage> {
        if deadlines.storage.is_none() && deadlines.lock.is_none() {
            return storage;
        }
        Arc::new(Self {
            inner: storage,
            deadlines,
        })
    }

    async fn call<T>(
        &self,
        op: &str,
        key: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        with_deadline(
            self.deadlines.storage,
            || format!("storage {op} `{key}`"),
            fut,
        )
        .await
    }
}

impl fmt::Debug for DeadlinedStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl Storage for DeadlinedStorage {
    async fn store(&self, key: &str, value: &[u8]) -> Result<()> {
        self.call("store", key, self.inner.store(key, value)).await
    }
    async fn load(&self, key: &str) -> Result<Vec<u8>> {
        self.call("load", key, self.inner.load(key)).await
    }
    async fn load_many(&self, keys: &[&str]) -> Vec<Result<Vec<u8>>> {
        let all = self.inner.load_many(keys);
        match self.deadlines.storage {
            None => all.await,
            Some(limit) => match tokio::time::timeout(limit, all).await {
                Ok(loaded) => loaded,
                Err(_) => keys
                    .iter()
                    .map(|k| Err(timed_out(&format!("storage load `{k}`"), limit)))
                    .collect(),
            },
        }
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.call("delete", key, self.inner.delete(key)).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.call("exists", key, self.inner.exists(key)).await
    }
    async fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>> {
        self.call("list", prefix, self.inner.list(prefix, recursive))
            .await
    }
    async fn stat(&self, key: &str) -> Result<KeyInfo> {
        self.call("stat", key, self.inner.stat(key)).await
    }
    async fn lock(&self, name: &str) -> Result<()> {
        with_deadline(
            self.deadlines.lock,
            || format!("storage lock `{name}`"),
            self.inner.lock(name),
        )
        .await
    }
    async fn unlock(&self, name: &str) -> Result<()> {
        self.call("unlock", name, self.inner.unlock(name)).await
    }
    async fn release_own_locks(&self) -> Result<()> {
        self.inner.release_own_locks().await
    }
}

/// A DNS provider whose calls keep to a deadline.
pub(crate) struct DeadlinedDns {
    inner: Arc<dyn DnsProvider>,
    deadline: Duration,
}

impl DeadlinedDns {
    /// `provider` under `deadline` (itself when there is none).
    pub(crate) fn wrap(
        provider: Arc<dyn DnsProvider>,
        deadline: Option<Duration>,
    ) -> Arc<dyn DnsProvider> {
        match deadline {
            None => provider,
            Some(deadline) => Arc::new(Self {
                inner: provider,
                deadline,
            }),
        }
    }
}

impl fmt::Debug for DeadlinedDns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl DnsProvider for DeadlinedDns {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        with_deadline(
            Some(self.deadline),
            || format!("DNS provider append_records({zone:?})"),
            self.inner.append_records(zone, records),
        )
        .await
    }
    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        with_deadline(
            Some(self.deadline),
            || format!("DNS provider delete_records({zone:?})"),
            self.inner.delete_records(zone, records),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    /// A storage whose loads never finish.
    #[derive(Debug)]
    struct Stuck(MemoryStorage);

    #[async_trait::async_trait]
    impl Storage for Stuck {
        async fn store(&self, key: &str, value: &[u8]) -> Result<()> {
            self.0.store(key, value).await
        }
        async fn load(&self, _: &str) -> Result<Vec<u8>> {
            std::future::pending().await
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.0.delete(key).await
        }
        async fn exists(&self, key: &str) -> Result<bool> {
            self.0.exists(key).await
        }
        async fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>> {
            self.0.list(prefix, recursive).await
        }
        async fn stat(&self, key: &str) -> Result<KeyInfo> {
            self.0.stat(key).await
        }
        async fn lock(&self, name: &str) -> Result<()> {
            self.0.lock(name).await
        }
        async fn unlock(&self, name: &str) -> Result<()> {
            self.0.unlock(name).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn storage_calls_keep_to_their_deadline_and_locks_to_theirs() {
        let deadlines = CallbackDeadlines {
            storage: Some(Duration::from_secs(1)),
            ..CallbackDeadlines::default()
        };
        let s = DeadlinedStorage::wrap(Arc::new(Stuck(MemoryStorage::new())), deadlines);
        let e = s.load("a/b").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.message().contains("storage load `a/b`"), "{e}");
        for r in s.load_many(&["x", "y"]).await {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
        }
        s.store("k", b"v").await.unwrap();
        // No lock deadline by default: a held lock is waited for (until the test gives up).
        s.lock("l").await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_secs(3600), s.lock("l")).await;
        assert!(waiting.is_err(), "still waiting after an hour");
        let with_lock_deadline = DeadlinedStorage::wrap(
            Arc::new(Stuck(MemoryStorage::new())),
            CallbackDeadlines {
                lock: Some(Duration::from_secs(5)),
                ..deadlines
            },
        );
        with_lock_deadline.lock("l").await.unwrap();
        let e = with_lock_deadline.lock("l").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }

    #[test]
    fn no_deadline_no_wrapper() {
        let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let none = CallbackDeadlines {
            storage: None,
            lock: None,
            ..CallbackDeadlines::default()
        };
        assert!(Arc::ptr_eq(
            &DeadlinedStorage::wrap(inner.clone(), none),
            &inner
        ));
    }
}
