//! Builds and runs the C programs of `tests/c` and `examples/c` against `libcertmagic.so`:
//! each test once with AddressSanitizer/UBSan and once under valgrind (zero leaks, zero invalid
//! accesses), against a real Pebble where a CA is needed. Also checks the header compiles as C99
//! and C++ and that only `certmagic_*` symbols are exported.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests fail by panicking

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use certmagic_testsupport::dns::{Bind, TSIG_KEY_NAME};
use certmagic_testsupport::ocsp::{OcspResponder, Status as OcspStatus};
use certmagic_testsupport::{Pebble, PebbleOptions};

const C_FLAGS: &[&str] = &[
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-g",
    "-O1",
];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace")
}

/// A folder laid out as an installed library: `libcertmagic.so` (cargo builds it for this test
/// in `target/<profile>/deps`) and the `libcertmagic.so.0` soname link programs load.
fn lib_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test exe");
        let deps = exe.parent().expect("deps dir");
        let built = deps.join("libcertmagic.so");
        assert!(
            built.exists(),
            "libcertmagic.so not built in {}",
            deps.display()
        );
        let dir = deps
            .parent()
            .expect("target dir")
            .join(format!("c-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("lib dir");
        for name in ["libcertmagic.so", "libcertmagic.so.0"] {
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&built, &link).expect("symlink");
        }
        dir
    })
    .clone()
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    print!("{text}");
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Build {
    Sanitized,
    Plain,
}

fn compile(sources: &[&str], out: &Path, build: Build, libs: &[&str]) {
    let ws = workspace();
    let lib = lib_dir();
    let mut cmd = Command::new("cc");
    cmd.args(C_FLAGS)
        .arg("-I")
        .arg(ws.join("include"))
        .arg("-I")
        .arg(ws.join("tests/c"));
    if build == Build::Sanitized {
        cmd.args([
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all",
        ]);
    }
    for s in sources {
        cmd.arg(ws.join(s));
    }
    cmd.arg("-L")
        .arg(&lib)
        .arg("-lcertmagic")
        .arg(format!("-Wl,-rpath,{}", lib.display()));
    cmd.args(libs).arg("-lpthread").arg("-o").arg(out);
    run(&mut cmd, &format!("compiling {sources:?}"));
}

/// Runs a built C test natively (sanitized build) or under valgrind (plain build).
fn run_program(exe: &Path, build: Build, env: &[(String, String)]) {
    let mut cmd = match build {
        Build::Sanitized => {
            let mut c = Command::new(exe);
            // Leaks are valgrind's job below; ASan checks memory errors, UBSan undefined behaviour.
            c.env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1")
                .env("UBSAN_OPTIONS", "print_stacktrace=1");
            c
        }
        Build::Plain => {
            let mut c = Command::new("valgrind");
            c.args([
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect",
                "--error-exitcode=1",
                "--quiet",
            ])
            .arg(exe);
            c
        }
    };
    // Storage left to its default folder stays inside this run (never the user's own, and
    // never a certificate from an earlier run's Pebble on a recycled port).
    let data_home = scratch();
    cmd.env("XDG_DATA_HOME", data_home.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    run(
        &mut cmd,
        &format!(
            "{} ({})",
            exe.display(),
            if build == Build::Plain {
                "valgrind"
            } else {
                "ASan/UBSan"
            }
        ),
    );
}

/// A PEM chain and key for unmanaged.example.test, as files.
fn unmanaged_cert(dir: &Path) -> Vec<(String, String)> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(vec!["unmanaged.example.test".to_string()]).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let cert = params.self_signed(&key).expect("cert");
    let (crt_path, key_path) = (dir.join("unmanaged.crt"), dir.join("unmanaged.key"));
    std::fs::write(&crt_path, cert.pem()).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");
    vec![
        ("CM_UNMANAGED_CRT".into(), crt_path.display().to_string()),
        ("CM_UNMANAGED_KEY".into(), key_path.display().to_string()),
    ]
}

#[test]
fn header_compiles_as_c99_and_cpp() {
    let dir = scratch();
    let src = dir.path().join("h.c");
    std::fs::write(
        &src,
        "#include \"certmagic.h\"\nint main(void) { return certmagic_version() == 0; }\n",
    )
    .expect("write");
    let include = workspace().join("include");
    run(
        Command::new("cc")
            .args(C_FLAGS)
            .arg("-fsyntax-only")
            .arg("-I")
            .arg(&include)
            .arg(&src),
        "header as C99",
    );
    run(
        Command::new("c++")
            .args([
                "-std=c++11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fsyntax-only",
                "-x",
                "c++",
            ])
            .arg("-I")
            .arg(&include)
            .arg(&src),
        "header as C++",
    );
}

