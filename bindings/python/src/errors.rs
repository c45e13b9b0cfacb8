//! The one mapping from the core's `ErrorKind` to the `certmagic.Error` tree (defined in
//! `certmagic/errors.py`), and from Python exceptions raised in callbacks back into core errors.
//! A callback's exception travels inside the core error and comes out as `__cause__`.

use certmagic::{Error, ErrorKind};
use pyo3::prelude::*;

fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidConfig => "ConfigError",
        ErrorKind::InvalidName => "InvalidNameError",
        ErrorKind::Storage => "StorageError",
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::Corrupt => "CorruptError",
        ErrorKind::Acme => "AcmeError",
        ErrorKind::Challenge => "ChallengeError",
        ErrorKind::Certificate => "CertificateError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::Cancelled => "CancelledError",
        ErrorKind::Aborted => "AbortedError",
        ErrorKind::ShutDown => "ShutDownError",
        ErrorKind::Reentrant => "ReentrantError",
        ErrorKind::WrongProcess => "WrongProcessError",
        _ => "InternalError",
    }
}

/// The Python exception for a core error, with `kind`, `field`, `problem_type`, `detail` and
/// `status` attributes, and the callback exception that caused it as `__cause__`.
pub(crate) fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    let err = &match err.config_field() {
        Some(field) => err.clone().spelled(crate::config::keyword(field)),
        None => err.clone(),
    };
    let build = || -> PyResult<PyErr> {
        let class = py
            .import("certmagic.errors")?
            .getattr(class_name(err.kind()))?;
        let exc = class.call1((err.to_string(),))?;
        exc.setattr("kind", err.kind().as_str())?;
        exc.setattr("field", err.field())?;
        if let Some(p) = err.problem() {
            exc.setattr("problem_type", p.problem_type.clone())?;
            exc.setattr("detail", p.detail.clone())?;
            exc.setattr("status", p.status)?;
        }
        let pyerr = PyErr::from_value(exc);
        if let Some(cause) = python_cause(err) {
            pyerr.set_cause(py, Some(cause.clone_ref(py)));
        }
        Ok(pyerr)
    };
    build().unwrap_or_else(|e| e)
}

/// Converts with the GIL taken for the purpose.
pub(crate) fn to_py_attached(err: Error) -> PyErr {
    Python::attach(|py| to_py(py, &err))
}

fn python_cause(err: &Error) -> Option<&PyErr> {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(p) = s.downcast_ref::<PyErr>() {
            return Some(p);
        }
        source = s.source();
    }
    None
}

/// A core error for an exception a callback raised; `KeyError`, `FileNotFoundError` and
/// `certmagic.NotFoundError` mean "not found".
pub(crate) fn from_callback(py: Python<'_>, what: &str, err: PyErr) -> Error {
    let not_found = err.is_instance_of::<pyo3::exceptions::PyKeyError>(py)
        || err.is_instance_of::<pyo3::exceptions::PyFileNotFoundError>(py)
        || py
            .import("certmagic.errors")
            .and_then(|m| m.getattr("NotFoundError"))
            .is_ok_and(|cls| err.matches(py, cls).unwrap_or(false));
    let kind = if not_found {
        ErrorKind::NotFound
    } else {
        ErrorKind::Storage
    };
    Error::new(kind, format!("{what} raised {err}")).with_source(err)
}

/// The core error for "the interpreter is gone".
pub(crate) fn interpreter_gone(what: &str) -> Error {
    Error::new(
        ErrorKind::Cancelled,
        format!("{what}: the Python interpreter is shutting down"),
    )
}

/// Runs the body of a Python entry point: a panic becomes `certmagic.InternalError` instead of
/// PyO3's `PanicException` (a `BaseException`, which `except Exception` does not catch).
pub(crate) fn guard<T>(what: &str, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    certmagic::runtime::catch_panic(what, body).map_err(to_py_attached)?
}
