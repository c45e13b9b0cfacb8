//! The DNS provider interface, shaped like Go's libdns: records are appended to and deleted
//! from a zone, with names relative to that zone. A provider only needs these two operations
//! for DNS-01; anything that can add and remove a TXT record can be one (a Rust type, or a C,
//! Python or Node callback through the bindings).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One DNS record, as exchanged with a [`DnsProvider`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// The owner name relative to the zone (`_acme-challenge.www`), `@` for the apex; never
    /// a fully-qualified name.
    pub name: String,
    /// The record type in upper case (`TXT`).
    #[serde(rename = "type")]
    pub record_type: String,
    /// The record data as presentation text without quotes (for TXT: the text itself).
    pub value: String,
    /// Time to live; zero lets the provider choose.
    #[serde(with = "secs")]
    pub ttl: Duration,
    /// The provider's own identifier of the record, when it has one (filled in by
    /// [`DnsProvider::append_records`] and handed back to [`DnsProvider::delete_records`] so
    /// that exactly this record is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl DnsRecord {
    /// A TXT record.
    pub fn txt(name: impl Into<String>, value: impl Into<String>, ttl: Duration) -> Self {
        Self {
            name: name.into(),
            record_type: "TXT".into(),
            value: value.into(),
            ttl,
            id: None,
        }
    }

    /// The fully-qualified owner name of this record in `zone` (with a trailing dot).
    pub fn fqdn(&self, zone: &str) -> String {
        absolute_name(&self.name, zone)
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// Adds and removes records in a DNS zone. Zones are fully-qualified with a trailing dot
/// (`example.com.`); record names are relative to the zone.
///
/// Both calls must leave other records alone: `example.com` and `*.example.com` are validated
/// through two TXT values at the same name, possibly at the same time, so appending adds a
/// value (never replaces the set) and deleting removes only the given values.
#[async_trait::async_trait]
pub trait DnsProvider: Send + Sync + fmt::Debug {
    /// Adds `records` to `zone` and returns them as created (with provider ids where the
    /// provider has them).
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>>;

    /// Removes `records` (as returned by [`DnsProvider::append_records`]) from `zone` and
    /// returns those that were removed. A record that is already gone is not an error.
    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>>;
}

/// Lower case, one trailing dot.
pub fn normalize_fqdn(name: &str) -> String {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    format!("{n}.")
}

/// `name` (fully-qualified) relative to `zone`: `_acme-challenge.www` for
/// `_acme-challenge.www.example.com.` in `example.com.`, `@` for the apex. Names outside the
/// zone come back fully-qualified without the trailing dot.
pub fn relative_name(fqdn: &str, zone: &str) -> String {
    let fqdn = normalize_fqdn(fqdn);
    let zone = normalize_fqdn(zone);
    if fqdn == zone {
        return "@".into();
    }
    match fqdn.strip_suffix(&format!(".{zone}")) {
        Some(rel) => rel.to_string(),
        None => fqdn.trim_end_matches('.').to_string(),
    }
}

/// The fully-qualified form (trailing dot) of `name` relative to `zone`.
pub fn absolute_name(name: &str, zone: &str) -> String {
    let zone = normalize_fqdn(zone);
    match name.trim() {
        "" | "@" => zone,
        n if n.ends_with('.') => normalize_fqdn(n),
        n => normalize_fqdn(&format!("{n}.{zone}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_relative_and_absolute() {
        assert_eq!(
            relative_name("_acme-challenge.www.Example.com", "example.com."),
            "_acme-challenge.www"
        );
        assert_eq!(relative_name("example.com.", "example.com"), "@");
        assert_eq!(relative_name("other.org.", "example.com."), "other.org");
        assert_eq!(
            relative_name("notexample.com.", "example.com."),
            "notexample.com"
        );
        assert_eq!(
            absolute_name("_acme-challenge", "example.com"),
            "_acme-challenge.example.com."
        );
        assert_eq!(absolute_name("@", "example.com."), "example.com.");
        assert_eq!(absolute_name("x.org.", "example.com."), "x.org.");
    }

    #[test]
    fn record_json_shape() {
        let r = DnsRecord::txt("_acme-challenge", "abc", Duration::from_secs(120));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"name": "_acme-challenge", "type": "TXT", "value": "abc", "ttl": 120})
        );
        let back: DnsRecord = serde_json::from_value(j).unwrap();
        assert_eq!(back, r);
    }
}
