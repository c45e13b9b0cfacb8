//! [`Config`]: everything a [`Manager`](crate::Manager) needs, built with [`ConfigBuilder`] and
//! validated up front; a refused value names its field.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use rustls_pki_types::CertificateDer;

use crate::callbacks::CallbackDeadlines;
use crate::crypto::KeyType;
use crate::dns::DnsChallenge;
use crate::error::{Error, Result};
use crate::events::EventHandler;
use crate::fields::ConfigField;
use crate::issuer_spec::{IssuerPolicy, LocalIssuerSpec};
use crate::numbers::Span;
use crate::on_demand::{DecisionHandler, OnDemand};
use crate::rate_limiter::OrderRatePolicy;
use crate::retry::RetrySchedule;
use crate::storage::Storage;

mod builder;

pub use builder::ConfigBuilder;

/// Let's Encrypt's production directory (the default CA).
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// ZeroSSL's ACME directory (requires External Account Binding).
pub const ZEROSSL: &str = "https://acme.zerossl.com/v2/DV90";
/// Google Trust Services' production directory (requires External Account Binding).
pub const GOOGLE_TRUST_SERVICES: &str = "https://dv.acme-v02.api.pki.goog/directory";
/// Google Trust Services' staging directory.
pub const GOOGLE_TRUST_SERVICES_STAGING: &str = "https://dv.acme-v02.test-api.pki.goog/directory";

/// An ACME challenge type this library can solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengeType {
    /// HTTP-01: a file under `/.well-known/acme-challenge/` on port 80.
    Http01,
    /// TLS-ALPN-01: a special certificate for ALPN `acme-tls/1` on port 443.
    TlsAlpn01,
    /// DNS-01: a TXT record at `_acme-challenge.<name>`, through a
    /// [`DnsProvider`](crate::DnsProvider); the only way to wildcard certificates.
    Dns01,
}

impl ChallengeType {
    /// The ACME name (`http-01`, `tls-alpn-01`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::Dns01 => "dns-01",
        }
    }

    pub(crate) fn acme(self) -> instant_acme::ChallengeType {
        match self {
            Self::Http01 => instant_acme::ChallengeType::Http01,
            Self::TlsAlpn01 => instant_acme::ChallengeType::TlsAlpn01,
            Self::Dns01 => instant_acme::ChallengeType::Dns01,
        }
    }
}

impl std::str::FromStr for ChallengeType {
    type Err = Error;

    /// `http-01`, `tls-alpn-01` or `dns-01`; anything else is refused naming the
    /// `challenge_preference` field.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "http-01" => Ok(Self::Http01),
            "tls-alpn-01" => Ok(Self::TlsAlpn01),
            "dns-01" => Ok(Self::Dns01),
            other => Err(Error::config(
                ConfigField::ChallengePreference,
                format!("unknown challenge type `{other}` (http-01, tls-alpn-01, dns-01)"),
            )),
        }
    }
}

impl fmt::Display for ChallengeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// External Account Binding credentials (RFC 8555 §7.3.4), as given by CAs such as ZeroSSL.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalAccountBinding {
    /// The key identifier.
    pub key_id: String,
    /// The HMAC key, base64url-encoded (padding optional).
    pub hmac_key: String,
}

impl fmt::Debug for ExternalAccountBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalAccountBinding")
            .field("key_id", &self.key_id)
            .field("hmac_key", &"<redacted>")
            .finish()
    }
}

impl ExternalAccountBinding {
    pub(crate) fn decoded_key(&self) -> Result<Vec<u8>> {
        let k = self.hmac_key.trim();
        URL_SAFE_NO_PAD
            .decode(k)
            .or_else(|_| URL_SAFE.decode(k))
            .map_err(|e| Error::config(ConfigField::EabHmacKey, format!("not base64url: {e}")))
    }
}

