//! [`Certificate`]: an immutable snapshot of a certificate chain and its key, ready for rustls,
//! plus the metadata file ([`CertificateResource`]) stored beside it.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pem::Pem;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::ari::RenewalInfo;
use crate::crypto;
use crate::error::{Error, ErrorKind, Result};
use crate::ocsp::{OcspResponse, OcspStatus};
use crate::private_key::PrivateKey;
use crate::storage::keys;

/// A certificate chain with its private key: what a TLS handshake serves.
///
/// Snapshots are immutable and cheap to share (`Arc`); renewal replaces the snapshot in the
/// cache, it never changes one.
pub struct Certificate {
    names: Box<[Box<str>]>,
    certified: Arc<CertifiedKey>,
    /// The same key as `certified`'s, typed: its DER for PEM and renewal.
    key: Arc<PrivateKey>,
    not_before: i64,
    not_after: i64,
    hash: [u8; 32],
    managed: bool,
    issuer_key: Option<Arc<str>>,
    /// PEM forms, made on first request (bindings hand out views of them); boxed, as most
    /// certificates of a large cache are never asked for them.
    pem: OnceLock<Box<PemForms>>,
    /// FNV-1a of the PEM chain this came from, which names its OCSP staple in storage
    /// (`None`: built from DER; the hash is then of Go's PEM encoding of the chain).
    source_pem_fnv: Option<u32>,
    /// The last checked OCSP response, whatever its status (stapled only when good).
    ocsp: Option<Arc<OcspResponse>>,
    /// The leaf names an OCSP responder (most certificates since 2025 do not: no stapling work).
    names_ocsp_responder: bool,
    /// The CA directory its metadata names (`issuer_data.ca`): a renewal from the same CA
    /// says which certificate it replaces (ARI).
    issuer_ca: Option<Arc<str>>,
    /// The renewal window its CA suggests (ARI), as last fetched or stored.
    renewal_info: Option<Arc<RenewalInfo>>,
}

