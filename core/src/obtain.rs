//! Obtaining and storing certificates, and loading them back (Go CertMagic's `config.go`
//! obtain/renew and `certificates.go` loading): the issuance under the name's storage lock,
//! the check for a certificate another instance stored meanwhile, the events around it, and
//! the three files written so that no half set is left.

use std::sync::Arc;
use std::time::SystemTime;

use tracing::Instrument;

use crate::certificate::{AcmeIssuerData, Certificate, CertificateResource};
use crate::crypto;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{self, Event};
use crate::issuer::IssuedCertificate;
use crate::issuer_spec::IssuerPolicy;
use crate::manager::ManagerInner;
use crate::runtime;
use crate::storage::{LockGuard, keys};
use crate::subject::Subject;

/// What one issuance is: a first obtain or the renewal of `current`, and who asked for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Issue {
    /// The certificate being renewed (`None`: a first obtain, or a replacement of one that
    /// could not be read).
    pub current: Option<Arc<Certificate>>,
    /// A caller asked for it (`Manager::renew`), due or not.
    pub forced: bool,
    /// A TLS handshake asked for it (on-demand TLS).
    pub on_demand: bool,
}

impl Issue {
    /// A first certificate for a name.
    pub fn obtain() -> Self {
        Self::default()
    }

    /// The renewal of `current`, because it is due.
    pub fn renewal(current: Arc<Certificate>) -> Self {
        Self {
            current: Some(current),
            ..Self::default()
        }
    }

    /// A renewal a caller asked for (of `current`, if one could be read).
    pub fn forced_renewal(current: Option<Arc<Certificate>>) -> Self {
        Self {
            current,
            forced: true,
            on_demand: false,
        }
    }

    /// An obtain or renewal for a TLS handshake.
    pub fn on_demand(current: Option<Arc<Certificate>>) -> Self {
        Self {
            current,
            forced: false,
            on_demand: true,
        }
    }
}

/// A certificate just issued and stored.
struct Obtained {
    cert: Certificate,
    /// The CSR sent, PEM.
    csr_pem: String,
    /// The issuer that succeeded.
    issuer_key: Arc<str>,
    /// Issuers that failed before it, with their errors.
    failed_issuers: Vec<(String, String)>,
}

impl ManagerInner {
    /// Reads the certificate of `name` from storage: under every issuer's key, keeping the
    /// newest (latest not-before) when several hold one, as CertMagic does. All three files
    /// (chain, key, metadata) must exist ([`ErrorKind::NotFound`] when no issuer has them) and
    /// decode ([`ErrorKind::Corrupt`] / [`ErrorKind::Certificate`] naming the file otherwise;
    /// only when no issuer holds a usable certificate).
    pub(crate) async fn load_from_storage(&self, name: &str) -> Result<Certificate> {
        self.load_newest(name).await.map_err(|(_, e)| e)
    }

    /// [`Self::load_from_storage`], with the issuer key a refusal comes from.
    async fn load_newest(&self, name: &str) -> std::result::Result<Certificate, (Arc<str>, Error)> {
        let mut one = self.load_newest_of(&[name]).await;
        one.pop().unwrap_or_else(|| {
            Err((
                self.issuer_keys[0].clone(),
                Error::internal("storage returned too few values"),
            ))
        })
    }

