//! The logging bridge: the engine's records go to the standard `logging` module, logger
//! `certmagic`. Engine threads only queue a record (never wait for the interpreter); one thread
//! hands them to `logging`.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use tracing::Level;

static QUEUE: OnceLock<SyncSender<(Level, String)>> = OnceLock::new();

/// Starts forwarding (once per process). Records beyond the queue's room are dropped rather than
/// slowing the engine down.
pub(crate) fn install() {
    QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel::<(Level, String)>(QUEUE_LEN);
        let _ = std::thread::Builder::new()
            .name("certmagic-logging".into())
            .spawn(move || {
                while let Ok((level, message)) = rx.recv() {
                    let delivered = Python::try_attach(|py| {
                        let logger = py
                            .import("logging")?
                            .call_method1("getLogger", ("certmagic",))?;
                        logger
                            .call_method1("log", (python_level(level), "%s", message))
                            .map(|_| ())
                    });
                    match delivered {
                        None => break,
                        Some(Err(e)) => Python::attach(|py| e.write_unraisable(py, None)),
                        Some(Ok(())) => {}
                    }
                }
            });
        let sender = tx.clone();
        let sink: certmagic::log::LogSink =
            Arc::new(move |level: Level, _target: &str, message: &str| {
                let _ = sender.try_send((level, message.to_string()));
            });
        // Fails only if the process installed another tracing subscriber; logs then go there.
        let _ = certmagic::log::set_log_sink(Some(sink), Level::DEBUG);
        tx
    });
}

fn python_level(level: Level) -> u32 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

const QUEUE_LEN: usize = 4096;
