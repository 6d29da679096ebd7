//! Which address a request came from, and the quota bucket that address belongs to.
//!
//! Behind API Gateway the connecting peer is `requestContext.http.sourceIp`. `X-Forwarded-For`
//! is written by the client first and then appended to by every proxy, so only its right-most
//! entries can be trusted: as many as there are proxies of ours in front (each appends the
//! address it saw). With `trusted_hops = 0` there is no proxy of ours and the client is the
//! source ip; with `trusted_hops = n` the client is the n-th entry from the right. Entries
//! further left are whatever the client wrote and are never looked at, so a client cannot
//! choose its address by prepending entries. When the header has fewer entries than trusted
//! hops, or the chosen entry is not a bare IP address, the client is unknown (`None`): falling
//! back to the source ip would hand every such request the proxy's address.
//!
//! (Upstream used the *first* `X-Forwarded-For` entry, which the client controls.)

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The client's address, given the peer address, the `X-Forwarded-For` header (all its values
/// joined by `,` if it appeared more than once) and how many proxies of ours append to it.
pub fn client_ip(
    source_ip: Option<IpAddr>,
    x_forwarded_for: Option<&str>,
    trusted_hops: usize,
) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return source_ip.map(canonical);
    }
    let xff = x_forwarded_for?;
    let entry = xff.rsplit(',').nth(trusted_hops - 1)?;
    entry.trim().parse::<IpAddr>().ok().map(canonical)
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The network a client address is metered under: IPv4 by /24, IPv6 by /48.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaBucket {
    /// The first three octets.
    V4([u8; 3]),
    /// The first six octets.
    V6([u8; 6]),
}

/// Groups an address into its quota bucket.
pub fn quota_bucket(ip: IpAddr) -> QuotaBucket {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            QuotaBucket::V4([o[0], o[1], o[2]])
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            QuotaBucket::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
        }
    }
}

impl QuotaBucket {
    /// The network address of the bucket.
    pub fn network(&self) -> IpAddr {
        match *self {
            QuotaBucket::V4([a, b, c]) => IpAddr::V4(Ipv4Addr::new(a, b, c, 0)),
            QuotaBucket::V6(p) => {
                let mut o = [0u8; 16];
                o[..6].copy_from_slice(&p);
                IpAddr::V6(Ipv6Addr::from(o))
            }
        }
    }

    /// The prefix length: 24 or 48.
    pub fn prefix_len(&self) -> u8 {
        match self {
            QuotaBucket::V4(_) => 24,
            QuotaBucket::V6(_) => 48,
        }
    }

    /// Bytes identifying the bucket, for hashing: a family tag then the prefix octets.
    pub fn key_bytes(&self) -> Vec<u8> {
        match self {
            QuotaBucket::V4(p) => [&[4u8][..], &p[..]].concat(),
            QuotaBucket::V6(p) => [&[6u8][..], &p[..]].concat(),
        }
    }
}

