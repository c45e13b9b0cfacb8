//! Configuration: `certmagic_config_builder` (Box: one owner, one thread at a time) collects
//! settings; `certmagic_config_builder_build` checks them all and yields an immutable
//! `certmagic_config` (Arc: shared, any thread) from which managers are made.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use certmagic::{ChallengeType, Config, ConfigBuilder, ConfigField, FileStorage, KeyType};

use crate::boundary::{Failure, FfiResult, call};
use crate::enums::c_enum;
use crate::events::{CEvents, certmagic_event_cb};
use crate::handle::{
    self, ArcCastable, BoxCastable, Castable, Userdata, certmagic_userdata_free_cb,
};
use crate::result::certmagic_result;
use crate::slice::{bytes, text};
use crate::storage::{CStorage, certmagic_storage_callbacks};
use certmagic::storage::foreign::Blocking;

/// Settings for a manager, before they are checked. Owned by the caller from
/// `certmagic_config_builder_new` until `certmagic_config_builder_build` (which consumes it) or
/// `certmagic_config_builder_free`. Not thread-safe: one thread at a time.
#[derive(Debug)]
pub struct certmagic_config_builder {
    _private: [u8; 0],
}

/// A checked, immutable configuration. A counted reference: release each with
/// `certmagic_config_free`. Thread-safe.
#[derive(Debug)]
pub struct certmagic_config {
    _private: [u8; 0],
}

impl Castable for certmagic_config_builder {
    type Rust = ConfigBuilder;
}
impl BoxCastable for certmagic_config_builder {}
impl Castable for certmagic_config {
    type Rust = Config;
}
impl ArcCastable for certmagic_config {}

/// Private key types for certificates.
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum certmagic_key_type {
    /// ECDSA P-256 (the default).
    P256 = 1,
    /// ECDSA P-384.
    P384 = 2,
    /// RSA 2048.
    Rsa2048 = 3,
    /// RSA 4096.
    Rsa4096 = 4,
    /// Ed25519.
    Ed25519 = 5,
}

c_enum!(certmagic_key_type {
    P256 => "CERTMAGIC_KEY_TYPE_P256",
    P384 => "CERTMAGIC_KEY_TYPE_P384",
    Rsa2048 => "CERTMAGIC_KEY_TYPE_RSA2048",
    Rsa4096 => "CERTMAGIC_KEY_TYPE_RSA4096",
    Ed25519 => "CERTMAGIC_KEY_TYPE_ED25519",
});

impl From<certmagic_key_type> for KeyType {
    fn from(k: certmagic_key_type) -> Self {
        match k {
            certmagic_key_type::P256 => Self::EcdsaP256,
            certmagic_key_type::P384 => Self::EcdsaP384,
            certmagic_key_type::Rsa2048 => Self::Rsa2048,
            certmagic_key_type::Rsa4096 => Self::Rsa4096,
            certmagic_key_type::Ed25519 => Self::Ed25519,
        }
    }
}

/// ACME challenge types.
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum certmagic_challenge_type {
    /// HTTP-01.
    Http01 = 1,
    /// TLS-ALPN-01.
    TlsAlpn01 = 2,
    /// DNS-01 (needs a DNS provider; see `certmagic_config_builder_set_dns_provider`).
    Dns01 = 3,
}

c_enum!(certmagic_challenge_type {
    Http01 => "CERTMAGIC_CHALLENGE_TYPE_HTTP01",
    TlsAlpn01 => "CERTMAGIC_CHALLENGE_TYPE_TLS_ALPN01",
    Dns01 => "CERTMAGIC_CHALLENGE_TYPE_DNS01",
});

impl From<certmagic_challenge_type> for ChallengeType {
    fn from(t: certmagic_challenge_type) -> Self {
        match t {
            certmagic_challenge_type::Http01 => Self::Http01,
            certmagic_challenge_type::TlsAlpn01 => Self::TlsAlpn01,
            certmagic_challenge_type::Dns01 => Self::Dns01,
        }
    }
}

