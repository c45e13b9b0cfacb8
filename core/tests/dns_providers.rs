//! The HTTP API DNS providers (Cloudflare, DigitalOcean, Hetzner DNS, Gandi LiveDNS and
//! Amazon Route 53) against local doubles of their vendors' APIs. This is the one place where
//! those APIs are mocked, so each double follows its vendor's documented shapes: paths, auth
//! headers, envelopes, pagination, status codes and error bodies. Each keeps its zone in
//! memory and logs every request, so the tests assert on what the vendor would hold and on
//! what it was sent, not only on the provider returning `Ok`.
//!
//! For every provider: the two TXT values of a DNS-01 order for `example.com` and
//! `*.example.com` at one name (added at once, as the solver does, then removed one at a
//! time); credentials the vendor refuses; a deletion without a record id that must walk the
//! vendor's pagination (Gandi's RRset endpoint has none); and a rate limit that is waited out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use certmagic::dns::providers::cloudflare::{Cloudflare, CloudflareConfig};
use certmagic::dns::providers::digitalocean::{DigitalOcean, DigitalOceanConfig};
use certmagic::dns::providers::gandi::{Gandi, GandiConfig};
use certmagic::dns::providers::hetzner::{Hetzner, HetznerConfig};
use certmagic::dns::providers::route53::{Route53, Route53Config};
use certmagic::{DnsProvider, DnsRecord, ErrorKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ZONE: &str = "example.com.";
const NAME: &str = "_acme-challenge";
const FQDN: &str = "_acme-challenge.example.com";
const TTL: Duration = Duration::from_secs(120);
/// The key authorization digests of one order for `example.com` and `*.example.com`: both
/// are TXT values at `_acme-challenge.example.com`.
const APEX_VALUE: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
const WILDCARD_VALUE: &str = "Wd5sMkAQGLdo6uBB1CHnEKqyP3Jpy0RzWZ6Q5jbkDj8";

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(s: &Shared<T>) -> MutexGuard<'_, T> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

// ------------------------------------------------------------------------------------------
// What every double shares: the request log, replies, query strings, the generic scenarios.
// ------------------------------------------------------------------------------------------

/// One request as a double received it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    raw_query: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    async fn read(req: Request) -> Self {
        let (parts, body) = req.into_parts();
        let body = to_bytes(body, usize::MAX)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let raw_query = parts.uri.query().unwrap_or_default().to_string();
        Self {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parse_query(&raw_query),
            raw_query,
            headers: parts.headers,
            body,
        }
    }

    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The decoded path segments after `prefix`, if the path starts with it.
    fn segments(&self, prefix: &str) -> Option<Vec<String>> {
        let rest = self.path.strip_prefix(prefix)?;
        Some(rest.split('/').map(pct_decode).collect())
    }
}

fn respond(
    status: StatusCode,
    headers: &[(&str, String)],
    content_type: &str,
    body: String,
) -> Response {
    let mut b = Response::builder().status(status);
    if !body.is_empty() {
        b = b.header(header::CONTENT_TYPE, content_type);
    }
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(Body::from(body)).expect("a valid response")
}

fn json_reply(status: StatusCode, value: Value) -> Response {
    respond(status, &[], "application/json", value.to_string())
}

fn empty_reply(status: StatusCode) -> Response {
    respond(status, &[], "", String::new())
}

/// Starts `router` on a free loopback port and returns the port.
async fn serve(router: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    tokio::spawn(async move { axum::serve(listener, router).await.expect("mock API") });
    port
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 && i + 2 <= b.len() - 1 {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 percent-encoding (unreserved characters kept), as AWS canonicalizes queries.
fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn values(records: &[DnsRecord]) -> Vec<&str> {
    records.iter().map(|r| r.value.as_str()).collect()
}

fn page_param(r: &Seen) -> usize {
    r.q("page").and_then(|p| p.parse().ok()).unwrap_or(1)
}

/// DNS-01 for `example.com` and `*.example.com`: the solver adds each authorization's
/// record on its own, both at once, at the same name; then removes them one at a time with
/// the records `append_records` returned. `stored` reads the TXT values the double holds at
/// `_acme-challenge.example.com` (unquoted); `check_added` looks at the double while both
/// are there.
async fn round_trip(
    provider: &dyn DnsProvider,
    stored: impl Fn() -> Vec<String>,
    check_added: impl FnOnce(&DnsRecord, &DnsRecord),
) {
    let apex = DnsRecord::txt(NAME, APEX_VALUE, TTL);
    let wildcard = DnsRecord::txt(NAME, WILDCARD_VALUE, TTL);
    let (a, w) = tokio::join!(
        provider.append_records(ZONE, std::slice::from_ref(&apex)),
        provider.append_records(ZONE, std::slice::from_ref(&wildcard)),
    );
    let a = a.expect("append the example.com value");
    let w = w.expect("append the *.example.com value");
    assert_eq!(values(&a), [APEX_VALUE]);
    assert_eq!(values(&w), [WILDCARD_VALUE]);
    assert!(a.iter().chain(&w).all(|r| r.name == NAME && r.record_type == "TXT"));
    assert_eq!(
        sorted(stored()),
        sorted(vec![APEX_VALUE.into(), WILDCARD_VALUE.into()]),
        "both values stored side by side"
    );
    check_added(&a[0], &w[0]);

    let gone = provider
        .delete_records(ZONE, &a)
        .await
        .expect("delete the example.com value");
    assert_eq!(values(&gone), [APEX_VALUE]);
    assert_eq!(stored(), [WILDCARD_VALUE], "the other value stays");

    let gone = provider
        .delete_records(ZONE, &w)
        .await
        .expect("delete the *.example.com value");
    assert_eq!(values(&gone), [WILDCARD_VALUE]);
    assert!(stored().is_empty(), "left behind: {:?}", stored());

    // A record already gone is not an error, and is not reported as removed.
    let again = provider
        .delete_records(ZONE, &w)
        .await
        .expect("deleting a record already gone");
    assert!(again.is_empty(), "{again:?}");
}

/// Refused credentials: a configuration error naming the provider, saying so, quoting the
/// vendor's reason, and never showing a secret.
fn assert_refused(err: &certmagic::Error, provider: &str, vendor_says: &str, secrets: &[&str]) {
    let shown = err.to_string();
    let debug = format!("{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{shown}");
    assert!(shown.contains("refused the credentials"), "{shown}");
    assert!(shown.contains(provider), "{shown}");
    assert!(shown.contains(vendor_says), "the vendor's reason: {shown}");
    for secret in secrets {
        assert!(!shown.contains(secret), "secret in the message: {shown}");
        assert!(!debug.contains(secret), "secret in Debug: {debug}");
    }
}

/// `Retry-After: 1` (or the vendor's equivalent) was waited for each rate-limited answer.
fn assert_waited(started: Instant, at_least: Duration) {
    let waited = started.elapsed();
    assert!(
        waited >= at_least - Duration::from_millis(50),
        "retried after {waited:?}, before the {at_least:?} the API asked for"
    );
}

// ------------------------------------------------------------------------------------------
// Cloudflare API v4: `{success, errors, messages, result, result_info}` envelopes, zones by
// name, records created by POST and deleted by id, record search paginated by page/per_page.
// ------------------------------------------------------------------------------------------

const CF_TOKEN: &str = "cf-token-Kq3v9ZpR2mN8xL5w";
const CF_ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";

#[derive(Debug, Clone)]
struct CfRecord {
    id: String,
    name: String,
    kind: String,
    content: String,
    ttl: u64,
}

#[derive(Debug, Default)]
struct CfState {
    records: Vec<CfRecord>,
    seen: Vec<Seen>,
    /// Requests still to answer with 429.
    throttle: usize,
    next_id: u128,
}

impl CfState {
    fn add(&mut self, name: &str, kind: &str, content: &str, ttl: u64) -> CfRecord {
        self.next_id += 1;
        let r = CfRecord {
            id: format!("{:032x}", 0x372e_6795_4025_e0ba_6aaa_6d58_6b9e_0000 + self.next_id),
            name: name.into(),
            kind: kind.into(),
            content: content.into(),
            ttl,
        };
        self.records.push(r.clone());
        r
    }
}

fn cf_ok(result: Value) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": result})
}

fn cf_error(code: u32, message: &str) -> Value {
    json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null})
}

fn cf_record(r: &CfRecord) -> Value {
    json!({
        "id": r.id, "zone_id": CF_ZONE_ID, "zone_name": "example.com", "name": r.name,
        "type": r.kind, "content": r.content, "proxiable": false, "proxied": false,
        "ttl": r.ttl, "locked": false, "meta": {"auto_added": false, "source": "primary"},
        "comment": null, "tags": [],
        "created_on": "2024-05-01T10:00:00.000000Z", "modified_on": "2024-05-01T10:00:00.000000Z",
    })
}

