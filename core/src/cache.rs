//! The in-memory certificate cache: exact names and single-label wildcards, de-duplicated by the
//! chain's hash. Lookups take a read lock that writers hold only for a map insert: no I/O, no
//! allocation, no waiting on the network.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rand::Rng;

use crate::certificate::Certificate;

/// Certificates by name.
#[derive(Default)]
pub struct Cache {
    index: RwLock<Index>,
    /// At most this many certificates (0: no limit).
    capacity: AtomicUsize,
    evictions: AtomicUsize,
}

#[derive(Default)]
struct Index {
    /// Exact names (`a.example.com`, `127.0.0.1`).
    exact: HashMap<Box<str>, Arc<Certificate>>,
    /// Wildcards by their base: `*.example.com` is stored under `example.com`.
    wildcard: HashMap<Box<str>, Arc<Certificate>>,
    /// Every cached certificate once, by chain hash.
    by_hash: HashSet<ByHash>,
}

/// A cached certificate keyed by its chain hash, which it holds: a set of these costs a
/// pointer per certificate where a map from hash to certificate costs 40 bytes.
struct ByHash(Arc<Certificate>);

impl std::hash::Hash for ByHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash().hash(state);
    }
}

impl PartialEq for ByHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.hash() == other.0.hash()
    }
}

impl Eq for ByHash {}

impl Borrow<[u8; 32]> for ByHash {
    fn borrow(&self) -> &[u8; 32] {
        self.0.hash()
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("certificates", &self.len())
            .finish()
    }
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds at most `max` certificates from now on (`None`: no limit). When full, inserting
    /// evicts a random managed certificate; certificates added by hand are never evicted.
    pub fn set_capacity(&self, max: Option<usize>) {
        self.capacity.store(max.unwrap_or(0), Ordering::Relaxed);
    }

    /// How many certificates were evicted to respect the capacity.
    pub fn evictions(&self) -> usize {
        self.evictions.load(Ordering::Relaxed)
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The certificate to serve for a TLS server name: the exact name, else the wildcard one
    /// label up (`a.example.com` → `*.example.com`, never `*.*.com`). `name` must be lower case
    /// (SNI from rustls is); see [`Cache::get_any_case`] otherwise.
    pub fn get(&self, name: &str) -> Option<Arc<Certificate>> {
        let index = self.read();
        if let Some(c) = index.exact.get(name) {
            return Some(c.clone());
        }
        let (_, base) = name.split_once('.')?;
        index.wildcard.get(base).cloned()
    }

    /// Like [`Cache::get`] for a name of any case.
    pub fn get_any_case(&self, name: &str) -> Option<Arc<Certificate>> {
        let name = name.trim_end_matches('.');
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.get(&name.to_ascii_lowercase())
        } else {
            self.get(name)
        }
    }

    /// The certificate cached under exactly `name` (a wildcard name matches only itself).
    pub fn get_exact(&self, name: &str) -> Option<Arc<Certificate>> {
        let index = self.read();
        match name.strip_prefix("*.") {
            Some(base) => index.wildcard.get(base).cloned(),
            None => index.exact.get(name).cloned(),
        }
    }

    /// Caches `cert` under each of its names, replacing what those names had. A certificate with
    /// the same chain already cached is kept instead (and returned).
    pub fn insert(&self, cert: Certificate) -> Arc<Certificate> {
        self.insert_arc(Arc::new(cert))
    }

    pub(crate) fn insert_arc(&self, cert: Arc<Certificate>) -> Arc<Certificate> {
        let mut index = self.write();
        if let Some(ByHash(existing)) = index.by_hash.get(cert.hash())
            && existing.is_managed() == cert.is_managed()
        {
            return existing.clone();
        }
        let capacity = self.capacity.load(Ordering::Relaxed);
        if capacity > 0 && index.by_hash.len() >= capacity && !cert.names().all(|n| index.has(n)) {
            let candidates: Vec<Arc<Certificate>> = index
                .by_hash
                .iter()
                .map(|b| &b.0)
                .filter(|c| c.is_managed() && c.hash() != cert.hash())
                .cloned()
                .collect();
            if !candidates.is_empty() {
                let victim = &candidates[rand::rng().random_range(0..candidates.len())];
                index.remove_cert(victim);
                self.evictions.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(names = ?victim.names().collect::<Vec<_>>(), "cache full; certificate evicted");
            }
        }
        let mut replaced = Vec::new();
        for name in cert.names() {
            let (map, key) = match name.strip_prefix("*.") {
                Some(base) => (&mut index.wildcard, base),
                None => (&mut index.exact, name),
            };
            if let Some(old) = map.insert(key.into(), cert.clone()) {
                replaced.push(old);
            }
        }
        index.by_hash.replace(ByHash(cert.clone()));
        for old in replaced {
            if old.hash() != cert.hash() && !index.still_indexed(&old) {
                index.by_hash.remove(old.hash());
            }
        }
        cert
    }