/// The kinds of callback a deadline applies to
/// (`certmagic_config_builder_set_callback_timeout_ms`).
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum certmagic_callback_kind {
    /// One storage call other than `lock` (default 60 s).
    Storage = 1,
    /// Waiting for a storage lock (default: no deadline).
    Lock = 2,
    /// One DNS provider call (default 2 minutes).
    Dns = 3,
    /// The on-demand decision for one name (default 60 s).
    Decision = 4,
    /// One event callback (default 60 s).
    Events = 5,
}

c_enum!(certmagic_callback_kind {
    Storage => "CERTMAGIC_CALLBACK_KIND_STORAGE",
    Lock => "CERTMAGIC_CALLBACK_KIND_LOCK",
    Dns => "CERTMAGIC_CALLBACK_KIND_DNS",
    Decision => "CERTMAGIC_CALLBACK_KIND_DECISION",
    Events => "CERTMAGIC_CALLBACK_KIND_EVENTS",
});

/// Decides whether a certificate may be obtained on demand for `name` (NUL-terminated, valid
/// during the call), the slot of on-demand TLS. Return `CERTMAGIC_RESULT_OK` to allow, any other
/// code to refuse. Same thread rules as `certmagic_event_cb`.
#[allow(non_camel_case_types)]
pub type certmagic_decision_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, name: *const c_char) -> u32>;

struct CDecision {
    cb: unsafe extern "C" fn(*mut c_void, *const c_char) -> u32,
    userdata: Arc<Userdata>,
}

#[certmagic::async_trait]
impl certmagic::DecisionHandler for CDecision {
    async fn decide(&self, name: &str) -> Result<(), certmagic::HandlerError> {
        let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
        let (cb, userdata) = (self.cb, self.userdata.clone());
        // The C function may block: it runs on a blocking thread.
        let rc = certmagic::runtime::spawn_blocking(move || {
            let _in_callback = certmagic::runtime::CallbackGuard::enter();
            // SAFETY: registered by the caller for `userdata`; the name outlives the call.
            unsafe { cb(userdata.ptr, c.as_ptr()) }
        })
        .await
        .map_err(|e| e.to_string())?;
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("decision callback returned {}", crate::result_name(rc)).into())
        }
    }
}

/// Applies `f` to the builder behind `builder`.
///
/// # Safety
/// `builder` must be NULL or a live builder.
pub(crate) unsafe fn update(
    builder: *mut certmagic_config_builder,
    f: impl FnOnce(&mut ConfigBuilder) -> FfiResult,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let b = unsafe { handle::box_mut(builder, "builder") }?;
        f(b)
    })
}

pub(crate) fn set(
    b: &mut ConfigBuilder,
    f: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> FfiResult {
    *b = f(std::mem::take(b));
    Ok(())
}

/// A builder with the defaults: Let's Encrypt production, P-256, renewal at 1/3 of the lifetime
/// left, checks every 10 minutes, HTTP-01 and TLS-ALPN-01 on ports 80 and 443, file storage in
/// `$XDG_DATA_HOME/certmagic` (else `~/.local/share/certmagic`). Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn certmagic_config_builder_new() -> *mut certmagic_config_builder {
    handle::to_box::<certmagic_config_builder>(ConfigBuilder::default())
}

/// Frees a builder that was not built. NULL is ignored.
///
/// # Safety
/// `builder` must be NULL or a live builder; it is invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_free(builder: *mut certmagic_config_builder) {
    // SAFETY: per the contract above.
    crate::boundary::guard((), || unsafe { handle::box_free(builder) })
}

/// Sets the ACME directory URL (`https://…`).
///
/// # Safety
/// `builder` live; `url` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_ca(
    builder: *mut certmagic_config_builder,
    url: *const c_char,
) -> certmagic_result {
    // SAFETY: per the contract above (for this and every setter below).
    unsafe { set_text(builder, url, "url", |i, v| i.ca(v)) }
}

/// Sets the account email.
///
/// # Safety
/// `builder` live; `email` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_email(
    builder: *mut certmagic_config_builder,
    email: *const c_char,
) -> certmagic_result {
    unsafe { set_text(builder, email, "email", |i, v| i.email(v)) }
}

/// Agrees (or not) to the CA's terms of service.
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_agreed(
    builder: *mut certmagic_config_builder,
    agreed: bool,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.agreed(agreed))) }
}

