//! [`Manager`]: owns a config, the certificate cache, the issuer and the maintenance task, and
//! is the public API: manage, obtain, renew, revoke, serve. Every public async method runs on the
//! library runtime, so it can be awaited from any executor, and has a `_sync` twin for callers
//! without one. The work itself: issuance and storage in `obtain.rs`, the renewal pass in
//! `maintain.rs`, handshakes in `handshake_path.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::ServerConfig;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::acme_issuer::AcmeIssuer;
use crate::cache::Cache;
use crate::certificate::Certificate;
use crate::config::Config;
use crate::config::IssuerSetting;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{self, Event};
use crate::handshake::{self, CertResolver};
use crate::issuer::{Issuer, RevocationReason};
use crate::jobs::Jobs;
use crate::local_issuer::LocalIssuer;
use crate::maintain::Pass;
use crate::obtain::Issue;
use crate::on_demand::OnDemandState;
use crate::retry;
use crate::runtime;
use crate::storage::{Storage, keys};
use crate::subject::Subject;

/// Manages certificates for a set of names: obtains them, keeps them renewed, and serves them.
///
/// Cheap to clone; clones share everything. Dropping the last clone stops background work;
/// [`Manager::shutdown`] also releases this process's storage locks.
#[derive(Clone)]
pub struct Manager {
    pub(crate) inner: Arc<ManagerInner>,
}

pub(crate) struct ManagerInner {
    pub config: Config,
    /// The issuers, in configured order (never empty).
    pub issuers: Vec<Arc<dyn Issuer>>,
    /// Their keys, in the same order: shared by every certificate this manager caches.
    pub(crate) issuer_keys: Vec<Arc<str>>,
    /// The local CA, when it is one of the issuers (for its root).
    local: Option<Arc<LocalIssuer>>,
    pub cache: Arc<Cache>,
    pub resolver: Arc<CertResolver>,
    pub(crate) jobs: Arc<Jobs>,
    /// Canonical names under management (renewed by maintenance), with the validity (Unix
    /// seconds) of the certificate last cached for each: a name the cache evicted is still
    /// renewed on time.
    pub managed: Mutex<HashMap<String, Option<(i64, i64)>>>,
    /// On-demand TLS policy and state, when on.
    pub on_demand: Option<OnDemandState>,
    pub cancel: CancellationToken,
    pub runtime: Handle,
    pid: u32,
    shut_down: AtomicBool,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("issuers", &self.inner.issuer_keys)
            .field("cached", &self.inner.cache.len())
            .finish_non_exhaustive()
    }
}

impl Drop for ManagerInner {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.jobs.abort_all();
    }
}

/// What the first on-demand handshakes would otherwise wait for, made ready when an on-demand
/// manager starts: the ask endpoint's client, then the account of each issuer a first order may
/// try first (the first issuer; every issuer under the `random` policy).
async fn prepare_on_demand(inner: std::sync::Weak<ManagerInner>, cancel: CancellationToken) {
    let issuers = {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Some(od) = &inner.on_demand {
            od.warm_up();
        }
        let first = match inner.config.issuer_policy {
            crate::issuer_spec::IssuerPolicy::Random => inner.issuers.len(),
            _ => 1,
        };
        inner.issuers[..first].to_vec()
    };
    for issuer in issuers {
        tokio::select! {
            _ = cancel.cancelled() => return,
            readied = issuer.prepare() => {
                if let Err(e) = readied {
                    tracing::warn!(issuer = issuer.issuer_key(), error = %e, "could not ready the issuer at start; the first order tries again");
                }
            }
        }
    }
}

impl Manager {
    /// A manager obtaining certificates from the issuers of `config` (its ACME CA unless
    /// [`ConfigBuilder::issuers`](crate::ConfigBuilder::issuers) says otherwise). Starts the
    /// library runtime if needed and the maintenance task.
    pub fn new(config: Config) -> Result<Self> {
        let _enter = runtime::handle()?.enter();
        let mut local = None;
        let mut issuers: Vec<Arc<dyn Issuer>> = Vec::with_capacity(config.issuers.len());
        for setting in &config.issuers {
            match setting {
                IssuerSetting::Acme(acme) => {
                    issuers.push(Arc::new(AcmeIssuer::new(&config.for_acme_issuer(acme))?));
                }
                IssuerSetting::Local(spec) => {
                    let issuer = local
                        .get_or_insert_with(|| {
                            Arc::new(LocalIssuer::new(config.storage.clone(), spec.lifetime))
                        })
                        .clone();
                    issuers.push(issuer);
                }
            }
        }
        Self::build(config, issuers, local)
    }

