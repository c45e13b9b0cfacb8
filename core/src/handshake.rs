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
    let mut config = ServerConfig::builder_with_provider(crypto::server_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS server config: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.ignore_client_order = true;
    // One session ticket, as Go sends: rustls's default of two costs every full handshake
    // another ticket's encryption and record, and a client resumes with one.
    config.send_tls13_tickets = 1;
    config.alpn_protocols = vec![
        b"h2".to_vec(),
        b"http/1.1".to_vec(),
        tls_alpn01::ACME_TLS_ALPN_PROTOCOL.to_vec(),
    ];
    Ok(Arc::new(config))
}

/// What the first bytes a client sent on a TLS connection say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHelloPeek {
    /// Not all of the ClientHello has arrived yet.
    Incomplete,
    /// A complete ClientHello.
    Hello {
        /// The SNI, if sent.
        server_name: Option<String>,
        /// The ALPN protocols offered, in order.
        alpn: Vec<Vec<u8>>,
    },
}

/// Parses the ClientHello at the start of `data` (bytes peeked from a connection before any TLS
/// library sees them), so a server can pick the certificate (or answer a TLS-ALPN-01
/// validation) before starting TLS. Bytes that are not a TLS ClientHello give
/// [`ErrorKind::Corrupt`](crate::ErrorKind::Corrupt).
pub fn peek_client_hello(data: &[u8]) -> Result<ClientHelloPeek> {
    let not_tls = |e: String| {
        Error::new(
            crate::ErrorKind::Corrupt,
            format!("not a TLS ClientHello: {e}"),
        )
    };
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rest = data;
    while !rest.is_empty() {
        match acceptor.read_tls(&mut rest) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(not_tls(e.to_string())),
        }
    }
    match acceptor.accept() {
        Ok(None) => Ok(ClientHelloPeek::Incomplete),
        Ok(Some(accepted)) => {
            let hello = accepted.client_hello();
            Ok(ClientHelloPeek::Hello {
                server_name: hello.server_name().map(str::to_string),
                alpn: hello
                    .alpn()
                    .map(|a| a.map(<[u8]>::to_vec).collect())
                    .unwrap_or_default(),
            })
        }
        Err((e, _alert)) => Err(not_tls(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first flight of a real rustls client.
    fn client_hello(sni: &str, alpn: &[&[u8]]) -> Vec<u8> {
        let mut config = crypto::client_config(rustls::RootCertStore::empty()).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn peeks_sni_and_alpn_and_waits_for_the_rest() {
        let hello = client_hello("a.example.test", &[b"acme-tls/1"]);
        assert_eq!(
            peek_client_hello(&hello).unwrap(),
            ClientHelloPeek::Hello {
                server_name: Some("a.example.test".into()),
                alpn: vec![b"acme-tls/1".to_vec()]
            }
        );
        assert_eq!(
            peek_client_hello(&hello[..hello.len() / 2]).unwrap(),
            ClientHelloPeek::Incomplete
        );
        assert_eq!(peek_client_hello(&[]).unwrap(), ClientHelloPeek::Incomplete);
        let err = peek_client_hello(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
    }
}
