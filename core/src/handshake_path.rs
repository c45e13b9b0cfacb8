//! The asynchronous handshake path: the certificate for a ClientHello, found in the cache
//! (exact, then wildcard), else loaded from storage (a managed name the cache evicted), else,
//! with on-demand TLS, decided, loaded from storage (another instance may have it) or obtained,
//! with concurrent handshakes for one name sharing one obtain. On-demand certificates are
//! renewed here, when a handshake finds them due: in the background while the current one is
//! served, or blocking the handshake (up to 90 s) when it has expired.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::certificate::Certificate;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{self, Event};
use crate::manager::{Manager, ManagerInner, until_shutdown};
use crate::obtain::Issue;
use crate::on_demand::{EXPIRED_RENEWAL_WAIT, OnDemandState, Outcome};
use crate::solvers::tls_alpn01;
use crate::subject::{Subject, canonical_server_name};

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Manager {
    /// The certificate for a TLS handshake, from the ClientHello's SNI and ALPN: a TLS-ALPN-01
    /// validation gets its challenge certificate; otherwise the cache, storage and (with
    /// on-demand TLS) a new certificate, as the module documentation describes. Emits
    /// `tls_get_certificate` first (an error from the handler fails the handshake).
    ///
    /// Use it from a server that reads the ClientHello before starting TLS (tokio-rustls
    /// `LazyConfigAcceptor`, as [`Manager::accept`] does); the synchronous rustls resolver
    /// serves cached certificates only.
    pub async fn certificate_for_handshake(
        &self,
        server_name: Option<&str>,
        alpn: &[&[u8]],
    ) -> Result<Arc<Certificate>> {
        // One canonical form before anything else: every variant of a name (case, trailing
        // dot, Unicode, IP text) is one key for the cache, backoff, decision and storage, and
        // a name that could have no certificate reaches none of them.
        let raw = server_name.ok_or_else(|| not_found("the client sent no server name"))?;
        let name = canonical_server_name(raw)
            .map_err(|e| not_found(&format!("`{raw}` is not a server name ({})", e.message())))?;
        if tls_alpn01::is_challenge_alpn(Some(alpn.iter().copied())) {
            return self
                .tls_alpn_challenge_cert(&name, alpn)
                .await
                .ok_or_else(|| not_found(&format!("no TLS-ALPN-01 challenge for `{name}`")));
        }
        let inner = &self.inner;
        if events::wanted(inner.config.event_handler.as_ref(), "tls_get_certificate") {
            let event = Event::TlsGetCertificate {
                server_name: Some(name.clone()),
                alpn: alpn
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect(),
            };
            events::emit(
                inner.config.event_handler.as_ref(),
                inner.config.callback_deadlines.events,
                event,
            )
            .await?;
        }
        // The common case stays on the caller's task: a cached certificate that is not due.
        if let Some(cert) = inner.cache.get(&name)
            && !inner.renews_at_handshake(&cert)
        {
            return Ok(cert);
        }
        inner.usable()?;
        let inner = inner.clone();
        crate::runtime::spawn("handshake", async move { inner.cert_for_name(name).await }).await
    }

    /// Reads the ClientHello from `stream`, picks the certificate with
    /// [`Manager::certificate_for_handshake`] (so on-demand certificates are obtained without
    /// blocking a thread) and completes the TLS handshake with `config`'s other settings
    /// (ALPN, versions; its certificate resolver is not used).
    pub async fn accept<IO>(
        &self,
        stream: IO,
        config: &rustls::ServerConfig,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<IO>>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        // A client gets a bounded time for each step it drives (a slowloris holds nothing
        // for long); only finding the certificate may take as long as an obtain.
        let start = tokio::time::timeout(
            CLIENT_STEP_TIMEOUT,
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream),
        )
        .await
        .map_err(|_| timed_out("no ClientHello"))??;
        let hello = start.client_hello();
        let alpn: Vec<Vec<u8>> = hello
            .alpn()
            .map(|a| a.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        let sni = hello.server_name().map(str::to_string);
        let alpn_refs: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
        let cert = self
            .certificate_for_handshake(sni.as_deref(), &alpn_refs)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut chosen = config.clone();
        if tls_alpn01::is_challenge_alpn(Some(alpn_refs.iter().copied())) {
            chosen.alpn_protocols = vec![tls_alpn01::ACME_TLS_ALPN_PROTOCOL.to_vec()];
        }
        chosen.cert_resolver = Arc::new(Fixed(cert.certified_key().clone()));
        tokio::time::timeout(CLIENT_STEP_TIMEOUT, start.into_stream(Arc::new(chosen)))
            .await
            .map_err(|_| timed_out("the TLS handshake did not complete"))?
    }
}

/// How long a client may take to send its ClientHello, and to finish the handshake once the
/// certificate is chosen.
pub const CLIENT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} within {CLIENT_STEP_TIMEOUT:?}"),
    )
}

/// A resolver that serves one certificate (chosen before the handshake started).
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// How long a background renewal of an on-demand certificate may take (Go CertMagic's).
const BACKGROUND_RENEWAL_TIMEOUT: Duration = Duration::from_secs(300);

fn not_found(what: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no certificate: {what}"))
}

impl ManagerInner {
    /// An on-demand certificate (not renewed by maintenance) that is due.
    fn renews_at_handshake(&self, cert: &Certificate) -> bool {
        self.on_demand.is_some()
            && cert.is_managed()
            && self.needs_renewal(cert)
            && !cert.names().any(|n| lock(&self.managed).contains_key(n))
    }

