//! ACME Renewal Information (RFC 9773): the renewal window a CA suggests for a certificate,
//! kept as Go CertMagic keeps it (acmez's `RenewalInfo` in the metadata's
//! `issuer_data.renewal_info`, with the time this client picked inside the window), so that
//! Caddy and this library sharing a storage agree on when to renew.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::ParsedExtension;

/// With a renewal window, the ratio rule gives way to it except in the last twentieth of the
/// lifetime (CertMagic's emergency rule under ARI).
pub(crate) const ARI_EMERGENCY_FRACTION: f64 = 1.0 / 20.0;

/// The renewal information of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalInfo {
    /// The suggested window (start, end); `None` when never fetched successfully (Go's zero
    /// window).
    pub window: Option<(OffsetDateTime, OffsetDateTime)>,
    /// A page explaining the window, if the CA gave one.
    pub explanation_url: Option<String>,
    /// The certificate's ARI identifier (`base64url(AKI).base64url(serial)`).
    pub unique_identifier: String,
    /// When to ask again (the CA's `Retry-After`).
    pub retry_after: Option<OffsetDateTime>,
    /// The time picked inside the window to renew at (`None`: Go's zero time).
    pub selected_time: Option<OffsetDateTime>,
}

/// The ARI identifier of a leaf certificate: its Authority Key Identifier's key id and its
/// serial (the DER integer's bytes, sign byte kept), each base64url without padding. `None`
/// when the certificate has no AKI key id.
pub fn certificate_id(leaf_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf_der).ok()?;
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0)
            }
            _ => None,
        })?;
    Some(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(aki),
        URL_SAFE_NO_PAD.encode(cert.tbs_certificate.raw_serial())
    ))
}

impl RenewalInfo {
    /// The information a CA answered for certificate `id` (the RFC 9773 body and its
    /// `Retry-After`), keeping `previous`'s selected time when the window did not change (so
    /// that renewal does not move with every refresh), else picking a new one.
    pub(crate) fn from_response(
        id: &str,
        body: &[u8],
        retry_after: Option<OffsetDateTime>,
        previous: Option<&RenewalInfo>,
    ) -> Result<Self, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let window = &v["suggestedWindow"];
        let start = parse_time(&window["start"]).ok_or("no suggestedWindow.start")?;
        let end = parse_time(&window["end"]).ok_or("no suggestedWindow.end")?;
        if end <= start {
            return Err(format!(
                "the window ends ({end}) before it starts ({start})"
            ));
        }
        let explanation_url = v["explanationURL"].as_str().map(str::to_string);
        let selected_time = match previous {
            Some(p) if p.window == Some((start, end)) && p.selected_time.is_some() => {
                p.selected_time
            }
            _ => Some(pick_time(start, end)),
        };
        Ok(Self {
            window: Some((start, end)),
            explanation_url,
            unique_identifier: id.to_string(),
            retry_after,
            selected_time,
        })
    }

    /// Reads the `renewal_info` object of a certificate's metadata. `None` for a shape that
    /// is not one, or Go's all-zero value (what acmez stores when the fetch failed).
    pub fn from_json(v: &Value) -> Option<Self> {
        let window = &v["suggestedWindow"];
        let window = match (parse_time(&window["start"]), parse_time(&window["end"])) {
            (Some(s), Some(e)) if e > s => Some((s, e)),
            _ => None,
        };
        let unique_identifier = v["_uniqueIdentifier"].as_str().unwrap_or("").to_string();
        if window.is_none() && unique_identifier.is_empty() {
            return None;
        }
        Some(Self {
            window,
            explanation_url: v["explanationURL"].as_str().map(str::to_string),
            unique_identifier,
            retry_after: parse_time(&v["_retryAfter"]),
            selected_time: parse_time(&v["_selectedTime"]),
        })
    }

    /// The `renewal_info` object as acmez writes it: fields in its order, Go's zero time for
    /// an unset window or selected time, `explanationURL`, `_uniqueIdentifier` and
    /// `_retryAfter` left out when unset.
    pub fn to_json(&self) -> Value {
        let (start, end) = self
            .window
            .map_or((None, None), |(s, e)| (Some(s), Some(e)));
        let mut v = json!({
            "suggestedWindow": { "start": go_time(start), "end": go_time(end) },
        });
        if let Some(u) = &self.explanation_url {
            v["explanationURL"] = json!(u);
        }
        if !self.unique_identifier.is_empty() {
            v["_uniqueIdentifier"] = json!(self.unique_identifier);
        }
        if let Some(r) = self.retry_after {
            v["_retryAfter"] = json!(go_time(Some(r)));
        }
        v["_selectedTime"] = json!(go_time(self.selected_time));
        v
    }

    /// Whether to ask the CA again: never asked with success, or past the `Retry-After`.
    pub(crate) fn needs_refresh(&self, now: OffsetDateTime) -> bool {
        self.window.is_none() || self.retry_after.is_none_or(|r| now > r)
    }

    /// Whether the certificate is due by its window: once `now` is within `check_interval` of
    /// the selected time (CertMagic's rule). A stored window without a selected time is due at
    /// once, as in CertMagic. `None` without a window (the ratio rule decides).
    pub(crate) fn due(
        &self,
        now: OffsetDateTime,
        check_interval: std::time::Duration,
    ) -> Option<bool> {
        self.window?;
        Some(match self.selected_time {
            Some(t) => now > t - check_interval,
            None => true,
        })
    }
}

