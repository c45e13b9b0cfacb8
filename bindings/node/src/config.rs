//! Engine options: each maps to its one core setter; the core checks every value and rule, and
//! refusals name the option as JavaScript wrote it ([`option_name`]).

use std::sync::Arc;

use certmagic::{ChallengeType, Config, ConfigField, DnsProvider, KeyType, Span, Storage};
use napi_derive::napi;

use crate::events::{JsDecision, JsEvents};

/// External Account Binding.
#[napi(object)]
pub struct EabOptions {
    pub key_id: String,
    pub hmac_key: String,
}

impl std::fmt::Debug for EabOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabOptions")
            .field("key_id", &self.key_id)
            .field("hmac_key", &"<redacted>")
            .finish()
    }
}

/// Which chain to keep when the CA offers several.
#[napi(object)]
#[derive(Debug)]
pub struct ChainOptions {
    pub root_common_names: Option<Vec<String>>,
    pub issuer_common_names: Option<Vec<String>>,
    pub smallest: Option<bool>,
}

/// The internal limit on new orders.
#[napi(object)]
#[derive(Debug)]
pub struct RateLimitOptions {
    pub events: f64,
    /// Milliseconds.
    pub window: f64,
}

/// Engine settings (`index.js` checks types; the engine checks values). Durations in
/// milliseconds.
#[napi(object)]
#[derive(Debug)]
pub struct EngineOptions {
    pub ca: Option<String>,
    pub email: Option<String>,
    pub agreed: Option<bool>,
    pub trusted_roots_pem: Option<String>,
    pub key_type: Option<String>,
    pub renewal_window_ratio: Option<f64>,
    pub renew_check_interval: Option<f64>,
    pub disable_http_challenge: Option<bool>,
    pub disable_tls_alpn_challenge: Option<bool>,
    pub alt_http_port: Option<f64>,
    pub alt_tls_alpn_port: Option<f64>,
    pub listen_host: Option<String>,
    pub challenge_preference: Option<Vec<String>>,
    pub disable_distributed_solvers: Option<bool>,
    pub eab: Option<EabOptions>,
    pub preferred_chain: Option<ChainOptions>,
    pub profile: Option<String>,
    pub must_staple: Option<bool>,
    pub disable_ocsp_stapling: Option<bool>,
    /// Responder URL → URL to ask instead ("": never ask it).
    pub ocsp_responder_overrides: Option<std::collections::HashMap<String, String>>,
    /// Milliseconds.
    pub ocsp_check_interval: Option<f64>,
    pub reuse_private_keys: Option<bool>,
    pub order_timeout: Option<f64>,
    pub rate_limit: Option<RateLimitOptions>,
    pub retry_intervals: Option<Vec<f64>>,
    pub retry_max_total: Option<f64>,
    /// Where certificates are kept when no storage callback is given: a folder, or the URL of
    /// a database shared by a fleet (`redis://`, `rediss://`, `postgres://`, `postgresql://`,
    /// options in the query).
    pub storage_location: Option<String>,
    /// A built-in DNS provider: its name (settings from the environment) or its settings as
    /// JSON (`{"provider": "cloudflare", …}`). A provider object goes through the `dns`
    /// dispatch function instead.
    pub dns_provider: Option<String>,
    /// DNS servers (`ip` or `ip:port`) for lookups and checks.
    pub dns_resolvers: Option<Vec<String>>,
    pub dns_override_domain: Option<String>,
    pub dns_follow_cname: Option<bool>,
    /// Seconds.
    pub dns_ttl: Option<f64>,
    /// Milliseconds.
    pub dns_propagation_delay: Option<f64>,
    /// Milliseconds; negative turns the checks off.
    pub dns_propagation_timeout: Option<f64>,
    /// Milliseconds.
    pub dns_poll_interval: Option<f64>,
    /// On-demand TLS: the ask URL.
    pub on_demand_ask: Option<String>,
    /// On-demand TLS: the allow-list.
    pub on_demand_allow: Option<Vec<String>>,
    pub on_demand_rate_limit: Option<RateLimitOptions>,
    /// Milliseconds.
    pub on_demand_obtain_timeout: Option<f64>,
    pub cache_capacity: Option<f64>,
    /// Callback deadlines, milliseconds (0: none).
    pub callback_timeout_storage: Option<f64>,
    pub callback_timeout_lock: Option<f64>,
    pub callback_timeout_dns: Option<f64>,
    pub callback_timeout_decision: Option<f64>,
    pub callback_timeout_events: Option<f64>,
    /// The issuers, in order: `"acme"`, `"local"`, or the core's JSON spec of one.
    pub issuers: Option<Vec<String>>,
    /// `first` or `random`.
    pub issuer_policy: Option<String>,
}