    /// A manager with a custom [`Issuer`] (the config's issuers are then unused).
    pub fn with_issuer(config: Config, issuer: Arc<dyn Issuer>) -> Result<Self> {
        Self::with_issuers(config, vec![issuer])
    }

    /// A manager with custom issuers, tried in order as the config's
    /// [`IssuerPolicy`](crate::IssuerPolicy) says (the config's own issuers are unused).
    pub fn with_issuers(config: Config, issuers: Vec<Arc<dyn Issuer>>) -> Result<Self> {
        if issuers.is_empty() {
            return Err(Error::config(
                crate::ConfigField::Issuers,
                "a manager needs at least one issuer",
            ));
        }
        Self::build(config, issuers, None)
    }

    fn build(
        config: Config,
        issuers: Vec<Arc<dyn Issuer>>,
        local: Option<Arc<LocalIssuer>>,
    ) -> Result<Self> {
        let runtime = runtime::handle()?;
        let cache = Arc::new(Cache::new());
        cache.set_capacity(config.cache_capacity);
        let inner = Arc::new(ManagerInner {
            issuer_keys: issuers.iter().map(|i| Arc::from(i.issuer_key())).collect(),
            on_demand: config.on_demand.clone().map(OnDemandState::new),
            resolver: Arc::new(CertResolver::new(cache.clone())),
            cache,
            issuers,
            local,
            jobs: Arc::new(Jobs::default()),
            managed: Mutex::new(HashMap::new()),
            cancel: CancellationToken::new(),
            runtime: runtime.clone(),
            pid: std::process::id(),
            shut_down: AtomicBool::new(false),
            config,
        });
        for pass in [Pass::Renewals, Pass::OcspStaples] {
            runtime.spawn(crate::maintain::run(
                Arc::downgrade(&inner),
                pass,
                inner.cancel.clone(),
            ));
        }
        if inner.on_demand.is_some() {
            runtime.spawn(prepare_on_demand(
                Arc::downgrade(&inner),
                inner.cancel.clone(),
            ));
        }
        Ok(Self { inner })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The storage certificates are kept in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.config.storage
    }

    /// The first issuer's key: the folder under `certificates/` this manager's certificates
    /// live in when that issuer succeeds.
    pub fn issuer_key(&self) -> &str {
        &self.inner.issuer_keys[0]
    }

    /// Every issuer's key, in configured order.
    pub fn issuer_keys(&self) -> impl Iterator<Item = &str> {
        self.inner.issuer_keys.iter().map(|k| &**k)
    }

    /// The root certificate (PEM) of the local CA, for clients to trust; creates the CA in
    /// storage if it has none. [`ErrorKind::NotFound`] when no issuer is the local CA.
    pub async fn local_root_pem(&self) -> Result<String> {
        match &self.inner.local {
            Some(local) => local.root_pem().await,
            None => Err(Error::new(
                ErrorKind::NotFound,
                "no issuer of this manager is the local CA (add the `local` issuer)",
            )),
        }
    }

    /// [`Self::local_root_pem`], blocking.
    pub fn local_root_pem_sync(&self) -> Result<String> {
        self.block("local_root_pem_sync", |m| async move {
            m.local_root_pem().await
        })
    }

