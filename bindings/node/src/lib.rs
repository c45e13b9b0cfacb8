//! The native addon of the `certmagic` npm package: translation only, every behaviour lives in
//! the `certmagic` crate. `index.js` wraps it in the documented API (`CertMagic`, an
//! EventEmitter; errors with codes; `tlsOptions()`; the one-liner).
//!
//! JavaScript callbacks (storage, events, logs) are weak thread-safe functions: the engine calls
//! them from its threads without ever waiting synchronously on JavaScript, and they never keep
//! the process alive after `close()`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certmagic::storage::foreign::{ReleaseFuture, lock_detached};
use certmagic::{
    ChainPreference, ChallengeType, Config, DnsChallenge, DnsOptions, DnsProvider, DnsRecord,
    Error, ErrorKind, FileStorage, KeyInfo, KeyType, Manager, RateLimit, RevocationReason, Storage,
    numbers,
};
use napi::bindgen_prelude::{Buffer, Function, Promise};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Status, tokio};
use napi_derive::napi;

/// A weak thread-safe function taking `T`, returning `R`, called as `fn(value)`.
type Callback<T, R> = ThreadsafeFunction<T, R, T, Status, false, true>;

/// An error crossing into JavaScript: the reason is JSON that `index.js` turns into an `Error`
/// subclass with `code`, `cause` and the CA's problem fields.
fn to_js(err: Error) -> napi::Error {
    let cause = cause_id(&err);
    let problem = err.problem();
    let reason = serde_json::json!({
        "certmagic": true,
        "kind": err.kind().as_str(),
        "message": err.to_string(),
        "field": err.field(),
        "problemType": problem.and_then(|p| p.problem_type.clone()),
        "detail": problem.and_then(|p| p.detail.clone()),
        "status": problem.and_then(|p| p.status),
        "causeId": cause,
    });
    napi::Error::new(Status::GenericFailure, reason.to_string())
}

/// A JavaScript error kept by `index.js` under an id while its failure travels through the engine.
#[derive(Debug)]
struct JsCause(u32);

impl std::fmt::Display for JsCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JavaScript error #{}", self.0)
    }
}

impl std::error::Error for JsCause {}

fn cause_id(err: &Error) -> Option<u32> {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<JsCause>() {
            return Some(c.0);
        }
        source = s.source();
    }
    None
}

fn check<T>(res: certmagic::Result<T>) -> napi::Result<T> {
    res.map_err(to_js)
}

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

/// Engine settings (checked by the engine; `index.js` checks types first). Durations in
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
    pub reuse_private_keys: Option<bool>,
    pub order_timeout: Option<f64>,
    pub rate_limit: Option<RateLimitOptions>,
    pub retry_intervals: Option<Vec<f64>>,
    pub retry_max_total: Option<f64>,
    /// A folder for file storage (when no storage callback is given).
    pub storage_path: Option<String>,
    /// A built-in DNS provider: its name (settings from the environment) or its settings as
    /// JSON (`{"provider": "cloudflare", …}`). A provider object goes through the `dns`
    /// dispatch function instead.
    pub dns_provider: Option<String>,
    /// DNS-01 options as the engine's JSON (`{"resolvers", "override_domain", "follow_cname"}`).
    pub dns_options: Option<String>,
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
}

/// What a JavaScript on-demand decision answered (normalised by `index.js`).
#[napi(object)]
#[derive(Debug)]
pub struct DecisionReply {
    pub allow: bool,
    pub error: Option<String>,
    pub cause_id: Option<u32>,
}

/// The on-demand decision implemented by a JavaScript function.
struct JsDecision {
    dispatch: Callback<String, Promise<DecisionReply>>,
}

