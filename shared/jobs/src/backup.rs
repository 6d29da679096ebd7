//! `JobBackup`: daily backup of the ClickHouse tables that hold state of their own (rules,
//! feedback, helper inventory, loaded reference data) to the backup bucket, and public exports
//! of the reference tables to the data bucket. `fastpath` and `jsonl` are not backed up: they
//! are rebuilt from the raw measurements in the data bucket (reprocessing).
//!
//! Backup layout (backup bucket, versioned): `clickhouse/<YYYY-MM-DD>/<table>.csv.zst` — the
//! table as `CSVWithNames` (a header line of column names, so a restore maps columns by name),
//! zstd-compressed and streamed from ClickHouse into a multipart upload in 8 MiB chunks, with no
//! temporary file — and `clickhouse/<YYYY-MM-DD>/manifest.json`, written last:
//! `{date, created_at, database, schema_versions, tables: [{table, key, rows, bytes, sha256,
//! create}]}` (`create` is `SHOW CREATE TABLE`, so a restore can recreate the table).
//! A day with a manifest is complete and is not redone. Each finished table also gets a small
//! `clickhouse/<YYYY-MM-DD>/<table>.done.json` (its manifest entry, written after its object), so
//! a rerun after a kill or a timeout skips the tables already done and redoes only the one that
//! was in flight (an invisible multipart upload, or a whole object the rerun overwrites). The
//! dumps read with `max_threads = 1` at a low query priority, to stay out of the way of the API. [`restore_table`]
//! loads a backed-up table back (into the same or another table).
//!
//! Public exports (data bucket): `exports/<table>.csv.zst`, same format, replaced whole on every run
//! (a multipart upload becomes visible only when complete). The bucket policy must allow
//! public reads of `exports/*` for these to be public.
//!
//! Settings: `OONI_BACKUP_TABLES` (comma-separated; default [`DEFAULT_BACKUP_TABLES`]),
//! `OONI_EXPORT_TABLES` (default [`DEFAULT_EXPORT_TABLES`]).

use crate::checkpoint::{Point, Step};
use crate::job::{JobEnv, JobError, Loaded};
use crate::metrics::Outcome;
use bytes::Bytes;
use ooni_adapters::{Migrator, ObjectStore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Arc;

pub const JOB: &str = "JobBackup";

/// Tables backed up by default.
pub const DEFAULT_BACKUP_TABLES: &[&str] = &[
    "url_priorities",
    "msmt_feedback",
    "test_helper_instances",
    "faulty_measurements",
    "citizenlab",
    "fingerprints_dns",
    "fingerprints_http",
    "asnmeta",
];

/// Tables exported publicly by default.
pub const DEFAULT_EXPORT_TABLES: &[&str] = &["citizenlab", "fingerprints_dns", "fingerprints_http"];

const PART_SIZE: usize = 8 * 1024 * 1024;
/// zstd level of the dumps: level 3 (zstd's default) compresses reference tables about as well
/// as gzip -9 at a fraction of the CPU, so the dumps stay cheap for the shared ClickHouse node.
const ZSTD_LEVEL: i32 = 3;
/// ClickHouse format of the dumps and of the restore's INSERT.
const FORMAT: &str = "CSVWithNames";
/// Object name suffix of a dump.
pub const SUFFIX: &str = ".csv.zst";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0:?} is not a plain table name")]
    TableName(String),
    #[error("ClickHouse {operation} of {table} failed: {source}")]
    ClickHouse {
        operation: &'static str,
        table: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("compressing {table} failed: {message}")]
    Compress { table: String, message: String },
    #[error("{key} is missing from the backup")]
    Missing { key: String },
    #[error("{key} does not match the manifest's checksum")]
    Checksum { key: String },
    #[error("the manifest {key} is not valid: {message}")]
    Manifest { key: String, message: String },
}

/// One backed-up table in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableBackup {
    pub table: String,
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub create: String,
}

/// `manifest.json` of a day's backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub date: String,
    pub created_at: String,
    pub database: String,
    pub schema_versions: Vec<u32>,
    pub tables: Vec<TableBackup>,
}

