//! Keys, PEM and CSRs, in the encodings Go CertMagic reads and writes.
//!
//! Written keys use Go's labels: ECDSA as `EC PRIVATE KEY` (SEC1 with the curve named), RSA as
//! `RSA PRIVATE KEY` (PKCS#1), Ed25519 as `ED25519 PRIVATE KEY` (PKCS#8 inside, a label only Go
//! uses). Read keys may carry any `… PRIVATE KEY` label and are tried as PKCS#1, PKCS#8 and SEC1
//! whatever the label says, as Go does.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use pem::{EncodeConfig, LineEnding, Pem};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256, RsaKeySize, SignatureAlgorithm,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::SigningKey;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    SubjectPublicKeyInfoDer, alg_id,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::fields::ConfigField;

/// The kind of private key generated for certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on P-256 (the default, as in Go CertMagic).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 4096-bit modulus.
    Rsa4096,
    /// Ed25519 (not accepted by every CA).
    Ed25519,
}

impl KeyType {
    /// CertMagic's name for the key type (`p256`, `p384`, `rsa2048`, `rsa4096`, `ed25519`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "p256",
            Self::EcdsaP384 => "p384",
            Self::Rsa2048 => "rsa2048",
            Self::Rsa4096 => "rsa4096",
            Self::Ed25519 => "ed25519",
        }
    }

    /// Every key type, in the order of their names.
    pub const ALL: [KeyType; 5] = [
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Rsa2048,
        Self::Rsa4096,
        Self::Ed25519,
    ];
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::config(
                    ConfigField::KeyType,
                    format!("unknown key type `{s}` (p256, p384, rsa2048, rsa4096, ed25519)"),
                )
            })
    }
}

/// The crypto provider used for every TLS object this crate builds (aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// A TLS client configuration (for the CA, an ask endpoint, a DNS provider's API) trusting
/// `roots`.
pub(crate) fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS client config: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The provider TLS servers run with: the same algorithms, TLS 1.3 suites in Go's order
/// (AES-128-GCM, ChaCha20-Poly1305, AES-256-GCM). Servers pick from this order, not the
/// client's: AES-256-GCM comes with SHA-384, which has no CPU instructions where SHA-256 has
/// them, and costs a handshake about a fifth of its CPU time for no practical gain.
pub fn server_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            use rustls::CipherSuite as S;
            let mut provider = rustls::crypto::aws_lc_rs::default_provider();
            let rank = |s: S| match s {
                S::TLS13_AES_128_GCM_SHA256 => 0,
                S::TLS13_CHACHA20_POLY1305_SHA256 => 1,
                S::TLS13_AES_256_GCM_SHA384 => 2,
                _ => 3,
            };
            // Stable: TLS 1.2 suites keep their order after the TLS 1.3 ones.
            provider.cipher_suites.sort_by_key(|s| rank(s.suite()));
            Arc::new(provider)
        })
        .clone()
}

/// Generates a new private key of `key_type`.
pub(crate) fn generate_key(key_type: KeyType) -> Result<KeyPair> {
    let res = match key_type {
        KeyType::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        KeyType::EcdsaP384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
        KeyType::Ed25519 => KeyPair::generate_for(&PKCS_ED25519),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_4096),
    };
    res.map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("generating {key_type} key: {e}"),
        )
    })
}

/// The key type of a key pair, if it is one we generate.
pub(crate) fn key_type_of(key: &KeyPair) -> Option<KeyType> {
    let alg = key.algorithm();
    if alg == &PKCS_ECDSA_P256_SHA256 {
        Some(KeyType::EcdsaP256)
    } else if alg == &PKCS_ECDSA_P384_SHA384 {
        Some(KeyType::EcdsaP384)
    } else if alg == &PKCS_ED25519 {
        Some(KeyType::Ed25519)
    } else if is_rsa(alg) {
        // RSA size is not needed by any caller; report the common one.
        Some(KeyType::Rsa2048)
    } else {
        None
    }
}

