//! The HTTP client shared by the API providers: Mozilla roots, a timeout per request, retries
//! of rate-limit answers (honouring `Retry-After` or the vendor's reset header) and of server
//! errors, and errors that name the provider and quote the vendor's message (never a header,
//! so never a credential).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{Error, ErrorKind, Result};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Rate-limited or failing requests are tried this many times in all.
const ATTEMPTS: u32 = 5;
/// The longest wait for a rate limit to clear before giving up on that request.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// An answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<serde_json::Value> {
        if self.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Challenge,
                format!("unreadable JSON from the DNS API ({}): {e}", self.status),
            )
        })
    }

    pub fn text(&self) -> String {
        let t = String::from_utf8_lossy(&self.body);
        let t = t.trim();
        match t.char_indices().nth(400) {
            Some((cut, _)) => format!("{}…", &t[..cut]),
            None => t.to_string(),
        }
    }
}

/// A client for one provider's API.
#[derive(Clone)]
pub(crate) struct Api {
    provider: &'static str,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Whether an answer means "slow down" (HTTP 429 unless the vendor says otherwise).
    throttled: fn(&Reply) -> bool,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(provider: &'static str) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = crate::crypto::client_config(roots)?;
        // Plain http only for a base URL the user set (a local API, or a test double).
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(crate::net::http_connector(Some(Duration::from_secs(10))));
        Ok(Self {
            provider,
            client: Client::builder(TokioExecutor::new()).build(connector),
            throttled: |r| r.status == StatusCode::TOO_MANY_REQUESTS,
        })
    }

    #[cfg_attr(not(feature = "dns-route53"), allow(dead_code))]
    pub fn with_throttle_test(mut self, throttled: fn(&Reply) -> bool) -> Self {
        self.throttled = throttled;
        self
    }

    pub fn error(&self, kind: ErrorKind, message: impl std::fmt::Display) -> Error {
        Error::new(kind, format!("{}: {message}", self.provider))
    }

    /// Sends a request, retrying rate limits and server errors; any other answer is returned
    /// as is, except 401/403, which become an error saying the credentials were refused.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let payload = match &body {
                Some((content_type, b)) => {
                    req = req.header("content-type", *content_type);
                    Bytes::from(b.clone())
                }
                None => Bytes::new(),
            };
            let req = req.body(Full::new(payload)).map_err(|e| {
                self.error(
                    ErrorKind::InvalidConfig,
                    format!("bad request URL `{url}`: {e}"),
                )
            })?;
            let sent = tokio::time::timeout(REQUEST_TIMEOUT, async {
                let resp = self.client.request(req).await?;
                let (parts, body) = resp.into_parts();
                let body = crate::net::read_body(body, crate::net::MAX_RESPONSE_BODY).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Reply {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                })
            })
            .await;
            let reply = match sent {
                Ok(Ok(r)) => r,
                Ok(Err(e)) if attempt < 3 => {
                    tracing::debug!(provider = self.provider, error = %e, "DNS API request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                    continue;
                }
                Ok(Err(e)) => {
                    return Err(self.error(
                        ErrorKind::Challenge,
                        format!("{method} {}: {e}", strip_query(url)),
                    ));
                }
                Err(_) => {
                    return Err(self.error(
                        ErrorKind::Timeout,
                        format!(
                            "{method} {} took longer than {REQUEST_TIMEOUT:?}",
                            strip_query(url)
                        ),
                    ));
                }
            };
            if (self.throttled)(&reply) {
                let wait =
                    retry_after(&reply.headers).unwrap_or(Duration::from_secs(1 << attempt.min(5)));
                if attempt >= ATTEMPTS || wait > MAX_RATE_LIMIT_WAIT {
                    return Err(self.error(
                        ErrorKind::Challenge,
                        format!(
                            "rate limited ({}; retry after {wait:?}): {}",
                            reply.status,
                            reply.text()
                        ),
                    ));
                }
                tracing::info!(
                    provider = self.provider,
                    ?wait,
                    "DNS API rate limit; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if reply.status.is_server_error() && attempt < 3 {
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                continue;
            }
            if reply.status == StatusCode::UNAUTHORIZED || reply.status == StatusCode::FORBIDDEN {
                return Err(self.error(
                    ErrorKind::InvalidConfig,
                    format!(
                        "the API refused the credentials ({}): {}",
                        reply.status,
                        reply.text()
                    ),
                ));
            }
            return Ok(reply);
        }
    }

    /// [`Api::send`] with a JSON body; an answer outside 2xx is an error quoting the vendor.
    pub async fn json(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let reply = self.send(method.clone(), url, headers, body).await?;
        if !reply.status.is_success() {
            return Err(self.failed(&method, url, &reply));
        }
        reply.json()
    }

    /// `DELETE url`: true when deleted, false when it was already gone (404).
    #[cfg_attr(
        not(any(feature = "dns-digitalocean", feature = "dns-hetzner")),
        allow(dead_code)
    )]
    pub async fn delete(&self, url: &str, headers: &[(&str, String)]) -> Result<bool> {
        let reply = self.send(Method::DELETE, url, headers, None).await?;
        match reply.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failed(&Method::DELETE, url, &reply)),
        }
    }

    pub fn failed(&self, method: &Method, url: &str, reply: &Reply) -> Error {
        self.error(
            ErrorKind::Challenge,
            format!(
                "{method} {} answered {}: {}",
                strip_query(url),
                reply.status,
                reply.text()
            ),
        )
    }
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// `Retry-After` (seconds or an HTTP date) or the `RateLimit-Reset`/`X-RateLimit-Reset`
/// headers some vendors send (seconds from now, or a Unix time).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(t) =
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
        {
            let d = t - time::OffsetDateTime::now_utc();
            return Some(Duration::try_from(d).unwrap_or_default());
        }
    }
    for n in ["ratelimit-reset", "x-ratelimit-reset"] {
        if let Some(v) = get(n).and_then(|v| v.parse::<u64>().ok()) {
            // A Unix time (anything past 2001) or seconds from now; a Unix time already
            // reached (this second, or clock skew) means no wait, not `v` seconds.
            let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
            let secs = if v >= 1_000_000_000 {
                v.saturating_sub(now)
            } else {
                v
            };
            return Some(Duration::from_secs(secs));
        }
    }
    None
}

/// Percent-encodes a URL path segment or query value (RFC 3986 unreserved kept).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        let soon = time::OffsetDateTime::now_utc().unix_timestamp() + 5;
        h.insert("ratelimit-reset", soon.to_string().parse().unwrap());
        assert!(retry_after(&h).unwrap() <= Duration::from_secs(5));
        let mut h = HeaderMap::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        h.insert("ratelimit-reset", now.to_string().parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }

    #[test]
    fn encodes_like_rfc3986() {
        assert_eq!(
            encode("_acme-challenge.example.com."),
            "_acme-challenge.example.com."
        );
        assert_eq!(encode("a b/c=d"), "a%20b%2Fc%3Dd");
    }
}
