//! Hetzner DNS API (`https://dns.hetzner.com/api/v1`): the zone id comes from
//! `GET /zones?name=`, records are created with `POST /records` (name relative to the zone)
//! and removed with `DELETE /records/{id}`; a record without an id is found through the
//! paginated `GET /records?zone_id=…` (`meta.pagination.last_page`). Authentication is the
//! `Auth-API-Token` header; 429 is retried after `Retry-After`/`Ratelimit-Reset`.
//!
//! JSON: `{"provider": "hetzner", "api_token": "…"}` (`base_url` overrides the API URL).
//! Environment: `HETZNER_DNS_API_TOKEN`, `HETZNER_API_KEY` (lego), `HETZNER_DNS_TOKEN`.

use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::http_api::{Api, encode};
use super::{Secret, env_required};
use crate::dns::provider::{DnsProvider, DnsRecord, relative_name};
use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

const DEFAULT_BASE: &str = "https://dns.hetzner.com/api/v1";

/// Settings of [`Hetzner`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HetznerConfig {
    /// A DNS API token.
    pub api_token: Secret,
    /// API base URL.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// Edits Hetzner DNS zones.
pub struct Hetzner {
    api: Api,
    base: String,
    token: Secret,
}

impl std::fmt::Debug for Hetzner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hetzner")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Hetzner {
    /// Checks the settings.
    pub fn new(config: HetznerConfig) -> Result<Self> {
        if config.api_token.is_empty() {
            return Err(Error::config(
                ConfigField::DnsProvider,
                "hetzner: api_token is empty",
            ));
        }
        Ok(Self {
            api: Api::new("hetzner")?,
            base: config
                .base_url
                .unwrap_or_else(|| DEFAULT_BASE.into())
                .trim_end_matches('/')
                .to_string(),
            token: config.api_token,
        })
    }

    /// From `HETZNER_DNS_API_TOKEN`, `HETZNER_API_KEY` or `HETZNER_DNS_TOKEN`.
    pub fn from_env() -> Result<Self> {
        Self::new(HetznerConfig {
            api_token: env_required(
                "hetzner",
                &[
                    "HETZNER_DNS_API_TOKEN",
                    "HETZNER_API_KEY",
                    "HETZNER_DNS_TOKEN",
                ],
            )?
            .into(),
            base_url: None,
        })
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("auth-api-token", self.token.expose().to_string())]
    }

    async fn zone_id(&self, zone: &str) -> Result<String> {
        let name = zone.trim_end_matches('.');
        let url = format!("{}/zones?name={}", self.base, encode(name));
        let json = self
            .api
            .json(Method::GET, &url, &self.headers(), None)
            .await?;
        json["zones"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|z| {
                z["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|z| z["id"].as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Challenge,
                    format!("hetzner: no zone `{name}` for this token"),
                )
            })
    }

    async fn find(&self, zone_id: &str, name: &str, value: &str) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut page = 1;
        loop {
            let url = format!(
                "{}/records?zone_id={}&page={page}&per_page=100",
                self.base,
                encode(zone_id)
            );
            let json = self
                .api
                .json(Method::GET, &url, &self.headers(), None)
                .await?;
            for r in json["records"].as_array().into_iter().flatten() {
                if r["type"] == "TXT"
                    && r["name"].as_str() == Some(name)
                    && r["value"].as_str().map(super::unquote_txt).as_deref() == Some(value)
                    && let Some(id) = r["id"].as_str()
                {
                    ids.push(id.to_string());
                }
            }
            let last = json["meta"]["pagination"]["last_page"]
                .as_u64()
                .unwrap_or(1);
            if page >= last {
                return Ok(ids);
            }
            page += 1;
        }
    }
}

#[async_trait::async_trait]
impl DnsProvider for Hetzner {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let zone_id = self.zone_id(zone).await?;
        let mut out = Vec::new();
        for r in records {
            let body = json!({
                "zone_id": zone_id,
                "type": r.record_type,
                "name": relative_name(&r.fqdn(zone), zone),
                "value": r.value,
                "ttl": r.ttl.as_secs(),
            });
            let json = self
                .api
                .json(
                    Method::POST,
                    &format!("{}/records", self.base),
                    &self.headers(),
                    Some(&body),
                )
                .await?;
            let mut created = r.clone();
            created.id = json["record"]["id"].as_str().map(str::to_string);
            out.push(created);
        }
        Ok(out)
    }

    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let mut deleted = Vec::new();
        let mut zone_id = None;
        for r in records {
            let ids = match &r.id {
                Some(id) => vec![id.clone()],
                None => {
                    if zone_id.is_none() {
                        zone_id = Some(self.zone_id(zone).await?);
                    }
                    let rel = relative_name(&r.fqdn(zone), zone);
                    self.find(zone_id.as_deref().unwrap_or_default(), &rel, &r.value)
                        .await?
                }
            };
            for id in ids {
                let url = format!("{}/records/{}", self.base, encode(&id));
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
