//! [`AcmeIssuer`]: certificates from any RFC 8555 CA through instant-acme. One name per order;
//! HTTP-01 and TLS-ALPN-01 tried in turn (a failed type is followed by the next, on a new order);
//! badNonce and transient CA or network errors retried inside each step; the preferred chain
//! picked among the CA's alternates.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, NewAccount, NewOrder, Order, OrderStatus,
    RetryPolicy,
};
use rustls_pki_types::CertificateDer;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::account::{self, AccountKeys, AccountRegistration};
use crate::acme_http::AcmeHttp;
use crate::ari::RenewalInfo;
use crate::certificate::{AcmeIssuerData, Certificate, issuer_common_names};
use crate::config::{ChainPreference, ChallengeType, Config};
use crate::crypto;
use crate::error::{AcmeProblem, Error, ErrorKind, Result};
use crate::issuer::{IssuedCertificate, Issuer, RevocationReason};
use crate::rate_limiter::RateLimiter;
use crate::solvers::{self, ChallengeInfo, Presented};
use crate::storage::{LockGuard, keys};
use crate::subject::Subject;

/// Runs an ACME step, repeating it on transient errors (a fresh nonce each time).
macro_rules! acme_retry {
    ($what:expr, $step:expr) => {{
        let mut attempt: u32 = 0;
        loop {
            match $step {
                Ok(v) => break Ok::<_, $crate::error::Error>(v),
                Err(err) if attempt + 1 < $crate::acme_issuer::transient_attempts(&err) => {
                    attempt += 1;
                    tracing::debug!(step = $what, attempt, error = %err, "transient ACME error; retrying");
                    tokio::time::sleep($crate::acme_issuer::TRANSIENT_RETRY_WAIT * attempt).await;
                }
                Err(err) => break Err($crate::error::Error::from(err).context($what)),
            }
        }
    }};
}

/// Obtains certificates from an ACME CA.
pub struct AcmeIssuer {
    config: Config,
    issuer_key: String,
    http: AcmeHttp,
    account: Mutex<Option<Account>>,
    rate_limiter: Arc<RateLimiter>,
    /// The directory's `renewalInfo` URL (`None`: the CA offers no ARI), read once.
    renewal_info_url: tokio::sync::OnceCell<Option<String>>,
}

impl std::fmt::Debug for AcmeIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeIssuer")
            .field("ca", &self.config.ca)
            .field("issuer_key", &self.issuer_key)
            .finish_non_exhaustive()
    }
}

impl AcmeIssuer {
    /// An issuer for the CA, account and challenge settings of `config`.
    pub fn new(config: &Config) -> Result<Self> {
        let issuer_key = keys::issuer_key(&config.ca);
        let limiter_key = format!("{}|{}", config.ca, config.email);
        Ok(Self {
            http: AcmeHttp::new(&config.trusted_roots)?,
            rate_limiter: RateLimiter::shared(&limiter_key, &config.order_rate),
            config: config.clone(),
            issuer_key,
            account: Mutex::new(None),
            renewal_info_url: tokio::sync::OnceCell::new(),
        })
    }

    /// The account for (CA, email): from storage, else registered now (under a storage lock, so
    /// instances sharing the storage register once).
    pub async fn account(&self) -> Result<Account> {
        let mut cached = self.account.lock().await;
        if let Some(a) = cached.as_ref() {
            return Ok(a.clone());
        }
        let at = AccountKeys::new(&self.issuer_key, &self.config.email);
        let account = match self.load_account(&at).await? {
            Some(a) => a,
            None => {
                // Released even when this future is dropped (an on-demand obtain timing out
                // while the CA is slow): a lock left held would stop every instance on the
                // storage from registering.
                let lock = LockGuard::acquire(
                    self.config.storage.clone(),
                    keys::lock_register_account(&self.config.email),
                    &crate::runtime::handle()?,
                )
                .await?;
                let res = match self.load_account(&at).await {
                    Ok(Some(a)) => Ok(a),
                    Ok(None) => self.register_account(&at).await,
                    Err(e) => Err(e),
                };
                lock.release().await;
                res?
            }
        };
        *cached = Some(account.clone());
        Ok(account)
    }

