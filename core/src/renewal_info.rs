//! Keeping each managed certificate's renewal information (ARI) fresh, as Go CertMagic's
//! `updateARI`: on the schedule the CA's `Retry-After` asks for, under the `ari_<certID>` lock
//! Caddy takes too, adopting what another instance stored meanwhile, and rewriting only the
//! metadata file (chain and key untouched).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::ari::RenewalInfo;
use crate::certificate::{Certificate, CertificateResource};
use crate::error::{Error, Result};
use crate::manager::ManagerInner;
use crate::storage::{LockGuard, keys};
use crate::subject::Subject;

impl ManagerInner {
    /// Called by maintenance: one job that asks each issuer whether its CA offers renewal
    /// information (a directory read once per issuer), then starts a refresh for every cached
    /// managed certificate of those issuers whose window is unknown or past its `Retry-After`.
    pub(crate) fn refresh_due_renewal_info(self: &Arc<Self>) {
        let this = self.clone();
        self.jobs.spawn(&self.runtime, "ari_refresh".into(), async move {
            let mut offering = Vec::new();
            for issuer in &this.issuers {
                if issuer.offers_renewal_info().await {
                    offering.push(issuer.issuer_key().to_string());
                }
            }
            if offering.is_empty() {
                return;
            }
            let now = OffsetDateTime::now_utc();
            for cert in this.cache.all() {
                let due = cert.is_managed()
                    && cert.issuer_ca().is_some()
                    && cert.issuer_key().is_some_and(|k| offering.iter().any(|o| o == k))
                    && cert.renewal_info().is_none_or(|ri| ri.needs_refresh(now));
                let Some(name) = cert.names().next().map(str::to_string) else {
                    continue;
                };
                if !due {
                    continue;
                }
                let m = this.clone();
                this.jobs.spawn(&this.runtime, format!("ari_{name}"), async move {
                    if let Err(e) = m.refresh_renewal_info(&name, cert).await {
                        tracing::warn!(identifier = %name, error = %e, "updating renewal information");
                    }
                });
            }
        });
    }

    /// Refreshes the renewal information of `cert` (cached for `name`); renews at once when
    /// the new window says so.
    async fn refresh_renewal_info(
        self: &Arc<Self>,
        name: &str,
        cert: Arc<Certificate>,
    ) -> Result<()> {
        let Some(ik) = cert.issuer_key() else {
            return Ok(());
        };
        let Some(issuer) = self.issuers.iter().find(|i| i.issuer_key() == ik) else {
            return Ok(());
        };
        let Some(id) = crate::ari::certificate_id(cert.chain_der()[0].as_ref()) else {
            return Ok(());
        };
        let lock = LockGuard::acquire(
            self.config.storage.clone(),
            keys::lock_ari(&id),
            &self.runtime,
        )
        .await?;
        let result = self
            .refresh_locked(name, ik, &id, &cert, issuer.as_ref())
            .await;
        lock.release().await;
        let Some(updated) = result? else {
            return Ok(());
        };
        let updated = Arc::new(cert.with_renewal_info(updated));
        self.cache.replace_same_chain(updated.clone());
        if self.needs_renewal(&updated)
            && let Ok(subject) = Subject::parse(name)
        {
            tracing::info!(identifier = %name, "the CA's renewal window has opened; renewing");
            self.schedule_renewal(subject);
        }
        Ok(())
    }

    /// Under the lock: what another instance stored if it is fresh, else the CA's answer,
    /// written to the metadata file. `None` when nothing changed.
    async fn refresh_locked(
        &self,
        name: &str,
        ik: &str,
        id: &str,
        cert: &Certificate,
        issuer: &dyn crate::Issuer,
    ) -> Result<Option<RenewalInfo>> {
        let now = OffsetDateTime::now_utc();
        let (crt_key, meta_key) = (keys::site_cert(ik, name), keys::site_meta(ik, name));
        let mut loaded = self
            .config
            .storage
            .load_many(&[&crt_key, &meta_key])
            .await
            .into_iter();
        let (Some(crt), Some(meta)) = (loaded.next(), loaded.next()) else {
            return Err(Error::internal("storage returned too few values"));
        };
        // Another instance may have renewed it meanwhile: that metadata is not ours to write.
        let stored_leaf = crate::crypto::parse_pem_chain(&crt?)?.into_iter().next();
        if stored_leaf.as_ref() != Some(&cert.chain_der()[0]) {
            return Ok(None);
        }
        let mut resource = CertificateResource::from_json(&meta?)
            .map_err(|e| e.context(format!("`{meta_key}`")))?;
        let stored_info = resource
            .issuer_data
            .as_ref()
            .and_then(|d| d.get("renewal_info"))
            .and_then(RenewalInfo::from_json)
            .filter(|ri| ri.unique_identifier == id);
        let newer_in_storage = stored_info.as_ref().filter(|s| {
            cert.renewal_info().is_none_or(|mine| {
                s.retry_after > mine.retry_after || (mine.window.is_none() && s.window.is_some())
            })
        });
        if let Some(s) = newer_in_storage
            && !s.needs_refresh(now)
        {
            return Ok(Some(s.clone()));
        }
        let previous = newer_in_storage.or(cert.renewal_info());
        let Some(info) = issuer.renewal_info(cert, previous).await? else {
            return Ok(None);
        };
        match resource.issuer_data.as_mut() {
            Some(serde_json::Value::Object(data)) => {
                data.insert("renewal_info".into(), info.to_json());
            }
            _ => {
                return Err(Error::internal(format!(
                    "`{meta_key}` has no ACME issuer data"
                )));
            }
        }
        self.config
            .storage
            .store(&meta_key, &resource.to_json())
            .await?;
        tracing::info!(
            identifier = %name,
            selected = ?info.selected_time,
            "renewal information updated"
        );
        Ok(Some(info))
    }
}
