//! On-demand TLS from C: the policy settings, and the certificate for a handshake, either
//! blocking (threaded servers) or started and polled (event-loop servers such as nginx: start
//! it when the ClientHello has been read, get told by the ready callback, poll, resume the
//! handshake).

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certmagic::{Certificate, RateLimit};

use crate::boundary::{Failure, FfiResult, call};
use crate::certificate::certmagic_certificate;
use crate::challenge::alpn_list;
use crate::config::{certmagic_config_builder, set, update};
use crate::handle::{self, BoxCastable, Castable};
use crate::manager::certmagic_manager;
use crate::result::certmagic_result;
use crate::slice::{certmagic_bytes, text};

/// Turns on-demand TLS on, asking `url` before each new name (`GET url?domain=<name>`; 2xx
/// within 10 s allows, anything else refuses). With a decision callback too, both must allow.
///
/// # Safety
/// `builder` live; `url` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_on_demand_ask(
    builder: *mut certmagic_config_builder,
    url: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let url = text(url, "url")?;
            set(b, |i| i.on_demand_ask(url))
        })
    }
}

/// Turns on-demand TLS on for `name` (an allow-list, used when no decision callback or ask URL
/// is set); call once per name.
///
/// # Safety
/// `builder` live; `name` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_add_on_demand_allow(
    builder: *mut certmagic_config_builder,
    name: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let name = text(name, "name")?;
            set(b, |i| i.on_demand_allow([name]))
        })
    }
}

/// Caps on-demand issuance at `events` per `window_ms`; handshakes past it fail.
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_on_demand_rate_limit(
    builder: *mut certmagic_config_builder,
    events: u32,
    window_ms: u64,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let limit = RateLimit {
                events: events as usize,
                window: Duration::from_millis(window_ms),
            };
            set(b, |i| i.on_demand_rate_limit(limit))
        })
    }
}

/// How long a handshake may wait for an on-demand certificate (default 180000 ms).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_on_demand_obtain_timeout_ms(
    builder: *mut certmagic_config_builder,
    timeout_ms: u64,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            set(b, |i| {
                i.on_demand_obtain_timeout(Duration::from_millis(timeout_ms))
            })
        })
    }
}

/// Keeps at most `max` certificates in memory (a random managed one is evicted beyond it and
/// loaded from storage again when needed; certificates added by hand are never evicted).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_cache_capacity(
    builder: *mut certmagic_config_builder,
    max: usize,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.cache_capacity(max))) }
}

/// # Safety
/// `server_name` NULL or NUL-terminated; ALPN as for `alpn_list`.
unsafe fn hello(
    server_name: *const c_char,
    alpn: *const certmagic_bytes,
    alpn_len: usize,
) -> FfiResult<(Option<String>, Vec<Vec<u8>>)> {
    let sni = if server_name.is_null() {
        None
    } else {
        // SAFETY: per the contract above.
        Some(unsafe { text(server_name, "server_name") }?.to_string())
    };
    // SAFETY: per the contract above.
    Ok((sni, unsafe { alpn_list(alpn, alpn_len) }?))
}

async fn resolve(
    manager: certmagic::Manager,
    sni: Option<String>,
    alpn: Vec<Vec<u8>>,
) -> certmagic::Result<Arc<Certificate>> {
    let refs: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
    manager
        .certificate_for_handshake(sni.as_deref(), &refs)
        .await
}

/// The certificate for a handshake, blocking until it is known: the ClientHello's SNI
/// (`server_name`, may be NULL) and ALPN protocols. A cached certificate answers at once; with
/// on-demand TLS a new name may be decided on and obtained first (the TLS-ALPN-01 case answers
/// a validation: then select ALPN `acme-tls/1`). Gives up after `timeout_ms` (0: the on-demand
/// obtain timeout) with `CERTMAGIC_RESULT_TIMEOUT`; a refused name gives
/// `CERTMAGIC_RESULT_ABORTED`, an unknown one without on-demand `CERTMAGIC_RESULT_NOT_FOUND`.
/// Release `*out` with `certmagic_certificate_free`. For threaded servers; not from a callback.
///
/// # Safety
/// `manager` live; `server_name` NULL or NUL-terminated; `alpn` valid for `alpn_len` views;
/// `out` valid for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_certificate_for_handshake_sync(
    manager: *const certmagic_manager,
    server_name: *const c_char,
    alpn: *const certmagic_bytes,
    alpn_len: usize,
    timeout_ms: u64,
    out: *mut *const certmagic_certificate,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, (sni, alpn)) = unsafe {
            (
                handle::arc_ref(manager, "manager")?.clone(),
                hello(server_name, alpn, alpn_len)?,
            )
        };
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        certmagic::runtime::check_blocking_allowed(
            "certmagic_manager_certificate_for_handshake_sync",
        )?;
        let limit = match timeout_ms {
            0 => m
                .config()
                .on_demand()
                .map_or(certmagic::DEFAULT_ON_DEMAND_TIMEOUT, |o| o.obtain_timeout()),
            ms => Duration::from_millis(ms),
        } + Duration::from_secs(1);
        let cert = certmagic::runtime::block_on("certificate for handshake", async move {
            tokio::time::timeout(limit, resolve(m, sni, alpn))
                .await
                .map_err(|_| {
                    certmagic::Error::new(
                        certmagic::ErrorKind::Timeout,
                        format!("no certificate within {limit:?}"),
                    )
                })?
        })?;
        // SAFETY: checked non-NULL above.
        unsafe { handle::write_out(out, handle::to_arc::<certmagic_certificate>(cert), "out") }
    })
}

