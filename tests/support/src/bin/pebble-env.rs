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

use std::io::{BufRead, Write};

use certmagic_testsupport::dns::{Bind, TSIG_KEY_NAME};
use certmagic_testsupport::ocsp::{OcspResponder, Status};
use certmagic_testsupport::{Pebble, PebbleOptions};

fn main() {
    let mut options = PebbleOptions::default();
    let mut args = std::env::args().skip(1);
    let mut bind = None;
    let mut ocsp_port = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
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
    let mut facts = pebble.describe();
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
        let answer = match (status, responder.as_mut()) {
            (Some(status), Some(r)) => {
                r.set(words[1], status);
                "ok"
            }
            _ => "error: expected `ocsp <serial> good|revoked <reason>` (with --ocsp)",
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
    drop(pebble);
    drop(bind);
}
