//! When failed background work is tried again: Go CertMagic's schedule (1 min, 2 min, 2 min,
//! 5 min, 10 min … rising to 6 h, for up to 30 days), and the loop that follows it.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};

/// Waits between attempts of a background obtain or renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    intervals: Vec<Duration>,
    max_total: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::certmagic()
    }
}

impl RetrySchedule {
    /// Go CertMagic's schedule: the waits of `retryIntervals`, the last one repeated, for at most
    /// 30 days in all.
    pub fn certmagic() -> Self {
        const M: u64 = 60;
        const H: u64 = 3600;
        let secs = [
            M,
            2 * M,
            2 * M,
            5 * M,
            10 * M,
            10 * M,
            10 * M,
            20 * M,
            20 * M,
            20 * M,
            20 * M,
            30 * M,
            30 * M,
            30 * M,
            30 * M,
            30 * M,
            30 * M,
            H,
            H,
            H,
            2 * H,
            2 * H,
            3 * H,
            3 * H,
            6 * H,
        ];
        Self {
            intervals: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
            max_total: MAX_RETRY_DURATION,
        }
    }

    /// A custom schedule: the waits after the first, second, … failure (the last repeats), and
    /// the total time after which to give up. An empty list means no retries (through
    /// [`ConfigBuilder::retry_intervals`](crate::ConfigBuilder::retry_intervals) it means the
    /// default waits).
    pub fn new(intervals: Vec<Duration>, max_total: Duration) -> Self {
        Self {
            intervals,
            max_total,
        }
    }

    /// This schedule's waits with another total.
    pub fn with_max_total(mut self, max_total: Duration) -> Self {
        self.max_total = max_total;
        self
    }

    /// The waits and the total.
    pub fn into_parts(self) -> (Vec<Duration>, Duration) {
        (self.intervals, self.max_total)
    }

    /// The waits after the first, second, … failure (the last repeats).
    pub fn intervals(&self) -> &[Duration] {
        &self.intervals
    }

    /// The total time after which retrying stops.
    pub fn max_total(&self) -> Duration {
        self.max_total
    }

    /// The wait after failed attempt number `attempt` (0-based), if any.
    pub fn wait_after(&self, attempt: usize) -> Option<Duration> {
        self.intervals
            .get(attempt)
            .or(self.intervals.last())
            .copied()
    }
}

/// Runs `op` until it succeeds, fails for good, the schedule is used up or `cancel` fires.
pub(crate) async fn with_retries<F, Fut>(
    what: &str,
    schedule: &RetrySchedule,
    cancel: &CancellationToken,
    mut op: F,
) -> Result<()>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let start = Instant::now();
    for attempt in 0.. {
        let err = tokio::select! {
            res = op(attempt) => match res {
                Ok(()) => return Ok(()),
                Err(e) => e,
            },
            _ = cancel.cancelled() => return Err(cancelled(what)),
        };
        if !err.is_retryable() {
            tracing::error!(task = what, error = %err, "giving up: the error is permanent");
            return Err(err);
        }
        let Some(wait) = schedule.wait_after(attempt) else {
            return Err(err);
        };
        if start.elapsed().saturating_add(wait) > schedule.max_total {
            tracing::error!(task = what, attempts = attempt + 1, error = %err, "giving up after the retry period");
            return Err(err);
        }
        tracing::warn!(task = what, attempt = attempt + 1, retry_in = ?wait, error = %err, "will retry");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => return Err(cancelled(what)),
        }
    }
    unreachable!("the attempt counter is unbounded")
}

fn cancelled(what: &str) -> Error {
    Error::new(ErrorKind::Cancelled, format!("{what}: cancelled"))
}

/// Go CertMagic's `maxRetryDuration`.
pub const MAX_RETRY_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn certmagic_schedule() {
        let s = RetrySchedule::certmagic();
        assert_eq!(s.wait_after(0), Some(Duration::from_secs(60)));
        assert_eq!(s.wait_after(3), Some(Duration::from_secs(300)));
        assert_eq!(s.wait_after(1000), Some(Duration::from_secs(6 * 3600)));
    }

    #[tokio::test]
    async fn retries_until_success_and_stops_on_permanent_errors() {
        let s = RetrySchedule::new(vec![Duration::from_millis(5)], Duration::from_secs(5));
        let n = AtomicUsize::new(0);
        with_retries("t", &s, &CancellationToken::new(), |_| async {
            if n.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(Error::new(ErrorKind::Acme, "down"))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 4);

        let n = AtomicUsize::new(0);
        let err = with_retries("t", &s, &CancellationToken::new(), |_| async {
            n.fetch_add(1, Ordering::SeqCst);
            Err(Error::new(ErrorKind::InvalidName, "bad"))
        })
        .await
        .unwrap_err();
        assert_eq!(
            (err.kind(), n.load(Ordering::SeqCst)),
            (ErrorKind::InvalidName, 1)
        );
    }

    #[tokio::test]
    async fn cancellation_stops_the_wait() {
        let s = RetrySchedule::new(vec![Duration::from_secs(3600)], Duration::from_secs(7200));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.cancel();
        });
        let err = with_retries("t", &s, &cancel, |_| async {
            Err(Error::new(ErrorKind::Acme, "down"))
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
    }
}
