//! Event and on-demand decision callbacks: Python callables (or coroutine functions), called on
//! blocking engine threads. An exception refuses an abortable event and becomes the cause of the
//! error the operation fails with.

use std::sync::Arc;

use certmagic::runtime::CallbackGuard;
use certmagic::{DecisionHandler, Event, EventHandler, HandlerError};
use pyo3::prelude::*;

/// Waits for a callback's result if it is awaitable (see `certmagic._bridge.settle`).
fn settle<'py>(py: Python<'py>, result: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    py.import("certmagic._bridge")?
        .call_method1("settle", (result,))
}

/// `on_event(name: str, data: dict)`.
pub(crate) struct PyEvents {
    pub callable: Arc<Py<PyAny>>,
}

impl EventHandler for PyEvents {
    fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let _in_callback = CallbackGuard::enter();
        let payload = event.payload().to_string();
        Python::try_attach(|py| -> PyResult<()> {
            let data = py.import("json")?.call_method1("loads", (payload,))?;
            settle(py, self.callable.bind(py).call1((event.name(), data))?).map(|_| ())
        })
        .unwrap_or(Ok(()))
        .map_err(|e| Box::new(e) as HandlerError)
    }
}

/// `on_demand_decision(name: str) -> bool | None`: True or None allows, False or an exception
/// refuses.
pub(crate) struct PyDecision {
    pub callable: Arc<Py<PyAny>>,
}

#[certmagic::async_trait]
impl DecisionHandler for PyDecision {
    async fn decide(&self, name: &str) -> Result<(), HandlerError> {
        let callable = self.callable.clone();
        let name = name.to_string();
        // Python code may block: it runs on a blocking thread, holding the GIL only for the call.
        certmagic::runtime::spawn_blocking(move || {
            let _in_callback = CallbackGuard::enter();
            let verdict = Python::try_attach(|py| -> PyResult<bool> {
                let v = settle(py, callable.bind(py).call1((name.as_str(),))?)?;
                Ok(v.is_none() || v.is_truthy()?)
            });
            match verdict {
                Some(Ok(true)) => Ok(()),
                Some(Ok(false)) => Err(format!("the decision refused `{name}`").into()),
                Some(Err(e)) => Err(Box::new(e) as HandlerError),
                None => Err("the Python interpreter is shutting down".into()),
            }
        })
        .await
        .map_err(|e| Box::new(e) as HandlerError)?
    }
}
