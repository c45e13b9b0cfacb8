//! The C API of certmagic: `libcertmagic.so` / `libcertmagic.a`, described by
//! `include/certmagic.h` (generated from this crate by cbindgen).
//!
//! Rules every function follows: opaque handles with `_new`/`_free` (`_free(NULL)` is a no-op);
//! text in as NUL-terminated UTF-8, bytes as pointer + length, both copied; outputs written only
//! on success; borrowed `certmagic_bytes` views out; a `certmagic_result` from every fallible
//! call, with details from `certmagic_last_error_message`; no panic crosses the boundary.

#![allow(non_camel_case_types)]

mod boundary;
mod certificate;
mod challenge;
mod config;
mod dns;
mod enums;
mod events;
mod handle;
mod issuers;
mod log;
mod manager;
mod on_demand;
mod result;
mod slice;
mod storage;
mod version;

pub use boundary::certmagic_last_error_message;
pub use certificate::*;
pub use challenge::*;
pub use config::*;
pub use dns::*;
pub use events::certmagic_event_cb;
pub use handle::certmagic_userdata_free_cb;
pub use issuers::*;
pub use log::*;
pub use manager::*;
pub use on_demand::*;
pub use result::{certmagic_result, certmagic_result_str};
pub use slice::*;
pub use storage::*;
pub use version::*;

/// The name of a result code a callback returned, for messages.
pub(crate) fn result_name(code: u32) -> String {
    // SAFETY: certmagic_result_str returns a static NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(certmagic_result_str(code)) };
    let text = text.to_string_lossy();
    text.split(':').next().unwrap_or("").to_string()
}
