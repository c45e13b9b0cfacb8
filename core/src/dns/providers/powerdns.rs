//! The PowerDNS Authoritative HTTP API: the TXT RRset is read and replaced (`PATCH` with
//! `changetype: REPLACE`), serialized per name in this process so that concurrent challenges
//! for `example.com` and `*.example.com` keep each other's values.
//!
//! JSON: `{"provider": "powerdns", "url": "http://127.0.0.1:8081", "api_key": "…",
//! "server_id": "localhost"}`. Environment (lego's names): `PDNS_API_URL`, `PDNS_API_KEY`,
//! `PDNS_SERVER_NAME`.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::http_api::{Api, encode};
use super::{NameLocks, Secret, env_any, env_required, quote_txt, unquote_txt};
use crate::dns::provider::{DnsProvider, DnsRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

/// Settings of [`PowerDns`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerDnsConfig {
    /// Base URL of the API (the webserver), e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// The `api-key` of the server.
    pub api_key: Secret,
    /// The server id in API paths (default `localhost`).
    #[serde(default)]
    pub server_id: Option<String>,
}

/// Edits zones through the PowerDNS API.
#[derive(Debug)]
pub struct PowerDns {
    api: Api,
    base: String,
    api_key: Secret,
    locks: NameLocks,
}

impl PowerDns {
    /// Checks the settings.
    pub fn new(config: PowerDnsConfig) -> Result<Self> {
        let url = config.url.trim().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::config(
                ConfigField::DnsProvider,
                format!("powerdns: url `{url}` is not an http(s) URL"),
            ));
        }
        if config.api_key.is_empty() {
            return Err(Error::config(
                ConfigField::DnsProvider,
                "powerdns: api_key is empty",
            ));
        }
        let server = config.server_id.unwrap_or_else(|| "localhost".into());
        Ok(Self {
            api: Api::new("powerdns")?,
            base: format!("{url}/api/v1/servers/{}", encode(&server)),
            api_key: config.api_key,
            locks: Default::default(),
        })
    }

    /// From `PDNS_API_URL`, `PDNS_API_KEY` and `PDNS_SERVER_NAME`.
    pub fn from_env() -> Result<Self> {
        Self::new(PowerDnsConfig {
            url: env_required("powerdns", &["PDNS_API_URL"])?,
            api_key: env_required("powerdns", &["PDNS_API_KEY"])?.into(),
            server_id: env_any(&["PDNS_SERVER_NAME"]),
        })
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("x-api-key", self.api_key.expose().to_string())]
    }

    /// The TXT values at `fqdn` and the RRset's TTL.
    async fn current(&self, zone: &str, fqdn: &str) -> Result<(Vec<String>, Option<u64>)> {
        let url = format!("{}/zones/{}", self.base, encode(zone));
        let reply = self
            .api
            .send(Method::GET, &url, &self.headers(), None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::UNPROCESSABLE_ENTITY
        {
            return Err(Error::new(
                ErrorKind::Challenge,
                format!(
                    "powerdns: zone `{zone}` does not exist on the server: {}",
                    reply.text()
                ),
            ));
        }
        if !reply.status.is_success() {
            return Err(self.api.failed(&Method::GET, &url, &reply));
        }
        let body = reply.json()?;
        let set = body["rrsets"].as_array().into_iter().flatten().find(|s| {
            s["type"] == "TXT"
                && s["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(fqdn))
        });
        let Some(set) = set else {
            return Ok((Vec::new(), None));
        };
        let values = set["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["content"].as_str().map(unquote_txt))
            .collect();
        Ok((values, set["ttl"].as_u64()))
    }

    async fn replace(&self, zone: &str, fqdn: &str, ttl: u64, values: &[String]) -> Result<()> {
        let rrset = if values.is_empty() {
            json!({"name": fqdn, "type": "TXT", "changetype": "DELETE"})
        } else {
            let records: Vec<_> = values
                .iter()
                .map(|v| json!({"content": quote_txt(v), "disabled": false}))
                .collect();
            json!({"name": fqdn, "type": "TXT", "ttl": ttl, "changetype": "REPLACE", "records": records})
        };
        let url = format!("{}/zones/{}", self.base, encode(zone));
        self.api
            .json(
                Method::PATCH,
                &url,
                &self.headers(),
                Some(&json!({"rrsets": [rrset]})),
            )
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl DnsProvider for PowerDns {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        for r in records {
            let fqdn = r.fqdn(zone);
            let _held = self.locks.hold(&fqdn).await;
            let (mut values, _) = self.current(zone, &fqdn).await?;
            if !values.contains(&r.value) {
                values.push(r.value.clone());
            }
            self.replace(zone, &fqdn, r.ttl.as_secs().max(1), &values)
                .await?;
        }
        Ok(records.to_vec())
    }

    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let mut deleted = Vec::new();
        for r in records {
            let fqdn = r.fqdn(zone);
            let _held = self.locks.hold(&fqdn).await;
            let (mut values, ttl) = self.current(zone, &fqdn).await?;
            let before = values.len();
            values.retain(|v| v != &r.value);
            if values.len() != before {
                self.replace(zone, &fqdn, ttl.unwrap_or(r.ttl.as_secs()).max(1), &values)
                    .await?;
                deleted.push(r.clone());
            }
        }
        Ok(deleted)
    }
}