/// Trusts these PEM roots (instead of the built-in ones) for the connection to the CA.
///
/// # Safety
/// `builder` live; `pem` valid for `pem_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_trusted_roots_pem(
    builder: *mut certmagic_config_builder,
    pem: *const u8,
    pem_len: usize,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let pem = bytes(pem, pem_len, "pem")?.to_vec();
            set(b, |i| i.trusted_roots_pem(pem))
        })
    }
}

/// Sets the certificate key type (a `certmagic_key_type`).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_key_type(
    builder: *mut certmagic_config_builder,
    key_type: u32,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let kt = certmagic_key_type::from_u32(key_type)
                .ok_or_else(|| Failure::invalid(format!("unknown key type {key_type}")))?;
            set(b, |i| i.key_type(kt.into()))
        })
    }
}

/// Renew when less than this fraction of a certificate's lifetime remains (0 < ratio < 1).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_renewal_window_ratio(
    builder: *mut certmagic_config_builder,
    ratio: f64,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.renewal_window_ratio(ratio))) }
}

/// How often certificates are checked for renewal, in milliseconds.
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_renew_check_interval_ms(
    builder: *mut certmagic_config_builder,
    interval_ms: u64,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            set(b, |i| {
                i.renew_check_interval(Duration::from_millis(interval_ms))
            })
        })
    }
}

/// Turns HTTP-01 off (or on again).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_disable_http_challenge(
    builder: *mut certmagic_config_builder,
    disable: bool,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.disable_http_challenge(disable))) }
}

/// Turns TLS-ALPN-01 off (or on again).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_disable_tls_alpn_challenge(
    builder: *mut certmagic_config_builder,
    disable: bool,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            set(b, |i| i.disable_tls_alpn_challenge(disable))
        })
    }
}

/// The port the HTTP-01 solver uses instead of 80.
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_alt_http_port(
    builder: *mut certmagic_config_builder,
    port: u16,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.alt_http_port(port))) }
}

/// The port the TLS-ALPN-01 solver uses instead of 443.
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_alt_tls_alpn_port(
    builder: *mut certmagic_config_builder,
    port: u16,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.alt_tls_alpn_port(port))) }
}

/// The address challenge solvers listen on (default: all interfaces).
///
/// # Safety
/// `builder` live; `host` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_listen_host(
    builder: *mut certmagic_config_builder,
    host: *const c_char,
) -> certmagic_result {
    unsafe { set_text(builder, host, "host", |i, v| i.listen_host(v)) }
}

/// Tries challenge types in this order (`certmagic_challenge_type` values) instead of at random.
///
/// # Safety
/// `builder` live; `types` valid for `types_len` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_challenge_preference(
    builder: *mut certmagic_config_builder,
    types: *const u32,
    types_len: usize,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let raw: &[u32] = if types_len == 0 {
                &[]
            } else if types.is_null() {
                return Err(Failure::null("types"));
            } else {
                std::slice::from_raw_parts(types, types_len)
            };
            let order = raw
                .iter()
                .map(|t| {
                    certmagic_challenge_type::from_u32(*t)
                        .map(ChallengeType::from)
                        .ok_or_else(|| Failure::invalid(format!("unknown challenge type {t}")))
                })
                .collect::<FfiResult<Vec<_>>>()?;
            set(b, |i| i.challenge_preference(order))
        })
    }
}

/// Do not write challenges to storage (only this process can then answer them).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_disable_distributed_solvers(
    builder: *mut certmagic_config_builder,
    disable: bool,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            set(b, |i| i.disable_distributed_solvers(disable))
        })
    }
}

/// External Account Binding: key id and base64url HMAC key.
///
/// # Safety
/// `builder` live; both strings NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_eab(
    builder: *mut certmagic_config_builder,
    key_id: *const c_char,
    hmac_key_base64url: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let (id, key) = (
                text(key_id, "key_id")?,
                text(hmac_key_base64url, "hmac_key_base64url")?,
            );
            set(b, |i| i.eab_key_id(id).eab_hmac_key(key))
        })
    }
}

