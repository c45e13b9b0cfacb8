//! [`PrivateKey`]: a served certificate's private key: its DER, and the signing key parsed from
//! it, at once or, for an EC key that carries its public point (every EC key Go CertMagic and
//! this library write), at the first handshake that signs with it.
//!
//! Parsing an EC key recomputes its public point (a scalar multiplication, most of the CPU of
//! loading a stored certificate) and keeps about half a KiB of aws-lc state, while a server
//! holding 100,000 certificates signs with few of them. So a load compares the point the key
//! carries with the certificate's (a key of another certificate is refused there, as before),
//! and the first signature checks that the secret gives that point: a secret altered behind an
//! intact point is found at that handshake, which fails (logged); the key never signs. Such
//! keys then stay parsed while they keep signing: at most [`PARSED_KEYS_KEPT`] at once,
//! process-wide, the least recently used dropped (CLOCK) and parsed again at its next
//! signature, so memory does not grow with every name a server has ever answered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use rustls::SignatureAlgorithm;
use rustls::SignatureScheme;
use rustls::sign::{Signer, SigningKey};
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

use crate::crypto;
use crate::error::{Error, ErrorKind, Result};

/// Deferred keys kept parsed at once, process-wide (about 0.9 KiB each in aws-lc): a server signing
/// with more distinct keys than this re-parses the least recently used (tens of microseconds)
/// instead of keeping every one it ever signed with.
const PARSED_KEYS_KEPT: usize = 4096;

static PARSED_KEYS: ParsedKeys = ParsedKeys::new(PARSED_KEYS_KEPT);

pub(crate) struct PrivateKey {
    der: PrivateKeyDer<'static>,
    algorithm: SignatureAlgorithm,
    signer: RwLock<Slot>,
}

enum Slot {
    /// Parsed at load, kept for the key's life.
    Kept(Arc<dyn SigningKey>),
    /// Deferred: parsed while [`ParsedKeys`] holds it (never yet, or evicted when dangling).
    Deferred(Weak<Parsed>),
    /// A deferred parse refused the key (logged once).
    Refused,
}

struct Parsed {
    key: Arc<dyn SigningKey>,
    /// Signed with since the clock hand last passed (second chance).
    used: AtomicBool,
}

/// The deferred keys kept parsed: a CLOCK (second-chance) list, bounded.
struct ParsedKeys {
    capacity: usize,
    ring: Mutex<VecDeque<Arc<Parsed>>>,
}

impl ParsedKeys {
    const fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ring: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps `parsed`, evicting the first key not used since the hand last passed it.
    fn keep(&self, parsed: Arc<Parsed>) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        while ring.len() >= self.capacity.max(1) {
            let Some(oldest) = ring.pop_front() else {
                break;
            };
            if oldest.used.swap(false, Ordering::Relaxed) {
                ring.push_back(oldest);
            }
        }
        ring.push_back(parsed);
    }

    /// Lets `parsed` go now (its certificate is gone).
    fn forget(&self, parsed: &Arc<Parsed>) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.retain(|kept| !Arc::ptr_eq(kept, parsed));
    }
}

impl PrivateKey {
    /// The key of a certificate whose leaf has the SubjectPublicKeyInfo `leaf_spki` (DER).
    /// `signer`: the key already parsed by the caller. With `check`, a key that is not the
    /// leaf's is an error.
    pub(crate) fn for_leaf(
        der: PrivateKeyDer<'static>,
        signer: Option<Arc<dyn SigningKey>>,
        leaf_spki: &[u8],
        check: bool,
    ) -> Result<Self> {
        let mismatch = || {
            Error::new(
                ErrorKind::Certificate,
                "private key does not match the certificate",
            )
        };
        if signer.is_none()
            && let Some(carried) = crypto::carried_ec_spki(&der)
        {
            if check && carried.as_ref() != leaf_spki {
                return Err(mismatch());
            }
            return Ok(Self {
                der,
                algorithm: SignatureAlgorithm::ECDSA,
                signer: RwLock::new(Slot::Deferred(Weak::new())),
            });
        }
        let signer = match signer {
            Some(signer) => signer,
            None => crypto::signing_key(&der)?,
        };
        if check
            && signer
                .public_key()
                .is_none_or(|spki| spki.as_ref() != leaf_spki)
        {
            return Err(mismatch());
        }
        Ok(Self {
            der,
            algorithm: signer.algorithm(),
            signer: RwLock::new(Slot::Kept(signer)),
        })
    }

