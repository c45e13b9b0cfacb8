//! The library's version.

use std::ffi::c_char;

/// The version of the library, e.g. "0.1.0" (static, NUL-terminated; compare with the
/// `CERTMAGIC_VERSION_*` macros of the header you compiled against).
#[unsafe(no_mangle)]
pub extern "C" fn certmagic_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
