//! The one-liners: serve a hyper (or, through `hyper_util::service::TowerToHyperService`, an axum
//! or tower) service over HTTPS for some names, with HTTP→HTTPS redirects and HTTP-01 answered on
//! the plain port, and TLS-ALPN-01 answered on the TLS port.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::handshake_path::CLIENT_STEP_TIMEOUT;
use crate::manager::Manager;
use crate::solvers::{http01, tls_alpn01};

/// Ports and behaviour of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Plain HTTP port: HTTP-01 answers and redirects (default 80).
    pub http_port: u16,
    /// HTTPS port (default 443).
    pub https_port: u16,
    /// Address to listen on (default `::`, all interfaces, IPv4 included where the system allows).
    pub listen: IpAddr,
    /// Redirect plain HTTP requests to HTTPS (default true); otherwise answer 404.
    pub redirect_http: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            http_port: 80,
            https_port: 443,
            listen: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            redirect_http: true,
        }
    }
}

/// Serves `service` over HTTPS for `names` until `manager` is shut down: binds both ports, then
/// obtains (or loads) the certificates, then serves. Returns an error if a port cannot be bound
/// or a certificate cannot be had.
pub async fn serve<S, B>(
    manager: &Manager,
    names: &[&str],
    service: S,
    options: ServeOptions,
) -> Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let http = bind(options.listen, options.http_port).await?;
    let https = bind(options.listen, options.https_port).await?;
    let http_task = tokio::spawn(serve_http(manager.clone(), http, options.clone()));
    let https_task = tokio::spawn(serve_https(manager.clone(), https, service));
    let result = async {
        manager.manage(names).await?;
        tracing::info!(names = ?names, https_port = options.https_port, "serving HTTPS");
        manager.shut_down().await;
        Ok(())
    }
    .await;
    http_task.abort();
    https_task.abort();
    result
}

/// Automatic HTTPS with defaults: Let's Encrypt (terms agreed), storage in the default folder,
/// ports 80 and 443. Runs until the process ends.
pub async fn https<S, B>(names: &[&str], service: S) -> Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let manager = Manager::new(Config::builder().agreed(true).build()?)?;
    serve(&manager, names, service, ServeOptions::default()).await
}

async fn bind(ip: IpAddr, port: u16) -> Result<TcpListener> {
    let listen = |ip| async move {
        TcpListener::bind(SocketAddr::new(ip, port))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot listen on {ip}:{port}: {e}"),
                )
                .with_source(e)
            })
    };
    match listen(ip).await {
        // No IPv6 on this machine: fall back to IPv4's "all interfaces".
        Err(_) if ip == IpAddr::V6(Ipv6Addr::UNSPECIFIED) => {
            listen(IpAddr::from([0, 0, 0, 0])).await
        }
        other => other,
    }
}

async fn serve_http(manager: Manager, listener: TcpListener, options: ServeOptions) {
    loop {
        let stream = crate::net::accept(&listener).await;
        let (manager, options) = (manager.clone(), options.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let (manager, options) = (manager.clone(), options.clone());
                async move { Ok::<_, Infallible>(plain_http_response(&manager, &options, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(PLAIN_HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(PLAIN_CONNECTION_TIMEOUT, conn).await;
        });
    }
}

async fn plain_http_response(
    manager: &Manager,
    options: &ServeOptions,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if let Some(rsp) = manager.http_challenge_response(&req).await {
        return rsp;
    }
    let host = http01::request_host(&req);
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = options
        .redirect_http
        .then(|| crate::https_redirect_location(&host, options.https_port, target))
        .flatten();
    let Some(location) = location else {
        let mut rsp = Response::new(Full::new(Bytes::from_static(b"use HTTPS\n")));
        *rsp.status_mut() = StatusCode::NOT_FOUND;
        return rsp;
    };
    let mut rsp = Response::new(Full::new(Bytes::new()));
    *rsp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        rsp.headers_mut().insert(header::LOCATION, v);
    }
    rsp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    rsp
}

async fn serve_https<S, B>(manager: Manager, listener: TcpListener, service: S)
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let config = match manager.server_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the TLS config; HTTPS is not served");
            return;
        }
    };
    loop {
        let stream = crate::net::accept(&listener).await;
        let (manager, config, service) = (manager.clone(), config.clone(), service.clone());
        tokio::spawn(async move {
            // `accept` bounds each step the client drives; this bounds the whole, longer with
            // on-demand TLS (a certificate may be obtained during the handshake).
            let lookup = match manager.config().on_demand() {
                Some(od) => od.obtain_timeout(),
                None => CLIENT_STEP_TIMEOUT,
            };
            let limit = lookup + 2 * CLIENT_STEP_TIMEOUT;
            let accepted = tokio::time::timeout(limit, manager.accept(stream, &config)).await;
            let Ok(Ok(tls)) = accepted else { return };
            if tls.get_ref().1.alpn_protocol() == Some(tls_alpn01::ACME_TLS_ALPN_PROTOCOL) {
                return;
            }
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}

const PLAIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const PLAIN_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
