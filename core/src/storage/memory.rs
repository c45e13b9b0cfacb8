//! [`MemoryStorage`]: keys in a map, locks in-process. For tests and for single-process programs
//! that do not want files; nothing survives the process.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{KeyInfo, Storage};
use crate::error::{Error, ErrorKind, Result};

/// An in-memory [`Storage`]. Clones share the same contents.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    values: Mutex<BTreeMap<String, (Vec<u8>, SystemTime)>>,
    locks: Mutex<HashSet<String>>,
    released: Notify,
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.values().len();
        f.debug_struct("MemoryStorage").field("keys", &n).finish()
    }
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn values(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Vec<u8>, SystemTime)>> {
        self.inner.values.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn locks(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner.locks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_found(op: &str, key: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("storage {op} `{key}`: not found"),
    )
}

fn under(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", prefix.trim_end_matches('/'))
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn store(&self, key: &str, value: &[u8]) -> Result<()> {
        self.values()
            .insert(key.to_string(), (value.to_vec(), SystemTime::now()));
        Ok(())
    }

    async fn load(&self, key: &str) -> Result<Vec<u8>> {
        self.values()
            .get(key)
            .map(|(v, _)| v.clone())
            .ok_or_else(|| not_found("load", key))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let dir = under(key);
        self.values()
            .retain(|k, _| k != key && !k.starts_with(&dir));
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let dir = under(key);
        let values = self.values();
        Ok(values.contains_key(key)
            || values
                .range(dir.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&dir)))
    }

    async fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>> {
        let dir = under(prefix);
        let mut out = std::collections::BTreeSet::new();
        for key in self.values().keys().filter(|k| k.starts_with(&dir)) {
            let rest = &key[dir.len()..];
            let mut acc = dir.trim_end_matches('/').to_string();
            for part in rest.split('/') {
                acc = if acc.is_empty() {
                    part.to_string()
                } else {
                    format!("{acc}/{part}")
                };
                out.insert(acc.clone());
                if !recursive {
                    break;
                }
            }
        }
        if out.is_empty() {
            return Err(not_found("list", prefix));
        }
        Ok(out.into_iter().collect())
    }

    async fn stat(&self, key: &str) -> Result<KeyInfo> {
        if let Some((v, modified)) = self.values().get(key) {
            return Ok(KeyInfo {
                key: key.to_string(),
                modified: *modified,
                size: v.len() as u64,
                is_terminal: true,
            });
        }
        if self.exists(key).await? {
            return Ok(KeyInfo {
                key: key.to_string(),
                modified: SystemTime::now(),
                size: 0,
                is_terminal: false,
            });
        }
        Err(not_found("stat", key))
    }

    async fn lock(&self, name: &str) -> Result<()> {
        loop {
            let released = self.inner.released.notified();
            if self.locks().insert(name.to_string()) {
                return Ok(());
            }
            released.await;
        }
    }

    async fn unlock(&self, name: &str) -> Result<()> {
        self.locks().remove(name);
        self.inner.released.notify_waiters();
        Ok(())
    }

    async fn release_own_locks(&self) -> Result<()> {
        self.locks().clear();
        self.inner.released.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract() {
        let s = MemoryStorage::new();
        s.store("a/b/c", b"1").await.unwrap();
        s.store("a/b/d", b"2").await.unwrap();
        s.store("a/e", b"3").await.unwrap();
        s.store("ab", b"4").await.unwrap();
        assert_eq!(s.list("a", false).await.unwrap(), vec!["a/b", "a/e"]);
        assert_eq!(
            s.list("a", true).await.unwrap(),
            vec!["a/b", "a/b/c", "a/b/d", "a/e"]
        );
        assert!(s.exists("a/b").await.unwrap());
        assert!(!s.stat("a/b").await.unwrap().is_terminal);
        s.delete("a/b").await.unwrap();
        assert!(!s.exists("a/b").await.unwrap());
        assert_eq!(s.load("ab").await.unwrap(), b"4");
        assert_eq!(
            s.load("a/b/c").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn locks_exclude() {
        let s = MemoryStorage::new();
        s.lock("x").await.unwrap();
        let s2 = s.clone();
        let t = tokio::spawn(async move { s2.lock("x").await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!t.is_finished());
        s.unlock("x").await.unwrap();
        t.await.unwrap().unwrap();
    }
}
