//! The HTTP client under instant-acme: our trust roots, a timeout on every request (connect
//! to last byte), and a record of `Link: rel="alternate"` headers, which instant-acme does not
//! expose but preferred-chain selection needs.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls_pki_types::CertificateDer;

use crate::error::{Error, Result};
use crate::fields::ConfigField;
use crate::{crypto, net};

/// Shared between the issuer (which reads what was recorded) and instant-acme (which sends).
#[derive(Debug, Clone)]
pub(crate) struct AcmeHttp {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    /// Request URL → alternate-chain URLs announced in its response.
    alternates: Mutex<HashMap<String, Vec<String>>>,
    /// URLs whose response body is wanted as is (status, body).
    captured: Mutex<HashMap<String, Option<(StatusCode, Bytes)>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeHttp").finish_non_exhaustive()
    }
}

impl AcmeHttp {
    /// A client trusting `roots`, or the Mozilla roots when empty.
    pub fn new(roots: &[CertificateDer<'static>]) -> Result<Self> {
        let mut store = rustls::RootCertStore::empty();
        if roots.is_empty() {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        } else {
            for r in roots {
                store
                    .add(r.clone())
                    .map_err(|e| Error::config(ConfigField::TrustedRootsPem, e))?;
            }
        }
        let tls = crypto::client_config(store)?;
        let mut http = net::http_connector(Some(CONNECT_TIMEOUT));
        http.set_keepalive(Some(Duration::from_secs(120)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                alternates: Mutex::default(),
                captured: Mutex::default(),
            }),
        })
    }

    /// A boxed handle for instant-acme.
    pub fn boxed(&self) -> Box<dyn HttpClient> {
        Box::new(self.clone())
    }

    /// A plain GET (the directory, ARI): the response head and body, within the request
    /// timeout.
    pub async fn get(&self, url: &str) -> Result<(http::response::Parts, Bytes)> {
        self.send(http::Method::GET, url, None).await
    }

    /// A request outside ACME's JWS (ARI, ZeroSSL's EAB API), with an optional body of
    /// (content type, bytes). Errors name the request by `method` and the URL up to its query
    /// (which may hold an API key).
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(http::response::Parts, Bytes)> {
        let shown = url.split('?').next().unwrap_or(url);
        let fail = |e: &dyn std::fmt::Display| {
            Error::new(crate::ErrorKind::Acme, format!("{method} {shown}: {e}"))
        };
        let mut req = Request::builder().method(method.clone()).uri(url).header(
            http::header::USER_AGENT,
            concat!("certmagic-rs/", env!("CARGO_PKG_VERSION")),
        );
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header(http::header::CONTENT_TYPE, content_type);
                BodyWrapper::from(bytes)
            }
            None => BodyWrapper::default(),
        };
        let req = req.body(body).map_err(|e| fail(&e))?;
        let mut rsp = HttpClient::request(self, req).await.map_err(|e| fail(&e))?;
        let body = rsp.body.into_bytes().await.map_err(|e| fail(&e))?;
        Ok((rsp.parts, body))
    }

    /// The alternate-chain URLs the response to `url` announced (taken once).
    pub fn take_alternates(&self, url: &str) -> Vec<String> {
        lock(&self.inner.alternates).remove(url).unwrap_or_default()
    }

    /// Keep the next response body for `url`, for [`AcmeHttp::take_captured`].
    pub fn capture(&self, url: &str) {
        lock(&self.inner.captured).insert(url.to_string(), None);
    }

    /// The response captured for `url`, if any.
    pub fn take_captured(&self, url: &str) -> Option<(StatusCode, Bytes)> {
        lock(&self.inner.captured).remove(url).flatten()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let url = req.uri().to_string();
        let inner = self.inner.clone();
        let fut = inner.client.request(req);
        Box::pin(async move {
            let exchange = async {
                let rsp = fut
                    .await
                    .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
                let (parts, body) = rsp.into_parts();
                let body = net::read_body(body, net::MAX_RESPONSE_BODY)
                    .await
                    .map_err(instant_acme::Error::Other)?;
                Ok::<_, instant_acme::Error>((parts, body))
            };
            let (parts, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
                .await
                .map_err(|_| {
                    instant_acme::Error::Other(
                        format!("no complete answer from {url} within {REQUEST_TIMEOUT:?}").into(),
                    )
                })??;
            let alternates = alternate_links(&parts.headers);
            if !alternates.is_empty() {
                let mut all = lock(&inner.alternates);
                // Taken when a preferred chain is chosen; without one nobody takes them.
                if all.len() >= MAX_REMEMBERED_ALTERNATES {
                    all.clear();
                }
                all.insert(url.clone(), alternates);
            }
            if let Some(slot) = lock(&inner.captured).get_mut(&url) {
                *slot = Some((parts.status, body.clone()));
            }
            Ok(BytesResponse {
                parts,
                body: Box::new(body),
            })
        })
    }
}

/// URLs of `Link: <url>;rel="alternate"` headers.
fn alternate_links(headers: &http::HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let mut parts = link.split(';');
            let Some(target) = parts.next().map(str::trim) else {
                continue;
            };
            let Some(url) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
                continue;
            };
            let is_alternate = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("rel=")
                    .is_some_and(|r| r.trim_matches('"').split(' ').any(|r| r == "alternate"))
            });
            if is_alternate {
                out.push(url.to_string());
            }
        }
    }
    out
}

/// Certificate URLs whose alternate chains are remembered at once.
const MAX_REMEMBERED_ALTERNATES: usize = 64;
/// Whole-request timeout (Go CertMagic's `HTTPTimeout`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternate_links() {
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::LINK,
            r#"<https://ca/dir>;rel="index""#.parse().unwrap(),
        );
        h.append(
            http::header::LINK,
            r#"<https://ca/cert/1/1>;rel="alternate", <https://ca/cert/1/2>; rel=alternate"#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            alternate_links(&h),
            vec!["https://ca/cert/1/1", "https://ca/cert/1/2"]
        );
    }
}
