//! One stored value as `pberkel/caddy-storage-redis` (v1.8.1) keeps it: a Redis string holding
//! the compact JSON of Go's `StorageData`,
//! `{"value":<standard base64, padded>,"modified":<RFC 3339>,"size":<bytes before compression>,
//! "compression":0|1|2,"encryption":0|1}`, where the value is first compressed (1: raw DEFLATE,
//! 2: zlib; kept only if strictly shorter) and then sealed with AES-256-GCM (a 12-byte nonce,
//! the ciphertext, the 16-byte tag; no associated data).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, ErrorKind, Result};

/// Largest value a compressed record may expand to (the plugin's limit too).
const MAX_DECOMPRESSED: usize = 4 << 20;
const TAG_LEN: usize = 16;

/// How values are compressed before they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Stored as given (the plugin's default).
    #[default]
    None,
    /// Raw DEFLATE (RFC 1951), flag 1.
    Flate,
    /// zlib (RFC 1950), flag 2.
    Zlib,
}

impl Compression {
    fn flag(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Flate => 1,
            Self::Zlib => 2,
        }
    }
}

/// The AES-256 key of `encryption_key` (its first 32 bytes, as the plugin uses it).
#[derive(Clone)]
pub struct EncryptionKey([u8; 32]);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(***)")
    }
}

impl EncryptionKey {
    /// The key from the configured text; at least 32 bytes.
    pub fn from_text(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        (bytes.len() >= 32).then(|| {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes[..32]);
            Self(k)
        })
    }

    fn key(&self) -> LessSafeKey {
        // A 32-byte key is always valid for AES-256.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("32-byte AES-256 key"))
    }
}

#[derive(Serialize, Deserialize)]
struct StorageData {
    value: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    modified: OffsetDateTime,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    compression: u8,
    #[serde(default)]
    encryption: u8,
}

/// A decoded record.
#[derive(Debug)]
pub struct Record {
    pub value: Vec<u8>,
    pub modified: OffsetDateTime,
    pub size: u64,
}

/// The JSON the plugin stores for `value` written at `modified`.
pub fn encode(
    value: &[u8],
    modified: OffsetDateTime,
    compression: Compression,
    encryption: Option<&EncryptionKey>,
) -> Result<Vec<u8>> {
    let compressed = match compression {
        Compression::None => None,
        Compression::Flate => Some(miniz_oxide::deflate::compress_to_vec(value, 6)),
        Compression::Zlib => Some(miniz_oxide::deflate::compress_to_vec_zlib(value, 6)),
    };
    let (mut body, flag) = match compressed {
        Some(c) if c.len() < value.len() => (c, compression.flag()),
        _ => (value.to_vec(), 0),
    };
    let mut encryption_flag = 0;
    if let Some(key) = encryption {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| Error::internal("no randomness for an encryption nonce"))?;
        key.key()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut body)
            .map_err(|_| Error::internal("sealing a storage value"))?;
        let mut sealed = nonce.to_vec();
        sealed.append(&mut body);
        body = sealed;
        encryption_flag = 1;
    }
    let data = StorageData {
        value: Some(STANDARD.encode(&body)),
        modified,
        size: value.len() as i64,
        compression: flag,
        encryption: encryption_flag,
    };
    serde_json::to_vec(&data).map_err(|e| Error::internal(format!("encoding a record: {e}")))
}

