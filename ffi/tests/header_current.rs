//! The committed header is what cbindgen makes of the code now, and its version macros match the
//! crate. `CERTMAGIC_BLESS=1 cargo test -p certmagic-ffi --test header_current` (or `make header`)
//! rewrites it.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests fail by panicking

use std::path::PathBuf;

fn paths() -> (PathBuf, PathBuf) {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/certmagic.h");
    (crate_dir, header)
}

fn generate() -> String {
    let (crate_dir, _) = paths();
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn header_is_current() {
    let (_, header) = paths();
    let fresh = generate();
    if std::env::var_os("CERTMAGIC_BLESS").is_some() {
        std::fs::write(&header, &fresh).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/certmagic.h is not what cbindgen makes of ffi/src: run `make header` and commit it"
    );
}

#[test]
fn no_rust_doc_syntax_reaches_c() {
    let (_, header) = paths();
    let text = std::fs::read_to_string(header).expect("header");
    for (i, line) in text.lines().enumerate() {
        assert!(
            !line.contains("[`") && !line.contains("crate::"),
            "include/certmagic.h:{}: Rust doc-link syntax in a C comment: {line}",
            i + 1
        );
    }
}

#[test]
fn version_macros_match_the_crate() {
    let (_, header) = paths();
    let text = std::fs::read_to_string(header).expect("header");
    let v = env!("CARGO_PKG_VERSION");
    let mut parts = v.split('.');
    for (name, want) in ["MAJOR", "MINOR", "PATCH"].iter().zip(&mut parts) {
        assert!(
            text.contains(&format!("#define CERTMAGIC_VERSION_{name} {want}\n")),
            "CERTMAGIC_VERSION_{name} != {want}"
        );
    }
    assert!(text.contains(&format!("#define CERTMAGIC_VERSION \"{v}\"\n")));
}
