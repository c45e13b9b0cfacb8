//! A responder's answer, checked before anything uses it: [`OcspResponse`] keeps the DER to
//! staple and the facts that decide when to ask again.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::{Decode, Encode, Reader};
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponseStatus, ResponderId};
use x509_parser::asn1_rs::BitString;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AlgorithmIdentifier;

use super::{HashAlgorithm, sha1};
use crate::error::{Error, ErrorKind, Result};

/// id-pkix-ocsp-basic: the only response type RFC 6960 asks responders to send.
const OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";

/// How far a responder's clock may run ahead of ours (its `thisUpdate` in our future).
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The certificate's status as the responder states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    /// Not revoked.
    Good,
    /// Revoked at `revoked_at`, for `reason` (the RFC 5280 CRLReason code, if given).
    Revoked {
        /// When the CA revoked it.
        revoked_at: SystemTime,
        /// RFC 5280 CRLReason code (1 is keyCompromise).
        reason: Option<u8>,
    },
    /// The responder does not know the certificate (yet).
    Unknown,
}

impl OcspStatus {
    /// `good`, `revoked` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Revoked { .. } => "revoked",
            Self::Unknown => "unknown",
        }
    }
}

/// The RFC 5280 reason code of a key compromise.
pub(crate) const REASON_KEY_COMPROMISE: u8 = 1;

/// An OCSP response whose signature, subject and times were checked against one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspResponse {
    der: Vec<u8>,
    status: OcspStatus,
    this_update: SystemTime,
    next_update: Option<SystemTime>,
    /// A delegated responder's certificate ends its response's usefulness when it expires.
    responder_not_after: Option<SystemTime>,
}

impl OcspResponse {
    /// The response as the responder sent it (what a TLS server staples).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate's status.
    pub fn status(&self) -> OcspStatus {
        self.status
    }

    /// When the responder produced this status.
    pub fn this_update(&self) -> SystemTime {
        self.this_update
    }

    /// When the responder promises newer information (`None`: always available).
    pub fn next_update(&self) -> Option<SystemTime> {
        self.next_update
    }

    /// When to ask again: the midpoint of `this_update`..`next_update` (the end capped by a
    /// delegated responder's expiry), as Go CertMagic's `freshOCSP`. `None` when the response
    /// has no `next_update`: then newer information is always available.
    pub fn refresh_at(&self) -> Option<SystemTime> {
        let mut end = self.next_update?;
        if let Some(responder_end) = self.responder_not_after {
            end = end.min(responder_end);
        }
        let span = end.duration_since(self.this_update).unwrap_or_default();
        Some(self.this_update + span / 2)
    }

    /// True while this response needs no refresh. An `Unknown` answer is never fresh: a
    /// responder learns of a new certificate within minutes, so it is asked again at the next
    /// check rather than at the midpoint (Go CertMagic waits for the midpoint).
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.status != OcspStatus::Unknown && self.refresh_at().is_some_and(|at| now < at)
    }

    /// Parses `der` and checks it is a successful basic response about `leaf`, signed by
    /// `issuer` or by a responder certificate `issuer` signed for OCSP, current at `now`.
    pub(crate) fn verify(
        der: &[u8],
        leaf: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
        now: SystemTime,
    ) -> Result<Self> {
        let outer = x509_ocsp::OcspResponse::from_der(der).map_err(malformed)?;
        if outer.response_status != OcspResponseStatus::Successful {
            return Err(ocsp_error(format!(
                "the OCSP responder answered {:?}",
                outer.response_status
            )));
        }
        let bytes = outer
            .response_bytes
            .ok_or_else(|| ocsp_error("successful OCSP response without a body"))?;
        if bytes.response_type.to_string() != OCSP_BASIC {
            return Err(ocsp_error(format!(
                "OCSP response of type {} (only basic responses are understood)",
                bytes.response_type
            )));
        }
        let basic_der = bytes.response.as_bytes();
        let basic = BasicOcspResponse::from_der(basic_der).map_err(malformed)?;
        let signed = tbs_bytes(basic_der).map_err(malformed)?;

        let single = basic
            .tbs_response_data
            .responses
            .iter()
            .find(|r| is_about(&r.cert_id, leaf, issuer))
            .ok_or_else(|| ocsp_error("the OCSP response is not about this certificate"))?;

        let responder_not_after = check_signature(&basic, signed, issuer, now)?;

        let this_update = to_system_time(&single.this_update);
        let next_update = single.next_update.as_ref().map(to_system_time);
        if this_update > now + CLOCK_SKEW {
            return Err(ocsp_error(
                "the OCSP response's thisUpdate is in the future",
            ));
        }
        if next_update.is_some_and(|n| n < this_update) {
            return Err(ocsp_error(
                "the OCSP response's nextUpdate is before its thisUpdate",
            ));
        }
        if next_update.is_some_and(|n| n < now) {
            return Err(ocsp_error(
                "the OCSP response has expired (its nextUpdate is past)",
            ));
        }
        let status = match &single.cert_status {
            CertStatus::Good(_) => OcspStatus::Good,
            CertStatus::Unknown(_) => OcspStatus::Unknown,
            CertStatus::Revoked(info) => OcspStatus::Revoked {
                revoked_at: to_system_time(&info.revocation_time),
                reason: info.revocation_reason.map(|r| r as u8),
            },
        };
        Ok(Self {
            der: der.to_vec(),
            status,
            this_update,
            next_update,
            responder_not_after,
        })
    }
}

