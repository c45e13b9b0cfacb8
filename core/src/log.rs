//! One log bridge for every binding: `tracing` records from this library, formatted as one line
//! each (message, fields, and the span fields that name the certificate and issuer), handed to a
//! sink the binding registers (a C callback, Python's `logging`, a Node function).
//!
//! The bridge is a process-wide `tracing` subscriber, installed on the first
//! [`set_log_sink`] call; a program that installed its own subscriber keeps it (and gets an error
//! here), Rust users need none of this.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::{Level, Metadata};
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::error::{Error, ErrorKind, Result};

/// Receives one formatted record: its level, target (module path) and text.
pub type LogSink = Arc<dyn Fn(Level, &str, &str) + Send + Sync>;

static SINK: RwLock<Option<LogSink>> = RwLock::new(None);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// A level as a number, most severe first: ERROR 1, WARN 2, INFO 3, DEBUG 4, TRACE 5 (the
/// numbering the C API uses).
#[doc(hidden)] // for the bindings' level numbers
pub fn level_number(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// The level of a [`level_number`].
#[doc(hidden)] // for the bindings' level numbers
pub fn level_from_number(n: u32) -> Option<Level> {
    Some(match n {
        1 => Level::ERROR,
        2 => Level::WARN,
        3 => Level::INFO,
        4 => Level::DEBUG,
        5 => Level::TRACE,
        _ => return None,
    })
}

/// Sends this library's records up to `max_level` to `sink` (replacing any earlier sink), or
/// stops forwarding with `None`. Records of other crates (the ACME client, rustls) are forwarded
/// from WARN up.
pub fn set_log_sink(sink: Option<LogSink>, max_level: Level) -> Result<()> {
    let installed = INSTALLED.get_or_init(|| {
        let filter = tracing_subscriber::filter::filter_fn(|meta: &Metadata<'_>| {
            let max = MAX_LEVEL.load(Ordering::Relaxed);
            let own = meta.target().starts_with("certmagic");
            let limit = if own {
                max
            } else {
                max.min(level_number(Level::WARN))
            };
            level_number(*meta.level()) <= limit
        });
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_writer(SinkWriter)
            .with_filter(filter);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())
    });
    if let Err(e) = installed {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("cannot forward logs: another tracing subscriber is installed ({e})"),
        ));
    }
    MAX_LEVEL.store(
        if sink.is_some() {
            level_number(max_level)
        } else {
            0
        },
        Ordering::Relaxed,
    );
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = sink;
    Ok(())
}

/// Makes one buffer per record; the buffer goes to the sink when the record is complete.
struct SinkWriter;

struct Record {
    level: Level,
    target: String,
    text: Vec<u8>,
}

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = Record;

    fn make_writer(&'a self) -> Record {
        Record {
            level: Level::INFO,
            target: String::new(),
            text: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Record {
        Record {
            level: *meta.level(),
            target: meta.target().to_string(),
            text: Vec::with_capacity(128),
        }
    }
}

impl Write for Record {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let sink = SINK.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sink) = sink {
            let text = String::from_utf8_lossy(&self.text);
            // A sink that panics must not take the logging thread down with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sink(self.level, &self.target, text.trim_end())
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn forwards_own_records_up_to_the_level_with_span_fields() {
        let seen: Arc<Mutex<Vec<(Level, String)>>> = Arc::default();
        let s = seen.clone();
        set_log_sink(
            Some(Arc::new(move |l, _t: &str, m: &str| {
                s.lock().unwrap().push((l, m.to_string()))
            })),
            Level::INFO,
        )
        .unwrap();
        let span = tracing::info_span!("issue", identifier = "a.test", issuer = "ca");
        span.in_scope(|| {
            tracing::info!(serial = "01", "certificate obtained");
            tracing::debug!("too detailed");
        });
        tracing::warn!(target: "other_crate", "from a dependency");
        tracing::info!(target: "other_crate", "dependency chatter");
        set_log_sink(None, Level::INFO).unwrap();
        tracing::error!("after removal");
        // Other tests log concurrently; look only for this test's records.
        let seen = seen.lock().unwrap().clone();
        let find = |needle: &str| seen.iter().find(|(_, m)| m.contains(needle)).cloned();
        let (level, text) = find("certificate obtained").expect("own INFO record forwarded");
        assert_eq!(level, Level::INFO);
        assert!(text.contains("serial=\"01\""), "{text}");
        assert!(
            text.contains("identifier=\"a.test\"") && text.contains("issuer=\"ca\""),
            "{text}"
        );
        assert_eq!(find("from a dependency").map(|r| r.0), Some(Level::WARN));
        assert!(find("too detailed").is_none(), "above the level");
        assert!(
            find("dependency chatter").is_none(),
            "dependencies only from WARN"
        );
        assert!(find("after removal").is_none(), "sink removed");
    }
}
