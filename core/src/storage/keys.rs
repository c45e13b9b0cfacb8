//! The one place that builds storage keys: Go CertMagic's layout, byte for byte, so that a Caddy
//! server and this library can share one storage.
//!
//! ```text
//! certificates/<issuer>/<name>/<name>.{crt,key,json}
//! acme/<issuer>/users/<email|default>/<local-part|default>.{json,key}
//! acme/<issuer>/challenge_tokens/<identifier>.json
//! ocsp/<first name>-<fnv32a hex of the PEM chain>
//! locks/<lock name>.lock            (FileStorage only)
//! ```
//! Every component goes through [`safe`].

use std::net::IpAddr;

/// Sanitises one key component exactly as Go CertMagic's `KeyBuilder.Safe()`:
/// lower-case, trim, then `' '`→`_`, `+`→`_plus_`, `*`→`wildcard_`, `:`→`-`, `..`→removed in one
/// left-to-right pass, then every byte outside `[A-Za-z0-9_@.-]` dropped.
pub fn safe(s: &str) -> String {
    let lower = s.to_lowercase();
    let trimmed = lower.trim();
    let mut replaced = String::with_capacity(trimmed.len() + 8);
    let mut rest = trimmed;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("..") {
            rest = &rest[2..];
            continue;
        }
        match c {
            ' ' => replaced.push('_'),
            '+' => replaced.push_str("_plus_"),
            '*' => replaced.push_str("wildcard_"),
            ':' => replaced.push('-'),
            other => replaced.push(other),
        }
        rest = &rest[c.len_utf8()..];
    }
    replaced.retain(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '.' | '-'));
    replaced
}

/// The issuer key of an ACME CA, derived from its directory URL as Go CertMagic does:
/// `host[:port]` followed by `-<path>` with slashes turned into dashes. The result is *not*
/// sanitised (events and logs show it as is); paths apply [`safe`].
///
/// `https://acme-v02.api.letsencrypt.org/directory` → `acme-v02.api.letsencrypt.org-directory`.
pub fn issuer_key(ca_url: &str) -> String {
    let Some((_, after_scheme)) = ca_url.split_once("://") else {
        // Go parses a scheme-less string as a path with an empty host.
        return format!("-{}", path_part(ca_url));
    };
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = after_scheme[end..].split(['?', '#']).next().unwrap_or("");
    let path = path_part(path);
    if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}-{path}")
    }
}

fn path_part(path: &str) -> String {
    path.replace(['/', '\\'], "-").trim_matches('-').to_string()
}

/// Key prefix of every certificate of one issuer: `certificates/<issuer>`.
pub fn certs_prefix(issuer_key: &str) -> String {
    format!("certificates/{}", safe(issuer_key))
}

/// Folder of one certificate: `certificates/<issuer>/<name>`.
pub fn site_prefix(issuer_key: &str, name: &str) -> String {
    format!("{}/{}", certs_prefix(issuer_key), safe(name))
}

/// `certificates/<issuer>/<name>/<name>.crt`: the PEM chain, leaf first.
pub fn site_cert(issuer_key: &str, name: &str) -> String {
    site_file(issuer_key, name, "crt")
}

/// `certificates/<issuer>/<name>/<name>.key`: the certificate's private key.
pub fn site_private_key(issuer_key: &str, name: &str) -> String {
    site_file(issuer_key, name, "key")
}

/// `certificates/<issuer>/<name>/<name>.json`: the certificate's metadata.
pub fn site_meta(issuer_key: &str, name: &str) -> String {
    site_file(issuer_key, name, "json")
}

/// [`site_cert`], [`site_private_key`] and [`site_meta`] of one name, its folder made once.
pub(crate) fn site_files(issuer_key: &str, name: &str) -> [String; 3] {
    let safe_name = safe(name);
    let stem = format!("{}/{safe_name}/{safe_name}", certs_prefix(issuer_key));
    ["crt", "key", "json"].map(|ext| format!("{stem}.{ext}"))
}

fn site_file(issuer_key: &str, name: &str, ext: &str) -> String {
    let safe_name = safe(name);
    format!("{}/{safe_name}/{safe_name}.{ext}", certs_prefix(issuer_key))
}