#[certmagic::async_trait]
impl certmagic::DecisionHandler for JsDecision {
    async fn decide(&self, name: &str) -> std::result::Result<(), certmagic::HandlerError> {
        let reply = tokio::time::timeout(CALL_TIMEOUT, async {
            let promise = self.dispatch.call_async(name.to_string()).await?;
            promise.await
        })
        .await
        .map_err(|_| format!("the decision did not settle within {CALL_TIMEOUT:?}"))?
        .map_err(|e| e.reason.clone())?;
        if reply.allow {
            return Ok(());
        }
        let why = reply
            .error
            .unwrap_or_else(|| format!("the decision refused `{name}`"));
        Err(match reply.cause_id {
            Some(id) => Box::new(Error::new(ErrorKind::Aborted, why).with_source(JsCause(id))),
            None => why.into(),
        })
    }
}

/// One call into a JavaScript DNS provider object.
#[napi(object)]
#[derive(Debug)]
pub struct DnsRequest {
    /// `appendRecords` or `deleteRecords`.
    pub op: String,
    /// The zone, with a trailing dot.
    pub zone: String,
    /// The records, as JSON.
    pub records_json: String,
}

/// What a JavaScript DNS provider call answered (normalised by `index.js`).
#[napi(object)]
#[derive(Debug)]
pub struct DnsReply {
    pub ok: bool,
    /// The records as created (JSON), when the provider returned them.
    pub records_json: Option<String>,
    pub error: Option<String>,
    pub cause_id: Option<u32>,
}

/// A DNS provider implemented by a JavaScript object, through one dispatch function.
struct JsDnsProvider {
    dispatch: Arc<Callback<DnsRequest, Promise<DnsReply>>>,
}

impl std::fmt::Debug for JsDnsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsDnsProvider")
    }
}

impl JsDnsProvider {
    async fn call(
        &self,
        op: &'static str,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        let what = format!("dnsProvider.{op}({zone:?})");
        let request = DnsRequest {
            op: op.to_string(),
            zone: zone.to_string(),
            records_json: serde_json::to_string(records)?,
        };
        let dispatch = self.dispatch.clone();
        let reply = tokio::time::timeout(CALL_TIMEOUT, async move {
            let promise = dispatch.call_async(request).await?;
            promise.await
        })
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("{what} did not settle within {CALL_TIMEOUT:?}"),
            )
        })?
        .map_err(|e| Error::new(ErrorKind::Challenge, format!("{what}: {}", e.reason)))?;
        if !reply.ok {
            let message = reply.error.clone().unwrap_or_else(|| "failed".into());
            let err = Error::new(ErrorKind::Challenge, format!("{what} failed: {message}"));
            return Err(match reply.cause_id {
                Some(id) => err.with_source(JsCause(id)),
                None => err,
            });
        }
        match reply.records_json {
            None => Ok(records.to_vec()),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                Error::new(
                    ErrorKind::Challenge,
                    format!("{what} returned something that is not an array of records: {e}"),
                )
            }),
        }
    }
}

#[certmagic::async_trait]
impl DnsProvider for JsDnsProvider {
    async fn append_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.call("appendRecords", zone, records).await
    }

    async fn delete_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.call("deleteRecords", zone, records).await
    }
}

/// One call into a JavaScript storage object.
#[napi(object)]
#[allow(missing_debug_implementations)] // holds napi Buffers, which have no Debug
pub struct StorageRequest {
    pub op: String,
    pub key: String,
    pub value: Option<Buffer>,
    pub recursive: Option<bool>,
}

/// What a JavaScript storage call answered (normalised by `index.js`).
#[napi(object)]
#[allow(missing_debug_implementations)] // holds napi Buffers, which have no Debug
pub struct StorageReply {
    pub ok: bool,
    pub not_found: Option<bool>,
    pub data: Option<Buffer>,
    pub flag: Option<bool>,
    pub keys: Option<Vec<String>>,
    /// Milliseconds since the Unix epoch.
    pub modified: Option<f64>,
    pub size: Option<f64>,
    pub error: Option<String>,
    pub cause_id: Option<u32>,
}

/// A certificate for JavaScript.
#[napi(object)]
#[allow(missing_debug_implementations)] // holds napi Buffers, which have no Debug
pub struct CertificateData {
    pub cert_pem: String,
    pub key_pem: String,
    pub names: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub not_before: f64,
    /// Milliseconds since the Unix epoch.
    pub not_after: f64,
    pub ocsp_staple: Option<Buffer>,
    pub managed: bool,
    /// SHA-256 of the DER chain, hex: equal for the same certificate.
    pub hash: String,
    pub serial: String,
}

