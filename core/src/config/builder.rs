//! [`ConfigBuilder`]: the settings as each caller gives them, and every rule that turns them
//! into a [`Config`](super::Config).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{
    AcmeSettings, ChainPreference, ChallengeType, Config, DEFAULT_OCSP_CHECK_INTERVAL,
    DEFAULT_ORDER_TIMEOUT, DEFAULT_RENEW_CHECK_INTERVAL, DEFAULT_RENEWAL_WINDOW_RATIO,
    ExternalAccountBinding, IssuerSetting, LETS_ENCRYPT_PRODUCTION, MAX_INTERVAL, MAX_RETRY_TOTAL,
    MAX_TIMEOUT, MIN_RENEW_CHECK_INTERVAL, OcspSettings, RateLimit, duration_within,
    normalize_email, parse_roots, validate_ca, validate_chain, validate_eab, validate_profile,
    within,
};
use crate::callbacks::{CallbackDeadlines, DeadlinedDns, DeadlinedStorage};
use crate::crypto::KeyType;
use crate::dns::{DnsChallenge, DnsOptions, DnsProvider};
use crate::error::{Error, Result};
use crate::events::EventHandler;
use crate::fields::ConfigField;
use crate::issuer_spec::{
    IssuerPolicy, IssuerSpec, LOCAL_MAX_LIFETIME, LOCAL_MIN_LIFETIME, LocalIssuerSpec,
};
use crate::numbers::{Number, Span};
use crate::on_demand::{DecisionHandler, OnDemand};
use crate::rate_limiter::OrderRatePolicy;
use crate::retry::{MAX_RETRY_DURATION, RetrySchedule};
use crate::storage::Storage;
use crate::storage::file::FileStorage;

/// Builds a [`Config`]: one setter per setting, each taking the value as the caller has it
/// (numbers as [`Number`]/[`Span`], names as text); [`ConfigBuilder::build`] checks every
/// value and every rule between settings, naming the [`ConfigField`].
///
/// Why setters and not one serde `Settings` document that Python keyword arguments, Node
/// options and a C JSON string would all deserialize into: a third of the settings are live
/// objects (storage, event, decision and DNS provider callbacks) that no document can carry,
/// so every binding would keep a second path for them; each language also has its own units
/// (Python seconds, JavaScript and C milliseconds) and its own native type errors (PyO3 and
/// napi name the argument already), and NaN or infinities cannot travel through JSON at all.
/// Setters keep the values exactly as given until `build`, so the rules still live here only,
/// and [`ConfigField`] gives each binding the field to name in its own spelling.
#[derive(Default)]
#[must_use]
pub struct ConfigBuilder {
    ca: Option<String>,
    email: Option<String>,
    agreed: bool,
    trusted_roots_pem: Option<Vec<u8>>,
    key_type: KeyType,
    renewal_window_ratio: Option<f64>,
    renew_check_interval: Option<Span>,
    disable_http_challenge: bool,
    disable_tls_alpn_challenge: bool,
    alt_http_port: Option<Number>,
    alt_tls_alpn_port: Option<Number>,
    listen_host: Option<String>,
    challenge_preference: Vec<ChallengeType>,
    disable_distributed_solvers: bool,
    eab_key_id: Option<String>,
    eab_hmac_key: Option<String>,
    preferred_chain: ChainPreference,
    profile: Option<String>,
    must_staple: bool,
    disable_ocsp_stapling: bool,
    ocsp_responder_overrides: Vec<(String, String)>,
    ocsp_check_interval: Option<Span>,
    reuse_private_keys: bool,
    order_timeout: Option<Span>,
    rate_limit: RateLimitSetting,
    retry_intervals: Option<Vec<Span>>,
    retry_max_total: Option<Span>,
    storage: Option<StorageSetting>,
    event_handler: Option<Arc<dyn EventHandler>>,
    on_demand_decision: Option<Arc<dyn DecisionHandler>>,
    on_demand_ask: Option<String>,
    on_demand_allow: Vec<String>,
    on_demand_rate_limit: RateLimitSetting,
    on_demand_obtain_timeout: Option<Span>,
    cache_capacity: Option<Number>,
    dns: DnsSetting,
    callback_deadlines: CallbackDeadlineSetting,
    issuers: Vec<IssuerSpec>,
    issuer_policy: IssuerPolicy,
}

/// The storage as given: an object, or text naming one.
enum StorageSetting {
    Given(Arc<dyn Storage>),
    Location(String),
}

/// The callback deadlines as given: each kind apart, over the defaults (or a whole
/// [`CallbackDeadlines`]).
#[derive(Debug, Default, Clone, Copy)]
struct CallbackDeadlineSetting {
    base: Option<CallbackDeadlines>,
    storage: Option<Span>,
    lock: Option<Span>,
    dns: Option<Span>,
    decision: Option<Span>,
    events: Option<Span>,
}

impl CallbackDeadlineSetting {
    fn build(self) -> Result<CallbackDeadlines> {
        let mut d = self.base.unwrap_or_default();
        for (given, slot, field) in [
            (
                self.storage,
                &mut d.storage,
                ConfigField::CallbackTimeoutStorage,
            ),
            (self.lock, &mut d.lock, ConfigField::CallbackTimeoutLock),
            (self.dns, &mut d.dns, ConfigField::CallbackTimeoutDns),
            (
                self.decision,
                &mut d.decision,
                ConfigField::CallbackTimeoutDecision,
            ),
            (
                self.events,
                &mut d.events,
                ConfigField::CallbackTimeoutEvents,
            ),
        ] {
            if let Some(span) = given {
                let limit = span.duration(field)?;
                *slot = (!limit.is_zero()).then_some(limit);
            }
            // Given here or in a whole `CallbackDeadlines`: zero means none, so at least 1 ms.
            if let Some(limit) = *slot {
                within(field, limit, Duration::from_millis(1), MAX_TIMEOUT)?;
            }
        }
        Ok(d)
    }
}

