//! The DNS wire format, as much of it as DNS-01 needs: queries with EDNS0, dynamic updates
//! (RFC 2136) signed with TSIG (RFC 8945), and answers holding A, AAAA, NS, CNAME, SOA and TXT
//! records (compressed names included). Malformed answers are errors, never panics.
// Updates and TSIG are used by the RFC 2136 provider only.
#![cfg_attr(not(feature = "dns-rfc2136"), allow(dead_code))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, ErrorKind, Result};

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const TYPE_TSIG: u16 = 250;
const CLASS_IN: u16 = 1;
const CLASS_NONE: u16 = 254;
const CLASS_ANY: u16 = 255;
const OPCODE_UPDATE: u16 = 5;
/// The EDNS0 UDP payload size that avoids fragmentation (DNS flag day 2020).
pub const EDNS_UDP_SIZE: u16 = 1232;

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

/// Writes `name` (presentation form, with or without the trailing dot) as uncompressed labels.
fn put_name(out: &mut Vec<u8>, name: &str) -> Result<()> {
    let name = name.trim_end_matches('.');
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(Error::new(
                    ErrorKind::InvalidName,
                    format!("`{name}` has an empty or over-long label"),
                ));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() > u16::MAX as usize {
        return Err(Error::new(ErrorKind::InvalidName, "name too long"));
    }
    Ok(())
}

/// TXT data as character-strings of at most 255 bytes each.
fn txt_rdata(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        out.push(0);
    }
    for chunk in bytes.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    out
}