    async fn load_account(&self, at: &AccountKeys) -> Result<Option<Account>> {
        let Some((reg, key)) = account::load(self.config.storage.as_ref(), at).await? else {
            return Ok(None);
        };
        let account = acme_retry!(
            "loading ACME account",
            Account::builder_with_http(self.http.boxed())
                .from_parts(
                    reg.location.clone(),
                    key.clone_key(),
                    self.config.ca.clone()
                )
                .await
        )?;
        tracing::debug!(
            account = account::short_id(&reg.location),
            "using stored ACME account"
        );
        Ok(Some(account))
    }

    async fn register_account(&self, at: &AccountKeys) -> Result<Account> {
        let contact =
            (!self.config.email.is_empty()).then(|| format!("mailto:{}", self.config.email));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let fetched = match (&self.config.eab, &self.config.eab_from) {
            (None, Some(source)) => Some(source.fetch(&self.http).await?),
            _ => None,
        };
        let eab = match self.config.eab.as_ref().or(fetched.as_ref()) {
            Some(e) => Some(instant_acme::ExternalAccountKey::new(
                e.key_id.clone(),
                &e.decoded_key()?,
            )),
            None => None,
        };
        let new_account = NewAccount {
            contact: &contacts,
            terms_of_service_agreed: self.config.agreed,
            only_return_existing: false,
        };
        let (account, credentials) = acme_retry!(
            "registering ACME account",
            Account::builder_with_http(self.http.boxed())
                .create(&new_account, self.config.ca.clone(), eab.as_ref())
                .await
        )?;
        let reg = AccountRegistration {
            status: "valid".into(),
            contact: contact.into_iter().collect(),
            terms_of_service_agreed: self.config.agreed,
            external_account_binding: None,
            orders: String::new(),
            location: account.id().to_string(),
        };
        let key_pem = account::key_pem_from_credentials(&credentials)?;
        account::save(self.config.storage.as_ref(), at, &reg, &key_pem).await?;
        tracing::info!(
            account = account::short_id(account.id()),
            "registered ACME account"
        );
        Ok(account)
    }

    /// Forgets an account the CA says does not exist, so the next use registers anew.
    async fn forget_account(&self) -> Result<()> {
        *self.account.lock().await = None;
        account::delete(
            self.config.storage.as_ref(),
            &AccountKeys::new(&self.issuer_key, &self.config.email),
        )
        .await
    }