/// A rate limit as given: events and window set apart, checked together.
#[derive(Debug, Default, Clone, Copy)]
struct RateLimitSetting {
    events: Option<Number>,
    window: Option<Span>,
}

impl RateLimitSetting {
    fn exact(limit: RateLimit) -> Self {
        Self {
            events: Some(Number::from(limit.events)),
            window: Some(Span::Exact(limit.window)),
        }
    }

    /// The limit, if set; both halves are needed.
    fn build(
        self,
        events_field: ConfigField,
        window_field: ConfigField,
    ) -> Result<Option<RateLimit>> {
        let (events, window) = match (self.events, self.window) {
            (None, None) => return Ok(None),
            (Some(e), Some(w)) => (e, w),
            (None, Some(_)) => {
                return Err(Error::config(
                    events_field,
                    "a rate limit needs a number of events",
                ));
            }
            (Some(_), None) => {
                return Err(Error::config(window_field, "a rate limit needs a window"));
            }
        };
        let limit = RateLimit {
            events: events.whole(events_field, 0, u64::from(u32::MAX))? as usize,
            window: window.duration(window_field)?,
        };
        limit.validate(window_field).map(Some)
    }
}

/// DNS-01 as given: a provider (or a whole [`DnsChallenge`]) and the tunables set over it.
#[derive(Default)]
struct DnsSetting {
    challenge: Option<DnsChallenge>,
    provider: Option<Arc<dyn DnsProvider>>,
    ttl: Option<Span>,
    propagation_delay: Option<Span>,
    propagation_timeout: Option<Span>,
    poll_interval: Option<Span>,
    resolvers: Option<Vec<String>>,
    override_domain: Option<String>,
    follow_cname: Option<bool>,
}

impl DnsSetting {
    /// The first tunable that is set (to name it when no provider is).
    fn first_option(&self) -> Option<ConfigField> {
        [
            (self.ttl.is_some(), ConfigField::DnsTtl),
            (
                self.propagation_delay.is_some(),
                ConfigField::DnsPropagationDelay,
            ),
            (
                self.propagation_timeout.is_some(),
                ConfigField::DnsPropagationTimeout,
            ),
            (self.poll_interval.is_some(), ConfigField::DnsPollInterval),
            (self.resolvers.is_some(), ConfigField::DnsResolvers),
            (
                self.override_domain.is_some(),
                ConfigField::DnsOverrideDomain,
            ),
            (self.follow_cname.is_some(), ConfigField::DnsFollowCname),
        ]
        .into_iter()
        .find_map(|(set, field)| set.then_some(field))
    }

