//! Entry points for a host's own servers: answer HTTP-01 requests and TLS-ALPN-01 handshakes for
//! challenges presented by this process or by any instance sharing the storage.

use std::ffi::c_char;

use crate::boundary::{Failure, FfiResult, call};
use crate::certificate::certmagic_certificate;
use crate::handle;
use crate::manager::certmagic_manager;
use crate::result::certmagic_result;
use crate::slice::{certmagic_bytes, text};

/// The ALPN protocols of a ClientHello, copied.
///
/// # Safety
/// `alpn` valid for `alpn_len` views, each valid for its length.
pub(crate) unsafe fn alpn_list(
    alpn: *const certmagic_bytes,
    alpn_len: usize,
) -> FfiResult<Vec<Vec<u8>>> {
    if alpn_len == 0 {
        return Ok(Vec::new());
    }
    if alpn.is_null() {
        return Err(Failure::null("alpn"));
    }
    // SAFETY: per the contract above.
    let views = unsafe { std::slice::from_raw_parts(alpn, alpn_len) };
    views
        .iter()
        // SAFETY: each view valid per the contract above.
        .map(|v| unsafe { crate::slice::bytes(v.data, v.len, "alpn[i]") }.map(<[u8]>::to_vec))
        .collect()
}

/// Answers an HTTP-01 validation request: `host` is the `Host` header (a port is ignored),
/// `path` the request path. On `CERTMAGIC_RESULT_OK` the response body (serve it as
/// `200 text/plain`) is copied into `buf` (NUL-terminated) and its length written to `out_n`;
/// `CERTMAGIC_RESULT_NOT_A_CHALLENGE` if the request is not for an active challenge (hand it to
/// your application); `CERTMAGIC_RESULT_BUFFER_TOO_SMALL` with the needed length in `out_n` if
/// `buf_len` is not more than it. Blocks briefly (may read storage).
///
/// # Safety
/// `manager` live; `host`, `path` NUL-terminated; `buf` valid for `buf_len` bytes; `out_n` for one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_http_challenge_sync(
    manager: *const certmagic_manager,
    host: *const c_char,
    path: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    out_n: *mut usize,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, host, path) = unsafe {
            (
                handle::arc_ref(manager, "manager")?,
                text(host, "host")?,
                text(path, "path")?,
            )
        };
        if out_n.is_null() {
            return Err(Failure::null("out_n"));
        }
        certmagic::runtime::check_blocking_allowed("certmagic_manager_http_challenge_sync")?;
        let (m2, host, path) = (m.clone(), host.to_string(), path.to_string());
        let answer = certmagic::runtime::block_on("http challenge", async move {
            Ok(m2.handle_http_challenge(&host, &path).await)
        })?
        .ok_or_else(|| {
            Failure::new(
                certmagic_result::NotAChallenge,
                "not a request for an active ACME challenge",
            )
        })?;
        // SAFETY: checked non-NULL above.
        unsafe { *out_n = answer.len() };
        if buf.is_null() || buf_len <= answer.len() {
            return Err(Failure::new(
                certmagic_result::BufferTooSmall,
                format!("the answer needs {} bytes and a NUL", answer.len()),
            ));
        }
        // SAFETY: `buf` holds more than answer.len() bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(answer.as_ptr(), buf.cast::<u8>(), answer.len());
            *buf.add(answer.len()) = 0;
        }
        Ok(())
    })
}

/// Answers a TLS-ALPN-01 validation handshake: given the ClientHello's SNI and ALPN protocols,
/// writes the challenge certificate (with its key: use `certmagic_certificate_chain_der` and
/// `certmagic_certificate_key_der`) to `*out`, and the server must select ALPN `acme-tls/1`.
/// `CERTMAGIC_RESULT_NOT_A_CHALLENGE` unless the ALPN list is exactly `["acme-tls/1"]` and a
/// challenge for that name is active. Blocks briefly (may read storage).
///
/// # Safety
/// `manager` live; `server_name` NUL-terminated; `alpn` valid for `alpn_len` views; `out` valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_tls_alpn_challenge_sync(
    manager: *const certmagic_manager,
    server_name: *const c_char,
    alpn: *const certmagic_bytes,
    alpn_len: usize,
    out: *mut *const certmagic_certificate,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, sni) = unsafe {
            (
                handle::arc_ref(manager, "manager")?,
                text(server_name, "server_name")?,
            )
        };
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        // SAFETY: per the contract above.
        let protocols = unsafe { alpn_list(alpn, alpn_len) }?;
        certmagic::runtime::check_blocking_allowed("certmagic_manager_tls_alpn_challenge_sync")?;
        let (m2, sni) = (m.clone(), sni.to_string());
        let cert = certmagic::runtime::block_on("tls-alpn challenge", async move {
            let refs: Vec<&[u8]> = protocols.iter().map(Vec::as_slice).collect();
            Ok(m2.tls_alpn_challenge_cert(&sni, &refs).await)
        })?
        .ok_or_else(|| {
            Failure::new(
                certmagic_result::NotAChallenge,
                "not a handshake for an active ACME challenge",
            )
        })?;
        // SAFETY: checked non-NULL above.
        unsafe { handle::write_out(out, handle::to_arc::<certmagic_certificate>(cert), "out") }
    })
}
