//! `Certificate`: a read-only view of a core certificate snapshot.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A certificate chain with its private key. Immutable: renewal yields a new one.
#[pyclass(frozen, name = "Certificate", module = "certmagic._certmagic")]
#[derive(Debug)]
pub struct PyCertificate {
    pub(crate) inner: Arc<certmagic::Certificate>,
}

impl PyCertificate {
    pub(crate) fn new(inner: Arc<certmagic::Certificate>) -> Self {
        Self { inner }
    }

    pub(crate) fn object(
        py: Python<'_>,
        inner: Arc<certmagic::Certificate>,
    ) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, Self::new(inner))?.into_any())
    }
}

fn datetime_utc(py: Python<'_>, t: SystemTime) -> PyResult<Bound<'_, PyAny>> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let datetime = py.import("datetime")?;
    let utc = datetime.getattr("timezone")?.getattr("utc")?;
    datetime
        .getattr("datetime")?
        .call_method1("fromtimestamp", (secs, utc))
}

#[pymethods]
impl PyCertificate {
    /// The chain as PEM, leaf first.
    #[getter]
    fn chain_pem(&self) -> &str {
        self.inner.chain_pem()
    }

    /// The private key as PEM.
    #[getter]
    fn key_pem(&self) -> &str {
        self.inner.key_pem()
    }

    /// The chain as DER, leaf first.
    #[getter]
    fn chain_der<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.inner
            .chain_der()
            .iter()
            .map(|c| PyBytes::new(py, c.as_ref()))
            .collect()
    }

    /// The private key as DER.
    #[getter]
    fn key_der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.key_der().secret_der())
    }

    /// The names (DNS names, IP addresses) the certificate is for.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.inner.names().map(str::to_string).collect()
    }

    /// Start of validity (UTC).
    #[getter]
    fn not_before<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        datetime_utc(py, self.inner.not_before())
    }

    /// End of validity (UTC).
    #[getter]
    fn not_after<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        datetime_utc(py, self.inner.not_after())
    }

    /// The OCSP response to staple (DER), if a good one is known. Python's `ssl` cannot
    /// staple on the server side; servers built on other TLS stacks can use it.
    #[getter]
    fn ocsp_staple<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.ocsp_staple().map(|o| PyBytes::new(py, o))
    }

    /// The status of the last checked OCSP response: "good", "revoked", "unknown", or None
    /// when there is none (stapling off, no responder named, or it failed).
    #[getter]
    fn ocsp_status(&self) -> Option<&'static str> {
        self.inner.ocsp_response().map(|r| r.status().as_str())
    }

    /// True if the library obtained (and renews) it; False if it was added by hand.
    #[getter]
    fn is_managed(&self) -> bool {
        self.inner.is_managed()
    }

    /// SHA-256 of the DER chain: equal for the same certificate.
    #[getter]
    fn hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.hash())
    }

    /// The leaf's serial number, lower-case hex.
    #[getter]
    fn serial(&self) -> String {
        self.inner.serial_hex()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyCertificate>()
            .is_ok_and(|o| o.get().inner.hash() == self.inner.hash())
    }

    fn __hash__(&self) -> u64 {
        let h = self.inner.hash();
        u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
    }

    fn __repr__(&self) -> String {
        format!("<Certificate {:?} serial={}>", self.names(), self.serial())
    }
}
