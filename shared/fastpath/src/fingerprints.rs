//! Where blocking fingerprints come from (`fingerprints_dns` / `fingerprints_http` in
//! ClickHouse, or the two CSV files of ooni/blocking-fingerprints in a directory) and the
//! per-container [`FingerprintCache`]: loaded on first use, refreshed hourly (plus a
//! per-container offset so containers do not all reload at once), and kept as it was when a
//! refresh fails or comes back empty.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use clickhouse::Client;
use ooni_adapters::Clock;
use ooni_scoring::{FingerprintError, FingerprintRow, Fingerprints};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a fingerprint set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading fingerprints from ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("reading fingerprints from ClickHouse timed out")]
    Timeout,
    #[error("reading {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] FingerprintError),
    #[error("building the fingerprint matcher failed: {0}")]
    Build(String),
    #[error("{0}")]
    Other(String),
}

/// A place fingerprints are read from.
#[async_trait]
pub trait FingerprintSource: Send + Sync {
    async fn load(&self) -> Result<Fingerprints, LoadError>;
    /// For logs.
    fn describe(&self) -> String;
}

/// A row of `fingerprints_dns` / `fingerprints_http`, the enums read as their names.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct ChFingerprint {
    name: String,
    scope: String,
    other_names: String,
    location_found: String,
    pattern_type: String,
    pattern: String,
    confidence_no_fp: u8,
    expected_countries: String,
    source: String,
    exp_url: String,
    notes: String,
}

impl From<ChFingerprint> for FingerprintRow {
    fn from(r: ChFingerprint) -> Self {
        FingerprintRow {
            name: r.name,
            scope: r.scope,
            other_names: r.other_names,
            location_found: r.location_found,
            pattern_type: r.pattern_type,
            pattern: r.pattern,
            confidence_no_fp: r.confidence_no_fp,
            expected_countries: r.expected_countries,
            source: r.source,
            exp_url: r.exp_url,
            notes: r.notes,
        }
    }
}

/// The fingerprint tables of a ClickHouse database.
pub struct ClickHouseFingerprints {
    client: Client,
    timeout: std::time::Duration,
}

impl ClickHouseFingerprints {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            timeout: std::time::Duration::from_secs(20),
        }
    }

    async fn rows(&self, table: &'static str) -> Result<Vec<FingerprintRow>, LoadError> {
        let sql = format!(
            "SELECT name, toString(scope) AS scope, other_names, location_found, \
             toString(pattern_type) AS pattern_type, pattern, confidence_no_fp, expected_countries, \
             source, exp_url, notes FROM {table}"
        );
        let rows = tokio::time::timeout(
            self.timeout,
            self.client.query_raw(&sql).fetch_all::<ChFingerprint>(),
        )
        .await
        .map_err(|_| LoadError::Timeout)??;
        Ok(rows.into_iter().map(FingerprintRow::from).collect())
    }
}

/// Builds the matcher off the async threads (an Aho-Corasick automaton: tens of ms).
async fn build(
    dns: Vec<FingerprintRow>,
    http: Vec<FingerprintRow>,
) -> Result<Fingerprints, LoadError> {
    tokio::task::spawn_blocking(move || Fingerprints::from_rows(dns, http))
        .await
        .map_err(|e| LoadError::Build(e.to_string()))?
        .map_err(LoadError::from)
}

#[async_trait]
impl FingerprintSource for ClickHouseFingerprints {
    async fn load(&self) -> Result<Fingerprints, LoadError> {
        let (dns, http) = tokio::try_join!(
            self.rows("fingerprints_dns"),
            self.rows("fingerprints_http")
        )?;
        build(dns, http).await
    }

    fn describe(&self) -> String {
        "ClickHouse fingerprints_dns/fingerprints_http".into()
    }
}

/// `fingerprints_dns.csv` and `fingerprints_http.csv` in a directory.
pub struct DirFingerprints {
    dir: PathBuf,
}