impl fmt::Display for QuotaBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_client_is_the_source_ip() {
        assert_eq!(
            client_ip(Some(ip("9.9.9.9")), Some("1.1.1.1"), 0),
            Some(ip("9.9.9.9"))
        );
        assert_eq!(client_ip(None, Some("1.1.1.1"), 0), None);
    }

    #[test]
    fn with_one_trusted_hop_the_client_is_the_rightmost_entry() {
        let src = Some(ip("130.176.0.1")); // the CDN's edge
        assert_eq!(client_ip(src, Some("1.1.1.1"), 1), Some(ip("1.1.1.1")));
        assert_eq!(
            client_ip(src, Some("1.1.1.1, 2.2.2.2"), 1),
            Some(ip("2.2.2.2"))
        );
        assert_eq!(
            client_ip(src, Some("1.1.1.1,2.2.2.2"), 1),
            Some(ip("2.2.2.2"))
        );
    }

    #[test]
    fn with_two_trusted_hops_the_client_is_second_from_the_right() {
        assert_eq!(
            client_ip(None, Some("6.6.6.6, 1.1.1.1, 10.0.0.1"), 2),
            Some(ip("1.1.1.1"))
        );
    }

    #[test]
    fn a_chain_shorter_than_the_trusted_hops_gives_no_client() {
        assert_eq!(client_ip(Some(ip("10.0.0.1")), None, 1), None);
        assert_eq!(client_ip(Some(ip("10.0.0.1")), Some("1.1.1.1"), 2), None);
    }

    #[test]
    fn an_unparsable_trusted_entry_gives_no_client() {
        for entry in ["2.2.2.2:51234", "[2001:db8::1]:443", "unknown", ""] {
            assert_eq!(
                client_ip(None, Some(&format!("1.1.1.1, {entry}")), 1),
                None,
                "{entry}"
            );
        }
    }

    #[test]
    fn garbage_written_by_the_client_left_of_the_trusted_entries_is_ignored() {
        assert_eq!(
            client_ip(None, Some("not-an-ip, 2.2.2.2"), 1),
            Some(ip("2.2.2.2"))
        );
    }

    #[test]
    fn ipv6_and_mapped_ipv4_addresses_are_understood() {
        assert_eq!(
            client_ip(None, Some("2001:db8::1"), 1),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            client_ip(None, Some("::ffff:1.2.3.4"), 1),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            client_ip(Some(ip("::ffff:1.2.3.4")), None, 0),
            Some(ip("1.2.3.4"))
        );
    }

    #[test]
    fn a_client_prepending_any_fake_entries_cannot_choose_its_address() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for _ in 0..2000 {
            let hops = rng.random_range(0..4usize);
            let real = IpAddr::V4(Ipv4Addr::from(rng.random::<u32>()));
            // What the client sends: any number of entries, some not even addresses.
            let n_fake = rng.random_range(0..5usize);
            let mut entries: Vec<String> = (0..n_fake)
                .map(|i| match (i + rng.random_range(0..3usize)) % 3 {
                    0 => Ipv4Addr::from(rng.random::<u32>()).to_string(),
                    1 => "evil".to_owned(),
                    _ => Ipv6Addr::from(rng.random::<u128>()).to_string(),
                })
                .collect();
            // What our proxies append: the client's real address, then each proxy's peer.
            let source = if hops == 0 {
                real
            } else {
                entries.push(real.to_string());
                for _ in 1..hops {
                    entries.push(Ipv4Addr::new(10, 0, 0, rng.random()).to_string());
                }
                ip("130.176.0.1")
            };
            let xff = entries.join(", ");
            let xff = if xff.is_empty() {
                None
            } else {
                Some(xff.as_str())
            };
            assert_eq!(
                client_ip(Some(source), xff, hops),
                Some(real),
                "hops={hops} xff={xff:?}"
            );
        }
    }

    #[test]
    fn ipv4_addresses_share_a_bucket_per_slash_24() {
        assert_eq!(quota_bucket(ip("1.2.3.4")), quota_bucket(ip("1.2.3.250")));
        assert_ne!(quota_bucket(ip("1.2.3.4")), quota_bucket(ip("1.2.4.4")));
        assert_eq!(quota_bucket(ip("1.2.3.4")).to_string(), "1.2.3.0/24");
        assert_eq!(
            quota_bucket(ip("::ffff:1.2.3.4")),
            quota_bucket(ip("1.2.3.9"))
        );
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_slash_48() {
        assert_eq!(
            quota_bucket(ip("2001:db8:1::1")),
            quota_bucket(ip("2001:db8:1:ffff::2"))
        );
        assert_ne!(
            quota_bucket(ip("2001:db8:1::1")),
            quota_bucket(ip("2001:db8:2::1"))
        );
        assert_eq!(
            quota_bucket(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1::/48"
        );
    }

    #[test]
    fn bucket_key_bytes_distinguish_families() {
        assert_ne!(
            quota_bucket(ip("0.0.0.1")).key_bytes(),
            quota_bucket(ip("::1")).key_bytes()
        );
        assert_eq!(quota_bucket(ip("1.2.3.4")).key_bytes(), vec![4, 1, 2, 3]);
    }
}
