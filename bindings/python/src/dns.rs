//! DNS-01 from Python: a built-in provider by name (credentials from the environment) or as a
//! dict of settings, or any object with `append_records(zone, records)` and
//! `delete_records(zone, records)` methods (plain or `async def`), records being dicts
//! `{"name", "type", "value", "ttl", "id"?}` with names relative to the zone.

use std::sync::Arc;

use certmagic::dns::providers;
use certmagic::runtime::CallbackGuard;
use certmagic::{DnsProvider, DnsRecord, ErrorKind};
use pyo3::prelude::*;

use crate::bridge::check;
use crate::errors::{from_callback, interpreter_gone};

/// The provider `value` describes: a name, a dict of settings, or a provider object.
pub(crate) fn provider(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Arc<dyn DnsProvider>> {
    if let Ok(name) = value.extract::<String>() {
        return check(providers::from_spec(&name));
    }
    if value.cast::<pyo3::types::PyDict>().is_ok() {
        let json: String = py
            .import("json")?
            .call_method1("dumps", (value,))?
            .extract()?;
        return check(providers::from_spec(&json));
    }
    for m in ["append_records", "delete_records"] {
        if !value.getattr(m).is_ok_and(|a| a.is_callable()) {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "dns_provider: {} is not a provider name, a dict of settings, or an object with append_records and delete_records methods (no `{m}`)",
                value.get_type().name()?
            )));
        }
    }
    Ok(Arc::new(PyDnsProvider {
        obj: Arc::new(value.clone().unbind()),
        repr: value.repr()?.to_string(),
    }))
}

struct PyDnsProvider {
    obj: Arc<Py<PyAny>>,
    repr: String,
}

impl std::fmt::Debug for PyDnsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PyDnsProvider({})", self.repr)
    }
}

impl PyDnsProvider {
    /// Calls `method(zone, records)` on a blocking thread and settles an awaitable result; a
    /// list of records returned replaces the given ones (to carry provider ids).
    async fn call(
        &self,
        method: &'static str,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        let obj = self.obj.clone();
        let zone = zone.to_string();
        let json = serde_json::to_string(records)?;
        let given = records.to_vec();
        let what = format!("dns_provider.{method}({zone:?})");
        certmagic::runtime::spawn_blocking(move || {
            let _in_callback = CallbackGuard::enter();
            Python::try_attach(|py| {
                let outcome = (|| -> PyResult<Option<String>> {
                    let json_mod = py.import("json")?;
                    let records = json_mod.call_method1("loads", (json,))?;
                    let result = obj.bind(py).call_method1(method, (zone, records))?;
                    let settled = py
                        .import("certmagic._bridge")?
                        .call_method1("settle", (result,))?;
                    if settled.is_none() {
                        return Ok(None);
                    }
                    Ok(Some(json_mod.call_method1("dumps", (settled,))?.extract()?))
                })();
                let returned = outcome
                    .map_err(|e| from_callback(py, &what, e).with_kind(ErrorKind::Challenge))?;
                match returned {
                    None => Ok(given),
                    Some(text) => serde_json::from_str(&text).map_err(|e| {
                        certmagic::Error::new(
                            ErrorKind::Challenge,
                            format!("{what} returned something that is not a list of records: {e}"),
                        )
                    }),
                }
            })
            .unwrap_or_else(|| Err(interpreter_gone(&what)))
        })
        .await?
    }
}

#[certmagic::async_trait]
impl DnsProvider for PyDnsProvider {
    async fn append_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.call("append_records", zone, records).await
    }

    async fn delete_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.call("delete_records", zone, records).await
    }
}
