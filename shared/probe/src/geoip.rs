//! GeoIP of client addresses from MaxMind-format (MMDB) databases held in memory.
//!
//! Two databases, read from the config bucket at cold start (and again after their TTL):
//! * the country database (`geoip/cc.mmdb`), GeoIP2/GeoLite2-Country layout: the country is
//!   `country.iso_code`, else `registered_country.iso_code`; a flat `country_code` string
//!   (ipinfo-style databases) is accepted too;
//! * the ASN database (`geoip/asn.mmdb`), GeoLite2-ASN layout: `autonomous_system_number`
//!   and `autonomous_system_organization`; a flat `asn` string such as `"AS3269"` with
//!   `as_name` / `name` is accepted too.
//!
//! Either may be missing (a fresh deployment before the GeoIP job ran): lookups then simply
//! find nothing, which callers treat as `ZZ` / `AS0`.

use maxminddb::Reader;
use serde::Deserialize;
use std::net::IpAddr;

/// What the databases say about one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// Two uppercase letters.
    pub cc: Option<String>,
    pub asn: Option<u32>,
    pub as_name: Option<String>,
}

/// A database that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{which} GeoIP database is not a valid MMDB file: {source}")]
pub struct GeoIpError {
    pub which: &'static str,
    #[source]
    pub source: maxminddb::MaxMindDbError,
}

/// The two databases (each optional).
#[derive(Default)]
pub struct GeoIp {
    cc: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("cc", &self.cc.is_some())
            .field("asn", &self.asn.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct CcRecord<'a> {
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(borrow, default)]
    asn: Option<&'a str>,
    #[serde(borrow, default)]
    as_name: Option<&'a str>,
    #[serde(borrow, default)]
    name: Option<&'a str>,
}

fn clean_cc(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 2 && s.bytes().all(|c| c.is_ascii_alphabetic())).then(|| s.to_ascii_uppercase())
}

impl GeoIp {
    /// Opens the databases from their bytes.
    pub fn from_bytes(cc: Option<Vec<u8>>, asn: Option<Vec<u8>>) -> Result<Self, GeoIpError> {
        let open = |which, b: Option<Vec<u8>>| {
            b.map(|b| Reader::from_source(b).map_err(|source| GeoIpError { which, source }))
                .transpose()
        };
        Ok(GeoIp {
            cc: open("country", cc)?,
            asn: open("ASN", asn)?,
        })
    }

    /// Whether any database is loaded.
    pub fn is_empty(&self) -> bool {
        self.cc.is_none() && self.asn.is_none()
    }

    /// Looks an address up. A database error on one address is logged and counts as a miss.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let mut out = GeoInfo::default();
        if let Some(r) = &self.cc {
            match r.lookup::<CcRecord<'_>>(ip) {
                Ok(Some(rec)) => {
                    out.cc = rec
                        .country
                        .and_then(|c| c.iso_code)
                        .or(rec.registered_country.and_then(|c| c.iso_code))
                        .or(rec.country_code)
                        .and_then(clean_cc);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "country GeoIP lookup failed"),
            }
        }
        if let Some(r) = &self.asn {
            match r.lookup::<AsnRecord<'_>>(ip) {
                Ok(Some(rec)) => {
                    out.asn = rec.autonomous_system_number.or_else(|| {
                        rec.asn.and_then(|a| {
                            a.trim()
                                .trim_start_matches(['A', 'S', 'a', 's'])
                                .parse()
                                .ok()
                        })
                    });
                    out.as_name = rec
                        .autonomous_system_organization
                        .or(rec.as_name)
                        .or(rec.name)
                        .map(str::to_owned);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "ASN GeoIP lookup failed"),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ooni_testkit::mmdb;

    fn dbs() -> GeoIp {
        GeoIp::from_bytes(Some(mmdb::sample_country_db()), Some(mmdb::sample_asn_db())).unwrap()
    }

    #[test]
    fn an_address_in_both_databases_gets_country_asn_and_network_name() {
        let info = dbs().lookup("192.33.4.12".parse().unwrap());
        assert_eq!(info.cc.as_deref(), Some("US"));
        assert_eq!(info.asn, Some(2149));
        assert_eq!(info.as_name.as_deref(), Some("Cogent Communications"));
    }

    #[test]
    fn an_ipv6_address_is_looked_up_too() {
        let info = dbs().lookup("2001:db8:1::5".parse().unwrap());
        assert_eq!(info.cc.as_deref(), Some("IT"));
        assert_eq!(info.asn, Some(30722));
    }

    #[test]
    fn an_unknown_address_finds_nothing() {
        assert_eq!(dbs().lookup("8.8.8.8".parse().unwrap()), GeoInfo::default());
    }

    #[test]
    fn without_databases_every_lookup_is_a_miss() {
        let g = GeoIp::default();
        assert!(g.is_empty());
        assert_eq!(g.lookup("192.33.4.12".parse().unwrap()), GeoInfo::default());
    }

    #[test]
    fn garbage_is_not_accepted_as_a_database() {
        let err = GeoIp::from_bytes(Some(b"not an mmdb".to_vec()), None).unwrap_err();
        assert_eq!(err.which, "country");
    }
}
