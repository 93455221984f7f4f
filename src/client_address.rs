//! Which address a request really came from (pure).
//!
//! Lockouts per address only work if the address is the client's, not the
//! load balancer's (which would lock out everyone behind it), and not one the
//! client wrote itself into `X-Forwarded-For` (which would let it pick a new
//! address per guess). So the header is believed only as far as a chain of
//! proxies we trust vouches for it: each trusted proxy appends the address it
//! received from, so reading from the right, the first address that is not a
//! trusted proxy is the client. Anything left of it was written by the client
//! and is ignored.
//!
//! An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket
//! reports for an IPv4 peer) is treated as the IPv4 address it maps.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// An address block such as `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an address or network: expected e.g. 10.0.0.0/8, 2001:db8::/32 or 192.0.2.1")]
pub struct IpNetworkError(String);

impl IpNetwork {
    /// True when `address` lies in this block; an IPv4-mapped IPv6 address
    /// matches as its IPv4 form.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.addr, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNetwork {
    type Err = IpNetworkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || IpNetworkError(text.to_string());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| error())?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            // Digits only: `u8::from_str` would also take `+8`.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| error())?
            }
            Some(_) => return Err(error()),
            None => bits,
        };
        if prefix > bits {
            return Err(error());
        }
        // `::ffff:10.0.0.0/104` means `10.0.0.0/8`; store it that way so it
        // matches the canonical addresses `contains` compares.
        Ok(match addr.to_canonical() {
            IpAddr::V4(v4) if addr.is_ipv6() && prefix >= 96 => IpNetwork {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            },
            _ => IpNetwork { addr, prefix },
        })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Read from configuration as its text form.