/// Which chain to keep when the CA offers several (RFC 8555 `alternate` links).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainPreference {
    /// Prefer the first chain whose top certificate was issued by one of these root CNs.
    pub root_common_names: Vec<String>,
    /// Prefer the first chain in which any certificate was issued by one of these CNs.
    pub any_common_names: Vec<String>,
    /// Consider the smallest chains first.
    pub smallest: bool,
}

/// A sliding-window limit: at most `events` in any `window`. As the ACME client's limit on new
/// orders per (CA, account) it keeps many names managed at once inside the CA's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Orders allowed per window; 0 turns the limit off.
    pub events: usize,
    /// The sliding window.
    pub window: Duration,
}

impl RateLimit {
    /// Checks the window (named `field` in errors): longer than zero when the limit is on, at
    /// most a year.
    pub(crate) fn validate(self, field: ConfigField) -> Result<Self> {
        if self.events > 0 && self.window.is_zero() {
            return Err(Error::config(
                field,
                "a limit needs a window longer than zero",
            ));
        }
        within(field, self.window, Duration::ZERO, MAX_INTERVAL)?;
        Ok(self)
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            events: 10,
            window: Duration::from_secs(10),
        }
    }
}

/// The validated configuration of a [`Manager`](crate::Manager). Build it with
/// [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    pub(crate) ca: String,
    pub(crate) email: String,
    pub(crate) agreed: bool,
    pub(crate) trusted_roots: Vec<CertificateDer<'static>>,
    pub(crate) key_type: KeyType,
    pub(crate) renewal_window_ratio: f64,
    pub(crate) renew_check_interval: Duration,
    pub(crate) disable_http_challenge: bool,
    pub(crate) disable_tls_alpn_challenge: bool,
    pub(crate) alt_http_port: Option<u16>,
    pub(crate) alt_tls_alpn_port: Option<u16>,
    pub(crate) listen_host: String,
    pub(crate) challenge_preference: Vec<ChallengeType>,
    pub(crate) disable_distributed_solvers: bool,
    pub(crate) eab: Option<ExternalAccountBinding>,
    pub(crate) preferred_chain: Option<ChainPreference>,
    pub(crate) profile: Option<String>,
    pub(crate) must_staple: bool,
    pub(crate) ocsp: OcspSettings,
    pub(crate) reuse_private_keys: bool,
    pub(crate) order_timeout: Duration,
    pub(crate) order_rate: OrderRatePolicy,
    pub(crate) retry_schedule: RetrySchedule,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) event_handler: Option<Arc<dyn EventHandler>>,
    pub(crate) on_demand: Option<OnDemand>,
    pub(crate) cache_capacity: Option<usize>,
    pub(crate) dns: Option<DnsChallenge>,
    pub(crate) callback_deadlines: CallbackDeadlines,
    /// The issuers, in configured order: never empty (the configuration's own ACME CA when
    /// none were given).
    pub(crate) issuers: Vec<IssuerSetting>,
    pub(crate) issuer_policy: IssuerPolicy,
    /// For an ACME issuer's view of the config: where its EAB credentials come from.
    pub(crate) eab_from: Option<crate::zerossl::ZeroSslEab>,
}

/// One issuer of a [`Config`], checked.
#[derive(Debug, Clone)]
pub(crate) enum IssuerSetting {
    Acme(Box<AcmeSettings>),
    Local(LocalIssuerSpec),
}

