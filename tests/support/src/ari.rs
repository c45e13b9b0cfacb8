//! A proxy in front of Pebble that speaks ACME Renewal Information (RFC 9773), which Debian's
//! Pebble 2.4 lacks: it forwards every request to Pebble keeping the `Host` header (Pebble
//! builds its URLs and checks JWS `url`s from it, so the client only ever sees the proxy), adds
//! `renewalInfo` to the directory, answers `GET /renewal-info/<certID>` with the windows a test
//! chooses (RFC 9773 §4.2 shape, with `Retry-After`), records the `replaces` field of new
//! orders and reflects it in the created order as an ARI server does, and can refuse a
//! replacement with `alreadyReplaced`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::Pebble;
use crate::https::{HttpsServer, respond};

/// A suggested renewal window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: SystemTime,
    pub end: SystemTime,
}

impl Window {
    /// A window that is over: "renew now".
    pub fn past() -> Window {
        let now = SystemTime::now();
        Window {
            start: now - Duration::from_secs(7200),
            end: now - Duration::from_secs(3600),
        }
    }

    /// A window a month away.
    pub fn future() -> Window {
        let now = SystemTime::now();
        Window {
            start: now + Duration::from_secs(30 * 86400),
            end: now + Duration::from_secs(31 * 86400),
        }
    }
}

#[derive(Default)]
struct State {
    windows: HashMap<String, Window>,
    default_window: Option<Window>,
    retry_after_secs: u64,
    replaces: Vec<String>,
    already_replaced: HashSet<String>,
    renewal_info_requests: Vec<String>,
}

/// The running proxy; stopped on drop.
pub struct AriProxy {
    /// The directory URL to give the client instead of Pebble's.
    pub directory_url: String,
    state: Arc<Mutex<State>>,
    _server: HttpsServer,
}

impl std::fmt::Debug for AriProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AriProxy")
            .field("directory_url", &self.directory_url)
            .finish_non_exhaustive()
    }
}

impl AriProxy {
    /// Starts a proxy for `pebble` on a free port, answering every certificate with a window
    /// a month away until told otherwise, and `Retry-After: 3600`.
    pub fn start(pebble: &Pebble) -> AriProxy {
        let upstream = pebble.directory_url.trim_end_matches("/dir").to_string();
        let state = Arc::new(Mutex::new(State {
            default_window: Some(Window::future()),
            retry_after_secs: 3600,
            ..State::default()
        }));
        let api_ca = pebble.api_ca_pem.clone();
        let shared = state.clone();
        let server = HttpsServer::start(move || {
            let client = upstream_client(&api_ca);
            move |req| {
                let (client, upstream, state) = (client.clone(), upstream.clone(), shared.clone());
                async move { handle(req, &client, &upstream, &state).await }
            }
        });
        AriProxy {
            directory_url: format!("https://127.0.0.1:{}/dir", server.port),
            state,
            _server: server,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The window answered for certificate `cert_id`.
    pub fn set_window(&self, cert_id: &str, window: Window) {
        self.state().windows.insert(cert_id.to_string(), window);
    }

    /// The window answered for certificates without their own (`None`: 404).
    pub fn set_default_window(&self, window: Option<Window>) {
        self.state().default_window = window;
    }

    /// The `Retry-After` of renewal-info answers, seconds.
    pub fn set_retry_after(&self, secs: u64) {
        self.state().retry_after_secs = secs;
    }

    /// New orders for `cert_id`'s replacement are refused with `alreadyReplaced`.
    pub fn refuse_replacing(&self, cert_id: &str) {
        self.state().already_replaced.insert(cert_id.to_string());
    }

    /// The `replaces` values of the new orders seen, in order.
    pub fn replaces(&self) -> Vec<String> {
        self.state().replaces.clone()
    }

    /// The certificate ids renewal information was asked for, in order.
    pub fn renewal_info_requests(&self) -> Vec<String> {
        self.state().renewal_info_requests.clone()
    }
}

type Upstream = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// An HTTPS client trusting Pebble's API CA.
fn upstream_client(api_ca: &str) -> Upstream {
    let tls = crate::client_config(api_ca);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn handle(
    req: hyper::Request<Bytes>,
    client: &Upstream,
    upstream: &str,
    state: &Mutex<State>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(id) = path.strip_prefix("/renewal-info/") {
        let (window, retry_after) = {
            let mut s = lock(state);
            s.renewal_info_requests.push(id.to_string());
            (
                s.windows.get(id).copied().or(s.default_window),
                s.retry_after_secs,
            )
        };
        return match window {
            Some(w) => respond(
                200,
                &[
                    ("content-type", "application/json".into()),
                    ("retry-after", retry_after.to_string()),
                ],
                serde_json::json!({
                    "suggestedWindow": {"start": rfc3339(w.start), "end": rfc3339(w.end)},
                    "explanationURL": "https://ari-proxy.test/why",
                })
                .to_string()
                .into_bytes(),
            ),
            None => respond(404, &[], Vec::new()),
        };
    }
    let (parts, body) = req.into_parts();
    let replaces = (path == "/order-plz").then(|| replaces_of(&body)).flatten();
    if let Some(r) = &replaces {
        let refused = {
            let mut s = lock(state);
            s.replaces.push(r.clone());
            s.already_replaced.contains(r)
        };
        if refused {
            return respond(
                409,
                &[("content-type", "application/problem+json".into())],
                serde_json::json!({
                    "type": "urn:ietf:params:acme:error:alreadyReplaced",
                    "detail": "the certificate has been replaced already",
                    "status": 409,
                })
                .to_string()
                .into_bytes(),
            );
        }
    }
    let mut forward = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(format!(
            "{upstream}{}",
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        ));
    for (k, v) in &parts.headers {
        forward = forward.header(k, v);
    }
    let forward = forward.body(Full::new(body)).expect("request");
    let Ok(rsp) = client.request(forward).await else {
        return respond(502, &[], b"pebble unreachable".to_vec());
    };
    let (mut parts, body) = rsp.into_parts();
    let mut body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let is_json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).ok();
    if path == "/dir"
        && let Some(mut dir) = is_json(&body)
    {
        dir["renewalInfo"] = format!("https://{host}/renewal-info").into();
        body = dir.to_string().into_bytes();
    }
    if let Some(r) = replaces
        && parts.status.is_success()
        && let Some(mut order) = is_json(&body)
    {
        order["replaces"] = r.into();
        body = order.to_string().into_bytes();
    }
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    hyper::Response::from_parts(parts, Full::new(Bytes::from(body)))
}

/// The `replaces` field of a JWS-signed new-order request (its payload is not verified).
fn replaces_of(jws: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(jws).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(v["payload"].as_str()?).ok()?;
    let p: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    p["replaces"].as_str().map(str::to_string)
}
