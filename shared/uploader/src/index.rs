//! The `jsonl` table as two narrow ports: [`JsonlSink`] (the uploader inserts rows) and
//! [`JsonlQuery`] (body lookups find where a measurement lives), with the ClickHouse adapter
//! [`ClickHouseJsonl`] and the in-memory fake [`MemoryJsonl`].
//!
//! Duplicates: the table is `ReplacingMergeTree(update_time) ORDER BY (report_id, input,
//! measurement_uid)`, so a rerun that inserts a chunk's rows again leaves rows with the same
//! key, collapsed by merges; readers take the newest row per key (`ORDER BY update_time DESC
//! LIMIT 1`, or `FINAL`). Each chunk's INSERT also carries `insert_deduplication_token` =
//! `{s3path}:{sha256 of the rows}`, which makes a retried INSERT a no-op wherever block
//! deduplication is on (replicated tables; or `non_replicated_deduplication_window` > 0).
//! The token covers the row contents, so a chunk rebuilt with different contents is never
//! dropped as a duplicate of its older version.

use async_trait::async_trait;
use chrono::NaiveDate;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};

/// One row of `jsonl` (`update_time` is filled by the server).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct JsonlRow {
    pub report_id: String,
    pub input: String,
    /// Data-bucket key of the `.jsonl.gz` file.
    pub s3path: String,
    /// 0-based line in the whole file.
    pub linenum: i32,
    pub measurement_uid: String,
    /// The day of the hour the measurement was received in.
    #[serde(with = "clickhouse::serde::chrono::date")]
    pub date: NaiveDate,
    /// Which uploader wrote the row (`n{collector}`).
    pub source: String,
    pub member_offset: u64,
    pub member_length: u32,
    pub member_line: u32,
}

/// Where a stored body is: line `linenum` of `s3path`, or (when `member_length > 0`) line
/// `member_line` of the gzip member at `member_offset`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct BodyLocation {
    pub s3path: String,
    pub linenum: i32,
    pub member_offset: u64,
    pub member_length: u32,
    pub member_line: u32,
}

impl From<&JsonlRow> for BodyLocation {
    fn from(r: &JsonlRow) -> Self {
        BodyLocation {
            s3path: r.s3path.clone(),
            linenum: r.linenum,
            member_offset: r.member_offset,
            member_length: r.member_length,
            member_line: r.member_line,
        }
    }
}

/// `jsonl` failures (all worth retrying later).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("jsonl {operation} failed: {message}")]
    Unavailable {
        operation: &'static str,
        message: String,
    },
}

/// Writes rows into `jsonl`.
#[async_trait]
pub trait JsonlSink: Send + Sync {
    /// Inserts `rows` in one INSERT (atomic for fewer than `max_insert_block_size` rows).
    async fn insert(&self, rows: &[JsonlRow]) -> Result<(), IndexError>;
}

/// Finds where a body lives.
#[async_trait]
pub trait JsonlQuery: Send + Sync {
    async fn by_uid(&self, uid: &str) -> Result<Option<BodyLocation>, IndexError>;
    async fn by_report_input(
        &self,
        report_id: &str,
        input: &str,
    ) -> Result<Option<BodyLocation>, IndexError>;
}

/// The deduplication token of one chunk's rows.
pub fn dedup_token(rows: &[JsonlRow]) -> String {
    let mut h = Sha256::new();
    for r in rows {
        for field in [&r.report_id, &r.input, &r.s3path, &r.measurement_uid] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
        h.update(r.linenum.to_le_bytes());
        h.update(r.member_offset.to_le_bytes());
        h.update(r.member_length.to_le_bytes());
        h.update(r.member_line.to_le_bytes());
    }
    let s3path = rows.first().map(|r| r.s3path.as_str()).unwrap_or("");
    format!("{s3path}:{}", hex::encode(h.finalize()))
}

/// [`JsonlSink`] and [`JsonlQuery`] on ClickHouse.
#[derive(Clone)]
pub struct ClickHouseJsonl {
    client: clickhouse::Client,
}

const LOCATION_COLUMNS: &str = "s3path, linenum, member_offset, member_length, member_line";

impl ClickHouseJsonl {
    pub fn new(client: clickhouse::Client) -> Self {
        ClickHouseJsonl { client }
    }
}

fn unavailable(operation: &'static str) -> impl FnOnce(clickhouse::error::Error) -> IndexError {
    move |e| IndexError::Unavailable {
        operation,
        message: e.to_string(),
    }
}

#[async_trait]
impl JsonlSink for ClickHouseJsonl {
    async fn insert(&self, rows: &[JsonlRow]) -> Result<(), IndexError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert::<JsonlRow>("jsonl")
            .await
            .map_err(unavailable("insert"))?
            .with_setting("insert_deduplication_token", dedup_token(rows));
        for row in rows {
            insert.write(row).await.map_err(unavailable("insert"))?;
        }
        insert.end().await.map_err(unavailable("insert"))
    }
}

