//! Sending DNS messages: UDP first (EDNS0, 1232 bytes), TCP when the answer is truncated or
//! UDP gets no answer, a timeout on each try. Servers are `ip` or `ip:port` (53 by default).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use super::wire::{self, Response};
use crate::error::{Error, ErrorKind, Result};

/// How long one try (UDP or TCP) may take, as Go CertMagic's DNS client.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Used when neither the config nor `/etc/resolv.conf` names a resolver.
const FALLBACK_RESOLVERS: [&str; 4] = ["8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1"];

/// Parses `ip`, `ip:port` or `[v6]:port`.
pub fn parse_server(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

/// The system's resolvers from `/etc/resolv.conf`, else well-known public ones.
pub fn system_resolvers() -> Vec<SocketAddr> {
    let from_file: Vec<SocketAddr> = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                .map(|ip| ip.split('%').next().unwrap_or(ip))
                .and_then(parse_server)
        })
        .collect();
    if from_file.is_empty() {
        FALLBACK_RESOLVERS
            .iter()
            .filter_map(|s| parse_server(s))
            .collect()
    } else {
        from_file
    }
}

/// An answer whose id matched the query's.
pub struct Answer {
    /// As received (what a TSIG covers; read by the RFC 2136 provider only).
    #[cfg_attr(not(feature = "dns-rfc2136"), allow(dead_code))]
    pub bytes: Vec<u8>,
    /// Decoded by hickory-proto.
    pub message: Message,
}

/// Sends `message` to `server` and returns the decoded answer (any rcode).
///
/// The transport stays ours, measured against hickory-net 0.26 for issue 21: a probe doing
/// DNS-01's work with hickory-proto alone is 1.00 MB stripped, 1.30 MB with hickory-net's UDP
/// and TCP clients doing the sending (0.30 MB for what the functions below do). Its UDP client
/// does not fall back to TCP on a truncated answer, and it reports a server's refusal of our
/// TSIG (BADSIG, BADKEY: unsigned by design) as a failed verification, like a forged answer; we
/// would have written both around it. Decoding and TSIG are hickory-proto's (`wire.rs`).
pub async fn exchange(server: SocketAddr, message: &[u8], timeout: Duration) -> Result<Answer> {
    let id = u16::from_be_bytes([message[0], message[1]]);
    match tokio::time::timeout(timeout, exchange_udp(server, message, id)).await {
        Ok(Ok(Some(answer))) => return Ok(answer),
        Ok(Ok(None)) => {}
        Ok(Err(e)) if e.kind() != ErrorKind::Timeout => return Err(e),
        _ => {}
    }
    // Truncated or no UDP answer: TCP carries any size and gets through some filters.
    tokio::time::timeout(timeout, exchange_tcp(server, message, id))
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("DNS server {server} did not answer within {timeout:?}"),
            )
        })?
}

fn io_error(server: SocketAddr, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Challenge, format!("DNS server {server}: {e}")).with_source(e)
}

/// The answer, or `None` when it was truncated (to be asked again over TCP).
async fn exchange_udp(server: SocketAddr, message: &[u8], id: u16) -> Result<Option<Answer>> {
    let local: SocketAddr = if server.is_ipv4() {
        ([0u8; 4], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| io_error(server, e))?;
    socket
        .connect(server)
        .await
        .map_err(|e| io_error(server, e))?;
    socket
        .send(message)
        .await
        .map_err(|e| io_error(server, e))?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| io_error(server, e))?;
        let bytes = &buf[..n];
        if wire::truncated_answer(bytes, id) {
            return Ok(None);
        }
        // Stray, spoofed or malformed datagrams are ignored.
        match wire::decode(bytes) {
            Ok(message) if message.metadata.id == id => {
                return Ok(Some(Answer {
                    bytes: bytes.to_vec(),
                    message,
                }));
            }
            _ => continue,
        }
    }
}

async fn exchange_tcp(server: SocketAddr, message: &[u8], id: u16) -> Result<Answer> {
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(|e| io_error(server, e))?;
    let len = u16::try_from(message.len()).map_err(|_| Error::internal("DNS message too long"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| io_error(server, e))?;
    let len = stream.read_u16().await.map_err(|e| io_error(server, e))? as usize;
    let mut bytes = vec![0u8; len];
    stream
        .read_exact(&mut bytes)
        .await
        .map_err(|e| io_error(server, e))?;
    let message = wire::decode(&bytes)?;
    if message.metadata.id != id {
        return Err(Error::new(
            ErrorKind::Challenge,
            format!("DNS server {server} answered another query"),
        ));
    }
    Ok(Answer { bytes, message })
}

/// Asks `servers` in turn for `name`/`qtype` until one answers; the first answer wins
/// (whatever its rcode), errors are reported only if no server answers.
pub async fn query(servers: &[SocketAddr], name: &str, qtype: RecordType) -> Result<Response> {
    let mut last = None;
    for server in servers {
        let msg = wire::query(rand::random(), name, qtype)?;
        match exchange(*server, &msg, QUERY_TIMEOUT).await {
            Ok(a) => {
                let r = wire::view(&a.message);
                // SERVFAIL/REFUSED from one resolver: another may do better.
                if r.rcode == 2 || r.rcode == 5 {
                    last = Some(Error::new(
                        ErrorKind::Challenge,
                        format!(
                            "DNS server {server} answered {} for {name}",
                            wire::rcode_name(r.rcode)
                        ),
                    ));
                } else {
                    return Ok(r);
                }
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::new(ErrorKind::Challenge, "no DNS server to ask")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_with_default_port() {
        assert_eq!(parse_server("127.0.0.1"), Some(([127, 0, 0, 1], 53).into()));
        assert_eq!(
            parse_server("127.0.0.1:5353"),
            Some(([127, 0, 0, 1], 5353).into())
        );
        assert_eq!(parse_server("[::1]:54").map(|a| a.port()), Some(54));
        assert_eq!(parse_server("::1").map(|a| a.port()), Some(53));
        assert_eq!(parse_server("dns.example"), None);
        assert!(!system_resolvers().is_empty());
    }
}
