//! The maintenance loop: every check interval, renew what is inside its renewal window. A panic
//! in one pass is logged and the loop goes on, up to a cap.

use std::sync::Weak;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::manager::ManagerInner;

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