/// The DER of `tbsResponseData`, the bytes the signature covers, exactly as received.
fn tbs_bytes(basic_der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = der::SliceReader::new(basic_der)?;
    der::Header::decode(&mut reader)?;
    reader.tlv_bytes()
}

/// Whether a CertID names `leaf` as issued by `issuer` (hashed with SHA-1 or SHA-256).
fn is_about(
    id: &x509_ocsp::CertId,
    leaf: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> bool {
    let Some(hash) = HashAlgorithm::from_oid(&id.hash_algorithm.oid.to_string()) else {
        return false;
    };
    strip_zeros(id.serial_number.as_bytes()) == strip_zeros(leaf.raw_serial())
        && id.issuer_name_hash.as_bytes() == hash.digest(issuer.subject().as_raw()).as_slice()
        && id.issuer_key_hash.as_bytes()
            == hash
                .digest(&issuer.public_key().subject_public_key.data)
                .as_slice()
}

/// Checks the response's signature: by the issuer itself, or by a certificate in the response
/// that the issuer signed with the OCSP-signing purpose and that is valid now. Returns the
/// delegated responder's expiry, if one signed.
fn check_signature(
    basic: &BasicOcspResponse,
    signed: &[u8],
    issuer: &X509Certificate<'_>,
    now: SystemTime,
) -> Result<Option<SystemTime>> {
    let responder = &basic.tbs_response_data.responder_id;
    let alg_der = basic.signature_algorithm.to_der().map_err(malformed)?;
    let (_, alg) = AlgorithmIdentifier::from_der(&alg_der)
        .map_err(|e| ocsp_error(format!("OCSP signature algorithm: {e}")))?;
    let signature = BitString::new(0, basic.signature.raw_bytes());
    let verify_with = |signer: &X509Certificate<'_>| {
        x509_parser::verify::verify_signature(signer.public_key(), &alg, &signature, signed)
            .map_err(|e| ocsp_error(format!("OCSP response signature: {e}")))
    };

    if names(responder, issuer) {
        verify_with(issuer)?;
        return Ok(None);
    }
    for cert in basic.certs.iter().flatten() {
        let der = cert.to_der().map_err(malformed)?;
        let (_, delegated) = X509Certificate::from_der(&der)
            .map_err(|e| ocsp_error(format!("OCSP responder certificate: {e}")))?;
        if !names(responder, &delegated) {
            continue;
        }
        if delegated.issuer().as_raw() != issuer.subject().as_raw()
            || delegated
                .verify_signature(Some(issuer.public_key()))
                .is_err()
        {
            return Err(ocsp_error(
                "the OCSP responder's certificate was not issued by the certificate's issuer",
            ));
        }
        let for_ocsp =
            matches!(delegated.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing);
        if !for_ocsp {
            return Err(ocsp_error(
                "the OCSP responder's certificate lacks the OCSP-signing purpose",
            ));
        }
        let validity = delegated.validity();
        let (from, until) = (
            unix_to_system(validity.not_before.timestamp()),
            unix_to_system(validity.not_after.timestamp()),
        );
        if now < from || now > until {
            return Err(ocsp_error(
                "the OCSP responder's certificate is not valid now",
            ));
        }
        verify_with(&delegated)?;
        return Ok(Some(until));
    }
    Err(ocsp_error(
        "the OCSP response is signed by neither the issuer nor a responder it delegated to",
    ))
}

