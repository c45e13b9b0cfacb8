//! What `index.js`'s servers need beyond the engine: the ClientHello peek of its TLS-ALPN-01
//! path and the HTTP→HTTPS redirect.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::errors::check;

/// A ClientHello's server name and ALPN protocols.
#[napi(object)]
#[derive(Debug)]
pub struct ClientHello {
    pub server_name: Option<String>,
    pub protocols: Vec<String>,
}

/// Parses the ClientHello at the start of `data`; null while more bytes are needed.
#[napi(catch_unwind)]
pub fn peek_client_hello(data: Buffer) -> napi::Result<Option<ClientHello>> {
    match check(certmagic::peek_client_hello(&data))? {
        certmagic::ClientHelloPeek::Incomplete => Ok(None),
        certmagic::ClientHelloPeek::Hello { server_name, alpn } => Ok(Some(ClientHello {
            server_name,
            protocols: alpn
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect(),
        })),
    }
}

/// Where a plain-HTTP request is redirected (null without a usable `Host`).
#[napi(catch_unwind)]
pub fn https_redirect_location(
    host: String,
    https_port: u32,
    path_and_query: String,
) -> Option<String> {
    certmagic::https_redirect_location(
        &host,
        u16::try_from(https_port).unwrap_or(443),
        &path_and_query,
    )
}
