//! Accepting connections without spinning: a failed `accept` (e.g. out of file descriptors) is
//! followed by a short pause instead of an immediate retry.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

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
