//! Issuers from C: the list a configuration obtains from (ACME CAs and the local CA, as JSON
//! specs the core reads), the order they are tried in, and the local CA's root for clients to
//! trust.

use std::ffi::c_char;

use certmagic::{IssuerPolicy, IssuerSpec};

use crate::boundary::{Failure, call, copy_out};
use crate::config::{certmagic_config_builder, set, update};
use crate::enums::c_enum;
use crate::handle;
use crate::manager::certmagic_manager;
use crate::result::certmagic_result;
use crate::slice::text;

/// In which order a certificate's issuers are tried.
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum certmagic_issuer_policy {
    /// In the order they were added (the default).
    First = 1,
    /// Shuffled for each new certificate; renewals keep the order they were added in.
    Random = 2,
}

c_enum!(certmagic_issuer_policy {
    First => "CERTMAGIC_ISSUER_POLICY_FIRST",
    Random => "CERTMAGIC_ISSUER_POLICY_RANDOM",
});

impl From<certmagic_issuer_policy> for IssuerPolicy {
    fn from(p: certmagic_issuer_policy) -> Self {
        match p {
            certmagic_issuer_policy::First => IssuerPolicy::First,
            certmagic_issuer_policy::Random => IssuerPolicy::Random,
        }
    }
}

/// Adds an issuer to the list certificates are obtained from (each certificate from the first
/// that succeeds; without any, the ACME CA of the builder's own settings). `spec` is `"acme"`
/// (the builder's CA), `"local"` (the library's own CA, see `certmagic_manager_local_root_pem`),
/// or a JSON object: `{"type": "acme", "ca", "email", "eab": {"key_id", "hmac_key"},
/// "trusted_roots_pem", "profile", "preferred_chain": {"root_common_names",
/// "any_common_names", "smallest"}}` (another CA: EAB, profile and chain preference are its
/// own; email and roots default to the builder's), `{"type": "local", "lifetime_secs"}`
/// (default 12 hours) or `{"type": "zerossl", "email", "api_key"}` (`"zerossl"` alone: the
/// builder's email; EAB credentials are fetched from ZeroSSL's API for the email, or with the
/// API key, when an account is registered). A malformed spec gives
/// `CERTMAGIC_RESULT_INVALID_CONFIG` now; a bad value in it, from
/// `certmagic_config_builder_build`, naming the issuer.
///
/// # Safety
/// `builder` live; `spec` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_add_issuer(
    builder: *mut certmagic_config_builder,
    spec: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let spec = IssuerSpec::from_json(text(spec, "spec")?)?;
            set(b, |i| i.issuer(spec))
        })
    }
}

/// Sets the order issuers are tried in (a `certmagic_issuer_policy`).
///
/// # Safety
/// `builder` live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_issuer_policy(
    builder: *mut certmagic_config_builder,
    policy: u32,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let p = certmagic_issuer_policy::from_u32(policy)
                .ok_or_else(|| Failure::invalid(format!("unknown issuer policy {policy}")))?;
            set(b, |i| i.issuer_policy(p.into()))
        })
    }
}

/// Copies the local CA's root certificate (PEM) into `buf`, NUL-terminated and truncated to
/// `buf_len - 1` bytes, and writes its full length to `*out_n` (call with `buf_len` 0 to learn
/// it). Creates the CA in storage if it has none; blocks. `CERTMAGIC_RESULT_NOT_FOUND` when no
/// issuer of the manager is the local CA.
///
/// # Safety
/// `manager` live; `buf` valid for `buf_len` bytes of writing (may be NULL when `buf_len` is
/// 0); `out_n` valid for one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_manager_local_root_pem(
    manager: *const certmagic_manager,
    buf: *mut c_char,
    buf_len: usize,
    out_n: *mut usize,
) -> certmagic_result {
    call(|| {
        if out_n.is_null() {
            return Err(Failure::null("out_n"));
        }
        if buf.is_null() && buf_len > 0 {
            return Err(Failure::null("buf"));
        }
        // SAFETY: per the contract above.
        let m = unsafe { handle::arc_ref(manager, "manager") }?;
        let pem = m.local_root_pem_sync()?;
        // SAFETY: checked above; the caller's buffer per the contract.
        unsafe { copy_out(pem.as_bytes(), buf, buf_len, out_n) };
        Ok(())
    })
}
