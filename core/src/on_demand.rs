//! On-demand TLS: a certificate obtained during the first TLS handshake for a name that has
//! none, behind a decision. The policy ([`OnDemand`]): a decision hook, an "ask" URL, or an
//! explicit allow-list (at least one is required), and an optional issuance rate limit. The
//! state ([`OnDemandState`]): obtains in flight (shared by every handshake waiting for the same
//! name) and recent failures (backed off, so a failing name does not order on every handshake).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use tokio::sync::watch;

use crate::certificate::Certificate;
use crate::config::RateLimit;
use crate::error::{Error, ErrorKind, Result};
use crate::events::HandlerError;
use crate::fields::ConfigField;

/// Allows or refuses on-demand issuance for a name first seen in a handshake. Runs before any
/// storage access for the name, and again before an on-demand certificate is renewed.
#[async_trait::async_trait]
pub trait DecisionHandler: Send + Sync + 'static {
    /// `Ok(())` to allow a certificate for `name` (lower case, punycode), `Err(reason)` to
    /// refuse.
    async fn decide(&self, name: &str) -> std::result::Result<(), HandlerError>;
}

/// A plain closure decides inline; it must not block (do blocking work in an `async`
/// implementation, with [`spawn_blocking`](crate::runtime::spawn_blocking)).
#[async_trait::async_trait]
impl<F, E> DecisionHandler for F
where
    F: Fn(&str) -> std::result::Result<(), E> + Send + Sync + 'static,
    E: Into<HandlerError>,
{
    async fn decide(&self, name: &str) -> std::result::Result<(), HandlerError> {
        self(name).map_err(Into::into)
    }
}

/// Default limit on one on-demand obtain (Go CertMagic's).
pub const DEFAULT_ON_DEMAND_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a handshake waits for an expired on-demand certificate to be renewed.
pub const EXPIRED_RENEWAL_WAIT: Duration = Duration::from_secs(90);
/// The most bytes of an "ask" answer read (only its status is used).
const ASK_BODY_LIMIT: usize = 64 * 1024;
/// How long the "ask" endpoint has to answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause after a failed on-demand obtain; doubles per failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// Failing names remembered for backoff at most (a flood of failing names must not grow memory).
pub const MAX_REMEMBERED_FAILURES: usize = 10_000;
/// Longest pause between on-demand attempts for a failing name.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The on-demand policy, part of [`Config`](crate::Config).
#[derive(Clone, Default)]
pub struct OnDemand {
    pub(crate) decision: Option<Arc<dyn DecisionHandler>>,
    pub(crate) ask: Option<String>,
    pub(crate) allow: HashSet<String>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) obtain_timeout: Option<Duration>,
    /// How long the decision hook may take (the callback deadline).
    pub(crate) decision_deadline: Option<Duration>,
}

impl std::fmt::Debug for OnDemand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDemand")
            .field("decision", &self.decision.is_some())
            .field("ask", &self.ask.as_deref().map(without_query))
            .field("allow", &self.allow.len())
            .field("rate_limit", &self.rate_limit)
            .field("obtain_timeout", &self.obtain_timeout)
            .finish()
    }
}

impl OnDemand {
    /// Whether any gate (decision, ask URL, allow-list) is set: on-demand is on only then.
    pub(crate) fn has_gate(&self) -> bool {
        self.decision.is_some() || self.ask.is_some() || !self.allow.is_empty()
    }