/// Prefers the chain whose root was issued with this common name (call again for more, in order).
///
/// # Safety
/// `builder` live; `common_name` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_add_preferred_root_cn(
    builder: *mut certmagic_config_builder,
    common_name: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let name = text(common_name, "common_name")?;
            set(b, |i| i.preferred_chain_root_cn(name))
        })
    }
}

/// Prefers the chain in which any certificate was issued by this common name.
///
/// # Safety
/// `builder` live; `common_name` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_add_preferred_issuer_cn(
    builder: *mut certmagic_config_builder,
    common_name: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let name = text(common_name, "common_name")?;
            set(b, |i| i.preferred_chain_issuer_cn(name))
        })
    }
}

/// Considers the smallest chains first.
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_preferred_chain_smallest(
    builder: *mut certmagic_config_builder,
    smallest: bool,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            set(b, |i| i.preferred_chain_smallest(smallest))
        })
    }
}

/// The ACME profile to order (e.g. `shortlived`).
///
/// # Safety
/// `builder` live; `profile` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_profile(
    builder: *mut certmagic_config_builder,
    profile: *const c_char,
) -> certmagic_result {
    unsafe { set_text(builder, profile, "profile", |i, v| i.profile(v)) }
}

/// Asks for OCSP Must-Staple in CSRs: browsers that honour it refuse a handshake without a
/// stapled response, so the server must staple (`certmagic_certificate_ocsp_staple`), stapling
/// must stay on, and the CA must run an OCSP responder.
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_must_staple(
    builder: *mut certmagic_config_builder,
    must_staple: bool,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.must_staple(must_staple))) }
}

/// Turns OCSP stapling off (default on: responses are fetched, checked, stored and offered
/// through `certmagic_certificate_ocsp_staple` for certificates whose leaf names a responder).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_disable_ocsp_stapling(
    builder: *mut certmagic_config_builder,
    disable: bool,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.disable_ocsp_stapling(disable))) }
}

/// Asks the OCSP responder at `to` instead of `from`, the URL certificates name; an empty `to`
/// never asks `from`. Once per responder.
///
/// # Safety
/// `builder` live; `from` and `to` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_add_ocsp_responder_override(
    builder: *mut certmagic_config_builder,
    from: *const c_char,
    to: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let (from, to) = (text(from, "from")?, text(to, "to")?);
            set(b, |i| i.ocsp_responder_override(from, to))
        })
    }
}

/// How often OCSP staples are checked for refresh, in milliseconds (default an hour).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_ocsp_check_interval_ms(
    builder: *mut certmagic_config_builder,
    interval_ms: u64,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            set(b, |i| {
                i.ocsp_check_interval(Duration::from_millis(interval_ms))
            })
        })
    }
}

/// Keeps private keys across renewals.
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_reuse_private_keys(
    builder: *mut certmagic_config_builder,
    reuse: bool,
) -> certmagic_result {
    unsafe { update(builder, |b| set(b, |i| i.reuse_private_keys(reuse))) }
}

/// How long one order may take, in milliseconds (default 5 minutes).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_order_timeout_ms(
    builder: *mut certmagic_config_builder,
    timeout_ms: u64,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            set(b, |i| i.order_timeout(Duration::from_millis(timeout_ms)))
        })
    }
}

/// Internal limit on new orders per (CA, account): `events` per `window_ms` (0 events: off).
/// Replaces the limits chosen for the CA (Let's Encrypt's published ones for Let's Encrypt,
/// else 300 per 3 hours and at most 10 a second).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_rate_limit(
    builder: *mut certmagic_config_builder,
    events: usize,
    window_ms: u64,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            set(b, |i| {
                i.rate_limit_events(events)
                    .rate_limit_window(Duration::from_millis(window_ms))
            })
        })
    }
}

