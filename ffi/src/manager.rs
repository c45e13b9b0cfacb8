//! `certmagic_manager`: obtains, stores, renews and serves certificates. A counted reference
//! (Arc): thread-safe, every function may be called from any thread at once.

use std::ffi::c_char;
use std::sync::Arc;

use certmagic::{Config, Manager, RevocationReason};

use crate::boundary::{Failure, FfiResult, call};
use crate::certificate::certmagic_certificate;
use crate::config::certmagic_config;
use crate::handle::{self, ArcCastable, Castable};
use crate::result::certmagic_result;
use crate::slice::{bytes, text, texts};

/// Manages certificates for names. Create with `certmagic_manager_new`, release with
/// `certmagic_manager_free`. Thread-safe.
///
/// Fork rules: the library's threads start with the first manager, in the process that creates
/// it. Create managers after `fork()` (e.g. in each nginx worker); a manager used in another
/// process than its creator's answers `CERTMAGIC_RESULT_WRONG_PROCESS`.
#[derive(Debug)]
pub struct certmagic_manager {
    _private: [u8; 0],
}

impl Castable for certmagic_manager {
    type Rust = Manager;
}
impl ArcCastable for certmagic_manager {}

/// # Safety
/// `manager` NULL or live.
unsafe fn manager<'a>(manager: *const certmagic_manager) -> FfiResult<&'a Manager> {
    // SAFETY: per the contract above.
    unsafe { handle::arc_ref(manager, "manager") }
}

/// Writes a certificate reference to `out`, which may be NULL when the caller does not want it.
///
/// # Safety
/// `out` NULL or valid for one pointer.
unsafe fn give(
    out: *mut *const certmagic_certificate,
    cert: Arc<certmagic::Certificate>,
) -> FfiResult {
    if !out.is_null() {
        // SAFETY: per the contract above.
        unsafe { out.write(handle::to_arc::<certmagic_certificate>(cert)) };
    }
    Ok(())
}

/// Runs a blocking per-name operation that yields a certificate, handing it to `out` (if set).
///
/// # Safety
/// `manager` live; `name` NUL-terminated; `out` NULL or valid for one pointer.
unsafe fn for_name(
    manager: *const certmagic_manager,
    name: *const c_char,
    out: *mut *const certmagic_certificate,
    op: fn(&Manager, &str) -> certmagic::Result<Arc<certmagic::Certificate>>,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, name) = unsafe { (self::manager(manager)?, text(name, "name")?) };
        let cert = op(m, name)?;
        // SAFETY: per the contract above.
        unsafe { give(out, cert) }
    })
}

/// Creates a manager from `config` (which the caller may free afterwards) and starts its
/// maintenance (renewals). Writes it to `*out`.
///
/// # Safety
/// `config` a live config; `out` valid for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_new(
    config: *const certmagic_config,
    out: *mut *const certmagic_manager,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let config: &Config = unsafe { handle::arc_ref(config, "config") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let manager = Manager::new(config.clone())?;
        // SAFETY: checked non-NULL above.
        unsafe {
            handle::write_out(
                out,
                handle::to_arc::<certmagic_manager>(Arc::new(manager)),
                "out",
            )
        }
    })
}

/// Releases a reference; the last one stops background work (call
/// `certmagic_manager_shutdown_sync` first to also release storage locks at once). NULL is
/// ignored.
///
/// # Safety
/// `manager` NULL or a live reference; invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_free(manager: *const certmagic_manager) {
    // SAFETY: per the contract above.
    crate::boundary::guard((), || unsafe { handle::arc_free(manager) })
}

/// Obtains or loads certificates for `names` now and keeps them renewed; blocks until each is
/// usable and returns the first failure. Names that succeeded stay managed.
///
/// # Safety
/// `manager` live; `names` valid for `names_len` NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_manage_sync(
    manager: *const certmagic_manager,
    names: *const *const c_char,
    names_len: usize,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, names) = unsafe { (self::manager(manager)?, texts(names, names_len, "names")?) };
        Ok(m.manage_sync(&names)?)
    })
}

/// Manages `names` in the background, retrying failures; returns at once (after checking the
/// names). Follow progress through events.
///
/// # Safety
/// As `certmagic_manager_manage_sync`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_manage_background(
    manager: *const certmagic_manager,
    names: *const *const c_char,
    names_len: usize,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, names) = unsafe { (self::manager(manager)?, texts(names, names_len, "names")?) };
        Ok(m.manage_background(&names)?)
    })
}

