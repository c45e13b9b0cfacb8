//! What an issuer is: something that turns a CSR into a certificate chain and can revoke it.
//! ACME ([`AcmeIssuer`](crate::AcmeIssuer)) is the one built in; the trait leaves room for others
//! (e.g. ZeroSSL's REST API) without touching the manager.

use std::fmt::Debug;

use async_trait::async_trait;
use rustls_pki_types::CertificateDer;

use crate::ari::RenewalInfo;
use crate::certificate::Certificate;
use crate::error::{Error, ErrorKind, Result};
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

    /// The reason for a code as a binding received it (any whole number), or an error listing
    /// the reasons a subscriber may give.
    pub fn from_number(code: u64) -> Result<Self> {
        u8::try_from(code)
            .ok()
            .and_then(Self::from_code)
            .ok_or_else(|| not_a_reason(&code.to_string()))
    }

    /// The RFC 5280 name, as CertMagic and ACME clients write it (`keyCompromise`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
        }
    }

    const ALL: [Self; 5] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
    ];
}

impl std::str::FromStr for RevocationReason {
    type Err = Error;

    /// A name in any of the spellings bindings use (`keyCompromise`, `key_compromise`,
    /// `KEY-COMPROMISE`) or a code (`1`).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Ok(code) = s.parse::<u64>() {
            return Self::from_number(code);
        }
        let folded: String = s
            .chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect();
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(&folded))
            .ok_or_else(|| not_a_reason(s))
    }
}

fn not_a_reason(given: &str) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!(
            "`{given}` is not a revocation reason a subscriber may give (unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, or their codes 0, 1, 3, 4, 5)"
        ),
    )
}

/// Obtains and revokes certificates.
#[async_trait]
pub trait Issuer: Send + Sync + Debug + 'static {
    /// The issuer key: names this issuer's folder in storage (`certificates/<key>/…`).
    fn issuer_key(&self) -> &str;

    /// Obtains a certificate for `subject` with the DER CSR `csr_der`.
    async fn issue(&self, subject: &Subject, csr_der: &[u8]) -> Result<IssuedCertificate>;

    /// Obtains the renewal of `replacing`. ACME issuers say which certificate the new one
    /// replaces (RFC 9773 `replaces`) when they issued it; the default is [`Issuer::issue`].
    async fn issue_replacing(
        &self,
        subject: &Subject,
        csr_der: &[u8],
        replacing: &Certificate,
    ) -> Result<IssuedCertificate> {
        let _ = replacing;
        self.issue(subject, csr_der).await
    }

    /// Readies the issuer for its first certificate (an ACME issuer loads or registers its
    /// account), so that the first on-demand handshake does not wait for it. An on-demand
    /// manager calls it in the background when it starts; an error is logged, and the first
    /// order tries again. Default: nothing to do.
    async fn prepare(&self) -> Result<()> {
        Ok(())
    }

    /// Whether this issuer's CA suggests renewal windows (RFC 9773): maintenance asks
    /// [`Issuer::renewal_info`] only then. Default: no.
    async fn offers_renewal_info(&self) -> bool {
        false
    }

    /// The renewal window the CA suggests for `cert` (RFC 9773), `previous` being what is known
    /// already (its selected time is kept while the window stays the same). `Ok(None)` when
    /// this issuer offers none (the default) or did not issue `cert`.
    async fn renewal_info(
        &self,
        cert: &Certificate,
        previous: Option<&RenewalInfo>,
    ) -> Result<Option<RenewalInfo>> {
        let _ = (cert, previous);
        Ok(None)
    }

    /// Revokes a certificate this issuer issued.
    async fn revoke(&self, leaf: &CertificateDer<'static>, reason: RevocationReason) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_from_every_spelling_and_code() {
        for r in RevocationReason::ALL {
            assert_eq!(r.name().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(r.code().to_string().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(RevocationReason::from_number(r.code().into()).unwrap(), r);
        }
        for s in ["key_compromise", "KEY-COMPROMISE", " keycompromise "] {
            assert_eq!(
                s.parse::<RevocationReason>().unwrap(),
                RevocationReason::KeyCompromise
            );
        }
        for bad in ["2", "6", "256", "", "compromised"] {
            let e = bad.parse::<RevocationReason>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert!(e.message().contains("keyCompromise"), "{e}");
        }
        assert!(RevocationReason::from_number(u64::MAX).is_err());
    }
}
