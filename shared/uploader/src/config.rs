//! Uploader settings, read once at cold start from the environment (all optional):
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `OONI_COLLECTOR_ID` | `1` | the `n{collector}` part of output names |
//! | `OONI_UPLOADER_GRACE_SECS` | `300` | hour H is uploaded from H+1h+grace on (in-flight PUTs) |
//! | `OONI_UPLOADER_TIME_BUDGET_SECS` | `600` | stop taking new chunks after this long (Lambda timeout 900 s) |
//! | `OONI_UPLOADER_POSTCAN_BYTES` | `20000000` | close a chunk once its postcan exceeds this (upstream: 20 MB) |
//! | `OONI_UPLOADER_CHUNK_MEASUREMENTS` | `50000` | ... or holds this many measurements |
//! | `OONI_UPLOADER_MEMBER_BYTES` | `262144` | uncompressed size of a JSONL gzip member |
//! | `OONI_UPLOADER_FETCH_CONCURRENCY` | `8` | incoming GETs in flight |
//! | `OONI_UPLOADER_FETCH_WINDOW_BYTES` | `33554432` | bytes of incoming objects fetched ahead |
//! | `OONI_UPLOADER_DELETE_CONCURRENCY` | `16` | incoming delete requests in flight (up to 1000 keys each) |
//! | `OONI_UPLOADER_MARKER_TRUST_DAYS` | `60` | commit markers are authoritative for hours younger than this |

use std::time::Duration;

use ooni_platform::config::{ConfigError, Env};

use crate::postcan::DEFAULT_POSTCAN_BYTES;
use crate::seekable::DEFAULT_MEMBER_BYTES;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploaderConfig {
    pub collector_id: String,
    pub grace: Duration,
    /// `None`: no limit (the CLI).
    pub time_budget: Option<Duration>,
    pub postcan_bytes: u64,
    pub chunk_max_measurements: usize,
    /// Close a chunk once its pending `jsonl` rows take this many bytes (bounds memory).
    pub chunk_max_row_bytes: usize,
    pub member_bytes: usize,
    pub fetch_concurrency: usize,
    pub fetch_window_bytes: u64,
    pub delete_concurrency: usize,
    /// Multipart part size of the outputs (at least S3's 5 MiB minimum).
    pub part_size: usize,
    pub marker_trust: Duration,
}

impl Default for UploaderConfig {
    fn default() -> Self {
        UploaderConfig {
            collector_id: "1".into(),
            grace: Duration::from_secs(300),
            time_budget: Some(Duration::from_secs(600)),
            postcan_bytes: DEFAULT_POSTCAN_BYTES,
            chunk_max_measurements: 50_000,
            chunk_max_row_bytes: 8 * 1024 * 1024,
            member_bytes: DEFAULT_MEMBER_BYTES,
            fetch_concurrency: 8,
            fetch_window_bytes: 32 * 1024 * 1024,
            delete_concurrency: 16,
            part_size: ooni_adapters::object_store::MIN_PART_SIZE,
            marker_trust: Duration::from_secs(60 * 86_400),
        }
    }
}

impl UploaderConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = UploaderConfig::default();
        let collector_id = env.string("OONI_COLLECTOR_ID", &d.collector_id);
        if collector_id.is_empty() || !collector_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::Invalid {
                name: "OONI_COLLECTOR_ID".into(),
                reason: "must be letters and digits".into(),
            });
        }
        let budget: u64 = env.parse("OONI_UPLOADER_TIME_BUDGET_SECS", 600)?;
        Ok(UploaderConfig {
            collector_id,
            grace: Duration::from_secs(env.parse("OONI_UPLOADER_GRACE_SECS", 300)?),
            time_budget: (budget > 0).then(|| Duration::from_secs(budget)),
            postcan_bytes: env
                .parse("OONI_UPLOADER_POSTCAN_BYTES", d.postcan_bytes)?
                .max(1),
            chunk_max_measurements: env
                .parse("OONI_UPLOADER_CHUNK_MEASUREMENTS", d.chunk_max_measurements)?
                .clamp(1, 500_000),
            member_bytes: env
                .parse("OONI_UPLOADER_MEMBER_BYTES", d.member_bytes)?
                .max(1024),
            fetch_concurrency: env
                .parse("OONI_UPLOADER_FETCH_CONCURRENCY", d.fetch_concurrency)?
                .clamp(1, 64),
            fetch_window_bytes: env
                .parse("OONI_UPLOADER_FETCH_WINDOW_BYTES", d.fetch_window_bytes)?
                .max(1),
            delete_concurrency: env
                .parse("OONI_UPLOADER_DELETE_CONCURRENCY", d.delete_concurrency)?
                .clamp(1, 64),
            marker_trust: Duration::from_secs(
                env.parse("OONI_UPLOADER_MARKER_TRUST_DAYS", 60u64)? * 86_400,
            ),
            ..d
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
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let map = env(&[]);
        let c = UploaderConfig::from_env(&Env::from_fn(|k| map.get(k).cloned())).unwrap();
        assert_eq!(c, UploaderConfig::default());
    }

    #[test]
    fn settings_are_read_and_a_zero_budget_means_unlimited() {
        let map = env(&[
            ("OONI_COLLECTOR_ID", "7"),
            ("OONI_UPLOADER_TIME_BUDGET_SECS", "0"),
            ("OONI_UPLOADER_MEMBER_BYTES", "65536"),
        ]);
        let c = UploaderConfig::from_env(&Env::from_fn(|k| map.get(k).cloned())).unwrap();
        assert_eq!(c.collector_id, "7");
        assert_eq!(c.time_budget, None);
        assert_eq!(c.member_bytes, 65536);
    }

    #[test]
    fn a_collector_id_that_would_break_key_names_is_refused() {
        for bad in ["1.2", "a/b"] {
            let map = env(&[("OONI_COLLECTOR_ID", bad)]);
            assert!(UploaderConfig::from_env(&Env::from_fn(|k| map.get(k).cloned())).is_err());
        }
    }
}
