//! Event callbacks: every core event reaches C as its name and a JSON payload.

use std::ffi::{CString, c_char, c_void};

use certmagic::runtime::CallbackGuard;
use certmagic::{Event, EventHandler};

use crate::handle::Userdata;

/// Receives an event: `name` (e.g. `cert_obtained`) and `payload_json` (a JSON object with Go
/// CertMagic's keys), both NUL-terminated and valid only during the call. Return
/// `CERTMAGIC_RESULT_OK` (0); any other code from `cert_obtaining` cancels that obtain or renewal,
/// from other events it is logged.
///
/// Thread-safety: called on library threads, possibly several at once; may block (it runs on a
/// blocking thread); must return normally (no `longjmp`, no C++ exception); must not call a
/// blocking `certmagic_*` function (answered with `CERTMAGIC_RESULT_REENTRANT`).
#[allow(non_camel_case_types)]
pub type certmagic_event_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        name: *const c_char,
        payload_json: *const c_char,
    ) -> u32,
>;

pub(crate) struct CEvents {
    pub cb: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> u32,
    pub userdata: Userdata,
}

impl EventHandler for CEvents {
    fn handle(&self, event: &Event) -> Result<(), certmagic::HandlerError> {
        let name = CString::new(event.name()).map_err(|e| e.to_string())?;
        // serde_json escapes NUL, so a payload never holds one.
        let payload = CString::new(event.payload().to_string()).map_err(|e| e.to_string())?;
        let _in_callback = CallbackGuard::enter();
        // SAFETY: the caller registered `cb` for `userdata`; the strings outlive the call.
        let rc = unsafe { (self.cb)(self.userdata.ptr, name.as_ptr(), payload.as_ptr()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("event callback returned {}", crate::result_name(rc)).into())
        }
    }
}