fn put_rr(
    out: &mut Vec<u8>,
    name: &str,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: &[u8],
) -> Result<()> {
    put_name(out, name)?;
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let len = u16::try_from(rdata.len()).map_err(|_| Error::internal("record data too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(rdata);
    Ok(())
}

fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out
}

/// A query for `name`/`qtype` with recursion desired and an EDNS0 OPT record.
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>> {
    let mut out = header(id, 0x0100, [1, 0, 0, 1]);
    put_name(&mut out, name)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root name, type 41, class = UDP payload size, TTL 0 (no DO bit), no options.
    put_rr(&mut out, ".", TYPE_OPT, EDNS_UDP_SIZE, 0, &[])?;
    Ok(out)
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

/// An RFC 2136 UPDATE of `zone` with the given changes (TSIG is added by [`sign_tsig`]).
pub fn update(id: u16, zone: &str, changes: &[TxtChange]) -> Result<Vec<u8>> {
    let count = u16::try_from(changes.len()).map_err(|_| Error::internal("too many changes"))?;
    let mut out = header(id, OPCODE_UPDATE << 11, [1, 0, count, 0]);
    put_name(&mut out, zone)?;
    out.extend_from_slice(&TYPE_SOA.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    for c in changes {
        match c {
            TxtChange::Add { name, value, ttl } => {
                put_rr(&mut out, name, TYPE_TXT, CLASS_IN, *ttl, &txt_rdata(value))?
            }
            // Class NONE deletes the one RR matching name, type and data (RFC 2136 2.5.4).
            TxtChange::Delete { name, value } => {
                put_rr(&mut out, name, TYPE_TXT, CLASS_NONE, 0, &txt_rdata(value))?
            }
        }
    }
    Ok(out)
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

    fn hmac(self) -> aws_lc_rs::hmac::Algorithm {
        match self {
            Self::HmacSha256 => aws_lc_rs::hmac::HMAC_SHA256,
            Self::HmacSha512 => aws_lc_rs::hmac::HMAC_SHA512,
        }
    }
}

/// Appends a TSIG record signing `message` with `secret` under `key_name` (RFC 8945 4.3).
pub fn sign_tsig(
    message: &mut Vec<u8>,
    key_name: &str,
    algorithm: TsigAlgorithm,
    secret: &[u8],
    time_signed: u64,
) -> Result<()> {
    const FUDGE: u16 = 300;
    let key_name = key_name.to_ascii_lowercase();
    let mut time48 = [0u8; 6];
    time48.copy_from_slice(&time_signed.to_be_bytes()[2..]);

    // The MAC covers the message, then the TSIG variables in canonical form.
    let mut vars = Vec::new();
    put_name(&mut vars, &key_name)?;
    vars.extend_from_slice(&CLASS_ANY.to_be_bytes());
    vars.extend_from_slice(&0u32.to_be_bytes());
    put_name(&mut vars, algorithm.name())?;
    vars.extend_from_slice(&time48);
    vars.extend_from_slice(&FUDGE.to_be_bytes());
    vars.extend_from_slice(&0u16.to_be_bytes()); // error
    vars.extend_from_slice(&0u16.to_be_bytes()); // other len
    let key = aws_lc_rs::hmac::Key::new(algorithm.hmac(), secret);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(message);
    ctx.update(&vars);
    let mac = ctx.sign();
    let mac = mac.as_ref();

    let original_id = [message[0], message[1]];
    let mut rdata = Vec::new();
    put_name(&mut rdata, algorithm.name())?;
    rdata.extend_from_slice(&time48);
    rdata.extend_from_slice(&FUDGE.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(mac);
    rdata.extend_from_slice(&original_id);
    rdata.extend_from_slice(&0u16.to_be_bytes()); // error
    rdata.extend_from_slice(&0u16.to_be_bytes()); // other len
    put_rr(message, &key_name, TYPE_TSIG, CLASS_ANY, 0, &rdata)?;
    let arcount = u16::from_be_bytes([message[10], message[11]]) + 1;
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
    Ok(())
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
    pub rtype: u16,
    /// Decoded data.
    pub data: RData,
}

/// A decoded response.
#[derive(Debug, Clone)]
pub struct Response {
    pub id: u16,
    pub truncated: bool,
    pub rcode: u16,
    pub answers: Vec<Record>,
    pub additional: Vec<Record>,
}

fn malformed(what: &str) -> Error {
    Error::new(ErrorKind::Corrupt, format!("malformed DNS message: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| malformed("truncated"))?;
        self.pos += 1;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| malformed("length"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| malformed("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    /// A possibly compressed name starting at the current position.
    fn name(&mut self) -> Result<String> {
        let mut labels: Vec<String> = Vec::new();
        let mut pos = self.pos;
        let mut jumped = false;
        let mut hops = 0;
        // Octets of the name as it would be written out, the final root label included.
        let mut octets = 1;
        loop {
            let len = *self.buf.get(pos).ok_or_else(|| malformed("name"))? as usize;
            match len {
                0 => {
                    if !jumped {
                        self.pos = pos + 1;
                    }
                    break;
                }
                l if l & 0xC0 == 0xC0 => {
                    let lo = *self.buf.get(pos + 1).ok_or_else(|| malformed("pointer"))? as usize;
                    if !jumped {
                        self.pos = pos + 2;
                    }
                    jumped = true;
                    hops += 1;
                    if hops > 64 {
                        return Err(malformed("compression loop"));
                    }
                    pos = ((l & 0x3F) << 8) | lo;
                }
                l if l <= 63 => {
                    let label = self
                        .buf
                        .get(pos + 1..pos + 1 + l)
                        .ok_or_else(|| malformed("label"))?;
                    octets += 1 + l;
                    if octets > MAX_NAME_OCTETS {
                        return Err(malformed("name longer than 255 octets"));
                    }
                    labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                    pos += 1 + l;
                }
                _ => return Err(malformed("label type")),
            }
        }
        if labels.is_empty() {
            return Ok(".".into());
        }
        Ok(format!("{}.", labels.join(".")))
    }

    fn record(&mut self) -> Result<Record> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let _class = self.u16()?;
        let _ttl = self.u32()?;
        let len = self.u16()? as usize;
        let start = self.pos;
        let end = start + len;
        if end > self.buf.len() {
            return Err(malformed("record data"));
        }
        let data = match rtype {
            TYPE_A if len == 4 => {
                let b = self.bytes(4)?;
                RData::Address(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            TYPE_AAAA if len == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.bytes(16)?);
                RData::Address(IpAddr::V6(Ipv6Addr::from(a)))
            }
            TYPE_NS | TYPE_CNAME => RData::Name(self.name()?),
            TYPE_SOA => RData::Soa {
                mname: self.name()?,
            },
            TYPE_TXT => {
                let mut text = Vec::new();
                while self.pos < end {
                    let l = self.u8()? as usize;
                    text.extend_from_slice(self.bytes(l)?);
                }
                RData::Txt(String::from_utf8_lossy(&text).into_owned())
            }
            _ => RData::Other,
        };
        if self.pos > end {
            return Err(malformed("record data overruns its length"));
        }
        self.pos = end;
        Ok(Record { name, rtype, data })
    }
}

/// Decodes a response.
pub fn parse(buf: &[u8]) -> Result<Response> {
    let mut r = Reader { buf, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let counts = [r.u16()?, r.u16()?, r.u16()?, r.u16()?];
    let truncated = flags & 0x0200 != 0;
    let mut rcode = flags & 0x000F;
    for _ in 0..counts[0] {
        r.name()?;
        r.u16()?;
        r.u16()?;
    }
    let mut sections: [Vec<Record>; 3] = Default::default();
    for (i, n) in counts[1..].iter().enumerate() {
        for _ in 0..*n {
            match r.record() {
                Ok(rec) => sections[i].push(rec),
                // A truncated UDP answer may end mid-record; the caller retries over TCP.
                Err(_) if truncated => break,
                Err(e) => return Err(e),
            }
        }
    }
    let [answers, _authority, mut additional] = sections;
    // Extended rcode bits live in the OPT record's TTL; the OPT itself is not kept.
    additional.retain(|rec| rec.rtype != TYPE_OPT);
    if rcode > 15 {
        rcode &= 0x0F;
    }
    Ok(Response {
        id,
        truncated,
        rcode,
        answers,
        additional,
    })
}

/// The longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME_OCTETS: usize = 255;

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
    }

    #[test]
    fn names_longer_than_255_octets_are_refused() {
        // Five labels of 63 octets: 321 octets on the wire, however they are compressed.
        let mut m = header(9, 0x8180, [1, 0, 0, 0]);
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.push(0);
        m.extend_from_slice(&[0, 16, 0, 1]);
        let err = parse(&m).unwrap_err();
        assert!(err.message().contains("255 octets"), "{err}");
        // Four of them (253 octets) are a name.
        let mut m = header(9, 0x8180, [1, 0, 0, 0]);
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
        let mut m = header(7, 0x8180, [1, 2, 0, 0]);
        put_name(&mut m, "_acme-challenge.example.com").unwrap();
        m.extend_from_slice(&[0, 16, 0, 1]);
        // CNAME: owner = pointer to 12, target = "x" + pointer to "example.com" (offset 12+16).
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'x', 0xC0, 28]);
        let x_at = m.len() - 4;
        m.extend_from_slice(&[0xC0, x_at as u8, 0, 16, 0, 1, 0, 0, 0, 60, 0, 7]);
        m.extend_from_slice(&[3, b'a', b'b', b'c', 2, b'd', b'e']);
        let r = parse(&m).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.rcode, 0);
        assert_eq!(r.answers[0].name, "_acme-challenge.example.com.");
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
        // A pointer loop.
        let mut m = header(1, 0x8180, [0, 1, 0, 0]);
        m.extend_from_slice(&[0xC0, 12]);
        assert!(parse(&m).is_err());
    }

    #[test]
    fn long_txt_is_split_into_strings() {
        let long = "a".repeat(300);
        let rd = txt_rdata(&long);
        assert_eq!(rd[0], 255);
        assert_eq!(rd[256], 45);
        assert_eq!(rd.len(), 302);
    }

    #[test]
    fn tsig_is_appended_and_counted() {
        let mut m = update(
            9,
            "example.com.",
            &[TxtChange::Add {
                name: "_acme-challenge.example.com.".into(),
                value: "v".into(),
                ttl: 60,
            }],
        )
        .unwrap();
        let before = m.len();
        sign_tsig(
            &mut m,
            "Key.",
            TsigAlgorithm::HmacSha256,
            b"secret",
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(u16::from_be_bytes([m[10], m[11]]), 1);
        assert!(m.len() > before + 32);
        // Same input, same signature; another key, another signature.
        let mut again = update(
            9,
            "example.com.",
            &[TxtChange::Add {
                name: "_acme-challenge.example.com.".into(),
                value: "v".into(),
                ttl: 60,
            }],
        )
        .unwrap();
        sign_tsig(
            &mut again,
            "key",
            TsigAlgorithm::HmacSha256,
            b"secret",
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(m, again);
        let mut other = again.clone();
        other.truncate(before);
        other[10..12].copy_from_slice(&[0, 0]);
        sign_tsig(
            &mut other,
            "key",
            TsigAlgorithm::HmacSha256,
            b"other",
            1_700_000_000,
        )
        .unwrap();
        assert_ne!(m, other);
    }
}
