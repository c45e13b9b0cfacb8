//! `pebble-env [--nonce-reject N] [--validity SECONDS] [--always-valid] [--bind] [--ocsp]`:
//! starts Pebble and its DNS server for the tests of other languages, prints one JSON line
//! (directory URL, ports, the API CA and issuing root PEMs, the log path), and stops them when
//! its stdin closes. With `--bind`, the DNS server is BIND9 authoritative for `bind.test`
//! (TSIG-signed updates allowed), described under `"bind"`: `{"port", "zone", "tsig_key",
//! "tsig_secret"}`. With `--ocsp`, Pebble's certificates name a real OCSP responder (`openssl
//! ocsp` for Pebble's intermediate; answers without nextUpdate, so clients ask at every check),
//! described under `"ocsp"`:
//! `{"url"}`; the stdin line `ocsp <serial-hex> good` (or `revoked <reason>`) sets a
//! certificate's status, answered by the line `ok` once the responder serves it.
//!
//! For fleets: `--redis` and `--postgres` start a Redis and a PostgreSQL (described under
//! `"redis"` and `"postgres"`: `{"url", "port"}`; the stdin line `restart redis` or `restart
//! postgres` restarts one, answered by `ok`), and `--fleet-http name=port,…` with
//! `--fleet-tls name=port,…` put HAProxy on Pebble's validation ports, round-robin to those
//! instances on 127.0.0.1 (described under `"haproxy"`: `{"log"}`, one line per connection:
//! `ROUTED http|tls <instance> <host or SNI>`).

use std::io::{BufRead, Write};

use certmagic_testsupport::dns::{Bind, TSIG_KEY_NAME};
use certmagic_testsupport::haproxy::Haproxy;
use certmagic_testsupport::ocsp::{OcspResponder, Status};
use certmagic_testsupport::postgres::Postgres;
use certmagic_testsupport::redis::Redis;
use certmagic_testsupport::{Pebble, PebbleOptions};

fn main() {
    let mut options = PebbleOptions::default();
    let mut args = std::env::args().skip(1);
    let mut bind = None;
    let mut ocsp_port = None;
    let (mut redis, mut postgres) = (None, None);
    let (mut fleet_http, mut fleet_tls) = (Vec::new(), Vec::new());
    while let Some(arg) = args.next() {
        if let "--fleet-http" | "--fleet-tls" = arg.as_str() {
            let list = fleet(&args.next().unwrap_or_default());
            if arg == "--fleet-http" {
                fleet_http = list;
            } else {
                fleet_tls = list;
            }
            continue;
        }
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--redis" => redis = Some(Redis::start()),
            "--postgres" => postgres = Some(Postgres::start()),
            "--nonce-reject" => options.nonce_reject_percent = value().unwrap_or(5).min(100) as u8,
            "--validity" => options.validity_secs = value(),
            "--always-valid" => options.always_valid = true,
            "--bind" => bind = Some(Bind::start(&[("bind.test", "")])),
            "--ocsp" => ocsp_port = Some(OcspResponder::pick_port()),
            other => {
                eprintln!("pebble-env: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    options.dns_server = bind.as_ref().map(|b| b.port);
    options.ocsp_responder_url = ocsp_port.map(|p| format!("http://127.0.0.1:{p}/"));
    let pebble = Pebble::start(options);
    let mut responder = ocsp_port.map(|port| OcspResponder::for_pebble(&pebble, port, None));
    let haproxy = (!fleet_http.is_empty() || !fleet_tls.is_empty()).then(|| {
        fn borrow(l: &[(String, u16)]) -> Vec<(&str, u16)> {
            l.iter().map(|(n, p)| (n.as_str(), *p)).collect()
        }
        Haproxy::start(
            pebble.http_port,
            &borrow(&fleet_http),
            pebble.tls_port,
            &borrow(&fleet_tls),
        )
    });
    let mut facts = pebble.describe();
    if let Some(h) = &haproxy {
        facts["haproxy"] = serde_json::json!({ "log": h.log_path() });
    }
    if let Some(r) = &redis {
        facts["redis"] = serde_json::json!({ "url": r.url(), "port": r.port });
    }
    if let Some(p) = &postgres {
        facts["postgres"] = serde_json::json!({ "url": p.url(), "port": p.port });
    }
    if let Some(r) = &responder {
        facts["ocsp"] = serde_json::json!({ "url": r.url() });
    }
    if let Some(b) = &bind {
        facts["bind"] = serde_json::json!({
            "port": b.port,
            "zone": "bind.test",
            "tsig_key": TSIG_KEY_NAME,
            "tsig_secret": b.tsig_secret,
        });
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{facts}");
    let _ = out.flush();
    drop(out);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let status = match words.as_slice() {
            ["ocsp", _, "good"] => Some(Status::Good),
            ["ocsp", _, "revoked", reason] => Some(Status::Revoked(match *reason {
                "keyCompromise" => "keyCompromise",
                "superseded" => "superseded",
                _ => "unspecified",
            })),
            _ => None,
        };
        let answer = match (status, responder.as_mut(), words.as_slice()) {
            (Some(status), Some(r), _) => {
                r.set(words[1], status);
                "ok"
            }
            (_, _, ["restart", "redis"]) if redis.is_some() => {
                if let Some(r) = redis.as_mut() {
                    r.restart();
                }
                "ok"
            }
            (_, _, ["restart", "postgres"]) if postgres.is_some() => {
                if let Some(p) = postgres.as_mut() {
                    p.restart();
                }
                "ok"
            }
            _ => {
                "error: expected `ocsp <serial> good|revoked <reason>` (with --ocsp) or `restart redis|postgres` (with --redis, --postgres)"
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
    drop(haproxy);
    drop(pebble);
    drop(bind);
    drop(redis);
    drop(postgres);
}

/// `name=port,name=port`.
fn fleet(list: &str) -> Vec<(String, u16)> {
    list.split(',')
        .filter_map(|pair| {
            let (name, port) = pair.split_once('=')?;
            Some((name.to_string(), port.parse().ok()?))
        })
        .collect()
}
