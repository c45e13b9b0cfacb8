//! The internal Tokio runtime: started lazily by the first manager (so a pre-fork server such as
//! nginx can create managers in each worker after `fork()`), blocking wrappers for callers without
//! a runtime, and guards that turn would-be deadlocks into [`ErrorKind::Reentrant`] errors.

use std::cell::Cell;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, ErrorKind, Result};

/// The runtime and the process that built it. A child of `fork()` gets a runtime of its own: the
/// parent's worker threads do not exist in the child.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The handle of the library's runtime, starting it on first use (and again after a fork).
pub fn handle() -> Result<Handle> {
    let pid = std::process::id();
    let mut guard = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, rt)) = guard.as_ref()
        && *owner == pid
    {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            WORKER_THREADS
                .min(std::thread::available_parallelism().map_or(2, |n| n.get()))
                .max(2),
        )
        .thread_name("certmagic")
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("starting the certmagic runtime: {e}")))?;
    let handle = rt.handle().clone();
    // aws-lc seeds its random generator on first use from CPU-jitter entropy, which costs tens
    // of milliseconds of CPU: done now, in the background, so that no TLS handshake (the first
    // one after start, or after a fork) waits for it.
    handle.spawn_blocking(|| {
        let _ = aws_lc_rs::rand::fill(&mut [0u8; 1]);
    });
    if let Some((_, stale)) = guard.replace((pid, Arc::new(rt))) {
        // The parent's runtime: its threads are gone in this process, so it must never be
        // dropped here (dropping would wait for them forever).
        std::mem::forget(stale);
    }
    Ok(handle)
}

thread_local! {
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as running a user callback until dropped. Bindings wrap every call
/// into user code with it, so a blocking call back into the library is refused instead of
/// deadlocking.
#[derive(Debug)]
pub struct CallbackGuard {
    previous: bool,
}

impl CallbackGuard {
    /// Enters a callback on this thread.
    pub fn enter() -> Self {
        Self {
            previous: IN_CALLBACK.with(|c| c.replace(true)),
        }
    }
}

impl Drop for CallbackGuard {
    fn drop(&mut self) {
        IN_CALLBACK.with(|c| c.set(self.previous));
    }
}

/// Refuses a blocking call where it would deadlock or panic: inside any Tokio runtime or inside
/// a library callback.
pub fn check_blocking_allowed(what: &str) -> Result<()> {
    if IN_CALLBACK.with(Cell::get) {
        return Err(Error::new(
            ErrorKind::Reentrant,
            format!("{what}: blocking call made from inside a certmagic callback"),
        ));
    }
    if Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::Reentrant,
            format!(
                "{what}: blocking call made from inside an async runtime; use the async method"
            ),
        ));
    }
    Ok(())
}

/// Runs `fut` on the library runtime and blocks the calling thread until it is done.
pub fn block_on<T: Send + 'static>(
    what: &str,
    fut: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    check_blocking_allowed(what)?;
    let handle = handle()?;
    // Spawned (not `Handle::block_on`) so the work runs on the runtime's workers and a panic in it
    // comes back as an error.
    let join = handle.spawn(fut);
    match handle.block_on(join) {
        Ok(res) => res,
        Err(e) => Err(join_error(what, e)),
    }
}

/// Runs `fut` on the library runtime and awaits it from any executor.
pub async fn spawn<T: Send + 'static>(
    what: &str,
    fut: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let handle = handle()?;
    match handle.spawn(fut).await {
        Ok(res) => res,
        Err(e) => Err(join_error(what, e)),
    }
}

/// Runs blocking work (a user callback, file I/O) on the library runtime's blocking pool.
pub async fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let handle = handle()?;
    handle
        .spawn_blocking(f)
        .await
        .map_err(|e| join_error("blocking call", e))
}

/// The text of a panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

/// Runs `f`, turning a panic into an [`ErrorKind::Internal`] error naming `what`: for the entry
/// points of bindings, where a panic must never reach the host process.
pub fn catch_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|p| Error::internal(format!("{what} panicked: {}", panic_text(&*p))))
}

pub(crate) fn join_error(what: &str, e: tokio::task::JoinError) -> Error {
    if e.is_panic() {
        Error::internal(format!(
            "{what}: panicked: {}",
            crate::runtime::panic_text(&*e.into_panic())
        ))
    } else {
        Error::new(ErrorKind::Cancelled, format!("{what}: cancelled"))
    }
}

/// Worker threads of the runtime (at most the number of CPUs, at least 2). Blocking work (file
/// I/O, user callbacks) runs on Tokio's separate blocking pool.
const WORKER_THREADS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_calls_work_outside_and_are_refused_inside() {
        assert_eq!(block_on("t", async { Ok(41 + 1) }).unwrap(), 42);
        let err = block_on("t", async { Ok(block_on("inner", async { Ok(()) })) })
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Reentrant);
        {
            let _g = CallbackGuard::enter();
            assert_eq!(
                block_on("cb", async { Ok(()) }).unwrap_err().kind(),
                ErrorKind::Reentrant
            );
        }
        block_on("after", async { Ok(()) }).unwrap();
    }

    #[test]
    fn panics_become_errors() {
        let err = block_on::<()>("p", async { panic!("boom") }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().contains("boom"));
    }
}