/// Whether the ResponderID designates `cert` (by subject name or by SHA-1 of its key).
fn names(id: &ResponderId, cert: &X509Certificate<'_>) -> bool {
    match id {
        ResponderId::ByName(name) => name
            .to_der()
            .is_ok_and(|der| der.as_slice() == cert.subject().as_raw()),
        ResponderId::ByKey(hash) => {
            hash.as_bytes() == sha1(&cert.public_key().subject_public_key.data).as_slice()
        }
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

fn to_system_time(t: &x509_ocsp::OcspGeneralizedTime) -> SystemTime {
    UNIX_EPOCH + t.0.to_unix_duration()
}

fn unix_to_system(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn malformed(e: der::Error) -> Error {
    ocsp_error(format!("malformed OCSP response: {e}"))
}

/// OCSP failures are only logged (stapling is best effort), so they share the certificate
/// kind rather than adding one every binding would have to map.
pub(crate) fn ocsp_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Certificate, message)
}

#[cfg(test)]
mod tests {
    //! Responses made by a real `openssl ocsp` (one-shot: request file in, response file out)
    //! for certificates of a CA made here with rcgen.

    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use x509_parser::prelude::parse_x509_certificate;

    struct Pem {
        cert: String,
        key: String,
        der: Vec<u8>,
    }

    fn new_ca(name: &str) -> (Pem, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        let pem = Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        };
        (pem, Issuer::new(params, key))
    }

    fn issued(issuer: &Issuer<'_, KeyPair>, name: &str, eku: &[ExtendedKeyUsagePurpose]) -> Pem {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = eku.to_vec();
        let cert = params.signed_by(&key, issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// `openssl ocsp` answering `request` for the index line `status` (`V`, or `R` with a
    /// reason) of `leaf`, signed by `signer`.
    fn respond(ca: &Pem, signer: &Pem, leaf: &Pem, status: &str, request: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n);
        std::fs::write(path("ca.pem"), &ca.cert).unwrap();
        std::fs::write(path("signer.pem"), &signer.cert).unwrap();
        std::fs::write(path("signer.key"), &signer.key).unwrap();
        std::fs::write(path("req.der"), request).unwrap();
        let (_, l) = parse_x509_certificate(&leaf.der).unwrap();
        let serial: String = strip_zeros(l.raw_serial())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let line = match status {
            "V" => format!("V\t491231235959Z\t\t{serial}\tunknown\t/CN=x\n"),
            reason => {
                format!("R\t491231235959Z\t240101000000Z,{reason}\t{serial}\tunknown\t/CN=x\n")
            }
        };
        std::fs::write(path("index.txt"), line).unwrap();
        let out = std::process::Command::new("openssl")
            .arg("ocsp")
            .arg("-index")
            .arg(path("index.txt"))
            .arg("-CA")
            .arg(path("ca.pem"))
            .arg("-rsigner")
            .arg(path("signer.pem"))
            .arg("-rkey")
            .arg(path("signer.key"))
            .arg("-reqin")
            .arg(path("req.der"))
            .arg("-respout")
            .arg(path("resp.der"))
            .args(["-nmin", "60"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(path("resp.der")).unwrap()
    }

    fn check(resp: &[u8], leaf: &Pem, issuer: &Pem) -> Result<OcspResponse> {
        let (_, l) = parse_x509_certificate(&leaf.der).unwrap();
        let (_, i) = parse_x509_certificate(&issuer.der).unwrap();
        OcspResponse::verify(resp, &l, &i, SystemTime::now())
    }

    fn request(leaf: &Pem, issuer: &Pem) -> Vec<u8> {
        let (_, l) = parse_x509_certificate(&leaf.der).unwrap();
        let (_, i) = parse_x509_certificate(&issuer.der).unwrap();
        super::super::request_der(&l, &i).unwrap()
    }

    #[test]
    fn signed_by_the_issuer_or_a_delegated_ocsp_signer() {
        let (ca_pem, ca) = new_ca("Test CA");
        let leaf = issued(&ca, "a.test", &[ExtendedKeyUsagePurpose::ServerAuth]);
        let req = request(&leaf, &ca_pem);

        let good = check(&respond(&ca_pem, &ca_pem, &leaf, "V", &req), &leaf, &ca_pem).unwrap();
        assert_eq!(good.status(), OcspStatus::Good);
        let next = good.next_update().unwrap();
        assert_eq!(
            next.duration_since(good.this_update()).unwrap(),
            Duration::from_secs(3600)
        );
        assert!(good.is_fresh(SystemTime::now()));
        assert!(!good.is_fresh(good.this_update() + Duration::from_secs(1801)));

        let delegated = issued(&ca, "OCSP signer", &[ExtendedKeyUsagePurpose::OcspSigning]);
        let by_delegate = respond(&ca_pem, &delegated, &leaf, "V", &req);
        let ok = check(&by_delegate, &leaf, &ca_pem).unwrap();
        assert_eq!(ok.status(), OcspStatus::Good);
        assert!(ok.responder_not_after.is_some());

        let revoked = check(
            &respond(&ca_pem, &ca_pem, &leaf, "keyCompromise", &req),
            &leaf,
            &ca_pem,
        )
        .unwrap();
        match revoked.status() {
            OcspStatus::Revoked { reason, revoked_at } => {
                assert_eq!(reason, Some(REASON_KEY_COMPROMISE));
                assert_eq!(revoked_at, UNIX_EPOCH + Duration::from_secs(1_704_067_200));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_what_does_not_prove_the_status() {
        let (ca_pem, ca) = new_ca("Test CA");
        let leaf = issued(&ca, "a.test", &[ExtendedKeyUsagePurpose::ServerAuth]);
        let other_leaf = issued(&ca, "b.test", &[ExtendedKeyUsagePurpose::ServerAuth]);
        let req = request(&leaf, &ca_pem);

        // A signer without the OCSP-signing purpose (any certificate of the CA).
        let not_for_ocsp = respond(&ca_pem, &other_leaf, &leaf, "V", &req);
        let e = check(&not_for_ocsp, &leaf, &ca_pem).unwrap_err();
        assert!(e.message().contains("OCSP-signing"), "{e}");

        // A responder of another CA.
        let (evil_pem, evil) = new_ca("Test CA");
        let evil_signer = issued(
            &evil,
            "OCSP signer",
            &[ExtendedKeyUsagePurpose::OcspSigning],
        );
        let forged = respond(&evil_pem, &evil_signer, &leaf, "V", &req);
        assert!(check(&forged, &leaf, &ca_pem).is_err());
        let self_signed_forgery = respond(&evil_pem, &evil_pem, &leaf, "V", &req);
        assert!(check(&self_signed_forgery, &leaf, &ca_pem).is_err());

        // About another certificate.
        let e = check(
            &respond(&ca_pem, &ca_pem, &leaf, "V", &req),
            &other_leaf,
            &ca_pem,
        )
        .unwrap_err();
        assert!(e.message().contains("not about this certificate"), "{e}");

        // A flipped bit in the signed data.
        let mut tampered = respond(&ca_pem, &ca_pem, &leaf, "V", &req);
        let at = tampered.len() / 3;
        tampered[at] ^= 0x01;
        assert!(check(&tampered, &leaf, &ca_pem).is_err());

        // Not OCSP at all, or cut short.
        let good = respond(&ca_pem, &ca_pem, &leaf, "V", &req);
        assert!(check(&good[..good.len() - 10], &leaf, &ca_pem).is_err());
        assert!(
            check(b"\x30\x03\x0a\x01\x03", &leaf, &ca_pem).is_err(),
            "tryLater"
        );
        assert!(check(b"", &leaf, &ca_pem).is_err());
    }

    #[test]
    fn refresh_at_the_midpoint_capped_by_the_responder() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut r = OcspResponse {
            der: Vec::new(),
            status: OcspStatus::Good,
            this_update: t0,
            next_update: Some(t0 + Duration::from_secs(7 * 86_400)),
            responder_not_after: None,
        };
        assert_eq!(r.refresh_at(), Some(t0 + Duration::from_secs(302_400)));
        assert!(r.is_fresh(t0 + Duration::from_secs(302_399)));
        assert!(!r.is_fresh(t0 + Duration::from_secs(302_400)));
        r.responder_not_after = Some(t0 + Duration::from_secs(86_400));
        assert_eq!(r.refresh_at(), Some(t0 + Duration::from_secs(43_200)));
        r.next_update = None;
        assert_eq!(r.refresh_at(), None, "no nextUpdate: always ask");
        assert!(!r.is_fresh(t0));
        r.next_update = Some(t0 + Duration::from_secs(86_400));
        r.status = OcspStatus::Unknown;
        assert!(!r.is_fresh(t0), "unknown is asked again at the next check");
    }
}
