//! OCSP stapling of cached certificates (Go CertMagic's `stapleOCSP` and the OCSP half of
//! `maintain.go`): a fresh response kept in storage is used as is, otherwise the responder the
//! leaf names is asked and a good answer stored for every instance sharing the storage (at
//! CertMagic's key, so Caddy uses it too). Maintenance refreshes staples once past their
//! midpoint, and replaces a managed certificate found revoked.
//!
//! Stapling never fails an operation: without a response a certificate is served unstapled,
//! and the reason logged (at debug level only when the leaf names no responder, or for
//! certificates shorter-lived than a week, whose CAs need not run OCSP).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::certificate::Certificate;
use crate::error::{ErrorKind, Result};
use crate::events::{self, Event};
use crate::manager::ManagerInner;
use crate::obtain::Issue;
use crate::ocsp::{
    OcspResponse, OcspStatus, REASON_KEY_COMPROMISE, Responder, fetch_issuer, ocsp_error, query,
    request_der,
};
use crate::storage::keys;
use crate::subject::Subject;

/// Certificates living less than this need no staple: failures are logged at debug level (Go
/// CertMagic's rule; Let's Encrypt's short-lived certificates carry no OCSP URL at all).
const SHORT_LIVED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Responders asked at once by a maintenance pass.
const REFRESH_CONCURRENCY: usize = 8;

impl ManagerInner {
    /// `cert` with its OCSP status attached (and stapled if good), when stapling is on and its
    /// leaf names a responder; `cert` unchanged otherwise.
    pub(crate) async fn staple(&self, cert: Certificate) -> Certificate {
        match self.ocsp_response_for(&cert).await {
            Some(response) => cert.with_ocsp(response),
            None => cert,
        }
    }

