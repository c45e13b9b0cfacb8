//! Lock files, as Go CertMagic writes them (`locks/<safe(name)>.lock` holding
//! `{"created":…,"updated":…}`, created with `O_EXCL`), and what this library adds so that a
//! lock has one holder at a time even when many waiters find it stale together:
//!
//! - Removing a lock file someone else may hold (taking over a stale one, releasing one's own)
//!   happens only under a short-lived guard file, `<lock>.takeover`, created with `O_EXCL`; the
//!   lock is inspected again under the guard, so two waiters that both saw it stale cannot
//!   both remove it (the second would remove the first one's fresh lock).
//! - A holder's identity is the `created` time it wrote: a lock is released, or refreshed, only
//!   while the file still holds it.
//! - Held locks are refreshed by one thread of their own (not the blocking pool, which slow
//!   storage or event callbacks may fill), and an I/O error does not stop refreshing.
//!
//! Everything here blocks: it runs on blocking threads or on the refresher thread.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::file::write_atomic;
use super::file_mode;

/// The JSON inside a lock file, as Go CertMagic writes it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LockMeta {
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated: OffsetDateTime,
}

impl LockMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// What a waiter found in a lock file it could not create.
#[derive(Debug, PartialEq)]
pub(crate) enum LockState {
    Fresh,
    Stale,
    Vanished,
    Undecodable(String),
}

pub(crate) enum LockAttempt {
    /// Ours, written with this `created` time.
    Acquired(OffsetDateTime),
    Held(LockState),
    Failed(io::Error),
}

/// Creates the lock file if nobody holds it.
pub(crate) fn try_create(path: &Path) -> LockAttempt {
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Err(e) = file_mode::private_dirs().create(dir) {
        return LockAttempt::Failed(e);
    }
    match file_mode::create_new(0o644).open(path) {
        Ok(mut f) => {
            let now = OffsetDateTime::now_utc();
            let meta = LockMeta {
                created: now,
                updated: now,
            };
            match f.write_all(&meta.encode()).and_then(|_| f.sync_all()) {
                Ok(()) => LockAttempt::Acquired(now),
                Err(e) => {
                    let _ = fs::remove_file(path);
                    LockAttempt::Failed(e)
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => LockAttempt::Held(inspect(path)),
        Err(e) => LockAttempt::Failed(e),
    }
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(128);
    File::open(path)?.take(2048).read_to_end(&mut buf)?;
    Ok(buf)
}

fn decode(path: &Path) -> io::Result<std::result::Result<LockMeta, String>> {
    Ok(parse(&read(path)?))
}

/// The contents of a lock file, or why they are not one.
pub(crate) fn parse(buf: &[u8]) -> std::result::Result<LockMeta, String> {
    if buf.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("empty lock file".into());
    }
    serde_json::from_slice::<LockMeta>(buf).map_err(|e| format!("decoding lock file contents: {e}"))
}

pub(crate) fn inspect(path: &Path) -> LockState {
    match decode(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => LockState::Vanished,
        Err(e) => LockState::Undecodable(e.to_string()),
        Ok(Err(why)) => LockState::Undecodable(why),
        Ok(Ok(meta)) => {
            let last = meta.updated.max(meta.created);
            if OffsetDateTime::now_utc() - last > LOCK_STALE_AFTER {
                LockState::Stale
            } else {
                LockState::Fresh
            }
        }
    }
}

/// Removes the lock file at `path` if, looked at again under the takeover guard, it is still
/// stale (or, with `undecodable_too`, still undecodable). True if it was removed.
pub(crate) fn take_over(path: &Path, undecodable_too: bool) -> io::Result<bool> {
    with_guard(path, || {
        let removable = match inspect(path) {
            LockState::Stale => true,
            LockState::Undecodable(_) => undecodable_too,
            LockState::Fresh | LockState::Vanished => false,
        };
        if removable {
            remove(path)?;
        }
        Ok(removable)
    })
}

/// Removes the lock file at `path` if it is still the one created at `created`. False if
/// someone took it over (it is then left alone).
pub(crate) fn release_if_ours(path: &Path, created: OffsetDateTime) -> io::Result<bool> {
    with_guard(path, || match decode(path) {
        Ok(Ok(meta)) if meta.created == created => remove(path).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
        Ok(_) => Ok(false),
    })
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Runs `f` holding `<path>.takeover`. A guard left behind by a process that died holding it
/// (older than [`LOCK_STALE_AFTER`]; holders keep it for milliseconds) is removed.
fn with_guard<T>(path: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let mut guard = path.as_os_str().to_owned();
    guard.push(".takeover");
    let guard = PathBuf::from(guard);
    let start = std::time::Instant::now();
    loop {
        match file_mode::create_new(0o644).open(&guard) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let abandoned = fs::metadata(&guard)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > GUARD_ABANDONED_AFTER);
                if abandoned {
                    tracing::warn!(guard = %guard.display(), "removing an abandoned lock takeover guard");
                    let _ = fs::remove_file(&guard);
                } else if start.elapsed() > GUARD_ABANDONED_AFTER * 2 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("lock takeover guard {} stays held", guard.display()),
                    ));
                } else {
                    std::thread::sleep(GUARD_POLL_INTERVAL);
                }
            }
            Err(e) => return Err(e),
        }
    }
    let out = f();
    if let Err(e) = fs::remove_file(&guard) {
        tracing::warn!(guard = %guard.display(), error = %e, "removing lock takeover guard");
    }
    out
}