    /// [`Self::load_newest`] for each of `names`, in order, from one [`Storage::load_many`]
    /// call: loading thousands of stored certificates at start is otherwise dominated by one
    /// storage round trip (for files: one blocking-thread hand-off) per name and issuer.
    pub(crate) async fn load_newest_of(
        &self,
        names: &[&str],
    ) -> Vec<std::result::Result<Certificate, (Arc<str>, Error)>> {
        let issuers: Vec<&Arc<str>> = self
            .issuer_keys
            .iter()
            .enumerate()
            .filter(|(i, ik)| !self.issuer_keys[..*i].contains(ik))
            .map(|(_, ik)| ik)
            .collect();
        let keys: Vec<String> = names
            .iter()
            .flat_map(|name| {
                issuers
                    .iter()
                    .flat_map(move |ik| keys::site_files(ik, name))
            })
            .collect();
        let wanted: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut loaded = self.config.storage.load_many(&wanted).await.into_iter();
        let mut next = || {
            loaded
                .next()
                .unwrap_or_else(|| Err(Error::internal("storage returned too few values")))
        };
        names
            .iter()
            .map(|name| {
                let stored: Vec<(Arc<str>, Result<Certificate>)> = issuers
                    .iter()
                    .map(|ik| {
                        let files = [next(), next(), next()];
                        ((*ik).clone(), decode_stored(ik, name, files))
                    })
                    .collect();
                newest_stored(stored).ok_or_else(|| {
                    (
                        self.issuer_keys[0].clone(),
                        Error::internal("a manager without issuers"),
                    )
                })?
            })
            .collect()
    }

    /// Staples and caches a managed certificate; announces it unless the very same chain was
    /// cached already, and replaces it if OCSP says it is revoked.
    pub(crate) async fn cache_managed(self: &Arc<Self>, cert: Certificate) -> Arc<Certificate> {
        self.cache_managed_with(cert, true).await
    }

    /// Like [`Self::cache_managed`] for a certificate just issued: one the responder already
    /// calls revoked is not replaced at once (a responder that revokes everything would have
    /// the CA asked in a loop), only logged; maintenance acts on later changes.
    async fn cache_issued(self: &Arc<Self>, cert: Certificate) -> Arc<Certificate> {
        self.cache_managed_with(cert, false).await
    }

    async fn cache_managed_with(
        self: &Arc<Self>,
        cert: Certificate,
        replace_if_revoked: bool,
    ) -> Arc<Certificate> {
        let fresh = Arc::new(self.staple(cert).await);
        let cached = self.cache.insert_arc(fresh.clone());
        {
            let mut managed = self.managed.lock().unwrap_or_else(|p| p.into_inner());
            for name in cached.names() {
                if let Some(known) = managed.get_mut(name) {
                    *known = Some(cached.validity());
                }
            }
        }
        if Arc::ptr_eq(&cached, &fresh) {
            let handler = self.config.event_handler.as_ref();
            if events::wanted(handler, "cached_managed_cert") {
                let sans = cached.names().map(str::to_string).collect();
                let event = Event::CachedManagedCert { sans };
                let _ = events::emit(handler, self.config.callback_deadlines.events, event).await;
            }
            if replace_if_revoked {
                self.on_ocsp_status(cached.clone()).await;
            } else if cached
                .ocsp_response()
                .is_some_and(|r| matches!(r.status(), crate::OcspStatus::Revoked { .. }))
            {
                tracing::error!(serial = %cached.serial_hex(), "the OCSP responder calls this newly issued certificate revoked");
            }
        }
        cached
    }

    /// Obtains or renews (as `issue` says) a certificate under the name's storage lock.
    pub(crate) async fn issue_cert(
        self: &Arc<Self>,
        subject: &Subject,
        issue: Issue,
    ) -> Result<Arc<Certificate>> {
        let name = subject.as_string();
        let span = tracing::info_span!(
            "issue",
            identifier = %name,
            renewal = issue.current.is_some()
        );
        async {
            let lock = LockGuard::acquire(
                self.config.storage.clone(),
                keys::lock_issue_cert(&name),
                &self.runtime,
            )
            .await?;
            let res = self.issue_cert_locked(subject, issue).await;
            lock.release().await;
            res
        }
        .instrument(span)
        .await
    }

