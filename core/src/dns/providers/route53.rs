//! Amazon Route 53 (REST API 2013-04-01, XML, Signature Version 4): the hosted zone is found
//! through the paginated `GET /2013-04-01/hostedzone` (`IsTruncated`/`NextMarker`; public
//! zones preferred), the TXT set is read with `GET …/rrset?name=&type=TXT&maxitems=1` and
//! written whole with `POST …/rrset` (`UPSERT`, or `DELETE` of the exact set when the last
//! value goes), serialized per name in this process. Throttling (HTTP 400 `Throttling` or
//! `PriorRequestNotComplete`, or 429) is retried.
//!
//! JSON: `{"provider": "route53", "access_key_id": "…", "secret_access_key": "…",
//! "session_token": "…", "hosted_zone_id": "…", "region": "us-east-1"}` (`base_url`
//! overrides `https://route53.amazonaws.com`). Environment: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_HOSTED_ZONE_ID`.

use http::Method;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::http_api::{Api, Reply, encode};
use super::{NameLocks, Secret, env_any, env_required, quote_txt, unquote_txt};
use crate::dns::provider::{DnsProvider, DnsRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

const DEFAULT_BASE: &str = "https://route53.amazonaws.com";
const API: &str = "/2013-04-01";

/// Settings of [`Route53`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route53Config {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// A session token for temporary credentials.
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// The hosted zone id, to skip the lookup (and pick a private zone).
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    /// The signing region (Route 53 is global: `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// API base URL.
    #[serde(default)]
    pub base_url: Option<String>,
}

/// Edits Route 53 hosted zones.
pub struct Route53 {
    api: Api,
    base: String,
    host: String,
    access_key_id: String,
    secret: Secret,
    session_token: Option<Secret>,
    hosted_zone_id: Option<String>,
    region: String,
    locks: NameLocks,
}

impl std::fmt::Debug for Route53 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route53")
            .field("base", &self.base)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn throttled(r: &Reply) -> bool {
    if r.status == http::StatusCode::TOO_MANY_REQUESTS {
        return true;
    }
    r.status == http::StatusCode::BAD_REQUEST
        && matches!(
            xml_text(&String::from_utf8_lossy(&r.body), "Code").as_deref(),
            Some("Throttling" | "PriorRequestNotComplete")
        )
}

