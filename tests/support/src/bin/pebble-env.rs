//! `pebble-env [--nonce-reject N] [--validity SECONDS] [--always-valid] [--bind]`: starts Pebble
//! and its DNS server for the tests of other languages, prints one JSON line (directory URL,
//! ports, the API CA and issuing root PEMs, the log path), and stops them when its stdin closes.
//! With `--bind`, the DNS server is BIND9 authoritative for `bind.test` (TSIG-signed updates
//! allowed), described under `"bind"`: `{"port", "zone", "tsig_key", "tsig_secret"}`.

use std::io::{BufRead, Write};

use certmagic_testsupport::dns::{Bind, TSIG_KEY_NAME};
use certmagic_testsupport::{Pebble, PebbleOptions};

fn main() {
    let mut options = PebbleOptions::default();
    let mut args = std::env::args().skip(1);
    let mut bind = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--nonce-reject" => options.nonce_reject_percent = value().unwrap_or(5).min(100) as u8,
            "--validity" => options.validity_secs = value(),
            "--always-valid" => options.always_valid = true,
            "--bind" => bind = Some(Bind::start(&[("bind.test", "")])),
            other => {
                eprintln!("pebble-env: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    options.dns_server = bind.as_ref().map(|b| b.port);
    let pebble = Pebble::start(options);
    let mut facts = pebble.describe();
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
        if line.is_err() {
            break;
        }
    }
    drop(pebble);
    drop(bind);
}
