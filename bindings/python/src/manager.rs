//! `Manager`: the engine for Python. Blocking `*_sync` methods release the interpreter while
//! they wait (and still answer Ctrl-C); the others return awaitables for asyncio.

use certmagic::{Manager, RevocationReason};
use pyo3::prelude::*;

use crate::bridge::{awaitable, block, check};
use crate::certificate::PyCertificate;
use crate::config::PyConfig;
use crate::errors::guard;

/// Obtains, renews and serves certificates for names.
#[pyclass(frozen, subclass, name = "Manager", module = "certmagic._certmagic")]
#[derive(Debug)]
pub struct PyManager {
    inner: Manager,
}

/// A reason as the caller gave it: a name (`"key_compromise"`) or an RFC 5280 code, parsed by
/// the core.
fn reason(value: &Bound<'_, PyAny>) -> PyResult<RevocationReason> {
    use pyo3::types::{PyBool, PyInt, PyString};
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyString>() || value.is_instance_of::<PyInt>())
    {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "reason must be a name or an RFC 5280 code, got {}",
            value.get_type().name()?
        )));
    }
    check(value.str()?.to_string().parse::<RevocationReason>())
}

fn none_or_cert(
    py: Python<'_>,
    cert: Option<std::sync::Arc<certmagic::Certificate>>,
) -> PyResult<Py<PyAny>> {
    match cert {
        Some(c) => PyCertificate::object(py, c),
        None => Ok(py.None()),
    }
}