    /// Maintenance: refreshes every cached certificate's response that is no longer fresh,
    /// a few responders at a time, and replaces managed certificates found revoked.
    pub(crate) async fn refresh_ocsp_staples(self: &Arc<Self>) {
        if !self.config.ocsp.enabled {
            return;
        }
        let now = SystemTime::now();
        let due: Vec<Arc<Certificate>> = self
            .cache
            .all()
            .into_iter()
            .filter(|c| {
                c.names_ocsp_responder() && !c.ocsp_response().is_some_and(|r| r.is_fresh(now))
            })
            .collect();
        let mut due = due.into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < REFRESH_CONCURRENCY {
                let Some(cert) = due.next() else { break };
                let inner = self.clone();
                running.spawn(async move { inner.restaple_cached(cert).await });
            }
            if running.join_next().await.is_none() {
                break;
            }
        }
    }

    /// Fetches a response for a cached certificate and, if it is still cached, puts the
    /// stapled copy in its place; a revoked one is then replaced.
    pub(crate) async fn restaple_cached(self: &Arc<Self>, cert: Arc<Certificate>) {
        let Some(response) = self.ocsp_response_for(&cert).await else {
            // No newer answer: the current staple is served until its nextUpdate, then none
            // (a client would refuse an expired one).
            let expired = cert
                .ocsp_response()
                .and_then(OcspResponse::next_update)
                .is_some_and(|next| next <= SystemTime::now());
            if expired {
                tracing::warn!(names = ?cert.names().collect::<Vec<_>>(), "OCSP staple expired with no newer answer; serving none");
                self.cache.replace_same_chain(Arc::new(cert.without_ocsp()));
            }
            return;
        };
        let unchanged = cert
            .ocsp_response()
            .is_some_and(|r| r.der() == response.der());
        if unchanged {
            return;
        }
        // A revocation is acted on once, when first seen; its replacement is under way.
        let was_revoked = cert
            .ocsp_response()
            .is_some_and(|r| matches!(r.status(), OcspStatus::Revoked { .. }));
        let stapled = Arc::new(cert.with_ocsp(response));
        if self.cache.replace_same_chain(stapled.clone()) && !was_revoked {
            self.on_ocsp_status(stapled).await;
        }
    }

    /// After a certificate with a response was cached: replaces it if it is revoked. Boxed:
    /// the replacement caches a certificate, which comes back here.
    pub(crate) fn on_ocsp_status(
        self: &Arc<Self>,
        cert: Arc<Certificate>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let this = self.clone();
        Box::pin(async move { this.replace_if_revoked(cert).await })
    }

    async fn replace_if_revoked(self: &Arc<Self>, cert: Arc<Certificate>) {
        let Some(OcspStatus::Revoked { revoked_at, reason }) =
            cert.ocsp_response().map(OcspResponse::status)
        else {
            return;
        };
        let subjects: Vec<String> = cert.names().map(str::to_string).collect();
        let _ = events::emit(
            self.config.event_handler.as_ref(),
            self.config.callback_deadlines.events,
            Event::CertOcspRevoked {
                subjects: subjects.clone(),
                certificate_pem: cert.chain_pem().to_string(),
                reason,
                revoked_at,
            },
        )
        .await;
        if !cert.is_managed() {
            tracing::warn!(names = ?subjects, "OCSP says this certificate (added by hand) is REVOKED; replace it");
            return;
        }
        let key_compromise = reason == Some(REASON_KEY_COMPROMISE);
        tracing::warn!(
            names = ?subjects,
            key_compromise,
            "OCSP says this managed certificate is REVOKED; replacing it"
        );
        for name in &subjects {
            let Ok(subject) = Subject::parse(name) else {
                continue;
            };
            if key_compromise {
                self.move_compromised_key(name, &cert).await;
            }
            let revoked = cert.clone();
            self.spawn_with_retries(format!("replace_revoked_{name}"), subject, move |m, s| {
                let revoked = revoked.clone();
                async move {
                    // A compromised key must not be reused: a fresh obtain, not a renewal.
                    let issue = if key_compromise {
                        Issue::forced_renewal(None)
                    } else {
                        Issue::forced_renewal(Some(revoked.clone()))
                    };
                    let res = m.issue_cert(&s, issue).await.map(|_| ());
                    if res.is_err() {
                        // Serving a revoked certificate helps no one (Go CertMagic drops it too).
                        let name = s.as_string();
                        if m.cache
                            .get_exact(&name)
                            .is_some_and(|c| c.hash() == revoked.hash())
                        {
                            m.cache.remove(&name);
                        }
                    }
                    res
                }
            });
        }
    }

    /// Moves the stored key of `name` aside to `<key>.compromised` (Go CertMagic's
    /// `moveCompromisedPrivateKey`), so that nothing loads it again; only if it is still the
    /// revoked certificate's key (a replacement may have stored a new one meanwhile).
    async fn move_compromised_key(&self, name: &str, revoked: &Certificate) {
        let storage = &self.config.storage;
        let issuer_key = revoked.issuer_key().unwrap_or(&self.issuer_keys[0]);
        let key = keys::site_private_key(issuer_key, name);
        let moved = async {
            let pem = storage.load(&key).await?;
            let stored = crate::crypto::decode_private_key_pem(&pem)?;
            if stored.secret_der() != revoked.key_der().secret_der() {
                return Ok(false);
            }
            storage.store(&format!("{key}.compromised"), &pem).await?;
            storage.delete(&key).await?;
            Ok::<_, crate::Error>(true)
        };
        match moved.await {
            Ok(true) => {
                tracing::warn!(key = %key, "compromised private key moved aside (.compromised)")
            }
            Ok(false) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(key = %key, error = %e, "could not move the compromised private key aside")
            }
        }
    }

    /// A checked response for `cert`: the stored one while fresh, else the responder's. `None`
    /// when stapling is off, the leaf names no responder (or an override turned it off), or
    /// it failed (logged).
    async fn ocsp_response_for(&self, cert: &Certificate) -> Option<Arc<OcspResponse>> {
        let settings = &self.config.ocsp;
        if !settings.enabled || !cert.names_ocsp_responder() {
            return None;
        }
        let chain = cert.chain_der();
        let (_, leaf) = X509Certificate::from_der(chain.first()?.as_ref()).ok()?;
        let responder = Responder::of(&leaf);
        let Some(named) = responder.ocsp.as_deref() else {
            tracing::debug!(names = ?cert.names().collect::<Vec<_>>(), "no OCSP responder in the certificate; nothing to staple");
            return None;
        };
        let Some(url) = settings.responder_url(named) else {
            tracing::debug!(
                responder = named,
                "OCSP responder turned off by an override"
            );
            return None;
        };
        match self.fetch_response(cert, &leaf, &responder, url).await {
            Ok(response) => Some(Arc::new(response)),
            Err(e) => {
                let lifetime = cert
                    .not_after()
                    .duration_since(cert.not_before())
                    .unwrap_or_default();
                if lifetime < SHORT_LIVED {
                    tracing::debug!(responder = url, error = %e, "no OCSP staple (short-lived certificate)");
                } else {
                    tracing::warn!(names = ?cert.names().collect::<Vec<_>>(), responder = url, error = %e, "no OCSP staple");
                }
                None
            }
        }
    }

    async fn fetch_response(
        &self,
        cert: &Certificate,
        leaf: &X509Certificate<'_>,
        responder: &Responder,
        url: &str,
    ) -> Result<OcspResponse> {
        let issuer_der = match cert.chain_der().get(1) {
            Some(c) => c.as_ref().to_vec(),
            None => match responder.ca_issuer.as_deref() {
                Some(u) => fetch_issuer(u).await?,
                None => {
                    return Err(ocsp_error(
                        "the chain holds no issuer and the leaf names no CA-issuers URL",
                    ));
                }
            },
        };
        let (_, issuer) = X509Certificate::from_der(&issuer_der)
            .map_err(|e| ocsp_error(format!("issuer certificate: {e}")))?;

        let storage = &self.config.storage;
        let key = cert.ocsp_storage_key();
        // A stored answer past its midpoint is still valid: the fallback if the responder fails.
        let mut stale = None;
        match storage.load(&key).await {
            Ok(stored) => match usable(&stored, cert, leaf, &issuer) {
                Ok(r) if r.is_fresh(SystemTime::now()) => return Ok(r),
                Ok(r) => stale = Some(r),
                Err(e) => {
                    // Go CertMagic deletes staples it cannot use.
                    tracing::warn!(key = %key, error = %e, "stored OCSP response is unusable; deleting it");
                    let _ = storage.delete(&key).await;
                }
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "could not read the stored OCSP response")
            }
        }

        let request = request_der(leaf, &issuer)?;
        let asked = async { usable(&query(url, &request).await?, cert, leaf, &issuer) };
        let response = match (asked.await, stale) {
            (Ok(r), _) => r,
            (Err(e), Some(stale)) => {
                tracing::warn!(responder = url, error = %e, "OCSP responder failed; using the stored response until it expires");
                return Ok(stale);
            }
            (Err(e), None) => return Err(e),
        };
        if response.status() == OcspStatus::Good
            && let Err(e) = storage.store(&key, response.der()).await
        {
            tracing::warn!(key = %key, error = %e, "could not store the OCSP response");
        }
        tracing::debug!(
            status = response.status().as_str(),
            responder = url,
            "OCSP response"
        );
        Ok(response)
    }
}

/// Checks `der` against the certificate, and refuses a response that outlives it (Go
/// CertMagic's rule: a responder promising news after expiry is misconfigured).
fn usable(
    der: &[u8],
    cert: &Certificate,
    leaf: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<OcspResponse> {
    let response = OcspResponse::verify(der, leaf, issuer, SystemTime::now())?;
    if response.next_update().is_some_and(|n| n > cert.not_after()) {
        return Err(ocsp_error(
            "the OCSP response is valid after the certificate expires",
        ));
    }
    Ok(response)
}