pub fn day_prefix(date: &str) -> String {
    format!("clickhouse/{date}/")
}

pub fn manifest_key(date: &str) -> String {
    format!("{}manifest.json", day_prefix(date))
}

fn checked(table: &str) -> Result<&str, BackupError> {
    ooni_adapters::clickhouse::is_identifier(table)
        .then_some(table)
        .ok_or_else(|| BackupError::TableName(table.to_owned()))
}

/// The configured tables (`OONI_BACKUP_TABLES` / `OONI_EXPORT_TABLES`), or the defaults.
pub fn tables_from(value: Option<String>, default: &[&str]) -> Vec<String> {
    match value.filter(|v| !v.trim().is_empty()) {
        Some(v) => v
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        None => default.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// What streaming one table produced.
struct Dumped {
    rows: u64,
    bytes: u64,
    sha256: String,
}

fn compress_error(table: &str) -> impl Fn(std::io::Error) -> BackupError + Copy + '_ {
    move |e| BackupError::Compress {
        table: table.to_owned(),
        message: e.to_string(),
    }
}

/// Counts the records of RFC 4180 CSV fed in chunks: newlines outside quoted fields (a quote
/// inside a field is doubled, which toggles twice, so the state stays right across chunks).
#[derive(Default)]
struct CsvRecords {
    quoted: bool,
    records: u64,
}

impl CsvRecords {
    fn feed(&mut self, chunk: &[u8]) {
        for b in chunk {
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => self.records += 1,
                _ => {}
            }
        }
    }

    /// Data rows: records minus the header line.
    fn rows(&self) -> u64 {
        self.records.saturating_sub(1)
    }
}