/// Decodes what the plugin (or [`encode`]) stored at `key`.
pub fn decode(key: &str, raw: &[u8], encryption: Option<&EncryptionKey>) -> Result<Record> {
    let corrupt = |why: &str| {
        Error::new(
            ErrorKind::Corrupt,
            format!("storage value `{key}` in Redis: {why}"),
        )
    };
    let data: StorageData = serde_json::from_slice(raw)
        .map_err(|e| corrupt(&format!("not a caddy-storage-redis record: {e}")))?;
    let mut body = match &data.value {
        Some(v) => STANDARD
            .decode(v)
            .map_err(|e| corrupt(&format!("value is not base64: {e}")))?,
        None => Vec::new(),
    };
    if data.encryption > 0 {
        let Some(key) = encryption else {
            return Err(Error::new(
                ErrorKind::Storage,
                format!(
                    "storage value `{key}` in Redis is encrypted; set the storage's `encryption_key`"
                ),
            ));
        };
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(corrupt("encrypted value too short"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&body[..NONCE_LEN]);
        let mut sealed = body.split_off(NONCE_LEN);
        let plain = key
            .key()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| corrupt("cannot decrypt (wrong encryption_key?)"))?
            .len();
        sealed.truncate(plain);
        body = sealed;
    }
    if data.compression > 0 {
        let inflated = if data.compression == 2 {
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&body, MAX_DECOMPRESSED)
        } else {
            miniz_oxide::inflate::decompress_to_vec_with_limit(&body, MAX_DECOMPRESSED)
        };
        body = inflated.map_err(|e| corrupt(&format!("cannot decompress: {e}")))?;
    }
    Ok(Record {
        size: body.len() as u64,
        value: body,
        modified: data.modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn plain_record_in_the_plugins_shape() {
        // As Go's json.Marshal writes StorageData: field order, padding, offset time.
        let go = br#"{"value":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=","modified":"2026-07-21T11:57:45.123456789+10:00","size":59,"compression":0,"encryption":0}"#;
        let r = decode("k", go, None).unwrap();
        assert_eq!(r.value, PEM);
        assert_eq!(r.size, 59);
        assert_eq!(r.modified.unix_timestamp(), 1_784_599_065);
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_784_599_065_123_456_789).unwrap();
        let ours = encode(PEM, t, Compression::None, None).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            r#"{"value":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=","modified":"2026-07-21T01:57:45.123456789Z","size":59,"compression":0,"encryption":0}"#
        );
    }

    #[test]
    fn compressed_and_encrypted_round_trip_and_null_value() {
        let key =
            EncryptionKey::from_text("0123456789abcdef0123456789abcdef-extra-ignored").unwrap();
        let big = PEM.repeat(20);
        let now = OffsetDateTime::now_utc();
        for c in [Compression::None, Compression::Flate, Compression::Zlib] {
            for k in [None, Some(&key)] {
                let raw = encode(&big, now, c, k).unwrap();
                let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
                assert_eq!(json["size"], big.len());
                assert_eq!(json["compression"], c.flag());
                assert_eq!(json["encryption"], u8::from(k.is_some()));
                assert_eq!(decode("k", &raw, k).unwrap().value, big);
            }
        }
        // Not shorter: stored uncompressed with flag 0.
        let raw = encode(b"x", now, Compression::Zlib, None).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["compression"],
            0
        );
        // A zlib stream as Go's compress/zlib writes it (header 78 9c) decodes.
        let z = miniz_oxide::deflate::compress_to_vec_zlib(PEM, 6);
        assert_eq!(&z[..2], &[0x78, 0x9c]);
        let go = format!(
            r#"{{"value":"{}","modified":"2026-01-01T00:00:00Z","size":59,"compression":2,"encryption":0}}"#,
            STANDARD.encode(&z)
        );
        assert_eq!(decode("k", go.as_bytes(), None).unwrap().value, PEM);
        let null = br#"{"value":null,"modified":"2026-01-01T00:00:00Z","size":0,"compression":0,"encryption":0}"#;
        assert!(decode("k", null, None).unwrap().value.is_empty());
    }

    #[test]
    fn bad_records_are_named_errors() {
        let key = EncryptionKey::from_text(&"k".repeat(32)).unwrap();
        let other = EncryptionKey::from_text(&"o".repeat(32)).unwrap();
        let sealed = encode(
            PEM,
            OffsetDateTime::now_utc(),
            Compression::None,
            Some(&key),
        )
        .unwrap();
        assert_eq!(
            decode("k", &sealed, Some(&other)).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        let e = decode("a/b", &sealed, None).unwrap_err();
        assert!(e.message().contains("encryption_key"), "{e}");
        for raw in [
            &b"{"[..],
            b"not json",
            br#"{"value":"***","modified":"2026-01-01T00:00:00Z"}"#,
        ] {
            let e = decode("a/b", raw, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt);
            assert!(e.message().contains("`a/b`"), "{e}");
        }
        assert!(EncryptionKey::from_text("short").is_none());
        let bomb = format!(
            r#"{{"value":"{}","modified":"2026-01-01T00:00:00Z","size":1,"compression":1,"encryption":0}}"#,
            STANDARD.encode(miniz_oxide::deflate::compress_to_vec(
                &vec![0u8; 8 << 20],
                6
            ))
        );
        assert_eq!(
            decode("k", bomb.as_bytes(), None).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
}
