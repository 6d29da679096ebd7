//! Job settings from the environment: where each job fetches its data, the sanity bounds it
//! checks the data against, and download limits. Every network source is a URL setting so
//! tests (and staging) can point jobs at local servers.
//!
//! | variable | default | used by |
//! | --- | --- | --- |
//! | `OONI_FINGERPRINTS_DNS_URL` | ooni/blocking-fingerprints `fingerprints_dns.csv` (raw GitHub) | JobFingerprints |
//! | `OONI_FINGERPRINTS_HTTP_URL` | ooni/blocking-fingerprints `fingerprints_http.csv` (raw GitHub) | JobFingerprints |
//! | `OONI_CITIZENLAB_ARCHIVE_URL` | citizenlab/test-lists `master.tar.gz` (GitHub archive) | JobCitizenlab |
//! | `OONI_CITIZENLAB_MIN_ROWS` / `_MAX_ROWS` | 20000 / 1000000 (upstream's bounds) | JobCitizenlab |
//! | `OONI_ASNMETA_URL` | archive.org `ip2country-as/all_as_org_map.json` | JobAsnmeta |
//! | `OONI_ASNMETA_MIN_ROWS` / `_MAX_ROWS` | 100000 / 1000000 (upstream's bounds) | JobAsnmeta |
//! | `OONI_GEOIP_CC_URL` | db-ip `dbip-country-lite-{month}.mmdb.gz` | JobGeoip |
//! | `OONI_GEOIP_ASN_URL` | db-ip `dbip-asn-lite-{month}.mmdb.gz` | JobGeoip |
//! | `OONI_GEOIP_PROBE_IP` | `8.8.8.8` | JobGeoip: an address both databases must answer |
//! | `OONI_GEOIP_PROBE_CC` | `US` (`*`: any country) | JobGeoip: the country it must map to |
//! | `OONI_GEOIP_PROBE_ASN` | `15169` (`*`: any ASN) | JobGeoip: the ASN it must map to |
//! | `OONI_GEOIP_CC_KEY` / `OONI_GEOIP_ASN_KEY` | `geoip/cc.mmdb` / `geoip/asn.mmdb` | JobGeoip (the keys the probe reads) |
//! | `OONI_VPN_EIP_SERVICE_URL` | riseup `3/config/eip-service.json` | JobVpnCredentials |
//! | `OONI_VPN_CA_URL` | riseup `ca.crt` | JobVpnCredentials |
//! | `OONI_VPN_CERT_URL` | riseup `3/cert` (private key + client certificate, PEM) | JobVpnCredentials |
//! | `OONI_JOBS_HTTP_TIMEOUT_S` | 120 | every download |
//! | `OONI_JOBS_MAX_DOWNLOAD_MB` | 512 | every download (also the cap after gunzip) |
//! | `OONI_BACKUP_TABLES` | see `backup::DEFAULT_BACKUP_TABLES` | JobBackup: tables backed up |
//! | `OONI_EXPORT_TABLES` | see `backup::DEFAULT_EXPORT_TABLES` | JobBackup: tables exported publicly |
//! | `OONI_ROTATION_*`, `OONI_DIGITALOCEAN_TOKEN` | see `rotation` | JobTestHelperRotation |
//! | `OONI_MIGRATE_DEADLINE_S` | 270 | Migrate: answer CloudFormation FAILED before the Lambda timeout (300 s) |
//!
//! `{month}` in a URL is replaced by the current UTC month as `YYYY-MM` (db-ip names its
//! monthly files that way).

use crate::backup::{tables_from, DEFAULT_BACKUP_TABLES, DEFAULT_EXPORT_TABLES};
use crate::rotation::RotationSettings;
use ooni_platform::config::{ConfigError, Env};
use std::net::IpAddr;
use std::time::Duration;

const FINGERPRINTS_BASE: &str = "https://raw.githubusercontent.com/ooni/blocking-fingerprints/main";

