//! HTTP-01 (RFC 8555 §8.3): answering `GET /.well-known/acme-challenge/<token>`, in a standalone
//! listener or inside a host's own server.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

use super::active;
use crate::config::ChallengeType;
use crate::subject::host_only;

/// The path prefix of HTTP-01 requests.
pub const CHALLENGE_PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// The token of an HTTP-01 request path, if it is one.
pub fn token_of(path: &str) -> Option<&str> {
    let token = path.strip_prefix(CHALLENGE_PATH_PREFIX)?;
    let token = token.split(['?', '#']).next().unwrap_or("");
    let valid = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(token)
}

/// True if a request looks like an HTTP-01 validation (so a server can route it to the solver
/// before its own handlers).
pub fn looks_like_challenge(method: &Method, path: &str) -> bool {
    method == Method::GET && path.starts_with(CHALLENGE_PATH_PREFIX)
}

/// The answer to an HTTP-01 request from a challenge this process presented: the key
/// authorization, if `host` and `path` match one. The host must equal the identifier (port and
/// brackets ignored), so another name cannot read a token (DNS rebinding guard).
pub fn answer_local(host: &str, path: &str) -> Option<String> {
    let token = token_of(path)?;
    let host = host_only(host);
    active(&host, ChallengeType::Http01)
        .into_iter()
        .rev()
        .find(|a| a.info.token == token)
        .map(|a| a.info.key_authorization.clone())
}

/// The HTTP response for an answer: `200 text/plain` with the key authorization, connection closed.
pub fn answer_response(key_authorization: String) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from(key_authorization)));
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    rsp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    rsp
}

fn not_found() -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from_static(
        b"not an active ACME challenge\n",
    )));
    *rsp.status_mut() = StatusCode::NOT_FOUND;
    rsp
}

/// The host of a request: the `Host` header, else the URI authority (HTTP/2).
pub fn request_host<B>(req: &Request<B>) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// Serves HTTP-01 answers from this process's challenges until aborted.
pub(crate) async fn serve_standalone(listener: tokio::net::TcpListener) {
    loop {
        let stream = crate::net::accept(&listener).await;
        tokio::spawn(async move {
            let service = service_fn(|req: Request<Incoming>| async move {
                let path = req.uri().path().to_string();
                let answer = (req.method() == Method::GET)
                    .then(|| answer_local(&request_host(&req), &path))
                    .flatten();
                Ok::<_, Infallible>(answer.map_or_else(not_found, answer_response))
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), conn).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_paths() {
        assert_eq!(
            token_of("/.well-known/acme-challenge/abc-_DEF"),
            Some("abc-_DEF")
        );
        assert_eq!(token_of("/.well-known/acme-challenge/"), None);
        assert_eq!(token_of("/.well-known/acme-challenge/../x"), None);
        assert_eq!(token_of("/other"), None);
        assert!(looks_like_challenge(
            &Method::GET,
            "/.well-known/acme-challenge/x"
        ));
        assert!(!looks_like_challenge(
            &Method::POST,
            "/.well-known/acme-challenge/x"
        ));
    }
}
