//! Subject names: normalisation (IDNA to punycode, lower case, canonical IP text) and the rules
//! for which names can have a certificate (Go CertMagic's `SubjectQualifiesForCert`).

use std::net::IpAddr;

use crate::error::{Error, ErrorKind, Result};

/// A name a certificate can be obtained for, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A DNS name (punycode, lower case), possibly `*.`-prefixed.
    Dns(String),
    /// An IP address (RFC 8738).
    Ip(IpAddr),
}

impl Subject {
    /// Normalises and checks a name given by a user.
    pub fn parse(input: &str) -> Result<Self> {
        let trimmed = input.trim();
        let bare = trimmed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(trimmed);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        if trimmed.is_empty() {
            return Err(invalid(input, "empty name"));
        }
        if trimmed.starts_with('.') || trimmed.ends_with('.') {
            return Err(invalid(input, "leading or trailing dot"));
        }
        if let Some(bad) = trimmed
            .chars()
            .find(|c| FORBIDDEN.contains(*c) || c.is_control())
        {
            return Err(invalid(input, &format!("forbidden character {bad:?}")));
        }
        let (wildcard, rest) = match trimmed.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        if rest.contains('*') {
            return Err(invalid(
                input,
                "`*` is only allowed as the whole left-most label",
            ));
        }
        let ascii = idna::domain_to_ascii(rest)
            .map_err(|e| invalid(input, &format!("not a valid domain name: {e}")))?;
        let bad_label = |l: &str| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if ascii.is_empty() || ascii.split('.').any(bad_label) || ascii.len() > 253 {
            return Err(invalid(input, "not a valid domain name"));
        }
        if wildcard && !ascii.contains('.') {
            return Err(invalid(
                input,
                "a wildcard needs at least two labels after `*.`",
            ));
        }
        Ok(Self::Dns(if wildcard {
            format!("*.{ascii}")
        } else {
            ascii
        }))
    }

    /// True for `*.`-prefixed names.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Self::Dns(d) if d.starts_with("*."))
    }

    /// The canonical text, as used for storage keys, locks and the cache.
    pub fn as_string(&self) -> String {
        match self {
            Self::Dns(d) => d.clone(),
            Self::Ip(ip) => ip.to_string(),
        }
    }

    /// The ACME identifier to order.
    pub(crate) fn acme_identifier(&self) -> instant_acme::Identifier {
        match self {
            Self::Dns(d) => instant_acme::Identifier::Dns(d.clone()),
            Self::Ip(ip) => instant_acme::Identifier::Ip(*ip),
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(d) => f.write_str(d),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

fn invalid(input: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidName,
        format!("`{input}` cannot have a certificate: {why}"),
    )
}

/// Characters no certificate name may contain (Go CertMagic's list).
const FORBIDDEN: &str = "()[]{}<> \t\n\"\\!@#$%^&|;'+=";

/// The one canonical text of a name a peer sent (a TLS server name, an HTTP `Host`): lower case,
/// without a trailing dot, IDNA to punycode, IP addresses in their standard text. Refused
/// (`InvalidName`) unless it is a name a certificate could be for, without a wildcard, and
/// without surrounding blanks: every variant of a name must become the same key for caches,
/// backoff, decisions and storage, and nothing else may reach them.
pub fn canonical_server_name(input: &str) -> Result<String> {
    if input.trim() != input {
        return Err(invalid(input, "blank space around the name"));
    }
    let bare = input.strip_suffix('.').unwrap_or(input);
    if bare.contains('*') {
        return Err(invalid(input, "a wildcard is not a server name"));
    }
    Subject::parse(bare).map(|s| s.as_string())
}

/// Host part of an HTTP `Host` header or a URL authority: port and IPv6 brackets removed,
/// lower-cased.
pub(crate) fn host_only(host: &str) -> String {
    let h = host.trim();
    let h = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if h.matches(':').count() == 1 {
        h.split(':').next().unwrap_or(h)
    } else {
        h
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            Subject::parse("Example.COM").unwrap().as_string(),
            "example.com"
        );
        assert_eq!(
            Subject::parse(" bücher.de ").unwrap().as_string(),
            "xn--bcher-kva.de"
        );
        assert_eq!(
            Subject::parse("*.Example.com").unwrap().as_string(),
            "*.example.com"
        );
        assert!(Subject::parse("*.example.com").unwrap().is_wildcard());
        assert_eq!(
            Subject::parse("127.0.0.1").unwrap(),
            Subject::Ip("127.0.0.1".parse().unwrap())
        );
        assert_eq!(Subject::parse("[::1]").unwrap().as_string(), "::1");
        assert_eq!(
            Subject::parse("2001:DB8::1").unwrap().as_string(),
            "2001:db8::1"
        );
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        for bad in [
            "",
            " ",
            ".example.com",
            "example.com.",
            "a b.com",
            "a*.example.com",
            "*.*.example.com",
            "*",
            "*.com",
            "ex@mple.com",
            "a..b",
            "foo;rm",
            "a/b",
            "-",
            "-a.test",
            "a-.test",
        ] {
            let err = Subject::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{bad:?}");
            assert!(
                err.message().contains("cannot have a certificate"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn server_names_have_one_form() {
        for (variant, canonical) in [
            ("A.Example.TEST", "a.example.test"),
            ("a.example.test.", "a.example.test"),
            ("a\u{00AD}.example.test", "a.example.test"),
            ("bücher.test", "xn--bcher-kva.test"),
            ("[::1]", "::1"),
            ("2001:db8:0::1", "2001:db8::1"),
            ("2001:DB8::1", "2001:db8::1"),
            ("127.0.0.1", "127.0.0.1"),
        ] {
            assert_eq!(
                canonical_server_name(variant).unwrap(),
                canonical,
                "{variant:?}"
            );
        }
        for bad in [
            "a.com ", " a.com", "..", "../x", "a..b", "*.a.test", "", ".", "a/b", "a.test..",
        ] {
            assert_eq!(
                canonical_server_name(bad).unwrap_err().kind(),
                ErrorKind::InvalidName,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn host_header_forms() {
        assert_eq!(host_only("Example.com:8080"), "example.com");
        assert_eq!(host_only("[::1]:443"), "::1");
        assert_eq!(host_only("::1"), "::1");
        assert_eq!(host_only("a.test"), "a.test");
    }
}