/// Which answer the GeoIP probe address must get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect<T> {
    Any,
    Exactly(T),
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub fingerprints_dns_url: String,
    pub fingerprints_http_url: String,
    pub citizenlab_archive_url: String,
    pub citizenlab_min_rows: usize,
    pub citizenlab_max_rows: usize,
    pub asnmeta_url: String,
    pub asnmeta_min_rows: usize,
    pub asnmeta_max_rows: usize,
    pub geoip_cc_url: String,
    pub geoip_asn_url: String,
    pub geoip_probe_ip: IpAddr,
    pub geoip_probe_cc: Expect<String>,
    pub geoip_probe_asn: Expect<u32>,
    pub geoip_cc_key: String,
    pub geoip_asn_key: String,
    pub vpn_eip_service_url: String,
    pub vpn_ca_url: String,
    pub vpn_cert_url: String,
    pub http_timeout: Duration,
    pub max_download_bytes: u64,
    pub migrate_deadline: Duration,
    pub backup_tables: Vec<String>,
    pub export_tables: Vec<String>,
    pub rotation: RotationSettings,
}

fn expect<T: std::str::FromStr>(
    env: &Env,
    name: &str,
    default: &str,
) -> Result<Expect<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let v = env.string(name, default);
    let v = v.trim();
    if v == "*" {
        return Ok(Expect::Any);
    }
    v.parse()
        .map(Expect::Exactly)
        .map_err(|e: T::Err| ConfigError::Invalid {
            name: name.into(),
            reason: e.to_string(),
        })
}

impl JobSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mb: u64 = env.parse("OONI_JOBS_MAX_DOWNLOAD_MB", 512u64)?;
        let probe_cc = match expect::<String>(env, "OONI_GEOIP_PROBE_CC", "US")? {
            Expect::Exactly(cc) => Expect::Exactly(cc.to_ascii_uppercase()),
            Expect::Any => Expect::Any,
        };
        Ok(JobSettings {
            fingerprints_dns_url: env.string(
                "OONI_FINGERPRINTS_DNS_URL",
                &format!("{FINGERPRINTS_BASE}/fingerprints_dns.csv"),
            ),
            fingerprints_http_url: env.string(
                "OONI_FINGERPRINTS_HTTP_URL",
                &format!("{FINGERPRINTS_BASE}/fingerprints_http.csv"),
            ),
            citizenlab_archive_url: env.string(
                "OONI_CITIZENLAB_ARCHIVE_URL",
                "https://github.com/citizenlab/test-lists/archive/refs/heads/master.tar.gz",
            ),
            citizenlab_min_rows: env.parse("OONI_CITIZENLAB_MIN_ROWS", 20_000usize)?,
            citizenlab_max_rows: env.parse("OONI_CITIZENLAB_MAX_ROWS", 1_000_000usize)?,
            asnmeta_url: env.string(
                "OONI_ASNMETA_URL",
                "https://archive.org/download/ip2country-as/all_as_org_map.json",
            ),
            asnmeta_min_rows: env.parse("OONI_ASNMETA_MIN_ROWS", 100_000usize)?,
            asnmeta_max_rows: env.parse("OONI_ASNMETA_MAX_ROWS", 1_000_000usize)?,
            geoip_cc_url: env.string(
                "OONI_GEOIP_CC_URL",
                "https://download.db-ip.com/free/dbip-country-lite-{month}.mmdb.gz",
            ),
            geoip_asn_url: env.string(
                "OONI_GEOIP_ASN_URL",
                "https://download.db-ip.com/free/dbip-asn-lite-{month}.mmdb.gz",
            ),
            geoip_probe_ip: env.parse("OONI_GEOIP_PROBE_IP", IpAddr::from([8, 8, 8, 8]))?,
            geoip_probe_cc: probe_cc,
            geoip_probe_asn: expect(env, "OONI_GEOIP_PROBE_ASN", "15169")?,
            geoip_cc_key: env.string("OONI_GEOIP_CC_KEY", "geoip/cc.mmdb"),
            geoip_asn_key: env.string("OONI_GEOIP_ASN_KEY", "geoip/asn.mmdb"),
            vpn_eip_service_url: env.string(
                "OONI_VPN_EIP_SERVICE_URL",
                "https://api.black.riseup.net/3/config/eip-service.json",
            ),
            vpn_ca_url: env.string("OONI_VPN_CA_URL", "https://api.black.riseup.net/ca.crt"),
            vpn_cert_url: env.string("OONI_VPN_CERT_URL", "https://api.black.riseup.net/3/cert"),
            http_timeout: Duration::from_secs(env.parse("OONI_JOBS_HTTP_TIMEOUT_S", 120u64)?),
            max_download_bytes: mb.saturating_mul(1024 * 1024),
            migrate_deadline: Duration::from_secs(env.parse("OONI_MIGRATE_DEADLINE_S", 270u64)?),
            backup_tables: tables_from(env.get("OONI_BACKUP_TABLES"), DEFAULT_BACKUP_TABLES),
            export_tables: tables_from(env.get("OONI_EXPORT_TABLES"), DEFAULT_EXPORT_TABLES),
            rotation: RotationSettings::from_env(env)?,
        })
    }

    /// Settings with every default (tests override fields).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::from_env(&Env::from_fn(|_| None))
    }
}