fn millis(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<&certmagic::Certificate> for CertificateData {
    fn from(c: &certmagic::Certificate) -> Self {
        Self {
            cert_pem: c.chain_pem().to_string(),
            key_pem: c.key_pem().to_string(),
            names: c.names().map(str::to_string).collect(),
            not_before: millis(c.not_before()),
            not_after: millis(c.not_after()),
            ocsp_staple: c.ocsp_staple().map(|o| Buffer::from(o.to_vec())),
            managed: c.is_managed(),
            hash: hex(c.hash()),
            serial: c.serial_hex(),
        }
    }
}

/// Storage implemented by a JavaScript object, through one dispatch function.
#[derive(Clone)]
struct JsStorage {
    dispatch: Arc<Callback<StorageRequest, Promise<StorageReply>>>,
}

impl std::fmt::Debug for JsStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsStorage")
    }
}

impl JsStorage {
    async fn call(
        &self,
        op: &'static str,
        key: &str,
        value: Option<Vec<u8>>,
        recursive: Option<bool>,
    ) -> certmagic::Result<StorageReply> {
        let what = format!("storage.{op}({key:?})");
        let limit = if op == "lock" {
            LOCK_TIMEOUT
        } else {
            CALL_TIMEOUT
        };
        let request = StorageRequest {
            op: op.to_string(),
            key: key.to_string(),
            value: value.map(Buffer::from),
            recursive,
        };
        let dispatch = self.dispatch.clone();
        // Awaited twice: the call (queued to the JavaScript thread) yields a promise, then its result.
        let reply = tokio::time::timeout(limit, async move {
            let promise = dispatch.call_async(request).await?;
            promise.await
        })
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("{what} did not settle within {limit:?}"),
            )
        })?
        .map_err(|e| Error::new(ErrorKind::Storage, format!("{what}: {}", e.reason)))?;
        if reply.ok {
            return Ok(reply);
        }
        if reply.not_found == Some(true) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{what}: not found"),
            ));
        }
        let message = reply.error.clone().unwrap_or_else(|| "failed".into());
        let err = Error::new(ErrorKind::Storage, format!("{what} failed: {message}"));
        Err(match reply.cause_id {
            Some(id) => err.with_source(JsCause(id)),
            None => err,
        })
    }
}

#[certmagic::async_trait]
impl Storage for JsStorage {
    async fn store(&self, key: &str, value: &[u8]) -> certmagic::Result<()> {
        self.call("store", key, Some(value.to_vec()), None)
            .await
            .map(|_| ())
    }

    async fn load(&self, key: &str) -> certmagic::Result<Vec<u8>> {
        let reply = self.call("load", key, None, None).await?;
        Ok(reply.data.map(|d| d.to_vec()).unwrap_or_default())
    }

    async fn delete(&self, key: &str) -> certmagic::Result<()> {
        self.call("delete", key, None, None).await.map(|_| ())
    }

    async fn exists(&self, key: &str) -> certmagic::Result<bool> {
        Ok(self
            .call("exists", key, None, None)
            .await?
            .flag
            .unwrap_or(false))
    }

    async fn list(&self, prefix: &str, recursive: bool) -> certmagic::Result<Vec<String>> {
        Ok(self
            .call("list", prefix, None, Some(recursive))
            .await?
            .keys
            .unwrap_or_default())
    }

    async fn stat(&self, key: &str) -> certmagic::Result<KeyInfo> {
        let reply = self.call("stat", key, None, None).await?;
        let what = format!("storage.stat({key:?}) modified");
        Ok(KeyInfo {
            key: key.to_string(),
            modified: numbers::unix_time(&what, reply.modified.unwrap_or(0.0) / 1000.0)?,
            size: reply.size.unwrap_or(0.0).max(0.0) as u64,
            is_terminal: reply.flag.unwrap_or(true),
        })
    }

