//! Providers configured from their vendors' environment variables, and secrets that never
//! print. One test in its own binary: it changes the process environment.

use certmagic::dns::providers;

const SECRET: &str = "s3cr3t-never-printed";

#[test]
fn providers_from_environment_variables_keep_secrets_out_of_debug() {
    let all = [
        (
            "rfc2136",
            vec![
                ("RFC2136_NAMESERVER", "127.0.0.1:53"),
                ("RFC2136_TSIG_KEY", "k"),
                ("RFC2136_TSIG_SECRET", "czNjcjN0LW5ldmVyLXByaW50ZWQ="),
            ],
        ),
        (
            "powerdns",
            vec![
                ("PDNS_API_URL", "http://127.0.0.1:8081"),
                ("PDNS_API_KEY", SECRET),
            ],
        ),
        (
            "exec",
            vec![
                ("EXEC_PATH", "/usr/local/bin/dns-hook"),
                ("EXEC_TIMEOUT", "30"),
            ],
        ),
        ("cloudflare", vec![("CF_DNS_API_TOKEN", SECRET)]),
        (
            "route53",
            vec![
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
            ],
        ),
        ("digitalocean", vec![("DO_AUTH_TOKEN", SECRET)]),
        ("hetzner", vec![("HETZNER_API_KEY", SECRET)]),
        ("gandi", vec![("GANDIV5_PERSONAL_ACCESS_TOKEN", SECRET)]),
    ];
    for (name, vars) in &all {
        // Missing credentials: a config error naming the variables to set.
        let err = providers::from_env(name).unwrap_err();
        assert_eq!(err.field(), Some("dns_provider"), "{name}: {err}");
        assert!(err.message().contains(vars[0].0), "{name}: {err}");
        for (k, v) in vars {
            // SAFETY: this binary runs this one test, on one thread.
            unsafe { std::env::set_var(k, v) };
        }
        let provider = providers::from_env(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let shown = format!("{provider:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("czNjcjN0"),
            "{name} prints a secret: {shown}"
        );
        // A name alone in JSON means the same.
        providers::from_spec(name).unwrap();
        providers::from_json(&serde_json::json!({ "provider": name })).unwrap();
    }
    assert_eq!(providers::available().len(), all.len());
    let err = providers::from_spec("{not json").unwrap_err();
    assert!(err.message().contains("JSON"), "{err}");
}