#[derive(Clone, Default)]
struct PemForms {
    chain: OnceLock<Box<str>>,
    key: OnceLock<Box<str>>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("names", &self.names)
            .field("not_after", &self.not_after())
            .field("managed", &self.managed)
            .field("issuer_key", &self.issuer_key)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Parses a PEM chain (leaf first) and a PEM private key, checking that they belong
    /// together. The key may use any label Go CertMagic or OpenSSL write.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let chain = crypto::parse_pem_chain(chain_pem)?;
        let (key, signer) = crypto::decode_certificate_key_pem(key_pem)?;
        let mut cert = Self::build(chain, key, signer, true)?;
        cert.source_pem_fnv = Some(keys::fnv32a(chain_pem));
        Ok(cert)
    }

    /// Builds a snapshot from a DER chain (leaf first) and a DER private key.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self> {
        Self::build(chain, key, None, true)
    }

    /// A snapshot of a certificate this library just made with `key` (TLS-ALPN-01 answers),
    /// whose critical acmeIdentifier extension a general-purpose key check would refuse.
    pub(crate) fn from_own_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self> {
        Self::build(chain, key, None, false)
    }

    /// `signer`: the signing key of `key` when the caller parsed it already; else it is parsed
    /// here or at the first signature ([`PrivateKey`]).
    fn build(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        signer: Option<Arc<dyn rustls::sign::SigningKey>>,
        check_key: bool,
    ) -> Result<Self> {
        let leaf = chain
            .first()
            .ok_or_else(|| Error::new(ErrorKind::Certificate, "empty certificate chain"))?;
        let facts = LeafFacts::parse(leaf.as_ref())?;
        let hash = chain_hash(&chain);
        let key = Arc::new(PrivateKey::for_leaf(
            key,
            signer,
            &leaf.as_ref()[facts.spki.clone()],
            check_key,
        )?);
        let chain: Vec<CertificateDer<'static>> = chain
            .into_iter()
            .enumerate()
            .map(|(i, c)| if i == 0 { c } else { intern_intermediate(c) })
            .collect();
        let certified = CertifiedKey::new(chain, key.clone());
        Ok(Self {
            names: facts
                .names
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            certified: Arc::new(certified),
            key,
            not_before: facts.not_before,
            not_after: facts.not_after,
            hash,
            managed: false,
            issuer_key: None,
            pem: OnceLock::new(),
            source_pem_fnv: None,
            ocsp: None,
            names_ocsp_responder: facts.names_ocsp_responder,
            issuer_ca: None,
            renewal_info: None,
        })
    }

    /// The same certificate with `response` as its OCSP status, stapled if it is good.
    pub(crate) fn with_ocsp(&self, response: Arc<OcspResponse>) -> Self {
        let staple = (response.status() == OcspStatus::Good).then(|| response.der().to_vec());
        self.with_ocsp_state(staple, Some(response))
    }

    /// The same certificate without OCSP status or staple.
    pub(crate) fn without_ocsp(&self) -> Self {
        self.with_ocsp_state(None, None)
    }

    /// The same certificate with `info` as its renewal information.
    pub(crate) fn with_renewal_info(&self, info: RenewalInfo) -> Self {
        let mut c = self.with_ocsp_state(self.certified.ocsp.clone(), self.ocsp.clone());
        c.renewal_info = Some(Arc::new(info));
        c
    }

    /// Takes the ACME facts of its metadata: the CA that issued it and, when they are about
    /// this very certificate, the stored renewal window.
    pub(crate) fn with_acme_metadata(mut self, data: Option<&AcmeIssuerData>) -> Self {
        let Some(data) = data else { return self };
        if !data.ca.is_empty() {
            self.issuer_ca = Some(intern_ca(&data.ca));
        }
        // The leaf is parsed again only when there is a window to check it against.
        self.renewal_info = data
            .extra
            .get("renewal_info")
            .and_then(RenewalInfo::from_json)
            .filter(|ri| {
                crate::ari::certificate_id(self.chain_der()[0].as_ref()).as_deref()
                    == Some(ri.unique_identifier.as_str())
            })
            .map(Arc::new);
        self
    }

    /// The renewal window its CA suggested (ARI), if known.
    pub fn renewal_info(&self) -> Option<&RenewalInfo> {
        self.renewal_info.as_deref()
    }

    /// The ACME directory that issued it, as its metadata says.
    pub fn issuer_ca(&self) -> Option<&str> {
        self.issuer_ca.as_deref()
    }

    fn with_ocsp_state(
        &self,
        staple: Option<Vec<u8>>,
        response: Option<Arc<OcspResponse>>,
    ) -> Self {
        let mut certified = CertifiedKey::clone(&self.certified);
        certified.ocsp = staple;
        Self {
            names: self.names.clone(),
            certified: Arc::new(certified),
            key: self.key.clone(),
            not_before: self.not_before,
            not_after: self.not_after,
            hash: self.hash,
            managed: self.managed,
            issuer_key: self.issuer_key.clone(),
            pem: self.pem.clone(),
            source_pem_fnv: self.source_pem_fnv,
            ocsp: response,
            names_ocsp_responder: self.names_ocsp_responder,
            issuer_ca: self.issuer_ca.clone(),
            renewal_info: self.renewal_info.clone(),
        }
    }

    /// Whether the leaf names an OCSP responder (read once, when the certificate was parsed).
    pub(crate) fn names_ocsp_responder(&self) -> bool {
        self.names_ocsp_responder
    }

    /// The storage key of this certificate's OCSP response (Go CertMagic's, from the first
    /// name and the PEM chain as read; see [`keys::ocsp_staple`]).
    pub(crate) fn ocsp_storage_key(&self) -> String {
        let fnv = self.source_pem_fnv.unwrap_or_else(|| {
            // Go's `pem.Encode` of each certificate, back to back (no blank lines).
            let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
            let go_pem: String = self
                .chain_der()
                .iter()
                .map(|c| pem::encode_config(&Pem::new("CERTIFICATE", c.as_ref()), config))
                .collect();
            keys::fnv32a(go_pem.as_bytes())
        });
        keys::ocsp_staple(self.names.first().map_or("", |n| n), fnv)
    }

    pub(crate) fn into_managed(mut self, issuer_key: Option<Arc<str>>) -> Self {
        self.managed = true;
        self.issuer_key = issuer_key;
        self
    }

    /// The subject names (DNS names lower-cased, IP addresses), CN first if it is not a SAN.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// The chain as DER, leaf first.
    pub fn chain_der(&self) -> &[CertificateDer<'static>] {
        &self.certified.cert
    }

    /// The chain as PEM, leaf first (encoded once, then shared).
    pub fn chain_pem(&self) -> &str {
        self.pem_forms()
            .chain
            .get_or_init(|| crypto::encode_chain_pem(&self.certified.cert).into())
    }

    /// The private key as PEM, labelled by its form: `EC PRIVATE KEY`, `RSA PRIVATE KEY`,
    /// `PRIVATE KEY` (encoded once, then shared).
    pub fn key_pem(&self) -> &str {
        self.pem_forms().key.get_or_init(|| {
            let label = match self.key.der() {
                PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
                PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
                _ => "PRIVATE KEY",
            };
            crypto::encode_pem(&[Pem::new(label, self.key.der().secret_der())]).into()
        })
    }

    fn pem_forms(&self) -> &PemForms {
        self.pem.get_or_init(Box::default)
    }

    /// The private key as DER.
    pub fn key_der(&self) -> &PrivateKeyDer<'static> {
        self.key.der()
    }

    /// The rustls object a handshake serves.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.certified
    }

    /// The OCSP response stapled to handshakes, if any (a good one).
    pub fn ocsp_staple(&self) -> Option<&[u8]> {
        self.certified.ocsp.as_deref()
    }

    /// The last OCSP response checked for this certificate, whatever its status.
    pub fn ocsp_response(&self) -> Option<&OcspResponse> {
        self.ocsp.as_deref()
    }

    /// Start of validity.
    pub fn not_before(&self) -> SystemTime {
        to_system_time(self.not_before)
    }

    /// End of validity.
    pub fn not_after(&self) -> SystemTime {
        to_system_time(self.not_after)
    }

    /// SHA-256 of the DER chain: the cache's identity for a certificate.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// True if the library obtained (and renews) this certificate; false for ones added by hand.
    pub fn is_managed(&self) -> bool {
        self.managed
    }

    /// The issuer key of the storage folder it came from (managed certificates only).
    pub fn issuer_key(&self) -> Option<&str> {
        self.issuer_key.as_deref()
    }

    /// The leaf's serial number in lower-case hex (no leading zeros), as Pebble and OpenSSL show it.
    pub fn serial_hex(&self) -> String {
        leaf_serial_hex(self.chain_der()[0].as_ref())
    }

    /// True once fewer than `ratio` of the lifetime remains, or when expiry is close enough
    /// that waiting for the next check would be unsafe: less than 1/50 of the lifetime or less
    /// than five check intervals left (Go CertMagic's emergency rules). With a renewal window
    /// from the CA (ARI), the window decides instead of the ratio: due once the selected time
    /// is less than a check interval away, and always in the last twentieth of the lifetime.
    pub fn needs_renewal(&self, ratio: f64, check_interval: Duration, now: SystemTime) -> bool {
        if let Some(due) = self
            .renewal_info
            .as_ref()
            .and_then(|ri| ri.due(time::OffsetDateTime::from(now), check_interval))
        {
            return due
                || needs_renewal(
                    self.not_before,
                    self.not_after,
                    crate::ari::ARI_EMERGENCY_FRACTION,
                    check_interval,
                    now,
                );
        }
        needs_renewal(self.not_before, self.not_after, ratio, check_interval, now)
    }

    /// Start and end of validity, Unix seconds (what renewal decisions need, kept after the
    /// certificate leaves the cache).
    pub(crate) fn validity(&self) -> (i64, i64) {
        (self.not_before, self.not_after)
    }

    /// True once `now` is past the end of validity.
    pub fn expired(&self, now: SystemTime) -> bool {
        unix(now) > self.not_after
    }
}