    async fn issue_cert_locked(
        self: &Arc<Self>,
        subject: &Subject,
        issue: Issue,
    ) -> Result<Arc<Certificate>> {
        let Issue {
            current,
            forced,
            on_demand,
        } = issue;
        let name = subject.as_string();
        let renewal = current.is_some();
        // Another instance sharing the storage (or an earlier caller) may have done the work
        // while this one waited for the lock.
        match self.load_newest(&name).await {
            Ok(stored) => {
                let is_new = current.as_ref().is_none_or(|c| c.hash() != stored.hash());
                if is_new && !self.needs_renewal(&stored) {
                    tracing::info!(
                        "storage already holds a fresh certificate (from another instance); using it"
                    );
                    return Ok(self.cache_managed(stored).await);
                }
            }
            Err((_, e)) if e.kind() == ErrorKind::NotFound => {}
            Err((ik, e)) if e.kind() == ErrorKind::Corrupt => {
                self.report_corrupt(&name, &ik, &e).await
            }
            Err((_, e)) if renewal => {
                tracing::warn!(error = %e, "stored certificate is unreadable; replacing it")
            }
            Err((_, e)) => return Err(e),
        }

        let now = SystemTime::now();
        let remaining = current
            .as_ref()
            .map(|c| c.not_after().duration_since(now).unwrap_or_default());
        events::emit(
            self.config.event_handler.as_ref(),
            self.config.callback_deadlines.events,
            Event::CertObtaining {
                identifier: name.clone(),
                renewal,
                forced,
                remaining,
                issuer: current
                    .as_ref()
                    .and_then(|c| c.issuer_key().map(str::to_string)),
                on_demand,
            },
        )
        .await?;

        let result = self.obtain_and_store(subject, current.as_deref()).await;
        match result {
            Ok(Obtained {
                cert,
                csr_pem,
                issuer_key,
                failed_issuers,
            }) => {
                let cert = self.cache_issued(cert).await;
                tracing::info!(serial = %cert.serial_hex(), "certificate obtained");
                let event = Event::CertObtained {
                    identifier: name.clone(),
                    renewal,
                    remaining,
                    issuer: issuer_key.to_string(),
                    storage_path: keys::site_prefix(&issuer_key, &name),
                    private_key_path: keys::site_private_key(&issuer_key, &name),
                    certificate_path: keys::site_cert(&issuer_key, &name),
                    metadata_path: keys::site_meta(&issuer_key, &name),
                    csr_pem,
                    failed_issuers,
                    on_demand,
                };
                let _ = events::emit(
                    self.config.event_handler.as_ref(),
                    self.config.callback_deadlines.events,
                    event,
                )
                .await;
                Ok(cert)
            }
            Err((issuers, e)) => {
                tracing::error!(error = %e, "could not obtain certificate");
                let event = Event::CertFailed {
                    identifier: name.clone(),
                    renewal,
                    remaining,
                    issuers,
                    error: e.to_string(),
                    on_demand,
                };
                let _ = events::emit(
                    self.config.event_handler.as_ref(),
                    self.config.callback_deadlines.events,
                    event,
                )
                .await;
                Err(e)
            }
        }
    }

    /// Says that the stored certificate of `name` is unusable and will be replaced (log and
    /// event, naming the files).
    async fn report_corrupt(&self, name: &str, ik: &str, error: &Error) {
        let event = Event::StoredCertCorrupt {
            identifier: name.to_string(),
            error: error.to_string(),
            certificate_path: keys::site_cert(ik, name),
            private_key_path: keys::site_private_key(ik, name),
            metadata_path: keys::site_meta(ik, name),
        };
        tracing::warn!(
            certificate = %keys::site_cert(ik, name),
            key = %keys::site_private_key(ik, name),
            metadata = %keys::site_meta(ik, name),
            error = %error,
            "stored certificate is unusable; obtaining a new one to replace it"
        );
        let _ = events::emit(
            self.config.event_handler.as_ref(),
            self.config.callback_deadlines.events,
            event,
        )
        .await;
    }

