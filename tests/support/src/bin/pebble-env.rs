//! `pebble-env [--nonce-reject N] [--validity SECONDS] [--always-valid]`: starts Pebble and its
//! DNS server for the tests of other languages, prints one JSON line (directory URL, ports, the
//! API CA and issuing root PEMs, the log path), and stops them when its stdin closes.

use std::io::{BufRead, Write};

use certmagic_testsupport::{Pebble, PebbleOptions};

fn main() {
    let mut options = PebbleOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--nonce-reject" => options.nonce_reject_percent = value().unwrap_or(5).min(100) as u8,
            "--validity" => options.validity_secs = value(),
            "--always-valid" => options.always_valid = true,
            other => {
                eprintln!("pebble-env: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let pebble = Pebble::start(options);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", pebble.describe());
    let _ = out.flush();
    drop(out);
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    drop(pebble);
}
