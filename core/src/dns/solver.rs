//! The DNS-01 solver: puts `_acme-challenge.<name>` TXT = base64url(SHA-256(key authorization))
//! into the zone that holds it (following a CNAME of `_acme-challenge` into another zone, the
//! acme-dns pattern), waits until the zone's authoritative servers (or the configured
//! resolvers) serve it, and always takes it away again, also when the order fails or the
//! caller gives up (the record is then removed in the background).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::client;
use super::provider::{DnsProvider, DnsRecord, normalize_fqdn, relative_name};
use super::wire::{self, RData};
use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

/// Default time to live of challenge records (seconds matter little: they live a minute).
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);
/// Default limit on waiting for a record to become visible.
pub const DEFAULT_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(120);
/// Default pause between visibility checks.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// CNAME hops followed from `_acme-challenge.<name>` before giving up.
const MAX_CNAME_HOPS: usize = 8;

/// How DNS-01 is solved: the provider that edits the zone and how to wait for the record.
/// Configured with [`ConfigBuilder::dns_challenge`](crate::ConfigBuilder::dns_challenge);
/// when set, DNS-01 is used for every name.
#[derive(Clone)]
pub struct DnsChallenge {
    pub(crate) provider: Arc<dyn DnsProvider>,
    pub(crate) ttl: Duration,
    pub(crate) propagation_delay: Duration,
    pub(crate) propagation_timeout: Option<Duration>,
    pub(crate) poll_interval: Duration,
    pub(crate) resolvers: Vec<String>,
    pub(crate) override_domain: Option<String>,
    pub(crate) follow_cname: bool,
    /// Parsed from `resolvers` when the config is built.
    pub(crate) resolver_addrs: Vec<SocketAddr>,
}

impl std::fmt::Debug for DnsChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsChallenge")
            .field("provider", &self.provider)
            .field("ttl", &self.ttl)
            .field("propagation_delay", &self.propagation_delay)
            .field("propagation_timeout", &self.propagation_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("resolvers", &self.resolvers)
            .field("override_domain", &self.override_domain)
            .field("follow_cname", &self.follow_cname)
            .finish()
    }
}

impl DnsChallenge {
    /// DNS-01 through `provider`, with CertMagic's defaults: TTL 120 s, no delay, checks every
    /// 2 s for up to 2 minutes against the zone's authoritative servers, CNAMEs followed.
    pub fn new(provider: Arc<dyn DnsProvider>) -> Self {
        Self {
            provider,
            ttl: DEFAULT_TTL,
            propagation_delay: Duration::ZERO,
            propagation_timeout: Some(DEFAULT_PROPAGATION_TIMEOUT),
            poll_interval: DEFAULT_POLL_INTERVAL,
            resolvers: Vec::new(),
            override_domain: None,
            follow_cname: true,
            resolver_addrs: Vec::new(),
        }
    }

    /// Time to live of the TXT records.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
    /// Wait this long after creating a record before the first check (for providers known to
    /// publish late, or resolvers that cache negative answers).
    #[must_use]
    pub fn propagation_delay(mut self, delay: Duration) -> Self {
        self.propagation_delay = delay;
        self
    }
    /// Give up waiting for the record after this long; `None` skips the checks entirely (the
    /// CA is asked to validate right after the delay).
    #[must_use]
    pub fn propagation_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.propagation_timeout = timeout;
        self
    }
    /// Pause between checks.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
    /// DNS servers (`ip` or `ip:port`) to find zones, follow CNAMEs and check propagation
    /// with, instead of `/etc/resolv.conf` for lookups and the zone's authoritative servers
    /// for checks.
    #[must_use]
    pub fn resolvers(mut self, resolvers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.resolvers = resolvers.into_iter().map(Into::into).collect();
        self
    }
    /// Put every challenge record at this name instead of `_acme-challenge.<name>` (a
    /// delegated validation domain).
    #[must_use]
    pub fn override_domain(mut self, domain: impl Into<String>) -> Self {
        self.override_domain = Some(domain.into());
        self
    }
    /// Follow a CNAME at `_acme-challenge.<name>` and put the record at its target (default
    /// on).
    #[must_use]
    pub fn follow_cname(mut self, follow: bool) -> Self {
        self.follow_cname = follow;
        self
    }

    /// Checks the values; called by the config builder.
    pub(crate) fn validate(mut self) -> Result<Self> {
        if self.ttl.as_secs() > u64::from(i32::MAX as u32) {
            return Err(Error::config(
                ConfigField::DnsTtl,
                "longer than 2^31 seconds",
            ));
        }
        use crate::config::{MAX_TIMEOUT, within};
        within(
            ConfigField::DnsPollInterval,
            self.poll_interval,
            Duration::from_millis(1),
            Duration::from_secs(3600),
        )?;
        within(
            ConfigField::DnsPropagationDelay,
            self.propagation_delay,
            Duration::ZERO,
            MAX_TIMEOUT,
        )?;
        if let Some(t) = self.propagation_timeout {
            within(
                ConfigField::DnsPropagationTimeout,
                t,
                Duration::ZERO,
                MAX_TIMEOUT,
            )?;
        }
        self.resolver_addrs = self
            .resolvers
            .iter()
            .map(|r| {
                client::parse_server(r).ok_or_else(|| {
                    Error::config(
                        ConfigField::DnsResolvers,
                        format!("`{r}` is not an IP address with an optional port"),
                    )
                })
            })
            .collect::<Result<_>>()?;
        if let Some(d) = &self.override_domain
            && (d.trim().trim_end_matches('.').is_empty() || d.contains(char::is_whitespace))
        {
            return Err(Error::config(
                ConfigField::DnsOverrideDomain,
                format!("`{d}` is not a domain name"),
            ));
        }
        Ok(self)
    }

    /// The provider.
    pub fn provider(&self) -> &Arc<dyn DnsProvider> {
        &self.provider
    }

    fn lookup_servers(&self) -> Vec<SocketAddr> {
        if self.resolver_addrs.is_empty() {
            client::system_resolvers()
        } else {
            self.resolver_addrs.clone()
        }
    }
}