impl DirFingerprints {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

async fn read(path: PathBuf) -> Result<String, LoadError> {
    tokio::fs::read_to_string(&path)
        .await
        .map_err(|source| LoadError::File { path, source })
}

/// Loads the two CSV files of `dir`.
pub async fn load_dir(dir: &Path) -> Result<Fingerprints, LoadError> {
    let dns = read(dir.join("fingerprints_dns.csv")).await?;
    let http = read(dir.join("fingerprints_http.csv")).await?;
    tokio::task::spawn_blocking(move || Fingerprints::from_csv(&dns, &http))
        .await
        .map_err(|e| LoadError::Build(e.to_string()))?
        .map_err(LoadError::from)
}

#[async_trait]
impl FingerprintSource for DirFingerprints {
    async fn load(&self) -> Result<Fingerprints, LoadError> {
        load_dir(&self.dir).await
    }

    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }
}

/// How often the cache reloads, and how soon it tries again after a failed reload.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    pub every: Duration,
    pub retry_after: Duration,
    /// Added to `every` for this container (spreads the reloads of many containers).
    pub offset: Duration,
}

impl RefreshPolicy {
    /// Hourly, retry after a minute, with a random per-container offset of up to 5 minutes.
    pub fn hourly() -> Self {
        let offset_s = rand::random_range(0..300);
        RefreshPolicy {
            every: Duration::hours(1),
            retry_after: Duration::minutes(1),
            offset: Duration::seconds(offset_s),
        }
    }
}

struct CacheState {
    current: Option<Arc<Fingerprints>>,
    next_refresh: DateTime<Utc>,
}

/// The fingerprints of one container (see the module doc).
pub struct FingerprintCache {
    source: Arc<dyn FingerprintSource>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    state: tokio::sync::Mutex<CacheState>,
}

impl FingerprintCache {
    pub fn new(
        source: Arc<dyn FingerprintSource>,
        clock: Arc<dyn Clock>,
        policy: RefreshPolicy,
    ) -> Self {
        FingerprintCache {
            source,
            clock,
            policy,
            state: tokio::sync::Mutex::new(CacheState {
                current: None,
                next_refresh: DateTime::<Utc>::MIN_UTC,
            }),
        }
    }

