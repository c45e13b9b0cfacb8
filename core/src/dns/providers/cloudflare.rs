//! Cloudflare's API v4: zones are looked up by name (`GET /zones?name=`), records created with
//! `POST /zones/{id}/dns_records` and removed by id; a record without an id is found through
//! the paginated `GET /zones/{id}/dns_records?type=TXT&name=…`. Answers carry
//! `{"success": false, "errors": [{"code", "message"}]}` on failure; 429 is retried after
//! `Retry-After`.
//!
//! JSON: `{"provider": "cloudflare", "api_token": "…"}` (a token with Zone:Read and DNS:Edit),
//! or the legacy `{"email": "…", "api_key": "…"}`; `base_url` overrides
//! `https://api.cloudflare.com/client/v4`. Environment: `CLOUDFLARE_DNS_API_TOKEN`,
//! `CF_DNS_API_TOKEN`, `CLOUDFLARE_API_TOKEN`, `CF_API_TOKEN`, or `CLOUDFLARE_EMAIL`/`CF_API_EMAIL`
//! with `CLOUDFLARE_API_KEY`/`CF_API_KEY`.

use std::collections::HashMap;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http_api::{Api, encode};
use super::{Secret, env_any};
use crate::dns::provider::{DnsProvider, DnsRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

const DEFAULT_BASE: &str = "https://api.cloudflare.com/client/v4";

/// Settings of [`Cloudflare`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflareConfig {
    /// An API token (preferred).
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// Legacy global API key, with `email`.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// The account email for `api_key`.
    #[serde(default)]
    pub email: Option<String>,
    /// API base URL.
    #[serde(default)]
    pub base_url: Option<String>,
}

enum Auth {
    Token(Secret),
    Key { email: String, key: Secret },
}

/// Edits Cloudflare zones.
pub struct Cloudflare {
    api: Api,
    base: String,
    auth: Auth,
    zone_ids: std::sync::Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudflare")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Cloudflare {
    /// Checks the settings.
    pub fn new(config: CloudflareConfig) -> Result<Self> {
        let auth = match (config.api_token, config.api_key, config.email) {
            (Some(t), _, _) if !t.is_empty() => Auth::Token(t),
            (_, Some(key), Some(email)) if !key.is_empty() && !email.is_empty() => {
                Auth::Key { email, key }
            }
            _ => {
                return Err(Error::config(
                    ConfigField::DnsProvider,
                    "cloudflare: set api_token (or the legacy email with api_key)",
                ));
            }
        };
        Ok(Self {
            api: Api::new("cloudflare")?,
            base: config
                .base_url
                .unwrap_or_else(|| DEFAULT_BASE.into())
                .trim_end_matches('/')
                .to_string(),
            auth,
            zone_ids: Default::default(),
        })
    }

    /// From the environment (see the module documentation).
    pub fn from_env() -> Result<Self> {
        const TOKENS: [&str; 4] = [
            "CLOUDFLARE_DNS_API_TOKEN",
            "CF_DNS_API_TOKEN",
            "CLOUDFLARE_API_TOKEN",
            "CF_API_TOKEN",
        ];
        let config = CloudflareConfig {
            api_token: env_any(&TOKENS).map(Secret::from),
            api_key: env_any(&["CLOUDFLARE_API_KEY", "CF_API_KEY"]).map(Secret::from),
            email: env_any(&["CLOUDFLARE_EMAIL", "CF_API_EMAIL"]),
            base_url: None,
        };
        if config.api_token.is_none() && (config.api_key.is_none() || config.email.is_none()) {
            return Err(Error::config(
                ConfigField::DnsProvider,
                format!(
                    "cloudflare: set {} (or CLOUDFLARE_EMAIL with CLOUDFLARE_API_KEY) in the environment",
                    TOKENS.join(" or ")
                ),
            ));
        }
        Self::new(config)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        match &self.auth {
            Auth::Token(t) => vec![("authorization", format!("Bearer {}", t.expose()))],
            Auth::Key { email, key } => vec![
                ("x-auth-email", email.clone()),
                ("x-auth-key", key.expose().to_string()),
            ],
        }
    }