    async fn lock(&self, name: &str) -> certmagic::Result<()> {
        // A promise cannot be cancelled: a lock it grants after this call was dropped is
        // given back at once.
        let (locker, unlocker) = (self.clone(), self.clone());
        let (n, nu) = (name.to_string(), name.to_string());
        lock_detached(
            async move { locker.call("lock", &n, None, None).await.map(|_| ()) },
            move || -> ReleaseFuture {
                Box::pin(async move { unlocker.call("unlock", &nu, None, None).await.map(|_| ()) })
            },
        )
        .await
    }

    async fn unlock(&self, name: &str) -> certmagic::Result<()> {
        self.call("unlock", name, None, None).await.map(|_| ())
    }
}

/// Events to a JavaScript function `(name, payloadJson)`, without waiting for it.
struct JsEvents {
    emit: Callback<(String, String), ()>,
}

impl certmagic::EventHandler for JsEvents {
    fn handle(&self, event: &certmagic::Event) -> Result<(), certmagic::HandlerError> {
        let status = self.emit.call(
            (event.name().to_string(), event.payload().to_string()),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
        if status != Status::Ok {
            tracing::debug!(
                event = event.name(),
                ?status,
                "event not delivered to JavaScript"
            );
        }
        Ok(())
    }
}

fn weak<T, R>(f: &Function<'_, T, R>) -> napi::Result<Callback<T, R>>
where
    T: 'static + napi::bindgen_prelude::JsValuesTupleIntoVec,
    R: 'static + napi::bindgen_prelude::FromNapiValue,
{
    f.build_threadsafe_function()
        .callee_handled::<false>()
        .weak::<true>()
        .build()
}

fn config(
    options: EngineOptions,
    storage: Option<Arc<dyn Storage>>,
    events: Option<JsEvents>,
    dns_provider: Option<Arc<dyn DnsProvider>>,
    decision: Option<JsDecision>,
) -> certmagic::Result<Config> {
    let ms = numbers::milliseconds;
    let rate = |field: &'static str, r: RateLimitOptions| -> certmagic::Result<RateLimit> {
        Ok(RateLimit {
            events: numbers::whole_number(field, r.events, 0, u64::from(u32::MAX))? as usize,
            window: ms(field, r.window)?,
        })
    };
    let mut b = Config::builder();
    if let Some(v) = options.ca {
        b = b.ca(v);
    }
    if let Some(v) = options.email {
        b = b.email(v);
    }
    b = b.agreed(options.agreed.unwrap_or(false));
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
        b = b.renew_check_interval(ms("renewCheckInterval", v)?);
    }
    b = b
        .disable_http_challenge(options.disable_http_challenge.unwrap_or(false))
        .disable_tls_alpn_challenge(options.disable_tls_alpn_challenge.unwrap_or(false))
        .disable_distributed_solvers(options.disable_distributed_solvers.unwrap_or(false))
        .must_staple(options.must_staple.unwrap_or(false))
        .reuse_private_keys(options.reuse_private_keys.unwrap_or(false));
    if let Some(v) = options.alt_http_port {
        b = b.alt_http_port(numbers::port("altHttpPort", v)?);
    }
    if let Some(v) = options.alt_tls_alpn_port {
        b = b.alt_tls_alpn_port(numbers::port("altTlsAlpnPort", v)?);
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
        b = b.eab(e.key_id, e.hmac_key);
    }
    if let Some(c) = options.preferred_chain {
        b = b.preferred_chain(ChainPreference {
            root_common_names: c.root_common_names.unwrap_or_default(),
            any_common_names: c.issuer_common_names.unwrap_or_default(),
            smallest: c.smallest.unwrap_or(false),
        });
    }
    if let Some(v) = options.profile {
        b = b.profile(v);
    }
    if let Some(v) = options.order_timeout {
        b = b.order_timeout(ms("orderTimeout", v)?);
    }
    if let Some(r) = options.rate_limit {
        b = b.rate_limit(rate("rateLimit", r)?);
    }
    if let Some(waits) = options.retry_intervals {
        let waits = waits
            .into_iter()
            .map(|v| ms("retryIntervals", v))
            .collect::<certmagic::Result<Vec<_>>>()?;
        b = b.retry_intervals(waits);
    }
    if let Some(v) = options.retry_max_total {
        b = b.retry_max_total(ms("retryMaxTotal", v)?);
    }
    b = match (storage, options.storage_path) {
        (Some(s), _) => b.storage(s),
        (None, Some(path)) => b.storage(Arc::new(FileStorage::new(path))),
        (None, None) => b,
    };
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
        b = b.on_demand_rate_limit(rate("onDemand.rateLimit", r)?);
    }
    if let Some(v) = options.on_demand_obtain_timeout {
        b = b.on_demand_obtain_timeout(ms("onDemand.obtainTimeout", v)?);
    }
    if let Some(max) = options.cache_capacity {
        b = b.cache_capacity(
            numbers::whole_number("cacheCapacity", max, 0, u64::from(u32::MAX))? as usize,
        );
    }
    let mut dns_options = match &options.dns_options {
        Some(json) => DnsOptions::from_json(json)?,
        None => DnsOptions::default(),
    };
    let whole_ms = |field, v| ms(field, v).map(|d| d.as_millis() as u64);
    if let Some(v) = options.dns_ttl {
        dns_options.ttl_secs = Some(numbers::seconds("dns.ttl", v)?.as_secs());
    }
    if let Some(v) = options.dns_propagation_delay {
        dns_options.propagation_delay_ms = Some(whole_ms("dns.propagationDelay", v)?);
    }
    if let Some(v) = options.dns_propagation_timeout {
        dns_options.propagation_timeout_ms = Some(if v < 0.0 && v.is_finite() {
            -1
        } else {
            whole_ms("dns.propagationTimeout", v)? as i64
        });
    }
    if let Some(v) = options.dns_poll_interval {
        dns_options.poll_interval_ms = Some(whole_ms("dns.pollInterval", v)?);
    }
    let provider = match (dns_provider, options.dns_provider) {
        (Some(p), _) => Some(p),
        (None, Some(spec)) => Some(certmagic::dns::providers::from_spec(&spec)?),
        (None, None) if dns_options != DnsOptions::default() => {
            return Err(Error::config(
                "dnsProvider",
                "DNS options are set but no dnsProvider is given",
            ));
        }
        (None, None) => None,
    };
    if let Some(p) = provider {
        b = b.dns_challenge(DnsChallenge::with_options(p, &dns_options));
    }
    b.build()
}

