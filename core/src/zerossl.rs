//! ZeroSSL's EAB credentials from an account email (or an API key), through ZeroSSL's
//! documented API (`POST /acme/eab-credentials-email` with a form field `email`, or
//! `POST /acme/eab-credentials?access_key=…`; the answer `{"success": true, "eab_kid",
//! "eab_hmac_key"}` or `{"success": false, "error": {"code", "type"}}`), so that a ZeroSSL
//! issuer needs no credentials copied from a dashboard. Asked only when a new ACME account is
//! registered: the account is stored and reused afterwards.

use crate::acme_http::AcmeHttp;
use crate::config::ExternalAccountBinding;
use crate::error::{Error, ErrorKind, Result};

/// ZeroSSL's API, where EAB credentials come from.
pub const ZEROSSL_API: &str = "https://api.zerossl.com";

/// Where and as whom to ask for EAB credentials.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ZeroSslEab {
    /// The API base URL (`https://api.zerossl.com`; a test server's in tests).
    pub api_url: String,
    /// The account email (used when there is no API key).
    pub email: String,
    /// A ZeroSSL API access key, if given (never printed).
    pub api_key: Option<String>,
}

impl std::fmt::Debug for ZeroSslEab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroSslEab")
            .field("api_url", &self.api_url)
            .field("email", &self.email)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ZeroSslEab {
    /// Asks ZeroSSL for a key id and HMAC key.
    pub async fn fetch(&self, http: &AcmeHttp) -> Result<ExternalAccountBinding> {
        let base = self.api_url.trim_end_matches('/');
        let (url, body) = match &self.api_key {
            Some(key) => (
                format!(
                    "{base}/acme/eab-credentials?access_key={}",
                    form_encode(key)
                ),
                None,
            ),
            None => (
                format!("{base}/acme/eab-credentials-email"),
                Some((
                    "application/x-www-form-urlencoded",
                    format!("email={}", form_encode(&self.email)).into_bytes(),
                )),
            ),
        };
        let who = match &self.api_key {
            Some(_) => "the API key".to_string(),
            None => format!("`{}`", self.email),
        };
        let (parts, body) = http.send(http::Method::POST, &url, body).await?;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let refused = |why: String| {
            Error::new(
                ErrorKind::Acme,
                format!("ZeroSSL gave no EAB credentials for {who}: {why}"),
            )
        };
        if !parts.status.is_success() || v["success"] != true {
            let error = &v["error"];
            return Err(refused(
                match (error["type"].as_str(), error["code"].as_i64()) {
                    (Some(t), Some(c)) => format!("{t} (code {c}, HTTP {})", parts.status),
                    _ => format!("HTTP {}", parts.status),
                },
            ));
        }
        match (v["eab_kid"].as_str(), v["eab_hmac_key"].as_str()) {
            (Some(kid), Some(hmac)) if !kid.is_empty() && !hmac.is_empty() => {
                tracing::info!(key_id = kid, "got EAB credentials from ZeroSSL");
                Ok(ExternalAccountBinding {
                    key_id: kid.to_string(),
                    hmac_key: hmac.to_string(),
                })
            }
            _ => Err(refused("the answer has no eab_kid/eab_hmac_key".into())),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_values_are_encoded() {
        assert_eq!(super::form_encode("a+b@x.test"), "a%2Bb%40x.test");
    }
}
