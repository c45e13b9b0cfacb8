//! Challenge solvers: a challenge in flight is kept in a process-wide registry (so any server in
//! this process can answer it), written to storage (so any instance sharing the storage can
//! answer it, see [`distributed`]), and served by a standalone listener on the challenge port
//! unless that port is already taken (then the taker, e.g. [`serve`](crate::serve) or your own
//! server calling [`Manager::handle_http_challenge`](crate::Manager::handle_http_challenge), answers).

pub mod distributed;
pub mod http01;
pub mod tls_alpn01;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tokio::task::AbortHandle;

use crate::certificate::Certificate;
use crate::config::{ChallengeType, Config};
use crate::dns::{self, solver::DnsPresented};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{Storage, keys};

/// A challenge in flight, in the JSON shape of acmez's `acme.Challenge` (what Go CertMagic writes
/// to `acme/<issuer>/challenge_tokens/<identifier>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeInfo {
    /// `http-01` or `tls-alpn-01`.
    #[serde(rename = "type")]
    pub challenge_type: String,
    /// The challenge URL at the CA.
    #[serde(default)]
    pub url: String,
    /// Status when presented (`pending`).
    #[serde(default)]
    pub status: String,
    /// The challenge token.
    pub token: String,
    /// `token.thumbprint`: what HTTP-01 serves and TLS-ALPN-01 hashes.
    #[serde(rename = "keyAuthorization")]
    pub key_authorization: String,
    /// The identifier being validated.
    pub identifier: ChallengeIdentifier,
}

/// `{"type": "dns"|"ip", "value": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeIdentifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub id_type: String,
    /// The name or address.
    pub value: String,
}

impl ChallengeInfo {
    pub(crate) fn new(
        kind: ChallengeType,
        url: &str,
        token: &str,
        key_authorization: String,
        identifier: &str,
    ) -> Self {
        let id_type = if identifier.parse::<std::net::IpAddr>().is_ok() {
            "ip"
        } else {
            "dns"
        };
        Self {
            challenge_type: kind.as_str().to_string(),
            url: url.to_string(),
            status: "pending".into(),
            token: token.to_string(),
            key_authorization,
            identifier: ChallengeIdentifier {
                id_type: id_type.into(),
                value: identifier.to_string(),
            },
        }
    }

    /// The key this challenge is found under: the identifier, or for TLS-ALPN-01 on an IP
    /// address the reverse-DNS name the CA sends as SNI.
    pub fn challenge_key(&self) -> String {
        keys::challenge_key(&self.identifier.value, self.is(ChallengeType::TlsAlpn01))
    }

    /// Whether this is a challenge of `kind`.
    pub fn is(&self, kind: ChallengeType) -> bool {
        self.challenge_type == kind.as_str()
    }
}

/// A challenge presented by this process.
#[derive(Debug)]
pub(crate) struct Active {
    pub info: ChallengeInfo,
    tls_alpn_cert: OnceLock<Arc<Certificate>>,
}

impl Active {
    /// The TLS-ALPN-01 certificate, built once.
    pub fn tls_alpn_cert(&self) -> Result<Arc<Certificate>> {
        if let Some(c) = self.tls_alpn_cert.get() {
            return Ok(c.clone());
        }
        let cert = tls_alpn01::challenge_certificate(
            &self.info.identifier.value,
            &self.info.key_authorization,
        )?;
        Ok(self.tls_alpn_cert.get_or_init(|| cert).clone())
    }
}

type Registry = RwLock<HashMap<String, Vec<Arc<Active>>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The challenges of `kind` this process presented for `key` (newest last).
pub(crate) fn active(key: &str, kind: ChallengeType) -> Vec<Arc<Active>> {
    let reg = registry().read().unwrap_or_else(|p| p.into_inner());
    reg.get(key)
        .map(|v| v.iter().filter(|a| a.info.is(kind)).cloned().collect())
        .unwrap_or_default()
}

/// A presented challenge; [`Presented::clean_up`] withdraws it everywhere. Dropped without
/// it (the order was cancelled), it still leaves the registry, and its storage entry and DNS
/// record are removed in the background.
#[derive(Debug)]
pub(crate) struct Presented {
    key: String,
    active: Arc<Active>,
    stored: Option<(Arc<dyn Storage>, String)>,
    dns: Option<DnsPresented>,
    _listener: Option<ListenerGuard>,
}