/// Waits between attempts of failed background work (the last repeats), giving up after
/// `max_total_ms` (0: no retries). No waits (`intervals_len` 0) keeps CertMagic's, 1 minute
/// rising to 6 hours; the default total is 30 days. Each wait at most a year, the total at
/// most ten (checked by `certmagic_config_builder_build`).
///
/// # Safety
/// `builder` live; `intervals_ms` valid for `intervals_len` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_retry_intervals_ms(
    builder: *mut certmagic_config_builder,
    intervals_ms: *const u64,
    intervals_len: usize,
    max_total_ms: u64,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let raw: &[u64] = if intervals_len == 0 {
                &[]
            } else if intervals_ms.is_null() {
                return Err(Failure::null("intervals_ms"));
            } else {
                std::slice::from_raw_parts(intervals_ms, intervals_len)
            };
            let waits: Vec<Duration> = raw.iter().map(|ms| Duration::from_millis(*ms)).collect();
            set(b, |i| {
                i.retry_intervals(waits)
                    .retry_max_total(Duration::from_millis(max_total_ms))
            })
        })
    }
}

/// How long one callback of `kind` (a `certmagic_callback_kind`) may take before the library
/// goes on with `CERTMAGIC_RESULT_TIMEOUT` (0: no deadline; at most a day, checked by
/// `certmagic_config_builder_build`). The callback is not interrupted: it runs on to its end on
/// its thread, and its result is then ignored (a lock it grants late is released).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_callback_timeout_ms(
    builder: *mut certmagic_config_builder,
    kind: u32,
    timeout_ms: u64,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let kind = certmagic_callback_kind::from_u32(kind)
                .ok_or_else(|| Failure::invalid(format!("unknown callback kind {kind}")))?;
            let limit = Duration::from_millis(timeout_ms);
            set(b, |i| match kind {
                certmagic_callback_kind::Storage => i.callback_timeout_storage(limit),
                certmagic_callback_kind::Lock => i.callback_timeout_lock(limit),
                certmagic_callback_kind::Dns => i.callback_timeout_dns(limit),
                certmagic_callback_kind::Decision => i.callback_timeout_decision(limit),
                certmagic_callback_kind::Events => i.callback_timeout_events(limit),
            })
        })
    }
}

/// Keeps certificates in this folder (Go CertMagic's layout; Caddy can share it).
///
/// # Safety
/// `builder` live; `path` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_storage_path(
    builder: *mut certmagic_config_builder,
    path: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let path = text(path, "path")?;
            if path.is_empty() {
                return Err(Failure::invalid("`path` is empty"));
            }
            let storage = Arc::new(FileStorage::new(path));
            set(b, |i| i.storage(storage))
        })
    }
}

/// Keeps certificates where `location` says: a folder, or the URL of a database shared by a
/// fleet, `redis://` or `rediss://` (Caddy's Redis storage layout) or `postgres://` or
/// `postgresql://` (Caddy's PostgreSQL storage tables), with the storage's options in the URL's
/// query (`key_prefix`, `data_table`, …: see the README). Checked by
/// `certmagic_config_builder_build`, which connects to nothing (the first storage call does);
/// a password in the URL is never printed. Replaces an earlier storage setting.
///
/// # Safety
/// `builder` live; `location` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_storage_location(
    builder: *mut certmagic_config_builder,
    location: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let location = text(location, "location")?.to_string();
            set(b, |i| i.storage_location(location))
        })
    }
}

/// Keeps certificates in a storage implemented by C callbacks (the table is copied; every member
/// but `userdata_free` must be set). Replaces an earlier storage setting; the earlier callbacks'
/// `userdata_free` runs when nothing uses them any more. The table's `userdata` is the
/// library's from this call on (see `certmagic_userdata_free_cb`), even if it fails.
///
/// # Safety
/// `builder` live; `callbacks` a valid table whose functions follow its documented contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_storage_callbacks(
    builder: *mut certmagic_config_builder,
    callbacks: *const certmagic_storage_callbacks,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let table = unsafe { callbacks.as_ref() }.ok_or_else(|| Failure::null("callbacks"))?;
        // Owns the userdata from here, whatever fails next.
        let storage = CStorage::new(table);
        // SAFETY: per the contract above.
        let b = unsafe { handle::box_mut(builder, "builder") }?;
        let storage = Arc::new(Blocking::new(storage?));
        set(b, |i| i.storage(storage))
    })
}