async fn cloudflare_api(State(state): State<Shared<CfState>>, req: Request) -> Response {
    let req = Seen::read(req).await;
    let mut s = lock(&state);
    s.seen.push(req.clone());
    if s.throttle > 0 {
        s.throttle -= 1;
        return respond(
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", "1".into())],
            "application/json",
            cf_error(971, "Please wait and consider throttling your request speed").to_string(),
        );
    }
    if req.header("authorization") != Some(format!("Bearer {CF_TOKEN}").as_str()) {
        return json_reply(
            StatusCode::FORBIDDEN,
            cf_error(10000, "Authentication error"),
        );
    }
    let no_route = || {
        json_reply(
            StatusCode::NOT_FOUND,
            cf_error(7000, "No route for that URI"),
        )
    };
    let Some(segs) = req.segments("/client/v4/") else {
        return no_route();
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.clone(), segs.as_slice()) {
        (Method::GET, ["zones"]) => {
            let zones: Vec<Value> = if req
                .q("name")
                .is_none_or(|n| n.eq_ignore_ascii_case("example.com"))
            {
                vec![json!({
                    "id": CF_ZONE_ID, "name": "example.com", "status": "active", "paused": false,
                    "type": "full", "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
                })]
            } else {
                Vec::new()
            };
            let n = zones.len();
            let mut body = cf_ok(Value::Array(zones));
            body["result_info"] =
                json!({"page": 1, "per_page": 20, "count": n, "total_count": n, "total_pages": 1});
            json_reply(StatusCode::OK, body)
        }
        (_, ["zones", zone, ..]) if *zone != CF_ZONE_ID => json_reply(
            StatusCode::NOT_FOUND,
            cf_error(
                7003,
                &format!(
                    "Could not route to /zones/{zone}, perhaps your object identifier is invalid?"
                ),
            ),
        ),
        (Method::GET, ["zones", _, "dns_records"]) => {
            let page = page_param(&req).max(1);
            let per_page: usize = req
                .q("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(100)
                .clamp(5, 5_000_000);
            let matching: Vec<&CfRecord> = s
                .records
                .iter()
                .filter(|r| req.q("type").is_none_or(|t| t == r.kind))
                .filter(|r| req.q("name").is_none_or(|n| n.eq_ignore_ascii_case(&r.name)))
                .collect();
            let total = matching.len();
            let result: Vec<Value> = matching
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|r| cf_record(r))
                .collect();
            let count = result.len();
            let mut body = cf_ok(Value::Array(result));
            body["result_info"] = json!({
                "page": page, "per_page": per_page, "count": count, "total_count": total,
                "total_pages": total.div_ceil(per_page),
            });
            json_reply(StatusCode::OK, body)
        }
        (Method::POST, ["zones", _, "dns_records"]) => {
            let b = req.json();
            let (Some(kind), Some(name), Some(content)) = (
                b["type"].as_str(),
                b["name"].as_str(),
                b["content"].as_str(),
            ) else {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    cf_error(9005, "Content for TXT record is invalid."),
                );
            };
            let ttl = b["ttl"].as_u64().unwrap_or(1);
            if ttl != 1 && !(60..=86400).contains(&ttl) {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    cf_error(
                        9021,
                        "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
                    ),
                );
            }
            // Cloudflare also takes a name relative to the zone and stores it fully qualified.
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let name = if name == "example.com" || name.ends_with(".example.com") {
                name
            } else {
                format!("{name}.example.com")
            };
            let r = s.add(&name, kind, content, ttl);
            json_reply(StatusCode::OK, cf_ok(cf_record(&r)))
        }
        (Method::DELETE, ["zones", _, "dns_records", id]) => {
            match s.records.iter().position(|r| r.id == *id) {
                Some(i) => {
                    s.records.remove(i);
                    json_reply(StatusCode::OK, cf_ok(json!({"id": id})))
                }
                None => json_reply(
                    StatusCode::NOT_FOUND,
                    cf_error(81044, "Record does not exist."),
                ),
            }
        }
        _ => no_route(),
    }
}

struct CfMock {
    state: Shared<CfState>,
    base: String,
}

impl CfMock {
    async fn start() -> Self {
        let state = Shared::<CfState>::default();
        let port = serve(
            Router::new()
                .fallback(cloudflare_api)
                .with_state(state.clone()),
        )
        .await;
        Self {
            state,
            base: format!("http://127.0.0.1:{port}/client/v4"),
        }
    }

    fn provider(&self, token: &str) -> Cloudflare {
        Cloudflare::new(CloudflareConfig {
            api_token: Some(token.into()),
            api_key: None,
            email: None,
            base_url: Some(self.base.clone()),
        })
        .expect("cloudflare settings")
    }

