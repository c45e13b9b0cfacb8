//! What an issuer is: something that turns a CSR into a certificate chain and can revoke it.
//! ACME ([`AcmeIssuer`](crate::AcmeIssuer)) is the one built in; the trait leaves room for others
//! (e.g. ZeroSSL's REST API) without touching the manager.

use std::fmt::Debug;

use async_trait::async_trait;
use rustls_pki_types::CertificateDer;

use crate::error::Result;
use crate::subject::Subject;

/// A certificate fresh from an issuer.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The PEM chain, leaf first, exactly as the issuer delivered it.
    pub chain_pem: String,
    /// Issuer-specific metadata, stored as `issuer_data` in the `.json` file.
    pub metadata: serde_json::Value,
}

/// Why a certificate is revoked (RFC 5280 CRLReason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RevocationReason {
    /// No reason given.
    #[default]
    Unspecified,
    /// The private key was compromised.
    KeyCompromise,
    /// The names or organisation changed.
    AffiliationChanged,
    /// Replaced by another certificate.
    Superseded,
    /// The certificate is no longer needed.
    CessationOfOperation,
}

impl RevocationReason {
    /// The RFC 5280 reason code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
        }
    }

    /// The reason for an RFC 5280 code, if it is one a subscriber may give.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            _ => return None,
        })
    }
}

/// Obtains and revokes certificates.
#[async_trait]
pub trait Issuer: Send + Sync + Debug + 'static {
    /// The issuer key: names this issuer's folder in storage (`certificates/<key>/…`).
    fn issuer_key(&self) -> &str;

    /// Obtains a certificate for `subject` with the DER CSR `csr_der`.
    async fn issue(&self, subject: &Subject, csr_der: &[u8]) -> Result<IssuedCertificate>;

    /// Revokes a certificate this issuer issued.
    async fn revoke(&self, leaf: &CertificateDer<'static>, reason: RevocationReason) -> Result<()>;
}