/// The option that sets `field`, as a JavaScript user wrote it: refusals name it so.
pub(crate) fn option_name(field: ConfigField) -> &'static str {
    match field {
        ConfigField::Ca => "ca",
        ConfigField::Email => "email",
        ConfigField::Agreed => "agreed",
        ConfigField::TrustedRootsPem => "trustedRootsPem",
        ConfigField::KeyType => "keyType",
        ConfigField::RenewalWindowRatio => "renewalWindowRatio",
        ConfigField::RenewCheckInterval => "renewCheckInterval",
        ConfigField::DisableHttpChallenge => "disableHttpChallenge",
        ConfigField::DisableTlsAlpnChallenge => "disableTlsAlpnChallenge",
        ConfigField::AltHttpPort => "altHttpPort",
        ConfigField::AltTlsAlpnPort => "altTlsAlpnPort",
        ConfigField::ListenHost => "listenHost",
        ConfigField::ChallengePreference => "challengePreference",
        ConfigField::DisableDistributedSolvers => "disableDistributedSolvers",
        ConfigField::EabKeyId => "eab.keyId",
        ConfigField::EabHmacKey => "eab.hmacKey",
        ConfigField::PreferredChainRootCn => "preferredChain.rootCommonNames",
        ConfigField::PreferredChainIssuerCn => "preferredChain.issuerCommonNames",
        ConfigField::PreferredChainSmallest => "preferredChain.smallest",
        ConfigField::Profile => "profile",
        ConfigField::MustStaple => "mustStaple",
        ConfigField::DisableOcspStapling => "disableOcspStapling",
        ConfigField::OcspResponderOverride => "ocspResponderOverrides",
        ConfigField::OcspCheckInterval => "ocspCheckInterval",
        ConfigField::ReusePrivateKeys => "reusePrivateKeys",
        ConfigField::OrderTimeout => "orderTimeout",
        ConfigField::RateLimitEvents => "rateLimit.events",
        ConfigField::RateLimitWindow => "rateLimit.window",
        ConfigField::RetryIntervals => "retryIntervals",
        ConfigField::RetryMaxTotal => "retryMaxTotal",
        ConfigField::Storage => "storage",
        ConfigField::StorageLocation => "storage",
        ConfigField::EventHandler => "on('event')",
        ConfigField::OnDemandDecision => "onDemand.decision",
        ConfigField::OnDemandAsk => "onDemand.ask",
        ConfigField::OnDemandAllow => "onDemand.allow",
        ConfigField::OnDemandRateLimitEvents => "onDemand.rateLimit.events",
        ConfigField::OnDemandRateLimitWindow => "onDemand.rateLimit.window",
        ConfigField::OnDemandObtainTimeout => "onDemand.obtainTimeout",
        ConfigField::CacheCapacity => "cacheCapacity",
        ConfigField::DnsProvider | ConfigField::DnsOptions => "dns.provider",
        ConfigField::DnsTtl => "dns.ttl",
        ConfigField::DnsPropagationDelay => "dns.propagationDelay",
        ConfigField::DnsPropagationTimeout => "dns.propagationTimeout",
        ConfigField::DnsPollInterval => "dns.pollInterval",
        ConfigField::DnsResolvers => "dns.resolvers",
        ConfigField::DnsOverrideDomain => "dns.overrideDomain",
        ConfigField::DnsFollowCname => "dns.followCname",
        ConfigField::CallbackTimeoutStorage => "callbackTimeouts.storage",
        ConfigField::CallbackTimeoutLock => "callbackTimeouts.lock",
        ConfigField::CallbackTimeoutDns => "callbackTimeouts.dns",
        ConfigField::CallbackTimeoutDecision => "callbackTimeouts.decision",
        ConfigField::CallbackTimeoutEvents => "callbackTimeouts.events",
        ConfigField::Issuers => "issuers",
        ConfigField::IssuerPolicy => "issuerPolicy",
    }
}

