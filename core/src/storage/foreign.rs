//! Storages implemented outside Rust: C callbacks and Python objects through [`BlockingStorage`]
//! (each call on a blocking thread, marked as a callback), JavaScript objects through
//! [`lock_detached`]. What they share is the lock rule: a foreign `lock` cannot be cancelled
//! once it started, so a caller that stops waiting (a timed-out on-demand obtain, a shutdown)
//! must not leave behind a lock acquired late; it is released as soon as it is acquired.
//!
//! Lock calls also wait on at most [`LOCK_THREADS`] blocking threads at a time: a thousand names
//! starting together must not take every thread of the blocking pool, which the holders of
//! those locks need for their own storage calls and events (they would wait for each other
//! for ever).

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Semaphore, oneshot};

use super::{KeyInfo, Storage};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::{self, CallbackGuard};

/// A storage whose methods block: the [`Storage`] contract, called on blocking threads (wrap it
/// in [`Blocking`]). Every call runs inside a [`CallbackGuard`], so a blocking call back into
/// the library is refused instead of deadlocking.
pub trait BlockingStorage: Send + Sync + Debug + 'static {
    /// [`Storage::store`].
    fn store(&self, key: &str, value: &[u8]) -> Result<()>;
    /// [`Storage::load`].
    fn load(&self, key: &str) -> Result<Vec<u8>>;
    /// [`Storage::delete`].
    fn delete(&self, key: &str) -> Result<()>;
    /// [`Storage::exists`].
    fn exists(&self, key: &str) -> Result<bool>;
    /// [`Storage::list`].
    fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>>;
    /// [`Storage::stat`].
    fn stat(&self, key: &str) -> Result<KeyInfo>;
    /// [`Storage::lock`]: may block as long as the lock is held elsewhere.
    fn lock(&self, name: &str) -> Result<()>;
    /// [`Storage::unlock`].
    fn unlock(&self, name: &str) -> Result<()>;
}

/// The async [`Storage`] over a [`BlockingStorage`].
#[derive(Debug)]
pub struct Blocking<S>(Arc<S>);

impl<S: BlockingStorage> Blocking<S> {
    /// Wraps `storage`.
    pub fn new(storage: S) -> Self {
        Self(Arc::new(storage))
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.0
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&S) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let s = self.0.clone();
        runtime::spawn_blocking(move || {
            let _in_callback = CallbackGuard::enter();
            f(&s)
        })
        .await?
    }
}

#[async_trait]
impl<S: BlockingStorage> Storage for Blocking<S> {
    async fn store(&self, key: &str, value: &[u8]) -> Result<()> {
        let (k, v) = (key.to_string(), value.to_vec());
        self.call(move |s| s.store(&k, &v)).await
    }

    async fn load(&self, key: &str) -> Result<Vec<u8>> {
        let k = key.to_string();
        self.call(move |s| s.load(&k)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let k = key.to_string();
        self.call(move |s| s.delete(&k)).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let k = key.to_string();
        self.call(move |s| s.exists(&k)).await
    }

    async fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>> {
        let p = prefix.to_string();
        self.call(move |s| s.list(&p, recursive)).await
    }

    async fn stat(&self, key: &str) -> Result<KeyInfo> {
        let k = key.to_string();
        self.call(move |s| s.stat(&k)).await
    }

    async fn lock(&self, name: &str) -> Result<()> {
        // Waiting for a thread is cancellable; once the callback runs, it is not.
        let permit = lock_threads()
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("lock threads closed"))?;
        let (s, n) = (self.0.clone(), name.to_string());
        let (su, nu) = (self.0.clone(), name.to_string());
        lock_detached(
            async move {
                runtime::spawn_blocking(move || {
                    let _permit = permit;
                    let _in_callback = CallbackGuard::enter();
                    s.lock(&n)
                })
                .await?
            },
            move || -> ReleaseFuture {
                Box::pin(async move {
                    runtime::spawn_blocking(move || {
                        let _in_callback = CallbackGuard::enter();
                        su.unlock(&nu)
                    })
                    .await?
                })
            },
        )
        .await
    }

    async fn unlock(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        self.call(move |s| s.unlock(&n)).await
    }
}

