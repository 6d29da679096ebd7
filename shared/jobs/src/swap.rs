//! Atomic replacement of a ClickHouse table's contents: empty its staging twin, fill it,
//! check the row count, then `EXCHANGE TABLES` (atomic on an Atomic database).
//!
//! Kill-safety: the live table is touched only by the final `EXCHANGE`, so a run that dies
//! (or fails validation) anywhere before it leaves the live data as it was; the next run
//! empties the staging table again and starts over. After the exchange the staging table
//! holds the previous data until the next run truncates it.
//!
//! Two runs must not overlap on one table pair (one could exchange what the other is still
//! filling): deploy each job with reserved concurrency 1; the count check before the
//! exchange also refuses a staging table that another run changed underneath.

use crate::checkpoint::{Checkpoints, Point, Step};
use crate::metrics::Outcome;
use bytes::{BufMut, Bytes, BytesMut};
use clickhouse::Client;
use serde::Serialize;

/// Bytes per INSERT request body chunk.
const CHUNK_BYTES: usize = 1 << 20;

/// A live table and its staging twin (same schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TablePair {
    pub live: &'static str,
    pub tmp: &'static str,
    /// Column list of the insert, e.g. `(asn, org_name, cc, changed, aut_name, source)`.
    pub columns: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("ClickHouse {operation} on {table} failed: {source}")]
    ClickHouse {
        operation: &'static str,
        table: &'static str,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("{table} holds {found} rows after loading {expected}; not swapping")]
    CountMismatch {
        table: &'static str,
        expected: u64,
        found: u64,
    },
    #[error("could not encode a row for {table}: {source}")]
    Encode {
        table: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Interrupted(#[from] anyhow::Error),
}

fn ch_err(
    operation: &'static str,
    table: &'static str,
) -> impl FnOnce(clickhouse::error::Error) -> SwapError {
    move |source| SwapError::ClickHouse {
        operation,
        table,
        source,
    }
}

/// Rows currently in `table`.
pub async fn count(ch: &Client, table: &'static str) -> Result<u64, SwapError> {
    ch.query(&format!("SELECT count() FROM {table}"))
        .fetch_one::<u64>()
        .await
        .map_err(ch_err("count", table))
}

/// Empties `pair.tmp` and loads `rows` into it (JSONEachRow, so enums and fixed strings are
/// converted by the server), then checks it holds exactly `rows.len()` rows.
pub async fn fill_tmp<R: Serialize>(
    ch: &Client,
    pair: TablePair,
    rows: &[R],
    job: &str,
    checkpoints: &dyn Checkpoints,
) -> Result<u64, SwapError> {
    let point = |step| Point {
        job,
        step,
        target: Some(pair.live),
    };
    ch.query(&format!("TRUNCATE TABLE IF EXISTS {}", pair.tmp))
        .execute()
        .await
        .map_err(ch_err("truncate", pair.tmp))?;
    checkpoints.reached(point(Step::TmpTruncated)).await?;
    if !rows.is_empty() {
        let mut insert = ch.insert_formatted_with(format!(
            "INSERT INTO {} {} FORMAT JSONEachRow",
            pair.tmp, pair.columns
        ));
        let mut buf = BytesMut::with_capacity(CHUNK_BYTES + 4096);
        for row in rows {
            serde_json::to_writer((&mut buf).writer(), row).map_err(|source| {
                SwapError::Encode {
                    table: pair.tmp,
                    source,
                }
            })?;
            buf.put_u8(b'\n');
            if buf.len() >= CHUNK_BYTES {
                let chunk: Bytes = buf.split().freeze();
                insert
                    .send(chunk)
                    .await
                    .map_err(ch_err("insert", pair.tmp))?;
            }
        }
        if !buf.is_empty() {
            insert
                .send(buf.freeze())
                .await
                .map_err(ch_err("insert", pair.tmp))?;
        }
        insert.end().await.map_err(ch_err("insert", pair.tmp))?;
    }
    let found = count(ch, pair.tmp).await?;
    let expected = rows.len() as u64;
    if found != expected {
        return Err(SwapError::CountMismatch {
            table: pair.tmp,
            expected,
            found,
        });
    }
    checkpoints.reached(point(Step::TmpFilled)).await?;
    Ok(found)
}

/// Swaps `pair.tmp` and `pair.live` atomically.
pub async fn exchange(
    ch: &Client,
    pair: TablePair,
    job: &str,
    checkpoints: &dyn Checkpoints,
) -> Result<(), SwapError> {
    ch.query(&format!("EXCHANGE TABLES {} AND {}", pair.tmp, pair.live))
        .execute()
        .await
        .map_err(ch_err("exchange", pair.live))?;
    tracing::info!(live = pair.live, staging = pair.tmp, "tables exchanged");
    checkpoints
        .reached(Point {
            job,
            step: Step::Exchanged,
            target: Some(pair.live),
        })
        .await?;
    Ok(())
}

/// Stages `rows` in `pair.tmp` and tells whether they differ from the live table (by
/// [`content_hash`]).
pub async fn stage<R: Serialize>(
    ch: &Client,
    pair: TablePair,
    rows: &[R],
    job: &str,
    checkpoints: &dyn Checkpoints,
) -> Result<(u64, bool), SwapError> {
    let loaded = fill_tmp(ch, pair, rows, job, checkpoints).await?;
    let changed = content_hash(ch, pair.tmp).await? != content_hash(ch, pair.live).await?;
    Ok((loaded, changed))
}

/// Replaces the live table's contents with `rows`: [`stage`], then [`exchange`] only when
/// they changed. Returns the rows loaded and the run's outcome.
pub async fn replace<R: Serialize>(
    ch: &Client,
    pair: TablePair,
    rows: &[R],
    job: &str,
    checkpoints: &dyn Checkpoints,
) -> Result<(u64, Outcome), SwapError> {
    let (loaded, changed) = stage(ch, pair, rows, job, checkpoints).await?;
    if changed {
        exchange(ch, pair, job, checkpoints).await?;
        Ok((loaded, Outcome::Updated))
    } else {
        Ok((loaded, Outcome::Unchanged))
    }
}

/// An order-independent fingerprint of a table's contents (row count, wrapping sum of row
/// hashes), to skip swaps that would change nothing.
pub async fn content_hash(ch: &Client, table: &'static str) -> Result<(u64, u64), SwapError> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct H {
        n: u64,
        h: u64,
    }
    let h: H = ch
        .query(&format!(
            "SELECT count() AS n, sum(cityHash64(*)) AS h FROM {table}"
        ))
        .fetch_one()
        .await
        .map_err(ch_err("hash", table))?;
    Ok((h.n, h.h))
}