#[test]
fn exports_only_certmagic_symbols_and_has_a_soname() {
    let lib = lib_dir().join("libcertmagic.so");
    let out = run(
        Command::new("nm").args(["-D", "--defined-only"]).arg(&lib),
        "nm",
    );
    let symbols: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    assert!(symbols.len() > 50, "expected the C API, found {symbols:?}");
    let foreign: Vec<&String> = symbols
        .iter()
        .filter(|s| !s.starts_with("certmagic_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "exported symbols outside certmagic_*: {foreign:?}"
    );
    let header = std::fs::read_to_string(workspace().join("include/certmagic.h")).expect("header");
    for s in &symbols {
        assert!(
            header.contains(&format!("{s}(")),
            "{s} is exported but not declared in the header"
        );
    }
    let dynamic = run(Command::new("readelf").arg("-d").arg(&lib), "readelf");
    assert!(
        String::from_utf8_lossy(&dynamic.stdout).contains("Library soname: [libcertmagic.so.0]")
    );
}

#[test]
fn c_api_without_a_ca() {
    let dir = scratch();
    let mut env = unmanaged_cert(dir.path());
    for build in [Build::Sanitized, Build::Plain] {
        let storage = scratch();
        let exe = dir.path().join(format!("test_api_{}", build as u8));
        compile(&["tests/c/test_api.c"], &exe, build, &[]);
        env.retain(|(k, _)| k != "CM_STORAGE");
        env.push(("CM_STORAGE".into(), storage.path().display().to_string()));
        run_program(&exe, build, &env);
    }
    // The benchmark compiles (it runs in `make bench`, against the release build).
    compile(
        &["tests/c/bench_get_certificate.c"],
        &dir.path().join("bench"),
        Build::Plain,
        &[],
    );
}

#[test]
fn c_api_obtains_from_pebble() {
    let dir = scratch();
    for build in [Build::Sanitized, Build::Plain] {
        let pebble = Pebble::start(PebbleOptions::default());
        let (storage, out) = (scratch(), scratch());
        let roots = dir.path().join("ca-roots.pem");
        std::fs::write(&roots, &pebble.api_ca_pem).expect("write");
        // Go CertMagic's folder for `https://127.0.0.1:<port>/dir`: `127.0.0.1-<port>-dir`.
        let issuer_dir = pebble
            .directory_url
            .trim_start_matches("https://")
            .replace([':', '/'], "-");
        let env: Vec<(String, String)> = [
            ("CM_CA", pebble.directory_url.clone()),
            ("CM_CA_ROOTS", roots.display().to_string()),
            ("CM_HTTP_PORT", pebble.http_port.to_string()),
            ("CM_TLS_PORT", pebble.tls_port.to_string()),
            ("CM_STORAGE", storage.path().display().to_string()),
            ("CM_OUT", out.path().display().to_string()),
            ("CM_ISSUER_DIR", issuer_dir),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let exe = dir.path().join(format!("test_obtain_{}", build as u8));
        compile(&["tests/c/test_obtain.c"], &exe, build, &[]);
        run_program(&exe, build, &env);
        for name in [
            "c-http.example.test",
            "c-mem.example.test",
            "c-fallback.example.test",
        ] {
            let pem = std::fs::read(out.path().join(format!("{name}.pem")))
                .expect("chain written by the C test");
            verify_chain(&pebble, &pem, name);
        }
    }
}

#[test]
fn c_api_on_demand_from_pebble() {
    let dir = scratch();
    for build in [Build::Sanitized, Build::Plain] {
        let pebble = Pebble::start(PebbleOptions {
            nonce_reject_percent: 0,
            ..PebbleOptions::default()
        });
        let out = scratch();
        let roots = dir.path().join("ca-roots.pem");
        std::fs::write(&roots, &pebble.api_ca_pem).expect("write");
        let env: Vec<(String, String)> = [
            ("CM_CA", pebble.directory_url.clone()),
            ("CM_CA_ROOTS", roots.display().to_string()),
            ("CM_HTTP_PORT", pebble.http_port.to_string()),
            ("CM_TLS_PORT", pebble.tls_port.to_string()),
            ("CM_OUT", out.path().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let exe = dir.path().join(format!("test_on_demand_{}", build as u8));
        compile(&["tests/c/test_on_demand.c"], &exe, build, &[]);
        run_program(&exe, build, &env);
        for name in ["c-sync.ok.test", "c-poll.ok.test"] {
            let pem = std::fs::read(out.path().join(format!("{name}.pem")))
                .expect("chain written by the C test");
            verify_chain(&pebble, &pem, name);
        }
        // c-sync, c-poll and (maybe) c-abandoned: never the refused name.
        let log = pebble.log();
        assert!(!log.contains("c-evil"), "the refused name reached the CA");
        assert!(
            (2..=3).contains(&pebble.orders_created()),
            "{}",
            pebble.orders_created()
        );
    }
}

#[test]
fn c_api_dns01_through_bind() {
    let dir = scratch();
    for build in [Build::Sanitized, Build::Plain] {
        let bind = Bind::start(&[("bind.test", "")]);
        let pebble = Pebble::start(PebbleOptions {
            dns_server: Some(bind.port),
            ..PebbleOptions::default()
        });
        let out = scratch();
        let roots = dir.path().join("ca-roots.pem");
        std::fs::write(&roots, &pebble.api_ca_pem).expect("write");
        let env: Vec<(String, String)> = [
            ("CM_CA", pebble.directory_url.clone()),
            ("CM_CA_ROOTS", roots.display().to_string()),
            ("CM_DNS_PORT", bind.port.to_string()),
            ("CM_TSIG_KEY", TSIG_KEY_NAME.to_string()),
            ("CM_TSIG_SECRET", bind.tsig_secret.clone()),
            ("CM_OUT", out.path().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let exe = dir.path().join(format!("test_dns_{}", build as u8));
        compile(&["tests/c/test_dns.c"], &exe, build, &[]);
        run_program(&exe, build, &env);
        for (file, name) in [
            ("wildcard", "a.c-wild.bind.test"),
            ("c-callback.bind.test", "c-callback.bind.test"),
        ] {
            let pem = std::fs::read(out.path().join(format!("{file}.pem")))
                .expect("chain written by the C test");
            verify_chain(&pebble, &pem, name);
        }
        for name in [
            "_acme-challenge.c-wild.bind.test",
            "_acme-challenge.c-callback.bind.test",
        ] {
            assert!(bind.txt(name).is_empty(), "{name} left behind");
        }
    }
}

/// The OpenSSL example, built in `dir`.
fn compile_openssl_example(dir: &Path) -> PathBuf {
    let exe = dir.join("openssl_server");
    compile(
        &["examples/c/openssl_server.c"],
        &exe,
        Build::Plain,
        &["-lssl", "-lcrypto"],
    );
    exe
}

/// Runs the OpenSSL example until it prints READY (its certificate obtained or loaded).
fn start_openssl_server(
    exe: &Path,
    pebble: &Pebble,
    roots: &Path,
    storage: &Path,
    name: &str,
) -> std::process::Child {
    start_example(
        exe,
        &pebble.directory_url,
        roots,
        pebble.tls_port,
        storage,
        name,
    )
}

/// Runs the OpenSSL example with `ca` (a directory URL or `local`) until it prints READY.
fn start_example(
    exe: &Path,
    ca: &str,
    roots: &Path,
    port: u16,
    storage: &Path,
    name: &str,
) -> std::process::Child {
    let mut server = Command::new(exe)
        .arg(ca)
        .arg(roots)
        .arg(port.to_string())
        .arg(storage)
        .arg(name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let mut stdout = std::io::BufReader::new(server.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("read");
    if line.trim() != "READY" {
        let status = server.wait().expect("exit");
        let mut err = String::new();
        std::io::Read::read_to_string(server.stderr.as_mut().expect("stderr"), &mut err).ok();
        panic!("the example did not obtain its certificate ({status}):\n{err}");
    }
    server
}

#[test]
fn openssl_server_example_serves_localhost_from_the_local_ca() {
    let dir = scratch();
    let exe = compile_openssl_example(dir.path());
    let storage = scratch();
    let root = dir.path().join("local-root.pem");
    let [port] = certmagic_testsupport::free_ports();
    let server = start_example(&exe, "local", &root, port, storage.path(), "localhost");
    assert_eq!(
        std::fs::read(&root).expect("exported root"),
        std::fs::read(storage.path().join("pki/authorities/local/root.crt")).expect("stored root")
    );
    let out = run(
        Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--cacert"])
            .arg(&root)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .arg(format!("https://localhost:{port}/")),
        "curl --cacert <exported root>",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello from libcertmagic"),
        "{out:?}"
    );
    stop(server);
}

/// `openssl s_client -status` GETs / from the example; returns everything it printed.
fn s_client_get(pebble: &Pebble, root: &Path, name: &str) -> String {
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", pebble.tls_port),
            "-servername",
            name,
        ])
        .args([
            "-verify_return_error",
            "-verify_hostname",
            name,
            "-alpn",
            "http/1.1",
            "-status",
            "-ign_eof",
            "-CAfile",
        ])
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    std::io::Write::write_all(
        client.stdin.as_mut().expect("stdin"),
        format!("GET / HTTP/1.1\r\nHost: {name}\r\n\r\n").as_bytes(),
    )
    .expect("write");
    let out = client.wait_with_output().expect("s_client");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stop(mut server: std::process::Child) {
    drop(server.stdin.take());
    let status = server.wait().expect("example exit");
    assert!(status.success(), "example exited with {status}");
}

#[test]
fn openssl_server_example_obtains_through_tls_alpn_and_staples_ocsp() {
    let dir = scratch();
    // Pebble names a real responder (`openssl ocsp` with Pebble's intermediate) in its
    // certificates.
    let ocsp_port = OcspResponder::pick_port();
    let pebble = Pebble::start(PebbleOptions {
        ocsp_responder_url: Some(format!("http://127.0.0.1:{ocsp_port}/")),
        ..PebbleOptions::default()
    });
    let mut responder = OcspResponder::for_pebble(&pebble, ocsp_port, Some(60));
    let exe = compile_openssl_example(dir.path());
    let roots = dir.path().join("ca-roots.pem");
    std::fs::write(&roots, &pebble.api_ca_pem).expect("write");
    let root = dir.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.root_pem(0)).expect("write");
    let storage = scratch();
    let name = "openssl.example.test";

    let server = start_openssl_server(&exe, &pebble, &roots, storage.path(), name);
    assert!(
        !pebble.log().contains("validate w/ HTTP"),
        "TLS-ALPN-01 alone"
    );
    let text = s_client_get(&pebble, &root, name);
    assert!(
        text.contains("Verify return code: 0 (ok)"),
        "s_client did not verify the chain:\n{text}"
    );
    assert!(text.contains("hello from libcertmagic"), "{text}");
    // The responder did not know the new certificate yet: nothing stapled.
    assert!(text.contains("OCSP response: no response sent"), "{text}");
    stop(server);

    // Once it does, a restart loads the certificate from storage and staples the response.
    let pem = std::fs::read_to_string(
        std::fs::read_dir(storage.path().join("certificates"))
            .expect("certificates")
            .next()
            .expect("issuer folder")
            .expect("entry")
            .path()
            .join(name)
            .join(format!("{name}.crt")),
    )
    .expect("stored chain");
    responder.set(&leaf_serial_hex(&pem), OcspStatus::Good);
    let server = start_openssl_server(&exe, &pebble, &roots, storage.path(), name);
    let text = s_client_get(&pebble, &root, name);
    assert!(text.contains("OCSP Response Status: successful"), "{text}");
    assert!(text.contains("Cert Status: good"), "{text}");
    assert!(text.contains("hello from libcertmagic"), "{text}");
    assert_eq!(pebble.certificates_issued(), 1);
    stop(server);
}

/// The serial of the first certificate of a PEM chain, hex (`openssl x509 -serial`).
fn leaf_serial_hex(pem: &str) -> String {
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl x509");
    std::io::Write::write_all(x509.stdin.as_mut().expect("stdin"), pem.as_bytes()).expect("write");
    let out = x509.wait_with_output().expect("openssl x509");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix("serial=")
        .unwrap_or_else(|| panic!("openssl x509 -serial: {text}"))
        .to_string()
}

/// Verifies a PEM chain for `name` against Pebble's root.
fn verify_chain(pebble: &Pebble, pem: &[u8], name: &str) {
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .expect("PEM chain");
    let root = CertificateDer::from_pem_slice(pebble.root_pem(0).as_bytes()).expect("root");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).expect("root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .expect("verifier");
    let server_name = rustls_pki_types::ServerName::try_from(name.to_string()).expect("name");
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &server_name,
            &[],
            rustls_pki_types::UnixTime::now(),
        )
        .unwrap_or_else(|e| panic!("{name}: chain from the C test does not verify: {e}"));
}
