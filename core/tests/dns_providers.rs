//! The HTTP-API DNS providers against local servers that answer in each vendor's documented
//! request and response shapes (the one place the project allows test doubles: these APIs
//! cannot run here). For each: two values at one name side by side and removed one by one,
//! refused credentials, pagination where the API paginates, and rate-limit answers retried.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use certmagic::dns::providers::{cloudflare, digitalocean, gandi, hetzner, route53};
use certmagic::{DnsProvider, DnsRecord, ErrorKind};
use serde_json::{Value, json};

const ZONE: &str = "example.com.";
const SECRET: &str = "good-secret";

/// What a mock received, and what it answers.
struct Request {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    headers: HeaderMap,
    body: String,
}

struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn json_answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string(),
    }
}

type Handler = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

/// TXT RRsets by name: TTL and values (quoted, as the APIs store them).
type RrSets = Arc<Mutex<BTreeMap<String, (u64, Vec<String>)>>>;

/// Serves `handler` on 127.0.0.1; answers the requests numbered `throttled` (from 0) with
/// `throttle`. They come after both values were added: a retry delays one request by a second,
/// which would otherwise serialise the two additions this file means to run at once.
async fn mock(
    handler: Handler,
    throttled: std::ops::Range<usize>,
    throttle: fn() -> Answer,
) -> (u16, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let (handler, count, throttled) = (handler.clone(), count.clone(), throttled.clone());
            async move {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let query = uri
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), decode(v)))
                    .collect();
                let req = Request {
                    method,
                    path: uri.path().to_string(),
                    query,
                    headers,
                    body,
                };
                let a = if throttled.contains(&n) {
                    throttle()
                } else {
                    handler(&req)
                };
                let mut resp = axum::http::Response::builder().status(a.status);
                for (k, v) in a.headers {
                    resp = resp.header(k, v);
                }
                resp.body(axum::body::Body::from(a.body)).unwrap()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, requests)
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn txt(value: &str) -> DnsRecord {
    DnsRecord::txt("_acme-challenge", value, Duration::from_secs(120))
}

fn no_id(mut r: DnsRecord) -> DnsRecord {
    r.id = None;
    r
}

fn assert_refused(err: certmagic::Error, provider: &str) {
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{text}");
    assert!(
        text.contains("refused the credentials") && text.contains(provider),
        "{text}"
    );
    assert!(
        !text.contains(SECRET) && !text.contains("wrong-secret"),
        "a secret leaked: {text}"
    );
}

/// Both values added at once (as for `example.com` and `*.example.com`), stored side by side,
/// then removed one at a time.
async fn side_by_side(p: &dyn DnsProvider, stored: impl Fn() -> Vec<String>, without_ids: bool) {
    let (va, vb) = ([txt("value-a")], [txt("value-b")]);
    let (a, b) = tokio::join!(p.append_records(ZONE, &va), p.append_records(ZONE, &vb));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut now = stored();
    now.sort();
    assert_eq!(now, ["value-a", "value-b"]);
    let a = if without_ids {
        vec![no_id(a[0].clone())]
    } else {
        a
    };
    let gone = p.delete_records(ZONE, &a).await.unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(stored(), ["value-b"]);
    p.delete_records(ZONE, &b).await.unwrap();
    assert!(stored().is_empty());
    // Already gone: not an error.
    p.delete_records(ZONE, &b).await.unwrap();
}

// ---------- Cloudflare (API v4) ----------

#[derive(Default)]
struct CfState {
    records: Vec<Value>,
    next: usize,
}