    async fn cert_for_name(self: &Arc<Self>, name: String) -> Result<Arc<Certificate>> {
        if let Some(cert) = self.cache.get(&name) {
            return self.serve_cached(cert, &name).await;
        }
        // A managed name the cache evicted (capacity) comes back from storage.
        let wildcard = name.split_once('.').map(|(_, base)| format!("*.{base}"));
        let managed: Vec<String> = {
            let m = lock(&self.managed);
            [Some(name.clone()), wildcard.clone()]
                .into_iter()
                .flatten()
                .filter(|n| m.contains_key(n))
                .collect()
        };
        for key in managed {
            if let Ok(cert) = self.load_from_storage(&key).await {
                return Ok(self.cache_managed(cert).await);
            }
        }
        let Some(od) = &self.on_demand else {
            return Err(not_found(&format!("none is managed for `{name}`")));
        };
        Subject::parse(&name)?;
        od.check_backoff(&name)?;
        let timeout = od.policy.obtain_timeout();
        let cert = self
            .shared(od, name.clone(), timeout, {
                let name = name.clone();
                move |inner| async move { inner.on_demand_obtain(&name).await }
            })
            .await?;
        self.serve_cached(cert, &name).await
    }

    /// Decision, then storage (exact name, then wildcard), then a new certificate.
    async fn on_demand_obtain(self: &Arc<Self>, name: &str) -> Result<Arc<Certificate>> {
        let Some(od) = &self.on_demand else {
            return Err(not_found(name));
        };
        od.decide(name).await?;
        let wildcard = name.split_once('.').map(|(_, base)| format!("*.{base}"));
        for key in [Some(name.to_string()), wildcard].into_iter().flatten() {
            match self.load_from_storage(&key).await {
                Ok(cert) => return Ok(self.cache_managed(cert).await),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(name = %key, error = %e, "stored certificate unusable; obtaining a new one")
                }
            }
        }
        od.take_issuance()?;
        let subject = Subject::parse(name)?;
        let cert = tokio::time::timeout(
            od.policy.obtain_timeout(),
            self.issue_cert(&subject, Issue::on_demand(None)),
        )
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "on-demand certificate for `{name}` not obtained within {:?}",
                    od.policy.obtain_timeout()
                ),
            )
        })??;
        Ok(cert)
    }

    /// Serves `cert`, renewing it first if it is an on-demand certificate that has expired, or
    /// in the background if it is only due.
    async fn serve_cached(
        self: &Arc<Self>,
        cert: Arc<Certificate>,
        name: &str,
    ) -> Result<Arc<Certificate>> {
        let Some(od) = &self.on_demand else {
            return Ok(cert);
        };
        if !self.renews_at_handshake(&cert) {
            return Ok(cert);
        }
        let cert_name = cert.names().next().unwrap_or(name).to_string();
        let key = format!("renew {cert_name}");
        let current = cert.clone();
        let renew =
            move |inner: Arc<ManagerInner>| async move { inner.on_demand_renew(current).await };
        if cert.not_after() <= SystemTime::now() {
            tracing::info!(name = %cert_name, "on-demand certificate expired; renewing before the handshake");
            return self.shared(od, key, EXPIRED_RENEWAL_WAIT, renew).await;
        }
        // Due but valid: served now, renewed in the background (one renewal per name).
        let inner = self.clone();
        self.runtime.spawn(async move {
            if let Some(od) = &inner.on_demand {
                let _ = inner
                    .shared(od, key, BACKGROUND_RENEWAL_TIMEOUT, renew)
                    .await;
            }
        });
        Ok(cert)
    }

    /// Re-checks the decision (a name no longer allowed is evicted), then renews.
    async fn on_demand_renew(
        self: &Arc<Self>,
        current: Arc<Certificate>,
    ) -> Result<Arc<Certificate>> {
        let Some(od) = &self.on_demand else {
            return Ok(current);
        };
        let name = current.names().next().unwrap_or_default().to_string();
        if let Err(e) = od.decide(&name).await {
            self.cache.remove(&name);
            tracing::info!(%name, "on-demand certificate no longer allowed; evicted");
            return Err(e);
        }
        let subject = Subject::parse(&name)?;
        self.issue_cert(&subject, Issue::on_demand(Some(current)))
            .await
    }

    /// Runs `work` once per `key` at a time: callers for a key in flight wait (up to `timeout`)
    /// for the same outcome. The work runs on the library runtime, so it finishes even if the
    /// handshake that started it gives up; shutdown stops it.
    async fn shared<F, Fut>(
        self: &Arc<Self>,
        od: &OnDemandState,
        key: String,
        timeout: Duration,
        work: F,
    ) -> Result<Arc<Certificate>>
    where
        F: FnOnce(Arc<ManagerInner>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Arc<Certificate>>> + Send + 'static,
    {
        let mut rx = {
            let mut inflight = lock(&od.inflight);
            match inflight.get(&key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel::<Outcome>(None);
                    inflight.insert(key.clone(), rx.clone());
                    let inner = self.clone();
                    let cancel = self.cancel.clone();
                    self.runtime.spawn(async move {
                        let outcome = until_shutdown(cancel, work(inner.clone())).await;
                        if let Some(od) = &inner.on_demand {
                            if !key.starts_with("renew ") {
                                od.record(&key, &outcome);
                            }
                            lock(&od.inflight).remove(&key);
                        }
                        let _ = tx.send(Some(outcome));
                    });
                    rx
                }
            }
        };
        match tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await {
            Ok(Ok(outcome)) => outcome
                .clone()
                .unwrap_or_else(|| Err(Error::internal("no outcome"))),
            Ok(Err(_)) => Err(Error::internal(
                "the certificate task ended without an outcome",
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("waited {timeout:?} for a certificate for the handshake"),
            )),
        }
    }
}