/// Everything that makes one ACME issuer differ from the configuration's own CA.
#[derive(Debug, Clone)]
pub(crate) struct AcmeSettings {
    pub ca: String,
    pub email: String,
    pub eab: Option<ExternalAccountBinding>,
    pub trusted_roots: Vec<CertificateDer<'static>>,
    pub profile: Option<String>,
    pub preferred_chain: Option<ChainPreference>,
    pub order_rate: OrderRatePolicy,
    /// Where EAB credentials come from when none are given (a ZeroSSL issuer).
    pub eab_from: Option<crate::zerossl::ZeroSslEab>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("ca", &self.ca)
            .field("email", &self.email)
            .field("agreed", &self.agreed)
            .field("trusted_roots", &self.trusted_roots.len())
            .field("key_type", &self.key_type)
            .field("renewal_window_ratio", &self.renewal_window_ratio)
            .field("renew_check_interval", &self.renew_check_interval)
            .field("disable_http_challenge", &self.disable_http_challenge)
            .field(
                "disable_tls_alpn_challenge",
                &self.disable_tls_alpn_challenge,
            )
            .field("alt_http_port", &self.alt_http_port)
            .field("alt_tls_alpn_port", &self.alt_tls_alpn_port)
            .field("listen_host", &self.listen_host)
            .field("eab", &self.eab)
            .field("preferred_chain", &self.preferred_chain)
            .field("profile", &self.profile)
            .field("storage", &self.storage)
            .field("dns", &self.dns)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A builder with CertMagic's defaults: Let's Encrypt production, P-256 keys, renewal when a
    /// third of the lifetime remains, checks every 10 minutes, both challenges on ports 80/443,
    /// FileStorage in the default folder.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The CA directory URL.
    pub fn ca(&self) -> &str {
        &self.ca
    }
    /// The account email ("" for none).
    pub fn email(&self) -> &str {
        &self.email
    }
    /// The certificate key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
    /// Renew when less than this fraction of the lifetime remains.
    pub fn renewal_window_ratio(&self) -> f64 {
        self.renewal_window_ratio
    }
    /// How often the maintenance task looks for certificates to renew.
    pub fn renew_check_interval(&self) -> Duration {
        self.renew_check_interval
    }
    /// Whether OCSP responses are fetched and stapled.
    pub fn ocsp_stapling(&self) -> bool {
        self.ocsp.enabled
    }
    /// How often maintenance refreshes OCSP staples.
    pub fn ocsp_check_interval(&self) -> Duration {
        self.ocsp.check_interval
    }
    /// The storage shared with other instances.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
    /// The port the HTTP-01 solver listens on (80 unless changed).
    pub fn http_challenge_port(&self) -> u16 {
        self.alt_http_port.unwrap_or(80)
    }
    /// The port the TLS-ALPN-01 solver listens on (443 unless changed).
    pub fn tls_alpn_challenge_port(&self) -> u16 {
        self.alt_tls_alpn_port.unwrap_or(443)
    }
    /// The issuer key (storage folder name before sanitising) of the configured CA.
    pub fn issuer_key(&self) -> String {
        crate::storage::keys::issuer_key(&self.ca)
    }
    /// The on-demand decision hook, if one is set.
    pub fn on_demand_decision(&self) -> Option<&Arc<dyn DecisionHandler>> {
        self.on_demand.as_ref().and_then(|o| o.decision.as_ref())
    }
    /// When failed background work is tried again.
    pub fn retry_schedule(&self) -> &RetrySchedule {
        &self.retry_schedule
    }
    /// The limits on new orders this configuration runs with, and where they come from.
    pub fn order_rate_policy(&self) -> &OrderRatePolicy {
        &self.order_rate
    }
    /// The on-demand TLS policy, when on-demand TLS is on.
    pub fn on_demand(&self) -> Option<&OnDemand> {
        self.on_demand.as_ref()
    }
    /// The most certificates the cache holds (`None`: no limit).
    pub fn cache_capacity(&self) -> Option<usize> {
        self.cache_capacity
    }
    /// In which order each certificate's issuers are tried.
    pub fn issuer_policy(&self) -> IssuerPolicy {
        self.issuer_policy
    }
    /// Whether an issuer signs without challenges (the local CA), so wildcards need no DNS-01.
    pub(crate) fn has_local_issuer(&self) -> bool {
        self.issuers
            .iter()
            .any(|i| matches!(i, IssuerSetting::Local(_)))
    }
    /// This configuration as one ACME issuer of it sees it.
    pub(crate) fn for_acme_issuer(&self, acme: &AcmeSettings) -> Config {
        let mut c = self.clone();
        c.ca = acme.ca.clone();
        c.email = acme.email.clone();
        c.eab = acme.eab.clone();
        c.trusted_roots = acme.trusted_roots.clone();
        c.profile = acme.profile.clone();
        c.preferred_chain = acme.preferred_chain.clone();
        c.order_rate = acme.order_rate.clone();
        c.eab_from = acme.eab_from.clone();
        c
    }
    /// How long each kind of callback may take.
    pub fn callback_deadlines(&self) -> &CallbackDeadlines {
        &self.callback_deadlines
    }
    /// How DNS-01 is solved, if a DNS provider is configured.
    pub fn dns_challenge(&self) -> Option<&DnsChallenge> {
        self.dns.as_ref()
    }
    /// The challenge types that are enabled: DNS-01 alone when a DNS provider is configured
    /// (as Go CertMagic), else HTTP-01 and TLS-ALPN-01 unless disabled.
    pub fn enabled_challenges(&self) -> Vec<ChallengeType> {
        if self.dns.is_some() {
            return vec![ChallengeType::Dns01];
        }
        let mut v = Vec::new();
        if !self.disable_http_challenge {
            v.push(ChallengeType::Http01);
        }
        if !self.disable_tls_alpn_challenge {
            v.push(ChallengeType::TlsAlpn01);
        }
        v
    }
}

