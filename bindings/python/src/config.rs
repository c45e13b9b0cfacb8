//! `Config`: every core setting as a keyword argument. Types are checked by PyO3 (a `TypeError`
//! naming the argument); values by the core (a `certmagic.ConfigError`, also a `ValueError`,
//! naming the field).

use std::sync::Arc;
use std::time::Duration;

use certmagic::{
    ChainPreference, ChallengeType, DnsChallenge, DnsOptions, Error, FileStorage, KeyType,
    RateLimit, numbers,
};
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

fn seconds(field: &'static str, value: Number) -> PyResult<Duration> {
    check(numbers::seconds(field, value.0))
}

fn count(field: &'static str, value: Number) -> PyResult<usize> {
    check(numbers::whole_number(
        field,
        value.0,
        0,
        u64::from(u32::MAX),
    ))
    .map(|n| n as usize)
}

fn rate(field: &'static str, (events, window): (Number, Number)) -> PyResult<RateLimit> {
    Ok(RateLimit {
        events: count(field, events)?,
        window: seconds(field, window)?,
    })
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
    ) -> PyResult<Self> {
        guard("Config.new", || {
            let mut b = certmagic::Config::builder()
                .agreed(agreed)
                .disable_http_challenge(disable_http_challenge)
                .disable_tls_alpn_challenge(disable_tls_alpn_challenge)
                .disable_distributed_solvers(disable_distributed_solvers)
                .must_staple(must_staple)
                .reuse_private_keys(reuse_private_keys);
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
                b = b.renew_check_interval(seconds("renew_check_interval", v)?);
            }
            if let Some(v) = alt_http_port {
                b = b.alt_http_port(check(numbers::port("alt_http_port", v.0))?);
            }
            if let Some(v) = alt_tls_alpn_port {
                b = b.alt_tls_alpn_port(check(numbers::port("alt_tls_alpn_port", v.0))?);
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
            match (eab_key_id, eab_hmac_key) {
                (Some(id), Some(key)) => b = b.eab(id, key),
                (None, None) => {}
                _ => {
                    return check(Err(Error::config(
                        "eab_key_id",
                        "eab_key_id and eab_hmac_key go together",
                    )));
                }
            }
            let chain = ChainPreference {
                root_common_names: preferred_chain_root_cns.unwrap_or_default(),
                any_common_names: preferred_chain_issuer_cns.unwrap_or_default(),
                smallest: preferred_chain_smallest,
            };
            if chain != ChainPreference::default() {
                b = b.preferred_chain(chain);
            }
            if let Some(v) = profile {
                b = b.profile(v);
            }
            if let Some(v) = order_timeout {
                b = b.order_timeout(seconds("order_timeout", v)?);
            }
            if let Some(r) = rate_limit {
                b = b.rate_limit(rate("rate_limit", r)?);
            }
            if let Some(waits) = retry_intervals {
                let waits = waits
                    .into_iter()
                    .map(|s| seconds("retry_intervals", s))
                    .collect::<PyResult<Vec<_>>>()?;
                b = b.retry_intervals(waits);
            }
            if let Some(v) = retry_max_total {
                b = b.retry_max_total(seconds("retry_max_total", v)?);
            }
            if let Some(s) = storage {
                let is_path = s.extract::<String>().is_ok() || s.hasattr("__fspath__")?;
                b = if is_path {
                    let path: std::path::PathBuf =
                        py.import("os")?.call_method1("fspath", (&s,))?.extract()?;
                    b.storage(Arc::new(FileStorage::new(path)))
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
            if let Some(r) = on_demand_rate_limit {
                b = b.on_demand_rate_limit(rate("on_demand_rate_limit", r)?);
            }
            if let Some(v) = on_demand_obtain_timeout {
                b = b.on_demand_obtain_timeout(seconds("on_demand_obtain_timeout", v)?);
            }
            if let Some(max) = cache_capacity {
                b = b.cache_capacity(count("cache_capacity", max)?);
            }
            let ms =
                |field: &'static str, v: Number| seconds(field, v).map(|d| d.as_millis() as u64);
            let options = DnsOptions {
                ttl_secs: dns_ttl
                    .map(|v| seconds("dns_ttl", v).map(|d| d.as_secs()))
                    .transpose()?,
                propagation_delay_ms: dns_propagation_delay
                    .map(|v| ms("dns_propagation_delay", v))
                    .transpose()?,
                // Negative: no propagation checks.
                propagation_timeout_ms: match dns_propagation_timeout {
                    Some(v) if v.0 < 0.0 && v.0.is_finite() => Some(-1),
                    Some(v) => Some(ms("dns_propagation_timeout", v)? as i64),
                    None => None,
                },
                poll_interval_ms: dns_poll_interval
                    .map(|v| ms("dns_poll_interval", v))
                    .transpose()?,
                resolvers: dns_resolvers.unwrap_or_default(),
                override_domain: dns_override_domain,
                follow_cname: dns_follow_cname,
            };
            match dns_provider {
                Some(p) => {
                    let provider = crate::dns::provider(py, &p)?;
                    b = b.dns_challenge(DnsChallenge::with_options(provider, &options));
                }
                None if options != DnsOptions::default() => {
                    return check(Err(Error::config(
                        "dns_provider",
                        "DNS options are set but no dns_provider is given",
                    )));
                }
                None => {}
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
