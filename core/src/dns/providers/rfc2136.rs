//! RFC 2136 dynamic updates, signed with TSIG (HMAC-SHA256 or HMAC-SHA512): works with BIND,
//! Knot, PowerDNS and most self-hosted DNS servers.
//!
//! JSON: `{"provider": "rfc2136", "server": "ip[:port]", "key_name": "…", "key_algorithm":
//! "hmac-sha256", "key_secret": "<base64>"}` (the key is optional for servers that allow
//! unsigned updates by address). Environment (lego's names): `RFC2136_NAMESERVER`,
//! `RFC2136_TSIG_KEY`, `RFC2136_TSIG_ALGORITHM`, `RFC2136_TSIG_SECRET`.

use std::net::SocketAddr;

use base64::Engine;
use serde::Deserialize;

use super::{Secret, env_any, env_required};
use crate::dns::client;
use crate::dns::provider::{DnsProvider, DnsRecord};
use crate::dns::wire::{self, SignedAnswer, TSigner, TsigAlgorithm, TxtChange};
use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

/// Settings of [`Rfc2136`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// The primary server accepting updates, `ip` or `ip:port`.
    pub server: String,
    /// The TSIG key's name.
    #[serde(default)]
    pub key_name: Option<String>,
    /// `hmac-sha256` (default) or `hmac-sha512`.
    #[serde(default)]
    pub key_algorithm: Option<String>,
    /// The TSIG secret, base64 (as `tsig-keygen` prints it).
    #[serde(default)]
    pub key_secret: Option<Secret>,
}

struct Tsig {
    name: String,
    signer: TSigner,
}

/// Sends signed dynamic updates to one server.
pub struct Rfc2136 {
    server: SocketAddr,
    tsig: Option<Tsig>,
}

impl std::fmt::Debug for Rfc2136 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc2136")
            .field("server", &self.server)
            .field("key_name", &self.tsig.as_ref().map(|t| &t.name))
            .finish_non_exhaustive()
    }
}

fn bad(message: impl std::fmt::Display) -> Error {
    Error::config(ConfigField::DnsProvider, format!("rfc2136: {message}"))
}

impl Rfc2136 {
    /// Checks the settings.
    pub fn new(config: Rfc2136Config) -> Result<Self> {
        let server = client::parse_server(&config.server).ok_or_else(|| {
            bad(format!(
                "server `{}` is not an IP address with an optional port",
                config.server
            ))
        })?;
        let tsig = match (config.key_name, config.key_secret) {
            (None, None) => None,
            (Some(name), Some(secret)) => {
                let algorithm = match config.key_algorithm.as_deref() {
                    None | Some("") => TsigAlgorithm::HmacSha256,
                    Some(a) => TsigAlgorithm::parse(a).ok_or_else(|| {
                        bad(format!(
                            "key_algorithm `{a}` is not hmac-sha256 or hmac-sha512"
                        ))
                    })?,
                };
                let secret = base64::engine::general_purpose::STANDARD
                    .decode(secret.expose().trim())
                    .map_err(|_| bad("key_secret is not base64"))?;
                if secret.is_empty() || name.trim().is_empty() {
                    return Err(bad("key_name and key_secret must not be empty"));
                }
                let name = name.trim().to_string();
                let signer = algorithm
                    .signer(&name, secret)
                    .map_err(|e| bad(format!("key_name `{name}`: {}", e.message())))?;
                Some(Tsig { name, signer })
            }
            _ => return Err(bad("key_name and key_secret go together")),
        };
        Ok(Self { server, tsig })
    }

    /// From `RFC2136_NAMESERVER`, `RFC2136_TSIG_KEY`, `RFC2136_TSIG_ALGORITHM`,
    /// `RFC2136_TSIG_SECRET`.
    pub fn from_env() -> Result<Self> {
        Self::new(Rfc2136Config {
            server: env_required("rfc2136", &["RFC2136_NAMESERVER"])?,
            key_name: env_any(&["RFC2136_TSIG_KEY"]),
            key_algorithm: env_any(&["RFC2136_TSIG_ALGORITHM"]),
            key_secret: env_any(&["RFC2136_TSIG_SECRET"]).map(Secret::from),
        })
    }

