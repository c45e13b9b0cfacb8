//! DNS-01: the solver ([`DnsChallenge`]), the provider interface shaped like Go's libdns
//! ([`DnsProvider`], [`DnsRecord`]), and built-in providers ([`providers`]), each behind a
//! cargo feature.

mod client;
mod provider;
pub mod providers;
pub(crate) mod solver;
pub(crate) mod wire;

pub use provider::{DnsProvider, DnsRecord, absolute_name, normalize_fqdn, relative_name};
pub use solver::{
    DEFAULT_POLL_INTERVAL, DEFAULT_PROPAGATION_TIMEOUT, DEFAULT_TTL, DnsChallenge, DnsOptions,
    txt_value,
};
pub use wire::TsigAlgorithm;
