//! `Config`: every core setting as a keyword argument, each mapped to its one core setter. Types
//! are checked by PyO3 (a `TypeError` naming the argument); values and rules by the core (a
//! `certmagic.ConfigError`, also a `ValueError`, naming the keyword: see [`keyword`]).

use std::sync::Arc;

use certmagic::{ChallengeType, ConfigField, KeyType, Span};
use pyo3::prelude::*;

use crate::bridge::check;
use crate::errors::guard;
use crate::events::{PyDecision, PyEvents};
use crate::storage::PyStorage;
use certmagic::storage::foreign::Blocking;

/// A checked configuration for a `Manager`.
#[pyclass(frozen, name = "Config", module = "certmagic._certmagic")]
#[derive(Debug)]
pub struct PyConfig {
    pub(crate) inner: certmagic::Config,
}

/// A Python `int` or `float` (not `bool`), as a float for the core to check: ints too large
/// for a float become infinities, which the core refuses naming the field. Anything else is a
/// `TypeError` naming the argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Number(pub f64);

impl<'a, 'py> FromPyObject<'a, 'py> for Number {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        use pyo3::types::{PyBool, PyFloat, PyInt};
        if obj.is_instance_of::<PyBool>()
            || !(obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>())
        {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "expected a number, got {}",
                obj.get_type().name()?
            )));
        }
        match obj.extract::<f64>() {
            Ok(v) => Ok(Self(v)),
            // An int beyond a float's range.
            Err(_) if obj.gt(0)? => Ok(Self(f64::INFINITY)),
            Err(_) => Ok(Self(f64::NEG_INFINITY)),
        }
    }
}

/// The keyword argument that sets `field`: refusals name it as the caller wrote it.
pub(crate) fn keyword(field: ConfigField) -> &'static str {
    match field {
        ConfigField::Ca => "ca",
        ConfigField::Email => "email",
        ConfigField::Agreed => "agreed",
        ConfigField::TrustedRootsPem => "trusted_roots_pem",
        ConfigField::KeyType => "key_type",
        ConfigField::RenewalWindowRatio => "renewal_window_ratio",
        ConfigField::RenewCheckInterval => "renew_check_interval",
        ConfigField::DisableHttpChallenge => "disable_http_challenge",
        ConfigField::DisableTlsAlpnChallenge => "disable_tls_alpn_challenge",
        ConfigField::AltHttpPort => "alt_http_port",
        ConfigField::AltTlsAlpnPort => "alt_tls_alpn_port",
        ConfigField::ListenHost => "listen_host",
        ConfigField::ChallengePreference => "challenge_preference",
        ConfigField::DisableDistributedSolvers => "disable_distributed_solvers",
        ConfigField::EabKeyId => "eab_key_id",
        ConfigField::EabHmacKey => "eab_hmac_key",
        ConfigField::PreferredChainRootCn => "preferred_chain_root_cns",
        ConfigField::PreferredChainIssuerCn => "preferred_chain_issuer_cns",
        ConfigField::PreferredChainSmallest => "preferred_chain_smallest",
        ConfigField::Profile => "profile",
        ConfigField::MustStaple => "must_staple",
        ConfigField::DisableOcspStapling => "disable_ocsp_stapling",
        ConfigField::OcspResponderOverride => "ocsp_responder_overrides",
        ConfigField::OcspCheckInterval => "ocsp_check_interval",
        ConfigField::ReusePrivateKeys => "reuse_private_keys",
        ConfigField::OrderTimeout => "order_timeout",
        ConfigField::RateLimitEvents | ConfigField::RateLimitWindow => "rate_limit",
        ConfigField::RetryIntervals => "retry_intervals",
        ConfigField::RetryMaxTotal => "retry_max_total",
        ConfigField::Storage | ConfigField::StorageLocation => "storage",
        ConfigField::EventHandler => "on_event",
        ConfigField::OnDemandDecision => "on_demand_decision",
        ConfigField::OnDemandAsk => "on_demand_ask",
        ConfigField::OnDemandAllow => "on_demand_allow",
        ConfigField::OnDemandRateLimitEvents | ConfigField::OnDemandRateLimitWindow => {
            "on_demand_rate_limit"
        }
        ConfigField::OnDemandObtainTimeout => "on_demand_obtain_timeout",
        ConfigField::CacheCapacity => "cache_capacity",
        ConfigField::DnsProvider | ConfigField::DnsOptions => "dns_provider",
        ConfigField::DnsTtl => "dns_ttl",
        ConfigField::DnsPropagationDelay => "dns_propagation_delay",
        ConfigField::DnsPropagationTimeout => "dns_propagation_timeout",
        ConfigField::DnsPollInterval => "dns_poll_interval",
        ConfigField::DnsResolvers => "dns_resolvers",
        ConfigField::DnsOverrideDomain => "dns_override_domain",
        ConfigField::DnsFollowCname => "dns_follow_cname",
        ConfigField::CallbackTimeoutStorage => "callback_timeout_storage",
        ConfigField::CallbackTimeoutLock => "callback_timeout_lock",
        ConfigField::CallbackTimeoutDns => "callback_timeout_dns",
        ConfigField::CallbackTimeoutDecision => "callback_timeout_decision",
        ConfigField::CallbackTimeoutEvents => "callback_timeout_events",
        ConfigField::Issuers => "issuers",
        ConfigField::IssuerPolicy => "issuer_policy",
    }
}

