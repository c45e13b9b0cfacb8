//! TCP plumbing: accepting connections without spinning (a failed `accept`, e.g. out of file
//! descriptors, is followed by a short pause instead of an immediate retry), and the connector
//! every outgoing HTTP client here uses.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::{TcpListener, TcpStream};

/// The TCP side of every outgoing HTTP client: `http` and `https` URLs, no Nagle (a request's
/// body, written after its headers, must not wait for the peer's delayed ACK: 40 ms on Linux),
/// and `connect_timeout` if given.
pub(crate) fn http_connector(connect_timeout: Option<Duration>) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(connect_timeout);
    http
}

/// A client of plain `http` and `https` URLs (Mozilla roots) for the endpoints a user names
/// (ask endpoints, OCSP responders).
pub(crate) type WebClient<B> = Client<hyper_rustls::HttpsConnector<HttpConnector>, B>;

/// A [`WebClient`] keeping at most `idle_per_host` connections open between requests (for
/// [`IDLE_TIMEOUT`]). A pool belongs to the runtime that drives its connections and to one
/// process: a client shared by every runtime and kept across fork() must keep none.
pub(crate) fn web_client<B>(idle_per_host: usize) -> std::result::Result<WebClient<B>, String>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = crate::crypto::client_config(roots).map_err(|e| e.to_string())?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http_connector(None));
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle_per_host)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(connector))
}

/// How long a [`WebClient`] keeps an unused connection open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The next accepted connection.
pub(crate) async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Reads a response body of at most `limit` bytes: a peer (a CA, an API, an ask endpoint) that
/// sends more is cut off with an error instead of filling memory.
pub(crate) async fn read_body<B>(
    body: B,
    limit: usize,
) -> std::result::Result<bytes::Bytes, Box<dyn std::error::Error + Send + Sync>>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    Ok(http_body_util::Limited::new(body, limit)
        .collect()
        .await?
        .to_bytes())
}

/// Resolves `host:port` within [`LOOKUP_TIMEOUT`] (the system resolver has no deadline of its
/// own we control).
pub(crate) async fn lookup_host(
    host: &str,
    port: u16,
) -> std::io::Result<Vec<std::net::SocketAddr>> {
    match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(found) => Ok(found?.collect()),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("resolving `{host}` took longer than {LOOKUP_TIMEOUT:?}"),
        )),
    }
}

/// The most bytes read from any HTTP response body (ACME, DNS provider APIs): the largest
/// legitimate ones are certificate chains of a few kilobytes.
pub(crate) const MAX_RESPONSE_BODY: usize = 1 << 20;
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