fn cloudflare_mock(state: Arc<Mutex<CfState>>) -> Handler {
    Arc::new(move |r: &Request| {
        let envelope = |result: Value| json!({"success": true, "errors": [], "messages": [], "result": result});
        if r.headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {SECRET}"))
        {
            return json_answer(
                403,
                json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}], "messages": [], "result": null}),
            );
        }
        let mut s = state.lock().unwrap();
        let path = r.path.strip_prefix("/client/v4").unwrap_or("");
        match (r.method.as_str(), path) {
            ("GET", "/zones") => {
                assert_eq!(r.query.get("name").map(String::as_str), Some("example.com"));
                let mut v = envelope(json!([{"id": "zone-1", "name": "example.com"}]));
                v["result_info"] = json!({"page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1});
                json_answer(200, v)
            }
            ("POST", "/zones/zone-1/dns_records") => {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(
                    body["name"], "_acme-challenge.example.com",
                    "FQDN without the trailing dot"
                );
                assert_eq!(body["type"], "TXT");
                assert!(body["ttl"].as_u64().unwrap() >= 60);
                s.next += 1;
                let rec = json!({"id": format!("rec-{}", s.next), "type": "TXT", "name": body["name"], "content": body["content"], "ttl": body["ttl"]});
                s.records.push(rec.clone());
                json_answer(200, envelope(rec))
            }
            ("GET", "/zones/zone-1/dns_records") => {
                let page: usize = r
                    .query
                    .get("page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                let per: usize = r
                    .query
                    .get("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(100);
                let name = r.query.get("name").cloned().unwrap_or_default();
                let all: Vec<&Value> = s
                    .records
                    .iter()
                    .filter(|x| x["name"] == name.as_str())
                    .collect();
                let pages = all.len().div_ceil(per).max(1);
                let slice: Vec<Value> = all
                    .iter()
                    .skip((page - 1) * per)
                    .take(per)
                    .map(|v| (*v).clone())
                    .collect();
                let mut v = envelope(json!(slice));
                v["result_info"] = json!({"page": page, "per_page": per, "count": slice.len(), "total_count": all.len(), "total_pages": pages});
                json_answer(200, v)
            }
            ("DELETE", p) if p.starts_with("/zones/zone-1/dns_records/") => {
                let id = p.rsplit('/').next().unwrap().to_string();
                let before = s.records.len();
                s.records.retain(|x| x["id"] != id.as_str());
                if s.records.len() == before {
                    return json_answer(
                        404,
                        json!({"success": false, "errors": [{"code": 81044, "message": "Record does not exist."}], "messages": [], "result": null}),
                    );
                }
                json_answer(200, envelope(json!({"id": id})))
            }
            _ => json_answer(
                404,
                json!({"success": false, "errors": [{"code": 7003, "message": "Could not route"}]}),
            ),
        }
    })
}

fn cloudflare(port: u16, token: &str) -> cloudflare::Cloudflare {
    cloudflare::Cloudflare::new(cloudflare::CloudflareConfig {
        api_token: Some(token.into()),
        api_key: None,
        email: None,
        base_url: Some(format!("http://127.0.0.1:{port}/client/v4")),
    })
    .unwrap()
}

fn retry_after_1s() -> Answer {
    Answer {
        status: 429,
        headers: vec![("retry-after", "1".into()), ("content-type", "application/json".into())],
        body: json!({"success": false, "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}]}).to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_round_trip_auth_pagination_rate_limit() {
    let state = Arc::new(Mutex::new(CfState::default()));
    let (port, requests) = mock(cloudflare_mock(state.clone()), 4..5, retry_after_1s).await;
    let p = cloudflare(port, SECRET);
    let stored = || -> Vec<String> {
        let s = state.lock().unwrap();
        s.records
            .iter()
            .filter(|r| r["content"].as_str().unwrap().starts_with("value-"))
            .map(|r| r["content"].as_str().unwrap().to_string())
            .collect()
    };
    // 150 unrelated values at the same name: finding ours without an id takes page 2.
    {
        let mut s = state.lock().unwrap();
        for i in 0..150 {
            s.records.push(json!({"id": format!("other-{i}"), "type": "TXT", "name": "_acme-challenge.example.com", "content": format!("other-{i}"), "ttl": 120}));
        }
    }
    side_by_side(&p, stored, true).await;
    assert!(
        requests.load(Ordering::SeqCst) > 6,
        "the first (429) request was retried"
    );
    assert_eq!(
        state.lock().unwrap().records.len(),
        150,
        "only our records were removed"
    );
    let err = cloudflare(port, "wrong-secret")
        .append_records(ZONE, &[txt("x")])
        .await
        .unwrap_err();
    assert_refused(err, "cloudflare");
}

// ---------- DigitalOcean (API v2) ----------

fn digitalocean_mock(records: Arc<Mutex<Vec<Value>>>, base: Arc<Mutex<String>>) -> Handler {
    let next = Arc::new(AtomicUsize::new(1000));
    Arc::new(move |r: &Request| {
        if r.headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {SECRET}"))
        {
            return json_answer(
                401,
                json!({"id": "unauthorized", "message": "Unable to authenticate you"}),
            );
        }
        let mut all = records.lock().unwrap();
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v2/domains/example.com/records") => {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(body["name"], "_acme-challenge", "relative to the domain");
                assert!(body["ttl"].as_u64().unwrap() >= 30);
                let id = next.fetch_add(1, Ordering::SeqCst);
                let rec = json!({"id": id, "type": "TXT", "name": "_acme-challenge", "data": body["data"], "ttl": body["ttl"]});
                all.push(rec.clone());
                json_answer(201, json!({"domain_record": rec}))
            }
            ("GET", "/v2/domains/example.com/records") => {
                assert_eq!(
                    r.query.get("name").map(String::as_str),
                    Some("_acme-challenge.example.com"),
                    "the name filter is the FQDN"
                );
                let page: usize = r
                    .query
                    .get("page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                let per: usize = r
                    .query
                    .get("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(20);
                let slice: Vec<Value> = all
                    .iter()
                    .skip((page - 1) * per)
                    .take(per)
                    .cloned()
                    .collect();
                let mut links = json!({});
                if page * per < all.len() {
                    let next = format!(
                        "{}/v2/domains/example.com/records?page={}&per_page={per}&type=TXT&name=_acme-challenge.example.com",
                        base.lock().unwrap(),
                        page + 1
                    );
                    links = json!({"pages": {"next": next}});
                }
                json_answer(
                    200,
                    json!({"domain_records": slice, "links": links, "meta": {"total": all.len()}}),
                )
            }
            ("DELETE", p) if p.starts_with("/v2/domains/example.com/records/") => {
                let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                let before = all.len();
                all.retain(|x| x["id"] != id);
                if all.len() == before {
                    return json_answer(
                        404,
                        json!({"id": "not_found", "message": "The resource you were accessing could not be found."}),
                    );
                }
                Answer {
                    status: 204,
                    headers: vec![],
                    body: String::new(),
                }
            }
            _ => json_answer(404, json!({"id": "not_found", "message": "no route"})),
        }
    })
}

fn do_rate_limited() -> Answer {
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    Answer {
        status: 429,
        headers: vec![
            ("ratelimit-limit", "5000".into()),
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", reset.to_string()),
        ],
        body: json!({"id": "too_many_requests", "message": "API Rate limit exceeded."}).to_string(),
    }
}

fn digitalocean(port: u16, token: &str) -> digitalocean::DigitalOcean {
    digitalocean::DigitalOcean::new(digitalocean::DigitalOceanConfig {
        api_token: token.into(),
        base_url: Some(format!("http://127.0.0.1:{port}/v2")),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn digitalocean_round_trip_auth_pagination_rate_limit() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let base = Arc::new(Mutex::new(String::new()));
    let (port, requests) = mock(
        digitalocean_mock(records.clone(), base.clone()),
        2..3,
        do_rate_limited,
    )
    .await;
    // `links.pages.next` is absolute, on the vendor's host: the provider keeps its own base.
    *base.lock().unwrap() = "https://api.digitalocean.com".into();
    {
        let mut all = records.lock().unwrap();
        for i in 0..250 {
            all.push(json!({"id": i, "type": "TXT", "name": "_acme-challenge", "data": format!("other-{i}"), "ttl": 30}));
        }
    }
    let p = digitalocean(port, SECRET);
    let stored = || -> Vec<String> {
        records
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| {
                r["data"]
                    .as_str()
                    .filter(|d| d.starts_with("value-"))
                    .map(str::to_string)
            })
            .collect()
    };
    side_by_side(&p, stored, true).await;
    assert!(requests.load(Ordering::SeqCst) > 6);
    assert_eq!(records.lock().unwrap().len(), 250);
    assert_refused(
        digitalocean(port, "wrong-secret")
            .append_records(ZONE, &[txt("x")])
            .await
            .unwrap_err(),
        "digitalocean",
    );
}

// ---------- Hetzner DNS (API v1) ----------

fn hetzner_mock(records: Arc<Mutex<Vec<Value>>>) -> Handler {
    let next = Arc::new(AtomicUsize::new(0));
    Arc::new(move |r: &Request| {
        if r.headers
            .get("auth-api-token")
            .and_then(|v| v.to_str().ok())
            != Some(SECRET)
        {
            return json_answer(
                401,
                json!({"message": "Invalid authentication credentials"}),
            );
        }
        let mut all = records.lock().unwrap();
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v1/zones") => {
                assert_eq!(r.query.get("name").map(String::as_str), Some("example.com"));
                json_answer(
                    200,
                    json!({"zones": [{"id": "zone-h", "name": "example.com", "ttl": 86400}], "meta": {"pagination": {"page": 1, "per_page": 100, "last_page": 1, "total_entries": 1}}}),
                )
            }
            ("POST", "/api/v1/records") => {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(body["zone_id"], "zone-h");
                assert_eq!(body["name"], "_acme-challenge", "relative to the zone");
                let id = format!("h-{}", next.fetch_add(1, Ordering::SeqCst));
                let rec = json!({"id": id, "zone_id": "zone-h", "type": "TXT", "name": "_acme-challenge", "value": body["value"], "ttl": body["ttl"]});
                all.push(rec.clone());
                json_answer(200, json!({"record": rec}))
            }
            ("GET", "/api/v1/records") => {
                let page: usize = r
                    .query
                    .get("page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                let per: usize = r
                    .query
                    .get("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(100);
                let slice: Vec<Value> = all
                    .iter()
                    .skip((page - 1) * per)
                    .take(per)
                    .cloned()
                    .collect();
                let last = all.len().div_ceil(per).max(1);
                json_answer(
                    200,
                    json!({"records": slice, "meta": {"pagination": {"page": page, "per_page": per, "last_page": last, "total_entries": all.len()}}}),
                )
            }
            ("DELETE", p) if p.starts_with("/api/v1/records/") => {
                let id = p.rsplit('/').next().unwrap().to_string();
                let before = all.len();
                all.retain(|x| x["id"] != id.as_str());
                if all.len() == before {
                    return json_answer(
                        404,
                        json!({"record": {}, "error": {"message": "record not found", "code": 404}}),
                    );
                }
                Answer {
                    status: 200,
                    headers: vec![],
                    body: String::new(),
                }
            }
            _ => json_answer(404, json!({"message": "no route"})),
        }
    })
}

fn hetzner(port: u16, token: &str) -> hetzner::Hetzner {
    hetzner::Hetzner::new(hetzner::HetznerConfig {
        api_token: token.into(),
        base_url: Some(format!("http://127.0.0.1:{port}/api/v1")),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn hetzner_round_trip_auth_pagination_rate_limit() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let (port, requests) = mock(hetzner_mock(records.clone()), 4..5, retry_after_1s).await;
    {
        let mut all = records.lock().unwrap();
        for i in 0..150 {
            all.push(json!({"id": format!("o-{i}"), "zone_id": "zone-h", "type": "TXT", "name": "_acme-challenge", "value": format!("other-{i}"), "ttl": 60}));
        }
    }
    let p = hetzner(port, SECRET);
    let stored = || -> Vec<String> {
        records
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| {
                r["value"]
                    .as_str()
                    .filter(|d| d.starts_with("value-"))
                    .map(str::to_string)
            })
            .collect()
    };
    side_by_side(&p, stored, true).await;
    assert!(requests.load(Ordering::SeqCst) > 6);
    assert_eq!(records.lock().unwrap().len(), 150);
    assert_refused(
        hetzner(port, "wrong-secret")
            .append_records(ZONE, &[txt("x")])
            .await
            .unwrap_err(),
        "hetzner",
    );
}

// ---------- Gandi LiveDNS (API v5): RRsets, no pagination on these calls ----------

fn gandi_mock(rrsets: RrSets) -> Handler {
    Arc::new(move |r: &Request| {
        if r.headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {SECRET}"))
        {
            return json_answer(
                403,
                json!({"code": 403, "message": "Access was denied to this resource.", "object": "HTTPForbidden", "cause": "Forbidden"}),
            );
        }
        let Some(name) = r
            .path
            .strip_prefix("/v5/livedns/domains/example.com/records/")
            .and_then(|p| p.strip_suffix("/TXT"))
        else {
            return json_answer(
                404,
                json!({"code": 404, "message": "no route", "object": "HTTPNotFound", "cause": "Not Found"}),
            );
        };
        assert_eq!(name, "_acme-challenge", "relative to the domain");
        let mut sets = rrsets.lock().unwrap();
        let not_found = || {
            json_answer(
                404,
                json!({"code": 404, "message": format!("Can't find the DNS record {name}/TXT in LiveDNS"), "object": "HTTPNotFound", "cause": "Not Found"}),
            )
        };
        if r.method == Method::GET {
            // A slow read: two edits of one RRset not serialised by the provider lose a value.
            drop(sets);
            std::thread::sleep(Duration::from_millis(100));
            sets = rrsets.lock().unwrap();
        }
        match r.method.as_str() {
            "GET" => match sets.get(name) {
                Some((ttl, values)) => json_answer(
                    200,
                    json!({"rrset_name": name, "rrset_type": "TXT", "rrset_ttl": ttl, "rrset_values": values}),
                ),
                None => not_found(),
            },
            "PUT" => {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                let ttl = body["rrset_ttl"].as_u64().unwrap();
                assert!(ttl >= 300, "LiveDNS refuses TTLs under 300");
                let values: Vec<String> = body["rrset_values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                assert!(
                    values
                        .iter()
                        .all(|v| v.starts_with('"') && v.ends_with('"')),
                    "TXT values are quoted: {values:?}"
                );
                sets.insert(name.to_string(), (ttl, values));
                json_answer(201, json!({"message": "DNS Record Created"}))
            }
            "DELETE" => {
                if sets.remove(name).is_none() {
                    return not_found();
                }
                Answer {
                    status: 204,
                    headers: vec![],
                    body: String::new(),
                }
            }
            _ => not_found(),
        }
    })
}

fn gandi(port: u16, token: &str) -> gandi::Gandi {
    gandi::Gandi::new(gandi::GandiConfig {
        token: Some(token.into()),
        api_key: None,
        base_url: Some(format!("http://127.0.0.1:{port}/v5/livedns")),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn gandi_round_trip_auth_rate_limit() {
    let sets = Arc::new(Mutex::new(BTreeMap::new()));
    let (port, requests) = mock(gandi_mock(sets.clone()), 4..5, retry_after_1s).await;
    let p = gandi(port, SECRET);
    let stored = || -> Vec<String> {
        sets.lock()
            .unwrap()
            .get("_acme-challenge")
            .map(|(_, v)| v.iter().map(|s| s.trim_matches('"').to_string()).collect())
            .unwrap_or_default()
    };
    side_by_side(&p, stored, false).await;
    assert!(requests.load(Ordering::SeqCst) > 6);
    assert!(
        sets.lock().unwrap().is_empty(),
        "the emptied RRset is deleted"
    );
    assert_refused(
        gandi(port, "wrong-secret")
            .append_records(ZONE, &[txt("x")])
            .await
            .unwrap_err(),
        "gandi",
    );
}

// ---------- Amazon Route 53 (REST 2013-04-01, XML, SigV4) ----------

fn xml(status: u16, body: String) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", "text/xml".into())],
        body,
    }
}

fn aws_error(status: u16, code: &str, message: &str) -> Answer {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"
        ),
    )
}

fn between<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
    doc.split(&format!("<{tag}>"))
        .skip(1)
        .filter_map(|p| p.split(&format!("</{tag}>")).next())
        .collect()
}

fn route53_mock(route53_sets: RrSets) -> Handler {
    Arc::new(move |r: &Request| {
        let auth = r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let signed = auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDGOOD/")
            && auth.contains("/us-east-1/route53/aws4_request")
            && auth.contains("SignedHeaders=host;x-amz-date")
            && auth.contains("Signature=")
            && r.headers.contains_key("x-amz-date");
        if !signed {
            return aws_error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            );
        }
        let zone = |id: &str, name: &str| {
            format!(
                "<HostedZone><Id>/hostedzone/{id}</Id><Name>{name}</Name><CallerReference>ref</CallerReference><Config><PrivateZone>false</PrivateZone></Config><ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone>"
            )
        };
        let mut sets = route53_sets.lock().unwrap();
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/2013-04-01/hostedzone") => {
                // Two pages: the zone we want is on the second.
                let body = match r.query.get("marker").map(String::as_str) {
                    None => format!(
                        "<HostedZones>{}</HostedZones><IsTruncated>true</IsTruncated><NextMarker>Z2</NextMarker><MaxItems>1</MaxItems>",
                        zone("Z1", "other.org.")
                    ),
                    Some("Z2") => format!(
                        "<HostedZones>{}</HostedZones><Marker>Z2</Marker><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems>",
                        zone("Z2", "example.com.")
                    ),
                    Some(other) => panic!("unexpected marker {other}"),
                };
                xml(
                    200,
                    format!(
                        "<?xml version=\"1.0\"?>\n<ListHostedZonesResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">{body}</ListHostedZonesResponse>"
                    ),
                )
            }
            ("GET", "/2013-04-01/hostedzone/Z2/rrset") => {
                // A slow read: two edits of one RRset not serialised by the provider lose a value.
                drop(sets);
                std::thread::sleep(Duration::from_millis(100));
                let sets = route53_sets.lock().unwrap();
                let name = r.query.get("name").cloned().unwrap_or_default();
                // The API lists from the given name on: with none there, the next set comes.
                let (set_name, (ttl, values)) = match sets.get(&name) {
                    Some(s) => (name.clone(), s.clone()),
                    None => (
                        "zzz.example.com.".to_string(),
                        (300, vec!["\"unrelated\"".to_string()]),
                    ),
                };
                let records: String = values
                    .iter()
                    .map(|v| {
                        format!(
                            "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                            v.replace('"', "&quot;")
                        )
                    })
                    .collect();
                xml(
                    200,
                    format!(
                        "<?xml version=\"1.0\"?>\n<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ResourceRecordSets><ResourceRecordSet><Name>{set_name}</Name><Type>TXT</Type><TTL>{ttl}</TTL><ResourceRecords>{records}</ResourceRecords></ResourceRecordSet></ResourceRecordSets><IsTruncated>true</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>"
                    ),
                )
            }
            ("POST", "/2013-04-01/hostedzone/Z2/rrset") => {
                let action = between(&r.body, "Action")[0];
                let name = between(&r.body, "Name")[0].to_string();
                let ttl: u64 = between(&r.body, "TTL")[0].parse().unwrap();
                let values: Vec<String> = between(&r.body, "Value")
                    .iter()
                    .map(|v| v.replace("&quot;", "\""))
                    .collect();
                assert!(
                    values.iter().all(|v| v.starts_with('"')),
                    "TXT values are quoted"
                );
                match action {
                    "UPSERT" => {
                        sets.insert(name, (ttl, values));
                    }
                    "DELETE" => {
                        // DELETE must match the set exactly.
                        if sets.get(&name) != Some(&(ttl, values)) {
                            return aws_error(
                                400,
                                "InvalidChangeBatch",
                                "Tried to delete resource record set but the values provided do not match the current values",
                            );
                        }
                        sets.remove(&name);
                    }
                    other => panic!("unexpected action {other}"),
                }
                xml(200, "<?xml version=\"1.0\"?>\n<ChangeResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo><Id>/change/C1</Id><Status>PENDING</Status><SubmittedAt>2026-11-29T00:00:00.000Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>".into())
            }
            _ => aws_error(404, "NoSuchHostedZone", "No hosted zone found"),
        }
    })
}

fn throttling() -> Answer {
    aws_error(400, "Throttling", "Rate exceeded")
}

fn route53(port: u16, key_id: &str) -> route53::Route53 {
    route53::Route53::new(route53::Route53Config {
        access_key_id: key_id.into(),
        secret_access_key: SECRET.into(),
        session_token: None,
        hosted_zone_id: None,
        region: None,
        base_url: Some(format!("http://127.0.0.1:{port}")),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn route53_round_trip_auth_pagination_throttling() {
    let sets = Arc::new(Mutex::new(BTreeMap::new()));
    let (port, requests) = mock(route53_mock(sets.clone()), 8..10, throttling).await;
    let p = route53(port, "AKIDGOOD");
    let stored = || -> Vec<String> {
        sets.lock()
            .unwrap()
            .get("_acme-challenge.example.com.")
            .map(|(_, v)| v.iter().map(|s| s.trim_matches('"').to_string()).collect())
            .unwrap_or_default()
    };
    side_by_side(&p, stored, false).await;
    assert!(
        requests.load(Ordering::SeqCst) > 8,
        "throttled requests were retried"
    );
    assert!(sets.lock().unwrap().is_empty());
    let err = route53(port, "AKIDWRONG")
        .append_records(ZONE, &[txt("x")])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("InvalidClientTokenId") && text.contains("route53"),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");
}