    /// Puts `cert` in the place of the cached certificate with the same chain (a new OCSP
    /// staple), under the names that still point at it. False if that chain is no longer
    /// cached (evicted or replaced meanwhile): nothing is added then.
    pub(crate) fn replace_same_chain(&self, cert: Arc<Certificate>) -> bool {
        let mut index = self.write();
        let Some(old) = index.by_hash.get(cert.hash()).map(|b| b.0.clone()) else {
            return false;
        };
        for name in old.names() {
            let (map, key) = match name.strip_prefix("*.") {
                Some(base) => (&mut index.wildcard, base),
                None => (&mut index.exact, name),
            };
            if let Some(slot) = map.get_mut(key)
                && Arc::ptr_eq(slot, &old)
            {
                *slot = cert.clone();
            }
        }
        index.by_hash.replace(ByHash(cert));
        true
    }

    /// Removes the certificate cached under exactly `name` (from all of its names).
    pub fn remove(&self, name: &str) -> Option<Arc<Certificate>> {
        let cert = self.get_exact(name)?;
        self.write().remove_cert(&cert);
        Some(cert)
    }

    /// Every cached certificate, once each.
    pub fn all(&self) -> Vec<Arc<Certificate>> {
        self.read().by_hash.iter().map(|b| b.0.clone()).collect()
    }

    /// Number of distinct cached certificates.
    pub fn len(&self) -> usize {
        self.read().by_hash.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Index {
    /// Whether `name` (a wildcard only as itself) has a certificate.
    fn has(&self, name: &str) -> bool {
        match name.strip_prefix("*.") {
            Some(base) => self.wildcard.contains_key(base),
            None => self.exact.contains_key(name),
        }
    }

    fn remove_cert(&mut self, cert: &Arc<Certificate>) {
        for n in cert.names() {
            let (map, key) = match n.strip_prefix("*.") {
                Some(base) => (&mut self.wildcard, base),
                None => (&mut self.exact, n),
            };
            if map.get(key).is_some_and(|c| Arc::ptr_eq(c, cert)) {
                map.remove(key);
            }
        }
        self.by_hash.remove(cert.hash());
    }

    fn still_indexed(&self, cert: &Arc<Certificate>) -> bool {
        cert.names().any(|n| {
            let hit = match n.strip_prefix("*.") {
                Some(base) => self.wildcard.get(base),
                None => self.exact.get(n),
            };
            hit.is_some_and(|c| Arc::ptr_eq(c, cert))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    pub(crate) fn self_signed(names: &[&str]) -> Certificate {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        Certificate::from_der(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap()
    }

    #[test]
    fn exact_and_single_label_wildcard() {
        let cache = Cache::new();
        cache.insert(self_signed(&["a.example.com"]));
        cache.insert(self_signed(&["*.example.com"]));
        cache.insert(self_signed(&["127.0.0.1"]));
        let a = cache.get("a.example.com").unwrap();
        assert!(a.names().any(|n| n == "a.example.com"));
        let b = cache.get("b.example.com").unwrap();
        assert!(b.names().any(|n| n == "*.example.com"));
        assert!(
            cache.get("a.b.example.com").is_none(),
            "wildcards cover one label only"
        );
        assert!(
            cache.get("example.com").is_none(),
            "a wildcard does not cover its base"
        );
        assert!(cache.get("127.0.0.1").is_some());
        assert!(cache.get("nope").is_none());
        assert!(cache.get_any_case("B.Example.COM").is_some());
        assert!(cache.get_exact("b.example.com").is_none());
        assert!(cache.get_exact("*.example.com").is_some());
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn capacity_evicts_managed_certificates_only() {
        let cache = Cache::new();
        cache.set_capacity(Some(3));
        cache.insert(self_signed(&["unmanaged.test"]));
        for i in 0..10 {
            let cert = self_signed(&[&format!("m{i}.test")]).into_managed(None);
            cache.insert(cert);
            assert!(cache.len() <= 3, "{}", cache.len());
        }
        assert!(cache.get("unmanaged.test").is_some(), "never evicted");
        assert!(cache.get("m9.test").is_some(), "the newest is cached");
        assert_eq!(cache.evictions(), 8);
    }

    #[test]
    fn dedupes_by_hash_and_replaces_by_name() {
        let cache = Cache::new();
        let first = cache.insert(self_signed(&["a.test", "b.test"]));
        let again = cache.insert_arc(first.clone());
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(cache.len(), 1);
        // A newer certificate for one of the names takes that name only.
        let newer = cache.insert(self_signed(&["a.test"]));
        assert!(Arc::ptr_eq(&cache.get("a.test").unwrap(), &newer));
        assert!(Arc::ptr_eq(&cache.get("b.test").unwrap(), &first));
        assert_eq!(cache.len(), 2);
        // Once no name points at the old one, it leaves the cache.
        cache.insert(self_signed(&["b.test"]));
        assert_eq!(cache.len(), 2);
        assert!(cache.remove("a.test").is_some());
        assert!(cache.get("a.test").is_none());
        assert_eq!(cache.len(), 1);
    }
}
