//! The `RowStore` port (what is already stored for some measurements; insert rows with an
//! insert deduplication token) and its ClickHouse adapter `ClickHouseRowStore`.

use crate::records::{FastpathRecord, FaultyRecord, OpenvpnRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clickhouse::Client;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// A ClickHouse failure. Every variant is worth retrying later: the caller fails the whole
/// batch so SQS redelivers it (a permanent fault ends in the DLQ after `maxReceiveCount`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ClickHouse {operation} failed: {source}")]
    Query {
        operation: &'static str,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse {operation} timed out after {after:?}")]
    Timeout {
        operation: &'static str,
        after: Duration,
    },
}

/// Identifies a measurement's rows: its uid and `measurement_start_time` (the leading sort
/// column, so lookups use the primary index).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub measurement_uid: String,
    pub measurement_start_time: u32,
}

/// Storage for the rows the fastpath writes.
#[async_trait]
pub trait RowStore: Send + Sync {
    /// The newest stored `fastpath` row of each of `keys` that exists, by uid.
    async fn current_fastpath(
        &self,
        keys: &[RowKey],
    ) -> Result<HashMap<String, FastpathRecord>, StoreError>;
    /// A stored `obs_openvpn` row of each of `keys` that exists, by uid.
    async fn current_openvpn(
        &self,
        keys: &[RowKey],
    ) -> Result<HashMap<String, OpenvpnRecord>, StoreError>;
    /// Which of `rows` (by `uid`) already have a stored `faulty_measurements` row.
    async fn present_faulty(&self, rows: &[FaultyRecord]) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// One INSERT of `rows` into `fastpath`, deduplicated by the server on `token`.
    async fn insert_fastpath(&self, rows: &[FastpathRecord], token: &str)
        -> Result<(), StoreError>;
    /// One INSERT of `rows` into `obs_openvpn`, deduplicated by the server on `token`.
    async fn insert_openvpn(&self, rows: &[OpenvpnRecord], token: &str) -> Result<(), StoreError>;
    /// One INSERT of `rows` into `faulty_measurements`, deduplicated by the server on `token`.
    async fn insert_faulty(&self, rows: &[FaultyRecord], token: &str) -> Result<(), StoreError>;
}

/// [`RowStore`] on a ClickHouse database holding the migrated tables.
///
/// Inserts send `INSERT INTO t(<the struct's columns>) FORMAT RowBinary` with
/// `insert_deduplicate=1` and `insert_deduplication_token`. The client's schema validation is
/// off for inserts: it insists on every column without a default, and `fastpath` keeps
/// upstream's legacy columns (`filename`, `control_failure`, ...) that the fastpath never
/// writes and the server fills with their type defaults. The integration tests read every
/// written column back to guard the binary layout. Lookups are validated, bind their values
/// (no SQL is built from input) and raise `max_query_size` so a 10k-row reprocess chunk fits.
#[derive(Clone)]
pub struct ClickHouseRowStore {
    client: Client,
    insert_client: Client,
    timeout: Duration,
}

/// Default bound on each lookup and insert.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Large enough for the lookups of a 10k-row chunk (uids and times bound inline).
const MAX_QUERY_SIZE: &str = "16777216";

impl ClickHouseRowStore {
    pub fn new(client: Client) -> Self {
        let insert_client = client.clone().with_validation(false);
        Self {
            client,
            insert_client,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn bounded<T>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(|source| StoreError::Query { operation, source }),
            Err(_) => Err(StoreError::Timeout {
                operation,
                after: self.timeout,
            }),
        }
    }

    async fn insert_rows<T>(
        &self,
        table: &'static str,
        rows: &[T],
        token: &str,
    ) -> Result<(), StoreError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite + Sync,
    {
        if rows.is_empty() {
            return Ok(());
        }
        self.bounded(table_insert_op(table), async {
            let mut insert = self
                .insert_client
                .insert::<T>(table)
                .await?
                .with_setting("insert_deduplicate", "1")
                .with_setting("insert_deduplication_token", token)
                .with_timeouts(Some(self.timeout), Some(self.timeout));
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        })
        .await
    }
}