/// What [`lock_detached`] runs to give back a lock acquired after its caller stopped waiting.
pub type ReleaseFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// Acquires a lock with `acquire`, work that goes on once started (a blocking callback, a
/// JavaScript promise), as a task of its own. If the caller stops waiting and the lock is
/// acquired all the same, `release` gives it back at once.
pub async fn lock_detached<A>(
    acquire: A,
    release: impl FnOnce() -> ReleaseFuture + Send + 'static,
) -> Result<()>
where
    A: Future<Output = Result<()>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<Result<()>>();
    let release = Arc::new(std::sync::Mutex::new(Some(release)));
    let late = release.clone();
    runtime::handle()?.spawn(async move {
        if tx.is_closed() {
            return; // nobody waits any more: do not even start
        }
        let outcome = acquire.await;
        if let Err(Ok(())) = tx.send(outcome) {
            release_late(&late).await;
        }
    });
    let mut waiting = Waiting {
        rx: Some(rx),
        release,
    };
    let rx = waiting.rx.as_mut().map(Pin::new);
    let outcome = match rx {
        Some(rx) => rx.await,
        None => return Err(Error::internal("lock waiter without a channel")),
    };
    waiting.rx = None; // answered: nothing to give back on drop
    outcome.unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::Cancelled,
            "the lock task ended without an answer",
        ))
    })
}

type SharedRelease<F> = Arc<std::sync::Mutex<Option<F>>>;

async fn release_late<F: FnOnce() -> ReleaseFuture>(release: &SharedRelease<F>) {
    let f = release.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(f) = f {
        match f().await {
            Ok(()) => tracing::debug!("released a lock acquired after its waiter gave up"),
            Err(e) => {
                tracing::warn!(error = %e, "releasing a lock acquired after its waiter gave up")
            }
        }
    }
}

/// The waiting side of [`lock_detached`]: dropped before it read the answer, it releases a lock
/// that was acquired in the meantime.
struct Waiting<F: FnOnce() -> ReleaseFuture + Send + 'static> {
    rx: Option<oneshot::Receiver<Result<()>>>,
    release: SharedRelease<F>,
}

impl<F: FnOnce() -> ReleaseFuture + Send + 'static> Drop for Waiting<F> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        rx.close();
        if let Ok(Ok(())) = rx.try_recv() {
            let release = self.release.clone();
            if let Ok(handle) = runtime::handle() {
                handle.spawn(async move { release_late(&release).await });
            }
        }
    }
}

fn lock_threads() -> &'static Arc<Semaphore> {
    static THREADS: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();
    THREADS.get_or_init(|| Arc::new(Semaphore::new(LOCK_THREADS)))
}

/// Blocking `lock` calls waiting at once; further lock calls wait without a thread.
pub const LOCK_THREADS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    /// Locks that block until a gate opens, counting unlocks.
    #[derive(Debug, Default)]
    struct Gated {
        open: Mutex<bool>,
        opened: Condvar,
        locked: AtomicUsize,
        unlocked: AtomicUsize,
    }

    impl BlockingStorage for Gated {
        fn store(&self, _: &str, _: &[u8]) -> Result<()> {
            Ok(())
        }
        fn load(&self, key: &str) -> Result<Vec<u8>> {
            Err(Error::new(ErrorKind::NotFound, key.to_string()))
        }
        fn delete(&self, _: &str) -> Result<()> {
            Ok(())
        }
        fn exists(&self, _: &str) -> Result<bool> {
            Ok(false)
        }
        fn list(&self, _: &str, _: bool) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
        fn stat(&self, key: &str) -> Result<KeyInfo> {
            Err(Error::new(ErrorKind::NotFound, key.to_string()))
        }
        fn lock(&self, _: &str) -> Result<()> {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            self.locked.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn unlock(&self, _: &str) -> Result<()> {
            self.unlocked.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn a_lock_acquired_after_its_waiter_left_is_released() {
        let storage = Arc::new(Blocking::new(Gated::default()));
        let s = storage.clone();
        runtime::block_on("t", async move {
            let waited =
                tokio::time::timeout(Duration::from_millis(200), s.lock("issue_cert_a")).await;
            assert!(waited.is_err(), "the lock is still closed");
            *s.inner().open.lock().unwrap() = true;
            s.inner().opened.notify_all();
            for _ in 0..100 {
                if s.inner().unlocked.load(Ordering::SeqCst) == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(s.inner().locked.load(Ordering::SeqCst), 1);
            assert_eq!(
                s.inner().unlocked.load(Ordering::SeqCst),
                1,
                "released for the waiter that left"
            );
            // A waiter that stays gets its lock, and nothing is released behind its back.
            s.lock("issue_cert_b").await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(s.inner().unlocked.load(Ordering::SeqCst), 1);
            Ok(())
        })
        .unwrap();
    }
}