pub(crate) fn needs_renewal(
    not_before: i64,
    not_after: i64,
    ratio: f64,
    check_interval: Duration,
    now: SystemTime,
) -> bool {
    let lifetime = (not_after - not_before).max(0) as f64;
    // Go truncates NotAfter to the second and adds one.
    let remaining = (not_after + 1 - unix(now)) as f64;
    remaining <= lifetime * ratio
        || remaining <= lifetime / 50.0
        || remaining <= 5.0 * check_interval.as_secs_f64()
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn to_system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn chain_hash(chain: &[CertificateDer<'_>]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for c in chain {
        h.update(c.as_ref());
    }
    h.finalize().into()
}

/// What the cache and renewal need from a leaf certificate.
pub(crate) struct LeafFacts {
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub names_ocsp_responder: bool,
    /// Where the SubjectPublicKeyInfo DER lies in the leaf's DER.
    pub spki: std::ops::Range<usize>,
}

impl LeafFacts {
    pub fn parse(der: &[u8]) -> Result<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            Error::new(
                ErrorKind::Certificate,
                format!("malformed certificate: {e}"),
            )
        })?;
        let mut names: Vec<String> = Vec::new();
        let mut push = |n: String| {
            if !names.contains(&n) {
                names.push(n);
            }
        };
        if let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
        {
            push(cn.to_ascii_lowercase());
        }
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for gn in &san.value.general_names {
                match gn {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        push(d.to_ascii_lowercase())
                    }
                    x509_parser::extensions::GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_from_bytes(b) {
                            push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        // A CN that is also a SAN is listed once, in SAN order; CN first only when it is extra.
        Ok(Self {
            names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            names_ocsp_responder: crate::ocsp::Responder::of(&cert).ocsp.is_some(),
            spki: subslice_range(der, cert.public_key().raw).ok_or_else(|| {
                Error::new(
                    ErrorKind::Certificate,
                    "malformed certificate: no public key",
                )
            })?,
        })
    }
}

