//! [`FileStorage`]: a folder on disk, laid out and locked exactly as Go CertMagic does, so a Caddy
//! server can share it.
//!
//! Writes go to a temporary file in the same folder, are fsynced and renamed over the target,
//! so readers never see a torn value. Data files are 0600, folders 0700, lock files 0644.
//!
//! Locks are files `locks/<safe(name)>.lock` created with `O_EXCL` and holding
//! `{"created":…,"updated":…}`; the holder rewrites `updated` every 5 s and anyone may take a
//! lock over once it is 10 s old (see `storage::file_lock` for how takeovers and releases stay
//! safe among many waiters). An empty or undecodable lock file (seen on network file systems)
//! is given 2 s to become valid and is then treated as stale, instead of blocking the name
//! forever as Go CertMagic does.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::file_lock::{self, LockAttempt, LockState, Refresher};
use super::file_mode;
use super::{KeyInfo, Storage, keys};
use crate::error::{Error, ErrorKind, Result};

/// Certificates, keys and locks in a folder on the local (or a shared network) file system.
#[derive(Clone)]
pub struct FileStorage {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// Locks this value holds.
    held: Mutex<HashMap<String, HeldLock>>,
    refresher: Arc<Refresher>,
    /// Wakes same-process waiters as soon as a lock is released, instead of at the next poll.
    released: Notify,
}

struct HeldLock {
    path: PathBuf,
    created: OffsetDateTime,
    refresh_id: u64,
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl FileStorage {
    /// Storage rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: root.into(),
                held: Mutex::new(HashMap::new()),
                refresher: Refresher::get(),
                released: Notify::new(),
            }),
        }
    }

    /// Go CertMagic's default folder: `$XDG_DATA_HOME/certmagic`, else
    /// `$HOME/.local/share/certmagic`, else `./certmagic`.
    pub fn default_path() -> PathBuf {
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("certmagic");
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local/share/certmagic"),
            None => PathBuf::from("certmagic"),
        }
    }

    /// The folder this storage lives in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The file path of a storage key; refuses keys that would leave the root.
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        if key.contains('\0')
            || key.starts_with('/')
            || key.split('/').any(|c| c == ".." || c == ".")
        {
            return Err(Error::new(
                ErrorKind::Storage,
                format!("invalid storage key `{key}`"),
            ));
        }
        Ok(if key.is_empty() {
            self.inner.root.clone()
        } else {
            self.inner.root.join(key)
        })
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        self.inner
            .root
            .join("locks")
            .join(format!("{}.lock", keys::safe(name)))
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::internal(format!("storage task failed: {e}")))?
    }
}

#[async_trait]
impl Storage for FileStorage {
    async fn store(&self, key: &str, value: &[u8]) -> Result<()> {
        let path = self.path_of(key)?;
        let (key, value) = (key.to_string(), value.to_vec());
        Self::blocking(move || {
            write_atomic(&path, &value, 0o600).map_err(|e| Error::storage("store", &key, e))
        })
        .await
    }

    async fn load(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        Self::blocking(move || fs::read(&path).map_err(|e| Error::storage("load", &key, e))).await
    }

    async fn load_many(&self, keys: &[&str]) -> Vec<Result<Vec<u8>>> {
        // One blocking hop for all: loading thousands of certificates at start-up is otherwise
        // dominated by thread hand-offs, not by reading small files.
        let paths: Vec<(String, Result<PathBuf>)> = keys
            .iter()
            .map(|k| (k.to_string(), self.path_of(k)))
            .collect();
        let n = paths.len();
        let loaded = Self::blocking(move || {
            Ok(paths
                .into_iter()
                .map(|(key, path)| fs::read(path?).map_err(|e| Error::storage("load", &key, e)))
                .collect::<Vec<_>>())
        })
        .await;
        match loaded {
            Ok(all) => all,
            Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        Self::blocking(move || {
            let res = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                Ok(_) => fs::remove_file(&path),
                Err(e) => Err(e),
            };
            match res {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(Error::storage("delete", &key, e))
                }
                _ => Ok(()),
            }
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path_of(key)?;
        Self::blocking(move || {
            // As in Go CertMagic, only "does not exist" counts as absent (and a key under a
            // value, which cannot exist either).
            Ok(!matches!(fs::metadata(&path), Err(e)
                if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)))
        })
        .await
    }