fn unit(py: Python<'_>, _: ()) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}

#[pymethods]
impl PyManager {
    #[new]
    fn new(config: &PyConfig) -> PyResult<Self> {
        guard("Manager.new", || {
            Ok(Self {
                inner: check(Manager::new(config.inner.clone()))?,
            })
        })
    }

    /// Obtains or loads certificates for `names` now and keeps them renewed; raises the first
    /// failure. Blocks (without holding the interpreter).
    fn manage_sync(&self, py: Python<'_>, names: Vec<String>) -> PyResult<()> {
        guard("Manager.manage_sync", || {
            let m = self.inner.clone();
            block(py, "manage_sync", async move { m.manage(&names).await })
        })
    }

    /// `await manage(names)`: as `manage_sync`, while the event loop keeps running.
    fn manage<'py>(&self, py: Python<'py>, names: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.manage", || {
            let m = self.inner.clone();
            awaitable(py, async move { m.manage(&names).await }, unit)
        })
    }

    /// Manages `names` in the background, retrying failures; returns at once.
    fn manage_background(&self, names: Vec<String>) -> PyResult<()> {
        guard("Manager.manage_background", || {
            check(self.inner.manage_background(&names))
        })
    }

    /// Obtains a new certificate for `name` now (or a fresh one from storage). Blocks.
    fn obtain_sync(&self, py: Python<'_>, name: String) -> PyResult<PyCertificate> {
        guard("Manager.obtain_sync", || {
            let m = self.inner.clone();
            block(py, "obtain_sync", async move { m.obtain(&name).await }).map(PyCertificate::new)
        })
    }

    /// `await obtain(name)`.
    fn obtain<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.obtain", || {
            let m = self.inner.clone();
            awaitable(
                py,
                async move { m.obtain(&name).await },
                PyCertificate::object,
            )
        })
    }

    /// Renews the certificate of `name` now, due or not. Blocks.
    fn renew_sync(&self, py: Python<'_>, name: String) -> PyResult<PyCertificate> {
        guard("Manager.renew_sync", || {
            let m = self.inner.clone();
            block(py, "renew_sync", async move { m.renew(&name).await }).map(PyCertificate::new)
        })
    }

    /// `await renew(name)`.
    fn renew<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.renew", || {
            let m = self.inner.clone();
            awaitable(
                py,
                async move { m.renew(&name).await },
                PyCertificate::object,
            )
        })
    }

    /// Revokes the certificate of `name`, deletes its files, stops managing it. Blocks.
    #[pyo3(signature = (name, reason = None))]
    fn revoke_sync(
        &self,
        py: Python<'_>,
        name: String,
        reason: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        guard("Manager.revoke_sync", || {
            let r = reason
                .map(|r| self::reason(&r))
                .transpose()?
                .unwrap_or_default();
            let m = self.inner.clone();
            block(py, "revoke_sync", async move { m.revoke(&name, r).await })
        })
    }

    /// `await revoke(name, reason)`.
    #[pyo3(signature = (name, reason = None))]
    fn revoke<'py>(
        &self,
        py: Python<'py>,
        name: String,
        reason: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.revoke", || {
            let r = reason
                .map(|r| self::reason(&r))
                .transpose()?
                .unwrap_or_default();
            let m = self.inner.clone();
            awaitable(py, async move { m.revoke(&name, r).await }, unit)
        })
    }

    /// The certificate a handshake for `server_name` gets (exact, then wildcard), or None.
    /// A memory lookup: never blocks.
    fn get_certificate(&self, server_name: &str) -> PyResult<Option<PyCertificate>> {
        guard("Manager.get_certificate", || {
            Ok({
                self.inner
                    .get_certificate(server_name)
                    .map(PyCertificate::new)
            })
        })
    }

    /// Adds a certificate obtained elsewhere (PEM chain, leaf first, and PEM key): served for its
    /// names, never renewed.
    fn add_certificate(
        &self,
        chain_pem: &Bound<'_, PyAny>,
        key_pem: &Bound<'_, PyAny>,
    ) -> PyResult<PyCertificate> {
        guard("Manager.add_certificate", || {
            let bytes = |v: &Bound<'_, PyAny>| -> PyResult<Vec<u8>> {
                match v.extract::<String>() {
                    Ok(s) => Ok(s.into_bytes()),
                    Err(_) => v.extract::<Vec<u8>>(),
                }
            };
            check(
                self.inner
                    .add_certificate(&bytes(chain_pem)?, &bytes(key_pem)?),
            )
            .map(PyCertificate::new)
        })
    }

    /// The body answering an HTTP-01 request for `host` and `path`, or None if it is not one.
    /// Blocks briefly (may read storage).
    fn http_challenge_answer_sync(
        &self,
        py: Python<'_>,
        host: String,
        path: String,
    ) -> PyResult<Option<String>> {
        guard("Manager.http_challenge_answer_sync", || {
            let m = self.inner.clone();
            block(py, "http_challenge_answer_sync", async move {
                Ok(m.handle_http_challenge(&host, &path).await)
            })
        })
    }

    /// `await http_challenge_answer(host, path)`.
    fn http_challenge_answer<'py>(
        &self,
        py: Python<'py>,
        host: String,
        path: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.http_challenge_answer", || {
            let m = self.inner.clone();
            awaitable(
                py,
                async move { Ok(m.handle_http_challenge(&host, &path).await) },
                |py, v| Ok(v.into_pyobject(py)?.into_any().unbind()),
            )
        })
    }

    /// `await tls_alpn_challenge_certificate(server_name, alpn)`: the certificate answering a
    /// TLS-ALPN-01 validation (ALPN exactly `[b"acme-tls/1"]`), or None.
    fn tls_alpn_challenge_certificate<'py>(
        &self,
        py: Python<'py>,
        server_name: String,
        alpn: Vec<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.tls_alpn_challenge_certificate", || {
            let m = self.inner.clone();
            awaitable(
                py,
                async move {
                    let refs: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
                    Ok(m.tls_alpn_challenge_cert(&server_name, &refs).await)
                },
                none_or_cert,
            )
        })
    }

    /// `await certificate_for_handshake(server_name, alpn=None)`: the certificate for a TLS
    /// handshake from its ClientHello: cached, loaded from storage, or (with on-demand TLS)
    /// decided on and obtained, the event loop running meanwhile.
    #[pyo3(signature = (server_name, alpn = None))]
    fn certificate_for_handshake<'py>(
        &self,
        py: Python<'py>,
        server_name: Option<String>,
        alpn: Option<Vec<Vec<u8>>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.certificate_for_handshake", || {
            let m = self.inner.clone();
            let alpn = alpn.unwrap_or_default();
            awaitable(
                py,
                async move {
                    let refs: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
                    m.certificate_for_handshake(server_name.as_deref(), &refs)
                        .await
                },
                PyCertificate::object,
            )
        })
    }

    /// Blocking `certificate_for_handshake`, for threaded servers (releases the GIL).
    #[pyo3(signature = (server_name, alpn = None))]
    fn certificate_for_handshake_sync(
        &self,
        py: Python<'_>,
        server_name: Option<String>,
        alpn: Option<Vec<Vec<u8>>>,
    ) -> PyResult<PyCertificate> {
        guard("Manager.certificate_for_handshake_sync", || {
            let m = self.inner.clone();
            let alpn = alpn.unwrap_or_default();
            block(py, "certificate_for_handshake_sync", async move {
                let refs: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
                m.certificate_for_handshake(server_name.as_deref(), &refs)
                    .await
            })
            .map(PyCertificate::new)
        })
    }

    /// Stops background work and releases this process's storage locks. Blocks briefly.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        guard("Manager.close", || {
            let m = self.inner.clone();
            block(py, "close", async move { m.shutdown().await })
        })
    }

    /// `await aclose()`.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.aclose", || {
            let m = self.inner.clone();
            awaitable(py, async move { m.shutdown().await }, unit)
        })
    }

    /// The storage folder name of the CA (`certificates/<issuer_key>/…`), before sanitising.
    #[getter]
    fn issuer_key(&self) -> &str {
        self.inner.issuer_key()
    }

    /// Every issuer's key, in configured order.
    #[getter]
    fn issuer_keys(&self) -> Vec<String> {
        self.inner.issuer_keys().map(str::to_string).collect()
    }

    /// The local CA's root certificate (PEM), for clients to trust; creates the CA in storage
    /// if it has none. Blocks.
    fn local_root_pem_sync(&self, py: Python<'_>) -> PyResult<String> {
        guard("Manager.local_root_pem_sync", || {
            let m = self.inner.clone();
            block(py, "local_root_pem_sync", async move {
                m.local_root_pem().await
            })
        })
    }

    /// `await local_root_pem()`.
    fn local_root_pem<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard("Manager.local_root_pem", || {
            let m = self.inner.clone();
            awaitable(py, async move { m.local_root_pem().await }, |py, pem| {
                Ok(pyo3::types::PyString::new(py, &pem).into_any().unbind())
            })
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        guard("Manager.__exit__", || {
            self.close(py)?;
            Ok(false)
        })
    }
}
