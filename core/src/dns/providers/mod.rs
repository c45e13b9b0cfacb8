//! Built-in DNS providers, each in its own module behind a cargo feature (all on by default):
//! RFC 2136 dynamic updates with TSIG (`dns-rfc2136`), the PowerDNS Authoritative API
//! (`dns-powerdns`), a user command (`dns-exec`), and the HTTP APIs of Cloudflare
//! (`dns-cloudflare`), Amazon Route 53 (`dns-route53`), DigitalOcean (`dns-digitalocean`),
//! Hetzner DNS (`dns-hetzner`) and Gandi LiveDNS (`dns-gandi`).
//!
//! Every provider is configured from a small JSON object (what the C, Python and Node
//! packages pass through) or from the environment variables its vendor's tools use; secrets
//! are kept in [`Secret`], which never prints.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use super::DnsProvider;
use crate::error::{Error, Result};
use crate::fields::ConfigField;

#[cfg(feature = "dns-cloudflare")]
pub mod cloudflare;
#[cfg(feature = "dns-digitalocean")]
pub mod digitalocean;
#[cfg(feature = "dns-exec")]
pub mod exec;
#[cfg(feature = "dns-gandi")]
pub mod gandi;
#[cfg(feature = "dns-hetzner")]
pub mod hetzner;
#[cfg(any(
    feature = "dns-cloudflare",
    feature = "dns-digitalocean",
    feature = "dns-gandi",
    feature = "dns-hetzner",
    feature = "dns-powerdns",
    feature = "dns-route53"
))]
mod http_api;
#[cfg(feature = "dns-powerdns")]
pub mod powerdns;
#[cfg(feature = "dns-rfc2136")]
pub mod rfc2136;
#[cfg(feature = "dns-route53")]
pub mod route53;

/// A credential: shown as `***` by `Debug` and `Display`, so it never reaches a log.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The credential itself, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// The names of the providers compiled in.
pub fn available() -> Vec<&'static str> {
    [
        ("rfc2136", cfg!(feature = "dns-rfc2136")),
        ("powerdns", cfg!(feature = "dns-powerdns")),
        ("exec", cfg!(feature = "dns-exec")),
        ("cloudflare", cfg!(feature = "dns-cloudflare")),
        ("route53", cfg!(feature = "dns-route53")),
        ("digitalocean", cfg!(feature = "dns-digitalocean")),
        ("hetzner", cfg!(feature = "dns-hetzner")),
        ("gandi", cfg!(feature = "dns-gandi")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

fn unknown(name: &str) -> Error {
    Error::config(
        ConfigField::DnsProvider,
        format!(
            "unknown DNS provider `{name}` (available: {})",
            available().join(", ")
        ),
    )
}

/// Parses a provider's JSON credentials, naming the provider in the error (and never a value:
/// a secret given where another setting belongs would be printed by serde's message).
#[allow(dead_code)]
fn parse<T: serde::de::DeserializeOwned>(provider: &str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        Error::config(
            ConfigField::DnsProvider,
            format!("{provider} settings: {}", without_values(&e.to_string())),
        )
    })
}

/// A serde message with the offending value left out: `invalid type: string "s3cret",
/// expected u64` becomes `invalid type: a string, expected u64`.
pub(crate) fn without_values(message: &str) -> String {
    for lead in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(start) = message.find(lead) {
            let rest = &message[start + lead.len()..];
            let kind = rest.split([' ', ',']).next().unwrap_or("value");
            let tail = rest.find(", expected").map_or("", |i| &rest[i..]);
            return format!("{}{lead}a {kind}{tail}", &message[..start]);
        }
    }
    message.to_string()
}

