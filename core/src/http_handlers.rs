//! Entry points for a host's own servers: answer HTTP-01 requests and TLS-ALPN-01 handshakes for
//! challenges presented by this process or by any instance sharing the storage.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use rustls::sign::CertifiedKey;

use crate::certificate::Certificate;
use crate::config::ChallengeType;
use crate::manager::Manager;
use crate::solvers::{distributed, http01, tls_alpn01};
use crate::subject::{canonical_server_name, host_only};

impl Manager {
    /// The body answering an HTTP-01 validation request for `host` (the `Host` header) and `path`,
    /// or `None` if the request is not for an active challenge. Looks at this process's
    /// challenges first, then at storage.
    pub async fn handle_http_challenge(&self, host: &str, path: &str) -> Option<String> {
        if let Some(answer) = http01::answer_local(host, path) {
            return Some(answer);
        }
        let token = http01::token_of(path)?.to_string();
        let host = canonical_server_name(&host_only(host)).ok()?;
        let storage = self.storage().clone();
        let issuer_keys: Vec<String> = self.issuer_keys().map(str::to_string).collect();
        let key = host.clone();
        let info = crate::runtime::spawn("http challenge", async move {
            Ok(
                distributed::load(storage.as_ref(), &issuer_keys, &key, ChallengeType::Http01)
                    .await,
            )
        })
        .await
        .ok()??;
        // The request must be for the challenge's own identifier (storage keys are sanitised,
        // so another host could map to the same key): no token is read for another name.
        let for_host = canonical_server_name(&info.identifier.value).is_ok_and(|id| id == host);
        (for_host && info.token == token).then_some(info.key_authorization)
    }

    /// The HTTP response for `req` if it is an HTTP-01 validation of an active challenge
    /// (`200 text/plain`), else `None` (hand the request to your application).
    pub async fn http_challenge_response<B>(
        &self,
        req: &Request<B>,
    ) -> Option<Response<Full<Bytes>>> {
        if !http01::looks_like_challenge(req.method(), req.uri().path()) {
            return None;
        }
        let answer = self
            .handle_http_challenge(&http01::request_host(req), req.uri().path())
            .await?;
        Some(http01::answer_response(answer))
    }

    /// The certificate (with its key) answering a TLS-ALPN-01 validation handshake for
    /// `server_name`, given the ClientHello's ALPN list; `None` unless the ALPN list is exactly
    /// `["acme-tls/1"]` and a challenge for that name is active here or in storage.
    pub async fn tls_alpn_challenge_cert(
        &self,
        server_name: &str,
        alpn: &[&[u8]],
    ) -> Option<Arc<Certificate>> {
        if !tls_alpn01::is_challenge_alpn(Some(alpn.iter().copied())) {
            return None;
        }
        let key = canonical_server_name(server_name).ok()?;
        if let Some(cert) = tls_alpn01::answer_local(&key) {
            return Some(cert);
        }
        let storage = self.storage().clone();
        let issuer_keys: Vec<String> = self.issuer_keys().map(str::to_string).collect();
        crate::runtime::spawn("tls-alpn challenge", async move {
            let info = distributed::load(
                storage.as_ref(),
                &issuer_keys,
                &key,
                ChallengeType::TlsAlpn01,
            )
            .await;
            Ok(info.and_then(|i| {
                tls_alpn01::challenge_certificate(&i.identifier.value, &i.key_authorization).ok()
            }))
        })
        .await
        .ok()?
    }

    /// The certificate for a handshake, resolved asynchronously from the ClientHello's SNI and
    /// ALPN (see [`Manager::certificate_for_handshake`], which says why when there is none).
    pub async fn resolve(
        &self,
        server_name: Option<&str>,
        alpn: &[&[u8]],
    ) -> Option<Arc<CertifiedKey>> {
        self.certificate_for_handshake(server_name, alpn)
            .await
            .ok()
            .map(|c| c.certified_key().clone())
    }
}

/// Where a plain-HTTP request for `host` (its `Host` header) and `path_and_query` is redirected:
/// `https://host[:https_port]/path?query` (port left out when 443). `None` without a usable host.
pub fn https_redirect_location(
    host: &str,
    https_port: u16,
    path_and_query: &str,
) -> Option<String> {
    let bare = host_only(host);
    if bare.is_empty()
        || bare
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '@')
    {
        return None;
    }
    let authority = match (bare.contains(':'), https_port) {
        (true, 443) => format!("[{bare}]"),
        (true, p) => format!("[{bare}]:{p}"),
        (false, 443) => bare,
        (false, p) => format!("{bare}:{p}"),
    };
    let target = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    Some(format!("https://{authority}{target}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations() {
        assert_eq!(
            https_redirect_location("a.test:8080", 443, "/x?y=1").as_deref(),
            Some("https://a.test/x?y=1")
        );
        assert_eq!(
            https_redirect_location("a.test", 8443, "/").as_deref(),
            Some("https://a.test:8443/")
        );
        assert_eq!(
            https_redirect_location("[::1]:80", 443, "/p").as_deref(),
            Some("https://[::1]/p")
        );
        assert_eq!(https_redirect_location("", 443, "/"), None);
        assert_eq!(https_redirect_location("evil.test/x", 443, "/"), None);
        assert_eq!(
            https_redirect_location("a.test", 443, "*").as_deref(),
            Some("https://a.test/")
        );
    }
}