    /// Checks the settings (called by the config builder).
    pub(crate) fn validate(mut self) -> Result<Option<Self>> {
        if !self.has_gate() {
            if self.rate_limit.is_some() || self.obtain_timeout.is_some() {
                let field = if self.rate_limit.is_some() {
                    ConfigField::OnDemandRateLimitEvents
                } else {
                    ConfigField::OnDemandObtainTimeout
                };
                return Err(Error::config(
                    field,
                    "on-demand settings are given, but no decision, ask URL or allow-list: on-demand TLS needs one of them, or anyone could make this server order certificates",
                ));
            }
            return Ok(None);
        }
        if let Some(url) = &self.ask {
            let parsed: http::Uri = url.parse().map_err(|e| {
                Error::config(
                    ConfigField::OnDemandAsk,
                    format!("`{}` is not a URL: {e}", without_query(url)),
                )
            })?;
            if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
                return Err(Error::config(
                    ConfigField::OnDemandAsk,
                    format!("`{}` is not an http(s) URL", without_query(url)),
                ));
            }
        }
        if let Some(t) = self.obtain_timeout {
            crate::config::within(
                ConfigField::OnDemandObtainTimeout,
                t,
                Duration::from_millis(1),
                crate::config::MAX_TIMEOUT,
            )?;
        }
        // In the form handshake names take (canonical: lower case, punycode, standard IP text).
        self.allow = self
            .allow
            .into_iter()
            .map(|n| {
                crate::subject::canonical_server_name(n.trim())
                    .unwrap_or_else(|_| n.trim().trim_end_matches('.').to_ascii_lowercase())
            })
            .collect();
        Ok(Some(self))
    }

    /// The limit on one obtain.
    pub fn obtain_timeout(&self) -> Duration {
        self.obtain_timeout.unwrap_or(DEFAULT_ON_DEMAND_TIMEOUT)
    }
}

/// A shared outcome of one obtain, waited for by every handshake for the name.
pub(crate) type Outcome = Option<std::result::Result<Arc<Certificate>, Error>>;

/// Per-manager on-demand state.
pub(crate) struct OnDemandState {
    pub policy: OnDemand,
    /// The ask endpoint's client, built on first use (or by [`OnDemandState::warm_up`]).
    ask_client: std::sync::OnceLock<std::result::Result<AskClient, String>>,
    pub inflight: Mutex<HashMap<String, watch::Receiver<Outcome>>>,
    failures: Mutex<HashMap<String, Failure>>,
    issued: Mutex<std::collections::VecDeque<Instant>>,
}

struct Failure {
    attempts: u32,
    retry_at: Instant,
    error: Error,
}

