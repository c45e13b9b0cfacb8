//! # certmagic
//!
//! Automatic HTTPS as a library: obtain certificates from any ACME CA (Let's Encrypt, ZeroSSL, a
//! private CA), keep them renewed, and serve them to TLS handshakes, sharing storage with other
//! instances and with Caddy (Go CertMagic's layout, byte for byte).
//!
//! ```no_run
//! # async fn run() -> certmagic::Result<()> {
//! use certmagic::{Config, Manager};
//! let config = Config::builder().email("admin@example.com").agreed(true).build()?;
//! let manager = Manager::new(config)?;
//! manager.manage(&["example.com"]).await?;
//! let tls = manager.server_config()?; // a rustls ServerConfig serving the certificates
//! # Ok(()) }
//! ```
//!
//! Or the one-liner, [`serve`]/[`https`]: a hyper service over HTTPS with redirects.
//!
//! Logic lives here only; the C, Python and Node packages translate this API.

#![warn(missing_docs)]

mod account;
mod acme_http;
mod acme_issuer;
mod ari;
mod cache;
mod callbacks;
mod certificate;
mod config;
mod crypto;
pub mod dns;
mod error;
mod events;
mod fields;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod handshake_path;
mod http_handlers;
mod issuer;
mod issuer_spec;
mod jobs;
mod local_issuer;
pub mod log;
mod maintain;
mod manager;
mod net;
pub mod numbers;
mod obtain;
mod ocsp;
mod on_demand;
mod private_key;
mod rate_limiter;
mod renewal_info;
mod retry;
// The internal runtime's entry points, for the language bindings (C, Python, Node): not part of
// the documented API.
#[doc(hidden)]
pub mod runtime;
mod serve;
pub mod solvers;
mod stapling;
pub mod storage;
mod subject;
mod zerossl;
pub use zerossl::ZEROSSL_API;

pub use account::AccountRegistration;
pub use acme_issuer::AcmeIssuer;
pub use ari::{RenewalInfo, certificate_id};
/// Re-exported so storage implementations need no direct dependency.
pub use async_trait::async_trait;
pub use cache::Cache;
pub use callbacks::CallbackDeadlines;
pub use certificate::{AcmeIssuerData, Certificate, CertificateResource};
pub use config::{
    ChainPreference, ChallengeType, Config, ConfigBuilder, DEFAULT_OCSP_CHECK_INTERVAL,
    DEFAULT_ORDER_TIMEOUT, DEFAULT_RENEW_CHECK_INTERVAL, DEFAULT_RENEWAL_WINDOW_RATIO,
    ExternalAccountBinding, GOOGLE_TRUST_SERVICES, GOOGLE_TRUST_SERVICES_STAGING,
    LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, RateLimit, ZEROSSL,
};
pub use crypto::{KeyType, decode_private_key_pem, encode_chain_pem, parse_pem_chain};
pub use dns::{DnsChallenge, DnsOptions, DnsProvider, DnsRecord};
pub use error::{AcmeProblem, Error, ErrorKind, Result};
pub use events::{Event, EventHandler, HandlerError};
pub use fields::ConfigField;
pub use handshake::{CertResolver, ClientHelloPeek, peek_client_hello, server_config};
pub use http_handlers::https_redirect_location;
pub use issuer::{IssuedCertificate, Issuer, RevocationReason};
pub use issuer_spec::{
    AcmeIssuerSpec, IssuerPolicy, IssuerSpec, LOCAL_MAX_LIFETIME, LOCAL_MIN_LIFETIME,
    LocalIssuerSpec, ZeroSslIssuerSpec,
};
pub use local_issuer::{LOCAL_ISSUER_KEY, LocalIssuer};
pub use manager::Manager;
pub use numbers::{Number, Span};
pub use ocsp::{OcspResponse, OcspStatus};
pub use on_demand::{DEFAULT_ON_DEMAND_TIMEOUT, DecisionHandler, OnDemand};
pub use rate_limiter::OrderRatePolicy;
pub use retry::{MAX_RETRY_DURATION, RetrySchedule};
pub use serve::{ServeOptions, https, serve};
pub use storage::file::FileStorage;
pub use storage::memory::MemoryStorage;
pub use storage::{KeyInfo, Storage};
pub use subject::{Subject, canonical_server_name};