/// The engine behind `CertMagic`.
#[napi]
#[derive(Debug)]
pub struct Engine {
    inner: Manager,
}

#[napi]
impl Engine {
    /// `storage(request) → Promise<reply>`, `events(name, payloadJson)` and
    /// `dns(request) → Promise<reply>` are optional.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        options: EngineOptions,
        storage: Option<Function<'_, StorageRequest, Promise<StorageReply>>>,
        events: Option<Function<'_, (String, String), ()>>,
        dns: Option<Function<'_, DnsRequest, Promise<DnsReply>>>,
        decision: Option<Function<'_, String, Promise<DecisionReply>>>,
    ) -> napi::Result<Self> {
        let storage: Option<Arc<dyn Storage>> = match storage {
            Some(f) => Some(Arc::new(JsStorage {
                dispatch: Arc::new(weak(&f)?),
            })),
            None => None,
        };
        let events = match events {
            Some(f) => Some(JsEvents { emit: weak(&f)? }),
            None => None,
        };
        let dns: Option<Arc<dyn DnsProvider>> = match dns {
            Some(f) => Some(Arc::new(JsDnsProvider {
                dispatch: Arc::new(weak(&f)?),
            })),
            None => None,
        };
        let decision = match decision {
            Some(f) => Some(JsDecision {
                dispatch: weak(&f)?,
            }),
            None => None,
        };
        let config = check(config(options, storage, events, dns, decision))?;
        Ok(Self {
            inner: check(Manager::new(config))?,
        })
    }

    #[napi(catch_unwind)]
    pub async fn manage(&self, names: Vec<String>) -> napi::Result<()> {
        check(self.inner.manage(&names).await)
    }

    #[napi(catch_unwind)]
    pub fn manage_background(&self, names: Vec<String>) -> napi::Result<()> {
        check(self.inner.manage_async(&names))
    }

    #[napi(catch_unwind)]
    pub async fn obtain(&self, name: String) -> napi::Result<CertificateData> {
        check(self.inner.obtain(&name).await).map(|c| CertificateData::from(&*c))
    }

    #[napi(catch_unwind)]
    pub async fn renew(&self, name: String) -> napi::Result<CertificateData> {
        check(self.inner.renew(&name).await).map(|c| CertificateData::from(&*c))
    }

    /// `reason`: an RFC 5280 code (0, 1, 3, 4, 5).
    #[napi(catch_unwind)]
    pub async fn revoke(&self, name: String, reason: Option<u32>) -> napi::Result<()> {
        let reason = match reason {
            None => RevocationReason::Unspecified,
            Some(code) => u8::try_from(code)
                .ok()
                .and_then(RevocationReason::from_code)
                .ok_or_else(|| {
                    to_js(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("reason: {code} is not a revocation reason (0, 1, 3, 4, 5)"),
                    ))
                })?,
        };
        check(self.inner.revoke(&name, reason).await)
    }

    /// The certificate for a TLS server name (exact, then wildcard). Memory only.
    #[napi(catch_unwind)]
    pub fn get_certificate(&self, server_name: String) -> Option<CertificateData> {
        self.inner
            .get_certificate(&server_name)
            .map(|c| CertificateData::from(&*c))
    }

    /// The hash of the certificate for a server name: cheap, for caching contexts per certificate.
    #[napi(catch_unwind)]
    pub fn certificate_hash(&self, server_name: String) -> Option<String> {
        self.inner
            .get_certificate(&server_name)
            .map(|c| hex(c.hash()))
    }

    #[napi(catch_unwind)]
    pub fn add_certificate(
        &self,
        cert_pem: String,
        key_pem: String,
    ) -> napi::Result<CertificateData> {
        check(
            self.inner
                .add_certificate(cert_pem.as_bytes(), key_pem.as_bytes()),
        )
        .map(|c| CertificateData::from(&*c))
    }

    #[napi(catch_unwind)]
    pub async fn http_challenge_answer(&self, host: String, path: String) -> Option<String> {
        self.inner.handle_http_challenge(&host, &path).await
    }

    /// The certificate for a handshake: cached, from storage, or (on-demand TLS) obtained.
    #[napi(catch_unwind)]
    pub async fn certificate_for_handshake(
        &self,
        server_name: Option<String>,
        alpn: Vec<String>,
    ) -> napi::Result<CertificateData> {
        let refs: Vec<&[u8]> = alpn.iter().map(|p| p.as_bytes()).collect();
        let cert = check(
            self.inner
                .certificate_for_handshake(server_name.as_deref(), &refs)
                .await,
        )?;
        Ok(CertificateData::from(cert.as_ref()))
    }

    /// The challenge certificate for a validation handshake (ALPN exactly `acme-tls/1`), from this
    /// process or the shared storage.
    #[napi(catch_unwind)]
    pub async fn tls_alpn_challenge_certificate(
        &self,
        server_name: String,
        alpn: Vec<String>,
    ) -> Option<CertificateData> {
        let refs: Vec<&[u8]> = alpn.iter().map(|p| p.as_bytes()).collect();
        self.inner
            .tls_alpn_challenge_cert(&server_name, &refs)
            .await
            .map(|c| CertificateData::from(&*c))
    }

    /// The challenge certificate for `server_name` if this process has a TLS-ALPN-01 challenge
    /// in flight for it (memory only, for SNI callbacks that cannot see ALPN).
    #[napi(catch_unwind)]
    pub fn tls_alpn_challenge_certificate_local(
        &self,
        server_name: String,
    ) -> Option<CertificateData> {
        certmagic::solvers::tls_alpn01::answer_local(&server_name)
            .map(|c| CertificateData::from(&*c))
    }

    #[napi(catch_unwind)]
    pub async fn close(&self) -> napi::Result<()> {
        check(self.inner.shutdown().await)
    }

    /// The waits (milliseconds) between attempts of failed background work; the last repeats.
    #[napi(getter, catch_unwind)]
    pub fn retry_intervals(&self) -> Vec<f64> {
        self.inner
            .config()
            .retry_schedule()
            .intervals()
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect()
    }

    /// How long (milliseconds) failed background work is retried in all.
    #[napi(getter, catch_unwind)]
    pub fn retry_max_total(&self) -> f64 {
        self.inner
            .config()
            .retry_schedule()
            .max_total()
            .as_secs_f64()
            * 1000.0
    }

    #[napi(getter, catch_unwind)]
    pub fn issuer_key(&self) -> String {
        self.inner.issuer_key().to_string()
    }
}

