//! ClickHouse access for the read API: per-query settings (UTC session, execution-time cap,
//! priority), typed row fetches, `FORMAT JSON` fetches with the server's read statistics, and
//! the mapping of ClickHouse failures to client-safe errors.

use crate::sql::Sql;
use clickhouse::{RowOwned, RowRead};
use ooni_platform::ApiError;
use serde_json::{Map, Value};
use std::time::Instant;

/// Upstream's per-query cap (`max_execution_time=28`), just under API Gateway's 29 s.
pub const MAX_EXECUTION_SECS: u32 = 28;

/// A ClickHouse failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("ClickHouse unreachable: {0}")]
    Unavailable(#[source] clickhouse::error::Error),
    #[error("ClickHouse query exceeded its time limit: {0}")]
    Timeout(#[source] clickhouse::error::Error),
    #[error("ClickHouse query failed: {0}")]
    Query(#[source] clickhouse::error::Error),
    #[error("unexpected ClickHouse response: {0}")]
    Decode(String),
}

impl From<clickhouse::error::Error> for DbError {
    fn from(e: clickhouse::error::Error) -> Self {
        use clickhouse::error::Error as E;
        match &e {
            E::Network(_) | E::TimedOut => DbError::Unavailable(e),
            E::BadResponse(msg)
                if msg.contains("TIMEOUT_EXCEEDED") || msg.contains("Code: 159") =>
            {
                DbError::Timeout(e)
            }
            _ => DbError::Query(e),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) => ApiError::unavailable(e),
            DbError::Timeout(_) => ApiError::new(
                http::StatusCode::GATEWAY_TIMEOUT,
                ooni_platform::ErrorBody::Error(
                    "query took too long; narrow the filters or the time range".into(),
                ),
            )
            .with_source(e),
            _ => ApiError::internal(e),
        }
    }
}

/// Server-side statistics of one query, as the aggregation API reports them (`db_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DbStats {
    pub row_count: u64,
    pub bytes: u64,
    pub total_row_count: u64,
    pub elapsed_seconds: f64,
}

/// The rows of a `FORMAT JSON` query and its statistics.
#[derive(Debug, Clone, Default)]
pub struct JsonRows {
    pub rows: Vec<Map<String, Value>>,
    pub stats: DbStats,
}

/// The read API's ClickHouse handle.
#[derive(Clone)]
pub struct Db {
    client: clickhouse::Client,
}

impl Db {
    /// Wraps `client`, adding the settings every read query runs with.
    pub fn new(client: clickhouse::Client) -> Self {
        let client = client
            .with_setting("session_timezone", "UTC")
            .with_setting("max_execution_time", MAX_EXECUTION_SECS.to_string())
            .with_setting("output_format_json_quote_64bit_integers", "0")
            .with_setting("output_format_json_quote_64bit_floats", "0");
        Db { client }
    }

    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// Every row of `sql` as `T`.
    pub async fn rows<T: RowOwned + RowRead>(&self, sql: &Sql) -> Result<Vec<T>, DbError> {
        Ok(sql.to_query(&self.client).fetch_all::<T>().await?)
    }

    /// The first row of `sql`, if any.
    pub async fn optional<T: RowOwned + RowRead>(&self, sql: &Sql) -> Result<Option<T>, DbError> {
        Ok(sql.to_query(&self.client).fetch_optional::<T>().await?)
    }

    /// The rows of `sql` as JSON objects (`FORMAT JSON`), with read statistics.
    pub async fn json(&self, sql: &Sql) -> Result<JsonRows, DbError> {
        let started = Instant::now();
        let mut cursor = sql.to_query(&self.client).fetch_bytes("JSON")?;
        let bytes = cursor.collect().await?;
        let total_rows_to_read = cursor.summary().and_then(|s| s.total_rows_to_read());
        let mut doc: JsonDoc =
            serde_json::from_slice(&bytes).map_err(|e| DbError::Decode(e.to_string()))?;
        let stats = doc.statistics.take().unwrap_or_default();
        let elapsed = if stats.elapsed > 0.0 {
            stats.elapsed
        } else {
            started.elapsed().as_secs_f64()
        };
        Ok(JsonRows {
            rows: doc.data,
            stats: DbStats {
                row_count: stats.rows_read,
                bytes: stats.bytes_read,
                total_row_count: total_rows_to_read
                    .filter(|t| *t >= stats.rows_read)
                    .unwrap_or(stats.rows_read),
                elapsed_seconds: elapsed,
            },
        })
    }
}

#[derive(serde::Deserialize)]
struct JsonDoc {
    #[serde(default)]
    data: Vec<Map<String, Value>>,
    #[serde(default)]
    statistics: Option<JsonStats>,
}

#[derive(serde::Deserialize, Default)]
struct JsonStats {
    #[serde(default)]
    elapsed: f64,
    #[serde(default)]
    rows_read: u64,
    #[serde(default)]
    bytes_read: u64,
}

/// A JSON number or numeric string as `u64` (0 when neither).
pub fn as_u64(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// A JSON string value (empty when absent or not a string).
pub fn as_str(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_become_504_and_network_failures_503_without_leaking_details() {
        let timeout: ApiError = DbError::from(clickhouse::error::Error::BadResponse(
            "Code: 159. DB::Exception: Timeout exceeded (TIMEOUT_EXCEEDED)".into(),
        ))
        .into();
        assert_eq!(timeout.status, 504);
        assert!(!timeout.body.to_json().to_string().contains("DB::Exception"));
        let down: ApiError = DbError::from(clickhouse::error::Error::TimedOut).into();
        assert_eq!(down.status, 503);
        let bug: ApiError = DbError::from(clickhouse::error::Error::BadResponse(
            "Code: 47. Unknown identifier".into(),
        ))
        .into();
        assert_eq!(bug.status, 500);
    }

    #[test]
    fn json_numbers_and_numeric_strings_read_as_integers() {
        assert_eq!(as_u64(Some(&serde_json::json!(5))), 5);
        assert_eq!(as_u64(Some(&serde_json::json!("7"))), 7);
        assert_eq!(as_u64(None), 0);
    }
}
