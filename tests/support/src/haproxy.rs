//! HAProxy (Debian's `haproxy`) in front of a fleet on loopback: round-robin from Pebble's
//! validation ports to every instance, so the CA's validation reaches an instance other than
//! the one that ordered. It logs, per connection, the instance that answered and the name
//! asked for (the HTTP `Host` for HTTP-01, the TLS SNI for TLS-ALPN-01).

use std::process::{Child, Command, Stdio};

use super::{binary, wait_for_port, write};

/// A running `haproxy`; stopped on drop.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    dir: tempfile::TempDir,
}

/// One answered connection from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// `http` or `tls`.
    pub frontend: String,
    /// The instance's name as given to [`Haproxy::start`].
    pub server: String,
    /// The `Host` (port removed) or the SNI.
    pub name: String,
}

impl Haproxy {
    /// Listens on 127.0.0.1:`http_port` (HTTP) and 127.0.0.1:`tls_port` (TLS, passed
    /// through), each round-robin to its `(instance name, port)` list on 127.0.0.1.
    pub fn start(
        http_port: u16,
        http_servers: &[(&str, u16)],
        tls_port: u16,
        tls_servers: &[(&str, u16)],
    ) -> Haproxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let servers = |list: &[(&str, u16)]| {
            list.iter()
                .map(|(name, port)| format!("  server {name} 127.0.0.1:{port}\n"))
                .collect::<String>()
        };
        let conf = format!(
            "global\n  log stdout format raw local0\n  maxconn 512\n\
             defaults\n  log global\n  timeout connect 2s\n  timeout client 15s\n  timeout server 15s\n\
             frontend http\n  mode http\n  bind 127.0.0.1:{http_port}\n  http-request capture req.hdr(host) len 100\n\
             \x20 log-format \"ROUTED http %s %[capture.req.hdr(0)]\"\n  default_backend http_fleet\n\
             backend http_fleet\n  mode http\n  balance roundrobin\n{}\
             frontend tls\n  mode tcp\n  bind 127.0.0.1:{tls_port}\n  tcp-request inspect-delay 5s\n\
             \x20 tcp-request content capture req.ssl_sni len 100\n  tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
             \x20 log-format \"ROUTED tls %s %[capture.req.hdr(0)]\"\n  default_backend tls_fleet\n\
             backend tls_fleet\n  mode tcp\n  balance roundrobin\n{}",
            servers(http_servers),
            servers(tls_servers),
        );
        write(dir.path(), "haproxy.cfg", &conf);
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log");
        let child = Command::new(binary("haproxy"))
            .args(["-db", "-f"])
            .arg(dir.path().join("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start haproxy (apt-get install haproxy)");
        wait_for_port(http_port, "haproxy");
        wait_for_port(tls_port, "haproxy");
        Haproxy { child, dir }
    }

    /// Every connection routed so far.
    pub fn routed(&self) -> Vec<Routed> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace().skip_while(|w| *w != "ROUTED").skip(1);
                let frontend = w.next()?.to_string();
                let server = w.next()?.to_string();
                // A Host may carry a port.
                let name = w.next()?.split(':').next()?.to_string();
                Some(Routed {
                    frontend,
                    server,
                    name,
                })
            })
            .collect()
    }

    /// The path of its log.
    pub fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("haproxy.log")
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
