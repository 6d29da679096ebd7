//! A tiny MaxMind DB (MMDB v2) writer, so tests build their own GeoIP databases instead of
//! shipping or downloading real ones (moved here from the probe crate's test support so every
//! crate's tests can use one copy).
//!
//! It writes an IPv6 tree (IPv4 networks live under `::/96`, where readers look them up) with
//! 24-bit records, one data record per inserted network (no de-duplication), and the metadata
//! map readers require. Networks may nest: inserting a network inside an already inserted
//! one splits it. Format: <https://maxmind.github.io/MaxMind-DB/>.
use std::net::IpAddr;

/// A value of the MMDB data section.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    U16(u16),
    U32(u32),
    U64(u64),
    Bool(bool),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_owned())
    }

    pub fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Record {
    Empty,
    Node(u32),
    Data(u32),
}

/// Builds one database in memory.
#[derive(Debug)]
pub struct MmdbWriter {
    database_type: String,
    nodes: Vec<[Record; 2]>,
    data: Vec<u8>,
}

fn encode_control(out: &mut Vec<u8>, type_num: u8, size: usize) {
    let (marker, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else if size < 285 + 65_536 {
        let s = (size - 285) as u16;
        (30, s.to_be_bytes().to_vec())
    } else {
        let s = (size - 65_821) as u32;
        (31, s.to_be_bytes()[1..].to_vec())
    };
    if type_num <= 7 {
        out.push((type_num << 5) | marker);
    } else {
        out.push(marker);
        out.push(type_num - 7);
    }
    out.extend_from_slice(&extra);
}

fn encode_uint(out: &mut Vec<u8>, type_num: u8, v: u64, width: usize) {
    let bytes = v.to_be_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(8)
        .max(8 - width);
    let payload = &bytes[first..];
    encode_control(out, type_num, payload.len());
    out.extend_from_slice(payload);
}

/// Appends the MMDB encoding of `v`.
pub fn encode(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) => {
            encode_control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::U16(n) => encode_uint(out, 5, u64::from(*n), 2),
        Value::U32(n) => encode_uint(out, 6, u64::from(*n), 4),
        Value::U64(n) => encode_uint(out, 9, *n, 8),
        Value::Bool(b) => encode_control(out, 14, usize::from(*b)),
        Value::Map(pairs) => {
            encode_control(out, 7, pairs.len());
            for (k, v) in pairs {
                encode(out, &Value::Str(k.clone()));
                encode(out, v);
            }
        }
        Value::Array(items) => {
            encode_control(out, 11, items.len());
            for v in items {
                encode(out, v);
            }
        }
    }
}

impl MmdbWriter {
    pub fn new(database_type: &str) -> Self {
        MmdbWriter {
            database_type: database_type.to_owned(),
            nodes: vec![[Record::Empty; 2]],
            data: Vec::new(),
        }
    }

    /// Maps `network/prefix_len` (IPv4 or IPv6) to `value`.
    pub fn insert(&mut self, network: IpAddr, prefix_len: u8, value: &Value) {
        let (bits, len) = match network {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), u32::from(prefix_len) + 96),
            IpAddr::V6(v6) => (u128::from(v6), u32::from(prefix_len)),
        };
        assert!((1..=128).contains(&len), "prefix length out of range");
        let offset = self.data.len() as u32;
        encode(&mut self.data, value);
        let mut node = 0usize;
        for i in 0..len {
            let bit = ((bits >> (127 - i)) & 1) as usize;
            if i == len - 1 {
                self.nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Record::Node(n) => n as usize,
                other => {
                    // Empty, or a shorter network being split: both halves keep its data.
                    let fill = if let Record::Data(_) = other {
                        other
                    } else {
                        Record::Empty
                    };
                    self.nodes.push([fill; 2]);
                    let n = self.nodes.len() - 1;
                    self.nodes[node][bit] = Record::Node(n as u32);
                    n
                }
            };
        }
    }

    /// The database file.
    pub fn build(self) -> Vec<u8> {
        let node_count = self.nodes.len() as u32;
        let resolve = |r: Record| -> u32 {
            match r {
                Record::Empty => node_count,
                Record::Node(n) => n,
                Record::Data(off) => node_count + 16 + off,
            }
        };
        let mut out = Vec::with_capacity(self.nodes.len() * 6 + 16 + self.data.len() + 256);
        for [l, r] in &self.nodes {
            for rec in [l, r] {
                let v = resolve(*rec);
                assert!(v < (1 << 24), "database too large for 24-bit records");
                out.extend_from_slice(&v.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
        let metadata = Value::map(&[
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(1_700_000_000)),
            ("database_type", Value::Str(self.database_type.clone())),
            (
                "description",
                Value::map(&[("en", Value::str("test database written by ooni-testkit"))]),
            ),
            ("ip_version", Value::U16(6)),
            ("languages", Value::Array(vec![Value::str("en")])),
            ("node_count", Value::U32(node_count)),
            ("record_size", Value::U16(24)),
        ]);
        encode(&mut out, &metadata);
        out
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Country record in the GeoIP2-Country layout.
pub fn country(iso: &str) -> Value {
    Value::map(&[
        ("continent", Value::map(&[("code", Value::str("EU"))])),
        (
            "country",
            Value::map(&[
                ("iso_code", Value::str(iso)),
                ("names", Value::map(&[("en", Value::str(iso))])),
            ]),
        ),
    ])
}

/// ASN record in the GeoLite2-ASN layout.
pub fn asn(number: u32, org: &str) -> Value {
    Value::map(&[
        ("autonomous_system_number", Value::U32(number)),
        ("autonomous_system_organization", Value::str(org)),
    ])
}

/// The networks of the sample databases: (network, prefix, cc, asn, network name).
pub const SAMPLE_NETWORKS: &[(&str, u8, &str, u32, &str)] = &[
    ("192.33.4.0", 24, "US", 2149, "Cogent Communications"),
    ("93.57.0.0", 16, "IT", 30722, "Vodafone Italia S.p.A."),
    ("80.233.128.0", 17, "IE", 34245, "Magnet Networks Limited"),
    ("2001:db8:1::", 48, "IT", 30722, "Vodafone Italia S.p.A."),
];

/// A country database with [`SAMPLE_NETWORKS`].
pub fn sample_country_db() -> Vec<u8> {
    let mut w = MmdbWriter::new("GeoLite2-Country");
    for (net, len, cc, _, _) in SAMPLE_NETWORKS {
        w.insert(ip(net), *len, &country(cc));
    }
    w.build()
}

/// An ASN database with [`SAMPLE_NETWORKS`].
pub fn sample_asn_db() -> Vec<u8> {
    let mut w = MmdbWriter::new("GeoLite2-ASN");
    for (net, len, _, number, org) in SAMPLE_NETWORKS {
        w.insert(ip(net), *len, &asn(*number, org));
    }
    w.build()
}
