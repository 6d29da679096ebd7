//! Where measurement bodies are read from: the [`BodyStore`] port and its first adapter,
//! [`S3BodyStore`].
//!
//! A body lives in one of two places:
//! - **not yet uploaded**: the `.post` object the submit function wrote to the incoming bucket
//!   (key `ooni_domain::envelope::incoming_object_key(uid)`), a `{"format":"json","content":…}`
//!   wrapper whose `content` is the body;
//! - **uploaded**: a line of a gzip JSONL file in the data bucket, located by the `jsonl` table.
//!   Rows written by our uploader carry `member_offset`/`member_length`/`member_line`: one S3
//!   range GET fetches just that gzip member, which is inflated alone. Upstream rows (no member
//!   columns) are read the upstream way: inflate the object from the start up to line `linenum`.
//!
//! Recent uids are looked up in the incoming bucket first (the uploader runs hourly), older ones
//! in `jsonl` first. Inflation is bounded so a corrupt or hostile object cannot exhaust memory.

use crate::db::{Db, DbError};
use crate::sql::Sql;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Duration;
use ooni_adapters::{Clock, ObjectStore, StoreError};
use ooni_domain::envelope::incoming_object_key;
use ooni_domain::ids::MeasurementUid;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

/// The largest body returned (upstream assumes measurements stay well under this).
pub const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Uids received less than this long ago are looked up in the incoming bucket first.
const FRESH_FOR_HOURS: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("object store: {0}")]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("stored body {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Finds measurement bodies (the JSON document a probe submitted, without the `.post` wrapper).
#[async_trait]
pub trait BodyStore: Send + Sync {
    /// The body of measurement `uid`, `None` when it is not stored anywhere.
    async fn body_by_uid(&self, uid: &str) -> Result<Option<Bytes>, BodyError>;
    /// The body of the measurement with `input` (`""` for none) in report `report_id`.
    async fn body_by_report_input(&self, report_id: &str, input: &str) -> Result<Option<Bytes>, BodyError>;
}

/// A `jsonl` row: where an uploaded body is.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct JsonlLocation {
    pub s3path: String,
    pub linenum: i32,
    pub member_offset: u64,
    pub member_length: u32,
    pub member_line: u32,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct UidRow {
    measurement_uid: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ReportInputRow {
    report_id: String,
    input: String,
}

/// [`BodyStore`] over the incoming and data buckets and the `jsonl` table.
pub struct S3BodyStore {
    incoming: Arc<dyn ObjectStore>,
    data: Arc<dyn ObjectStore>,
    db: Db,
    clock: Arc<dyn Clock>,
}

impl S3BodyStore {
    pub fn new(incoming: Arc<dyn ObjectStore>, data: Arc<dyn ObjectStore>, db: Db, clock: Arc<dyn Clock>) -> Self {
        S3BodyStore { incoming, data, db, clock }
    }

    /// The unwrapped `.post` of `uid` in the incoming bucket.
    async fn read_incoming(&self, uid: &MeasurementUid) -> Result<Option<Bytes>, BodyError> {
        let key = incoming_object_key(uid);
        match self.incoming.get(&key).await? {
            None => Ok(None),
            Some(post) => unwrap_post(&key, &post).map(Some),
        }
    }

    /// The newest `jsonl` row for (`report_id`, `input`), preferring one naming `uid`.
    async fn locate(&self, report_id: &str, input: &str, uid: Option<&str>) -> Result<Option<JsonlLocation>, BodyError> {
        let mut q = Sql::new("SELECT s3path, linenum, member_offset, member_length, member_line FROM jsonl");
        q.push_bind(" WHERE report_id = ?", report_id).push_bind(" AND input = ?", input);
        match uid {
            Some(uid) => {
                // Upstream rows have no uid; a row naming a different uid is another measurement.
                q.push_bind(" AND measurement_uid IN ['', ?]", uid)
                    .push(" ORDER BY measurement_uid = '' ASC, update_time DESC LIMIT 1");
            }
            None => {
                q.push(" ORDER BY update_time DESC LIMIT 1");
            }
        }
        Ok(self.db.optional::<JsonlLocation>(&q).await?)
    }

    /// Reads one line from the data bucket.
    async fn read_data(&self, loc: &JsonlLocation) -> Result<Option<Bytes>, BodyError> {
        if loc.member_length > 0 {
            let Some(member) = self.data.get_range(&loc.s3path, loc.member_offset, u64::from(loc.member_length)).await? else {
                return Ok(None);
            };
            let line = nth_line(flate2::read::GzDecoder::new(&member[..]), loc.member_line as usize)
                .map_err(|reason| BodyError::Corrupt { key: loc.s3path.clone(), reason })?;
            return Ok(line);
        }
        let Ok(linenum) = usize::try_from(loc.linenum) else {
            return Ok(None);
        };
        let Some(object) = self.data.get(&loc.s3path).await? else {
            return Ok(None);
        };
        nth_line(flate2::read::MultiGzDecoder::new(&object[..]), linenum)
            .map_err(|reason| BodyError::Corrupt { key: loc.s3path.clone(), reason })
    }

    async fn read_jsonl_by_uid(&self, uid: &str) -> Result<Option<Bytes>, BodyError> {
        let mut q = Sql::new("SELECT report_id, input FROM fastpath");
        q.push_bind(" WHERE measurement_uid = ?", uid).push(" LIMIT 1");
        let Some(row) = self.db.optional::<ReportInputRow>(&q).await? else {
            return Ok(None);
        };
        match self.locate(&row.report_id, &row.input, Some(uid)).await? {
            Some(loc) => self.read_data(&loc).await,
            None => Ok(None),
        }
    }
}

#[async_trait]
impl BodyStore for S3BodyStore {
    async fn body_by_uid(&self, uid: &str) -> Result<Option<Bytes>, BodyError> {
        let parsed = MeasurementUid::parse(uid).ok();
        let fresh = parsed.as_ref().is_some_and(|u| u.received_at() > self.clock.now() - Duration::hours(FRESH_FOR_HOURS));
        match (&parsed, fresh) {
            (Some(u), true) => match self.read_incoming(u).await? {
                Some(body) => Ok(Some(body)),
                None => self.read_jsonl_by_uid(uid).await,
            },
            (Some(u), false) => match self.read_jsonl_by_uid(uid).await? {
                Some(body) => Ok(Some(body)),
                None => self.read_incoming(u).await,
            },
            // Old-style uids (e.g. `01…` trivial ids) were never in the incoming bucket.
            (None, _) => self.read_jsonl_by_uid(uid).await,
        }
    }

    async fn body_by_report_input(&self, report_id: &str, input: &str) -> Result<Option<Bytes>, BodyError> {
        if let Some(loc) = self.locate(report_id, input, None).await? {
            if let Some(body) = self.read_data(&loc).await? {
                return Ok(Some(body));
            }
        }
        // Not uploaded yet: find its uid and read the incoming object.
        let mut q = Sql::new("SELECT measurement_uid FROM fastpath");
        q.push_bind(" WHERE report_id = ?", report_id).push_bind(" AND input = ?", input);
        q.push(" ORDER BY update_time DESC LIMIT 1");
        let Some(row) = self.db.optional::<UidRow>(&q).await? else {
            return Ok(None);
        };
        match MeasurementUid::parse(&row.measurement_uid) {
            Ok(uid) => self.read_incoming(&uid).await,
            Err(_) => Ok(None),
        }
    }
}

#[derive(Deserialize)]
struct Post<'a> {
    #[serde(default)]
    format: Option<&'a str>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

/// The `content` of a `{"format":"json","content":…}` wrapper (the whole document when it
/// is not wrapped).
pub fn unwrap_post(key: &str, post: &[u8]) -> Result<Bytes, BodyError> {
    let corrupt = |reason: String| BodyError::Corrupt { key: key.to_owned(), reason };
    let parsed: Post<'_> = serde_json::from_slice(post).map_err(|e| corrupt(e.to_string()))?;
    match (parsed.format, parsed.content) {
        (Some(f), Some(_)) if !f.eq_ignore_ascii_case("json") => Err(corrupt(format!("unsupported format {f:?}"))),
        (_, Some(content)) => Ok(Bytes::copy_from_slice(content.get().as_bytes())),
        (_, None) => Ok(Bytes::copy_from_slice(post)),
    }
}

/// Line `n` (0-based, without its newline) of a decompressed stream, reading at most
/// [`MAX_BODY_BYTES`] past the lines it skips.
fn nth_line(reader: impl Read, n: usize) -> Result<Option<Bytes>, String> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut skip = Vec::new();
    for _ in 0..n {
        skip.clear();
        let read = reader.by_ref().take(MAX_BODY_BYTES).read_until(b'\n', &mut skip).map_err(|e| e.to_string())?;
        if read == 0 {
            return Ok(None);
        }
        if skip.last() != Some(&b'\n') && read as u64 >= MAX_BODY_BYTES {
            return Err("line longer than the body limit".into());
        }
    }
    let mut line = Vec::new();
    let read = reader.take(MAX_BODY_BYTES + 1).read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
    if read == 0 {
        return Ok(None);
    }
    if line.len() as u64 > MAX_BODY_BYTES {
        return Err("body larger than the limit".into());
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(Bytes::from(line)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(text: &str) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn the_post_wrapper_is_removed_keeping_the_content_bytes() {
        let body = unwrap_post("k", br#"{"format":"json","content":{"a": 1,"b":[2]}}"#).unwrap();
        assert_eq!(&body[..], br#"{"a": 1,"b":[2]}"#);
        let bare = unwrap_post("k", br#"{"report_id":"x"}"#).unwrap();
        assert_eq!(&bare[..], br#"{"report_id":"x"}"#);
        assert!(unwrap_post("k", br#"{"format":"yaml","content":"x"}"#).is_err());
        assert!(unwrap_post("k", b"not json").is_err());
    }

    #[test]
    fn the_nth_line_of_a_multi_member_gzip_is_found() {
        let mut data = gz("{\"n\":0}\n{\"n\":1}\n");
        data.extend(gz("{\"n\":2}\n"));
        let line = nth_line(flate2::read::MultiGzDecoder::new(&data[..]), 2).unwrap();
        assert_eq!(line.as_deref(), Some(&b"{\"n\":2}"[..]));
        assert_eq!(nth_line(flate2::read::MultiGzDecoder::new(&data[..]), 3).unwrap(), None);
    }

    #[test]
    fn a_single_member_is_inflated_alone() {
        let first = gz("a\nb\n");
        let second = gz("c\nd\n");
        let mut data = first.clone();
        data.extend(&second);
        let member = &data[first.len()..];
        let line = nth_line(flate2::read::GzDecoder::new(member), 1).unwrap();
        assert_eq!(line.as_deref(), Some(&b"d"[..]));
    }

    #[test]
    fn garbage_is_reported_not_returned() {
        assert!(nth_line(flate2::read::GzDecoder::new(&b"not gzip"[..]), 0).is_err());
    }
}
