//! Typed settings of the probe services, read from the environment once at cold start.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `OONI_COLLECTOR_ID` | `1` | the `n<id>` part of every report id we hand out |
//! | `OONI_MAX_SUBMISSION_BYTES` | 5 MiB | largest submission body, raw and after decompression (413 above) |
//! | `OONI_SUBMISSION_INLINE_LIMIT` | 200 KiB | largest queue message that still carries the body inline |
//! | `OONI_PROBE_CONFIG_TTL_SECS` | 300 | how long a config-bucket document is used before it is re-read |
//! | `OONI_GEOIP_TTL_SECS` | 3600 | how long the GeoIP databases are used before they are re-read |
//! | `OONI_GEOIP_CC_KEY` | `geoip/cc.mmdb` | country database (GeoIP2/GeoLite2-Country layout) in the config bucket |
//! | `OONI_GEOIP_ASN_KEY` | `geoip/asn.mmdb` | ASN database (GeoLite2-ASN layout) in the config bucket |
//! | `OONI_PROBE_DB_TIMEOUT_MS` | 3000 | ClickHouse query timeout before check-in / test lists fail over |
//! | `OONI_PROBE_LIST_CACHE_SECS` | 60 | how long check-in keeps a (country, ASN) prioritised URL list (0: never) |
//! | `OONI_PROBE_LIST_CACHE_SIZE` | 128 | most (country, ASN) lists kept |
//! | `OONI_BUILD_LABEL` | `local` | shown by `/health` and `/version` |
//!
//! `OONI_TRUSTED_PROXY_HOPS` and `OONI_BASE_URL` come from the shared [`HttpConfig`].

use ooni_platform::config::{ConfigError, Env, HttpConfig};
use std::time::Duration;

/// Settings of the probe services.
#[derive(Debug, Clone)]
pub struct Settings {
    pub collector_id: String,
    /// Proxies in front of API Gateway whose `X-Forwarded-For` entries are trusted.
    pub trusted_proxy_hops: usize,
    pub max_submission_bytes: usize,
    pub inline_limit: usize,
    pub config_ttl: Duration,
    pub geoip_ttl: Duration,
    pub geoip_cc_key: String,
    pub geoip_asn_key: String,
    pub db_timeout: Duration,
    pub list_cache_ttl: Duration,
    pub list_cache_size: usize,
    pub version: &'static str,
    pub build_label: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            collector_id: "1".into(),
            trusted_proxy_hops: 0,
            max_submission_bytes: 5 * 1024 * 1024,
            inline_limit: ooni_domain::envelope::DEFAULT_INLINE_LIMIT,
            config_ttl: Duration::from_secs(300),
            geoip_ttl: Duration::from_secs(3600),
            geoip_cc_key: "geoip/cc.mmdb".into(),
            geoip_asn_key: "geoip/asn.mmdb".into(),
            db_timeout: Duration::from_millis(3000),
            list_cache_ttl: Duration::from_secs(60),
            list_cache_size: 128,
            version: env!("CARGO_PKG_VERSION"),
            build_label: "local".into(),
        }
    }
}

impl Settings {
    /// Reads the settings, refusing malformed values (the function then fails its cold start).
    pub fn from_env(env: &Env, http: &HttpConfig) -> Result<Self, ConfigError> {
        let d = Settings::default();
        let collector_id = env.string("OONI_COLLECTOR_ID", &d.collector_id);
        if collector_id.is_empty() || !collector_id.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::Invalid {
                name: "OONI_COLLECTOR_ID".into(),
                reason: "must be ASCII letters or digits (it goes into report ids)".into(),
            });
        }
        let max_submission_bytes =
            env.parse("OONI_MAX_SUBMISSION_BYTES", d.max_submission_bytes)?;
        if max_submission_bytes == 0 {
            return Err(ConfigError::Invalid {
                name: "OONI_MAX_SUBMISSION_BYTES".into(),
                reason: "must be positive".into(),
            });
        }
        Ok(Settings {
            collector_id,
            trusted_proxy_hops: http.trusted_proxy_hops,
            max_submission_bytes,
            inline_limit: env.parse("OONI_SUBMISSION_INLINE_LIMIT", d.inline_limit)?,
            config_ttl: Duration::from_secs(env.parse("OONI_PROBE_CONFIG_TTL_SECS", 300u64)?),
            geoip_ttl: Duration::from_secs(env.parse("OONI_GEOIP_TTL_SECS", 3600u64)?),
            geoip_cc_key: env.string("OONI_GEOIP_CC_KEY", &d.geoip_cc_key),
            geoip_asn_key: env.string("OONI_GEOIP_ASN_KEY", &d.geoip_asn_key),
            db_timeout: Duration::from_millis(env.parse("OONI_PROBE_DB_TIMEOUT_MS", 3000u64)?),
            list_cache_ttl: Duration::from_secs(env.parse("OONI_PROBE_LIST_CACHE_SECS", 60u64)?),
            list_cache_size: env.parse("OONI_PROBE_LIST_CACHE_SIZE", d.list_cache_size)?,
            version: d.version,
            build_label: env.string("OONI_BUILD_LABEL", &d.build_label),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn http() -> HttpConfig {
        HttpConfig {
            base_url: "http://x".into(),
            trusted_proxy_hops: 1,
            stage: "t".into(),
        }
    }

    #[test]
    fn defaults_apply_and_the_trusted_hops_come_from_the_http_config() {
        let s = Settings::from_env(&Env::from_fn(|_| None), &http()).unwrap();
        assert_eq!(s.collector_id, "1");
        assert_eq!(s.max_submission_bytes, 5 * 1024 * 1024);
        assert_eq!(s.trusted_proxy_hops, 1);
        assert_eq!(s.geoip_cc_key, "geoip/cc.mmdb");
    }

    #[test]
    fn a_collector_id_that_would_break_report_ids_is_refused() {
        let m = env(&[("OONI_COLLECTOR_ID", "a_b")]);
        let err = Settings::from_env(&Env::from_fn(|k| m.get(k).cloned()), &http()).unwrap_err();
        assert!(err.to_string().contains("OONI_COLLECTOR_ID"), "{err}");
    }

    #[test]
    fn a_malformed_size_limit_is_refused_with_its_name() {
        let m = env(&[("OONI_MAX_SUBMISSION_BYTES", "lots")]);
        let err = Settings::from_env(&Env::from_fn(|k| m.get(k).cloned()), &http()).unwrap_err();
        assert!(
            err.to_string().contains("OONI_MAX_SUBMISSION_BYTES"),
            "{err}"
        );
    }
}