/// A provider from JSON: `{"provider": "<name>", …its settings…}`, e.g.
/// `{"provider": "rfc2136", "server": "127.0.0.1:53", "key_name": "k", "key_secret": "…"}`.
/// With only `provider` given, settings come from the environment ([`from_env`]).
pub fn from_json(value: &serde_json::Value) -> Result<Arc<dyn DnsProvider>> {
    let obj = value
        .as_object()
        .ok_or_else(|| Error::config(ConfigField::DnsProvider, "must be a JSON object"))?;
    let name = obj
        .get("provider")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::config(ConfigField::DnsProvider, "missing \"provider\" (its name)"))?
        .to_ascii_lowercase();
    let mut settings = obj.clone();
    settings.remove("provider");
    if settings.is_empty() {
        return from_env(&name);
    }
    #[allow(unused_variables)]
    let settings = serde_json::Value::Object(settings);
    match name.as_str() {
        #[cfg(feature = "dns-rfc2136")]
        "rfc2136" => Ok(Arc::new(rfc2136::Rfc2136::new(parse(&name, settings)?)?)),
        #[cfg(feature = "dns-powerdns")]
        "powerdns" => Ok(Arc::new(powerdns::PowerDns::new(parse(&name, settings)?)?)),
        #[cfg(feature = "dns-exec")]
        "exec" => Ok(Arc::new(exec::Exec::new(parse(&name, settings)?)?)),
        #[cfg(feature = "dns-cloudflare")]
        "cloudflare" => Ok(Arc::new(cloudflare::Cloudflare::new(parse(
            &name, settings,
        )?)?)),
        #[cfg(feature = "dns-route53")]
        "route53" => Ok(Arc::new(route53::Route53::new(parse(&name, settings)?)?)),
        #[cfg(feature = "dns-digitalocean")]
        "digitalocean" => Ok(Arc::new(digitalocean::DigitalOcean::new(parse(
            &name, settings,
        )?)?)),
        #[cfg(feature = "dns-hetzner")]
        "hetzner" => Ok(Arc::new(hetzner::Hetzner::new(parse(&name, settings)?)?)),
        #[cfg(feature = "dns-gandi")]
        "gandi" => Ok(Arc::new(gandi::Gandi::new(parse(&name, settings)?)?)),
        other => Err(unknown(other)),
    }
}

/// A provider from a text setting: a JSON object as in [`from_json`], or just a provider's
/// name, configured from the environment ([`from_env`]).
pub fn from_spec(spec: &str) -> Result<Arc<dyn DnsProvider>> {
    let spec = spec.trim();
    if spec.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(spec)
            .map_err(|e| Error::config(ConfigField::DnsProvider, format!("not valid JSON: {e}")))?;
        from_json(&value)
    } else {
        from_env(spec)
    }
}

/// A provider configured from its vendor's usual environment variables (each module lists
/// them).
pub fn from_env(name: &str) -> Result<Arc<dyn DnsProvider>> {
    match name.to_ascii_lowercase().as_str() {
        #[cfg(feature = "dns-rfc2136")]
        "rfc2136" => Ok(Arc::new(rfc2136::Rfc2136::from_env()?)),
        #[cfg(feature = "dns-powerdns")]
        "powerdns" => Ok(Arc::new(powerdns::PowerDns::from_env()?)),
        #[cfg(feature = "dns-exec")]
        "exec" => Ok(Arc::new(exec::Exec::from_env()?)),
        #[cfg(feature = "dns-cloudflare")]
        "cloudflare" => Ok(Arc::new(cloudflare::Cloudflare::from_env()?)),
        #[cfg(feature = "dns-route53")]
        "route53" => Ok(Arc::new(route53::Route53::from_env()?)),
        #[cfg(feature = "dns-digitalocean")]
        "digitalocean" => Ok(Arc::new(digitalocean::DigitalOcean::from_env()?)),
        #[cfg(feature = "dns-hetzner")]
        "hetzner" => Ok(Arc::new(hetzner::Hetzner::from_env()?)),
        #[cfg(feature = "dns-gandi")]
        "gandi" => Ok(Arc::new(gandi::Gandi::from_env()?)),
        other => Err(unknown(other)),
    }
}

/// The first of `names` set (non-empty) in the environment.
#[allow(dead_code)]
pub(crate) fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// Like [`env_any`], but missing is a config error listing the names.
#[allow(dead_code)]
pub(crate) fn env_required(provider: &str, names: &[&str]) -> Result<String> {
    env_any(names).ok_or_else(|| {
        Error::config(
            ConfigField::DnsProvider,
            format!("{provider}: set {} in the environment", names.join(" or ")),
        )
    })
}

