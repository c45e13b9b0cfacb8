//! Logging: the library's `tracing` records, one formatted line each, to a C callback.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use certmagic::runtime::CallbackGuard;
use tracing::Level;

use crate::boundary::{Failure, call};
use crate::enums::c_enum;
use crate::handle::{Userdata, certmagic_userdata_free_cb};
use crate::result::certmagic_result;

/// Log levels, most severe first.
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum certmagic_log_level {
    /// Failures.
    Error = 1,
    /// Problems the library works around (e.g. a retry).
    Warn = 2,
    /// Certificates obtained, renewed, loaded.
    Info = 3,
    /// Protocol steps.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

c_enum!(certmagic_log_level {
    Error => "CERTMAGIC_LOG_LEVEL_ERROR",
    Warn => "CERTMAGIC_LOG_LEVEL_WARN",
    Info => "CERTMAGIC_LOG_LEVEL_INFO",
    Debug => "CERTMAGIC_LOG_LEVEL_DEBUG",
    Trace => "CERTMAGIC_LOG_LEVEL_TRACE",
});

impl From<certmagic_log_level> for Level {
    fn from(l: certmagic_log_level) -> Self {
        match l {
            certmagic_log_level::Error => Self::ERROR,
            certmagic_log_level::Warn => Self::WARN,
            certmagic_log_level::Info => Self::INFO,
            certmagic_log_level::Debug => Self::DEBUG,
            certmagic_log_level::Trace => Self::TRACE,
        }
    }
}

impl From<Level> for certmagic_log_level {
    fn from(l: Level) -> Self {
        match l {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            _ => Self::Trace,
        }
    }
}

/// Receives one log record: a `certmagic_log_level` and a NUL-terminated message (with the
/// certificate name and issuer where they apply), valid only during the call.
///
/// Thread-safety: called on whatever library thread logs, several at once; must be quick (it is
/// called inline, not on a blocking thread); must return normally; must not call `certmagic_*`
/// functions.
#[allow(non_camel_case_types)]
pub type certmagic_log_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: u32, message: *const c_char)>;

struct CLog {
    cb: unsafe extern "C" fn(*mut c_void, u32, *const c_char),
    userdata: Userdata,
}

/// Sends the library's log records up to `max_level` (a `certmagic_log_level`) to `cb`, for the
/// whole process, replacing an earlier callback (whose `userdata_free` is then called). A NULL
/// `cb` stops forwarding. Fails with `CERTMAGIC_RESULT_INVALID_CONFIG` if the process already
/// installed another Rust `tracing` subscriber. Any thread.
///
/// # Safety
/// `cb` must be safe to call with `userdata` from any thread until `userdata_free` is called.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_set_log_callback(
    cb: certmagic_log_cb,
    userdata: *mut c_void,
    userdata_free: certmagic_userdata_free_cb,
    max_level: u32,
) -> certmagic_result {
    let userdata = Userdata::new(userdata, userdata_free);
    call(|| {
        let level: Level = certmagic_log_level::from_u32(max_level)
            .ok_or_else(|| Failure::invalid(format!("unknown log level {max_level}")))?
            .into();
        let sink = cb.map(|cb| {
            let log = Arc::new(CLog { cb, userdata });
            let sink: certmagic::log::LogSink =
                Arc::new(move |level: Level, _target: &str, message: &str| {
                    let Ok(message) = CString::new(message.replace('\0', " ")) else {
                        return;
                    };
                    let _in_callback = CallbackGuard::enter();
                    // SAFETY: registered by the caller for `userdata`; the message outlives the call.
                    unsafe {
                        (log.cb)(
                            log.userdata.ptr,
                            certmagic_log_level::from(level) as u32,
                            message.as_ptr(),
                        )
                    };
                });
            sink
        });
        certmagic::log::set_log_sink(sink, level)?;
        Ok(())
    })
}
