//! OCSP (RFC 6960) for stapling, as Go CertMagic's `ocsp.go` does it: a request for a
//! certificate sent to the responder its leaf names, and the answer checked (signature by the
//! issuer or a responder it delegated to, the serial, the validity times) before anything
//! staples or stores it. The ASN.1 is RustCrypto's `x509-ocsp`; certificates are read and
//! signatures checked with x509-parser (aws-lc-rs), as everywhere else here.

mod request;
mod response;

pub(crate) use request::{Responder, fetch_issuer, query, request_der};
pub use response::{OcspResponse, OcspStatus};
pub(crate) use response::{REASON_KEY_COMPROMISE, ocsp_error};

use aws_lc_rs::digest;

/// The hash of a CertID.
#[derive(Debug, Clone, Copy)]
enum HashAlgorithm {
    Sha1,
    Sha256,
}

const SHA1_OID: &str = "1.3.14.3.2.26";
const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";

impl HashAlgorithm {
    fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            SHA1_OID => Some(Self::Sha1),
            SHA256_OID => Some(Self::Sha256),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// SHA-1, as CertIDs and responder key hashes use it (identifiers, not signatures).
fn sha1(data: &[u8]) -> Vec<u8> {
    HashAlgorithm::Sha1.digest(data)
}
