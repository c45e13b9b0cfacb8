//! ZeroSSL's EAB API in its documented shape, on loopback: `POST /acme/eab-credentials-email`
//! with the form field `email`, or `POST /acme/eab-credentials?access_key=…`, answered
//! `{"success": true, "eab_kid", "eab_hmac_key"}` (credentials a test also gives Pebble), or
//! `{"success": false, "error": {"code", "type"}}` for an email or key it refuses.

use std::sync::{Arc, Mutex};

use crate::https::{HttpsServer, respond};

/// The running API; stopped on drop.
#[derive(Debug)]
pub struct ZeroSslApi {
    /// The API base URL (`https://127.0.0.1:<port>`).
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    _server: HttpsServer,
}

/// The access key the API accepts.
pub const ACCESS_KEY: &str = "test-access-key";

impl ZeroSslApi {
    /// Hands out `(kid, hmac)` for any email except those starting with `refused`, and for
    /// [`ACCESS_KEY`].
    pub fn start(kid: &str, hmac: &str) -> ZeroSslApi {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (seen, kid, hmac) = (requests.clone(), kid.to_string(), hmac.to_string());
        let server = HttpsServer::start(move || {
            move |req: hyper::Request<bytes::Bytes>| {
                let (seen, kid, hmac) = (seen.clone(), kid.clone(), hmac.clone());
                async move {
                    let path = req.uri().path().to_string();
                    let query = req.uri().query().unwrap_or("").to_string();
                    let form = String::from_utf8_lossy(req.body()).to_string();
                    let who = match path.as_str() {
                        "/acme/eab-credentials-email"
                            if req.method() == hyper::Method::POST
                                && req
                                    .headers()
                                    .get(hyper::header::CONTENT_TYPE)
                                    .is_some_and(|v| v == "application/x-www-form-urlencoded") =>
                        {
                            form.strip_prefix("email=").map(decode)
                        }
                        "/acme/eab-credentials" if req.method() == hyper::Method::POST => query
                            .strip_prefix("access_key=")
                            .map(|k| format!("key:{}", decode(k))),
                        _ => None,
                    };
                    let Some(who) = who else {
                        return respond(404, &[], Vec::new());
                    };
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(who.clone());
                    let ok = !who.starts_with("refused")
                        && (!who.starts_with("key:") || who == format!("key:{ACCESS_KEY}"));
                    let body = if ok {
                        serde_json::json!({"success": true, "eab_kid": kid, "eab_hmac_key": hmac})
                    } else {
                        serde_json::json!({"success": false, "error": {"code": 2900, "type": "invalid_email_address"}})
                    };
                    respond(
                        200,
                        &[("content-type", "application/json".into())],
                        body.to_string().into_bytes(),
                    )
                }
            }
        });
        ZeroSslApi {
            url: format!("https://127.0.0.1:{}", server.port),
            requests,
            _server: server,
        }
    }

    /// Who asked, in order: emails, or `key:<access key>`.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Decodes a form value (`%XX` and `+`).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}