impl<'de> serde::Deserialize<'de> for IpNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`), as some proxies write it.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .map(|address| address.to_canonical())
}

/// The client's address: `peer` (the socket's other end) unless `peer` is a
/// trusted proxy, in which case `X-Forwarded-For` is walked from the right,
/// past trusted proxies, to the first address that is not one.
///
/// `forwarded_for` is every `X-Forwarded-For` header joined with `,` in the
/// order received (RFC 9110 §5.3: that is what several lines mean). An entry
/// that is not an address ends the walk at the last trusted hop: a proxy we
/// trust cannot vouch for it, and guessing further left would let the client
/// choose. If every entry is trusted, the leftmost is the answer.
pub fn client_address(
    peer: IpAddr,
    forwarded_for: Option<&str>,
    trusted_proxies: &[IpNetwork],
) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted_proxies.iter().any(|n| n.contains(address));
    let mut last_trusted = peer.to_canonical();
    if !is_trusted(last_trusted) {
        return last_trusted;
    }
    let Some(forwarded_for) = forwarded_for else {
        return last_trusted;
    };
    for entry in forwarded_for.rsplit(',') {
        let Some(hop) = parse_hop(entry) else {
            return last_trusted;
        };
        if !is_trusted(hop) {
            return hop;
        }
        last_trusted = hop;
    }
    last_trusted
}

/// [`client_address`] from a request's headers: every `X-Forwarded-For`
/// line, in order, read only when the peer is trusted (a trusted proxy may
/// add a line rather than append to the client's). A line that is not text
/// becomes an entry that stops the walk at the last trusted hop.
pub fn client_address_of(
    peer: IpAddr,
    headers: &http::HeaderMap,
    trusted_proxies: &[IpNetwork],
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted_proxies.iter().any(|n| n.contains(peer)) {
        // The common case costs no header lookup.
        return peer;
    }
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("invalid"))
        .collect();
    let joined = lines.join(",");
    let forwarded_for = (!lines.is_empty()).then_some(joined.as_str());
    client_address(peer, forwarded_for, trusted_proxies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn networks(texts: &[&str]) -> Vec<IpNetwork> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn networks_parse() {
        let cases: [(&str, Option<&str>); 14] = [
            ("10.0.0.0/8", Some("10.0.0.0/8")),
            ("127.0.0.1", Some("127.0.0.1/32")),
            (" 192.0.2.0/24 ", Some("192.0.2.0/24")),
            ("0.0.0.0/0", Some("0.0.0.0/0")),
            ("::1/128", Some("::1/128")),
            ("::1", Some("::1/128")),
            ("2001:db8::/32", Some("2001:db8::/32")),
            ("::ffff:10.0.0.0/104", Some("10.0.0.0/8")),
            ("10.0.0.0/33", None),
            ("::/129", None),
            ("10.0.0.0/", None),
            ("10.0.0.0/+8", None),
            ("10.0.0/8", None),
            ("localhost", None),
        ];
        for (text, expected) in cases {
            let parsed = text.parse::<IpNetwork>().ok().map(|n| n.to_string());
            assert_eq!(parsed.as_deref(), expected, "{text:?}");
        }
    }

    #[test]
    fn containment() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.1.2.3/8", "10.9.9.9", true),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("10.0.0.0/8", "::ffff:10.1.1.1", true),
            ("::ffff:10.0.0.0/104", "10.1.1.1", true),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "::1", true),
            ("::1/128", "127.0.0.1", false),
        ];
        for (network, address, expected) in cases {
            let network: IpNetwork = network.parse().unwrap();
            assert_eq!(
                network.contains(ip(address)),
                expected,
                "{network} ∋ {address}"
            );
        }
    }

    #[test]
    fn client_addresses() {
        let trusted = networks(&["10.0.0.0/8", "2001:db8:ffff::/48", "127.0.0.1"]);
        let cases: [(&str, &str, Option<&str>, &str); 19] = [
            (
                "no header, untrusted peer",
                "203.0.113.5",
                None,
                "203.0.113.5",
            ),
            ("no header, trusted peer", "10.0.0.2", None, "10.0.0.2"),
            // Spoofing: only a trusted peer's header is read.
            (
                "untrusted peer's header ignored",
                "203.0.113.5",
                Some("198.51.100.1"),
                "203.0.113.5",
            ),
            (
                "untrusted peer claims a proxy",
                "203.0.113.5",
                Some("10.0.0.9"),
                "203.0.113.5",
            ),
            (
                "one proxy",
                "10.0.0.2",
                Some("198.51.100.1"),
                "198.51.100.1",
            ),
            // The client wrote the left entry; our proxy appended the right.
            (
                "client-written entry skipped",
                "10.0.0.2",
                Some("1.2.3.4, 198.51.100.1"),
                "198.51.100.1",
            ),
            (
                "client claims to be a proxy",
                "10.0.0.2",
                Some("10.9.9.9, 198.51.100.1"),
                "198.51.100.1",
            ),
            (
                "two proxies",
                "10.0.0.2",
                Some("198.51.100.1, 10.0.0.3"),
                "198.51.100.1",
            ),
            (
                "three proxies, no spaces",
                "10.0.0.2",
                Some("6.6.6.6,198.51.100.1,10.0.0.4,10.0.0.3"),
                "198.51.100.1",
            ),
            (
                "all trusted: leftmost",
                "10.0.0.2",
                Some("10.0.0.5, 10.0.0.3"),
                "10.0.0.5",
            ),
            (
                "garbage at right: peer",
                "10.0.0.2",
                Some("198.51.100.1, unknown"),
                "10.0.0.2",
            ),
            (
                "garbage behind a hop",
                "10.0.0.2",
                Some("198.51.100.1, junk, 10.0.0.3"),
                "10.0.0.3",
            ),
            (
                "empty entry",
                "10.0.0.2",
                Some("198.51.100.1,,"),
                "10.0.0.2",
            ),
            ("empty header", "10.0.0.2", Some(""), "10.0.0.2"),
            (
                "ports are dropped",
                "10.0.0.2",
                Some("[2001:db8::1]:4711, 198.51.100.1:80"),
                "198.51.100.1",
            ),
            (
                "ipv6 client via ipv6 proxy",
                "2001:db8:ffff::1",
                Some("2001:db8::42"),
                "2001:db8::42",
            ),
            (
                "mapped peer is trusted as v4",
                "::ffff:10.0.0.2",
                Some("198.51.100.1"),
                "198.51.100.1",
            ),
            (
                "mapped peer, untrusted",
                "::ffff:203.0.113.5",
                Some("198.51.100.1"),
                "203.0.113.5",
            ),
            (
                "mapped entry answered as v4",
                "127.0.0.1",
                Some("::ffff:198.51.100.1"),
                "198.51.100.1",
            ),
        ];
        for (name, peer, header, expected) in cases {
            assert_eq!(
                client_address(ip(peer), header, &trusted),
                ip(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn nothing_trusted_means_the_peer() {
        let peer = ip("10.0.0.2");
        assert_eq!(client_address(peer, Some("198.51.100.1"), &[]), peer);
    }
}
