//! Gandi LiveDNS (`https://api.gandi.net/v5/livedns`): records are RRsets, read with
//! `GET /domains/{zone}/records/{name}/TXT` and written whole with `PUT` (or removed with
//! `DELETE` when the last value goes), serialized per name in this process. Authentication is
//! a personal access token (`Authorization: Bearer`) or the older API key
//! (`Authorization: Apikey`). The RRset calls return one set, so no pagination is involved;
//! 429 is retried after `Retry-After`.
//!
//! JSON: `{"provider": "gandi", "token": "…"}` or `{"provider": "gandi", "api_key": "…"}`
//! (`base_url` overrides the API URL). Environment: `GANDIV5_PERSONAL_ACCESS_TOKEN`,
//! `GANDI_PERSONAL_ACCESS_TOKEN`, or `GANDIV5_API_KEY`, `GANDI_API_KEY`.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::http_api::{Api, encode};
use super::{NameLocks, Secret, env_any, quote_txt, unquote_txt};
use crate::dns::provider::{DnsProvider, DnsRecord, relative_name};
use crate::error::{Error, Result};
use crate::fields::ConfigField;

const DEFAULT_BASE: &str = "https://api.gandi.net/v5/livedns";
/// LiveDNS refuses TTLs under 300 s.
const MIN_TTL: u64 = 300;

/// Settings of [`Gandi`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GandiConfig {
    /// A personal access token (preferred).
    #[serde(default)]
    pub token: Option<Secret>,
    /// The older API key.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// API base URL.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// Edits Gandi LiveDNS domains.
pub struct Gandi {
    api: Api,
    base: String,
    authorization: Secret,
    locks: NameLocks,
}

impl std::fmt::Debug for Gandi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gandi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Gandi {
    /// Checks the settings.
    pub fn new(config: GandiConfig) -> Result<Self> {
        let authorization = match (config.token, config.api_key) {
            (Some(t), _) if !t.is_empty() => Secret::new(format!("Bearer {}", t.expose())),
            (_, Some(k)) if !k.is_empty() => Secret::new(format!("Apikey {}", k.expose())),
            _ => {
                return Err(Error::config(
                    ConfigField::DnsProvider,
                    "gandi: set token (or the older api_key)",
                ));
            }
        };
        Ok(Self {
            api: Api::new("gandi")?,
            base: config
                .base_url
                .unwrap_or_else(|| DEFAULT_BASE.into())
                .trim_end_matches('/')
                .to_string(),
            authorization,
            locks: Default::default(),
        })
    }

    /// From the environment (see the module documentation).
    pub fn from_env() -> Result<Self> {
        let config = GandiConfig {
            token: env_any(&[
                "GANDIV5_PERSONAL_ACCESS_TOKEN",
                "GANDI_PERSONAL_ACCESS_TOKEN",
            ])
            .map(Secret::from),
            api_key: env_any(&["GANDIV5_API_KEY", "GANDI_API_KEY"]).map(Secret::from),
            base_url: None,
        };
        if config.token.is_none() && config.api_key.is_none() {
            return Err(Error::config(
                ConfigField::DnsProvider,
                "gandi: set GANDIV5_PERSONAL_ACCESS_TOKEN (or GANDIV5_API_KEY) in the environment",
            ));
        }
        Self::new(config)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("authorization", self.authorization.expose().to_string())]
    }

    fn url(&self, zone: &str, name: &str) -> String {
        format!(
            "{}/domains/{}/records/{}/TXT",
            self.base,
            encode(zone.trim_end_matches('.')),
            encode(name)
        )
    }

    async fn current(&self, url: &str) -> Result<(Vec<String>, Option<u64>)> {
        let reply = self
            .api
            .send(Method::GET, url, &self.headers(), None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok((Vec::new(), None));
        }
        if !reply.status.is_success() {
            return Err(self.api.failed(&Method::GET, url, &reply));
        }
        let json = reply.json()?;
        let values = json["rrset_values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(unquote_txt))
            .collect();
        Ok((values, json["rrset_ttl"].as_u64()))
    }

    async fn write(&self, url: &str, ttl: u64, values: &[String]) -> Result<()> {
        if values.is_empty() {
            let reply = self
                .api
                .send(Method::DELETE, url, &self.headers(), None)
                .await?;
            if reply.status.is_success() || reply.status == StatusCode::NOT_FOUND {
                return Ok(());
            }
            return Err(self.api.failed(&Method::DELETE, url, &reply));
        }
        let quoted: Vec<String> = values.iter().map(|v| quote_txt(v)).collect();
        let body = json!({"rrset_ttl": ttl.max(MIN_TTL), "rrset_values": quoted});
        self.api
            .json(Method::PUT, url, &self.headers(), Some(&body))
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl DnsProvider for Gandi {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        for r in records {
            let url = self.url(zone, &relative_name(&r.fqdn(zone), zone));
            let _held = self.locks.hold(&url).await;
            let (mut values, _) = self.current(&url).await?;
            if !values.contains(&r.value) {
                values.push(r.value.clone());
            }
            self.write(&url, r.ttl.as_secs(), &values).await?;
        }
        Ok(records.to_vec())
    }

    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let mut deleted = Vec::new();
        for r in records {
            let url = self.url(zone, &relative_name(&r.fqdn(zone), zone));
            let _held = self.locks.hold(&url).await;
            let (mut values, ttl) = self.current(&url).await?;
            let before = values.len();
            values.retain(|v| v != &r.value);
            if values.len() != before {
                self.write(&url, ttl.unwrap_or(r.ttl.as_secs()), &values)
                    .await?;
                deleted.push(r.clone());
            }
        }
        Ok(deleted)
    }
}
