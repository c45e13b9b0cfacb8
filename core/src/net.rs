//! TCP plumbing: accepting connections without spinning (a failed `accept`, e.g. out of file
//! descriptors, is followed by a short pause instead of an immediate retry), and the connector
//! every outgoing HTTP client here uses.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
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

const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