/// Streams `SELECT * FROM table` as zstd-compressed CSVWithNames into a multipart upload at `key`.
async fn dump(
    ch: &clickhouse::Client,
    store: &Arc<dyn ObjectStore>,
    table: &str,
    key: &str,
) -> Result<Dumped, JobError> {
    let table = checked(table)?;
    let ch_err = |operation, source| BackupError::ClickHouse {
        operation,
        table: table.to_owned(),
        source,
    };
    let compress_err = compress_error(table);
    let mut cursor = ch
        .query(&format!(
            "SELECT * FROM {table} SETTINGS max_threads = 1, priority = 10"
        ))
        .fetch_bytes(FORMAT)
        .map_err(|e| ch_err("select", e))?;
    let mut upload = store.multipart(key, "application/zstd", PART_SIZE);
    let mut zst = zstd::stream::write::Encoder::new(Vec::with_capacity(PART_SIZE), ZSTD_LEVEL)
        .map_err(compress_err)?;
    let mut hash = Sha256::new();
    let mut records = CsvRecords::default();
    let mut bytes = 0u64;
    let result: Result<(), JobError> = async {
        while let Some(chunk) = cursor.next().await.map_err(|e| ch_err("read", e))? {
            records.feed(&chunk);
            zst.write_all(&chunk).map_err(compress_err)?;
            if zst.get_ref().len() >= PART_SIZE {
                let part = std::mem::take(zst.get_mut());
                hash.update(&part);
                bytes += part.len() as u64;
                upload.write_part(Bytes::from(part)).await?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Err(abort) = upload.abort().await {
            tracing::warn!(error = %abort, key, "aborting the upload failed");
        }
        return Err(e);
    }
    let rest = zst.finish().map_err(compress_err)?;
    hash.update(&rest);
    bytes += rest.len() as u64;
    upload.write_part(Bytes::from(rest)).await?;
    upload.complete().await?;
    Ok(Dumped {
        rows: records.rows(),
        bytes,
        sha256: hex::encode(hash.finalize()),
    })
}

async fn show_create(ch: &clickhouse::Client, table: &str) -> Result<String, BackupError> {
    ch.query(&format!("SHOW CREATE TABLE {}", checked(table)?))
        .fetch_one::<String>()
        .await
        .map_err(|source| BackupError::ClickHouse {
            operation: "show create",
            table: table.to_owned(),
            source,
        })
}

/// Runs the job.
pub async fn run(env: &JobEnv) -> Result<Loaded, JobError> {
    let now = env.clock.now();
    let date = now.format("%Y-%m-%d").to_string();
    let backup = &env.backup_bucket;
    let mut written = 0u64;
    let mut backed_up = Vec::new();
    let mut resumed = Vec::new();
    let manifest_key = manifest_key(&date);
    let already = backup.head(&manifest_key).await?.is_some();
    if already {
        tracing::info!(date, "today's backup is complete already");
    } else {
        for table in &env.settings.backup_tables {
            let key = format!("{}{table}{SUFFIX}", day_prefix(&date));
            let done_key = format!("{}{table}.done.json", day_prefix(&date));
            if let Some(done) = backup.get(&done_key).await? {
                if let Ok(entry) = serde_json::from_slice::<TableBackup>(&done) {
                    tracing::info!(
                        table,
                        rows = entry.rows,
                        "table backed up by an earlier run today"
                    );
                    resumed.push(table.clone());
                    backed_up.push(entry);
                    continue;
                }
                tracing::warn!(
                    table,
                    key = done_key,
                    "unreadable done marker: backing the table up again"
                );
            }
            let create = show_create(&env.ch, table).await?;
            let d = dump(&env.ch, backup, table, &key).await?;
            tracing::info!(table, rows = d.rows, bytes = d.bytes, "table backed up");
            let entry = TableBackup {
                table: table.clone(),
                key,
                rows: d.rows,
                bytes: d.bytes,
                sha256: d.sha256,
                create,
            };
            let marker = serde_json::to_vec(&entry).map_err(|e| BackupError::Manifest {
                key: done_key.clone(),
                message: e.to_string(),
            })?;
            backup
                .put(&done_key, Bytes::from(marker), "application/json")
                .await?;
            env.checkpoints
                .reached(Point {
                    job: JOB,
                    step: Step::Stored,
                    target: Some(&entry.key),
                })
                .await?;
            written += d.rows;
            backed_up.push(entry);
        }
        let schema_versions = Migrator::applied(&env.ch)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect();
        let manifest = Manifest {
            date: date.clone(),
            created_at: now.to_rfc3339(),
            database: env.clickhouse.database.clone(),
            schema_versions,
            tables: backed_up.clone(),
        };
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Manifest {
            key: manifest_key.clone(),
            message: e.to_string(),
        })?;
        backup
            .put(&manifest_key, Bytes::from(body), "application/json")
            .await?;
        env.checkpoints
            .reached(Point {
                job: JOB,
                step: Step::Stored,
                target: Some(&manifest_key),
            })
            .await?;
    }
    let mut exported = Vec::new();
    for table in &env.settings.export_tables {
        let key = format!("exports/{table}{SUFFIX}");
        let d = dump(&env.ch, &env.data_bucket, table, &key).await?;
        exported.push(json!({"table": table, "key": key, "rows": d.rows}));
    }
    Ok(Loaded {
        outcome: if already {
            Outcome::Unchanged
        } else {
            Outcome::Updated
        },
        rows: written,
        details: json!({
            "date": date,
            "backup": if already { json!("already complete") } else { json!(backed_up.iter().map(|t| json!({"table": t.table, "rows": t.rows})).collect::<Vec<_>>()) },
            "resumed": resumed,
            "exports": exported,
        }),
    })
}

/// Reads and checks a day's manifest.
pub async fn read_manifest(store: &dyn ObjectStore, date: &str) -> Result<Manifest, JobError> {
    let key = manifest_key(date);
    let body = store
        .get(&key)
        .await?
        .ok_or_else(|| BackupError::Missing { key: key.clone() })?;
    Ok(
        serde_json::from_slice(&body).map_err(|e| BackupError::Manifest {
            key,
            message: e.to_string(),
        })?,
    )
}

/// Loads table `table` of the backup of `date` into `into` (which must exist with the same
/// columns), after checking the object against the manifest. Returns the rows loaded.
pub async fn restore_table(
    ch: &clickhouse::Client,
    store: &dyn ObjectStore,
    date: &str,
    table: &str,
    into: &str,
) -> Result<u64, JobError> {
    let into = checked(into)?;
    let manifest = read_manifest(store, date).await?;
    let entry = manifest
        .tables
        .iter()
        .find(|t| t.table == table)
        .ok_or_else(|| BackupError::Missing {
            key: format!("{}{table}{SUFFIX}", day_prefix(date)),
        })?;
    let body = store
        .get(&entry.key)
        .await?
        .ok_or_else(|| BackupError::Missing {
            key: entry.key.clone(),
        })?;
    if hex::encode(Sha256::digest(&body)) != entry.sha256 {
        return Err(BackupError::Checksum {
            key: entry.key.clone(),
        }
        .into());
    }
    let ch_err = |source| BackupError::ClickHouse {
        operation: "restore",
        table: into.to_owned(),
        source,
    };
    let compress_err = compress_error(table);
    let mut insert = ch.insert_formatted_with(format!("INSERT INTO {into} FORMAT {FORMAT}"));
    let mut decoder = zstd::stream::read::Decoder::new(&body[..]).map_err(compress_err)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut decoder, &mut buf).map_err(compress_err)?;
        if n == 0 {
            break;
        }
        insert
            .send(Bytes::copy_from_slice(&buf[..n]))
            .await
            .map_err(ch_err)?;
    }
    insert.end().await.map_err(ch_err)?;
    Ok(entry.rows)
}