impl Presented {
    /// Waits until the CA can see the challenge (DNS propagation; others are ready at once).
    pub async fn wait_ready(&self, config: &Config) -> Result<()> {
        match (&self.dns, &config.dns) {
            (Some(presented), Some(dns)) => presented.wait(dns).await,
            _ => Ok(()),
        }
    }

    pub async fn clean_up(mut self) {
        if let Some((storage, key)) = self.stored.take() {
            delete_stored(storage, key).await;
        }
        if let Some(dns) = self.dns.take() {
            dns.clean_up().await;
        }
    }
}

impl Drop for Presented {
    fn drop(&mut self) {
        {
            let mut reg = registry().write().unwrap_or_else(|p| p.into_inner());
            if let Some(list) = reg.get_mut(&self.key) {
                list.retain(|a| !Arc::ptr_eq(a, &self.active));
                if list.is_empty() {
                    reg.remove(&self.key);
                }
            }
        }
        if let Some((storage, key)) = self.stored.take()
            && let Ok(h) = tokio::runtime::Handle::try_current()
        {
            h.spawn(delete_stored(storage, key));
        }
    }
}

async fn delete_stored(storage: Arc<dyn Storage>, key: String) {
    if let Err(e) = storage.delete(&key).await {
        tracing::warn!(key, error = %e, "deleting challenge from storage");
    }
}

/// Makes a challenge answerable: registry, storage (unless distributed solving is off), and a
/// standalone listener on the challenge port.
pub(crate) async fn present(
    config: &Config,
    issuer_key: &str,
    info: ChallengeInfo,
) -> Result<Presented> {
    let kind = [
        ChallengeType::Http01,
        ChallengeType::TlsAlpn01,
        ChallengeType::Dns01,
    ]
    .into_iter()
    .find(|k| info.is(*k))
    .ok_or_else(|| Error::internal(format!("unknown challenge `{}`", info.challenge_type)))?;
    if kind == ChallengeType::Dns01 {
        let dns = config.dns.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Challenge,
                "DNS-01 needs a DNS provider (dns_challenge)",
            )
        })?;
        let record =
            dns::solver::present(dns, &info.identifier.value, &info.key_authorization).await?;
        return Ok(Presented {
            key: String::new(),
            active: Arc::new(Active {
                info,
                tls_alpn_cert: OnceLock::new(),
            }),
            stored: None,
            dns: Some(record),
            _listener: None,
        });
    }
    let key = info.challenge_key();
    let active = Arc::new(Active {
        info,
        tls_alpn_cert: OnceLock::new(),
    });
    if kind == ChallengeType::TlsAlpn01 {
        // Build the certificate now, not while the CA's validation connection waits.
        active.tls_alpn_cert()?;
    }
    registry()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.clone())
        .or_default()
        .push(active.clone());
    let mut presented = Presented {
        key,
        active: active.clone(),
        stored: None,
        dns: None,
        _listener: None,
    };

    if !config.disable_distributed_solvers {
        let storage_key = keys::challenge_token(issuer_key, &presented.key);
        match distributed::store(config.storage.as_ref(), &storage_key, &active.info).await {
            Ok(()) => presented.stored = Some((config.storage.clone(), storage_key)),
            Err(e) => {
                presented.clean_up().await;
                return Err(e);
            }
        }
    }

    let port = match kind {
        ChallengeType::Http01 => config.http_challenge_port(),
        ChallengeType::TlsAlpn01 => config.tls_alpn_challenge_port(),
        ChallengeType::Dns01 => return Ok(presented),
    };
    match ensure_listener(kind, &config.listen_host, port).await {
        Ok(guard) => presented._listener = guard,
        Err(e) => {
            presented.clean_up().await;
            return Err(e);
        }
    }
    Ok(presented)
}

/// Standalone listeners, shared by every challenge of the same type and port in this process.
#[derive(Debug)]
pub(crate) struct ListenerGuard {
    key: (ChallengeType, SocketAddr),
}

struct Listener {
    users: usize,
    task: AbortHandle,
}

