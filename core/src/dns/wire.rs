//! DNS messages for DNS-01: queries with EDNS0, dynamic updates (RFC 2136) of TXT records,
//! TSIG (RFC 8945) on updates and on their answers. Encoding, decoding, signing and verifying
//! are hickory-proto's; this module builds the few messages DNS-01 sends and reads answers into
//! the small view the solver works with (owner names lower case with a trailing dot).
//!
//! Why hickory-proto and not our own code (measured for issue 21, x86_64, release profile: fat
//! LTO, stripped): it replaced about 580 lines of hand-written wire code, the parser of network
//! input among them, and it verifies the TSIG of answers, which ours did not. It costs
//! `libcertmagic.so` 0.28 MB (11.75 → 12.03 MB, the same build before and after; about 0.3 MB
//! for each binary `make dist` ships, all under the 13 MB budget), three crates (hickory-proto,
//! ipnet, critical-section; `idna`, `url`, `aws-lc-rs` and the rest it shares with us) and 6 s
//! of one-core build time in release (hickory-proto 5.5 s). hickory-net (its UDP/TCP clients) is not used: see
//! `client.rs`.
// Updates and TSIG are used by the RFC 2136 provider only.
#![cfg_attr(not(feature = "dns-rfc2136"), allow(dead_code))]

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, UpdateMessage};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, RData as Data, Record as Rr, RecordType, TSigVerifier};

use crate::error::{Error, ErrorKind, Result};

pub use hickory_proto::rr::TSigner;

pub const TYPE_NS: RecordType = RecordType::NS;
pub const TYPE_CNAME: RecordType = RecordType::CNAME;
pub const TYPE_SOA: RecordType = RecordType::SOA;
pub const TYPE_TXT: RecordType = RecordType::TXT;
/// The EDNS0 UDP payload size that avoids fragmentation (DNS flag day 2020).
pub const EDNS_UDP_SIZE: u16 = 1232;
/// How far apart our clock and the server's may be for a TSIG to verify (RFC 8945's advice).
const TSIG_FUDGE_SECS: u16 = 300;

/// A response code, named as in RFC 1035/2136/8945.
pub fn rcode_name(rcode: u16) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "unknown rcode",
    }
}

/// `name` (presentation form, with or without the trailing dot) as a fully qualified name.
fn name(text: &str) -> Result<Name> {
    let mut n = Name::from_ascii(text).map_err(|e| {
        Error::new(
            ErrorKind::InvalidName,
            format!("`{text}` is not a DNS name: {e}"),
        )
    })?;
    n.set_fqdn(true);
    Ok(n)
}

/// A query for `name`/`qtype` with recursion desired and an EDNS0 OPT record.
pub fn query(id: u16, qname: &str, qtype: RecordType) -> Result<Vec<u8>> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(qname)?, qtype));
    m.set_edns(Edns::new().set_max_payload(EDNS_UDP_SIZE).clone());
    encode(&m)
}

fn encode(m: &Message) -> Result<Vec<u8>> {
    m.to_vec().map_err(|e| {
        Error::new(
            ErrorKind::Challenge,
            format!("DNS message not encoded: {e}"),
        )
    })
}

/// One change in a dynamic update.
#[derive(Debug, Clone)]
pub enum TxtChange {
    /// Add this TXT value (to whatever values the name already has).
    Add {
        name: String,
        value: String,
        ttl: u32,
    },
    /// Delete exactly this TXT value.
    Delete { name: String, value: String },
}

/// TXT data as character-strings of at most 255 bytes each (one empty string for "").
fn txt(value: &str) -> Data {
    let mut strings: Vec<&[u8]> = value.as_bytes().chunks(255).collect();
    if strings.is_empty() {
        strings.push(b"");
    }
    Data::TXT(TXT::from_bytes(strings))
}