/// An account email, lowercased, without `mailto:` ("" for none).
fn normalize_email(given: &str) -> Result<String> {
    let email = given.trim().to_lowercase();
    let email = email.strip_prefix("mailto:").unwrap_or(&email).to_string();
    if !email.is_empty() {
        let ok = email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',');
        if !ok {
            return Err(Error::config(
                ConfigField::Email,
                format!("`{email}` is not an email address"),
            ));
        }
    }
    Ok(email)
}

/// Roots trusted for the CA connection, each one usable by rustls.
fn parse_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let field = ConfigField::TrustedRootsPem;
    let roots =
        crate::crypto::parse_pem_chain(pem).map_err(|e| Error::config(field, e.message()))?;
    let mut store = rustls::RootCertStore::empty();
    for r in &roots {
        store
            .add(r.clone())
            .map_err(|e| Error::config(field, format!("unusable root: {e}")))?;
    }
    Ok(roots)
}

fn validate_eab(eab: ExternalAccountBinding) -> Result<ExternalAccountBinding> {
    if eab.key_id.trim().is_empty() {
        return Err(Error::config(ConfigField::EabKeyId, "empty key id"));
    }
    if eab.decoded_key()?.is_empty() {
        return Err(Error::config(ConfigField::EabHmacKey, "empty key"));
    }
    Ok(eab)
}

/// The preference, or `None` when it prefers nothing.
fn validate_chain(chain: ChainPreference) -> Result<Option<ChainPreference>> {
    for (names, field) in [
        (&chain.root_common_names, ConfigField::PreferredChainRootCn),
        (&chain.any_common_names, ConfigField::PreferredChainIssuerCn),
    ] {
        if names.iter().any(|n| n.trim().is_empty()) {
            return Err(Error::config(field, "empty common name"));
        }
    }
    Ok((chain != ChainPreference::default()).then_some(chain))
}

fn validate_profile(profile: &str) -> Result<String> {
    let p = profile.trim().to_string();
    if p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::config(
            ConfigField::Profile,
            format!("`{p}` is not a profile name"),
        ));
    }
    Ok(p)
}