    fn txt(&self, name: &str) -> Vec<String> {
        lock(&self.state)
            .records
            .iter()
            .filter(|r| r.kind == "TXT" && r.name == name)
            .map(|r| r.content.clone())
            .collect()
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_round_trip() {
    let mock = CfMock::start().await;
    let cf = mock.provider(CF_TOKEN);
    round_trip(
        &cf,
        || mock.txt(FQDN),
        |a, w| {
            let s = lock(&mock.state);
            for (r, value) in [(a, APEX_VALUE), (w, WILDCARD_VALUE)] {
                let id = r.id.as_deref().expect("Cloudflare's record id returned");
                let stored = s.records.iter().find(|x| x.id == id).expect("id stored");
                assert_eq!(stored.content, value);
                assert_eq!(stored.ttl, 120);
            }
            let posts: Vec<Value> = s
                .seen
                .iter()
                .filter(|r| r.method == Method::POST)
                .map(Seen::json)
                .collect();
            assert_eq!(posts.len(), 2);
            for p in &posts {
                // The FQDN without the trailing dot, the TXT text unquoted.
                assert_eq!(p["name"], FQDN, "{p}");
                assert_eq!(p["type"], "TXT", "{p}");
                assert_eq!(p["ttl"], 120, "{p}");
            }
            assert!(
                s.seen
                    .iter()
                    .all(|r| r.path.starts_with("/client/v4/zones")),
                "every request under the API base"
            );
        },
    )
    .await;
    let seen = mock.seen();
    assert!(
        seen.iter()
            .filter(|r| r.method == Method::DELETE)
            .all(|r| r.path.starts_with(&format!("/client/v4/zones/{CF_ZONE_ID}/dns_records/"))),
        "deleted by id"
    );
    assert!(
        !seen
            .iter()
            .any(|r| r.method == Method::GET && r.path.ends_with("/dns_records")),
        "records with ids need no search"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_refused_token() {
    let mock = CfMock::start().await;
    let wrong = "cf-token-WRONG-7h2k";
    let err = mock
        .provider(wrong)
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect_err("a wrong token must fail");
    assert_refused(&err, "cloudflare", "Authentication error", &[wrong, CF_TOKEN]);
    assert_eq!(mock.seen().len(), 1, "refused credentials are not retried");
    assert!(mock.txt(FQDN).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_delete_without_id_searches_every_page() {
    let mock = CfMock::start().await;
    {
        let mut s = lock(&mock.state);
        // Leftovers at the same name fill the first page of 100.
        for i in 0..150 {
            s.add(FQDN, "TXT", &format!("stale-{i}"), 120);
        }
        // The same text at another name is not ours to delete.
        s.add("www.example.com", "TXT", APEX_VALUE, 300);
    }
    let cf = mock.provider(CF_TOKEN);
    let added = cf
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append");
    let without_id = DnsRecord::txt(NAME, APEX_VALUE, TTL);
    assert!(without_id.id.is_none());
    let gone = cf
        .delete_records(ZONE, &[without_id])
        .await
        .expect("delete found by search");
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].id, added[0].id, "the record on page 2 was found");

    let left = mock.txt(FQDN);
    assert_eq!(left.len(), 150);
    assert!(!left.iter().any(|v| v == APEX_VALUE));
    assert_eq!(mock.txt("www.example.com"), [APEX_VALUE]);

    let searches: Vec<Seen> = mock
        .seen()
        .into_iter()
        .filter(|r| r.method == Method::GET && r.path.ends_with("/dns_records"))
        .collect();
    assert_eq!(
        searches.iter().map(page_param).collect::<Vec<_>>(),
        [1, 2]
    );
    for r in &searches {
        assert_eq!(r.q("type"), Some("TXT"));
        assert_eq!(r.q("name"), Some(FQDN));
        assert_eq!(r.q("per_page"), Some("100"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_waits_out_rate_limit() {
    let mock = CfMock::start().await;
    lock(&mock.state).throttle = 2;
    let cf = mock.provider(CF_TOKEN);
    let started = Instant::now();
    cf.append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append after two 429s");
    assert_waited(started, Duration::from_secs(2));
    assert_eq!(mock.txt(FQDN), [APEX_VALUE]);
    let seen = mock.seen();
    // The zone lookup answered 429 twice, then the lookup and the POST went through.
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert!(
        seen[..3]
            .iter()
            .all(|r| r.method == Method::GET && r.path == "/client/v4/zones")
    );
    assert_eq!(seen[3].method, Method::POST);
}

// ------------------------------------------------------------------------------------------
// DigitalOcean API v2: `{domain_record}` on create (201), `{domain_records, links{pages},
// meta{total}}` on list (name filter fully qualified, next page as an absolute URL), 204 on
// delete, errors as `{id, message}`.
// ------------------------------------------------------------------------------------------

const DO_TOKEN: &str = "dop_v1_3c7e5f0a9b8d4c2e1f6a7b8c9d0e1f2a";

#[derive(Debug, Clone)]
struct DoRecord {
    id: u64,
    kind: String,
    name: String,
    data: String,
    ttl: u64,
}

impl DoRecord {
    fn fqdn(&self) -> String {
        if self.name == "@" {
            "example.com".into()
        } else {
            format!("{}.example.com", self.name)
        }
    }
}

#[derive(Debug, Default)]
struct DoState {
    records: Vec<DoRecord>,
    seen: Vec<Seen>,
    /// Requests still to answer with 429.
    throttle: usize,
    /// Send only the `ratelimit-*` headers with a 429, with the reset at the current second.
    reset_header_only: bool,
    next_id: u64,
}

impl DoState {
    fn add(&mut self, name: &str, kind: &str, data: &str, ttl: u64) -> DoRecord {
        self.next_id += 1;
        let r = DoRecord {
            id: 3_352_896 + self.next_id,
            kind: kind.into(),
            name: name.into(),
            data: data.into(),
            ttl,
        };
        self.records.push(r.clone());
        r
    }
}

fn do_error(id: &str, message: &str) -> Value {
    json!({"id": id, "message": message})
}

fn do_record(r: &DoRecord) -> Value {
    json!({
        "id": r.id, "type": r.kind, "name": r.name, "data": r.data, "priority": null,
        "port": null, "ttl": r.ttl, "weight": null, "flags": null, "tag": null,
    })
}

async fn digitalocean_api(State(state): State<Shared<DoState>>, req: Request) -> Response {
    let req = Seen::read(req).await;
    let mut s = lock(&state);
    s.seen.push(req.clone());
    if s.throttle > 0 {
        s.throttle -= 1;
        let now = unix_now();
        let mut headers = vec![
            ("ratelimit-limit", "5000".to_string()),
            ("ratelimit-remaining", "0".to_string()),
        ];
        if s.reset_header_only {
            // The oldest request leaves the window within this second.
            headers.push(("ratelimit-reset", now.to_string()));
        } else {
            headers.push(("ratelimit-reset", (now + 1).to_string()));
            headers.push(("retry-after", "1".to_string()));
        }
        return respond(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            "application/json",
            do_error("too_many_requests", "API Rate limit exceeded.").to_string(),
        );
    }
    if req.header("authorization") != Some(format!("Bearer {DO_TOKEN}").as_str()) {
        return json_reply(
            StatusCode::UNAUTHORIZED,
            do_error("Unauthorized", "Unable to authenticate you"),
        );
    }
    let not_found = || {
        json_reply(
            StatusCode::NOT_FOUND,
            do_error(
                "not_found",
                "The resource you were accessing could not be found.",
            ),
        )
    };
    let Some(segs) = req.segments("/v2/domains/") else {
        return not_found();
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.clone(), segs.as_slice()) {
        (_, [domain, ..]) if *domain != "example.com" => not_found(),
        (Method::GET, [_, "records"]) => {
            let page = page_param(&req).max(1);
            let per_page: usize = req
                .q("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(20)
                .clamp(1, 200);
            // `name` is fully qualified; the records carry names relative to the domain.
            let matching: Vec<&DoRecord> = s
                .records
                .iter()
                .filter(|r| req.q("type").is_none_or(|t| t == r.kind))
                .filter(|r| req.q("name").is_none_or(|n| n.eq_ignore_ascii_case(&r.fqdn())))
                .collect();
            let total = matching.len();
            let last = total.div_ceil(per_page).max(1);
            let link = |p: usize| {
                let mut q = Vec::new();
                if let Some(n) = req.q("name") {
                    q.push(format!("name={}", pct_encode(n)));
                }
                q.push(format!("page={p}"));
                q.push(format!("per_page={per_page}"));
                if let Some(t) = req.q("type") {
                    q.push(format!("type={}", pct_encode(t)));
                }
                format!(
                    "https://api.digitalocean.com/v2/domains/example.com/records?{}",
                    q.join("&")
                )
            };
            let mut pages = serde_json::Map::new();
            if page > 1 {
                pages.insert("first".into(), link(1).into());
                pages.insert("prev".into(), link(page - 1).into());
            }
            if page < last {
                pages.insert("next".into(), link(page + 1).into());
                pages.insert("last".into(), link(last).into());
            }
            let links = if pages.is_empty() {
                json!({})
            } else {
                json!({"pages": pages})
            };
            let result: Vec<Value> = matching
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|r| do_record(r))
                .collect();
            json_reply(
                StatusCode::OK,
                json!({"domain_records": result, "links": links, "meta": {"total": total}}),
            )
        }
        (Method::POST, [_, "records"]) => {
            let b = req.json();
            let (Some(kind), Some(name), Some(data)) = (
                b["type"].as_str(),
                b["name"].as_str(),
                b["data"].as_str(),
            ) else {
                return json_reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    do_error("unprocessable_entity", "Name can't be blank"),
                );
            };
            let ttl = b["ttl"].as_u64().unwrap_or(1800);
            if ttl < 30 {
                return json_reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    do_error("unprocessable_entity", "TTL must be at least 30 seconds."),
                );
            }
            let r = s.add(name, kind, data, ttl);
            json_reply(StatusCode::CREATED, json!({"domain_record": do_record(&r)}))
        }
        (Method::DELETE, [_, "records", id]) => {
            match s.records.iter().position(|r| r.id.to_string() == *id) {
                Some(i) => {
                    s.records.remove(i);
                    empty_reply(StatusCode::NO_CONTENT)
                }
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

struct DoMock {
    state: Shared<DoState>,
    base: String,
}

impl DoMock {
    async fn start() -> Self {
        let state = Shared::<DoState>::default();
        let port = serve(
            Router::new()
                .fallback(digitalocean_api)
                .with_state(state.clone()),
        )
        .await;
        Self {
            state,
            base: format!("http://127.0.0.1:{port}/v2"),
        }
    }

    fn provider(&self, token: &str) -> DigitalOcean {
        DigitalOcean::new(DigitalOceanConfig {
            api_token: token.into(),
            base_url: Some(self.base.clone()),
        })
        .expect("digitalocean settings")
    }

    /// TXT data at a name relative to the domain.
    fn txt(&self, name: &str) -> Vec<String> {
        lock(&self.state)
            .records
            .iter()
            .filter(|r| r.kind == "TXT" && r.name == name)
            .map(|r| r.data.clone())
            .collect()
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn digitalocean_round_trip() {
    let mock = DoMock::start().await;
    let provider = mock.provider(DO_TOKEN);
    round_trip(
        &provider,
        || mock.txt(NAME),
        |a, w| {
            let s = lock(&mock.state);
            for (r, value) in [(a, APEX_VALUE), (w, WILDCARD_VALUE)] {
                let id = r.id.as_deref().expect("DigitalOcean's record id returned");
                let stored = s
                    .records
                    .iter()
                    .find(|x| x.id.to_string() == id)
                    .expect("id stored");
                assert_eq!(stored.data, value);
            }
            let posts: Vec<&Seen> = s.seen.iter().filter(|r| r.method == Method::POST).collect();
            assert_eq!(posts.len(), 2);
            for p in posts {
                assert_eq!(p.path, "/v2/domains/example.com/records");
                let b = p.json();
                // The name relative to the domain, the TXT text unquoted.
                assert_eq!(b["name"], NAME, "{b}");
                assert_eq!(b["type"], "TXT", "{b}");
                assert_eq!(b["ttl"], 120, "{b}");
                assert_eq!(p.header("content-type"), Some("application/json"));
            }
        },
    )
    .await;
    let deletes: Vec<Seen> = mock
        .seen()
        .into_iter()
        .filter(|r| r.method == Method::DELETE)
        .collect();
    assert_eq!(deletes.len(), 3, "two deletions and one of a record already gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn digitalocean_refused_token() {
    let mock = DoMock::start().await;
    let wrong = "dop_v1_WRONG_5e1d";
    let err = mock
        .provider(wrong)
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect_err("a wrong token must fail");
    assert_refused(
        &err,
        "digitalocean",
        "Unable to authenticate you",
        &[wrong, DO_TOKEN],
    );
    assert_eq!(mock.seen().len(), 1, "refused credentials are not retried");
    assert!(mock.txt(NAME).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn digitalocean_delete_without_id_follows_next_links() {
    let mock = DoMock::start().await;
    {
        let mut s = lock(&mock.state);
        // More than the 200 a page can hold, at the same name.
        for i in 0..250 {
            s.add(NAME, "TXT", &format!("stale-{i}"), 120);
        }
        s.add("www", "TXT", APEX_VALUE, 300);
    }
    let provider = mock.provider(DO_TOKEN);
    let added = provider
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append");
    let gone = provider
        .delete_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("delete found by search");
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].id, added[0].id, "the record on page 2 was found");
    let left = mock.txt(NAME);
    assert_eq!(left.len(), 250);
    assert!(!left.iter().any(|v| v == APEX_VALUE));
    assert_eq!(mock.txt("www"), [APEX_VALUE]);

    let searches: Vec<Seen> = mock
        .seen()
        .into_iter()
        .filter(|r| r.method == Method::GET)
        .collect();
    // The next link names api.digitalocean.com; the provider kept its own base for it.
    assert_eq!(
        searches.iter().map(page_param).collect::<Vec<_>>(),
        [1, 2]
    );
    for r in &searches {
        assert_eq!(r.path, "/v2/domains/example.com/records");
        assert_eq!(r.q("type"), Some("TXT"));
        assert_eq!(r.q("name"), Some(FQDN));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn digitalocean_waits_out_rate_limit() {
    let mock = DoMock::start().await;
    lock(&mock.state).throttle = 1;
    let provider = mock.provider(DO_TOKEN);
    let started = Instant::now();
    provider
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append after a 429");
    assert_waited(started, Duration::from_secs(1));
    assert_eq!(mock.txt(NAME), [APEX_VALUE]);
    let seen = mock.seen();
    assert_eq!(seen.len(), 2, "one 429, one retry");
    assert!(seen.iter().all(|r| r.method == Method::POST));
}

/// DigitalOcean's `ratelimit-reset` is a Unix time; at the current second it means "now",
/// not a wait of fifty years.
#[tokio::test(flavor = "multi_thread")]
async fn digitalocean_rate_limit_reset_at_the_current_second() {
    let mock = DoMock::start().await;
    {
        let mut s = lock(&mock.state);
        s.throttle = 1;
        s.reset_header_only = true;
    }
    let provider = mock.provider(DO_TOKEN);
    provider
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append after a 429 whose reset is now");
    assert_eq!(mock.txt(NAME), [APEX_VALUE]);
    assert_eq!(mock.seen().len(), 2, "one 429, one retry");
}

// ------------------------------------------------------------------------------------------
// Hetzner DNS API v1: `Auth-API-Token`, `{zones, meta{pagination}}`, `{record}` on create,
// `{records, meta{pagination{page, per_page, last_page, total_entries}}}` on list (by zone,
// not by name), 200 with an empty body on delete, errors as `{message}` or `{error}`.
// ------------------------------------------------------------------------------------------

const HZ_TOKEN: &str = "hz-dns-token-Gk2P8sW4vQ7n";
const HZ_ZONE_ID: &str = "rMu2waTJPbHr4Ke5vSpVZa";

#[derive(Debug, Clone)]
struct HzRecord {
    id: String,
    zone_id: String,
    kind: String,
    name: String,
    value: String,
    ttl: Option<u64>,
}

#[derive(Debug, Default)]
struct HzState {
    records: Vec<HzRecord>,
    seen: Vec<Seen>,
    /// Requests still to answer with 429.
    throttle: usize,
    next_id: u128,
}

impl HzState {
    fn add(&mut self, name: &str, kind: &str, value: &str, ttl: Option<u64>) -> HzRecord {
        self.next_id += 1;
        let r = HzRecord {
            id: format!("{:032x}", 0x7e3f_0b6c_1d2a_4e59_8c7b_3a21_0f9e_0000 + self.next_id),
            zone_id: HZ_ZONE_ID.into(),
            kind: kind.into(),
            name: name.into(),
            value: value.into(),
            ttl,
        };
        self.records.push(r.clone());
        r
    }
}

fn hz_pagination(page: usize, per_page: usize, total: usize) -> Value {
    let last = total.div_ceil(per_page).max(1);
    json!({"pagination": {
        "page": page, "per_page": per_page, "previous_page": page.saturating_sub(1).max(1),
        "next_page": (page + 1).min(last), "last_page": last, "total_entries": total,
    }})
}

fn hz_record(r: &HzRecord) -> Value {
    let mut v = json!({
        "id": r.id, "type": r.kind, "name": r.name, "value": r.value, "zone_id": r.zone_id,
        "created": "2024-05-01 10:00:00.000 +0000 UTC", "modified": "2024-05-01 10:00:00.000 +0000 UTC",
    });
    if let Some(ttl) = r.ttl {
        v["ttl"] = ttl.into();
    }
    v
}

fn hz_error(status: StatusCode, message: &str) -> Response {
    json_reply(
        status,
        json!({"error": {"message": message, "code": status.as_u16()}}),
    )
}

async fn hetzner_api(State(state): State<Shared<HzState>>, req: Request) -> Response {
    let req = Seen::read(req).await;
    let mut s = lock(&state);
    s.seen.push(req.clone());
    if s.throttle > 0 {
        s.throttle -= 1;
        return respond(
            StatusCode::TOO_MANY_REQUESTS,
            &[
                ("retry-after", "1".into()),
                ("ratelimit-limit", "3600".into()),
                ("ratelimit-remaining", "0".into()),
                ("ratelimit-reset", "1".into()),
            ],
            "application/json",
            json!({"message": "API rate limit exceeded"}).to_string(),
        );
    }
    match req.header("auth-api-token") {
        Some(HZ_TOKEN) => {}
        Some(_) => {
            return json_reply(
                StatusCode::UNAUTHORIZED,
                json!({"message": "Invalid authentication credentials"}),
            );
        }
        None => {
            return json_reply(
                StatusCode::UNAUTHORIZED,
                json!({"message": "No API key found in request"}),
            );
        }
    }
    let Some(segs) = req.segments("/api/v1/") else {
        return hz_error(StatusCode::NOT_FOUND, "not found");
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.clone(), segs.as_slice()) {
        (Method::GET, ["zones"]) => {
            let zones: Vec<Value> = if req
                .q("name")
                .is_none_or(|n| n.eq_ignore_ascii_case("example.com"))
            {
                vec![json!({
                    "id": HZ_ZONE_ID, "name": "example.com", "ttl": 86400, "registrar": "",
                    "legacy_dns_host": "", "legacy_ns": [], "ns": ["hydrogen.ns.hetzner.com"],
                    "created": "2024-01-01 00:00:00.000 +0000 UTC", "verified": "",
                    "modified": "2024-01-01 00:00:00.000 +0000 UTC", "project": "", "owner": "",
                    "permission": "", "zone_ttl": {}, "status": "verified", "paused": false,
                    "is_secondary_zone": false, "txt_verification": {"name": "", "token": ""},
                    "records_count": s.records.len(),
                })]
            } else {
                Vec::new()
            };
            let n = zones.len();
            json_reply(
                StatusCode::OK,
                json!({"zones": zones, "meta": hz_pagination(1, 100, n)}),
            )
        }
        (Method::GET, ["records"]) => {
            let page = page_param(&req).max(1);
            let per_page: usize = req
                .q("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(100)
                .clamp(1, 100);
            let matching: Vec<&HzRecord> = s
                .records
                .iter()
                .filter(|r| req.q("zone_id").is_none_or(|z| z == r.zone_id))
                .collect();
            let total = matching.len();
            let result: Vec<Value> = matching
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|r| hz_record(r))
                .collect();
            json_reply(
                StatusCode::OK,
                json!({"records": result, "meta": hz_pagination(page, per_page, total)}),
            )
        }
        (Method::POST, ["records"]) => {
            let b = req.json();
            if b["zone_id"] != HZ_ZONE_ID {
                return hz_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "422 Unprocessable Entity: zone not found",
                );
            }
            let (Some(kind), Some(name), Some(value)) = (
                b["type"].as_str(),
                b["name"].as_str(),
                b["value"].as_str(),
            ) else {
                return hz_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "422 Unprocessable Entity: missing field",
                );
            };
            let r = s.add(name, kind, value, b["ttl"].as_u64());
            json_reply(StatusCode::OK, json!({"record": hz_record(&r)}))
        }
        (Method::DELETE, ["records", id]) => {
            match s.records.iter().position(|r| r.id == *id) {
                Some(i) => {
                    s.records.remove(i);
                    empty_reply(StatusCode::OK)
                }
                None => hz_error(StatusCode::NOT_FOUND, "record not found"),
            }
        }
        _ => hz_error(StatusCode::NOT_FOUND, "not found"),
    }
}

struct HzMock {
    state: Shared<HzState>,
    base: String,
}

impl HzMock {
    async fn start() -> Self {
        let state = Shared::<HzState>::default();
        let port = serve(Router::new().fallback(hetzner_api).with_state(state.clone())).await;
        Self {
            state,
            base: format!("http://127.0.0.1:{port}/api/v1"),
        }
    }

    fn provider(&self, token: &str) -> Hetzner {
        Hetzner::new(HetznerConfig {
            api_token: token.into(),
            base_url: Some(self.base.clone()),
        })
        .expect("hetzner settings")
    }

    /// TXT values at a name relative to the zone.
    fn txt(&self, name: &str) -> Vec<String> {
        lock(&self.state)
            .records
            .iter()
            .filter(|r| r.kind == "TXT" && r.name == name)
            .map(|r| r.value.clone())
            .collect()
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hetzner_round_trip() {
    let mock = HzMock::start().await;
    let provider = mock.provider(HZ_TOKEN);
    round_trip(
        &provider,
        || mock.txt(NAME),
        |a, w| {
            let s = lock(&mock.state);
            for (r, value) in [(a, APEX_VALUE), (w, WILDCARD_VALUE)] {
                let id = r.id.as_deref().expect("Hetzner's record id returned");
                let stored = s.records.iter().find(|x| x.id == id).expect("id stored");
                assert_eq!(stored.value, value);
                assert_eq!(stored.ttl, Some(120));
            }
            let posts: Vec<&Seen> = s.seen.iter().filter(|r| r.method == Method::POST).collect();
            assert_eq!(posts.len(), 2);
            for p in posts {
                assert_eq!(p.path, "/api/v1/records");
                let b = p.json();
                // The name relative to the zone, in the zone looked up by name.
                assert_eq!(b["name"], NAME, "{b}");
                assert_eq!(b["zone_id"], HZ_ZONE_ID, "{b}");
                assert_eq!(b["type"], "TXT", "{b}");
            }
            assert!(
                s.seen
                    .iter()
                    .filter(|r| r.path == "/api/v1/zones")
                    .all(|r| r.q("name") == Some("example.com"))
            );
            assert!(s.seen.iter().all(|r| r.header("authorization").is_none()));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hetzner_refused_token() {
    let mock = HzMock::start().await;
    let wrong = "hz-dns-token-WRONG-3x9q";
    let err = mock
        .provider(wrong)
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect_err("a wrong token must fail");
    assert_refused(
        &err,
        "hetzner",
        "Invalid authentication credentials",
        &[wrong, HZ_TOKEN],
    );
    assert_eq!(mock.seen().len(), 1, "refused credentials are not retried");
    assert!(mock.txt(NAME).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn hetzner_delete_without_id_reads_up_to_the_last_page() {
    let mock = HzMock::start().await;
    {
        let mut s = lock(&mock.state);
        // A zone of 150 records: ours come after them, on page 2 of 100.
        for i in 0..150 {
            s.add(
                &format!("host-{i}"),
                "A",
                &format!("192.0.2.{}", i % 250),
                Some(3600),
            );
        }
        s.add("www", "TXT", WILDCARD_VALUE, Some(300));
    }
    let provider = mock.provider(HZ_TOKEN);
    provider
        .append_records(
            ZONE,
            &[
                DnsRecord::txt(NAME, APEX_VALUE, TTL),
                DnsRecord::txt(NAME, WILDCARD_VALUE, TTL),
            ],
        )
        .await
        .expect("append");
    let gone = provider
        .delete_records(ZONE, &[DnsRecord::txt(NAME, WILDCARD_VALUE, TTL)])
        .await
        .expect("delete found by search");
    assert_eq!(gone.len(), 1);
    assert!(gone[0].id.is_some());
    assert_eq!(mock.txt(NAME), [APEX_VALUE], "only that value went");
    assert_eq!(mock.txt("www"), [WILDCARD_VALUE], "the same text elsewhere stays");
    assert_eq!(lock(&mock.state).records.len(), 152);

    let searches: Vec<Seen> = mock
        .seen()
        .into_iter()
        .filter(|r| r.method == Method::GET && r.path == "/api/v1/records")
        .collect();
    assert_eq!(
        searches.iter().map(page_param).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(searches.iter().all(|r| r.q("zone_id") == Some(HZ_ZONE_ID)));
}

#[tokio::test(flavor = "multi_thread")]
async fn hetzner_waits_out_rate_limit() {
    let mock = HzMock::start().await;
    lock(&mock.state).throttle = 1;
    let provider = mock.provider(HZ_TOKEN);
    let started = Instant::now();
    provider
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append after a 429");
    assert_waited(started, Duration::from_secs(1));
    assert_eq!(mock.txt(NAME), [APEX_VALUE]);
    let seen = mock.seen();
    assert_eq!(seen.len(), 3, "the zone lookup twice, then the POST");
    assert!(seen[..2].iter().all(|r| r.path == "/api/v1/zones"));
    assert_eq!(seen[2].method, Method::POST);
}

// ------------------------------------------------------------------------------------------
// Gandi LiveDNS v5: one RRset per name and type at `/domains/{fqdn}/records/{name}/TXT`,
// read with GET (404 when absent), written whole with PUT `{rrset_ttl, rrset_values}`,
// removed with DELETE (204). `Authorization: Bearer <personal access token>`. The RRset
// endpoint returns a single set, so there is no pagination to test for Gandi.
// ------------------------------------------------------------------------------------------

const GANDI_PAT: &str = "gandi-pat-8f2c1e7d9a4b6c3e";

#[derive(Debug, Clone)]
struct Rrset {
    ttl: u64,
    values: Vec<String>,
}

#[derive(Debug, Default)]
struct GandiState {
    /// By (name, type), values as stored (quoted).
    rrsets: HashMap<(String, String), Rrset>,
    seen: Vec<Seen>,
    /// Requests still to answer with 429.
    throttle: usize,
}

fn gandi_error(status: StatusCode, message: &str, object: &str, cause: &str) -> Response {
    json_reply(
        status,
        json!({"code": status.as_u16(), "message": message, "object": object, "cause": cause}),
    )
}

async fn gandi_api(State(state): State<Shared<GandiState>>, req: Request) -> Response {
    let req = Seen::read(req).await;
    let mut s = lock(&state);
    s.seen.push(req.clone());
    if s.throttle > 0 {
        s.throttle -= 1;
        return respond(
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", "1".into())],
            "application/json",
            json!({"code": 429, "message": "Too Many Requests", "object": "HTTPTooManyRequests", "cause": "Too Many Requests"}).to_string(),
        );
    }
    if req.header("authorization") != Some(format!("Bearer {GANDI_PAT}").as_str()) {
        return gandi_error(
            StatusCode::UNAUTHORIZED,
            "The server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.",
            "HTTPUnauthorized",
            "Unauthorized",
        );
    }
    let not_found = || {
        gandi_error(
            StatusCode::NOT_FOUND,
            "The resource could not be found.",
            "HTTPNotFound",
            "Not Found",
        )
    };
    let Some(segs) = req.segments("/v5/livedns/domains/") else {
        return not_found();
    };
    let [domain, records, name, kind] = segs.as_slice() else {
        return not_found();
    };
    if domain != "example.com" || records != "records" {
        return not_found();
    }
    let key = (name.clone(), kind.clone());
    let absent = || {
        gandi_error(
            StatusCode::NOT_FOUND,
            &format!("Can't find the DNS record {name}/{kind} in the zone"),
            "dns-record",
            "Not Found",
        )
    };
    match req.method {
        Method::GET => match s.rrsets.get(&key) {
            Some(set) => json_reply(
                StatusCode::OK,
                json!({
                    "rrset_name": name, "rrset_type": kind, "rrset_ttl": set.ttl,
                    "rrset_values": set.values,
                    "rrset_href": format!("https://api.gandi.net/v5/livedns/domains/example.com/records/{name}/{kind}"),
                }),
            ),
            None => absent(),
        },
        Method::PUT => {
            let b = req.json();
            let ttl = b["rrset_ttl"].as_u64().unwrap_or(10800);
            let values: Option<Vec<String>> = b["rrset_values"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect());
            let bad = |name: &str, description: &str| {
                json_reply(
                    StatusCode::BAD_REQUEST,
                    json!({
                        "code": 400, "message": "Bad Request", "object": "HTTPBadRequest",
                        "cause": "Bad Request",
                        "errors": [{"location": "body", "name": name, "description": description}],
                    }),
                )
            };
            if !(300..=2_592_000).contains(&ttl) {
                return bad("rrset_ttl", "must be between 300 and 2592000");
            }
            let Some(values) = values.filter(|v| !v.is_empty()) else {
                return bad("rrset_values", "must not be empty");
            };
            s.rrsets.insert(key, Rrset { ttl, values });
            json_reply(
                StatusCode::CREATED,
                json!({"message": "DNS Record Created"}),
            )
        }
        Method::DELETE => match s.rrsets.remove(&key) {
            Some(_) => empty_reply(StatusCode::NO_CONTENT),
            None => absent(),
        },
        _ => gandi_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The method is not allowed for the requested URL.",
            "HTTPMethodNotAllowed",
            "Method Not Allowed",
        ),
    }
}

struct GandiMock {
    state: Shared<GandiState>,
    base: String,
}

impl GandiMock {
    async fn start() -> Self {
        let state = Shared::<GandiState>::default();
        let port = serve(Router::new().fallback(gandi_api).with_state(state.clone())).await;
        Self {
            state,
            base: format!("http://127.0.0.1:{port}/v5/livedns"),
        }
    }

    fn provider(&self, token: &str) -> Gandi {
        Gandi::new(GandiConfig {
            token: Some(token.into()),
            api_key: None,
            base_url: Some(self.base.clone()),
        })
        .expect("gandi settings")
    }

    /// The TXT values at a name, as Gandi stores them (quoted).
    fn raw_txt(&self, name: &str) -> Vec<String> {
        lock(&self.state)
            .rrsets
            .get(&(name.to_string(), "TXT".to_string()))
            .map(|s| s.values.clone())
            .unwrap_or_default()
    }

    /// The same, unquoted.
    fn txt(&self, name: &str) -> Vec<String> {
        self.raw_txt(name)
            .iter()
            .map(|v| v.trim_matches('"').to_string())
            .collect()
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gandi_round_trip() {
    let mock = GandiMock::start().await;
    // An unrelated RRset in the zone stays as it is.
    lock(&mock.state).rrsets.insert(
        ("@".into(), "TXT".into()),
        Rrset {
            ttl: 10800,
            values: vec!["\"v=spf1 -all\"".into()],
        },
    );
    let provider = mock.provider(GANDI_PAT);
    round_trip(
        &provider,
        || mock.txt(NAME),
        |a, w| {
            // RRsets have no per-value ids.
            assert!(a.id.is_none() && w.id.is_none());
            let raw = mock.raw_txt(NAME);
            assert!(
                raw.iter().all(|v| v.starts_with('"') && v.ends_with('"')),
                "TXT values quoted: {raw:?}"
            );
            let s = lock(&mock.state);
            let set = &s.rrsets[&(NAME.to_string(), "TXT".to_string())];
            assert_eq!(set.ttl, 300, "LiveDNS's minimum TTL");
            let puts: Vec<&Seen> = s.seen.iter().filter(|r| r.method == Method::PUT).collect();
            assert_eq!(puts.len(), 2);
            for p in &puts {
                assert_eq!(
                    p.path,
                    "/v5/livedns/domains/example.com/records/_acme-challenge/TXT"
                );
                let b = p.json();
                assert!(b["rrset_values"].is_array(), "{b}");
                assert_eq!(b["rrset_ttl"], 300, "{b}");
            }
            // The second PUT carried both values: the first was read back, not overwritten.
            assert_eq!(
                puts.iter()
                    .map(|p| p.json()["rrset_values"].as_array().map_or(0, Vec::len))
                    .collect::<Vec<_>>(),
                [1, 2]
            );
        },
    )
    .await;
    let seen = mock.seen();
    // The last value went with a DELETE of the RRset, not a PUT of nothing.
    let writes: Vec<&Method> = seen
        .iter()
        .map(|r| &r.method)
        .filter(|m| **m != Method::GET)
        .collect();
    assert_eq!(
        writes,
        [&Method::PUT, &Method::PUT, &Method::PUT, &Method::DELETE]
    );
    assert!(lock(&mock.state).rrsets.contains_key(&("@".to_string(), "TXT".to_string())));
}

#[tokio::test(flavor = "multi_thread")]
async fn gandi_refused_token() {
    let mock = GandiMock::start().await;
    let wrong = "gandi-pat-WRONG-1a2b";
    let err = mock
        .provider(wrong)
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect_err("a wrong token must fail");
    assert_refused(
        &err,
        "gandi",
        "could not verify that you are authorized",
        &[wrong, GANDI_PAT],
    );
    assert_eq!(mock.seen().len(), 1, "refused credentials are not retried");
    assert!(mock.txt(NAME).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn gandi_waits_out_rate_limit() {
    let mock = GandiMock::start().await;
    lock(&mock.state).throttle = 1;
    let provider = mock.provider(GANDI_PAT);
    let started = Instant::now();
    provider
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append after a 429");
    assert_waited(started, Duration::from_secs(1));
    assert_eq!(mock.txt(NAME), [APEX_VALUE]);
    let methods: Vec<Method> = mock.seen().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, [Method::GET, Method::GET, Method::PUT]);
}

// ------------------------------------------------------------------------------------------
// Amazon Route 53 API 2013-04-01: XML, Signature Version 4 (checked in full with the
// expected key), ListHostedZones paginated by `IsTruncated`/`NextMarker`,
// ListResourceRecordSets starting at a name and type, ChangeResourceRecordSets answered with
// `ChangeInfo`; errors as `<ErrorResponse>` (throttling is HTTP 400 `Throttling`), rejected
// change batches as `<InvalidChangeBatch>`.
// ------------------------------------------------------------------------------------------

const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const R53_XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

#[derive(Debug, Clone)]
struct R53Set {
    name: String,
    kind: String,
    ttl: u64,
    /// As stored: TXT values quoted.
    values: Vec<String>,
}

#[derive(Debug, Clone)]
struct R53Zone {
    id: String,
    name: String,
    private: bool,
    sets: Vec<R53Set>,
}

impl R53Zone {
    fn new(id: &str, name: &str, private: bool) -> Self {
        let set = |n: &str, kind: &str, ttl: u64, values: &[&str]| R53Set {
            name: n.into(),
            kind: kind.into(),
            ttl,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        Self {
            id: id.into(),
            name: name.into(),
            private,
            sets: vec![
                set(name, "NS", 172800, &["ns-1.awsdns-00.com."]),
                set(
                    name,
                    "SOA",
                    900,
                    &["ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"],
                ),
                // Sorts after `_acme-challenge`: what a listing from there returns when the
                // challenge set is absent.
                set(&format!("www.{name}"), "TXT", 300, &["\"v=spf1 -all\""]),
            ],
        }
    }
}

#[derive(Debug, Default)]
struct R53State {
    zones: Vec<R53Zone>,
    seen: Vec<Seen>,
    /// Requests still to answer with HTTP 400 `Throttling`.
    throttle: usize,
    next_change: u64,
}

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
    xml_blocks(doc, tag).first().map(|t| xml_unescape(t.trim()))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn xml_reply(status: StatusCode, body: String) -> Response {
    respond(
        status,
        &[("x-amzn-requestid", "f0e7a1c2-9b3d-4e5f-8a6b-7c8d9e0f1a2b".into())],
        "text/xml",
        body,
    )
}

fn r53_error(status: StatusCode, code: &str, message: &str) -> Response {
    xml_reply(
        status,
        format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{R53_XMLNS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>f0e7a1c2-9b3d-4e5f-8a6b-7c8d9e0f1a2b</RequestId></ErrorResponse>",
            xml_escape(message)
        ),
    )
}

fn r53_invalid_batch(message: &str) -> Response {
    xml_reply(
        StatusCode::BAD_REQUEST,
        format!(
            "<?xml version=\"1.0\"?>\n<InvalidChangeBatch xmlns=\"{R53_XMLNS}\"><Messages><Message>{}</Message></Messages><RequestId>f0e7a1c2-9b3d-4e5f-8a6b-7c8d9e0f1a2b</RequestId></InvalidChangeBatch>",
            xml_escape(message)
        ),
    )
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

/// Checks a request's Signature Version 4 as Route 53 does, with the one key it knows.
fn r53_check_signature(req: &Seen) -> Result<(), Response> {
    let denied = |code: &str, message: &str| r53_error(StatusCode::FORBIDDEN, code, message);
    let Some(auth) = req.header("authorization") else {
        return Err(denied(
            "MissingAuthenticationToken",
            "Missing Authentication Token",
        ));
    };
    let Some(amz_date) = req.header("x-amz-date") else {
        return Err(r53_error(
            StatusCode::BAD_REQUEST,
            "IncompleteSignature",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let incomplete = || {
        r53_error(
            StatusCode::BAD_REQUEST,
            "IncompleteSignature",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        )
    };
    let Some(params) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(incomplete());
    };
    let field = |name: &str| {
        params.split(',').find_map(|p| {
            p.trim()
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
        })
    };
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        field("Credential"),
        field("SignedHeaders"),
        field("Signature"),
    ) else {
        return Err(incomplete());
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, terminator] = scope.as_slice() else {
        return Err(incomplete());
    };
    if *key_id != AWS_KEY_ID {
        return Err(denied(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ));
    }
    if *service != "route53" || *region != "us-east-1" || *terminator != "aws4_request" {
        return Err(denied(
            "SignatureDoesNotMatch",
            &format!("Credential should be scoped to a valid region and service: {region}/{service}"),
        ));
    }
    if amz_date.len() != 16 || !amz_date.starts_with(date) {
        return Err(denied(
            "SignatureDoesNotMatch",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP",
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(denied(
            "SignatureDoesNotMatch",
            "'Host' and 'X-Amz-Date' must be signed.",
        ));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let value = req.header(name).unwrap_or_default();
        canonical_headers.push_str(&format!(
            "{name}:{}\n",
            value.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    let mut query: Vec<(String, String)> = parse_query(&req.raw_query)
        .into_iter()
        .map(|(k, v)| (pct_encode(&k), pct_encode(&v)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_request = format!(
        "{}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}",
        req.method,
        req.path,
        hex(&Sha256::digest(&req.body))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{AWS_SECRET}").as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    if hex(&hmac(&k_signing, &to_sign)) != signature {
        return Err(denied(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(())
}

/// Route 53 orders record sets by name with the labels reversed, then by type.
fn r53_order(name: &str) -> Vec<String> {
    name.trim_end_matches('.')
        .to_ascii_lowercase()
        .rsplit('.')
        .map(String::from)
        .collect()
}

fn r53_fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

fn r53_set_xml(set: &R53Set) -> String {
    let records: String = set
        .values
        .iter()
        .map(|v| format!("<ResourceRecord><Value>{}</Value></ResourceRecord>", xml_escape(v)))
        .collect();
    format!(
        "<ResourceRecordSet><Name>{}</Name><Type>{}</Type><TTL>{}</TTL><ResourceRecords>{records}</ResourceRecords></ResourceRecordSet>",
        set.name, set.kind, set.ttl
    )
}

/// One `ChangeResourceRecordSets` batch, applied all or nothing.
fn r53_apply(zone: &mut R53Zone, body: &str) -> Result<(), Response> {
    if !body.contains(&format!("<ChangeResourceRecordSetsRequest xmlns=\"{R53_XMLNS}\">")) {
        return Err(r53_error(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "Could not parse the request body as a ChangeResourceRecordSetsRequest",
        ));
    }
    let mut sets = zone.sets.clone();
    let changes = xml_blocks(body, "Change");
    if changes.is_empty() {
        return Err(r53_error(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "1 validation error detected: Value null at 'changeBatch.changes' failed to satisfy constraint: Member must not be null",
        ));
    }
    for change in changes {
        let action = xml_text(change, "Action").unwrap_or_default();
        let set = xml_blocks(change, "ResourceRecordSet")
            .first()
            .copied()
            .unwrap_or_default();
        let name = r53_fqdn(&xml_text(set, "Name").unwrap_or_default());
        let kind = xml_text(set, "Type").unwrap_or_default();
        let ttl: u64 = xml_text(set, "TTL")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let values: Vec<String> = xml_blocks(set, "Value")
            .into_iter()
            .map(xml_unescape)
            .collect();
        if !(name == zone.name || name.ends_with(&format!(".{}", zone.name))) {
            return Err(r53_invalid_batch(&format!(
                "RRSet with DNS name {name} is not permitted in zone {}",
                zone.name
            )));
        }
        if kind == "TXT" {
            if let Some(v) = values
                .iter()
                .find(|v| !(v.len() >= 2 && v.starts_with('"') && v.ends_with('"')))
            {
                return Err(r53_invalid_batch(&format!(
                    "Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '{v}''"
                )));
            }
        }
        let at = sets.iter().position(|s| s.name == name && s.kind == kind);
        let new = R53Set {
            name: name.clone(),
            kind: kind.clone(),
            ttl,
            values: values.clone(),
        };
        match (action.as_str(), at) {
            ("CREATE", Some(_)) => {
                return Err(r53_invalid_batch(&format!(
                    "Tried to create resource record set [name='{name}', type='{kind}'] but it already exists"
                )));
            }
            ("CREATE", None) | ("UPSERT", None) => sets.push(new),
            ("UPSERT", Some(i)) => sets[i] = new,
            ("DELETE", None) => {
                return Err(r53_invalid_batch(&format!(
                    "Tried to delete resource record set [name='{name}', type='{kind}'] but it was not found"
                )));
            }
            ("DELETE", Some(i)) => {
                if sets[i].ttl != ttl || sorted(sets[i].values.clone()) != sorted(values) {
                    return Err(r53_invalid_batch(&format!(
                        "Tried to delete resource record set [name='{name}', type='{kind}'] but the values provided do not match the current values"
                    )));
                }
                sets.remove(i);
            }
            _ => {
                return Err(r53_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidInput",
                    &format!("Invalid action {action}"),
                ));
            }
        }
    }
    zone.sets = sets;
    Ok(())
}

async fn route53_api(State(state): State<Shared<R53State>>, req: Request) -> Response {
    let req = Seen::read(req).await;
    let mut s = lock(&state);
    s.seen.push(req.clone());
    if s.throttle > 0 {
        s.throttle -= 1;
        return r53_error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded");
    }
    if let Err(denied) = r53_check_signature(&req) {
        return denied;
    }
    let Some(segs) = req.segments("/2013-04-01/") else {
        return r53_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation",
        );
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.clone(), segs.as_slice()) {
        (Method::GET, ["hostedzone"]) => {
            let max: usize = req
                .q("maxitems")
                .and_then(|m| m.parse().ok())
                .unwrap_or(100)
                .clamp(1, 100);
            let start = match req.q("marker") {
                Some(m) => match s.zones.iter().position(|z| z.id == m) {
                    Some(i) => i,
                    None => {
                        return r53_error(
                            StatusCode::BAD_REQUEST,
                            "InvalidInput",
                            &format!("Invalid marker: {m}"),
                        );
                    }
                },
                None => 0,
            };
            let end = (start + max).min(s.zones.len());
            let zones: String = s.zones[start..end]
                .iter()
                .map(|z| {
                    format!(
                        "<HostedZone><Id>/hostedzone/{}</Id><Name>{}</Name><CallerReference>certmagic-{}</CallerReference><Config><Comment>test</Comment><PrivateZone>{}</PrivateZone></Config><ResourceRecordSetCount>{}</ResourceRecordSetCount></HostedZone>",
                        z.id, z.name, z.id, z.private, z.sets.len()
                    )
                })
                .collect();
            let truncated = end < s.zones.len();
            let marker = req
                .q("marker")
                .map(|m| format!("<Marker>{m}</Marker>"))
                .unwrap_or_default();
            let next = if truncated {
                format!("<NextMarker>{}</NextMarker>", s.zones[end].id)
            } else {
                String::new()
            };
            xml_reply(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\"?>\n<ListHostedZonesResponse xmlns=\"{R53_XMLNS}\"><HostedZones>{zones}</HostedZones>{marker}<IsTruncated>{truncated}</IsTruncated>{next}<MaxItems>{max}</MaxItems></ListHostedZonesResponse>"
                ),
            )
        }
        (method, ["hostedzone", id, "rrset"]) => {
            let Some(zone) = s.zones.iter_mut().find(|z| z.id == *id) else {
                return r53_error(
                    StatusCode::NOT_FOUND,
                    "NoSuchHostedZone",
                    &format!("No hosted zone found with ID: {id}"),
                );
            };
            if method == Method::POST {
                if let Err(e) = r53_apply(zone, &req.text()) {
                    return e;
                }
                s.next_change += 1;
                return xml_reply(
                    StatusCode::OK,
                    format!(
                        "<?xml version=\"1.0\"?>\n<ChangeResourceRecordSetsResponse xmlns=\"{R53_XMLNS}\"><ChangeInfo><Id>/change/C2682N5HXP0BZ{}</Id><Status>PENDING</Status><SubmittedAt>2024-05-01T10:00:00.000Z</SubmittedAt><Comment>ACME DNS-01 challenge</Comment></ChangeInfo></ChangeResourceRecordSetsResponse>",
                        s.next_change
                    ),
                );
            }
            if method != Method::GET {
                return r53_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "InvalidInput",
                    "Method not allowed",
                );
            }
            let max: usize = req
                .q("maxitems")
                .and_then(|m| m.parse().ok())
                .unwrap_or(300)
                .clamp(1, 300);
            let mut sets = zone.sets.clone();
            sets.sort_by(|a, b| (r53_order(&a.name), &a.kind).cmp(&(r53_order(&b.name), &b.kind)));
            let start = match req.q("name") {
                Some(n) => {
                    let from = (r53_order(n), req.q("type").unwrap_or_default().to_string());
                    sets.iter()
                        .position(|s| (r53_order(&s.name), s.kind.clone()) >= from)
                        .unwrap_or(sets.len())
                }
                None => 0,
            };
            let end = (start + max).min(sets.len());
            let body: String = sets[start..end].iter().map(r53_set_xml).collect();
            let truncated = end < sets.len();
            let next = if truncated {
                format!(
                    "<NextRecordName>{}</NextRecordName><NextRecordType>{}</NextRecordType>",
                    sets[end].name, sets[end].kind
                )
            } else {
                String::new()
            };
            xml_reply(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\"?>\n<ListResourceRecordSetsResponse xmlns=\"{R53_XMLNS}\"><ResourceRecordSets>{body}</ResourceRecordSets><IsTruncated>{truncated}</IsTruncated>{next}<MaxItems>{max}</MaxItems></ListResourceRecordSetsResponse>"
                ),
            )
        }
        _ => r53_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation",
        ),
    }
}

struct R53Mock {
    state: Shared<R53State>,
    base: String,
}

impl R53Mock {
    async fn start(zones: Vec<R53Zone>) -> Self {
        let state = Shared::new(Mutex::new(R53State {
            zones,
            ..Default::default()
        }));
        let port = serve(Router::new().fallback(route53_api).with_state(state.clone())).await;
        Self {
            state,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn provider(&self, key_id: &str, secret: &str) -> Route53 {
        Route53::new(Route53Config {
            access_key_id: key_id.into(),
            secret_access_key: secret.into(),
            session_token: None,
            hosted_zone_id: None,
            region: None,
            base_url: Some(self.base.clone()),
        })
        .expect("route53 settings")
    }

    /// The TXT values at `fqdn` in zone `id`, as stored (quoted).
    fn raw_txt(&self, id: &str, fqdn: &str) -> Vec<String> {
        let want = r53_fqdn(fqdn);
        lock(&self.state)
            .zones
            .iter()
            .find(|z| z.id == id)
            .and_then(|z| z.sets.iter().find(|s| s.name == want && s.kind == "TXT"))
            .map(|s| s.values.clone())
            .unwrap_or_default()
    }

    fn txt(&self, id: &str, fqdn: &str) -> Vec<String> {
        self.raw_txt(id, fqdn)
            .iter()
            .map(|v| v.trim_matches('"').to_string())
            .collect()
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    fn changes(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|r| r.method == Method::POST)
            .map(|r| r.text())
            .collect()
    }
}

fn r53_two_zones() -> Vec<R53Zone> {
    vec![
        R53Zone::new("Z1R8UBAEXAMPLE", "example.org.", false),
        R53Zone::new("Z2FDTNDATAQYW2", "example.com.", false),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn route53_round_trip() {
    let mock = R53Mock::start(r53_two_zones()).await;
    let provider = mock.provider(AWS_KEY_ID, AWS_SECRET);
    round_trip(
        &provider,
        || mock.txt("Z2FDTNDATAQYW2", FQDN),
        |a, w| {
            assert!(a.id.is_none() && w.id.is_none());
            let raw = mock.raw_txt("Z2FDTNDATAQYW2", FQDN);
            assert_eq!(
                sorted(raw),
                sorted(vec![
                    format!("\"{APEX_VALUE}\""),
                    format!("\"{WILDCARD_VALUE}\"")
                ]),
                "TXT values stored quoted"
            );
            let changes = mock.changes();
            assert_eq!(changes.len(), 2);
            for c in &changes {
                assert_eq!(xml_text(c, "Action").as_deref(), Some("UPSERT"));
                assert_eq!(
                    xml_text(c, "Name").as_deref(),
                    Some("_acme-challenge.example.com.")
                );
                assert_eq!(xml_text(c, "Type").as_deref(), Some("TXT"));
                assert_eq!(xml_text(c, "TTL").as_deref(), Some("120"));
            }
        },
    )
    .await;
    // The set went with a DELETE naming it exactly as stored (the double refuses otherwise).
    let actions: Vec<String> = mock
        .changes()
        .iter()
        .filter_map(|c| xml_text(c, "Action"))
        .collect();
    assert_eq!(actions, ["UPSERT", "UPSERT", "UPSERT", "DELETE"]);
    let seen = mock.seen();
    assert!(
        seen.iter()
            .filter(|r| r.method == Method::POST)
            .all(|r| r.path == "/2013-04-01/hostedzone/Z2FDTNDATAQYW2/rrset"
                && r.header("content-type") == Some("text/xml"))
    );
    assert!(
        seen.iter()
            .filter(|r| r.method == Method::GET && r.path.ends_with("/rrset"))
            .all(|r| r.q("name") == Some("_acme-challenge.example.com.")
                && r.q("type") == Some("TXT"))
    );
    assert!(seen.iter().all(|r| r.header("x-amz-date").is_some()));
    // The neighbouring TXT set that listings from `_acme-challenge` return was never touched.
    assert_eq!(
        mock.raw_txt("Z2FDTNDATAQYW2", "www.example.com"),
        ["\"v=spf1 -all\""]
    );
    assert!(mock.txt("Z1R8UBAEXAMPLE", "_acme-challenge.example.org").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn route53_refused_key_id() {
    let mock = R53Mock::start(r53_two_zones()).await;
    let err = mock
        .provider("AKIAWRONGKEYEXAMPLE0", AWS_SECRET)
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect_err("an unknown key id must fail");
    assert_refused(&err, "route53", "InvalidClientTokenId", &[AWS_SECRET]);
    assert_eq!(mock.seen().len(), 1, "refused credentials are not retried");
    assert!(mock.txt("Z2FDTNDATAQYW2", FQDN).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn route53_refused_secret() {
    let mock = R53Mock::start(r53_two_zones()).await;
    let wrong = "wJalrXUtnFEMI/K7MDENG/WRONGiCYEXAMPLEKEY";
    let err = mock
        .provider(AWS_KEY_ID, wrong)
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect_err("a wrong secret must fail");
    assert_refused(&err, "route53", "SignatureDoesNotMatch", &[wrong, AWS_SECRET]);
    let seen = mock.seen();
    assert_eq!(seen.len(), 1, "refused credentials are not retried");
    let auth = seen[0].header("authorization").unwrap_or_default();
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/"))
            && auth.contains("SignedHeaders=")
            && auth.contains("Signature="),
        "{auth}"
    );
    assert!(mock.txt("Z2FDTNDATAQYW2", FQDN).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn route53_finds_the_public_zone_on_a_later_page() {
    // 150 zones, listed 100 at a time: a private example.com. on page 1, the public one on
    // page 2 (public zones are preferred).
    let mut zones: Vec<R53Zone> = (0..150)
        .map(|i| R53Zone::new(&format!("Z{i:03}FILLEREXAMPLE"), &format!("zone{i}.example.net."), false))
        .collect();
    zones[20] = R53Zone::new("Z020PRIVATEEXAMPLE", "example.com.", true);
    zones[120] = R53Zone::new("Z120PUBLICEXAMPLE", "example.com.", false);
    let mock = R53Mock::start(zones).await;
    let provider = mock.provider(AWS_KEY_ID, AWS_SECRET);
    provider
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append");
    assert_eq!(mock.txt("Z120PUBLICEXAMPLE", FQDN), [APEX_VALUE]);
    assert!(mock.txt("Z020PRIVATEEXAMPLE", FQDN).is_empty());

    let listings: Vec<Seen> = mock
        .seen()
        .into_iter()
        .filter(|r| r.path == "/2013-04-01/hostedzone")
        .collect();
    assert_eq!(listings.len(), 2);
    assert_eq!(listings[0].q("marker"), None);
    assert_eq!(listings[1].q("marker"), Some("Z100FILLEREXAMPLE"), "NextMarker followed");

    // Deleting (no ids with Route 53: the set is read and rewritten) lists again and
    // empties the public zone's set.
    let gone = provider
        .delete_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("delete");
    assert_eq!(values(&gone), [APEX_VALUE]);
    assert!(mock.txt("Z120PUBLICEXAMPLE", FQDN).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn route53_waits_out_throttling() {
    let mock = R53Mock::start(r53_two_zones()).await;
    lock(&mock.state).throttle = 1;
    let provider = mock.provider(AWS_KEY_ID, AWS_SECRET);
    let started = Instant::now();
    provider
        .append_records(ZONE, &[DnsRecord::txt(NAME, APEX_VALUE, TTL)])
        .await
        .expect("append after Throttling");
    // No Retry-After from AWS: the provider backs off on its own (1 s at least).
    assert_waited(started, Duration::from_secs(1));
    assert_eq!(mock.txt("Z2FDTNDATAQYW2", FQDN), [APEX_VALUE]);
    let seen = mock.seen();
    assert_eq!(seen.len(), 4, "listing twice, reading the set, changing it");
    assert!(seen[..2].iter().all(|r| r.path == "/2013-04-01/hostedzone"));
}