    async fn send(&self, zone: &str, changes: &[TxtChange]) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let signer = self.tsig.as_ref().map(|t| &t.signer);
        let (msg, verifier) = wire::update(rand::random(), zone, changes, signer, now)?;
        let answer = client::exchange(self.server, &msg, client::QUERY_TIMEOUT).await?;
        let refused = |why: String| {
            Error::new(
                ErrorKind::Challenge,
                format!(
                    "rfc2136: {} refused the update of zone `{zone}`: {why}",
                    self.server
                ),
            )
        };
        if let (Some(mut verifier), Some(tsig)) = (verifier, &self.tsig) {
            match wire::check_signed_answer(&answer.bytes, &answer.message, &mut verifier) {
                SignedAnswer::Verified => {}
                SignedAnswer::RefusedSignature(error) => {
                    let hint = match error {
                        "BADKEY" => "the server knows no key of this name and algorithm",
                        "BADSIG" => "the secret differs from the server's",
                        "BADTIME" => "the clocks differ by more than 5 minutes",
                        _ => "the server did not accept the signature",
                    };
                    return Err(refused(format!(
                        "{} with TSIG error {error} ({hint}; key `{}`)",
                        wire::rcode_name(answer.message.metadata.response_code.into()),
                        tsig.name
                    )));
                }
                SignedAnswer::NotVerified(why) => {
                    // Nothing that did not come from a holder of the key is believed, success
                    // included: the record may or may not be there.
                    return Err(Error::new(
                        ErrorKind::Challenge,
                        format!(
                            "rfc2136: the answer from {} to the update of zone `{zone}` does \
                             not carry a valid TSIG signature of key `{}` ({why}); it may have \
                             been forged or altered on the way",
                            self.server, tsig.name
                        ),
                    ));
                }
            }
        }
        let rcode = u16::from(answer.message.metadata.response_code);
        if rcode != 0 {
            let hint = match rcode {
                9 => {
                    " (the server does not accept this TSIG key for the zone, or the clocks differ by more than 5 minutes)"
                }
                5 => " (updates from this key or address are not allowed)",
                10 => " (the server is not authoritative for this zone)",
                _ => "",
            };
            return Err(refused(format!("{}{hint}", wire::rcode_name(rcode))));
        }
        Ok(())
    }
}

fn check_txt(records: &[DnsRecord]) -> Result<()> {
    match records
        .iter()
        .find(|r| !r.record_type.eq_ignore_ascii_case("TXT"))
    {
        Some(r) => Err(Error::new(
            ErrorKind::Challenge,
            format!(
                "rfc2136: only TXT records are supported, not {}",
                r.record_type
            ),
        )),
        None => Ok(()),
    }
}

#[async_trait::async_trait]
impl DnsProvider for Rfc2136 {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        check_txt(records)?;
        let changes: Vec<TxtChange> = records
            .iter()
            .map(|r| TxtChange::Add {
                name: r.fqdn(zone),
                value: r.value.clone(),
                ttl: r.ttl.as_secs().min(u64::from(i32::MAX as u32)) as u32,
            })
            .collect();
        self.send(zone, &changes).await?;
        Ok(records.to_vec())
    }

    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        check_txt(records)?;
        let changes: Vec<TxtChange> = records
            .iter()
            .map(|r| TxtChange::Delete {
                name: r.fqdn(zone),
                value: r.value.clone(),
            })
            .collect();
        self.send(zone, &changes).await?;
        Ok(records.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let ok = |v: serde_json::Value| Rfc2136::new(serde_json::from_value(v).unwrap());
        assert!(ok(serde_json::json!({"server": "127.0.0.1:5300"})).is_ok());
        let e = ok(serde_json::json!({"server": "ns.example"})).unwrap_err();
        assert!(e.message().contains("server"), "{e}");
        let e = ok(serde_json::json!({"server": "127.0.0.1", "key_name": "k"})).unwrap_err();
        assert!(e.message().contains("together"), "{e}");
        let e = ok(serde_json::json!({"server": "127.0.0.1", "key_name": "k", "key_secret": "!!"}))
            .unwrap_err();
        assert!(e.message().contains("base64"), "{e}");
        let e = ok(serde_json::json!({"server": "127.0.0.1", "key_name": "k", "key_secret": "c2VjcmV0", "key_algorithm": "hmac-md5"})).unwrap_err();
        assert!(e.message().contains("hmac-md5"), "{e}");
        let p = ok(
            serde_json::json!({"server": "127.0.0.1", "key_name": "k", "key_secret": "c2VjcmV0"}),
        )
        .unwrap();
        assert!(!format!("{p:?}").contains("c2VjcmV0"));
    }
}