/// Sends every event to `cb` (see `certmagic_event_cb`). `userdata_free` (may be NULL) runs once
/// when nothing uses the callback any more, or before this returns if it fails.
///
/// # Safety
/// `builder` live; `cb` safe to call with `userdata` from any thread until `userdata_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_event_callback(
    builder: *mut certmagic_config_builder,
    cb: certmagic_event_cb,
    userdata: *mut c_void,
    userdata_free: certmagic_userdata_free_cb,
) -> certmagic_result {
    let userdata = Userdata::new(userdata, userdata_free);
    unsafe {
        update(builder, |b| {
            let cb = cb.ok_or_else(|| Failure::null("cb"))?;
            let handler = Arc::new(CEvents { cb, userdata });
            set(b, |i| i.event_handler(handler))
        })
    }
}

/// Sets the on-demand TLS decision (see `certmagic_decision_cb`). `userdata_free` (may be NULL)
/// runs once when nothing uses the callback any more, or before this returns if it fails.
///
/// # Safety
/// `builder` live; `cb` safe to call with `userdata` from any thread until `userdata_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_on_demand_decision(
    builder: *mut certmagic_config_builder,
    cb: certmagic_decision_cb,
    userdata: *mut c_void,
    userdata_free: certmagic_userdata_free_cb,
) -> certmagic_result {
    let userdata = Userdata::new(userdata, userdata_free);
    unsafe {
        update(builder, |b| {
            let cb = cb.ok_or_else(|| Failure::null("cb"))?;
            let decision = Arc::new(CDecision {
                cb,
                userdata: Arc::new(userdata),
            });
            set(b, |i| i.on_demand_decision(decision))
        })
    }
}

/// Checks every setting and, on success, writes a new config to `*out` (release it with
/// `certmagic_config_free`). Consumes `builder` either way. A refused value gives
/// `CERTMAGIC_RESULT_INVALID_CONFIG` and a message naming the field.
///
/// # Safety
/// `builder` a live builder (invalid afterwards); `out` valid for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_build(
    builder: *mut certmagic_config_builder,
    out: *mut *const certmagic_config,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let b = unsafe { handle::box_take(builder, "builder") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let config = b.build()?;
        // SAFETY: checked non-NULL above.
        unsafe {
            handle::write_out(
                out,
                handle::to_arc::<certmagic_config>(Arc::new(config)),
                "out",
            )
        }
    })
}

/// Releases a reference to a config. NULL is ignored.
///
/// # Safety
/// `config` NULL or a live reference; invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_free(config: *const certmagic_config) {
    // SAFETY: per the contract above.
    crate::boundary::guard((), || unsafe { handle::arc_free(config) })
}