/// One option, one setter; the engine checks every value (durations in milliseconds, `dns.ttl`
/// in seconds).
pub(crate) fn config(
    options: EngineOptions,
    storage: Option<Arc<dyn Storage>>,
    events: Option<JsEvents>,
    dns_provider: Option<Arc<dyn DnsProvider>>,
    decision: Option<JsDecision>,
) -> certmagic::Result<Config> {
    let ms = Span::millis;
    let mut b = Config::builder()
        .agreed(options.agreed.unwrap_or(false))
        .disable_http_challenge(options.disable_http_challenge.unwrap_or(false))
        .disable_tls_alpn_challenge(options.disable_tls_alpn_challenge.unwrap_or(false))
        .disable_distributed_solvers(options.disable_distributed_solvers.unwrap_or(false))
        .must_staple(options.must_staple.unwrap_or(false))
        .disable_ocsp_stapling(options.disable_ocsp_stapling.unwrap_or(false))
        .reuse_private_keys(options.reuse_private_keys.unwrap_or(false));
    let mut overrides: Vec<(String, String)> = options
        .ocsp_responder_overrides
        .unwrap_or_default()
        .into_iter()
        .collect();
    overrides.sort();
    for (from, to) in overrides {
        b = b.ocsp_responder_override(from, to);
    }
    if let Some(v) = options.ocsp_check_interval {
        b = b.ocsp_check_interval(ms(v));
    }
    if let Some(v) = options.ca {
        b = b.ca(v);
    }
    if let Some(v) = options.email {
        b = b.email(v);
    }
    if let Some(v) = options.trusted_roots_pem {
        b = b.trusted_roots_pem(v.into_bytes());
    }
    if let Some(v) = options.key_type {
        b = b.key_type(v.parse::<KeyType>()?);
    }
    if let Some(v) = options.renewal_window_ratio {
        b = b.renewal_window_ratio(v);
    }
    if let Some(v) = options.renew_check_interval {
        b = b.renew_check_interval(ms(v));
    }
    if let Some(v) = options.alt_http_port {
        b = b.alt_http_port(v);
    }
    if let Some(v) = options.alt_tls_alpn_port {
        b = b.alt_tls_alpn_port(v);
    }
    if let Some(v) = options.listen_host {
        b = b.listen_host(v);
    }
    if let Some(types) = options.challenge_preference {
        let order = types
            .iter()
            .map(|t| t.parse::<ChallengeType>())
            .collect::<certmagic::Result<Vec<_>>>()?;
        b = b.challenge_preference(order);
    }
    if let Some(e) = options.eab {
        b = b.eab_key_id(e.key_id).eab_hmac_key(e.hmac_key);
    }
    if let Some(c) = options.preferred_chain {
        for name in c.root_common_names.unwrap_or_default() {
            b = b.preferred_chain_root_cn(name);
        }
        for name in c.issuer_common_names.unwrap_or_default() {
            b = b.preferred_chain_issuer_cn(name);
        }
        b = b.preferred_chain_smallest(c.smallest.unwrap_or(false));
    }
    if let Some(v) = options.profile {
        b = b.profile(v);
    }
    if let Some(v) = options.order_timeout {
        b = b.order_timeout(ms(v));
    }
    if let Some(r) = options.rate_limit {
        b = b
            .rate_limit_events(r.events)
            .rate_limit_window(ms(r.window));
    }
    if let Some(waits) = options.retry_intervals {
        b = b.retry_intervals(waits.into_iter().map(ms));
    }
    if let Some(v) = options.retry_max_total {
        b = b.retry_max_total(ms(v));
    }
    if let Some(s) = storage {
        b = b.storage(s);
    } else if let Some(location) = options.storage_location {
        b = b.storage_location(location);
    }
    if let Some(e) = events {
        b = b.event_handler(Arc::new(e));
    }
    if let Some(d) = decision {
        b = b.on_demand_decision(Arc::new(d));
    }
    if let Some(url) = options.on_demand_ask {
        b = b.on_demand_ask(url);
    }
    if let Some(names) = options.on_demand_allow {
        b = b.on_demand_allow(names);
    }
    if let Some(r) = options.on_demand_rate_limit {
        b = b
            .on_demand_rate_limit_events(r.events)
            .on_demand_rate_limit_window(ms(r.window));
    }
    if let Some(v) = options.on_demand_obtain_timeout {
        b = b.on_demand_obtain_timeout(ms(v));
    }
    if let Some(max) = options.cache_capacity {
        b = b.cache_capacity(max);
    }
    for spec in options.issuers.unwrap_or_default() {
        b = b.issuer(certmagic::IssuerSpec::from_json(&spec)?);
    }
    if let Some(p) = options.issuer_policy {
        b = b.issuer_policy(p.parse()?);
    }
    if let Some(p) = dns_provider {
        b = b.dns_provider(p);
    } else if let Some(spec) = options.dns_provider {
        b = b.dns_provider(certmagic::dns::providers::from_spec(&spec)?);
    }
    if let Some(v) = options.dns_ttl {
        b = b.dns_ttl(Span::seconds(v));
    }
    if let Some(v) = options.dns_propagation_delay {
        b = b.dns_propagation_delay(ms(v));
    }
    if let Some(v) = options.dns_propagation_timeout {
        b = b.dns_propagation_timeout(ms(v));
    }
    if let Some(v) = options.dns_poll_interval {
        b = b.dns_poll_interval(ms(v));
    }
    if let Some(v) = options.dns_resolvers {
        b = b.dns_resolvers(v);
    }
    if let Some(v) = options.dns_override_domain {
        b = b.dns_override_domain(v);
    }
    if let Some(v) = options.dns_follow_cname {
        b = b.dns_follow_cname(v);
    }
    if let Some(v) = options.callback_timeout_storage {
        b = b.callback_timeout_storage(ms(v));
    }
    if let Some(v) = options.callback_timeout_lock {
        b = b.callback_timeout_lock(ms(v));
    }
    if let Some(v) = options.callback_timeout_dns {
        b = b.callback_timeout_dns(ms(v));
    }
    if let Some(v) = options.callback_timeout_decision {
        b = b.callback_timeout_decision(ms(v));
    }
    if let Some(v) = options.callback_timeout_events {
        b = b.callback_timeout_events(ms(v));
    }
    b.build()
}