/// One async lock per record name, for providers that read and rewrite a whole RRset (two
/// values for one name must not overwrite each other within this process).
#[cfg_attr(
    not(any(
        feature = "dns-powerdns",
        feature = "dns-gandi",
        feature = "dns-route53"
    )),
    allow(dead_code)
)]
#[derive(Debug, Default)]
pub(crate) struct NameLocks(Arc<std::sync::Mutex<LockMap>>);

type LockMap = std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>;

/// A held name lock; the name's entry goes when nobody holds or waits for it (the map would
/// otherwise keep every name ever edited).
#[derive(Debug)]
pub(crate) struct NameGuard {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    all: Arc<std::sync::Mutex<LockMap>>,
    name: String,
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map's own reference left: no holder, no waiter.
        if all
            .get(&self.name)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            all.remove(&self.name);
        }
    }
}

#[cfg_attr(
    not(any(
        feature = "dns-powerdns",
        feature = "dns-gandi",
        feature = "dns-route53"
    )),
    allow(dead_code)
)]
impl NameLocks {
    /// Holds the lock of `name` until the guard is dropped.
    pub async fn hold(&self, name: &str) -> NameGuard {
        let lock = {
            let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(name.to_string()).or_default().clone()
        };
        NameGuard {
            guard: Some(lock.lock_owned().await),
            all: self.0.clone(),
            name: name.to_string(),
        }
    }

    /// Names with an entry (held or waited for).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// TXT content in the quoted form most APIs store, and back.
#[allow(dead_code)]
pub(crate) fn quote_txt(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[allow(dead_code)]
pub(crate) fn unquote_txt(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        // Several quoted strings ("a" "b") are one value split at 255 bytes.
        v.split("\" \"")
            .collect::<String>()
            .trim_matches('"')
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[tokio::test]
    async fn name_locks_forget_names_nobody_holds() {
        let locks = NameLocks::default();
        for i in 0..100 {
            let _held = locks.hold(&format!("n{i}.test")).await;
        }
        assert_eq!(locks.len(), 0);
        let held = locks.hold("a.test").await;
        let waiter = {
            let all = NameLocks(locks.0.clone());
            tokio::spawn(async move {
                let _g = all.hold("a.test").await;
            })
        };
        tokio::task::yield_now().await;
        drop(held);
        waiter.await.unwrap();
        assert_eq!(locks.len(), 0);
    }

    #[test]
    fn txt_quoting_round_trips() {
        assert_eq!(quote_txt("abc"), "\"abc\"");
        assert_eq!(unquote_txt("\"abc\""), "abc");
        assert_eq!(unquote_txt("abc"), "abc");
        assert_eq!(unquote_txt("\"ab\" \"cd\""), "abcd");
    }

    #[test]
    fn settings_errors_never_echo_a_value() {
        for (settings, secret) in [
            (
                serde_json::json!({"provider": "rfc2136", "server": "127.0.0.1:53", "key_name": "k", "key_secret": 424242}),
                "424242",
            ),
            (
                serde_json::json!({"provider": "exec", "command": "/bin/true", "timeout_secs": "hunter2"}),
                "hunter2",
            ),
            (
                serde_json::json!({"provider": "cloudflare", "api_token": ["tok-9f8e7d"]}),
                "tok-9f8e7d",
            ),
        ] {
            let e = from_json(&settings).unwrap_err();
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!format!("{e:?}").contains(secret), "{e:?}");
            assert_eq!(e.config_field(), Some(ConfigField::DnsProvider));
        }
        assert_eq!(
            without_values("invalid type: string \"x\", expected u64 at line 1"),
            "invalid type: a string, expected u64 at line 1"
        );
    }

    #[test]
    fn unknown_provider_names_the_choices() {
        let e = from_json(&serde_json::json!({"provider": "nope", "x": 1})).unwrap_err();
        assert_eq!(e.config_field(), Some(ConfigField::DnsProvider));
        assert!(e.message().contains("rfc2136"), "{e}");
        let e = from_json(&serde_json::json!({"server": "x"})).unwrap_err();
        assert!(e.message().contains("provider"), "{e}");
    }
}
