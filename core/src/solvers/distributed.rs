//! Challenges shared through storage: the instance that orders writes
//! `acme/<issuer>/challenge_tokens/<identifier>.json` (compact JSON, acmez's `acme.Challenge`
//! shape, as Go CertMagic writes it), and any instance sharing the storage that receives the CA's
//! validation request answers from it.

use super::ChallengeInfo;
use crate::config::ChallengeType;
use crate::error::{ErrorKind, Result};
use crate::storage::{Storage, keys};

pub(crate) async fn store(storage: &dyn Storage, key: &str, info: &ChallengeInfo) -> Result<()> {
    let json = serde_json::to_vec(info)?;
    storage
        .store(key, &json)
        .await
        .map_err(|e| e.context("writing challenge to storage"))
}

/// The challenge of `kind` stored for `challenge_key` under any of `issuer_keys`, if one exists
/// and decodes. Storage errors other than "not found" are logged, not returned: a validation
/// request simply goes unanswered.
pub async fn load(
    storage: &dyn Storage,
    issuer_keys: &[impl AsRef<str>],
    challenge_key: &str,
    kind: ChallengeType,
) -> Option<ChallengeInfo> {
    for issuer_key in issuer_keys {
        let key = keys::challenge_token(issuer_key.as_ref(), challenge_key);
        match storage.load(&key).await {
            Ok(bytes) => match serde_json::from_slice::<ChallengeInfo>(&bytes) {
                Ok(info) if info.is(kind) => return Some(info),
                Ok(_) => {}
                Err(e) => tracing::warn!(key, error = %e, "undecodable challenge in storage"),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(key, error = %e, "reading challenge from storage"),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn round_trip_in_acmez_shape() {
        let s = MemoryStorage::new();
        let info = ChallengeInfo::new(
            ChallengeType::Http01,
            "https://ca/chall/1",
            "tok",
            "tok.thumb".into(),
            "a.test",
        );
        let key = keys::challenge_token("ca-dir", "a.test");
        store(&s, &key, &info).await.unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&s.load(&key).await.unwrap()).unwrap();
        assert_eq!(raw["type"], "http-01");
        assert_eq!(raw["keyAuthorization"], "tok.thumb");
        assert_eq!(raw["identifier"]["type"], "dns");
        assert_eq!(raw["identifier"]["value"], "a.test");
        assert_eq!(
            load(&s, &["other", "ca-dir"], "a.test", ChallengeType::Http01).await,
            Some(info)
        );
        assert_eq!(
            load(&s, &["ca-dir"], "a.test", ChallengeType::TlsAlpn01).await,
            None
        );
        s.store(&key, b"{torn").await.unwrap();
        assert_eq!(
            load(&s, &["ca-dir"], "a.test", ChallengeType::Http01).await,
            None
        );
    }
}
