//! Waiting for the engine from Python: blocking calls detach from the interpreter and wait in
//! slices so Ctrl-C still works; async calls return an asyncio future completed from the
//! engine's threads. Callback results that are awaitables are settled by `certmagic._bridge`.

use std::future::Future;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use certmagic::runtime;
use pyo3::prelude::*;
use tokio_abort::AbortOnCancel;

use crate::errors::{to_py, to_py_attached};

/// Runs `fut` on the engine's runtime and waits for it without holding the interpreter.
/// KeyboardInterrupt (or any signal handler's exception) cancels the work and is raised.
pub(crate) fn block<T: Send + 'static>(
    py: Python<'_>,
    what: &str,
    fut: impl Future<Output = certmagic::Result<T>> + Send + 'static,
) -> PyResult<T> {
    runtime::check_blocking_allowed(what).map_err(|e| to_py(py, &e))?;
    let handle = runtime::handle().map_err(|e| to_py(py, &e))?;
    let bridge = py.import("certmagic._bridge")?;
    bridge.call_method0("blocking_begin")?;
    let (tx, rx) = channel();
    let task = handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    // Behind a mutex only so a reference may cross into the detached closure.
    let rx = std::sync::Mutex::new(rx);
    let outcome = loop {
        match py.detach(|| {
            rx.lock()
                .map_err(|_| RecvTimeoutError::Disconnected)?
                .recv_timeout(WAIT_SLICE)
        }) {
            Ok(res) => break res.map_err(|e| to_py(py, &e)),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    task.abort();
                    break Err(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Err(to_py(
                    py,
                    &certmagic::Error::new(
                        certmagic::ErrorKind::Internal,
                        format!("{what}: the task ended without a result"),
                    ),
                ));
            }
        }
    };
    bridge.call_method0("blocking_end")?;
    outcome
}

/// Runs `fut` on the engine's runtime and returns an asyncio future of the running loop, set
/// from the engine's thread with `convert`ed result. Cancelling the future cancels the work.
pub(crate) fn awaitable<'py, T: Send + 'static>(
    py: Python<'py>,
    fut: impl Future<Output = certmagic::Result<T>> + Send + 'static,
    convert: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    py.import("certmagic._bridge")?
        .call_method1("remember_loop", (&event_loop,))?;
    let future = event_loop.call_method0("create_future")?;
    let handle = runtime::handle().map_err(|e| to_py(py, &e))?;
    let (loop_ref, future_ref) = (event_loop.clone().unbind(), future.clone().unbind());
    let task = handle.spawn(async move {
        let result = fut.await;
        Python::try_attach(|py| {
            let (ok, value) = match result
                .map_err(|e| to_py(py, &e))
                .and_then(|v| convert(py, v))
            {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            let resolve = match py
                .import("certmagic._bridge")
                .and_then(|m| m.getattr("resolve"))
            {
                Ok(r) => r,
                Err(e) => return e.write_unraisable(py, None),
            };
            if let Err(e) =
                loop_ref.call_method1(py, "call_soon_threadsafe", (resolve, future_ref, ok, value))
            {
                // The loop is closed: nobody awaits the result any more.
                drop(e);
            }
        });
    });
    future.call_method1(
        "add_done_callback",
        (AbortOnCancel::new(task.abort_handle()),),
    )?;
    Ok(future)
}

/// Turns a core result into a Python error, taking the interpreter for the purpose.
pub(crate) fn check<T>(res: certmagic::Result<T>) -> PyResult<T> {
    res.map_err(to_py_attached)
}

/// The interval at which a blocking wait looks for signals (Ctrl-C).
const WAIT_SLICE: Duration = Duration::from_millis(100);

mod tokio_abort {
    use pyo3::prelude::*;

    /// A done-callback that cancels the engine's task when the Python future was cancelled.
    #[pyclass(frozen)]
    #[derive(Debug)]
    pub struct AbortOnCancel {
        handle: tokio::task::AbortHandle,
    }

    impl AbortOnCancel {
        pub fn new(handle: tokio::task::AbortHandle) -> Self {
            Self { handle }
        }
    }

    #[pymethods]
    impl AbortOnCancel {
        fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
            if future.call_method0("cancelled")?.is_truthy()? {
                self.handle.abort();
            }
            Ok(())
        }
    }
}
