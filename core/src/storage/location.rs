//! A storage named by one string, the same in every language: a folder, or the URL of a
//! database (`redis://`, `rediss://`, `postgres://`, `postgresql://`). The URL's query may carry
//! the storage's own options (key prefix, table names, …) beside the client's; they are taken
//! out before the URL reaches the client. A password in the URL is never printed: errors and
//! `Debug` show [`redacted`] text.

use std::sync::Arc;

use super::Storage;
use super::file::FileStorage;
use crate::error::{Error, Result};
use crate::fields::ConfigField;

/// Opens the storage `location` names. Opening connects to nothing: the first storage call
/// does, so a database that is down at start is an error of that call (retried as any).
pub fn open(location: &str) -> Result<Arc<dyn Storage>> {
    let location = location.trim();
    if location.is_empty() {
        return Err(Error::config(
            ConfigField::StorageLocation,
            "empty storage location",
        ));
    }
    let Some((scheme, _)) = location.split_once("://") else {
        return Ok(Arc::new(FileStorage::new(location)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        #[cfg(feature = "storage-redis")]
        "redis" | "rediss" => Ok(Arc::new(super::redis::RedisStorage::open(location)?)),
        #[cfg(feature = "storage-postgres")]
        "postgres" | "postgresql" => {
            Ok(Arc::new(super::postgres::PostgresStorage::open(location)?))
        }
        "file" => Ok(Arc::new(FileStorage::new(&location["file://".len()..]))),
        other => Err(Error::config(
            ConfigField::StorageLocation,
            format!(
                "unsupported storage URL scheme `{other}` (folders, {})",
                SCHEMES.join(", ")
            ),
        )),
    }
}

/// The URL schemes this build opens.
pub const SCHEMES: &[&str] = &[
    "file://",
    #[cfg(feature = "storage-redis")]
    "redis://",
    #[cfg(feature = "storage-redis")]
    "rediss://",
    #[cfg(feature = "storage-postgres")]
    "postgres://",
    #[cfg(feature = "storage-postgres")]
    "postgresql://",
];

/// `location` with any password (and any query value named like a secret) replaced by `***`.
pub fn redacted(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret(k) => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password") || (n.contains("key") && n != "key_prefix") || n.contains("secret")
}

/// A database URL split into the client's URL and this library's options (`ours`).
#[cfg(any(feature = "storage-redis", feature = "storage-postgres"))]
#[derive(Clone)]
pub(crate) struct DatabaseUrl {
    /// The URL for the client, without our options.
    pub client_url: String,
    /// Our options given, by name.
    pub options: std::collections::BTreeMap<String, String>,
    /// The whole location, redacted, for messages.
    pub shown: String,
}

#[cfg(any(feature = "storage-redis", feature = "storage-postgres"))]
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(any(feature = "storage-redis", feature = "storage-postgres"))]
impl DatabaseUrl {
    /// Parses `location`, taking out the query parameters named in `ours`.
    pub fn parse(location: &str, ours: &[&str]) -> Result<Self> {
        let shown = redacted(location);
        let mut url = url::Url::parse(location).map_err(|e| {
            Error::config(
                ConfigField::StorageLocation,
                format!("storage URL `{shown}`: {e}"),
            )
        })?;
        let mut options = std::collections::BTreeMap::new();
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            if ours.contains(&k.as_ref()) {
                if options.insert(k.to_string(), v.to_string()).is_some() {
                    return Err(Error::config(
                        ConfigField::StorageLocation,
                        format!("storage URL `{shown}`: `{k}` given twice"),
                    ));
                }
            } else {
                kept.push((k.into_owned(), v.into_owned()));
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        Ok(Self {
            client_url: url.to_string(),
            options,
            shown,
        })
    }

    /// A refusal naming the setting and showing the redacted URL.
    pub fn refuse(&self, why: impl std::fmt::Display) -> Error {
        Error::config(
            ConfigField::StorageLocation,
            format!("storage URL `{}`: {why}", self.shown),
        )
    }

    /// A yes/no option (`true`/`false`, `1`/`0`).
    pub fn flag(&self, name: &str) -> Result<bool> {
        match self.options.get(name).map(String::as_str) {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(v) => Err(self.refuse(format!("`{name}` must be true or false, not `{v}`"))),
        }
    }

    /// The PEM roots in the file option `name`, if given.
    pub fn roots_file(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(path) = self.options.get(name) else {
            return Ok(None);
        };
        let pem =
            std::fs::read(path).map_err(|e| self.refuse(format!("`{name}` `{path}`: {e}")))?;
        Ok(Some(pem))
    }
}

/// TLS settings for a database connection: the roots in `pem` (else the system's), no client
/// certificate.
#[cfg(any(feature = "storage-redis", feature = "storage-postgres"))]
pub(crate) fn tls_client_config(
    url: &DatabaseUrl,
    pem: Option<&[u8]>,
) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match pem {
        Some(pem) => {
            use rustls_pki_types::pem::PemObject;
            for c in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| url.refuse(format!("TLS roots: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| url.refuse(format!("TLS roots: {e}")))?;
            }
            if roots.is_empty() {
                return Err(url.refuse("TLS roots file holds no certificate"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn passwords_are_never_shown() {
        for (given, shown) in [
            ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
            ("rediss://u:pw@h", "rediss://u:***@h"),
            (
                "postgres://u:p%40w@h/db?sslmode=require",
                "postgres://u:***@h/db?sslmode=require",
            ),
            (
                "redis://h?encryption_key=abc&key_prefix=x",
                "redis://h?encryption_key=***&key_prefix=x",
            ),
            (
                "postgres://u@h/db?password=pw",
                "postgres://u@h/db?password=***",
            ),
            ("/var/lib/certmagic", "/var/lib/certmagic"),
        ] {
            assert_eq!(redacted(given), shown);
        }
        let e = open("redis://:pw@h:notaport").err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(!e.to_string().contains("pw@"), "{e}");
        let e = open("mongodb://u:pw@h").err().unwrap();
        assert!(e.to_string().contains("`mongodb`"), "{e}");
        assert!(open("  ").is_err());
    }

    #[cfg(any(feature = "storage-redis", feature = "storage-postgres"))]
    #[test]
    fn our_options_are_taken_out() {
        let u = DatabaseUrl::parse(
            "redis://h:1/2?key_prefix=a%2Fb&protocol=resp3",
            &["key_prefix"],
        )
        .unwrap();
        assert_eq!(u.client_url, "redis://h:1/2?protocol=resp3");
        assert_eq!(u.options["key_prefix"], "a/b");
        assert!(
            DatabaseUrl::parse("redis://h?key_prefix=a&key_prefix=b", &["key_prefix"]).is_err()
        );
    }
}
