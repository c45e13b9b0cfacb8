//! The panic boundary and the per-thread last error. Every exported function runs its body
//! through [`call`] (fallible, returns a result code) or [`guard`] (returns a plain value), so no
//! Rust panic crosses into C and every failure leaves a message for
//! `certmagic_last_error_message`.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::result::certmagic_result;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A failed call: its code and the detail for `certmagic_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: certmagic_result,
    pub message: String,
}

impl Failure {
    pub fn new(code: certmagic_result, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Self {
        Self::new(certmagic_result::NullParameter, format!("`{what}` is NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(certmagic_result::InvalidParameter, message)
    }
}

impl From<certmagic::Error> for Failure {
    fn from(e: certmagic::Error) -> Self {
        // A refused setting is named by the setter a C caller used.
        let e = match e.config_field() {
            Some(field) => e.spelled(crate::config::setter_name(field)),
            None => e,
        };
        Self {
            code: certmagic_result::from_kind(e.kind()),
            message: e.to_string(),
        }
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

fn set_last_error(message: String) {
    LAST_ERROR.with(|l| *l.borrow_mut() = message);
}

/// Runs the body of a fallible exported function: clears the last error, contains panics, and
/// records the message of a failure.
pub(crate) fn call(body: impl FnOnce() -> FfiResult) -> certmagic_result {
    set_last_error(String::new());
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => certmagic_result::Ok,
        Ok(Err(failure)) => {
            set_last_error(failure.message);
            failure.code
        }
        Err(panic) => {
            set_last_error(format!(
                "certmagic panicked: {}",
                certmagic::runtime::panic_text(&*panic)
            ));
            certmagic_result::Panic
        }
    }
}

/// Runs the body of an exported function that returns a plain value; a panic yields `default`.
pub(crate) fn guard<T>(default: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(default)
}

/// Copies the message of the last failed call on this thread into `buf` (NUL-terminated,
/// truncated to `buf_len`), and writes its full length (without the NUL) to `out_n`. The message
/// is empty after a call that succeeded. Any thread; does not change the last error.
///
/// `buf` may be NULL when `buf_len` is 0 (to ask for the length). Returns
/// `CERTMAGIC_RESULT_NULL_PARAMETER` if `out_n` is NULL or `buf` is NULL with `buf_len` > 0.
///
/// # Safety
/// `buf` must be valid for `buf_len` bytes of writing; `out_n` for one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_last_error_message(
    buf: *mut c_char,
    buf_len: usize,
    out_n: *mut usize,
) -> certmagic_result {
    guard(certmagic_result::Panic, || {
        if out_n.is_null() || (buf.is_null() && buf_len > 0) {
            return certmagic_result::NullParameter;
        }
        // SAFETY: checked above; the caller's buffer per the contract.
        LAST_ERROR.with(|l| unsafe { copy_out(l.borrow().as_bytes(), buf, buf_len, out_n) });
        certmagic_result::Ok
    })
}

/// Copies `text` into `buf` NUL-terminated, truncated to `buf_len - 1` bytes (nothing when
/// `buf_len` is 0), and writes its full length to `out_n`.
///
/// # Safety
/// `out_n` non-NULL and valid for one `size_t`; `buf` valid for `buf_len` bytes of writing.
pub(crate) unsafe fn copy_out(text: &[u8], buf: *mut c_char, buf_len: usize, out_n: *mut usize) {
    // SAFETY: per the contract above.
    unsafe { *out_n = text.len() };
    if buf_len > 0 {
        let n = text.len().min(buf_len - 1);
        // SAFETY: `buf` has room for `buf_len` bytes; n + 1 <= buf_len.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
}