    /// The current set, reloading it when due. Fails only when no set was ever loaded.
    pub async fn get(&self) -> Result<Arc<Fingerprints>, LoadError> {
        let mut st = self.state.lock().await;
        let now = self.clock.now();
        if let Some(current) = &st.current {
            if now < st.next_refresh {
                return Ok(current.clone());
            }
        }
        let loaded = self.source.load().await;
        match (loaded, st.current.clone()) {
            (Ok(fresh), Some(previous)) if fresh.dns().is_empty() && fresh.http().is_empty() => {
                tracing::warn!(
                    counter = "fingerprints_refresh_failed",
                    source = %self.source.describe(),
                    "fingerprint tables are empty; keeping the previous set"
                );
                st.next_refresh = now + self.policy.retry_after;
                Ok(previous)
            }
            (Ok(fresh), previous) => {
                if fresh.dns().is_empty() && fresh.http().is_empty() {
                    tracing::warn!(source = %self.source.describe(), "no fingerprints loaded: nothing will be confirmed");
                }
                tracing::info!(
                    counter = if previous.is_some() { "fingerprints_refreshed" } else { "fingerprints_loaded" },
                    dns = fresh.dns().len(),
                    http = fresh.http().len(),
                    source = %self.source.describe(),
                    "fingerprints loaded"
                );
                let fresh = Arc::new(fresh);
                st.current = Some(fresh.clone());
                st.next_refresh = now + self.policy.every + self.policy.offset;
                Ok(fresh)
            }
            (Err(e), Some(previous)) => {
                tracing::warn!(
                    counter = "fingerprints_refresh_failed",
                    source = %self.source.describe(),
                    error = %e,
                    "fingerprint refresh failed; keeping the previous set"
                );
                st.next_refresh = now + self.policy.retry_after;
                Ok(previous)
            }
            (Err(e), None) => {
                tracing::error!(counter = "fingerprints_load_failed", source = %self.source.describe(), error = %e, "cannot load fingerprints");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testing::ScriptedFingerprints;
    use ooni_adapters::FixedClock;

    const DNS: &str = "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n\
        a,nat,,dns,full,10.10.34.36,10,IR,,,\n";
    const DNS2: &str = "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n\
        a,nat,,dns,full,10.10.34.36,10,IR,,,\nb,isp,,dns,full,1.2.3.4,10,IT,,,\n";
    const HTTP: &str = "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n";

    fn set(dns: &str) -> Fingerprints {
        Fingerprints::from_csv(dns, HTTP).unwrap()
    }

    fn policy() -> RefreshPolicy {
        RefreshPolicy {
            every: Duration::hours(1),
            retry_after: Duration::minutes(1),
            offset: Duration::zero(),
        }
    }

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn the_set_is_loaded_once_and_reused_within_the_hour() {
        let source = ScriptedFingerprints::new(vec![Ok(set(DNS))]);
        let clock = Arc::new(FixedClock::new(start()));
        let cache = FingerprintCache::new(source.clone(), clock.clone(), policy());
        assert_eq!(cache.get().await.unwrap().dns().len(), 1);
        clock.advance(Duration::minutes(59));
        assert_eq!(cache.get().await.unwrap().dns().len(), 1);
        assert_eq!(source.loads(), 1);
    }

    #[tokio::test]
    async fn the_set_is_refreshed_after_an_hour() {
        let source = ScriptedFingerprints::new(vec![Ok(set(DNS)), Ok(set(DNS2))]);
        let clock = Arc::new(FixedClock::new(start()));
        let cache = FingerprintCache::new(source.clone(), clock.clone(), policy());
        assert_eq!(cache.get().await.unwrap().dns().len(), 1);
        clock.advance(Duration::minutes(61));
        assert_eq!(cache.get().await.unwrap().dns().len(), 2);
        assert_eq!(source.loads(), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_last_good_set_and_retries_a_minute_later() {
        let source = ScriptedFingerprints::new(vec![Ok(set(DNS)), Err("ClickHouse down".into())]);
        let clock = Arc::new(FixedClock::new(start()));
        let cache = FingerprintCache::new(source.clone(), clock.clone(), policy());
        cache.get().await.unwrap();
        clock.advance(Duration::minutes(61));
        assert_eq!(
            cache.get().await.unwrap().dns().len(),
            1,
            "last good set kept"
        );
        assert_eq!(source.loads(), 2);
        clock.advance(Duration::seconds(30));
        cache.get().await.unwrap();
        assert_eq!(source.loads(), 2, "no retry before retry_after");
        source.push(Ok(set(DNS2)));
        clock.advance(Duration::seconds(31));
        assert_eq!(cache.get().await.unwrap().dns().len(), 2);
        assert_eq!(source.loads(), 3);
    }

    #[tokio::test]
    async fn an_empty_refresh_keeps_the_last_good_set() {
        let source = ScriptedFingerprints::new(vec![Ok(set(DNS)), Ok(Fingerprints::empty())]);
        let clock = Arc::new(FixedClock::new(start()));
        let cache = FingerprintCache::new(source.clone(), clock.clone(), policy());
        cache.get().await.unwrap();
        clock.advance(Duration::hours(2));
        assert_eq!(cache.get().await.unwrap().dns().len(), 1);
    }

    #[tokio::test]
    async fn without_any_good_set_a_failure_is_an_error_and_the_next_call_retries() {
        let source = ScriptedFingerprints::new(vec![Err("down".into())]);
        let clock = Arc::new(FixedClock::new(start()));
        let cache = FingerprintCache::new(source.clone(), clock.clone(), policy());
        assert!(cache.get().await.is_err());
        source.push(Ok(set(DNS)));
        assert_eq!(cache.get().await.unwrap().dns().len(), 1);
        assert_eq!(source.loads(), 2);
    }
}
