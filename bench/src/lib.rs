//! `make bench`: this library against Go CertMagic (Debian's Caddy) on one Pebble. The
//! orchestrator (`certmagic-bench`) starts both servers as processes of their own, drives
//! them from one load generator, and reads their CPU time and memory from `/proc`.

pub mod client;
pub mod harness;
pub mod procfs;
pub mod report;
pub mod servers;
pub mod store_gen;
pub mod workloads;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What `bench-server` serves: written by the orchestrator as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSpec {
    /// ACME directory URL.
    pub ca: String,
    /// PEM of the root that signed the CA's HTTPS API certificate.
    pub ca_api_root_pem: String,
    /// Storage folder (Caddy's layout).
    pub storage: PathBuf,
    /// HTTPS port on 127.0.0.1.
    pub port: u16,
    /// Where the CA validates HTTP-01 and TLS-ALPN-01.
    pub http_port: u16,
    pub tls_port: u16,
    /// `[events, window in ms]`; `None` keeps the library's default order rate policy.
    pub rate_limit: Option<[u64; 2]>,
    /// On-demand TLS behind this "ask" URL.
    pub ask: Option<String>,
    /// Names to manage at start (loaded from storage or obtained).
    pub names: Vec<String>,
    /// At most this many names handed to the manager at once; 0: all in one call.
    pub concurrency: usize,
}