    pub(crate) fn der(&self) -> &PrivateKeyDer<'static> {
        &self.der
    }

    /// The parsed key, parsing it now if it waited or was evicted (`None`: refused).
    fn signer(&self) -> Option<Arc<dyn SigningKey>> {
        self.signer_kept_in(&PARSED_KEYS)
    }

    fn signer_kept_in(&self, kept: &ParsedKeys) -> Option<Arc<dyn SigningKey>> {
        match &*self.signer.read().unwrap_or_else(|p| p.into_inner()) {
            Slot::Kept(key) => return Some(key.clone()),
            Slot::Refused => return None,
            Slot::Deferred(weak) => {
                if let Some(parsed) = weak.upgrade() {
                    parsed.used.store(true, Ordering::Relaxed);
                    return Some(parsed.key.clone());
                }
            }
        }
        // Two handshakes may both parse an evicted key; the first one's is kept, so that no
        // second copy of the secret stays in the ring after its certificate is dropped.
        let parsed = self.parse_deferred();
        let mut slot = self.signer.write().unwrap_or_else(|p| p.into_inner());
        if let Slot::Deferred(weak) = &*slot
            && let Some(current) = weak.upgrade()
        {
            current.used.store(true, Ordering::Relaxed);
            return Some(current.key.clone());
        }
        match parsed {
            Some(key) => {
                let parsed = Arc::new(Parsed {
                    key: key.clone(),
                    used: AtomicBool::new(false),
                });
                *slot = Slot::Deferred(Arc::downgrade(&parsed));
                drop(slot);
                kept.keep(parsed);
                Some(key)
            }
            None => {
                *slot = Slot::Refused;
                None
            }
        }
    }

    /// Parses a deferred key, checking that its secret gives the point it carries.
    fn parse_deferred(&self) -> Option<Arc<dyn SigningKey>> {
        let carried = crypto::carried_ec_spki(&self.der);
        match crypto::signing_key(&self.der) {
            Ok(signer)
                if signer.public_key().as_ref().map(|k| k.as_ref())
                    == carried.as_ref().map(|k| k.as_ref()) =>
            {
                Some(signer)
            }
            Ok(_) => {
                tracing::error!(
                    "a certificate's private key does not give the public key it \
                     carries (altered in storage?): it will not sign"
                );
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "a certificate's private key is unusable: it will not sign");
                None
            }
        }
    }

    /// Whether the key is parsed now (at load, or by a signature since and not evicted), or
    /// was refused.
    fn is_parsed(&self) -> bool {
        match &*self.signer.read().unwrap_or_else(|p| p.into_inner()) {
            Slot::Kept(_) | Slot::Refused => true,
            Slot::Deferred(weak) => weak.strong_count() > 0,
        }
    }
}