/// Called once when a pending handshake certificate is ready to be polled, on a library
/// thread: it must return quickly (wake your event loop, e.g. write to an eventfd) and must
/// not call blocking `certmagic_*` functions.
#[allow(non_camel_case_types)]
pub type certmagic_ready_cb = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A handshake certificate being found (`certmagic_manager_certificate_for_handshake_start`).
/// Owned by the caller until `certmagic_pending_free`; one thread at a time.
#[derive(Debug)]
pub struct certmagic_pending {
    _private: [u8; 0],
}

pub(crate) struct Pending {
    outcome: Arc<Mutex<Option<certmagic::Result<Arc<Certificate>>>>>,
    task: tokio::task::AbortHandle,
    /// Held while the ready callback runs; `true` once the handle is freed (no callback after).
    freed: Arc<Mutex<bool>>,
}

impl Castable for certmagic_pending {
    type Rust = Pending;
}
impl BoxCastable for certmagic_pending {}

impl Drop for Pending {
    fn drop(&mut self) {
        // No ready callback starts after this, and one that is running is waited for, so the
        // caller may free its userdata once this returns. From inside the callback itself
        // (the lock is held on this thread) it cannot wait, and need not.
        let guard = if certmagic::runtime::check_blocking_allowed("certmagic_pending_free").is_ok()
        {
            Some(self.freed.lock().unwrap_or_else(|p| p.into_inner()))
        } else {
            self.freed.try_lock().ok()
        };
        if let Some(mut freed) = guard {
            *freed = true;
        }
        // Stops waiting; an obtain shared with other handshakes runs on.
        self.task.abort();
    }
}

struct SendPtr(*mut c_void);
// SAFETY: the C API documents that the ready callback and its userdata are used from a
// library thread.
unsafe impl Send for SendPtr {}

/// Starts finding the certificate for a handshake without blocking (see
/// `certmagic_manager_certificate_for_handshake_sync` for what is found). `ready` (may be
/// NULL) is called once with `userdata` when `certmagic_pending_poll` has the answer; poll it
/// then (or at any time). `userdata` must stay valid until `ready` ran or the pending handle is
/// freed.
///
/// # Safety
/// `manager` live; `server_name` NULL or NUL-terminated; `alpn` valid for `alpn_len` views;
/// `out` valid for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_certificate_for_handshake_start(
    manager: *const certmagic_manager,
    server_name: *const c_char,
    alpn: *const certmagic_bytes,
    alpn_len: usize,
    ready: certmagic_ready_cb,
    userdata: *mut c_void,
    out: *mut *mut certmagic_pending,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let (m, (sni, alpn)) = unsafe {
            (
                handle::arc_ref(manager, "manager")?.clone(),
                hello(server_name, alpn, alpn_len)?,
            )
        };
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let outcome = Arc::new(Mutex::new(None));
        let freed = Arc::new(Mutex::new(false));
        let (slot, gate) = (outcome.clone(), freed.clone());
        let userdata = SendPtr(userdata);
        let task = certmagic::runtime::handle()?.spawn(async move {
            let result = resolve(m, sni, alpn).await;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            if let Some(cb) = ready {
                let userdata = userdata;
                let freed = gate.lock().unwrap_or_else(|p| p.into_inner());
                if !*freed {
                    let _in_callback = certmagic::runtime::CallbackGuard::enter();
                    // SAFETY: registered by the caller with this userdata; documented above.
                    let _ = std::panic::catch_unwind(|| unsafe { cb(userdata.0) });
                }
            }
        });
        let pending = Pending {
            outcome,
            task: task.abort_handle(),
            freed,
        };
        // SAFETY: checked non-NULL above.
        unsafe { *out = handle::to_box::<certmagic_pending>(pending) };
        Ok(())
    })
}

/// `CERTMAGIC_RESULT_PENDING` while the certificate is being found; then the outcome of
/// `certmagic_manager_certificate_for_handshake_sync`: `CERTMAGIC_RESULT_OK` with a new
/// reference in `*out` (release it with `certmagic_certificate_free`), or the error (with its
/// message). Never blocks.
///
/// # Safety
/// `pending` live; `out` valid for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_pending_poll(
    pending: *mut certmagic_pending,
    out: *mut *const certmagic_certificate,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let p = unsafe { handle::box_mut(pending, "pending") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let outcome = p.outcome.lock().unwrap_or_else(|e| e.into_inner());
        match outcome.as_ref() {
            None => Err(Failure::new(certmagic_result::Pending, "not finished yet")),
            Some(Ok(cert)) => {
                // SAFETY: checked non-NULL above.
                unsafe {
                    handle::write_out(
                        out,
                        handle::to_arc::<certmagic_certificate>(cert.clone()),
                        "out",
                    )
                }
            }
            Some(Err(e)) => Err(e.clone().into()),
        }
    })
}

/// Frees a pending handle (if the answer is not in yet, stops waiting for it; an obtain other
/// handshakes wait for goes on). The ready callback does not run after this returns (one that
/// is running is waited for), so `userdata` may be freed then. NULL is ignored.
///
/// # Safety
/// `pending` NULL or live; invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_pending_free(pending: *mut certmagic_pending) {
    // SAFETY: per the contract above.
    crate::boundary::guard((), || unsafe { handle::box_free(pending) })
}
