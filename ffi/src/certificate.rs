//! `certmagic_certificate`: an immutable snapshot of a chain and its key. A counted reference
//! (Arc): thread-safe. Views (`certmagic_bytes`) into it are valid until that reference is freed;
//! nothing is copied to hand them out.

use std::time::UNIX_EPOCH;

use certmagic::Certificate;

use crate::boundary::{Failure, FfiResult, call, guard};
use crate::handle::{self, ArcCastable, Castable};
use crate::result::certmagic_result;
use crate::slice::certmagic_bytes;

/// A certificate chain with its private key. Release each reference with
/// `certmagic_certificate_free`. Thread-safe; immutable (renewal makes a new one).
#[derive(Debug)]
pub struct certmagic_certificate {
    _private: [u8; 0],
}

impl Castable for certmagic_certificate {
    type Rust = Certificate;
}
impl ArcCastable for certmagic_certificate {}

/// # Safety
/// `cert` NULL or live.
unsafe fn cert<'a>(cert: *const certmagic_certificate) -> FfiResult<&'a Certificate> {
    // SAFETY: per the contract above.
    unsafe { handle::arc_ref(cert, "cert") }
}

/// # Safety
/// `cert` NULL or live; `out` NULL or valid for one `certmagic_bytes`.
unsafe fn view(
    cert_ptr: *const certmagic_certificate,
    out: *mut certmagic_bytes,
    pick: impl for<'c> FnOnce(&'c Certificate) -> FfiResult<&'c [u8]>,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above; the view borrows from the Arc the caller holds.
        let c = unsafe { cert(cert_ptr) }?;
        let bytes = pick(c)?;
        // SAFETY: per the contract above.
        unsafe { handle::write_out(out, certmagic_bytes::of(bytes), "out") }
    })
}

/// Releases a reference. NULL is ignored.
///
/// # Safety
/// `cert` NULL or a live reference; it and its views are invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_free(cert: *const certmagic_certificate) {
    // SAFETY: per the contract above.
    guard((), || unsafe { handle::arc_free(cert) })
}

/// The chain as PEM, leaf first.
///
/// # Safety
/// `cert` live; `out` valid for one `certmagic_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_chain_pem(
    cert: *const certmagic_certificate,
    out: *mut certmagic_bytes,
) -> certmagic_result {
    // SAFETY: per the contract above.
    unsafe { view(cert, out, |c| Ok(c.chain_pem().as_bytes())) }
}

/// Number of certificates in the chain (leaf first); 0 if `cert` is NULL.
///
/// # Safety
/// `cert` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_chain_len(
    cert: *const certmagic_certificate,
) -> usize {
    // SAFETY: per the contract above.
    guard(0, || {
        unsafe { self::cert(cert) }.map_or(0, |c| c.chain_der().len())
    })
}

/// Certificate `index` of the chain (0 = leaf), DER. `CERTMAGIC_RESULT_INVALID_PARAMETER` if out of range.
///
/// # Safety
/// `cert` live; `out` valid for one `certmagic_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_chain_der(
    cert: *const certmagic_certificate,
    index: usize,
    out: *mut certmagic_bytes,
) -> certmagic_result {
    // SAFETY: per the contract above.
    unsafe {
        view(cert, out, |c| {
            let len = c.chain_der().len();
            c.chain_der().get(index).map(|d| d.as_ref()).ok_or_else(|| {
                Failure::invalid(format!(
                    "index {index} is past the chain's {len} certificates"
                ))
            })
        })
    }
}

/// The private key as PEM (`EC PRIVATE KEY`, `RSA PRIVATE KEY` or `PRIVATE KEY`).
///
/// # Safety
/// `cert` live; `out` valid for one `certmagic_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_key_pem(
    cert: *const certmagic_certificate,
    out: *mut certmagic_bytes,
) -> certmagic_result {
    // SAFETY: per the contract above.
    unsafe { view(cert, out, |c| Ok(c.key_pem().as_bytes())) }
}

/// The private key as DER (SEC1, PKCS#1 or PKCS#8, as `certmagic_certificate_key_pem` labels it).
///
/// # Safety
/// `cert` live; `out` valid for one `certmagic_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_key_der(
    cert: *const certmagic_certificate,
    out: *mut certmagic_bytes,
) -> certmagic_result {
    // SAFETY: per the contract above.
    unsafe { view(cert, out, |c| Ok(c.key_der().secret_der())) }
}

/// Number of names (DNS names and IP addresses) the certificate is for; 0 if `cert` is NULL.
///
/// # Safety
/// `cert` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_names_len(
    cert: *const certmagic_certificate,
) -> usize {
    // SAFETY: per the contract above.
    guard(0, || {
        unsafe { self::cert(cert) }.map_or(0, |c| c.names().len())
    })
}

/// Name `index` (UTF-8, not NUL-terminated). `CERTMAGIC_RESULT_INVALID_PARAMETER` if out of range.
///
/// # Safety
/// `cert` live; `out` valid for one `certmagic_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_names_get(
    cert: *const certmagic_certificate,
    index: usize,
    out: *mut certmagic_bytes,
) -> certmagic_result {
    // SAFETY: per the contract above.
    unsafe {
        view(cert, out, |c| {
            let len = c.names().len();
            c.names().nth(index).map(str::as_bytes).ok_or_else(|| {
                Failure::invalid(format!(
                    "index {index} is past the certificate's {len} names"
                ))
            })
        })
    }
}

fn unix_seconds(t: std::time::SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Start of validity, seconds since the Unix epoch (0 if `cert` is NULL).
///
/// # Safety
/// `cert` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_not_before(
    cert: *const certmagic_certificate,
) -> i64 {
    // SAFETY: per the contract above.
    guard(0, || {
        unsafe { self::cert(cert) }.map_or(0, |c| unix_seconds(c.not_before()))
    })
}

/// End of validity, seconds since the Unix epoch (0 if `cert` is NULL).
///
/// # Safety
/// `cert` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_not_after(
    cert: *const certmagic_certificate,
) -> i64 {
    // SAFETY: per the contract above.
    guard(0, || {
        unsafe { self::cert(cert) }.map_or(0, |c| unix_seconds(c.not_after()))
    })
}

/// The OCSP response to staple, DER; an empty view (`len` 0) when there is none (stapling off,
/// no responder named in the certificate, or no good answer yet). The view lives as long as
/// `cert`; a newer staple comes with a newer handle from `certmagic_manager_get_certificate`.
///
/// With OpenSSL, staple from the status callback (`SSL_CTX_set_tlsext_status_cb`), which runs
/// when a client asks for a status: copy the bytes with `OPENSSL_memdup` (OpenSSL frees them),
/// hand them to `SSL_set_tlsext_status_ocsp_resp`, return `SSL_TLSEXT_ERR_OK`, or
/// `SSL_TLSEXT_ERR_NOACK` without a staple (`examples/c/openssl_server.c` does this).
///
/// # Safety
/// `cert` live; `out` valid for one `certmagic_bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_ocsp_staple(
    cert: *const certmagic_certificate,
    out: *mut certmagic_bytes,
) -> certmagic_result {
    // SAFETY: per the contract above.
    unsafe { view(cert, out, |c| Ok(c.ocsp_staple().unwrap_or(&[]))) }
}

/// True if the library obtained (and renews) this certificate, false for one added by hand.
///
/// # Safety
/// `cert` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_certificate_is_managed(
    cert: *const certmagic_certificate,
) -> bool {
    // SAFETY: per the contract above.
    guard(false, || {
        unsafe { self::cert(cert) }.is_ok_and(|c| c.is_managed())
    })
}
