//! [`PrivateKey`]: a served certificate's private key: its DER, and the signing key parsed from
//! it, at once or, for an EC key that carries its public point (every EC key Go CertMagic and
//! this library write), at the first handshake that signs with it.
//!
//! Parsing an EC key recomputes its public point (a scalar multiplication, most of the CPU of
//! loading a stored certificate) and keeps about half a KiB of aws-lc state, while a server
//! holding 100,000 certificates signs with few of them. So a load compares the point the key
//! carries with the certificate's (a key of another certificate is refused there, as before),
//! and the first signature checks that the secret gives that point: a secret altered behind an
//! intact point is found at that handshake, which fails (logged); the key never signs.

use std::sync::{Arc, OnceLock};

use rustls::SignatureAlgorithm;
use rustls::SignatureScheme;
use rustls::sign::{Signer, SigningKey};
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

use crate::crypto;
use crate::error::{Error, ErrorKind, Result};

pub(crate) struct PrivateKey {
    der: PrivateKeyDer<'static>,
    algorithm: SignatureAlgorithm,
    /// The parsed key; `None` inside when a deferred parse refused the key.
    signer: OnceLock<Option<Arc<dyn SigningKey>>>,
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
                signer: OnceLock::new(),
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
            signer: OnceLock::from(Some(signer)),
        })
    }

    pub(crate) fn der(&self) -> &PrivateKeyDer<'static> {
        &self.der
    }

    /// The parsed key, parsing it now if it waited (`None`: refused, logged once).
    fn signer(&self) -> Option<&Arc<dyn SigningKey>> {
        self.signer
            .get_or_init(|| {
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
            })
            .as_ref()
    }

    /// Whether the key was parsed (at load, or by a signature since).
    #[cfg(test)]
    pub(crate) fn is_parsed(&self) -> bool {
        self.signer.get().is_some()
    }
}

impl SigningKey for PrivateKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        self.signer()?.choose_scheme(offered)
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        self.signer()?.public_key()
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .field("parsed", &self.signer.get().is_some())
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