fn is_rsa(alg: &SignatureAlgorithm) -> bool {
    alg == &PKCS_RSA_SHA256 || alg == &rcgen::PKCS_RSA_SHA384 || alg == &rcgen::PKCS_RSA_SHA512
}

/// Encodes a private key as Go CertMagic's `PEMEncodePrivateKey` does.
pub(crate) fn encode_private_key_pem(key: &KeyPair) -> Result<String> {
    let der = key.serialized_der();
    let alg = key.algorithm();
    let (label, der) = match der::form(der)? {
        // Keys read back from storage are already in the form Go writes.
        der::Form::Sec1 => ("EC PRIVATE KEY", der.to_vec()),
        der::Form::Pkcs1 => ("RSA PRIVATE KEY", der.to_vec()),
        der::Form::Pkcs8 if alg == &PKCS_ECDSA_P256_SHA256 => {
            ("EC PRIVATE KEY", der::pkcs8_ec_to_sec1(der, der::OID_P256)?)
        }
        der::Form::Pkcs8 if alg == &PKCS_ECDSA_P384_SHA384 => {
            ("EC PRIVATE KEY", der::pkcs8_ec_to_sec1(der, der::OID_P384)?)
        }
        der::Form::Pkcs8 if is_rsa(alg) => ("RSA PRIVATE KEY", der::pkcs8_inner_key(der)?.to_vec()),
        der::Form::Pkcs8 if alg == &PKCS_ED25519 => ("ED25519 PRIVATE KEY", der.to_vec()),
        der::Form::Pkcs8 => ("PRIVATE KEY", der.to_vec()),
    };
    Ok(encode_pem(&[Pem::new(label, der)]))
}

/// Encodes PEM blocks with LF line endings and 64-column base64, as Go's `pem.Encode`.
pub(crate) fn encode_pem(blocks: &[Pem]) -> String {
    pem::encode_many_config(blocks, EncodeConfig::new().set_line_ending(LineEnding::LF))
}

/// Encodes a DER chain as PEM `CERTIFICATE` blocks.
pub fn encode_chain_pem(chain: &[CertificateDer<'_>]) -> String {
    let blocks: Vec<Pem> = chain
        .iter()
        .map(|c| Pem::new("CERTIFICATE", c.as_ref()))
        .collect();
    encode_pem(&blocks)
}

/// Parses every `CERTIFICATE` block of a PEM bundle, in order. Fails if there is none.
pub fn parse_pem_chain(pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    // rustls's PEM reader: about twice as fast as the `pem` crate's on a chain, which counts
    // when a server loads 100,000 of them at start.
    let chain = CertificateDer::pem_slice_iter(pem_bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::new(
                ErrorKind::Certificate,
                format!("malformed PEM certificate chain: {e}"),
            )
        })?;
    if chain.is_empty() {
        return Err(Error::new(
            ErrorKind::Certificate,
            "no CERTIFICATE block in PEM data",
        ));
    }
    Ok(chain)
}

/// Decodes the first private key of a PEM bundle: any `PRIVATE KEY` or `… PRIVATE KEY` label,
/// tried as PKCS#1, PKCS#8 and SEC1 (the form the label suggests first).
pub fn decode_private_key_pem(pem_bytes: &[u8]) -> Result<PrivateKeyDer<'static>> {
    let (label, candidates) = private_key_candidates(pem_bytes)?;
    parse_first_usable(&label, candidates).map(|(der, _)| der)
}

/// A certificate's private key from PEM: an EC key that carries its public point comes
/// unparsed (`None`: its parse waits for a first signature, see [`crate::private_key`]); any
/// other with its signing key, parsed once (its parse checks its public point, the costly part
/// of loading a certificate).
pub(crate) fn decode_certificate_key_pem(
    pem_bytes: &[u8],
) -> Result<(PrivateKeyDer<'static>, Option<Arc<dyn SigningKey>>)> {
    let (label, der) = first_private_key_block(pem_bytes)?;
    // Nearly every stored key is in the form its label names and carries its point: no copy.
    let labelled = key_form_order(&label)[0](der);
    if carried_ec_spki(&labelled).is_some() {
        return Ok((labelled, None));
    }
    let mut candidates = key_forms(&label, labelled.secret_der().to_vec());
    if let Some(i) = candidates.iter().position(|c| carried_ec_spki(c).is_some()) {
        return Ok((candidates.swap_remove(i), None));
    }
    parse_first_usable(&label, candidates).map(|(key, signer)| (key, Some(signer)))
}