    /// Key, CSR, issuance from the first issuer that succeeds (in the order
    /// [`Self::issuer_order`] gives), then the three files under that issuer's key. A failed
    /// issuer is logged and the next one tried; when every one fails, the error is the last
    /// one's, with the keys of all that were tried.
    async fn obtain_and_store(
        &self,
        subject: &Subject,
        current: Option<&Certificate>,
    ) -> std::result::Result<Obtained, (Vec<String>, Error)> {
        let name = subject.as_string();
        let first_key = || vec![self.issuer_keys[0].to_string()];
        let key = match current.filter(|_| self.config.reuse_private_keys) {
            Some(c) => crypto::key_pair_from_der(c.key_der()).map_err(|e| (first_key(), e))?,
            None => {
                let key_type = self.config.key_type;
                tokio::task::spawn_blocking(move || crypto::generate_key(key_type))
                    .await
                    .map_err(|e| runtime::join_error("key generation", e))
                    .and_then(|k| k)
                    .map_err(|e| (first_key(), e))?
            }
        };
        let csr =
            crypto::csr_der(&name, &key, self.config.must_staple).map_err(|e| (first_key(), e))?;
        let csr_pem = crypto::encode_pem(&[pem::Pem::new("CERTIFICATE REQUEST", csr.clone())]);
        let key_pem = crypto::encode_private_key_pem(&key).map_err(|e| (first_key(), e))?;
        let mut failed_issuers: Vec<(String, String)> = Vec::new();
        let mut last_error = None;
        for i in self.issuer_order(current) {
            let (issuer, issuer_key) = (&self.issuers[i], &self.issuer_keys[i]);
            let issued = match current {
                Some(replacing) => issuer.issue_replacing(subject, &csr, replacing).await,
                None => issuer.issue(subject, &csr).await,
            };
            let issued = issued.and_then(|issued| {
                let cert = Certificate::from_pem(issued.chain_pem.as_bytes(), key_pem.as_bytes())
                    .map_err(|e| e.context("the CA's certificate"))?
                    .into_managed(Some(issuer_key.clone()))
                    .with_acme_metadata(
                        serde_json::from_value::<AcmeIssuerData>(issued.metadata.clone())
                            .ok()
                            .as_ref(),
                    );
                if !cert.names().any(|n| n == name) {
                    return Err(Error::new(
                        ErrorKind::Certificate,
                        format!("the CA's certificate does not cover `{name}`"),
                    ));
                }
                Ok((issued, cert))
            });
            match issued {
                Ok((issued, cert)) => {
                    let tried = || {
                        let mut keys: Vec<String> =
                            failed_issuers.iter().map(|(k, _)| k.clone()).collect();
                        keys.push(issuer_key.to_string());
                        keys
                    };
                    self.store_cert_files(issuer_key, &name, &issued, &key_pem)
                        .await
                        .map_err(|e| (tried(), e))?;
                    return Ok(Obtained {
                        cert,
                        csr_pem,
                        issuer_key: issuer_key.clone(),
                        failed_issuers,
                    });
                }
                Err(e) if matches!(e.kind(), ErrorKind::Cancelled | ErrorKind::ShutDown) => {
                    failed_issuers.push((issuer_key.to_string(), e.to_string()));
                    last_error = Some(e);
                    break;
                }
                Err(e) => {
                    failed_issuers.push((issuer_key.to_string(), e.to_string()));
                    if self.issuers.len() > 1 {
                        tracing::warn!(issuer = %issuer_key, error = %e, "issuer failed; trying the next one");
                        last_error = Some(e.context(format!("issuer `{issuer_key}`")));
                    } else {
                        last_error = Some(e);
                    }
                }
            }
        }
        let tried = failed_issuers.into_iter().map(|(k, _)| k).collect();
        Err((
            tried,
            last_error.unwrap_or_else(|| Error::internal("a manager without issuers")),
        ))
    }

