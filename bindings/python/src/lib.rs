//! `certmagic._certmagic`: the native module under the `certmagic` Python package. Translation
//! only: every behaviour lives in the `certmagic` crate.

mod bridge;
mod certificate;
mod config;
mod dns;
mod errors;
mod events;
mod log;
mod manager;
mod storage;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// `(server_name, alpn_protocols)` of a ClientHello.
type Hello<'py> = (Option<String>, Vec<Bound<'py, PyBytes>>);

/// Parses the TLS ClientHello at the start of `data` (bytes peeked from a connection): returns
/// `(server_name, alpn_protocols)`, or None while more bytes are needed. Raises
/// `certmagic.CorruptError` if the bytes are not a ClientHello.
#[pyfunction]
fn peek_client_hello<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Option<Hello<'py>>> {
    errors::guard("peek_client_hello", || {
        match bridge::check(certmagic::peek_client_hello(data))? {
            certmagic::ClientHelloPeek::Incomplete => Ok(None),
            certmagic::ClientHelloPeek::Hello { server_name, alpn } => Ok(Some((
                server_name,
                alpn.iter().map(|p| PyBytes::new(py, p)).collect(),
            ))),
        }
    })
}

/// Where a plain-HTTP request is redirected: `https://host[:https_port]/path?query` (port left
/// out when 443), or None without a usable `Host`.
#[pyfunction]
fn https_redirect_location(
    host: &str,
    https_port: u16,
    path_and_query: &str,
) -> PyResult<Option<String>> {
    errors::guard("https_redirect_location", || {
        Ok(certmagic::https_redirect_location(
            host,
            https_port,
            path_and_query,
        ))
    })
}

#[pymodule]
fn _certmagic(m: &Bound<'_, PyModule>) -> PyResult<()> {
    log::install();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "LETS_ENCRYPT_PRODUCTION",
        certmagic::LETS_ENCRYPT_PRODUCTION,
    )?;
    m.add("LETS_ENCRYPT_STAGING", certmagic::LETS_ENCRYPT_STAGING)?;
    m.add("ZEROSSL", certmagic::ZEROSSL)?;
    m.add("GOOGLE_TRUST_SERVICES", certmagic::GOOGLE_TRUST_SERVICES)?;
    m.add(
        "GOOGLE_TRUST_SERVICES_STAGING",
        certmagic::GOOGLE_TRUST_SERVICES_STAGING,
    )?;
    m.add_class::<config::PyConfig>()?;
    m.add_class::<manager::PyManager>()?;
    m.add_class::<certificate::PyCertificate>()?;
    m.add_function(wrap_pyfunction!(peek_client_hello, m)?)?;
    m.add_function(wrap_pyfunction!(https_redirect_location, m)?)?;
    Ok(())
}
