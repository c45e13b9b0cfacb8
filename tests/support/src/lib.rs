//! Starts a real ACME CA for tests: Debian's `pebble` with `pebble-challtestsrv` as its DNS
//! server (every name resolves to 127.0.0.1), on free loopback ports, with a fresh CA for
//! Pebble's own HTTPS API. Used by the tests of every language (the `pebble-env` binary prints
//! the same facts as JSON for non-Rust tests).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod ari;
pub mod caddy;
pub mod dns;
pub mod haproxy;
pub mod https;
pub mod ocsp;
pub mod postgres;
pub mod redis;
pub mod zerossl;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::ServerName;

/// How to run Pebble.
#[derive(Debug, Clone)]
pub struct PebbleOptions {
    /// Percentage of good nonces Pebble rejects as bad (`PEBBLE_WFE_NONCEREJECT`). Pebble's own
    /// default is 5; tests that count requests turn it to 0.
    pub nonce_reject_percent: u8,
    /// Percentage of orders that reuse a valid authorization (`PEBBLE_AUTHZREUSE`); 0 so every
    /// order is validated for real.
    pub authz_reuse_percent: u8,
    /// Validity of issued certificates in seconds (Pebble's default: 5 years).
    pub validity_secs: Option<u64>,
    /// Alternate chains offered (`PEBBLE_ALTERNATE_ROOTS`).
    pub alternate_roots: u32,
    /// External Account Binding keys (kid → base64url HMAC key); required if non-empty.
    pub eab_keys: Vec<(String, String)>,
    /// Validate every challenge without looking (benchmarks of client cost only).
    pub always_valid: bool,
    /// Resolve names through this DNS server on 127.0.0.1 (e.g. [`dns::Bind`]) instead of
    /// starting pebble-challtestsrv.
    pub dns_server: Option<u16>,
    /// The OCSP responder URL Pebble writes into every certificate's AIA (`ocspResponderURL`);
    /// Pebble itself answers no OCSP (see [`ocsp::OcspResponder`]).
    pub ocsp_responder_url: Option<String>,
    /// The ACME port (default: a free one): a test can name a CA's URL before it starts.
    pub acme_port: Option<u16>,
    /// The ports Pebble validates HTTP-01 and TLS-ALPN-01 on (default: free ones), so that
    /// two Pebbles validate against one client's solvers.
    pub challenge_ports: Option<(u16, u16)>,
}

impl Default for PebbleOptions {
    fn default() -> Self {
        Self {
            nonce_reject_percent: 5,
            authz_reuse_percent: 0,
            validity_secs: None,
            alternate_roots: 0,
            eab_keys: Vec::new(),
            always_valid: false,
            dns_server: None,
            ocsp_responder_url: None,
            acme_port: None,
            challenge_ports: None,
        }
    }
}

/// A running Pebble with its DNS server; both are stopped on drop.
#[derive(Debug)]
pub struct Pebble {
    /// The ACME directory URL.
    pub directory_url: String,
    /// The management API base URL.
    pub management_url: String,
    /// Where Pebble validates HTTP-01 (our HTTP-01 solver must listen here).
    pub http_port: u16,
    /// Where Pebble validates TLS-ALPN-01.
    pub tls_port: u16,
    /// The port of the DNS server Pebble resolves names with.
    pub dns_port: u16,
    /// PEM of the CA that signed Pebble's HTTPS API certificate: trust it for the ACME connection.
    pub api_ca_pem: String,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts Pebble and pebble-challtestsrv and waits until both answer.
    pub fn start(options: PebbleOptions) -> Pebble {
        let dir = tempfile::tempdir().expect("temp dir");
        let [
            acme_port,
            mgmt_port,
            http_port,
            tls_port,
            dns_port,
            dns_mgmt_port,
        ] = free_ports();
        let acme_port = options.acme_port.unwrap_or(acme_port);
        let (http_port, tls_port) = options.challenge_ports.unwrap_or((http_port, tls_port));
        let (ca_pem, cert_pem, key_pem) = api_certificates().clone();
        write(dir.path(), "api-ca.pem", &ca_pem);
        write(dir.path(), "api-cert.pem", &cert_pem);
        write(dir.path(), "api-key.pem", &key_pem);
        let mut pebble = serde_json::json!({
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.path().join("api-cert.pem"),
            "privateKey": dir.path().join("api-key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": options.ocsp_responder_url.clone().unwrap_or_default(),
            "externalAccountBindingRequired": !options.eab_keys.is_empty(),
        });
        if !options.eab_keys.is_empty() {
            pebble["externalAccountMACKeys"] = serde_json::Value::Object(
                options
                    .eab_keys
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect(),
            );
        }
        if let Some(v) = options.validity_secs {
            pebble["certificateValidityPeriod"] = v.into();
        }
        write(
            dir.path(),
            "pebble.json",
            &serde_json::json!({ "pebble": pebble }).to_string(),
        );

        let mut children = Vec::new();
        let dns_port = match options.dns_server {
            Some(port) => port,
            None => {
                let dns_log =
                    std::fs::File::create(dir.path().join("challtestsrv.log")).expect("log file");
                let dns = Command::new(binary("pebble-challtestsrv"))
                    .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                    .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                    .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                    .args(["-management", &format!("127.0.0.1:{dns_mgmt_port}")])
                    .stdout(dns_log.try_clone().expect("log"))
                    .stderr(dns_log)
                    .spawn()
                    .expect("start pebble-challtestsrv (apt-get install pebble)");
                children.push(dns);
                wait_for_port(dns_mgmt_port, "pebble-challtestsrv");
                dns_port
            }
        };

        let log = std::fs::File::create(dir.path().join("pebble.log")).expect("log file");
        let mut cmd = Command::new(binary("pebble"));
        cmd.arg("-config")
            .arg(dir.path().join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env(
                "PEBBLE_WFE_NONCEREJECT",
                options.nonce_reject_percent.to_string(),
            )
            .env("PEBBLE_AUTHZREUSE", options.authz_reuse_percent.to_string())
            .env(
                "PEBBLE_ALTERNATE_ROOTS",
                options.alternate_roots.to_string(),
            )
            .current_dir(dir.path())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null());
        if options.always_valid {
            cmd.env("PEBBLE_VA_ALWAYS_VALID", "1");
        }
        children.push(cmd.spawn().expect("start pebble (apt-get install pebble)"));
        let p = Pebble {
            directory_url: format!("https://127.0.0.1:{acme_port}/dir"),
            management_url: format!("https://127.0.0.1:{mgmt_port}"),
            http_port,
            tls_port,
            dns_port,
            api_ca_pem: ca_pem,
            children,
            dir,
        };
        wait_for_port(acme_port, "pebble");
        wait_for_port(mgmt_port, "pebble management");
        p
    }

    /// The issuing root of chain `i` (0 = default chain), PEM.
    pub fn root_pem(&self, i: u32) -> String {
        self.management_get(&format!("/roots/{i}"))
    }

    /// The intermediate that signs chain `i`'s certificates, PEM.
    pub fn intermediate_pem(&self, i: u32) -> String {
        self.management_get(&format!("/intermediates/{i}"))
    }

    /// The private key of that intermediate, PEM (for a test OCSP responder).
    pub fn intermediate_key_pem(&self, i: u32) -> String {
        self.management_get(&format!("/intermediate-keys/{i}"))
    }

    /// `GET` on the management API (trusting [`Pebble::api_ca_pem`]); panics on failure.
    pub fn management_get(&self, path: &str) -> String {
        https_get(
            &self.api_ca_pem,
            &format!("{}{}", self.management_url, path),
        )
    }

    /// Pebble's status for a certificate serial (lower-case hex), e.g. `{"Status": "Revoked", …}`.
    pub fn cert_status(&self, serial_hex: &str) -> serde_json::Value {
        serde_json::from_str(&self.management_get(&format!("/cert-status-by-serial/{serial_hex}")))
            .expect("status JSON")
    }

    /// Pebble's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// Number of orders Pebble has created so far.
    pub fn orders_created(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("Added order"))
            .count()
    }