    /// Calls the API and unwraps its envelope.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let reply = self
            .api
            .send(method.clone(), &url, &self.headers(), body)
            .await?;
        let json = reply.json().unwrap_or(Value::Null);
        if reply.status.is_success() && json["success"] != Value::Bool(false) {
            return Ok((reply.status, json));
        }
        if reply.status == StatusCode::NOT_FOUND {
            return Ok((reply.status, json));
        }
        let errors: Vec<String> = json["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} (code {})",
                    e["message"].as_str().unwrap_or("?"),
                    e["code"]
                )
            })
            .collect();
        let why = if errors.is_empty() {
            reply.text()
        } else {
            errors.join("; ")
        };
        Err(self.api.error(
            ErrorKind::Challenge,
            format!("{method} {path} answered {}: {why}", reply.status),
        ))
    }

    async fn zone_id(&self, zone: &str) -> Result<String> {
        let name = zone.trim_end_matches('.');
        if let Some(id) = self
            .zone_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(id.clone());
        }
        let (_, json) = self
            .call(Method::GET, &format!("/zones?name={}", encode(name)), None)
            .await?;
        let id = json["result"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|z| {
                z["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|z| z["id"].as_str())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Challenge,
                    format!("cloudflare: no zone `{name}` visible to these credentials"),
                )
            })?
            .to_string();
        self.zone_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.into(), id.clone());
        Ok(id)
    }

    /// Ids of the TXT records at `fqdn` holding `value`, over every page.
    async fn find(&self, zone_id: &str, fqdn: &str, value: &str) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut page = 1;
        loop {
            let path = format!(
                "/zones/{zone_id}/dns_records?type=TXT&name={}&page={page}&per_page=100",
                encode(fqdn.trim_end_matches('.'))
            );
            let (_, json) = self.call(Method::GET, &path, None).await?;
            for r in json["result"].as_array().into_iter().flatten() {
                let content = r["content"].as_str().map(super::unquote_txt);
                if content.as_deref() == Some(value)
                    && let Some(id) = r["id"].as_str()
                {
                    ids.push(id.to_string());
                }
            }
            let total = json["result_info"]["total_pages"].as_u64().unwrap_or(1);
            if page >= total {
                return Ok(ids);
            }
            page += 1;
        }
    }
}

#[async_trait::async_trait]
impl DnsProvider for Cloudflare {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let zone_id = self.zone_id(zone).await?;
        let mut out = Vec::new();
        for r in records {
            // Cloudflare's TTL is 1 (automatic) or 60..86400.
            let ttl = match r.ttl.as_secs() {
                0 => 1,
                t => t.clamp(60, 86400),
            };
            let body = json!({"type": r.record_type, "name": r.fqdn(zone).trim_end_matches('.'), "content": r.value, "ttl": ttl});
            let (_, json) = self
                .call(
                    Method::POST,
                    &format!("/zones/{zone_id}/dns_records"),
                    Some(&body),
                )
                .await?;
            let mut created = r.clone();
            created.id = json["result"]["id"].as_str().map(str::to_string);
            out.push(created);
        }
        Ok(out)
    }

    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let zone_id = self.zone_id(zone).await?;
        let mut deleted = Vec::new();
        for r in records {
            let ids = match &r.id {
                Some(id) => vec![id.clone()],
                None => self.find(&zone_id, &r.fqdn(zone), &r.value).await?,
            };
            for id in ids {
                let (status, _) = self
                    .call(
                        Method::DELETE,
                        &format!("/zones/{zone_id}/dns_records/{id}"),
                        None,
                    )
                    .await?;
                if status.is_success() {
                    let mut gone = r.clone();
                    gone.id = Some(id);
                    deleted.push(gone);
                }
            }
        }
        Ok(deleted)
    }
}
