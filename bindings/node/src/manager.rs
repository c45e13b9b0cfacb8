//! `Engine`, the manager behind `CertMagic` in `index.js`.

use std::sync::Arc;

use certmagic::{DnsProvider, Manager, RevocationReason, Storage};
use napi::bindgen_prelude::{Function, Promise};
use napi_derive::napi;

use crate::certificate::{CertificateData, hex};
use crate::config::{EngineOptions, config};
use crate::dns::{DnsReply, DnsRequest, JsDnsProvider};
use crate::errors::check;
use crate::events::{DecisionReply, JsDecision, JsEvents};
use crate::storage::{JsStorage, StorageReply, StorageRequest};
use crate::weak;

/// The engine behind `CertMagic`.
#[napi]
#[derive(Debug)]
pub struct Engine {
    inner: Manager,
}

#[napi]
impl Engine {
    /// `storage(request) → Promise<reply>`, `events(name, payloadJson)` and
    /// `dns(request) → Promise<reply>` are optional.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        options: EngineOptions,
        storage: Option<Function<'_, StorageRequest, Promise<StorageReply>>>,
        events: Option<Function<'_, (String, String), ()>>,
        dns: Option<Function<'_, DnsRequest, Promise<DnsReply>>>,
        decision: Option<Function<'_, String, Promise<DecisionReply>>>,
    ) -> napi::Result<Self> {
        let storage: Option<Arc<dyn Storage>> = match storage {
            Some(f) => Some(Arc::new(JsStorage {
                dispatch: Arc::new(weak(&f)?),
            })),
            None => None,
        };
        let events = match events {
            Some(f) => Some(JsEvents { emit: weak(&f)? }),
            None => None,
        };
        let dns: Option<Arc<dyn DnsProvider>> = match dns {
            Some(f) => Some(Arc::new(JsDnsProvider {
                dispatch: Arc::new(weak(&f)?),
            })),
            None => None,
        };
        let decision = match decision {
            Some(f) => Some(JsDecision {
                dispatch: weak(&f)?,
            }),
            None => None,
        };
        let config = check(config(options, storage, events, dns, decision))?;
        Ok(Self {
            inner: check(Manager::new(config))?,
        })
    }

    #[napi(catch_unwind)]
    pub async fn manage(&self, names: Vec<String>) -> napi::Result<()> {
        check(self.inner.manage(&names).await)
    }

    #[napi(catch_unwind)]
    pub fn manage_background(&self, names: Vec<String>) -> napi::Result<()> {
        check(self.inner.manage_background(&names))
    }

    #[napi(catch_unwind)]
    pub async fn obtain(&self, name: String) -> napi::Result<CertificateData> {
        check(self.inner.obtain(&name).await).map(|c| CertificateData::from(&*c))
    }

    #[napi(catch_unwind)]
    pub async fn renew(&self, name: String) -> napi::Result<CertificateData> {
        check(self.inner.renew(&name).await).map(|c| CertificateData::from(&*c))
    }

    /// `reason`: a name (`keyCompromise`) or an RFC 5280 code, as text.
    #[napi(catch_unwind)]
    pub async fn revoke(&self, name: String, reason: Option<String>) -> napi::Result<()> {
        let reason = match reason {
            None => RevocationReason::Unspecified,
            Some(r) => check(r.parse::<RevocationReason>())?,
        };
        check(self.inner.revoke(&name, reason).await)
    }

    /// The certificate for a TLS server name (exact, then wildcard). Memory only.
    #[napi(catch_unwind)]
    pub fn get_certificate(&self, server_name: String) -> Option<CertificateData> {
        self.inner
            .get_certificate(&server_name)
            .map(|c| CertificateData::from(&*c))
    }

    /// The OCSP response to staple for the cached certificate whose leaf is `leaf_der` (what
    /// Node's `OCSPRequest` event gives), if a good one is known. Memory only.
    #[napi(catch_unwind)]
    pub fn ocsp_staple_for(
        &self,
        leaf_der: napi::bindgen_prelude::Buffer,
    ) -> Option<napi::bindgen_prelude::Buffer> {
        let cert = self.inner.certificate_for_leaf(&leaf_der)?;
        cert.ocsp_staple()
            .map(|o| napi::bindgen_prelude::Buffer::from(o.to_vec()))
    }

    /// The hash of the certificate for a server name: cheap, for caching contexts per certificate.
    #[napi(catch_unwind)]
    pub fn certificate_hash(&self, server_name: String) -> Option<String> {
        self.inner
            .get_certificate(&server_name)
            .map(|c| hex(c.hash()))
    }

    #[napi(catch_unwind)]
    pub fn add_certificate(
        &self,
        cert_pem: String,
        key_pem: String,
    ) -> napi::Result<CertificateData> {
        check(
            self.inner
                .add_certificate(cert_pem.as_bytes(), key_pem.as_bytes()),
        )
        .map(|c| CertificateData::from(&*c))
    }

    #[napi(catch_unwind)]
    pub async fn http_challenge_answer(&self, host: String, path: String) -> Option<String> {
        self.inner.handle_http_challenge(&host, &path).await
    }

    /// The certificate for a handshake: cached, from storage, or (on-demand TLS) obtained.
    #[napi(catch_unwind)]
    pub async fn certificate_for_handshake(
        &self,
        server_name: Option<String>,
        alpn: Vec<String>,
    ) -> napi::Result<CertificateData> {
        let refs: Vec<&[u8]> = alpn.iter().map(|p| p.as_bytes()).collect();
        let cert = check(
            self.inner
                .certificate_for_handshake(server_name.as_deref(), &refs)
                .await,
        )?;
        Ok(CertificateData::from(cert.as_ref()))
    }

    /// The challenge certificate for a validation handshake (ALPN exactly `acme-tls/1`), from this
    /// process or the shared storage.
    #[napi(catch_unwind)]
    pub async fn tls_alpn_challenge_certificate(
        &self,
        server_name: String,
        alpn: Vec<String>,
    ) -> Option<CertificateData> {
        let refs: Vec<&[u8]> = alpn.iter().map(|p| p.as_bytes()).collect();
        self.inner
            .tls_alpn_challenge_cert(&server_name, &refs)
            .await
            .map(|c| CertificateData::from(&*c))
    }

    /// The challenge certificate for `server_name` if this process has a TLS-ALPN-01 challenge
    /// in flight for it (memory only, for SNI callbacks that cannot see ALPN).
    #[napi(catch_unwind)]
    pub fn tls_alpn_challenge_certificate_local(
        &self,
        server_name: String,
    ) -> Option<CertificateData> {
        certmagic::solvers::tls_alpn01::answer_local(&server_name)
            .map(|c| CertificateData::from(&*c))
    }

    #[napi(catch_unwind)]
    pub async fn close(&self) -> napi::Result<()> {
        check(self.inner.shutdown().await)
    }

    /// The waits (milliseconds) between attempts of failed background work; the last repeats.
    #[napi(getter, catch_unwind)]
    pub fn retry_intervals(&self) -> Vec<f64> {
        self.inner
            .config()
            .retry_schedule()
            .intervals()
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect()
    }

    /// How long (milliseconds) failed background work is retried in all.
    #[napi(getter, catch_unwind)]
    pub fn retry_max_total(&self) -> f64 {
        self.inner
            .config()
            .retry_schedule()
            .max_total()
            .as_secs_f64()
            * 1000.0
    }

    #[napi(getter, catch_unwind)]
    pub fn issuer_key(&self) -> String {
        self.inner.issuer_key().to_string()
    }

    /// Every issuer's key, in configured order.
    #[napi(getter, catch_unwind)]
    pub fn issuer_keys(&self) -> Vec<String> {
        self.inner.issuer_keys().map(str::to_string).collect()
    }

    /// The local CA's root certificate (PEM); creates the CA in storage if it has none.
    #[napi(catch_unwind)]
    pub async fn local_root_pem(&self) -> napi::Result<String> {
        check(self.inner.local_root_pem().await)
    }
}