fn table_insert_op(table: &str) -> &'static str {
    match table {
        "fastpath" => "insert into fastpath",
        "obs_openvpn" => "insert into obs_openvpn",
        "faulty_measurements" => "insert into faulty_measurements",
        _ => "insert",
    }
}

fn key_lists(keys: &[RowKey]) -> (Vec<&str>, Vec<u32>) {
    let uids: Vec<&str> = keys.iter().map(|k| k.measurement_uid.as_str()).collect();
    let mut times: Vec<u32> = keys.iter().map(|k| k.measurement_start_time).collect();
    times.sort_unstable();
    times.dedup();
    (uids, times)
}

#[async_trait]
impl RowStore for ClickHouseRowStore {
    async fn current_fastpath(
        &self,
        keys: &[RowKey],
    ) -> Result<HashMap<String, FastpathRecord>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let (uids, times) = key_lists(keys);
        let rows: Vec<FastpathRecord> = self
            .bounded(
                "fastpath lookup",
                self.client
                    .query(
                        "SELECT ?fields FROM fastpath \
                         WHERE measurement_start_time IN ? AND measurement_uid IN ? \
                         ORDER BY update_time DESC LIMIT 1 BY measurement_uid",
                    )
                    .bind(times)
                    .bind(uids)
                    .with_setting("max_query_size", MAX_QUERY_SIZE)
                    .fetch_all::<FastpathRecord>(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.measurement_uid.clone(), r))
            .collect())
    }

    async fn current_openvpn(
        &self,
        keys: &[RowKey],
    ) -> Result<HashMap<String, OpenvpnRecord>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let (uids, times) = key_lists(keys);
        let rows: Vec<OpenvpnRecord> = self
            .bounded(
                "obs_openvpn lookup",
                self.client
                    .query(
                        "SELECT ?fields FROM obs_openvpn \
                         WHERE measurement_start_time IN ? AND measurement_uid IN ? \
                         LIMIT 1 BY measurement_uid",
                    )
                    .bind(times)
                    .bind(uids)
                    .with_setting("max_query_size", MAX_QUERY_SIZE)
                    .fetch_all::<OpenvpnRecord>(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.measurement_uid.clone(), r))
            .collect())
    }

    async fn present_faulty(&self, rows: &[FaultyRecord]) -> Result<Vec<uuid::Uuid>, StoreError> {
        let (Some(min), Some(max)) = (
            rows.iter().map(|r| r.ts).min(),
            rows.iter().map(|r| r.ts).max(),
        ) else {
            return Ok(Vec::new());
        };
        let uids: Vec<String> = rows.iter().map(|r| r.uid.to_string()).collect();
        let found: Vec<String> = self
            .bounded(
                "faulty_measurements lookup",
                self.client
                    .query(
                        "SELECT DISTINCT toString(uid) FROM faulty_measurements \
                         WHERE ts >= fromUnixTimestamp64Milli(toInt64(?), 'UTC') \
                         AND ts <= fromUnixTimestamp64Milli(toInt64(?), 'UTC') \
                         AND type = 'geoip' AND uid IN ?",
                    )
                    .bind(millis(min))
                    .bind(millis(max))
                    .bind(uids)
                    .with_setting("max_query_size", MAX_QUERY_SIZE)
                    .fetch_all::<String>(),
            )
            .await?;
        Ok(found
            .iter()
            .filter_map(|s| uuid::Uuid::parse_str(s).ok())
            .collect())
    }

    async fn insert_fastpath(
        &self,
        rows: &[FastpathRecord],
        token: &str,
    ) -> Result<(), StoreError> {
        self.insert_rows("fastpath", rows, token).await
    }

    async fn insert_openvpn(&self, rows: &[OpenvpnRecord], token: &str) -> Result<(), StoreError> {
        self.insert_rows("obs_openvpn", rows, token).await
    }

    async fn insert_faulty(&self, rows: &[FaultyRecord], token: &str) -> Result<(), StoreError> {
        self.insert_rows("faulty_measurements", rows, token).await
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}
