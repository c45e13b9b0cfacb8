//! Storage implemented by any Python object with `store`, `load`, `delete`, `exists`, `list`,
//! `stat`, `lock` and `unlock` methods, plain or `async def`. The engine makes each call on a
//! blocking thread (`certmagic::storage::foreign::Blocking`), holding the interpreter only for
//! the call.

use certmagic::KeyInfo;
use certmagic::storage::foreign::BlockingStorage;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{from_callback, interpreter_gone};

/// The methods a storage object must have.
pub(crate) const METHODS: [&str; 8] = [
    "store", "load", "delete", "exists", "list", "stat", "lock", "unlock",
];

pub(crate) struct PyStorage {
    obj: Py<PyAny>,
    repr: String,
}

impl std::fmt::Debug for PyStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PyStorage({})", self.repr)
    }
}

impl PyStorage {
    /// Checks that `obj` has every method (a `TypeError` names the first missing one).
    pub fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        for m in METHODS {
            if !obj.getattr(m).is_ok_and(|a| a.is_callable()) {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "storage: {} has no `{m}` method (a storage needs {})",
                    obj.get_type().name()?,
                    METHODS.join(", ")
                )));
            }
        }
        Ok(Self {
            obj: obj.clone().unbind(),
            repr: obj.repr()?.to_string(),
        })
    }

    /// Calls `method(*args)` (the engine is on a blocking thread), settles an awaitable result,
    /// converts it.
    fn call<T>(
        &self,
        method: &'static str,
        key: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>>,
        convert: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T>,
    ) -> certmagic::Result<T> {
        let what = format!("storage.{method}({key:?})");
        Python::try_attach(|py| {
            let outcome = (|| {
                let result = self.obj.bind(py).call_method1(method, args(py)?)?;
                let settled = py
                    .import("certmagic._bridge")?
                    .call_method1("settle", (result,))?;
                convert(&settled)
            })();
            outcome.map_err(|e| from_callback(py, &what, e))
        })
        .unwrap_or_else(|| Err(interpreter_gone(&what)))
    }
}

fn key_args(
    key: String,
) -> impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> + Send {
    move |py| pyo3::types::PyTuple::new(py, [key])
}

impl BlockingStorage for PyStorage {
    fn store(&self, key: &str, value: &[u8]) -> certmagic::Result<()> {
        let (k, v) = (key.to_string(), value.to_vec());
        self.call(
            "store",
            key,
            move |py| {
                pyo3::types::PyTuple::new(
                    py,
                    [
                        k.into_pyobject(py)?.into_any(),
                        PyBytes::new(py, &v).into_any(),
                    ],
                )
            },
            |_| Ok(()),
        )
    }

    fn load(&self, key: &str) -> certmagic::Result<Vec<u8>> {
        self.call("load", key, key_args(key.to_string()), |v| {
            if let Ok(s) = v.extract::<String>() {
                return Ok(s.into_bytes());
            }
            v.extract::<Vec<u8>>()
        })
    }

    fn delete(&self, key: &str) -> certmagic::Result<()> {
        self.call("delete", key, key_args(key.to_string()), |_| Ok(()))
    }

    fn exists(&self, key: &str) -> certmagic::Result<bool> {
        self.call("exists", key, key_args(key.to_string()), |v| v.is_truthy())
    }

    fn list(&self, prefix: &str, recursive: bool) -> certmagic::Result<Vec<String>> {
        let p = prefix.to_string();
        self.call(
            "list",
            prefix,
            move |py| {
                pyo3::types::PyTuple::new(
                    py,
                    [
                        p.into_pyobject(py)?.into_any(),
                        recursive.into_pyobject(py)?.to_owned().into_any(),
                    ],
                )
            },
            |v| v.extract::<Vec<String>>(),
        )
    }

    fn stat(&self, key: &str) -> certmagic::Result<KeyInfo> {
        let k = key.to_string();
        self.call("stat", key, key_args(key.to_string()), move |v| {
            // Any object with `modified` (datetime or Unix seconds), `size`, `is_terminal`, or a dict.
            let field = |name: &str| -> PyResult<Bound<'_, PyAny>> {
                match v.cast::<pyo3::types::PyDict>() {
                    Ok(d) => d
                        .get_item(name)?
                        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string())),
                    Err(_) => v.getattr(name),
                }
            };
            let modified = field("modified")?;
            let secs: f64 = match modified.call_method0("timestamp") {
                Ok(ts) => ts.extract()?,
                Err(_) => modified.extract()?,
            };
            let modified = certmagic::numbers::unix_time("modified", secs)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.message().to_string()))?;
            Ok(KeyInfo {
                key: k,
                modified,
                size: field("size")?.extract()?,
                is_terminal: field("is_terminal")?.is_truthy()?,
            })
        })
    }

    fn lock(&self, name: &str) -> certmagic::Result<()> {
        self.call("lock", name, key_args(name.to_string()), |_| Ok(()))
    }

    fn unlock(&self, name: &str) -> certmagic::Result<()> {
        self.call("unlock", name, key_args(name.to_string()), |_| Ok(()))
    }
}