/// Rewrites `updated` of a lock file while it is still the one created at `created`, atomically
/// (a reader never sees partial JSON).
fn refresh(path: &Path, created: OffsetDateTime) -> io::Result<bool> {
    match decode(path)? {
        Ok(meta) if meta.created == created => {}
        _ => return Ok(false),
    }
    let meta = LockMeta {
        created,
        updated: OffsetDateTime::now_utc(),
    };
    write_atomic(path, &meta.encode(), 0o644)?;
    Ok(true)
}

/// The lock files this process holds, refreshed every [`LOCK_FRESHNESS_INTERVAL`] by one thread
/// of their own.
#[derive(Debug, Default)]
pub(crate) struct Refresher {
    held: Mutex<HashMap<u64, (PathBuf, OffsetDateTime)>>,
}

impl Refresher {
    /// The refresher of this process (a new one after `fork()`: the parent's thread does not
    /// exist in the child, nor do its locks belong to it).
    pub fn get() -> Arc<Self> {
        static CURRENT: Mutex<Option<(u32, Arc<Refresher>)>> = Mutex::new(None);
        let pid = std::process::id();
        let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, r)) = current.as_ref()
            && *owner == pid
        {
            return r.clone();
        }
        let refresher = Arc::new(Self::default());
        let r = refresher.clone();
        let spawned = std::thread::Builder::new()
            .name("certmagic-locks".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(LOCK_FRESHNESS_INTERVAL);
                    r.refresh_all();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the lock refresher; held locks will go stale after 10 s");
        }
        *current = Some((pid, refresher.clone()));
        refresher
    }

    /// Keeps `path` fresh until [`Refresher::forget`] is called with the returned id.
    pub fn keep(&self, path: PathBuf, created: OffsetDateTime) -> u64 {
        let id = rand::random::<u64>();
        self.held().insert(id, (path, created));
        id
    }

    pub fn forget(&self, id: u64) {
        self.held().remove(&id);
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (PathBuf, OffsetDateTime)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refresh_all(&self) {
        let held: Vec<(u64, PathBuf, OffsetDateTime)> = self
            .held()
            .iter()
            .map(|(id, (p, c))| (*id, p.clone(), *c))
            .collect();
        for (id, path, created) in held {
            match refresh(&path, created) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(path = %path.display(), "lock file was taken over; no longer refreshing it");
                    self.forget(id);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.forget(id),
                // Tried again at the next tick: a passing error must not let the lock go stale.
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "refreshing lock file")
                }
            }
        }
    }
}

/// How often a held lock's `updated` time is rewritten (Go: `lockFreshnessInterval`).
pub const LOCK_FRESHNESS_INTERVAL: Duration = Duration::from_secs(5);
/// A lock not refreshed for this long may be taken over (2 × the freshness interval).
pub const LOCK_STALE_AFTER: time::Duration = time::Duration::seconds(10);
/// A takeover guard older than this was left by a process that died holding it.
const GUARD_ABANDONED_AFTER: Duration = Duration::from_secs(10);
const GUARD_POLL_INTERVAL: Duration = Duration::from_millis(5);