    async fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>> {
        let path = self.path_of(prefix)?;
        let prefix = prefix.trim_end_matches('/').to_string();
        Self::blocking(move || {
            let mut out = Vec::new();
            walk(&path, &prefix, recursive, &mut out)
                .map_err(|e| Error::storage("list", &prefix, e))?;
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn stat(&self, key: &str) -> Result<KeyInfo> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        Self::blocking(move || {
            let m = fs::metadata(&path).map_err(|e| Error::storage("stat", &key, e))?;
            Ok(KeyInfo {
                modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                size: if m.is_dir() { 0 } else { m.len() },
                is_terminal: !m.is_dir(),
                key,
            })
        })
        .await
    }

    async fn lock(&self, name: &str) -> Result<()> {
        let path = self.lock_path(name);
        let mut undecodable_tries = 0u32;
        loop {
            let released = self.inner.released.notified();
            let p = path.clone();
            match Self::blocking(move || Ok(file_lock::try_create(&p))).await? {
                LockAttempt::Acquired(created) => {
                    let refresh_id = self.inner.refresher.keep(path.clone(), created);
                    let previous = lock_unpoisoned(&self.inner.held).insert(
                        name.to_string(),
                        HeldLock {
                            path,
                            created,
                            refresh_id,
                        },
                    );
                    if let Some(prev) = previous {
                        self.inner.refresher.forget(prev.refresh_id);
                    }
                    tracing::debug!(lock = name, "lock acquired");
                    return Ok(());
                }
                LockAttempt::Held(LockState::Fresh) => {
                    undecodable_tries = 0;
                    tokio::select! {
                        _ = tokio::time::sleep(LOCK_POLL_INTERVAL) => {}
                        _ = released => {}
                    }
                }
                LockAttempt::Held(LockState::Stale) => {
                    self.take_over(name, &path, false).await?;
                }
                LockAttempt::Held(LockState::Vanished) => {}
                LockAttempt::Held(LockState::Undecodable(why)) => {
                    undecodable_tries += 1;
                    if undecodable_tries > UNDECODABLE_LOCK_RETRIES {
                        tracing::warn!(lock = name, reason = %why, "treating undecodable lock file as stale");
                        self.take_over(name, &path, true).await?;
                        undecodable_tries = 0;
                    } else {
                        tokio::time::sleep(UNDECODABLE_LOCK_RETRY_WAIT).await;
                    }
                }
                LockAttempt::Failed(e) => {
                    return Err(Error::new(
                        ErrorKind::Storage,
                        format!("creating lock file {}: {e}", path.display()),
                    )
                    .with_source(e));
                }
            }
        }
    }

    /// Releases the lock if this storage value holds it and the file is still its own; a lock
    /// held by someone else is left alone (Go CertMagic deletes it).
    async fn unlock(&self, name: &str) -> Result<()> {
        let held = lock_unpoisoned(&self.inner.held).remove(name);
        let Some(held) = held else {
            tracing::warn!(
                lock = name,
                "unlock of a lock this storage does not hold; left alone"
            );
            return Ok(());
        };
        self.inner.refresher.forget(held.refresh_id);
        let path = held.path;
        let res = Self::blocking(move || match file_lock::release_if_ours(&path, held.created) {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(path = %path.display(), "lock was taken over before it was released");
                Ok(())
            }
            Err(e) => Err(Error::storage("unlock", &path.display().to_string(), e)),
        })
        .await;
        self.inner.released.notify_waiters();
        res
    }

    async fn release_own_locks(&self) -> Result<()> {
        let names: Vec<String> = lock_unpoisoned(&self.inner.held).keys().cloned().collect();
        let mut first_err = None;
        for name in names {
            if let Err(e) = self.unlock(&name).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl FileStorage {
    async fn take_over(&self, name: &str, path: &Path, undecodable_too: bool) -> Result<()> {
        let p = path.to_path_buf();
        let taken = Self::blocking(move || {
            file_lock::take_over(&p, undecodable_too)
                .map_err(|e| Error::storage("lock", &p.display().to_string(), e))
        })
        .await?;
        if taken {
            tracing::info!(lock = name, "took over a stale lock");
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Locks must not outlive the storage value that took them.
        for (_, held) in lock_unpoisoned(&self.held).drain() {
            self.refresher.forget(held.refresh_id);
            if let Err(e) = file_lock::release_if_ours(&held.path, held.created) {
                tracing::warn!(path = %held.path.display(), error = %e, "releasing lock file");
            }
        }
    }
}

fn lock_unpoisoned<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `value` to `path` atomically: temp file in the same folder, fsync, rename, fsync of the
/// folder. The temp file is removed if anything fails.
pub(crate) fn write_atomic(path: &Path, value: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("key has no parent folder"))?;
    file_mode::private_dirs().create(dir)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("value");
    let tmp = dir.join(format!(".{file_name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut f = file_mode::create_new(mode).open(&tmp)?;
        f.write_all(value)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; not every file system supports this, which is fine.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn is_temp_file(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

fn walk(dir: &Path, prefix: &str, recursive: bool, out: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_temp_file(name) {
            continue;
        }
        let key = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let is_dir = entry.file_type()?.is_dir();
        out.push(key.clone());
        if recursive && is_dir {
            walk(&entry.path(), &key, true, out)?;
        }
    }
    Ok(())
}

pub use super::file_lock::{LOCK_FRESHNESS_INTERVAL, LOCK_STALE_AFTER};
/// How often a waiter checks a fresh lock held by someone else (Go: `fileLockPollInterval`).
pub const LOCK_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Waits for an empty or undecodable lock file to become valid before treating it as stale.
const UNDECODABLE_LOCK_RETRIES: u32 = 8;
const UNDECODABLE_LOCK_RETRY_WAIT: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::file_lock::LockMeta;
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn storage() -> (tempfile::TempDir, FileStorage) {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStorage::new(dir.path());
        (dir, s)
    }

    #[tokio::test]
    async fn store_load_list_stat_delete() {
        let (dir, s) = storage();
        s.store("certificates/ca/a.test/a.test.crt", b"chain")
            .await
            .unwrap();
        s.store("certificates/ca/a.test/a.test.key", b"key")
            .await
            .unwrap();
        s.store("certificates/ca/b.test/b.test.crt", b"other")
            .await
            .unwrap();
        assert_eq!(
            s.load("certificates/ca/a.test/a.test.crt").await.unwrap(),
            b"chain"
        );
        let meta = fs::metadata(dir.path().join("certificates/ca/a.test/a.test.key")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dmeta = fs::metadata(dir.path().join("certificates/ca/a.test")).unwrap();
        assert_eq!(dmeta.permissions().mode() & 0o777, 0o700);

        assert_eq!(
            s.list("certificates/ca", false).await.unwrap(),
            vec!["certificates/ca/a.test", "certificates/ca/b.test"]
        );
        assert_eq!(s.list("certificates", true).await.unwrap().len(), 6);
        let info = s.stat("certificates/ca/a.test/a.test.crt").await.unwrap();
        assert!(info.is_terminal);
        assert_eq!(info.size, 5);
        assert!(!s.stat("certificates/ca").await.unwrap().is_terminal);

        assert!(s.exists("certificates/ca/a.test").await.unwrap());
        s.delete("certificates/ca/a.test").await.unwrap();
        assert!(!s.exists("certificates/ca/a.test").await.unwrap());
        s.delete("certificates/ca/a.test").await.unwrap();
        let err = s
            .load("certificates/ca/a.test/a.test.crt")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(
            s.list("nope", false).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn store_replaces_and_leaves_no_temp_files() {
        let (dir, s) = storage();
        for i in 0..20u8 {
            s.store("k/v", &[i; 64]).await.unwrap();
        }
        assert_eq!(s.load("k/v").await.unwrap(), vec![19u8; 64]);
        let names: Vec<_> = fs::read_dir(dir.path().join("k"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["v"]);
    }

    #[tokio::test]
    async fn refuses_keys_outside_root() {
        let (_dir, s) = storage();
        for key in ["../x", "/etc/passwd", "a/../../b", "a/./b"] {
            assert_eq!(
                s.store(key, b"x").await.unwrap_err().kind(),
                ErrorKind::Storage,
                "{key}"
            );
        }
    }

    #[tokio::test]
    async fn lock_file_format_and_unlock() {
        let (dir, s) = storage();
        s.lock("issue_cert_*.example.com").await.unwrap();
        let path = dir
            .path()
            .join("locks/issue_cert_wildcard_.example.com.lock");
        let raw = fs::read(&path).unwrap();
        assert_eq!(raw.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert!(v["created"].as_str().unwrap().ends_with('Z'));
        assert!(v["updated"].is_string());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        s.unlock("issue_cert_*.example.com").await.unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn contention_waits_for_release() {
        let (dir, a) = storage();
        let b = FileStorage::new(dir.path()); // a second "process" on the same folder
        a.lock("x").await.unwrap();
        let waiter = tokio::spawn(async move {
            b.lock("x").await.unwrap();
            b
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiter.is_finished(),
            "second locker must wait while the lock is fresh"
        );
        a.unlock("x").await.unwrap();
        let b = tokio::time::timeout(Duration::from_secs(3), waiter)
            .await
            .unwrap()
            .unwrap();
        b.unlock("x").await.unwrap();
    }

    #[tokio::test]
    async fn stale_lock_is_taken_over() {
        let (dir, s) = storage();
        fs::create_dir_all(dir.path().join("locks")).unwrap();
        let old = OffsetDateTime::now_utc() - time::Duration::seconds(11);
        let meta = LockMeta {
            created: old,
            updated: old,
        };
        fs::write(dir.path().join("locks/x.lock"), meta.encode()).unwrap();
        // Well before the lock could have gone stale on its own (it is stale already).
        tokio::time::timeout(Duration::from_secs(5), s.lock("x"))
            .await
            .unwrap()
            .unwrap();
        let v: LockMeta =
            serde_json::from_slice(&fs::read(dir.path().join("locks/x.lock")).unwrap()).unwrap();
        assert!(v.created > old);
    }

    #[tokio::test]
    async fn fresh_lock_written_by_go_is_respected() {
        let (dir, s) = storage();
        fs::create_dir_all(dir.path().join("locks")).unwrap();
        // As Go writes it: local offset, nanoseconds.
        let now = OffsetDateTime::now_utc().to_offset(time::UtcOffset::from_hms(-6, 0, 0).unwrap());
        let text = format!(
            "{{\"created\":\"{0}\",\"updated\":\"{0}\"}}\n",
            now.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        );
        fs::write(dir.path().join("locks/y.lock"), text).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), s.lock("y"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn empty_lock_file_is_taken_over_after_grace() {
        let (dir, s) = storage();
        fs::create_dir_all(dir.path().join("locks")).unwrap();
        fs::write(dir.path().join("locks/e.lock"), b"").unwrap();
        fs::write(dir.path().join("locks/g.lock"), b"\0\0\0\0").unwrap();
        let start = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), s.lock("e"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(1900),
            "empty lock gets a grace period"
        );
        tokio::time::timeout(Duration::from_secs(5), s.lock("g"))
            .await
            .unwrap()
            .unwrap();
    }

    /// The lock file once its `updated` is later than `first`'s (the refresher ticks every
    /// few seconds; a loaded machine gets three ticks' time).
    async fn refreshed_after(path: &Path, first: &LockMeta) -> LockMeta {
        let deadline = tokio::time::Instant::now() + 3 * LOCK_FRESHNESS_INTERVAL;
        loop {
            let now: LockMeta = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
            if now.updated > first.updated || tokio::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn held_lock_is_refreshed_and_released_on_drop() {
        let (dir, s) = storage();
        s.lock("r").await.unwrap();
        let path = dir.path().join("locks/r.lock");
        let first: LockMeta = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let later = refreshed_after(&path, &first).await;
        assert_eq!(later.created, first.created);
        assert!(later.updated > first.updated, "holder refreshes `updated`");
        drop(s);
        assert!(!path.exists(), "dropping the storage releases its locks");
    }

    fn write_stale_lock(dir: &Path, name: &str) {
        fs::create_dir_all(dir.join("locks")).unwrap();
        let old = OffsetDateTime::now_utc() - time::Duration::seconds(30);
        let meta = LockMeta {
            created: old,
            updated: old,
        };
        fs::write(dir.join(format!("locks/{name}.lock")), meta.encode()).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_waiters_on_a_stale_lock_never_hold_it_together() {
        let (dir, _) = storage();
        write_stale_lock(dir.path(), "contended");
        let marker = dir.path().join("holder");
        let mut waiters = Vec::new();
        for i in 0..20 {
            // Each a separate storage value, as separate processes would be.
            let s = FileStorage::new(dir.path());
            let marker = marker.clone();
            waiters.push(tokio::spawn(async move {
                s.lock("contended").await.unwrap();
                // Exactly one holder may exist: the marker is created exclusively.
                let alone = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&marker)
                    .is_ok();
                tokio::time::sleep(Duration::from_millis(20)).await;
                if alone {
                    fs::remove_file(&marker).unwrap();
                }
                s.unlock("contended").await.unwrap();
                (i, alone)
            }));
        }
        for w in waiters {
            let (i, alone) = tokio::time::timeout(Duration::from_secs(60), w)
                .await
                .unwrap()
                .unwrap();
            assert!(alone, "waiter {i} held the lock while another did");
        }
        assert!(!dir.path().join("locks/contended.lock").exists());
        assert!(!dir.path().join("locks/contended.lock.takeover").exists());
    }

    #[tokio::test]
    async fn unlock_leaves_a_lock_it_does_not_own() {
        let (dir, a) = storage();
        let b = FileStorage::new(dir.path());
        a.lock("mine").await.unwrap();
        b.unlock("mine").await.unwrap();
        let path = dir.path().join("locks/mine.lock");
        assert!(path.exists(), "another holder's lock survives");
        // Taken over (rewritten by someone else): the former holder leaves it alone too.
        write_stale_lock(dir.path(), "mine");
        b.lock("mine").await.unwrap();
        let taken: LockMeta = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        a.unlock("mine").await.unwrap();
        let still: LockMeta = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(still.created, taken.created);
        b.unlock("mine").await.unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn refreshing_survives_an_io_error() {
        let (dir, s) = storage();
        s.lock("r2").await.unwrap();
        let path = dir.path().join("locks/r2.lock");
        let original = fs::read(&path).unwrap();
        let first: LockMeta = serde_json::from_slice(&original).unwrap();
        // For a refresh or more the lock is unreadable: a link to itself put in its place
        // (atomically, so the refresher never finds it missing, which would end refreshing).
        let looping = dir.path().join("locks/loop");
        std::os::unix::fs::symlink(&path, &looping).unwrap(); // once in place: a link to itself
        fs::rename(&looping, &path).unwrap();
        let err = fs::read(&path).unwrap_err();
        assert_ne!(err.kind(), io::ErrorKind::NotFound, "{err}");
        tokio::time::sleep(LOCK_FRESHNESS_INTERVAL + Duration::from_millis(500)).await;
        let saved = dir.path().join("locks/saved");
        fs::write(&saved, &original).unwrap();
        fs::rename(&saved, &path).unwrap();
        let later = refreshed_after(&path, &first).await;
        assert_eq!(later.created, first.created);
        assert!(
            later.updated > first.updated,
            "refreshing goes on after the error"
        );
        s.unlock("r2").await.unwrap();
    }

    #[test]
    fn default_path_follows_xdg() {
        // Read-only check of the rule; the environment is not modified.
        let p = FileStorage::default_path();
        assert!(p.ends_with("certmagic"));
    }
}