    /// The in-memory certificate cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.inner.cache
    }

    /// Obtains or loads certificates for `names` now and keeps them renewed. Returns the first
    /// error; names that succeeded stay managed.
    pub async fn manage<S: AsRef<str>>(&self, names: &[S]) -> Result<()> {
        let subjects = self
            .inner
            .usable()
            .and_then(|_| parse_names(names, &self.inner.config))?;
        let inner = self.inner.clone();
        let work = until_shutdown(inner.cancel.clone(), async move {
            inner.manage_all(subjects).await
        });
        runtime::spawn("manage", work).await
    }

    /// Blocking [`Manager::manage`], for callers without an async runtime.
    pub fn manage_sync<S: AsRef<str>>(&self, names: &[S]) -> Result<()> {
        let subjects = self
            .inner
            .usable()
            .and_then(|_| parse_names(names, &self.inner.config))?;
        let inner = self.inner.clone();
        let work = until_shutdown(inner.cancel.clone(), async move {
            inner.manage_all(subjects).await
        });
        runtime::block_on("manage_sync", work)
    }

    /// Manages `names` in the background, retrying failures on the [retry
    /// schedule](crate::RetrySchedule). Returns once the names are checked; follow progress through
    /// events. (Go CertMagic: `ManageAsync`.)
    pub fn manage_background<S: AsRef<str>>(&self, names: &[S]) -> Result<()> {
        self.inner.usable()?;
        for subject in parse_names(names, &self.inner.config)? {
            self.inner.spawn_with_retries(
                format!("manage_{subject}"),
                subject,
                |m, s| async move { m.manage_one(&s).await },
            );
        }
        Ok(())
    }

    /// Caches now, without ordering or locking anything, the certificates that storage already
    /// holds for `names` and that have not expired (due for renewal or not); returns how many. For servers that
    /// must answer stored names from their first connection (a new nginx worker after a
    /// reload): call it, then [`Manager::manage_background`] to obtain the rest and renew.
    pub async fn load_stored<S: AsRef<str>>(&self, names: &[S]) -> Result<usize> {
        runtime::spawn("load_stored", self.load_stored_work(names)?).await
    }

    /// Blocking [`Manager::load_stored`], for callers without an async runtime.
    pub fn load_stored_sync<S: AsRef<str>>(&self, names: &[S]) -> Result<usize> {
        runtime::block_on("load_stored_sync", self.load_stored_work(names)?)
    }

    /// The names checked, then the loading, which counts what it loaded.
    fn load_stored_work<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> Result<impl std::future::Future<Output = Result<usize>> + Send + 'static> {
        let subjects = self
            .inner
            .usable()
            .and_then(|_| parse_names(names, &self.inner.config))?;
        let total = subjects.len();
        let inner = self.inner.clone();
        Ok(until_shutdown(inner.cancel.clone(), async move {
            Ok(total - inner.load_current(subjects, true).await?.len())
        }))
    }

    /// Obtains a new certificate for `name` now (or loads one that storage already holds and that
    /// is not due for renewal), and manages it.
    pub async fn obtain(&self, name: &str) -> Result<Arc<Certificate>> {
        let subject = self
            .inner
            .usable()
            .and_then(|_| parse_name(name, &self.inner.config))?;
        let inner = self.inner.clone();
        let work = until_shutdown(inner.cancel.clone(), async move {
            let cert = inner.issue_cert(&subject, Issue::obtain()).await?;
            inner.mark_managed(&subject);
            Ok(cert)
        });
        runtime::spawn("obtain", work).await
    }

    /// Blocking [`Manager::obtain`].
    pub fn obtain_sync(&self, name: &str) -> Result<Arc<Certificate>> {
        let name = name.to_string();
        self.block("obtain_sync", |m| async move { m.obtain(&name).await })
    }

    /// Renews the certificate of `name` now, whether or not it is due.
    pub async fn renew(&self, name: &str) -> Result<Arc<Certificate>> {
        let subject = self
            .inner
            .usable()
            .and_then(|_| parse_name(name, &self.inner.config))?;
        let inner = self.inner.clone();
        let work = until_shutdown(inner.cancel.clone(), async move {
            let current = match inner.cache.get_exact(&subject.as_string()) {
                Some(c) if c.is_managed() => Some(c),
                _ => match inner.load_from_storage(&subject.as_string()).await {
                    Ok(c) => Some(Arc::new(c)),
                    // Unusable in storage: replaced by a new one (reported there).
                    Err(e) if e.kind() == ErrorKind::Corrupt => None,
                    Err(e) => return Err(e),
                },
            };
            inner
                .issue_cert(&subject, Issue::forced_renewal(current))
                .await
        });
        runtime::spawn("renew", work).await
    }

    /// Blocking [`Manager::renew`].
    pub fn renew_sync(&self, name: &str) -> Result<Arc<Certificate>> {
        let name = name.to_string();
        self.block("renew_sync", |m| async move { m.renew(&name).await })
    }

    /// Revokes the certificate of `name` at the CA, deletes its files from storage and stops
    /// managing it.
    pub async fn revoke(&self, name: &str, reason: RevocationReason) -> Result<()> {
        let subject = self
            .inner
            .usable()
            .and_then(|_| parse_name(name, &self.inner.config))?;
        let inner = self.inner.clone();
        runtime::spawn(
            "revoke",
            async move { inner.revoke(&subject, reason).await },
        )
        .await
    }

    /// Blocking [`Manager::revoke`].
    pub fn revoke_sync(&self, name: &str, reason: RevocationReason) -> Result<()> {
        let name = name.to_string();
        self.block(
            "revoke_sync",
            |m| async move { m.revoke(&name, reason).await },
        )
    }

    /// The certificate a handshake for `server_name` gets: exact name, then the single-label
    /// wildcard. Never blocks, never does I/O.
    pub fn get_certificate(&self, server_name: &str) -> Option<Arc<Certificate>> {
        self.inner.cache.get_any_case(server_name)
    }

    /// The cached certificate whose leaf is `leaf_der`, for TLS stacks that name the
    /// certificate rather than the server name when they ask for its OCSP staple (OpenSSL's
    /// status callback, Node's `OCSPRequest` event). Never blocks, never does I/O.
    pub fn certificate_for_leaf(&self, leaf_der: &[u8]) -> Option<Arc<Certificate>> {
        let facts = crate::certificate::LeafFacts::parse(leaf_der).ok()?;
        facts.names.iter().find_map(|name| {
            self.inner.cache.get_exact(name).filter(|c| {
                c.chain_der()
                    .first()
                    .is_some_and(|l| l.as_ref() == leaf_der)
            })
        })
    }

    /// Adds a certificate obtained elsewhere (PEM chain, leaf first, and PEM key). It is served
    /// for its names but never renewed.
    pub fn add_certificate(&self, chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<Certificate>> {
        let cert = self
            .inner
            .cache
            .insert(Certificate::from_pem(chain_pem, key_pem)?);
        let sans: Vec<String> = cert.names().map(str::to_string).collect();
        let inner = self.inner.clone();
        let cached = cert.clone();
        self.inner.runtime.spawn(async move {
            let _ = events::emit(
                inner.config.event_handler.as_ref(),
                inner.config.callback_deadlines.events,
                Event::CachedUnmanagedCert { sans },
            )
            .await;
            // Served at once; stapled as soon as its responder answers.
            inner.restaple_cached(cached).await;
        });
        Ok(cert)
    }

    /// The rustls certificate resolver over this manager's cache (answers TLS-ALPN-01 too).
    pub fn resolver(&self) -> Arc<CertResolver> {
        self.inner.resolver.clone()
    }

    /// A rustls server config serving this manager's certificates, ALPN `h2`, `http/1.1`,
    /// `acme-tls/1`.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>> {
        handshake::server_config(self.resolver())
    }

    /// Stops background work, waits for nothing more to start, and releases this process's
    /// storage locks. Later calls on this manager fail with [`ErrorKind::ShutDown`].
    pub async fn shutdown(&self) -> Result<()> {
        if self.inner.shut_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.inner.cancel.cancel();
        self.inner.jobs.abort_all();
        let storage = self.inner.config.storage.clone();
        runtime::spawn("shutdown", async move { storage.release_own_locks().await }).await
    }

    /// Blocking [`Manager::shutdown`].
    pub fn shutdown_sync(&self) -> Result<()> {
        self.block("shutdown_sync", |m| async move { m.shutdown().await })
    }

    /// Runs an async method to completion on the library runtime, blocking this thread.
    fn block<T, F, Fut>(&self, what: &str, method: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Manager) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        runtime::block_on(what, method(self.clone()))
    }

    /// Resolves when the manager is shut down.
    pub async fn shut_down(&self) {
        self.inner.cancel.cancelled().await;
    }
}