impl SigningKey for PrivateKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        self.signer()?.choose_scheme(offered)
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(self.signer()?.public_key()?.into_owned())
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // A key kept parsed leaves with its certificate, not when the hand comes round: the
        // secret is not held in memory longer than the certificate that needs it.
        let slot = self.signer.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Slot::Deferred(weak) = slot
            && let Some(parsed) = weak.upgrade()
        {
            PARSED_KEYS.forget(&parsed);
        }
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .field("parsed", &self.is_parsed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificate::LeafFacts;
    use rcgen::{
        CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
    };

    const OFFERED: &[SignatureScheme] = &[
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384,
        SignatureScheme::ED25519,
    ];

    /// A self-signed leaf's DER and its key in the form Go CertMagic stores.
    fn leaf_and_key(alg: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, String) {
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            cert.der().to_vec(),
            crypto::encode_private_key_pem(&key).unwrap(),
        )
    }

    fn spki(leaf: &[u8]) -> &[u8] {
        &leaf[LeafFacts::parse(leaf).unwrap().spki]
    }

    #[test]
    fn an_ec_key_carrying_its_point_is_parsed_at_its_first_signature() {
        for alg in [&PKCS_ECDSA_P256_SHA256, &PKCS_ECDSA_P384_SHA384] {
            let (leaf, pem) = leaf_and_key(alg);
            let (der, signer) = crypto::decode_certificate_key_pem(pem.as_bytes()).unwrap();
            assert!(signer.is_none(), "{alg:?}: parsed at decode");
            let key = PrivateKey::for_leaf(der, None, spki(&leaf), true).unwrap();
            assert!(!key.is_parsed());
            assert_eq!(key.algorithm(), SignatureAlgorithm::ECDSA);
            assert!(key.choose_scheme(OFFERED).is_some());
            assert!(key.is_parsed());
            assert_eq!(key.public_key().unwrap().as_ref(), spki(&leaf));
        }
        // rcgen's PKCS#8 names the curve in the algorithm, not in the ECPrivateKey.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let key = PrivateKey::for_leaf(der, None, spki(leaf.der()), true).unwrap();
        assert!(!key.is_parsed());
        assert!(key.choose_scheme(OFFERED).is_some());
    }

    #[test]
    fn idle_parsed_keys_are_dropped_and_parsed_again_when_needed() {
        let kept = ParsedKeys::new(2);
        let keys: Vec<(Vec<u8>, PrivateKey)> = (0..3)
            .map(|_| {
                let (leaf, pem) = leaf_and_key(&PKCS_ECDSA_P256_SHA256);
                let (der, _) = crypto::decode_certificate_key_pem(pem.as_bytes()).unwrap();
                let key = PrivateKey::for_leaf(der, None, spki(&leaf), true).unwrap();
                (leaf, key)
            })
            .collect();
        let sign = |i: usize| {
            let signer = keys[i].1.signer_kept_in(&kept).unwrap();
            assert_eq!(signer.public_key().unwrap().as_ref(), spki(&keys[i].0));
        };
        sign(0);
        sign(1);
        // Key 0 signs again: the hand spares it once, so key 1 (idle) makes room for key 2.
        sign(0);
        sign(2);
        let parsed = |i: usize| keys[i].1.is_parsed();
        assert!(parsed(0) && !parsed(1) && parsed(2));
        // Key 1 is parsed again at its next signature; no more than two stay parsed.
        sign(1);
        assert!(parsed(1));
        assert_eq!((0..3).filter(|i| parsed(*i)).count(), 2);
        assert_eq!(kept.ring.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_dropped_key_is_no_longer_kept_parsed() {
        let (leaf, pem) = leaf_and_key(&PKCS_ECDSA_P256_SHA256);
        let (der, _) = crypto::decode_certificate_key_pem(pem.as_bytes()).unwrap();
        let key = PrivateKey::for_leaf(der, None, spki(&leaf), true).unwrap();
        assert!(key.choose_scheme(OFFERED).is_some());
        let parsed = match &*key.signer.read().unwrap() {
            Slot::Deferred(weak) => weak.upgrade().unwrap(),
            _ => panic!("not a deferred key"),
        };
        let kept = || {
            PARSED_KEYS
                .ring
                .lock()
                .unwrap()
                .iter()
                .any(|p| Arc::ptr_eq(p, &parsed))
        };
        assert!(kept());
        drop(key);
        assert!(!kept());
        assert_eq!(Arc::strong_count(&parsed), 1);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_at_load() {
        for alg in [&PKCS_ECDSA_P256_SHA256, &PKCS_ED25519] {
            let (leaf, _) = leaf_and_key(alg);
            let (_, other) = leaf_and_key(alg);
            let (der, signer) = crypto::decode_certificate_key_pem(other.as_bytes()).unwrap();
            let err = PrivateKey::for_leaf(der, signer, spki(&leaf), true).unwrap_err();
            assert!(err.to_string().contains("does not match"), "{alg:?}: {err}");
        }
    }

    #[test]
    fn a_secret_altered_behind_its_point_never_signs() {
        let (leaf, pem) = leaf_and_key(&PKCS_ECDSA_P256_SHA256);
        let (der, _) = crypto::decode_certificate_key_pem(pem.as_bytes()).unwrap();
        let mut bytes = der.secret_der().to_vec();
        // SEC1: version 1, then the 32-byte secret's OCTET STRING.
        let at = bytes
            .windows(5)
            .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
            .unwrap();
        bytes[at + 5 + 7] ^= 0x5a;
        let der = PrivateKeyDer::Sec1(bytes.into());
        let key = PrivateKey::for_leaf(der, None, spki(&leaf), true).unwrap();
        assert!(key.choose_scheme(OFFERED).is_none());
        assert!(key.public_key().is_none());
        assert!(key.is_parsed());
    }

    #[test]
    fn other_keys_are_parsed_at_load() {
        let (leaf, pem) = leaf_and_key(&PKCS_ED25519);
        let (der, signer) = crypto::decode_certificate_key_pem(pem.as_bytes()).unwrap();
        assert!(signer.is_some());
        let key = PrivateKey::for_leaf(der, signer, spki(&leaf), true).unwrap();
        assert!(key.is_parsed());
        assert_eq!(key.algorithm(), SignatureAlgorithm::ED25519);
        assert!(format!("{key:?}").contains("parsed: true"));
    }
}