    fn build(self, deadline: Option<Duration>) -> Result<Option<DnsChallenge>> {
        let mut dns = match (self.provider.clone(), self.challenge.clone()) {
            (Some(p), Some(c)) => DnsChallenge { provider: p, ..c },
            (Some(p), None) => DnsChallenge::new(p),
            (None, Some(c)) => c,
            (None, None) => {
                return match self.first_option() {
                    Some(field) => Err(Error::config(
                        field,
                        "a DNS-01 setting is given but no DNS provider",
                    )),
                    None => Ok(None),
                };
            }
        };
        if let Some(t) = self.ttl {
            dns.ttl = t.duration(ConfigField::DnsTtl)?;
        }
        if let Some(d) = self.propagation_delay {
            dns.propagation_delay = d.duration(ConfigField::DnsPropagationDelay)?;
        }
        if let Some(t) = self.propagation_timeout {
            // A negative number turns the checks off (the bindings' way to say `None`).
            dns.propagation_timeout = if t.is_negative() {
                None
            } else {
                Some(t.duration(ConfigField::DnsPropagationTimeout)?)
            };
        }
        if let Some(i) = self.poll_interval {
            dns.poll_interval = i.duration(ConfigField::DnsPollInterval)?;
        }
        if let Some(r) = self.resolvers {
            dns.resolvers = r;
        }
        if let Some(d) = self.override_domain {
            dns.override_domain = Some(d);
        }
        if let Some(f) = self.follow_cname {
            dns.follow_cname = f;
        }
        dns.provider = DeadlinedDns::wrap(dns.provider, deadline);
        dns.validate().map(Some)
    }
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// The ACME directory URL (`https://…`). Default: [`LETS_ENCRYPT_PRODUCTION`].
    pub fn ca(mut self, url: impl Into<String>) -> Self {
        self.ca = Some(url.into());
        self
    }
    /// The contact email of the ACME account (optional, but CAs use it for expiry notices).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
    /// Agree to the CA's terms of service (required by most public CAs).
    pub fn agreed(mut self, agreed: bool) -> Self {
        self.agreed = agreed;
        self
    }
    /// PEM roots to trust for the connection to the CA, instead of the built-in Mozilla roots
    /// (for private CAs and test CAs such as Pebble).
    pub fn trusted_roots_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.trusted_roots_pem = Some(pem.into());
        self
    }
    /// The key type of certificates (default P-256; names parse with `str::parse`).
    pub fn key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = key_type;
        self
    }
    /// Renew once less than this fraction of a certificate's lifetime remains, 0 < r < 1
    /// (default 1/3). Certificates closer to expiry than 1/50 of their lifetime or five check
    /// intervals are renewed whatever the ratio.
    pub fn renewal_window_ratio(mut self, ratio: f64) -> Self {
        self.renewal_window_ratio = Some(ratio);
        self
    }
    /// How often the maintenance task checks certificates (default 10 minutes, at least
    /// 100 ms, at most a year).
    pub fn renew_check_interval(mut self, interval: impl Into<Span>) -> Self {
        self.renew_check_interval = Some(interval.into());
        self
    }
    /// Turn the HTTP-01 challenge off.
    pub fn disable_http_challenge(mut self, disable: bool) -> Self {
        self.disable_http_challenge = disable;
        self
    }
    /// Turn the TLS-ALPN-01 challenge off.
    pub fn disable_tls_alpn_challenge(mut self, disable: bool) -> Self {
        self.disable_tls_alpn_challenge = disable;
        self
    }
    /// Port the HTTP-01 solver listens on, instead of 80 (behind a port forward, or in tests).
    pub fn alt_http_port(mut self, port: impl Into<Number>) -> Self {
        self.alt_http_port = Some(port.into());
        self
    }
    /// Port the TLS-ALPN-01 solver listens on, instead of 443.
    pub fn alt_tls_alpn_port(mut self, port: impl Into<Number>) -> Self {
        self.alt_tls_alpn_port = Some(port.into());
        self
    }
    /// Address the challenge solvers bind to (default: all interfaces).
    pub fn listen_host(mut self, host: impl Into<String>) -> Self {
        self.listen_host = Some(host.into());
        self
    }
    /// Try challenge types in this order instead of a random order (types left out are not
    /// used). Failed types are followed by the next one either way.
    pub fn challenge_preference(mut self, order: impl Into<Vec<ChallengeType>>) -> Self {
        self.challenge_preference = order.into();
        self
    }
    /// Do not write challenges to storage (then only this process can answer them).
    pub fn disable_distributed_solvers(mut self, disable: bool) -> Self {
        self.disable_distributed_solvers = disable;
        self
    }
    /// External Account Binding for CAs that require it: [`ConfigBuilder::eab_key_id`] and
    /// [`ConfigBuilder::eab_hmac_key`] at once.
    pub fn eab(self, key_id: impl Into<String>, hmac_key_base64url: impl Into<String>) -> Self {
        self.eab_key_id(key_id).eab_hmac_key(hmac_key_base64url)
    }
    /// The EAB key identifier (needs [`ConfigBuilder::eab_hmac_key`]).
    pub fn eab_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.eab_key_id = Some(key_id.into());
        self
    }
    /// The EAB HMAC key, base64url (needs [`ConfigBuilder::eab_key_id`]).
    pub fn eab_hmac_key(mut self, hmac_key_base64url: impl Into<String>) -> Self {
        self.eab_hmac_key = Some(hmac_key_base64url.into());
        self
    }
    /// Which chain to keep when the CA offers alternates (replaces the single settings below).
    pub fn preferred_chain(mut self, preference: ChainPreference) -> Self {
        self.preferred_chain = preference;
        self
    }
    /// Prefer the first chain whose root was issued by this common name (call again for
    /// more, in order).
    pub fn preferred_chain_root_cn(mut self, common_name: impl Into<String>) -> Self {
        self.preferred_chain
            .root_common_names
            .push(common_name.into());
        self
    }
    /// Prefer the first chain in which any certificate was issued by this common name (call
    /// again for more, in order).
    pub fn preferred_chain_issuer_cn(mut self, common_name: impl Into<String>) -> Self {
        self.preferred_chain
            .any_common_names
            .push(common_name.into());
        self
    }
    /// Consider the smallest chains first.
    pub fn preferred_chain_smallest(mut self, smallest: bool) -> Self {
        self.preferred_chain.smallest = smallest;
        self
    }
    /// The ACME profile to order (e.g. Let's Encrypt's `shortlived`).
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }
    /// Ask for the OCSP Must-Staple extension (RFC 7633) in CSRs: browsers that honour it
    /// (Firefox) refuse a handshake that comes without a stapled OCSP response, so this needs
    /// stapling on and a CA that runs an OCSP responder (Let's Encrypt stopped in 2025).
    pub fn must_staple(mut self, must_staple: bool) -> Self {
        self.must_staple = must_staple;
        self
    }
    /// Turn OCSP stapling off (default on: every certificate whose leaf names an OCSP
    /// responder gets a response fetched, checked, stored and stapled).
    pub fn disable_ocsp_stapling(mut self, disable: bool) -> Self {
        self.disable_ocsp_stapling = disable;
        self
    }
    /// Ask `to` instead of the responder `from` that certificates name (e.g. a caching proxy);
    /// an empty `to` means never ask `from`. May be called once per responder.
    pub fn ocsp_responder_override(
        mut self,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        self.ocsp_responder_overrides.push((from.into(), to.into()));
        self
    }
    /// How often maintenance looks for OCSP staples to refresh (default 1 hour, at least
    /// 100 ms, at most a year). A staple is refreshed once past the midpoint of its validity.
    pub fn ocsp_check_interval(mut self, interval: impl Into<Span>) -> Self {
        self.ocsp_check_interval = Some(interval.into());
        self
    }
    /// Keep a certificate's private key across renewals (default: a fresh key every time).
    pub fn reuse_private_keys(mut self, reuse: bool) -> Self {
        self.reuse_private_keys = reuse;
        self
    }
    /// How long to wait for the CA to validate and issue one order (default 5 minutes, from 1
    /// second to a day).
    pub fn order_timeout(mut self, timeout: impl Into<Span>) -> Self {
        self.order_timeout = Some(timeout.into());
        self
    }
    /// Internal limit on new orders per (CA, account), replacing the policy chosen for the CA
    /// (see [`OrderRatePolicy::for_ca`]: Let's Encrypt's published limit for Let's Encrypt; for
    /// other CAs 300 per 3 h and 10 per second). Go CertMagic's fixed limit is 10 per 10 s.
    /// Sets [`ConfigBuilder::rate_limit_events`] and [`ConfigBuilder::rate_limit_window`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = RateLimitSetting::exact(limit);
        self
    }
    /// Orders allowed per window of the internal limit (0: no limit; needs a window).
    pub fn rate_limit_events(mut self, events: impl Into<Number>) -> Self {
        self.rate_limit.events = Some(events.into());
        self
    }
    /// The sliding window of the internal limit on orders (at most a year).
    pub fn rate_limit_window(mut self, window: impl Into<Span>) -> Self {
        self.rate_limit.window = Some(window.into());
        self
    }
    /// When failed background obtains and renewals are tried again (default: CertMagic's
    /// schedule, 1 minute rising to 6 hours, for up to 30 days). Replaces both
    /// [`ConfigBuilder::retry_intervals`] and [`ConfigBuilder::retry_max_total`].
    pub fn retry_schedule(mut self, schedule: RetrySchedule) -> Self {
        let (intervals, max_total) = schedule.into_parts();
        // A schedule without waits means no retries, which a total of zero says here.
        self.retry_max_total = Some(Span::Exact(if intervals.is_empty() {
            Duration::ZERO
        } else {
            max_total
        }));
        self.retry_intervals = Some(intervals.into_iter().map(Span::Exact).collect());
        self
    }
    /// The waits after the first, second, … failure of background work (the last one
    /// repeats; each at most a year). Empty, or not set: CertMagic's schedule, 1 minute
    /// rising to 6 hours.
    pub fn retry_intervals<S: Into<Span>>(
        mut self,
        intervals: impl IntoIterator<Item = S>,
    ) -> Self {
        self.retry_intervals = Some(intervals.into_iter().map(Into::into).collect());
        self
    }
    /// How long failed background work is retried in all (default 30 days; zero: never; at
    /// most ten years).
    pub fn retry_max_total(mut self, max_total: impl Into<Span>) -> Self {
        self.retry_max_total = Some(max_total.into());
        self
    }
    /// Where certificates, keys, accounts and locks are kept (default: [`FileStorage`] in
    /// [`FileStorage::default_path`]).
    /// Replaces an earlier storage or storage location.
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(StorageSetting::Given(storage));
        self
    }
    /// Where certificates are kept, as text: a folder, or the URL of a database shared by a
    /// fleet, `redis://`/`rediss://` ([`RedisStorage`](crate::storage::redis::RedisStorage),
    /// Caddy's Redis storage layout) or `postgres://`/`postgresql://`
    /// ([`PostgresStorage`](crate::storage::postgres::PostgresStorage), Caddy's PostgreSQL
    /// storage tables), with the storage's options in the URL's query. Opened by `build`
    /// without connecting; a password in it is never printed. Replaces an earlier storage.
    pub fn storage_location(mut self, location: impl Into<String>) -> Self {
        self.storage = Some(StorageSetting::Location(location.into()));
        self
    }
    /// Receives every [`Event`](crate::Event).
    pub fn event_handler(mut self, handler: Arc<dyn EventHandler>) -> Self {
        self.event_handler = Some(handler);
        self
    }

    /// The on-demand TLS decision: whether a name first seen in a handshake may get a
    /// certificate (see [`DecisionHandler`]). Turns on-demand TLS on.
    pub fn on_demand_decision(mut self, decision: Arc<dyn DecisionHandler>) -> Self {
        self.on_demand_decision = Some(decision);
        self
    }
    /// Turns on-demand TLS on, asking `url` before each new name: `GET url?domain=<name>`, a
    /// 2xx answer within 10 s allows, anything else (redirects included) refuses. With a
    /// decision hook too, both must allow.
    pub fn on_demand_ask(mut self, url: impl Into<String>) -> Self {
        self.on_demand_ask = Some(url.into());
        self
    }
    /// Turns on-demand TLS on for exactly these names (used when no decision hook or ask URL
    /// is set).
    pub fn on_demand_allow<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.on_demand_allow
            .extend(names.into_iter().map(Into::into));
        self
    }
    /// Caps on-demand issuance at `limit.events` per `limit.window` (default: no cap beyond
    /// the CA's order rate limit); handshakes past it fail. Sets
    /// [`ConfigBuilder::on_demand_rate_limit_events`] and
    /// [`ConfigBuilder::on_demand_rate_limit_window`].
    pub fn on_demand_rate_limit(mut self, limit: RateLimit) -> Self {
        self.on_demand_rate_limit = RateLimitSetting::exact(limit);
        self
    }
    /// On-demand obtains allowed per window (needs a window).
    pub fn on_demand_rate_limit_events(mut self, events: impl Into<Number>) -> Self {
        self.on_demand_rate_limit.events = Some(events.into());
        self
    }
    /// The sliding window of the on-demand limit (at most a year).
    pub fn on_demand_rate_limit_window(mut self, window: impl Into<Span>) -> Self {
        self.on_demand_rate_limit.window = Some(window.into());
        self
    }
    /// How long a handshake may wait for an on-demand certificate (default 180 s, at most a
    /// day).
    pub fn on_demand_obtain_timeout(mut self, timeout: impl Into<Span>) -> Self {
        self.on_demand_obtain_timeout = Some(timeout.into());
        self
    }
    /// Keep at most this many certificates in memory (1 to 2³²−1); beyond it a random managed
    /// certificate is evicted (never one added by hand), and handshakes for evicted names load
    /// them from storage again.
    pub fn cache_capacity(mut self, max: impl Into<Number>) -> Self {
        self.cache_capacity = Some(max.into());
        self
    }

    /// Solve DNS-01 with this provider and these tunables, for every name (and so allow
    /// wildcard names). The single `dns_*` settings apply over it.
    pub fn dns_challenge(mut self, dns: DnsChallenge) -> Self {
        self.dns.challenge = Some(dns);
        self
    }
    /// The issuers to obtain from, in order, replacing any given before. Each certificate is
    /// obtained from the first that succeeds (in the order [`Self::issuer_policy`] says), its
    /// files stored under that issuer's key; loading looks under every issuer's key and keeps
    /// the newest certificate. Default: the configuration's own ACME CA alone.
    pub fn issuers(mut self, issuers: impl IntoIterator<Item = IssuerSpec>) -> Self {
        self.issuers = issuers.into_iter().collect();
        self
    }
    /// Appends one issuer to [`Self::issuers`].
    pub fn issuer(mut self, issuer: IssuerSpec) -> Self {
        self.issuers.push(issuer);
        self
    }
    /// In which order each certificate's issuers are tried. Default: [`IssuerPolicy::First`].
    pub fn issuer_policy(mut self, policy: IssuerPolicy) -> Self {
        self.issuer_policy = policy;
        self
    }
    /// Solve DNS-01 through this provider, for every name (and so allow wildcard names);
    /// the `dns_*` settings tune it (CertMagic's defaults otherwise).
    pub fn dns_provider(mut self, provider: Arc<dyn DnsProvider>) -> Self {
        self.dns.provider = Some(provider);
        self
    }
    /// The DNS-01 tunables as one value (the C API's JSON form): each one given is set as
    /// its own setting would.
    pub fn dns_options(mut self, options: &DnsOptions) -> Self {
        if let Some(t) = options.ttl_secs {
            self.dns.ttl = Some(Span::Exact(Duration::from_secs(t)));
        }
        if let Some(ms) = options.propagation_delay_ms {
            self.dns.propagation_delay = Some(Span::Exact(Duration::from_millis(ms)));
        }
        if let Some(ms) = options.propagation_timeout_ms {
            self.dns.propagation_timeout = Some(Span::Millis(ms as f64));
        }
        if let Some(ms) = options.poll_interval_ms {
            self.dns.poll_interval = Some(Span::Exact(Duration::from_millis(ms)));
        }
        if !options.resolvers.is_empty() {
            self.dns.resolvers = Some(options.resolvers.clone());
        }
        if let Some(d) = &options.override_domain {
            self.dns.override_domain = Some(d.clone());
        }
        if let Some(f) = options.follow_cname {
            self.dns.follow_cname = Some(f);
        }
        self
    }
    /// Time to live of the challenge TXT records (default 120 s, below 2³¹ s).
    pub fn dns_ttl(mut self, ttl: impl Into<Span>) -> Self {
        self.dns.ttl = Some(ttl.into());
        self
    }
    /// Wait this long after creating a record before the first check (default none, at
    /// most a day).
    pub fn dns_propagation_delay(mut self, delay: impl Into<Span>) -> Self {
        self.dns.propagation_delay = Some(delay.into());
        self
    }
    /// Give up waiting for a record to be visible after this long (default 2 minutes, at most
    /// a day); a negative number of seconds or milliseconds turns the checks off.
    pub fn dns_propagation_timeout(mut self, timeout: impl Into<Span>) -> Self {
        self.dns.propagation_timeout = Some(timeout.into());
        self
    }
    /// Pause between visibility checks (default 2 s, 1 ms to an hour).
    pub fn dns_poll_interval(mut self, interval: impl Into<Span>) -> Self {
        self.dns.poll_interval = Some(interval.into());
        self
    }
    /// DNS servers (`ip` or `ip:port`) to find zones and check records with, instead of the
    /// system's resolvers and the zone's authoritative servers.
    pub fn dns_resolvers<S: Into<String>>(
        mut self,
        resolvers: impl IntoIterator<Item = S>,
    ) -> Self {
        self.dns.resolvers = Some(resolvers.into_iter().map(Into::into).collect());
        self
    }
    /// Put every challenge record at this name instead of `_acme-challenge.<name>`.
    pub fn dns_override_domain(mut self, domain: impl Into<String>) -> Self {
        self.dns.override_domain = Some(domain.into());
        self
    }
    /// Follow a CNAME at `_acme-challenge.<name>` (default on).
    pub fn dns_follow_cname(mut self, follow: bool) -> Self {
        self.dns.follow_cname = Some(follow);
        self
    }

    /// How long each kind of callback (storage, lock, DNS provider, on-demand decision, event
    /// handler) may take before the engine goes on with a timeout error; replaces the single
    /// `callback_timeout_*` settings given before.
    pub fn callback_deadlines(mut self, deadlines: CallbackDeadlines) -> Self {
        self.callback_deadlines = CallbackDeadlineSetting {
            base: Some(deadlines),
            ..CallbackDeadlineSetting::default()
        };
        self
    }
    /// Deadline of one storage call other than `lock` (default 60 s; zero: none; at most a
    /// day).
    pub fn callback_timeout_storage(mut self, limit: impl Into<Span>) -> Self {
        self.callback_deadlines.storage = Some(limit.into());
        self
    }
    /// Deadline of waiting for a storage lock (default none; zero: none; at most a day).
    pub fn callback_timeout_lock(mut self, limit: impl Into<Span>) -> Self {
        self.callback_deadlines.lock = Some(limit.into());
        self
    }
    /// Deadline of one DNS provider call (default 2 minutes; zero: none; at most a day).
    pub fn callback_timeout_dns(mut self, limit: impl Into<Span>) -> Self {
        self.callback_deadlines.dns = Some(limit.into());
        self
    }
    /// Deadline of the on-demand decision for one name (default 60 s; zero: none; at most a
    /// day); past it the name is refused.
    pub fn callback_timeout_decision(mut self, limit: impl Into<Span>) -> Self {
        self.callback_deadlines.decision = Some(limit.into());
        self
    }
    /// Deadline of one event handler call (default 60 s; zero: none; at most a day); past it
    /// an event that may cancel its operation (`cert_obtaining`) cancels it.
    pub fn callback_timeout_events(mut self, limit: impl Into<Span>) -> Self {
        self.callback_deadlines.events = Some(limit.into());
        self
    }

    fn ocsp_settings(&self) -> Result<OcspSettings> {
        let check_interval = duration_within(
            ConfigField::OcspCheckInterval,
            self.ocsp_check_interval,
            DEFAULT_OCSP_CHECK_INTERVAL,
            MIN_RENEW_CHECK_INTERVAL,
            MAX_INTERVAL,
        )?;
        let field = ConfigField::OcspResponderOverride;
        let is_url = |u: &str| {
            (u.starts_with("http://") || u.starts_with("https://"))
                && u.parse::<http::Uri>().is_ok()
        };
        let mut overrides = std::collections::HashMap::new();
        for (from, to) in &self.ocsp_responder_overrides {
            let (from, to) = (from.trim(), to.trim());
            if !is_url(from) {
                return Err(Error::config(
                    field,
                    format!("`{from}` is not an http(s) URL of a responder"),
                ));
            }
            if !to.is_empty() && !is_url(to) {
                return Err(Error::config(
                    field,
                    format!(
                        "`{to}` (for `{from}`) is not an http(s) URL; leave it empty to never ask `{from}`"
                    ),
                ));
            }
            if overrides.insert(from.to_string(), to.to_string()).is_some() {
                return Err(Error::config(
                    field,
                    format!("`{from}` is overridden twice"),
                ));
            }
        }
        Ok(OcspSettings {
            enabled: !self.disable_ocsp_stapling,
            overrides,
            check_interval,
        })
    }

    /// Checks every value and every rule between settings, and builds the config. A refusal is
    /// an [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) error whose
    /// [`Error::config_field`] names the setting.
    pub fn build(self) -> Result<Config> {
        let ocsp = self.ocsp_settings()?;
        let callback_deadlines = self.callback_deadlines.build()?;
        let ca = self
            .ca
            .unwrap_or_else(|| LETS_ENCRYPT_PRODUCTION.to_string())
            .trim()
            .to_string();
        validate_ca(&ca)?;

        let email = normalize_email(&self.email.unwrap_or_default())?;

        let trusted_roots = match &self.trusted_roots_pem {
            None => Vec::new(),
            Some(pem) => parse_roots(pem)?,
        };

        let ratio = self
            .renewal_window_ratio
            .unwrap_or(DEFAULT_RENEWAL_WINDOW_RATIO);
        if !(ratio.is_finite() && ratio > 0.0 && ratio < 1.0) {
            return Err(Error::config(
                ConfigField::RenewalWindowRatio,
                format!("{ratio} is not between 0 and 1 (exclusive)"),
            ));
        }

        let interval = duration_within(
            ConfigField::RenewCheckInterval,
            self.renew_check_interval,
            DEFAULT_RENEW_CHECK_INTERVAL,
            MIN_RENEW_CHECK_INTERVAL,
            MAX_INTERVAL,
        )?;

        let alt_http_port = self
            .alt_http_port
            .map(|p| p.port(ConfigField::AltHttpPort))
            .transpose()?;
        let alt_tls_alpn_port = self
            .alt_tls_alpn_port
            .map(|p| p.port(ConfigField::AltTlsAlpnPort))
            .transpose()?;
        if alt_http_port.is_some() && alt_http_port == alt_tls_alpn_port {
            return Err(Error::config(
                ConfigField::AltTlsAlpnPort,
                "must differ from the HTTP-01 port",
            ));
        }
        let listen_host = self.listen_host.unwrap_or_default().trim().to_string();
        if listen_host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(Error::config(
                ConfigField::ListenHost,
                format!("`{listen_host}` is not a host"),
            ));
        }

        let dns = self.dns.build(callback_deadlines.dns)?;
        let on_demand = OnDemand {
            decision: self.on_demand_decision,
            ask: self.on_demand_ask,
            allow: self.on_demand_allow.into_iter().collect(),
            rate_limit: self.on_demand_rate_limit.build(
                ConfigField::OnDemandRateLimitEvents,
                ConfigField::OnDemandRateLimitWindow,
            )?,
            obtain_timeout: self
                .on_demand_obtain_timeout
                .map(|t| t.duration(ConfigField::OnDemandObtainTimeout))
                .transpose()?,
            decision_deadline: callback_deadlines.decision,
        }
        .validate()?;
        let cache_capacity = self
            .cache_capacity
            .map(|n| n.whole(ConfigField::CacheCapacity, 1, u64::from(u32::MAX)))
            .transpose()?
            .map(|n| n as usize);
        let uses_acme = self.issuers.is_empty()
            || self
                .issuers
                .iter()
                .any(|i| matches!(i, IssuerSpec::Acme(_)));
        if uses_acme
            && dns.is_none()
            && self.disable_http_challenge
            && self.disable_tls_alpn_challenge
        {
            return Err(Error::config(
                ConfigField::DisableTlsAlpnChallenge,
                "both HTTP-01 and TLS-ALPN-01 are disabled, so no challenge can be solved",
            ));
        }
        let mut preference = Vec::new();
        for t in self.challenge_preference {
            let enabled = match t {
                ChallengeType::Http01 => !self.disable_http_challenge,
                ChallengeType::TlsAlpn01 => !self.disable_tls_alpn_challenge,
                ChallengeType::Dns01 => dns.is_some(),
            };
            if t == ChallengeType::Dns01 && dns.is_none() {
                return Err(Error::config(
                    ConfigField::ChallengePreference,
                    "dns-01 is listed but no DNS provider is configured",
                ));
            }
            if !enabled {
                return Err(Error::config(
                    ConfigField::ChallengePreference,
                    format!("{t} is listed but disabled"),
                ));
            }
            if !preference.contains(&t) {
                preference.push(t);
            }
        }

        let eab = match (self.eab_key_id, self.eab_hmac_key) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::config(
                    ConfigField::EabHmacKey,
                    "an EAB key id needs its HMAC key",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    ConfigField::EabKeyId,
                    "an EAB HMAC key needs its key id",
                ));
            }
            (Some(key_id), Some(hmac_key)) => {
                Some(validate_eab(ExternalAccountBinding { key_id, hmac_key })?)
            }
        };

        let preferred_chain = validate_chain(self.preferred_chain)?;
        let profile = self.profile.as_deref().map(validate_profile).transpose()?;

        if self.must_staple && !ocsp.enabled {
            return Err(Error::config(
                ConfigField::MustStaple,
                "Must-Staple certificates are refused by browsers without a staple, and OCSP \
                 stapling is disabled",
            ));
        }

        let order_timeout = duration_within(
            ConfigField::OrderTimeout,
            self.order_timeout,
            DEFAULT_ORDER_TIMEOUT,
            Duration::from_secs(1),
            MAX_TIMEOUT,
        )?;

        let configured_rate = self
            .rate_limit
            .build(ConfigField::RateLimitEvents, ConfigField::RateLimitWindow)?;
        let own_acme = AcmeSettings {
            order_rate: match configured_rate {
                Some(limit) => OrderRatePolicy::configured(limit),
                None => OrderRatePolicy::for_ca(&ca),
            },
            ca: ca.clone(),
            email: email.clone(),
            eab: eab.clone(),
            trusted_roots: trusted_roots.clone(),
            profile: profile.clone(),
            preferred_chain: preferred_chain.clone(),
            eab_from: None,
        };
        let order_rate = own_acme.order_rate.clone();
        let issuers = if self.issuers.is_empty() {
            vec![IssuerSetting::Acme(Box::new(own_acme))]
        } else {
            self.issuers
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    resolve_issuer(spec, &own_acme, configured_rate)
                        .map_err(|e| in_issuer(i, spec, &e))
                })
                .collect::<Result<Vec<_>>>()?
        };

        let retry_intervals = self
            .retry_intervals
            .unwrap_or_default()
            .into_iter()
            .map(|wait| {
                let field = ConfigField::RetryIntervals;
                duration_within(
                    field,
                    Some(wait),
                    Duration::ZERO,
                    Duration::ZERO,
                    MAX_INTERVAL,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let retry_max_total = duration_within(
            ConfigField::RetryMaxTotal,
            self.retry_max_total,
            MAX_RETRY_DURATION,
            Duration::ZERO,
            MAX_RETRY_TOTAL,
        )?;
        let retry_schedule = if retry_intervals.is_empty() {
            RetrySchedule::certmagic().with_max_total(retry_max_total)
        } else {
            RetrySchedule::new(retry_intervals, retry_max_total)
        };

        let storage = match self.storage {
            Some(StorageSetting::Given(s)) => s,
            Some(StorageSetting::Location(l)) => crate::storage::location::open(&l)?,
            None => Arc::new(FileStorage::new(FileStorage::default_path())),
        };
        let storage = DeadlinedStorage::wrap(storage, callback_deadlines);

        if self.must_staple && issuers.iter().any(|i| matches!(i, IssuerSetting::Local(_))) {
            return Err(Error::config(
                ConfigField::MustStaple,
                "the local CA has no OCSP responder, so its certificates cannot be Must-Staple",
            ));
        }

        Ok(Config {
            ca,
            email,
            agreed: self.agreed,
            trusted_roots,
            key_type: self.key_type,
            renewal_window_ratio: ratio,
            renew_check_interval: interval,
            disable_http_challenge: self.disable_http_challenge,
            disable_tls_alpn_challenge: self.disable_tls_alpn_challenge,
            alt_http_port,
            alt_tls_alpn_port,
            listen_host,
            challenge_preference: preference,
            disable_distributed_solvers: self.disable_distributed_solvers,
            eab,
            preferred_chain,
            profile,
            must_staple: self.must_staple,
            ocsp,
            reuse_private_keys: self.reuse_private_keys,
            order_timeout,
            order_rate,
            retry_schedule,
            storage,
            event_handler: self.event_handler,
            on_demand,
            cache_capacity,
            dns,
            callback_deadlines,
            issuers,
            issuer_policy: self.issuer_policy,
            eab_from: None,
        })
    }
}

/// A refusal inside issuer `i` of the list, as the `issuers` setting's: `issuer 2 (acme): ca:
/// …`, naming the spec's own key rather than the setter it shares its rule with.
fn in_issuer(i: usize, spec: &IssuerSpec, e: &Error) -> Error {
    let key = match e.config_field() {
        Some(ConfigField::Ca) => "ca: ",
        Some(ConfigField::Email) => "email: ",
        Some(ConfigField::EabKeyId | ConfigField::EabHmacKey) => "eab: ",
        Some(ConfigField::TrustedRootsPem) => "trusted_roots_pem: ",
        Some(ConfigField::Profile) => "profile: ",
        Some(
            ConfigField::PreferredChainRootCn
            | ConfigField::PreferredChainIssuerCn
            | ConfigField::PreferredChainSmallest,
        ) => "preferred_chain: ",
        _ => "",
    };
    Error::config(
        ConfigField::Issuers,
        format!("issuer {} ({}): {key}{}", i + 1, spec.kind(), detail(e)),
    )
}

/// An error's message without the `config field `…`: ` its setter's rule put in front.
fn detail(e: &Error) -> &str {
    let m = e.message();
    m.strip_prefix("config field `")
        .and_then(|rest| rest.split_once("`: "))
        .map_or(m, |(_, d)| d)
}

/// The configuration's ACME settings moved to another CA: nothing that belongs to the
/// configuration's own CA (EAB, profile, chain preference, its published limits) carries over.
fn another_ca(
    own: &AcmeSettings,
    ca: &str,
    configured_rate: Option<RateLimit>,
) -> Result<AcmeSettings> {
    let ca = ca.trim().to_string();
    validate_ca(&ca)?;
    let mut s = own.clone();
    s.order_rate = match configured_rate {
        Some(limit) => OrderRatePolicy::configured(limit),
        None => OrderRatePolicy::for_ca(&ca),
    };
    s.ca = ca;
    s.eab = None;
    s.profile = None;
    s.preferred_chain = None;
    Ok(s)
}

/// One issuer of the list, checked, over the configuration's own ACME settings `own`.
fn resolve_issuer(
    spec: &IssuerSpec,
    own: &AcmeSettings,
    configured_rate: Option<RateLimit>,
) -> Result<IssuerSetting> {
    match spec {
        IssuerSpec::Local(local) => {
            within(
                ConfigField::Issuers,
                local.lifetime,
                LOCAL_MIN_LIFETIME,
                LOCAL_MAX_LIFETIME,
            )
            .map_err(|e| {
                Error::config(
                    ConfigField::Issuers,
                    format!("lifetime_secs: {}", detail(&e)),
                )
            })?;
            Ok(IssuerSetting::Local(LocalIssuerSpec {
                lifetime: local.lifetime,
            }))
        }
        IssuerSpec::ZeroSsl(z) => {
            let mut s = another_ca(
                own,
                z.ca.as_deref().unwrap_or(super::ZEROSSL),
                configured_rate,
            )?;
            if let Some(email) = &z.email {
                s.email = normalize_email(email)?;
            }
            let api_url = z
                .api_url
                .as_deref()
                .unwrap_or(crate::zerossl::ZEROSSL_API)
                .trim()
                .to_string();
            if !api_url.starts_with("https://") || api_url.len() <= "https://".len() {
                return Err(Error::config(
                    ConfigField::Issuers,
                    format!("api_url `{api_url}` is not an https:// URL"),
                ));
            }
            let api_key = z.api_key.as_deref().map(str::trim).map(str::to_string);
            if api_key.as_deref().is_some_and(str::is_empty) {
                return Err(Error::config(ConfigField::Issuers, "api_key is empty"));
            }
            if api_key.is_none() && s.email.is_empty() {
                return Err(Error::config(
                    ConfigField::Issuers,
                    "ZeroSSL gives EAB credentials for an account email: set the email (or an api_key)",
                ));
            }
            s.eab_from = Some(crate::zerossl::ZeroSslEab {
                api_url,
                email: s.email.clone(),
                api_key,
            });
            Ok(IssuerSetting::Acme(Box::new(s)))
        }
        IssuerSpec::Acme(a) => {
            let mut s = match &a.ca {
                Some(ca) => another_ca(own, ca, configured_rate)?,
                None => own.clone(),
            };
            if let Some(email) = &a.email {
                s.email = normalize_email(email)?;
            }
            if let Some(eab) = &a.eab {
                s.eab = Some(validate_eab(eab.clone())?);
            }
            if let Some(pem) = &a.trusted_roots_pem {
                s.trusted_roots = parse_roots(pem.as_bytes())?;
            }
            if let Some(p) = &a.profile {
                s.profile = Some(validate_profile(p)?);
            }
            if let Some(c) = &a.preferred_chain {
                s.preferred_chain = validate_chain(c.clone())?;
            }
            Ok(IssuerSetting::Acme(Box::new(s)))
        }
    }
}