/// Caches now, without ordering or locking anything, the certificates storage already holds
/// for `names` and that have not expired (due for renewal or not), and writes how many to `*out_loaded` unless it
/// is NULL; blocks for the storage reads. For servers that must answer stored names from their
/// first connection (a new nginx worker after a reload): call it, then
/// `certmagic_manager_manage_background` to obtain the rest and renew.
///
/// # Safety
/// `manager` live; `names` valid for `names_len` NUL-terminated strings; `out_loaded` NULL or
/// valid for one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_load_stored_sync(
    manager: *const certmagic_manager,
    names: *const *const c_char,
    names_len: usize,
    out_loaded: *mut usize,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, names) = unsafe { (self::manager(manager)?, texts(names, names_len, "names")?) };
        let loaded = m.load_stored_sync(&names)?;
        if !out_loaded.is_null() {
            // SAFETY: non-NULL, and valid per the contract above.
            unsafe { out_loaded.write(loaded) };
        }
        Ok(())
    })
}

/// Obtains a certificate for `name` now (or loads a fresh one from storage) and manages it;
/// blocks. Writes a certificate reference to `*out` unless `out` is NULL.
///
/// # Safety
/// `manager` live; `name` NUL-terminated; `out` NULL or valid for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_obtain_sync(
    manager: *const certmagic_manager,
    name: *const c_char,
    out: *mut *const certmagic_certificate,
) -> certmagic_result {
    // SAFETY: per the contract above.
    unsafe { for_name(manager, name, out, Manager::obtain_sync) }
}

/// Renews the certificate of `name` now, due or not; blocks. Writes the new certificate to
/// `*out` unless `out` is NULL.
///
/// # Safety
/// As `certmagic_manager_obtain_sync`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_renew_sync(
    manager: *const certmagic_manager,
    name: *const c_char,
    out: *mut *const certmagic_certificate,
) -> certmagic_result {
    // SAFETY: per the contract above.
    unsafe { for_name(manager, name, out, Manager::renew_sync) }
}

/// Revokes the certificate of `name` with an RFC 5280 reason code (0 unspecified, 1 key
/// compromise, 3 affiliation changed, 4 superseded, 5 cessation of operation), deletes its files
/// and stops managing it; blocks.
///
/// # Safety
/// `manager` live; `name` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_revoke_sync(
    manager: *const certmagic_manager,
    name: *const c_char,
    reason: u32,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, name) = unsafe { (self::manager(manager)?, text(name, "name")?) };
        let reason = RevocationReason::from_number(reason.into())
            .map_err(|e| Failure::invalid(e.message()))?;
        Ok(m.revoke_sync(name, reason)?)
    })
}

/// The certificate a TLS handshake for `server_name` gets (exact name, then the single-label
/// wildcard), as a new reference in `*out`; `CERTMAGIC_RESULT_NOT_FOUND` if none. Never blocks:
/// a memory lookup, safe on an event loop.
///
/// # Safety
/// `manager` live; `server_name` NUL-terminated; `out` valid for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_get_certificate(
    manager: *const certmagic_manager,
    server_name: *const c_char,
    out: *mut *const certmagic_certificate,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, server_name) =
            unsafe { (self::manager(manager)?, text(server_name, "server_name")?) };
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let cert = m.get_certificate(server_name).ok_or_else(|| {
            Failure::new(
                certmagic_result::NotFound,
                format!("no certificate for `{server_name}`"),
            )
        })?;
        // SAFETY: checked non-NULL above.
        unsafe { give(out, cert) }
    })
}

/// Adds a certificate obtained elsewhere (PEM chain, leaf first, and PEM private key): served
/// for its names, never renewed. Writes a reference to `*out` unless `out` is NULL.
///
/// # Safety
/// `manager` live; `chain_pem`/`key_pem` valid for their lengths; `out` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_add_certificate(
    manager: *const certmagic_manager,
    chain_pem: *const u8,
    chain_pem_len: usize,
    key_pem: *const u8,
    key_pem_len: usize,
    out: *mut *const certmagic_certificate,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, chain, key) = unsafe {
            (
                self::manager(manager)?,
                bytes(chain_pem, chain_pem_len, "chain_pem")?,
                bytes(key_pem, key_pem_len, "key_pem")?,
            )
        };
        let cert = m.add_certificate(chain, key)?;
        // SAFETY: per the contract above.
        unsafe { give(out, cert) }
    })
}

/// Stops background work and releases this process's storage locks; blocks. Later calls on
/// this manager answer `CERTMAGIC_RESULT_SHUT_DOWN`. The manager must still be freed.
///
/// # Safety
/// `manager` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_shutdown_sync(
    manager: *const certmagic_manager,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let m = unsafe { self::manager(manager) }?;
        Ok(m.shutdown_sync()?)
    })
}