/// A ClientHello's server name and ALPN protocols.
#[napi(object)]
#[derive(Debug)]
pub struct ClientHello {
    pub server_name: Option<String>,
    pub protocols: Vec<String>,
}

/// Parses the ClientHello at the start of `data`; null while more bytes are needed.
#[napi(catch_unwind)]
pub fn peek_client_hello(data: Buffer) -> napi::Result<Option<ClientHello>> {
    match check(certmagic::peek_client_hello(&data))? {
        certmagic::ClientHelloPeek::Incomplete => Ok(None),
        certmagic::ClientHelloPeek::Hello { server_name, alpn } => Ok(Some(ClientHello {
            server_name,
            protocols: alpn
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect(),
        })),
    }
}

/// Where a plain-HTTP request is redirected (null without a usable `Host`).
#[napi(catch_unwind)]
pub fn https_redirect_location(
    host: String,
    https_port: u32,
    path_and_query: String,
) -> Option<String> {
    certmagic::https_redirect_location(
        &host,
        u16::try_from(https_port).unwrap_or(443),
        &path_and_query,
    )
}

/// Sends the engine's log records (level 1 error … 5 trace, message) to `logger`, or stops with
/// null. Never waits for JavaScript; records are dropped while the process exits.
#[napi(catch_unwind)]
pub fn set_logger(
    logger: Option<Function<'_, (u32, String), ()>>,
    max_level: u32,
) -> napi::Result<()> {
    let level = certmagic::log::level_from_number(max_level).ok_or_else(|| {
        to_js(Error::config(
            "logLevel",
            format!("{max_level} is not a level (1-5)"),
        ))
    })?;
    let callback = match logger {
        Some(f) => Some(Arc::new(weak(&f)?)),
        None => None,
    };
    let sink: Option<certmagic::log::LogSink> = callback.map(|cb| {
        let sink: certmagic::log::LogSink = Arc::new(move |level, _target: &str, message: &str| {
            let _ = cb.call(
                (
                    u32::from(certmagic::log::level_number(level)),
                    message.to_string(),
                ),
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        });
        sink
    });
    check(certmagic::log::set_log_sink(sink, level))
}

/// A JavaScript storage call that does not settle within this fails (locks may wait longer).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// Let's Encrypt's production directory (the default CA).
#[napi]
pub const LETS_ENCRYPT_PRODUCTION: &str = certmagic::LETS_ENCRYPT_PRODUCTION;
/// Let's Encrypt's staging directory.
#[napi]
pub const LETS_ENCRYPT_STAGING: &str = certmagic::LETS_ENCRYPT_STAGING;
/// ZeroSSL's ACME directory.
#[napi]
pub const ZEROSSL: &str = certmagic::ZEROSSL;
/// Google Trust Services' directory.
#[napi]
pub const GOOGLE_TRUST_SERVICES: &str = certmagic::GOOGLE_TRUST_SERVICES;