/// The PEM label of the first private key block, and its DER as PKCS#1, PKCS#8 and SEC1 (the
/// form the label suggests first).
fn private_key_candidates(pem_bytes: &[u8]) -> Result<(String, Vec<PrivateKeyDer<'static>>)> {
    let (label, der) = first_private_key_block(pem_bytes)?;
    let candidates = key_forms(&label, der);
    Ok((label, candidates))
}

/// The label and content of the first `PRIVATE KEY` or `… PRIVATE KEY` block.
fn first_private_key_block(pem_bytes: &[u8]) -> Result<(String, Vec<u8>)> {
    // rustls's reader first (several times faster, and it knows the three labels every key
    // store writes); any other label, or PEM it refuses, goes to the `pem` crate as before.
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem_bytes) {
        let Ok((kind, der)) = section else { break };
        let label = match kind {
            SectionKind::PrivateKey => "PRIVATE KEY",
            SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
            SectionKind::EcPrivateKey => "EC PRIVATE KEY",
            _ => continue,
        };
        return Ok((label.to_string(), der));
    }
    let blocks = pem::parse_many(pem_bytes).map_err(|e| {
        Error::new(
            ErrorKind::Certificate,
            format!("malformed PEM private key: {e}"),
        )
    })?;
    let block = blocks
        .into_iter()
        .find(|b| b.tag() == "PRIVATE KEY" || b.tag().ends_with(" PRIVATE KEY"))
        .ok_or_else(|| Error::new(ErrorKind::Certificate, "no PRIVATE KEY block in PEM data"))?;
    Ok((block.tag().to_string(), block.into_contents()))
}

/// `der` as PKCS#1, PKCS#8 and SEC1, the form `label` names first.
fn key_forms(label: &str, der: Vec<u8>) -> Vec<PrivateKeyDer<'static>> {
    let [first, second, third] = key_form_order(label);
    vec![first(der.clone()), second(der.clone()), third(der)]
}

type KeyForm = fn(Vec<u8>) -> PrivateKeyDer<'static>;

/// The three key forms, the one `label` names first.
fn key_form_order(label: &str) -> [KeyForm; 3] {
    let pkcs1: KeyForm = |der| PrivatePkcs1KeyDer::from(der).into();
    let pkcs8: KeyForm = |der| PrivatePkcs8KeyDer::from(der).into();
    let sec1: KeyForm = |der| PrivateSec1KeyDer::from(der).into();
    match label {
        "RSA PRIVATE KEY" => [pkcs1, pkcs8, sec1],
        "EC PRIVATE KEY" => [sec1, pkcs1, pkcs8],
        _ => [pkcs8, sec1, pkcs1],
    }
}

fn parse_first_usable(
    label: &str,
    candidates: Vec<PrivateKeyDer<'static>>,
) -> Result<(PrivateKeyDer<'static>, Arc<dyn SigningKey>)> {
    for candidate in candidates {
        if let Ok(signer) = signing_key(&candidate) {
            return Ok((candidate, signer));
        }
    }
    Err(Error::new(
        ErrorKind::Certificate,
        format!("unsupported or malformed private key (PEM label `{label}`)"),
    ))
}