/// `url` with `{month}` replaced by `month` (`YYYY-MM`).
pub fn expand_url(url: &str, month: &str) -> String {
    url.replace("{month}", month)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_point_at_the_upstream_sources_with_upstream_bounds() {
        let s = JobSettings::defaults().unwrap();
        assert!(s.fingerprints_dns_url.ends_with("/fingerprints_dns.csv"));
        assert_eq!(s.citizenlab_min_rows, 20_000);
        assert_eq!(s.asnmeta_min_rows, 100_000);
        assert_eq!(s.geoip_probe_cc, Expect::Exactly("US".into()));
        assert_eq!(s.geoip_probe_asn, Expect::Exactly(15169));
        assert_eq!(s.geoip_cc_key, "geoip/cc.mmdb");
        assert_eq!(s.max_download_bytes, 512 * 1024 * 1024);
    }

    #[test]
    fn settings_come_from_the_environment_and_a_star_accepts_any_geoip_answer() {
        let m: HashMap<&str, &str> = [
            ("OONI_FINGERPRINTS_DNS_URL", "http://127.0.0.1:9/dns.csv"),
            ("OONI_GEOIP_PROBE_CC", "*"),
            ("OONI_GEOIP_PROBE_ASN", "*"),
            ("OONI_GEOIP_PROBE_IP", "192.0.2.1"),
            ("OONI_CITIZENLAB_MIN_ROWS", "3"),
        ]
        .into_iter()
        .collect();
        let s = JobSettings::from_env(&Env::from_fn(|k| m.get(k).map(|v| v.to_string()))).unwrap();
        assert_eq!(s.fingerprints_dns_url, "http://127.0.0.1:9/dns.csv");
        assert_eq!(s.geoip_probe_cc, Expect::Any);
        assert_eq!(s.geoip_probe_asn, Expect::Any);
        assert_eq!(s.geoip_probe_ip.to_string(), "192.0.2.1");
        assert_eq!(s.citizenlab_min_rows, 3);
    }

    #[test]
    fn an_invalid_probe_address_names_the_setting() {
        let err = JobSettings::from_env(&Env::from_fn(|k| {
            (k == "OONI_GEOIP_PROBE_IP").then(|| "nope".to_string())
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("OONI_GEOIP_PROBE_IP"), "{err}");
    }

    #[test]
    fn the_month_placeholder_is_expanded() {
        assert_eq!(
            expand_url("https://x/dbip-asn-lite-{month}.mmdb.gz", "2026-11"),
            "https://x/dbip-asn-lite-2026-11.mmdb.gz"
        );
    }
}