    /// Number of ACME accounts Pebble has created so far (a registration Pebble refused, say
    /// for a bad nonce, and that the client sent again, counts once).
    pub fn accounts_created(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("accounts in memory"))
            .count()
    }

    /// Number of certificates Pebble has issued so far.
    pub fn certificates_issued(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("Issued certificate serial"))
            .count()
    }

    /// A folder that lives as long as this Pebble.
    pub fn scratch_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The facts other languages' tests need, as JSON.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "directory_url": self.directory_url,
            "management_url": self.management_url,
            "http_port": self.http_port,
            "tls_port": self.tls_port,
            "dns_port": self.dns_port,
            "api_ca_pem": self.api_ca_pem,
            "root_pem": self.root_pem(0),
            "log": self.dir.path().join("pebble.log"),
        })
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).expect("write test file");
}

/// Free loopback ports, never handed out twice in this process. They are taken below the
/// kernel's ephemeral range (`ip_local_port_range`), so a `bind(0)` or an outgoing connection
/// elsewhere in the tests cannot take one between now and the moment a server binds it.
pub fn free_ports<const N: usize>() -> [u16; N] {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(12_000));
    let mut out = [0u16; N];
    let mut held = Vec::new();
    for slot in out.iter_mut() {
        loop {
            let port = low + (next_random() % u64::from(high - low)) as u16;
            let Ok(l) = TcpListener::bind(("127.0.0.1", port)) else {
                continue;
            };
            // UDP too, for the DNS port.
            if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            if given.lock().unwrap_or_else(|p| p.into_inner()).insert(port) {
                *slot = port;
                held.push(l);
                break;
            }
        }
    }
    out
}

/// A pseudo-random number (xorshift seeded from the clock and the process id): tests in
/// different processes pick different ports.
fn next_random() -> u64 {
    static STATE: Mutex<u64> = Mutex::new(0);
    let mut s = STATE.lock().unwrap_or_else(|p| p.into_inner());
    if *s == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        *s = nanos ^ (u64::from(std::process::id()) << 32) | 1;
    }
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

pub(crate) fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} did not start listening on 127.0.0.1:{port}");
}

/// A CA and a leaf for 127.0.0.1/localhost signed by it, for Pebble's HTTPS API.
/// The CA and leaf of Pebble's HTTPS API: one per test process, so that every Pebble of a test
/// is trusted through the same root (a CA's URL and roots can be configured before it starts).
fn api_certificates() -> &'static (String, String, String) {
    static API: std::sync::OnceLock<(String, String, String)> = std::sync::OnceLock::new();
    API.get_or_init(make_api_certificates)
}

fn make_api_certificates() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "certmagic-rs test API CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// A TLS client configuration trusting only the certificates of `ca_pem`.
pub fn client_config(ca_pem: &str) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("PEM")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A blocking HTTPS GET trusting `ca_pem`; returns the body. Panics on any failure (tests only).
pub fn https_get(ca_pem: &str, url: &str) -> String {
    let rest = url.strip_prefix("https://").expect("https URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let config = client_config(ca_pem);
    let name = ServerName::try_from(host.to_string()).expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let sock = TcpStream::connect(authority).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {url}: {head}");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
