//! DigitalOcean's API v2: `POST /domains/{zone}/records` with a name relative to the zone,
//! `DELETE /domains/{zone}/records/{id}`; a record without an id is found through the
//! paginated `GET /domains/{zone}/records?type=TXT&name=…` (following `links.pages.next`).
//! Errors are `{"id": "…", "message": "…"}`; 429 is retried after `ratelimit-reset`.
//!
//! JSON: `{"provider": "digitalocean", "api_token": "…"}` (`base_url` overrides
//! `https://api.digitalocean.com/v2`). Environment: `DO_AUTH_TOKEN`, `DIGITALOCEAN_TOKEN`,
//! `DIGITALOCEAN_ACCESS_TOKEN`.

use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::http_api::{Api, encode};
use super::{Secret, env_required};
use crate::dns::provider::{DnsProvider, DnsRecord, relative_name};
use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

const DEFAULT_BASE: &str = "https://api.digitalocean.com/v2";

/// Settings of [`DigitalOcean`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitalOceanConfig {
    /// A personal access token with write scope.
    pub api_token: Secret,
    /// API base URL.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// Edits DigitalOcean domains.
pub struct DigitalOcean {
    api: Api,
    base: String,
    token: Secret,
}

impl std::fmt::Debug for DigitalOcean {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigitalOcean")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl DigitalOcean {
    /// Checks the settings.
    pub fn new(config: DigitalOceanConfig) -> Result<Self> {
        if config.api_token.is_empty() {
            return Err(Error::config(
                ConfigField::DnsProvider,
                "digitalocean: api_token is empty",
            ));
        }
        Ok(Self {
            api: Api::new("digitalocean")?,
            base: config
                .base_url
                .unwrap_or_else(|| DEFAULT_BASE.into())
                .trim_end_matches('/')
                .to_string(),
            token: config.api_token,
        })
    }

    /// From `DO_AUTH_TOKEN`, `DIGITALOCEAN_TOKEN` or `DIGITALOCEAN_ACCESS_TOKEN`.
    pub fn from_env() -> Result<Self> {
        Self::new(DigitalOceanConfig {
            api_token: env_required(
                "digitalocean",
                &[
                    "DO_AUTH_TOKEN",
                    "DIGITALOCEAN_TOKEN",
                    "DIGITALOCEAN_ACCESS_TOKEN",
                ],
            )?
            .into(),
            base_url: None,
        })
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("authorization", format!("Bearer {}", self.token.expose()))]
    }

    async fn find(&self, domain: &str, fqdn: &str, value: &str) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut url = format!(
            "{}/domains/{}/records?type=TXT&name={}&per_page=200",
            self.base,
            encode(domain),
            encode(fqdn.trim_end_matches('.'))
        );
        for _ in 0..1000 {
            let json = self
                .api
                .json(Method::GET, &url, &self.headers(), None)
                .await?;
            for r in json["domain_records"].as_array().into_iter().flatten() {
                if r["data"].as_str() == Some(value)
                    && let Some(id) = r["id"].as_u64()
                {
                    ids.push(id.to_string());
                }
            }
            match json["links"]["pages"]["next"].as_str() {
                // The next page's URL is absolute; keep our base (and scheme) for it.
                Some(next) => {
                    let query = next.split_once('?').map(|(_, q)| q).unwrap_or_default();
                    url = format!("{}/domains/{}/records?{query}", self.base, encode(domain));
                }
                None => break,
            }
        }
        Ok(ids)
    }
}

#[async_trait::async_trait]
impl DnsProvider for DigitalOcean {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let domain = zone.trim_end_matches('.');
        let mut out = Vec::new();
        for r in records {
            let body = json!({
                "type": r.record_type,
                "name": relative_name(&r.fqdn(zone), zone),
                "data": r.value,
                "ttl": r.ttl.as_secs().max(30),
            });
            let url = format!("{}/domains/{}/records", self.base, encode(domain));
            let json = self
                .api
                .json(Method::POST, &url, &self.headers(), Some(&body))
                .await?;
            let mut created = r.clone();
            created.id = json["domain_record"]["id"].as_u64().map(|i| i.to_string());
            if created.id.is_none() {
                return Err(self.api.error(
                    ErrorKind::Challenge,
                    format!("no record id in the answer: {json}"),
                ));
            }
            out.push(created);
        }
        Ok(out)
    }

    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let domain = zone.trim_end_matches('.');
        let mut deleted = Vec::new();
        for r in records {
            let ids = match &r.id {
                Some(id) => vec![id.clone()],
                None => self.find(domain, &r.fqdn(zone), &r.value).await?,
            };
            for id in ids {
                let url = format!(
                    "{}/domains/{}/records/{}",
                    self.base,
                    encode(domain),
                    encode(&id)
                );
                if self.api.delete(&url, &self.headers()).await? {
                    let mut gone = r.clone();
                    gone.id = Some(id);
                    deleted.push(gone);
                }
            }
        }
        Ok(deleted)
    }
}
