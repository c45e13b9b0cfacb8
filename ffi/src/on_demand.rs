//! On-demand TLS from C: the policy settings, and the certificate for a handshake, either
//! blocking (threaded servers) or started and polled (event-loop servers such as nginx: start
//! it when the ClientHello has been read, get told by the ready callback, poll, resume the
//! handshake).

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certmagic::Certificate;

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
            set(b, |i| {
                i.on_demand_rate_limit_events(events)
                    .on_demand_rate_limit_window(Duration::from_millis(window_ms))
            })
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
    gate: Arc<ReadyGate>,
}

/// Orders the ready callback and `certmagic_pending_free`: the callback runs holding `freed`
/// and only while it is `false`; freeing sets it, waiting for a callback that is running,
/// unless the callback itself frees the handle (its own thread cannot wait for itself).
#[derive(Default)]
struct ReadyGate {
    freed: Mutex<bool>,
    /// The thread running the ready callback, while it runs.
    running_on: Mutex<Option<std::thread::ThreadId>>,
}

impl Castable for certmagic_pending {
    type Rust = Pending;
}
impl BoxCastable for certmagic_pending {}

impl Drop for Pending {
    fn drop(&mut self) {
        // No ready callback starts after this, and one that is running on another thread is
        // waited for (it returns quickly, by contract), so the caller may free its userdata
        // once this returns. From inside the callback itself the wait would never end, and
        // need not happen: the callback runs once.
        let current = std::thread::current().id();
        let in_callback = *unpoisoned(&self.gate.running_on) == Some(current);
        if !in_callback {
            *unpoisoned(&self.gate.freed) = true;
        }
        // Stops waiting; an obtain shared with other handshakes runs on.
        self.task.abort();
    }
}

fn unpoisoned<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        let gate = Arc::new(ReadyGate::default());
        let (slot, ready_gate) = (outcome.clone(), gate.clone());
        let userdata = SendPtr(userdata);
        let task = certmagic::runtime::handle()?.spawn(async move {
            let result = resolve(m, sni, alpn).await;
            *unpoisoned(&slot) = Some(result);
            if let Some(cb) = ready {
                let userdata = userdata;
                let freed = unpoisoned(&ready_gate.freed);
                if !*freed {
                    *unpoisoned(&ready_gate.running_on) = Some(std::thread::current().id());
                    let _in_callback = certmagic::runtime::CallbackGuard::enter();
                    // SAFETY: registered by the caller with this userdata; documented above.
                    let _ = std::panic::catch_unwind(|| unsafe { cb(userdata.0) });
                    *unpoisoned(&ready_gate.running_on) = None;
                }
            }
        });
        let pending = Pending {
            outcome,
            task: task.abort_handle(),
            gate,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::*;
    use crate::manager::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    static STARTED: AtomicBool = AtomicBool::new(false);
    static FINISHED: AtomicBool = AtomicBool::new(false);

    unsafe extern "C" fn slow_ready(_: *mut c_void) {
        STARTED.store(true, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(300));
        FINISHED.store(true, Ordering::SeqCst);
    }

    #[test]
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    fn pending_free_waits_for_a_running_ready_callback_even_from_a_runtime_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
        let allowed = std::ffi::CString::new("allowed.example.test").unwrap();
        let refused = std::ffi::CString::new("refused.example.test").unwrap();
        // SAFETY: the C API used as a C program would.
        unsafe {
            let b = certmagic_config_builder_new();
            assert_eq!(
                certmagic_config_builder_set_storage_path(b, path.as_ptr()),
                certmagic_result::Ok
            );
            assert_eq!(
                certmagic_config_builder_add_on_demand_allow(b, allowed.as_ptr()),
                certmagic_result::Ok
            );
            let mut config = std::ptr::null();
            assert_eq!(
                certmagic_config_builder_build(b, &mut config),
                certmagic_result::Ok
            );
            let mut manager = std::ptr::null();
            assert_eq!(
                certmagic_manager_new(config, &mut manager),
                certmagic_result::Ok
            );
            let mut pending = std::ptr::null_mut();
            // Refused at once (not in the allow-list): the ready callback runs right away.
            assert_eq!(
                certmagic_manager_certificate_for_handshake_start(
                    manager,
                    refused.as_ptr(),
                    std::ptr::null(),
                    0,
                    Some(slow_ready),
                    std::ptr::null_mut(),
                    &mut pending,
                ),
                certmagic_result::Ok
            );
            while !STARTED.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            // Freed from a thread inside a Tokio runtime (a Rust host, say), while the
            // callback runs on a library thread: the free must still wait for it.
            let host = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let _inside = host.enter();
            certmagic_pending_free(pending);
            assert!(
                FINISHED.load(Ordering::SeqCst),
                "certmagic_pending_free returned while the ready callback was running"
            );
            certmagic_manager_free(manager);
            certmagic_config_free(config);
        }
    }
}