/// The setter a C caller uses for `field`: refusals name it.
pub(crate) fn setter_name(field: ConfigField) -> &'static str {
    match field {
        ConfigField::Ca => "certmagic_config_builder_set_ca",
        ConfigField::Issuers => "certmagic_config_builder_add_issuer",
        ConfigField::IssuerPolicy => "certmagic_config_builder_set_issuer_policy",
        ConfigField::Email => "certmagic_config_builder_set_email",
        ConfigField::Agreed => "certmagic_config_builder_set_agreed",
        ConfigField::TrustedRootsPem => "certmagic_config_builder_set_trusted_roots_pem",
        ConfigField::KeyType => "certmagic_config_builder_set_key_type",
        ConfigField::RenewalWindowRatio => "certmagic_config_builder_set_renewal_window_ratio",
        ConfigField::RenewCheckInterval => "certmagic_config_builder_set_renew_check_interval_ms",
        ConfigField::DisableHttpChallenge => "certmagic_config_builder_set_disable_http_challenge",
        ConfigField::DisableTlsAlpnChallenge => {
            "certmagic_config_builder_set_disable_tls_alpn_challenge"
        }
        ConfigField::AltHttpPort => "certmagic_config_builder_set_alt_http_port",
        ConfigField::AltTlsAlpnPort => "certmagic_config_builder_set_alt_tls_alpn_port",
        ConfigField::ListenHost => "certmagic_config_builder_set_listen_host",
        ConfigField::ChallengePreference => "certmagic_config_builder_set_challenge_preference",
        ConfigField::DisableDistributedSolvers => {
            "certmagic_config_builder_set_disable_distributed_solvers"
        }
        ConfigField::EabKeyId | ConfigField::EabHmacKey => "certmagic_config_builder_set_eab",
        ConfigField::PreferredChainRootCn => "certmagic_config_builder_add_preferred_root_cn",
        ConfigField::PreferredChainIssuerCn => "certmagic_config_builder_add_preferred_issuer_cn",
        ConfigField::PreferredChainSmallest => {
            "certmagic_config_builder_set_preferred_chain_smallest"
        }
        ConfigField::Profile => "certmagic_config_builder_set_profile",
        ConfigField::MustStaple => "certmagic_config_builder_set_must_staple",
        ConfigField::DisableOcspStapling => "certmagic_config_builder_set_disable_ocsp_stapling",
        ConfigField::OcspResponderOverride => {
            "certmagic_config_builder_add_ocsp_responder_override"
        }
        ConfigField::OcspCheckInterval => "certmagic_config_builder_set_ocsp_check_interval_ms",
        ConfigField::ReusePrivateKeys => "certmagic_config_builder_set_reuse_private_keys",
        ConfigField::OrderTimeout => "certmagic_config_builder_set_order_timeout_ms",
        ConfigField::RateLimitEvents | ConfigField::RateLimitWindow => {
            "certmagic_config_builder_set_rate_limit"
        }
        ConfigField::RetryIntervals | ConfigField::RetryMaxTotal => {
            "certmagic_config_builder_set_retry_intervals_ms"
        }
        ConfigField::Storage => "certmagic_config_builder_set_storage_path",
        ConfigField::StorageLocation => "certmagic_config_builder_set_storage_location",
        ConfigField::EventHandler => "certmagic_config_builder_set_event_callback",
        ConfigField::OnDemandDecision => "certmagic_config_builder_set_on_demand_decision",
        ConfigField::OnDemandAsk => "certmagic_config_builder_set_on_demand_ask",
        ConfigField::OnDemandAllow => "certmagic_config_builder_add_on_demand_allow",
        ConfigField::OnDemandRateLimitEvents | ConfigField::OnDemandRateLimitWindow => {
            "certmagic_config_builder_set_on_demand_rate_limit"
        }
        ConfigField::OnDemandObtainTimeout => {
            "certmagic_config_builder_set_on_demand_obtain_timeout_ms"
        }
        ConfigField::CacheCapacity => "certmagic_config_builder_set_cache_capacity",
        ConfigField::DnsProvider => "certmagic_config_builder_set_dns_provider",
        ConfigField::DnsOptions => "certmagic_config_builder_set_dns_provider options_json",
        ConfigField::DnsTtl => "certmagic_config_builder_set_dns_provider options_json.ttl_secs",
        ConfigField::DnsPropagationDelay => {
            "certmagic_config_builder_set_dns_provider options_json.propagation_delay_ms"
        }
        ConfigField::DnsPropagationTimeout => {
            "certmagic_config_builder_set_dns_provider options_json.propagation_timeout_ms"
        }
        ConfigField::DnsPollInterval => {
            "certmagic_config_builder_set_dns_provider options_json.poll_interval_ms"
        }
        ConfigField::DnsResolvers => {
            "certmagic_config_builder_set_dns_provider options_json.resolvers"
        }
        ConfigField::DnsOverrideDomain => {
            "certmagic_config_builder_set_dns_provider options_json.override_domain"
        }
        ConfigField::DnsFollowCname => {
            "certmagic_config_builder_set_dns_provider options_json.follow_cname"
        }
        ConfigField::CallbackTimeoutStorage
        | ConfigField::CallbackTimeoutLock
        | ConfigField::CallbackTimeoutDns
        | ConfigField::CallbackTimeoutDecision
        | ConfigField::CallbackTimeoutEvents => "certmagic_config_builder_set_callback_timeout_ms",
    }
}

/// Sets a text field.
///
/// # Safety
/// `builder` live; `value` NUL-terminated.
unsafe fn set_text(
    builder: *mut certmagic_config_builder,
    value: *const c_char,
    name: &'static str,
    apply: impl FnOnce(ConfigBuilder, &str) -> ConfigBuilder,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let v = text(value, name)?;
            set(b, |i| apply(i, v))
        })
    }
}