/// `work`, stopped when the manager shuts down (its locks, challenges and DNS records are
/// released as it is dropped).
pub(crate) async fn until_shutdown<T>(
    cancel: CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Error::new(ErrorKind::Cancelled, "the manager was shut down")),
        r = work => r,
    }
}

/// A name to manage; wildcards only when DNS-01 can be solved (CAs validate wildcards through
/// DNS-01 alone) or the local CA is an issuer, refused before any order is placed.
fn parse_name(name: &str, config: &Config) -> Result<Subject> {
    let subject = Subject::parse(name)?;
    if subject.is_wildcard() && config.dns.is_none() && !config.has_local_issuer() {
        return Err(Error::new(
            ErrorKind::InvalidName,
            format!(
                "`{name}` is a wildcard name: CAs validate wildcards only through the DNS-01 challenge, so configure a DNS provider (dns_challenge)"
            ),
        ));
    }
    Ok(subject)
}

fn parse_names<S: AsRef<str>>(names: &[S], config: &Config) -> Result<Vec<Subject>> {
    let mut out = Vec::with_capacity(names.len());
    let mut seen = HashSet::with_capacity(names.len());
    for n in names {
        let s = parse_name(n.as_ref(), config)?;
        if seen.insert(s.as_string()) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Stored certificates one storage call reads when `manage` loads many: one round trip (for
/// files, one blocking-thread hand-off) per batch instead of per name, and parsing a batch
/// holds a runtime thread well under a millisecond or two.
const LOAD_BATCH: usize = 32;

/// Batches loaded at a time (loading ten thousand at once would hold every file and parse
/// buffer alive together, and the allocator keeps that peak).
const LOAD_BATCHES_AT_ONCE: usize = 4;

impl ManagerInner {
    /// Refuses use after shutdown or from another process than the creator's (after `fork()`).
    pub(crate) fn usable(&self) -> Result<()> {
        if self.pid != std::process::id() {
            return Err(Error::new(
                ErrorKind::WrongProcess,
                "this manager was created in another process; create managers after fork()",
            ));
        }
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::ShutDown,
                "the manager has been shut down",
            ));
        }
        Ok(())
    }

    pub(crate) fn needs_renewal(&self, cert: &Certificate) -> bool {
        cert.needs_renewal(
            self.config.renewal_window_ratio,
            self.config.renew_check_interval,
            SystemTime::now(),
        )
    }

    pub(crate) fn mark_managed(&self, subject: &Subject) {
        let name = subject.as_string();
        let known = self
            .cache
            .get_exact(&name)
            .filter(|c| c.is_managed())
            .map(|c| c.validity());
        let mut managed = self.managed.lock().unwrap_or_else(|p| p.into_inner());
        let entry = managed.entry(name).or_insert(None);
        if known.is_some() {
            *entry = known;
        }
    }

    /// Caches the certificates storage already holds for `subjects` and that are not due for
    /// renewal (or, with `due_ok`, only not expired), in batches. Returns the others, with
    /// their positions.
    async fn load_current(
        self: &Arc<Self>,
        subjects: Vec<Subject>,
        due_ok: bool,
    ) -> Result<Vec<(usize, Subject)>> {
        let mut pending = subjects.into_iter().enumerate();
        let mut loads = tokio::task::JoinSet::new();
        let mut rest = Vec::new();
        loop {
            while loads.len() < LOAD_BATCHES_AT_ONCE {
                let batch: Vec<(usize, Subject)> = pending.by_ref().take(LOAD_BATCH).collect();
                if batch.is_empty() {
                    break;
                }
                let inner = self.clone();
                loads.spawn(async move { inner.load_batch_if_current(batch, due_ok).await });
            }
            let Some(joined) = loads.join_next().await else {
                break;
            };
            match joined {
                Ok(not_loaded) => rest.extend(not_loaded),
                Err(e) => return Err(runtime::join_error("load", e)),
            }
        }
        Ok(rest)
    }

    async fn manage_all(self: &Arc<Self>, subjects: Vec<Subject>) -> Result<()> {
        // Every name is managed from now on: a handshake for one not loaded yet loads it.
        for subject in &subjects {
            self.mark_managed(subject);
        }
        let rest = self.load_current(subjects, false).await?;
        // Then the rest (to obtain or renew, or unreadable) all at once: orders are paced by
        // the order rate policy, and one slow order must not hold up the others.
        let mut set = tokio::task::JoinSet::new();
        for (i, subject) in rest {
            let inner = self.clone();
            set.spawn(async move { (i, inner.manage_one(&subject).await) });
        }
        let mut errors = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((i, Err(e))) => errors.push((i, e)),
                Err(e) => errors.push((usize::MAX, runtime::join_error("manage", e))),
            }
        }
        errors.sort_by_key(|(i, _)| *i);
        errors.into_iter().next().map_or(Ok(()), |(_, e)| Err(e))
    }

    /// Caches each subject's certificate from storage if it is there and not due for renewal
    /// (with `due_ok`: not expired, as serving it beats serving nothing until it is renewed),
    /// reading storage once for the batch; returns the others ([`Self::manage_one`] then deals
    /// with them, errors included).
    async fn load_batch_if_current(
        self: &Arc<Self>,
        batch: Vec<(usize, Subject)>,
        due_ok: bool,
    ) -> Vec<(usize, Subject)> {
        let usable = |c: &Certificate| {
            if due_ok {
                !c.expired(SystemTime::now())
            } else {
                !self.needs_renewal(c)
            }
        };
        let to_read: Vec<(usize, Subject)> = batch
            .into_iter()
            .filter(|(_, subject)| {
                !self
                    .cache
                    .get_exact(&subject.as_string())
                    .is_some_and(|c| c.is_managed() && usable(&c))
            })
            .collect();
        let names: Vec<String> = to_read.iter().map(|(_, s)| s.as_string()).collect();
        let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
        let stored = self.load_newest_of(&wanted).await;
        let mut rest = Vec::new();
        // A certificate naming an OCSP responder may wait on it: those are cached concurrently.
        let mut stapling = tokio::task::JoinSet::new();
        for (entry, loaded) in to_read.into_iter().zip(stored) {
            match loaded {
                Ok(cert) if usable(&cert) => {
                    if self.config.ocsp.enabled && cert.names_ocsp_responder() {
                        let inner = self.clone();
                        stapling.spawn(async move { inner.cache_managed(cert).await });
                    } else {
                        self.cache_managed(cert).await;
                    }
                }
                _ => rest.push(entry),
            }
        }
        while let Some(joined) = stapling.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %runtime::join_error("cache", e), "caching a stored certificate failed");
            }
        }
        rest
    }

    /// Makes sure `subject` has a usable certificate: cached, else from storage, else obtained;
    /// renewed if due.
    pub(crate) async fn manage_one(self: &Arc<Self>, subject: &Subject) -> Result<()> {
        let name = subject.as_string();
        self.mark_managed(subject);
        if let Some(c) = self.cache.get_exact(&name)
            && c.is_managed()
            && !self.needs_renewal(&c)
        {
            return Ok(());
        }
        let cert = match self.load_from_storage(&name).await {
            Ok(stored) => self.cache_managed(stored).await,
            // Nothing usable: obtained (a corrupt one is reported and replaced there).
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Corrupt) => {
                self.issue_cert(subject, Issue::obtain()).await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if self.needs_renewal(&cert)
            && let Err(e) = self.issue_cert(subject, Issue::renewal(cert.clone())).await
        {
            if cert.expired(SystemTime::now()) {
                return Err(e);
            }
            tracing::warn!(identifier = %subject, error = %e, "renewal failed; serving the current certificate and retrying in the background");
            self.schedule_renewal(subject.clone());
        }
        Ok(())
    }

    /// Runs `op` as a de-duplicated background job with retries. The job holds the manager
    /// weakly, so dropping the manager ends it.
    pub(crate) fn spawn_with_retries<F, Fut>(self: &Arc<Self>, job: String, subject: Subject, op: F)
    where
        F: Fn(Arc<ManagerInner>, Subject) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        let weak = Arc::downgrade(self);
        let schedule = self.config.retry_schedule.clone();
        let cancel = self.cancel.clone();
        let name = job.clone();
        let span = tracing::info_span!("job", job = %name, identifier = %subject);
        self.jobs.spawn(
            &self.runtime,
            job,
            async move {
                let res = retry::with_retries(&name, &schedule, &cancel, |_| {
                    let (weak, subject) = (weak.clone(), subject.clone());
                    let op = &op;
                    async move {
                        let Some(m) = weak.upgrade() else {
                            return Err(Error::new(ErrorKind::Cancelled, "manager dropped"));
                        };
                        op(m, subject).await
                    }
                })
                .await;
                if let Err(e) = res {
                    tracing::error!(error = %e, "background job ended without success");
                }
            }
            .instrument(span),
        );
    }

    async fn revoke(&self, subject: &Subject, reason: RevocationReason) -> Result<()> {
        let name = subject.as_string();
        let cert = match self.load_from_storage(&name).await {
            Ok(c) => Arc::new(c),
            Err(e) if e.kind() == ErrorKind::NotFound => match self.cache.get_exact(&name) {
                Some(c) if c.is_managed() => c,
                _ => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!("no certificate for `{name}` to revoke"),
                    ));
                }
            },
            Err(e) => return Err(e),
        };
        let issuer_key = cert
            .issuer_key()
            .unwrap_or(&self.issuer_keys[0])
            .to_string();
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer_key() == issuer_key)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("the issuer of `{name}` (`{issuer_key}`) is not configured"),
                )
            })?;
        issuer.revoke(&cert.chain_der()[0], reason).await?;
        tracing::info!(identifier = %name, serial = %cert.serial_hex(), "certificate revoked");
        self.managed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
        self.jobs.abort(&format!("renew_{name}"));
        self.jobs.abort(&format!("manage_{name}"));
        self.cache.remove(&name);
        self.config
            .storage
            .delete(&keys::site_prefix(&issuer_key, &name))
            .await
    }
}