/// `pki/authorities/<id>/<file>`: a local certificate authority's root and intermediate
/// (`root.crt`, `root.key`, `intermediate.crt`, `intermediate.key`), as Caddy keeps its own.
pub fn authority_file(ca_id: &str, file: &str) -> String {
    format!("pki/authorities/{}/{file}", safe(ca_id))
}

/// `pki_<id>`: held while a local certificate authority is created or its intermediate renewed.
pub fn lock_authority(ca_id: &str) -> String {
    format!("pki_{}", safe(ca_id))
}

/// `acme/<issuer>`: everything ACME-specific of one CA.
pub fn ca_prefix(issuer_key: &str) -> String {
    format!("acme/{}", safe(issuer_key))
}

/// `acme/<issuer>/users`: the accounts of one CA.
pub fn users_prefix(issuer_key: &str) -> String {
    format!("{}/users", ca_prefix(issuer_key))
}

/// `acme/<issuer>/users/<email|default>`.
pub fn user_prefix(issuer_key: &str, email: &str) -> String {
    let email = if email.is_empty() { "default" } else { email };
    format!("{}/{}", users_prefix(issuer_key), safe(email))
}

/// `acme/<issuer>/users/<email>/<local-part>.json`: the account registration.
pub fn user_reg(issuer_key: &str, email: &str) -> String {
    format!(
        "{}/{}.json",
        user_prefix(issuer_key, email),
        safe(&email_username(email))
    )
}

/// `acme/<issuer>/users/<email>/<local-part>.key`: the account private key.
pub fn user_private_key(issuer_key: &str, email: &str) -> String {
    format!(
        "{}/{}.key",
        user_prefix(issuer_key, email),
        safe(&email_username(email))
    )
}

/// The part of an email before `@` (all of it without `@`, the part after it when the email
/// starts with `@`, `default` when empty), as CertMagic names account files.
fn email_username(email: &str) -> String {
    if email.is_empty() {
        return "default".into();
    }
    match email.find('@') {
        None => email.to_string(),
        Some(0) => email[1..].to_string(),
        Some(i) => email[..i].to_string(),
    }
}

/// `acme/<issuer>/challenge_tokens/<identifier>.json`: a challenge in flight, readable by every
/// instance sharing the storage.
pub fn challenge_token(issuer_key: &str, identifier: &str) -> String {
    format!(
        "{}/challenge_tokens/{}.json",
        ca_prefix(issuer_key),
        safe(identifier)
    )
}

/// The challenge key of an identifier: the name itself, except TLS-ALPN-01 for an IP address
/// uses the reverse-DNS name, which is the SNI the CA sends.
pub fn challenge_key(identifier: &str, tls_alpn: bool) -> String {
    match identifier.parse::<IpAddr>() {
        Ok(ip) if tls_alpn => reverse_dns_name(ip),
        _ => identifier.to_string(),
    }
}

/// `1.2.3.4` → `4.3.2.1.in-addr.arpa`; IPv6 by nibbles under `ip6.arpa` (RFC 8738).
pub fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// Where the OCSP response of a certificate is kept: `ocsp/<Safe(first name)>-<hex>`, the hex
/// (not zero-padded, as Go's `%x`) being the 32-bit FNV-1a hash of the PEM chain the
/// certificate was read from (Go CertMagic's `KeyBuilder.OCSPStaple`).
pub fn ocsp_staple(first_name: &str, pem_chain_fnv32a: u32) -> String {
    format!("ocsp/{}-{pem_chain_fnv32a:x}", safe(first_name))
}

/// 32-bit FNV-1a (Go's `hash/fnv.New32a`).
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Lock name for refreshing a certificate's renewal information: `ari_<certID>` (CertMagic's).
pub fn lock_ari(certificate_id: &str) -> String {
    format!("ari_{certificate_id}")
}

/// Lock name for obtaining or renewing a name (same lock for both): `issue_cert_<name>`.
pub fn lock_issue_cert(name: &str) -> String {
    format!("issue_cert_{name}")
}