/// A `Retry-After` value: seconds from now, or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<OffsetDateTime> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u32>() {
        return Some(OffsetDateTime::now_utc() + time::Duration::seconds(secs.into()));
    }
    OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()
}

/// A uniformly random whole second inside (start, end), as CertMagic picks.
fn pick_time(start: OffsetDateTime, end: OffsetDateTime) -> OffsetDateTime {
    let secs = (end - start).whole_seconds();
    if secs <= 1 {
        return start;
    }
    start + time::Duration::seconds(rand::rng().random_range(1..secs))
}

fn parse_time(v: &Value) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()?;
    // Go's zero time (year 1) means unset.
    (t.year() > 1).then_some(t)
}

/// A time as Go's `time.Time` marshals it (RFC 3339 with nanoseconds, trailing zeros cut),
/// and Go's zero time for `None`.
fn go_time(t: Option<OffsetDateTime>) -> String {
    match t {
        None => "0001-01-01T00:00:00Z".into(),
        Some(t) => t.format(&Rfc3339).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn certmagic_metadata_round_trips_field_for_field() {
        let stored = json!({
            "suggestedWindow": {"start": "2024-09-23T06:58:45.333333334Z", "end": "2024-09-25T06:58:45.333333334Z"},
            "_uniqueIdentifier": "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
            "_retryAfter": "2024-07-28T08:00:00-06:00",
            "_selectedTime": "2024-09-24T02:13:07.333333334Z"
        });
        let info = RenewalInfo::from_json(&stored).unwrap();
        assert_eq!(info.to_json(), stored);
        assert_eq!(
            info.selected_time,
            Some(t("2024-09-24T02:13:07.333333334Z"))
        );
        // acmez's value after a failed fetch: ignored.
        let zero = json!({"suggestedWindow": {"start": "0001-01-01T00:00:00Z", "end": "0001-01-01T00:00:00Z"}, "_selectedTime": "0001-01-01T00:00:00Z"});
        assert_eq!(RenewalInfo::from_json(&zero), None);
    }

    #[test]
    fn a_new_window_gets_a_time_inside_it_and_an_unchanged_one_keeps_it() {
        let body = br#"{"suggestedWindow": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}, "explanationURL": "https://ca.test/why"}"#;
        let a = RenewalInfo::from_response("id", body, None, None).unwrap();
        let (s, e) = a.window.unwrap();
        let picked = a.selected_time.unwrap();
        assert!(picked > s && picked < e, "{picked}");
        let again =
            RenewalInfo::from_response("id", body, Some(t("2030-01-01T06:00:00Z")), Some(&a))
                .unwrap();
        assert_eq!(again.selected_time, a.selected_time);
        assert_eq!(again.to_json()["_retryAfter"], "2030-01-01T06:00:00Z");
        assert_eq!(again.to_json()["explanationURL"], "https://ca.test/why");
        let moved = br#"{"suggestedWindow": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T01:00:00Z"}}"#;
        let now = RenewalInfo::from_response("id", moved, None, Some(&a)).unwrap();
        assert!(now.selected_time.unwrap() < t("2020-01-01T01:00:00Z"));
        assert_eq!(
            now.due(OffsetDateTime::now_utc(), std::time::Duration::ZERO),
            Some(true)
        );
        assert_eq!(
            a.due(
                OffsetDateTime::now_utc(),
                std::time::Duration::from_secs(600)
            ),
            Some(false)
        );
        for bad in [
            &br#"{"suggestedWindow": {"start": "2030-01-02T00:00:00Z", "end": "2030-01-01T00:00:00Z"}}"#[..],
            b"{}",
            b"<html>",
        ] {
            assert!(RenewalInfo::from_response("id", bad, None, None).is_err());
        }
    }
}