/// The SubjectPublicKeyInfo an ECDSA private key carries with it, when it is on a curve rustls
/// signs with (P-256, P-384) and includes its public point (every EC key Go CertMagic and this
/// library write): what lets its parse wait for a first signature ([`crate::private_key`]).
pub(crate) fn carried_ec_spki(key: &PrivateKeyDer<'_>) -> Option<SubjectPublicKeyInfoDer<'static>> {
    let (curve, point) = match key {
        PrivateKeyDer::Sec1(k) => der::ec_curve_and_point(k.secret_sec1_der(), der::Form::Sec1),
        PrivateKeyDer::Pkcs8(k) => der::ec_curve_and_point(k.secret_pkcs8_der(), der::Form::Pkcs8),
        _ => None,
    }?;
    let algorithm = match (curve, point.len()) {
        (der::OID_P256, 65) => alg_id::ECDSA_P256,
        (der::OID_P384, 97) => alg_id::ECDSA_P384,
        _ => return None,
    };
    // Uncompressed points only: the form a certificate's key is in.
    (point.first() == Some(&4)).then(|| rustls::sign::public_key_to_spki(&algorithm, point))
}

/// DER of the OID id-ecPublicKey (1.2.840.10045.2.1), the algorithm of a PKCS#8 ECDSA key.
const ID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// A rustls signing key for a decoded private key. An ECDSA key goes straight to the ECDSA
/// parser: rustls's general loader tries RSA first, and a failed RSA parse of an EC key costs
/// a full EC key check.
pub(crate) fn signing_key(der: &PrivateKeyDer<'_>) -> Result<Arc<dyn SigningKey>> {
    use rustls::crypto::aws_lc_rs::sign;
    let ecdsa = match der {
        PrivateKeyDer::Sec1(_) => true,
        // The algorithm identifier comes right after the version, in the first bytes.
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().get(..32).is_some_and(|head| {
            head.windows(ID_EC_PUBLIC_KEY.len())
                .any(|w| w == ID_EC_PUBLIC_KEY)
        }),
        _ => false,
    };
    let general = || provider().key_provider.load_private_key(der.clone_key());
    let key = if ecdsa {
        sign::any_ecdsa_type(der).or_else(|_| general())
    } else {
        general()
    };
    key.map_err(|e| Error::new(ErrorKind::Certificate, format!("unusable private key: {e}")))
}

/// An rcgen key pair (to sign CSRs with) from a decoded private key.
pub(crate) fn key_pair_from_der(der: &PrivateKeyDer<'_>) -> Result<KeyPair> {
    KeyPair::try_from(der)
        .map_err(|e| Error::new(ErrorKind::Certificate, format!("unusable private key: {e}")))
}

/// A DER CSR for one name (DNS name or IP address), without subject CN, as CertMagic sends.
pub(crate) fn csr_der(name: &str, key: &KeyPair, must_staple: bool) -> Result<Vec<u8>> {
    let mut params = CertificateParams::new(vec![name.to_string()]).map_err(|e| {
        Error::new(
            ErrorKind::InvalidName,
            format!("`{name}` cannot go in a CSR: {e}"),
        )
    })?;
    params.distinguished_name = DistinguishedName::new();
    if must_staple {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                OID_TLS_FEATURE,
                MUST_STAPLE_VALUE.to_vec(),
            ));
    }
    let csr = params.serialize_request(key).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("building CSR for `{name}`: {e}"),
        )
    })?;
    Ok(csr.der().to_vec())
}

/// The self-signed certificate that answers a TLS-ALPN-01 challenge (RFC 8737): SAN = the
/// identifier, critical id-pe-acmeIdentifier = SHA-256 of the key authorization. Returns the
/// certificate and its P-256 key, DER.
pub(crate) fn tls_alpn_certificate(
    identifier: &str,
    key_authorization: &str,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let digest = Sha256::digest(key_authorization.as_bytes());
    let mut params = CertificateParams::new(vec![identifier.to_string()])
        .map_err(|e| Error::new(ErrorKind::InvalidName, format!("`{identifier}`: {e}")))?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "ACME challenge");
    params
        .custom_extensions
        .push(CustomExtension::new_acme_identifier(&digest));
    let key = generate_key(KeyType::EcdsaP256)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::internal(format!("building TLS-ALPN-01 certificate: {e}")))?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// A SEC1 P-256 key (as Go writes account keys) wrapped as PKCS#8 (as instant-acme reads them).
pub(crate) fn sec1_p256_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>> {
    der::sec1_to_pkcs8(sec1, der::OID_P256)
}

