//! [`IssuerSpec`]: the issuers a configuration obtains from, in order, and the
//! [`IssuerPolicy`] that orders them for each certificate (Go CertMagic's `Issuers` and
//! `IssuerPolicy`). Every binding gives the same JSON shapes to [`IssuerSpec::from_json`], so
//! the rules live here once.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{ChainPreference, ExternalAccountBinding};
use crate::error::{Error, Result};
use crate::fields::ConfigField;

/// One issuer of a configuration.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IssuerSpec {
    /// An ACME CA.
    Acme(AcmeIssuerSpec),
    /// The library's own certificate authority ([`LocalIssuer`](crate::LocalIssuer)).
    Local(LocalIssuerSpec),
    /// ZeroSSL's ACME CA, with EAB credentials fetched from ZeroSSL's API for the account
    /// email (or an API key) when a new account is registered.
    ZeroSsl(ZeroSslIssuerSpec),
}

/// A ZeroSSL issuer. Its account email is the configuration's unless given; EAB, profile and
/// chain preference are its own.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ZeroSslIssuerSpec {
    /// The account email the EAB credentials are asked for.
    pub email: Option<String>,
    /// A ZeroSSL API access key: credentials are asked for with it instead of the email.
    pub api_key: Option<String>,
    /// The directory URL (default [`ZEROSSL`](crate::ZEROSSL)).
    pub ca: Option<String>,
    /// The API base URL (default `https://api.zerossl.com`).
    pub api_url: Option<String>,
}

impl std::fmt::Debug for ZeroSslIssuerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroSslIssuerSpec")
            .field("email", &self.email)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("ca", &self.ca)
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// An ACME issuer. With `ca` unset it is the CA of the configuration's own settings (`ca`,
/// `email`, `eab`, `trusted_roots_pem`, `profile`, preferred chain), and each field given
/// replaces the configuration's. With `ca` set it is another CA: EAB, profile and chain
/// preference are this spec's alone (they belong to one CA), while the account email and the
/// roots trusted for the CA connection are the configuration's unless given. Challenges, key
/// type and storage are always the configuration's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AcmeIssuerSpec {
    /// The directory URL.
    pub ca: Option<String>,
    /// The account email.
    pub email: Option<String>,
    /// External Account Binding credentials.
    pub eab: Option<ExternalAccountBinding>,
    /// Extra roots trusted for the connection to this CA, PEM.
    pub trusted_roots_pem: Option<String>,
    /// The certificate profile to ask for.
    pub profile: Option<String>,
    /// Which chain to keep when the CA offers several.
    pub preferred_chain: Option<ChainPreference>,
}

/// The local certificate authority's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIssuerSpec {
    /// Lifetime of each certificate it issues (default 12 hours, as Caddy's internal issuer).
    pub lifetime: Duration,
}

/// Shortest local certificate lifetime: renewal runs at two thirds of it, and shorter lives
/// would only make maintenance busy.
pub const LOCAL_MIN_LIFETIME: Duration = Duration::from_secs(10);
/// Longest local certificate lifetime.
pub const LOCAL_MAX_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

impl Default for LocalIssuerSpec {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(12 * 3600),
        }
    }
}

/// In which order a certificate's issuers are tried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerPolicy {
    /// In the configured order (CertMagic's `first`, the default).
    #[default]
    First,
    /// Shuffled for each new certificate (CertMagic's `first_random`); renewals keep the
    /// configured order, as CertMagic's do.
    Random,
}

impl std::str::FromStr for IssuerPolicy {
    type Err = Error;

    /// `first` or `random` (`first_random`, CertMagic's spelling, is accepted too).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "first" => Ok(Self::First),
            "random" | "first_random" => Ok(Self::Random),
            other => Err(Error::config(
                ConfigField::IssuerPolicy,
                format!("`{other}` is not an issuer policy (first, random)"),
            )),
        }
    }
}