/// An issuer as Python gives it: `"acme"`, `"local"`, or a dict of the core's JSON shape.
fn issuer_spec(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<certmagic::IssuerSpec> {
    let json = match value.extract::<String>() {
        Ok(name) => name,
        Err(_) if value.cast::<pyo3::types::PyDict>().is_ok() => py
            .import("json")?
            .call_method1("dumps", (value,))?
            .extract()?,
        Err(_) => {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "issuers: {} is not an issuer name or a dict",
                value.get_type().name()?
            )));
        }
    };
    check(certmagic::IssuerSpec::from_json(&json))
}

fn text_or_bytes(v: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    match v.extract::<String>() {
        Ok(s) => Ok(s.into_bytes()),
        Err(_) => v.extract::<Vec<u8>>(),
    }
}

#[pymethods]
impl PyConfig {
    #[new]
    #[pyo3(signature = (
        *,
        ca = None,
        email = None,
        agreed = false,
        trusted_roots_pem = None,
        key_type = None,
        renewal_window_ratio = None,
        renew_check_interval = None,
        disable_http_challenge = false,
        disable_tls_alpn_challenge = false,
        alt_http_port = None,
        alt_tls_alpn_port = None,
        listen_host = None,
        challenge_preference = None,
        disable_distributed_solvers = false,
        eab_key_id = None,
        eab_hmac_key = None,
        preferred_chain_root_cns = None,
        preferred_chain_issuer_cns = None,
        preferred_chain_smallest = false,
        profile = None,
        must_staple = false,
        disable_ocsp_stapling = false,
        ocsp_responder_overrides = None,
        ocsp_check_interval = None,
        reuse_private_keys = false,
        order_timeout = None,
        rate_limit = None,
        retry_intervals = None,
        retry_max_total = None,
        storage = None,
        on_event = None,
        on_demand_decision = None,
        on_demand_ask = None,
        on_demand_allow = None,
        on_demand_rate_limit = None,
        on_demand_obtain_timeout = None,
        cache_capacity = None,
        dns_provider = None,
        dns_ttl = None,
        dns_propagation_delay = None,
        dns_propagation_timeout = None,
        dns_poll_interval = None,
        dns_resolvers = None,
        dns_override_domain = None,
        dns_follow_cname = None,
        callback_timeout_storage = None,
        callback_timeout_lock = None,
        callback_timeout_dns = None,
        callback_timeout_decision = None,
        callback_timeout_events = None,
        issuers = None,
        issuer_policy = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ca: Option<String>,
        email: Option<String>,
        agreed: bool,
        trusted_roots_pem: Option<Bound<'_, PyAny>>,
        key_type: Option<String>,
        renewal_window_ratio: Option<Number>,
        renew_check_interval: Option<Number>,
        disable_http_challenge: bool,
        disable_tls_alpn_challenge: bool,
        alt_http_port: Option<Number>,
        alt_tls_alpn_port: Option<Number>,
        listen_host: Option<String>,
        challenge_preference: Option<Vec<String>>,
        disable_distributed_solvers: bool,
        eab_key_id: Option<String>,
        eab_hmac_key: Option<String>,
        preferred_chain_root_cns: Option<Vec<String>>,
        preferred_chain_issuer_cns: Option<Vec<String>>,
        preferred_chain_smallest: bool,
        profile: Option<String>,
        must_staple: bool,
        disable_ocsp_stapling: bool,
        ocsp_responder_overrides: Option<std::collections::BTreeMap<String, String>>,
        ocsp_check_interval: Option<Number>,
        reuse_private_keys: bool,
        order_timeout: Option<Number>,
        rate_limit: Option<(Number, Number)>,
        retry_intervals: Option<Vec<Number>>,
        retry_max_total: Option<Number>,
        storage: Option<Bound<'_, PyAny>>,
        on_event: Option<Bound<'_, PyAny>>,
        on_demand_decision: Option<Bound<'_, PyAny>>,
        on_demand_ask: Option<String>,
        on_demand_allow: Option<Vec<String>>,
        on_demand_rate_limit: Option<(Number, Number)>,
        on_demand_obtain_timeout: Option<Number>,
        cache_capacity: Option<Number>,
        dns_provider: Option<Bound<'_, PyAny>>,
        dns_ttl: Option<Number>,
        dns_propagation_delay: Option<Number>,
        dns_propagation_timeout: Option<Number>,
        dns_poll_interval: Option<Number>,
        dns_resolvers: Option<Vec<String>>,
        dns_override_domain: Option<String>,
        dns_follow_cname: Option<bool>,
        callback_timeout_storage: Option<Number>,
        callback_timeout_lock: Option<Number>,
        callback_timeout_dns: Option<Number>,
        callback_timeout_decision: Option<Number>,
        callback_timeout_events: Option<Number>,
        issuers: Option<Vec<Bound<'_, PyAny>>>,
        issuer_policy: Option<String>,
    ) -> PyResult<Self> {
        guard("Config.new", || {
            // One keyword, one setter: the core checks every value and names the keyword.
            let mut b = certmagic::Config::builder()
                .agreed(agreed)
                .disable_http_challenge(disable_http_challenge)
                .disable_tls_alpn_challenge(disable_tls_alpn_challenge)
                .disable_distributed_solvers(disable_distributed_solvers)
                .preferred_chain_smallest(preferred_chain_smallest)
                .must_staple(must_staple)
                .disable_ocsp_stapling(disable_ocsp_stapling)
                .reuse_private_keys(reuse_private_keys);
            for (from, to) in ocsp_responder_overrides.unwrap_or_default() {
                b = b.ocsp_responder_override(from, to);
            }
            if let Some(v) = ocsp_check_interval {
                b = b.ocsp_check_interval(Span::seconds(v.0));
            }
            if let Some(v) = ca {
                b = b.ca(v);
            }
            if let Some(v) = email {
                b = b.email(v);
            }
            if let Some(v) = trusted_roots_pem {
                b = b.trusted_roots_pem(text_or_bytes(&v)?);
            }
            if let Some(v) = key_type {
                b = b.key_type(check(v.parse::<KeyType>())?);
            }
            if let Some(v) = renewal_window_ratio {
                b = b.renewal_window_ratio(v.0);
            }
            if let Some(v) = renew_check_interval {
                b = b.renew_check_interval(Span::seconds(v.0));
            }
            if let Some(v) = alt_http_port {
                b = b.alt_http_port(v.0);
            }
            if let Some(v) = alt_tls_alpn_port {
                b = b.alt_tls_alpn_port(v.0);
            }
            if let Some(v) = listen_host {
                b = b.listen_host(v);
            }
            if let Some(types) = challenge_preference {
                let order = check(
                    types
                        .iter()
                        .map(|t| t.parse::<ChallengeType>())
                        .collect::<certmagic::Result<Vec<_>>>(),
                )?;
                b = b.challenge_preference(order);
            }
            if let Some(v) = eab_key_id {
                b = b.eab_key_id(v);
            }
            if let Some(v) = eab_hmac_key {
                b = b.eab_hmac_key(v);
            }
            for name in preferred_chain_root_cns.unwrap_or_default() {
                b = b.preferred_chain_root_cn(name);
            }
            for name in preferred_chain_issuer_cns.unwrap_or_default() {
                b = b.preferred_chain_issuer_cn(name);
            }
            if let Some(v) = profile {
                b = b.profile(v);
            }
            if let Some(v) = order_timeout {
                b = b.order_timeout(Span::seconds(v.0));
            }
            if let Some((events, window)) = rate_limit {
                b = b
                    .rate_limit_events(events.0)
                    .rate_limit_window(Span::seconds(window.0));
            }
            if let Some(waits) = retry_intervals {
                b = b.retry_intervals(waits.into_iter().map(|w| Span::seconds(w.0)));
            }
            if let Some(v) = retry_max_total {
                b = b.retry_max_total(Span::seconds(v.0));
            }
            if let Some(s) = storage {
                let is_path = s.extract::<String>().is_ok() || s.hasattr("__fspath__")?;
                b = if is_path {
                    // A folder or a database URL.
                    let location: String =
                        py.import("os")?.call_method1("fspath", (&s,))?.extract()?;
                    b.storage_location(location)
                } else {
                    b.storage(Arc::new(Blocking::new(PyStorage::new(&s)?)))
                };
            }
            if let Some(f) = on_event {
                if !f.is_callable() {
                    return Err(pyo3::exceptions::PyTypeError::new_err(
                        "on_event must be callable",
                    ));
                }
                b = b.event_handler(Arc::new(PyEvents {
                    callable: Arc::new(f.unbind()),
                }));
            }
            if let Some(f) = on_demand_decision {
                if !f.is_callable() {
                    return Err(pyo3::exceptions::PyTypeError::new_err(
                        "on_demand_decision must be callable",
                    ));
                }
                b = b.on_demand_decision(Arc::new(PyDecision {
                    callable: Arc::new(f.unbind()),
                }));
            }
            if let Some(url) = on_demand_ask {
                b = b.on_demand_ask(url);
            }
            if let Some(names) = on_demand_allow {
                b = b.on_demand_allow(names);
            }
            if let Some((events, window)) = on_demand_rate_limit {
                b = b
                    .on_demand_rate_limit_events(events.0)
                    .on_demand_rate_limit_window(Span::seconds(window.0));
            }
            if let Some(v) = on_demand_obtain_timeout {
                b = b.on_demand_obtain_timeout(Span::seconds(v.0));
            }
            if let Some(max) = cache_capacity {
                b = b.cache_capacity(max.0);
            }
            if let Some(list) = issuers {
                for spec in list {
                    b = b.issuer(issuer_spec(py, &spec)?);
                }
            }
            if let Some(p) = issuer_policy {
                b = b.issuer_policy(check(p.parse())?);
            }
            if let Some(p) = dns_provider {
                b = b.dns_provider(crate::dns::provider(py, &p)?);
            }
            if let Some(v) = dns_ttl {
                b = b.dns_ttl(Span::seconds(v.0));
            }
            if let Some(v) = dns_propagation_delay {
                b = b.dns_propagation_delay(Span::seconds(v.0));
            }
            if let Some(v) = dns_propagation_timeout {
                b = b.dns_propagation_timeout(Span::seconds(v.0));
            }
            if let Some(v) = dns_poll_interval {
                b = b.dns_poll_interval(Span::seconds(v.0));
            }
            if let Some(v) = dns_resolvers {
                b = b.dns_resolvers(v);
            }
            if let Some(v) = dns_override_domain {
                b = b.dns_override_domain(v);
            }
            if let Some(v) = dns_follow_cname {
                b = b.dns_follow_cname(v);
            }
            if let Some(v) = callback_timeout_storage {
                b = b.callback_timeout_storage(Span::seconds(v.0));
            }
            if let Some(v) = callback_timeout_lock {
                b = b.callback_timeout_lock(Span::seconds(v.0));
            }
            if let Some(v) = callback_timeout_dns {
                b = b.callback_timeout_dns(Span::seconds(v.0));
            }
            if let Some(v) = callback_timeout_decision {
                b = b.callback_timeout_decision(Span::seconds(v.0));
            }
            if let Some(v) = callback_timeout_events {
                b = b.callback_timeout_events(Span::seconds(v.0));
            }
            Ok(Self {
                inner: check(b.build())?,
            })
        })
    }

    /// The CA directory URL.
    #[getter]
    fn ca(&self) -> &str {
        self.inner.ca()
    }

    /// The account email ("" for none).
    #[getter]
    fn email(&self) -> &str {
        self.inner.email()
    }

    /// The waits (seconds) between attempts of failed background work; the last repeats.
    #[getter]
    fn retry_intervals(&self) -> Vec<f64> {
        self.inner
            .retry_schedule()
            .intervals()
            .iter()
            .map(|d| d.as_secs_f64())
            .collect()
    }

    /// How long (seconds) failed background work is retried in all.
    #[getter]
    fn retry_max_total(&self) -> f64 {
        self.inner.retry_schedule().max_total().as_secs_f64()
    }

    /// The storage folder name of the CA (`certificates/<issuer_key>/…`), before sanitising.
    #[getter]
    fn issuer_key(&self) -> String {
        self.inner.issuer_key()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Config ca={:?} email={:?}>",
            self.inner.ca(),
            self.inner.email()
        )
    }
}
