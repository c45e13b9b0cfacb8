//! A small HTTPS server on loopback for test doubles of remote APIs (the ARI proxy, ZeroSSL's
//! EAB API): TLS with the certificate of Pebble's API (127.0.0.1 and localhost, signed by the
//! test CA every Pebble of the process shares), HTTP/1.1, each request's body read whole; runs
//! on its own thread and runtime, stopped on drop.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A running server.
#[derive(Debug)]
pub struct HttpsServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpsServer {
    /// Serves the handler `make` returns (made on the server's runtime) on a free port.
    pub fn start<H, F>(make: impl FnOnce() -> H + Send + 'static) -> HttpsServer
    where
        H: Fn(hyper::Request<Bytes>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = hyper::Response<Full<Bytes>>> + Send + 'static,
    {
        let [port] = crate::free_ports();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let handler = make();
                let acceptor = tokio_rustls::TlsAcceptor::from(server_config());
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("server port");
                let _ = ready_tx.send(());
                loop {
                    let accepted = tokio::select! {
                        a = listener.accept() => a,
                        _ = &mut stopped => return,
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    let (acceptor, handler) = (acceptor.clone(), handler.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let handler = handler.clone();
                                async move {
                                    let (parts, body) = req.into_parts();
                                    let body = body
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    Ok::<_, Infallible>(
                                        handler(hyper::Request::from_parts(parts, body)).await,
                                    )
                                }
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        });
        ready.recv().expect("server started");
        HttpsServer {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn server_config() -> Arc<rustls::ServerConfig> {
    let (_, cert_pem, key_pem) = crate::api_certificates();
    let certs = rustls_pki_types::pem::PemObject::pem_slice_iter(cert_pem.as_bytes())
        .map(|c| c.expect("cert"))
        .collect();
    let key = rustls_pki_types::pem::PemObject::from_pem_slice(key_pem.as_bytes()).expect("key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config"),
    )
}

/// A response with `headers` and `body`.
pub fn respond(
    status: u16,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Full::new(Bytes::from(body))).expect("response")
}