/// Where `part`, a slice borrowed from `whole` (the parser's output), lies in it.
fn subslice_range(whole: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let range = start..start.checked_add(part.len())?;
    (range.end <= whole.len()).then_some(range)
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

pub(crate) fn leaf_serial_hex(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => {
            let hex: String = c.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
            let trimmed = hex.trim_start_matches('0');
            if trimmed.is_empty() {
                "0".into()
            } else {
                trimmed.into()
            }
        }
        Err(_) => String::new(),
    }
}

/// The issuer common name of every certificate of a chain, in order (for chain preference).
pub(crate) fn issuer_common_names(chain: &[CertificateDer<'_>]) -> Vec<String> {
    chain
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .map(|(_, c)| {
            c.issuer()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// Shares intermediate certificates between cached chains: a fleet of certificates from one CA
/// has a handful of distinct intermediates, so each is kept once for the life of the process.
/// Bounded, so a stream of unique chains added by hand cannot grow it without end.
fn intern_intermediate(cert: CertificateDer<'static>) -> CertificateDer<'static> {
    static INTERNED: OnceLock<Mutex<HashSet<&'static [u8]>>> = OnceLock::new();
    let set = INTERNED.get_or_init(Default::default);
    let mut set = set.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = set.get(cert.as_ref()) {
        return CertificateDer::from_slice(existing);
    }
    if set.len() >= MAX_INTERNED_INTERMEDIATES {
        return cert;
    }
    let leaked: &'static [u8] = Box::leak(cert.as_ref().to_vec().into_boxed_slice());
    set.insert(leaked);
    CertificateDer::from_slice(leaked)
}

/// Distinct intermediates kept shared; beyond this, chains keep their own copies.
const MAX_INTERNED_INTERMEDIATES: usize = 4096;

/// The CA directory URL a certificate's metadata names, shared by every certificate naming it
/// (a fleet has a handful; per certificate it was about 80 bytes of the cache's memory).
fn intern_ca(ca: &str) -> Arc<str> {
    static INTERNED: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let set = INTERNED.get_or_init(Default::default);
    let mut set = set.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = set.get(ca) {
        return existing.clone();
    }
    let ca: Arc<str> = Arc::from(ca);
    if set.len() < MAX_INTERNED_CAS {
        set.insert(ca.clone());
    }
    ca
}

/// Distinct CA URLs kept shared; beyond this, certificates keep their own copies.
const MAX_INTERNED_CAS: usize = 64;

/// The metadata file `<name>.json` beside a certificate (Go's `CertificateResource`), written
/// tab-indented as Go's `json.MarshalIndent` does. Unknown fields of `issuer_data` are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateResource {
    /// The names the certificate was requested for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// Issuer-specific data; for ACME see [`AcmeIssuerData`]. May be `null` in Caddy's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_data: Option<serde_json::Value>,
}

impl CertificateResource {
    /// Encodes as Go writes it: tab-indented JSON.
    pub fn to_json(&self) -> Vec<u8> {
        to_go_indented_json(self)
    }

    /// Decodes a metadata file; a torn, empty or non-JSON file is a [`ErrorKind::Corrupt`] error.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!("certificate metadata is not valid JSON: {e}"),
            )
        })
    }

    /// The ACME view of `issuer_data`, if it has that shape.
    pub fn acme_data(&self) -> Option<AcmeIssuerData> {
        self.issuer_data
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

/// The `issuer_data` of a certificate obtained over ACME (acmez's `acme.Certificate`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AcmeIssuerData {
    /// The certificate URL at the CA.
    pub url: String,
    /// The CA directory URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca: String,
    /// The account URL that ordered it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// Other fields (e.g. `renewal_info` written by Caddy), kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// JSON with tab indentation, as Go's `json.MarshalIndent(v, "", "\t")`.
pub(crate) fn to_go_indented_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if value.serialize(&mut ser).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_metadata_as_caddy_writes_it() {
        let caddy = b"{\n\t\"sans\": [\n\t\t\"example.com\"\n\t],\n\t\"issuer_data\": {\n\t\t\"url\": \"https://acme-v02.api.letsencrypt.org/acme/cert/04ab\",\n\t\t\"ca\": \"https://acme-v02.api.letsencrypt.org/directory\",\n\t\t\"account\": \"https://acme-v02.api.letsencrypt.org/acme/acct/123\",\n\t\t\"renewal_info\": {\n\t\t\t\"suggestedWindow\": {\n\t\t\t\t\"start\": \"2024-09-23T06:58:45.333333334Z\",\n\t\t\t\t\"end\": \"2024-09-25T06:58:45.333333334-06:00\"\n\t\t\t},\n\t\t\t\"_selectedTime\": \"0001-01-01T00:00:00Z\"\n\t\t}\n\t}\n}";
        let res = CertificateResource::from_json(caddy).unwrap();
        assert_eq!(res.sans, vec!["example.com"]);
        let acme = res.acme_data().unwrap();
        assert_eq!(acme.ca, "https://acme-v02.api.letsencrypt.org/directory");
        assert_eq!(
            acme.account,
            "https://acme-v02.api.letsencrypt.org/acme/acct/123"
        );
        assert!(acme.extra.contains_key("renewal_info"));

        let null_issuer = br#"{"sans":["x.test"],"issuer_data":null,"future_field":1}"#;
        let res = CertificateResource::from_json(null_issuer).unwrap();
        assert_eq!(res.issuer_data, None);
        assert!(res.acme_data().is_none());
    }

    #[test]
    fn writes_metadata_as_go_does() {
        let res = CertificateResource {
            sans: vec!["a.test".into()],
            issuer_data: Some(
                serde_json::to_value(AcmeIssuerData {
                    url: "https://ca/cert/1".into(),
                    ca: "https://ca/dir".into(),
                    account: "https://ca/acct/1".into(),
                    extra: Default::default(),
                })
                .unwrap(),
            ),
        };
        let text = String::from_utf8(res.to_json()).unwrap();
        assert_eq!(
            text,
            "{\n\t\"sans\": [\n\t\t\"a.test\"\n\t],\n\t\"issuer_data\": {\n\t\t\"url\": \"https://ca/cert/1\",\n\t\t\"ca\": \"https://ca/dir\",\n\t\t\"account\": \"https://ca/acct/1\"\n\t}\n}"
        );
        assert_eq!(
            CertificateResource::from_json(text.as_bytes()).unwrap(),
            res
        );
    }

    #[test]
    fn torn_metadata_is_a_clear_error() {
        for bad in [&b""[..], b"{\"sans\":[\"a", b"\0\0\0", b"{} }"] {
            assert_eq!(
                CertificateResource::from_json(bad).unwrap_err().kind(),
                ErrorKind::Corrupt
            );
        }
    }

    #[test]
    fn renewal_window() {
        let day = 86_400;
        let nb = 1_000_000_000;
        let na = nb + 90 * day;
        let at = |d: i64| to_system_time(nb + d * day);
        let ten_min = Duration::from_secs(600);
        assert!(!needs_renewal(nb, na, 1.0 / 3.0, ten_min, at(0)));
        assert!(!needs_renewal(nb, na, 1.0 / 3.0, ten_min, at(59)));
        assert!(needs_renewal(nb, na, 1.0 / 3.0, ten_min, at(61)));
        // Emergency rules hold whatever the ratio.
        assert!(!needs_renewal(nb, na, 0.001, ten_min, at(87)));
        assert!(needs_renewal(nb, na, 0.001, ten_min, at(89)));
        let short_na = nb + 3600;
        assert!(needs_renewal(
            nb,
            short_na,
            0.001,
            ten_min,
            to_system_time(nb + 3600 - 2999)
        ));
        assert!(!needs_renewal(
            nb,
            short_na,
            0.001,
            ten_min,
            to_system_time(nb + 10)
        ));
    }
}
