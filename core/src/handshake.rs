//! Serving certificates to TLS handshakes: a rustls [`ResolvesServerCert`] over the cache that also
//! answers TLS-ALPN-01 validations, and a ready [`ServerConfig`].
//!
//! The resolver is synchronous and does no I/O: it sees the cache and this process's challenges.
//! Servers that read the ClientHello first (tokio-rustls `LazyConfigAcceptor`, as [`serve`] does)
//! can use [`Manager::resolve`](crate::Manager::resolve), which also answers challenges
//! presented by other instances sharing the storage.
//!
//! [`serve`]: crate::serve

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::cache::Cache;
use crate::crypto;
use crate::error::{Error, Result};
use crate::solvers::tls_alpn01;

/// Picks the certificate for a handshake by SNI (exact name, then single-label wildcard).
#[derive(Debug, Clone)]
pub struct CertResolver {
    cache: Arc<Cache>,
    default_server_name: Option<String>,
}

impl CertResolver {
    pub(crate) fn new(cache: Arc<Cache>) -> Self {
        Self {
            cache,
            default_server_name: None,
        }
    }

    /// The name whose certificate is served when a client sends no SNI (e.g. connects by IP).
    pub fn with_default_server_name(mut self, name: impl Into<String>) -> Self {
        self.default_server_name = Some(name.into().to_ascii_lowercase());
        self
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if tls_alpn01::is_challenge_alpn(hello.alpn()) {
            return tls_alpn01::answer_local(hello.server_name()?)
                .map(|c| c.certified_key().clone());
        }
        let name = hello
            .server_name()
            .or(self.default_server_name.as_deref())?;
        self.cache.get(name).map(|c| c.certified_key().clone())
    }
}

/// A rustls server config serving `resolver`'s certificates, with ALPN `h2`, `http/1.1` and
/// `acme-tls/1` (so TLS-ALPN-01 validations reach the resolver).
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(crypto::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS server config: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![
        b"h2".to_vec(),
        b"http/1.1".to_vec(),
        tls_alpn01::ACME_TLS_ALPN_PROTOCOL.to_vec(),
    ];
    Ok(Arc::new(config))
}