    /// The order in which issuers are tried for one certificate: as configured, shuffled for
    /// a first obtain under [`IssuerPolicy::Random`] (renewals keep the configured order, as
    /// CertMagic's do), and with the issuer of a reused key first.
    fn issuer_order(&self, current: Option<&Certificate>) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.issuers.len()).collect();
        if current.is_none() && self.config.issuer_policy == IssuerPolicy::Random {
            use rand::seq::SliceRandom;
            order.shuffle(&mut rand::rng());
        }
        if self.config.reuse_private_keys
            && let Some(ik) = current.and_then(|c| c.issuer_key())
            && let Some(pos) = order.iter().position(|&i| &*self.issuer_keys[i] == ik)
        {
            let i = order.remove(pos);
            order.insert(0, i);
        }
        order
    }

    /// Writes key, chain and metadata (in that order, as Go CertMagic); if one fails, the
    /// files written before it are removed so no half set is left.
    async fn store_cert_files(
        &self,
        ik: &str,
        name: &str,
        issued: &IssuedCertificate,
        key_pem: &str,
    ) -> Result<()> {
        let storage = self.config.storage.as_ref();
        let meta = CertificateResource {
            sans: vec![name.to_string()],
            issuer_data: Some(issued.metadata.clone()),
        };
        let files = [
            (
                keys::site_private_key(ik, name),
                key_pem.as_bytes().to_vec(),
            ),
            (
                keys::site_cert(ik, name),
                issued.chain_pem.as_bytes().to_vec(),
            ),
            (keys::site_meta(ik, name), meta.to_json()),
        ];
        for (i, (key, value)) in files.iter().enumerate() {
            if let Err(e) = storage.store(key, value).await {
                for (written, _) in &files[..i] {
                    let _ = storage.delete(written).await;
                }
                return Err(e.context(format!("storing certificate of `{name}`")));
            }
        }
        Ok(())
    }
}

/// The newest certificate (latest not-before) among those stored under each issuer; else the
/// first failure that is not [`ErrorKind::NotFound`] (or the first failure when every issuer
/// lacks one), with its issuer key; `None` without issuers.
fn newest_stored(
    stored: Vec<(Arc<str>, Result<Certificate>)>,
) -> Option<std::result::Result<Certificate, (Arc<str>, Error)>> {
    let mut newest: Option<Certificate> = None;
    let mut failure: Option<(Arc<str>, Error)> = None;
    for (ik, loaded) in stored {
        match loaded {
            Ok(c) => {
                if newest
                    .as_ref()
                    .is_none_or(|n| c.not_before() > n.not_before())
                {
                    newest = Some(c);
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound && failure.is_some() => {}
            Err(e) => {
                if failure
                    .as_ref()
                    .is_none_or(|(_, f)| f.kind() == ErrorKind::NotFound)
                {
                    failure = Some((ik, e));
                }
            }
        }
    }
    match (newest, failure) {
        (Some(c), _) => Some(Ok(c)),
        (None, Some(f)) => Some(Err(f)),
        (None, None) => None,
    }
}

/// Decodes the chain, key and metadata files of `name` stored under issuer `ik`.
fn decode_stored(ik: &Arc<str>, name: &str, files: [Result<Vec<u8>>; 3]) -> Result<Certificate> {
    let [crt, key, meta] = files;
    let (crt, key, meta) = (crt?, key?, meta?);
    let resource = CertificateResource::from_json(&meta)
        .map_err(|e| e.context(format!("`{}`", keys::site_meta(ik, name))))?;
    let cert = Certificate::from_pem(&crt, &key).map_err(|e| {
        let kind = if e.kind() == ErrorKind::Certificate {
            ErrorKind::Corrupt
        } else {
            e.kind()
        };
        e.with_kind(kind).context(format!(
            "certificate of `{name}` in storage (`{}`, `{}`)",
            keys::site_cert(ik, name),
            keys::site_private_key(ik, name)
        ))
    })?;
    if !cert.names().any(|n| n == name) {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "certificate in `{}` does not cover `{name}` (it is for {:?})",
                keys::site_cert(ik, name),
                cert.names().collect::<Vec<_>>()
            ),
        ));
    }
    Ok(cert
        .into_managed(Some(ik.clone()))
        .with_acme_metadata(resource.acme_data().as_ref()))
}