fn listeners() -> &'static Mutex<HashMap<(ChallengeType, SocketAddr), Listener>> {
    static LISTENERS: OnceLock<Mutex<HashMap<(ChallengeType, SocketAddr), Listener>>> =
        OnceLock::new();
    LISTENERS.get_or_init(Default::default)
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        let mut all = listeners().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = all.get_mut(&self.key) {
            l.users -= 1;
            if l.users == 0 {
                l.task.abort();
                all.remove(&self.key);
            }
        }
    }
}

async fn ensure_listener(
    kind: ChallengeType,
    host: &str,
    port: u16,
) -> Result<Option<ListenerGuard>> {
    let addrs = listen_addrs(host, port).await?;
    for addr in &addrs {
        let key = (kind, *addr);
        let mut all = listeners().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = all.get_mut(&key) {
            l.users += 1;
            return Ok(Some(ListenerGuard { key }));
        }
        match bind(*addr) {
            Ok(listener) => {
                let task = match kind {
                    ChallengeType::Http01 => tokio::spawn(http01::serve_standalone(listener)),
                    ChallengeType::TlsAlpn01 => {
                        tokio::spawn(tls_alpn01::serve_standalone(listener))
                    }
                    ChallengeType::Dns01 => return Ok(None),
                };
                tracing::debug!(challenge = %kind, %addr, "standalone challenge listener started");
                all.insert(
                    key,
                    Listener {
                        users: 1,
                        task: task.abort_handle(),
                    },
                );
                return Ok(Some(ListenerGuard { key }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::debug!(challenge = %kind, %addr, "port in use; assuming the server there answers challenges");
                return Ok(None);
            }
            Err(e) if addrs.len() > 1 && e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                continue;
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Challenge,
                    format!("cannot listen on {addr} to answer {kind}: {e}"),
                )
                .with_source(e));
            }
        }
    }
    Err(Error::new(
        ErrorKind::Challenge,
        format!("no address to listen on for {kind}"),
    ))
}

/// Where a solver listens: `listen_host` (resolved), or every interface (IPv6 dual-stack first).
async fn listen_addrs(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    if host.is_empty() {
        return Ok(vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ]);
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: Vec<SocketAddr> = crate::net::lookup_host(bare, port).await.map_err(|e| {
        Error::new(
            ErrorKind::Challenge,
            format!("resolving listen_host `{host}`: {e}"),
        )
    })?;
    if found.is_empty() {
        return Err(Error::new(
            ErrorKind::Challenge,
            format!("listen_host `{host}` has no address"),
        ));
    }
    Ok(found)
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// Attempts and successes per challenge type in this process, to try what works first.
static STATS: [(AtomicU64, AtomicU64); 3] = [
    (AtomicU64::new(0), AtomicU64::new(0)),
    (AtomicU64::new(0), AtomicU64::new(0)),
    (AtomicU64::new(0), AtomicU64::new(0)),
];

fn stats(kind: ChallengeType) -> &'static (AtomicU64, AtomicU64) {
    match kind {
        ChallengeType::Http01 => &STATS[0],
        ChallengeType::TlsAlpn01 => &STATS[1],
        ChallengeType::Dns01 => &STATS[2],
    }
}

/// Records how a challenge of `kind` went.
pub(crate) fn record_outcome(kind: ChallengeType, success: bool) {
    let (attempts, successes) = stats(kind);
    attempts.fetch_add(1, Ordering::Relaxed);
    if success {
        successes.fetch_add(1, Ordering::Relaxed);
    }
}

fn success_ratio(kind: ChallengeType) -> f64 {
    let (attempts, successes) = stats(kind);
    let a = attempts.load(Ordering::Relaxed);
    if a == 0 {
        1.0
    } else {
        successes.load(Ordering::Relaxed) as f64 / a as f64
    }
}

/// The order to try challenge types in: the configured preference, else the enabled types
/// shuffled and then sorted by how well each has worked in this process (as acmez does).
pub(crate) fn challenge_order(config: &Config) -> Vec<ChallengeType> {
    if config.dns.is_some() {
        return vec![ChallengeType::Dns01];
    }
    if !config.challenge_preference.is_empty() {
        return config.challenge_preference.clone();
    }
    let mut types = config.enabled_challenges();
    types.shuffle(&mut rand::rng());
    types.sort_by(|a, b| success_ratio(*b).total_cmp(&success_ratio(*a)));
    types
}
