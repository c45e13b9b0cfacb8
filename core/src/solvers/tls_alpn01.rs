//! TLS-ALPN-01 (RFC 8737): a handshake offering only ALPN `acme-tls/1` gets a self-signed
//! certificate carrying the key authorization's digest, from a standalone listener or from the
//! certificate resolver of a host's own TLS server.

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::LazyConfigAcceptor;

use super::active;
use crate::certificate::Certificate;
use crate::config::ChallengeType;
use crate::crypto;
use crate::error::Result;

/// The ALPN protocol of TLS-ALPN-01 validation handshakes.
pub const ACME_TLS_ALPN_PROTOCOL: &[u8] = b"acme-tls/1";

/// True if a ClientHello's ALPN list is exactly `["acme-tls/1"]`, as a CA's validation sends.
pub fn is_challenge_alpn<'a>(alpn: Option<impl Iterator<Item = &'a [u8]>>) -> bool {
    let Some(mut protocols) = alpn else {
        return false;
    };
    protocols.next() == Some(ACME_TLS_ALPN_PROTOCOL) && protocols.next().is_none()
}

/// The challenge certificate for `server_name` from a challenge this process presented (for a
/// binding whose SNI callback cannot see ALPN; Rust servers use the handshake resolver).
#[doc(hidden)]
pub fn answer_local(server_name: &str) -> Option<Arc<Certificate>> {
    let key = server_name.trim_end_matches('.').to_ascii_lowercase();
    let candidates = active(&key, ChallengeType::TlsAlpn01);
    candidates.last().and_then(|a| a.tls_alpn_cert().ok())
}

/// The certificate (with its key) answering TLS-ALPN-01 for `identifier`.
pub(crate) fn challenge_certificate(
    identifier: &str,
    key_authorization: &str,
) -> Result<Arc<Certificate>> {
    let (der, key) = crypto::tls_alpn_certificate(identifier, key_authorization)?;
    Ok(Arc::new(Certificate::from_own_der(vec![der], key)?))
}

/// A server config that presents `cert` to a validation handshake.
pub(crate) fn challenge_server_config(cert: Arc<CertifiedKey>) -> Option<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(crypto::provider())
        .with_safe_default_protocol_versions()
        .ok()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(cert)));
    config.alpn_protocols = vec![ACME_TLS_ALPN_PROTOCOL.to_vec()];
    Some(Arc::new(config))
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Answers validation handshakes from this process's challenges until aborted.
pub(crate) async fn serve_standalone(listener: tokio::net::TcpListener) {
    loop {
        let stream = crate::net::accept(&listener).await;
        tokio::spawn(async move {
            let handshake = async {
                let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
                    .await
                    .ok()?;
                let hello = start.client_hello();
                if !is_challenge_alpn(hello.alpn()) {
                    return None;
                }
                let cert = answer_local(hello.server_name()?)?;
                let config = challenge_server_config(cert.certified_key().clone())?;
                let mut tls = start.into_stream(config).await.ok()?;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                Some(())
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), handshake).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_acme_alpn_is_a_challenge() {
        let one: Vec<&[u8]> = vec![b"acme-tls/1"];
        assert!(is_challenge_alpn(Some(one.into_iter())));
        let two: Vec<&[u8]> = vec![b"h2", b"acme-tls/1"];
        assert!(!is_challenge_alpn(Some(two.into_iter())));
        assert!(!is_challenge_alpn(None::<std::vec::IntoIter<&[u8]>>));
    }
}