/// An RFC 2136 UPDATE of `zone` with the given changes, signed with `signer` if there is one;
/// the verifier (when signed) checks the answer's signature.
pub fn update(
    id: u16,
    zone: &str,
    changes: &[TxtChange],
    signer: Option<&TSigner>,
    now: u64,
) -> Result<(Vec<u8>, Option<TSigVerifier>)> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Update);
    m.add_zone(Query::query(name(zone)?, RecordType::SOA));
    for c in changes {
        let record = match c {
            TxtChange::Add {
                name: owner,
                value,
                ttl,
            } => Rr::from_rdata(name(owner)?, *ttl, txt(value)),
            // Class NONE deletes the one RR matching name, type and data (RFC 2136 2.5.4).
            TxtChange::Delete { name: owner, value } => {
                let mut r = Rr::from_rdata(name(owner)?, 0, txt(value));
                r.dns_class = DNSClass::NONE;
                r
            }
        };
        m.add_update(record);
    }
    let verifier = match signer {
        Some(s) => m
            .finalize(s, now)
            .map_err(|e| Error::new(ErrorKind::Challenge, format!("DNS update not signed: {e}")))?,
        None => None,
    };
    Ok((encode(&m)?, verifier))
}

/// A TSIG algorithm (RFC 8945 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    /// `hmac-sha256`.
    HmacSha256,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlgorithm {
    /// Parses `hmac-sha256` / `hmac-sha512` (case-insensitive, trailing dot allowed).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Self::HmacSha256),
            "hmac-sha512" => Some(Self::HmacSha512),
            _ => None,
        }
    }

    /// The algorithm's domain name.
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256.",
            Self::HmacSha512 => "hmac-sha512.",
        }
    }

    /// A signer of updates with `secret` under `key_name`.
    pub(crate) fn signer(self, key_name: &str, secret: Vec<u8>) -> Result<TSigner> {
        use hickory_proto::rr::rdata::tsig::TsigAlgorithm as Alg;
        let alg = match self {
            Self::HmacSha256 => Alg::HmacSha256,
            Self::HmacSha512 => Alg::HmacSha512,
        };
        TSigner::new(
            secret,
            alg,
            name(&key_name.to_ascii_lowercase())?,
            TSIG_FUDGE_SECS,
        )
        .map_err(|e| Error::internal(format!("TSIG signer: {e}")))
    }
}

/// What the TSIG of the answer to a signed update says of it.
#[derive(Debug, PartialEq, Eq)]
pub enum SignedAnswer {
    /// Signed with our key, the MAC and time verified: its rcode can be believed.
    Verified,
    /// The server did not accept our signature (BADSIG, BADKEY, BADTIME…): such answers carry no
    /// MAC (RFC 8945 5.2), so they are reported as refusals without being verified.
    RefusedSignature(&'static str),
    /// An answer without a TSIG, or whose TSIG does not verify: forged or altered on the way.
    NotVerified(String),
}

/// Checks the TSIG of `answer` (as received, and as decoded), the reply to an update signed
/// with `verifier`'s key.
pub fn check_signed_answer(
    answer: &[u8],
    decoded: &Message,
    verifier: &mut TSigVerifier,
) -> SignedAnswer {
    match decoded.signature.as_ref().and_then(|s| s.data.error) {
        Some(TsigError::BadSig) => return SignedAnswer::RefusedSignature("BADSIG"),
        Some(TsigError::BadKey) => return SignedAnswer::RefusedSignature("BADKEY"),
        Some(TsigError::BadTime) => return SignedAnswer::RefusedSignature("BADTIME"),
        Some(TsigError::BadTrunc) => return SignedAnswer::RefusedSignature("BADTRUNC"),
        Some(TsigError::Unknown(_)) => return SignedAnswer::RefusedSignature("a TSIG error"),
        None => {}
    }
    match verifier.verify(answer) {
        Ok(_) => SignedAnswer::Verified,
        Err(e) => SignedAnswer::NotVerified(e.to_string()),
    }
}

/// Record data this module understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// A or AAAA.
    Address(IpAddr),
    /// NS or CNAME target (lower case, trailing dot).
    Name(String),
    /// SOA (primary server name only).
    Soa { mname: String },
    /// TXT character-strings joined.
    Txt(String),
    /// Anything else.
    Other,
}