impl Route53 {
    /// Checks the settings.
    pub fn new(config: Route53Config) -> Result<Self> {
        if config.access_key_id.trim().is_empty() || config.secret_access_key.is_empty() {
            return Err(Error::config(
                ConfigField::DnsProvider,
                "route53: access_key_id and secret_access_key are required",
            ));
        }
        let base = config
            .base_url
            .unwrap_or_else(|| DEFAULT_BASE.into())
            .trim_end_matches('/')
            .to_string();
        let host = base
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
            .ok_or_else(|| {
                Error::config(
                    ConfigField::DnsProvider,
                    format!("route53: base_url `{base}` is not a URL"),
                )
            })?;
        Ok(Self {
            api: Api::new("route53")?.with_throttle_test(throttled),
            base,
            host,
            access_key_id: config.access_key_id.trim().to_string(),
            secret: config.secret_access_key,
            session_token: config.session_token.filter(|t| !t.is_empty()),
            hosted_zone_id: config
                .hosted_zone_id
                .map(|z| z.trim_start_matches("/hostedzone/").to_string()),
            region: config.region.unwrap_or_else(|| "us-east-1".into()),
            locks: Default::default(),
        })
    }

    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
    /// `AWS_HOSTED_ZONE_ID`.
    pub fn from_env() -> Result<Self> {
        Self::new(Route53Config {
            access_key_id: env_required("route53", &["AWS_ACCESS_KEY_ID"])?,
            secret_access_key: env_required("route53", &["AWS_SECRET_ACCESS_KEY"])?.into(),
            session_token: env_any(&["AWS_SESSION_TOKEN"]).map(Secret::from),
            hosted_zone_id: env_any(&["AWS_HOSTED_ZONE_ID"]),
            region: env_any(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            base_url: None,
        })
    }

    /// A signed request; `query` pairs are encoded and sorted here.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<String> {
        let mut pairs: Vec<(String, String)> =
            query.iter().map(|(k, v)| (encode(k), encode(v))).collect();
        pairs.sort();
        let query_string = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let payload = body.unwrap_or_default();
        let now = time::OffsetDateTime::now_utc();
        let mut headers = sign(&SigningInput {
            method: method.as_str(),
            host: &self.host,
            path,
            query: &query_string,
            payload: payload.as_bytes(),
            access_key_id: &self.access_key_id,
            secret: self.secret.expose(),
            session_token: self.session_token.as_ref().map(Secret::expose),
            region: &self.region,
            service: "route53",
            now,
        });
        headers.retain(|(k, _)| *k != "host");
        let url = if query_string.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query_string}", self.base)
        };
        let body = (!payload.is_empty()).then(|| ("text/xml", payload.into_bytes()));
        let reply = self.api.send(method.clone(), &url, &headers, body).await?;
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        if !reply.status.is_success() {
            let code = xml_text(&text, "Code").unwrap_or_default();
            let message = xml_text(&text, "Message").unwrap_or_else(|| reply.text());
            return Err(self.api.error(
                ErrorKind::Challenge,
                format!(
                    "{method} {path} answered {}: {code}: {message}",
                    reply.status
                ),
            ));
        }
        Ok(text)
    }

    async fn zone_id(&self, zone: &str) -> Result<String> {
        if let Some(id) = &self.hosted_zone_id {
            return Ok(id.clone());
        }
        let want = zone.to_ascii_lowercase();
        let mut marker: Option<String> = None;
        let mut private = None;
        loop {
            let mut q = vec![("maxitems", "100")];
            if let Some(m) = &marker {
                q.push(("marker", m));
            }
            let text = self
                .call(Method::GET, &format!("{API}/hostedzone"), &q, None)
                .await?;
            for z in xml_blocks(&text, "HostedZone") {
                let name = xml_text(z, "Name").unwrap_or_default().to_ascii_lowercase();
                if name.trim_end_matches('.') != want.trim_end_matches('.') {
                    continue;
                }
                let id = xml_text(z, "Id")
                    .unwrap_or_default()
                    .trim_start_matches("/hostedzone/")
                    .to_string();
                if xml_text(z, "PrivateZone").as_deref() == Some("true") {
                    private.get_or_insert(id);
                } else {
                    return Ok(id);
                }
            }
            if xml_text(&text, "IsTruncated").as_deref() != Some("true") {
                break;
            }
            marker = xml_text(&text, "NextMarker");
            if marker.is_none() {
                break;
            }
        }
        private.ok_or_else(|| {
            Error::new(
                ErrorKind::Challenge,
                format!("route53: no hosted zone `{zone}` for these credentials"),
            )
        })
    }

    /// The TXT values and TTL at `fqdn`.
    async fn current(&self, zone_id: &str, fqdn: &str) -> Result<(Vec<String>, Option<u64>)> {
        let path = format!("{API}/hostedzone/{zone_id}/rrset");
        let text = self
            .call(
                Method::GET,
                &path,
                &[("name", fqdn), ("type", "TXT"), ("maxitems", "1")],
                None,
            )
            .await?;
        for set in xml_blocks(&text, "ResourceRecordSet") {
            let name = xml_text(set, "Name").unwrap_or_default();
            if name.eq_ignore_ascii_case(fqdn) && xml_text(set, "Type").as_deref() == Some("TXT") {
                let values = xml_blocks(set, "Value")
                    .into_iter()
                    .map(|v| unquote_txt(&unescape(v)))
                    .collect();
                let ttl = xml_text(set, "TTL").and_then(|t| t.parse().ok());
                return Ok((values, ttl));
            }
        }
        Ok((Vec::new(), None))
    }

    async fn change(
        &self,
        zone_id: &str,
        action: &str,
        fqdn: &str,
        ttl: u64,
        values: &[String],
    ) -> Result<()> {
        let records: String = values
            .iter()
            .map(|v| {
                format!(
                    "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                    escape(&quote_txt(v))
                )
            })
            .collect();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeBatch><Comment>ACME DNS-01 challenge</Comment><Changes><Change><Action>{action}</Action><ResourceRecordSet><Name>{}</Name><Type>TXT</Type><TTL>{ttl}</TTL><ResourceRecords>{records}</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>",
            escape(fqdn)
        );
        self.call(
            Method::POST,
            &format!("{API}/hostedzone/{zone_id}/rrset"),
            &[],
            Some(body),
        )
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl DnsProvider for Route53 {
    async fn append_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let zone_id = self.zone_id(zone).await?;
        for r in records {
            let fqdn = r.fqdn(zone);
            let _held = self.locks.hold(&fqdn).await;
            let (mut values, _) = self.current(&zone_id, &fqdn).await?;
            if !values.contains(&r.value) {
                values.push(r.value.clone());
            }
            self.change(&zone_id, "UPSERT", &fqdn, r.ttl.as_secs().max(1), &values)
                .await?;
        }
        Ok(records.to_vec())
    }

    async fn delete_records(&self, zone: &str, records: &[DnsRecord]) -> Result<Vec<DnsRecord>> {
        let zone_id = self.zone_id(zone).await?;
        let mut deleted = Vec::new();
        for r in records {
            let fqdn = r.fqdn(zone);
            let _held = self.locks.hold(&fqdn).await;
            let (values, ttl) = self.current(&zone_id, &fqdn).await?;
            if !values.contains(&r.value) {
                continue;
            }
            let ttl = ttl.unwrap_or(r.ttl.as_secs()).max(1);
            let rest: Vec<String> = values.iter().filter(|v| *v != &r.value).cloned().collect();
            if rest.is_empty() {
                // DELETE must name the set exactly as it is.
                self.change(&zone_id, "DELETE", &fqdn, ttl, &values).await?;
            } else {
                self.change(&zone_id, "UPSERT", &fqdn, ttl, &rest).await?;
            }
            deleted.push(r.clone());
        }
        Ok(deleted)
    }
}

