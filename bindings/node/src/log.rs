//! The engine's log records to a JavaScript function.

use std::sync::Arc;

use certmagic::{Error, ErrorKind};
use napi::bindgen_prelude::Function;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

use crate::errors::{check, to_js};
use crate::weak;

/// Sends the engine's log records (level 1 error … 5 trace, message) to `logger`, or stops with
/// null. Never waits for JavaScript; records are dropped while the process exits.
#[napi(catch_unwind)]
pub fn set_logger(
    logger: Option<Function<'_, (u32, String), ()>>,
    max_level: u32,
) -> napi::Result<()> {
    let level = certmagic::log::level_from_number(max_level).ok_or_else(|| {
        to_js(Error::new(
            ErrorKind::InvalidConfig,
            format!("logLevel: {max_level} is not a level (1-5)"),
        ))
    })?;
    let callback = match logger {
        Some(f) => Some(Arc::new(weak(&f)?)),
        None => None,
    };
    let sink: Option<certmagic::log::LogSink> = callback.map(|cb| {
        let sink: certmagic::log::LogSink = Arc::new(move |level, _target: &str, message: &str| {
            let _ = cb.call(
                (
                    u32::from(certmagic::log::level_number(level)),
                    message.to_string(),
                ),
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        });
        sink
    });
    check(certmagic::log::set_log_sink(sink, level))
}
