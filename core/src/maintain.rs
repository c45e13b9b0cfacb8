//! The maintenance loop: every check interval, renew what is inside its renewal window (Go
//! CertMagic's `maintain.go`). A panic in one pass is logged and the loop goes on, up to a cap.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::error::ErrorKind;
use crate::manager::ManagerInner;
use crate::obtain::Issue;
use crate::subject::Subject;

pub(crate) async fn run(
    manager: Weak<ManagerInner>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut panics = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return,
        }
        let Some(m) = manager.upgrade() else { return };
        let pass = tokio::spawn(async move { m.renew_due_certificates() });
        if let Err(e) = pass.await {
            if e.is_panic() {
                panics += 1;
                let text = crate::runtime::panic_text(&*e.into_panic());
                tracing::error!(panic = %text, panics, "maintenance pass panicked");
                if panics >= MAX_MAINTENANCE_PANICS {
                    tracing::error!(
                        "maintenance stopped after repeated panics; certificates will not renew"
                    );
                    return;
                }
            }
        }
    }
}

/// Panicking passes tolerated before the loop gives up.
const MAX_MAINTENANCE_PANICS: u32 = 10;

impl ManagerInner {
    /// Called by maintenance: starts a renewal job for every managed certificate that is due,
    /// cached or evicted (cache capacity).
    pub(crate) fn renew_due_certificates(self: &Arc<Self>) {
        let names: Vec<(String, Option<(i64, i64)>)> = self
            .managed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, v)| (n.clone(), *v))
            .collect();
        let now = SystemTime::now();
        for (name, known) in names {
            let due = match self.cache.get_exact(&name) {
                Some(cert) => cert.is_managed() && self.needs_renewal(&cert),
                None => known.is_some_and(|(not_before, not_after)| {
                    crate::certificate::needs_renewal(
                        not_before,
                        not_after,
                        self.config.renewal_window_ratio,
                        self.config.renew_check_interval,
                        now,
                    )
                }),
            };
            if due {
                if let Ok(subject) = Subject::parse(&name) {
                    self.schedule_renewal(subject);
                }
            }
        }
    }

    /// Renews `subject` in the background (with retries) if it is still due when the job runs.
    pub(crate) fn schedule_renewal(self: &Arc<Self>, subject: Subject) {
        self.spawn_with_retries(format!("renew_{subject}"), subject, |m, s| async move {
            let name = s.as_string();
            let current = match m.cache.get_exact(&name) {
                Some(c) => c,
                // Evicted: storage has it (and it stays out of the cache unless renewed).
                None => match m.load_from_storage(&name).await {
                    Ok(c) => Arc::new(c),
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                    Err(e) if e.kind() == ErrorKind::Corrupt => {
                        return m.issue_cert(&s, Issue::obtain()).await.map(|_| ());
                    }
                    Err(e) => return Err(e),
                },
            };
            if !m.needs_renewal(&current) {
                return Ok(());
            }
            m.issue_cert(&s, Issue::renewal(current)).await.map(|_| ())
        });
    }
}