/// What Signature Version 4 signs.
pub(crate) struct SigningInput<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// The path, already URI-encoded.
    pub path: &'a str,
    /// The canonical query string (encoded, sorted).
    pub query: &'a str,
    pub payload: &'a [u8],
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    pub now: time::OffsetDateTime,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&key, data.as_bytes())
        .as_ref()
        .to_vec()
}

/// The headers of an AWS Signature Version 4 request (`host`, `x-amz-date`, the session token
/// if any, and `authorization`).
///
/// Ours rather than AWS's `aws-sigv4` crate, measured for issue 21 (1.6.6): a stripped, fat-LTO
/// probe library that signs one Route 53 request with it is 0.23 MB larger than an empty one;
/// it brings 13 crates we do not ship (itself, `aws-credential-types`, five `aws-smithy-*` of
/// which one is a proc macro, `base64-simd` with two helpers, `bytes-utils`, `hex`, and a second
/// SHA-2 in `sha2` 0.11) and needs Rust 1.94.1 where we promise 1.88. This function parses nothing from the network: it hashes and MACs (aws-lc, as
/// everywhere) requests we build ourselves, and AWS's published test suite checks it below.
pub(crate) fn sign(i: &SigningInput<'_>) -> Vec<(&'static str, String)> {
    let date = format!(
        "{:04}{:02}{:02}",
        i.now.year(),
        u8::from(i.now.month()),
        i.now.day()
    );
    let amz_date = format!(
        "{date}T{:02}{:02}{:02}Z",
        i.now.hour(),
        i.now.minute(),
        i.now.second()
    );
    let mut headers: Vec<(&'static str, String)> = vec![
        ("host", i.host.to_string()),
        ("x-amz-date", amz_date.clone()),
    ];
    if let Some(t) = i.session_token {
        headers.push(("x-amz-security-token", t.to_string()));
    }
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        i.method,
        i.path,
        i.query,
        hex(&Sha256::digest(i.payload))
    );
    let scope = format!("{date}/{}/{}/aws4_request", i.region, i.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{}", i.secret).as_bytes(), &date);
    let k_region = hmac(&k_date, i.region);
    let k_service = hmac(&k_region, i.service);
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex(&hmac(&k_signing, &to_sign));
    headers.push((
        "authorization",
        format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}", i.access_key_id),
    ));
    headers
}

/// The inner texts of every `<tag>…</tag>` (not nested in itself).
fn xml_blocks<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

fn xml_text(doc: &str, tag: &str) -> Option<String> {
    xml_blocks(doc, tag).first().map(|t| unescape(t.trim()))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla` case of AWS's published Signature Version 4 test suite.
    #[test]
    fn sigv4_matches_aws_test_vector() {
        let now = time::macros::datetime!(2015-08-30 12:36:00 UTC);
        let h = sign(&SigningInput {
            method: "GET",
            host: "example.amazonaws.com",
            path: "/",
            query: "",
            payload: b"",
            access_key_id: "AKIDEXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
            region: "us-east-1",
            service: "service",
            now,
        });
        let auth = &h.iter().find(|(k, _)| *k == "authorization").unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// Two more cases of the same suite: a session token (signed as a header) and a POST
    /// with a query string, the shapes of Route 53's calls.
    #[test]
    fn sigv4_matches_aws_test_vectors_with_token_and_query() {
        let now = time::macros::datetime!(2015-08-30 12:36:00 UTC);
        let input = |method, query, session_token| SigningInput {
            method,
            host: "example.amazonaws.com",
            path: "/",
            query,
            payload: b"",
            access_key_id: "AKIDEXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token,
            region: "us-east-1",
            service: "service",
            now,
        };
        let auth = |h: Vec<(&'static str, String)>| {
            h.into_iter()
                .find(|(k, _)| *k == "authorization")
                .unwrap()
                .1
        };
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let h = sign(&input("GET", "", Some(token)));
        assert!(h.contains(&("x-amz-security-token", token.to_string())));
        assert_eq!(
            auth(h),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        );
        assert_eq!(
            auth(sign(&input("POST", "Param1=value1", None))),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
        );
    }

    #[test]
    fn xml_helpers() {
        let doc = "<A><HostedZone><Id>/hostedzone/Z1</Id><Name>a.com.</Name></HostedZone><HostedZone><Id>Z2</Id></HostedZone><IsTruncated>false</IsTruncated></A>";
        assert_eq!(xml_blocks(doc, "HostedZone").len(), 2);
        assert_eq!(xml_text(doc, "Id").as_deref(), Some("/hostedzone/Z1"));
        assert_eq!(unescape(&escape("\"a&b\"")), "\"a&b\"");
    }
}
