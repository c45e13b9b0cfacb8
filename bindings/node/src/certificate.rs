//! Certificates as JavaScript objects.

use std::time::{SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

/// A certificate for JavaScript.
#[napi(object)]
#[allow(missing_debug_implementations)] // holds napi Buffers, which have no Debug
pub struct CertificateData {
    pub cert_pem: String,
    pub key_pem: String,
    pub names: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub not_before: f64,
    /// Milliseconds since the Unix epoch.
    pub not_after: f64,
    pub ocsp_staple: Option<Buffer>,
    /// `good`, `revoked` or `unknown`: the last checked OCSP response's status.
    pub ocsp_status: Option<String>,
    pub managed: bool,
    /// SHA-256 of the DER chain, hex: equal for the same certificate.
    pub hash: String,
    pub serial: String,
}

fn millis(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<&certmagic::Certificate> for CertificateData {
    fn from(c: &certmagic::Certificate) -> Self {
        Self {
            cert_pem: c.chain_pem().to_string(),
            key_pem: c.key_pem().to_string(),
            names: c.names().map(str::to_string).collect(),
            not_before: millis(c.not_before()),
            not_after: millis(c.not_after()),
            ocsp_staple: c.ocsp_staple().map(|o| Buffer::from(o.to_vec())),
            ocsp_status: c.ocsp_response().map(|r| r.status().as_str().to_string()),
            managed: c.is_managed(),
            hash: hex(c.hash()),
            serial: c.serial_hex(),
        }
    }
}
