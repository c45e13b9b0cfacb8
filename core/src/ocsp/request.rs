//! Asking a responder: where (the OCSP and CA-issuer URLs of the leaf's AIA extension), what
//! (one CertID, hashed with SHA-1 as every responder accepts), and how (HTTP POST, then GET as
//! RFC 6960 appendix A allows, for responders that only answer one of them).

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use der::Encode;
use der::asn1::{Null, OctetString};
use http_body_util::Full;
use spki::AlgorithmIdentifierOwned;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest, Version};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::X509Certificate;

use super::{SHA1_OID, ocsp_error, sha1};
use crate::error::Result;
use crate::net::{self, WebClient};

/// id-ad-ocsp and id-ad-caIssuers (RFC 5280 4.2.2.1).
const AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
const AD_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";

/// Every exchange with a responder (or a CA-issuers URL), connect to last byte.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// OCSP responses are a few kilobytes; issuer certificates too (Go CertMagic caps at 1 MiB).
const MAX_BODY: usize = 1 << 20;

/// The URLs a leaf's AIA extension names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Responder {
    /// The first OCSP responder URL (Go CertMagic asks only the first).
    pub ocsp: Option<String>,
    /// The first URL of the issuer's certificate, for chains that hold only the leaf.
    pub ca_issuer: Option<String>,
}

impl Responder {
    pub fn of(leaf: &X509Certificate<'_>) -> Self {
        let mut found = Self::default();
        for ext in leaf.extensions() {
            let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() else {
                continue;
            };
            for desc in &aia.accessdescs {
                let GeneralName::URI(uri) = desc.access_location else {
                    continue;
                };
                let slot = match desc.access_method.to_id_string().as_str() {
                    AD_OCSP => &mut found.ocsp,
                    AD_CA_ISSUERS => &mut found.ca_issuer,
                    _ => continue,
                };
                if slot.is_none() && !uri.trim().is_empty() {
                    *slot = Some(uri.trim().to_string());
                }
            }
        }
        found
    }
}

/// The DER of an unsigned request for `leaf`'s status, issued by `issuer`.
pub(crate) fn request_der(
    leaf: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<Vec<u8>> {
    let encode = |e: der::Error| ocsp_error(format!("building the OCSP request: {e}"));
    let serial = leaf.raw_serial();
    let serial = &serial[serial.iter().position(|&b| b != 0).unwrap_or(serial.len())..];
    let cert_id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: SHA1_OID.parse().map_err(|e| encode(der::Error::from(e)))?,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1(issuer.subject().as_raw())).map_err(encode)?,
        issuer_key_hash: OctetString::new(sha1(&issuer.public_key().subject_public_key.data))
            .map_err(encode)?,
        serial_number: SerialNumber::new(serial).map_err(encode)?,
    };
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(encode)
}

/// Sends `request` to the responder at `url` and returns its answer's bytes (unchecked): POST
/// first; if the responder refuses it (an HTTP error status), GET with the request in the path.
/// A responder that cannot be reached is not asked twice.
pub(crate) async fn query(url: &str, request: &[u8]) -> Result<Vec<u8>> {
    let bad_url = |e: http::Error| ocsp_error(format!("OCSP responder URL `{url}`: {e}"));
    let post = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/ocsp-request")
        .header(http::header::ACCEPT, "application/ocsp-response")
        .body(Full::new(Bytes::copy_from_slice(request)))
        .map_err(bad_url)?;
    let refused = match exchange(post).await {
        Ok(body) => return Ok(body),
        Err(Failure::Refused(e)) => e,
        Err(Failure::Unreachable(e)) => {
            return Err(ocsp_error(format!(
                "OCSP responder `{url}`: {}",
                e.message()
            )));
        }
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(request);
    let get_url = format!(
        "{}/{}",
        url.trim_end_matches('/'),
        percent_encode_base64(&encoded)
    );
    let get = http::Request::get(&get_url)
        .header(http::header::ACCEPT, "application/ocsp-response")
        .body(Full::new(Bytes::new()))
        .map_err(bad_url)?;
    exchange(get).await.map_err(|get| {
        ocsp_error(format!(
            "OCSP responder `{url}`: POST: {}; GET: {}",
            refused.message(),
            get.error().message()
        ))
    })
}

/// Downloads the issuer's certificate from a CA-issuers URL (DER, or PEM as some CAs serve).
pub(crate) async fn fetch_issuer(url: &str) -> Result<Vec<u8>> {
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| ocsp_error(format!("issuer certificate URL `{url}`: {e}")))?;
    let body = exchange(req).await.map_err(|f| {
        f.error()
            .clone()
            .context(format!("issuer certificate from `{url}`"))
    })?;
    if body.starts_with(b"-----BEGIN") {
        let first = crate::crypto::parse_pem_chain(&body)?
            .into_iter()
            .next()
            .ok_or_else(|| ocsp_error(format!("no certificate at `{url}`")))?;
        return Ok(first.as_ref().to_vec());
    }
    Ok(body)
}

/// Why an exchange failed: no answer at all, or an answer other than 200.
enum Failure {
    Unreachable(crate::Error),
    Refused(crate::Error),
}

impl Failure {
    fn error(&self) -> &crate::Error {
        match self {
            Self::Unreachable(e) | Self::Refused(e) => e,
        }
    }
}

/// One HTTP exchange within [`EXCHANGE_TIMEOUT`].
async fn exchange(req: http::Request<Full<Bytes>>) -> std::result::Result<Vec<u8>, Failure> {
    let client = client().map_err(Failure::Unreachable)?;
    let answer = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| Failure::Unreachable(ocsp_error(format!("could not reach it: {e}"))))?;
        let status = resp.status();
        let body = net::read_body(resp.into_body(), MAX_BODY)
            .await
            .map_err(|e| Failure::Unreachable(ocsp_error(format!("reading the answer: {e}"))))?;
        if status != http::StatusCode::OK {
            return Err(Failure::Refused(ocsp_error(format!(
                "it answered {status}"
            ))));
        }
        Ok(body.to_vec())
    })
    .await;
    answer.unwrap_or_else(|_| {
        Err(Failure::Unreachable(ocsp_error(format!(
            "no answer within {EXCHANGE_TIMEOUT:?}"
        ))))
    })
}

/// One client for every OCSP request of the process, keeping no connection open (see
/// [`net::web_client`]).
fn client() -> Result<&'static WebClient<Full<Bytes>>> {
    static CLIENT: OnceLock<std::result::Result<WebClient<Full<Bytes>>, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| net::web_client(0))
        .as_ref()
        .map_err(|e| ocsp_error(format!("OCSP HTTP client: {e}")))
}

/// Base64 in a URL path: `+`, `/` and `=` percent-encoded (RFC 6960 appendix A.1).
fn percent_encode_base64(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + 8);
    for c in b64.chars() {
        match c {
            '+' => out.push_str("%2B"),
            '/' => out.push_str("%2F"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}