/// The JSON object form of a spec.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum SpecJson {
    Acme {
        ca: Option<String>,
        email: Option<String>,
        eab: Option<EabJson>,
        trusted_roots_pem: Option<String>,
        profile: Option<String>,
        preferred_chain: Option<ChainJson>,
    },
    Local {
        lifetime_secs: Option<f64>,
    },
    Zerossl {
        email: Option<String>,
        api_key: Option<String>,
        ca: Option<String>,
        api_url: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EabJson {
    key_id: String,
    hmac_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainJson {
    #[serde(default)]
    root_common_names: Vec<String>,
    #[serde(default)]
    any_common_names: Vec<String>,
    #[serde(default)]
    smallest: bool,
}

impl IssuerSpec {
    /// The configuration's own ACME CA.
    pub fn acme() -> Self {
        Self::Acme(AcmeIssuerSpec::default())
    }

    /// The local CA with its default lifetime.
    pub fn local() -> Self {
        Self::Local(LocalIssuerSpec::default())
    }

    /// A spec as the bindings give it: `"acme"` or `"local"`, or a JSON object
    /// `{"type": "acme", "ca", "email", "eab": {"key_id", "hmac_key"}, "trusted_roots_pem",
    /// "profile", "preferred_chain": {"root_common_names", "any_common_names", "smallest"}}` or
    /// `{"type": "local", "lifetime_secs"}` or `{"type": "zerossl", "email", "api_key", "ca",
    /// "api_url"}` (`"zerossl"` alone: the configuration's email). Refusals name the
    /// [`issuers`](crate::ConfigBuilder::issuer) setting.
    pub fn from_json(text: &str) -> Result<Self> {
        let refuse = |why: String| Error::config(ConfigField::Issuers, why);
        let trimmed = text.trim();
        match trimmed {
            "acme" => return Ok(Self::acme()),
            "local" => return Ok(Self::local()),
            "zerossl" => return Ok(Self::ZeroSsl(ZeroSslIssuerSpec::default())),
            _ => {}
        }
        if !trimmed.starts_with('{') {
            return Err(refuse(format!(
                "`{trimmed}` is not an issuer (\"acme\", \"local\", \"zerossl\", or a JSON object with a \"type\")"
            )));
        }
        let spec: SpecJson = serde_json::from_str(trimmed)
            .map_err(|e| refuse(format!("not an issuer description: {e}")))?;
        Ok(match spec {
            SpecJson::Acme {
                ca,
                email,
                eab,
                trusted_roots_pem,
                profile,
                preferred_chain,
            } => Self::Acme(AcmeIssuerSpec {
                ca,
                email,
                eab: eab.map(|e| ExternalAccountBinding {
                    key_id: e.key_id,
                    hmac_key: e.hmac_key,
                }),
                trusted_roots_pem,
                profile,
                preferred_chain: preferred_chain.map(|c| ChainPreference {
                    root_common_names: c.root_common_names,
                    any_common_names: c.any_common_names,
                    smallest: c.smallest,
                }),
            }),
            SpecJson::Local { lifetime_secs } => {
                let mut local = LocalIssuerSpec::default();
                if let Some(secs) = lifetime_secs {
                    local.lifetime = Duration::try_from_secs_f64(secs).map_err(|_| {
                        refuse(format!("lifetime_secs {secs} is not a number of seconds"))
                    })?;
                }
                Self::Local(local)
            }
            SpecJson::Zerossl {
                email,
                api_key,
                ca,
                api_url,
            } => Self::ZeroSsl(ZeroSslIssuerSpec {
                email,
                api_key,
                ca,
                api_url,
            }),
        })
    }

    /// What kind of issuer this is (`acme`, `local`), for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Acme(_) => "acme",
            Self::Local(_) => "local",
            Self::ZeroSsl(_) => "zerossl",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_from_names_and_objects() {
        assert_eq!(IssuerSpec::from_json(" acme ").unwrap(), IssuerSpec::acme());
        assert_eq!(IssuerSpec::from_json("local").unwrap(), IssuerSpec::local());
        let s = IssuerSpec::from_json(
            r#"{"type": "acme", "ca": "https://ca.test/dir", "eab": {"key_id": "k", "hmac_key": "aGk"},
                "preferred_chain": {"smallest": true}}"#,
        )
        .unwrap();
        let IssuerSpec::Acme(a) = s else {
            panic!("{s:?}")
        };
        assert_eq!(a.ca.as_deref(), Some("https://ca.test/dir"));
        assert_eq!(a.eab.unwrap().key_id, "k");
        assert!(a.preferred_chain.unwrap().smallest);
        assert_eq!(
            IssuerSpec::from_json(r#"{"type": "local", "lifetime_secs": 60}"#).unwrap(),
            IssuerSpec::Local(LocalIssuerSpec {
                lifetime: Duration::from_secs(60)
            })
        );
    }

    #[test]
    fn bad_specs_are_refused_naming_the_setting() {
        for bad in [
            "zerossl-ish",
            "",
            "{}",
            r#"{"type": "acme", "cA": "x"}"#,
            r#"{"type": "local", "lifetime_secs": -1}"#,
            r#"{"type": "local", "lifetime_secs": "1h"}"#,
            "[1]",
        ] {
            let e = IssuerSpec::from_json(bad).unwrap_err();
            assert_eq!(e.config_field(), Some(ConfigField::Issuers), "{bad}: {e}");
        }
        assert_eq!(
            "first".parse::<IssuerPolicy>().unwrap(),
            IssuerPolicy::First
        );
        assert_eq!(
            "first_random".parse::<IssuerPolicy>().unwrap(),
            IssuerPolicy::Random
        );
        assert!("last".parse::<IssuerPolicy>().is_err());
    }
}