fn validate_ca(ca: &str) -> Result<()> {
    let field = ConfigField::Ca;
    let Some(rest) = ca.strip_prefix("https://") else {
        return Err(Error::config(
            field,
            format!("`{ca}` is not an https:// ACME directory URL"),
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || ca.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::config(field, format!("`{ca}` has no host")));
    }
    ca.parse::<http::Uri>()
        .map_err(|e| Error::config(field, format!("`{ca}`: {e}")))?;
    Ok(())
}

/// A duration setting (`default` when not set), refused outside `min..=max` naming the field.
fn duration_within(
    field: ConfigField,
    span: Option<Span>,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration> {
    let d = span.map_or(Ok(default), |s| s.duration(field))?;
    within(field, d, min, max)?;
    Ok(d)
}

/// Refuses a duration outside `min..=max`, naming the field.
pub(crate) fn within(field: ConfigField, d: Duration, min: Duration, max: Duration) -> Result<()> {
    if d < min {
        return Err(Error::config(
            field,
            format!("{d:?} is shorter than {min:?}"),
        ));
    }
    if d > max {
        return Err(Error::config(
            field,
            format!("{d:?} is longer than {max:?}"),
        ));
    }
    Ok(())
}

/// How often OCSP staples are checked (Go: `DefaultOCSPCheckInterval`).
pub const DEFAULT_OCSP_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// OCSP stapling settings (Go CertMagic's `OCSPConfig` and `OCSPCheckInterval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OcspSettings {
    /// Staple at all (default on).
    pub enabled: bool,
    /// Responder URL → URL to ask instead; an empty replacement means: never ask that one.
    pub overrides: std::collections::HashMap<String, String>,
    /// How often maintenance refreshes staples past the midpoint of their validity.
    pub check_interval: Duration,
}

impl OcspSettings {
    /// The URL to ask for a leaf naming `url`; `None` when an override turned it off.
    pub fn responder_url<'a>(&'a self, url: &'a str) -> Option<&'a str> {
        match self.overrides.get(url) {
            Some(to) if to.is_empty() => None,
            Some(to) => Some(to),
            None => Some(url),
        }
    }
}

/// Renew when a third of the lifetime remains (Go: `DefaultRenewalWindowRatio`).
pub const DEFAULT_RENEWAL_WINDOW_RATIO: f64 = 1.0 / 3.0;
/// Maintenance interval (Go: `DefaultRenewCheckInterval`).
pub const DEFAULT_RENEW_CHECK_INTERVAL: Duration = Duration::from_secs(10 * 60);
const MIN_RENEW_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// The longest interval, rate-limit window or retry wait a setting may ask for (a year): beyond
/// it a value is a mistake, and time arithmetic on it could overflow.
pub const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);
/// The longest time one operation may be given (order, on-demand obtain, DNS propagation).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The longest time failed background work may be retried in all (ten years).
pub const MAX_RETRY_TOTAL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long one order may take from creation to download (Go: ACME polling timeout).
pub const DEFAULT_ORDER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbers::Span;
    use crate::retry::MAX_RETRY_DURATION;
    use crate::storage::memory::MemoryStorage;

    fn base() -> ConfigBuilder {
        Config::builder().storage(Arc::new(MemoryStorage::new()))
    }

    #[test]
    fn defaults() {
        let c = base().build().unwrap();
        assert_eq!(c.ca(), LETS_ENCRYPT_PRODUCTION);
        assert_eq!(c.key_type(), KeyType::EcdsaP256);
        assert!((c.renewal_window_ratio() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.renew_check_interval(), Duration::from_secs(600));
        assert_eq!(c.http_challenge_port(), 80);
        assert_eq!(c.tls_alpn_challenge_port(), 443);
        assert_eq!(
            c.enabled_challenges(),
            vec![ChallengeType::Http01, ChallengeType::TlsAlpn01]
        );
        assert_eq!(c.issuer_key(), "acme-v02.api.letsencrypt.org-directory");
        assert!(c.ocsp_stapling());
        assert_eq!(c.ocsp_check_interval(), Duration::from_secs(3600));
    }

    #[test]
    fn ocsp_settings() {
        let c = base()
            .ocsp_responder_override("http://ocsp.ca.test", "http://127.0.0.1:8888/ocsp")
            .ocsp_responder_override("http://gone.ca.test/", "")
            .ocsp_check_interval(Span::millis(250.0))
            .build()
            .unwrap();
        assert_eq!(
            c.ocsp.responder_url("http://ocsp.ca.test"),
            Some("http://127.0.0.1:8888/ocsp")
        );
        assert_eq!(c.ocsp.responder_url("http://gone.ca.test/"), None);
        assert_eq!(
            c.ocsp.responder_url("http://other.test"),
            Some("http://other.test")
        );
        assert_eq!(c.ocsp_check_interval(), Duration::from_millis(250));
        let field = |b: ConfigBuilder| b.build().unwrap_err().config_field();
        for bad in [
            ("", "http://x.test"),
            ("ftp://x.test", ""),
            ("http://x.test", "not a url"),
        ] {
            assert_eq!(
                field(base().ocsp_responder_override(bad.0, bad.1)),
                Some(ConfigField::OcspResponderOverride),
                "{bad:?}"
            );
        }
        assert_eq!(
            field(
                base()
                    .ocsp_responder_override("http://x.test", "")
                    .ocsp_responder_override("http://x.test", "http://y.test")
            ),
            Some(ConfigField::OcspResponderOverride)
        );
        assert_eq!(
            field(base().ocsp_check_interval(Span::millis(1.0))),
            Some(ConfigField::OcspCheckInterval)
        );
        assert_eq!(
            field(base().must_staple(true).disable_ocsp_stapling(true)),
            Some(ConfigField::MustStaple)
        );
        assert!(base().must_staple(true).build().is_ok());
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: Vec<(ConfigBuilder, &str)> = vec![
            (base().ca("http://insecure.example/dir"), "ca"),
            (base().ca("https:///dir"), "ca"),
            (base().email("not-an-email"), "email"),
            (base().email("a b@example.com"), "email"),
            (base().trusted_roots_pem("garbage"), "trusted_roots_pem"),
            (base().renewal_window_ratio(0.0), "renewal_window_ratio"),
            (base().renewal_window_ratio(1.0), "renewal_window_ratio"),
            (
                base().renewal_window_ratio(f64::NAN),
                "renewal_window_ratio",
            ),
            (
                base().renew_check_interval(Duration::from_millis(1)),
                "renew_check_interval",
            ),
            (base().alt_http_port(0), "alt_http_port"),
            (
                base().alt_http_port(5002).alt_tls_alpn_port(5002),
                "alt_tls_alpn_port",
            ),
            (
                base()
                    .disable_http_challenge(true)
                    .disable_tls_alpn_challenge(true),
                "disable_tls_alpn_challenge",
            ),
            (
                base()
                    .disable_http_challenge(true)
                    .challenge_preference([ChallengeType::Http01]),
                "challenge_preference",
            ),
            (base().eab("", "abc"), "eab_key_id"),
            (base().eab("kid", "!!!"), "eab_hmac_key"),
            (base().eab_key_id("kid"), "eab_hmac_key"),
            (base().eab_hmac_key("a2V5"), "eab_key_id"),
            (base().profile("two words"), "profile"),
            (
                base().preferred_chain(ChainPreference {
                    root_common_names: vec![" ".into()],
                    ..Default::default()
                }),
                "preferred_chain_root_cn",
            ),
            (
                base().preferred_chain_issuer_cn(""),
                "preferred_chain_issuer_cn",
            ),
            (
                base().rate_limit(RateLimit {
                    events: 1,
                    window: Duration::ZERO,
                }),
                "rate_limit_window",
            ),
            (base().rate_limit_events(5), "rate_limit_window"),
            (
                base().rate_limit_window(Span::seconds(5.0)),
                "rate_limit_events",
            ),
            (base().cache_capacity(0), "cache_capacity"),
            (base().dns_ttl(Duration::from_secs(60)), "dns_ttl"),
            (base().dns_follow_cname(false), "dns_follow_cname"),
            (
                base().callback_timeout_storage(Span::millis(-1.0)),
                "callback_timeout_storage",
            ),
            (
                base().callback_timeout_lock(Duration::from_secs(2 * 24 * 3600)),
                "callback_timeout_lock",
            ),
            (
                base().callback_timeout_dns(Span::seconds(f64::NAN)),
                "callback_timeout_dns",
            ),
            (
                base().callback_timeout_decision(Duration::from_micros(10)),
                "callback_timeout_decision",
            ),
            (
                base().callback_timeout_events(Span::millis(1e12)),
                "callback_timeout_events",
            ),
            (
                base().on_demand_obtain_timeout(Duration::from_secs(1)),
                "on_demand_obtain_timeout",
            ),
            (base().listen_host("a b"), "listen_host"),
        ];
        for (builder, field) in cases {
            let err = builder.build().unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
            assert!(
                err.message().contains(field),
                "message names the field: {err}"
            );
        }
    }

    #[test]
    fn a_retry_total_alone_keeps_the_default_waits() {
        let c = base()
            .retry_max_total(Duration::from_secs(3600))
            .build()
            .unwrap();
        assert_eq!(
            c.retry_schedule().intervals(),
            RetrySchedule::certmagic().intervals()
        );
        assert_eq!(c.retry_schedule().max_total(), Duration::from_secs(3600));
        let c = base()
            .retry_intervals([Duration::from_secs(1)])
            .build()
            .unwrap();
        assert_eq!(c.retry_schedule().intervals(), [Duration::from_secs(1)]);
        assert_eq!(c.retry_schedule().max_total(), MAX_RETRY_DURATION);
        let c = base().retry_max_total(Duration::ZERO).build().unwrap();
        assert_eq!(
            c.retry_schedule().max_total(),
            Duration::ZERO,
            "zero: no retries"
        );
        let c = base()
            .retry_schedule(RetrySchedule::new(vec![], Duration::from_secs(60)))
            .build()
            .unwrap();
        assert_eq!(
            c.retry_schedule().max_total(),
            Duration::ZERO,
            "no waits: no retries"
        );
    }

    #[test]
    fn durations_beyond_their_range_are_refused() {
        let huge = Duration::MAX;
        let cases: Vec<(ConfigBuilder, &str)> = vec![
            (base().renew_check_interval(huge), "renew_check_interval"),
            (base().order_timeout(huge), "order_timeout"),
            (base().retry_intervals([huge]), "retry_intervals"),
            (base().retry_max_total(huge), "retry_max_total"),
            (
                base().rate_limit(RateLimit {
                    events: 1,
                    window: huge,
                }),
                "rate_limit_window",
            ),
            (
                base()
                    .on_demand_allow(["a.test"])
                    .on_demand_obtain_timeout(huge),
                "on_demand_obtain_timeout",
            ),
            (
                base()
                    .on_demand_allow(["a.test"])
                    .on_demand_rate_limit(RateLimit {
                        events: 1,
                        window: huge,
                    }),
                "on_demand_rate_limit_window",
            ),
        ];
        for (builder, field) in cases {
            let err = builder.build().unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
    }

    #[test]
    fn accepts_and_normalises() {
        let c = base()
            .ca("https://127.0.0.1:14000/dir")
            .email("Mailto:Me@Example.com")
            .eab(
                "kid-1",
                "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
            )
            .challenge_preference([ChallengeType::TlsAlpn01, ChallengeType::TlsAlpn01])
            .build()
            .unwrap();
        assert_eq!(c.email(), "me@example.com");
        assert_eq!(c.challenge_preference, vec![ChallengeType::TlsAlpn01]);
        assert!(
            !format!("{c:?}").contains("zWNDZM6e"),
            "secrets are not printed"
        );
    }
}
