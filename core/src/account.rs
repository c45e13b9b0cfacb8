//! ACME accounts in storage, in Go CertMagic's layout:
//! `acme/<issuer>/users/<email|default>/<local-part|default>.{json,key}`. The key is an ECDSA
//! P-256 `EC PRIVATE KEY`; the JSON is acmez's `acme.Account`, tab-indented.

use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

use crate::certificate::to_go_indented_json;
use crate::crypto;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{Storage, keys};

/// The registration file of an account (acmez `acme.Account`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRegistration {
    /// `valid`, `deactivated` or `revoked`.
    #[serde(default)]
    pub status: String,
    /// Contact URLs (`mailto:…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// Whether the CA's terms were agreed to.
    #[serde(
        rename = "termsOfServiceAgreed",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub terms_of_service_agreed: bool,
    /// The EAB JWS sent at registration (kept if Caddy wrote it).
    #[serde(
        rename = "externalAccountBinding",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_account_binding: Option<serde_json::Value>,
    /// The orders URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orders: String,
    /// The account URL (the `kid` of every request).
    #[serde(default)]
    pub location: String,
}

/// Where one account lives in storage.
#[derive(Debug, Clone)]
pub(crate) struct AccountKeys {
    pub reg: String,
    pub key: String,
}

impl AccountKeys {
    pub fn new(issuer_key: &str, email: &str) -> Self {
        Self {
            reg: keys::user_reg(issuer_key, email),
            key: keys::user_private_key(issuer_key, email),
        }
    }
}

/// Loads an account; `Ok(None)` when there is none. A registration or key that cannot be read
/// is an error naming the file, so a damaged account is not silently replaced.
pub(crate) async fn load(
    storage: &dyn Storage,
    at: &AccountKeys,
) -> Result<Option<(AccountRegistration, PrivatePkcs8KeyDer<'static>)>> {
    let reg_bytes = match storage.load(&at.reg).await {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let key_bytes = match storage.load(&at.key).await {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let reg: AccountRegistration = serde_json::from_slice(&reg_bytes).map_err(|e| {
        Error::new(
            ErrorKind::Corrupt,
            format!("account file `{}` is not valid JSON: {e}", at.reg),
        )
    })?;
    if reg.location.is_empty() {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("account file `{}` has no location", at.reg),
        ));
    }
    let key = crypto::decode_private_key_pem(&key_bytes).map_err(|e| {
        Error::new(
            ErrorKind::Corrupt,
            format!("account key `{}`: {}", at.key, e.message()),
        )
    })?;
    Ok(Some((reg, to_pkcs8_p256(key, &at.key)?)))
}

/// Saves a new account: key first, then registration (a registration never points at a missing
/// key); the key is removed again if the registration cannot be written.
pub(crate) async fn save(
    storage: &dyn Storage,
    at: &AccountKeys,
    reg: &AccountRegistration,
    key_pem: &str,
) -> Result<()> {
    storage.store(&at.key, key_pem.as_bytes()).await?;
    if let Err(e) = storage.store(&at.reg, &to_go_indented_json(reg)).await {
        let _ = storage.delete(&at.key).await;
        return Err(e);
    }
    Ok(())
}

/// Deletes an account the CA no longer knows.
pub(crate) async fn delete(storage: &dyn Storage, at: &AccountKeys) -> Result<()> {
    storage.delete(&at.reg).await?;
    storage.delete(&at.key).await
}

/// The account key as PEM `EC PRIVATE KEY`, from the PKCS#8 that instant-acme generated.
pub(crate) fn key_pem_from_credentials(
    credentials: &instant_acme::AccountCredentials,
) -> Result<String> {
    let key = rcgen::KeyPair::try_from(credentials.private_key())
        .map_err(|e| Error::internal(format!("account key from the ACME client: {e}")))?;
    crypto::encode_private_key_pem(&key)
}

/// instant-acme signs with ECDSA P-256 in PKCS#8; accounts written by Go use SEC1.
fn to_pkcs8_p256(key: PrivateKeyDer<'static>, file: &str) -> Result<PrivatePkcs8KeyDer<'static>> {
    let pair = crypto::key_pair_from_der(&key)?;
    if crypto::key_type_of(&pair) != Some(crypto::KeyType::EcdsaP256) {
        return Err(Error::new(
            ErrorKind::Certificate,
            format!("account key `{file}` is not ECDSA P-256, the only account key type supported"),
        ));
    }
    match key {
        PrivateKeyDer::Pkcs8(p) => Ok(p),
        other => Ok(PrivatePkcs8KeyDer::from(crypto::sec1_p256_to_pkcs8(
            other.secret_der(),
        )?)),
    }
}

/// The thumbprint-free identity of an account for logs: its URL's last segment.
pub(crate) fn short_id(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or(location)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn save_load_and_go_shape() {
        let s = MemoryStorage::new();
        let at = AccountKeys::new("127.0.0.1:14000-dir", "me@example.com");
        assert_eq!(
            at.reg,
            "acme/127.0.0.1-14000-dir/users/me@example.com/me.json"
        );
        assert!(load(&s, &at).await.unwrap().is_none());
        let key = crypto::generate_key(crypto::KeyType::EcdsaP256).unwrap();
        let pem = crypto::encode_private_key_pem(&key).unwrap();
        let reg = AccountRegistration {
            status: "valid".into(),
            contact: vec!["mailto:me@example.com".into()],
            terms_of_service_agreed: true,
            external_account_binding: None,
            orders: String::new(),
            location: "https://ca/acct/1".into(),
        };
        save(&s, &at, &reg, &pem).await.unwrap();
        let text = String::from_utf8(s.load(&at.reg).await.unwrap()).unwrap();
        assert!(text.starts_with("{\n\t\"status\": \"valid\",\n\t\"contact\": [\n\t\t\"mailto:me@example.com\"\n\t],\n\t\"termsOfServiceAgreed\": true,"), "{text}");
        let (back, pkcs8) = load(&s, &at).await.unwrap().unwrap();
        assert_eq!(back, reg);
        assert_eq!(
            rcgen::KeyPair::try_from(&pkcs8).unwrap().public_key_raw(),
            key.public_key_raw()
        );

        s.store(&at.reg, b"").await.unwrap();
        assert_eq!(load(&s, &at).await.unwrap_err().kind(), ErrorKind::Corrupt);
    }
}
