//! Real DNS servers for DNS-01 tests, from Debian packages, on free loopback ports: BIND9
//! (`bind9`) authoritative for test zones that accept TSIG-signed dynamic updates (and for a
//! local root, so nothing leaves the machine), and the
//! PowerDNS Authoritative Server (`pdns-server` + `pdns-backend-sqlite3`) with its HTTP API.
//! Every zone has `* A 127.0.0.1`, so Pebble resolving through them validates HTTP-01 and
//! TLS-ALPN-01 on loopback too.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{binary, free_ports, wait_for_port, write};

/// The TSIG key the BIND zones accept updates from.
pub const TSIG_KEY_NAME: &str = "certmagic-test";

fn zone_file(zone: &str, extra: &str) -> String {
    format!(
        "$TTL 5\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 3600 1\n@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n{extra}\n"
    )
}

/// A running `named`; stopped on drop.
#[derive(Debug)]
pub struct Bind {
    /// The UDP/TCP port it answers on, on 127.0.0.1.
    pub port: u16,
    /// The TSIG secret (base64) of [`TSIG_KEY_NAME`], HMAC-SHA256.
    pub tsig_secret: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Bind {
    /// Starts BIND authoritative for `zones`, each `(zone, extra zone-file lines)`.
    pub fn start(zones: &[(&str, &str)]) -> Bind {
        let dir = tempfile::tempdir().expect("temp dir");
        let [port] = free_ports();
        let secret = {
            use std::io::Read;
            let mut raw = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut raw))
                .expect("random");
            base64(&raw)
        };
        let d = dir.path().display();
        let mut conf = format!(
            "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  recursion yes;\n  allow-recursion {{ 127.0.0.1; }};\n  allow-query {{ any; }};\n  dnssec-validation no;\n  notify no;\n}};\ncontrols {{ }};\nkey \"{TSIG_KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"
        );
        for (zone, extra) in zones {
            write(dir.path(), &format!("{zone}.db"), &zone_file(zone, extra));
            conf.push_str(&format!(
                "zone \"{zone}\" {{ type primary; file \"{d}/{zone}.db\"; allow-update {{ key \"{TSIG_KEY_NAME}\"; }}; }};\n"
            ));
        }
        // Recursion is on so CNAMEs are chased from one zone into another, as a CA's resolver
        // does; a local root zone keeps every other name from leaving the machine.
        write(
            dir.path(),
            "root.db",
            "$TTL 5\n@ IN SOA ns.root. hostmaster.root. 1 60 60 3600 1\n@ IN NS ns.root.\nns.root. IN A 127.0.0.1\n",
        );
        conf.push_str(&format!(
            "zone \".\" {{ type primary; file \"{d}/root.db\"; }};\n"
        ));
        write(dir.path(), "named.conf", &conf);
        let log = std::fs::File::create(dir.path().join("named.log")).expect("log");
        let child = Command::new(binary("named"))
            .args(["-g", "-n", "1", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start named (apt-get install bind9)");
        wait_for_port(port, "named");
        Bind {
            port,
            tsig_secret: secret,
            child,
            dir,
        }
    }

    /// `named`'s log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    /// The TXT values at `name`, asked with `dig`.
    pub fn txt(&self, name: &str) -> Vec<String> {
        dig_txt(self.port, name)
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TXT values at `name` on 127.0.0.1:`port` (`dig +short`, quotes removed).
pub fn dig_txt(port: u16, name: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args([
            "+short",
            "+norecurse",
            "+time=2",
            "+tries=2",
            "-p",
            &port.to_string(),
            "@127.0.0.1",
            "TXT",
            name,
        ])
        .output()
        .expect("run dig (apt-get install bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_matches('"').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A running PowerDNS Authoritative Server with the sqlite backend and the API on.
#[derive(Debug)]
pub struct PowerDns {
    /// The DNS port on 127.0.0.1.
    pub port: u16,
    /// The API base URL (`http://127.0.0.1:<port>`).
    pub api_url: String,
    /// The API key.
    pub api_key: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl PowerDns {
    /// Starts PowerDNS serving `zone` (with `* A 127.0.0.1`).
    pub fn start(zone: &str) -> PowerDns {
        let dir = tempfile::tempdir().expect("temp dir");
        let [port, api_port] = free_ports();
        let db = dir.path().join("pdns.sqlite3");
        let schema = [
            "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
            "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the sqlite schema of PowerDNS (apt-get install pdns-backend-sqlite3)");
        let status = Command::new("sqlite3")
            .arg(&db)
            .stdin(std::fs::File::open(schema).expect("schema"))
            .status()
            .expect("run sqlite3 (apt-get install sqlite3)");
        assert!(status.success(), "creating the PowerDNS database");
        let api_key = "certmagic-test-api-key".to_string();
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={}\nlocal-address=127.0.0.1\nlocal-port={port}\napi=yes\napi-key={api_key}\nwebserver=yes\nwebserver-address=127.0.0.1\nwebserver-port={api_port}\nwebserver-allow-from=127.0.0.1/32\nsocket-dir={}\ndaemon=no\nguardian=no\ndisable-syslog=yes\nwrite-pid=no\ncache-ttl=0\nnegquery-cache-ttl=0\nquery-cache-ttl=0\nconsistent-backends=yes\nloglevel=4\n",
            db.display(),
            dir.path().display()
        );
        write(dir.path(), "pdns.conf", &conf);
        let pdnsutil = |args: &[&str]| {
            let out = Command::new(binary("pdnsutil"))
                .arg(format!("--config-dir={}", dir.path().display()))
                .args(args)
                .output()
                .expect("run pdnsutil (apt-get install pdns-server)");
            assert!(
                out.status.success(),
                "pdnsutil {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        pdnsutil(&["create-zone", zone, &format!("ns.{zone}")]);
        pdnsutil(&["add-record", zone, "ns", "A", "5", "127.0.0.1"]);
        pdnsutil(&["add-record", zone, "@", "A", "5", "127.0.0.1"]);
        pdnsutil(&["add-record", zone, "*", "A", "5", "127.0.0.1"]);
        let log = std::fs::File::create(dir.path().join("pdns.log")).expect("log");
        let child = Command::new(binary("pdns_server"))
            .arg(format!("--config-dir={}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start pdns_server (apt-get install pdns-server)");
        wait_for_port(port, "pdns_server");
        wait_for_port(api_port, "pdns_server API");
        PowerDns {
            port,
            api_url: format!("http://127.0.0.1:{api_port}"),
            api_key,
            child,
            _dir: dir,
        }
    }

    /// The TXT values at `name`.
    pub fn txt(&self, name: &str) -> Vec<String> {
        dig_txt(self.port, name)
    }
}

impl Drop for PowerDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