/// Restores the backup of `date` the way the runbook does it: each of `tables` (every table of
/// the manifest when empty) is loaded into `<table><suffix>`, created first with the live
/// table's structure (`CREATE TABLE ... AS <table>`) when the suffix is not empty, so the
/// operator can compare and then `EXCHANGE TABLES`. An empty suffix appends to the live table
/// (its ReplacingMergeTree keys fold the duplicates). Returns `(target table, rows)` pairs.
pub async fn restore_day(
    ch: &clickhouse::Client,
    store: &dyn ObjectStore,
    date: &str,
    tables: &[String],
    suffix: &str,
) -> Result<Vec<(String, u64)>, JobError> {
    let manifest = read_manifest(store, date).await?;
    let wanted: Vec<String> = if tables.is_empty() {
        manifest.tables.iter().map(|t| t.table.clone()).collect()
    } else {
        tables.to_vec()
    };
    let mut restored = Vec::with_capacity(wanted.len());
    for table in &wanted {
        let table = checked(table)?;
        let into = format!("{table}{suffix}");
        let into = checked(&into)?;
        if !suffix.is_empty() {
            ch.query(&format!("CREATE TABLE IF NOT EXISTS {into} AS {table}"))
                .execute()
                .await
                .map_err(|source| BackupError::ClickHouse {
                    operation: "create",
                    table: into.to_owned(),
                    source,
                })?;
        }
        let rows = restore_table(ch, store, date, table, into).await?;
        restored.push((into.to_owned(), rows));
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_tables_override_the_defaults() {
        assert_eq!(
            tables_from(None, DEFAULT_EXPORT_TABLES),
            ["citizenlab", "fingerprints_dns", "fingerprints_http"]
        );
        assert_eq!(
            tables_from(Some(" a, b ,".into()), DEFAULT_EXPORT_TABLES),
            ["a", "b"]
        );
        assert_eq!(tables_from(Some("  ".into()), &["x"]), ["x"]);
    }

    #[test]
    fn csv_rows_are_counted_across_chunks_and_quoted_newlines() {
        let csv = b"\"a\",\"b\"\n1,\"x\ny\"\n2,\"say \"\"hi\"\"\n\"\n3,\"\"\n";
        for split in 0..csv.len() {
            let mut r = CsvRecords::default();
            r.feed(&csv[..split]);
            r.feed(&csv[split..]);
            assert_eq!(r.rows(), 3, "split at {split}");
        }
        assert_eq!(CsvRecords::default().rows(), 0);
    }

    #[test]
    fn only_plain_table_names_are_accepted() {
        assert!(checked("url_priorities").is_ok());
        assert!(checked("t; DROP TABLE x").is_err());
        assert_eq!(
            manifest_key("2026-11-26"),
            "clickhouse/2026-11-26/manifest.json"
        );
    }
}
