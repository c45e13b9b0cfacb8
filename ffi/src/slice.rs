//! Data crossing the boundary: NUL-terminated UTF-8 text in, pointer + length bytes in, borrowed
//! `certmagic_bytes` views out, and the library-owned buffers callbacks fill through setters.

use std::ffi::{CStr, c_char};

use crate::boundary::{Failure, FfiResult, call};
use crate::result::certmagic_result;

/// A borrowed view of bytes owned by the library. Valid while the handle that produced it lives
/// (certificates are immutable, so views of one stay valid until it is freed). Never freed by the
/// caller; not NUL-terminated.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct certmagic_bytes {
    /// First byte (non-NULL even when `len` is 0).
    pub data: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl certmagic_bytes {
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Self {
            data: bytes.as_ptr(),
            len: bytes.len(),
        }
    }
}

/// Text argument: NUL-terminated UTF-8, copied out.
///
/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: per the contract above.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|_| {
        Failure::new(
            certmagic_result::InvalidUtf8,
            format!("`{name}` is not valid UTF-8"),
        )
    })
}

/// Bytes argument: pointer + length; NULL is allowed when `len` is 0.
///
/// # Safety
/// `ptr` must be valid for `len` bytes of reading.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize, name: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: per the contract above.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An array of text arguments (`names`, `names_len`).
///
/// # Safety
/// `ptr` must be valid for `len` pointers, each a valid NUL-terminated string.
pub(crate) unsafe fn texts<'a>(
    ptr: *const *const c_char,
    len: usize,
    name: &str,
) -> FfiResult<Vec<&'a str>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: per the contract above.
    let ptrs = unsafe { std::slice::from_raw_parts(ptr, len) };
    ptrs.iter()
        .enumerate()
        // SAFETY: each entry is a valid string per the contract above.
        .map(|(i, p)| unsafe { text(*p, &format!("{name}[{i}]")) })
        .collect()
}

/// A buffer owned by the library, filled by a callback with `certmagic_buffer_set`. Valid only
/// during the callback that received it; used by that callback's thread.
#[derive(Debug, Default)]
pub struct certmagic_buffer {
    pub(crate) data: Vec<u8>,
    pub(crate) set: bool,
}

/// Copies `len` bytes from `data` into `out` (replacing what it held). Called by callbacks that
/// hand data back, such as a storage `load`. Any thread.
///
/// # Safety
/// `out` must be the buffer passed to the callback; `data` valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_buffer_set(
    out: *mut certmagic_buffer,
    data: *const u8,
    len: usize,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        // SAFETY: per the contract above.
        let data = unsafe { bytes(data, len, "data") }?;
        out.data.clear();
        out.data.extend_from_slice(data);
        out.set = true;
        Ok(())
    })
}

/// A list of strings owned by the library, filled by a callback with
/// `certmagic_string_list_push`. Valid only during the callback that received it.
#[derive(Debug, Default)]
pub struct certmagic_string_list {
    pub(crate) items: Vec<String>,
}

/// Appends a copy of the NUL-terminated UTF-8 string `s` to `list`. Called by callbacks that
/// hand lists back, such as a storage `list`. Any thread.
///
/// # Safety
/// `list` must be the list passed to the callback; `s` a valid NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_string_list_push(
    list: *mut certmagic_string_list,
    s: *const c_char,
) -> certmagic_result {
    call(|| {
        // SAFETY: per the contract above.
        let list = unsafe { list.as_mut() }.ok_or_else(|| Failure::null("list"))?;
        // SAFETY: per the contract above.
        let s = unsafe { text(s, "s") }?;
        list.items.push(s.to_string());
        Ok(())
    })
}