#[async_trait]
impl JsonlQuery for ClickHouseJsonl {
    async fn by_uid(&self, uid: &str) -> Result<Option<BodyLocation>, IndexError> {
        // Through fastpath first: (report_id, input) is jsonl's sort key prefix, so this
        // reads a few granules. Rows upstream wrote have no uid (''): one of those for the
        // measurement's (report_id, input) is its body, after a row naming the uid. Then by
        // uid alone (rows whose measurement is not in fastpath), through the bloom-filter skip
        // index on measurement_uid (migration 0014).
        let guided = self
            .client
            .query(&format!(
                "SELECT {LOCATION_COLUMNS} FROM jsonl \
                 WHERE (report_id, input) IN (SELECT report_id, input FROM fastpath WHERE measurement_uid = ?) \
                 AND measurement_uid IN ('', ?) ORDER BY measurement_uid = '' ASC, update_time DESC LIMIT 1"
            ))
            .bind(uid)
            .bind(uid)
            .fetch_optional::<BodyLocation>()
            .await
            .map_err(unavailable("lookup by uid"))?;
        if guided.is_some() {
            return Ok(guided);
        }
        self.client
            .query(&format!(
                "SELECT {LOCATION_COLUMNS} FROM jsonl WHERE measurement_uid = ? \
                 ORDER BY update_time DESC LIMIT 1"
            ))
            .bind(uid)
            .fetch_optional::<BodyLocation>()
            .await
            .map_err(unavailable("lookup by uid"))
    }

    async fn by_report_input(
        &self,
        report_id: &str,
        input: &str,
    ) -> Result<Option<BodyLocation>, IndexError> {
        self.client
            .query(&format!(
                "SELECT {LOCATION_COLUMNS} FROM jsonl WHERE report_id = ? AND input = ? \
                 ORDER BY update_time DESC LIMIT 1"
            ))
            .bind(report_id)
            .bind(input)
            .fetch_optional::<BodyLocation>()
            .await
            .map_err(unavailable("lookup by report_id and input"))
    }
}

/// In-memory `jsonl`: keeps every inserted row (like a table before merges); queries return
/// the newest row per key. Clones share rows. `fail_next_insert` injects one failure.
#[derive(Clone, Default)]
pub struct MemoryJsonl {
    rows: Arc<Mutex<Vec<JsonlRow>>>,
    fail_inserts: Arc<Mutex<u32>>,
}

impl MemoryJsonl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every row inserted, duplicates included.
    pub fn raw_rows(&self) -> Vec<JsonlRow> {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The newest row per (report_id, input, measurement_uid), as `FINAL` would return.
    pub fn final_rows(&self) -> Vec<JsonlRow> {
        let mut by_key = std::collections::BTreeMap::new();
        for r in self.raw_rows() {
            by_key.insert(
                (
                    r.report_id.clone(),
                    r.input.clone(),
                    r.measurement_uid.clone(),
                ),
                r,
            );
        }
        by_key.into_values().collect()
    }

    pub fn fail_next_insert(&self) {
        *self
            .fail_inserts
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
    }

    fn newest(&self, pred: impl Fn(&JsonlRow) -> bool) -> Option<BodyLocation> {
        self.raw_rows()
            .iter()
            .rev()
            .find(|r| pred(r))
            .map(BodyLocation::from)
    }
}

#[async_trait]
impl JsonlSink for MemoryJsonl {
    async fn insert(&self, rows: &[JsonlRow]) -> Result<(), IndexError> {
        {
            let mut fail = self
                .fail_inserts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *fail > 0 {
                *fail -= 1;
                return Err(IndexError::Unavailable {
                    operation: "insert",
                    message: "fault injected".into(),
                });
            }
        }
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(rows);
        Ok(())
    }
}

#[async_trait]
impl JsonlQuery for MemoryJsonl {
    async fn by_uid(&self, uid: &str) -> Result<Option<BodyLocation>, IndexError> {
        Ok(self.newest(|r| r.measurement_uid == uid))
    }

    async fn by_report_input(
        &self,
        report_id: &str,
        input: &str,
    ) -> Result<Option<BodyLocation>, IndexError> {
        Ok(self.newest(|r| r.report_id == report_id && r.input == input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(uid: &str, offset: u64) -> JsonlRow {
        JsonlRow {
            report_id: "r".into(),
            input: "i".into(),
            s3path: "raw/x.jsonl.gz".into(),
            linenum: 0,
            measurement_uid: uid.into(),
            date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            source: "n1".into(),
            member_offset: offset,
            member_length: 10,
            member_line: 0,
        }
    }

    #[test]
    fn the_dedup_token_names_the_file_and_changes_with_the_rows() {
        let a = dedup_token(&[row("u1", 0)]);
        assert!(a.starts_with("raw/x.jsonl.gz:"));
        assert_eq!(a, dedup_token(&[row("u1", 0)]));
        assert_ne!(a, dedup_token(&[row("u1", 5)]));
        assert_ne!(a, dedup_token(&[row("u2", 0)]));
    }

    #[tokio::test]
    async fn the_memory_table_answers_with_the_newest_row_per_key() {
        let t = MemoryJsonl::new();
        t.insert(&[row("u1", 0)]).await.unwrap();
        t.insert(&[row("u1", 7)]).await.unwrap();
        assert_eq!(t.raw_rows().len(), 2);
        assert_eq!(t.final_rows().len(), 1);
        assert_eq!(t.by_uid("u1").await.unwrap().unwrap().member_offset, 7);
        assert_eq!(
            t.by_report_input("r", "i")
                .await
                .unwrap()
                .unwrap()
                .member_offset,
            7
        );
        assert!(t.by_uid("u2").await.unwrap().is_none());
        t.fail_next_insert();
        assert!(t.insert(&[row("u3", 0)]).await.is_err());
        assert!(t.insert(&[row("u3", 0)]).await.is_ok());
    }
}