impl std::fmt::Debug for OnDemandState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDemandState")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl OnDemandState {
    pub fn new(policy: OnDemand) -> Self {
        Self {
            policy,
            ask_client: std::sync::OnceLock::new(),
            inflight: Mutex::default(),
            failures: Mutex::default(),
            issued: Mutex::default(),
        }
    }

    /// Builds now what the first decision would otherwise wait for (the ask endpoint's client,
    /// with its trust roots).
    pub fn warm_up(&self) {
        if self.policy.ask.is_some() {
            let _ = self.ask_client();
        }
    }

    /// The ask endpoint's client: this manager's own, so that the connections it keeps alive
    /// between asks belong to this process and to the runtime its decisions run on.
    fn ask_client(&self) -> std::result::Result<&AskClient, String> {
        self.ask_client
            .get_or_init(|| crate::net::web_client(ASK_IDLE_CONNECTIONS))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Refuses a name that failed recently, until its backoff has passed.
    pub fn check_backoff(&self, name: &str) -> Result<()> {
        let failures = lock(&self.failures);
        match failures.get(name) {
            Some(f) if f.retry_at > Instant::now() => {
                let wait = f.retry_at.saturating_duration_since(Instant::now());
                Err(Error::new(
                    f.error.kind(),
                    format!(
                        "on-demand certificate for `{name}` failed {} time(s), next attempt in {}s: {}",
                        f.attempts,
                        wait.as_secs() + 1,
                        f.error.message()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Records the outcome of an attempt (a refusal by the policy is not a failure).
    pub fn record(&self, name: &str, outcome: &std::result::Result<Arc<Certificate>, Error>) {
        let mut failures = lock(&self.failures);
        match outcome {
            Ok(_) => {
                failures.remove(name);
            }
            Err(e) if e.kind() == ErrorKind::Aborted => {}
            Err(e) => {
                let attempts = failures.get(name).map_or(1, |f| f.attempts + 1);
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << (attempts - 1).min(10))
                    .min(MAX_BACKOFF);
                tracing::warn!(name, attempts, backoff_secs = backoff.as_secs(), error = %e, "on-demand certificate failed; backing off");
                if failures.len() >= MAX_REMEMBERED_FAILURES && !failures.contains_key(name) {
                    // Forget failures whose backoff is over, else the one ending soonest.
                    let now = Instant::now();
                    failures.retain(|_, f| f.retry_at > now);
                    if failures.len() >= MAX_REMEMBERED_FAILURES {
                        let soonest = failures
                            .iter()
                            .min_by_key(|(_, f)| f.retry_at)
                            .map(|(n, _)| n.clone());
                        if let Some(n) = soonest {
                            failures.remove(&n);
                        }
                    }
                }
                failures.insert(
                    name.to_string(),
                    Failure {
                        attempts,
                        retry_at: Instant::now() + backoff,
                        error: e.clone(),
                    },
                );
            }
        }
    }

    /// Takes one issuance from the rate limit, or refuses.
    pub fn take_issuance(&self) -> Result<()> {
        let Some(limit) = self.policy.rate_limit.filter(|l| l.events > 0) else {
            return Ok(());
        };
        let mut issued = lock(&self.issued);
        let now = Instant::now();
        while issued
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.window)
        {
            issued.pop_front();
        }
        if issued.len() >= limit.events {
            return Err(Error::new(
                ErrorKind::Aborted,
                format!(
                    "on-demand issuance rate limit reached ({} per {:?})",
                    limit.events, limit.window
                ),
            ));
        }
        issued.push_back(now);
        Ok(())
    }

    /// Runs the policy for `name`: allow-list, decision hook, ask URL (every gate that is set
    /// must allow). A hook that errors or panics refuses, and the reason is logged.
    pub async fn decide(&self, name: &str) -> Result<()> {
        let p = &self.policy;
        let refused = |why: String| {
            tracing::info!(name, reason = %why, "on-demand certificate refused");
            Error::new(
                ErrorKind::Aborted,
                format!("on-demand certificate for `{name}` refused: {why}"),
            )
        };
        if p.decision.is_none() && p.ask.is_none() {
            return if p.allow.contains(name) {
                Ok(())
            } else {
                Err(refused("not in the allow-list".into()))
            };
        }
        if let Some(d) = &p.decision {
            let d = d.clone();
            let owned = name.to_string();
            // Spawned so that a panic in the hook is caught and refuses.
            let deciding = tokio::spawn(async move { d.decide(&owned).await });
            let verdict = match p.decision_deadline {
                None => deciding.await,
                Some(limit) => match tokio::time::timeout(limit, deciding).await {
                    Ok(verdict) => verdict,
                    Err(_) => {
                        return Err(refused(format!(
                            "the decision did not answer within {limit:?} (the callback deadline)"
                        )));
                    }
                },
            };
            match verdict {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(refused(format!("the decision said no: {e}"))),
                Err(e) if e.is_panic() => {
                    let text = crate::runtime::panic_text(&*e.into_panic());
                    tracing::error!(name, panic = %text, "on-demand decision panicked; refusing");
                    return Err(refused(format!("the decision panicked: {text}")));
                }
                Err(_) => return Err(refused("the decision was cancelled".into())),
            }
        }
        if let Some(url) = &p.ask {
            let client = self.ask_client().map_err(&refused)?;
            ask(client, url, name).await.map_err(refused)?;
        }
        Ok(())
    }
}

/// GET `url?domain=name`: a 2xx answer allows; anything else (a redirect included, or no
/// answer within [`ASK_TIMEOUT`]) refuses.
async fn ask(client: &AskClient, url: &str, name: &str) -> std::result::Result<(), String> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let target = format!("{url}{sep}domain={}", encode(name));
    let request = http::Request::get(&target)
        .body(Empty::new())
        .map_err(|e| format!("ask URL `{}`: {e}", without_query(url)))?;
    let answer = tokio::time::timeout(ASK_TIMEOUT, async {
        let resp = client.request(request).await.map_err(|e| e.to_string())?;
        // Only the status matters; the body is read (bounded) so that the connection can serve
        // the next ask.
        let status = resp.status();
        let _ = crate::net::read_body(resp.into_body(), ASK_BODY_LIMIT).await;
        Ok::<_, String>(status)
    })
    .await
    .map_err(|_| format!("the ask endpoint did not answer within {ASK_TIMEOUT:?}"))?
    .map_err(|e| format!("the ask endpoint could not be reached: {e}"))?;
    if answer.is_success() {
        Ok(())
    } else {
        Err(format!("the ask endpoint answered {answer}"))
    }
}

type AskClient = crate::net::WebClient<Empty<Bytes>>;

/// Connections to the ask endpoint kept open between asks: a new name's handshake then pays no
/// TCP connect (on loopback, a new connection per ask was about 60 % of the engine's work for a
/// stored name's first handshake).
const ASK_IDLE_CONNECTIONS: usize = 8;

/// An ask URL fit for logs and errors: its query (which may hold a token) left out.
fn without_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(policy: OnDemand) -> OnDemandState {
        OnDemandState::new(policy.validate().unwrap().unwrap())
    }

    #[test]
    fn needs_a_gate() {
        assert!(OnDemand::default().validate().unwrap().is_none());
        let e = OnDemand {
            rate_limit: Some(RateLimit {
                events: 1,
                window: Duration::from_secs(1),
            }),
            ..OnDemand::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.config_field(), Some(ConfigField::OnDemandRateLimitEvents));
        let e = OnDemand {
            ask: Some("ftp://x".into()),
            ..OnDemand::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.config_field(), Some(ConfigField::OnDemandAsk));
    }

    #[test]
    fn the_ask_token_is_never_printed() {
        let policy = OnDemand {
            ask: Some("https://ask.test/check?token=s3cr3t-t0k3n".into()),
            ..OnDemand::default()
        };
        assert!(!format!("{policy:?}").contains("s3cr3t"), "{policy:?}");
        let config = crate::Config::builder()
            .storage(std::sync::Arc::new(crate::MemoryStorage::new()))
            .on_demand_ask("https://ask.test/check?token=s3cr3t-t0k3n")
            .build()
            .unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", config.on_demand()).contains("s3cr3t"));
    }

    /// A decision that never answers.
    struct Silent;

    #[async_trait::async_trait]
    impl DecisionHandler for Silent {
        async fn decide(&self, _: &str) -> std::result::Result<(), HandlerError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_decision_past_its_deadline_refuses() {
        let s = state(OnDemand {
            decision: Some(Arc::new(Silent)),
            decision_deadline: Some(Duration::from_secs(60)),
            ..OnDemand::default()
        });
        let e = s.decide("slow.example.test").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Aborted);
        assert!(e.message().contains("callback deadline"), "{e}");
    }

    #[tokio::test]
    async fn allow_list_decision_and_panics() {
        let s = state(OnDemand {
            allow: ["A.example.test".to_string()].into(),
            ..OnDemand::default()
        });
        s.decide("a.example.test").await.unwrap();
        let s = state(OnDemand {
            allow: [
                "Bücher.example.test.".to_string(),
                "[2001:DB8::1]".to_string(),
            ]
            .into(),
            ..OnDemand::default()
        });
        s.decide("xn--bcher-kva.example.test").await.unwrap();
        s.decide("2001:db8::1").await.unwrap();
        assert_eq!(
            s.decide("b.example.test").await.unwrap_err().kind(),
            ErrorKind::Aborted
        );

        let deny = |n: &str| {
            if n.starts_with("ok.") {
                Ok(())
            } else {
                Err("no")
            }
        };
        let s = state(OnDemand {
            decision: Some(Arc::new(deny)),
            ..OnDemand::default()
        });
        s.decide("ok.example.test").await.unwrap();
        let e = s.decide("bad.example.test").await.unwrap_err();
        assert!(e.message().contains("said no: no"), "{e}");

        let boom = |_: &str| -> std::result::Result<(), &'static str> { panic!("decision bug") };
        let s = state(OnDemand {
            decision: Some(Arc::new(boom)),
            ..OnDemand::default()
        });
        let e = s.decide("x.example.test").await.unwrap_err();
        assert!(e.message().contains("panicked: decision bug"), "{e}");
    }

    #[test]
    fn failures_back_off_and_rate_limit_refuses() {
        let s = state(OnDemand {
            allow: ["a".to_string()].into(),
            rate_limit: Some(RateLimit {
                events: 2,
                window: Duration::from_secs(60),
            }),
            ..OnDemand::default()
        });
        s.check_backoff("a").unwrap();
        s.record("a", &Err(Error::new(ErrorKind::Challenge, "dns")));
        let e = s.check_backoff("a").unwrap_err();
        assert!(
            e.message().contains("failed 1 time(s)") && e.message().contains("dns"),
            "{e}"
        );
        s.take_issuance().unwrap();
        s.take_issuance().unwrap();
        assert!(
            s.take_issuance()
                .unwrap_err()
                .message()
                .contains("rate limit")
        );
    }
}