/// The DNS-01 tunables as one plain value, the C API's JSON form, set with
/// [`ConfigBuilder::dns_options`](crate::ConfigBuilder::dns_options); unset fields keep
/// [`DnsChallenge::new`]'s defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsOptions {
    /// TTL of the TXT records, seconds.
    pub ttl_secs: Option<u64>,
    /// Wait before the first propagation check, milliseconds.
    pub propagation_delay_ms: Option<u64>,
    /// Give up waiting after this many milliseconds; negative turns the checks off.
    pub propagation_timeout_ms: Option<i64>,
    /// Pause between checks, milliseconds.
    pub poll_interval_ms: Option<u64>,
    /// DNS servers (`ip` or `ip:port`) for lookups and checks.
    pub resolvers: Vec<String>,
    /// Put every record at this name instead of `_acme-challenge.<name>`.
    pub override_domain: Option<String>,
    /// Follow a CNAME at `_acme-challenge.<name>` (default true).
    pub follow_cname: Option<bool>,
}

impl DnsOptions {
    /// Parses the JSON form (`{"ttl_secs": 60, "resolvers": ["127.0.0.1:53"], …}`).
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| {
            Error::config(
                ConfigField::DnsOptions,
                super::providers::without_values(&e.to_string()),
            )
        })
    }
}

/// The TXT value for a key authorization.
pub fn txt_value(key_authorization: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(key_authorization.as_bytes()))
}

/// A record this process put into a zone; removed by [`DnsPresented::clean_up`] or, if
/// dropped first, in the background.
#[derive(Debug)]
pub(crate) struct DnsPresented {
    provider: Arc<dyn DnsProvider>,
    zone: String,
    fqdn: String,
    value: String,
    records: Vec<DnsRecord>,
    cleanup_timeout: Duration,
}

/// Creates the challenge record for `identifier` (a wildcard's base name is used as is).
pub(crate) async fn present(
    dns: &DnsChallenge,
    identifier: &str,
    key_authorization: &str,
) -> Result<DnsPresented> {
    let base = identifier.trim_start_matches("*.");
    let lookup = dns.lookup_servers();
    let mut fqdn = match &dns.override_domain {
        Some(d) => normalize_fqdn(d),
        None => normalize_fqdn(&format!("_acme-challenge.{base}")),
    };
    if dns.follow_cname {
        fqdn = follow_cnames(&lookup, &fqdn).await?;
    }
    let zone = find_zone(&lookup, &fqdn).await?;
    let value = txt_value(key_authorization);
    let wanted = DnsRecord::txt(relative_name(&fqdn, &zone), value.clone(), dns.ttl);
    // Armed before the provider is called: if this is cancelled while the provider works, the
    // record it may have created is removed all the same (by name and value).
    let mut presented = DnsPresented {
        provider: dns.provider.clone(),
        zone,
        fqdn,
        value,
        records: vec![wanted.clone()],
        cleanup_timeout: dns
            .propagation_timeout
            .unwrap_or(DEFAULT_PROPAGATION_TIMEOUT),
    };
    match dns
        .provider
        .append_records(&presented.zone, std::slice::from_ref(&wanted))
        .await
    {
        // The records as created (with the provider's ids, for the delete).
        Ok(records) if !records.is_empty() => presented.records = records,
        Ok(_) => {}
        Err(e) => {
            presented.records.clear(); // refused: nothing to remove
            let msg = format!(
                "adding TXT record `{}` in zone `{}`: {}",
                presented.fqdn,
                presented.zone,
                e.message()
            );
            return Err(Error::new(ErrorKind::Challenge, msg).with_source(e));
        }
    }
    tracing::info!(record = %presented.fqdn, zone = %presented.zone, "DNS-01 record created");
    Ok(presented)
}