/// SHA-256 of a byte string.
#[cfg(test)]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// id-pe-tlsfeature (RFC 7633), the Must-Staple extension.
const OID_TLS_FEATURE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 24];
/// `SEQUENCE { INTEGER 5 }`: status_request.
const MUST_STAPLE_VALUE: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];

/// The little DER needed to move keys between PKCS#8 and the forms Go writes.
mod der {
    use super::{Error, ErrorKind, Result};

    /// prime256v1 / secp256r1.
    pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// secp384r1.
    pub const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

    fn bad(what: &str) -> Error {
        Error::new(
            ErrorKind::Certificate,
            format!("malformed private key DER: {what}"),
        )
    }

    /// Splits one TLV off the front: (tag, contents, rest).
    fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first().ok_or_else(|| bad("truncated"))?;
        let (&first, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad("bad length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(bad("truncated"));
        }
        Ok((tag, &rest[..len], &rest[len..]))
    }

    fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
    }

    /// The encodings a private key's DER can have.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Form {
        /// `PrivateKeyInfo`: version, AlgorithmIdentifier, key.
        Pkcs8,
        /// `ECPrivateKey`: version 1, key OCTET STRING, ….
        Sec1,
        /// `RSAPrivateKey`: version, modulus INTEGER, ….
        Pkcs1,
    }

    /// Tells PKCS#8, SEC1 and PKCS#1 apart by the field after the version.
    pub fn form(der: &[u8]) -> Result<Form> {
        let (tag, seq, _) = tlv(der)?;
        if tag != 0x30 {
            return Err(bad("private key is not a SEQUENCE"));
        }
        let (_, _, rest) = tlv(seq)?;
        match tlv(rest)?.0 {
            0x30 => Ok(Form::Pkcs8),
            0x04 => Ok(Form::Sec1),
            0x02 => Ok(Form::Pkcs1),
            _ => Err(bad("unknown private key encoding")),
        }
    }

    /// The `privateKey` OCTET STRING contents of a PKCS#8 `PrivateKeyInfo`.
    pub fn pkcs8_inner_key(pkcs8: &[u8]) -> Result<&[u8]> {
        let (tag, seq, _) = tlv(pkcs8)?;
        if tag != 0x30 {
            return Err(bad("PKCS#8 is not a SEQUENCE"));
        }
        let (_, _, rest) = tlv(seq)?; // version
        let (_, _, rest) = tlv(rest)?; // algorithm
        let (tag, key, _) = tlv(rest)?;
        if tag != 0x04 {
            return Err(bad("PKCS#8 privateKey is not an OCTET STRING"));
        }
        Ok(key)
    }

    /// SEC1 `ECPrivateKey` → PKCS#8 `PrivateKeyInfo` for id-ecPublicKey on `curve_oid`.
    pub fn sec1_to_pkcs8(sec1: &[u8], curve_oid: &[u8]) -> Result<Vec<u8>> {
        let (tag, _, _) = tlv(sec1)?;
        if tag != 0x30 {
            return Err(bad("ECPrivateKey is not a SEQUENCE"));
        }
        let mut alg = Vec::new();
        write_tlv(&mut alg, 0x06, OID_EC_PUBLIC_KEY);
        write_tlv(&mut alg, 0x06, curve_oid);
        let mut body = Vec::with_capacity(sec1.len() + 32);
        write_tlv(&mut body, 0x02, &[0]);
        write_tlv(&mut body, 0x30, &alg);
        write_tlv(&mut body, 0x04, sec1);
        let mut out = Vec::with_capacity(body.len() + 4);
        write_tlv(&mut out, 0x30, &body);
        Ok(out)
    }

    /// id-ecPublicKey.
    const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

    /// The curve (OID contents) and public point (the BIT STRING's bytes) an EC private key
    /// carries: a SEC1 `ECPrivateKey` (curve in `[0]`, point in `[1]`, as Go writes it), or one
    /// inside PKCS#8 (curve in the AlgorithmIdentifier). `None` for DER of another `form`, other
    /// keys, and EC keys without either.
    pub fn ec_curve_and_point(der: &[u8], form: Form) -> Option<(&[u8], &[u8])> {
        let (mut curve, sec1) = match form {
            Form::Sec1 => (None, der),
            Form::Pkcs8 => {
                let (_, seq, _) = tlv(der).ok()?;
                let (_, _, rest) = tlv(seq).ok()?; // version
                let (tag, algorithm, rest) = tlv(rest).ok()?;
                let (oid_tag, oid, params) = tlv(algorithm).ok()?;
                let (curve_tag, curve, _) = tlv(params).ok()?;
                let (key_tag, key, _) = tlv(rest).ok()?;
                let ec = oid_tag == 0x06 && oid == OID_EC_PUBLIC_KEY && curve_tag == 0x06;
                if tag != 0x30 || !ec || key_tag != 0x04 {
                    return None;
                }
                (Some(curve), key)
            }
            Form::Pkcs1 => return None,
        };
        let (tag, mut fields, _) = tlv(sec1).ok()?;
        if tag != 0x30 {
            return None;
        }
        let mut point = None;
        while !fields.is_empty() {
            let (tag, content, rest) = tlv(fields).ok()?;
            match tag {
                0xa0 => {
                    let (oid_tag, oid, _) = tlv(content).ok()?;
                    // Two curves that disagree: left to the full parse to refuse.
                    if oid_tag != 0x06 || *curve.get_or_insert(oid) != oid {
                        return None;
                    }
                }
                0xa1 => {
                    let (bits_tag, bits, _) = tlv(content).ok()?;
                    match bits.split_first() {
                        Some((0, p)) if bits_tag == 0x03 => point = Some(p),
                        _ => return None,
                    }
                }
                _ => {}
            }
            fields = rest;
        }
        Some((curve?, point?))
    }

    /// PKCS#8 EC key → SEC1 `ECPrivateKey` with the `[0] parameters` naming the curve, which Go's
    /// `x509.ParseECPrivateKey` requires.
    pub fn pkcs8_ec_to_sec1(pkcs8: &[u8], curve_oid: &[u8]) -> Result<Vec<u8>> {
        let inner = pkcs8_inner_key(pkcs8)?;
        let (tag, mut fields, _) = tlv(inner)?;
        if tag != 0x30 {
            return Err(bad("ECPrivateKey is not a SEQUENCE"));
        }
        let mut version = None;
        let mut private = None;
        let mut public = None;
        while !fields.is_empty() {
            let (tag, content, rest) = tlv(fields)?;
            match tag {
                0x02 => version = Some(content),
                0x04 => private = Some(content),
                0xa1 => public = Some(content),
                _ => {}
            }
            fields = rest;
        }
        let (version, private) = version
            .zip(private)
            .ok_or_else(|| bad("ECPrivateKey lacks fields"))?;
        let mut body = Vec::with_capacity(inner.len() + 16);
        write_tlv(&mut body, 0x02, version);
        write_tlv(&mut body, 0x04, private);
        let mut oid = Vec::new();
        write_tlv(&mut oid, 0x06, curve_oid);
        write_tlv(&mut body, 0xa0, &oid);
        if let Some(public) = public {
            write_tlv(&mut body, 0xa1, public);
        }
        let mut out = Vec::with_capacity(body.len() + 4);
        write_tlv(&mut out, 0x30, &body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_round_trips_through_go_labels() {
        for (kt, label) in [
            (KeyType::EcdsaP256, "EC PRIVATE KEY"),
            (KeyType::EcdsaP384, "EC PRIVATE KEY"),
            (KeyType::Rsa2048, "RSA PRIVATE KEY"),
            (KeyType::Ed25519, "ED25519 PRIVATE KEY"),
        ] {
            let key = generate_key(kt).unwrap();
            let pem_text = encode_private_key_pem(&key).unwrap();
            assert!(
                pem_text.starts_with(&format!("-----BEGIN {label}-----\n")),
                "{kt}: {pem_text}"
            );
            assert!(!pem_text.contains('\r'));
            let der = decode_private_key_pem(pem_text.as_bytes()).unwrap();
            let back = key_pair_from_der(&der).unwrap();
            assert_eq!(back.public_key_raw(), key.public_key_raw(), "{kt}");
            // A key read back (SEC1, PKCS#1) is written again in the same form (key reuse).
            assert_eq!(encode_private_key_pem(&back).unwrap(), pem_text, "{kt}");
            assert_eq!(
                key_type_of(&back).map(|k| k.as_str().starts_with("rsa")),
                Some(kt.as_str().starts_with("rsa"))
            );
            signing_key(&der).unwrap();
        }
    }

    #[test]
    fn sec1_names_the_curve() {
        let key = generate_key(KeyType::EcdsaP256).unwrap();
        let pem_text = encode_private_key_pem(&key).unwrap();
        let der = pem::parse(&pem_text).unwrap().into_contents();
        // [0] { OID prime256v1 } must be present for Go's ParseECPrivateKey.
        let needle = [&[0xa0, 0x0a, 0x06, 0x08][..], der::OID_P256].concat();
        assert!(der.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn reads_pkcs8_under_any_label_and_rejects_garbage() {
        let key = generate_key(KeyType::EcdsaP256).unwrap();
        let pkcs8 = key.serialize_der();
        for label in ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"] {
            let text = encode_pem(&[Pem::new(label, pkcs8.clone())]);
            decode_private_key_pem(text.as_bytes()).unwrap_or_else(|e| panic!("{label}: {e}"));
        }
        let garbage = encode_pem(&[Pem::new("PRIVATE KEY", vec![1, 2, 3])]);
        assert_eq!(
            decode_private_key_pem(garbage.as_bytes())
                .unwrap_err()
                .kind(),
            ErrorKind::Certificate
        );
        assert_eq!(
            decode_private_key_pem(b"").unwrap_err().kind(),
            ErrorKind::Certificate
        );
        assert_eq!(
            decode_private_key_pem(b"-----BEGIN").unwrap_err().kind(),
            ErrorKind::Certificate
        );
        assert_eq!(
            parse_pem_chain(b"nothing").unwrap_err().kind(),
            ErrorKind::Certificate
        );
    }

    #[test]
    fn csr_carries_the_name_and_must_staple() {
        let key = generate_key(KeyType::EcdsaP256).unwrap();
        for name in ["a.example.com", "*.example.com", "127.0.0.1", "::1"] {
            let der = csr_der(name, &key, true).unwrap();
            let (_, csr) = <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<x509_parser::error::X509Error>>::from_der(&der).unwrap();
            csr.verify_signature().unwrap();
            assert!(
                csr.certification_request_info
                    .subject
                    .iter_common_name()
                    .next()
                    .is_none()
            );
            let exts: Vec<_> = csr.requested_extensions().unwrap().collect();
            let sans = exts.iter().find_map(|e| match e {
                x509_parser::extensions::ParsedExtension::SubjectAlternativeName(s) => {
                    Some(s.general_names.len())
                }
                _ => None,
            });
            assert_eq!(sans, Some(1), "{name}");
            assert!(
                der.windows(MUST_STAPLE_VALUE.len())
                    .any(|w| w == MUST_STAPLE_VALUE)
            );
        }
        let plain = csr_der("a.example.com", &key, false).unwrap();
        assert!(
            !plain
                .windows(MUST_STAPLE_VALUE.len())
                .any(|w| w == MUST_STAPLE_VALUE)
        );
    }

    #[test]
    fn tls_alpn_certificate_has_critical_acme_extension() {
        let (der, key) = tls_alpn_certificate("a.example.com", "token.thumb").unwrap();
        signing_key(&key).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(ext.critical);
        let mut want = vec![0x04, 0x20];
        want.extend_from_slice(&sha256(b"token.thumb"));
        assert_eq!(ext.value, &want[..]);
    }

    #[test]
    fn key_type_names() {
        for kt in KeyType::ALL {
            assert_eq!(kt.as_str().parse::<KeyType>().unwrap(), kt);
        }
        let err = "dsa".parse::<KeyType>().unwrap_err();
        assert_eq!(err.field(), Some("key_type"));
    }
}
