//! The maintenance loops (Go CertMagic's `maintain.go`): every renew-check interval, renew
//! what is inside its renewal window; every OCSP-check interval, refresh staples past their
//! midpoint. A panic in one pass is logged and the loop goes on, up to a cap.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::error::ErrorKind;
use crate::manager::ManagerInner;
use crate::obtain::Issue;
use crate::subject::Subject;

/// One kind of periodic work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Start renewals of what is due.
    Renewals,
    /// Refresh OCSP staples that are no longer fresh.
    OcspStaples,
}

impl Pass {
    fn interval(self, m: &ManagerInner) -> Duration {
        match self {
            Self::Renewals => m.config.renew_check_interval,
            Self::OcspStaples => m.config.ocsp.check_interval,
        }
    }

    async fn run_once(self, m: Arc<ManagerInner>) {
        match self {
            Self::Renewals => {
                m.refresh_due_renewal_info();
                m.renew_due_certificates()
            }
            Self::OcspStaples => m.refresh_ocsp_staples().await,
        }
    }
}

pub(crate) async fn run(manager: Weak<ManagerInner>, pass: Pass, cancel: CancellationToken) {
    let Some(interval) = manager.upgrade().map(|m| pass.interval(&m)) else {
        return;
    };
    let mut panics = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return,
        }
        let Some(m) = manager.upgrade() else { return };
        let once = tokio::spawn(pass.run_once(m));
        if let Err(e) = once.await
            && e.is_panic()
        {
            panics += 1;
            let text = crate::runtime::panic_text(&*e.into_panic());
            tracing::error!(panic = %text, panics, ?pass, "maintenance pass panicked");
            if panics >= MAX_MAINTENANCE_PANICS {
                tracing::error!(
                    ?pass,
                    "maintenance stopped after repeated panics; this work will not run again"
                );
                return;
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
            if due && let Ok(subject) = Subject::parse(&name) {
                self.schedule_renewal(subject);
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