    async fn issue_with(
        &self,
        account: &Account,
        subject: &Subject,
        csr_der: &[u8],
        replaces: Option<&str>,
    ) -> Result<IssuedCertificate> {
        let mut replaces = replaces;
        let name = subject.as_string();
        let mut types = solvers::challenge_order(&self.config);
        let mut failures: Vec<String> = Vec::new();
        let mut last_problem = None;
        let identifiers = [subject.acme_identifier()];
        let mut order = loop {
            self.rate_limiter.acquire().await;
            let mut new_order = NewOrder::new(&identifiers);
            if let Some(p) = &self.config.profile {
                new_order = new_order.profile(p);
            }
            if let Some(id) = replaces.and_then(acme_certificate_id) {
                new_order = new_order.replaces(id);
            }
            let created = acme_retry!("creating order", account.new_order(&new_order).await);
            let mut order = match created {
                // The CA will not take `replaces` for it (replaced already, or by another
                // account): order without it, as acmez does.
                Err(e) if replaces.is_some() && refuses_replaces(&e) => {
                    tracing::warn!(error = %e, "the CA refused `replaces`; ordering without it");
                    replaces = None;
                    continue;
                }
                other => other?,
            };
            match self.authorize(account, &mut order, &name, &types).await {
                Ok(()) => break order,
                Err(failure) => {
                    let Some(kind) = failure.challenge else {
                        return Err(failure.error);
                    };
                    solvers::record_outcome(kind, false);
                    tracing::warn!(challenge = %kind, error = %failure.error, "challenge failed");
                    failures.push(format!("{kind}: {}", failure.error));
                    last_problem = failure.error.problem().cloned().or(last_problem);
                    types.retain(|t| *t != kind);
                    if types.is_empty() || !failure.error.is_retryable() {
                        // The last failure stays the source, so a callback's own error
                        // (a DNS provider's, say) reaches the caller as the cause.
                        return Err(Error::new(
                            ErrorKind::Challenge,
                            format!(
                                "no challenge succeeded for `{name}`: {}",
                                failures.join("; ")
                            ),
                        )
                        .with_problem(last_problem)
                        .with_source(failure.error));
                    }
                    tracing::info!(next = %types[0], "trying the next challenge type on a new order");
                }
            }
        };

        let policy = self.poll_policy();
        if let Err(e) = acme_retry!("finalizing order", order.finalize_csr(csr_der).await) {
            // The CA may have processed a finalize whose answer was lost on the way.
            let status = acme_retry!("checking order", order.refresh().await.map(|s| s.status));
            if !matches!(status, Ok(OrderStatus::Processing | OrderStatus::Valid)) {
                return Err(e);
            }
        }
        // At once first: a CA that issues during finalize (Let's Encrypt) answers `valid`, and
        // one that is processing is asked once more before the polls' first wait.
        let default_chain = match acme_retry!("downloading certificate", order.certificate().await)?
        {
            Some(chain) => chain,
            None => acme_retry!(
                "downloading certificate",
                order.poll_certificate(&policy).await
            )?,
        };
        let cert_url = order.state().certificate.clone().unwrap_or_default();
        let chain_pem = match &self.config.preferred_chain {
            Some(pref) => {
                self.preferred_chain(account, &cert_url, default_chain, pref)
                    .await
            }
            None => default_chain,
        };
        let mut metadata = AcmeIssuerData {
            url: cert_url,
            ca: self.config.ca.clone(),
            account: account.id().to_string(),
            extra: Default::default(),
        };
        // As acmez: the window of the new certificate, fetched at once, goes in its metadata.
        if let Some(leaf) = crypto::parse_pem_chain(chain_pem.as_bytes())
            .ok()
            .and_then(|c| c.into_iter().next())
        {
            // One try: a certificate without a window is asked about again by maintenance, and a
            // handshake waiting for an on-demand certificate should not wait on retries.
            match self.fetch_renewal_info(&leaf, None, 1).await {
                Ok(Some(info)) => {
                    metadata.extra.insert("renewal_info".into(), info.to_json());
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "fetching the new certificate's renewal window")
                }
            }
        }
        Ok(IssuedCertificate {
            chain_pem,
            metadata: serde_json::to_value(metadata)?,
        })
    }

    /// Presents the challenge of every pending authorization (one per order here), tells the CA
    /// to validate, and waits for the order to become ready.
    async fn authorize(
        &self,
        account: &Account,
        order: &mut Order,
        name: &str,
        types: &[ChallengeType],
    ) -> Result<(), Failure> {
        let mut presented: Vec<Presented> = Vec::new();
        let mut used: Option<ChallengeType> = None;
        let result = self
            .present_and_validate(account, order, name, types, &mut presented, &mut used)
            .await;
        for p in presented {
            p.clean_up().await;
        }
        if result.is_ok()
            && let Some(kind) = used
        {
            solvers::record_outcome(kind, true);
        }
        result
    }

    async fn present_and_validate(
        &self,
        account: &Account,
        order: &mut Order,
        name: &str,
        types: &[ChallengeType],
        presented: &mut Vec<Presented>,
        used: &mut Option<ChallengeType>,
    ) -> Result<(), Failure> {
        // Fetched (with retries) before walking them: a failed fetch inside the walk would skip
        // an authorization.
        acme_retry!("fetching authorizations", fetch_authorizations(order).await)
            .map_err(Failure::other)?;
        {
            let mut authzs = order.authorizations();
            while let Some(authz) = authzs.next().await {
                let mut authz = authz.map_err(|e| {
                    Failure::other(Error::from(e).context("fetching authorization"))
                })?;
                match authz.status {
                    AuthorizationStatus::Valid => continue,
                    AuthorizationStatus::Pending => {}
                    other => {
                        return Err(Failure::other(Error::new(
                            ErrorKind::Challenge,
                            format!("authorization for `{name}` is {other:?}"),
                        )));
                    }
                }
                let Some(kind) = types
                    .iter()
                    .copied()
                    .find(|t| authz.challenges.iter().any(|c| c.r#type == t.acme()))
                else {
                    let offered: Vec<String> = authz
                        .challenges
                        .iter()
                        .map(|c| format!("{:?}", c.r#type))
                        .collect();
                    return Err(Failure::other(Error::new(
                        ErrorKind::Challenge,
                        format!(
                            "the CA offers no enabled challenge for `{name}` (offered: {})",
                            offered.join(", ")
                        ),
                    )));
                };
                *used = Some(kind);
                let (url, token) = authz
                    .challenges
                    .iter()
                    .find(|c| c.r#type == kind.acme())
                    .map(|c| (c.url.clone(), c.token.clone()))
                    .unwrap_or_default();
                let identifier = authz.identifier().identifier.clone();
                let identifier = match identifier {
                    instant_acme::Identifier::Dns(d) => d,
                    instant_acme::Identifier::Ip(ip) => ip.to_string(),
                    other => {
                        return Err(Failure::other(Error::internal(format!(
                            "unexpected identifier {other:?}"
                        ))));
                    }
                };
                let key_authorization = format!("{token}.{}", account.key_thumbprint());
                let info = ChallengeInfo::new(kind, &url, &token, key_authorization, &identifier);
                presented.push(
                    solvers::present(&self.config, &self.issuer_key, info)
                        .await
                        .map_err(|e| Failure::on(kind, e))?,
                );
                if let Some(p) = presented.last() {
                    p.wait_ready(&self.config)
                        .await
                        .map_err(|e| Failure::on(kind, e))?;
                }
                let mut challenge = authz.challenge(kind.acme()).ok_or_else(|| {
                    Failure::other(Error::internal("challenge vanished from authorization"))
                })?;
                acme_retry!("answering challenge", challenge.set_ready().await)
                    .map_err(|e| Failure::on(kind, e))?;
                tracing::debug!(challenge = %kind, "challenge presented; CA asked to validate");
            }
        }
        let kind = used.unwrap_or(ChallengeType::Http01);
        let policy = self.poll_policy();
        match acme_retry!("waiting for validation", order.poll_ready(&policy).await) {
            Ok(OrderStatus::Ready) => return Ok(()),
            // Invalid, or an order-level problem: the failed challenge says why, below.
            Ok(_) => {}
            Err(e) if e.problem().is_some() => {}
            Err(e) => return Err(Failure::on(kind, e)),
        }
        // Find out why: the failed challenge carries the CA's problem document.
        let mut problem = None;
        let mut authzs = order.authorizations();
        while let Some(Ok(mut authz)) = authzs.next().await {
            if let Ok(state) = authz.refresh().await {
                problem = state
                    .challenges
                    .iter()
                    .find_map(|c| c.error.as_ref())
                    .map(AcmeProblem::from)
                    .or(problem);
            }
        }
        let problem = problem.unwrap_or_else(|| AcmeProblem {
            problem_type: None,
            detail: Some("the order became invalid".into()),
            status: None,
            subproblems: Vec::new(),
            identifier: None,
        });
        Err(Failure::on(
            kind,
            Error::acme_problem(format!("{kind} validation of `{name}` failed"), problem)
                .with_kind(ErrorKind::Challenge),
        ))
    }

    /// Orders with the account, registering a new one when the CA no longer knows it.
    async fn issue_as_account(
        &self,
        subject: &Subject,
        csr_der: &[u8],
        replaces: Option<&str>,
    ) -> Result<IssuedCertificate> {
        let account = self.account().await?;
        match self.issue_with(&account, subject, csr_der, replaces).await {
            Err(e) if e.problem().is_some_and(|p| p.is("accountDoesNotExist")) => {
                tracing::warn!("the CA does not know the stored account; registering a new one");
                self.forget_account().await?;
                let account = self.account().await?;
                self.issue_with(&account, subject, csr_der, replaces).await
            }
            other => other,
        }
    }

    /// The directory's `renewalInfo` URL, read once (a failed read is tried again next time).
    async fn renewal_info_url(&self) -> Option<String> {
        let read = self
            .renewal_info_url
            .get_or_try_init(|| async {
                let (_, body) = self.http.get(&self.config.ca).await?;
                let directory: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| Error::new(ErrorKind::Acme, format!("directory: {e}")))?;
                Ok::<_, Error>(directory["renewalInfo"].as_str().map(str::to_string))
            })
            .await;
        match read {
            Ok(url) => url.clone(),
            Err(e) => {
                tracing::debug!(error = %e, "reading the directory for renewalInfo");
                None
            }
        }
    }

    /// GETs the renewal window of `leaf` (RFC 9773 §4.2): up to `attempts` tries (at most
    /// three), 2 s then 5 s apart, on network or CA-side errors (acmez's schedule). `Ok(None)`
    /// when the CA offers no ARI or the certificate has no Authority Key Identifier.
    async fn fetch_renewal_info(
        &self,
        leaf: &CertificateDer<'_>,
        previous: Option<&RenewalInfo>,
        attempts: usize,
    ) -> Result<Option<RenewalInfo>> {
        let Some(base) = self.renewal_info_url().await else {
            return Ok(None);
        };
        let Some(id) = crate::ari::certificate_id(leaf.as_ref()) else {
            return Ok(None);
        };
        let url = format!("{}/{id}", base.trim_end_matches('/'));
        let mut last = None;
        for wait in [
            None,
            Some(Duration::from_secs(2)),
            Some(Duration::from_secs(5)),
        ]
        .into_iter()
        .take(attempts)
        {
            if let Some(w) = wait {
                tokio::time::sleep(w).await;
            }
            match self.http.get(&url).await {
                Ok((parts, body)) if parts.status.is_success() => {
                    let retry_after = parts
                        .headers
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(crate::ari::parse_retry_after);
                    return RenewalInfo::from_response(&id, &body, retry_after, previous)
                        .map(Some)
                        .map_err(|why| {
                            Error::new(ErrorKind::Acme, format!("renewal info for {id}: {why}"))
                        });
                }
                Ok((parts, _)) if parts.status.is_client_error() => {
                    return Err(Error::new(
                        ErrorKind::Acme,
                        format!("renewal info for {id}: HTTP {}", parts.status),
                    ));
                }
                Ok((parts, _)) => {
                    last = Some(Error::new(
                        ErrorKind::Acme,
                        format!("renewal info for {id}: HTTP {}", parts.status),
                    ))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::internal("renewal info: no attempt")))
    }

    fn poll_policy(&self) -> RetryPolicy {
        RetryPolicy::new()
            .initial_delay(POLL_INITIAL_DELAY)
            .backoff(POLL_BACKOFF)
            .timeout(self.config.order_timeout)
    }

    /// The chain to keep among the default and the CA's alternates, as `preference` says.
    async fn preferred_chain(
        &self,
        account: &Account,
        cert_url: &str,
        default: String,
        preference: &ChainPreference,
    ) -> String {
        let mut chains = vec![default];
        for url in self.http.take_alternates(cert_url) {
            match self.fetch_alternate(account, &url).await {
                Ok(pem) => chains.push(pem),
                Err(e) => tracing::warn!(url, error = %e, "fetching alternate chain"),
            }
        }
        let index = choose_chain(&chains, preference);
        chains.swap_remove(index)
    }

    /// POST-as-GET of an alternate chain URL. instant-acme has no call for it, so the request is
    /// made through `Account::order` (a signed POST-as-GET) and the body is taken from our HTTP
    /// layer; the order parse that follows fails and is ignored.
    async fn fetch_alternate(&self, account: &Account, url: &str) -> Result<String> {
        self.http.capture(url);
        let _ = account.order(url.to_string()).await;
        match self.http.take_captured(url) {
            Some((status, body)) if status.is_success() => String::from_utf8(body.to_vec())
                .map_err(|_| Error::new(ErrorKind::Acme, "alternate chain is not UTF-8 PEM")),
            Some((status, _)) => Err(Error::new(
                ErrorKind::Acme,
                format!("alternate chain: HTTP {status}"),
            )),
            None => Err(Error::new(ErrorKind::Acme, "alternate chain: no response")),
        }
    }
}

/// Fetches the state of every authorization of `order` (kept in the order afterwards).
async fn fetch_authorizations(order: &mut Order) -> Result<(), instant_acme::Error> {
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        authz?;
    }
    Ok(())
}

/// Index of the chain `preference` picks: smallest first if asked, then the first chain with any
/// issuer CN in `any_common_names` (in preference order), then the first whose top issuer CN is in
/// `root_common_names`, else the default (index 0).
pub(crate) fn choose_chain(chains: &[String], preference: &ChainPreference) -> usize {
    let mut order: Vec<usize> = (0..chains.len()).collect();
    if preference.smallest {
        order.sort_by_key(|i| chains[*i].len());
    }
    let issuers: Vec<Vec<String>> = chains
        .iter()
        .map(|pem| {
            crypto::parse_pem_chain(pem.as_bytes())
                .map(|c| issuer_common_names(&c))
                .unwrap_or_default()
        })
        .collect();
    for want in &preference.any_common_names {
        if let Some(i) = order
            .iter()
            .find(|i| issuers[**i].iter().any(|cn| cn == want))
        {
            return *i;
        }
    }
    for want in &preference.root_common_names {
        if let Some(i) = order.iter().find(|i| issuers[**i].last() == Some(want)) {
            return *i;
        }
    }
    order.first().copied().unwrap_or(0)
}

/// A failed authorization, with the challenge type it concerns (None: not the challenge's fault).
struct Failure {
    challenge: Option<ChallengeType>,
    error: Error,
}

impl Failure {
    fn on(kind: ChallengeType, error: Error) -> Self {
        Self {
            challenge: Some(kind),
            error,
        }
    }
    fn other(error: Error) -> Self {
        Self {
            challenge: None,
            error,
        }
    }
}

#[async_trait]
impl Issuer for AcmeIssuer {
    fn issuer_key(&self) -> &str {
        &self.issuer_key
    }

    async fn prepare(&self) -> Result<()> {
        self.account().await.map(drop)
    }

    async fn issue(&self, subject: &Subject, csr_der: &[u8]) -> Result<IssuedCertificate> {
        let span =
            tracing::info_span!("acme_order", identifier = %subject, issuer = %self.issuer_key);
        async { self.issue_as_account(subject, csr_der, None).await }
            .instrument(span)
            .await
    }

    async fn issue_replacing(
        &self,
        subject: &Subject,
        csr_der: &[u8],
        replacing: &Certificate,
    ) -> Result<IssuedCertificate> {
        let span = tracing::info_span!("acme_order", identifier = %subject, issuer = %self.issuer_key, renewal = true);
        async {
            // `replaces` only for a certificate of this CA, and only where it speaks ARI.
            let replaces = match replacing.issuer_ca() == Some(self.config.ca.as_str()) {
                true if self.renewal_info_url().await.is_some() => {
                    crate::ari::certificate_id(replacing.chain_der()[0].as_ref())
                }
                _ => None,
            };
            self.issue_as_account(subject, csr_der, replaces.as_deref())
                .await
        }
        .instrument(span)
        .await
    }

    async fn offers_renewal_info(&self) -> bool {
        self.renewal_info_url().await.is_some()
    }

    async fn renewal_info(
        &self,
        cert: &Certificate,
        previous: Option<&RenewalInfo>,
    ) -> Result<Option<RenewalInfo>> {
        if cert.issuer_ca() != Some(self.config.ca.as_str()) {
            return Ok(None);
        }
        self.fetch_renewal_info(&cert.chain_der()[0], previous, 3)
            .await
    }

    async fn revoke(&self, leaf: &CertificateDer<'static>, reason: RevocationReason) -> Result<()> {
        let account = self.account().await?;
        let acme_reason = match reason {
            RevocationReason::Unspecified => instant_acme::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => instant_acme::RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged => {
                instant_acme::RevocationReason::AffiliationChanged
            }
            RevocationReason::Superseded => instant_acme::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => {
                instant_acme::RevocationReason::CessationOfOperation
            }
        };
        let request = instant_acme::RevocationRequest {
            certificate: leaf,
            reason: Some(acme_reason.clone()),
        };
        acme_retry!("revoking certificate", account.revoke(&request).await)
    }
}

/// An ARI identifier (`aki.serial`) as instant-acme takes it.
fn acme_certificate_id(id: &str) -> Option<CertificateIdentifier<'static>> {
    let (aki, serial) = id.split_once('.')?;
    Some(CertificateIdentifier {
        authority_key_identifier: aki.to_string().into(),
        serial: serial.to_string().into(),
    })
}

/// Whether creating an order failed because of its `replaces` field: the CA says the
/// certificate was replaced already (`alreadyReplaced`), or that this account may not replace
/// it (`unauthorized`), or it did not echo the field (a CA that ignores it).
fn refuses_replaces(e: &Error) -> bool {
    e.problem()
        .is_some_and(|p| p.is("alreadyReplaced") || p.is("unauthorized"))
        || e.message().contains("replaces field mismatch")
}

/// How many times in all a step that failed with `e` is tried: badNonce up to 10 (as acmez),
/// CA-side 5xx and network trouble 3, anything else once.
pub(crate) fn transient_attempts(e: &instant_acme::Error) -> u32 {
    match e {
        instant_acme::Error::Api(p)
            if p.r#type
                .as_deref()
                .is_some_and(|t| t.ends_with(":badNonce")) =>
        {
            BAD_NONCE_ATTEMPTS
        }
        instant_acme::Error::Api(p) => {
            let server_side = p
                .r#type
                .as_deref()
                .is_some_and(|t| t.ends_with(":serverInternal"))
                || p.status.is_some_and(|s| s >= 500);
            if server_side { TRANSIENT_ATTEMPTS } else { 1 }
        }
        instant_acme::Error::Hyper(_)
        | instant_acme::Error::Other(_)
        | instant_acme::Error::Json(_) => TRANSIENT_ATTEMPTS,
        _ => 1,
    }
}

/// Attempts of a step rejected for a bad nonce (acmez: 10).
const BAD_NONCE_ATTEMPTS: u32 = 10;
/// Attempts of a step that met a network error or a CA-side error (acmez: 3).
const TRANSIENT_ATTEMPTS: u32 = 3;
/// Wait before the n-th repeat of a step: n × this.
pub(crate) const TRANSIENT_RETRY_WAIT: Duration = Duration::from_millis(250);
/// First wait when polling an order; each next wait is [`POLL_BACKOFF`] times longer (polls
/// 2, 6, 14, 30, 62, 126, 254, 510 ms… after the start: about as many requests in a CA's usual
/// 1–2 s of validation as Go's fixed 250 ms, yet a CA that is done at once, a local one, is
/// seen within milliseconds; an on-demand handshake waits for two such polls). A Retry-After
/// from the CA takes precedence.
const POLL_INITIAL_DELAY: Duration = Duration::from_millis(2);
const POLL_BACKOFF: f32 = 2.0;