impl DnsPresented {
    /// Waits until the record is visible where the CA will look.
    pub async fn wait(&self, dns: &DnsChallenge) -> Result<()> {
        if !dns.propagation_delay.is_zero() {
            tokio::time::sleep(dns.propagation_delay).await;
        }
        let Some(timeout) = dns.propagation_timeout else {
            return Ok(());
        };
        let servers = if dns.resolver_addrs.is_empty() {
            authoritative_servers(&client::system_resolvers(), &self.zone).await?
        } else {
            dns.resolver_addrs.clone()
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let missing = self.missing_at(&servers).await;
            if missing.is_empty() {
                tracing::debug!(record = %self.fqdn, "DNS-01 record visible");
                return Ok(());
            }
            if tokio::time::Instant::now() + dns.poll_interval > deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "timed out after {timeout:?} waiting for TXT record `{}` = \"{}\" to be visible; {}",
                        self.fqdn,
                        self.value,
                        missing.join("; ")
                    ),
                ));
            }
            tokio::time::sleep(dns.poll_interval).await;
        }
    }

    /// The servers that do not serve the value yet, with what they said.
    async fn missing_at(&self, servers: &[SocketAddr]) -> Vec<String> {
        let mut missing = Vec::new();
        for s in servers {
            match client::query(&[*s], &self.fqdn, wire::TYPE_TXT).await {
                Ok(r) => {
                    let seen = r.answers.iter().any(|rec| {
                        rec.name == self.fqdn && rec.data == RData::Txt(self.value.clone())
                    });
                    if !seen {
                        let found: Vec<String> = r
                            .answers
                            .iter()
                            .filter_map(|rec| match &rec.data {
                                RData::Txt(t) => Some(format!("\"{t}\"")),
                                _ => None,
                            })
                            .collect();
                        missing.push(if found.is_empty() {
                            format!("{s} answered {} with no TXT", wire::rcode_name(r.rcode))
                        } else {
                            format!("{s} has only {}", found.join(", "))
                        });
                    }
                }
                Err(e) => missing.push(e.message().to_string()),
            }
        }
        missing
    }

    /// Removes the record; failures are logged (the record then stays until removed by hand).
    pub async fn clean_up(mut self) {
        let records = std::mem::take(&mut self.records);
        delete(
            self.provider.clone(),
            std::mem::take(&mut self.zone),
            std::mem::take(&mut self.fqdn),
            records,
            self.cleanup_timeout,
        )
        .await;
    }
}

impl Drop for DnsPresented {
    fn drop(&mut self) {
        if self.records.is_empty() {
            return;
        }
        // Dropped before clean_up (the order was cancelled): remove the record anyway.
        let job = delete(
            self.provider.clone(),
            std::mem::take(&mut self.zone),
            std::mem::take(&mut self.fqdn),
            std::mem::take(&mut self.records),
            self.cleanup_timeout,
        );
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(job);
            }
            Err(_) => tracing::warn!("DNS-01 record left behind: no runtime to remove it"),
        }
    }
}

async fn delete(
    provider: Arc<dyn DnsProvider>,
    zone: String,
    fqdn: String,
    records: Vec<DnsRecord>,
    timeout: Duration,
) {
    match tokio::time::timeout(timeout, provider.delete_records(&zone, &records)).await {
        Ok(Ok(_)) => tracing::info!(record = %fqdn, zone = %zone, "DNS-01 record removed"),
        Ok(Err(e)) => {
            tracing::warn!(record = %fqdn, zone = %zone, error = %e, "removing DNS-01 record")
        }
        Err(_) => tracing::warn!(record = %fqdn, zone = %zone, "removing DNS-01 record timed out"),
    }
}

/// Follows CNAMEs from `fqdn` to the name that holds the record.
async fn follow_cnames(servers: &[SocketAddr], fqdn: &str) -> Result<String> {
    let mut name = fqdn.to_string();
    for _ in 0..MAX_CNAME_HOPS {
        let r = client::query(servers, &name, wire::TYPE_CNAME).await?;
        let target = r.answers.iter().find_map(|rec| match &rec.data {
            RData::Name(t) if rec.rtype == wire::TYPE_CNAME && rec.name == name => Some(t.clone()),
            _ => None,
        });
        match target {
            Some(t) => {
                tracing::debug!(from = %name, to = %t, "following CNAME for DNS-01");
                name = t;
            }
            None => return Ok(name),
        }
    }
    Err(Error::new(
        ErrorKind::Challenge,
        format!("more than {MAX_CNAME_HOPS} CNAMEs from `{fqdn}`"),
    ))
}