/// One resource record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, lower case with a trailing dot.
    pub name: String,
    /// Record type.
    pub rtype: RecordType,
    /// Decoded data.
    pub data: RData,
}

/// A decoded response.
#[derive(Debug, Clone)]
pub struct Response {
    pub rcode: u16,
    pub answers: Vec<Record>,
    pub additional: Vec<Record>,
}

/// Lower case, trailing dot.
fn text(n: &Name) -> String {
    let mut s = n.to_lowercase().to_ascii();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn record(r: &Rr) -> Record {
    let data = match &r.data {
        Data::A(a) => RData::Address(IpAddr::V4(a.0)),
        Data::AAAA(a) => RData::Address(IpAddr::V6(a.0)),
        Data::NS(n) => RData::Name(text(&n.0)),
        Data::CNAME(n) => RData::Name(text(&n.0)),
        Data::SOA(s) => RData::Soa {
            mname: text(&s.mname),
        },
        Data::TXT(t) => RData::Txt(
            t.txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect(),
        ),
        _ => RData::Other,
    };
    Record {
        name: text(&r.name),
        rtype: r.record_type(),
        data,
    }
}

/// Decodes a response. Malformed input is an error, never a panic.
#[cfg(any(test, fuzzing))]
pub fn parse(buf: &[u8]) -> Result<Response> {
    Ok(view(&decode(buf)?))
}

pub(crate) fn decode(buf: &[u8]) -> Result<Message> {
    Message::from_vec(buf)
        .map_err(|e| Error::new(ErrorKind::Corrupt, format!("malformed DNS message: {e}")))
}

/// The solver's view of a decoded answer.
pub(crate) fn view(m: &Message) -> Response {
    Response {
        rcode: u16::from(m.metadata.response_code),
        answers: m.answers.iter().map(record).collect(),
        additional: m.additionals.iter().map(record).collect(),
    }
}

/// Whether `buf` is an answer with id `id` that says it was truncated (read from the header
/// alone: a truncated UDP answer may end in the middle of a record).
pub(crate) fn truncated_answer(buf: &[u8], id: u16) -> bool {
    buf.len() >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x02 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_layout() {
        let q = query(0x1234, "_acme-challenge.example.com.", TYPE_TXT).unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(q[12], 15);
        assert_eq!(&q[13..28], b"_acme-challenge");
        // OPT at the end: root, type 41, class 1232.
        let tail = &q[q.len() - 11..];
        assert_eq!(tail, &[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        let e = query(1, &format!("{}.example.com", "a".repeat(64)), TYPE_TXT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidName);
    }

    /// A header and a question for `_acme-challenge.example.com` TXT.
    fn answer_head(id: u16, counts: [u16; 4]) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&0x8180u16.to_be_bytes());
        for c in counts {
            m.extend_from_slice(&c.to_be_bytes());
        }
        m
    }

    #[test]
    fn names_longer_than_255_octets_are_refused() {
        // Five labels of 63 octets: 321 octets on the wire, however they are compressed.
        let mut m = answer_head(9, [1, 0, 0, 0]);
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.push(0);
        m.extend_from_slice(&[0, 16, 0, 1]);
        assert!(parse(&m).is_err());
        // Four of them (253 octets) are a name.
        let mut m = answer_head(9, [1, 0, 0, 0]);
        for _ in 0..3 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.push(61);
        m.extend_from_slice(&[b'a'; 61]);
        m.push(0);
        m.extend_from_slice(&[0, 16, 0, 1]);
        parse(&m).unwrap();
    }

    #[test]
    fn parses_compressed_answers() {
        // Answer to TXT _acme-challenge.example.com with a CNAME then a TXT, names compressed.
        let mut m = answer_head(7, [1, 2, 0, 0]);
        m.push(15);
        m.extend_from_slice(b"_acme-challenge");
        m.extend_from_slice(b"\x07Example\x03com\x00");
        m.extend_from_slice(&[0, 16, 0, 1]);
        // CNAME: owner = pointer to 12, target = "x" + pointer to "example.com" (offset 12+16).
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'x', 0xC0, 28]);
        let x_at = m.len() - 4;
        m.extend_from_slice(&[0xC0, x_at as u8, 0, 16, 0, 1, 0, 0, 0, 60, 0, 7]);
        m.extend_from_slice(&[3, b'a', b'b', b'c', 2, b'd', b'e']);
        let r = parse(&m).unwrap();
        assert_eq!(r.rcode, 0);
        assert_eq!(r.answers[0].name, "_acme-challenge.example.com.");
        assert_eq!(r.answers[0].rtype, TYPE_CNAME);
        assert_eq!(r.answers[0].data, RData::Name("x.example.com.".into()));
        assert_eq!(r.answers[1].name, "x.example.com.");
        assert_eq!(r.answers[1].data, RData::Txt("abcde".into()));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = parse(&junk);
        }
        // A pointer loop, and a pointer forward.
        let mut m = answer_head(1, [0, 1, 0, 0]);
        m.extend_from_slice(&[0xC0, 12]);
        assert!(parse(&m).is_err());
        let mut m = answer_head(1, [0, 1, 0, 0]);
        m.extend_from_slice(&[0xC0, 14, 0, 0]);
        assert!(parse(&m).is_err());
    }

    #[test]
    fn truncation_is_read_from_the_header() {
        let mut m = answer_head(5, [1, 1, 0, 0]);
        assert!(!truncated_answer(&m, 5));
        m[2] |= 0x02;
        m.extend_from_slice(&[0xFF; 3]);
        assert!(truncated_answer(&m, 5));
        assert!(!truncated_answer(&m, 6));
        assert!(!truncated_answer(&m[..11], 5));
    }

    #[test]
    fn long_txt_is_split_into_strings() {
        let long = "a".repeat(300);
        let Data::TXT(t) = txt(&long) else {
            panic!("not TXT")
        };
        assert_eq!(t.txt_data.len(), 2);
        assert_eq!(t.txt_data[0].len(), 255);
        assert_eq!(t.txt_data[1].len(), 45);
        let Data::TXT(t) = txt("") else {
            panic!("not TXT")
        };
        assert_eq!(t.txt_data.len(), 1);
        assert!(t.txt_data[0].is_empty());
    }

    fn add(value: &str) -> Vec<TxtChange> {
        vec![TxtChange::Add {
            name: "_acme-challenge.example.com.".into(),
            value: value.into(),
            ttl: 60,
        }]
    }

    #[test]
    fn updates_are_signed_and_answers_checked() {
        let signer = TsigAlgorithm::HmacSha256
            .signer("Key.", b"secret".to_vec())
            .unwrap();
        let (m, verifier) =
            update(9, "example.com.", &add("v"), Some(&signer), 1_700_000_000).unwrap();
        let mut verifier = verifier.expect("a verifier");
        let decoded = Message::from_vec(&m).unwrap();
        assert_eq!(decoded.metadata.op_code, OpCode::Update);
        let tsig = decoded.signature.expect("signed");
        assert_eq!(text(&tsig.name), "key.");
        assert_eq!(tsig.data.mac.len(), 32);
        // Same input, same signature; another key, another signature.
        let (again, _) =
            update(9, "example.com.", &add("v"), Some(&signer), 1_700_000_000).unwrap();
        assert_eq!(m, again);
        let other = TsigAlgorithm::HmacSha256
            .signer("key", b"other".to_vec())
            .unwrap();
        let (other, _) = update(9, "example.com.", &add("v"), Some(&other), 1_700_000_000).unwrap();
        assert_ne!(m, other);
        let (unsigned, none) = update(9, "example.com.", &add("v"), None, 0).unwrap();
        assert!(none.is_none());
        assert!(Message::from_vec(&unsigned).unwrap().signature.is_none());

        // An unsigned answer to a signed update is not believed, whatever it says.
        let mut answer = Message::new(9, MessageType::Response, OpCode::Update);
        answer.add_zone(Query::query(name("example.com").unwrap(), RecordType::SOA));
        let bytes = answer.to_vec().unwrap();
        assert!(matches!(
            check_signed_answer(&bytes, &answer, &mut verifier),
            SignedAnswer::NotVerified(_)
        ));
    }
}