/// Lock name guarding account registration: `register_acme_account[_<email>]`.
pub fn lock_register_account(email: &str) -> String {
    if email.is_empty() {
        "register_acme_account".into()
    } else {
        format!("register_acme_account_{email}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocsp_staple_key_matches_certmagic() {
        // Go: fnv.New32a() over "" is 0x811c9dc5, over "a" 0xe40c292c (the published vectors).
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
        assert_eq!(
            ocsp_staple("*.Example.com", 0xe40c_292c),
            "ocsp/wildcard_.example.com-e40c292c"
        );
        assert_eq!(ocsp_staple("a.test", 0x0abc), "ocsp/a.test-abc");
    }

    #[test]
    fn site_files_are_the_three_site_keys() {
        let (issuer, name) = ("acme-v02.api.letsencrypt.org-directory", "*.Example.com");
        assert_eq!(
            site_files(issuer, name),
            [
                site_cert(issuer, name),
                site_private_key(issuer, name),
                site_meta(issuer, name)
            ]
        );
        assert_eq!(
            site_files(issuer, name)[0],
            "certificates/acme-v02.api.letsencrypt.org-directory/wildcard_.example.com/wildcard_.example.com.crt"
        );
    }

    #[test]
    fn safe_matches_certmagic() {
        let cases = [
            ("*.example.com", "wildcard_.example.com"),
            ("2001:db8::1", "2001-db8--1"),
            ("me+tag@x.com", "me_plus_tag@x.com"),
            ("acme.zerossl.com-v2-DV90", "acme.zerossl.com-v2-dv90"),
            ("../etc/passwd", "etcpasswd"),
            ("a...b", "a.b"),
            ("bücher.de", "bcher.de"),
            ("  Example.COM  ", "example.com"),
            ("a b", "a_b"),
            ("localhost:14000-dir", "localhost-14000-dir"),
            ("x/y\\z", "xyz"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(safe(input), want, "safe({input:?})");
            assert_eq!(safe(&safe(input)), want, "safe is idempotent for {input:?}");
        }
    }

    #[test]
    fn issuer_keys() {
        let cases = [
            (
                "https://acme-v02.api.letsencrypt.org/directory",
                "acme-v02.api.letsencrypt.org-directory",
            ),
            (
                "https://acme-staging-v02.api.letsencrypt.org/directory",
                "acme-staging-v02.api.letsencrypt.org-directory",
            ),
            (
                "https://acme.zerossl.com/v2/DV90",
                "acme.zerossl.com-v2-DV90",
            ),
            (
                "https://dv.acme-v02.api.pki.goog/directory",
                "dv.acme-v02.api.pki.goog-directory",
            ),
            ("https://localhost:14000/dir", "localhost:14000-dir"),
            ("https://127.0.0.1:14000/dir", "127.0.0.1:14000-dir"),
            ("https://ca.example/", "ca.example"),
            ("https://ca.example/a/b/?x=1", "ca.example-a-b"),
            ("example.com/dir", "-example.com-dir"),
        ];
        for (url, want) in cases {
            assert_eq!(issuer_key(url), want, "issuer_key({url:?})");
        }
        assert_eq!(
            safe(&issuer_key("https://127.0.0.1:14000/dir")),
            "127.0.0.1-14000-dir"
        );
    }

    #[test]
    fn layout() {
        let le = "acme-v02.api.letsencrypt.org-directory";
        assert_eq!(
            site_cert(le, "example.com"),
            "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt"
        );
        assert_eq!(
            site_private_key(le, "*.example.com"),
            "certificates/acme-v02.api.letsencrypt.org-directory/wildcard_.example.com/wildcard_.example.com.key"
        );
        assert_eq!(
            user_reg(le, "me@example.com"),
            "acme/acme-v02.api.letsencrypt.org-directory/users/me@example.com/me.json"
        );
        assert_eq!(
            user_private_key("acme.zerossl.com-v2-DV90", ""),
            "acme/acme.zerossl.com-v2-dv90/users/default/default.key"
        );
        assert_eq!(
            challenge_token("localhost:14000-dir", "a.test"),
            "acme/localhost-14000-dir/challenge_tokens/a.test.json"
        );
        assert_eq!(lock_issue_cert("example.com"), "issue_cert_example.com");
        assert_eq!(challenge_key("127.0.0.1", true), "1.0.0.127.in-addr.arpa");
        assert_eq!(challenge_key("127.0.0.1", false), "127.0.0.1");
        assert_eq!(
            reverse_dns_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