/// The zone holding `fqdn`: the nearest enclosing name with an SOA record.
pub(crate) async fn find_zone(servers: &[SocketAddr], fqdn: &str) -> Result<String> {
    let mut name = normalize_fqdn(fqdn);
    let mut last_error = None;
    while name != "." {
        match client::query(servers, &name, wire::TYPE_SOA).await {
            Ok(r) => {
                let soa = r
                    .answers
                    .iter()
                    .any(|rec| rec.rtype == wire::TYPE_SOA && rec.name == name);
                if soa {
                    return Ok(name);
                }
            }
            Err(e) => last_error = Some(e),
        }
        name = match name.split_once('.') {
            Some((_, rest)) if !rest.is_empty() => rest.to_string(),
            _ => ".".into(),
        };
    }
    let why = last_error
        .map(|e| format!(" ({})", e.message()))
        .unwrap_or_default();
    Err(Error::new(
        ErrorKind::Challenge,
        format!("found no DNS zone (SOA) holding `{fqdn}`{why}"),
    ))
}

/// The addresses (port 53) of `zone`'s name servers.
async fn authoritative_servers(resolvers: &[SocketAddr], zone: &str) -> Result<Vec<SocketAddr>> {
    let r = client::query(resolvers, zone, wire::TYPE_NS).await?;
    let mut out = Vec::new();
    for rec in r.answers.iter().filter(|r| r.rtype == wire::TYPE_NS) {
        let RData::Name(ns) = &rec.data else { continue };
        let mut addrs: Vec<SocketAddr> = r
            .additional
            .iter()
            .filter(|a| &a.name == ns)
            .filter_map(|a| match a.data {
                RData::Address(ip) => Some(SocketAddr::new(ip, 53)),
                _ => None,
            })
            .collect();
        if addrs.is_empty()
            && let Ok(found) = crate::net::lookup_host(ns.trim_end_matches('.'), 53).await
        {
            addrs.extend(found);
        }
        out.extend(addrs.into_iter().filter(|a| a.is_ipv4()).take(1));
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::Challenge,
            format!(
                "no reachable name server found for zone `{zone}`; set dns resolvers to check propagation"
            ),
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_value_is_b64url_sha256() {
        // RFC 8555 8.4: base64url(SHA-256(key authorization)), no padding.
        let v = txt_value("token.thumbprint");
        assert_eq!(v.len(), 43);
        assert!(!v.contains('='));
        assert_eq!(
            v,
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"token.thumbprint"))
        );
    }

    #[derive(Debug)]
    struct Nothing;
    #[async_trait::async_trait]
    impl DnsProvider for Nothing {
        async fn append_records(&self, _: &str, r: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
            Ok(r.to_vec())
        }
        async fn delete_records(&self, _: &str, r: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
            Ok(r.to_vec())
        }
    }

    #[test]
    fn options_from_json() {
        let p: Arc<dyn DnsProvider> = Arc::new(Nothing);
        let o = DnsOptions::from_json(
            r#"{"ttl_secs": 60, "propagation_timeout_ms": -1, "resolvers": ["127.0.0.1:53"]}"#,
        )
        .unwrap();
        let config = crate::Config::builder()
            .storage(Arc::new(crate::MemoryStorage::new()))
            .dns_provider(p)
            .dns_options(&o)
            .build()
            .unwrap();
        let d = config.dns_challenge().unwrap();
        assert_eq!(d.ttl, Duration::from_secs(60));
        assert_eq!(d.propagation_timeout, None);
        assert_eq!(d.resolvers, ["127.0.0.1:53"]);
        assert_eq!(d.poll_interval, DEFAULT_POLL_INTERVAL);
        let e = DnsOptions::from_json(r#"{"ttl": 60}"#).unwrap_err();
        assert_eq!(e.config_field(), Some(ConfigField::DnsOptions));
    }

    #[test]
    fn bad_options_name_their_field() {
        let p: Arc<dyn DnsProvider> = Arc::new(Nothing);
        let e = DnsChallenge::new(p.clone())
            .resolvers(["ns1.example"])
            .validate()
            .unwrap_err();
        assert_eq!(e.config_field(), Some(ConfigField::DnsResolvers));
        let e = DnsChallenge::new(p.clone())
            .poll_interval(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert_eq!(e.config_field(), Some(ConfigField::DnsPollInterval));
        let ok = DnsChallenge::new(p)
            .resolvers(["127.0.0.1:5300", "::1"])
            .validate()
            .unwrap();
        assert_eq!(ok.resolver_addrs.len(), 2);
    }
}
