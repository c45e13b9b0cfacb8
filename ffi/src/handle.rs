//! How opaque C handles map to Rust values. Each handle type names its Rust type and whether the
//! C side holds a `Box` (one owner, one thread at a time) or an `Arc` (shared, any thread).

use std::sync::Arc;

use crate::boundary::{Failure, FfiResult};

/// A C handle type and the Rust value behind it.
pub(crate) trait Castable {
    type Rust;
}

/// Handles the C side owns as a `Box`: builders.
pub(crate) trait BoxCastable: Castable {}

/// Handles the C side holds as an `Arc` reference: managers, configs, certificates.
pub(crate) trait ArcCastable: Castable {}

pub(crate) fn to_box<C: BoxCastable>(value: C::Rust) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// # Safety
/// `ptr` must be NULL or come from [`to_box`] for `C` and not be freed.
pub(crate) unsafe fn box_mut<'a, C: BoxCastable>(
    ptr: *mut C,
    name: &str,
) -> FfiResult<&'a mut C::Rust> {
    // SAFETY: per the contract above.
    unsafe { ptr.cast::<C::Rust>().as_mut() }.ok_or_else(|| Failure::null(name))
}

/// # Safety
/// As [`box_mut`]; the handle is consumed.
pub(crate) unsafe fn box_take<C: BoxCastable>(ptr: *mut C, name: &str) -> FfiResult<C::Rust> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: per the contract above, ownership returns to Rust.
    Ok(*unsafe { Box::from_raw(ptr.cast::<C::Rust>()) })
}

/// # Safety
/// As [`box_take`]; NULL is ignored.
pub(crate) unsafe fn box_free<C: BoxCastable>(ptr: *mut C) {
    if !ptr.is_null() {
        // SAFETY: per the contract above.
        drop(unsafe { Box::from_raw(ptr.cast::<C::Rust>()) });
    }
}

pub(crate) fn to_arc<C: ArcCastable>(value: Arc<C::Rust>) -> *const C {
    Arc::into_raw(value).cast()
}

/// # Safety
/// `ptr` must be NULL or come from [`to_arc`] for `C`, with a reference not yet freed.
pub(crate) unsafe fn arc_ref<'a, C: ArcCastable>(
    ptr: *const C,
    name: &str,
) -> FfiResult<&'a C::Rust> {
    // SAFETY: per the contract above.
    unsafe { ptr.cast::<C::Rust>().as_ref() }.ok_or_else(|| Failure::null(name))
}

/// # Safety
/// As [`arc_ref`]; the caller's reference is released. NULL is ignored.
pub(crate) unsafe fn arc_free<C: ArcCastable>(ptr: *const C) {
    if !ptr.is_null() {
        // SAFETY: per the contract above.
        drop(unsafe { Arc::from_raw(ptr.cast::<C::Rust>()) });
    }
}

/// Writes `value` to an out-pointer, only on success paths.
///
/// # Safety
/// `out` must be NULL or valid for one write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T, name: &str) -> FfiResult {
    if out.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL and valid per the contract above.
    unsafe { out.write(value) };
    Ok(())
}

/// Frees a callback's `userdata` when the library drops its last reference to the callback.
/// May be NULL when the userdata needs no freeing.
///
/// One rule for every function that takes a `userdata_free` (directly or in a callback table):
/// the library owns `userdata` from the moment the function is called. `userdata_free` runs
/// exactly once: when nothing uses the callback any more, or, if the function fails (a NULL
/// builder or callback, a refused table or setting), before the function returns. The caller
/// never frees a `userdata` it passed. (Only a NULL table pointer leaves nothing to free.)
#[allow(non_camel_case_types)]
pub type certmagic_userdata_free_cb = Option<unsafe extern "C" fn(userdata: *mut std::ffi::c_void)>;

/// A callback's `userdata`, freed exactly once with its `userdata_free` when dropped.
#[derive(Debug)]
pub(crate) struct Userdata {
    pub ptr: *mut std::ffi::c_void,
    free: certmagic_userdata_free_cb,
}

// SAFETY: the C API documents that callbacks (and so their userdata) are used from any thread,
// concurrently; registering a callback is the caller's promise that this is safe.
unsafe impl Send for Userdata {}
// SAFETY: as above.
unsafe impl Sync for Userdata {}

impl Userdata {
    pub fn new(ptr: *mut std::ffi::c_void, free: certmagic_userdata_free_cb) -> Self {
        Self { ptr, free }
    }
}

impl Drop for Userdata {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: the caller registered `free` for exactly this pointer; called once.
            unsafe { free(self.ptr) };
        }
    }
}
