//! Background jobs, de-duplicated by name: a second request to renew a name while its renewal is
//! running (or waiting to retry) joins nothing and starts nothing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

/// Running jobs by name.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    running: Mutex<HashMap<String, AbortHandle>>,
}

/// Removes a job's entry when its task ends, however it ends (done, panicked, aborted).
struct Finished {
    jobs: Weak<Jobs>,
    name: String,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(jobs) = self.jobs.upgrade() {
            jobs.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.name);
        }
    }
}

impl Jobs {
    /// Starts `job` as `name` unless a job of that name is running; false if it was.
    pub fn spawn(
        self: &Arc<Self>,
        runtime: &Handle,
        name: String,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.contains_key(&name) {
            tracing::debug!(job = name, "already running");
            return false;
        }
        let finished = Finished {
            jobs: Arc::downgrade(self),
            name: name.clone(),
        };
        // The entry is inserted before this lock is released, so the task's removal comes after.
        let task = runtime.spawn(async move {
            let _finished = finished;
            job.await;
        });
        running.insert(name, task.abort_handle());
        true
    }

    /// Whether a job of that name is running.
    #[cfg(test)]
    pub fn is_running(&self, name: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
    }

    /// Stops the named job, if running.
    pub fn abort(&self, name: &str) {
        if let Some(task) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
        {
            task.abort();
        }
    }

    /// Stops every job.
    pub fn abort_all(&self) {
        for (_, task) in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn dedupes_and_cleans_up_even_after_panics() {
        let jobs = Arc::new(Jobs::default());
        let rt = Handle::current();
        assert!(jobs.spawn(
            &rt,
            "a".into(),
            tokio::time::sleep(Duration::from_millis(100))
        ));
        assert!(!jobs.spawn(&rt, "a".into(), async {}));
        assert!(jobs.spawn(&rt, "b".into(), async { panic!("job bug") }));
        let gone = |name: &'static str| {
            let jobs = jobs.clone();
            async move {
                // However loaded the machine, within a minute.
                for _ in 0..6000 {
                    if !jobs.is_running(name) {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            }
        };
        assert!(gone("a").await);
        assert!(gone("b").await, "a panicked job leaves the table");
        assert!(jobs.spawn(&rt, "c".into(), tokio::time::sleep(Duration::from_secs(60))));
        jobs.abort_all();
        assert!(gone("c").await);
    }
}
